"""Reading a byte range of a big file into memory at the disk's sequential speed (private).

A normative connectome is hundreds of GB read once per analysis, so pages that are not already
cached are read with ``O_DIRECT`` (Linux): large requests go straight from the disk into the
destination array, with no copy through the page cache (whose memcpy costs about a core at
disk speed, on a machine whose cores are busy with the GEMMs) and no eviction of everything
else cached. Pages already in the page cache (``mincore``) are read normally, since memory is
faster than the disk. Where ``O_DIRECT`` is missing or refused (macOS, Windows, tmpfs, some
network file systems), plain large sequential reads are used.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

__all__ = ["aligned_empty", "float32_empty", "read_range", "ALIGN"]

ALIGN = 4096  # O_DIRECT alignment of file offsets, lengths and memory (a multiple of any block size)
_CHUNK = 64 << 20  # bytes per read request: large enough for the disk queue, small enough to interleave
_O_DIRECT = getattr(os, "O_DIRECT", 0)
USE_DIRECT = bool(_O_DIRECT)  # module switch (benchmarks compare both paths)


def aligned_empty(nbytes: int, offset: int, reuse: np.ndarray | None = None) -> np.ndarray:
    """A uint8 buffer of ``nbytes`` whose address is congruent to ``offset`` modulo ``ALIGN``,
    with room before and after to reach the enclosing ``ALIGN`` boundaries (for O_DIRECT).

    ``reuse``: an array (or a view of one) made by this function earlier and no longer needed;
    its memory is used again when it is large enough. On virtual machines, the first touch of
    fresh pages can cost more CPU than reading them from the disk (about 1-3 CPU seconds per GB
    on this project's development VM), so the series of a subject go into the buffers of the
    subject before last.
    """
    raw = reuse
    while isinstance(raw, np.ndarray) and isinstance(raw.base, np.ndarray):
        raw = raw.base
    if not (isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 1 and raw.flags.c_contiguous
            and raw.flags.writeable and raw.size >= nbytes + 4 * ALIGN):
        raw = np.empty(nbytes + 4 * ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGN + ALIGN + offset % ALIGN
    return raw[start:start + nbytes]


def float32_empty(shape: tuple[int, ...], reuse: np.ndarray | None = None) -> np.ndarray:
    """An uninitialised float32 array, in the memory of ``reuse`` if large enough (see aligned_empty)."""
    count = int(np.prod(shape))
    return aligned_empty(4 * count, 0, reuse).view(np.float32).reshape(shape)


_libc = None


def _resident(fd: int, offset: int, length: int) -> float | None:
    """Fraction of the pages of ``[offset, offset + length)`` in the page cache (None: unknown)."""
    global _libc
    try:
        import ctypes

        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.mmap.restype = ctypes.c_void_p
            _libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_long]
            _libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            _libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        page = mmap.PAGESIZE
        start = offset // page * page
        length += offset - start
        addr = _libc.mmap(None, length, mmap.PROT_READ, mmap.MAP_SHARED, fd, start)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            return None
        try:
            vec = np.zeros(-(-length // page), dtype=np.uint8)
            if _libc.mincore(addr, length, vec.ctypes.data) != 0:
                return None
        finally:
            _libc.munmap(addr, length)
        return float(np.count_nonzero(vec & 1)) / vec.size
    except (OSError, AttributeError, ValueError):
        return None


def _pread_all(fd: int, buf: memoryview, offset: int) -> int:
    """Read into ``buf`` from ``offset`` until it is full or the file ends; bytes read."""
    done = 0
    while done < len(buf):
        n = os.preadv(fd, [buf[done:]], offset + done)
        if n <= 0:
            break
        done += n
    return done


def read_range(path, offset: int, out: np.ndarray) -> int:
    """Fill the uint8 array ``out`` with the bytes of ``path`` from ``offset``; returns the
    bytes read (fewer than ``out.size`` when the file ends first).

    ``out`` should come from :func:`aligned_empty` (with the same ``offset``) so that O_DIRECT can
    read into it in place; any other buffer is filled with plain reads.
    """
    nbytes = out.size
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        if not hasattr(os, "preadv"):  # Windows
            with open(fd, "rb", buffering=0, closefd=False) as fh:
                fh.seek(offset)
                return fh.readinto(memoryview(out)) or 0
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, offset, nbytes, os.POSIX_FADV_SEQUENTIAL)
        lead = offset % ALIGN
        span = _aligned_span(out, lead) if USE_DIRECT and nbytes >= ALIGN else None
        dfd = None
        if span is not None:
            try:
                dfd = os.open(path, os.O_RDONLY | _O_DIRECT)
            except OSError:
                span = None
        try:
            # window k: bytes [k C, (k + 1) C) of the aligned span = out[k C - lead, (k + 1) C - lead)
            flat = memoryview(out)
            filled = 0
            for w0 in range(0, lead + nbytes, _CHUNK):
                w1 = min(w0 + _CHUNK, lead + nbytes)
                o0, o1 = max(0, w0 - lead), w1 - lead
                if span is not None and (_resident(fd, offset + o0, o1 - o0) or 0.0) < 0.5:
                    try:
                        got = _pread_all(dfd, span[w0:min(len(span), w0 + _CHUNK)], offset - lead + w0)
                        got = max(0, min(got + w0 - lead, o1) - o0)
                    except OSError:  # O_DIRECT refused here: plain reads from now on
                        span = None
                        got = _pread_all(fd, flat[o0:o1], offset + o0)
                else:
                    got = _pread_all(fd, flat[o0:o1], offset + o0)
                filled += got
                if got < o1 - o0:
                    break
            return filled
        finally:
            if dfd is not None:
                os.close(dfd)
    finally:
        os.close(fd)


def _aligned_span(out: np.ndarray, lead: int) -> memoryview | None:
    """``out`` extended back to the ALIGN boundary ``lead`` bytes before it and forward to the next
    boundary after it, if that memory belongs to the same buffer and is aligned (else None)."""
    base = out
    while isinstance(base.base, np.ndarray):
        base = base.base
    if base.dtype != np.uint8 or base.ndim != 1 or not base.flags.c_contiguous or not out.flags.c_contiguous:
        return None
    first = out.ctypes.data - lead - base.ctypes.data
    length = lead + out.size + (-(lead + out.size)) % ALIGN
    if (out.ctypes.data - lead) % ALIGN or first < 0 or first + length > base.size:
        return None
    return memoryview(base[first:first + length])
