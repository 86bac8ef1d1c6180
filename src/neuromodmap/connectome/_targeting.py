"""Fox-style TMS targeting on a parcel connectome (private).

The connectivity of a stimulation site to a seed is the mean connectivity between the site
sphere and the seed sphere: ``w_site · C · w_seed`` where ``w`` are voxel-count weights over the
parcels each sphere covers (Fox et al. 2012; the default seed is their right sgACC,
MNI 6, 16, -10, 10 mm, as used by Cash et al. 2019).
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from neuromodmap.connectome._atlas import DEFAULT_MAX_DISTANCE, Seed
from neuromodmap.connectome._catalogue import FOX_SGACC_SEED, target_catalogue
from neuromodmap.connectome._errors import ConnectomeError, CoordinateError, TargetsFileError
from neuromodmap.connectome._parcel import DEFAULT_CONNECTOME, ParcelConnectome, load_connectome
from neuromodmap.vocabulary import TARGETS

__all__ = ["site_to_seed", "search_anticorrelated", "SGACC_SEED"]

SGACC_SEED = (FOX_SGACC_SEED["x"], FOX_SGACC_SEED["y"], FOX_SGACC_SEED["z"])

#: radius (mm) around a coordinate or catalogue target within which parcels are candidates
SEARCH_RADIUS = 20.0


def _connectome(connectome, data_dir) -> ParcelConnectome:
    return load_connectome(connectome, data_dir) if isinstance(connectome, str) else connectome


def _seed(c: ParcelConnectome, seed, seed_radius: float, max_distance: float) -> Seed:
    try:
        return c.seed(seed, seed_radius, max_distance)
    except CoordinateError as exc:
        raise CoordinateError(f"seed: {exc}") from None


def site_to_seed(sites: pd.DataFrame, seed=SGACC_SEED, *, radius: float = 10.0, seed_radius: float | None = None,
                 connectome: ParcelConnectome | str = DEFAULT_CONNECTOME, max_distance: float = DEFAULT_MAX_DISTANCE,
                 data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Connectivity between each site sphere and a seed sphere (Fox-style TMS targeting).

    Parameters
    ----------
    sites : DataFrame
        ``id, x, y, z`` (MNI mm), e.g. from :func:`read_targets`; other columns are kept.
    seed : (x, y, z)
        Seed centre; default the sgACC seed of Fox et al. (2012), 6, 16, -10.
    radius : float
        Site sphere radius (mm); also the seed radius unless ``seed_radius`` is given.
    connectome : ParcelConnectome or str
        Default ``"enigma-schaefer400"`` (keeps anticorrelations).

    Returns
    -------
    DataFrame
        The input rows plus ``connectivity`` (in ``connectivity_units``; more negative = more
        anticorrelated with the seed), ``n_voxels``, ``method``, ``distance_mm``, ``regions``,
        ``note`` and ``connectome``.
        Sites that cannot be mapped keep ``connectivity`` NaN and say why in ``note``.
    """
    c = _connectome(connectome, data_dir)
    if sites is None or len(sites) == 0:
        raise TargetsFileError("no sites given")
    for col in ("id", "x", "y", "z"):
        if col not in sites:
            raise TargetsFileError(f"sites table lacks column {col!r}")
    seed_radius = radius if seed_radius is None else seed_radius
    seed_s = _seed(c, seed, seed_radius, max_distance)
    out = sites.reset_index(drop=True).copy()
    conn, n_vox, method, dist, regions, notes = [], [], [], [], [], []
    for row in out.itertuples():
        try:
            s = c.seed((row.x, row.y, row.z), radius, max_distance)
        except CoordinateError as exc:
            conn.append(np.nan)
            n_vox.append(0)
            method.append("not_mapped")
            dist.append(np.nan)
            regions.append("")
            notes.append(str(exc))
            continue
        conn.append(c.seed_connectivity(s, seed_s))
        n_vox.append(s.n_voxels)
        method.append(s.method)
        dist.append(round(s.distance_mm, 2))
        regions.append(c.seed_regions(s))
        notes.append(s.note)
    out["connectivity"] = conn
    out["n_voxels"] = n_vox
    out["method"] = method
    out["distance_mm"] = dist
    out["regions"] = regions
    out["note"] = notes
    out["connectivity_units"] = c.units
    out["connectome"] = c.name
    out.attrs.update(units=c.units, connectome=c.name, seed=tuple(float(v) for v in seed),
                     seed_radius=seed_radius, radius=radius, citation=c.provenance.citation)
    return out


