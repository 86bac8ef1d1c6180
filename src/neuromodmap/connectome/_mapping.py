"""Connectomic mapping of stimulation targets (private): profiles, groups, overlap, hubs.

``map_targets`` follows the design of seed 004 (Yamamoto, Elias et al. 2022): each target's
sphere is a seed; its connectivity profile is the voxel-weighted mean of the connectome rows of
the parcels it covers. Groups (indication, modality, depth) are mean profiles; superficial and
deep targets of one indication are compared by spatial correlation, Dice of thresholded maps and
a conjunction map; hubs are regions in the top X % of connectivity for the most targets. Each
statistic is set against null models (:mod:`._nulls`): random grey-matter sites of the same
depth classes, variogram-matched surrogates and depth relabelling.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neuromodmap.connectome import _nulls
from neuromodmap.connectome._atlas import DEFAULT_MAX_DISTANCE
from neuromodmap.connectome._errors import ConnectomeError, CoordinateError, TargetsFileError
from neuromodmap.connectome._nulls import (
    CALIBRATION_SENTENCE,
    DEFAULT_N_NULL,
    DEFAULT_NULLS,
    NULL_MODELS,
)
from neuromodmap.connectome._parcel import (
    DEFAULT_CONNECTOME,
    NUCLEUS_MAX_DISTANCE,
    ParcelConnectome,
    load_connectome,
)
from neuromodmap.provenance import Provenance

__all__ = ["map_targets", "TargetMap", "DEFAULT_RADIUS", "NULL_MODELS", "DEFAULT_NULLS", "DEFAULT_N_NULL",
           "INDICATION_CHOICES"]


def _p_text(p: float) -> str:
    """``p = 0.0619``, or ``p < 0.001`` for a permutation p at its floor (1/(n + 1))."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


#: radius (mm) for targets without one
DEFAULT_RADIUS = 5.0
#: a region is a hub when its Benjamini-Hochberg q against the random-sites null is below this
HUB_ALPHA = 0.05
#: columns of ``overlap.csv`` (one row per indication and null model)
OVERLAP_COLUMNS = ["indication", "null_model", "n_null", "r", "p_null", "dice", "p_null_dice", "null_r_mean",
                   "null_r_q95", "null_dice_mean", "null_dice_q95", "n_superficial", "n_deep", "n_regions",
                   "threshold_percent", "n_conjunction", "exact"]
_NULL_PHRASE = {"random-sites": "random sites", "variogram": "variogram surrogates",
                "depth-relabel": "depth relabelling"}


