"""Voxel-level seed maps from big normative connectomes (private).

Two sources, one interface (:class:`VoxelConnectome`): a Lead-DBS fMRI connectome folder
(``dataset_info.json``, ``dataset_volsurf.mat`` with ``vol.outidx``, ``vol.space``,
``vol.subIDs``, and ``vol/<run>.mat`` holding ``gmtc``, voxels × time) or a list of 4-D NIfTI
runs in MNI space with a mask. For each subject the series are centred (float32, in place) and
every seed's map is computed, voxel block by voxel block, as a float32 matrix product of the
unit seed series with the centred series divided by the voxel norms (Pearson r), averaged over
the subject's runs, then Fisher z-transformed; the running float64 sums behind the group AvgR,
AvgRFz, VarR and one-sample T maps (Lead-DBS's outputs) are updated on the same block while it
is in cache, so memory stays bounded by two subjects' series plus the seed maps. Locally the
voxel blocks are spread over threads (BLAS on one thread in each) while a reader thread reads
the next subject (``_matlab.read_series``: run files straight into the float32 arrays, with
O_DIRECT where the pages are not cached, into the memory of the subject before last); with a
``dask.distributed`` address, subjects go to the cluster's workers.

Accuracy against a float64 computation (tests/connectome/test_connectome_voxel.py, on HCP
series with means near 10,000): r within 2e-6, VarR within 1e-6, Fisher z within 1e-5 (it is
computed as log((1 + r) / (1 - r)) / 2 in float32, absolute error about 1e-7), T within 1e-4
relative.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neuromodmap.connectome._atlas import DEFAULT_MAX_DISTANCE
from neuromodmap.connectome._errors import (
    ConnectomeError,
    CoordinateError,
    ImageError,
    TimeSeriesError,
)
from neuromodmap.connectome._matlab import loadmat as _loadmat
from neuromodmap.connectome._matlab import read_series
from neuromodmap.provenance import Provenance

__all__ = ["VoxelConnectome", "LeadDBSConnectome", "NiftiConnectome", "VoxelMaps", "voxel_seed_maps"]

# |r| is clipped below 1 before the Fisher transform (a seed voxel correlates 1 with itself)
_R_CLIP = np.float32(1 - 1e-6)
_MIN_TIMEPOINTS = 10


@dataclass
class VoxelConnectome:
    """Geometry shared by voxel-level sources: the voxels kept, as (i, j, k) in a 3-D grid."""

    name: str
    shape: tuple[int, int, int]
    affine: np.ndarray
    ijk: np.ndarray
    subjects: list[str]
    provenance: Provenance

    @property
    def n_voxels(self) -> int:
        return len(self.ijk)

    def xyz(self) -> np.ndarray:
        return nib.affines.apply_affine(self.affine, self.ijk)

    def runs(self, subject: str) -> list[np.ndarray]:  # pragma: no cover - abstract
        """Time series of a subject's runs, each (time, voxels) float32."""
        raise NotImplementedError

    def _read_runs(self, subject: str, reuse: list[np.ndarray] | None = None, parallel: bool = False
                   ) -> list[np.ndarray]:
        """``runs``, possibly written into the memory of ``reuse`` (arrays returned by an earlier
        call that are no longer needed) and, with ``parallel``, the runs read at the same time;
        sources that cannot do either ignore them."""
        return self.runs(subject)

    def sphere(self, coord, radius: float, max_distance: float = DEFAULT_MAX_DISTANCE) -> np.ndarray:
        """Positions (into the voxel list) within ``radius`` mm of ``coord``; nearest voxel as fallback."""
        from scipy.spatial import cKDTree

        if not hasattr(self, "_tree"):
            self._tree = cKDTree(self.xyz())
        coord = np.asarray(coord, dtype=float).reshape(3)
        hits = self._tree.query_ball_point(coord, r=float(radius)) if radius > 0 else []
        if hits:
            return np.sort(np.asarray(hits, dtype=np.int64))
        distance, nearest = self._tree.query(coord)
        if distance > max_distance:
            raise CoordinateError(f"coordinate ({coord[0]:g}, {coord[1]:g}, {coord[2]:g}) is {distance:.1f} mm from "
                                  f"the nearest voxel of {self.name} (maximum {max_distance:g} mm)")
        return np.array([nearest], dtype=np.int64)

    def to_image(self, values: np.ndarray) -> nib.Nifti1Image:
        values = np.asarray(values, dtype=np.float32)
        out = np.zeros(self.shape + values.shape[1:], dtype=np.float32)
        out[tuple(self.ijk.T)] = values
        return nib.Nifti1Image(out, self.affine)

    def __getstate__(self):  # the KD-tree is rebuilt where needed (e.g. on a Dask worker)
        state = self.__dict__.copy()
        state.pop("_tree", None)
        return state


