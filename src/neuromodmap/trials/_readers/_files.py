"""Byte-level access to trial files: encodings, line splitting, gzip, ZIP (with salvage) and tar."""

from __future__ import annotations

import bz2
import codecs
import lzma
import mmap
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from neuromodmap.trials._readers._common import MAX_RECORD_BYTES
from neuromodmap.trials._readers._gzip import GZIP_ERRORS, GzipFile, iter_gzip

__all__ = [
    "sniff_encoding", "iter_lines", "iter_zip_members", "TarMembers", "MemberError",
    "unsafe_member_name", "member_label", "is_tar_header", "tar_compression", "CHUNK",
]

CHUNK = 1 << 20


class MemberError(Exception):
    """An archive member that could not be read (corrupt, oversize, truncated, refused name)."""


def member_label(name: str) -> str:
    """A member name fit for a one-line message (control characters escaped)."""
    if name.isprintable():
        return name
    return repr(name)[1:-1]


def unsafe_member_name(name: str) -> str | None:
    """Why an archive member's name is refused, or None when it is an ordinary relative path.

    Nothing is ever extracted to disk, but a name that climbs out of the archive's folder
    (``../x``), is absolute (``/etc/x``, ``C:\\x``) or holds control characters is the mark of a
    hostile or broken archive: such a member is reported and not read.
    """
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":" and text[0].isalpha()):
        return "unsafe member name (an absolute path); not read"
    if ".." in text and ".." in PurePosixPath(text).parts:
        return "unsafe member name (a '..' component: path traversal); not read"
    if not name.isprintable():
        return "unsafe member name (control characters); not read"
    return None


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
    """Decompress a (possibly multi-member) gzip stream, at most ``CHUNK`` bytes at a time (a
    gzip bomb costs no memory); raises EOFError when truncated, zlib.error when corrupt."""
    yield from iter_gzip(fh, CHUNK)


