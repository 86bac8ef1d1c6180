"""Pooled effects per target on the connectome side: read them, attach them to targets, draw them.

The evidence stage pools studies per stimulation target (``neuromodmap evidence meta --by target``
writes ``pooled.csv``; :func:`neuromodmap.evidence.datasets.pooled_by_target` returns the same per
target code). Here those numbers meet the target table: :func:`read_target_effects` reads either
form, :func:`attach_target_effects` adds ``pooled_effect``, its CI, ``pooled_k`` and the scale to
every target row with that code (both hemispheres of M1 get M1's pooled effect), and
:func:`plot_target_effects` draws the targets on a glass brain coloured by pooled effect (diverging
around no effect: 1 for ratios, 0 otherwise; ratios on a log colour scale) with marker area
proportional to the number of studies. ``connectome map --effects pooled.csv`` does all three.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from neuromodmap.connectome._errors import TargetsFileError

__all__ = ["EFFECT_COLUMNS", "read_target_effects", "attach_target_effects", "plot_target_effects",
           "RATIO_SCALES"]

#: columns :func:`attach_target_effects` adds to a target table
EFFECT_COLUMNS = ["pooled_effect", "pooled_ci_lb", "pooled_ci_ub", "pooled_k", "pooled_scale"]
#: scales on which "no effect" is 1 and the colour scale is logarithmic
RATIO_SCALES = ("RR", "OR")


def _number(value, where: str, field: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TargetsFileError(f"{where}, column {field}: not a number ({value!r})") from None
    return out


def read_target_effects(source: str | os.PathLike | pd.DataFrame, *, measure: str | None = None) -> pd.DataFrame:
    """Pooled effects per target code from ``evidence meta --by target`` (pooled.csv) or ``pooled_by_target``.

    Back-transformed columns (``estimate_bt``, ``ci_lb_bt``, ``ci_ub_bt``: ratios, proportions) are used
    when present and finite, else the analysis-scale ``estimate``, ``ci_lb``, ``ci_ub``. The "overall"
    row and rows without a target code are left out. Returns ``target, effect, ci_lb, ci_ub, k, scale``.

    Raises
    ------
    TargetsFileError
        Unreadable file, missing columns, an unknown target code, a target listed twice or a
        non-numeric cell; the message names the file, row and column.
    """
    from neuromodmap.vocabulary import TARGETS

    if isinstance(source, pd.DataFrame):
        frame, name = source.copy(), "effects table"
        scale = measure or frame.attrs.get("measure")
    else:
        path = Path(source)
        name = str(path)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise TargetsFileError(f"{path}: cannot read the pooled effects ({exc})") from None
        scale = measure
    key = "target" if "target" in frame else "subgroup" if "subgroup" in frame else None
    missing = [c for c in ("k", "estimate", "ci_lb", "ci_ub") if c not in frame]
    if key is None or missing:
        need = ", ".join((["target (or subgroup)"] if key is None else []) + missing)
        raise TargetsFileError(f"{name}: not a pooled-effects table (missing {need}); give the pooled.csv of "
                               "`neuromodmap evidence meta --by target` or evidence.datasets.pooled_by_target()")
    if scale is None and "measure" in frame:
        vals = {str(v) for v in frame["measure"] if str(v) not in ("", "nan", "None")}
        scale = vals.pop() if len(vals) == 1 else None
    rows, seen = [], {}
    for pos, rec in enumerate(frame.to_dict("records")):
        where = f"{name}, row {pos + 2}"
        code = rec.get(key)
        code = "" if code is None or (isinstance(code, float) and math.isnan(code)) else str(code).strip()
        if code in ("", "overall"):
            continue
        if code not in TARGETS:
            raise TargetsFileError(f"{where}, column {key}: unknown target code {code!r} (see "
                                   "neuromodmap.vocabulary.TARGETS)")
        if code in seen:
            raise TargetsFileError(f"{where}, column {key}: target {code} already given on row {seen[code]}")
        seen[code] = pos + 2
        bt = all(c in rec and str(rec[c]).strip() not in ("", "nan") for c in ("estimate_bt", "ci_lb_bt", "ci_ub_bt"))
        cols = ("estimate_bt", "ci_lb_bt", "ci_ub_bt") if bt else ("estimate", "ci_lb", "ci_ub")
        eff, lb, ub = (_number(rec[c], where, c) for c in cols)
        k = _number(rec["k"], where, "k")
        if not all(math.isfinite(v) for v in (eff, lb, ub, k)) or k < 1:
            raise TargetsFileError(f"{where}: effect, CI and k must be finite numbers with k >= 1 "
                                   f"(got {eff}, {lb}, {ub}, k={k})")
        rows.append({"target": code, "effect": eff, "ci_lb": lb, "ci_ub": ub, "k": int(k),
                     "scale": (scale or "") if bt else f"{scale or 'effect'} (analysis scale)"})
    if not rows:
        raise TargetsFileError(f"{name}: no row with a target code")
    out = pd.DataFrame(rows)
    out.attrs["source"] = name
    return out


def attach_target_effects(targets: pd.DataFrame, effects: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """``targets`` with :data:`EFFECT_COLUMNS` filled where its ``target`` code has a pooled effect.

    ``effects`` is :func:`read_target_effects` output or anything it reads. Targets without a
    pooled effect keep NaN; ``attrs["unmatched"]`` lists pooled target codes no target row carries.
    """
    if not isinstance(effects, pd.DataFrame) or "effect" not in effects:
        effects = read_target_effects(effects)
    if "target" not in targets:
        raise TargetsFileError("the targets table has no 'target' column (vocabulary code) to join effects on")
    by_code = effects.set_index("target")
    out = targets.copy()
    codes = out["target"].astype(str)
    out["pooled_effect"] = codes.map(by_code["effect"]).astype(float)
    out["pooled_ci_lb"] = codes.map(by_code["ci_lb"]).astype(float)
    out["pooled_ci_ub"] = codes.map(by_code["ci_ub"]).astype(float)
    out["pooled_k"] = pd.Series([None if v != v else int(v) for v in codes.map(by_code["k"])], index=out.index,
                                dtype=object)
    out["pooled_scale"] = codes.map(by_code["scale"]).fillna("")
    out.attrs["unmatched"] = sorted(set(by_code.index) - set(codes))
    return out


def _is_ratio(scale: str) -> bool:
    return scale.split(" ")[0] in RATIO_SCALES and "analysis scale" not in scale


def plot_target_effects(table: pd.DataFrame, *, title: str | None = None, display_mode: str = "lzry"):
    """Glass brain of targets coloured by pooled effect, marker area proportional to the number of studies.

    ``table`` has ``x, y, z`` and either :data:`EFFECT_COLUMNS` (from :func:`attach_target_effects`)
    or the columns of ``pooled_by_target`` (``estimate_bt``/``estimate``, ``k``). Targets without an
    effect are drawn as small grey markers. Ratios (RR, OR) are coloured on the log scale, centred at 1.
    Returns a matplotlib Figure.
    """
    from matplotlib.figure import Figure
    from nilearn import plotting

    frame = table.copy()
    if "pooled_effect" not in frame:
        bt = "estimate_bt" in frame and frame["estimate_bt"].notna().any()
        frame["pooled_effect"] = frame["estimate_bt" if bt else "estimate"]
        frame["pooled_k"] = frame["k"]
        measure = frame.attrs.get("measure") or (str(frame["measure"].dropna().iloc[0])
                                                 if "measure" in frame and frame["measure"].notna().any() else "")
        frame["pooled_scale"] = measure if bt else f"{measure or 'effect'} (analysis scale)"
    for c in ("x", "y", "z"):
        if c not in frame:
            raise TargetsFileError(f"the table has no {c!r} column: give MNI coordinates per target")
    frame = frame[frame[["x", "y", "z"]].notna().all(axis=1)]
    has = frame["pooled_effect"].notna().to_numpy()
    if not has.any():
        raise TargetsFileError("no target with both a pooled effect and MNI coordinates to draw")
    scale = str(frame.loc[has, "pooled_scale"].iloc[0]) if "pooled_scale" in frame else ""
    ratio = _is_ratio(scale)
    values = frame.loc[has, "pooled_effect"].to_numpy(float)
    shown = np.log(values) if ratio else values
    lim = float(np.max(np.abs(shown))) or 1.0
    k = frame.loc[has, "pooled_k"].to_numpy(float)
    sizes = 40.0 * k / k.max() * 3 + 20.0
    fig = Figure(figsize=(11, 3.4))
    display = plotting.plot_markers(shown, frame.loc[has, ["x", "y", "z"]].to_numpy(float), node_size=sizes,
                                    node_cmap="RdBu_r", node_vmin=-lim, node_vmax=lim, display_mode=display_mode,
                                    figure=fig, colorbar=True, alpha=0.9, annotate=False)
    if (~has).any():
        display.add_markers(frame.loc[~has, ["x", "y", "z"]].to_numpy(float), marker_color="0.6", marker_size=12)
    label = f"log {scale.split(' ')[0]}" if ratio else (scale or "pooled effect")
    fig.suptitle(title or f"Targets by pooled effect (colour: {label}, centred at no effect; area: studies)",
                 fontsize=10)
    return fig