# ---------------------------------------------------------------------------------------------
# Lead-DBS folders
# ---------------------------------------------------------------------------------------------
class LeadDBSConnectome(VoxelConnectome):
    """A Lead-DBS fMRI connectome folder.

    Parameters
    ----------
    folder : path
        Holds ``dataset_info.json``, ``dataset_volsurf.mat`` and ``vol/``.
    """

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        self.folder = folder
        volsurf = folder / "dataset_volsurf.mat"
        if not volsurf.is_file():
            raise ConnectomeError(f"{folder}: not a Lead-DBS fMRI connectome (no dataset_volsurf.mat)")
        info_path = folder / "dataset_info.json"
        info = {}
        if info_path.is_file():
            try:
                info = json.loads(info_path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ConnectomeError(f"{info_path}: not valid JSON ({exc})") from None
        mat = _loadmat(volsurf, ["vol"])
        if "vol" not in mat:
            raise ConnectomeError(f"{volsurf}: no 'vol' structure")
        vol = mat["vol"]
        try:
            outidx = np.atleast_1d(np.asarray(vol.outidx, dtype=np.int64)).ravel()
            space = vol.space
            dim = tuple(int(d) for d in np.atleast_1d(space.dim)[:3])
            matlab_affine = np.asarray(space.mat, dtype=float)
            sub_ids = vol.subIDs
        except AttributeError as exc:
            raise ConnectomeError(f"{volsurf}: vol lacks a field ({exc}); expected outidx, space.dim, space.mat, "
                                  "subIDs") from None
        if outidx.size == 0 or outidx.min() < 1 or outidx.max() > int(np.prod(dim)):
            raise ConnectomeError(f"{volsurf}: vol.outidx outside the {dim} grid of vol.space")
        # MATLAB: 1-based linear indices in column-major order; space.mat maps 1-based voxels
        ijk = np.column_stack(np.unravel_index(outidx - 1, dim, order="F"))
        affine = matlab_affine @ np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=float)
        self._runs: dict[str, list[str]] = {}
        for entry in np.atleast_1d(sub_ids):
            cells = [str(c) for c in np.atleast_1d(entry)]
            if len(cells) < 2:
                raise ConnectomeError(f"{volsurf}: subIDs entry {cells} has no run file")
            self._runs[cells[0]] = cells[1:]
        super().__init__(name=str(info.get("name", folder.name)), shape=dim, affine=affine, ijk=ijk,
                         subjects=list(self._runs),
                         provenance=Provenance(source=str(folder), citation=str(info.get("citation", "")),
                                               extra={"format": "Lead-DBS fMRI connectome"}))

    def runs(self, subject: str) -> list[np.ndarray]:
        return self._read_runs(subject)

    def _read_runs(self, subject: str, reuse: list[np.ndarray] | None = None, parallel: bool = False
                   ) -> list[np.ndarray]:
        """The runs as time x voxels float32 arrays; with ``parallel``, a subject's run files are
        read at the same time (compressed files are inflated on one core each)."""
        paths = []
        for name in self._runs[subject]:
            path = self.folder / "vol" / name
            if path.suffix != ".mat":
                path = path.with_name(path.name + ".mat") if not path.is_file() else path
            if not path.is_file():
                raise ConnectomeError(f"{path}: run file of subject {subject} is missing")
            paths.append(path)
        reuse = list(reuse or [])
        spare = [reuse.pop() if reuse else None for _ in paths]

        def read(k: int) -> np.ndarray:
            series = read_series(paths[k], "gmtc", spare[k])  # time x voxels, float32
            if series.shape[1] != self.n_voxels:
                raise TimeSeriesError(f"{paths[k]}: gmtc has shape {series.shape[::-1]}, expected "
                                      f"({self.n_voxels}, time)")
            return series

        if parallel and len(paths) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(len(paths), os.cpu_count() or 1)) as pool:
                return list(pool.map(read, range(len(paths))))
        return [read(k) for k in range(len(paths))]


# ---------------------------------------------------------------------------------------------
# 4-D NIfTI runs
# ---------------------------------------------------------------------------------------------
class NiftiConnectome(VoxelConnectome):
    """Resting-state runs as 4-D NIfTI files in MNI space, restricted to a mask.

    Parameters
    ----------
    runs : sequence of paths, or mapping subject -> paths
        One 4-D image per run; a flat list means one run per subject.
    mask : path or image
        3-D mask on the same grid as every run (same shape and affine).
    """

    def __init__(self, runs, mask, name: str = "nifti"):
        if isinstance(runs, dict):
            self._runs = {str(k): [Path(p) for p in (v if isinstance(v, (list, tuple)) else [v])]
                          for k, v in runs.items()}
        else:
            runs = [Path(p) for p in runs]
            self._runs = {p.name.split(".")[0]: [p] for p in runs}
        if not self._runs:
            raise ConnectomeError("no NIfTI runs given")
        mask_img = mask if isinstance(mask, nib.spatialimages.SpatialImage) else nib.load(mask)
        if mask_img.ndim != 3:
            raise ImageError(f"mask {getattr(mask_img, 'get_filename', lambda: '')() or mask}: expected 3-D, got "
                             f"shape {mask_img.shape}")
        self._mask = mask_img
        ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0)
        if len(ijk) == 0:
            raise ImageError(f"mask {mask}: no voxel inside")
        for paths in self._runs.values():
            for path in paths:
                self._check(path)
        super().__init__(name=name, shape=tuple(mask_img.shape), affine=mask_img.affine, ijk=ijk,
                         subjects=list(self._runs),
                         provenance=Provenance(source=f"{len(self._runs)} subjects of 4-D NIfTI runs",
                                               extra={"format": "NIfTI runs + mask"}))

    def _check(self, path: Path) -> None:
        try:
            header = nib.load(path)
        except (OSError, nib.filebasedimages.ImageFileError, ValueError) as exc:
            raise ImageError(f"{path}: not a readable NIfTI image ({exc})") from None
        if header.ndim != 4:
            raise ImageError(f"{path}: expected a 4-D run (x, y, z, time), got shape {header.shape}")
        if header.shape[:3] != self._mask.shape:
            raise ImageError(f"{path}: grid {header.shape[:3]} differs from the mask's {self._mask.shape}; "
                             "resample the run to the mask first (e.g. nilearn.image.resample_to_img)")
        if not np.allclose(header.affine, self._mask.affine, atol=1e-3):
            raise ImageError(f"{path}: affine differs from the mask's (not the same space)")

    def runs(self, subject: str) -> list[np.ndarray]:
        from nilearn.masking import apply_mask

        return [np.ascontiguousarray(apply_mask(str(p), self._mask, dtype="f")) for p in self._runs[subject]]


