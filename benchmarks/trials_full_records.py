"""Import + classify of full registry records: the 6,786 AllPublicXML records (~16 KB each).

Runs ``import_and_classify`` (what ``neuromodmap trials classify FILE --db X -o labels.csv`` and
the demo run: read, classify, store records and labels) on the AllPublicXML tar.gz in a fresh
subprocess per run, and prints the median records/s over ``--repeats`` runs, the CPU seconds
of both processes (this machine is shared: CPU time moves less with the load than wall time)
and the peak RSS, counted as the run's own peak plus its worker process's peak. The load
average is printed beside each run: the machine has 2 cores, so any other busy process takes
a share of them.

Goal (issue 14): >= 3,000 records/s, <= 1 GB peak RSS on a 2-core machine.

Usage:
    NEUROMODMAP_DATA=../shared/data python benchmarks/trials_full_records.py [--repeats 5] [--csv]

``--csv`` also writes the classification CSV (``-o``); ``--phases`` prints, once, the
single-process time of each stage (read + parse, classify, store columns) for profiling.
``--folder`` extracts the tar into a temporary folder first (as a user who unpacks
AllPublicXML has it: 6,786 files in three subfolders and one loose file) and imports the
folder instead; the extraction is not timed.
``--import-only`` runs ``pipeline.import_files`` instead (what ``neuromodmap trials import``
runs: records stored, nothing classified, no labels). ``--vs-serial`` runs each repeat twice,
the two-process way and ``NEUROMODMAP_SERIAL=1``, alternating which goes first, and prints the
medians of both.
Point ``PYTHONPATH`` at another checkout's ``src`` to measure that one.

    NEUROMODMAP_DATA=../shared/data python benchmarks/trials_full_records.py --import-only --vs-serial --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TAR = ("trials/ctgov_legacy_xml_allpublicxml_subset_reesewang25/"
       "AllPublicXML_subset_NCT0000xxxx_NCT0046xxxx_NCT0049xxxx.tar.gz")

_CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
tar, workdir, csv, import_only = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
from neuromodmap.trials import pipeline
from neuromodmap.trials.store import TrialStore
shared, real_shared = [], pipeline._shared
pipeline._shared = lambda *a, **k: shared.append(1) or real_shared(*a, **k)
t0 = time.perf_counter()
with TrialStore(workdir / "bench.duckdb") as store:
    if import_only:
        report = pipeline.import_files(store, [tar])
        n, stats = report.n_read, {"parallel": bool(shared)}
        assert store.con.execute("SELECT count(*) FROM trial_labels").fetchone()[0] == 0
    else:
        stats = pipeline.import_and_classify(store, [tar], csv_output=workdir / "labels.csv" if csv else None)
        n = stats["n_classified"]
    assert len(store) == n, (len(store), n)
seconds = time.perf_counter() - t0
own = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"n": n, "seconds": seconds, "parallel": stats.get("parallel"),
                  "cpu": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
                  "maxrss_mb": own.ru_maxrss / 1024, "worker_mb": kids.ru_maxrss / 1024}))
"""

_PHASES = r"""
import sys, time
from neuromodmap.trials.io import TrialReader
from neuromodmap.trials.classify import classify
from neuromodmap.trials.store import record_columns
t = time.process_time()
recs = list(TrialReader(sys.argv[1], problems=[]))
t1 = time.process_time()
for r in recs:
    classify(r.trial)
t2 = time.process_time()
record_columns(recs, sys.argv[1], None)
t3 = time.process_time()
n = len(recs)
print(f"phases (one process, CPU s): read+parse {t1 - t:.2f} ({n / (t1 - t):,.0f}/s), classify {t2 - t1:.2f} "
      f"({n / (t2 - t1):,.0f}/s), store columns {t3 - t2:.2f} ({n / (t3 - t2):,.0f}/s)")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--csv", action="store_true", help="also write the classification CSV")
    parser.add_argument("--phases", action="store_true", help="print the single-process time of each stage")
    parser.add_argument("--folder", action="store_true", help="import the tar's files extracted to a folder")
    parser.add_argument("--import-only", action="store_true",
                        help="import without classifying (what 'trials import' runs)")
    parser.add_argument("--vs-serial", action="store_true",
                        help="interleave each run with a NEUROMODMAP_SERIAL=1 run and compare")
    parser.add_argument("--data-dir", default=os.environ.get("NEUROMODMAP_DATA", "../shared/data"))
    args = parser.parse_args()
    tar = Path(args.data_dir) / TAR
    if not tar.is_file():
        sys.exit(f"tar not found: {tar} (set NEUROMODMAP_DATA)")
    env = dict(os.environ, NEUROMODMAP_NO_PROGRESS="1")
    print(f"input: {tar.name}{' extracted to a folder' if args.folder else ''}  cores: {os.cpu_count()}  repeats: {args.repeats}"
          f"{'  (serial: NEUROMODMAP_SERIAL set)' if os.environ.get('NEUROMODMAP_SERIAL') else ''}")
    if args.phases:
        out = subprocess.run([sys.executable, "-c", _PHASES, str(tar)], capture_output=True, text=True, env=env,
                             check=True)
        print(out.stdout.strip())
    what = "import" if args.import_only else f"import+classify{' +csv' if args.csv else ''}"
    modes = ["two processes", "one process"] if args.vs_serial else [""]
    envs = {"": env, "two processes": {k: v for k, v in env.items() if k != "NEUROMODMAP_SERIAL"},
            "one process": dict(env, NEUROMODMAP_SERIAL="1")}
    rates, rss, cpus = {m: [] for m in modes}, {m: [] for m in modes}, {m: [] for m in modes}
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        source = tar
        if args.folder:
            source = Path(tmp) / "AllPublicXML"
            with tarfile.open(tar) as tf:
                members = [m for m in tf.getmembers() if m.isfile()]
                tf.extractall(source, members=members, filter="data")
            print(f"extracted {len(members):,} files to {source}")
        for k in range(args.repeats):
            for mode in modes if k % 2 == 0 else modes[::-1]:  # alternate which goes first
                load = os.getloadavg()[0]
                with tempfile.TemporaryDirectory(dir=tmp) as work:
                    out = subprocess.run([sys.executable, "-c", _CHILD, str(source), work, "1" if args.csv else "0",
                                          "1" if args.import_only else "0"],
                                         capture_output=True, text=True, env=envs[mode], check=True)
                res = json.loads(out.stdout.strip().splitlines()[-1])
                rates[mode].append(res["n"] / res["seconds"])
                rss[mode].append(res["maxrss_mb"] + res["worker_mb"])
                cpus[mode].append(res["cpu"])
                print(f"  run {k + 1}{f' ({mode})' if mode else ''}: {res['n']:,} records in {res['seconds']:.2f} s "
                      f"= {rates[mode][-1]:,.0f} records/s, CPU {res['cpu']:.2f} s, peak RSS "
                      f"{res['maxrss_mb']:,.0f} + worker {res['worker_mb']:,.0f} MB, two processes: "
                      f"{res['parallel']}  (load average at start {load:.2f})")
    for mode in modes:
        print(f"{what}{f' ({mode})' if mode else ''}: n={res['n']:,}  median {statistics.median(rates[mode]):,.0f} "
              f"records/s (best {max(rates[mode]):,.0f}), median CPU {statistics.median(cpus[mode]):.2f} s "
              f"({res['n'] / statistics.median(cpus[mode]):,.0f} records per CPU-second), peak RSS "
              f"{max(rss[mode]):,.0f} MB  goal >= 3,000 records/s, <= 1,024 MB")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