def iter_zip_members(path: Path) -> Iterator[tuple[str, bytes | MemberError]]:
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
            if (why := unsafe_member_name(info.filename)) is not None:
                yield info.filename, MemberError(why)
                continue
            if info.file_size > MAX_RECORD_BYTES:
                yield info.filename, MemberError(
                    f"member is {info.file_size:,} bytes uncompressed (limit {MAX_RECORD_BYTES:,})"
                )
                continue
            try:
                with zf.open(info) as fh:
                    data = fh.read(MAX_RECORD_BYTES + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as err:
                yield info.filename, MemberError(f"corrupt member: {err}")
                continue
            if len(data) > MAX_RECORD_BYTES:
                yield info.filename, MemberError("member larger than its header says (ZIP bomb?)")
                continue
            yield info.filename, data


_LOCAL = struct.Struct("<4sHHHHHIIIHH")


def _salvage_zip(path: Path) -> Iterator[tuple[str, bytes | MemberError]]:
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size < _LOCAL.size:
            yield "(archive)", MemberError("not a readable ZIP file (too short)")
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = 0
            found = False
            while pos + _LOCAL.size <= size:
                sig = mm[pos : pos + 4]
                if sig in (b"PK\x01\x02", b"PK\x05\x06"):  # reached the central directory
                    return
                if sig != b"PK\x03\x04":
                    yield "(archive)", MemberError(
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
                    yield name, MemberError(f"unsupported compression method {method}")
                    return
                if method == 0:
                    if flags & 0x08 or start + csize > size:
                        yield name, MemberError("member cut short (truncated ZIP)")
                        return
                    data, end = bytes(mm[start : start + csize]), start + csize
                else:
                    d = zlib.decompressobj(-zlib.MAX_WBITS)
                    try:
                        data = d.decompress(mm[start : min(size, start + (csize or size))], MAX_RECORD_BYTES + 1)
                    except zlib.error as err:
                        yield name, MemberError(f"corrupt member: {err}")
                        return
                    if len(data) > MAX_RECORD_BYTES:
                        yield name, MemberError("member too large (ZIP bomb?)")
                        return
                    if not d.eof:
                        yield name, MemberError("member cut short (truncated ZIP)")
                        return
                    consumed = (min(size, start + (csize or size)) - start) - len(d.unused_data)
                    end = start + consumed
                if flags & 0x08:  # data descriptor: optional signature + crc + sizes
                    end += 16 if mm[end : end + 4] == b"PK\x07\x08" else 12
                if not name.endswith("/"):
                    why = unsafe_member_name(name)
                    yield name, (MemberError(why) if why is not None else data)
                pos = end
            yield "(archive)", MemberError("truncated ZIP: the archive ends after the last whole member")


# ---------------------------------------------------------------------------------- tar
_TAR_MAGIC = {b"\x1f\x8b": "gz", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}


def is_tar_header(block: bytes) -> bool:
    """True when ``block`` is a tar header block with a valid checksum."""
    if len(block) < tarfile.BLOCKSIZE or not block[: tarfile.BLOCKSIZE].strip(b"\x00"):
        return False
    try:
        tarfile.TarInfo.frombuf(block[: tarfile.BLOCKSIZE], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def tar_compression(path: Path, head: bytes) -> str | None:
    """``"tar"``, ``"gz"``, ``"bz2"`` or ``"xz"`` when the file is a (compressed) tar archive, else None.

    Raises EOFError when the compressed data end before a first tar header could be decoded
    (bzip2 decodes whole blocks of up to 900 kB: a cut inside the first one leaves nothing).
    """
    kind = next((k for magic, k in _TAR_MAGIC.items() if head.startswith(magic)), "tar")
    if kind == "tar":
        return "tar" if is_tar_header(head) else None
    try:
        with open(path, "rb") as fh, _decompressor(fh, kind) as stream:
            block = stream.read(tarfile.BLOCKSIZE)
    except EOFError:
        raise
    except (OSError, zlib.error, lzma.LZMAError, ValueError):
        return None
    return kind if is_tar_header(block) else None


def _decompressor(fh: BinaryIO, kind: str):
    if kind == "gz":
        return GzipFile(fileobj=fh, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(fh, "rb")
    return lzma.LZMAFile(fh, "rb")


class _Truncated(Exception):
    pass


_PLAIN = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


class TarMembers:
    """The members of a tar archive (plain, gzip, bzip2 or xz), read as a stream, one at a time.

    Iterating yields ``(name, content)`` for each regular file, or ``(name, MemberError)`` for
    one that is not read (oversize, unsafe name, a link or device); directories are skipped.
    An archive cut short or corrupt ends with ``("(archive)", MemberError)`` after the last
    whole member. Memory stays bounded: members are read one by one (each at most
    ``MAX_RECORD_BYTES``), decompression is streamed and no member list is kept.
    ``position`` is the bytes of the archive file read so far (for progress bars).
    """

    def __init__(self, path: str | Path, kind: str | None = None):
        self.path = Path(path)
        self.kind = kind
        self._fh: BinaryIO | None = None

    @property
    def position(self) -> int:
        fh = self._fh
        try:
            return fh.tell() if fh is not None and not fh.closed else 0
        except (OSError, ValueError):
            return 0

    def __iter__(self) -> Iterator[tuple[str, bytes | MemberError]]:
        with open(self.path, "rb") as fh:
            self._fh = fh
            kind = self.kind or tar_compression(self.path, fh.read(512)) or "tar"
            fh.seek(0)
            stream = fh if kind == "tar" else _decompressor(fh, kind)
            last = None  # the last member read whole
            try:
                try:
                    tf = tarfile.open(fileobj=stream, mode="r|")
                except tarfile.ReadError as err:
                    yield "(archive)", MemberError(f"not a readable tar archive ({err})")
                    return
                info = tf.firstmember
                tf.firstmember = None
                tf.members = []
                while info is not None:
                    item = self._member(tf, info)
                    if item is not None:
                        yield item
                    last = info.name
                    info = _next_member(tf)
            except _Truncated as err:
                yield "(archive)", MemberError(_after(last, f"the archive is cut short ({err})"))
            except EOFError:
                yield "(archive)", MemberError(_after(last, "the archive is cut short (compressed data ends early)"))
            except (tarfile.TarError, OSError, *GZIP_ERRORS, lzma.LZMAError, ValueError) as err:
                yield "(archive)", MemberError(_after(last, f"corrupt archive ({type(err).__name__}: {err})"))
            finally:
                if stream is not fh:
                    stream.close()
                self._fh = None

    @staticmethod
    def _member(tf: tarfile.TarFile, info: tarfile.TarInfo) -> tuple[str, bytes | MemberError] | None:
        name = info.name
        if info.isdir():
            return None
        if not info.isreg():
            what = "a symbolic link" if info.issym() else "a hard link" if info.islnk() else "not a regular file"
            return name, MemberError(f"{what}; not read")
        if (why := unsafe_member_name(name)) is not None:
            return name, MemberError(why)
        if info.size > MAX_RECORD_BYTES:
            return name, MemberError(f"member is {info.size:,} bytes (limit {MAX_RECORD_BYTES:,}); not read")
        stream = tf.fileobj
        if info.type in _PLAIN and info.sparse is None and stream.tell() == info.offset_data:
            # the data follow the header in the stream: read them straight (extractfile's file
            # object per member cost as much as reading the archive's headers)
            data = stream.read(info.size)
            if len(data) < info.size:
                raise _Truncated(f"member {member_label(name)}: unexpected end of data")
            return name, data
        handle = tf.extractfile(info)
        try:
            data = handle.read()
        except tarfile.ReadError as err:
            raise _Truncated(f"member {member_label(name)}: {err}") from None
        return name, data


def _after(last: str | None, text: str) -> str:
    return f"{text}; the members up to {member_label(last)} were read" if last else text


def _next_member(tf: tarfile.TarFile) -> tarfile.TarInfo | None:
    """``TarFile.next`` for a stream, which says how the archive ends: None at the end-of-archive
    block, :class:`_Truncated` when the data stop before it (``next`` treats both as the end),
    and keeps no member list (so memory does not grow with the number of members)."""
    if tf.offset != tf.fileobj.tell():
        tf.fileobj.seek(tf.offset - 1)
        if not tf.fileobj.read(1):
            raise _Truncated("a member's data end early")
    try:
        return tf.tarinfo.fromtarfile(tf)
    except tarfile.EOFHeaderError:
        return None
    except tarfile.EmptyHeaderError:
        raise _Truncated("no end-of-archive marker") from None
    except tarfile.TruncatedHeaderError as err:
        raise _Truncated(str(err)) from None
    except (tarfile.InvalidHeaderError, tarfile.SubsequentHeaderError) as err:
        raise tarfile.ReadError(f"bad header after byte {tf.offset:,}: {err}") from None
