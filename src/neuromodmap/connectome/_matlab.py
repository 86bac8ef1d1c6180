"""MATLAB files of Lead-DBS connectomes: v4-v7.2 through scipy, v7.3 (HDF5) through mat73.

Both give the same Python view: numeric arrays squeezed, strings as ``str``, structs as objects
with one attribute per field (scipy's ``struct_as_record=False``), cell arrays as 1-D object
arrays (nested cells nest).
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from neuromodmap.connectome._errors import ConnectomeError
from neuromodmap.connectome._fastread import aligned_empty, float32_empty, read_range

__all__ = ["loadmat", "read_series"]


def loadmat(path: str | Path, variables: list[str] | None = None) -> dict:
    """The variables of a MATLAB file (all of them, or only ``variables``)."""
    from scipy.io import loadmat as scipy_loadmat

    path = Path(path)
    try:
        return scipy_loadmat(path, squeeze_me=True, struct_as_record=False, variable_names=variables)
    except NotImplementedError:  # scipy's answer to a v7.3 (HDF5) file
        return _loadmat73(path, variables)
    except (ValueError, TypeError, OSError) as exc:
        raise ConnectomeError(f"{path}: not a readable MATLAB file ({exc})") from None


def _loadmat73(path: Path, variables: list[str] | None) -> dict:
    try:
        import mat73
    except ModuleNotFoundError:
        raise ConnectomeError(f"{path} is a MATLAB v7.3 (HDF5) file: pip install mat73 to read it") from None
    try:
        data = mat73.loadmat(str(path), only_include=list(variables) if variables else None, verbose=False)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ConnectomeError(f"{path}: not a readable MATLAB v7.3 file ({exc})") from None
    return {name: _as_scipy(value) for name, value in (data or {}).items()}


def _as_scipy(value):
    """mat73's dicts and lists in the shape scipy's ``squeeze_me`` / ``struct_as_record=False`` gives."""
    if isinstance(value, dict):
        return SimpleNamespace(**{key: _as_scipy(item) for key, item in value.items()})
    if isinstance(value, list):
        out = np.empty(len(value), dtype=object)
        for i, item in enumerate(value):
            out[i] = _as_scipy(item)
        return out
    return value


# ---------------------------------------------------------------------------------------------
# Big numeric matrices (time series), read without scipy / mat73
# ---------------------------------------------------------------------------------------------
# MATLAB stores a matrix column-major, so the bytes of a voxels x time matrix are those of a
# C-ordered time x voxels array: it is read straight into that array (float32 data with no
# copy at all; other types are converted slab by slab).
_MI_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
_MX_NUMERIC = set(range(6, 16))  # mxDOUBLE_CLASS .. mxUINT64_CLASS
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_SLAB = 32 << 20  # bytes per conversion slab (non-float32 storage)
_HDF5_CLASSES = {b"double", b"single", b"int8", b"uint8", b"int16", b"uint16", b"int32", b"uint32", b"int64",
                 b"uint64"}


class _Unsupported(Exception):
    """A layout this fast reader leaves to scipy (it is valid MATLAB, just rare for series)."""


def read_series(path: str | Path, variable: str, reuse: np.ndarray | None = None) -> np.ndarray:
    """The 2-D numeric MATLAB matrix ``variable`` (rows x columns) of ``path`` as a C-ordered
    float32 array of its transpose (columns x rows), e.g. a Lead-DBS ``gmtc`` (voxels x time)
    as time x voxels.

    MATLAB v5/v6/v7 files (uncompressed or zlib-compressed elements) and v7.3 (HDF5) files are
    read directly: the data of an uncompressed matrix is read from its offset in the file into
    the output array (O_DIRECT where possible, see ``_fastread``), a compressed one is inflated
    into it, an HDF5 dataset is read into it by h5py. Any other layout goes through
    :func:`loadmat`. Errors name the file.

    ``reuse``: an array returned by an earlier call that is no longer needed; the result is
    written into its memory when it is large enough (fresh pages are costly on a VM).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if hasattr(os, "posix_fadvise"):  # reading the headers must not read ahead into the data
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
            head = fh.read(128)
            size = os.fstat(fh.fileno()).st_size
            if head[:19] == b"MATLAB 7.3 MAT-file" or head[:8] == b"\x89HDF\r\n\x1a\n":
                return _read_hdf5(path, variable, reuse)
            if len(head) == 128 and head[126:128] == b"IM":  # little-endian v5 (big-endian ones: scipy)
                return _read_v5(path, fh, variable, size, reuse)
    except _Unsupported:
        pass
    except OSError as exc:
        raise ConnectomeError(f"{path}: cannot read ({exc})") from None
    data = loadmat(path, [variable])
    if variable not in data:
        raise ConnectomeError(f"{path}: no '{variable}' variable")
    try:
        value = np.asarray(data[variable], dtype=np.float32)
    except (TypeError, ValueError):
        raise ConnectomeError(f"{path}: '{variable}' is not a numeric matrix") from None
    if value.ndim != 2:
        raise ConnectomeError(f"{path}: '{variable}' has shape {value.shape}; expected a 2-D matrix")
    return np.ascontiguousarray(value.T)


