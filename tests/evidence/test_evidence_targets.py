"""Per-study targets and sites in the extraction sheet, pooling by target, and the connectivity meta-regression.

Effect sizes are the shipped Gaynes 2011 (AHRQ CER 33, Figure 13) rows. The connectivity tests check the
wiring (sites -> site_to_seed -> rma with mods) against the two functions called directly; where a test
places studies on coordinates the data set does not give, the coordinates are those of the built-in target
catalogue and the test says so: it checks computation, it is not a finding.
"""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.evidence import (
    MetaAnalysisError,
    SheetValidationError,
    connectivity_metaregression,
    datasets,
    rma,
    run_meta,
    validate_rows,
)

runner = CliRunner()


def _sheet(tmp_path, rows, name="sheet.csv"):
    cols = list(dict.fromkeys(c for r in rows for c in r))
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def _gaynes_rows():
    return datasets.load_dataset("gaynes2011_fig13").astype(object).where(lambda f: f.notna(), None).to_dict(
        "records")


# --- sheet validation ---------------------------------------------------------------------------

def test_site_and_effect_cells_are_validated_by_row_and_column(tmp_path):
    rows = _gaynes_rows()[:7]
    rows[0].update(x=-38, y=44, z=None)          # incomplete site
    rows[1].update(x="left", y=44, z=26)         # text in a coordinate
    rows[2].update(x=-38, y=244, z=26)           # outside MNI space
    rows[3].update(target="left cerebellar nucleus X")  # unknown code
    rows[4].update(effect=25.0)                  # outside its CI (0.26 to 20.13)
    path = _sheet(tmp_path, rows)
    with pytest.raises(SheetValidationError) as info:
        run_meta(path, measure="RR", by=None, figures=False)
    found = {(p.row, p.column): p.message for p in info.value.problems}
    assert str(path) in str(info.value)
    assert "a site needs x, y and z" in found[(2, "z")]
    assert "expected a number" in found[(3, "x")]
    assert "100" in found[(4, "y")]
    assert "unknown target" in found[(5, "target")]
    assert "outside its CI" in found[(6, "effect")]
    # the bad cells drop their rows only with --skip-invalid; the other rows are pooled and the skips listed
    report = run_meta(path, measure="RR", by=None, figures=False, skip_invalid=True)
    assert report.overall.k == 2
    assert sum(n.startswith("skipped: row") for n in report.notes) == 5


def test_reported_effects_need_a_ratio_scale_and_a_measure_they_fit(tmp_path):
    rows = _gaynes_rows()[:3]
    rows[0].update(effect=-0.2, effect_ci_lb=-0.5, effect_ci_ub=0.1)
    path = _sheet(tmp_path, rows)
    with pytest.raises(SheetValidationError) as info:
        run_meta(path, measure="RR", by=None, figures=False)
    assert any(p.row == 2 and p.column == "effect" and "ratio" in p.message for p in info.value.problems)
    with pytest.raises(SheetValidationError) as info:
        run_meta(datasets.dataset_path(), measure="PLO", by=None, figures=False)
    assert info.value.problems[0].column == "effect" and "not PLO" in info.value.problems[0].message


def test_good_site_cells_are_kept_as_numbers():
    good, bad = validate_rows([{"study_id": "a", "modality": "rTMS", "target": "left DLPFC", "x": "-38",
                                "y": "44,5", "z": 26}])
    assert not bad and good[0].target == "dlpfc_left" and (good[0].x, good[0].y, good[0].z) == (-38, 44.5, 26)


# --- pooling by target ------------------------------------------------------------------------

def test_meta_by_target_pools_per_target_code(tmp_path):
    rows = [r for r in _gaynes_rows()]
    path = _sheet(tmp_path, rows)
    with pytest.raises(SheetValidationError, match="split by target"):
        run_meta(path, measure="RR", by="target", figures=False)
    report = run_meta(path, measure="RR", by="target", figures=False, skip_invalid=True)
    # four trials carry a target: three left DLPFC (pooled), one right DLPFC (a subgroup of one, not pooled alone)
    assert report.effects["target"].value_counts().to_dict() == {"dlpfc_left": 3, "dlpfc_right": 1}
    assert report.overall.k == 4 and set(report.result.fits) == {"dlpfc_left"}
    left = report.effects["target"] == "dlpfc_left"
    expect = rma(report.effects["yi"][left].to_numpy(), report.effects["vi"][left].to_numpy(), method="REML")
    assert abs(report.result.fits["dlpfc_left"].estimate - expect.estimate) < 1e-12
    # the written by_target.csv keeps the single-study target too
    written = {p.name for p in report.write(tmp_path / "out")}
    assert "by_target.csv" in written
    table = pd.read_csv(tmp_path / "out" / "by_target.csv").set_index("target")
    assert table.loc["dlpfc_left", "k"] == 3 and table.loc["dlpfc_right", "model"] == "single study"


# --- connectivity meta-regression --------------------------------------------------------------