# ---------------------------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------------------------
# Voxels are processed in blocks of _BLOCK columns: one GEMM (seeds x time) @ (time x block),
# then every element-wise step (1/norm, Fisher z, the four running sums) on that block while it
# is still in cache, instead of streaming several seeds x voxels arrays through memory. Local
# threads take blocks in turn (numpy and BLAS release the GIL; BLAS runs one thread per block).
_BLOCK = 1024


@dataclass
class _Run:
    """One run ready for the block loop: centred series, voxel 1/norms and unit seed series."""

    x: np.ndarray  # (time, voxels) float32, centred in place; invalid columns zeroed
    inv_norm: np.ndarray  # (voxels,) float32, 0 at invalid voxels
    bad: np.ndarray  # (voxels,) bool: NaN/inf or zero variance
    seeds: np.ndarray  # (seeds, time) float32, centred, unit norm; zero rows for invalid seeds
    seed_bad: np.ndarray  # (seeds,) bool


def _blocks(n_voxels: int, block: int | None = None) -> list[tuple[int, int]]:
    block = block or _BLOCK
    return [(v0, min(n_voxels, v0 + block)) for v0 in range(0, n_voxels, block)]


_ROWS = 32  # time points per chunk in the centring pass (a chunk of a column range stays in cache)
_CENTRE_COLS = 8192  # columns per centring task: 32 x 8,192 float32 = 1 MiB chunks stay in cache (on a
# 285,000-voxel run, halves of the columns made 18 MB chunks that streamed from memory 3 times; 35 % slower)
_SHIFT_ROWS = 8  # each series is shifted by the mean of its first time points
_FLAT = 1e-6  # a series whose standard deviation is below this fraction of its mean is constant