@dataclass
class TargetMap:
    """Result of :func:`map_targets`: tables, images, figures and a methods paragraph.

    Attributes
    ----------
    targets : DataFrame
        The mapped targets with how each seed fell (``method``, ``n_voxels``, ``distance_mm``,
        ``regions``).
    skipped : DataFrame
        Targets that could not be mapped, with the reason.
    profiles : DataFrame
        Targets × regions connectivity, in the connectome's units.
    groups : DataFrame
        Mean profile per group; index (``group_by``, ``group``) with ``n_targets``.
    overlap : dict
        The headline superficial-vs-deep comparison (pain when present): ``indication``, ``r``,
        ``dice``, ``p_null`` (null name → p), ``threshold_percent``, the per-region
        ``superficial``, ``deep`` and ``conjunction`` Series, and, when the depth-relabel null
        ran, ``p_permutation``, ``n_permutations`` and ``exact``.
    overlaps : dict
        Indication → such a dict, one per indication with superficial and deep targets.
    overlap_table : DataFrame
        ``overlap.csv``: one row per indication and null model (``null_model``, ``n_null``, ``r``,
        ``p_null``, ``dice``, ``p_null_dice``, null means and 95th percentiles).
    hubs : DataFrame
        Regions ranked by how many targets have them in their top X %; with the random-sites
        null, ``null_mean``, ``null_q95``, ``p_null``, ``q_fdr`` and ``hub`` per region.
    similarity : DataFrame
        Target × target Pearson correlation of profiles.
    similarity_null : DataFrame
        Mean similarity within superficial, within deep and between them, per indication,
        against random sites.
    """

    connectome: ParcelConnectome
    targets: pd.DataFrame
    skipped: pd.DataFrame
    profiles: pd.DataFrame
    groups: pd.DataFrame
    overlap: dict
    hubs: pd.DataFrame
    similarity: pd.DataFrame
    top_percent: float
    radius: float | None
    provenance: Provenance
    overlaps: dict = field(default_factory=dict)
    overlap_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    similarity_null: pd.DataFrame = field(default_factory=pd.DataFrame)
    nulls: tuple[str, ...] = ()
    null_notes: dict = field(default_factory=dict)
    n_null: int = 0
    random_state: int = 0
    indication: str | None = None
    overlap_reasons: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    # -- images -------------------------------------------------------------------------------
    def profile_image(self) -> nib.Nifti1Image:
        """4-D image: one volume per target (order of :attr:`profiles`), painted into the atlas."""
        return self.connectome.atlas.paint(self.profiles.to_numpy())

    def group_image(self, group_by: str, group: str) -> nib.Nifti1Image:
        """Mean profile of one group painted into the atlas."""
        row = self.groups.loc[(group_by, group)]
        return self.connectome.atlas.paint(row[self.profiles.columns].to_numpy(float))

    def conjunction_image(self) -> nib.Nifti1Image | None:
        """Superficial ∩ deep conjunction (minimum of the two maps where both pass)."""
        conj = self.overlap.get("conjunction")
        return None if conj is None else self.connectome.atlas.paint(conj.to_numpy(float))

    # -- text ---------------------------------------------------------------------------------
    def methods(self) -> str:
        """A methods paragraph with the connectome, atlas and statistics, citing sources."""
        c = self.connectome
        radius = (f"spheres of {self.radius:g} mm radius" if self.radius is not None
                  else "spheres of each target's catalogue radius")
        n_lit = int((self.targets.coordinate_source == "literature").sum())
        n_atlas = int((self.targets.coordinate_source == "atlas_centroid").sum())
        parts = [
            f"{len(self.targets)} stimulation targets ({n_lit} literature coordinates, {n_atlas} atlas-region "
            f"centroids, {len(self.targets) - n_lit - n_atlas} user coordinates; MNI152) were modelled as {radius}.",
            c.methods(),
            "Each target's connectivity profile was the mean of the connectome rows of the regions its sphere "
            "covers, weighted by voxel count; spheres that covered no region were assigned to the nearest region "
            f"within {DEFAULT_MAX_DISTANCE:g} mm"
            + (f" (or the nearest nucleus centroid within {NUCLEUS_MAX_DISTANCE:g} mm)" if c.has_nuclei else "")
            + " (distance reported), and farther targets were excluded.",
        ]
        if self.overlaps:
            which = " and ".join(f"{k} targets" for k in self.overlaps)
            parts.append(
                f"Superficial and deep targets were compared within each indication ({which}; never across a "
                "mixed set) by the spatial Pearson correlation of their mean maps, by the Dice coefficient of "
                f"their top {self.top_percent:g} % regions and by a conjunction map (minimum statistic where both "
                "pass).")
            for ind, ov in self.overlaps.items():
                ps = "; ".join(f"{_NULL_PHRASE[n]} {_p_text(p)}" for n, p in ov["p_null"].items())
                parts.append(f"{ind.capitalize()} ({ov['n_superficial']} superficial, {ov['n_deep']} deep): "
                             f"r = {ov['r']:.2f}, Dice = {ov['dice']:.2f}" + (f" ({ps})." if ps else "."))
        elif self.overlap_reasons:
            parts.append("Superficial and deep targets were not compared: " + "; ".join(self.overlap_reasons.values())
                         + ".")
        parts.append(self.null_methods())
        parts.append(
            f"Hubs were regions in the top {self.top_percent:g} % of connectivity for the largest number of targets "
            "(after Yamamoto, Elias et al. 2022, Stereotact Funct Neurosurg 100:14-25)"
            + (f"; a region counted as a hub when more targets reached it than random sites did (one-sided p per "
               f"region against the random-sites draws, Benjamini-Hochberg q < {HUB_ALPHA:g})."
               if "random-sites" in self.nulls else ", without a null model."))
        if self.connectome.nuclei.size:
            parts.append("Brainstem and diencephalic nuclei have no volume in this atlas: their values are in the "
                         "tables but not in the images.")
        if len(self.skipped):
            parts.append(f"{len(self.skipped)} target(s) could not be mapped: "
                         + "; ".join(f"{r.id} ({r.reason})" for r in self.skipped.itertuples()) + ".")
        return " ".join(parts)

    def null_methods(self) -> str:
        """The sentences that name each null model, its draws and parameters."""
        if not self.nulls:
            return "No null model was drawn (p-values not computed)."
        text = [f"Null models (random seed {self.random_state}; one-sided p = (1 + draws at least as large as "
                "observed) / (1 + draws)):"]
        for i, name in enumerate(self.nulls, start=1):
            note = self.null_notes.get(name)
            if note:
                text.append(f"({i}) {_NULL_PHRASE[name]}: {note};")
        text[-1] = text[-1].rstrip(";") + "."
        if "random-sites" in self.nulls:
            text.append("Random sites were mapped exactly as the targets, and a site whose seed fell mostly outside "
                        "its class was drawn again; the similarity of target profiles (mean within and between "
                        "depth groups) was set against the same draws.")
        if len(self.nulls) > 1 or "variogram" in self.nulls:
            text.append(CALIBRATION_SENTENCE)
        return " ".join(text)

    def headline(self) -> str:
        """The seed-004 question in one sentence: pain superficial vs deep, with every null's p."""
        if not self.overlaps:
            return ("Superficial vs deep: not computed (" + "; ".join(self.overlap_reasons.values()) + ")"
                    if self.overlap_reasons else "Superficial vs deep: not computed")
        out = []
        for ind, ov in self.overlaps.items():
            ps = ", ".join(f"{_NULL_PHRASE[n]} {_p_text(p)}" for n, p in ov["p_null"].items())
            out.append(f"{ind.capitalize()} targets ({ov['n_superficial']} superficial, {ov['n_deep']} deep), "
                       f"superficial vs deep on {self.connectome.name}: r = {ov['r']:.2f}, Dice = {ov['dice']:.2f}"
                       + (f" ({ps})" if ps else ""))
        return "; ".join(out)

    def summary(self) -> str:
        top = self.hubs.head(5)
        hubs = ", ".join(f"{r.label} ({r.n_targets})" for r in top.itertuples())
        text = (f"{self.headline()}. {len(self.targets)} targets mapped ({len(self.skipped)} skipped); "
                f"top hubs: {hubs}")
        if "hub" in self.hubs:
            passed = self.hubs[self.hubs.hub]
            text += (f"; {len(passed)} region(s) reached by more targets than random sites (q < {HUB_ALPHA:g})"
                     + (": " + ", ".join(f"{r.label} ({r.n_targets})" for r in passed.head(5).itertuples())
                        if len(passed) else ""))
        return text

    def html_section(self, figures: list[dict] | None = None) -> str:
        """An HTML section (Jinja2, autoescaped): summary, methods, overlap, hubs, targets.

        ``figures`` are ``{"src": relative path, "caption": text}`` dicts to embed, as written
        by :meth:`save`.
        """
        from neuromodmap.connectome._report import render_section

        return render_section(self, figures=figures)

    def save(self, out_dir: str | os.PathLike, *, figures: bool = True) -> list[Path]:
        """Write CSVs, NIfTI images, figures and ``connectome.html`` to ``out_dir``."""
        from neuromodmap.connectome._report import write_outputs

        self.files = write_outputs(self, Path(out_dir), figures=figures)
        return self.files


