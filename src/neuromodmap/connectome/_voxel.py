"""Voxel-level seed maps from big normative connectomes (private).

Two sources, one interface (:class:`VoxelConnectome`): a Lead-DBS fMRI connectome folder
(``dataset_info.json``, ``dataset_volsurf.mat`` with ``vol.outidx``, ``vol.space``,
``vol.subIDs``, and ``vol/<run>.mat`` holding ``gmtc``, voxels × time) or a list of 4-D NIfTI
runs in MNI space with a mask. For each subject every seed's map is computed in one pass as
a matrix product of standardised series (Pearson r), averaged over the subject's runs, then
Fisher z-transformed; the group AvgR, AvgRFz, VarR and one-sample T maps (Lead-DBS's outputs)
are accumulated subject by subject in float32 work arrays, so memory stays bounded by one
subject plus the seed maps. The subject loop runs on Dask (threads, or a distributed cluster).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
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
def _loadmat(path: Path, variables=None) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(path, squeeze_me=True, struct_as_record=False, variable_names=variables)
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        return _loadmat_h5(path, variables)
    except (ValueError, TypeError, OSError) as exc:
        raise ConnectomeError(f"{path}: not a readable MATLAB file ({exc})") from None


def _loadmat_h5(path: Path, variables) -> dict:
    try:
        import h5py
    except ModuleNotFoundError:
        raise ConnectomeError(f"{path} is a MATLAB v7.3 (HDF5) file: pip install h5py to read it") from None
    with h5py.File(path, "r") as fh:
        out = {}
        for name in variables or fh.keys():
            if name not in fh:
                continue
            # HDF5 stores MATLAB arrays transposed (column-major)
            out[name] = np.asarray(fh[name]).T
        return out


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
        out = []
        for name in self._runs[subject]:
            path = self.folder / "vol" / name
            if path.suffix != ".mat":
                path = path.with_name(path.name + ".mat") if not path.is_file() else path
            if not path.is_file():
                raise ConnectomeError(f"{path}: run file of subject {subject} is missing")
            data = _loadmat(path, ["gmtc"])
            if "gmtc" not in data:
                raise ConnectomeError(f"{path}: no 'gmtc' variable")
            gmtc = np.asarray(data["gmtc"], dtype=np.float32)
            if gmtc.ndim != 2 or gmtc.shape[0] != self.n_voxels:
                raise TimeSeriesError(f"{path}: gmtc has shape {gmtc.shape}, expected ({self.n_voxels}, time)")
            out.append(np.ascontiguousarray(gmtc.T))
        return out


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
def _prepare_inplace(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre the columns of (time, n) float32 in place; return their norms and a bad-column mask.

    Two passes over the data (mean, then centre + sum of squares by einsum); a NaN anywhere in a
    column shows up in its mean, so no separate finiteness pass is needed.
    """
    mean = x.mean(axis=0, dtype=np.float64)
    nan_cols = ~np.isfinite(mean)
    if nan_cols.any():
        x[:, nan_cols] = 0.0
        mean[nan_cols] = 0.0
    x -= mean.astype(np.float32)
    norm = np.sqrt(np.einsum("ij,ij->j", x, x, dtype=np.float32).astype(np.float64))
    bad = nan_cols | ~np.isfinite(norm) | (norm <= 1e-30)
    norm[bad] = np.inf  # r = 0 there, then masked
    return norm, bad


def _subject_partial(source: VoxelConnectome, subject: str, seed_sets: list[np.ndarray]) -> dict:
    """One subject's contribution: r, r², Fisher z and z² sums per seed × voxel, and validity counts."""
    r_sum = None
    n_runs = 0
    bad_voxels = 0
    n_seeds = len(seed_sets)
    for run in source.runs(subject):
        if run.shape[0] < _MIN_TIMEPOINTS:
            raise TimeSeriesError(f"subject {subject}: a run has {run.shape[0]} time points "
                                  f"(at least {_MIN_TIMEPOINTS} needed)")
        run = np.asarray(run, dtype=np.float32)
        norm, bad = _prepare_inplace(run)
        # seed series = mean of the seed voxels' raw (centred) series, as in Lead-DBS
        seeds = np.zeros((run.shape[0], n_seeds), dtype=np.float32)
        for s, idx in enumerate(seed_sets):
            good = idx[~bad[idx]]
            if good.size:
                seeds[:, s] = run[:, good].mean(axis=1)
        seed_norm, seed_bad = _prepare_inplace(seeds)
        seeds /= seed_norm.astype(np.float32)
        # the one GEMM per run; dividing the small (seeds, voxels) result by the voxel norms
        # spares a read-write pass over the big series
        r = seeds.T @ run
        r /= norm.astype(np.float32)
        r[:, bad] = np.nan
        r[seed_bad, :] = np.nan
        if r_sum is None:
            r_sum = r
        else:
            r_sum += r
        n_runs += 1
        bad_voxels = max(bad_voxels, int(bad.sum()))
    if n_runs > 1:
        r_sum /= n_runs
    valid = np.isfinite(r_sum)
    np.nan_to_num(r_sum, copy=False)
    z = np.arctanh(np.clip(r_sum, -_R_CLIP, _R_CLIP))  # float32: the slow transcendental at half width
    return {"r": r_sum, "z": z, "valid": valid, "log": (subject, n_runs, bad_voxels)}