def _tag(buf: bytes, pos: int) -> tuple[int, int, int, int]:
    """(type, nbytes, data position, next position) of the data element tag at ``pos``."""
    kind, nbytes = struct.unpack_from("<II", buf, pos)
    if kind >> 16:  # small data element: type and size in 4 bytes, data in the next 4
        return kind & 0xFFFF, kind >> 16, pos + 4, pos + 8
    return kind, nbytes, pos + 8, pos + 8 + nbytes + (-nbytes) % 8


def _matrix_header(buf: bytes):
    """Name, class, complex flag, dims, data type, data nbytes and data position of a miMATRIX
    element's content (``buf`` starts after the miMATRIX tag)."""
    kind, nbytes, at, pos = _tag(buf, 0)
    if kind != 6 or nbytes != 8:  # array flags: miUINT32 x 2
        raise ValueError("bad array flags")
    flags = struct.unpack_from("<I", buf, at)[0]
    kind, nbytes, at, pos = _tag(buf, pos)
    if kind != 5:  # dimensions: miINT32
        raise ValueError("bad dimensions")
    dims = struct.unpack_from(f"<{nbytes // 4}i", buf, at)
    kind, nbytes, at, pos = _tag(buf, pos)
    name = bytes(buf[at:at + nbytes]).decode("latin-1")
    if (flags & 0xFF) not in _MX_NUMERIC:
        return name, flags & 0xFF, bool(flags & 0x800), dims, None, 0, pos
    kind, nbytes, at, pos = _tag(buf, pos)
    if at == pos - 4:  # real part in a small element: a tiny matrix
        raise _Unsupported
    return name, flags & 0xFF, bool(flags & 0x800), dims, kind, nbytes, at


_MX_NAMES = {1: "a cell array", 2: "a struct", 3: "an object", 4: "a char array", 5: "a sparse matrix"}


def _check_matrix(path, variable, cls, is_complex, dims, kind, nbytes) -> tuple[np.dtype, tuple[int, int]]:
    """The storage dtype and the (columns, rows) shape of a 2-D real numeric matrix, or an error."""
    if kind is None:
        raise ConnectomeError(f"{path}: '{variable}' is {_MX_NAMES.get(cls, f'of MATLAB class {cls}')}, not a "
                              "numeric matrix")
    if is_complex:
        raise ConnectomeError(f"{path}: '{variable}' is complex; expected a real matrix")
    if len(dims) != 2:
        raise ConnectomeError(f"{path}: '{variable}' has {len(dims)} dimensions {tuple(dims)}; expected a 2-D matrix")
    if kind not in _MI_DTYPES:
        raise ConnectomeError(f"{path}: '{variable}' has an unknown MATLAB data type {kind}")
    dtype = np.dtype("<" + _MI_DTYPES[kind])
    if nbytes != dims[0] * dims[1] * dtype.itemsize:
        raise ConnectomeError(f"{path}: '{variable}' holds {nbytes} bytes for a {dims[0]} x {dims[1]} matrix of "
                              f"{dtype} (corrupt file)")
    return dtype, (dims[1], dims[0])


def _read_v5(path: Path, fh, variable: str, size: int, reuse) -> np.ndarray:
    pos = 128
    while pos + 8 <= size:
        fh.seek(pos)
        kind, nbytes = struct.unpack("<II", fh.read(8))
        if kind >> 16:
            pos += 8
            continue
        end = pos + 8 + nbytes
        if end > size:
            raise ConnectomeError(f"{path}: truncated: a variable needs {end:,} bytes, the file has {size:,}")
        if kind == _MI_MATRIX:
            try:
                header = _matrix_header(fh.read(min(nbytes, 4096)))
            except (struct.error, ValueError):
                raise ConnectomeError(f"{path}: a variable's header is unreadable (corrupt or truncated file)") \
                    from None
            if header[0] == variable:
                dtype, shape = _check_matrix(path, variable, *header[1:6])
                offset = pos + 8 + header[6]
                if offset + header[5] > size:
                    raise ConnectomeError(f"{path}: truncated: '{variable}' needs {offset + header[5]:,} bytes, the "
                                          f"file has {size:,}")
                return _read_raw(path, offset, dtype, shape, reuse)
            end += (-nbytes) % 8
        elif kind == _MI_COMPRESSED:
            out = _inflate(path, fh, pos + 8, nbytes, variable, reuse)
            if out is not None:
                return out
        pos = end
    raise ConnectomeError(f"{path}: no '{variable}' variable")


