"""The connectome stage's parts of the report (private): target maps and TMS site-to-seed tables.

:func:`map_section` is written by :meth:`TargetMap.save` (``neuromodmap connectome map``) as
``section.json`` beside the CSVs and figures; :func:`site_to_seed_section` describes a
site-to-seed table. :func:`neuromodmap.report.build_report` assembles them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from neuromodmap._utils import write_csv
from neuromodmap.connectome._nulls import CALIBRATION_SENTENCE
from neuromodmap.report import Block, Figure, Headline, Section, Source, Table

__all__ = ["map_section", "site_to_seed_section", "section_id"]


def section_id(folder: Path, prefix: str = "connectome") -> str:
    """A section id from the output folder's name (``map/`` → ``connectome-map``)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-_") or "map"
    return f"{prefix}-{slug}"[:64]


def _p(value: float) -> str:
    """A p-value for reading: three significant digits, ``< 0.001`` below that (a permutation
    p at its floor of 1/(n + 1) would otherwise print as 0.000999)."""
    return "< 0.001" if value < 0.001 else f"{value:.3g}"


def _p_is(value: float) -> str:
    """``p = 0.0619`` or ``p < 0.001``."""
    text = _p(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def map_section(result, out: Path, figures: list[dict], *, section: str | None = None,
                title: str | None = None) -> Section:
    """The report section of a :class:`TargetMap` saved in ``out`` (``figures``: paths and captions)."""
    out = Path(out)
    indications = sorted({i.strip() for v in result.targets["indication"].fillna("").astype(str)
                          for i in v.split(";") if i.strip()} - {"both"})
    what = " and ".join(indications) if indications else "pain and depression"
    if getattr(result, "indication", None) in ("pain", "depression"):
        what = result.indication
    title = title or f"{what.capitalize()} targets on {result.connectome.name}"
    ov = result.overlap
    tables, blocks, figs = [], [], []
    n_mapped, n_skipped = len(result.targets), len(result.skipped)
    counts = pd.DataFrame([
        {"measure": "targets mapped", "value": n_mapped},
        {"measure": "targets not mapped", "value": n_skipped},
        {"measure": "superficial targets", "value": int((result.targets["depth"] == "superficial").sum())},
        {"measure": "deep targets", "value": int((result.targets["depth"] == "deep").sum())},
        {"measure": "regions in the connectome", "value": result.profiles.shape[1]},
    ])
    tables.append(Table.from_frame("counts", "Targets and regions", counts))
    headlines: list[Headline] = []
    table = getattr(result, "overlap_table", None)
    if ov.get("r") is not None and table is not None and len(table):
        names = {"random-sites": "random sites (same depth classes)", "variogram": "variogram surrogates",
                 "depth-relabel": "depth relabelling"}
        overlap = pd.DataFrame({
            "indication": table["indication"],
            "null model": [names.get(n, n) for n in table["null_model"]],
            "draws": table["n_null"],
            "r (superficial vs deep)": [f"{v:.3f}" for v in table["r"]],
            "p (r)": [_p(v) for v in table["p_null"]],
            f"Dice (top {result.top_percent:g} %)": [f"{v:.3f}" for v in table["dice"]],
            "p (Dice)": [_p(v) for v in table["p_null_dice"]],
            "null r: mean, 95th percentile": [f"{a:.3f}, {b:.3f}" for a, b in
                                              zip(table["null_r_mean"], table["null_r_q95"], strict=True)],
            "superficial / deep targets": [f"{a} / {b}" for a, b in
                                           zip(table["n_superficial"], table["n_deep"], strict=True)],
        })
        tables.append(Table.from_frame("overlap", "Superficial versus deep targets, against null models", overlap,
                                       caption="Do superficial and deep targets share a network (seed 004's "
                                               "question)? Spatial correlation of the two mean connectivity maps "
                                               "and Dice of their strongest regions, each with its p-value under "
                                               "every null model. " + CALIBRATION_SENTENCE))
        p_null = ov.get("p_null") or {}
        first = next(iter(p_null), None)
        value = f"r = {ov['r']:.3f}" + (f", {_p_is(p_null[first])}" if first else "")
        headlines.append(Headline(
            label=f"{ov.get('indication', what).capitalize()}: superficial vs deep overlap",
            value=value,
            detail=(f"p under {names.get(first, first)}; " if first else "")
            + "; ".join(f"{names.get(n, n).split(' (')[0]} {_p_is(p)}" for n, p in list(p_null.items())[1:])
            + f"; Dice {ov['dice']:.2f}; {ov['n_superficial']} superficial, {ov['n_deep']} deep targets "
              f"on {result.connectome.name}",
            table="overlap"))
    elif ov.get("r") is not None:
        overlap = pd.DataFrame([
            {"statistic": "spatial correlation r (superficial vs deep mean maps)", "value": f"{ov['r']:.3f}"},
            {"statistic": f"Dice of the top {result.top_percent:g} % regions", "value": f"{ov['dice']:.3f}"},
        ])
        tables.append(Table.from_frame("overlap", "Superficial versus deep targets", overlap))
        headlines.append(Headline(label=f"{what.capitalize()}: superficial vs deep overlap",
                                  value=f"r = {ov['r']:.3f}", table="overlap"))
    else:
        reasons = getattr(result, "overlap_reasons", {}) or {}
        blocks.append(Block(kind="note", text="Superficial versus deep overlap not computed: "
                                              + ("; ".join(reasons.values()) or str(ov.get("reason", "")))))
    if len(result.hubs):
        top = result.hubs.iloc[0]
        headlines.append(Headline(label=f"{what.capitalize()}: strongest hub", value=str(top["label"]),
                                  detail=f"in the top {result.top_percent:g} % of {int(top['n_targets'])} of "
                                         f"{n_mapped} targets ({top['network']})", table="hubs"))
    for i, f in enumerate(figures):
        src = Path(f["path"])
        figs.append(Figure(id=f"fig{i + 1}-{re.sub(r'[^a-z0-9_-]+', '-', src.stem.lower())}"[:64],
                           src=src.resolve().relative_to(out.resolve()).as_posix(),
                           caption=f["caption"]))
    hub_null = "hub" in result.hubs
    tables.append(Table(id="hubs", title="Hubs: regions in the top connectivity of the most targets", csv="hubs.csv",
                        searchable=True, page_size=15, facets=["network", "hemisphere"] + (["hub"] if hub_null else []),
                        labels={"n_targets": "targets", "mean_connectivity": f"mean ({result.connectome.units})",
                                "null_mean": "random sites: mean", "null_q95": "random sites: 95th pct",
                                "p_null": "p", "q_fdr": "q (FDR)"},
                        caption=f"A region counts for a target when it is in that target's top "
                                f"{result.top_percent:g} % of connectivity"
                                + ("; 'hub' is True where more targets reach it than random sites do "
                                   "(Benjamini-Hochberg q < 0.05)." if hub_null else ".")))
    target_cols = ["id", "name", "indication", "modality", "depth", "x", "y", "z", "radius_used", "coordinate_source",
                   "method", "distance_mm", "regions", "pooled_effect", "pooled_ci_lb", "pooled_ci_ub", "pooled_k",
                   "citation"]
    targets = result.targets[[c for c in target_cols if c in result.targets]]
    if "pooled_effect" in targets and targets["pooled_effect"].isna().all():
        targets = targets.drop(columns=[c for c in targets if c.startswith("pooled_")])
    write_csv(targets, out / "targets_report.csv")
    tables.append(Table(id="targets", title="Targets (MNI coordinates) and the regions each sphere covers",
                        csv="targets_report.csv", labels={"radius_used": "radius (mm)",
                                                          "coordinate_source": "coordinate source",
                                                          "pooled_effect": "pooled effect (evidence)",
                                                          "pooled_k": "studies"}))
    if n_skipped:
        tables.append(Table.from_frame("skipped", "Targets not mapped", result.skipped))
    blocks = [Block(kind="table", ref="counts"), *blocks]
    if any(t.id == "overlap" for t in tables):
        blocks.append(Block(kind="table", ref="overlap"))
    blocks += [Block(kind="figure", ref=f.id) for f in figs]
    prov = result.provenance
    return Section(
        stage="connectome", id=section or section_id(out), title=title, summary=result.summary(),
        order={"pain": 0, "depression": 1}.get(what, 5),
        headlines=headlines, blocks=blocks, figures=figs, tables=tables, methods=result.methods(),
        sources=[Source.from_provenance(f"Connectome {result.connectome.name}", prov),
                 Source(name="Target catalogue", source="neuromodmap built-in catalogue (literature coordinates "
                                                        "and atlas centroids; each row cites its source)")
                 if (result.targets.get("coordinate_source", pd.Series(dtype=str)) != "user").any() else
                 Source(name="Targets", source="user coordinates")],
    )


def site_to_seed_section(frame: pd.DataFrame, out: Path, *, seed: tuple[float, float, float],
                         seed_name: str = "sgACC (Fox et al. 2012)", radius: float = 10.0,
                         section: str = "connectome-site-to-seed", citation: str = "") -> Section:
    """The report section of a site-to-seed table (:func:`site_to_seed` output), written to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cols = [c for c in ("id", "name", "x", "y", "z", "connectivity", "regions", "note") if c in frame]
    table = frame[cols].sort_values("connectivity").reset_index(drop=True)
    table["connectivity"] = table["connectivity"].round(4)
    write_csv(table, out / "site_to_seed.csv")
    units = frame.attrs.get("units", "")
    connectome = str(frame["connectome"].iloc[0]) if "connectome" in frame and len(frame) else ""
    best = table.dropna(subset=["connectivity"]).iloc[0] if table["connectivity"].notna().any() else None
    headlines = []
    if best is not None:
        headlines.append(Headline(label=f"Most {seed_name.split(' ')[0]}-anticorrelated DLPFC site",
                                  value=str(best["id"]), detail=f"connectivity {best['connectivity']:.3f} {units}",
                                  table="sites"))
    x, y, z = seed
    return Section(
        stage="connectome", id=section, order=20, title=f"TMS sites and their connectivity to the {seed_name}",
        summary=f"Connectivity of {len(table)} DLPFC stimulation sites to the {seed_name} seed at MNI {x:g}, {y:g}, "
                f"{z:g} ({radius:g} mm spheres) on {connectome}; more negative means more anticorrelated, the "
                "property Fox et al. (2012) linked to better antidepressant response.",
        headlines=headlines,
        tables=[Table(id="sites", title=f"Site-to-{seed_name.split(' ')[0]} connectivity", csv="site_to_seed.csv",
                      labels={"connectivity": f"connectivity ({units})" if units else "connectivity"},
                      caption="Sorted from most anticorrelated. Regions: the parcels each site sphere covers.")],
        methods=(f"Each site and the seed were modelled as {radius:g} mm spheres; the connectivity of a site to the "
                 f"seed is the mean connectivity between the parcels the two spheres cover, weighted by voxel count "
                 f"(w_site · C · w_seed) on {connectome} (after Fox et al. 2012)."),
        sources=[Source(name="Seed and method", citation=citation or
                        "Fox MD, Buckner RL, White MP, Greicius MD, Pascual-Leone A. Efficacy of transcranial "
                        "magnetic stimulation targets for depression is related to intrinsic functional "
                        "connectivity with the subgenual cingulate. Biol Psychiatry. 2012;72(7):595-603.")],
    )
