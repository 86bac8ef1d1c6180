"""Effect sizes and sampling variances, following metafor's ``escalc()`` formulas.

References: Viechtbauer W (2010) J Stat Softw 36(3):1-48; metafor ``R/escalc.r``
(defaults ``add=1/2, to="only0"``, ``vtype="LS"``). Zero cells: 1/2 is added to every
cell of a study with a zero cell; studies with no events (or only events) in both arms
are dropped with a warning, because they carry no information on a relative measure.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import gammaln

from neuromodmap.evidence._errors import MetaAnalysisError, MetaAnalysisWarning

__all__ = ["escalc", "MEASURES"]

MEASURES: dict[str, str] = {
    "RR": "log risk ratio",
    "OR": "log odds ratio",
    "RD": "risk difference",
    "SMD": "standardised mean difference (Hedges' g)",
    "MD": "raw mean difference",
    "PLO": "logit-transformed proportion",
    "PR": "raw proportion",
    "PFT": "Freeman-Tukey double arcsine transformed proportion",
    "ZCOR": "Fisher r-to-z transformed correlation",
}

_TWO_BY_TWO = ("RR", "OR", "RD")
_MEANS = ("SMD", "MD")
_PROPORTIONS = ("PLO", "PR", "PFT")


def _as_float(name: str, values, k: int | None = None) -> np.ndarray:
    if values is None:
        raise MetaAnalysisError(f"argument {name!r} is required for this measure")
    arr = np.atleast_1d(np.asarray(values, dtype=object))
    out = np.empty(arr.shape, dtype=float)
    for i, v in enumerate(arr):
        if v is None:
            out[i] = np.nan
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise MetaAnalysisError(
                f"{name}[{i}] is not a number: {v!r}"
            ) from None
    if k is not None and out.shape[0] != k:
        raise MetaAnalysisError(f"{name} has {out.shape[0]} values, expected {k}")
    return out


def _cmicalc(m: np.ndarray) -> np.ndarray:
    """Exact bias correction J(m) = Γ(m/2) / (sqrt(m/2) Γ((m-1)/2)) (metafor .cmicalc)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.exp(gammaln(m / 2) - np.log(np.sqrt(m / 2)) - gammaln((m - 1) / 2))


