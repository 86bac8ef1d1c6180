"""Sensitivity and small-study methods on a fitted model: leave1out, cumul, regtest, trimfill.

Each follows the metafor function of the same name (``leave1out.rma.uni``,
``cumul.rma.uni``, ``regtest.rma``, ``trimfill.rma.uni``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from neuromodmap.evidence._errors import MetaAnalysisError
from neuromodmap.evidence._rma import _WLS, T_TESTS, TESTS, RMAResult, _fit

__all__ = ["leave1out", "cumul", "regtest", "trimfill", "bootstrap",
           "RegtestResult", "TrimfillResult", "BootstrapResult"]


def _refit(res: RMAResult, y, v, labels, ni=None, M=None, names=None, test=None) -> RMAResult:
    return _fit(np.asarray(y, float), np.asarray(v, float), list(labels), M, names or [], res.method,
                test or res.test, res.level, res.measure, ni, 100, 1e-5, weighted=res.weighted)


def _row_or_nan(res: RMAResult, y, v, labels) -> dict:
    """One refit's row; a refit that fails (e.g. REML not converging on a subset) gives a row of
    NaN, as metafor's leave1out() and cumul() give NA, instead of losing the whole table."""
    try:
        return _row(_refit(res, y, v, labels))
    except MetaAnalysisError:
        stat = "tval" if res.test in T_TESTS else "zval"
        return dict.fromkeys(("estimate", "se", stat, "pval", "ci_lb", "ci_ub", "q", "q_p", "tau2", "i2", "h2"),
                             float("nan"))


def _row(fit: RMAResult) -> dict:
    stat = "tval" if fit.test in T_TESTS else "zval"
    return {"estimate": fit.estimate, "se": fit.se, stat: fit.zval, "pval": fit.pval,
            "ci_lb": fit.ci_lb, "ci_ub": fit.ci_ub, "q": fit.q, "q_p": fit.q_p, "tau2": fit.tau2,
            "i2": fit.i2, "h2": fit.h2}


def _require_intercept_only(res: RMAResult, what: str) -> None:
    if res.p != 1:
        raise MetaAnalysisError(f"{what} needs a model without moderators")


def leave1out(res: RMAResult) -> pd.DataFrame:
    """Refit the model leaving out each study in turn (metafor ``leave1out``).

    Returns one row per omitted study (index: its label) with the estimate, se, z/t,
    p, CI, Q, Q p-value, tau², I² and H² of the model without it.
    """
    _require_intercept_only(res, "leave1out")
    if res.k < 3:
        raise MetaAnalysisError("leave1out needs at least 3 studies")
    rows = []
    for i in range(res.k):
        keep = np.arange(res.k) != i
        rows.append(_row_or_nan(res, res.yi[keep], res.vi[keep], [s for j, s in enumerate(res.labels) if j != i]))
    return pd.DataFrame(rows, index=pd.Index(res.labels, name="omitted"))


def cumul(res: RMAResult, order: Sequence[int] | None = None) -> pd.DataFrame:
    """Cumulative meta-analysis adding one study at a time (metafor ``cumul``).

    ``order`` gives the positions in the order to add them (e.g. by publication year);
    the first row (one study) carries the study itself with NaN heterogeneity.
    """
    _require_intercept_only(res, "cumul")
    idx = np.arange(res.k) if order is None else np.asarray(order, int)
    rows = []
    crit = float(stats.norm.ppf(1 - (1 - res.level / 100) / 2))
    for m in range(1, res.k + 1):
        sel = idx[:m]
        if m == 1:
            y, v = float(res.yi[sel[0]]), float(res.vi[sel[0]])
            se = math.sqrt(v)
            rows.append({"estimate": y, "se": se, ("tval" if res.test in T_TESTS else "zval"): y / se,
                         "pval": float(2 * stats.norm.sf(abs(y / se))), "ci_lb": y - crit * se,
                         "ci_ub": y + crit * se, "q": 0.0, "q_p": 1.0, "tau2": 0.0, "i2": 0.0, "h2": 1.0})
            continue
        rows.append(_row_or_nan(res, res.yi[sel], res.vi[sel], [res.labels[j] for j in sel]))
    return pd.DataFrame(rows, index=pd.Index([res.labels[j] for j in idx], name="added"))


