"""How long ``neuromodmap trials survey`` takes, and how much of it goes on the figures.

    PYTHONPATH=src .venv/bin/python benchmarks/trials_survey_speed.py [--db STORE] [--runs 3]
        [--sample 10000] [--out DIR] [--compare REFERENCE_DIR]

Without ``--db`` it builds a store the way ``neuromodmap demo`` does (the first ``--sample``
records of the 2018 corpus, the structured registry files and the AllPublicXML subset, from
``$NEUROMODMAP_DATA``; about 30 s) in a temporary folder. Then it runs ``python -m neuromodmap
trials survey`` ``--runs`` times in a fresh interpreter and prints the median wall and CPU time,
and once in-process with the CPU time spent saving figures (``survey._save``) and its share.
``uptime``'s load is printed before and after: on a busy machine every number grows.

``--compare DIR``: every CSV the last run wrote must be byte-identical to the one of the same
name under DIR (e.g. the output of the code before a change); PNG/SVG files are compared too and
reported (SVGs carry their creation date, so they always differ).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _build_store(db: Path, sample: int) -> None:
    from rich.console import Console

    from neuromodmap import demo
    from neuromodmap.config import data_dir

    steps = demo._Steps(Console(stderr=True), total=2)
    with tempfile.TemporaryDirectory(dir=db.parent) as tmp:
        demo._trials_import(data_dir(None), db, Path(tmp), steps, sample, True)


def _time_cli(db: Path, out: Path, runs: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    argv = [sys.executable, "-m", "neuromodmap", "trials", "survey", "--db", str(db), "-o", str(out)]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def _in_process(db: Path, out: Path) -> tuple[float, float, float, int]:
    """Wall seconds in ``survey()``, its CPU seconds, CPU seconds of it in ``_save``, and the number
    of figures saved (CPU time: on a loaded machine the wall time grows with the load)."""
    from neuromodmap.literature.trial_links import publications_by_trial
    from neuromodmap.trials import survey as mod
    from neuromodmap.trials.store import TrialStore

    saving = [0.0, 0]
    original = mod._save

    def timed(fig, out_, stem):
        start = time.process_time()
        try:
            return original(fig, out_, stem)
        finally:
            saving[0] += time.process_time() - start
            saving[1] += 1

    mod._save = timed
    try:
        with TrialStore(db, read_only=True) as store:
            trials, labels, runs = store.trials_df(), store.labels_df(), store.import_runs_df()
            publications = publications_by_trial(store.con, store.con)
            start, cpu = time.perf_counter(), time.process_time()
            mod.survey(trials, labels, out, import_runs=runs, publications=publications)
            total, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        mod._save = original
    return total, cpu, saving[0], saving[1]


def _compare(out: Path, reference: Path) -> bool:
    ok = True
    for kind in ("csv", "png", "svg"):
        ours = sorted(p.relative_to(out) for p in out.rglob(f"*.{kind}"))
        theirs = sorted(p.relative_to(reference) for p in reference.rglob(f"*.{kind}"))
        differ = [str(p) for p in ours if p in theirs and not filecmp.cmp(out / p, reference / p, shallow=False)]
        missing = sorted(set(map(str, theirs)) ^ set(map(str, ours)))
        print(f"  {kind}: {len(ours)} files here, {len(theirs)} in {reference}; "
              f"{len(differ)} differ{': ' + ', '.join(differ[:6]) if differ else ''}"
              f"{'; only on one side: ' + ', '.join(missing[:6]) if missing else ''}")
        if kind == "csv" and (differ or missing):
            ok = False
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="an existing trial store (default: build one)")
    parser.add_argument("--sample", type=int, default=10_000, help="corpus records in a built store")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, help="survey output folder (default: a temporary one)")
    parser.add_argument("--compare", type=Path, help="a survey output folder whose CSVs must be identical")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="survey-bench-") as tmp:
        db = args.db
        if db is None:
            db = Path(tmp) / "store.duckdb"
            start = time.perf_counter()
            _build_store(db, args.sample)
            print(f"store built in {time.perf_counter() - start:.1f} s ({args.sample:,} corpus records + structured)")
        out = args.out or Path(tmp) / "survey"
        print(f"load before: {_load()}")
        walls, cpus = _time_cli(db, out, args.runs)
        print(f"trials survey (CLI, fresh interpreter), {args.runs} runs: median {statistics.median(walls):.2f} s wall "
              f"(min {min(walls):.2f}, max {max(walls):.2f}), median {statistics.median(cpus):.2f} s CPU")
        total, cpu, saving, n_figures = _in_process(db, Path(tmp) / "in-process")
        print(f"survey() in-process: {total:.2f} s wall, {cpu:.2f} s CPU, of which saving {n_figures} figures "
              f"(PNG + SVG) {saving:.2f} s CPU ({100 * saving / cpu:.0f} %)")
        print(f"load after: {_load()}")
        if args.compare is not None:
            print(f"comparing {out} with {args.compare}:")
            if not _compare(out, args.compare):
                print("CSV tables differ")
                sys.exit(1)


if __name__ == "__main__":
    main()