def _centre_part(x: np.ndarray, c0: int, c1: int, gather: np.ndarray):
    """Shift the columns ``c0:c1`` of a (time, voxels) run in place, in one pass over rows.

    Each column is shifted by the mean of its first few samples, which brings it to within a
    few standard deviations of zero (resting-state series often have means near 10,000 and a
    standard deviation near 100, which float32 products could not resolve). While each chunk
    of rows is in cache, the sums and sums of squares of the shifted values are added (float32
    within a chunk, float64 across chunks), which give each column's exact mean and centred
    norm, and the seed voxels' columns ``gather`` (absolute indices within c0:c1) are copied
    out, so the seed series cost no strided pass over the whole run. The series need no exact
    centring: the unit seed series are centred (they sum to zero), so the shift left in a
    column adds nothing but rounding to their products with it.

    Returns the squared norms of the centred columns, their means, and the gathered (shifted)
    columns as (len(gather), time) float32.
    """
    n_time = x.shape[0]
    xs = x[:, c0:c1]
    width = c1 - c0
    part = np.empty(width, dtype=np.float32)
    shift = np.empty(width, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        np.add.reduce(xs[:_SHIFT_ROWS], axis=0, out=shift)
        shift /= np.float32(min(_SHIFT_ROWS, n_time))
    total = np.zeros(width)
    sq = np.zeros(width)
    local = gather - c0
    cols = np.empty((len(gather), n_time), dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        for t0 in range(0, n_time, _ROWS):
            chunk = xs[t0:t0 + _ROWS]
            chunk -= shift
            total += np.add.reduce(chunk, axis=0, out=part)
            sq += np.einsum("ij,ij->j", chunk, chunk, out=part)
            if local.size:
                cols[:, t0:t0 + _ROWS] = chunk[:, local].T
        total /= n_time  # the mean of the shifted values
        norm2 = sq - n_time * total * total
        mean = total + shift
    return norm2, mean, cols


def _prepare_run(x: np.ndarray, seed_sets: list[np.ndarray], pmap=map, n_parts: int = 1) -> _Run:
    """Shift a (time, voxels) run in place (see ``_centre_part``), get the 1/norms of the centred
    series, and build the unit seed series.

    A voxel is left out (``bad``) when its series holds a NaN or inf, or is constant: its
    standard deviation is below ``_FLAT`` times its mean (float32 holds 24 bits, so such a
    series is constant up to rounding) or its norm is below 1e-30.
    """
    n_time, n_voxels = x.shape
    step = min(-(-n_voxels // n_parts), _CENTRE_COLS)
    seed_voxels = np.unique(np.concatenate(seed_sets))
    bounds = [(v0, min(n_voxels, v0 + step)) for v0 in range(0, n_voxels, step)]
    parts = list(pmap(lambda b: _centre_part(x, b[0], b[1], seed_voxels[(seed_voxels >= b[0]) &
                                                                        (seed_voxels < b[1])]), bounds))
    norm2 = np.concatenate([p[0] for p in parts])
    mean = np.concatenate([p[1] for p in parts])
    cols = np.concatenate([p[2] for p in parts]) if len(parts) > 1 else parts[0][2]
    with np.errstate(invalid="ignore", over="ignore"):
        norm = np.sqrt(norm2)
        bad = ~np.isfinite(norm) | (norm <= 1e-30) | (norm <= _FLAT * np.abs(mean) * np.sqrt(n_time))
    if bad.any():
        x[:, bad] = 0.0  # no NaN or overflow can reach the GEMM output (it is multiplied by 0)
        norm[bad] = np.inf
    inv_norm = (1.0 / norm).astype(np.float32)
    # seed series = mean of the seed voxels' (centred) series, as in Lead-DBS; centred and
    # normalised in float64 (small), so that seeds . x = seeds . (x - mean) to rounding
    seeds = np.zeros((len(seed_sets), n_time))
    for s, idx in enumerate(seed_sets):
        good = idx[~bad[idx]]
        if good.size:
            seeds[s] = cols[np.searchsorted(seed_voxels, good)].mean(axis=0, dtype=np.float64)
    seeds -= seeds.mean(axis=1, keepdims=True)
    seed_norm = np.sqrt(np.einsum("ij,ij->i", seeds, seeds))
    seed_bad = ~np.isfinite(seed_norm) | (seed_norm <= 1e-30)
    seed_norm[seed_bad] = np.inf
    seeds /= seed_norm[:, None]
    return _Run(x=x, inv_norm=inv_norm, bad=bad, seeds=seeds.astype(np.float32), seed_bad=seed_bad)


def _load_runs(source: VoxelConnectome, subject: str, reuse: list[np.ndarray] | None = None,
               parallel: bool = False) -> list[np.ndarray]:
    runs = []
    for run in source._read_runs(subject, reuse, parallel):
        if run.shape[0] < _MIN_TIMEPOINTS:
            raise TimeSeriesError(f"subject {subject}: a run has {run.shape[0]} time points "
                                  f"(at least {_MIN_TIMEPOINTS} needed)")
        runs.append(np.ascontiguousarray(run, dtype=np.float32))
    return runs


class _Work:
    """Per-thread float32 work buffers for one block, voxels x seeds (flat, so any block width
    is contiguous)."""

    def __init__(self, n_seeds: int, block: int | None = None):
        self.n_seeds = n_seeds
        block = block or _BLOCK
        self._flat = [np.empty(n_seeds * block, dtype=np.float32) for _ in range(3)]

    def views(self, width: int) -> list[np.ndarray]:
        return [f[:self.n_seeds * width].reshape(width, self.n_seeds) for f in self._flat]


_R_ONE = np.float32(1)


def _block_rz(runs: list[_Run], seed_bad: np.ndarray, voxel_bad: np.ndarray, v0: int, v1: int,
              work: _Work) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One subject's r (averaged over runs) and 2 x Fisher z for the voxels v0:v1, each as a
    (voxels, seeds) array: the product x_block^T seeds^T (as fast as seeds x_block) makes a
    block a range of rows of the voxels x seeds sums, so their updates stream contiguous memory.

    Invalid entries (a bad seed or voxel in any run) are 0 in both. Returns (r, z2, scratch).
    """
    r, z, tmp = work.views(v1 - v0)
    for k, run in enumerate(runs):
        out = r if k == 0 else tmp
        np.matmul(run.x[:, v0:v1].T, run.seeds.T, out=out)
        out *= run.inv_norm[v0:v1, None]
        if k:
            r += tmp
    if len(runs) > 1:
        r *= np.float32(1 / len(runs))
        rows = np.flatnonzero(voxel_bad[v0:v1])
        if rows.size:
            r[rows] = 0.0
        if seed_bad.any():
            r[:, seed_bad] = 0.0
    # Fisher z = artanh(r) = log((1 + r) / (1 - r)) / 2: numpy's float32 log is vectorised, its
    # arctanh is not (10x slower); the 1/2 is applied to the group sums at the end
    np.clip(r, -_R_CLIP, _R_CLIP, out=z)
    np.subtract(_R_ONE, z, out=tmp)
    z += _R_ONE
    z /= tmp
    np.log(z, out=z)
    return r, z, tmp


_GROUP = 8  # subjects summed in float32 before their sums are added to the float64 totals


class _Accumulator:
    """Running sums of r, r², 2z and (2z)² per seed × voxel, fed block by block.

    Each subject's block is added to float32 sums; after every ``_GROUP`` subjects those are
    added to float64 totals (allocated at the first such fold) and start again, so float32
    never sums more than ``_GROUP`` values (relative error below ``_GROUP`` × 6e-8) while the
    per-subject work streams half the bytes of float64 sums. Each sum is one voxels × seeds
    array (a block is a range of its rows, so contiguous). At the end the group maps are
    computed block by block (products and differences in float64) and written over the float32
    sums, which become the outputs (returned transposed, as seeds × voxels views): no fresh
    memory for the maps (on this project's VM, touching fresh pages cost about 1.4 CPU seconds
    per GB). Invalid (seed, voxel) pairs add zeros; they are
    counted per subject as a bad seed or a bad voxel, so the per-pair subject counts are rebuilt
    at the end without a count map per subject.
    """

    def __init__(self, n_seeds: int, n_voxels: int, block: int | None = None):
        import threading

        self.n_seeds, self.n_voxels = n_seeds, n_voxels
        self.blocks = _blocks(n_voxels, block)
        self.width = self.blocks[0][1]
        self.group = _GROUP
        self.part = [np.empty((n_voxels, n_seeds), dtype=np.float32) for _ in range(4)]
        self.in_part = np.zeros(len(self.blocks), dtype=np.int64)  # subjects in each block's float32 sums
        self.total: list[np.ndarray] | None = None
        self._lock = threading.Lock()
        self.n = 0
        self.bad_seed = np.zeros(n_seeds, dtype=np.int64)
        self.bad_voxel = np.zeros(n_voxels, dtype=np.int64)
        self.bad_both: list[tuple[np.ndarray, np.ndarray]] = []
        self.log: list[tuple] = []

    def _view(self, arrays: list[np.ndarray], k: int, b: int) -> np.ndarray:
        v0, v1 = self.blocks[b]
        return arrays[k][v0:v1]

    def add_block(self, b: int, r: np.ndarray, z: np.ndarray, tmp: np.ndarray) -> None:
        p_r, p_r2, p_z, p_z2 = (self._view(self.part, k, b) for k in range(4))
        if self.in_part[b] == 0:  # the first subject of a group writes instead of adding
            np.copyto(p_r, r)
            np.multiply(r, r, out=p_r2)
            np.copyto(p_z, z)
            np.multiply(z, z, out=p_z2)
        else:
            p_r += r
            p_r2 += np.multiply(r, r, out=tmp)
            p_z += z
            p_z2 += np.multiply(z, z, out=tmp)
        self.in_part[b] += 1
        if self.in_part[b] == self.group:
            self._fold(b)

    def _fold(self, b: int) -> None:
        if self.total is None:
            with self._lock:
                if self.total is None:
                    self.total = [np.zeros(self.part[0].shape) for _ in range(4)]
        for k in range(4):
            t = self._view(self.total, k, b)
            np.add(t, self._view(self.part, k, b), out=t)
        self.in_part[b] = 0

    def add_subject(self, seed_bad: np.ndarray, voxel_bad: np.ndarray, log: tuple) -> None:
        self.n += 1
        self.bad_seed += seed_bad
        self.bad_voxel += voxel_bad
        if seed_bad.any() and voxel_bad.any():  # pairs bad on both counts were subtracted twice
            self.bad_both.append((np.flatnonzero(seed_bad), np.flatnonzero(voxel_bad)))
        self.log.append(log)

    def _counts(self, b: int, out: np.ndarray) -> np.ndarray:
        v0, v1 = self.blocks[b]
        np.subtract((self.n - self.bad_seed)[None, :], self.bad_voxel[v0:v1, None], out=out, casting="unsafe")
        for seeds, voxels in self.bad_both:
            voxels = voxels[(voxels >= v0) & (voxels < v1)] - v0
            if voxels.size:
                out[np.ix_(voxels, seeds)] += 1
        return out

    def begin_maps(self) -> None:
        """From now on ``map_block`` may compute any block's maps (after the last subject's
        ``add_subject`` and, for that block, its last ``add_block``). The maps AvgR, VarR,
        AvgRFz and T are written over the float32 sums of r, r², 2z and (2z)², in the order
        ``_maps`` reads them."""
        import threading

        self._out = list(self.part)
        self._local = threading.local()
        self._mapped = np.zeros(len(self.blocks), dtype=bool)

    def _scratch(self, width: int, count: int) -> list[np.ndarray]:
        flat = self._local.__dict__.setdefault("flat", [])
        while len(flat) < count:
            flat.append(np.empty(self.n_seeds * self.width))
        return [f[:self.n_seeds * width].reshape(width, self.n_seeds) for f in flat[:count]]

    @staticmethod
    def _maps(r, r2, z, z2, n, n1, a, b, avg_r, var_r, avg_z, t) -> None:
        """The four maps from the sums (float32 or float64; products and differences in float64).

        The outputs may be the sums themselves (avg_r = r, var_r = r2, avg_z = z, t = z2):
        each sum is read for the last time before its output is written."""
        np.multiply(r, r, out=a, dtype=np.float64)  # VarR = (sum r² - (sum r)² / n) / (n - 1)
        a /= n
        np.subtract(r2, a, out=a, dtype=np.float64)
        np.divide(a, n1, out=var_r)
        np.divide(r, n, out=avg_r)
        np.multiply(z, z, out=a, dtype=np.float64)  # one-sample t of Fisher z from Z = sum 2z
        np.multiply(z2, n, out=b, dtype=np.float64)  # and Q = sum (2z)²: mean / sqrt(var / n)
        b -= a  # = Z sqrt((n - 1) / (n Q - Z²))
        np.divide(n1, b, out=b)
        np.sqrt(b, out=b)
        np.multiply(b, z, out=t)
        np.multiply(z, 0.5 / n, out=avg_z)

    def map_block(self, b: int) -> None:
        """AvgR, VarR, AvgRFz and T of block ``b`` into the outputs. Where every pair of the
        block has all n subjects (no seed or voxel was ever invalid there, the usual case) n is
        one number; otherwise it is the block's count array."""
        v0, v1 = self.blocks[b]
        width = v1 - v0
        n_subjects = self.n
        outs = [o[v0:v1] for o in self._out]
        if not self.bad_seed.any() and not self.bad_voxel[v0:v1].any():
            a, b2 = self._scratch(width, 2)
            n = n1 = None
            few = n_subjects < 2
        else:
            a, b2, n, n1 = self._scratch(width, 4)
            self._counts(b, n)
            np.subtract(n, 1, out=n1)
            few = (n_subjects - self.bad_seed).min() - self.bad_voxel[v0:v1].max() < 2
        if self.total is None:  # fewer subjects than a group: the float32 sums are all
            sums = [self._view(self.part, k, b) for k in range(4)]
        else:
            sums = self._scratch(width, 8)[4:]
            for k, dst in enumerate(sums):
                if self.in_part[b]:
                    np.add(self._view(self.total, k, b), self._view(self.part, k, b), out=dst)
                else:
                    np.copyto(dst, self._view(self.total, k, b))
        with np.errstate(invalid="ignore", divide="ignore"):
            if n is None:
                self._maps(*sums, float(n_subjects), float(n_subjects - 1), a, b2, *outs)
            else:
                self._maps(*sums, n, n1, a, b2, *outs)
        avg_r, var_r, avg_z, t = outs
        if few:  # rare: pairs with fewer than 2 subjects have no variance or t
            lacking = (n < 2) if n is not None else slice(None)
            var_r[lacking] = np.nan
            t[lacking] = np.nan
        self._mapped[b] = True

    def finish(self, pmap=map) -> tuple[np.ndarray, ...]:
        """Subject counts (int32), AvgR, AvgRFz, VarR and T (float32), seeds x voxels (views of
        voxels x seeds arrays, i.e. Fortran-ordered).

        Computes the maps of the blocks not yet mapped (all of them, unless the block loop of
        the last subject mapped its blocks while they were in cache). When no seed or voxel was
        ever invalid, the counts are a read-only broadcast of the number of subjects (no
        seeds x voxels array).
        """
        if not hasattr(self, "_out"):
            self.begin_maps()
        list(pmap(self.map_block, [b for b in range(len(self.blocks)) if not self._mapped[b]]))
        self.total = self.part = None
        if not self.bad_seed.any() and not self.bad_voxel.any():  # every pair has all subjects
            counts = np.broadcast_to(np.int32(self.n), (self.n_seeds, self.n_voxels))
        else:
            counts = np.empty((self.n_voxels, self.n_seeds), dtype=np.int32)
            list(pmap(lambda b: self._counts(b, counts[self.blocks[b][0]:self.blocks[b][1]]),
                      range(len(self.blocks))))
            counts = counts.T
        avg_r, var_r, avg_z, t = (o.T for o in self._out)
        return counts, avg_r, avg_z, var_r, t


def _subject_partial(source: VoxelConnectome, subject: str, seed_sets: list[np.ndarray],
                     block: int | None = None) -> dict:
    """One subject's r and 2z per block (float32), for the distributed path."""
    runs = [_prepare_run(x, seed_sets) for x in _load_runs(source, subject)]
    seed_bad = np.logical_or.reduce([run.seed_bad for run in runs])
    voxel_bad = np.logical_or.reduce([run.bad for run in runs])
    work = _Work(len(seed_sets), block)
    blocks = []
    for v0, v1 in _blocks(source.n_voxels, block):
        r, z, _ = _block_rz(runs, seed_bad, voxel_bad, v0, v1, work)
        blocks.append(np.stack([r, z]))
    return {"blocks": blocks, "seed_bad": seed_bad, "voxel_bad": voxel_bad,
            "log": (subject, len(runs), max(int(run.bad.sum()) for run in runs))}


def _add_partial(acc: _Accumulator, part: dict) -> None:
    tmp = np.empty(part["blocks"][0].shape[1:], dtype=np.float32)
    for b, rz in enumerate(part["blocks"]):
        acc.add_block(b, rz[0], rz[1], tmp[:rz.shape[1]])
    acc.add_subject(part["seed_bad"], part["voxel_bad"], part["log"])


def _local_subject(subject, series, seed_sets, acc: _Accumulator, n_threads: int, pmap, work,
                   last: bool = False) -> None:
    """One subject's blocks on local threads. For the last subject the group maps of each block
    are computed right after its sums are updated, while they are still in cache."""
    runs = [_prepare_run(x, seed_sets, pmap, n_threads) for x in series]
    seed_bad = np.logical_or.reduce([run.seed_bad for run in runs])
    voxel_bad = np.logical_or.reduce([run.bad for run in runs])
    acc.add_subject(seed_bad, voxel_bad, (subject, len(runs), max(int(run.bad.sum()) for run in runs)))
    if last:
        acc.begin_maps()

    def one(b: int) -> None:
        v0, v1 = acc.blocks[b]
        acc.add_block(b, *_block_rz(runs, seed_bad, voxel_bad, v0, v1, work()))
        if last:
            acc.map_block(b)

    list(pmap(one, range(len(acc.blocks))))


def _run_local(source, names, seed_sets, acc: _Accumulator, n_threads: int, pmap) -> None:
    """Subjects one after the other; each subject's voxel blocks spread over ``n_threads``.

    The next subject's runs are read in the background while this one is computed (so at most
    two subjects' series are held), into the memory of the subject before (see
    ``_fastread.aligned_empty``: fresh pages are costly on a VM).
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()
    n_seeds = len(seed_sets)

    def work() -> _Work:
        if not hasattr(local, "work"):
            local.work = _Work(n_seeds)
        return local.work

    reader = ThreadPoolExecutor(1) if n_threads > 1 else None
    try:
        pending = reader.submit(_load_runs, source, names[0], None, True) if reader else None
        spare = None  # the series of the subject before, once computed
        for i, subject in enumerate(names):
            series = pending.result() if reader else _load_runs(source, subject, spare)
            if reader and i + 1 < len(names):
                pending = reader.submit(_load_runs, source, names[i + 1], spare, True)
            spare = None
            _local_subject(subject, series, seed_sets, acc, n_threads, pmap, work, last=i + 1 == len(names))
            spare = series
            del series
    finally:
        if reader:
            reader.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _threads(n_threads: int):
    """A parallel ``map`` over ``n_threads`` threads, each running BLAS single-threaded.

    A plain thread pool rather than Dask's threaded scheduler: for tasks as short as one voxel
    block (about 10 ms), Dask's per-task scheduling kept the threads idle for 10-20 % of the
    time (the GEMM blocks of one subject alone, 2 threads on this project's 2-core machine:
    117-134 GFLOP/s on Dask against 134-149 in a thread pool). Dask still takes whole subjects
    on a ``dask.distributed`` cluster.
    """
    if n_threads <= 1:
        yield map
        return
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with ThreadPoolExecutor(n_threads, thread_name_prefix="neuromodmap-voxel") as pool, \
            threadpool_limits(1, user_api="blas"):
        yield lambda fn, items: list(pool.map(fn, items))


def _run_distributed(source, names, seed_sets, acc: _Accumulator, address: str) -> None:
    from distributed import Client, as_completed

    with Client(address) as client:
        in_flight = 2 * max(1, sum(client.nthreads().values()))
        [source_f, seeds_f] = client.scatter([source, seed_sets], broadcast=True)
        queue = list(names)
        first = [client.submit(_subject_partial, source_f, s, seeds_f, pure=False) for s in queue[:in_flight]]
        queue = queue[in_flight:]
        done = as_completed(first)
        for future in done:
            _add_partial(acc, future.result())
            future.release()
            if queue:
                done.add(client.submit(_subject_partial, source_f, queue.pop(0), seeds_f, pure=False))


@dataclass
class VoxelMaps:
    """Group seed maps (Lead-DBS outputs): AvgR, AvgRFz, VarR and one-sample T on Fisher z.

    Each map is seeds x voxels float32, stored voxel-major (Fortran order: the transpose of the
    engine's voxels x seeds sums, which it overwrites); ``n_subjects`` is int32 of the same shape.
    """

    source: VoxelConnectome
    seeds: pd.DataFrame
    avg_r: np.ndarray
    avg_rfz: np.ndarray
    var_r: np.ndarray
    t: np.ndarray
    n_subjects: np.ndarray
    subjects: pd.DataFrame
    provenance: Provenance
    files: list[Path] = field(default_factory=list)

    def image(self, measure: str = "AvgRFz") -> nib.Nifti1Image:
        """4-D image (one volume per seed) of ``AvgR``, ``AvgRFz``, ``VarR`` or ``T``."""
        arrays = {"AvgR": self.avg_r, "AvgRFz": self.avg_rfz, "VarR": self.var_r, "T": self.t}
        if measure not in arrays:
            raise ConnectomeError(f"measure must be one of {', '.join(arrays)}")
        return self.source.to_image(np.nan_to_num(arrays[measure]).T)

    def methods(self) -> str:
        return (f"Voxel-wise seed maps were computed on {self.source.name} ({len(self.subjects)} subjects, "
                f"{self.source.n_voxels} voxels): for each subject the mean time course of each seed sphere was "
                "correlated (Pearson) with every voxel, averaged over runs and Fisher z-transformed; group maps "
                "are the mean r (AvgR), mean Fisher z (AvgRFz), variance of r (VarR) and one-sample t of Fisher "
                "z (T), as in Lead-DBS (Horn A. et al. 2019 NeuroImage 184:293-316).")

    def save(self, out_dir: str | os.PathLike) -> list[Path]:
        from neuromodmap._utils import atomic_write, write_csv
        from neuromodmap.connectome._report import save_nifti

        out = Path(out_dir)
        files = []
        for s, seed_id in enumerate(self.seeds["id"].astype(str)):
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in seed_id)
            for measure, values in (("AvgR", self.avg_r), ("AvgRFz", self.avg_rfz), ("VarR", self.var_r),
                                    ("T", self.t)):
                img = self.source.to_image(np.nan_to_num(values[s]))
                files.append(save_nifti(img, out / f"{safe}_conn-{self.source.name}_desc-{measure}_funcmap.nii.gz"))
        write_csv(self.seeds, out / "seeds.csv")
        write_csv(self.subjects, out / "subjects.csv")
        with atomic_write(out / "methods.txt", "w", encoding="utf-8") as fh:
            fh.write(self.methods() + "\n")
        self.files = files + [out / "seeds.csv", out / "subjects.csv", out / "methods.txt"]
        return self.files


def voxel_seed_maps(source: VoxelConnectome, seeds: pd.DataFrame | Sequence, *, radius: float = 5.0,
                    scheduler: str | None = None, n_workers: int | None = None,
                    max_distance: float = DEFAULT_MAX_DISTANCE, subjects: Sequence[str] | None = None) -> VoxelMaps:
    """Group seed-to-voxel maps over all subjects of a voxel-level connectome.

    Parameters
    ----------
    source : VoxelConnectome
        :class:`LeadDBSConnectome` or :class:`NiftiConnectome`.
    seeds : DataFrame or sequence of (x, y, z)
        Seed centres (MNI mm); a DataFrame may carry ``id`` and ``radius``.
    radius : float
        Sphere radius for seeds without one (mm); 0 means the nearest voxel.
    scheduler : str, optional
        ``None`` or ``"threads"`` for local threads over voxel blocks (BLAS limited to one
        thread each while the maps are computed; the next subject is read in the background),
        ``"synchronous"`` for a plain loop (BLAS threads as configured), ``"dask"`` for the
        subject loop on an in-process Dask cluster of ``n_workers`` threads (each takes whole
        subjects, BLAS on one thread; up to two subjects per thread in flight, so more memory
        than ``"threads"``), or the address of a ``dask.distributed`` scheduler
        (``"tcp://host:8786"``), whose workers take subjects.
    n_workers : int, optional
        Local threads (default: all cores).

    Returns
    -------
    VoxelMaps
    """

    if scheduler not in (None, "threads", "synchronous", "dask") and "://" not in str(scheduler):
        raise ConnectomeError(f"unknown scheduler {scheduler!r}: use 'threads', 'synchronous', 'dask' or a "
                              "dask.distributed address such as tcp://host:8786")
    if isinstance(seeds, pd.DataFrame):
        table = seeds.reset_index(drop=True).copy()
    else:
        coords = np.asarray(seeds, dtype=float).reshape(-1, 3)
        table = pd.DataFrame(coords, columns=["x", "y", "z"])
    if table.empty:
        raise ConnectomeError("no seeds given")
    if "id" not in table:
        table.insert(0, "id", [f"seed{i + 1}" for i in range(len(table))])
    radii = table["radius"].fillna(radius).astype(float) if "radius" in table else pd.Series(radius, index=table.index)
    seed_sets = [source.sphere((r.x, r.y, r.z), rad, max_distance) for r, rad in zip(table.itertuples(), radii,
                                                                                       strict=True)]
    table["radius_used"] = radii.to_numpy()
    table["n_voxels"] = [len(s) for s in seed_sets]
    names = list(subjects) if subjects is not None else source.subjects
    if not names:
        raise ConnectomeError(f"{source.name}: no subjects")
    acc = _Accumulator(len(seed_sets), source.n_voxels)
    n_threads = 1 if scheduler == "synchronous" else (n_workers or os.cpu_count() or 1)
    with _threads(n_threads) as pmap:
        if scheduler and "://" in scheduler:
            _run_distributed(source, names, seed_sets, acc, scheduler)
        elif scheduler == "dask":
            from distributed import LocalCluster

            with LocalCluster(n_workers=1, threads_per_worker=n_threads, processes=False,
                              dashboard_address=None) as cluster:
                _run_distributed(source, names, seed_sets, acc, cluster.scheduler_address)
        else:
            _run_local(source, names, seed_sets, acc, n_threads, pmap)
        n, avg_r, avg_z, var_r, t = acc.finish(pmap)
    if not n.any():
        raise TimeSeriesError(f"{source.name}: no valid time series for any seed (all NaN or zero variance)")
    order = {name: i for i, name in enumerate(names)}  # completion order differs on a cluster
    log = pd.DataFrame(sorted(acc.log, key=lambda row: order[row[0]]), columns=["subject", "n_runs", "invalid_voxels"])
    return VoxelMaps(source=source, seeds=table, avg_r=avg_r, avg_rfz=avg_z, var_r=var_r, t=t, n_subjects=n,
                     subjects=log, provenance=source.provenance)
