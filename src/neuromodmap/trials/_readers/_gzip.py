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

import io
import zlib
from typing import BinaryIO

__all__ = ["GzipStream", "open_gzip", "gunzip_head"]

CHUNK = 1 << 20
_WBITS = 16 + zlib.MAX_WBITS


class GzipStream(io.RawIOBase):
    """The decompressed content of the gzip file ``raw`` (a binary file object).

    ``error`` is None while the stream is sound; after a truncated or corrupt member it holds
    the reason and the stream reports end of file. ``raw.tell()`` is the compressed position
    (for progress bars).
    """

    def __init__(self, raw: BinaryIO):
        super().__init__()
        self.raw = raw
        self.error: str | None = None
        self._d = zlib.decompressobj(_WBITS)
        self._fed = False  # the current member has received input
        self._pending = b""  # compressed input not yet given to the decompressor
        self._out = b""  # decompressed bytes not yet returned
        self._done = False

    def readable(self) -> bool:
        return True

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
        except zlib.error as err:
            self.error = f"corrupt gzip data ({err})"
            self._done = True
            return
        self._pending = self._d.unconsumed_tail
        if self._d.eof:  # end of a member: another may follow
            self._pending = self._d.unused_data
            self._d = zlib.decompressobj(_WBITS)
            self._fed = False
            if self._pending and not self._pending.strip(b"\x00"):
                self._pending = b""
                self._done = True
        self._out = out


def open_gzip(raw: BinaryIO) -> io.BufferedReader:
    """A buffered reader over :class:`GzipStream` (its ``.raw`` is the stream, for ``error``)."""
    return io.BufferedReader(GzipStream(raw), buffer_size=CHUNK)


def gunzip_head(data: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes of the content of gzip data (``data`` may be a file's head).

    Raises :class:`zlib.error` when the data are not gzip or corrupt from the start.
    """
    return zlib.decompressobj(_WBITS).decompress(data, limit)
