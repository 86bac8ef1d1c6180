"""Volumetric parcel atlases: coordinate → parcel, seed spheres, painting values back (private)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import nibabel as nib
import numpy as np
from scipy.spatial import cKDTree

from neuromodmap.connectome._errors import AtlasMismatchError, CoordinateError

__all__ = ["ParcelAtlas", "Seed", "DEFAULT_MAX_DISTANCE"]

#: a coordinate farther than this (mm) from every labelled voxel is rejected: farther, the
#: nearest parcel is usually another structure (a brainstem nucleus is ~6 mm from visual cortex)
DEFAULT_MAX_DISTANCE = 5.0


@dataclass
class Seed:
    """Where a seed sphere falls in a connectome's regions.

    Attributes
    ----------
    weights : ndarray, shape (n_regions,)
        Fraction of the seed's labelled voxels in each region (sums to 1).
    n_voxels : int
        Labelled voxels inside the sphere (0 when a nearest-parcel fallback was used).
    distance_mm : float
        Distance from the coordinate to the nearest labelled voxel (or nucleus centroid).
    method : str
        ``"sphere"``, ``"nearest_parcel"`` (sphere hit no parcel) or ``"nearest_nucleus"``.
    nucleus : int or None
        Index into the connectome's :attr:`~ParcelConnectome.bridged` nuclei when the seed is a
        nucleus whose profile comes from another connectome (``weights`` is then all zero).
    label : str
        That nucleus's label.
    """

    weights: np.ndarray
    n_voxels: int
    distance_mm: float
    method: str
    note: str = ""
    regions: tuple[int, ...] = field(default=())
    nucleus: int | None = None
    label: str = ""


@dataclass
class ParcelAtlas:
    """A label volume in MNI space whose labels map to the rows of a connectome.

    Parameters
    ----------
    name : str
        Readable name, used in methods text.
    image : nibabel image
        3-D integer label volume (0 = background).
    region_of_label : dict
        Atlas label → connectome row. Labels not in the dict are treated as background.
    n_regions : int
        Rows of the connectome.
    citation : str
        How to cite the atlas.
    """

    name: str
    image: nib.Nifti1Image
    region_of_label: dict[int, int]
    n_regions: int
    citation: str = ""

    def __post_init__(self) -> None:
        if self.image.ndim != 3:
            raise AtlasMismatchError(f"atlas {self.name}: expected a 3-D label volume, got shape {self.image.shape}")
        labels = set(np.unique(np.asarray(self.image.dataobj)).astype(int)) - {0}
        missing = sorted(set(self.region_of_label) - labels)
        if missing:
            raise AtlasMismatchError(
                f"atlas {self.name}: labels {missing[:10]} expected by the connectome are absent from the volume"
            )

    @cached_property
    def _voxels(self) -> tuple[np.ndarray, np.ndarray, cKDTree]:
        data = np.asarray(self.image.dataobj).astype(np.int64)
        lut = np.full(int(data.max()) + 1, -1, dtype=np.int64)
        for label, region in self.region_of_label.items():
            lut[label] = region
        region = lut[data]
        ijk = np.argwhere(region >= 0)
        xyz = nib.affines.apply_affine(self.image.affine, ijk)
        return xyz, region[tuple(ijk.T)], cKDTree(xyz)

    @cached_property
    def voxel_volume(self) -> float:
        return float(abs(np.linalg.det(self.image.affine[:3, :3])))

    def centroids(self) -> np.ndarray:
        """Mean MNI coordinate of each region's voxels, shape (n_regions, 3); NaN where absent."""
        xyz, region, _ = self._voxels
        out = np.full((self.n_regions, 3), np.nan)
        counts = np.bincount(region, minlength=self.n_regions)
        for axis in range(3):
            sums = np.bincount(region, weights=xyz[:, axis], minlength=self.n_regions)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[:, axis] = sums / counts
        return out

    def inside_centroid(self, region: int) -> np.ndarray:
        """The region's centroid snapped to its nearest own voxel, so curved regions stay inside."""
        xyz, regions, _ = self._voxels
        own = xyz[regions == region]
        if own.size == 0:
            raise AtlasMismatchError(f"atlas {self.name}: region {region} has no voxels")
        centre = own.mean(axis=0)
        return own[np.argmin(((own - centre) ** 2).sum(axis=1))]

    def sphere(self, coord, radius: float, max_distance: float = DEFAULT_MAX_DISTANCE) -> Seed:
        """Weights over regions of the labelled voxels within ``radius`` mm of ``coord``.

        Voxels count when their centre lies within the radius (as in nilearn's
        ``NiftiSpheresMasker``). A sphere that hits no labelled voxel falls back to the nearest
        parcel, reported with its distance; beyond ``max_distance`` mm it is an error.
        """
        coord = np.asarray(coord, dtype=float).reshape(3)
        if not np.all(np.isfinite(coord)):
            raise CoordinateError(f"coordinate {tuple(coord)} is not finite")
        xyz, region, tree = self._voxels
        distance, nearest = tree.query(coord)
        hits = tree.query_ball_point(coord, r=float(radius)) if radius > 0 else []
        if hits:
            counts = np.bincount(region[hits], minlength=self.n_regions).astype(float)
            return Seed(counts / counts.sum(), len(hits), float(distance), "sphere",
                        regions=tuple(np.flatnonzero(counts)))
        if distance > max_distance:
            raise CoordinateError(
                f"coordinate ({coord[0]:g}, {coord[1]:g}, {coord[2]:g}) is {distance:.1f} mm from the nearest "
                f"parcel of {self.name} (maximum {max_distance:g} mm): outside the brain or not in MNI space?"
            )
        weights = np.zeros(self.n_regions)
        weights[region[nearest]] = 1.0
        return Seed(weights, 0, float(distance), "nearest_parcel",
                    note=f"no parcel within {radius:g} mm; nearest parcel at {distance:.1f} mm",
                    regions=(int(region[nearest]),))

    def paint(self, values) -> nib.Nifti1Image:
        """Paint region values back into the volume: 3-D for one vector, 4-D for (k, n_regions)."""
        values = np.asarray(values, dtype=np.float32)
        single = values.ndim == 1
        values = np.atleast_2d(values)
        if values.shape[1] != self.n_regions:
            raise AtlasMismatchError(
                f"cannot paint {values.shape[1]} values into atlas {self.name} with {self.n_regions} regions"
            )
        data = np.asarray(self.image.dataobj).astype(np.int64)
        lut = np.full(int(data.max()) + 1, -1, dtype=np.int64)
        for label, region in self.region_of_label.items():
            lut[label] = region
        region = lut[data]
        inside = region >= 0
        out = np.zeros(data.shape + (values.shape[0],), dtype=np.float32)
        out[inside] = values[:, region[inside]].T
        # NaN (e.g. a region without data) is painted as 0 so viewers do not choke
        np.nan_to_num(out, copy=False)
        if single:
            out = out[..., 0]
        img = nib.Nifti1Image(out, self.image.affine)
        img.header.set_xyzt_units("mm")
        return img
