"""Throughput and peak memory of the trials pipeline on the whole 101k-record corpus.

Runs each scenario in a fresh subprocess (so peak RSS is that run's own) and prints the
median records/s over ``--repeats`` runs and the largest peak RSS, counted as the run's own
peak plus its worker process's peak (the pipeline uses two processes on Linux; set
``NEUROMODMAP_SERIAL=1`` to measure the one-process path). The load average is printed
too: the machine has 2 cores, so another busy process halves what the pipeline can get.

- ``classify``: ``neuromodmap trials classify CORPUS -o out.csv`` (read → classify → CSV);
- ``import+classify``: import into a new DuckDB store, classify every trial, store the labels
  (what ``neuromodmap demo`` does before the survey).

Goal (issue 2): ≥ 5,000 records/s end to end on a 2-core machine, peak RSS ≤ 1 GB.

Usage: NEUROMODMAP_DATA=../shared/data python benchmarks/trials_throughput.py [--repeats 3] [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, sys, time, resource
from pathlib import Path
mode, corpus, workdir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
t0 = time.perf_counter()
if mode == "classify":
    from neuromodmap.trials.pipeline import classify_to_csv
    stats = classify_to_csv([corpus], workdir / "out.csv")
    n = stats["n_trials"]
else:
    from neuromodmap.trials.pipeline import import_and_classify
    from neuromodmap.trials.store import TrialStore
    with TrialStore(workdir / "bench.duckdb") as store:
        stats = import_and_classify(store, [corpus])
    n = stats["n_classified"]
seconds = time.perf_counter() - t0
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"n": n, "seconds": seconds, "maxrss_mb": own, "worker_mb": worker}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N records (quick check)")
    parser.add_argument("--data-dir", default=os.environ.get("NEUROMODMAP_DATA", "../shared/data"))
    args = parser.parse_args()
    corpus = Path(args.data_dir) / "trials" / "ctgov_text_2018.jsonl.gz"
    if not corpus.is_file():
        sys.exit(f"corpus not found: {corpus} (set NEUROMODMAP_DATA)")
    with tempfile.TemporaryDirectory() as tmp:
        if args.limit:
            sliced = Path(tmp) / "slice.jsonl.gz"
            with gzip.open(corpus, "rt", encoding="utf-8") as src, gzip.open(sliced, "wt", encoding="utf-8") as dst:
                for i, line in enumerate(src):
                    if i >= args.limit:
                        break
                    dst.write(line)
            corpus = sliced
        env = dict(os.environ, NEUROMODMAP_NO_PROGRESS="1")
        print(f"corpus: {corpus}  cores: {os.cpu_count()}  repeats: {args.repeats}  "
              f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
              f"{'  (serial: NEUROMODMAP_SERIAL set)' if os.environ.get('NEUROMODMAP_SERIAL') else ''}")
        for mode in ("classify", "import+classify"):
            rates, rss = [], []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory(dir=tmp) as work:
                    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(corpus), work],
                                         capture_output=True, text=True, env=env, check=True)
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                    rates.append(res["n"] / res["seconds"])
                    # the worker process runs beside this one: count both (an upper bound)
                    rss.append(res["maxrss_mb"] + res["worker_mb"])
            print(f"{mode:16s} n={res['n']:,}  median {statistics.median(rates):,.0f} records/s "
                  f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})  peak RSS {max(rss):,.0f} MB  "
                  f"goal ≥ 5,000 records/s, ≤ 1,024 MB  (load now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
