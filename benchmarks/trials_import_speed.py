"""Import speed and peak memory of the trials store on the 101k-record 2018 corpus.

Imports ``trials/ctgov_text_2018.jsonl.gz`` into a fresh DuckDB file, several times, and
prints records/s (median over repeats), the split between reading and writing, and the
peak RSS of each run (a fresh process per run, so peaks do not mix).

    NEUROMODMAP_DATA=/work/shared/data .venv/bin/python benchmarks/trials_import_speed.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time, datetime as dt
from neuromodmap.trials.io import read_trials
from neuromodmap.trials.store import TrialStore
path, db, mode = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter(); c = time.process_time()
if mode == "read":
    n = sum(1 for _ in read_trials(path))
else:
    store = TrialStore(db)
    report = store.import_files([path], progress=False, as_of=dt.date(2018, 7, 1))
    n = report.n_read
    assert len(store) == n, (len(store), n)
    store.close()
wall = time.perf_counter() - t
print(json.dumps({"n": n, "seconds": wall, "cpu": time.process_time() - c,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(mode: str, path: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(Path(tmp) / "bench.duckdb"), mode],
            check=True,
            capture_output=True,
            text=True,
            env={"NEUROMODMAP_NO_PROGRESS": "1", **__import__("os").environ},
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from neuromodmap.config import data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    corpus = data_dir(args.data_dir) / "trials" / "ctgov_text_2018.jsonl.gz"
    results = {}
    for mode in ("read", "import"):
        runs = [run(mode, corpus) for _ in range(args.repeats)]
        secs = statistics.median(r["seconds"] for r in runs)
        n = runs[0]["n"]
        results[mode] = {
            "records": n,
            "median_seconds": round(secs, 2),
            "records_per_second": round(n / secs),
            "median_cpu_seconds": round(statistics.median(r["cpu"] for r in runs), 2),
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
            "all_seconds": [round(r["seconds"], 2) for r in runs],
        }
        print(
            f"{mode:>6}: {n:,} records, median {secs:.2f} s over {args.repeats} runs = "
            f"{n / secs:,.0f} records/s; peak RSS {results[mode]['peak_rss_mb']} MB"
        )
    ratio = results["import"]["median_seconds"] / results["read"]["median_seconds"]
    print(f"import / read-only time ratio: {ratio:.2f}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
