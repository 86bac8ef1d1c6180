"""Effect sizes and sampling variances, following metafor's ``escalc()`` formulas.

References: Viechtbauer W (2010) J Stat Softw 36(3):1-48; metafor ``R/escalc.r`` (read in
metafor 3.8-1). Defaults are metafor's: ``add=1/2`` (0 for PAS and PFT), ``to="only0"``
(the correction goes to every cell of a study with a zero cell), ``drop00=False`` (a study
with no events, or only events, in both arms is kept, with the correction added) and
``vtype="LS"`` (large-sample variances). As in metafor, a study whose ``yi`` or ``vi`` is
infinite or undefined gets both set to NaN, and a negative ``vi`` becomes NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import gammaln

from neuromodmap.evidence._errors import MetaAnalysisError, MetaAnalysisWarning

__all__ = ["escalc", "MEASURES", "VTYPES"]

MEASURES: dict[str, str] = {
    "RR": "log risk ratio",
    "OR": "log odds ratio",
    "RD": "risk difference",
    "PETO": "log odds ratio (Peto's method)",
    "IRR": "log incidence rate ratio",
    "IRD": "incidence rate difference",
    "SMD": "standardised mean difference (Hedges' g)",
    "MD": "raw mean difference",
    "ROM": "log ratio of means",
    "MC": "raw mean change",
    "SMCC": "standardised mean change (change-score standardisation)",
    "SMCR": "standardised mean change (raw-score standardisation)",
    "PLO": "logit-transformed proportion",
    "PR": "raw proportion",
    "PAS": "arcsine square root transformed proportion",
    "PFT": "Freeman-Tukey double arcsine transformed proportion",
    "COR": "raw correlation coefficient",
    "ZCOR": "Fisher r-to-z transformed correlation",
}

#: the variance types each measure accepts (first: the default, metafor's "LS")
VTYPES: dict[str, tuple[str, ...]] = {
    "RD": ("LS", "UB", "AV"), "SMD": ("LS", "UB", "LS2", "AV"), "MD": ("LS", "UB", "HO"),
    "ROM": ("LS", "HO", "AV", "AVHO"), "SMCC": ("LS", "LS2"), "SMCR": ("LS", "LS2"),
    "PR": ("LS", "UB", "AV"), "PLO": ("LS", "AV"), "COR": ("LS", "UB", "AV"),
}

_TWO_BY_TWO = ("RR", "OR", "RD", "PETO")
_RATES = ("IRR", "IRD")
_MEANS = ("SMD", "MD", "ROM")
_CHANGE = ("MC", "SMCC", "SMCR")
_PROPORTIONS = ("PLO", "PR", "PAS", "PFT")
_CORRELATIONS = ("COR", "ZCOR")
_TO = ("only0", "all", "if0all", "none")


def _as_float(name: str, values, k: int | None = None) -> np.ndarray:
    if values is None:
        raise MetaAnalysisError(f"argument {name!r} is required for this measure")
    try:  # fast path: already numeric
        out = np.atleast_1d(np.asarray(values, dtype=float)).ravel().copy()
    except (TypeError, ValueError):
        arr = np.atleast_1d(np.asarray(values, dtype=object)).ravel()
        out = np.empty(arr.shape, dtype=float)
        for i, v in enumerate(arr):
            if v is None:
                out[i] = np.nan
                continue
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                raise MetaAnalysisError(f"{name}[{i}] is not a number: {v!r}") from None
    if k is not None and out.shape[0] != k:
        raise MetaAnalysisError(f"{name} has {out.shape[0]} values, expected {k}")
    return out


def _cmicalc(m: np.ndarray) -> np.ndarray:
    """Exact bias correction J(m) = Γ(m/2) / (sqrt(m/2) Γ((m-1)/2)) (metafor .cmicalc)."""
    m = np.asarray(m, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.exp(gammaln(m / 2) - np.log(np.sqrt(m / 2)) - gammaln((m - 1) / 2))
    return np.where(m <= 1, np.nan, out)  # metafor: NA when mi <= 1


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    """metafor's .wmean(x, w, na.rm=TRUE)."""
    ok = np.isfinite(x) & np.isfinite(w)
    return float(np.sum(w[ok] * x[ok]) / np.sum(w[ok]))


def _continuity(cells: list[np.ndarray], add: float, to: str, notes: list[str], what: str) -> list[np.ndarray]:
    """Add ``add`` to the cells as metafor's ``to`` says; note which studies got it."""
    if to == "none" or add == 0:
        return cells
    if to == "all":
        rows = np.ones(cells[0].shape, bool)
    else:
        rows = np.zeros(cells[0].shape, bool)
        for c in cells:
            rows |= c == 0
        if to == "if0all":
            rows[:] = rows.any()
    for i in np.flatnonzero(rows & np.all([np.isfinite(c) for c in cells], axis=0)):
        notes[i] = f"{add:g} added to {what}" + (" (zero cell)" if to == "only0" else "")
    return [np.where(rows, c + add, c) for c in cells]


