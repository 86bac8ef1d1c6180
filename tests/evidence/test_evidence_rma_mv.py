"""rma_mv (three-level model) and robust() against R metafor 3.8-1 and clubSandwich.

The expected values are metafor's own output: ``scripts/metafor_reference_rma_mv.R`` fits
``rma.mv(yi, vi, mods, random = ~ 1 | study/effect)`` on metadat's dat.konstantopoulos2011,
dat.assink2016 and dat.bornmann2007 (REML and ML, z and t tests), with ``robust(fit, cluster = study)``
(CR1) and ``robust(..., clubSandwich = TRUE)`` (CR2), and stores data and results in
tests/evidence/reference/metafor_rma_mv.json. Tolerances as issue 17: 1e-5 relative on estimates,
SEs, CIs and statistics, 1e-4 relative on sigma².
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neuromodmap.evidence import MetaAnalysisError, rma_mv, robust

REFERENCE = json.loads((Path(__file__).parent / "reference" / "metafor_rma_mv.json").read_text())
CASES = [(case, key) for case in REFERENCE["cases"] for key in case["fits"]]
IDS = [f"{case['name']}-{key}" for case, key in CASES]


def _close(ours, theirs, rtol, what):
    ours = np.atleast_1d(np.asarray(ours, float))
    theirs = np.atleast_1d(np.asarray(theirs, float))
    assert ours.shape == theirs.shape, what
    # p-values far below 1e-10 are compared on an absolute scale
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-12, err_msg=what)


def _fit(case, key):
    X = np.column_stack(case["X"])
    method, test = key.split("_")
    mods = X[:, 1:] if X.shape[1] > 1 else None
    return rma_mv(case["yi"], case["vi"], study=case["study"], mods=mods, method=method, test=test)


def test_reference_covers_the_issue():
    names = {c["name"] for c in REFERENCE["cases"]}
    assert {"konstantopoulos2011", "konstantopoulos2011_year", "assink2016", "assink2016_deltype"} <= names
    assert {k for c in REFERENCE["cases"] for k in c["fits"]} == {"REML_z", "REML_t", "ML_z", "ML_t"}
    assert REFERENCE["metafor"].startswith("3.")


@pytest.mark.parametrize(("case", "key"), CASES, ids=IDS)
def test_rma_mv_matches_metafor(case, key):
    ref = case["fits"][key]
    fit = _fit(case, key)
    assert fit.k == ref["k"] and fit.p == ref["p"]
    _close(fit.sigma2, ref["sigma2"], 1e-4, "sigma2")
    for ours, theirs in (("beta", "beta"), ("se", "se"), ("zval", "zval"), ("pval", "pval"),
                         ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"), ("QE", "QE"), ("QE_p", "QEp"),
                         ("QM", "QM"), ("QM_p", "QMp"), ("loglik", "logLik")):
        _close(getattr(fit, ours), ref[theirs], 1e-5, ours)
    assert fit.QE_df == ref["QEdf"]
    for name in ("deviance", "AIC", "BIC"):
        _close(fit.fit_stats[name], ref[name], 1e-5, name)
    if key.endswith("_t"):
        # metafor's dfs = "residual": t tests and F(m, k - p)
        assert fit.ddf == fit.k - fit.p == np.atleast_1d(ref["ddf"])[0]
        assert list(fit.QM_df) == ref["QMdf"]
    else:
        assert fit.ddf is None and fit.QM_df[0] == ref["QMdf"][0]
    if fit.int_only:
        assert fit.estimate == pytest.approx(ref["beta"], rel=1e-5)


@pytest.mark.parametrize(("case", "key"), CASES, ids=IDS)
@pytest.mark.parametrize("kind", ["robust_cr1", "robust_cr2"])
def test_robust_matches_metafor(case, key, kind):
    if kind not in case["fits"][key]:
        pytest.skip("the reference was made without clubSandwich")
    ref = case["fits"][key][kind]
    res = robust(_fit(case, key), clubSandwich=kind == "robust_cr2")
    assert res.vbest == ref["vbest"] and res.n_clusters == ref["n"]
    for ours, theirs in (("beta", "beta"), ("se", "se"), ("zval", "tval"), ("pval", "pval"),
                         ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"), ("QM", "QM"), ("QM_p", "QMp"),
                         ("ddf", "dfs")):
        _close(getattr(res, ours), ref[theirs], 1e-5, f"{kind} {ours}")
    _close(res.QM_df, ref["QMdf"], 1e-5, f"{kind} QMdf")


def test_robust_cr1_is_cr0_scaled_by_clusters():
    case = REFERENCE["cases"][0]
    fit = _fit(case, "REML_z")
    cr0, cr1 = robust(fit, adjust=False), robust(fit)
    n = len(set(case["study"]))
    np.testing.assert_allclose(cr1.se**2, cr0.se**2 * n / (n - 1), rtol=1e-12)
    assert cr0.vbest == "CR0"


def test_three_level_model_reports_its_structure():
    case = REFERENCE["cases"][2]    # assink2016: 100 effects in 17 studies
    fit = _fit(case, "REML_z")
    assert fit.n_studies == 17 and fit.k == 100
    text = str(fit)
    assert "sigma^2.1" in text and "sigma^2.2" in text and "Q(df = 99)" in text
    assert "three-level" in fit.methods_sentence() and "17 studies" in fit.methods_sentence()
    # weights as metafor's weights.rma.mv (diagonal of M^-1): sum to 100, more for precise effects
    w = fit.weights
    assert w.sum() == pytest.approx(100)
    assert np.corrcoef(w, 1 / np.asarray(case["vi"]))[0, 1] > 0.5
    assert fit.pi_lb < fit.ci_lb[0] < fit.estimate < fit.ci_ub[0] < fit.pi_ub


def test_bad_input_is_refused_with_a_reason():
    case = REFERENCE["cases"][0]
    with pytest.raises(MetaAnalysisError, match="one study"):
        rma_mv(case["yi"][:4], case["vi"][:4], study=["a"] * 4)
    with pytest.raises(MetaAnalysisError, match="study has 3 values"):
        rma_mv(case["yi"][:4], case["vi"][:4], study=["a", "b", "c"])
    with pytest.raises(MetaAnalysisError, match="method"):
        rma_mv(case["yi"], case["vi"], study=case["study"], method="DL")
    with pytest.raises(MetaAnalysisError, match="collinear"):
        x = np.arange(len(case["yi"]), dtype=float)
        rma_mv(case["yi"], case["vi"], study=case["study"], mods=np.column_stack([x, 2 * x]))
    fit = rma_mv(case["yi"], case["vi"], study=case["study"])
    with pytest.raises(MetaAnalysisError, match="clusters"):
        robust(fit, cluster=["a"] * fit.k)


@pytest.mark.parametrize("which", ["coarse", "fine"])
def test_robust_with_clusters_other_than_the_study(which):
    # metafor: robust(fit, cluster = district %% 4) (clusters of studies) and cluster = study (of effects)
    case = next(c for c in REFERENCE["cases"] if c["name"] == "konstantopoulos2011_year")
    ref = REFERENCE["konstantopoulos2011_year_clusters"][which]
    res = robust(_fit(case, "REML_z"), cluster=ref["cluster"])
    assert res.n_clusters == ref["cr1"]["n"] and res.ddf == ref["cr1"]["dfs"]
    for ours, theirs in (("se", "se"), ("zval", "tval"), ("pval", "pval"), ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"),
                         ("QM", "QM"), ("QM_p", "QMp")):
        _close(getattr(res, ours), ref["cr1"][theirs], 1e-5, ours)
