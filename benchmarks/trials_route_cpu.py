"""CPU seconds of the trials route, two checkouts side by side, on the first N corpus lines.

The machine is shared, so wall-clock rates drift with the load; CPU seconds (main process +
worker) drift much less. For each checkout's ``src`` (``--before``, ``--after``), runs
``classify_to_csv`` (no store) and ``import_and_classify`` on the first ``--lines`` lines of
the 2018 corpus in fresh processes, interleaved, ``--repeats`` times, and prints wall and CPU
seconds of each run with the load average.

    NEUROMODMAP_DATA=../shared/data python benchmarks/trials_route_cpu.py --before ../old/src --after src
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, src, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
t = time.perf_counter()
if mode == "classify":
    from neuromodmap.trials.pipeline import classify_to_csv
    classify_to_csv([src], work / "o.csv")
else:
    from neuromodmap.trials.pipeline import import_and_classify
    from neuromodmap.trials.store import TrialStore
    with TrialStore(work / "t.duckdb") as store:
        import_and_classify(store, [src])
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": time.perf_counter() - t, "main": own.ru_utime + own.ru_stime,
                  "worker": kids.ru_utime + kids.ru_stime}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--lines", type=int, default=30000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("NEUROMODMAP_DATA", "../shared/data"))
    args = parser.parse_args()
    corpus = Path(args.data_dir) / "trials" / "ctgov_text_2018.jsonl.gz"
    with tempfile.TemporaryDirectory() as tmp:
        sliced = Path(tmp) / "slice.jsonl.gz"
        with gzip.open(corpus, "rt", encoding="utf-8") as src, gzip.open(sliced, "wt", encoding="utf-8") as dst:
            dst.writelines(itertools.islice(src, args.lines))
        for _ in range(args.repeats):
            for name, src_dir in (("before", args.before), ("after", args.after)):
                for mode in ("classify", "import+classify"):
                    with tempfile.TemporaryDirectory(dir=tmp) as work:
                        env = dict(os.environ, PYTHONPATH=str(Path(src_dir).resolve()), NEUROMODMAP_NO_PROGRESS="1")
                        out = subprocess.run([sys.executable, "-c", _CHILD, mode.split("+")[0], str(sliced), work],
                                             capture_output=True, text=True, env=env, check=True)
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    print(f"{name:6s} {mode:15s} wall {r['wall']:6.2f} s  CPU main {r['main']:5.2f} + worker "
                          f"{r['worker']:5.2f} = {r['main'] + r['worker']:5.2f} s  (load {os.getloadavg()[0]:.1f})",
                          flush=True)


if __name__ == "__main__":
    main()