class _Accumulator:
    """Running float64 sums of r, r², z, z² and valid counts; fed one subject at a time."""

    def __init__(self, n_seeds: int, n_voxels: int):
        shape = (n_seeds, n_voxels)
        self.r, self.r2, self.z, self.z2 = (np.zeros(shape) for _ in range(4))
        self.n = np.zeros(shape, dtype=np.int32)
        self.log: list[tuple] = []

    def add(self, part: dict) -> None:
        r, z = part["r"], part["z"]
        self.r += r
        self.r2 += np.square(r, dtype=np.float64)
        self.z += z
        self.z2 += np.square(z, dtype=np.float64)
        self.n += part["valid"]
        self.log.append(part["log"])


def _run_local(source, names, seed_sets, acc: _Accumulator, scheduler: str, n_workers: int | None) -> None:
    import dask

    batch = 1 if scheduler == "synchronous" else (n_workers or os.cpu_count() or 1)
    for start in range(0, len(names), batch):
        tasks = [dask.delayed(_subject_partial)(source, s, seed_sets) for s in names[start:start + batch]]
        # one batch of subjects in flight: memory stays bounded whatever the number of subjects
        for part in dask.compute(*tasks, scheduler=scheduler, num_workers=batch):
            acc.add(part)


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
            acc.add(future.result())
            future.release()
            if queue:
                done.add(client.submit(_subject_partial, source_f, queue.pop(0), seeds_f, pure=False))


@dataclass
class VoxelMaps:
    """Group seed maps (Lead-DBS outputs): AvgR, AvgRFz, VarR and one-sample T on Fisher z."""

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
        from neuromodmap._utils import atomic_write
        from neuromodmap.connectome._report import save_nifti

        out = Path(out_dir)
        files = []
        for s, seed_id in enumerate(self.seeds["id"].astype(str)):
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in seed_id)
            for measure, values in (("AvgR", self.avg_r), ("AvgRFz", self.avg_rfz), ("VarR", self.var_r),
                                    ("T", self.t)):
                img = self.source.to_image(np.nan_to_num(values[s]))
                files.append(save_nifti(img, out / f"{safe}_conn-{self.source.name}_desc-{measure}_funcmap.nii.gz"))
        with atomic_write(out / "seeds.csv", "w", encoding="utf-8", newline="") as fh:
            self.seeds.to_csv(fh, index=False)
        with atomic_write(out / "subjects.csv", "w", encoding="utf-8", newline="") as fh:
            self.subjects.to_csv(fh, index=False)
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
        ``None`` or ``"threads"`` for local threads, ``"synchronous"`` for a plain loop, or the
        address of a ``dask.distributed`` scheduler (``"tcp://host:8786"``).
    n_workers : int, optional
        Local threads (default: Dask's default).

    Returns
    -------
    VoxelMaps
    """

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
    if scheduler and "://" in scheduler:
        _run_distributed(source, names, seed_sets, acc, scheduler)
    else:
        _run_local(source, names, seed_sets, acc, scheduler or "threads", n_workers)
    n = acc.n.astype(np.float64)
    # in place on the accumulators: the group maps cost no second set of seed x voxel arrays
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_r = np.divide(acc.r, n, out=acc.r)
        avg_z = np.divide(acc.z, n, out=acc.z)
        var_r = acc.r2
        var_r -= n * np.square(avg_r)
        var_r /= n - 1
        var_z = acc.z2
        var_z -= n * np.square(avg_z)
        var_z /= n * (n - 1)  # the squared standard error of the mean Fisher z
        t = np.divide(avg_z, np.sqrt(var_z, out=var_z), out=var_z)
    for arr in (avg_r, avg_z):
        arr[n == 0] = np.nan
    for arr in (var_r, t):
        arr[n < 2] = np.nan
    if np.all(acc.n == 0):
        raise TimeSeriesError(f"{source.name}: no valid time series for any seed (all NaN or zero variance)")
    order = {name: i for i, name in enumerate(names)}  # completion order differs on a cluster
    log = pd.DataFrame(sorted(acc.log, key=lambda row: order[row[0]]), columns=["subject", "n_runs", "invalid_voxels"])
    return VoxelMaps(source=source, seeds=table, avg_r=avg_r.astype(np.float32), avg_rfz=avg_z.astype(np.float32),
                     var_r=var_r.astype(np.float32), t=t.astype(np.float32), n_subjects=acc.n, subjects=log,
                     provenance=source.provenance)
