"""Connectomic mapping of stimulation targets (private): profiles, groups, overlap, hubs.

``map_targets`` follows the design of seed 004 (Yamamoto, Elias et al. 2022): each target's
sphere is a seed; its connectivity profile is the voxel-weighted mean of the connectome rows of
the parcels it covers. Groups (indication, modality, depth) are mean profiles; superficial and
deep targets are compared by spatial correlation with a permutation null over target labels,
Dice of thresholded maps and a conjunction map; hubs are regions in the top X % of
connectivity for the most targets.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neuromodmap.connectome._atlas import DEFAULT_MAX_DISTANCE
from neuromodmap.connectome._errors import ConnectomeError, CoordinateError, TargetsFileError
from neuromodmap.connectome._parcel import (
    DEFAULT_CONNECTOME,
    NUCLEUS_MAX_DISTANCE,
    ParcelConnectome,
    load_connectome,
)
from neuromodmap.provenance import Provenance

__all__ = ["map_targets", "TargetMap", "DEFAULT_RADIUS"]

#: radius (mm) for targets without one
DEFAULT_RADIUS = 5.0


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
        Superficial-vs-deep comparison: ``r``, ``p_permutation``, ``n_permutations``, ``dice``,
        ``threshold_percent`` and the per-region ``conjunction`` Series.
    hubs : DataFrame
        Regions ranked by how many targets have them in their top X %.
    similarity : DataFrame
        Target × target Pearson correlation of profiles.
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
        ov = self.overlap
        if ov.get("r") is not None:
            parts.append(
                f"Superficial and deep target maps were compared by spatial Pearson correlation (r = {ov['r']:.2f}; "
                f"permutation p = {ov['p_permutation']:.3g} from {ov['n_permutations']} "
                f"{'exhaustive' if ov['exact'] else 'random'} relabellings of target depth), by the Dice "
                f"coefficient of their top {self.top_percent:g} % regions (Dice = {ov['dice']:.2f}) and by a "
                "conjunction map (minimum statistic where both pass).")
        parts.append(
            f"Hubs were regions in the top {self.top_percent:g} % of connectivity for the largest number of targets "
            "(after Yamamoto, Elias et al. 2022, Stereotact Funct Neurosurg 100:14-25).")
        if self.connectome.nuclei.size:
            parts.append("Brainstem and diencephalic nuclei have no volume in this atlas: their values are in the "
                         "tables but not in the images.")
        if len(self.skipped):
            parts.append(f"{len(self.skipped)} target(s) could not be mapped: "
                         + "; ".join(f"{r.id} ({r.reason})" for r in self.skipped.itertuples()) + ".")
        return " ".join(parts)

    def summary(self) -> str:
        top = self.hubs.head(5)
        hubs = ", ".join(f"{r.label} ({r.n_targets})" for r in top.itertuples())
        ov = self.overlap
        overlap = (f"superficial vs deep r = {ov['r']:.2f} (p = {ov['p_permutation']:.3g}), Dice = {ov['dice']:.2f}"
                   if ov.get("r") is not None else "superficial vs deep: not computed (" + ov.get("reason", "") + ")")
        return (f"{len(self.targets)} targets on {self.connectome.name} ({len(self.skipped)} skipped); "
                f"{overlap}; top hubs: {hubs}")

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


def _top_mask(values: np.ndarray, percent: float) -> np.ndarray:
    """Boolean mask of the top ``percent`` % finite values (at least one region)."""
    finite = np.isfinite(values)
    k = max(1, int(math.ceil(finite.sum() * percent / 100.0)))
    order = np.argsort(np.where(finite, -values, np.inf), kind="stable")
    mask = np.zeros(values.shape, dtype=bool)
    mask[order[:k]] = True
    return mask


def _overlap(profiles: np.ndarray, depth: np.ndarray, percent: float, n_permutations: int,
             rng: np.random.Generator) -> dict:
    sup, deep = depth == "superficial", depth == "deep"
    if sup.sum() == 0 or deep.sum() == 0:
        return {"r": None, "reason": f"{int(sup.sum())} superficial and {int(deep.sum())} deep targets mapped"}
    idx = np.flatnonzero(sup | deep)
    n_sup = int(sup.sum())
    x = profiles[idx]
    is_sup = sup[idx]

    def corr(masks: np.ndarray) -> np.ndarray:
        """Spatial r between the two group means for each labelling (rows of ``masks``), vectorised."""
        masks = np.atleast_2d(masks).astype(float)
        a = masks @ x / masks.sum(axis=1, keepdims=True)
        b = (1 - masks) @ x / (1 - masks).sum(axis=1, keepdims=True)
        a -= a.mean(axis=1, keepdims=True)
        b -= b.mean(axis=1, keepdims=True)
        return np.einsum("ij,ij->i", a, b) / np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))

    observed = float(corr(is_sup)[0])
    n_labelings = math.comb(len(idx), n_sup)
    if n_labelings - 1 <= n_permutations:
        # few targets: enumerate every relabelling (exact test)
        masks = np.zeros((n_labelings, len(idx)), dtype=bool)
        for row, combo in enumerate(itertools.combinations(range(len(idx)), n_sup)):
            masks[row, list(combo)] = True
        null = corr(masks)
        p = float(np.mean(null >= observed - 1e-12))
        exact, n_perm = True, len(null)
    else:
        masks = np.vstack([rng.permutation(is_sup) for _ in range(n_permutations)])
        null = corr(masks)
        p = float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations))
        exact, n_perm = False, n_permutations
    sup_map, deep_map = x[is_sup].mean(axis=0), x[~is_sup].mean(axis=0)
    top_sup, top_deep = _top_mask(sup_map, percent), _top_mask(deep_map, percent)
    dice = 2.0 * np.sum(top_sup & top_deep) / (top_sup.sum() + top_deep.sum())
    conjunction = np.where(top_sup & top_deep, np.minimum(sup_map, deep_map), 0.0)
    return {"r": observed, "p_permutation": p, "n_permutations": n_perm, "exact": exact, "dice": float(dice),
            "n_superficial": n_sup, "n_deep": int(len(idx) - n_sup), "superficial": sup_map, "deep": deep_map,
            "conjunction": conjunction, "n_conjunction": int(np.sum(top_sup & top_deep))}


def map_targets(targets: pd.DataFrame, connectome: ParcelConnectome | str = DEFAULT_CONNECTOME, *,
                radius: float | None = None, top_percent: float = 10.0, n_permutations: int = 5000,
                max_distance: float = DEFAULT_MAX_DISTANCE, random_state: int = 0,
                data_dir: str | os.PathLike | None = None) -> TargetMap:
    """Map targets onto a parcel connectome.

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
    n_permutations : int
        Relabellings of target depth for the overlap p-value (exhaustive when fewer suffice).
    max_distance : float
        Farthest a target may lie from any region before it is skipped (mm).

    Returns
    -------
    TargetMap
    """
    if not 0 < top_percent <= 100:
        raise ConnectomeError(f"top_percent must be in (0, 100], got {top_percent}")
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

    rng = np.random.default_rng(random_state)
    overlap = _overlap(values, mapped["depth"].astype(str).to_numpy(), top_percent, n_permutations, rng)
    for key in ("superficial", "deep", "conjunction"):
        if key in overlap:
            overlap[key] = pd.Series(overlap[key], index=labels, name=key)
    overlap["threshold_percent"] = top_percent

    tops = np.vstack([_top_mask(v, top_percent) for v in values])
    hubs = connectome.regions[["label", "hemisphere", "network", "structure"]].copy()
    hubs["n_targets"] = tops.sum(axis=0)
    hubs["fraction"] = hubs["n_targets"] / len(values)
    hubs["mean_connectivity"] = values.mean(axis=0)
    hubs["targets"] = [";".join(np.asarray(ids)[tops[:, j]]) for j in range(tops.shape[1])]
    hubs = (hubs[hubs.n_targets > 0].sort_values(["n_targets", "mean_connectivity"], ascending=[False, False])
            .reset_index(drop=True))

    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.corrcoef(values) if len(values) > 1 else np.ones((1, 1))
    similarity = pd.DataFrame(np.atleast_2d(sim), index=ids, columns=ids)

    provenance = Provenance(
        source=f"{connectome.name}: {connectome.provenance.source}", citation=connectome.provenance.citation,
        licence=connectome.provenance.licence,
        extra={"atlas": connectome.atlas.name, "radius": "catalogue" if radius is None else f"{radius:g} mm",
               "top_percent": f"{top_percent:g}", "n_permutations": str(n_permutations),
               "random_state": str(random_state)})
    return TargetMap(connectome=connectome, targets=mapped,
                     skipped=pd.DataFrame(skipped, columns=["id", "x", "y", "z", "reason"]),
                     profiles=profiles, groups=groups, overlap=overlap, hubs=hubs, similarity=similarity,
                     top_percent=top_percent, radius=radius, provenance=provenance)
