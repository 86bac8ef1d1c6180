"""Publication-ready forest and funnel plots (matplotlib, no pyplot state)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from scipy import stats

from neuromodmap.evidence._methods import TrimfillResult
from neuromodmap.evidence._rma import RMAResult, SubgroupResult
from neuromodmap.evidence._transforms import back_transform

__all__ = ["forest", "funnel"]

_MEASURE_LABEL = {
    "RR": "Risk ratio", "OR": "Odds ratio", "RD": "Risk difference", "SMD": "Standardised mean difference",
    "MD": "Mean difference", "PLO": "Proportion", "PR": "Proportion", "PFT": "Proportion", "ZCOR": "Correlation",
}


def _diamond(ax, y, lb, est, ub, height=0.35, color="black"):
    ax.add_patch(Polygon([(lb, y), (est, y + height), (ub, y), (est, y - height)], closed=True,
                         facecolor=color, edgecolor=color))


def forest(result, transf=None, xlabel: str | None = None, title: str | None = None,
           refline: float | None = None, digits: int = 2) -> Figure:
    """Forest plot of an :class:`RMAResult` or a :class:`SubgroupResult`.

    Draws each study's estimate and CI (square sized by weight) with columns for the
    weight and ``estimate [CI]``, the pooled diamond and its prediction interval
    (a dashed bar) and, for subgroups, one block per group plus the overall model and the
    test for subgroup differences. ``transf`` back-transforms the axis labels and text
    (default: exp for RR/OR, inverse logit for PLO, harmonic-mean inverse FT for PFT).
    """
    blocks: list[tuple[str | None, RMAResult]]
    footer = None
    if isinstance(result, SubgroupResult):
        blocks = list(result.fits.items())
        overall = result.overall
        if np.isfinite(result.q_between):
            footer = (f"Test for subgroup differences: Q = {result.q_between:.2f}, "
                      f"df = {result.q_between_df}, p = {_p(result.q_between_p)}")
    else:
        blocks = [(None, result)]
        overall = None
    first = blocks[0][1] if blocks else overall
    measure = first.measure
    if transf is None:
        all_ni = first.ni
        transf = back_transform(measure, all_ni) or (lambda x: x)
    log_axis = measure in ("RR", "OR")
    if refline is None:
        refline = 0.0 if measure in ("RR", "OR", "RD", "SMD", "MD", "ZCOR") else None

    # rows, from the top
    rows: list[tuple] = []
    for name, fit in blocks:
        if name is not None:
            rows.append(("header", name))
        crit = stats.norm.ppf(1 - (1 - fit.level / 100) / 2)
        for label, y, v, w in zip(fit.labels, fit.yi, fit.vi, fit.weights, strict=True):
            se = math.sqrt(v)
            rows.append(("study", label, y, y - crit * se, y + crit * se, w))
        rows.append(("pooled", fit))
        if name is not None:
            rows.append(("gap",))
    if isinstance(result, SubgroupResult):
        # subgroups with a single study: show the study, without a pooled diamond
        for name, (labels, ys, vs) in result.unpooled.items():
            rows.append(("header", f"{name} (not pooled)"))
            for label, y, v in zip(labels, ys, vs, strict=True):
                se = math.sqrt(v)
                crit = stats.norm.ppf(0.975)
                rows.append(("study", label, y, y - crit * se, y + crit * se, float("nan")))
            rows.append(("gap",))
    if overall is not None:
        rows.append(("pooled", overall, "Overall"))

    n = len(rows)
    height = max(3.0, 0.28 * n + 1.6)
    fig = Figure(figsize=(10, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.30, 0.6 / height + 0.05, 0.40, 1 - (1.3 / height) - 0.05))
    lows, highs = [], []
    for i, row in enumerate(rows):
        yrow = n - i
        kind = row[0]
        if kind == "header":
            ax.annotate(_plain(row[1]), (0, yrow), xycoords=("figure fraction", "data"), xytext=(8, 0),
                        textcoords="offset points", va="center", fontweight="bold", fontsize=9)
        elif kind == "study":
            _, label, y, lb, ub, w = row
            ax.plot([lb, ub], [yrow, yrow], color="black", lw=0.9)
            size = 3 + 9 * math.sqrt(w / 100) if np.isfinite(w) else 4
            ax.plot([y], [yrow], marker="s", color="black", markersize=size, ls="none")
            lows.append(lb)
            highs.append(ub)
            _row_text(ax, yrow, str(label), f"{w:.1f}%" if np.isfinite(w) else "",
                      _ci_text(transf, y, lb, ub, digits))
        elif kind == "pooled":
            fit = row[1]
            label = row[2] if len(row) > 2 else (
                "EE model" if fit.method == "EE" else f"RE model ({fit.method})")
            _diamond(ax, yrow, fit.ci_lb, fit.estimate, fit.ci_ub)
            if fit.method != "EE" and fit.k >= 3:
                ax.plot([fit.pi_lb, fit.pi_ub], [yrow - 0.42, yrow - 0.42], color="0.35", lw=1.2, ls="--")
                lows.append(fit.pi_lb)
                highs.append(fit.pi_ub)
            het = f"I² = {fit.i2:.0f}%, τ² = {fit.tau2:.3f}" if fit.method != "EE" else f"I² = {fit.i2:.0f}%"
            _row_text(ax, yrow, f"{label}, k = {fit.k}; {het}", "100%" if label != "Overall" else "",
                      _ci_text(transf, fit.estimate, fit.ci_lb, fit.ci_ub, digits), bold=True)
            lows.append(fit.ci_lb)
            highs.append(fit.ci_ub)
    lo, hi = float(np.nanmin(lows)), float(np.nanmax(highs))
    pad = 0.08 * (hi - lo if hi > lo else 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(0.2, n + 0.8)
    if refline is not None and lo - pad < refline < hi + pad:
        ax.axvline(refline, color="0.5", lw=0.8, ls=":")
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    if measure == "PLO":
        nice = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99])
        ticks = np.log(nice / (1 - nice))
        ticks = ticks[(ticks >= lo - pad) & (ticks <= hi + pad)]
    elif log_axis:
        nice = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 4, 5, 10, 20, 50, 100])
        ticks = np.log(nice)
        ticks = ticks[(ticks >= lo - pad) & (ticks <= hi + pad)]
        if ticks.size > 7:
            ticks = np.log(nice[np.isin(nice, [0.01, 0.1, 0.25, 0.5, 1, 2, 4, 10, 100])])
            ticks = ticks[(ticks >= lo - pad) & (ticks <= hi + pad)]
    else:
        ticks = ax.get_xticks()
        ticks = ticks[(ticks >= lo - pad) & (ticks <= hi + pad)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([_fmt(float(transf(t)), digits) for t in ticks], fontsize=8)
    label = xlabel or _MEASURE_LABEL.get(measure or "", "Effect size")
    if log_axis:
        label += " (log scale)"
    ax.set_xlabel(label, fontsize=9)
    ax.annotate("Study", (0, n + 0.8), xycoords=("figure fraction", "data"), xytext=(8, 0),
                textcoords="offset points", fontweight="bold", fontsize=9, va="bottom")
    ax.annotate("Weight    Estimate [95% CI]", (1, n + 0.8), xycoords=("axes fraction", "data"),
                xytext=(12, 0), textcoords="offset points", fontweight="bold", fontsize=9, va="bottom")
    if footer:
        fig.text(0.01, 0.01, footer, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _plain(text: str) -> str:
    """Study labels are data, not mathtext: escape matplotlib's '$'."""
    return str(text).replace("$", r"\$")


