"""Random- and equal-effects meta-analysis and meta-regression, as metafor's ``rma.uni``.

Estimators follow Viechtbauer (2010, J Stat Softw 36(3)) and metafor's ``R/rma.uni.r``:

- EE: inverse-variance equal-effects model.
- DL: DerSimonian-Laird, ``tau2 = (QE - (k - p)) / tr(P)``.
- HE: Hedges (method of moments on OLS residuals).
- SJ: Sidik-Jonkman, one step from ``tau2_0 = sum((y - mean(y))^2) / k`` (metafor's start,
  whatever the moderators).
- HS / HSk: Hunter-Schmidt, ``(QE - k) / sum(1/vi)`` (HSk: QE scaled by k / (k - p)).
- PM: Paule-Mandel, root of the generalised Q statistic ``Q(tau2) = k - p``.
- EB: empirical Bayes (Morris), Fisher-type iteration from the HE estimate.
- ML / REML: Fisher scoring from the HE estimate with step halving at 0, as metafor,
  including metafor's check that tau2 = 0 does not have the higher likelihood.

Tests: ``z`` (Wald), ``t`` (t/F distributions on k - p df, no adjustment), ``knha``
(Hartung-Knapp: variance scaled by the weighted residual mean square) and ``adhoc``
(knha with the scale factor floored at 1).

All quantities use p x p matrix algebra only (no k x k matrix), so a fit at k = 1,000 costs
a few vectorised passes over the data.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import special

from neuromodmap.evidence._errors import ConvergenceError, MetaAnalysisError, MetaAnalysisWarning
from neuromodmap.provenance import Provenance

__all__ = ["rma", "RMAResult", "SubgroupResult", "METHODS", "TESTS", "qprofile_tau2"]

METHODS: dict[str, str] = {
    "EE": "equal-effects (inverse-variance)",
    "DL": "DerSimonian-Laird",
    "HE": "Hedges",
    "SJ": "Sidik-Jonkman",
    "PM": "Paule-Mandel",
    "HS": "Hunter-Schmidt",
    "HSk": "Hunter-Schmidt (small-sample corrected)",
    "EB": "empirical Bayes",
    "ML": "maximum likelihood",
    "REML": "restricted maximum likelihood",
}

#: inference for the coefficients (metafor's ``test``)
TESTS: dict[str, str] = {
    "z": "Wald-type z tests",
    "t": "t and F tests on k - p degrees of freedom",
    "knha": "Hartung-Knapp t and F tests",
    "adhoc": "Hartung-Knapp t and F tests with the scale factor floored at 1",
}
T_TESTS = ("t", "knha", "adhoc")


# ---------------------------------------------------------------------------
# Linear algebra on weighted least squares without k x k matrices
# ---------------------------------------------------------------------------
class _WLS:
    """Weighted least squares pieces for weights ``w`` (P = W - W X (X'WX)^-1 X'W)."""

    __slots__ = ("w", "beta", "resid", "xtwx_inv", "X")

    def __init__(self, y: np.ndarray, X: np.ndarray, w: np.ndarray):
        self.w = w
        self.X = X
        if X.shape[1] == 1 and X[0, 0] == 1.0:
            # intercept-only: scalars, no matrix inverse (most fits, and every bootstrap re-fit)
            sw = float(w.sum())
            self.xtwx_inv = np.array([[1.0 / sw]])
            self.beta = np.array([float(np.dot(w, y)) / sw])
            self.resid = y - self.beta[0]
            return
        # thin QR of W^1/2 X: (X'WX)^-1 = R^-1 R^-T and beta = R^-1 Q'W^1/2 y, accurate when a
        # moderator such as a calendar year makes X'WX ill-conditioned
        sw = np.sqrt(w)
        q, r = np.linalg.qr(X * sw[:, None], mode="reduced")
        diag = np.abs(np.diag(r))
        if not np.all(np.isfinite(r)) or diag.min() <= 1e-10 * max(diag.max(), 1e-300):
            raise MetaAnalysisError("model matrix is singular (a moderator is constant or collinear)")
        r_inv = np.linalg.solve(r, np.eye(r.shape[0]))
        self.xtwx_inv = r_inv @ r_inv.T
        self.beta = r_inv @ (q.T @ (sw * y))
        self.resid = y - X @ self.beta

    @property
    def rss(self) -> float:  # y'Py
        return float(np.dot(self.w, self.resid**2))

    def _q(self) -> np.ndarray:
        """Orthonormal basis Q of sqrt(W) X (thin QR): P = W^1/2 (I - QQ') W^1/2, with no
        (X'WX)^-1 in the traces, which stay accurate when a moderator (e.g. a year) makes
        X'WX ill-conditioned."""
        return np.linalg.qr(self.X * np.sqrt(self.w)[:, None], mode="reduced")[0]

    def trace_p(self) -> float:
        X, w = self.X, self.w
        if X.shape[1] == 1 and X[0, 0] == 1.0:
            s1 = float(w.sum())
            return s1 - float(np.dot(w, w)) / s1
        h = np.sum(self._q() ** 2, axis=1)  # leverages of the weighted fit
        return float(w.sum() - np.dot(w, h))

    def trace_pp(self) -> float:
        X, w = self.X, self.w
        if X.shape[1] == 1 and X[0, 0] == 1.0:
            s1, w2 = float(w.sum()), w * w
            s2 = float(w2.sum())
            return s2 - 2 * float(np.dot(w2, w)) / s1 + (s2 / s1) ** 2
        q = self._q()
        h = np.sum(q**2, axis=1)
        m = q.T @ (q * w[:, None])
        return float(np.dot(w, w) - 2 * np.dot(w * w, h) + np.sum(m * m))

    def ypp_y(self) -> float:  # y'PPy = |W e|^2
        pe = self.w * self.resid
        return float(np.dot(pe, pe))


_R_TOL = np.finfo(float).eps ** 0.25  # R's uniroot() default tolerance, used by metafor


def r_uniroot(f, lower: float, upper: float, tol: float = _R_TOL, maxiter: int = 1000) -> float:
    """Brent's root finder exactly as R's ``uniroot`` (``R_zeroin2`` in R's stats/zeroin.c).

    metafor finds the Paule-Mandel estimate and the Q-profile bounds with ``uniroot`` at
    its default tolerance (about 1.2e-4); using the same iteration reproduces metafor's
    printed numbers, not merely the exact root.
    """
    eps = np.finfo(float).eps
    a, b = float(lower), float(upper)
    fa, fb = f(a), f(b)
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    if fa * fb > 0:
        raise MetaAnalysisError("root finder: f(lower) and f(upper) have the same sign")
    c, fc = a, fa
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * eps * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    raise ConvergenceError("root finder did not converge")


def _q_gen(tau2: float, y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    """Generalised Q statistic at ``tau2`` (decreasing in tau2)."""
    return _WLS(y, X, 1.0 / (v + tau2)).rss


def _tau2_he(y, v, X) -> float:
    k, p = X.shape
    ols = _WLS(y, X, np.ones(k))
    hat = np.einsum("ij,jk,ik->i", X, ols.xtwx_inv, X)
    return (float(np.dot(ols.resid, ols.resid)) - float(np.sum(v * (1 - hat)))) / (k - p)


def _r_mad(y: np.ndarray) -> float:
    """R's ``mad()``: 1.4826 * median absolute deviation from the median."""
    return 1.4826 * float(np.median(np.abs(y - np.median(y))))


def _sj_start(y: np.ndarray) -> float:
    """metafor's Sidik-Jonkman start: ``var(yi) * (k - 1) / k``, whatever the moderators."""
    return float(np.mean((y - y.mean()) ** 2))


def _loglik0_check(y, v, X, tau2: float, method: str) -> float:
    """metafor's ``ll0check``: if tau2 = 0 has the higher (restricted) likelihood, return 0."""
    k, p = X.shape

    def ll(t):
        fit = _WLS(y, X, 1.0 / (v + t))
        out = -0.5 * float(np.sum(np.log(v + t))) - 0.5 * fit.rss
        if method == "ML":
            return out - 0.5 * k * math.log(2 * math.pi)
        logdet = float(np.linalg.slogdet(X.T @ (X * fit.w[:, None]))[1])
        return out - 0.5 * (k - p) * math.log(2 * math.pi) - 0.5 * logdet

    if np.all(v > 0) and ll(0.0) - ll(tau2) > _R_TOL and tau2 > 1e-5:
        warnings.warn("Fisher scoring may have stopped at a local maximum; tau² set to 0 (as metafor)",
                      MetaAnalysisWarning, stacklevel=4)
        return 0.0
    return tau2


def _tau2_estimate(y, v, X, method: str, max_iter: int, threshold: float) -> tuple[float, int, bool]:
    """Return (tau2, iterations, converged)."""
    k, p = X.shape
    if method == "EE":
        return 0.0, 0, True
    if method == "DL":
        fe = _WLS(y, X, 1.0 / v)
        return max(0.0, (fe.rss - (k - p)) / fe.trace_p()), 0, True
    if method == "HE":
        return max(0.0, _tau2_he(y, v, X)), 0, True
    if method in ("HS", "HSk"):
        fe = _WLS(y, X, 1.0 / v)
        rss = fe.rss * (k / (k - p) if method == "HSk" else 1.0)
        return max(0.0, (rss - k) / float(fe.w.sum())), 0, True
    if method == "SJ":
        tau2_0 = _sj_start(y)
        if tau2_0 <= 0:
            return 0.0, 0, True
        fit = _WLS(y, X, 1.0 / (v + tau2_0))
        return max(0.0, tau2_0 * fit.rss / (k - p)), 1, True
    if method == "PM":
        target = k - p
        if _q_gen(0.0, y, v, X) < target:
            return 0.0, 0, True
        # metafor: uniroot() on [tau2.min, tau2.max] = [0, max(100, 10 mad(yi)^2)]; widen only if needed
        upper = max(100.0, 10 * _r_mad(y) ** 2)
        n = 0
        while _q_gen(upper, y, v, X) > target:
            upper *= 10
            n += 1
            if n > 20:
                raise ConvergenceError("Paule-Mandel estimator: no root of Q(tau2) = k - p found")
        root = r_uniroot(lambda t: _q_gen(t, y, v, X) - target, 0.0, upper)
        return float(root), 0, True
    if method in ("ML", "REML", "EB"):
        tau2 = max(0.0, _tau2_he(y, v, X))
        for it in range(1, max_iter + 1):
            fit = _WLS(y, X, 1.0 / (v + tau2))
            if method == "REML":
                adj = (fit.ypp_y() - fit.trace_p()) / fit.trace_pp()
            elif method == "ML":
                w = fit.w
                adj = (fit.ypp_y() - float(w.sum())) / float(np.dot(w, w))
            else:  # EB
                adj = (fit.rss * k / (k - p) - k) / float(fit.w.sum())
            if not np.isfinite(adj):
                adj = 0.0
            # step halving keeps tau2 inside the parameter space (metafor does the same)
            n_half = 0
            while tau2 + adj < 0 and n_half < 1100:
                adj /= 2
                n_half += 1
            new = tau2 + adj if tau2 + adj >= 0 else 0.0
            change = abs(new - tau2)
            tau2 = new
            if change <= threshold:
                tau2 = max(0.0, tau2)
                if method != "EB":
                    tau2 = _loglik0_check(y, v, X, tau2, method)
                return tau2, it, True
        return max(0.0, tau2), max_iter, False
    raise MetaAnalysisError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _se_tau2_moments(method: str, y, v, X, tau2: float) -> float:
    """Standard error of the HE, SJ, HS, PM and EB estimators (metafor rma.uni.r formulas)."""
    k, p = X.shape
    t = max(tau2, 0.0)
    if method in ("PM", "EB"):
        w = 1.0 / (v + tau2)
        return math.sqrt(2 * k**2 / (k - p) / float(w.sum()) ** 2)
    if method in ("HS", "HSk"):
        fe = _WLS(y, X, 1.0 / v)
        se = math.sqrt((2 * (k - p) + 4 * t * fe.trace_p() + 2 * t**2 * fe.trace_pp()) / float(fe.w.sum()) ** 2)
        return se * (k / (k - p) if method == "HSk" else 1.0)
    if method not in ("HE", "SJ") or k > 5000:  # k x k matrices below
        return float("nan")
    if method == "HE":
        P = np.eye(k) - X @ np.linalg.solve(X.T @ X, X.T)
    else:
        tau2_0 = _sj_start(y)
        W = np.diag(1.0 / (v + tau2_0))
        P = W - W @ X @ np.linalg.solve(X.T @ W @ X, X.T @ W)
    PV = P * v[None, :]
    pvpv = float(np.sum(PV * PV.T))
    if method == "HE":
        return math.sqrt((2 * pvpv + 4 * t * float(np.trace(PV)) + 2 * t**2 * (k - p)) / (k - p) ** 2)
    return math.sqrt(tau2_0**2 / (k - p) ** 2 * (2 * pvpv + 4 * t * float(np.sum(PV * P)) + 2 * t**2 * float(np.sum(P * P))))


def qprofile_tau2(y, v, X=None, level: float = 95, tau2: float = 0.0) -> tuple[float, float]:
    """Q-profile confidence interval for tau² (Viechtbauer 2007; metafor ``confint.rma.uni``).

    Searched on [0, max(100, 10 tau2)] with R's ``uniroot`` at metafor's tolerance.
    """
    y = np.asarray(y, float)
    v = np.asarray(v, float)
    if X is None:
        X = np.ones((y.size, 1))
    k, p = X.shape
    alpha = 1 - level / 100
    crit_lb = float(special.chdtri(k - p, alpha / 2))  # upper alpha/2 quantile
    crit_ub = float(special.chdtri(k - p, 1 - alpha / 2))
    q0 = _q_gen(0.0, y, v, X)

    upper = max(100.0, 10 * tau2)
    q_upper = _q_gen(upper, y, v, X)

    def solve(crit):
        if q0 < crit:
            return 0.0
        if q_upper > crit:  # bound lies beyond the search interval (metafor prints ">")
            return upper
        return float(r_uniroot(lambda t: _q_gen(t, y, v, X) - crit, 0.0, upper))

    return solve(crit_lb), solve(crit_ub)


# ---------------------------------------------------------------------------
# Result objects
# ---------------------------------------------------------------------------
def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "NA"
    return "<.0001" if p < 1e-4 else f"{p:.4f}"


def _stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    for cut, s in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return s
    return ""


@dataclass(eq=False)
class RMAResult:
    """A fitted meta-analytic model (the attributes follow metafor's names).

    ``estimate``/``se``/``zval``/``pval``/``ci_lb``/``ci_ub`` describe the intercept (the
    pooled effect for a model without moderators); ``coefficients`` holds every
    coefficient of a meta-regression.
    """

    method: str
    test: str
    level: float
    k: int
    p: int
    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    labels: list[str]
    coef_names: list[str]
    beta: np.ndarray
    vb: np.ndarray
    tau2: float
    se_tau2: float
    q: float
    q_p: float
    i2: float
    h2: float
    qm: float
    qm_p: float
    qm_df: tuple[int, int] | int
    pi_lb: float
    pi_ub: float
    converged: bool = True
    iterations: int = 0
    r2: float | None = None
    measure: str | None = None
    ni: np.ndarray | None = None
    fit_stats: dict[str, float] = field(default_factory=dict)
    #: typical within-study variance (metafor's vt), for I² = tau² / (vt + tau²)
    vt: float = float("nan")
    #: False: unweighted (OLS) coefficients, as metafor's ``weighted=FALSE``
    weighted: bool = True
    #: where the data came from (set by the sheet pipeline; None for arrays)
    provenance: Provenance | None = None

    @cached_property
    def tau2_ci(self) -> tuple[float, float]:
        """Q-profile confidence interval for tau² (computed on first use)."""
        try:
            return qprofile_tau2(self.yi, self.vi, self.X, self.level, self.tau2)
        except (MetaAnalysisError, ZeroDivisionError, FloatingPointError):
            return (float("nan"), float("nan"))

    @property
    def i2_ci(self) -> tuple[float, float]:
        return tuple(100 * t / (self.vt + t) for t in self.tau2_ci)

    @property
    def h2_ci(self) -> tuple[float, float]:
        return tuple((self.vt + t) / self.vt for t in self.tau2_ci)

    # --- intercept / pooled effect -------------------------------------------------
    @property
    def estimate(self) -> float:
        return float(self.beta[0])

    @property
    def se(self) -> float:
        return float(math.sqrt(self.vb[0, 0]))

    @property
    def ses(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vb))

    @property
    def stats(self) -> np.ndarray:
        return self.beta / self.ses

    @property
    def df(self) -> int | None:
        return self.k - self.p if self.test in T_TESTS else None

    def _crit(self) -> float:
        alpha = 1 - self.level / 100
        if self.test in T_TESTS:
            return float(special.stdtrit(self.k - self.p, 1 - alpha / 2))
        return float(special.ndtri(1 - alpha / 2))

    @property
    def pvals(self) -> np.ndarray:
        s = np.abs(self.stats)
        if self.test in T_TESTS:
            return 2 * special.stdtr(self.k - self.p, -s)
        return 2 * special.ndtr(-s)

    @property
    def zval(self) -> float:
        return float(self.stats[0])

    @property
    def tval(self) -> float:
        return float(self.stats[0])

    @property
    def pval(self) -> float:
        return float(self.pvals[0])

    @property
    def ci_lbs(self) -> np.ndarray:
        return self.beta - self._crit() * self.ses

    @property
    def ci_ubs(self) -> np.ndarray:
        return self.beta + self._crit() * self.ses

    @property
    def ci_lb(self) -> float:
        return float(self.ci_lbs[0])

    @property
    def ci_ub(self) -> float:
        return float(self.ci_ubs[0])

    @property
    def tau(self) -> float:
        return math.sqrt(self.tau2)

    @property
    def weights(self) -> np.ndarray:
        """Percentage weight of each study in the fit (as metafor's ``weights()``)."""
        w = 1.0 / (self.vi + self.tau2)
        return 100 * w / w.sum()

    @property
    def method_label(self) -> str:
        return METHODS[self.method]

    # --- prediction ------------------------------------------------------------------
    def predict(self, transf=None, newmods=None) -> dict[str, float]:
        """Predicted (average) effect with CI and prediction interval, optionally back-transformed.

        ``transf`` is a function applied to every bound (e.g. :func:`transf_exp`).
        ``newmods`` gives moderator values (without the intercept) for meta-regression.
        """
        x = np.r_[1.0, np.atleast_1d(np.asarray(newmods, float))] if newmods is not None else np.eye(self.p)[0]
        if newmods is None and self.p > 1:
            raise MetaAnalysisError("give newmods to predict from a meta-regression")
        pred = float(x @ self.beta)
        se = float(math.sqrt(x @ self.vb @ x))
        crit = self._crit()
        pi_se = math.sqrt(se**2 + self.tau2)
        out = {"pred": pred, "se": se, "ci_lb": pred - crit * se, "ci_ub": pred + crit * se,
               "pi_lb": pred - crit * pi_se, "pi_ub": pred + crit * pi_se}
        if self.method == "EE":  # no between-study distribution to predict from (metafor: NA)
            out["pi_lb"] = out["pi_ub"] = float("nan")
        if transf is not None:
            out = {key: (val if key == "se" else float(transf(val))) for key, val in out.items()}
            out["se"] = float("nan")
        return out

    # --- rendering -------------------------------------------------------------------
    def coef_table(self) -> pd.DataFrame:
        """The coefficient table (estimate, se, zval/tval, pval, ci_lb, ci_ub)."""
        stat = "tval" if self.test in T_TESTS else "zval"
        return pd.DataFrame(
            {"estimate": self.beta, "se": self.ses, stat: self.stats, "pval": self.pvals,
             "ci_lb": self.ci_lbs, "ci_ub": self.ci_ubs},
            index=pd.Index(self.coef_names, name="coefficient"),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row with the pooled estimate and heterogeneity statistics."""
        row = {
            "k": self.k, "method": self.method, "test": self.test, "measure": self.measure,
            "estimate": self.estimate, "se": self.se,
            ("tval" if self.test in T_TESTS else "zval"): self.zval, "pval": self.pval,
            "ci_lb": self.ci_lb, "ci_ub": self.ci_ub, "pi_lb": self.pi_lb, "pi_ub": self.pi_ub,
            "tau2": self.tau2, "tau2_ci_lb": self.tau2_ci[0], "tau2_ci_ub": self.tau2_ci[1],
            "i2": self.i2, "h2": self.h2, "q": self.q, "q_df": self.k - self.p, "q_p": self.q_p,
        }
        if self.p > 1:
            row.update({"qm": self.qm, "qm_p": self.qm_p, "r2": self.r2})
        return pd.DataFrame([row])

    def study_frame(self) -> pd.DataFrame:
        """Per-study table: effect, variance, CI and weight (%)."""
        crit = float(special.ndtri(1 - (1 - self.level / 100) / 2))
        se = np.sqrt(self.vi)
        return pd.DataFrame(
            {"yi": self.yi, "vi": self.vi, "ci_lb": self.yi - crit * se, "ci_ub": self.yi + crit * se,
             "weight": self.weights},
            index=pd.Index(self.labels, name="study"),
        )

    def summary(self) -> str:
        """Text like metafor's ``summary.rma`` (the printed model plus fit statistics)."""
        text = self._print()
        first, rest = text.split("\n", 1)
        names = ("logLik", "deviance", "AIC", "BIC", "AICc")
        header = "".join(f"{n:>10}" for n in names)
        values = "".join(f"{self.fit_stats[n]:>10.4f}" for n in names)
        return f"{first}\n\n{header}\n{values}\n{rest}"

    def _print(self) -> str:
        """Text like metafor's ``print.rma.uni``."""
        lines: list[str] = []
        model = "Equal-Effects Model" if self.method == "EE" else (
            "Random-Effects Model" if self.p == 1 else "Mixed-Effects Model")
        est = "" if self.method == "EE" else f"; tau^2 estimator: {self.method}"
        lines.append(f"{model} (k = {self.k}{est})")
        lines.append("")
        if self.method != "EE":
            what = "total" if self.p == 1 else "residual"
            total = "total" if self.p == 1 else "unaccounted"
            se_tau2 = f" (SE = {self.se_tau2:.4f})" if np.isfinite(self.se_tau2) else ""
            block = [(f"tau^2 (estimated amount of {what} heterogeneity):", f"{self.tau2:.4f}{se_tau2}"),
                     ("tau (square root of estimated tau^2 value):", f"{self.tau:.4f}"),
                     (f"I^2 ({what} heterogeneity / {total} variability):", f"{self.i2:.2f}%"),
                     (f"H^2 ({total} variability / sampling variability):", f"{self.h2:.2f}")]
            if self.p > 1 and self.r2 is not None:
                block.append(("R^2 (amount of heterogeneity accounted for):", f"{self.r2:.2f}%"))
        else:
            block = [("I^2 (total heterogeneity / total variability):", f"{self.i2:.2f}%"),
                     ("H^2 (total variability / sampling variability):", f"{self.h2:.2f}")]
        width = max(len(label) for label, _ in block)
        lines.extend(f"{label:<{width}} {value}" for label, value in block)
        lines.append("")
        lines.append("Test for Heterogeneity:" if self.p == 1 else "Test for Residual Heterogeneity:")
        qp = _fmt_p(self.q_p)
        lines.append(f"Q{'E' if self.p > 1 else ''}(df = {self.k - self.p}) = {self.q:.4f}, "
                     f"p-val {'<' if qp.startswith('<') else '='} {qp.lstrip('<')}")
        lines.append("")
        if self.p > 1:
            mp = _fmt_p(self.qm_p)
            if self.test in T_TESTS:
                d1, d2 = self.qm_df
                lines.append(f"Test of Moderators (coefficients 2:{self.p}):")
                lines.append(f"F(df1 = {d1}, df2 = {d2}) = {self.qm:.4f}, p-val {'<' if mp.startswith('<') else '='} {mp.lstrip('<')}")
            else:
                lines.append(f"Test of Moderators (coefficients 2:{self.p}):")
                lines.append(f"QM(df = {self.qm_df}) = {self.qm:.4f}, p-val {'<' if mp.startswith('<') else '='} {mp.lstrip('<')}")
            lines.append("")
        lines.append("Model Results:")
        lines.append("")
        tab = self.coef_table()
        stat = tab.columns[2]
        header = f"{'':>10} {'estimate':>9} {'se':>8} {stat:>8} {'pval':>8} {'ci.lb':>8} {'ci.ub':>8}"
        lines.append(header if self.p > 1 else header[11:])
        for name, row in tab.iterrows():
            cells = (f"{row['estimate']:>9.4f} {row['se']:>8.4f} {row[stat]:>8.4f} {_fmt_p(row['pval']):>8} "
                     f"{row['ci_lb']:>8.4f} {row['ci_ub']:>8.4f} {_stars(row['pval'])}")
            lines.append(f"{name:>10} {cells}" if self.p > 1 else cells)
        lines.append("")
        lines.append("---")
        lines.append("Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
        if not self.converged:
            lines.append("")
            lines.append("WARNING: the tau^2 estimator did not converge.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._print()

    def methods_sentence(self) -> str:
        """One methods-section sentence describing this model."""
        test = {"knha": "with Hartung-Knapp(-Sidik-Jonkman) t-based confidence intervals",
                "adhoc": "with Hartung-Knapp t-based confidence intervals (scale factor floored at 1)",
                "t": "with t-based confidence intervals (k - p degrees of freedom)"}.get(
                    self.test, "with Wald-type (normal) confidence intervals")
        if self.method == "EE":
            return f"Effects were pooled with an inverse-variance equal-effects model {test}."
        return (f"Effects were pooled with a random-effects model (tau² estimated by {self.method_label}), "
                f"{test}; heterogeneity was quantified with Cochran's Q, I² and tau² with a Q-profile "
                f"{self.level:g}% confidence interval, and a {self.level:g}% prediction interval is reported.")


@dataclass(eq=False)
class SubgroupResult:
    """Separate fits per subgroup, the overall fit and the test for subgroup differences."""

    fits: dict[str, RMAResult]
    overall: RMAResult | None
    q_between: float
    q_between_df: int
    q_between_p: float
    skipped: dict[str, str] = field(default_factory=dict)
    #: studies of the subgroups that could not be pooled: group -> (labels, yi, vi)
    unpooled: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = field(default_factory=dict)
    provenance: Provenance | None = None

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for name, fit in self.fits.items():
            frame = fit.to_frame()
            frame.insert(0, "subgroup", name)
            rows.append(frame)
        if self.overall is not None:
            frame = self.overall.to_frame()
            frame.insert(0, "subgroup", "overall")
            rows.append(frame)
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()

    def summary(self) -> str:
        parts = []
        for name, fit in self.fits.items():
            parts.append(f"=== Subgroup: {name} ===\n{fit.summary()}")
        for name, why in self.skipped.items():
            parts.append(f"=== Subgroup: {name} === not pooled: {why}")
        if self.overall is not None:
            parts.append(f"=== All studies ===\n{self.overall.summary()}")
        if len(self.fits) >= 2:  # one pooled subgroup: there is no difference to test
            parts.append(
                f"Test for Subgroup Differences: Q_between(df = {self.q_between_df}) = {self.q_between:.4f}, "
                f"p-val = {_fmt_p(self.q_between_p)}"
            )
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.summary()


# ---------------------------------------------------------------------------
# rma
# ---------------------------------------------------------------------------
def mods_matrix(mods, k: int, unit: str = "studies") -> tuple[np.ndarray | None, list[str]]:
    """Moderators as a float matrix (k rows) and their names, as metafor names them: a
    DataFrame's columns, a Series' name, else ``mods`` / ``mods1, mods2, ...``; None without
    moderators. Shared by :func:`rma` and :func:`neuromodmap.evidence.rma_mv`."""
    if mods is None:
        return None, []
    if isinstance(mods, pd.DataFrame):
        names = [str(c) for c in mods.columns]
        M = mods.to_numpy(dtype=float)
    elif isinstance(mods, pd.Series):
        names = [str(mods.name or "mods")]
        M = mods.to_numpy(dtype=float)[:, None]
    else:
        M = np.asarray(mods, dtype=float)
        if M.ndim == 1:
            M = M[:, None]
        names = [f"mods{j + 1}" if M.shape[1] > 1 else "mods" for j in range(M.shape[1])]
    if M.shape[0] != k:
        raise MetaAnalysisError(f"mods has {M.shape[0]} rows for {k} {unit}")
    return M, names


def _clean_inputs(yi, vi, labels, mods):
    def to_float(name, values):
        try:  # fast path: already numeric
            return np.atleast_1d(np.asarray(values, dtype=float)).ravel()
        except (TypeError, ValueError):
            pass
        arr = np.atleast_1d(np.asarray(values, dtype=object)).ravel()
        out = np.empty(arr.shape, float)
        for i, val in enumerate(arr):
            try:
                out[i] = np.nan if val is None else float(val)
            except (TypeError, ValueError):
                raise MetaAnalysisError(f"{name}[{i}] is not a number: {val!r}") from None
        return out

    y = to_float("yi", yi)
    v = to_float("vi", vi)
    if y.shape != v.shape:
        raise MetaAnalysisError(f"yi has {y.size} values but vi has {v.size}")
    k = y.size
    if labels is None:
        labels = [f"Study {i + 1}" for i in range(k)]
    labels = [str(s) for s in labels]
    if len(labels) != k:
        raise MetaAnalysisError(f"{len(labels)} study labels for {k} studies")
    M, names = mods_matrix(mods, k)
    bad = ~np.isfinite(y) | ~np.isfinite(v)
    if M is not None:
        bad |= ~np.all(np.isfinite(M), axis=1)
    if bad.any():
        dropped = [labels[i] for i in np.flatnonzero(bad)]
        warnings.warn(f"{len(dropped)} stud{'y' if len(dropped) == 1 else 'ies'} with missing/NaN values "
                      f"omitted: {', '.join(dropped)}", MetaAnalysisWarning, stacklevel=3)
        keep = ~bad
        y, v = y[keep], v[keep]
        labels = [s for s, ok in zip(labels, keep, strict=True) if ok]
        if M is not None:
            M = M[keep]
    if np.any(v < 0):
        neg = [labels[i] for i in np.flatnonzero(v < 0)]
        raise MetaAnalysisError(f"negative sampling variance for: {', '.join(neg)}")
    if y.size and np.all(v == 0):
        raise MetaAnalysisError("all sampling variances are zero; inverse-variance weights are undefined")
    return y, v, labels, M, names, bad


def rma(
    yi,
    vi,
    method: str = "REML",
    test: str = "z",
    mods=None,
    level: float = 95,
    *,
    slab: Sequence[str] | None = None,
    subgroup: Sequence | None = None,
    measure: str | None = None,
    ni=None,
    weighted: bool = True,
    max_iter: int = 100,
    threshold: float = 1e-5,
) -> RMAResult | SubgroupResult:
    """Fit an equal-, random- or mixed-effects meta-analytic model (metafor ``rma.uni``).

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and sampling variances (e.g. from :func:`escalc`).
    method : {"REML", "ML", "DL", "PM", "HE", "SJ", "HS", "HSk", "EB", "EE"}
        tau² estimator; ``EE`` (alias ``FE``) is the equal-effects model.
    test : {"z", "t", "knha", "adhoc"}
        ``knha`` uses the Hartung-Knapp adjustment with t (and F) distributions; ``t``
        uses t/F distributions without the adjustment; ``adhoc`` is knha with the scale
        factor floored at 1 (metafor's names).
    mods : array-like or DataFrame, optional
        Moderators for a mixed-effects meta-regression (an intercept is added).
    level : float
        Confidence level in percent.
    slab : sequence of str, optional
        Study labels.
    subgroup : sequence, optional
        Group label per study: fits each group separately and tests subgroup differences
        (Q-between, df = groups - 1); returns a :class:`SubgroupResult`.
    measure : str, optional
        Effect measure, kept for back-transformations and reports.
    ni : array-like, optional
        Sample sizes (for the inverse Freeman-Tukey back-transformation).
    weighted : bool
        ``False`` gives the unweighted (OLS) estimate with its exact variance, as
        metafor's ``weighted=FALSE``.
    max_iter, threshold : int, float
        Fisher scoring limits for ML/REML (metafor's defaults: stop when tau² changes by
        less than 1e-5, starting from the Hedges estimate). Non-convergence raises
        :class:`ConvergenceError`.
    """
    method = str(method).upper()
    if method in ("FE", "CE"):
        method = "EE"
    if method == "HSK":
        method = "HSk"
    if method not in METHODS:
        raise MetaAnalysisError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    test = str(test).lower()
    if test in ("hksj", "hk"):
        test = "knha"
    if test not in TESTS:
        raise MetaAnalysisError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    if measure is None:
        measure = getattr(yi, "attrs", {}).get("measure") if hasattr(yi, "attrs") else None
    if slab is None and isinstance(yi, pd.Series) and not isinstance(yi.index, pd.RangeIndex):
        slab = list(yi.index)
    if subgroup is not None:
        return _subgroups(yi, vi, subgroup, method=method, test=test, level=level, slab=slab,
                          measure=measure, ni=ni, max_iter=max_iter, threshold=threshold)
    y, v, labels, M, mod_names, dropped = _clean_inputs(yi, vi, slab, mods)
    n_arr = None
    if ni is not None:
        n_arr = np.asarray(ni, float)[~dropped] if np.size(ni) == dropped.size else np.asarray(ni, float)
    return _fit(y, v, labels, M, mod_names, method, test, level, measure, n_arr, max_iter, threshold,
                weighted=weighted)


def _fit(y, v, labels, M, mod_names, method, test, level, measure, ni, max_iter, threshold,
         weighted: bool = True) -> RMAResult:
    k = y.size
    if k == 0:
        raise MetaAnalysisError("no studies to pool (k = 0)")
    if k == 1:
        raise MetaAnalysisError(f"only one study ({labels[0]}); at least 2 are needed to pool")
    X = np.ones((k, 1)) if M is None else np.column_stack([np.ones(k), M])
    p = X.shape[1]
    if k <= p:
        raise MetaAnalysisError(f"k = {k} studies is too few for {p} coefficients")
    if np.any(v == 0) and method == "EE":
        zero = [labels[i] for i in np.flatnonzero(v == 0)]
        raise MetaAnalysisError(f"zero sampling variance (infinite weight) for: {', '.join(zero)}")

    tau2, iterations, converged = _tau2_estimate(y, v, X, method, max_iter, threshold)
    if not converged:
        raise ConvergenceError(
            f"{method} estimator of tau² did not converge in {max_iter} iterations "
            f"(last value {tau2:.6g}); try method='PM' or 'DL', or raise max_iter"
        )
    if np.any(v + tau2 <= 0):
        zero = [labels[i] for i in np.flatnonzero(v + tau2 <= 0)]
        raise MetaAnalysisError(f"zero sampling variance and tau² = 0 (infinite weight) for: {', '.join(zero)}")

    fit = _WLS(y, X, 1.0 / (v + tau2))
    vb = fit.xtwx_inv.copy()
    # Hartung-Knapp scale: residual mean square of the *weighted* fit, also when the
    # coefficients are unweighted (metafor's RSS.knha)
    rss_knha = fit.rss
    if not weighted:
        ols = _WLS(y, X, np.ones(k))
        fit.beta, fit.resid = ols.beta, ols.resid
        vb = ols.xtwx_inv @ (X.T @ (X * (v + tau2)[:, None])) @ ols.xtwx_inv
    if test in ("knha", "adhoc"):
        s2w = 0.0 if rss_knha <= np.finfo(float).eps else rss_knha / (k - p)
        if test == "adhoc":
            s2w = max(s2w, 1.0)
        vb = s2w * vb

    # heterogeneity: Q from the equal-effects (residual) fit with w = 1/vi
    with np.errstate(divide="ignore"):
        w0 = 1.0 / v
    if np.all(np.isfinite(w0)):
        fe = _WLS(y, X, w0)
        q = fe.rss
        trace_p0 = fe.trace_p()
    else:
        q, trace_p0 = float("nan"), float("nan")
    q_p = float(special.chdtrc(k - p, q)) if np.isfinite(q) else float("nan")

    if p == 1:
        sw, sw2 = w0.sum(), np.dot(w0, w0)
        vt = (k - 1) * sw / (sw**2 - sw2)
    else:
        vt = (k - p) / trace_p0
    if method == "EE":
        i2 = max(0.0, 100 * (q - (k - p)) / q) if q > 0 else 0.0
        h2 = q / (k - p)
    else:
        i2 = 100 * tau2 / (vt + tau2)
        h2 = (vt + tau2) / vt


    if method == "REML":
        se_tau2 = math.sqrt(2 / fit.trace_pp())
    elif method == "ML":
        se_tau2 = math.sqrt(2 / float(np.dot(fit.w, fit.w)))
    elif method == "DL":
        fe = _WLS(y, X, w0)
        trp = fe.trace_p()
        se_tau2 = math.sqrt((2 * (k - p) + 4 * tau2 * trp + 2 * tau2**2 * fe.trace_pp()) / trp**2)
    else:
        se_tau2 = _se_tau2_moments(method, y, v, X, tau2)

    # omnibus test of moderators
    if p > 1:
        b = fit.beta[1:]
        qm = float(b @ np.linalg.solve(vb[1:, 1:], b))
        if test in T_TESTS:
            qm = qm / (p - 1)
            qm_df: tuple[int, int] | int = (p - 1, k - p)
            qm_p = float(special.fdtrc(p - 1, k - p, qm))
        else:
            qm_df = p - 1
            qm_p = float(special.chdtrc(p - 1, qm))
    else:
        z = fit.beta[0] / math.sqrt(vb[0, 0]) if vb[0, 0] > 0 else float("nan")
        qm = float(z**2)
        qm_df = (1, k - 1) if test in T_TESTS else 1
        qm_p = float(special.fdtrc(1, k - 1, qm) if test in T_TESTS else special.chdtrc(1, qm))

    alpha = 1 - level / 100
    crit = float(special.stdtrit(k - p, 1 - alpha / 2) if test in T_TESTS else special.ndtri(1 - alpha / 2))
    pi_se = math.sqrt(vb[0, 0] + tau2)
    pi_lb, pi_ub = float(fit.beta[0] - crit * pi_se), float(fit.beta[0] + crit * pi_se)

    # log-likelihood and information criteria (metafor fitstats; parameters p + 1 unless EE)
    rss = float(np.dot(1.0 / (v + tau2), (y - X @ fit.beta) ** 2))
    log_det_v = float(np.sum(np.log(v + tau2)))
    ll_ml = -0.5 * (k * math.log(2 * math.pi) + log_det_v + rss)
    sign, logdet_xtwx = np.linalg.slogdet(X.T @ (X / (v + tau2)[:, None]))
    # metafor's default REMLf=TRUE adds 1/2 log|X'X|, so logLik/AIC match its output
    logdet_xtx = float(np.linalg.slogdet(X.T @ X)[1])
    ll_reml = -0.5 * ((k - p) * math.log(2 * math.pi) + log_det_v + logdet_xtwx + rss) + 0.5 * logdet_xtx
    n_par = p + (0 if method == "EE" else 1)
    ll = ll_reml if method == "REML" else ll_ml
    n_obs = k - p if method == "REML" else k
    with np.errstate(divide="ignore"):
        ll_full = -0.5 * (k * math.log(2 * math.pi) + float(np.sum(np.log(v)))) if np.all(v > 0) else float("nan")
    fit_stats = {
        "logLik": ll,
        "deviance": -2 * (ll - ll_full) if method != "REML" else -2 * ll,
        "AIC": -2 * ll + 2 * n_par,
        "BIC": -2 * ll + n_par * math.log(n_obs),
        "AICc": -2 * ll + 2 * n_par * max(n_obs, n_par + 2) / (max(n_obs, n_par + 2) - n_par - 1),
    }

    r2 = None
    if p > 1 and method != "EE":
        # metafor r2def "1": proportional reduction of tau² against the random-effects model
        try:
            tau2_re, _, conv_re = _tau2_estimate(y, v, np.ones((k, 1)), method, max_iter, threshold)
        except (MetaAnalysisError, ConvergenceError):
            tau2_re, conv_re = float("nan"), False
        if not conv_re or not np.isfinite(tau2_re):
            r2 = float("nan")
        else:
            r2 = 0.0 if tau2_re <= 0 else max(0.0, 100 * (tau2_re - tau2) / tau2_re)
    elif p > 1:
        # equal-effects meta-regression: metafor reports the adjusted R² of the weighted
        # least-squares regression of yi on the moderators (weights 1/vi; none if unweighted)
        r2 = _adjusted_r2(y, X, 1.0 / v if weighted else np.ones(k))

    names = ["intrcpt"] + (mod_names if M is not None else [])
    return RMAResult(
        method=method, test=test, level=level, k=k, p=p, yi=y, vi=v, X=X, labels=labels,
        coef_names=names, beta=fit.beta, vb=vb, tau2=float(tau2),
        se_tau2=se_tau2, q=q, q_p=q_p, i2=float(i2), h2=float(h2),
        qm=qm, qm_p=qm_p, qm_df=qm_df, pi_lb=pi_lb, pi_ub=pi_ub, converged=converged,
        iterations=iterations, r2=r2, measure=measure, ni=ni, fit_stats=fit_stats, vt=float(vt),
        weighted=weighted,
    )


def _adjusted_r2(y: np.ndarray, X: np.ndarray, w: np.ndarray) -> float:
    """100 x adjusted R² of ``lm(yi ~ X, weights = w)``, floored at 0 (as metafor for EE models)."""
    k, p = X.shape
    if np.var(y) == 0 or not np.all(np.isfinite(w)):
        return 0.0
    fit = _WLS(y, X, w)
    mean = float(np.dot(w, y) / w.sum())
    tss = float(np.dot(w, (y - mean) ** 2))
    r2 = 1 - fit.rss / tss
    adj = 1 - (1 - r2) * (k - 1) / (k - p)
    return max(0.0, 100 * adj)


def _subgroups(yi, vi, subgroup, *, method, test, level, slab, measure, ni, max_iter, threshold) -> SubgroupResult:
    y, v, labels, _, _, dropped = _clean_inputs(yi, vi, slab, None)
    groups = np.asarray([str(g) for g in np.asarray(subgroup, dtype=object)], dtype=object)
    if groups.size != dropped.size:
        raise MetaAnalysisError(f"subgroup has {groups.size} labels for {dropped.size} studies")
    groups = groups[~dropped]
    n_arr = np.asarray(ni, float)[~dropped] if ni is not None else None
    fits: dict[str, RMAResult] = {}
    skipped: dict[str, str] = {}
    unpooled: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
    for g in dict.fromkeys(groups):
        sel = groups == g
        try:
            fits[g] = _fit(y[sel], v[sel], [s for s, ok in zip(labels, sel, strict=True) if ok], None, [],
                           method, test, level, measure, n_arr[sel] if n_arr is not None else None,
                           max_iter, threshold)
        except MetaAnalysisError as exc:
            skipped[g] = str(exc)
            unpooled[g] = ([s for s, ok in zip(labels, sel, strict=True) if ok], y[sel], v[sel])
    overall = None
    if y.size >= 2:
        overall = _fit(y, v, labels, None, [], method, test, level, measure, n_arr, max_iter, threshold)
    if len(fits) >= 2:
        est = np.array([f.estimate for f in fits.values()])
        w = 1.0 / np.array([f.se**2 for f in fits.values()])
        pooled = float(np.dot(w, est) / w.sum())
        q_between = float(np.dot(w, (est - pooled) ** 2))
        df = len(fits) - 1
        q_p = float(special.chdtrc(df, q_between))
    else:
        q_between, df, q_p = float("nan"), 0, float("nan")
    return SubgroupResult(fits=fits, overall=overall, q_between=q_between, q_between_df=df,
                          q_between_p=q_p, skipped=skipped, unpooled=unpooled)