@dataclass(eq=False)
class RegtestResult:
    """Egger-type regression test for funnel-plot asymmetry."""

    model: str
    predictor: str
    stat: float
    stat_name: str
    df: int | None
    pval: float
    slope: float
    est: float
    ci_lb: float
    ci_ub: float

    def summary(self) -> str:
        kind = ("Weighted regression with multiplicative dispersion" if self.model == "lm"
                else "Mixed-effects meta-regression model")
        df = f", df = {self.df}" if self.df is not None else ""
        return (f"Regression Test for Funnel Plot Asymmetry\n\nModel:     {kind}\n"
                f"Predictor: standard error\n\nTest for Funnel Plot Asymmetry: {self.stat_name} = {self.stat:.4f}"
                f"{df}, p = {self.pval:.4f}\nLimit Estimate (as sei -> 0):   b = {self.est:.4f} "
                f"(CI: {self.ci_lb:.4f}, {self.ci_ub:.4f})")

    def __str__(self) -> str:
        return self.summary()

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"model": self.model, "predictor": self.predictor, self.stat_name: self.stat,
                              "df": self.df, "pval": self.pval, "slope": self.slope,
                              "limit_estimate": self.est, "ci_lb": self.ci_lb, "ci_ub": self.ci_ub}])


def regtest(res: RMAResult, model: str = "rma") -> RegtestResult:
    """Egger's regression test (metafor ``regtest``, predictor = standard error).

    ``model="rma"`` (metafor's default) adds the SE as a moderator to the same model
    (same tau² estimator and test) and tests its coefficient with z (or t for knha).
    ``model="lm"`` is the classical Egger test: weighted least squares with weights
    1/vi and a multiplicative dispersion term, tested with t on k - 2 df.
    The limit estimate is the intercept (the effect as the SE goes to 0).
    """
    _require_intercept_only(res, "regtest")
    if res.k < 3:
        raise MetaAnalysisError("the regression test needs at least 3 studies")
    sei = np.sqrt(res.vi)
    if model == "rma":
        fit = _refit(res, res.yi, res.vi, res.labels, M=sei[:, None], names=["sei"])
        stat_name = "t" if fit.test in T_TESTS else "z"
        return RegtestResult(
            model="rma", predictor="sei", stat=float(fit.stats[1]), stat_name=stat_name,
            df=fit.df, pval=float(fit.pvals[1]), slope=float(fit.beta[1]), est=float(fit.beta[0]),
            ci_lb=float(fit.ci_lbs[0]), ci_ub=float(fit.ci_ubs[0]),
        )
    if model == "lm":
        k = res.k
        X = np.column_stack([np.ones(k), sei])
        wls = _WLS(res.yi, X, 1.0 / res.vi)
        df = k - 2
        sigma2 = wls.rss / df
        se = np.sqrt(np.diag(wls.xtwx_inv) * sigma2)
        t = wls.beta / se
        crit = float(stats.t.ppf(1 - (1 - res.level / 100) / 2, df))
        return RegtestResult(
            model="lm", predictor="sei", stat=float(t[1]), stat_name="t", df=df,
            pval=float(2 * stats.t.sf(abs(t[1]), df)), slope=float(wls.beta[1]), est=float(wls.beta[0]),
            ci_lb=float(wls.beta[0] - crit * se[0]), ci_ub=float(wls.beta[0] + crit * se[0]),
        )
    raise MetaAnalysisError(f"unknown regtest model {model!r}; choose 'rma' or 'lm'")


@dataclass(eq=False)
class TrimfillResult:
    """Trim-and-fill: the estimated number of missing studies and the model with them filled in."""

    k0: int
    se_k0: float
    side: str
    estimator: str
    fit: RMAResult
    filled_yi: np.ndarray
    filled_vi: np.ndarray

    def summary(self) -> str:
        return (f"Estimated number of missing studies on the {self.side} side: {self.k0} "
                f"(SE = {self.se_k0:.4f})\n\n{self.fit.summary()}")

    def __str__(self) -> str:
        return self.summary()


