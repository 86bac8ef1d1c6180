"""The three-level model for dependent effects (metafor's ``rma.mv(yi, vi, random = ~ 1 | study/effect)``).

Effects ``j`` nested in studies ``i``: ``y_ij = x_ij'b + u_i + w_ij + e_ij`` with
``u_i ~ N(0, sigma²_1)`` (between studies), ``w_ij ~ N(0, sigma²_2)`` (between effects within a
study) and ``e_ij ~ N(0, v_ij)``. The marginal covariance is block diagonal, one block per study,
``M_i = diag(v_i + sigma²_2) + sigma²_1 11'``; its inverse and determinant have closed forms
(Sherman-Morrison), so a likelihood evaluation costs O(k p²) and never builds a k x k matrix.
The (restricted) log-likelihood is maximised over log sigma² with its analytic gradient, then
polished by Newton steps; the fixed effects are the GLS estimates at the optimum.

:func:`robust` gives metafor's cluster-robust ``robust()``: CR1 (``adjust=True``) or CR0, and
CR2 with Satterthwaite degrees of freedom (``clubSandwich=True``, clubSandwich's defaults).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from neuromodmap.evidence._errors import MetaAnalysisError, MetaAnalysisWarning
from neuromodmap.evidence._rma import _fmt_p, _stars, mods_matrix
from neuromodmap.provenance import Provenance

__all__ = ["rma_mv", "robust", "RMAMVResult"]

_LOG2PI = math.log(2 * math.pi)


@dataclass(eq=False)
class RMAMVResult:
    """A fitted three-level model (attributes follow metafor's ``rma.mv`` names).

    ``beta``/``se``/``zval``/``pval``/``ci_lb``/``ci_ub`` are arrays over the coefficients;
    ``estimate`` (and the scalar properties the forest plot and tables use) describe the
    intercept, i.e. the pooled effect of a model without moderators. ``sigma2`` is
    ``(between-study, within-study)``.
    """

    method: str
    test: str
    level: float
    k: int
    p: int
    n_studies: int
    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    study: np.ndarray
    labels: list[str]
    coef_names: list[str]
    beta: np.ndarray
    vb: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    sigma2: np.ndarray
    QE: float
    QE_df: int
    QE_p: float
    QM: float
    QM_df: tuple[int, int | None]
    QM_p: float
    btt: np.ndarray
    ddf: int | None
    loglik: float
    converged: bool = True
    iterations: int = 0
    measure: str | None = None
    ni: np.ndarray | None = None
    #: set by :func:`robust`: "CR0", "CR1" or "CR2"; None for model-based standard errors
    vbest: str | None = None
    n_clusters: int | None = None
    fit_stats: dict[str, float] = field(default_factory=dict)
    provenance: Provenance | None = None

    # --- the intercept as a scalar (the pooled effect without moderators) ------------
    @property
    def int_only(self) -> bool:
        return self.p == 1 and self.coef_names == ["intrcpt"]

    @property
    def estimate(self) -> float:
        return float(self.beta[0])

    @property
    def tau2(self) -> float:
        """Total heterogeneity, sigma²_1 + sigma²_2 (used for prediction intervals)."""
        return float(self.sigma2.sum())

    @property
    def q(self) -> float:
        return self.QE

    @property
    def q_p(self) -> float:
        return self.QE_p

    def _crit(self) -> float:
        alpha = 1 - self.level / 100
        return float(stats.t.isf(alpha / 2, self.ddf) if self.ddf is not None else stats.norm.isf(alpha / 2))

    @property
    def pi_lb(self) -> float:
        return self._pi()[0]

    @property
    def pi_ub(self) -> float:
        return self._pi()[1]

    def _pi(self) -> tuple[float, float]:
        # metafor's predict.rma.mv: sqrt(se² + sigma²_1 + sigma²_2) around the intercept
        se = math.sqrt(float(self.vb[0, 0]) + self.tau2)
        crit = self._crit()
        return self.estimate - crit * se, self.estimate + crit * se

    @property
    def i2_levels(self) -> tuple[float, float]:
        """I² per level (Cheung 2014; metafor FAQ): share of total variance at each level, in %."""
        w = 1.0 / self.vi
        X = self.X
        wx = X * w[:, None]
        P = np.diag(w) - wx @ np.linalg.solve(X.T @ wx, wx.T)
        typical = (self.k - self.p) / np.trace(P)
        total = self.tau2 + typical
        return tuple(float(100 * s / total) for s in self.sigma2)

    @property
    def i2(self) -> float:
        return float(sum(self.i2_levels))

    @property
    def weights(self) -> np.ndarray:
        """Percentage weights as metafor's ``weights.rma.mv`` (the diagonal of M⁻¹)."""
        invd, c, g = self._inverse_parts()
        diag = invd - c[g] * invd**2
        return 100 * diag / diag.sum()

    def _inverse_parts(self):
        g = self.study
        d = self.vi + self.sigma2[1]
        invd = 1.0 / d
        s = np.bincount(g, invd, self.n_studies)
        c = self.sigma2[0] / (1 + self.sigma2[0] * s)
        return invd, c, g

    # --- tables and text ----------------------------------------------------------
    @property
    def _stat_name(self) -> str:
        return "tval" if self.ddf is not None else "zval"

    def coef_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"estimate": self.beta, "se": self.se, self._stat_name: self.zval, "pval": self.pval,
             "ci_lb": self.ci_lb, "ci_ub": self.ci_ub},
            index=pd.Index(self.coef_names, name="coefficient"),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row with the pooled estimate (the intercept) and the variance components."""
        lo, hi = self._pi()
        row = {
            "k": self.k, "studies": self.n_studies, "model": "three-level", "method": self.method,
            "test": self.test, "measure": self.measure, "estimate": self.estimate, "se": float(self.se[0]),
            self._stat_name: float(self.zval[0]), "pval": float(self.pval[0]),
            "ci_lb": float(self.ci_lb[0]), "ci_ub": float(self.ci_ub[0]), "pi_lb": lo, "pi_ub": hi,
            "sigma2_between": float(self.sigma2[0]), "sigma2_within": float(self.sigma2[1]),
            "tau2": self.tau2, "i2": self.i2, "q": self.QE, "q_df": self.QE_df, "q_p": self.QE_p,
            "vcov": self.vbest or "model",
        }
        if not self.int_only:
            row.update({"qm": self.QM, "qm_p": self.QM_p})
        return pd.DataFrame([row])

    def summary(self) -> str:
        """Text like metafor's ``print.rma.mv`` (and ``print.robust.rma``)."""
        lines = [f"Multivariate Meta-Analysis Model (k = {self.k}; method: {self.method})", ""]
        names = ("logLik", "deviance", "AIC", "BIC", "AICc")
        lines.append("".join(f"{n:>10}" for n in names))
        lines.append("".join(f"{self.fit_stats.get(n, float('nan')):>10.4f}" for n in names))
        lines.append("")
        lines.append("Variance Components:")
        lines.append("")
        lines.append(f"{'':<10} {'estim':>8} {'sqrt':>8} {'nlvls':>6}  {'factor'}")
        lines.append(f"{'sigma^2.1':<10} {self.sigma2[0]:>8.4f} {math.sqrt(self.sigma2[0]):>8.4f} "
                     f"{self.n_studies:>6}  study")
        lines.append(f"{'sigma^2.2':<10} {self.sigma2[1]:>8.4f} {math.sqrt(self.sigma2[1]):>8.4f} "
                     f"{self.k:>6}  study/effect")
        lines.append("")
        lines.append("Test for Heterogeneity:" if self.int_only else "Test for Residual Heterogeneity:")
        qp = _fmt_p(self.QE_p)
        lines.append(f"Q{'' if self.int_only else 'E'}(df = {self.QE_df}) = {self.QE:.4f}, "
                     f"p-val {'<' if qp.startswith('<') else '='} {qp.lstrip('<')}")
        lines.append("")
        if self.vbest is not None:
            lines.append(f"Number of estimates:   {self.k}")
            lines.append(f"Number of clusters:    {self.n_clusters}")
            lines.append(f"Estimates per cluster: {self.k / self.n_clusters:.2f} (mean)")
            lines.append("")
            lines.append(f"Cluster-robust inference ({self.vbest}); t-tests with df = "
                         f"{', '.join(f'{d:.2f}' if float(d) % 1 else f'{int(d)}' for d in np.atleast_1d(self.ddf))}")
            lines.append("")
        if not self.int_only:
            mp = _fmt_p(self.QM_p)
            sign = "<" if mp.startswith("<") else "="
            cols = f"{self.btt[0] + 1}:{self.btt[-1] + 1}" if len(self.btt) > 1 else f"{self.btt[0] + 1}"
            lines.append(f"Test of Moderators (coefficient{'s' if len(self.btt) > 1 else ''} {cols}):")
            if self.QM_df[1] is not None:
                d2 = self.QM_df[1]
                d2s = f"{d2:.2f}" if float(d2) % 1 else f"{int(d2)}"
                lines.append(f"F(df1 = {self.QM_df[0]}, df2 = {d2s}) = {self.QM:.4f}, p-val {sign} {mp.lstrip('<')}")
            else:
                lines.append(f"QM(df = {self.QM_df[0]}) = {self.QM:.4f}, p-val {sign} {mp.lstrip('<')}")
            lines.append("")
        lines.append("Model Results:")
        lines.append("")
        tab = self.coef_table()
        stat = tab.columns[2]
        lines.append(f"{'':>10} {'estimate':>9} {'se':>8} {stat:>8} {'pval':>8} {'ci.lb':>8} {'ci.ub':>8}")
        for name, row in tab.iterrows():
            lines.append(f"{name:>10} {row['estimate']:>9.4f} {row['se']:>8.4f} {row[stat]:>8.4f} "
                         f"{_fmt_p(row['pval']):>8} {row['ci_lb']:>8.4f} {row['ci_ub']:>8.4f} "
                         f"{_stars(row['pval'])}")
        lines.append("")
        lines.append("---")
        lines.append("Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
        if not self.converged:
            lines += ["", "WARNING: the variance components did not converge."]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def methods_sentence(self) -> str:
        est = {"REML": "restricted maximum likelihood", "ML": "maximum likelihood"}[self.method]
        if self.vbest is not None:
            test = (f"cluster-robust ({self.vbest}, clustered by study) t tests and confidence intervals "
                    f"(df = number of clusters - p)")
        elif self.ddf is not None:
            test = "t-based tests and confidence intervals (df = k - p)"
        else:
            test = "Wald-type (normal) tests and confidence intervals"
        counts = np.bincount(self.study, minlength=self.n_studies)
        dependent = int(counts[counts > 1].sum())
        text = (f"Because {dependent} of the {self.k} effects came from studies contributing more than one, "
                f"effects were pooled with a three-level random-effects model (effects nested in "
                f"{self.n_studies} studies; between-study and within-study variance components estimated by "
                f"{est}), with {test}, as metafor's rma.mv(yi, vi, random = ~ 1 | study/effect); "
                f"a {self.level:g}% prediction interval is reported.")
        if self.vbest is not None:
            text += " The cluster-robust variance is metafor's robust() (Hedges, Tipton and Johnson 2010)."
        return text


# ---------------------------------------------------------------------------
# likelihood on the block structure
# ---------------------------------------------------------------------------
class _Model:
    """Precomputed pieces of y, X and the study index for fast likelihood evaluations."""

    def __init__(self, y, v, X, g, ng):
        self.y, self.v, self.X, self.g, self.ng = y, v, X, g, ng
        self.k, self.p = X.shape
        self.Xy = np.column_stack([X, y])
        self.logdet_xx = np.linalg.slogdet(X.T @ X)[1]

    def _group_sum(self, A):
        # per-study column sums of a k x m array
        out = np.empty((self.ng, A.shape[1]))
        for j in range(A.shape[1]):
            out[:, j] = np.bincount(self.g, A[:, j], self.ng)
        return out

    def evaluate(self, s1: float, s2: float, reml: bool, grad: bool = True):
        """-loglik, its gradient in (s1, s2), and the GLS fit."""
        d = self.v + s2
        invd = 1.0 / d
        s = np.bincount(self.g, invd, self.ng)
        c = s1 / (1 + s1 * s)
        logdet = float(np.log(d).sum() + np.log1p(s1 * s).sum())
        A = self.Xy * invd[:, None]
        G = self._group_sum(A)
        WA = A - (c[:, None] * G)[self.g] * invd[:, None]      # M^-1 [X y]
        WX, Wy = WA[:, :-1], WA[:, -1]
        XtWX = self.X.T @ WX
        try:
            L = np.linalg.cholesky(XtWX)
        except np.linalg.LinAlgError:
            raise MetaAnalysisError("the model matrix is not of full rank") from None
        C = np.linalg.inv(XtWX)
        b = C @ (self.X.T @ Wy)
        Wr = Wy - WX @ b
        rss = float((self.y - self.X @ b) @ Wr)
        if reml:
            nll = 0.5 * ((self.k - self.p) * _LOG2PI - self.logdet_xx + logdet
                         + 2 * np.log(np.diag(L)).sum() + rss)
        else:
            nll = 0.5 * (self.k * _LOG2PI + logdet + rss)
        out = {"b": b, "C": C, "nll": nll, "invd": invd, "c": c, "Wr": Wr}
        if grad:
            q = np.bincount(self.g, invd**2, self.ng)
            tr_w = float(invd.sum() - (c * q).sum())
            tr_wj = float((s / (1 + s1 * s)).sum())
            if reml:
                tr_w -= float(np.einsum("ij,jk,ik->", WX, C, WX))
                gx = G[:, :-1] - (c * s)[:, None] * G[:, :-1]       # 1' M_i^-1 X_i per study
                tr_wj -= float(np.einsum("ij,jk,ik->", gx, C, gx))
            wr_sum = np.bincount(self.g, Wr, self.ng)
            out["grad"] = np.array([0.5 * (tr_wj - float(wr_sum @ wr_sum)), 0.5 * (tr_w - float(Wr @ Wr))])
        return out


def _optimise(model: _Model, reml: bool, start: np.ndarray, max_iter: int):
    """Minimise -loglik over theta = log sigma² by projected Newton steps with backtracking.

    The gradient is analytic; the 2 x 2 Hessian is a central difference of it. A component at
    the lower bound (sigma² = 1e-10, i.e. 0) whose gradient pushes it further down is held
    there. Returns sigma², the number of Newton steps and whether the gradient vanished.
    """
    lo, hi = math.log(1e-10), math.log(1e5)

    def fun(theta):
        s = np.exp(theta)
        ev = model.evaluate(s[0], s[1], reml)
        return ev["nll"], ev["grad"] * s

    theta = np.clip(np.log(np.clip(start, 1e-4, None)), lo, hi)
    f, g = fun(theta)
    converged = False
    iterations = 0
    while iterations < max_iter:
        held = ((theta <= lo + 1e-9) & (g > 0)) | ((theta >= hi - 1e-9) & (g < 0))
        free = np.flatnonzero(~held)
        if free.size == 0 or np.max(np.abs(g[free])) < 1e-10:
            converged = True
            break
        H = np.empty((2, 2))
        h = 1e-5
        for j in range(2):
            e = np.zeros(2)
            e[j] = h
            H[:, j] = (fun(theta + e)[1] - fun(theta - e)[1]) / (2 * h)
        Hf = 0.5 * (H + H.T)[np.ix_(free, free)]
        step = np.zeros(2)
        try:
            if np.all(np.linalg.eigvalsh(Hf) > 1e-12):
                step[free] = -np.linalg.solve(Hf, g[free])
            else:
                step[free] = -g[free]
        except np.linalg.LinAlgError:
            step[free] = -g[free]
        largest = np.max(np.abs(step))
        if largest > 2.0:           # at most a factor e² per step on the variance scale
            step *= 2.0 / largest
        for _ in range(40):         # backtrack until the objective does not increase
            new = np.clip(theta + step, lo, hi)
            f_new, g_new = fun(new)
            if f_new <= f + 1e-4 * float(g @ (new - theta)) or np.max(np.abs(new - theta)) < 1e-12:
                break
            step /= 2
        moved = np.max(np.abs(new - theta))
        theta, f, g = new, f_new, g_new
        iterations += 1
        if moved < 1e-12:
            held = ((theta <= lo + 1e-9) & (g > 0)) | ((theta >= hi - 1e-9) & (g < 0))
            converged = bool(np.all(np.abs(g[~held]) < 1e-6))
            break
    return np.exp(theta), iterations, converged


# ---------------------------------------------------------------------------
# rma_mv
# ---------------------------------------------------------------------------
def _design(mods, k, intercept):
    M, names = mods_matrix(mods, k, unit="effects")
    if M is None:
        M = np.empty((k, 0))
    if intercept:
        M = np.column_stack([np.ones(k), M])
        names = ["intrcpt"] + names
    if M.shape[1] == 0:
        raise MetaAnalysisError("no intercept and no moderators: nothing to estimate")
    return M, names


def rma_mv(
    yi,
    vi,
    study: Sequence,
    mods=None,
    method: str = "REML",
    test: str = "z",
    level: float = 95,
    *,
    intercept: bool = True,
    btt: Sequence[int] | None = None,
    slab: Sequence[str] | None = None,
    measure: str | None = None,
    ni=None,
    max_iter: int = 1000,
) -> RMAMVResult:
    """Three-level random-effects model: effects nested in studies.

    Equivalent to metafor's ``rma.mv(yi, vi, mods = ~ ..., random = ~ 1 | study/effect,
    method=method, test=test)`` where each row is its own effect.

    Parameters
    ----------
    yi, vi : effect sizes and their sampling variances (one per effect).
    study : the study (cluster) each effect belongs to.
    mods : moderators (k values, a k x m array, or a DataFrame whose columns name them);
        an intercept is added unless ``intercept=False``.
    method : "REML" (default) or "ML".
    test : "z" (Wald, normal) or "t" (t and F tests with df = k - p, metafor's ``dfs="residual"``).
    btt : indices of the coefficients the omnibus test covers (default: all but the intercept).

    Returns an :class:`RMAMVResult`: ``beta``, ``se``, ``ci_lb``, ``ci_ub`` (``estimate`` for the
    pooled effect), ``sigma2`` = (between-study, within-study), ``QE`` with its df and p,
    ``QM`` (chi-square, or F under ``test="t"``) and ``loglik``.
    """
    method = method.upper()
    if method not in ("REML", "ML"):
        raise MetaAnalysisError(f"rma_mv supports method 'REML' or 'ML', not {method!r}")
    test = test.lower()
    if test not in ("z", "t"):
        raise MetaAnalysisError(f"rma_mv supports test 'z' or 't', not {test!r}")
    y = np.asarray(yi, float).ravel()
    v = np.asarray(vi, float).ravel()
    k = y.size
    if v.size != k:
        raise MetaAnalysisError(f"yi has {k} values but vi has {v.size}")
    study_arr = np.asarray([str(s) for s in np.asarray(study, dtype=object).ravel()], dtype=object)
    if study_arr.size != k:
        raise MetaAnalysisError(f"study has {study_arr.size} values for {k} effects")
    labels = [str(s) for s in slab] if slab is not None else [f"{s}/{i + 1}" for i, s in enumerate(study_arr)]
    if len(labels) != k:
        raise MetaAnalysisError(f"{len(labels)} labels for {k} effects")
    X, names = _design(mods, k, intercept)
    bad = ~np.isfinite(y) | ~np.isfinite(v) | ~np.all(np.isfinite(X), axis=1)
    if bad.any():
        dropped = [labels[i] for i in np.flatnonzero(bad)]
        warnings.warn(f"{len(dropped)} effect(s) with missing/NaN values omitted: {', '.join(dropped)}",
                      MetaAnalysisWarning, stacklevel=2)
        keep = ~bad
        y, v, X, study_arr = y[keep], v[keep], X[keep], study_arr[keep]
        labels = [s for s, ok in zip(labels, keep, strict=True) if ok]
        ni = None if ni is None else np.asarray(ni, float)[keep]
        k = y.size
    if np.any(v < 0):
        raise MetaAnalysisError("negative sampling variance for: "
                                + ", ".join(labels[i] for i in np.flatnonzero(v < 0)))
    _, g = np.unique(study_arr, return_inverse=True)
    ng = int(g.max()) + 1 if k else 0
    p = X.shape[1]
    if k - p < 1:
        raise MetaAnalysisError(f"{k} effects cannot fit {p} coefficient(s) and two variance components")
    if np.linalg.matrix_rank(X) < p:
        raise MetaAnalysisError("the moderators are collinear (the model matrix is not of full rank)")
    if ng < 2:
        raise MetaAnalysisError("all effects come from one study: the between-study variance is not identified")
    model = _Model(y, v, X, g, ng)
    # start: half the residual variance of an OLS fit at each level (as metafor's sigma2.init)
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    start_var = max(float(resid.var(ddof=0)) - float(v.mean()), 0.01)
    sigma2, iterations, converged = _optimise(model, method == "REML", np.array([start_var / 2] * 2), max_iter)
    if not converged:
        warnings.warn("rma_mv: the optimiser did not fully converge; check the variance components",
                      MetaAnalysisWarning, stacklevel=2)
    ev = model.evaluate(sigma2[0], sigma2[1], method == "REML", grad=False)
    b, vb = ev["b"], ev["C"]
    if btt is None:
        btt_arr = np.arange(1, p) if (intercept and p > 1) else np.arange(p)
    else:
        btt_arr = np.asarray(sorted(btt), int)
    result = _inference(b, vb, test, level, k, p, btt_arr, ddf=k - p if test == "t" else None)
    # Q_E: residual heterogeneity from the fixed-effects (1/vi weighted) fit
    w = 1.0 / v
    b0 = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * y))
    QE = float(w @ (y - X @ b0) ** 2)
    QE_p = float(stats.chi2.sf(QE, k - p))
    nll = ev["nll"]
    loglik = -nll
    n_par = p + 2
    n_obs = k - p if method == "REML" else k
    # metafor: the ML deviance is against the saturated model (y fitted exactly, M = diag(vi))
    deviance = -2 * loglik if method == "REML" else -2 * (loglik + 0.5 * (k * _LOG2PI + float(np.log(v).sum())))
    fit_stats = {"logLik": loglik, "deviance": deviance, "AIC": -2 * loglik + 2 * n_par,
                 "BIC": -2 * loglik + n_par * math.log(n_obs),
                 "AICc": -2 * loglik + 2 * n_par * max(n_obs, n_par + 2) / (max(n_obs, n_par + 2) - n_par - 1)}
    return RMAMVResult(
        method=method, test=test, level=level, k=k, p=p, n_studies=ng, yi=y, vi=v, X=X, study=g,
        labels=labels, coef_names=names, beta=b, vb=vb, sigma2=sigma2, QE=QE, QE_df=k - p, QE_p=QE_p,
        btt=btt_arr, loglik=loglik, converged=converged, iterations=iterations, measure=measure,
        ni=None if ni is None else np.asarray(ni, float), fit_stats=fit_stats, **result,
    )


def _inference(b, vb, test, level, k, p, btt, ddf, qm_ddf=None) -> dict:
    """Wald tests, CIs and the omnibus test; t/F with ``ddf`` when given."""
    se = np.sqrt(np.diag(vb))
    stat = b / se
    alpha = 1 - level / 100
    if ddf is None:
        pval = 2 * stats.norm.sf(np.abs(stat))
        crit = stats.norm.isf(alpha / 2)
    else:
        pval = 2 * stats.t.sf(np.abs(stat), ddf)
        crit = stats.t.isf(alpha / 2, ddf)
    m = len(btt)
    sub = b[btt]
    QM = float(sub @ np.linalg.solve(vb[np.ix_(btt, btt)], sub))
    if ddf is None:
        QM_df: tuple[int, int | None] = (m, None)
        QM_p = float(stats.chi2.sf(QM, m))
    else:
        d2 = ddf if qm_ddf is None else qm_ddf
        QM /= m
        QM_df = (m, d2)
        QM_p = float(stats.f.sf(QM, m, d2))
    ddf_out = ddf if ddf is None or np.ndim(ddf) else int(ddf)
    return {"se": se, "zval": stat, "pval": pval, "ci_lb": b - crit * se, "ci_ub": b + crit * se,
            "QM": QM, "QM_df": QM_df, "QM_p": QM_p, "ddf": ddf_out}


