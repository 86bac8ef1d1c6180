"""neuromodmap.evidence against metafor: every number in shared/data/meta/metafor_reference.json.

Expected values are read at test time from ``meta/metafor_reference.json`` in the data
folder; each block of that file names its metafor source (docs page or testthat file,
metafor 4.x/5.x, wviechtb/metafor). Tolerances: 1e-4 absolute for estimates, SEs, CIs
and statistics, plus half a unit in the last decimal the reference value is printed with
(1.5e-4 for a 4-decimal value; 5.1e-3 for I² printed as 92.22); 1e-4 relative for REML tau².

Study-level data not in the JSON (dat.egger2001, dat.normand1999, dat.pritz1997,
dat.nielweise2007) are copied below from wviechtb/metadat ``data-raw/*.txt`` (read at
commit fc2ccb77e580; the JSON's values were computed from commit 0cb96ce4ff16).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from neuromodmap.evidence import (
    bootstrap,
    cumul,
    escalc,
    leave1out,
    qprofile_tau2,
    regtest,
    rma,
    transf_exp,
    transf_ilogit,
    transf_ipft_hm,
    trimfill,
)

TOL = 1.5e-4  # 1e-4 plus rounding of the 4-decimal reference values


def _decimals(x: float) -> int:
    text = repr(float(x))
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def close(actual, expected, tol=None):
    """|actual - expected| <= 1e-4 + half a unit in the last printed decimal of each reference value."""
    actual = np.atleast_1d(np.asarray(actual, float))
    expected = np.atleast_1d(np.asarray(expected, float))
    if tol is None:
        tol = np.array([1e-4 + 0.5 * 10.0 ** -_decimals(e) for e in expected])
    assert np.all(np.abs(actual - expected) <= tol), (actual.tolist(), expected.tolist(), tol)


@pytest.fixture(scope="module")
def ref(data_root):
    return json.loads((data_root / "meta" / "metafor_reference.json").read_text())


@pytest.fixture(scope="module")
def bcg(ref):
    block = ref["dat.bcg"]
    df = pd.DataFrame(block["rows"], columns=block["cols"])
    es = escalc("RR", ai=df.tpos, bi=df.tneg, ci=df.cpos, di=df.cneg, slab=df.author + " " + df.year.astype(str))
    return df, es


# --- dat.bcg (metafor docs and testthat files named in the JSON) ----------------------
def test_escalc_rr_bcg(ref, bcg):
    # metafor escalc.html: escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)
    _, es = bcg
    close(es.yi, ref["dat.bcg"]["escalc_RR"]["yi"])
    close(es.vi, ref["dat.bcg"]["escalc_RR"]["vi"])


def test_rr_equal_effects(ref, bcg):
    # test_misc_metan_vs_rma.uni_with_dat.bcg.r: rma(yi, vi, method="EE")
    exp = ref["dat.bcg"]["RR_EE"]
    res = rma(bcg[1].yi, bcg[1].vi, method="EE")
    close([res.estimate, res.ci_lb, res.ci_ub, res.zval], [exp["est"], *exp["ci"], exp["z"]])
    close(res.q, exp["Q"])
    pred = res.predict(transf_exp)
    close([pred["pred"], pred["ci_lb"], pred["ci_ub"]], exp["exp"])


def test_rr_dersimonian_laird_with_qprofile_ci(ref, bcg):
    # test_misc_metan_vs_rma.uni_with_dat.bcg.r and test_misc_confint.r: rma(method="DL"); confint(res)
    exp = ref["dat.bcg"]["RR_DL"]
    res = rma(bcg[1].yi, bcg[1].vi, method="DL")
    close([res.estimate, res.ci_lb, res.ci_ub, res.zval, res.tau2], [exp["est"], *exp["ci"], exp["z"], exp["tau2"]])
    close([res.i2, res.h2], [exp["I2"], exp["H2"]])
    close(res.tau2_ci, exp["tau2_QPci"])
    close(res.i2_ci, exp["I2_ci"])
    close(res.h2_ci, exp["H2_ci"])  # printed as 43.068 (3 decimals)
    pred = res.predict(transf_exp)
    close([pred["pred"], pred["ci_lb"], pred["ci_ub"]], exp["exp"])


def test_rr_reml(ref, bcg):
    # rma.uni.html / dat.bcg.html / predict.rma.html: rma(yi, vi, data=dat) (REML default)
    exp = ref["dat.bcg"]["RR_REML"]
    res = rma(bcg[1].yi, bcg[1].vi)
    assert res.method == "REML" and res.k == 13
    close([res.estimate, res.se, res.zval, res.ci_lb, res.ci_ub], [exp["est"], exp["se"], exp["z"], *exp["ci"]])
    assert res.tau2 == pytest.approx(exp["tau2"], rel=1e-4, abs=5e-5)
    close([res.se_tau2, res.tau], [exp["se_tau2"], exp["tau"]])
    close([res.i2, res.h2], [exp["I2"], exp["H2"]])  # printed to 2 decimals
    close(res.q, exp["Q"])
    assert res.k - res.p == exp["df"]
    pred = res.predict(transf_exp)
    close([pred[c] for c in ("pred", "ci_lb", "ci_ub", "pi_lb", "pi_ub")], exp["exp_pred_ci_pi"])
    close([res.pi_lb, res.pi_ub], exp["pi_logscale_2dp"])


def test_rr_reml_hartung_knapp(ref, bcg):
    # metafor docs/index.html README example: rma(yi, vi, test="knha")
    exp = ref["dat.bcg"]["RR_REML_knha"]
    res = rma(bcg[1].yi, bcg[1].vi, test="knha")
    close([res.estimate, res.se, res.tval, res.ci_lb, res.ci_ub], [exp["est"], exp["se"], exp["t"], *exp["ci"]])
    assert res.df == exp["df"]
    close(res.pval, exp["p"])
    pred = res.predict(transf_exp)  # prediction interval uses t(k-1) quantiles
    close([pred[c] for c in ("pred", "ci_lb", "ci_ub", "pi_lb", "pi_ub")], exp["exp_2dp"])


def test_rr_paule_mandel(ref, bcg):
    # test_misc_rma_uni.r: DLIT/SJIT tau2 = 0.3181 = the Paule-Mandel fixed point
    res = rma(bcg[1].yi, bcg[1].vi, method="PM")
    close(res.tau2, ref["dat.bcg"]["RR_PM_tau2"]["tau2"])


def test_rr_ml_fit_statistics(ref, bcg):
    # test_misc_fitstats.r: fitstats(rma(yi, vi, method="ML"))
    exp = ref["dat.bcg"]["RR_ML_fit"]
    res = rma(bcg[1].yi, bcg[1].vi, method="ML")
    for key in ("logLik", "deviance", "AIC", "BIC", "AICc"):
        close(res.fit_stats[key], exp[key])


def test_ml_meta_regression_fit_statistics(bcg):
    # extra oracle, not in the JSON: metafor tests/testthat/test_misc_fitstats.r (read at commit
    # 0b9744c30583), fitstats(rma(yi ~ ablat, vi, data=dat, method="ML"))
    df, es = bcg
    res = rma(es.yi, es.vi, method="ML", mods=df[["ablat"]])
    got = [res.fit_stats[key] for key in ("logLik", "deviance", "AIC", "BIC", "AICc")]
    close(got, [-7.6857, 27.1572, 21.3713, 23.0662, 24.038])


def test_meta_regression_ablat_year(ref, bcg):
    # rma.uni.html: rma(yi, vi, mods = ~ ablat + year, data=dat)
    df, es = bcg
    exp = ref["dat.bcg"]["RR_REML_mods_ablat_year"]
    res = rma(es.yi, es.vi, mods=df[["ablat", "year"]])
    close(res.beta, exp["b"])
    close(res.ses, exp["se"])
    assert res.tau2 == pytest.approx(exp["tau2"], rel=1e-4, abs=5e-5)
    close([res.q, res.qm], [exp["QE"], exp["QM"]])
    close(res.r2, exp["R2"])
    assert list(res.coef_table().index) == ["intrcpt", "ablat", "year"]


def test_meta_regression_knha_ablat(ref, bcg):
    # docs/index.html: rma(yi, vi, mods = ~ ablat, test="knha")
    df, es = bcg
    exp = ref["dat.bcg"]["RR_REML_knha_mods_ablat"]
    res = rma(es.yi, es.vi, mods=df[["ablat"]], test="knha")
    close(res.beta, exp["b"])
    close(res.ses, exp["se"])
    close(res.stats, exp["t"])
    assert res.k - res.p == exp["df"]
    close([res.tau2, res.q, res.qm], [exp["tau2"], exp["QE"], exp["F"]])
    assert res.qm_df == (1, 11)


def test_regtest_on_knha_model(ref, bcg):
    # docs/index.html: regtest(res) on the test="knha" fit
    exp = ref["dat.bcg"]["regtest_knha_model"]
    rt = regtest(rma(bcg[1].yi, bcg[1].vi, test="knha"))
    close([rt.stat, rt.pval, rt.est, rt.ci_lb, rt.ci_ub], [exp["t"], exp["p"], exp["b"], *exp["b_ci"]])
    assert rt.df == exp["df"] and rt.stat_name == "t"


@pytest.mark.parametrize("method", ["EE", "REML"])
def test_trimfill(ref, bcg, method):
    # trimfill.html: trimfill(rma(yi, vi, method=...)) with side chosen by metafor's rule
    exp = ref["dat.bcg"][f"trimfill_{method}"]
    tf = trimfill(rma(bcg[1].yi, bcg[1].vi, method=method))
    assert tf.k0 == exp["k0"] and tf.side == exp["side"]
    close(tf.se_k0, exp["se_k0"])
    fit = tf.fit
    close([fit.estimate, fit.se, fit.zval, fit.ci_lb, fit.ci_ub], [exp["est"], exp["se"], exp["z"], *exp["ci"]])
    close(fit.q, exp["Q"])
    close([fit.i2, fit.h2], [exp["I2"], exp["H2"]])
    if method == "EE":
        close(np.sort(tf.filled_yi), exp["filled_yi"], 1e-7)
    else:
        assert fit.tau2 == pytest.approx(exp["tau2"], rel=1e-4, abs=5e-5)
        close(fit.se_tau2, exp["se_tau2"])


def test_leave1out_first_row(ref, bcg):
    # leave1out.html: leave1out(rma(yi, vi)), row 1 (Aronson omitted)
    exp = ref["dat.bcg"]["leave1out_REML_first_row"]
    table = leave1out(rma(bcg[1].yi, bcg[1].vi, slab=list(bcg[1].index)))
    row = table.iloc[exp["omit"] - 1]
    close([row.estimate, row.se, row.zval, row.ci_lb, row.ci_ub], [exp["est"], exp["se"], exp["z"], *exp["ci"]])
    close([row.q, row.tau2, row.i2, row.h2], [exp["Q"], exp["tau2"], exp["I2"], exp["H2"]])
    assert len(table) == 13 and table.index[0] == "Aronson 1948"


def test_cumul_last_row_is_full_fit_and_first_is_the_study(bcg):
    es = bcg[1]
    full = rma(es.yi, es.vi)
    table = cumul(full)
    close([table.iloc[-1].estimate, table.iloc[-1].tau2], [full.estimate, full.tau2], 1e-10)
    close(table.iloc[0].estimate, es.yi.iloc[0], 1e-12)
    # the second row is a two-study REML fit of the first two studies
    two = rma(es.yi.iloc[:2], es.vi.iloc[:2])
    close(table.iloc[1].estimate, two.estimate, 1e-12)


# --- dat.egger2001 without ISIS-4 (metafor regtest.html) -------------------------------
# wviechtb/metadat data-raw/dat.egger2001.txt rows 1-15: ai n1i ci n2i
EGGER2001 = [(1, 40, 2, 36), (9, 135, 23, 135), (2, 200, 7, 200), (1, 48, 1, 46), (10, 150, 8, 148),
             (1, 59, 9, 56), (1, 25, 3, 23), (0, 22, 1, 21), (6, 76, 11, 75), (1, 27, 7, 27),
             (2, 89, 12, 80), (5, 23, 13, 33), (4, 130, 8, 122), (90, 1159, 118, 1157), (4, 107, 17, 108)]


@pytest.fixture(scope="module")
def egger():
    a, n1, c, n2 = map(np.array, zip(*EGGER2001, strict=True))
    return escalc("OR", ai=a, n1i=n1, ci=c, n2i=n2)


def test_egger2001_reml_and_regtests(ref, egger):
    block = ref["dat.egger2001_minus_ISIS4"]
    exp = block["REML"]
    # study 8 (0/22 vs 1/21) is the only study with a zero cell: 1/2 added to its cells
    assert egger.note.iloc[7].startswith("0.5 added") and (egger.note.drop(egger.index[7]) == "").all()
    res = rma(egger.yi, egger.vi)
    close([res.estimate, res.se, res.ci_lb, res.ci_ub, res.se_tau2], [exp["est"], exp["se"], *exp["ci"], exp["se_tau2"]])
    assert res.tau2 == pytest.approx(exp["tau2"], rel=1e-4, abs=5e-5)
    close([res.i2], [exp["I2"]])
    close([res.q, res.q_p], [exp["Q"], exp["Qp"]])
    rt = regtest(res)  # default: model="rma", predictor = standard error, z-test
    e = block["regtest_rma"]
    close([rt.stat, rt.pval, rt.est, rt.ci_lb, rt.ci_ub], [e["z"], e["p"], e["b"], *e["b_ci"]])
    assert rt.stat_name == "z"
    lm = regtest(res, model="lm")  # classical Egger: weighted lm with multiplicative dispersion
    e = block["regtest_lm"]
    close([lm.stat, lm.pval, lm.est, lm.ci_lb, lm.ci_ub], [e["t"], e["p"], e["b"], *e["b_ci"]])
    assert lm.df == e["df"]


# --- dat.normand1999: SMD (metadat dat.normand1999.html) ------------------------------
# wviechtb/metadat data-raw/dat.normand1999.txt: n1i m1i sd1i n2i m2i sd2i
NORMAND1999 = [(155, 55, 47, 156, 75, 64), (31, 27, 7, 32, 29, 4), (75, 64, 17, 71, 119, 29),
               (18, 66, 20, 18, 137, 48), (8, 14, 8, 13, 18, 11), (57, 19, 7, 52, 18, 4),
               (34, 52, 45, 33, 41, 34), (110, 21, 16, 183, 31, 27), (60, 30, 27, 52, 23, 20)]


def test_normand1999_smd_reml(ref):
    n1, m1, s1, n2, m2, s2 = map(np.array, zip(*NORMAND1999, strict=True))
    es = escalc("SMD", m1i=m1, sd1i=s1, n1i=n1, m2i=m2, sd2i=s2, n2i=n2)
    exp = ref["dat.normand1999_SMD"]["REML"]
    res = rma(es.yi, es.vi)
    close([res.estimate, res.se, res.zval, res.pval, res.ci_lb, res.ci_ub, res.se_tau2],
          [exp["est"], exp["se"], exp["z"], exp["p"], *exp["ci"], exp["se_tau2"]])
    assert res.tau2 == pytest.approx(exp["tau2"], rel=1e-4, abs=5e-5)
    close([res.i2, res.h2], [exp["I2"], exp["H2"]])
    close(res.q, exp["Q"])


def test_normand1999_first_four_studies_tau2():
    # extra oracle, not in the JSON: metafor tests/testthat/test_misc_rma_uni.r (read at commit
    # 191d2cb22325): rma(yi, vi) on escalc("SMD", ..., subset=1:4) gives tau2 = 1.0090
    n1, m1, s1, n2, m2, s2 = map(np.array, zip(*NORMAND1999[:4], strict=True))
    es = escalc("SMD", m1i=m1, sd1i=s1, n1i=n1, m2i=m2, sd2i=s2, n2i=n2)
    assert rma(es.yi, es.vi).tau2 == pytest.approx(1.0090, rel=1e-4, abs=5e-5)


def test_smd_uses_exact_gamma_correction():
    # Hedges (1981): J(m) = Γ(m/2) / (sqrt(m/2) Γ((m-1)/2)); for m = 8: 0.9027 (approx 1 - 3/(4m-1) = 0.9032)
    es = escalc("SMD", m1i=[1.0], sd1i=[1.0], n1i=[5], m2i=[0.0], sd2i=[1.0], n2i=[5])
    j = math.gamma(4) / (math.sqrt(4) * math.gamma(3.5))
    assert es.yi.iloc[0] == pytest.approx(j, rel=1e-12)
    assert es.vi.iloc[0] == pytest.approx(1 / 5 + 1 / 5 + j**2 / 20, rel=1e-12)


# --- dat.pritz1997: PLO and PR (metadat dat.pritz1997.html) ----------------------------
# wviechtb/metadat data-raw/dat.pritz1997.txt: xi ni
PRITZ1997 = [(16, 17), (10, 12), (4, 8), (43, 58), (10, 10), (25, 42), (13, 14), (12, 12), (22, 41), (4, 5),
             (5, 6), (18, 23), (58, 68), (6, 10)]


def test_pritz1997_plo_and_pr(ref):
    xi, ni = map(np.array, zip(*PRITZ1997, strict=True))
    block = ref["dat.pritz1997_PLO"]
    es = escalc("PLO", xi=xi, ni=ni)
    pred = rma(es.yi, es.vi).predict(transf_ilogit)
    exp = block["REML_ilogit"]
    close([pred["pred"], pred["ci_lb"], pred["ci_ub"], pred["pi_lb"], pred["pi_ub"]],
          [exp["pred"], *exp["ci"], *exp["pi"]])
    es = escalc("PR", xi=xi, ni=ni)  # 10/10 and 12/12 get 1/2 added (metafor to="only0")
    pred = rma(es.yi, es.vi).predict()
    exp = block["PR_REML"]
    close([pred["pred"], pred["se"], pred["ci_lb"], pred["ci_ub"], pred["pi_lb"], pred["pi_ub"]],
          [exp["pred"], exp["se"], *exp["ci"], *exp["pi"]])


# --- Miller (1978): PFT and its inverse with the harmonic mean ----------------------------
def test_miller1978_freeman_tukey(ref):
    # test_analysis_example_miller1978.r; the JSON holds xi, ni and the published values
    exp = ref["miller1978_PFT"]
    es = escalc("PFT", xi=exp["xi"], ni=exp["ni"])
    close(es.yi * 2, exp["yi_x2"])  # metafor's PFT is half Miller's definition
    close(es.vi * 4, exp["vi_x4"])
    res = rma(es.yi, es.vi, method="EE")
    close([res.estimate * 2, transf_ipft_hm(res.estimate, exp["ni"])],
          [exp["EE_weighted"]["est_x2"], exp["EE_weighted"]["ipft_hm"]])
    res = rma(es.yi, es.vi, method="EE", weighted=False)
    close([res.estimate * 2, transf_ipft_hm(res.estimate, exp["ni"])],
          [exp["EE_unweighted"]["est_x2"], exp["EE_unweighted"]["ipft_hm"]])


# --- dat.nielweise2007: PLO per arm (test_analysis_example_stijnen2010.r) -------------------
# wviechtb/metadat data-raw/dat.nielweise2007.txt: ci n2i ai n1i
NIELWEISE2007 = [(3, 117, 0, 116), (3, 35, 1, 44), (9, 195, 2, 208), (7, 136, 0, 130), (6, 157, 5, 151),
                 (4, 139, 1, 98), (3, 177, 1, 174), (2, 39, 1, 74), (19, 103, 1, 97), (2, 122, 1, 113),
                 (7, 64, 0, 66), (1, 58, 0, 70), (5, 175, 3, 188), (11, 180, 6, 187), (0, 105, 0, 118),
                 (1, 262, 0, 252), (3, 362, 1, 345), (1, 69, 4, 64)]


@pytest.mark.parametrize("arm", ["ctrl", "trt"])
def test_nielweise2007_plo(ref, arm):
    ci, n2i, ai, n1i = map(np.array, zip(*NIELWEISE2007, strict=True))
    xi, ni = (ci, n2i) if arm == "ctrl" else (ai, n1i)
    es = escalc("PLO", xi=xi, ni=ni)
    res = rma(es.yi, es.vi)
    exp = ref["dat.nielweise2007_PLO"][arm]
    close([res.estimate, res.se], [exp["est"], exp["se"]])
    assert res.tau2 == pytest.approx(exp["tau2"], rel=1e-4, abs=5e-5)
    pred = res.predict(transf_ilogit)
    close([pred["pred"], pred["ci_lb"], pred["ci_ub"]], exp["ilogit"])


# --- internal consistency that does not need an oracle ---------------------------------
@pytest.mark.parametrize("method", ["DL", "HE", "SJ", "PM", "ML", "REML"])
def test_estimators_match_their_defining_equations(bcg, method):
    """Each tau² solves its own estimating equation (Viechtbauer 2005; metafor rma.uni.r)."""
    y, v = bcg[1].yi.to_numpy(), bcg[1].vi.to_numpy()
    res = rma(y, v, method=method, threshold=1e-12)
    # metafor's default stopping rule (change < 1e-5) lands within 1e-4 (relative) of the root
    assert rma(y, v, method=method).tau2 == pytest.approx(res.tau2, rel=1e-4)
    k = y.size
    w0 = 1 / v
    if method == "DL":
        q = np.sum(w0 * (y - np.sum(w0 * y) / w0.sum()) ** 2)
        assert res.tau2 == pytest.approx((q - (k - 1)) / (w0.sum() - np.sum(w0**2) / w0.sum()), rel=1e-12)
    elif method == "HE":
        assert res.tau2 == pytest.approx(np.var(y, ddof=1) - np.mean(v), rel=1e-12)
    elif method == "SJ":
        t0 = np.mean((y - y.mean()) ** 2)
        w = 1 / (v + t0)
        assert res.tau2 == pytest.approx(t0 * np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2) / (k - 1), rel=1e-12)
    elif method == "PM":
        w = 1 / (v + res.tau2)
        assert np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2) == pytest.approx(k - 1, abs=1e-3)
    else:
        # score equation of the (restricted) likelihood is zero at the estimate
        w = 1 / (v + res.tau2)
        mu = np.sum(w * y) / w.sum()
        score = -np.sum(w) + np.sum(w**2 * (y - mu) ** 2)
        if method == "REML":
            score += np.sum(w**2) / np.sum(w)
        assert abs(score) < 1e-6


def test_qprofile_bounds_solve_the_q_equation(bcg):
    from scipy import stats

    y, v = bcg[1].yi.to_numpy(), bcg[1].vi.to_numpy()
    lb, ub = qprofile_tau2(y, v)

    def q(t):
        w = 1 / (v + t)
        return np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2)

    # metafor's uniroot tolerance (~1.2e-4 on tau²) bounds the error on the root
    assert abs(lb - 0.1197) < 1e-4 and q(lb) == pytest.approx(stats.chi2.ppf(0.975, 12), rel=1e-3)
    assert q(ub) == pytest.approx(stats.chi2.ppf(0.025, 12), rel=1e-3)


def test_subgroups_fit_separately_and_test_differences(bcg):
    df, es = bcg
    sub = rma(es.yi, es.vi, subgroup=df.alloc, slab=list(es.index))
    assert set(sub.fits) == {"random", "alternate", "systematic"}
    random = rma(es.yi[df.alloc.values == "random"], es.vi[df.alloc.values == "random"])
    assert sub.fits["random"].estimate == pytest.approx(random.estimate, rel=1e-12)
    # Q-between = equal-effects meta-regression of the subgroup estimates on the group
    est = np.array([f.estimate for f in sub.fits.values()])
    var = np.array([f.se**2 for f in sub.fits.values()])
    fe = rma(est, var, method="EE")
    assert sub.q_between == pytest.approx(fe.q, rel=1e-10)
    assert sub.q_between_df == 2
    frame = sub.to_frame()
    assert list(frame.subgroup) == ["random", "alternate", "systematic", "overall"]
    assert "Test for Subgroup Differences" in str(sub)


@pytest.mark.parametrize("method", ["EE", "DL", "REML"])
def test_vectorised_bootstrap_equals_one_rma_per_replicate(bcg, method):
    y, v = bcg[1].yi.to_numpy(), bcg[1].vi.to_numpy()
    res = rma(y, v, method=method)
    boot = bootstrap(res, n_boot=300, seed=7)
    idx = np.random.default_rng(7).integers(0, res.k, size=(300, res.k))
    for b in range(0, 300, 37):
        fit = rma(y[idx[b]], v[idx[b]], method=method)
        assert boot.estimates[b] == pytest.approx(fit.estimate, abs=1e-12)
        assert boot.tau2[b] == pytest.approx(fit.tau2, abs=1e-12)
    lo, hi = boot.ci
    assert lo < res.estimate < hi


# =====================================================================================
# metafor itself as the oracle: every figure in reference/metafor_univariate.json
# =====================================================================================
# Written by scripts/metafor_reference_univariate.R (real R, metafor 3.8-1, metadat 1.2-0;
# each case names its metafor call). Tolerances (issue 17): 1e-5 relative on estimates,
# SEs, CIs and statistics; 1e-4 relative on tau² of the iterative estimators (ML, REML,
# EB, PM) and on Q-profile bounds (roots found by R's uniroot). A tiny absolute floor
# (1e-10) lets exact zeros (tau² = 0) compare. Run this file as a script for the tally:
#   PYTHONPATH=src python tests/evidence/test_evidence_metafor.py
import functools  # noqa: E402
import warnings as _warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from neuromodmap.evidence import MEASURES, METHODS  # noqa: E402
from neuromodmap.evidence._rma import TESTS  # noqa: E402

UNIVARIATE = Path(__file__).parent / "reference" / "metafor_univariate.json"
RTOL, RTOL_TAU2, ATOL = 1e-5, 1e-4, 1e-10
ITERATIVE = {"ML", "REML", "EB", "PM"}


@functools.lru_cache(maxsize=1)
def _univariate() -> dict:
    return json.loads(UNIVARIATE.read_text())


class Tally:
    def __init__(self):
        self.checked = 0
        self.matched = 0
        self.mismatches: list[str] = []

    def compare(self, where: str, name: str, got, expected, rtol: float = RTOL) -> None:
        if expected is None:  # metafor does not report this figure here
            return
        exp = np.atleast_1d(np.asarray([np.nan if e is None else e for e in np.atleast_1d(expected)], float))
        g = np.atleast_1d(np.asarray(got, float))
        if g.shape != exp.shape:
            self.checked += exp.size
            self.mismatches.append(f"{where}: {name} has {g.size} values, metafor {exp.size}")
            return
        with np.errstate(invalid="ignore"):
            ok = np.where(np.isnan(exp), ~np.isfinite(g),  # metafor NA: ours must be undefined too
                          np.where(np.isinf(exp), g == exp,
                                   np.isfinite(g) & (np.abs(g - exp) <= rtol * np.abs(exp) + ATOL)))
        self.checked += exp.size
        self.matched += int(ok.sum())
        for i in np.flatnonzero(~ok):
            self.mismatches.append(f"{where}: {name}[{i}] = {g[i]!r}, metafor {exp[i]!r}")


def _inputs(key):
    block = _univariate()["inputs"][key]
    X = None
    if block.get("mods"):
        X = pd.DataFrame(np.asarray(block["mods"]["X"], float).reshape(len(block["yi"]), -1),
                         columns=list(np.atleast_1d(block["mods"]["names"])))
    group = block.get("group")
    return (np.asarray(block["yi"], float), np.asarray(block["vi"], float), X,
            None if group is None else list(np.atleast_1d(group)))


def _fit(case, mods=False):
    y, v, X, _ = _inputs(case["input"])
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        return rma(y, v, method=case["method"], test=case["test"], mods=X if mods else None,
                   weighted=case.get("weighted", True))


def _check_escalc(case, t: Tally):
    kwargs = {k: np.asarray([np.nan if x is None else x for x in vals], float) for k, vals in case["data"].items()}
    opts = dict(case["options"] or {})
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        es = escalc(case["measure"], **kwargs, **opts)
    t.compare(case["call"], "yi", es.yi, case["expected"]["yi"])
    t.compare(case["call"], "vi", es.vi, case["expected"]["vi"])


def _check_rma(case, t: Tally):
    exp = case["expected"]
    where = f"{case['input']}: {case['call']}"
    res = _fit(case, mods=case["mods"])
    tau_tol = RTOL_TAU2 if case["method"] in ITERATIVE else RTOL
    for name, got in (("beta", res.beta), ("se", res.ses), ("zval", res.stats), ("pval", res.pvals),
                      ("ci_lb", res.ci_lbs), ("ci_ub", res.ci_ubs), ("QE", res.q), ("QEp", res.q_p),
                      ("QM", res.qm), ("QMp", res.qm_p), ("H2", res.h2)):
        t.compare(where, name, got, exp[name])
    t.compare(where, "tau2", res.tau2, exp["tau2"], tau_tol)
    t.compare(where, "I2", res.i2, exp["I2"], tau_tol)  # I² = 100 tau² / (vt + tau²): tau²'s tolerance
    t.compare(where, "se_tau2", res.se_tau2, exp["se_tau2"])
    if exp.get("R2") is not None:
        t.compare(where, "R2", res.r2 if res.r2 is not None else np.nan, exp["R2"])
    for name in ("logLik", "deviance", "AIC", "BIC", "AICc"):
        t.compare(where, name, res.fit_stats[name], exp[name])
    newmods = None if res.p == 1 else res.X[:, 1:].mean(axis=0)
    pred = res.predict(newmods=newmods)
    for name in ("pred", "se"):
        t.compare(where, f"predict.{name}", pred[name], exp["pred"][name])
    # a bound is pred -/+ crit * se: its relative error is taken against the size of those terms
    # (a prediction bound that happens to fall near 0 would otherwise ask for 1e-5 of almost nothing)
    scale = abs(exp["pred"]["pred"]) + abs(exp["pred"]["ci_ub"] - exp["pred"]["pred"])
    for name in ("ci_lb", "ci_ub", "pi_lb", "pi_ub"):
        e = exp["pred"][name]
        rtol = RTOL if e is None or e == 0 else RTOL * max(1.0, scale / abs(e))
        t.compare(where, f"predict.{name}", pred[name], e, rtol)
    if "tau2_ci" in exp:
        t.compare(where, "tau2_ci", res.tau2_ci, exp["tau2_ci"], RTOL_TAU2)
        t.compare(where, "I2_ci", res.i2_ci, exp["I2_ci"], RTOL_TAU2)
        t.compare(where, "H2_ci", res.h2_ci, exp["H2_ci"], RTOL_TAU2)


def _check_subgroup(case, t: Tally):
    exp = case["expected"]
    where = f"{case['input']}: {case['call']}"
    y, v, _, group = _inputs(case["input"])
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        sub = rma(y, v, method=case["method"], test=case["test"], subgroup=group)
    groups = [str(g) for g in np.atleast_1d(exp["groups"])]
    if sorted(sub.fits) != sorted(groups):
        t.checked += 1
        t.mismatches.append(f"{where}: pooled groups {sorted(sub.fits)}, metafor {sorted(groups)}")
        return
    fits = [sub.fits[g] for g in groups]
    tau_tol = RTOL_TAU2 if case["method"] in ITERATIVE else RTOL
    t.compare(where, "estimate", [f.estimate for f in fits], exp["estimate"])
    t.compare(where, "se", [f.se for f in fits], exp["se"])
    t.compare(where, "ci_lb", [f.ci_lb for f in fits], exp["ci_lb"])
    t.compare(where, "ci_ub", [f.ci_ub for f in fits], exp["ci_ub"])
    t.compare(where, "tau2", [f.tau2 for f in fits], exp["tau2"], tau_tol)
    t.compare(where, "Q_between", sub.q_between, exp["Q_between"])
    t.compare(where, "Q_between_p", sub.q_between_p, exp["Q_between_p"])
    t.compare(where, "Q_between_df", sub.q_between_df, exp["Q_between_df"])


def _check_table(case, t: Tally):
    exp = case["expected"]
    where = f"{case['input']}: {case['call']}"
    res = _fit(case)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        tab = leave1out(res) if case["kind"] == "leave1out" else cumul(res)
    stat = "tval" if "tval" in tab else "zval"
    tau_tol = RTOL_TAU2 if case["method"] in ITERATIVE else RTOL
    for name, col in (("estimate", "estimate"), ("se", "se"), ("stat", stat), ("pval", "pval"),
                      ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"), ("Q", "q"), ("Qp", "q_p"), ("I2", "i2"), ("H2", "h2")):
        t.compare(where, name, tab[col].to_numpy(float), exp[name])
    t.compare(where, "tau2", tab["tau2"].to_numpy(float), exp["tau2"], tau_tol)


def _check_regtest(case, t: Tally):
    exp = case["expected"]
    where = f"{case['input']}: {case['call']}"
    rt = regtest(_fit(case), model=case["model"])
    for name in ("stat", "pval", "est", "ci_lb", "ci_ub"):
        t.compare(where, name, getattr(rt, name), exp[name])
    if exp.get("df") is not None:
        t.compare(where, "df", rt.df if rt.df is not None else np.nan, exp["df"])


def _check_trimfill(case, t: Tally):
    exp = case["expected"]
    where = f"{case['input']}: {case['call']}"
    res = _fit(case)
    # metafor refits the filled data with test="z" (neuromodmap keeps the model's test unless told)
    tf = trimfill(res, estimator=case["estimator"], test="z")
    t.compare(where, "k0", tf.k0, exp["k0"])
    t.checked += 1
    if tf.side == exp["side"]:
        t.matched += 1
    else:
        t.mismatches.append(f"{where}: side {tf.side}, metafor {exp['side']}")
    t.compare(where, "se_k0", tf.se_k0, exp["se_k0"])
    fit = tf.fit
    tau_tol = RTOL_TAU2 if case["method"] in ITERATIVE else RTOL
    for name, got in (("beta", fit.beta), ("se", fit.ses), ("zval", fit.stats), ("pval", fit.pvals),
                      ("ci_lb", fit.ci_lbs), ("ci_ub", fit.ci_ubs), ("QE", fit.q), ("I2", fit.i2), ("H2", fit.h2)):
        t.compare(where, name, got, exp[name])
    t.compare(where, "tau2", fit.tau2, exp["tau2"], tau_tol)
    t.compare(where, "filled_yi", np.sort(tf.filled_yi), np.sort(np.atleast_1d(np.asarray(exp["filled_yi"], float))))


CHECKS = {"rma": _check_rma, "subgroup": _check_subgroup, "leave1out": _check_table, "cumul": _check_table,
          "regtest": _check_regtest, "trimfill": _check_trimfill}


def tally(kind: str) -> Tally:
    t = Tally()
    ref = _univariate()
    if kind == "escalc":
        for case in ref["escalc"]:
            _check_escalc(case, t)
        return t
    for case in ref["cases"]:
        if case["kind"] == kind:
            try:
                CHECKS[kind](case, t)
            except Exception as exc:  # a refusal where metafor gave numbers counts against us
                t.checked += 1
                t.mismatches.append(f"{case['input']}: {case['call']}: {type(exc).__name__}: {exc}")
    return t


@pytest.mark.parametrize("kind", ["escalc", "rma", "subgroup", "leave1out", "cumul", "regtest", "trimfill"])
def test_every_figure_matches_metafor(kind):
    t = tally(kind)
    assert t.checked > 0
    assert not t.mismatches, f"{len(t.mismatches)} of {t.checked} figures differ:\n" + "\n".join(t.mismatches[:25])


def test_reference_covers_every_measure_method_and_test():
    ref = _univariate()
    assert ref["metafor"] == "3.8.1" and ref["R"].startswith("R version")
    assert {c["measure"] for c in ref["escalc"]} == set(MEASURES)
    rma_cases = [c for c in ref["cases"] if c["kind"] == "rma"]
    assert {c["method"] for c in rma_cases} == set(METHODS)
    assert {c["test"] for c in rma_cases} == set(TESTS)
    assert any(c["mods"] for c in rma_cases) and any(not c["weighted"] for c in rma_cases)
    assert len({d.split("[")[0] for d in ref["datasets"]}) >= 45  # distinct metadat data sets


def test_trimfill_keeps_the_models_test_unless_told():
    # neuromodmap's documented choice: the filled model keeps test="knha"; test="z" gives metafor's refit
    es = escalc("RR", ai=[4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27], n1i=[123, 306, 231, 13598, 5069, 1541,
                2545, 88391, 7499, 1716, 50634, 2498, 16913], ci=[11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3,
                29], n2i=[139, 303, 220, 12867, 5808, 1451, 629, 88391, 7277, 1665, 27338, 2341, 17854])
    res = rma(es.yi, es.vi, test="knha")
    ours, theirs = trimfill(res, side="left"), trimfill(res, side="left", test="z")
    if ours.k0:
        assert ours.fit.test == "knha" and theirs.fit.test == "z"
        assert ours.fit.estimate == pytest.approx(theirs.fit.estimate, rel=1e-12)
        assert ours.fit.se != pytest.approx(theirs.fit.se, rel=1e-6)


if __name__ == "__main__":
    ref = _univariate()
    total_checked = total_matched = 0
    for kind in ["escalc", "rma", "subgroup", "leave1out", "cumul", "regtest", "trimfill"]:
        t = tally(kind)
        total_checked += t.checked
        total_matched += t.matched
        print(f"{kind:10s} {t.matched:7d} / {t.checked:7d} figures match")
        for line in t.mismatches[:8]:
            print("   ", line)
    n_cases = len(ref["escalc"]) + len(ref["cases"])
    n_sets = len({d.split("[")[0] for d in ref["datasets"]})
    print(f"total      {total_matched:7d} / {total_checked:7d} figures match "
          f"({100 * total_matched / total_checked:.2f} %); {n_sets} metadat data sets, {n_cases} cases "
          f"(metafor {ref['metafor']}, {ref['R']})")