def trimfill(res: RMAResult, side: str | None = None, estimator: str = "L0", max_iter: int = 100,
             test: str | None = None) -> TrimfillResult:
    """Duval & Tweedie trim-and-fill with the L0, R0 or Q0 estimator (metafor ``trimfill``).

    When ``side`` is not given it is chosen as metafor does: from the sign of the SE
    slope in an Egger-type meta-regression with the same estimator (negative slope:
    studies missing on the right).

    ``test``: the test of the model refitted to the filled data. By default (None) it
    is the model's own test, so a Hartung-Knapp analysis stays Hartung-Knapp and the
    filled estimate differs from the original only by the filled studies. metafor
    refits the filled data with its default ``test="z"``; pass ``test="z"`` for
    metafor's numbers. (When no study is filled the model is returned unchanged, as
    in metafor.)
    """
    _require_intercept_only(res, "trimfill")
    if res.k < 3:
        raise MetaAnalysisError("trim-and-fill needs at least 3 studies")
    estimator = estimator.upper()
    if estimator not in ("L0", "R0", "Q0"):
        raise MetaAnalysisError("estimator must be 'L0', 'R0' or 'Q0'")
    refit_test = res.test if test is None else str(test).lower()
    if refit_test not in TESTS:
        raise MetaAnalysisError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    yi, vi = res.yi.copy(), res.vi.copy()
    if side is None:
        slope = _refit(res, yi, vi, res.labels, M=np.sqrt(vi)[:, None], names=["sei"], test="z").beta[1]
        side = "right" if slope < 0 else "left"
    elif side not in ("left", "right"):
        raise MetaAnalysisError("side must be 'left' or 'right'")
    if side == "right":
        yi = -yi
    ix = np.argsort(yi, kind="stable")
    yi, vi = yi[ix], vi[ix]
    k = yi.size
    k0_prev, k0, it = -1, 0, 0
    se_k0 = 0.0
    while k0 != k0_prev:
        k0_prev = k0
        it += 1
        if it > max_iter:
            raise MetaAnalysisError("trim-and-fill did not converge")
        trunc = _fit(yi[: k - k0], vi[: k - k0], [str(i) for i in range(k - k0)], None, [], res.method,
                     "z", res.level, res.measure, None, 100, 1e-5, weighted=res.weighted)
        beta = trunc.estimate
        centred = yi - beta
        ranks = stats.rankdata(np.abs(centred), method="ordinal")
        signed = np.sign(centred) * ranks
        if estimator == "R0":
            neg = -signed[signed < 0]
            k0f = (k - (neg.max() if neg.size else 0)) - 1
            se_k0 = math.sqrt(2 * max(0, k0f) + 2)
        else:
            sr = float(signed[signed > 0].sum())
            if estimator == "L0":
                k0f = (4 * sr - k * (k + 1)) / (2 * k - 1)
            else:
                k0f = k - 0.5 - math.sqrt(max(2 * k**2 - 4 * sr + 0.25, 0.0))
            var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0f**3 + 27 * k0f**2 + 17 * k0f
                      - 18 * k * k0f**2 - 18 * k * k0f + 6 * k**2 * k0f) / 24
            if estimator == "L0":
                se_k0 = 4 * math.sqrt(max(var_sr, 0.0)) / (2 * k - 1)
            else:
                se_k0 = 2 * math.sqrt(max(var_sr, 0.0)) / math.sqrt((k - 0.5) ** 2 - k0f * (2 * k - k0f - 1))
        k0 = max(0, _round_half_even(k0f))
        se_k0 = max(0.0, se_k0)
    if k0 > 0:
        # mirror the k0 most extreme studies around the truncated estimate
        mirrored = 2 * beta - yi[k - k0:]
        filled_yi = -mirrored if side == "right" else mirrored
        filled_vi = vi[k - k0:]
        labels = list(res.labels) + [f"Filled {i + 1}" for i in range(k0)]
        fit = _fit(np.r_[res.yi, filled_yi], np.r_[res.vi, filled_vi], labels, None, [], res.method,
                   refit_test, res.level, res.measure, None, 100, 1e-5, weighted=res.weighted)
    else:
        filled_yi, filled_vi, fit = np.array([]), np.array([]), res
    return TrimfillResult(k0=int(k0), se_k0=float(se_k0), side=side, estimator=estimator, fit=fit,
                          filled_yi=filled_yi, filled_vi=filled_vi)


def _round_half_even(x: float) -> int:
    """R's round(): halves go to the even neighbour."""
    return int(round(x))


