"""Meta-regression of effect size on a study target's connectivity to a seed (Fox/Weigand across trials).

Each study's stimulation site is its sheet coordinate (``x, y, z``) or, when only a target
code is given, the built-in catalogue coordinate of that target (the first literature row
of :func:`neuromodmap.connectome.target_catalogue`). The connectivity of a 10 mm sphere at
that site to a seed sphere (default: the right sgACC of Fox et al. 2012, MNI 6, 16, -10) is
read from a normative parcel connectome with :func:`neuromodmap.connectome.site_to_seed`,
and the effects are regressed on it with a mixed-effects model (:func:`rma` with ``mods``).
Fox et al. (2012) related the efficacy of left-DLPFC sites to their sgACC anticorrelation
across published studies; Weigand et al. (2018) did so across patients.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from neuromodmap import __version__
from neuromodmap.evidence._errors import MetaAnalysisError
from neuromodmap.evidence._rma import METHODS, TESTS, RMAResult, rma
from neuromodmap.provenance import Provenance

__all__ = ["ConnectivityMetaRegression", "connectivity_metaregression", "study_sites", "MODERATORS"]

#: moderators ``evidence meta --moderator`` knows
MODERATORS = ("connectivity",)

FOX_2012 = ("Fox MD, Buckner RL, White MP, Greicius MD, Pascual-Leone A. Efficacy of transcranial magnetic "
            "stimulation targets for depression is related to intrinsic functional connectivity with the "
            "subgenual cingulate. Biol Psychiatry. 2012;72(7):595-603.")
WEIGAND_2018 = ("Weigand A, Horn A, Caballero R, et al. Prospective validation that subgenual connectivity "
                "predicts antidepressant efficacy of transcranial magnetic stimulation sites. Biol Psychiatry. "
                "2018;84(1):28-37.")


def study_sites(effects: pd.DataFrame, data_dir=None) -> pd.DataFrame:
    """One stimulation site per effect-size row: the sheet's x, y, z, else the target's catalogue coordinate.

    Returns the rows that have a site, with ``id`` (the sheet row), ``study``, ``target``,
    ``x, y, z`` and ``site_source`` ("sheet" or "catalogue: <catalogue id>"). Rows with
    neither are left out; ``attrs["unplaced"]`` lists them.
    """
    from neuromodmap.connectome import target_catalogue

    catalogue = None
    rows, unplaced = [], []
    for rec in effects.itertuples(index=False):
        x, y, z = (getattr(rec, c, None) for c in ("x", "y", "z"))
        target = getattr(rec, "target", None)
        target = None if target is None or (isinstance(target, float) and math.isnan(target)) else target
        if all(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in (x, y, z)):
            rows.append({"id": int(rec.row), "study": rec.study, "target": target, "x": float(x), "y": float(y),
                         "z": float(z), "site_source": "sheet"})
            continue
        if target is not None:
            if catalogue is None:
                catalogue = target_catalogue(data_dir)
            match = catalogue[catalogue.target == target]
            if len(match):
                first = match.iloc[0]
                rows.append({"id": int(rec.row), "study": rec.study, "target": target, "x": float(first.x),
                             "y": float(first.y), "z": float(first.z),
                             "site_source": f"catalogue: {first['id']}"})
                continue
            unplaced.append(f"row {rec.row} ({rec.study}): target {target} has no catalogue coordinate; "
                            "give x, y, z")
            continue
        unplaced.append(f"row {rec.row} ({rec.study}): no target and no x, y, z")
    out = pd.DataFrame(rows, columns=["id", "study", "target", "x", "y", "z", "site_source"])
    out.attrs["unplaced"] = unplaced
    return out


@dataclass(eq=False)
class ConnectivityMetaRegression:
    """Effect size regressed on each study site's connectivity to a seed."""

    sites: pd.DataFrame
    fit: RMAResult
    seed: tuple[float, float, float]
    connectome: str
    units: str
    radius: float
    measure: str | None
    notes: list[str]
    provenance: Provenance
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def slope(self) -> float:
        return float(self.fit.beta[1])

    def table(self) -> pd.DataFrame:
        """Per study: site, connectivity, effect, variance and weight in the meta-regression."""
        out = self.sites.copy()
        out["weight"] = self.fit.weights
        return out

    def coef_table(self) -> pd.DataFrame:
        return self.fit.coef_table()

    def methods_paragraph(self) -> str:
        seed = ", ".join(f"{v:g}" for v in self.seed)
        placed = self.sites["site_source"].eq("sheet").sum()
        cat = len(self.sites) - placed
        where = []
        if placed:
            where.append(f"{placed} from the MNI coordinates extracted per study")
        if cat:
            where.append(f"{cat} from the built-in catalogue coordinate of the study's target code")
        est = "" if self.fit.method == "EE" else f", tau² estimated by {METHODS[self.fit.method]}"
        test = TESTS.get(self.fit.test, "Wald-type z tests")
        return (
            f"To relate efficacy to the network stimulated, each study's stimulation site ({'; '.join(where)}) "
            f"was modelled as a {self.radius:g} mm sphere and its mean connectivity to a {self.radius:g} mm sphere "
            f"at MNI {seed} was read from the {self.connectome} normative connectome ({self.units}), following "
            f"the across-study analysis of Fox et al. (2012). Effect sizes were regressed on this connectivity "
            f"with a mixed-effects meta-regression (k = {self.fit.k}{est}; {test}). Analyses used neuromodmap "
            f"{__version__}.\n\nReferences\n- {FOX_2012}\n- {WEIGAND_2018}\n"
            f"- Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw. "
            f"2010;36(3):1-48."
        )

    def summary(self) -> str:
        return (f"Meta-regression on connectivity to seed {self.seed} ({self.connectome}, {self.units})\n"
                + str(self.fit))