def _read_raw(path: Path, offset: int, dtype: np.dtype, shape: tuple[int, int], reuse) -> np.ndarray:
    count = shape[0] * shape[1]
    if dtype == np.dtype("<f4") and sys.byteorder == "little":
        buf = aligned_empty(count * 4, offset, reuse)
        if read_range(path, offset, buf) != buf.size:
            raise ConnectomeError(f"{path}: truncated while reading the series")
        return buf.view(np.float32).reshape(shape)
    out = float32_empty(shape, reuse)
    flat = out.reshape(-1)
    step = max(1, _SLAB // dtype.itemsize)
    scratch = None
    for e0 in range(0, count, step):
        e1 = min(count, e0 + step)
        buf = scratch = aligned_empty((e1 - e0) * dtype.itemsize, offset + e0 * dtype.itemsize, scratch)
        if read_range(path, offset + e0 * dtype.itemsize, buf) != buf.size:
            raise ConnectomeError(f"{path}: truncated while reading the series")
        flat[e0:e1] = buf.view(dtype)
    return out


def _inflate(path: Path, fh, start: int, nbytes: int, variable: str, reuse) -> np.ndarray | None:
    """The matrix of a zlib-compressed element (MATLAB v7's default), if it is ``variable``."""
    import zlib

    inflater = zlib.decompressobj()
    fh.seek(start)
    left = nbytes
    head = b""
    try:
        while len(head) < 4096 and left:  # enough to hold the tag, flags, dims and name
            chunk = fh.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)
            head += inflater.decompress(chunk, 4096 - len(head))
            if inflater.unconsumed_tail:
                fh.seek(-len(inflater.unconsumed_tail), os.SEEK_CUR)
                left += len(inflater.unconsumed_tail)
        kind, _ = struct.unpack_from("<II", head, 0)
        header = _matrix_header(head[8:]) if kind == _MI_MATRIX else None
    except (zlib.error, struct.error, ValueError):
        raise ConnectomeError(f"{path}: a compressed variable is unreadable (corrupt or truncated file)") from None
    if header is None or header[0] != variable:
        return None
    dtype, shape = _check_matrix(path, variable, *header[1:6])
    out = float32_empty(shape, reuse)
    native = dtype == np.dtype(np.float32)
    sink = out.reshape(-1).view(np.uint8) if native else bytearray()
    flat = out.reshape(-1)
    filled = 0  # bytes (native) or elements (converted) written
    total = header[5] if native else shape[0] * shape[1]

    def put(data) -> None:
        nonlocal filled, sink
        if native:
            n = min(len(data), total - filled)
            sink[filled:filled + n] = np.frombuffer(data, dtype=np.uint8, count=n)
            filled += n
        else:
            sink += data
            k = min(len(sink) // dtype.itemsize, total - filled)
            flat[filled:filled + k] = np.frombuffer(sink, dtype=dtype, count=k)
            filled += k
            del sink[:k * dtype.itemsize]

    if hasattr(os, "posix_fadvise"):  # the rest is read in order: read ahead while inflating
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
    try:
        put(head[8 + header[6]:])
        while left and filled < total:
            chunk = fh.read(min(left, 4 << 20))
            if not chunk:
                break
            left -= len(chunk)
            put(inflater.decompress(chunk))
        if filled < total:
            put(inflater.flush())
    except zlib.error as exc:
        raise ConnectomeError(f"{path}: '{variable}' does not inflate ({exc}; corrupt file)") from None
    if filled < total:
        raise ConnectomeError(f"{path}: truncated: '{variable}' ends after {filled:,} of {total:,} "
                              f"{'bytes' if native else 'values'}")
    return out


def _read_hdf5(path: Path, variable: str, reuse) -> np.ndarray:
    """A MATLAB v7.3 matrix: HDF5 stores it with the dimensions reversed (time x voxels for a
    voxels x time ``gmtc``), i.e. already in the C order wanted here."""
    try:
        import h5py
    except ModuleNotFoundError:
        raise ConnectomeError(f"{path} is a MATLAB v7.3 (HDF5) file: pip install mat73 to read it") from None
    try:
        with h5py.File(path, "r") as f:
            if variable not in f:
                raise ConnectomeError(f"{path}: no '{variable}' variable")
            ds = f[variable]
            cls = ds.attrs.get("MATLAB_class", b"") if isinstance(ds, h5py.Dataset) else b""
            cls = cls.encode() if isinstance(cls, str) else bytes(cls)
            if cls not in _HDF5_CLASSES or ds.dtype.kind not in "iuf" or ds.ndim != 2:
                raise ConnectomeError(f"{path}: '{variable}' is not a 2-D real numeric matrix (MATLAB class "
                                      f"{cls.decode(errors='replace') or 'none'})")
            offset = ds.id.get_offset()
            if offset is not None and ds.chunks is None and not ds.compression:
                if offset + ds.id.get_storage_size() > os.path.getsize(path):
                    raise ConnectomeError(f"{path}: truncated: '{variable}' lies beyond the end of the file")
                return _read_raw(path, offset, ds.dtype, ds.shape, reuse)
            out = float32_empty(ds.shape, reuse)
            ds.read_direct(out)  # HDF5 converts other types to float32 as it reads
            return out
    except ConnectomeError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ConnectomeError(f"{path}: not a readable MATLAB v7.3 file ({exc})") from None