def _batch_intercept_fit(Y: np.ndarray, V: np.ndarray, method: str, threshold: float = 1e-5,
                         max_iter: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intercept-only fits of many data sets at once (rows of ``Y``/``V``).

    The same arithmetic as :func:`rma` (Hedges start, Fisher scoring with step halving and
    metafor's stopping rule for REML; closed form for DL), vectorised over rows; a row stops
    updating once it has converged, so each row equals its own ``rma`` fit.
    Returns (estimate, se, tau2).
    """
    k = Y.shape[1]
    if method == "EE":
        tau2 = np.zeros(Y.shape[0])
    elif method == "DL":
        w = 1 / V
        s1 = w.sum(1)
        mu = (w * Y).sum(1) / s1
        q = (w * (Y - mu[:, None]) ** 2).sum(1)
        tau2 = np.maximum(0.0, (q - (k - 1)) / (s1 - (w * w).sum(1) / s1))
    elif method == "REML":
        tau2 = np.maximum(0.0, Y.var(axis=1, ddof=1) - V.mean(axis=1))
        active = np.ones(Y.shape[0], bool)
        for _ in range(max_iter):
            if not active.any():
                break
            y, v, t = Y[active], V[active], tau2[active]
            w = 1 / (v + t[:, None])
            w2 = w * w
            s1, s2, s3 = w.sum(1), w2.sum(1), (w2 * w).sum(1)
            mu = (w * y).sum(1) / s1
            ypp = ((w * (y - mu[:, None])) ** 2).sum(1)
            adj = (ypp - (s1 - s2 / s1)) / (s2 - 2 * s3 / s1 + (s2 / s1) ** 2)
            for _ in range(60):  # step halving keeps tau2 >= 0
                neg = t + adj < 0
                if not neg.any():
                    break
                adj = np.where(neg, adj / 2, adj)
            new = np.where(t + adj < 0, 0.0, t + adj)
            done = np.abs(new - t) <= threshold
            tau2[active] = new
            idx = np.flatnonzero(active)
            active[idx[done]] = False
        if active.any():
            raise MetaAnalysisError(f"REML did not converge for {int(active.sum())} bootstrap samples")

        def reml_ll(t):  # restricted log-likelihood up to a constant (metafor's ll0check)
            w = 1 / (V + t[:, None])
            s1 = w.sum(1)
            mu = (w * Y).sum(1) / s1
            return -0.5 * np.log(V + t[:, None]).sum(1) - 0.5 * np.log(s1) - 0.5 * (w * (Y - mu[:, None]) ** 2).sum(1)

        stuck = (tau2 > 1e-5) & (reml_ll(np.zeros_like(tau2)) - reml_ll(tau2) > np.finfo(float).eps ** 0.25)
        tau2[stuck] = 0.0
    else:
        raise MetaAnalysisError("bootstrap supports method EE, DL or REML")
    w = 1 / (V + tau2[:, None])
    s1 = w.sum(1)
    return (w * Y).sum(1) / s1, np.sqrt(1 / s1), tau2


@dataclass(eq=False)
class BootstrapResult:
    """Non-parametric bootstrap of a model without moderators (studies resampled with replacement)."""

    estimates: np.ndarray
    tau2: np.ndarray
    level: float

    @property
    def ci(self) -> tuple[float, float]:
        """Percentile confidence interval of the pooled estimate."""
        a = (100 - self.level) / 2
        lo, hi = np.percentile(self.estimates, [a, 100 - a])
        return float(lo), float(hi)

    @property
    def tau2_ci(self) -> tuple[float, float]:
        a = (100 - self.level) / 2
        lo, hi = np.percentile(self.tau2, [a, 100 - a])
        return float(lo), float(hi)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"estimate": self.estimates, "tau2": self.tau2})


def bootstrap(res: RMAResult, n_boot: int = 10_000, seed: int | None = None) -> BootstrapResult:
    """Resample studies with replacement and refit the model ``n_boot`` times (vectorised).

    Supports EE, DL and REML models without moderators; each replicate equals an
    :func:`rma` fit of the resampled studies.
    """
    _require_intercept_only(res, "bootstrap")
    if res.k < 3:
        raise MetaAnalysisError("the bootstrap needs at least 3 studies")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, res.k, size=(n_boot, res.k))
    est, _, tau2 = _batch_intercept_fit(res.yi[idx], res.vi[idx], res.method)
    return BootstrapResult(estimates=est, tau2=tau2, level=res.level)
