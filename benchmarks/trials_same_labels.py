"""Do two checkouts label every record of a file the same? (a check for pipeline changes)

Runs ``import_and_classify`` (read, classify, store; with the classification CSV) on FILE once
with each checkout's ``src`` on ``PYTHONPATH``, each in a fresh process and a fresh store, and
compares, record by record, the stored labels (every label column and the evidence) and the
CSV rows. Prints "identical labels for N of N" or the first differences.

    NEUROMODMAP_DATA=../shared/data python benchmarks/trials_same_labels.py \\
        --before ../main/src --after src FILE [FILE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import csv, json, sys
from pathlib import Path
from neuromodmap.trials.pipeline import import_and_classify
from neuromodmap.trials.store import TrialStore
src, work = Path(sys.argv[1]), Path(sys.argv[2])
with TrialStore(work / "t.duckdb") as store:
    stats = import_and_classify(store, [src], csv_output=work / "labels.csv")
    df = store.labels_df().drop(columns=["classifier_version", "classified_at"])
labels = {r["registry_id"]: json.dumps(r, default=str, sort_keys=True)
          for r in json.loads(df.to_json(orient="records"))}
with open(work / "labels.csv", newline="", encoding="utf-8") as fh:
    rows = list(csv.reader(fh))
json.dump({"labels": labels, "rows": rows, "parallel": stats.get("parallel")}, open(work / "out.json", "w"))
"""


def run(src: str, path: Path, work: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()), NEUROMODMAP_NO_PROGRESS="1")
    subprocess.run([sys.executable, "-c", _CHILD, str(path), str(work)], env=env, check=True)
    return json.loads((work / "out.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the src folder of the reference checkout")
    parser.add_argument("--after", required=True, help="the src folder of the changed checkout")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    ok = True
    for path in args.files:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "a").mkdir()
            (Path(tmp) / "b").mkdir()
            a = run(args.before, path, Path(tmp) / "a")
            b = run(args.after, path, Path(tmp) / "b")
        la, lb = a["labels"], b["labels"]
        same = sum(1 for k in la if lb.get(k) == la[k])
        n = max(len(la), len(lb))
        rows_same = a["rows"] == b["rows"]
        print(f"{path.name}: identical labels for {same:,} of {n:,} stored trials "
              f"({len(la):,} before, {len(lb):,} after); CSV rows identical: {rows_same} "
              f"({len(a['rows']) - 1:,} rows); two processes before/after: {a['parallel']}/{b['parallel']}")
        diff = [k for k in sorted(set(la) | set(lb)) if la.get(k) != lb.get(k)]
        for k in diff[:5]:
            print(f"  {k}: before {la.get(k)}\n  {' ' * len(k)}  after  {lb.get(k)}")
        ok = ok and not diff and rows_same
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
