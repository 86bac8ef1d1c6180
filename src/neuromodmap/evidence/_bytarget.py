"""Pooled effect per stimulation target: one row per target code, with the catalogue site to draw it on.

``pool_by_target(effects)`` takes :func:`neuromodmap.evidence.effect_sizes` output (the sheet's
``target`` column kept per row), fits one random-effects model per target code and returns a
table the report and the connectome stage read directly: target code and name, k, the studies,
the pooled estimate with its CI on the analysis scale and back-transformed (ratios,
proportions), tau², I², and the catalogue coordinate of the target (the site the connectivity
meta-regression uses). A target with a single study gets that study's own effect and CI
(``model = "single study"``); rows without a target are counted in one last row
(``target`` empty, ``placed`` False) so a reader sees how much of the evidence has no known site.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from neuromodmap.evidence._errors import MetaAnalysisError
from neuromodmap.evidence._rma import METHODS, rma
from neuromodmap.evidence._transforms import back_transform

__all__ = ["pool_by_target", "TARGET_TABLE_COLUMNS"]

#: columns of :func:`pool_by_target`'s table, in order
TARGET_TABLE_COLUMNS = ["target", "target_name", "k", "studies", "measure", "model", "estimate", "se", "ci_lb",
                        "ci_ub", "pval", "estimate_bt", "ci_lb_bt", "ci_ub_bt", "tau2", "i2", "placed",
                        "catalogue_id", "x", "y", "z"]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value == ""


def pool_by_target(effects: pd.DataFrame, *, measure: str | None = None, method: str = "REML", test: str = "z",
                   level: float = 95, data_dir=None, catalogue: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per target code: pooled effect (REML by default), CI, heterogeneity and the catalogue site.

    Parameters
    ----------
    effects : DataFrame
        ``study, yi, vi`` and ``target`` per row (``effect_sizes`` / ``run_meta(...).effects``).
    measure : str, optional
        Effect measure (default ``effects.attrs["measure"]``); ratios and proportions get ``*_bt`` columns.
    method, test, level
        As for :func:`rma`.
    catalogue : DataFrame, optional
        Target catalogue to take coordinates from (default :func:`neuromodmap.connectome.target_catalogue`);
        the first row of a target code is its site, as in the connectivity meta-regression.

    Returns
    -------
    DataFrame with :data:`TARGET_TABLE_COLUMNS`, targets ordered by k (largest first) then code; the last
    row (``placed`` False, empty ``target``) counts the studies without a target, when there are any.
    """
    measure = (measure or effects.attrs.get("measure") or "").upper() or None
    if method.upper() not in METHODS:
        raise MetaAnalysisError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    for col in ("study", "yi", "vi"):
        if col not in effects:
            raise MetaAnalysisError(f"effects table lacks column {col!r}")
    if "target" not in effects:
        raise MetaAnalysisError("effects table has no 'target' column: give each study a target code in the sheet")
    from neuromodmap.vocabulary import TARGETS

    if catalogue is None:
        from neuromodmap.config import DataNotFoundError
        from neuromodmap.connectome import target_catalogue

        try:
            catalogue = target_catalogue(data_dir)
        except (DataNotFoundError, OSError):  # no atlases at hand: literature coordinates only
            catalogue = target_catalogue(data_dir, derived=False)
    first = catalogue.drop_duplicates("target").set_index("target")
    targets = [None if _missing(t) else str(t) for t in effects["target"]]
    unknown = sorted({t for t in targets if t is not None and t not in TARGETS})
    if unknown:
        raise MetaAnalysisError(f"unknown target code(s) {', '.join(unknown)}; see neuromodmap.vocabulary.TARGETS")
    transf = back_transform(measure, effects["ni"].to_numpy(float) if "ni" in effects else None) if measure else None
    yi, vi = effects["yi"].to_numpy(float), effects["vi"].to_numpy(float)
    studies = [str(s) for s in effects["study"]]
    codes = pd.Series([t for t in targets if t is not None]).value_counts()
    order = sorted(codes.index, key=lambda c: (-codes[c], c))
    crit = float(stats.norm.ppf(1 - (1 - level / 100) / 2))
    rows = []
    for code in order:
        mask = np.array([t == code for t in targets])
        k = int(mask.sum())
        row = {"target": code, "target_name": TARGETS[code].label, "k": k,
               "studies": "; ".join(np.asarray(studies)[mask]), "measure": measure}
        if k == 1:
            y, v = float(yi[mask][0]), float(vi[mask][0])
            se = math.sqrt(v)
            z = y / se if se > 0 else float("nan")
            row.update(model="single study", estimate=y, se=se, ci_lb=y - crit * se, ci_ub=y + crit * se,
                       pval=float(2 * stats.norm.sf(abs(z))), tau2=np.nan, i2=np.nan)
        else:
            fit = rma(yi[mask], vi[mask], method=method, test=test, level=level, measure=measure,
                      slab=list(np.asarray(studies)[mask]))
            row.update(model=f"{fit.method} random effects" if fit.method != "EE" else "equal effects",
                       estimate=fit.estimate, se=fit.se, ci_lb=fit.ci_lb, ci_ub=fit.ci_ub, pval=fit.pval,
                       tau2=fit.tau2, i2=fit.i2)
        if code in first.index:
            site = first.loc[code]
            row.update(placed=True, catalogue_id=site["id"], x=float(site["x"]), y=float(site["y"]),
                       z=float(site["z"]))
        else:
            row.update(placed=False, catalogue_id="", x=np.nan, y=np.nan, z=np.nan)
        rows.append(row)
    n_none = sum(t is None for t in targets)
    if n_none:
        rows.append({"target": "", "target_name": "stimulation site not reported in the sources read", "k": n_none,
                     "studies": "; ".join(s for s, t in zip(studies, targets, strict=True) if t is None),
                     "measure": measure, "model": "not pooled", "placed": False, "catalogue_id": ""})
    out = pd.DataFrame(rows).reindex(columns=TARGET_TABLE_COLUMNS)
    for col in ("estimate_bt", "ci_lb_bt", "ci_ub_bt"):
        src = col[:-3]
        out[col] = [float(transf(v)) if transf is not None and np.isfinite(v) else np.nan
                    for v in out[src].to_numpy(float)]
    out["placed"] = out["placed"].astype(bool)
    out.attrs["measure"] = measure
    out.attrs["method"] = method.upper()
    return out
