"""Pooling by stimulation target and effect vs target connectivity on the shipped real data.

Data: Gaynes BN et al. Nonpharmacologic Interventions for Treatment-Resistant Depression in Adults.
AHRQ Comparative Effectiveness Review No. 33, 2011 (Figure 13 text: each trial's RR and 95% CI). The
stimulation site of 4 of its 12 trials is the one the trial's own abstract names (quoted in
``src/neuromodmap/evidence/data/SOURCES.md`` and ``datasets.TARGET_SOURCES``): Garcia-Toro et al. 2001,
Holtzheimer et al. 2004 and O'Reardon et al. 2007 left DLPFC; Kauffmann et al. 2004 right DLPFC.

Reference numbers are R metafor 3.8-1's, from ``tests/evidence/reference/gaynes2011_metafor.json``
(``scripts/metafor_reference_evidence.R``): the per-target REML fit and the meta-regression of log RR on
each site's connectivity to the Fox 2012 sgACC seed, whose inputs are in ``gaynes2011_target_sites.csv``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.evidence import MetaAnalysisError, datasets
from neuromodmap.evidence._bytarget import TARGET_TABLE_COLUMNS, pool_by_target
from neuromodmap.vocabulary import TARGETS, compile_synonyms

REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "gaynes2011_metafor.json").read_text())
runner = CliRunner()


def _close(a, b, tol):
    np.testing.assert_allclose(np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float)),
                               atol=tol, rtol=0)


def test_each_target_is_what_the_quoted_abstract_says():
    sources = re.sub(r"\s+", " ", datasets.sources_text())
    for name in datasets.DATASETS:
        sheet = datasets.load_dataset(name)
        placed = dict(sheet.dropna(subset=["target"])[["study_id", "target"]].values)
        expected = {sid: code for sid, code, _, _ in datasets.TARGET_SOURCES if sid in set(sheet["study_id"])}
        assert placed == expected, name
    for sid, code, citation, quote in datasets.TARGET_SOURCES:
        assert quote in sources, sid  # the sentence is quoted in SOURCES.md as it was read
        other = {"dlpfc_left": "dlpfc_right", "dlpfc_right": "dlpfc_left"}[code]
        # the quoted sentence names the coded side and region, and not the other side
        assert compile_synonyms(TARGETS[code].synonyms).search(quote), (sid, code, quote)
        assert not compile_synonyms(TARGETS[other].synonyms).search(quote), (sid, other, quote)
        assert citation.split(",")[0].split(" ")[0].replace("-", "").replace("'", "") in sid


def test_pooled_by_target_reproduces_metafor_and_keeps_single_and_unplaced_trials(data_root):
    table = datasets.pooled_by_target("gaynes2011_fig13", data_dir=data_root)
    assert list(table.columns) == TARGET_TABLE_COLUMNS
    assert table.attrs["provenance"].citation.startswith("Gaynes BN")
    rows = table.set_index("target")
    left = rows.loc["dlpfc_left"]
    ref = REF["fig13"]["by_target"]["dlpfc_left"]
    assert left.k == ref["k"] == 3
    _close([left.estimate, left.se, left.ci_lb, left.ci_ub, left.tau2], [ref["beta"], ref["se"], ref["ci_lb"],
                                                                         ref["ci_ub"], ref["tau2"]], 1e-4)
    assert np.isclose(left.estimate_bt, np.exp(ref["beta"]), atol=1e-4)
    # a target with one trial carries that trial's own RR and CI (Kauffmann 2004: 1.43, 0.41 to 4.99)
    right = rows.loc["dlpfc_right"]
    assert right.model == "single study" and right.k == 1
    assert (round(right.estimate_bt, 2), round(right.ci_lb_bt, 2), round(right.ci_ub_bt, 2)) == (1.43, 0.41, 4.99)
    # the eight trials without a site are counted, not pooled
    assert rows.loc["", "k"] == 8 and not rows.loc["", "placed"] and np.isnan(rows.loc["", "estimate"])
    # sites: Fox 2012's BA9 coordinate for the left DLPFC, the right rostral middle frontal centroid
    assert (left.catalogue_id, left.x, left.y, left.z) == ("dlpfc_ba9_left", -36, 39, 43)
    assert right.catalogue_id == "dlpfc_rmfg_right" and right.x > 0
    # Figure 10 (Tier 1 only): two of its left-DLPFC trials, pooled as metafor does
    left10 = datasets.pooled_by_target("gaynes2011_fig10", data_dir=data_root).set_index("target").loc["dlpfc_left"]
    ref10 = REF["fig10"]["by_target"]["dlpfc_left"]
    assert left10.k == ref10["k"] == 2
    _close([left10.estimate, left10.se, left10.tau2], [ref10["beta"], ref10["se"], ref10["tau2"]], 1e-4)


@pytest.fixture(scope="module")
def connectome_400(data_root):
    from neuromodmap.connectome import load_connectome

    return load_connectome("enigma-schaefer400", data_root)


def test_target_metaregression_reproduces_metafor(connectome_400, data_root):
    sites = pd.read_csv(REF_DIR / "gaynes2011_target_sites.csv")
    mr = datasets.target_metaregression("gaynes2011_fig13", connectome=connectome_400, data_dir=data_root,
                                        figure=False)
    got = mr.table()
    # the inputs R saw are still what the code computes
    assert list(got["study"]) == list(sites["study"]) == REF["target_metareg"]["study"]
    _close(got["connectivity"], sites["connectivity"], 1e-12)
    _close(got[["yi", "vi"]].to_numpy(), sites[["yi", "vi"]].to_numpy(), 1e-12)
    ref = REF["target_metareg"]["reml"]
    fit = mr.fit
    assert fit.k == ref["k"] == 4
    _close(fit.beta, ref["beta"], 1e-4)
    _close(fit.ses, ref["se"], 1e-4)
    _close(fit.pvals, ref["pval"], 1e-4)
    _close([fit.tau2, fit.q, fit.qm, fit.qm_p], [ref["tau2"], ref["q"], ref["qm"], ref["qm_p"]], 1e-4)
    # two distinct sites only (three left-DLPFC trials share the BA9 coordinate): the slope is a left-vs-right
    # contrast, not a gradient, and its CI spans zero widely
    assert got["connectivity"].nunique() == 2
    _close([fit.ci_lbs[1], fit.ci_ubs[1]], [ref["ci_lb"][1], ref["ci_ub"][1]], 1e-3)
    assert fit.ci_lbs[1] < 0 < fit.ci_ubs[1]


def test_pool_by_target_refuses_bad_tables():
    effects = pd.DataFrame({"study": ["a", "b"], "yi": [0.1, 0.2], "vi": [0.01, 0.02]})
    with pytest.raises(MetaAnalysisError, match="no 'target' column"):
        pool_by_target(effects, measure="RR", catalogue=pd.DataFrame(columns=["id", "target", "x", "y", "z"]))
    effects["target"] = ["dlpfc_left", "nowhere"]
    with pytest.raises(MetaAnalysisError, match="unknown target code.*nowhere"):
        pool_by_target(effects, measure="RR", catalogue=pd.DataFrame(columns=["id", "target", "x", "y", "z"]))


def test_cli_prints_and_writes_the_per_target_table(tmp_path):
    out = tmp_path / "by_target.csv"
    result = runner.invoke(app, ["evidence", "datasets", "gaynes2011_fig13", "--by-target", "-o", str(out)])
    assert result.exit_code == 0, result.output
    ref = REF["fig13"]["by_target"]["dlpfc_left"]  # metafor's REML fit, back-transformed
    rr = f"RR {np.exp(ref['beta']):.2f} ({np.exp(ref['ci_lb']):.2f} to {np.exp(ref['ci_ub']):.2f})"
    assert f"dlpfc_left     k=3   {rr}, REML random effects" in result.output
    assert "dlpfc_right    k=1   RR 1.43 (0.41 to 4.99), single study" in result.output
    assert list(pd.read_csv(out, keep_default_na=False)["target"]) == ["dlpfc_left", "dlpfc_right", ""]
