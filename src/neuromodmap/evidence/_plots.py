"""Publication-ready forest and funnel plots (matplotlib, no pyplot state)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from scipy import stats

from neuromodmap.evidence._methods import TrimfillResult
from neuromodmap.evidence._rma import SubgroupResult
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
           refline: float | None = None, digits: int = 2, favours: tuple[str, str] | None = None,
           groups=None) -> Figure:
    """Forest plot of an :class:`RMAResult`, an :class:`RMAMVResult` or a :class:`SubgroupResult`.

    Each effect is a square whose area is proportional to its weight in the model, with its CI;
    columns give the weight and ``estimate [CI]``. Each pooled model is a diamond followed by a
    row with its prediction interval (dashed, with end ticks). Subgroups get a header, a diamond
    each and the test for subgroup differences, drawn only when there are two or more pooled
    subgroups. ``favours=(left, right)`` writes "Favours ..." under the axis on each side of the
    null line. ``groups`` (one study id per effect, in the fit's order) groups a study's
    dependent effects: a header row with the study, its effects indented beneath, on a grey band.
    ``transf`` back-transforms the axis labels and text (default: exp for RR/OR, inverse logit
    for PLO, harmonic-mean inverse FT for PFT).
    """
    blocks: list[tuple[str | None, object]]
    footer = None
    overall = None
    unpooled = {}
    if isinstance(result, SubgroupResult) and (len(result.fits) >= 2 or result.unpooled):
        blocks = list(result.fits.items())
        overall = result.overall
        unpooled = result.unpooled
        if len(result.fits) >= 2 and np.isfinite(result.q_between):
            footer = (f"Test for subgroup differences: Q = {result.q_between:.2f}, "
                      f"df = {result.q_between_df}, p = {_p(result.q_between_p)}")
    elif isinstance(result, SubgroupResult):
        # a single subgroup is the overall model: draw it once
        only = result.overall if result.overall is not None else next(iter(result.fits.values()))
        blocks = [(None, only)]
    else:
        blocks = [(None, result)]
    first = blocks[0][1] if blocks else overall
    measure = first.measure
    if transf is None:
        transf = back_transform(measure, first.ni) or (lambda x: x)
    log_axis = measure in ("RR", "OR")
    if refline is None:
        refline = 0.0 if measure in ("RR", "OR", "RD", "SMD", "MD", "ZCOR") else None
    group_of = None
    if groups is not None:
        ref_fit = overall if overall is not None else first
        group_of = dict(zip(ref_fit.labels, (str(g) for g in groups), strict=True))
    level = first.level

    # rows, from the top
    rows: list[tuple] = []
    for name, fit in blocks:
        if name is not None:
            rows.append(("header", name))
        rows += _study_rows(fit, group_of)
        rows.append(("pooled", fit, _model_label(fit)))
        if fit.method != "EE" and fit.k >= 3:
            rows.append(("pi", fit))
        if name is not None:
            rows.append(("gap",))
    for name, (labels, ys, vs) in unpooled.items():
        # subgroups with a single study: show the study, without a pooled diamond
        rows.append(("header", f"{name} (not pooled)"))
        crit = stats.norm.ppf(1 - (1 - level / 100) / 2)
        for label, y, v in zip(labels, ys, vs, strict=True):
            se = math.sqrt(v)
            rows.append(("study", label, y, y - crit * se, y + crit * se, float("nan"), 0))
        rows.append(("gap",))
    if overall is not None:
        rows.append(("pooled", overall, f"Overall: {_model_label(overall)}"))
        if overall.method != "EE" and overall.k >= 3:
            rows.append(("pi", overall))

    n = len(rows)
    height = max(3.2, 0.28 * n + 2.0)
    fig = Figure(figsize=(10, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.34, 1.0 / height + 0.04, 0.36, 1 - (1.5 / height) - 0.04))
    weights = [row[5] for row in rows if row[0] == "study" and np.isfinite(row[5])]
    w_max = max(weights) if weights else 1.0
    lows, highs = [], []
    band_start = None
    for i, row in enumerate(rows):
        yrow = n - i
        kind = row[0]
        if kind == "header":
            ax.annotate(_plain(row[1]), (0, yrow), xycoords=("figure fraction", "data"), xytext=(8, 0),
                        textcoords="offset points", va="center", fontweight="bold", fontsize=9)
        elif kind == "studyhead":
            band_start = yrow
            ax.annotate(_plain(row[1][:60]), (0, yrow), xycoords=("figure fraction", "data"), xytext=(8, 0),
                        textcoords="offset points", va="center", fontsize=8.5, fontstyle="italic")
            ax.annotate(f"{row[2]:.1f}%", (1, yrow), xycoords=("axes fraction", "data"), xytext=(12, 0),
                        textcoords="offset points", va="center", fontsize=8.5, fontstyle="italic")
        elif kind == "study":
            _, label, y, lb, ub, w, indent = row
            ax.plot([lb, ub], [yrow, yrow], color="black", lw=0.9)
            # marker size is a length (points): its square is proportional to the weight
            size = 11 * math.sqrt(w / w_max) if np.isfinite(w) else 4
            ax.plot([y], [yrow], marker="s", color="black", markersize=size, ls="none",
                    gid="study-square" if np.isfinite(w) else "study-unweighted")
            lows.append(lb)
            highs.append(ub)
            _row_text(ax, yrow, ("    " * indent) + str(label), f"{w:.1f}%" if np.isfinite(w) else "",
                      _ci_text(transf, y, lb, ub, digits))
            if indent and (i + 1 == n or rows[i + 1][0] != "study" or not rows[i + 1][6]):
                ax.axhspan(yrow - 0.45, band_start + 0.45, color="0.93", zorder=0, lw=0, gid="study-group")
        elif kind == "pooled":
            fit, label = row[1], row[2]
            _diamond(ax, yrow, _scalar(fit.ci_lb), fit.estimate, _scalar(fit.ci_ub))
            het = "" if fit.method != "EE" and fit.k >= 3 else f"; {_heterogeneity(fit)}"
            studies = f" in {fit.n_studies} studies" if hasattr(fit, "n_studies") else ""
            _row_text(ax, yrow, f"{label}, k = {fit.k}{studies}{het}",
                      "" if label.startswith("Overall") and blocks and blocks[0][0] is not None else "100%",
                      _ci_text(transf, fit.estimate, _scalar(fit.ci_lb), _scalar(fit.ci_ub), digits), bold=True)
            lows.append(_scalar(fit.ci_lb))
            highs.append(_scalar(fit.ci_ub))
        elif kind == "pi":
            fit = row[1]
            ax.plot([fit.pi_lb, fit.pi_ub], [yrow, yrow], color="0.3", lw=1.2, ls="--", gid="prediction-interval")
            ax.plot([fit.pi_lb, fit.pi_ub], [yrow, yrow], color="0.3", marker="|", markersize=7, ls="none")
            _row_text(ax, yrow, f"    {level:g}% prediction interval; {_heterogeneity(fit)}"
                      if not hasattr(fit, "sigma2") else f"    {level:g}% PI; {_heterogeneity(fit)}", "",
                      f"[{_fmt(float(transf(fit.pi_lb)), digits)}, {_fmt(float(transf(fit.pi_ub)), digits)}]")
            lows.append(fit.pi_lb)
            highs.append(fit.pi_ub)
    if refline is not None:
        lows.append(refline)
        highs.append(refline)
    lo, hi = float(np.nanmin(lows)), float(np.nanmax(highs))
    pad = 0.08 * (hi - lo if hi > lo else 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(0.4, n + 0.8)
    if refline is not None:
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
    ax.set_xlabel(label, fontsize=9, labelpad=16 if favours and refline is not None else 4)
    if favours and refline is not None:
        for text, ha, dx in ((favours[0], "right", -5), (favours[1], "left", 5)):
            ax.annotate(f"{'← ' if ha == 'right' else ''}{_plain(text)}{' →' if ha == 'left' else ''}",
                        (refline, 0), xycoords=("data", "axes fraction"), xytext=(dx, -22),
                        textcoords="offset points", ha=ha, va="top", fontsize=8, gid="favours")
    ax.annotate("Study", (0, n + 0.8), xycoords=("figure fraction", "data"), xytext=(8, 0),
                textcoords="offset points", fontweight="bold", fontsize=9, va="bottom")
    ax.annotate(f"Weight    Estimate [{level:g}% CI]", (1, n + 0.8), xycoords=("axes fraction", "data"),
                xytext=(12, 0), textcoords="offset points", fontweight="bold", fontsize=9, va="bottom")
    if footer:
        ax.annotate(footer, (0, 0), xycoords=("figure fraction", "axes fraction"), xytext=(8, -50),
                    textcoords="offset points", va="top", fontsize=8.5, gid="subgroup-test")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _scalar(value) -> float:
    return float(np.atleast_1d(value)[0])


def _model_label(fit) -> str:
    if fit.method == "EE":
        return "EE model"
    if hasattr(fit, "sigma2"):
        return f"Three-level model ({fit.method})"
    return f"RE model ({fit.method})"


def _heterogeneity(fit) -> str:
    if fit.method == "EE":
        return f"I² = {fit.i2:.0f}%"
    if hasattr(fit, "sigma2"):
        return f"σ² {fit.sigma2[0]:.3f} studies, {fit.sigma2[1]:.3f} effects"
    return f"I² = {fit.i2:.0f}%, τ² = {fit.tau2:.3f}"


def _study_rows(fit, group_of) -> list[tuple]:
    """Study rows of one fit; with ``group_of`` a study's several effects follow a header row."""
    crit = stats.norm.ppf(1 - (1 - fit.level / 100) / 2)
    items = list(zip(fit.labels, fit.yi, fit.vi, fit.weights, strict=True))
    if group_of is None:
        return [("study", label, y, y - crit * math.sqrt(v), y + crit * math.sqrt(v), w, 0)
                for label, y, v, w in items]
    order: dict[str, list] = {}
    for item in items:
        order.setdefault(group_of.get(item[0], item[0]), []).append(item)
    rows = []
    for members in order.values():
        if len(members) == 1:
            label, y, v, w = members[0]
            rows.append(("study", label, y, y - crit * math.sqrt(v), y + crit * math.sqrt(v), w, 0))
            continue
        head = members[0][0].split(": ", 1)[0]
        rows.append(("studyhead", head, float(sum(m[3] for m in members))))
        for label, y, v, w in members:
            detail = label.split(": ", 1)[1] if label.startswith(head + ": ") else label
            rows.append(("study", detail, y, y - crit * math.sqrt(v), y + crit * math.sqrt(v), w, 1))
    return rows


def _plain(text: str) -> str:
    """Study labels are data, not mathtext: escape matplotlib's '$'."""
    return str(text).replace("$", r"\$")


def _row_text(ax, yrow, label, weight, ci, bold=False):
    kw = {"fontsize": 8.5, "va": "center", "fontweight": "bold" if bold else "normal"}
    ax.annotate(_plain(label[:72]), (0, yrow), xycoords=("figure fraction", "data"), xytext=(8, 0),
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