def _row_text(ax, yrow, label, weight, ci, bold=False):
    kw = {"fontsize": 8.5, "va": "center", "fontweight": "bold" if bold else "normal"}
    ax.annotate(_plain(label[:60]), (0, yrow), xycoords=("figure fraction", "data"), xytext=(8, 0),
                textcoords="offset points", **kw)
    ax.annotate(weight, (1, yrow), xycoords=("axes fraction", "data"), xytext=(12, 0),
                textcoords="offset points", **kw)
    ax.annotate(ci, (1, yrow), xycoords=("axes fraction", "data"), xytext=(62, 0),
                textcoords="offset points", **kw)


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}" if np.isfinite(x) else "NA"


def _ci_text(transf, est, lb, ub, digits):
    return f"{_fmt(float(transf(est)), digits)} [{_fmt(float(transf(lb)), digits)}, {_fmt(float(transf(ub)), digits)}]"


def _p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def funnel(result, level: float = 95, xlabel: str | None = None, title: str | None = None) -> Figure:
    """Funnel plot: effect against standard error (inverted), with the pseudo-confidence region.

    A :class:`TrimfillResult` adds the filled-in studies as open circles.
    """
    filled_yi = filled_vi = None
    if isinstance(result, TrimfillResult):
        filled_yi, filled_vi = result.filled_yi, result.filled_vi
        fit = result.fit
        k_obs = fit.k - result.k0
        yi, vi = fit.yi[:k_obs], fit.vi[:k_obs]
    elif isinstance(result, SubgroupResult):
        fit = result.overall
        yi, vi = fit.yi, fit.vi
    else:
        fit = result
        yi, vi = fit.yi, fit.vi
    se = np.sqrt(vi)
    max_se = float(np.max(np.r_[se, np.sqrt(filled_vi) if filled_vi is not None and filled_vi.size else []]))
    crit = stats.norm.ppf(1 - (1 - level / 100) / 2)
    fig = Figure(figsize=(6, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    grid = np.linspace(0, max_se * 1.05, 50)
    est = fit.estimate
    ax.fill_betweenx(grid, est - crit * grid, est + crit * grid, color="0.92", zorder=0)
    ax.plot(est - crit * grid, grid, color="0.4", lw=0.8, ls="--")
    ax.plot(est + crit * grid, grid, color="0.4", lw=0.8, ls="--")
    ax.axvline(est, color="black", lw=0.9)
    ax.scatter(yi, se, color="black", s=22, zorder=3, label="studies")
    if filled_yi is not None and filled_yi.size:
        ax.scatter(filled_yi, np.sqrt(filled_vi), facecolor="white", edgecolor="black", s=22, zorder=3,
                   label="filled (trim-and-fill)")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_ylim(max_se * 1.05, 0)
    ax.set_ylabel("Standard error")
    ax.set_xlabel(xlabel or f"{_MEASURE_LABEL.get(fit.measure or '', 'Effect size')}"
                  f"{' (log scale)' if fit.measure in ('RR', 'OR') else ''}")
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig
