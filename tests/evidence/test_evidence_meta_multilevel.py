"""`evidence meta` with dependent effects, every `--by` value, and the forest plot's structure.

Dependent effects: dat.assink2016 (100 effects in 17 studies; metadat) written as an extraction sheet
of reported effects with 95% CIs (yi +/- 1.959964 sqrt(vi), so the sheet gives back vi), with its
type of delinquency in the `subgroup` column. The expected numbers are R metafor 3.8-1's
rma.mv(yi, vi, random = ~ 1 | study/esid) from tests/evidence/reference/metafor_rma_mv.json
(scripts/metafor_reference_rma_mv.R). The `--by` and forest tests use dat.bcg (counts, from
shared/data/meta/metafor_reference.json).
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.evidence import escalc, rma
from neuromodmap.evidence._plots import forest
from neuromodmap.evidence.pipeline import GROUPABLE, run_meta

runner = CliRunner()
REFERENCE = json.loads((Path(__file__).parent / "reference" / "metafor_rma_mv.json").read_text())
Z975 = 1.959963984540054


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(c for r in rows for c in r)))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def assink_sheet(tmp_path_factory):
    case = next(c for c in REFERENCE["cases"] if c["name"] == "assink2016")
    rows = []
    for s, y, v, d in zip(case["study"], case["yi"], case["vi"], REFERENCE["assink2016_deltype"]["deltype"],
                          strict=True):
        se = math.sqrt(v)
        rows.append({"study_id": f"assink{s}", "citation": f"Study {s}", "modality": "tms", "indication": "other",
                     "sham_type": "sham_coil", "subgroup": d, "effect": repr(y), "effect_ci_lb": repr(y - Z975 * se),
                     "effect_ci_ub": repr(y + Z975 * se)})
    return _write_csv(tmp_path_factory.mktemp("assink") / "assink.csv", rows)


@pytest.fixture(scope="module")
def bcg(data_root):
    return json.loads((data_root / "meta" / "metafor_reference.json").read_text())["dat.bcg"]


# the two-valued code each --by column takes in the dat.bcg sheet: random allocation -> first, else second
SPLITS = {"modality": ("tms", "tdcs"), "target": ("dlpfc_left", "m1"), "indication": ("depression", "pain"),
          "design": ("rct_parallel", "nonrandomised_controlled"), "sham_type": ("sham_coil", "tilted_coil"),
          "outcome_measure": ("HAM-D", "MADRS"), "condition": ("treatment-resistant depression", "bipolar depression"),
          "subgroup": ("Tier 1", "Tier 2")}
SAME = {"modality": "tms", "target": "dlpfc_left", "indication": "depression", "design": "rct_parallel",
        "sham_type": "sham_coil", "outcome_measure": "HAM-D", "condition": "treatment-resistant depression",
        "subgroup": "Tier 1"}


def _bcg_sheet(path, bcg, split: str | None):
    rows = []
    for i, (author, year, tpos, tneg, cpos, cneg, _ablat, alloc) in enumerate(bcg["rows"]):
        row = {"study_id": f"bcg{i + 1}", "citation": f"{author} {year}", **SAME,
               "active_n": tpos + tneg, "active_responders": tpos, "control_n": cpos + cneg,
               "control_responders": cpos}
        if split:
            row[split] = SPLITS[split][0 if alloc == "random" else 1]
        rows.append(row)
    return _write_csv(path, rows)


def _ok(result) -> str:
    """The command's output with rich's line wrapping undone."""
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


# --- three-level pooling through the CLI ----------------------------------------------
def test_cli_pools_dependent_effects_with_the_three_level_model(tmp_path, assink_sheet):
    out = tmp_path / "out"
    result = runner.invoke(app, ["evidence", "meta", str(assink_sheet), "-m", "SMD", "--by", "none", "-o", str(out)])
    output = _ok(result)
    ref = next(c for c in REFERENCE["cases"] if c["name"] == "assink2016")["fits"]["REML_z"]
    pooled = pd.read_csv(out / "pooled.csv").iloc[0]
    assert pooled["model"] == "three-level" and pooled["k"] == 100 and pooled["studies"] == 17
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"),
                         ("pval", "pval"), ("q", "QE")):
        assert pooled[ours] == pytest.approx(ref[theirs], rel=1e-5), ours
    assert [pooled["sigma2_between"], pooled["sigma2_within"]] == pytest.approx(ref["sigma2"], rel=1e-4)
    assert "Multivariate Meta-Analysis Model (k = 100; method: REML)" in output
    assert "pooled with a three-level model" in output
    methods = (out / "methods.md").read_text()
    assert "three-level random-effects model" in methods and "97 of the 100 effects" in methods
    assert "Van den Noortgate" in methods
    assert not (out / "small_study_effects.csv").exists()   # Egger/trim-and-fill assume independence
    page = (out / "report.html").read_text()
    assert f"{ref['sigma2'][0]:.3f} + {ref['sigma2'][1]:.3f} (studies + effects)" in page


def test_cli_knha_becomes_metafor_t_test_for_three_level(tmp_path, assink_sheet):
    out = tmp_path / "out"
    result = runner.invoke(app, ["evidence", "meta", str(assink_sheet), "-m", "SMD", "--by", "none",
                                 "--test", "knha", "-o", str(out)])
    output = _ok(result)
    ref = next(c for c in REFERENCE["cases"] if c["name"] == "assink2016")["fits"]["REML_t"]
    pooled = pd.read_csv(out / "pooled.csv").iloc[0]
    assert pooled["tval"] == pytest.approx(ref["zval"], rel=1e-5)
    assert [pooled["ci_lb"], pooled["ci_ub"]] == pytest.approx([ref["ci_lb"], ref["ci_ub"]], rel=1e-5)
    assert "test='t'" in output


def test_subgroups_of_dependent_effects_match_metafor(tmp_path, assink_sheet):
    report = run_meta(assink_sheet, measure="SMD", by="subgroup", figures=False)
    ref = REFERENCE["assink2016_deltype"]["fits"]
    assert set(report.result.fits) == set(ref)
    for name, fit in report.result.fits.items():
        r = ref[name]
        assert fit.k == r["k"]
        assert fit.estimate == pytest.approx(r["beta"], rel=1e-5), name
        assert float(np.atleast_1d(fit.se)[0]) == pytest.approx(r["se"], rel=1e-5), name
        if hasattr(fit, "sigma2"):
            np.testing.assert_allclose(fit.sigma2, r["sigma2"], rtol=1e-4, atol=1e-8)
        else:
            # 'covert' is one study: metafor fixes sigma²(study) at 0, leaving the univariate model
            assert r["sigma2"][0] == 0 and fit.tau2 == pytest.approx(r["sigma2"][1], rel=1e-4)
    text = str(report.result)
    assert "Q_between(df = 2)" in text


# --- every --by value the help lists -----------------------------------------------------
def _help_by_values() -> list[str]:
    text = re.sub(r"[│\s]+", " ", runner.invoke(app, ["evidence", "meta", "--help"]).output)
    listed = re.search(r"--by <str> Subgroup column \(([^)]*)\)", text)
    assert listed, text
    return [v.strip() for v in listed.group(1).split(",")]


def test_help_lists_every_groupable_column():
    assert _help_by_values() == list(GROUPABLE)


@pytest.mark.parametrize("by", list(GROUPABLE))
def test_every_by_value_through_the_cli(tmp_path, bcg, by):
    assert by in _help_by_values()
    sheet = _bcg_sheet(tmp_path / "bcg.csv", bcg, by)
    out = tmp_path / "out"
    result = runner.invoke(app, ["evidence", "meta", str(sheet), "-m", "RR", "--by", by, "-o", str(out)])
    output = _ok(result)
    pooled = pd.read_csv(out / "pooled.csv", keep_default_na=False).set_index("subgroup")
    first, second = SPLITS[by]
    assert set(pooled.index) == {first, second, "overall"}
    # each subgroup is the model of exactly its studies (random allocation or not)
    rows = bcg["rows"]
    for code, want in ((first, "random"), (second, None)):
        sel = [r for r in rows if (r[7] == "random") == (want == "random")]
        es = escalc("RR", ai=[r[2] for r in sel], bi=[r[3] for r in sel], ci=[r[4] for r in sel],
                    di=[r[5] for r in sel])
        assert pooled.loc[code, "k"] == len(sel)
        assert pooled.loc[code, "estimate"] == pytest.approx(rma(es.yi, es.vi).estimate, rel=1e-6)
    # the whole data set is metafor's REML fit of dat.bcg
    assert pooled.loc["overall", "estimate"] == pytest.approx(bcg["RR_REML"]["est"], abs=5e-5)  # printed to 4 dp
    assert "Test for Subgroup Differences: Q_between(df = 1)" in output


@pytest.mark.parametrize("by", list(GROUPABLE))
def test_a_by_value_shared_by_every_row_gives_one_model(tmp_path, bcg, by):
    sheet = _bcg_sheet(tmp_path / "bcg.csv", bcg, None)
    out = tmp_path / "out"
    result = runner.invoke(app, ["evidence", "meta", str(sheet), "-m", "RR", "--by", by, "-o", str(out)])
    output = _ok(result)
    pooled = pd.read_csv(out / "pooled.csv")
    assert list(pooled["subgroup"]) == ["overall"]
    assert pooled["estimate"].iloc[0] == pytest.approx(bcg["RR_REML"]["est"], abs=5e-5)  # printed to 4 dp
    assert "Q_between" not in output and "nan" not in output
    assert f"every row has {by} = " in output
    if by == "target":   # the per-target table for `connectome map --effects` is still written
        assert len(pd.read_csv(out / "by_target.csv").query("target == 'dlpfc_left'")) == 1


# --- the forest plot's structure ----------------------------------------------------------
def _squares(fig):
    ax = fig.axes[0]
    return [line for line in ax.get_lines() if line.get_gid() == "study-square"]


def _texts(fig):
    return [t.get_text() for t in fig.axes[0].texts] + [t.get_text() for t in fig.texts]


def test_forest_squares_have_area_proportional_to_weight(tmp_path, bcg):
    report = run_meta(_bcg_sheet(tmp_path / "bcg.csv", bcg, None), measure="RR", by=None)
    fig = report.figures["forest"]
    squares = _squares(fig)
    weights = report.result.weights
    assert len(squares) == len(weights) == 13
    ys = [sq.get_xdata()[0] for sq in squares]
    np.testing.assert_allclose(ys, report.result.yi)        # drawn in the fit's order
    area = np.array([sq.get_markersize() ** 2 for sq in squares])
    np.testing.assert_allclose(area / weights, (area / weights)[0], rtol=1e-12)
    texts = _texts(fig)
    # favours labels from the sheet's arms: RR of responders above 1 favours the active (TMS) arm
    assert "← Favours sham" in texts and "Favours TMS →" in texts
    assert any(t.startswith("    95% prediction interval") for t in texts)
    pi = [line for line in fig.axes[0].get_lines() if line.get_gid() == "prediction-interval"]
    assert len(pi) == 1
    np.testing.assert_allclose(pi[0].get_xdata(), [report.result.pi_lb, report.result.pi_ub])
    # one model: no subgroup block, no duplicated pooled row, no subgroup test
    assert sum(t.startswith("RE model") for t in texts) == 1
    assert not any(t.startswith("Overall") for t in texts)
    assert not any("subgroup differences" in t for t in texts)


def test_forest_with_one_subgroup_draws_the_model_once(bcg):
    fit = rma(*_yi_vi(bcg), subgroup=["tms"] * 13, measure="RR")
    fig = forest(fit)
    texts = _texts(fig)
    assert sum(t.startswith(("RE model", "Overall")) for t in texts) == 1
    assert "tms" not in texts and not any("subgroup differences" in t for t in texts)
    assert "Q_between" not in str(fit)


def _yi_vi(bcg):
    rows = bcg["rows"]
    es = escalc("RR", ai=[r[2] for r in rows], bi=[r[3] for r in rows], ci=[r[4] for r in rows],
                di=[r[5] for r in rows])
    return es.yi.to_numpy(), es.vi.to_numpy()


def test_forest_with_two_subgroups_shows_each_and_the_test(tmp_path, bcg):
    report = run_meta(_bcg_sheet(tmp_path / "bcg.csv", bcg, "design"), measure="RR", by="design")
    texts = _texts(report.figures["forest"])
    assert "rct_parallel" in texts and "nonrandomised_controlled" in texts
    assert sum(t.startswith("Overall") for t in texts) == 1
    assert any(t.startswith("Test for subgroup differences: Q = ") and "df = 1" in t for t in texts)
    assert len(_squares(report.figures["forest"])) == 13


def test_forest_groups_a_studys_dependent_effects(assink_sheet):
    report = run_meta(assink_sheet, measure="SMD", by=None)
    fig = report.figures["forest"]
    ax = fig.axes[0]
    counts = report.effects["study_id"].value_counts()
    bands = [p for p in ax.patches if p.get_gid() == "study-group"]
    assert len(bands) == int((counts > 1).sum()) == 14
    texts = _texts(fig)
    # one header per study with several effects, its effects indented beneath it
    for sid in counts[counts > 1].index:
        label = report.effects.loc[report.effects["study_id"] == sid, "study"].iloc[0].split(": ")[0]
        assert texts.count(label) == 1
    assert sum(t.startswith("    row ") for t in texts) == int(counts[counts > 1].sum())
    squares = _squares(fig)
    area = np.array([sq.get_markersize() ** 2 for sq in squares])
    weights = report.result.weights
    assert len(squares) == 100
    # squares are drawn study by study: compare areas and weights as sets
    np.testing.assert_allclose(np.sort(area / area.max()), np.sort(weights / weights.max()), rtol=1e-12)
    assert any(t.startswith("Three-level model (REML), k = 100 in 17 studies") for t in texts)


def test_cli_robust_gives_metafor_cluster_robust_inference(tmp_path, assink_sheet, bcg):
    out = tmp_path / "out"
    output = _ok(runner.invoke(app, ["evidence", "meta", str(assink_sheet), "-m", "SMD", "--by", "none", "--robust",
                                     "-o", str(out)]))
    # metafor: robust(rma.mv(yi, vi, random = ~ 1 | study/esid, data = dat.assink2016), cluster = study)
    ref = next(c for c in REFERENCE["cases"] if c["name"] == "assink2016")["fits"]["REML_z"]["robust_cr1"]
    pooled = pd.read_csv(out / "pooled.csv").iloc[0]
    assert pooled["vcov"] == "CR1"
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("tval", "tval"), ("pval", "pval"),
                         ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub")):
        assert pooled[ours] == pytest.approx(ref[theirs], rel=1e-5), ours
    assert "Cluster-robust inference (CR1); t-tests with df = 16" in output
    methods = (out / "methods.md").read_text()
    assert "cluster-robust (CR1, clustered by study)" in methods and "Hedges LV, Tipton E" in methods
    # one row per study: nothing to make robust, said so
    sheet = _bcg_sheet(tmp_path / "bcg.csv", bcg, None)
    output = _ok(runner.invoke(app, ["evidence", "meta", str(sheet), "-m", "RR", "--by", "none", "--robust",
                                     "-o", str(tmp_path / "o2")]))
    assert "--robust: every study contributes one row" in output


def test_methods_paragraph_names_the_measure_as_a_phrase(assink_sheet):
    # the measure's name used to be pluralised by appending "s": "standardised mean difference (Hedges' g)s"
    text = run_meta(assink_sheet, measure="SMD", by=None, figures=False).methods_paragraph()
    assert "The effect size was the standardised mean difference (Hedges' g) (SMD)" in text
    assert "exact small-sample correction" in text
    assert ")s " not in text