# ---------------------------------------------------------------------------
# robust
# ---------------------------------------------------------------------------
def robust(fit: RMAMVResult, cluster: Sequence | None = None, adjust: bool = True,
           clubSandwich: bool = False) -> RMAMVResult:  # noqa: N803 (metafor's argument name)
    """Cluster-robust tests and CIs for a three-level fit (metafor's ``robust()``).

    ``cluster`` defaults to the fit's studies. With ``adjust=True`` (default) the sandwich is
    CR1 (scaled by n/(n - p), n clusters); ``adjust=False`` gives CR0. Tests are t tests with
    df = n - p and the omnibus test is F(m, n - p). ``clubSandwich=True`` gives CR2 (the bias-
    reduced linearisation of Bell & McCaffrey, with the model's marginal covariance as working
    model) with Satterthwaite df per coefficient and the HTZ Wald test, as metafor's
    ``robust(..., clubSandwich=TRUE)``.
    """
    if cluster is None:
        cl = fit.study
    else:
        arr = np.asarray([str(s) for s in np.asarray(cluster, dtype=object).ravel()], dtype=object)
        if arr.size != fit.k:
            raise MetaAnalysisError(f"cluster has {arr.size} values for {fit.k} effects")
        _, cl = np.unique(arr, return_inverse=True)
    n = int(cl.max()) + 1
    dfs = n - fit.p
    if dfs <= 0:
        raise MetaAnalysisError(f"the number of clusters ({n}) must be larger than the number of "
                                f"coefficients ({fit.p})")
    invd, c, g = fit._inverse_parts()
    X, b, vb = fit.X, fit.beta, fit.vb
    WX = X * invd[:, None]
    G = np.stack([np.bincount(g, WX[:, j], fit.n_studies) for j in range(fit.p)], 1)
    WX = WX - (c[:, None] * G)[g] * invd[:, None]            # M^-1 X
    e = fit.yi - X @ b
    out = copy.copy(fit)
    if not clubSandwich:
        # bread = vb X' W; meat = sum over clusters (X_c' W_c e_c)(...)'
        Ue = WX * e[:, None]        # row j of (M^-1 X) e_j; summed per cluster: X' M^-1[:, c] e_c
        S = np.stack([np.bincount(cl, Ue[:, j], n) for j in range(fit.p)], 1)
        V = vb @ (S.T @ S) @ vb
        if adjust:
            V *= n / dfs
        result = _inference(b, V, "t", fit.level, fit.k, fit.p, fit.btt, ddf=dfs)
        result["vb"] = V
        out.vbest = "CR1" if adjust else "CR0"
    else:
        result = _cr2(fit, cl, n, e)
        out.vbest = "CR2"
    for key, value in result.items():
        setattr(out, key, value)
    out.test = "t"
    out.n_clusters = n
    return out