def escalc(
    measure: str,
    *,
    ai=None, bi=None, ci=None, di=None, n1i=None, n2i=None,
    x1i=None, x2i=None, t1i=None, t2i=None,
    m1i=None, m2i=None, sd1i=None, sd2i=None,
    xi=None, ni=None, ri=None,
    add: float | None = None,
    to: str = "only0",
    drop00: bool = False,
    vtype: str = "LS",
    slab: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Compute effect sizes ``yi`` and sampling variances ``vi`` as metafor's ``escalc``.

    Parameters
    ----------
    measure : str
        2x2 tables (``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``): ``RR``, ``OR``, ``RD``,
        ``PETO``. Incidence rates (``x1i, t1i, x2i, t2i``: events and person-time):
        ``IRR``, ``IRD``. Two groups' means (``m1i, sd1i, n1i, m2i, sd2i, n2i``): ``SMD``
        (Hedges' g, exact gamma-function correction), ``MD``, ``ROM``. One group measured
        twice (``m1i, sd1i`` after or first condition, ``m2i, sd2i`` before or second,
        ``ni`` and the pre-post correlation ``ri``): ``MC``, ``SMCC`` (standardised by the
        SD of the change scores), ``SMCR`` (standardised by ``sd1i``; metafor's raw-score
        standardisation, ``sd2i`` not needed). Single proportions (``xi, ni``): ``PLO``,
        ``PR``, ``PAS``, ``PFT``. Correlations (``ri, ni``): ``COR``, ``ZCOR``.
    add, to : float, str
        Continuity correction: ``add`` (default 1/2; 0 for ``PAS`` and ``PFT``) is added to
        the cells of the studies ``to`` selects: ``"only0"`` (studies with a zero cell,
        the default), ``"all"``, ``"if0all"`` (every study if any has a zero) or ``"none"``.
    drop00 : bool
        Set studies with no events (or only events) in both arms to NaN (metafor's
        default is False: such studies are kept with the correction added).
    vtype : str
        Sampling-variance type (:data:`VTYPES`); ``"LS"`` (large-sample) by default.
    slab : sequence of str, optional
        Study labels, kept as the index of the result.

    Returns
    -------
    pandas.DataFrame
        Columns ``yi`` and ``vi`` (plus ``ni``, the total sample size, and ``note``);
        rows in input order. Dropped or undefined studies keep their row with
        ``yi``/``vi`` NaN and a ``note``. ``df.attrs["measure"]`` holds the measure.
    """
    measure = str(measure).upper()
    if measure not in MEASURES:
        raise MetaAnalysisError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    if to not in _TO:
        raise MetaAnalysisError(f"unknown 'to' {to!r}; choose one of {', '.join(_TO)}")
    vtype = str(vtype).upper()
    allowed = VTYPES.get(measure, ("LS",))
    if vtype not in allowed:
        raise MetaAnalysisError(f"vtype {vtype!r} is not available for {measure}; choose one of {', '.join(allowed)}")
    if add is None:
        add = 0.0 if measure in ("PAS", "PFT") else 0.5
    add = float(add)

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
        if drop00 and double.any():
            for i in np.flatnonzero(double):
                notes[i] = "dropped: no events (or all events) in both arms"
            a, b, c, d = (np.where(double, np.nan, x) for x in (a, b, c, d))
        a, b, c, d = _continuity([a, b, c, d], add, to, notes, "each cell")
        n1, n2 = a + b, c + d
        n_total = n1 + n2
        p1, p2 = a / n1, c / n2
        with np.errstate(divide="ignore", invalid="ignore"):
            if measure == "RR":
                yi = np.log(p1) - np.log(p2)
                vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
            elif measure == "OR":
                yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
                vi = 1 / a + 1 / b + 1 / c + 1 / d
            elif measure == "PETO":
                xt, yt = a + c, b + d
                e = xt * n1 / n_total
                var = xt * yt * (n1 / n_total) * (n2 / n_total) / (n_total - 1)
                yi = (a - e) / var
                vi = 1 / var
            else:  # RD
                yi = p1 - p2
                if vtype == "UB":
                    vi = p1 * (1 - p1) / (n1 - 1) + p2 * (1 - p2) / (n2 - 1)
                elif vtype == "AV":
                    m1, m2 = _wmean(p1, n1), _wmean(p2, n2)
                    vi = m1 * (1 - m1) / n1 + m2 * (1 - m2) / n2
                else:
                    vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        dropped = [i for i, note in enumerate(notes) if note.startswith("dropped")]
        if dropped:
            names = [str(slab[i]) if slab is not None else f"study {i + 1}" for i in dropped]
            warnings.warn(
                f"{len(dropped)} double-zero stud{'y' if len(dropped) == 1 else 'ies'} dropped "
                f"(no events or only events in both arms): {', '.join(names)}",
                MetaAnalysisWarning, stacklevel=2,
            )

    elif measure in _RATES:
        x1 = _as_float("x1i", x1i)
        k = x1.shape[0]
        x2 = _as_float("x2i", x2i, k)
        t1, t2 = _as_float("t1i", t1i, k), _as_float("t2i", t2i, k)
        if np.any(np.c_[x1, x2] < 0):
            raise MetaAnalysisError("one or more event counts are negative")
        if np.any(np.c_[t1, t2] <= 0):
            raise MetaAnalysisError("one or more person-times are <= 0")
        notes = [""] * k
        n_total = t1 + t2
        if drop00:
            double = (x1 == 0) & (x2 == 0)
            for i in np.flatnonzero(double):
                notes[i] = "dropped: no events in both groups"
            x1, x2 = (np.where(double, np.nan, x) for x in (x1, x2))
        x1, x2 = _continuity([x1, x2], add, to, notes, "each event count")
        ir1, ir2 = x1 / t1, x2 / t2
        with np.errstate(divide="ignore", invalid="ignore"):
            if measure == "IRR":
                yi = np.log(ir1) - np.log(ir2)
                vi = 1 / x1 + 1 / x2
            else:
                yi = ir1 - ir2
                vi = ir1 / t1 + ir2 / t2

    elif measure in _MEANS:
        m1 = _as_float("m1i", m1i)
        k = m1.shape[0]
        m2 = _as_float("m2i", m2i, k)
        s1, s2 = _as_float("sd1i", sd1i, k), _as_float("sd2i", sd2i, k)
        n1, n2 = _as_float("n1i", n1i, k), _as_float("n2i", n2i, k)
        if np.any(np.c_[s1, s2] < 0):
            raise MetaAnalysisError("one or more standard deviations are negative")
        if np.any(np.c_[n1, n2] <= 0):
            raise MetaAnalysisError("one or more group sizes are <= 0")
        n_total = n1 + n2
        mi = n_total - 2
        with np.errstate(divide="ignore", invalid="ignore"):
            sdp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mi)
            if measure == "MD":
                yi = m1 - m2
                vi = sdp**2 * (1 / n1 + 1 / n2) if vtype == "HO" else s1**2 / n1 + s2**2 / n2
            elif measure == "SMD":
                cmi = _cmicalc(mi)
                d = (m1 - m2) / sdp
                yi = cmi * d
                if vtype == "UB":
                    vi = 1 / n1 + 1 / n2 + (1 - (mi - 2) / (mi * cmi**2)) * yi**2
                elif vtype == "AV":
                    vi = 1 / n1 + 1 / n2 + _wmean(yi, n_total) ** 2 / (2 * n_total)
                elif vtype == "LS2":
                    vi = cmi**2 * (1 / n1 + 1 / n2 + d**2 / (2 * n_total))
                else:
                    vi = 1 / n1 + 1 / n2 + yi**2 / (2 * n_total)
            else:  # ROM
                yi = np.log(m1 / m2)
                cv1, cv2 = s1 / m1, s2 / m2
                if vtype == "HO":
                    vi = sdp**2 / (n1 * m1**2) + sdp**2 / (n2 * m2**2)
                elif vtype == "AV":
                    vi = _wmean(cv1, n1) ** 2 / n1 + _wmean(cv2, n2) ** 2 / n2
                elif vtype == "AVHO":
                    ok = np.isfinite(n1) & np.isfinite(n2) & np.isfinite(cv1) & np.isfinite(cv2)
                    mcv = (np.sum(n1[ok] * cv1[ok]) + np.sum(n2[ok] * cv2[ok])) / np.sum((n1 + n2)[ok])
                    vi = mcv**2 * (1 / n1 + 1 / n2)
                else:
                    vi = s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)
        notes = [""] * k

    elif measure in _CHANGE:
        m1 = _as_float("m1i", m1i)
        k = m1.shape[0]
        m2 = _as_float("m2i", m2i, k)
        s1 = _as_float("sd1i", sd1i, k)
        s2 = _as_float("sd2i", sd2i, k) if measure != "SMCR" else np.full(k, np.nan)
        n = _as_float("ni", ni, k)
        r = _as_float("ri", ri, k)
        if np.any(s1 < 0) or (measure != "SMCR" and np.any(s2 < 0)):
            raise MetaAnalysisError("one or more standard deviations are negative")
        if np.any(np.abs(r) > 1):
            raise MetaAnalysisError("one or more correlations are > 1 or < -1")
        if np.any(n <= 0):
            raise MetaAnalysisError("one or more sample sizes are <= 0")
        n_total = n
        with np.errstate(divide="ignore", invalid="ignore"):
            if measure == "MC":
                yi = m1 - m2
                vi = (s1**2 + s2**2 - 2 * r * s1 * s2) / n
            elif measure == "SMCC":
                cmi = _cmicalc(n - 1)
                d = (m1 - m2) / np.sqrt(s1**2 + s2**2 - 2 * r * s1 * s2)
                yi = cmi * d
                vi = cmi**2 * (1 / n + d**2 / (2 * n)) if vtype == "LS2" else 1 / n + yi**2 / (2 * n)
            else:  # SMCR
                cmi = _cmicalc(n - 1)
                d = (m1 - m2) / s1
                yi = cmi * d
                if vtype == "LS2":
                    vi = cmi**2 * (2 * (1 - r) / n + d**2 / (2 * n))
                else:
                    vi = 2 * (1 - r) / n + yi**2 / (2 * n)
        notes = [""] * k

    elif measure in _PROPORTIONS:
        x = _as_float("xi", xi)
        k = x.shape[0]
        n = _as_float("ni", ni, k)
        if np.any(x > n):
            raise MetaAnalysisError("one or more event counts are larger than the group size")
        if np.any(np.c_[x, n - x] < 0):
            raise MetaAnalysisError("one or more counts are negative")
        if np.any(n <= 0):
            raise MetaAnalysisError("one or more sample sizes are <= 0")
        n_total = n.copy()
        notes = [""] * k
        m = n - x
        x, m = _continuity([x, m], add, to, notes, "events and non-events")
        n_adj = x + m
        p = x / n_adj
        with np.errstate(divide="ignore", invalid="ignore"):
            if measure == "PLO":
                yi = np.log(p / (1 - p))
                if vtype == "AV":
                    mp = _wmean(p, n_adj)
                    vi = 1 / (mp * n_adj) + 1 / ((1 - mp) * n_adj)
                else:
                    vi = 1 / x + 1 / m
            elif measure == "PR":
                yi = p
                if vtype == "UB":
                    vi = p * (1 - p) / (n_adj - 1)
                elif vtype == "AV":
                    mp = _wmean(p, n_adj)
                    vi = mp * (1 - mp) / n_adj
                else:
                    vi = p * (1 - p) / n_adj
            elif measure == "PAS":
                yi = np.arcsin(np.sqrt(p))
                vi = 1 / (4 * n_adj)
            else:  # PFT
                yi = 0.5 * (np.arcsin(np.sqrt(x / (n_adj + 1))) + np.arcsin(np.sqrt((x + 1) / (n_adj + 1))))
                vi = 1 / (4 * n_adj + 2)

    else:  # COR, ZCOR
        r = _as_float("ri", ri)
        k = r.shape[0]
        n = _as_float("ni", ni, k)
        if np.any(np.abs(r) > 1):
            raise MetaAnalysisError("one or more correlations are > 1 or < -1")
        if np.any(n <= 0):
            raise MetaAnalysisError("one or more sample sizes are <= 0")
        with np.errstate(divide="ignore", invalid="ignore"):
            if measure == "ZCOR":
                yi = np.arctanh(r)
                vi = 1 / (n - 3)
            else:
                yi = r.copy()
                if vtype == "UB":
                    from scipy.special import hyp2f1

                    vi = yi**2 - (1 - (n - 3) / (n - 2) * (1 - r**2) * hyp2f1(1, 1, n / 2, 1 - r**2))
                elif vtype == "AV":
                    vi = (1 - _wmean(yi, n) ** 2) ** 2 / (n - 1)
                else:
                    vi = (1 - yi**2) ** 2 / (n - 1)
        vi = np.where(n <= 3, np.nan, vi)
        n_total = n
        notes = ["variance not estimable (n <= 3)" if v <= 3 else "" for v in n]

    yi = np.asarray(yi, float)
    vi = np.broadcast_to(np.asarray(vi, float), yi.shape).copy()
    # metafor: an infinite yi or vi makes both NA; a missing one stays missing alone
    inf = np.isinf(yi) | np.isinf(vi)
    yi = np.where(inf, np.nan, yi)
    vi = np.where(inf | (vi < 0), np.nan, vi)
    for i in np.flatnonzero((np.isnan(yi) | np.isnan(vi)) & np.isfinite(n_total)):
        if not notes[i]:
            notes[i] = "effect size or variance not defined for these data"
    index = pd.Index([str(s) for s in slab], name="study") if slab is not None else None
    if index is not None and len(index) != len(yi):
        raise MetaAnalysisError(f"slab has {len(index)} labels for {len(yi)} studies")
    out = pd.DataFrame({"yi": yi, "vi": vi, "ni": n_total, "note": notes}, index=index)
    out.attrs["measure"] = measure
    return out