def _group_members(targets: pd.DataFrame, column: str) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for pos, value in enumerate(targets[column].fillna("").astype(str)):
        values = [v.strip() for v in value.split(";") if v.strip()] or ["unspecified"]
        if column == "indication" and values == ["both"]:
            values = ["pain", "depression"]
        for v in values:
            groups.setdefault(v, []).append(pos)
    return groups


INDICATION_CHOICES = ("pain", "depression", "all")


def _select_indication(targets: pd.DataFrame, indication: str | None) -> pd.DataFrame:
    """Targets of one indication ('both' counts for pain and for depression); 'all'/None: every target.

    A table without any indication (a user CSV without the column) is kept whole.
    """
    if indication is None or indication == "all":
        return targets
    if indication not in INDICATION_CHOICES:
        raise ConnectomeError(f"unknown indication {indication!r}; choose from {', '.join(INDICATION_CHOICES)}")
    labels = targets["indication"].fillna("").astype(str).str.strip()
    if (labels == "").all():
        return targets
    chosen = targets[labels.isin([indication, "both"])]
    if chosen.empty:
        raise ConnectomeError(f"no targets with indication {indication!r} (pain, depression or both) among "
                              f"{len(targets)} targets")
    return chosen


def _analyses(mapped: pd.DataFrame, indication: str | None = None) -> tuple[list[_nulls.Analysis], dict[str, str]]:
    """Superficial-vs-deep comparisons, one per indication present (never pain and depression mixed);
    only the chosen indication's when one was chosen."""
    depth = mapped["depth"].fillna("").astype(str).to_numpy()
    members = _group_members(mapped, "indication")
    sets = {k: v for k, v in members.items() if k not in ("unspecified",)}
    if indication in ("pain", "depression") and indication in sets:
        sets = {indication: sets[indication]}
    if not sets:
        sets = {"all": list(range(len(mapped)))}
    order = sorted(sets, key=lambda k: (k != "pain", k != "depression", k))
    analyses, reasons = [], {}
    for name in order:
        pos = np.asarray(sets[name])
        pos = pos[np.isin(depth[pos], ["superficial", "deep"])]
        is_sup = depth[pos] == "superficial"
        if is_sup.sum() == 0 or (~is_sup).sum() == 0:
            reasons[name] = (f"{int(is_sup.sum())} superficial and {int((~is_sup).sum())} deep targets mapped"
                             + ("" if name == "all" else f" ({name})"))
            continue
        analyses.append(_nulls.Analysis(name, pos, is_sup))
    return analyses, reasons