def _candidates(c: ParcelConnectome, region: str, search_radius: float, data_dir) -> np.ndarray:
    cortex = c.regions.structure.to_numpy() == "cortex"
    centroids = c.regions[["x", "y", "z"]].to_numpy(float)
    numbers = [p.strip() for p in region.split(",")]
    centres = None
    if len(numbers) in (3, 4):
        try:
            values = [float(p) for p in numbers]
        except ValueError:
            values = None
        if values is not None:
            centres = np.array([values[:3]])
            if len(values) == 4:
                search_radius = values[3]
    if centres is None and region in TARGETS:
        cat = target_catalogue(data_dir)
        rows = cat[cat.target == region]
        if rows.empty:
            raise ConnectomeError(f"the catalogue has no coordinates for target {region!r}")
        centres = rows[["x", "y", "z"]].to_numpy(float)
    if centres is not None:
        d = np.linalg.norm(centroids[:, None, :] - centres[None, :, :], axis=2).min(axis=1)
        mask = cortex & (d <= search_radius)
    else:
        try:
            pattern = re.compile(region, re.IGNORECASE)
        except re.error as exc:
            raise ConnectomeError(f"--search {region!r} is neither x,y,z[,r], a target code nor a valid "
                                  f"label pattern ({exc})") from None
        mask = cortex & np.array([bool(pattern.search(label)) for label in c.labels])
    if not mask.any():
        raise ConnectomeError(f"no cortical parcel of {c.name} matches --search {region!r}")
    return np.flatnonzero(mask)


def search_anticorrelated(region: str, seed=SGACC_SEED, *, seed_radius: float = 10.0,
                          connectome: ParcelConnectome | str = DEFAULT_CONNECTOME,
                          search_radius: float = SEARCH_RADIUS, max_distance: float = DEFAULT_MAX_DISTANCE,
                          data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Rank candidate cortical parcels by anticorrelation with a seed.

    Parameters
    ----------
    region : str
        Where to look: ``"x,y,z"`` or ``"x,y,z,r"`` (parcels whose centroid lies within r mm,
        default 20), a target code such as ``"dlpfc_left"`` (within 20 mm of its catalogue
        coordinates), or a case-insensitive pattern on parcel labels (``"PFCl"``, ``"LH_Cont"``).

    Returns
    -------
    DataFrame
        One row per candidate parcel, most anticorrelated first: ``rank, label, network,
        hemisphere, x, y, z`` (a voxel of the parcel nearest its centroid, usable as a target
        coordinate) and ``connectivity`` to the seed sphere.
    """
    c = _connectome(connectome, data_dir)
    seed_profile = c.seed_profiles([_seed(c, seed, seed_radius, max_distance)])[0]
    idx = _candidates(c, region, search_radius, data_dir)
    values = seed_profile[idx]
    inside = np.array([c.atlas.inside_centroid(int(i)) for i in idx])
    out = c.regions.loc[idx, ["label", "network", "hemisphere"]].reset_index(drop=True)
    out["x"], out["y"], out["z"] = inside[:, 0], inside[:, 1], inside[:, 2]
    out["connectivity"] = values
    out = out.sort_values("connectivity", kind="stable").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out.attrs.update(units=c.units, connectome=c.name, seed=tuple(float(v) for v in seed), seed_radius=seed_radius)
    return out
