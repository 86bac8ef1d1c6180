"""Back-transformations of pooled estimates (metafor ``transf.*``)."""

from __future__ import annotations

import numpy as np

__all__ = ["transf_exp", "transf_ilogit", "transf_pft", "transf_ipft", "transf_ipft_hm", "back_transform"]


def transf_exp(x):
    """exp(x): log risk/odds ratios back to ratios."""
    return np.exp(x)


def transf_ilogit(x):
    """Inverse logit: log odds back to proportions."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, float)))


def transf_pft(p, n):
    """Freeman-Tukey double arcsine of proportion ``p`` with sample size ``n`` (metafor scale)."""
    x = np.asarray(p, float) * n
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))


def transf_ipft(y, n):
    """Inverse Freeman-Tukey transformation (Miller 1978), as metafor ``transf.ipft``."""
    y = np.asarray(y, float)
    n = np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sin(2 * y)
        z = 0.5 * (1 - np.sign(np.cos(2 * y)) * np.sqrt(1 - (s + (s - 1 / s) / n) ** 2))
    z = np.where(np.isnan(z), np.nan, z)
    z = np.where(y > transf_pft(1.0, n), 1.0, z)
    z = np.where(y < transf_pft(0.0, n), 0.0, z)
    return z if z.ndim else float(z)


def transf_ipft_hm(y, ni):
    """Inverse Freeman-Tukey using the harmonic mean of the sample sizes (metafor ``transf.ipft.hm``)."""
    ni = np.asarray(ni, float)
    n_hm = 1.0 / np.mean(1.0 / ni)
    return transf_ipft(y, n_hm)


def back_transform(measure: str | None, ni=None):
    """The natural back-transformation for a measure, or None (RR/OR -> exp, PLO -> ilogit, PFT -> ipft.hm)."""
    if measure in ("RR", "OR"):
        return transf_exp
    if measure == "PLO":
        return transf_ilogit
    if measure == "ZCOR":
        return np.tanh
    if measure == "PFT" and ni is not None:
        return lambda y: transf_ipft_hm(y, ni)
    return None
