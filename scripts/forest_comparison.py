"""Our forest plots for the comparison with metafor's forest() in docs/evidence.md.

Run from the repository root:
    PYTHONPATH=src NEUROMODMAP_DATA=/path/to/shared/data python scripts/forest_comparison.py
    Rscript scripts/forest_comparison.R
Writes docs/img/forest_neuromodmap_{bcg,multilevel}.png and the inputs the R script reads
(build/forest_compare_{bcg,multilevel}.csv). Data: dat.bcg (shared/data/meta/metafor_reference.json)
as risk ratios of TB cases (displayed as "responders" so that the arms read TMS against sham, as in
the test sheets), and the first 7 studies of dat.assink2016
(tests/evidence/reference/metafor_rma_mv.json), pooled with the three-level model.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd

from neuromodmap.evidence.pipeline import run_meta

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
BUILD = ROOT / "build"  # the R script's inputs (git-ignored)
DATA = Path(os.environ.get("NEUROMODMAP_DATA", ROOT.parent / "shared" / "data"))
Z975 = 1.959963984540054


def bcg_sheet(path: Path) -> Path:
    ref = json.loads((DATA / "meta" / "metafor_reference.json").read_text())
    rows = [{"study_id": f"bcg{i + 1}", "citation": f"{author} {year}", "modality": "tms", "indication": "other",
             "sham_type": "sham_coil", "active_n": tpos + tneg, "active_responders": tpos,
             "control_n": cpos + cneg, "control_responders": cpos}
            for i, (author, year, tpos, tneg, cpos, cneg, _ablat, _alloc) in enumerate(ref["dat.bcg"]["rows"])]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def assink_sheet(path: Path, studies: int = 7) -> Path:
    ref = json.loads((ROOT / "tests" / "evidence" / "reference" / "metafor_rma_mv.json").read_text())
    case = next(c for c in ref["cases"] if c["name"] == "assink2016")
    keep = sorted(set(case["study"]), key=int)[:studies]
    rows = []
    for s, y, v in zip(case["study"], case["yi"], case["vi"], strict=True):
        if s in keep:
            se = math.sqrt(v)
            rows.append({"study_id": f"assink{s}", "citation": f"Study {s}", "modality": "tms",
                         "indication": "other", "sham_type": "sham_coil", "effect": y,
                         "effect_ci_lb": y - Z975 * se, "effect_ci_ub": y + Z975 * se})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    tmp = BUILD / "forest_sheets"
    tmp.mkdir(parents=True, exist_ok=True)
    for name, sheet, measure in (("bcg", bcg_sheet(tmp / "bcg.csv"), "RR"),
                                 ("multilevel", assink_sheet(tmp / "assink.csv"), "SMD")):
        report = run_meta(sheet, measure=measure, by=None)
        report.figures["forest"].savefig(IMG / f"forest_neuromodmap_{name}.png", dpi=110, bbox_inches="tight")
        eff = report.effects
        pd.DataFrame({"study": eff["study_id"], "label": eff["study"], "effect": range(1, len(eff) + 1),
                      "yi": eff["yi"], "vi": eff["vi"]}).to_csv(BUILD / f"forest_compare_{name}.csv", index=False)
        print(f"wrote {IMG / f'forest_neuromodmap_{name}.png'}")
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