def connectivity_metaregression(effects: pd.DataFrame, seed=None, *, connectome=None, radius: float = 10.0,
                                method: str = "REML", test: str = "z", level: float = 95,
                                data_dir=None, figure: bool = True) -> ConnectivityMetaRegression:
    """Regress study effects on their site's connectivity to ``seed`` (default: Fox 2012 sgACC).

    Parameters
    ----------
    effects : DataFrame
        :func:`neuromodmap.evidence.effect_sizes` output (``row, study, yi, vi`` plus the
        sheet's ``target`` and ``x, y, z``), e.g. ``run_meta(...).effects``.
    seed : (x, y, z), optional
        MNI seed centre; default :data:`neuromodmap.connectome.SGACC_SEED`.
    connectome : str or ParcelConnectome, optional
        Default ``neuromodmap.connectome.DEFAULT_CONNECTOME``.

    Raises
    ------
    MetaAnalysisError
        Fewer than 3 studies with a site, or sites that all have the same connectivity.
    """
    from neuromodmap.connectome import DEFAULT_CONNECTOME, SGACC_SEED, load_connectome, site_to_seed

    seed = tuple(float(v) for v in (SGACC_SEED if seed is None else seed))
    if len(seed) != 3:
        raise MetaAnalysisError(f"seed must be x, y, z; got {seed}")
    sites = study_sites(effects, data_dir)
    notes = list(sites.attrs.get("unplaced", []))
    if len(sites) < 3:
        raise MetaAnalysisError(
            f"a connectivity meta-regression needs at least 3 studies with a target code or x, y, z; "
            f"{len(sites)} of {len(effects)} have one" + (f" (e.g. {'; '.join(notes[:3])}"
                                                          f"{f'; {len(notes) - 3} more' if len(notes) > 3 else ''})"
                                                          if notes else ""))
    conn = connectome if connectome is not None else DEFAULT_CONNECTOME
    if isinstance(conn, str):
        conn = load_connectome(conn, data_dir)
    mapped = site_to_seed(sites, seed, radius=radius, connectome=conn)
    keep = np.isfinite(mapped["connectivity"].to_numpy(float))
    for r in mapped.loc[~keep].itertuples():
        notes.append(f"row {r.id} ({r.study}): site not on the connectome ({r.note})")
    mapped = mapped.loc[keep].reset_index(drop=True)
    by_row = effects.set_index("row")
    mapped["yi"] = by_row.loc[mapped["id"], "yi"].to_numpy(float)
    mapped["vi"] = by_row.loc[mapped["id"], "vi"].to_numpy(float)
    if len(mapped) < 3:
        raise MetaAnalysisError(f"only {len(mapped)} study sites map onto {conn.name}; at least 3 are needed")
    if np.ptp(mapped["connectivity"].to_numpy(float)) == 0:
        raise MetaAnalysisError("every study site has the same connectivity to the seed (e.g. one target code "
                                "for all); give per-study x, y, z to regress on connectivity")
    fit = rma(mapped["yi"].to_numpy(), mapped["vi"].to_numpy(), mods=mapped[["connectivity"]], method=method,
              test=test, level=level, slab=list(mapped["study"]), measure=effects.attrs.get("measure"))
    prov = Provenance(source=f"{conn.name} connectome; seed {seed}", as_of=dt.date.today(),
                      citation=f"{FOX_2012} {conn.provenance.citation}".strip(),
                      extra={"connectome": conn.name, "units": conn.units, "radius_mm": f"{radius:g}"})
    fit.provenance = prov
    result = ConnectivityMetaRegression(sites=mapped, fit=fit, seed=seed, connectome=conn.name, units=conn.units,
                                        radius=radius, measure=effects.attrs.get("measure"), notes=notes,
                                        provenance=prov)
    if figure:
        result.figures["bubble"] = bubble(result)
    return result


def bubble(result: ConnectivityMetaRegression):
    """Bubble plot: effect size against connectivity, bubble area proportional to the study's weight."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from neuromodmap.evidence._transforms import back_transform

    t = result.sites
    x = t["connectivity"].to_numpy(float)
    y = t["yi"].to_numpy(float)
    w = result.fit.weights
    fig = Figure(figsize=(6.4, 4.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(x, y, s=30 + 600 * w / w.max(), facecolor="#9ecae1", edgecolor="#08519c", alpha=0.8, zorder=2)
    grid = np.linspace(x.min(), x.max(), 100)
    b = result.fit.beta
    vb = result.fit.vb
    fitted = b[0] + b[1] * grid
    se = np.sqrt(vb[0, 0] + 2 * grid * vb[0, 1] + grid**2 * vb[1, 1])
    crit = result.fit._crit()
    ax.plot(grid, fitted, color="#08519c", zorder=3)
    ax.fill_between(grid, fitted - crit * se, fitted + crit * se, color="#08519c", alpha=0.12, zorder=1)
    ax.axhline(0, color="grey", lw=0.8, ls=":")
    for xi, yi, label in zip(x, y, t["study"], strict=True):
        ax.annotate(str(label), (xi, yi), fontsize=7, xytext=(4, 3), textcoords="offset points")
    measure = result.measure or "effect"
    transf = back_transform(measure, None) if measure in ("RR", "OR") else None
    ax.set_ylabel(f"{measure} ({'log scale' if transf else 'effect'})")
    seed = ", ".join(f"{v:g}" for v in result.seed)
    ax.set_xlabel(f"Connectivity of the site to MNI {seed} ({result.units})")
    p = result.fit.pvals[1]
    ax.set_title(f"Meta-regression on connectivity: slope {result.slope:.3f}, p = {p:.3g} (k = {result.fit.k})",
                 fontsize=10)
    fig.tight_layout()
    return fig
