"""Real neuromodulation meta-analysis data shipped with neuromodmap (small, offline, cited).

``load_dataset(name)`` returns the extraction sheet as a DataFrame whose ``attrs["provenance"]``
holds source, date and citation; ``dataset_path(name)`` gives the CSV for
``neuromodmap evidence meta``; ``reproduce(name)`` re-runs the published analysis and returns
published against reproduced numbers. Where every number comes from: ``data/SOURCES.md``.

=========================  ========================================================================
name                       content
=========================  ========================================================================
``gaynes2011_fig13``       rTMS vs sham, response RR, 12 trials in MDD-only treatment-resistant
                           depression, subgroups Tier 1 / Tier 2 (AHRQ CER 33, Figure 13)
``gaynes2011_fig10``       rTMS vs sham, response RR, 11 Tier 1 trials, subgroups MDD only /
                           MDD-bipolar mix (AHRQ CER 33, Figure 10)
=========================  ========================================================================

Four trials carry the stimulation site their own abstract names (``target``; quoted in SOURCES.md), so
``pooled_by_target(name)`` gives the per-target pooled table the report and the connectome stage read, and
``target_metaregression(name)`` the regression of effect on each site's connectivity to the Fox 2012 sgACC.

Example::

    from neuromodmap.evidence import datasets
    path = datasets.dataset_path("gaynes2011_fig13")        # then: evidence meta PATH --measure RR --by subgroup
    table = datasets.reproduce("gaynes2011_fig13")           # published vs reproduced, per analysis
    by_target = datasets.pooled_by_target("gaynes2011_fig13")  # one row per target code (+ "not reported")
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from neuromodmap.provenance import Provenance

__all__ = ["DATASETS", "PUBLISHED", "TARGET_SOURCES", "dataset_path", "load_dataset", "reproduce", "sources_text",
           "pooled_by_target", "target_metaregression", "GAYNES_2011"]

GAYNES_2011 = (
    "Gaynes BN, Lux LJ, Lloyd SW, Hansen RA, Gartlehner G, Thieda P, Brode S, Swinson Evans T, Jonas D, "
    "Crotty K, Viswanathan M, Lohr KN. Nonpharmacologic Interventions for Treatment-Resistant Depression in "
    "Adults. Comparative Effectiveness Review No. 33. AHRQ Publication No. 11-EHC056-EF. Rockville, MD: Agency "
    "for Healthcare Research and Quality; September 2011."
)


@dataclass(frozen=True)
class Dataset:
    name: str
    filename: str
    title: str
    figure: str
    url: str
    measure: str
    by: str


DATASETS: dict[str, Dataset] = {
    "gaynes2011_fig13": Dataset(
        "gaynes2011_fig13", "gaynes2011_fig13_rtms_response.csv",
        "rTMS versus sham: response in treatment-resistant depression (MDD only), Tier 1 and Tier 2 trials",
        "Figure 13", "https://www.ncbi.nlm.nih.gov/pubmedhealth/PMH0016653/figure/results.f10/", "RR", "subgroup"),
    "gaynes2011_fig10": Dataset(
        "gaynes2011_fig10", "gaynes2011_fig10_rtms_response_tier1.csv",
        "rTMS versus sham: response in treatment-resistant depression, Tier 1 trials (MDD only and MDD/bipolar mix)",
        "Figure 10", "https://www.ncbi.nlm.nih.gov/pubmedhealth/PMH0016653/figure/results.f7/", "RR", "subgroup"),
}

#: the report's pooled relative risks (estimate, CI lower, CI upper), as printed (2 decimals)
PUBLISHED: dict[str, dict[str, tuple[float, float, float]]] = {
    "gaynes2011_fig13": {"Tier 1": (2.82, 1.57, 5.09), "Tier 2": (1.87, 1.23, 2.84), "overall": (2.18, 1.47, 3.22)},
    "gaynes2011_fig10": {"MDD/bipolar mix": (5.38, 1.88, 15.46), "overall": (3.34, 1.92, 5.82)},
}


#: where each shipped ``target`` comes from: (study_id, target code, citation, quoted abstract sentence); the
#: sentences are quoted in SOURCES.md too and a test checks both agree with the CSVs
TARGET_SOURCES: list[tuple[str, str, str, str]] = [
    ("Kauffmann2004", "dlpfc_right",
     "Kauffmann CD, Cheema MA, Miller BE. Depress Anxiety 2004;19:59-62 (abstract)", "1 Hz on right prefrontal cortex"),
    ("OReardon2007", "dlpfc_left",
     "O'Reardon JP, Solvason HB, Janicak PG, et al. Efficacy and safety of transcranial magnetic stimulation in "
     "the acute treatment of major depression: a multisite randomized controlled trial (abstract)",
     "TMS over the left dorsolateral prefrontal cortex (DLPFC)"),
    ("GarciaToro2001", "dlpfc_left",
     "Garcia-Toro M, Mayol A, Arnillas H, et al. J Affect Disord 2001;64(2-3):271-275 (abstract)",
     "Forty patients suffering from drug-resistant major depression received ten sessions of HF-rTMS at 90% of "
     "the motor threshold on the left prefrontal cortex or sham stimulation"),
    ("Holtzheimer2004", "dlpfc_left",
     "Holtzheimer PE, Russo J, Claypoole KH, Roy-Byrne P, Avery DH. Depress Anxiety 2004;19(1):24-30 (abstract)",
     "randomly assigned to receive 10 sessions of active or sham 10-Hz rTMS to the left dorsolateral prefrontal "
     "cortex at 110% motor threshold"),
]


def _get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def dataset_path(name: str = "gaynes2011_fig13") -> Path:
    """Path of the shipped extraction sheet (CSV), ready for ``neuromodmap evidence meta``."""
    ds = _get(name)
    return Path(str(resources.files("neuromodmap.evidence") / "data" / ds.filename))


def sources_text() -> str:
    """The SOURCES.md that says where every shipped number comes from."""
    return (resources.files("neuromodmap.evidence") / "data" / "SOURCES.md").read_text(encoding="utf-8")


def provenance(name: str = "gaynes2011_fig13") -> Provenance:
    ds = _get(name)
    return Provenance(source=f"{ds.url} ({ds.figure} text)", as_of=dt.date(2011, 9, 1), citation=GAYNES_2011,
                      licence="US federal government work (public domain)",
                      extra={"dataset": ds.name, "figure": ds.figure, "measure": ds.measure, "by": ds.by})


def load_dataset(name: str = "gaynes2011_fig13") -> pd.DataFrame:
    """The shipped sheet as a DataFrame; ``attrs`` carries ``provenance``, ``title``, ``measure`` and ``by``."""
    ds = _get(name)
    frame = pd.read_csv(dataset_path(name), dtype={"target": "string"}, keep_default_na=False,
                        na_values=[""])
    frame.attrs.update(provenance=provenance(name), title=ds.title, measure=ds.measure, by=ds.by,
                       path=str(dataset_path(name)))
    return frame


def reproduce(name: str = "gaynes2011_fig13") -> pd.DataFrame:
    """Re-run the published analysis; one row per published pooled estimate, published beside reproduced.

    The report pooled each subgroup with a random-effects model (tau² = 0 in every subgroup:
    I² = 0%) and then, for "overall", pooled the subgroup estimates themselves with a
    DerSimonian-Laird random-effects model (subgroups as the unit of analysis). On the
    2-decimal RRs and CIs of the figure text, DL inside Tier 2 gives Q = 3.21 > df = 3
    (tau² = 0.02) where the report, from the trials' counts, had I² = 0%; REML gives tau² = 0
    there, so REML is used within subgroups. Effects are log RRs with SE = (log upper -
    log lower) / 3.92.
    """
    from neuromodmap.evidence._rma import rma

    ds = _get(name)
    sheet = load_dataset(name)
    yi = np.log(sheet["effect"].to_numpy(float))
    vi = ((np.log(sheet["effect_ci_ub"].to_numpy(float)) - np.log(sheet["effect_ci_lb"].to_numpy(float)))
          / (2 * 1.959963984540054)) ** 2
    groups = list(dict.fromkeys(sheet[ds.by]))
    fits = {}
    for g in groups:
        m = (sheet[ds.by] == g).to_numpy()
        fits[g] = rma(yi[m], vi[m], method="REML", slab=list(sheet.loc[m, "study_id"]), measure="RR")
    est = np.array([fits[g].estimate for g in groups])
    var = np.array([fits[g].se ** 2 for g in groups])
    fits["overall"] = rma(est, var, method="DL", slab=groups, measure="RR")
    rows = []
    for label, fit in fits.items():
        pub = PUBLISHED[name].get(label)
        rows.append({"analysis": label, "k": fit.k if label != "overall" else len(sheet),
                     "model": "REML within subgroup" if label != "overall" else "DL across subgroup estimates",
                     "rr": float(np.exp(fit.estimate)), "ci_lb": float(np.exp(fit.ci_lb)),
                     "ci_ub": float(np.exp(fit.ci_ub)), "i2": float(fit.i2), "tau2": float(fit.tau2),
                     "published_rr": pub[0] if pub else np.nan, "published_ci_lb": pub[1] if pub else np.nan,
                     "published_ci_ub": pub[2] if pub else np.nan})
    out = pd.DataFrame(rows)
    out.attrs["provenance"] = provenance(name)
    out.attrs["fits"] = fits
    return out


def _effects(name: str) -> pd.DataFrame:
    from neuromodmap.evidence.pipeline import run_meta

    ds = _get(name)
    effects = run_meta(dataset_path(name), measure=ds.measure, by=None, figures=False).effects
    effects.attrs["measure"] = ds.measure
    return effects


def pooled_by_target(name: str = "gaynes2011_fig13", *, method: str = "REML", level: float = 95,
                     data_dir=None) -> pd.DataFrame:
    """The per-target pooled table of a shipped data set, ready for the report and ``connectome map --effects``.

    One row per target code (pooled relative risk with :func:`rma`, REML by default, on the log scale;
    ``estimate_bt``/``ci_lb_bt``/``ci_ub_bt`` are the RRs), the catalogue site each target is drawn at, and a
    last row counting the trials whose site the sources read do not give. ``attrs`` carries ``provenance``
    and ``target_sources`` (study, code, citation, quoted sentence). See
    :func:`neuromodmap.evidence.pool_by_target` for the columns.
    """
    from neuromodmap.evidence._bytarget import pool_by_target

    table = pool_by_target(_effects(name), method=method, level=level, data_dir=data_dir)
    table.attrs["provenance"] = provenance(name)
    table.attrs["target_sources"] = TARGET_SOURCES
    table.attrs["title"] = _get(name).title
    return table


def target_metaregression(name: str = "gaynes2011_fig13", *, seed=None, connectome=None, method: str = "REML",
                          data_dir=None, figure: bool = True):
    """Effect (log RR) regressed on each placed trial's site connectivity to ``seed`` (default Fox 2012 sgACC).

    Only the trials with a target code enter (4 of 12 in Figure 13); see ``docs/evidence.md`` for what the
    fit can and cannot say. Returns :class:`neuromodmap.evidence.ConnectivityMetaRegression`.
    """
    from neuromodmap.evidence._metareg import connectivity_metaregression

    return connectivity_metaregression(_effects(name), seed, connectome=connectome, method=method,
                                       data_dir=data_dir, figure=figure)