def map_targets(targets: pd.DataFrame, connectome: ParcelConnectome | str = DEFAULT_CONNECTOME, *,
                radius: float | None = None, top_percent: float = 10.0,
                null: str | Sequence[str] | None = DEFAULT_NULLS, n_null: int = DEFAULT_N_NULL,
                n_permutations: int = 5000, indication: str | None = None,
                max_distance: float = DEFAULT_MAX_DISTANCE, random_state: int = 0,
                data_dir: str | os.PathLike | None = None, progress: bool = False) -> TargetMap:
    """Map targets onto a parcel connectome and test their overlap, hubs and similarity against nulls.

    Parameters
    ----------
    targets : DataFrame
        From :func:`target_catalogue` or :func:`read_targets` (``id, x, y, z`` at least).
    connectome : ParcelConnectome or str
        A loaded connectome or its name (default ``"enigma-schaefer400"``).
    radius : float, optional
        Sphere radius in mm for every target; default: each row's ``radius`` (else 5 mm).
    top_percent : float
        Threshold for hubs, Dice and the conjunction (top X % of regions).
    null : str or sequence of str
        Null models: ``"random-sites"``, ``"variogram"``, ``"depth-relabel"`` (comma-separated
        or a list; ``"all"``; ``"none"`` or None for none). Default: all three.
    n_null : int
        Draws of the random-sites and variogram nulls (default 1000).
    n_permutations : int
        Relabellings for the depth-relabel null (exhaustive when fewer exist).
    indication : {"pain", "depression", "all"}, optional
        Keep only targets of this indication ("both" counts for each). Superficial and deep
        targets are compared within each indication, never across a mixed set.
    max_distance : float
        Farthest a target may lie from any region before it is skipped (mm).
    random_state : int
        Seed of every null (each null has its own stream).
    progress : bool
        Show a progress bar while the nulls are drawn.

    Returns
    -------
    TargetMap
    """
    if not 0 < top_percent <= 100:
        raise ConnectomeError(f"top_percent must be in (0, 100], got {top_percent}")
    nulls = _nulls.parse_nulls(null)
    if nulls and not 1 <= int(n_null) <= 1_000_000:
        raise ConnectomeError(f"n_null must be between 1 and 1,000,000, got {n_null}")
    if isinstance(connectome, str):
        connectome = load_connectome(connectome, data_dir)
    if targets is None or len(targets) == 0:
        raise TargetsFileError("no targets to map")
    for col in ("id", "x", "y", "z"):
        if col not in targets:
            raise TargetsFileError(f"targets table lacks column {col!r}")
    targets = targets.reset_index(drop=True).copy()
    for col in ("indication", "modality", "depth", "coordinate_source", "name"):
        if col not in targets:
            targets[col] = ""
    targets = _select_indication(targets, indication).reset_index(drop=True)
    rows, seeds, skipped = [], [], []
    for pos, row in targets.iterrows():
        r = radius if radius is not None else row.get("radius", np.nan)
        r = DEFAULT_RADIUS if r is None or r == "" or not np.isfinite(float(r)) else float(r)
        try:
            seed = connectome.seed((row.x, row.y, row.z), r, max_distance)
        except CoordinateError as exc:
            skipped.append({"id": row.id, "x": row.x, "y": row.y, "z": row.z, "reason": str(exc)})
            continue
        rows.append(pos)
        seeds.append((seed, r))
    if not seeds:
        raise ConnectomeError(
            f"none of the {len(targets)} targets maps onto {connectome.name}: " + skipped[0]["reason"])
    mapped = targets.loc[rows].reset_index(drop=True)
    labels = np.asarray(connectome.labels)
    seed_list = [s for s, _ in seeds]
    mapped["radius_used"] = [r for _, r in seeds]
    mapped["method"] = [s.method for s, _ in seeds]
    mapped["n_voxels"] = [s.n_voxels for s, _ in seeds]
    mapped["distance_mm"] = [round(s.distance_mm, 2) for s, _ in seeds]
    mapped["regions"] = [connectome.seed_regions(s) for s in seed_list]
    mapped["depth_class"] = [_nulls.depth_class(connectome, s) for s in seed_list]
    values = connectome.seed_profiles(seed_list)
    ids = mapped["id"].astype(str).tolist()
    profiles = pd.DataFrame(values, index=pd.Index(ids, name="id"), columns=labels)

    group_rows, index = [], []
    for column in ("indication", "modality", "depth"):
        for group, members in sorted(_group_members(mapped, column).items()):
            group_rows.append(np.r_[len(members), values[members].mean(axis=0)])
            index.append((column, group))
    groups = pd.DataFrame(group_rows, index=pd.MultiIndex.from_tuples(index, names=["group_by", "group"]),
                          columns=["n_targets", *labels])
    groups["n_targets"] = groups["n_targets"].astype(int)

    analyses, reasons = _analyses(mapped, indication)
    draws = _nulls.run_nulls(connectome, values, mapped, seed_list, analyses, nulls, percent=top_percent,
                             n_null=int(n_null), n_permutations=n_permutations, random_state=random_state,
                             max_distance=max_distance, progress=progress)

    overlaps: dict[str, dict] = {}
    table_rows = []
    for analysis in analyses:
        ov = _nulls.overlap_observed(values, analysis, top_percent)
        for key in ("superficial", "deep", "conjunction"):
            ov[key] = pd.Series(ov[key], index=labels, name=key)
        ov["threshold_percent"] = top_percent
        ov["p_null"] = {}
        for name in nulls or ("none",):
            k = (analysis.indication, name)
            row = {"indication": analysis.indication, "null_model": name, "n_null": 0, "r": ov["r"],
                   "p_null": np.nan, "dice": ov["dice"], "p_null_dice": np.nan, "null_r_mean": np.nan,
                   "null_r_q95": np.nan, "null_dice_mean": np.nan, "null_dice_q95": np.nan,
                   "n_superficial": ov["n_superficial"], "n_deep": ov["n_deep"], "n_regions": len(labels),
                   "threshold_percent": top_percent, "n_conjunction": ov["n_conjunction"], "exact": False}
            if k in draws.r:
                r_obs, d_obs, n_reg = draws.observed_subset.get(k, (ov["r"], ov["dice"], len(labels)))
                exact = draws.exact.get(k, False)
                r_null, d_null = draws.r[k], draws.dice[k]
                row.update({"n_null": len(r_null), "r": r_obs, "dice": d_obs, "n_regions": n_reg, "exact": exact,
                            "p_null": _nulls.p_value(r_null, r_obs, exact),
                            "p_null_dice": _nulls.p_value(d_null, d_obs, exact),
                            "null_r_mean": float(np.nanmean(r_null)),
                            "null_r_q95": float(np.nanquantile(r_null, 0.95)),
                            "null_dice_mean": float(np.nanmean(d_null)),
                            "null_dice_q95": float(np.nanquantile(d_null, 0.95))})
                ov["p_null"][name] = row["p_null"]
                if name == "depth-relabel":  # the names this table had before the other nulls
                    ov.update(p_permutation=row["p_null"], n_permutations=len(r_null), exact=exact)
            table_rows.append(row)
        overlaps[analysis.indication] = ov
    overlap_table = pd.DataFrame(table_rows, columns=OVERLAP_COLUMNS)
    if overlaps:
        overlap = overlaps[next(iter(overlaps))]
    else:
        overlap = {"r": None, "reason": "; ".join(reasons.values()) or "no superficial and deep targets"}

    tops = _nulls.top_masks(values, top_percent)
    hubs = connectome.regions[["label", "hemisphere", "network", "structure"]].copy()
    hubs["n_targets"] = tops.sum(axis=0)
    hubs["fraction"] = hubs["n_targets"] / len(values)
    hubs["mean_connectivity"] = values.mean(axis=0)
    if draws.hub_counts is not None:
        null_counts = draws.hub_counts
        observed = hubs["n_targets"].to_numpy()
        hubs["null_mean"] = null_counts.mean(axis=0)
        hubs["null_q95"] = np.quantile(null_counts, 0.95, axis=0)
        hubs["p_null"] = (1 + (null_counts >= observed).sum(axis=0)) / (1 + len(null_counts))
        hubs["q_fdr"] = _nulls.bh_fdr(hubs["p_null"].to_numpy())
        hubs["hub"] = hubs["q_fdr"] < HUB_ALPHA
    hubs["targets"] = [";".join(np.asarray(ids)[tops[:, j]]) for j in range(tops.shape[1])]
    hubs = (hubs[hubs.n_targets > 0].sort_values(["n_targets", "mean_connectivity"], ascending=[False, False])
            .reset_index(drop=True))

    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.corrcoef(values) if len(values) > 1 else np.ones((1, 1))
    similarity = pd.DataFrame(np.atleast_2d(sim), index=ids, columns=ids)
    sim_rows = []
    for analysis in analyses:
        observed = _nulls.similarity_stats(values, analysis)
        null_sim = draws.similarity.get(analysis.indication)
        for c, comparison in enumerate(_nulls.SIMILARITY_COMPARISONS):
            row = {"indication": analysis.indication, "comparison": comparison, "mean_r": observed[c],
                   "null_model": "random-sites" if null_sim is not None else "none", "n_null": 0,
                   "null_mean": np.nan, "null_q95": np.nan, "p_null": np.nan}
            finite = None if null_sim is None else null_sim[:, c][np.isfinite(null_sim[:, c])]
            if finite is not None and finite.size and np.isfinite(observed[c]):
                # a group of one target has no within-group pair: left empty
                row.update(n_null=len(finite), null_mean=float(finite.mean()),
                           null_q95=float(np.quantile(finite, 0.95)), p_null=_nulls.p_upper(finite, observed[c]))
            sim_rows.append(row)
    similarity_null = pd.DataFrame(sim_rows, columns=["indication", "comparison", "mean_r", "null_model",
                                                      "n_null", "null_mean", "null_q95", "p_null"])

    provenance = Provenance(
        source=f"{connectome.name}: {connectome.provenance.source}", citation=connectome.provenance.citation,
        licence=connectome.provenance.licence,
        extra={"atlas": connectome.atlas.name, "radius": "catalogue" if radius is None else f"{radius:g} mm",
               "top_percent": f"{top_percent:g}", "nulls": ",".join(nulls) or "none", "n_null": str(n_null),
               "n_permutations": str(n_permutations), "random_state": str(random_state),
               "indication": indication or "all"})
    return TargetMap(connectome=connectome, targets=mapped,
                     skipped=pd.DataFrame(skipped, columns=["id", "x", "y", "z", "reason"]),
                     profiles=profiles, groups=groups, overlap=overlap, hubs=hubs, similarity=similarity,
                     top_percent=top_percent, radius=radius, provenance=provenance, overlaps=overlaps,
                     overlap_table=overlap_table, similarity_null=similarity_null, nulls=nulls,
                     null_notes=draws.notes, n_null=int(n_null), random_state=random_state,
                     indication=indication, overlap_reasons=reasons)
