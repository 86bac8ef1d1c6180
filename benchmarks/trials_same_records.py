"""Do two checkouts read every record of a file the same? (a check for reader changes)

Reads FILE with ``TrialReader`` once with each checkout's ``src`` on ``PYTHONPATH`` (a fresh
process each) and compares, record by record, everything the store would keep: every column
of ``record_columns`` (normalised fields, raw JSON, source, as-of date, record hash), the whole
``Trial`` (``model_dump``) and every problem reported. Prints "identical records for N of N"
or the first differences. Labels: see ``trials_same_labels.py``.

    NEUROMODMAP_DATA=../shared/data python benchmarks/trials_same_records.py \\
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
import hashlib, json, sys
from neuromodmap.trials.io import TrialReader
from neuromodmap.trials.store import record_columns
path, out = sys.argv[1], sys.argv[2]
problems = []
recs = list(TrialReader(path, problems=problems))
cols = record_columns(recs, path, None)
names = list(cols)
rows = []
for i, rec in enumerate(recs):
    row = {n: cols[n][i] for n in names}
    blob = json.dumps([row, rec.trial.model_dump()], default=str, sort_keys=True, ensure_ascii=False)
    rows.append([rec.trial.registry_id, hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest(), blob[:4000]])
with open(out, "w", encoding="utf-8") as fh:
    json.dump({"columns": names, "rows": rows, "problems": [p.model_dump() for p in problems]}, fh)
"""


def _read(src: str, path: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": src}
    subprocess.run([sys.executable, "-c", _CHILD, str(path), str(out)], env=env, check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the src folder of the reference checkout")
    parser.add_argument("--after", required=True, help="the src folder of the changed checkout")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.files:
            a = _read(str(Path(args.before).resolve()), path, Path(tmp) / "a.json")
            b = _read(str(Path(args.after).resolve()), path, Path(tmp) / "b.json")
            same = sum(x[:2] == y[:2] for x, y in zip(a["rows"], b["rows"], strict=False))
            print(f"{path.name}: identical records for {same:,} of {len(a['rows']):,} "
                  f"({len(a['rows']):,} before, {len(b['rows']):,} after); columns same: {a['columns'] == b['columns']}; "
                  f"problems identical: {a['problems'] == b['problems']} ({len(a['problems'])} before, {len(b['problems'])} after)")
            for x, y in zip(a["rows"], b["rows"], strict=False):
                if x[:2] != y[:2]:
                    print(f"  first difference: {x[0]} / {y[0]}\n    before {x[2][:400]}\n    after  {y[2][:400]}")
                    break


if __name__ == "__main__":
    main()