def _marginal(fit: RMAMVResult) -> np.ndarray:
    same = fit.study[:, None] == fit.study[None, :]
    return np.diag(fit.vi + fit.sigma2[1]) + fit.sigma2[0] * same


def _cr2(fit: RMAMVResult, cl: np.ndarray, n: int, e: np.ndarray) -> dict:
    """CR2 sandwich with Satterthwaite df and the HTZ Wald test (clubSandwich's defaults for rma.mv)."""
    M = _marginal(fit)
    X = fit.X
    W = np.linalg.inv(M)
    vb = fit.vb                                   # (X'WX)^-1, clubSandwich's M_U
    WX = W @ X
    idx = [np.flatnonzero(cl == j) for j in range(n)]
    p = fit.p
    # adjustment matrices A_j = D_j' B_j^{-1/2} D_j, with Phi = M (working model = model)
    A, E = [], []
    for ix in idx:
        Xj = X[ix]
        Mj = M[np.ix_(ix, ix)]
        Dj = np.linalg.cholesky(Mj).T             # upper: Mj = Dj' Dj
        Bj = Dj @ (Mj - Xj @ vb @ Xj.T) @ Dj.T
        evals, evecs = np.linalg.eigh(Bj)
        inv_sqrt = evecs @ np.diag(np.where(evals > 1e-12, 1 / np.sqrt(np.clip(evals, 1e-300, None)), 0)) @ evecs.T
        Aj = Dj.T @ inv_sqrt @ Dj
        A.append(Aj)
        # E_j: p x n_j, the cluster's contribution to b (vb X_j' W_j A_j)
        E.append(vb @ WX[ix].T @ Aj)
    V = np.zeros((p, p))
    for ix, Ej in zip(idx, E, strict=True):
        u = Ej @ e[ix]
        V += np.outer(u, u)
    se = np.sqrt(np.diag(V))
    # Satterthwaite df per coefficient: 2 [tr(Omega)]² / tr(Omega Omega) with the working model M
    # (clubSandwich's total_var: the variance of each cluster's piece under M, including the projection)
    # G_jc = E_j (I - H)_j. , so var of c'Vc = sum_{j,l} (c'G_j M G_l' c)^2 * 2
    H = X @ vb @ WX.T                             # hat matrix X (X'WX)^-1 X'W
    IH = np.eye(fit.k) - H
    Gs = [Ej @ IH[ix, :] for ix, Ej in zip(idx, E, strict=True)]   # p x k each
    L = np.linalg.cholesky(M)
    GL = [Gj @ L for Gj in Gs]                                     # p x k
    df = np.empty(p)
    for a in range(p):
        rows = np.array([gl[a] for gl in GL])                     # n x k
        Om = rows @ rows.T                                        # n x n
        df[a] = np.trace(Om) ** 2 / np.sum(Om * Om)
    stat = fit.beta / se
    alpha = 1 - fit.level / 100
    pval = 2 * stats.t.sf(np.abs(stat), df)
    crit = stats.t.isf(alpha / 2, df)
    # HTZ Wald test (Tipton & Pustejovsky 2015) on the btt coefficients
    btt = fit.btt
    q = len(btt)
    Cm = np.eye(p)[btt]
    VR = Cm @ V @ Cm.T
    Q = float((Cm @ fit.beta) @ np.linalg.solve(VR, Cm @ fit.beta))
    Omega = Cm @ sum(Gj @ M @ Gj.T for Gj in Gs) @ Cm.T
    Om_inv_sqrt = _inv_sqrt(Omega)
    # per-cluster pieces in the standardised metric
    Z = [Om_inv_sqrt @ Cm @ gl for gl in GL]                      # q x k each
    # clubSandwich's total_variance_mat: B[s,t,j,l] = Z_j[s] . Z_l[t]; nu = q(q+1) / sum_st Var(...)
    B = np.einsum("jsk,ltk->jlst", np.stack(Z), np.stack(Z))
    total = float(np.einsum("jlst,jlts->", B, B) + np.einsum("jlss,jltt->", B, B))
    eta = q * (q + 1) / total
    F = Q / q * (eta - q + 1) / eta
    df_num, df_den = q, eta - q + 1
    p_val = float(stats.f.sf(F, df_num, df_den))
    if fit.int_only:
        QM, QM_df, QM_p = float(max(0.0, stat[0] ** 2)), (1, float(df[0])), float(pval[0])
    else:
        QM, QM_df, QM_p = float(max(0.0, F)), (df_num, float(df_den)), p_val
    return {"se": se, "zval": stat, "pval": pval, "ci_lb": fit.beta - crit * se, "ci_ub": fit.beta + crit * se,
            "QM": QM, "QM_df": QM_df, "QM_p": QM_p, "ddf": df, "vb": V}


def _inv_sqrt(A: np.ndarray) -> np.ndarray:
    evals, evecs = np.linalg.eigh(A)
    return evecs @ np.diag(1 / np.sqrt(evals)) @ evecs.T
