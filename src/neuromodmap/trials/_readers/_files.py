"""Byte-level access to trial files: encodings, line splitting, gzip and ZIP (with salvage)."""

from __future__ import annotations

import codecs
import mmap
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from neuromodmap.trials._readers._common import MAX_RECORD_BYTES

__all__ = ["sniff_encoding", "iter_lines", "iter_zip_members", "ZipMemberError", "CHUNK"]

CHUNK = 1 << 20


class ZipMemberError(Exception):
    """A ZIP member that could not be read (corrupt, oversize, truncated)."""


def sniff_encoding(head: bytes) -> tuple[str, int]:
    """Return (encoding, BOM length) from a byte-order mark or the NUL pattern of UTF-16."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    sample = head[:200]
    if len(sample) >= 4:
        if sample[1::2].count(0) > len(sample) // 4 and sample[0::2].count(0) == 0:
            return "utf-16-le", 0
        if sample[0::2].count(0) > len(sample) // 4 and sample[1::2].count(0) == 0:
            return "utf-16-be", 0
    return "utf-8", 0


class _Oversize:
    """Marker yielded in place of a line longer than the record limit."""

    def __init__(self, size: int):
        self.size = size


class Foreign:
    """A line of another process's block, handed on as read (bytes, or text for multi-byte
    encodings, or an :class:`_Oversize` marker)."""

    __slots__ = ("line",)

    def __init__(self, line):
        self.line = line


def _byte_lines(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes | _Oversize]]:
    """Split a byte stream into numbered lines without ever holding an oversize line."""
    buf = b""
    lineno = 0
    skipping = 0  # bytes of an oversize line dropped so far
    for chunk in chunks:
        if skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                skipping += len(chunk)
                continue
            lineno += 1
            yield lineno, _Oversize(skipping + nl)
            skipping = 0
            chunk = chunk[nl + 1 :]
        buf += chunk
        parts = buf.split(b"\n")
        buf = parts.pop()
        for part in parts:
            lineno += 1
            yield lineno, (part if len(part) <= MAX_RECORD_BYTES else _Oversize(len(part)))
        if len(buf) > MAX_RECORD_BYTES:
            skipping = len(buf)
            buf = b""
    if skipping:
        lineno += 1
        yield lineno, _Oversize(skipping)
    elif buf:
        lineno += 1
        yield lineno, buf


def iter_lines(
    chunks: Iterator[bytes], encoding: str, keep: Callable[[int], bool] | None = None, raw: bool = False
) -> Iterator[tuple[int, str | _Oversize | UnicodeDecodeError | Foreign | None]]:
    """Numbered text lines; a line that is not valid in ``encoding`` comes back as the error.

    With ``keep``, a line for which ``keep(lineno)`` is false comes back as None, undecoded
    (another process reads it), or with ``raw`` as :class:`Foreign`.
    """
    if encoding.replace("_", "-").lower() in {"utf-8", "utf8", "ascii"}:
        first = True
        for lineno, line in _byte_lines(chunks):
            if keep is not None and not keep(lineno):
                first = False
                yield lineno, (Foreign(line) if raw else None)
                continue
            if isinstance(line, _Oversize):
                yield lineno, line
                continue
            if first:
                first = False
                if line.startswith(codecs.BOM_UTF8):
                    line = line[3:]
            try:
                yield lineno, line.decode("utf-8")
            except UnicodeDecodeError as err:
                yield lineno, err
        return
    # multi-byte encodings (UTF-16) cannot be split on b"\n": decode the stream first
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    text = ""
    lineno = 0
    for chunk in chunks:
        try:
            text += decoder.decode(chunk)
        except UnicodeDecodeError as err:
            yield lineno + 1, err
            return
        lines = text.split("\n")
        text = lines.pop()
        for line in lines:
            lineno += 1
            if lineno == 1:
                line = line.lstrip("\ufeff")
            if keep is not None and not keep(lineno):
                yield lineno, (Foreign(line) if raw else None)
                continue
            yield lineno, line
    text += decoder.decode(b"", final=True)
    if text:
        lineno += 1
        if keep is not None and not keep(lineno):
            yield lineno, (Foreign(text) if raw else None)
        else:
            yield lineno, text


def file_chunks(fh: BinaryIO) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK):
        yield chunk


def gzip_chunks(fh: BinaryIO) -> Iterator[bytes]:
    """Decompress a (possibly multi-member) gzip stream; raises EOFError when truncated."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fed = False
    while chunk := fh.read(CHUNK):
        while chunk:
            if not fed and not chunk.strip(b"\x00"):
                break  # zero padding after the last member, as gzip(1) allows
            fed = True
            out = d.decompress(chunk)
            if out:
                yield out
            if d.eof:
                chunk = d.unused_data
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                fed = False
            else:
                chunk = b""
    if fed and not d.eof:
        raise EOFError("compressed stream ends before its end-of-stream marker (truncated gzip)")


