"""A gzip-compressed file read as a stream of its content, for readers that parse a file object
(ICTRP XML and CSV, a v2 JSON document, a legacy XML record, registry CSV exports).

Unlike :class:`gzip.GzipFile`, a truncated or corrupt stream does not raise in the middle of a
parser: the stream simply ends and :attr:`GzipStream.error` says why, so the reader keeps the
records before the cut and reports one problem ("rest of file skipped"). Memory stays bounded
whatever the compression ratio (a gzip bomb): at most ``CHUNK`` bytes are decompressed at a time.
Multi-member files (``cat a.gz b.gz``) and the zero padding ``gzip(1)`` allows after the last
member are read as ``gzip -d`` reads them.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zlib
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["GzipFile", "GzipStream", "GZIP_ERRORS", "open_gzip", "gunzip_head", "gzip_damage", "iter_gzip"]

CHUNK = 1 << 20
_WBITS = 16 + zlib.MAX_WBITS

# Intel's ISA-L (python-isal) inflates the same data in about half zlib's time (the 101k corpus:
# 0.93 -> 0.41 CPU s; the AllPublicXML tar read 0.36 -> 0.21 s); zlib where it is not installed
try:
    from isal import igzip as _igzip
    from isal import isal_zlib as _isal_zlib

    _decompressobj = _isal_zlib.decompressobj
    #: gzip.GzipFile's equivalent (same exceptions, plus :data:`GZIP_ERRORS` for corrupt data)
    GzipFile = _igzip.IGzipFile
    #: what a decompressor raises on corrupt data
    GZIP_ERRORS: tuple[type[Exception], ...] = (zlib.error, _isal_zlib.error)
except ImportError:  # pragma: no cover - isal is a dependency; zlib keeps working without it
    _decompressobj = zlib.decompressobj
    GzipFile = gzip.GzipFile
    GZIP_ERRORS = (zlib.error,)


class GzipStream(io.RawIOBase):
    """The decompressed content of the gzip file ``raw`` (a binary file object).

    ``error`` is None while the stream is sound; after a truncated or corrupt member it holds
    the reason and the stream reports end of file; ``corrupt`` then tells damaged data (a
    decoding error, a failed CRC or length check) from data that merely stop (truncated).
    ``raw.tell()`` is the compressed position (for progress bars).
    """

    def __init__(self, raw: BinaryIO, *, close_raw: bool = False):
        super().__init__()
        self.raw = raw
        self._close_raw = close_raw
        self.error: str | None = None
        self.corrupt = False
        self._d = _decompressobj(_WBITS)
        self._fed = False  # the current member has received input
        self._pending = b""  # compressed input not yet given to the decompressor
        self._out = b""  # decompressed bytes not yet returned
        self._done = False

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        super().close()
        if self._close_raw:
            self.raw.close()

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        want = len(view)
        if want == 0:
            return 0
        while not self._out and not self._done:
            self._step(max(want, 64 * 1024))
        n = min(want, len(self._out))
        view[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _step(self, max_out: int) -> None:
        if not self._pending:
            chunk = self.raw.read(CHUNK)
            if not chunk:
                if self._fed and not self._d.eof:
                    # ISA-L may hold decoded bytes back once all input is taken: they come first
                    with contextlib.suppress(*GZIP_ERRORS):
                        if out := self._d.decompress(b"", max_out):
                            self._out = out
                            return
                    self.error = "the gzip data end before their end-of-stream marker (truncated gzip file)"
                self._done = True
                return
            if not self._fed and not chunk.strip(b"\x00"):
                self._done = True  # zero padding after the last member, as gzip(1) allows
                return
            self._pending = chunk
        self._fed = True
        try:
            out = self._d.decompress(self._pending, max_out)
        except GZIP_ERRORS as err:
            self.error = f"corrupt gzip data ({err})"
            self.corrupt = True
            self._done = True
            return
        self._pending = self._d.unconsumed_tail
        if self._d.eof:  # end of a member: another may follow
            self._pending = self._d.unused_data
            self._d = _decompressobj(_WBITS)
            self._fed = False
            if self._pending and not self._pending.strip(b"\x00"):
                self._pending = b""
                self._done = True
        self._out = out


def open_gzip(raw: BinaryIO, *, close_raw: bool = False) -> io.BufferedReader:
    """A buffered reader over :class:`GzipStream` (its ``.raw`` is the stream, for ``error``);
    ``close_raw``: closing it closes ``raw`` too."""
    return io.BufferedReader(GzipStream(raw, close_raw=close_raw), buffer_size=CHUNK)


def gunzip_head(data: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes of the content of gzip data (``data`` may be a file's head).

    Raises :class:`zlib.error` when the data are not gzip or corrupt from the start.
    """
    return zlib.decompressobj(_WBITS).decompress(data, limit)


def iter_gzip(raw: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    """The decompressed content of the gzip file ``raw`` in chunks of at most ``size`` bytes.

    Raises :class:`EOFError` when the data are cut short and :class:`zlib.error` when they are
    corrupt, after the chunks before that point.
    """
    stream = GzipStream(raw)
    while chunk := stream.read(size):
        yield chunk
    if stream.error:
        raise (zlib.error if stream.corrupt else EOFError)(stream.error)


def gzip_damage(path) -> str | None:
    """Why the gzip file ``path`` is corrupt (damaged bytes), or None when it is sound or only
    cut short.

    gzip finds most damage only at the end of a member, when its CRC does not match: by then
    the damaged bytes have been decoded into plausible but wrong text (64 flipped bytes in the
    middle of a 1,135-row ICTRP CSV decoded into 10,110 rows before the check failed). So a
    reader checks the whole file first (one decompression pass, bounded memory) and reads
    nothing of a damaged one: where the damage starts cannot be told. A file that is only cut
    short is sound up to the cut.
    """
    with open(path, "rb") as fh:
        stream = GzipStream(fh)
        while stream.read(CHUNK):
            pass
    return stream.error if stream.corrupt else None