def test_too_few_sites_are_refused_and_named(tmp_path):
    rows = _gaynes_rows()
    for r in rows:
        if r["study_id"] not in ("Kauffmann2004", "OReardon2007"):
            r["target"] = None
    with pytest.raises(MetaAnalysisError, match="at least 3 studies with a target code or x, y, z; 2 of 12"):
        run_meta(_sheet(tmp_path, rows), measure="RR", by=None, figures=False, moderator="connectivity")


@pytest.fixture(scope="module")
def connectome(data_root):
    from neuromodmap.connectome import load_connectome

    return load_connectome("enigma-schaefer400", data_root)


def test_connectivity_metaregression_equals_site_to_seed_then_rma(tmp_path, connectome, data_root):
    from neuromodmap.connectome import SGACC_SEED, site_to_seed, target_catalogue

    # wiring check: the first five studies are placed on five catalogue targets' coordinates (not a finding)
    cat = target_catalogue().drop_duplicates("target").set_index("target")
    codes = ["dlpfc_left", "acc", "insula", "m1", "scc"]
    rows = _gaynes_rows()[:5]
    for r, code in zip(rows, codes, strict=True):
        r["target"] = None
        r["x"], r["y"], r["z"] = (float(v) for v in cat.loc[code, ["x", "y", "z"]])
    rows[4]["x"] = rows[4]["y"] = rows[4]["z"] = None
    rows[4]["target"] = "scc"  # this one through its target code
    path = _sheet(tmp_path, rows)
    report = run_meta(path, measure="RR", by=None, moderator="connectivity", connectome=connectome)
    mr = report.metareg
    assert list(mr.sites["site_source"])[:4] == ["sheet"] * 4 and mr.sites["site_source"][4].startswith("catalogue")
    sites = pd.DataFrame({"id": range(5), "x": [cat.loc[c, "x"] for c in codes], "y": [cat.loc[c, "y"] for c in codes],
                          "z": [cat.loc[c, "z"] for c in codes]})
    direct = site_to_seed(sites, SGACC_SEED, radius=10, connectome=connectome)["connectivity"].to_numpy()
    np.testing.assert_allclose(mr.sites["connectivity"], direct, atol=1e-12)
    fit = rma(report.effects["yi"].to_numpy(), report.effects["vi"].to_numpy(), mods=direct, method="REML")
    np.testing.assert_allclose(mr.fit.beta, fit.beta, atol=1e-10)
    np.testing.assert_allclose(mr.fit.ses, fit.ses, atol=1e-10)
    assert mr.fit.k == 5 and mr.fit.p == 2
    # outputs: bubble plot, tables, methods paragraph and provenance
    written = {p.name for p in report.write(tmp_path / "out")}
    assert {"bubble.png", "bubble.svg", "metaregression.csv", "metaregression_sites.csv"} <= written
    methods = (tmp_path / "out" / "methods.md").read_text()
    assert "Fox et al. (2012)" in methods and "enigma-schaefer400" in methods and "MNI 6, 16, -10" in methods
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Meta-regression on connectivity" in html and "bubble.svg" in html
    assert mr.provenance.extra["connectome"] == "enigma-schaefer400"


def test_same_connectivity_everywhere_is_refused(tmp_path, connectome):
    rows = _gaynes_rows()[:4]
    for r in rows:
        r["target"], r["x"], r["y"], r["z"] = "dlpfc_left", None, None, None
    report = run_meta(_sheet(tmp_path, rows), measure="RR", by=None, figures=False)
    with pytest.raises(MetaAnalysisError, match="same connectivity"):
        connectivity_metaregression(report.effects, connectome=connectome, figure=False)


# --- CLI ------------------------------------------------------------------------------------

def test_cli_runs_the_shipped_dataset_and_reports_problems(tmp_path):
    path = datasets.dataset_path()
    out = tmp_path / "res"
    result = runner.invoke(app, ["evidence", "meta", str(path), "--measure", "RR", "--by", "subgroup", "-o", str(out)])
    assert result.exit_code == 0, result.output
    pooled = pd.read_csv(out / "pooled.csv").set_index("subgroup")
    assert round(pooled.loc["Tier 1", "estimate_bt"], 2) == 2.82
    assert "reported effect and its 95% confidence interval" in (out / "methods.md").read_text()
    result = runner.invoke(app, ["evidence", "meta", str(path), "--measure", "RR", "-o", str(out),
                                 "--moderator", "connectivity"])
    assert result.exit_code == 0, result.output  # four placed trials (SOURCES.md)
    assert "Mixed-Effects Model (k = 4" in result.output
    rows = _gaynes_rows()[:2]
    result = runner.invoke(app, ["evidence", "meta", str(_sheet(tmp_path, rows)), "--measure", "RR", "-o",
                                 str(out), "--moderator", "connectivity"])
    assert result.exit_code == 2 and "at least 3 studies" in result.output
    result = runner.invoke(app, ["evidence", "meta", str(path), "--measure", "RR", "-o", str(out),
                                 "--moderator", "connectivity", "--seed", "6,16"])
    assert result.exit_code == 2 and "three numbers" in result.output
    result = runner.invoke(app, ["evidence", "datasets", "gaynes2011_fig13", "--reproduce"])
    assert result.exit_code == 0, result.output
    assert "overall          k=12  RR 2.18 (1.47 to 3.22)   published 2.18 (1.47 to 3.22)" in result.output