def iter_zip_members(path: Path) -> Iterator[tuple[str, bytes | ZipMemberError]]:
    """Members of a ZIP file as (name, content); an unreadable member as (name, error).

    A ZIP cut short (no central directory) is read by walking its local file headers, so the
    members before the cut are still imported.
    """
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        yield from _salvage_zip(path)
        return
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            if info.file_size > MAX_RECORD_BYTES:
                yield info.filename, ZipMemberError(
                    f"member is {info.file_size:,} bytes uncompressed (limit {MAX_RECORD_BYTES:,})"
                )
                continue
            try:
                with zf.open(info) as fh:
                    data = fh.read(MAX_RECORD_BYTES + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as err:
                yield info.filename, ZipMemberError(f"corrupt member: {err}")
                continue
            if len(data) > MAX_RECORD_BYTES:
                yield info.filename, ZipMemberError("member larger than its header says (ZIP bomb?)")
                continue
            yield info.filename, data


_LOCAL = struct.Struct("<4sHHHHHIIIHH")


def _salvage_zip(path: Path) -> Iterator[tuple[str, bytes | ZipMemberError]]:
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size < _LOCAL.size:
            yield "(archive)", ZipMemberError("not a readable ZIP file (too short)")
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = 0
            found = False
            while pos + _LOCAL.size <= size:
                sig = mm[pos : pos + 4]
                if sig in (b"PK\x01\x02", b"PK\x05\x06"):  # reached the central directory
                    return
                if sig != b"PK\x03\x04":
                    yield "(archive)", ZipMemberError(
                        "truncated or corrupt ZIP: unreadable data after the last whole member"
                        if found
                        else "not a readable ZIP file"
                    )
                    return
                found = True
                (_, _, flags, method, _, _, _, csize, usize, nlen, elen) = _LOCAL.unpack_from(mm, pos)
                name = bytes(mm[pos + 30 : pos + 30 + nlen]).decode("utf-8", "replace")
                start = pos + 30 + nlen + elen
                if method not in (0, 8):
                    yield name, ZipMemberError(f"unsupported compression method {method}")
                    return
                if method == 0:
                    if flags & 0x08 or start + csize > size:
                        yield name, ZipMemberError("member cut short (truncated ZIP)")
                        return
                    data, end = bytes(mm[start : start + csize]), start + csize
                else:
                    d = zlib.decompressobj(-zlib.MAX_WBITS)
                    try:
                        data = d.decompress(mm[start : min(size, start + (csize or size))], MAX_RECORD_BYTES + 1)
                    except zlib.error as err:
                        yield name, ZipMemberError(f"corrupt member: {err}")
                        return
                    if len(data) > MAX_RECORD_BYTES:
                        yield name, ZipMemberError("member too large (ZIP bomb?)")
                        return
                    if not d.eof:
                        yield name, ZipMemberError("member cut short (truncated ZIP)")
                        return
                    consumed = (min(size, start + (csize or size)) - start) - len(d.unused_data)
                    end = start + consumed
                if flags & 0x08:  # data descriptor: optional signature + crc + sizes
                    end += 16 if mm[end : end + 4] == b"PK\x07\x08" else 12
                if not name.endswith("/"):
                    yield name, data
                pos = end
            yield "(archive)", ZipMemberError("truncated ZIP: the archive ends after the last whole member")