def escalc(
    measure: str,
    *,
    ai=None, bi=None, ci=None, di=None, n1i=None, n2i=None,
    m1i=None, m2i=None, sd1i=None, sd2i=None,
    xi=None, ni=None, ri=None,
    add: float | None = None,
    drop00: bool = True,
    slab: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Compute effect sizes ``yi`` and sampling variances ``vi`` as metafor's ``escalc``.

    Parameters
    ----------
    measure : str
        ``RR``, ``OR``, ``RD`` (2x2 tables: ``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``),
        ``SMD`` (Hedges' g with the exact gamma-function correction), ``MD``
        (``m1i, sd1i, n1i, m2i, sd2i, n2i``), ``PLO``, ``PR``, ``PFT`` (single
        proportions: ``xi, ni``) or ``ZCOR`` (``ri, ni``).
    add : float, optional
        Continuity correction added to every cell of a study with a zero cell. metafor's
        default: 1/2, except 0 for ``PFT``.
    drop00 : bool
        Drop 2x2 studies with no events (or no non-events) in both arms, with a warning.
    slab : sequence of str, optional
        Study labels, kept as the index of the result.

    Returns
    -------
    pandas.DataFrame
        Columns ``yi`` and ``vi`` (plus ``ni``, the total sample size); rows in input
        order. Dropped studies keep their row with ``yi``/``vi`` NaN and a ``note``.
        ``df.attrs["measure"]`` holds the measure.
    """
    measure = str(measure).upper()
    if measure not in MEASURES:
        raise MetaAnalysisError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    if add is None:
        add = 0.0 if measure == "PFT" else 0.5
    notes: list[str] = []

    if measure in _TWO_BY_TWO:
        a = _as_float("ai", ai)
        k = a.shape[0]
        c = _as_float("ci", ci, k)
        b = _as_float("bi", bi, k) if bi is not None else _as_float("n1i", n1i, k) - a
        d = _as_float("di", di, k) if di is not None else _as_float("n2i", n2i, k) - c
        if np.any(np.c_[a, b, c, d] < 0):
            raise MetaAnalysisError("one or more counts are negative (or events exceed the group size)")
        notes = [""] * k
        double = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
        if drop00 and measure != "RD" and double.any():
            for i in np.flatnonzero(double):
                notes[i] = "dropped: no events (or all events) in both arms"
            a, b, c, d = (np.where(double, np.nan, x) for x in (a, b, c, d))
        zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
        a, b, c, d = (np.where(zero, x + add, x) for x in (a, b, c, d))
        for i in np.flatnonzero(zero):
            notes[i] = f"{add:g} added to each cell (zero cell)"
        n1, n2 = a + b, c + d
        p1, p2 = a / n1, c / n2
        with np.errstate(divide="ignore", invalid="ignore"):
            if measure == "RR":
                yi = np.log(p1) - np.log(p2)
                vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
            elif measure == "OR":
                yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
                vi = 1 / a + 1 / b + 1 / c + 1 / d
            else:  # RD, large-sample variance (vtype="LS")
                yi = p1 - p2
                vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        n_total = n1 + n2
        dropped = [i for i, note in enumerate(notes) if note.startswith("dropped")]
        if dropped:
            names = [str(slab[i]) if slab is not None else f"study {i + 1}" for i in dropped]
            warnings.warn(
                f"{len(dropped)} double-zero stud{'y' if len(dropped) == 1 else 'ies'} dropped "
                f"(no events or only events in both arms): {', '.join(names)}",
                MetaAnalysisWarning, stacklevel=2,
            )

    elif measure in _MEANS:
        m1 = _as_float("m1i", m1i)
        k = m1.shape[0]
        m2 = _as_float("m2i", m2i, k)
        s1, s2 = _as_float("sd1i", sd1i, k), _as_float("sd2i", sd2i, k)
        n1, n2 = _as_float("n1i", n1i, k), _as_float("n2i", n2i, k)
        if np.any(np.c_[s1, s2] < 0):
            raise MetaAnalysisError("one or more standard deviations are negative")
        if np.any(np.c_[n1, n2] < 0):
            raise MetaAnalysisError("one or more sample sizes are negative")
        n_total = n1 + n2
        with np.errstate(divide="ignore", invalid="ignore"):
            if measure == "MD":
                yi = m1 - m2
                vi = s1**2 / n1 + s2**2 / n2
            else:
                mi = n_total - 2
                sdp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mi)
                yi = _cmicalc(mi) * (m1 - m2) / sdp
                vi = 1 / n1 + 1 / n2 + yi**2 / (2 * n_total)
        notes = [""] * k

    elif measure in _PROPORTIONS:
        x = _as_float("xi", xi)
        k = x.shape[0]
        n = _as_float("ni", ni, k)
        if np.any(x > n):
            raise MetaAnalysisError("one or more event counts are larger than the group size")
        if np.any(np.c_[x, n - x] < 0):
            raise MetaAnalysisError("one or more counts are negative")
        n_total = n.copy()
        notes = [""] * k
        if measure == "PFT":
            with np.errstate(invalid="ignore"):
                yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
            vi = 1 / (4 * n + 2)
        else:
            m = n - x
            zero = (x == 0) | (m == 0)
            x = np.where(zero, x + add, x)
            m = np.where(zero, m + add, m)
            for i in np.flatnonzero(zero & (add > 0)):
                notes[i] = f"{add:g} added to events and non-events (proportion of 0 or 1)"
            n_adj = x + m
            p = x / n_adj
            with np.errstate(divide="ignore", invalid="ignore"):
                if measure == "PLO":
                    yi = np.log(p / (1 - p))
                    vi = 1 / x + 1 / m
                else:
                    yi = p
                    vi = p * (1 - p) / n_adj

    else:  # ZCOR
        r = _as_float("ri", ri)
        k = r.shape[0]
        n = _as_float("ni", ni, k)
        if np.any(np.abs(r) > 1):
            raise MetaAnalysisError("one or more correlations are > 1 or < -1")
        with np.errstate(divide="ignore"):
            yi = np.arctanh(r)
        vi = np.where(n > 4, 1 / (n - 3), np.nan)
        n_total = n
        notes = ["variance not estimable (n <= 4)" if v <= 4 else "" for v in n]

    yi = np.where(np.isfinite(yi), yi, np.nan)
    vi = np.where(np.isfinite(vi), vi, np.nan)
    index = pd.Index([str(s) for s in slab], name="study") if slab is not None else None
    if index is not None and len(index) != len(yi):
        raise MetaAnalysisError(f"slab has {len(index)} labels for {len(yi)} studies")
    out = pd.DataFrame({"yi": yi, "vi": vi, "ni": n_total, "note": notes}, index=index)
    out.attrs["measure"] = measure
    return out
