"""What the registry's arms change in the trial classifier, on every structured real file.

    NEUROMODMAP_DATA=/work/shared/data .venv/bin/python benchmarks/classifier_arms.py

Each record is classified twice: as imported, and with its ``arm_groups`` removed (the
classifier before arms were used: text and intervention types only). Prints, per file, the
records, how many carry arms, the neuromodulation trials before and after, and every record
whose modalities differ or whose evidence names an arm role. The hand-checked results are
pinned in ``tests/trials/test_trials_arms.py``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from neuromodmap.trials.classify import classify
from neuromodmap.trials.io import read_trials

#: the structured inputs in $NEUROMODMAP_DATA/trials that can carry arm groups (API v2, legacy
#: XML, ctrdata); the website CSVs, ICTRP exports and the 2018 text corpus carry none
FILES = [
    "ctgov_v2_json_download_herniated_disc_koy570/ctg-studies.json.gz",
    "ctgov_legacy_xml_allpublicxml_subset_reesewang25/AllPublicXML_subset_NCT0000xxxx_NCT0046xxxx_NCT0049xxxx.tar.gz",
    "ctgov_v2_json_zip_and_csv_erectile_dysfunction_marcmorcos/ctg-studies.json.zip",
    "ctgov_v2_json",
    "ctgov_legacy_xml",
    "ctrdata_demo_sqlite_eu_registers_rfhb/demo_records_json_text.ndjson.gz",
]


def main() -> int:
    root = Path(os.environ.get("NEUROMODMAP_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "trials"
    totals = [0, 0, 0, 0]
    for name in FILES:
        path = root / name
        paths = sorted(path.iterdir()) if path.is_dir() else [path]
        n = with_arms = before = after = 0
        start = time.perf_counter()
        lines = []
        for p in paths:
            for record in read_trials(p):
                trial = record.trial
                n += 1
                with_arms += bool(trial.arm_groups)
                now = classify(trial)
                then = classify(trial.model_copy(update={"arm_groups": []}))
                before += then.neuromod
                after += now.neuromod
                roles = [f"{e.value}: {e.text}" for e in now.evidence if e.label == "arm_role"]
                if now.modalities != then.modalities or roles:
                    lines.append(f"  {trial.registry_id}  before={','.join(then.modalities) or '-'}  "
                                 f"after={','.join(now.modalities) or '-'}  {trial.title[:60]!r}  {roles}")
        print(f"{name}: {n:,} records, {with_arms:,} with arms; neuromodulation trials {before} without "
              f"arms -> {after} with arms ({time.perf_counter() - start:.1f} s)")
        print("\n".join(lines))
        for i, v in enumerate((n, with_arms, before, after)):
            totals[i] += v
    print(f"all: {totals[0]:,} records, {totals[1]:,} with arms; neuromodulation trials {totals[2]} -> {totals[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
