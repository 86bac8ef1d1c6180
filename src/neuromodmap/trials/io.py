"""Read trial-registry files of any supported format into :class:`~neuromodmap.trials.models.Trial`.

The format is detected from the file's content, never its name:

==================  ============================================================
``ctgov_v2_json``   API v2 JSON: one study, a list of studies, or a ``/studies`` page
``jsonl``           JSON lines, one v2 study per line (e.g. the 2018 text corpus)
``jsonl_gz``        the same, gzip-compressed
``ctgov_v2_zip``    ZIP of per-study v2 JSON files (the bulk download)
``ctgov_xml``       legacy ``<clinical_study>`` XML record
``ctgov_xml_zip``   ZIP of legacy XML records (``AllPublicXML.zip``)
``ctgov_v2_tar``    tar archive (``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``) of v2 JSON files
``ctgov_xml_tar``   tar archive of legacy XML records (an extracted AllPublicXML packed again)
``ictrp_xml``       WHO ICTRP XML export (``<Trials_downloaded_from_ICTRP>``)
``ictrp_csv``       WHO ICTRP CSV export, with or without a header row
``ctgov_csv``       ClinicalTrials.gov website export, CSV or TSV (current or classic site)
``ctrdata_sqlite``  a ctrdata database (SQLite: EUCTR, CTIS, ISRCTN and CT.gov records); ctrdata
                    records as JSON lines or in a JSON array are read by the JSON readers
``<format>_gz``     any of the single-file formats above, gzip-compressed (``ictrp_xml_gz``,
                    ``ictrp_csv_gz``, ``ctgov_csv_gz``, ``ctgov_v2_json_gz``, ``ctgov_xml_gz``;
                    ``jsonl_gz``)
==================  ============================================================

Bad input never stops a read. A bad field (a wrong type, a date or count no registry
writes, an unknown phase, an oversize text) is left empty and the record is yielded; a
record that cannot be imported (no registry id, invalid JSON, malformed XML) is skipped.
Each is reported as an :class:`~neuromodmap.trials.models.ImportProblem` (file, line or
record, field, reason, and ``action``: "field emptied" or "record skipped"). XML is parsed with defusedxml, which refuses entity
declarations (billion laughs) and external entities.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io
import json
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from neuromodmap.registry_ids import check_registry_id
from neuromodmap.trials._readers._common import (
    FIELD_EMPTIED,
    ID_FLAGGED,
    MAX_FIELD_CHARS,
    MAX_RECORD_BYTES,
    RECORD_SKIPPED,
    FieldError,
    ImportedRecord,
    TrialFileError,
)
from neuromodmap.trials._readers._files import (
    Foreign,
    MemberError,
    TarMembers,
    file_chunks,
    gzip_chunks,
    is_tar_header,
    iter_lines,
    iter_zip_members,
    member_label,
    sniff_encoding,
    tar_compression,
)
from neuromodmap.trials._readers._gzip import GzipStream, gunzip_head, gzip_damage, open_gzip
from neuromodmap.trials._readers._xml import parse_record
from neuromodmap.trials._readers.aact import is_aact_header
from neuromodmap.trials._readers.aact import read_rows as read_aact_rows
from neuromodmap.trials._readers.ctgov_csv import NO_ID_COLUMN, CsvExport, header_kind
from neuromodmap.trials._readers.ctgov_xml import (
    MAX_DEPTH,
    clinical_study_to_trial,
    download_date,
    element_to_dict,
)
from neuromodmap.trials._readers.ctrdata import (
    ctrdata_to_trial,
    import_date,
    is_ctrdata_meta,
    is_ctrdata_record,
)
from neuromodmap.trials._readers.ictrp import (
    csv_layout,
    export_date,
    headerless_columns,
    ictrp_to_trial,
    normalise_key,
)
from neuromodmap.trials._readers.v2 import is_study, study_to_trial
from neuromodmap.trials.models import ImportProblem

__all__ = [
    "FORMATS", "ONE_RECORD_FORMATS", "ImportedRecord", "InputFile", "TrialFileError", "TrialReader",
    "detect_format", "expand_inputs", "read_trials",
]

#: lines per block when processes share a JSON-lines file (see ``TrialReader(shard=...)``)
SHARD_BLOCK = 256
#: archive members per block when processes share a ZIP or tar archive
ARCHIVE_BLOCK = 16
#: formats whose records can be shared between processes block by block (``TrialReader(shard=...)``):
#: JSON lines by lines, ZIP and tar archives by members
SPLITTABLE = frozenset({"jsonl", "jsonl_gz", "ctgov_v2_zip", "ctgov_xml_zip", "ctgov_v2_tar", "ctgov_xml_tar"})

FORMATS = (
    "ctgov_v2_json",
    "jsonl",
    "jsonl_gz",
    "ctgov_v2_zip",
    "ctgov_xml",
    "ctgov_xml_zip",
    "ctgov_v2_tar",
    "ctgov_xml_tar",
    "ictrp_xml",
    "ictrp_csv",
    "ctgov_csv",
    "ctrdata_sqlite",
    "aact_csv",
)
#: formats whose file may be gzip-compressed as a whole: detected from the content inside the
#: gzip, read as ``<format>_gz`` (JSON lines keep their historical name ``jsonl_gz``)
GZIP_INNER = ("ctgov_v2_json", "ctgov_xml", "ictrp_xml", "ictrp_csv", "ctgov_csv", "aact_csv")
FORMATS = FORMATS + tuple(f"{fmt}_gz" for fmt in GZIP_INNER)
#: formats of files that hold one study (or a short list): many such files, named one by one
#: or found in a folder, are imported together as one run (see ``TrialStore.import_files``)
ONE_RECORD_FORMATS = frozenset({"ctgov_xml", "ctgov_v2_json"})
_HEAD = 64 * 1024
_ROOT = re.compile(r"<(?![?!/])([A-Za-z_][\w.:-]*)")
_SURROGATE = re.compile("[\udc80-\udcff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_REGISTRY_ID = re.compile(r'^\s*"?[A-Za-z]{2,}[A-Za-z0-9/-]*\d{3,}')


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class InputFile:
    """A file to read: ``path`` (a string: a folder of 500,000 files is a long list),
    ``folder`` the folder argument it was found in (None when the file was named itself),
    ``size`` in bytes, ``format`` when already detected (readers then skip detection)."""

    path: str
    folder: Path | None
    size: int
    format: str | None = None


def expand_inputs(paths: Iterable[str | os.PathLike | InputFile]) -> list[InputFile]:
    """The files named in ``paths``, a folder standing for every file under it.

    Folders are walked recursively; their files come in path order (sorted component by
    component), hidden files and folders (names starting with ``.``) are left out, and
    symbolic links to folders are not followed.

    Raises
    ------
    TrialFileError
        When a path does not exist, or a folder holds no file or cannot be listed (checked
        before anything is read).
    """
    out: list[InputFile] = []
    missing: list[str] = []
    for raw in paths:
        if isinstance(raw, InputFile):  # expanded already
            out.append(raw)
            continue
        path = Path(raw)
        if path.is_dir():
            found = _walk(path)
            if not found:
                raise TrialFileError(f"{path}: the folder holds no files")
            out.extend(InputFile(f, path, size) for f, size in found)
        elif path.is_file():
            out.append(InputFile(str(path), None, path.stat().st_size))
        else:
            missing.append(str(path))
    if missing:
        raise TrialFileError(f"no such file: {', '.join(missing)}")
    return out


def _walk(top: Path) -> list[tuple[str, int]]:
    found: list[tuple[tuple[str, ...], str, int]] = []
    stack: list[tuple[str, tuple[str, ...]]] = [(str(top), ())]
    while stack:
        folder, rel = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, (*rel, entry.name)))
                elif entry.is_file():
                    found.append(((*rel, entry.name), entry.path, entry.stat().st_size))
        except OSError as err:
            raise TrialFileError(f"{err.filename or folder}: cannot list the folder ({err.strerror or err})") from None
    found.sort(key=lambda item: item[0])
    return [(path, size) for _, path, size in found]


#: a file up to this size named like a one-study file is read whole before its format is judged,
#: from that content (see :func:`reader_for`); the name only plans the reading, the content decides
READ_WHOLE_MAX = 4_000_000
ONE_STUDY_NAMES = (".xml", ".json")


def read_whole_first(f: InputFile) -> bool:
    """Whether ``f`` is read whole before its format is judged: not yet detected, at most
    :data:`READ_WHOLE_MAX` bytes, named ``.xml`` or ``.json`` (likely one study)."""
    return f.format is None and f.size <= READ_WHOLE_MAX and f.path.lower().endswith(ONE_STUDY_NAMES)


def reader_for(f: InputFile, *, problems=None, encoding=None) -> TrialReader:
    """A :class:`TrialReader` of ``f``. A likely one-study file (:func:`read_whole_first`) is
    read once, whole, and its format judged from that content, so detecting it does not read it
    a second time; a file of many records found so is opened again by its reader.

    Raises
    ------
    TrialFileError
        As :func:`detect_format`.
    """
    if not read_whole_first(f):
        return TrialReader(f.path, problems=problems, encoding=encoding, format=f.format)
    try:
        with open(f.path, "rb") as fh:
            data = read_capped(fh, f.size)
    except OSError as err:
        raise TrialFileError(f"{f.path}: cannot read ({err.strerror or err})") from None
    fmt = detect_format(f.path, data)
    return TrialReader(f.path, problems=problems, encoding=encoding, format=fmt,
                       content=data if fmt in ONE_RECORD_FORMATS else None)


def read_capped(fh: BinaryIO, size: int) -> bytes:
    """The content of ``fh``, at most ``MAX_RECORD_BYTES + 1`` bytes (more than the limit means:
    too large), read with a request sized from ``size`` (the file's size when listed): a read
    sized for the limit makes Python set aside 64 MB for every small file (three times slower
    over a folder of 6,786 records). A file that grew since is still read on to the limit."""
    data = fh.read(min(size, MAX_RECORD_BYTES) + 1)
    if size < len(data) <= MAX_RECORD_BYTES:
        data += fh.read(MAX_RECORD_BYTES + 1 - len(data))
    return data


# --------------------------------------------------------------------------- detection
def detect_format(path: str | os.PathLike, content: bytes | None = None) -> str:
    """Return the format of a trial file, judged from its content.

    ``content``: the whole file, when it has been read already (a one-study file of a folder):
    a text format is then judged from it without opening the file again (an archive, a
    compressed or a SQLite file is still opened).

    Raises
    ------
    TrialFileError
        When the file is empty, unreadable or in no supported format (the message names it).
    """
    path = Path(path)
    if content is not None:
        head = content[:_HEAD]
    else:
        try:
            with open(path, "rb") as fh:
                head = fh.read(_HEAD)
        except OSError as err:
            raise TrialFileError(f"{path}: cannot read ({err.strerror or err})") from None
    if not head.strip():
        raise TrialFileError(f"{path}: empty file")
    if head[:2] == b"\x1f\x8b":
        try:
            inner = gunzip_head(head, _HEAD)
        except zlib.error as err:
            raise TrialFileError(f"{path}: corrupt gzip file ({err})") from None
        if is_tar_header(inner):
            return _detect_tar(path, "gz")
        if not inner.strip():
            raise TrialFileError(f"{path}: gzip-compressed, but empty (or cut short before any content)")
        try:
            fmt = _detect_content(path, inner, gz=True)
        except TrialFileError as err:
            raise TrialFileError(f"{path}: gzip-compressed; inside: {str(err).removeprefix(f'{path}: ')}") from None
        return "jsonl_gz" if fmt == "jsonl" else f"{fmt}_gz"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _detect_zip(path)
    if head.startswith((b"BZh", b"\xfd7zXZ\x00")):
        what = "bzip2" if head.startswith(b"BZh") else "xz"
        try:
            kind = tar_compression(path, head)
        except EOFError:
            raise TrialFileError(f"{path}: {what} data cut short before anything could be read") from None
        if kind is None:
            raise TrialFileError(f"{path}: {what}-compressed, but not a tar archive (or corrupt)")
        return _detect_tar(path, kind)
    if is_tar_header(head):
        return _detect_tar(path, "tar")
    if head.startswith(b"SQLite format 3\x00"):
        try:
            _ctrdata_table(path)
        except _SqliteError as err:
            raise TrialFileError(f"{path}: SQLite database, but {err}") from None
        return "ctrdata_sqlite"
    return _detect_content(path, head, gz=False, content=content)


class _SqliteError(Exception):
    """A SQLite file that holds no ctrdata table, or cannot be read."""


_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _sqlite_connect(path: Path, *, need_jsonb: bool = False):
    """A read-only connection (the file is never written, nor a journal beside it): Python's
    sqlite3, or apsw when JSONB must be decoded and this sqlite3 is older than 3.45."""
    import sqlite3

    uri = Path(path).resolve().as_uri() + "?mode=ro&immutable=1"
    if not need_jsonb or sqlite3.sqlite_version_info >= (3, 45):
        return sqlite3.connect(uri, uri=True)
    try:
        import apsw
    except ImportError:
        raise _SqliteError(
            f"its records are stored as SQLite JSONB (SQLite 3.45 or later), and this Python has SQLite "
            f"{sqlite3.sqlite_version}: install apsw (pip install apsw) to read it") from None
    return apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def _ctrdata_table(path: Path) -> tuple[str, bool]:
    """The ctrdata table of a SQLite file (columns ``_id`` and ``json``) and whether its JSON is
    stored as JSONB; raises :class:`_SqliteError` when there is none."""
    import sqlite3

    try:
        con = _sqlite_connect(path)
        try:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for name in names:
                if not _TABLE_NAME.match(name):
                    continue
                # a table name cannot be a parameter: only plain names (checked above) are quoted in
                columns = {r[1] for r in con.execute(f'PRAGMA table_info("{name}")')}
                if {"_id", "json"} <= columns:
                    row = con.execute(f'SELECT json FROM "{name}" WHERE json IS NOT NULL LIMIT 1').fetchone()  # noqa: S608
                    jsonb = row is not None and isinstance(row[0], bytes) and row[0].lstrip()[:1] not in (b"{", b"[")
                    return name, jsonb
        finally:
            con.close()
    except sqlite3.Error as err:
        raise _SqliteError(f"unreadable ({err})") from None
    raise _SqliteError("no table with the columns _id and json (a ctrdata database) in it")


def _detect_content(path: Path, head: bytes, *, gz: bool, content: bytes | None = None) -> str:
    """The format of a text file (XML, JSON, CSV) from its first bytes (``gz``: the content
    of a gzip file; JSON lines are then checked on the decompressed lines)."""
    enc, bom = sniff_encoding(head)
    text = head[bom:].decode(enc, "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        m = _ROOT.search(text)
        root = m.group(1) if m else ""
        if root == "clinical_study":
            return "ctgov_xml"
        if root == "Trials_downloaded_from_ICTRP":
            return "ictrp_xml"
        raise TrialFileError(
            f"{path}: XML with root <{root or '?'}>; expected <clinical_study> (ClinicalTrials.gov) "
            "or <Trials_downloaded_from_ICTRP> (WHO ICTRP)"
        )
    if text.startswith("["):
        return "ctgov_v2_json"
    if text.startswith("{"):
        return "jsonl" if _looks_like_jsonl(path, enc, bom, gz=gz, content=content) else "ctgov_v2_json"
    first = text.split("\n", 1)[0].rstrip("\r")
    if is_aact_header(re.split(r"[,\t|]", first)):
        return "aact_csv"
    cells = [normalise_key(c.strip('"')) for c in re.split(r"[,;\t]", first)]
    if "trialid" in cells:
        return "ictrp_csv"
    kind, _ = header_kind(first)
    if kind == "ctgov_csv":
        return "ctgov_csv"
    if kind == NO_ID_COLUMN:
        raise TrialFileError(
            f"{path}: a ClinicalTrials.gov website export without an 'NCT Number' or 'Study URL' column: its "
            "trials cannot be identified (download it again with the NCT Number column ticked)"
        )
    if _REGISTRY_ID.match(first) and ("," in first or "\t" in first):
        return "ictrp_csv"
    if sum(not (c.isprintable() or c in "\t\r\n") for c in text[:512]) > 4:  # binary: say so, not its bytes
        raise TrialFileError(f"{path}: not a registry file (binary content); give registry exports: "
                             f"{', '.join(FORMATS)}")
    raise TrialFileError(
        f"{path}: unrecognised trial file (starts with {text[:40]!r}); supported: {', '.join(FORMATS)}"
    )


def _looks_like_jsonl(path: Path, enc: str, bom: int, *, gz: bool = False, content: bytes | None = None) -> bool:
    """Two or more non-empty lines, one of the first five a JSON object alone: JSON lines.

    A gzip file whose first line alone is a JSON object is JSON lines too (a one-study
    ``.jsonl.gz`` has always been read so)."""
    with contextlib.nullcontext() if content is not None else open(path, "rb") as fh:
        lines = []
        chunks = iter((content,)) if content is not None else file_chunks(open_gzip(fh)) if gz else file_chunks(fh)
        for _, line in iter_lines(chunks, enc):
            if not isinstance(line, str):
                lines.append("")
            elif line.strip():
                lines.append(line)
            if len(lines) == 5:
                break
    if len(lines) < 2 and not gz:
        return False
    for line in lines:
        try:
            if isinstance(json.loads(line), dict):
                return True
        except (ValueError, RecursionError):
            continue
    return False


def _member_format(data: bytes) -> str | None:
    """``json`` or ``xml`` (a ``<clinical_study>``) for an archive member's content, else None."""
    enc, bom = sniff_encoding(data[:400])
    text = data[bom : bom + 4096].decode(enc, "replace").lstrip()
    if text[:1] in ("{", "["):
        return "json"
    if text[:1] == "<":
        m = _ROOT.search(text)
        if m and m.group(1) == "clinical_study":
            return "xml"
    return None


#: members a tar archive's format is judged from, at most (those that are not records are skipped)
_TAR_SNIFF_MEMBERS = 100


def _detect_tar(path: Path, kind: str) -> str:
    """The format of a tar archive: that of its first member that is a v2 study or legacy XML."""
    seen = 0
    for name, data in TarMembers(path, kind):
        if isinstance(data, MemberError):
            if name == "(archive)":
                where = "" if seen else " before its first trial record"
                raise TrialFileError(f"{path}: unreadable tar archive{where} ({data})")
            continue
        fmt = _member_format(data)
        if fmt is not None:
            return "ctgov_v2_tar" if fmt == "json" else "ctgov_xml_tar"
        seen += 1
        if seen >= _TAR_SNIFF_MEMBERS:
            break
    raise TrialFileError(
        f"{path}: tar archive holds no v2 study JSON or <clinical_study> XML"
        + (f" in its first {seen} files" if seen >= _TAR_SNIFF_MEMBERS else "")
    )


def _detect_zip(path: Path) -> str:
    for name, data in iter_zip_members(path):
        if isinstance(data, MemberError):
            if name != "(archive)":
                continue  # an oversize member, an unsafe name: reported when read
            raise TrialFileError(f"{path}: unreadable ZIP ({data})")
        enc, bom = sniff_encoding(data[:400])
        text = data[bom : bom + 4096].decode(enc, "replace").lstrip()
        if not text:
            continue
        if text[0] in "{[":
            return "ctgov_v2_zip"
        if text[0] == "<":
            m = _ROOT.search(text)
            if m and m.group(1) == "clinical_study":
                return "ctgov_xml_zip"
        raise TrialFileError(
            f"{path}: ZIP member {name} is neither v2 study JSON nor <clinical_study> XML"
        )
    raise TrialFileError(f"{path}: ZIP holds no trial files")


# --------------------------------------------------------------------------- reading
class TrialReader:
    """Iterate the trials in one file; ``position`` and ``size`` (bytes) drive progress bars.

    Parameters
    ----------
    path : path
        The file.
    problems : list, optional
        Bad fields (left empty, the record kept) and bad records (skipped) are appended here
        as :class:`ImportProblem`; when None they are issued as warnings.
    encoding : str, optional
        Text encoding for JSON lines and CSV files without a byte-order mark (default UTF-8).
    format : str, optional
        Skip detection and read as this format (one of :data:`FORMATS`).
    shard : (int or tuple of int, int) or callable, optional
        ``(k, n)``: read only the records of the blocks (of :data:`SHARD_BLOCK` JSON lines,
        or :data:`ARCHIVE_BLOCK` archive members) whose number modulo ``n`` is ``k`` (or one
        of ``k``, a tuple); a callable ``take(block) -> bool`` decides block by block. So
        processes can share one file without parsing a record twice; each reports the
        problems of its own lines or members (a truncated file: the one that took block 0).
        The :data:`SPLITTABLE` formats only (JSON lines, ZIP and tar archives).
    on_foreign : callable, optional
        With a callable ``shard``: ``on_foreign(number, unit)`` receives each unit of the
        blocks not taken, as read (a JSON line, or an archive member's ``(name, content)``),
        so another process can parse it with :meth:`parse_unit`.
    content : bytes, optional
        The file's content, read already (a one-study file of a folder, read once by the
        process that lists it): a file of one record (:data:`ONE_RECORD_FORMATS`) is parsed
        from it and not opened.
    """

    def __init__(self, path, *, problems=None, encoding=None, format=None, shard=None, on_foreign=None,
                 content: bytes | None = None):
        self.path = Path(path)
        self.source = str(path)
        self.problems = problems
        self.encoding = encoding
        self.format = format or detect_format(self.path, content)
        if self.format not in FORMATS:
            raise TrialFileError(f"{path}: unknown format {self.format!r}; one of {', '.join(FORMATS)}")
        if content is not None and self.format not in ONE_RECORD_FORMATS:
            raise ValueError(f"content= is for files of one record ({', '.join(sorted(ONE_RECORD_FORMATS))}), "
                             f"not {self.format}")
        self._content = content
        self.size = len(content) if content is not None else self.path.stat().st_size
        #: the format of the content: ``ictrp_csv`` for ``ictrp_csv_gz`` (read through gzip)
        self.base_format = self.format
        self._gzip: GzipStream | None = None
        if self.format.endswith("_gz") and self.format != "jsonl_gz":
            self.base_format = self.format.removesuffix("_gz")
        self._take: Callable[[int], bool] | None = None
        if shard is not None:
            if self.format not in SPLITTABLE:
                raise ValueError(f"shard= needs a JSON-lines file or a ZIP or tar archive, not {self.format}")
            if callable(shard):
                self._take = shard
            else:
                k, n = shard
                mine = frozenset(k if isinstance(k, tuple | list | set | frozenset) else (k,))
                if not mine or not all(0 <= r < n for r in mine):
                    raise ValueError(f"shard={shard!r}: need 0 <= k < n")
                if len(mine) < n:
                    self._take = lambda block: block % n in mine
        self._took_first = True  # block 0 is this reader's: it reports a truncated file
        #: with a callable ``shard``: receives (line number, line as read) of the blocks not
        #: taken, so another process can parse them (this reader still reports a bad file end)
        self.on_foreign = on_foreign
        self.text_encoding: str | None = None
        self.shard = shard
        #: the line (JSON lines) or member (archives) being read, counted from 1: its block
        #: ``(line - 1) // block_size`` orders shards
        self.line = 0
        self._fh: BinaryIO | None = None
        self._csv: CsvExport | None = None
        self._zip_position = 0
        self._tar: TarMembers | None = None
        self._done = False

    @property
    def block_size(self) -> int:
        """Lines (JSON lines) or members (archives) per shard block."""
        return SHARD_BLOCK if self.format in ("jsonl", "jsonl_gz") else ARCHIVE_BLOCK

    @property
    def position(self) -> int:
        """Bytes of the file consumed so far."""
        if self._done:
            return self.size
        if self.format.endswith("_zip"):
            return min(self.size, self._zip_position)
        if self.format.endswith("_tar"):
            return min(self.size, self._tar.position) if self._tar is not None else 0
        if self.format == "ctrdata_sqlite":
            return min(self.size, self._zip_position)
        fh = self._fh
        try:
            return fh.tell() if fh is not None and not fh.closed else 0
        except (OSError, ValueError):
            return 0

    def __iter__(self) -> Iterator[ImportedRecord]:
        reader = {
            "jsonl": self._jsonl,
            "jsonl_gz": self._jsonl,
            "ctgov_v2_json": self._v2_json,
            "ctgov_v2_zip": self._zip,
            "ctgov_xml_zip": self._zip,
            "ctgov_v2_tar": self._tar_records,
            "ctgov_xml_tar": self._tar_records,
            "ctgov_xml": self._ctgov_xml,
            "ictrp_xml": self._ictrp_xml,
            "ictrp_csv": self._ictrp_csv,
            "ctgov_csv": self._ctgov_csv,
            "ctrdata_sqlite": self._ctrdata_sqlite,
            "aact_csv": self._aact_csv,
        }[self.base_format]
        try:
            if self.base_format != self.format and (damage := gzip_damage(self.path)):
                # damaged bytes decode to plausible, wrong text before gzip's CRC check finds
                # them at the end, and where the damage starts cannot be told: read nothing
                self._problem("file", f"{damage}: the file is damaged (check it with gzip -t and download "
                              "it again); nothing was read, since gzip cannot tell where the damage starts")
                return
            yield from self._checked(reader())
        finally:
            self._done = True
            if self._fh is not None:
                self._fh.close()

    def _checked(self, records: Iterable[ImportedRecord]) -> Iterator[ImportedRecord]:
        """``records``; one whose own id is not one of its registry's ids is kept and reported."""
        for record in records:
            why = check_registry_id(record.trial.registry_id, record.trial.registry)
            if why:
                self._problem(record.location, why, "registry_id", record.trial.registry_id[:80], ID_FLAGGED)
            yield record

    def default_as_of(self) -> dt.date | None:
        """The as-of date the file itself implies, for formats whose records carry none.

        A ClinicalTrials.gov website export (``ctgov_csv``) has no download date; its latest
        Last Update Posted / First Posted / Results First Posted date is a lower bound of it
        (the export was made that day or later). None for every other format, and for
        exports without those columns. The store uses it when no ``as_of`` is given.

        Asked after the records were read, it is the date found while reading them (the file
        is not read a second time); asked before, the file is scanned for it.
        """
        if self.base_format != "ctgov_csv":
            return None
        return self._csv_export().latest_date()

    @property
    def as_of_from_file(self) -> bool:
        """True for formats whose :meth:`default_as_of` comes from the records themselves (known
        once they are read): a store holds their rows back until then, as it hashes the as-of."""
        return self.base_format == "ctgov_csv"

    @property
    def provenance(self) -> str | None:
        """What kind of source this is in words (website exports: the layout), when known."""
        if self.base_format != "ctgov_csv":
            return None
        return self._csv_export().provenance

    def _csv_export(self) -> CsvExport:
        if self._csv is None:
            gz = self.base_format != self.format

            def open_stream() -> BinaryIO:
                raw = open(self.path, "rb")
                return open_gzip(raw, close_raw=True) if gz else raw

            self._csv = CsvExport(open_stream, source=self.source, problem=self._problem, encoding=self.encoding,
                                  cut=self._gzip_error if gz else None)
        return self._csv

    def _ctgov_csv(self) -> Iterator[ImportedRecord]:
        export = self._csv_export()
        yield from export.records(self._open())
        self.text_encoding = export.text_encoding

    def _aact_csv(self) -> Iterator[ImportedRecord]:
        yield from read_aact_rows(self._open(), self.source, self._problem)

    # -- problems
    def _problem(self, location: str, reason: str, field: str | None = None, registry_id=None, action: str = "") -> None:
        problem = ImportProblem(
            source=self.source, location=location, field=field, reason=reason, registry_id=registry_id, action=action
        )
        if self.problems is None:
            warnings.warn(str(problem), stacklevel=3)
        else:
            self.problems.append(problem)

    def _field_problem(self, location: str, err: FieldError, action: str = RECORD_SKIPPED) -> None:
        self._problem(location, err.reason, err.field, err.registry_id, action)

    def _field_problems(self, location: str, errors: list[FieldError]) -> None:
        """The bad fields of a record that is kept: each left empty, each reported."""
        for err in errors:
            self._field_problem(location, err, FIELD_EMPTIED)

    def _open(self) -> BinaryIO:
        """The file's content as a binary stream (decompressed for a ``*_gz`` format; a
        truncated or corrupt gzip ends the stream early and :meth:`_gzip_error` says why)."""
        self._fh = open(self.path, "rb")
        if self.base_format != self.format:
            stream = open_gzip(self._fh)
            self._gzip = stream.raw
            return stream
        return self._fh

    def _gzip_error(self) -> str | None:
        """Why the gzip content ended early (truncated, corrupt), or None."""
        return self._gzip.error if self._gzip is not None else None

    def _text_encoding(self, head: bytes) -> tuple[str, int]:
        enc, bom = sniff_encoding(head)
        if bom == 0 and self.encoding:
            return self.encoding, 0
        return enc, bom

    # -- JSON
    def _jsonl(self) -> Iterator[ImportedRecord]:
        fh = self._open()
        gz = self.format == "jsonl_gz"
        chunks = gzip_chunks(fh) if gz else file_chunks(fh)
        lineno = 0
        try:
            first = next(chunks, b"")
            enc, _ = self._text_encoding(first)

            def all_chunks():
                yield first
                yield from chunks

            self.text_encoding = enc
            take = self._take
            keep = None
            if take is not None:
                state = [-1, True]  # current block, and whether it is this reader's

                def keep(lineno: int) -> bool:
                    block = (lineno - 1) // SHARD_BLOCK
                    if block != state[0]:
                        state[0], state[1] = block, take(block)
                        if block == 0 and self.on_foreign is None:
                            self._took_first = state[1]
                    return state[1]

            on_foreign = self.on_foreign
            for lineno, line in iter_lines(all_chunks(), enc, keep, raw=on_foreign is not None):
                if line is None:
                    continue  # another process's block, left undecoded
                if on_foreign is not None and type(line) is Foreign:
                    on_foreign(lineno, line.line)
                    continue
                yield from self._line_records(lineno, line, enc)
        except EOFError as err:
            if self._took_first:  # every shard sees it: report it once
                self._problem(f"after line {lineno}", f"{err}; the records before it were read")
        except zlib.error as err:
            if self._took_first:
                self._problem(f"after line {lineno}", f"{err}; the records before it were read")

    def _line_records(self, lineno: int, line, enc: str) -> Iterator[ImportedRecord]:
        self.line = lineno
        if isinstance(line, UnicodeDecodeError):
            hint = "" if self.encoding else "; pass encoding= (e.g. latin-1) if the file is not UTF-8"
            self._problem(f"line {lineno}", f"not valid {enc} ({line.reason} at byte {line.start}){hint}")
            return
        if not isinstance(line, str):
            self._problem(f"line {lineno}", f"line is {line.size:,} bytes (limit {MAX_RECORD_BYTES:,})")
            return
        if not line.strip(" \t\r\n"):  # blank in JSON's sense: str.strip() would also eat \x1c-\x1f
            return
        yield from self._json_record(line, f"line {lineno}")

    def parse_unit(self, number: int, unit, enc: str | None = None) -> Iterator[ImportedRecord]:
        """The records of one unit another reader of this file handed on as read (see
        ``on_foreign``): a JSON line (see :meth:`parse_line`) or an archive member's
        ``(name, content)``, parsed here with the same checks and problems."""
        if self.format in ("jsonl", "jsonl_gz"):
            yield from self._checked(self.parse_line(number, unit, enc or "utf-8"))
            return
        self.line = number
        name, data = unit
        yield from self._checked(self._member_records(name, data))

    def parse_line(self, lineno: int, line, enc: str) -> Iterator[ImportedRecord]:
        """The records of one JSON line that another reader of this file handed on as read
        (see ``on_foreign``): decoded here, with the same checks and problems."""
        if isinstance(line, bytes):
            if lineno == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[3:]
            try:
                line = line.decode(enc)
            except UnicodeDecodeError as err:
                line = err
        yield from self._line_records(lineno, line, enc)

    def _json_record(self, text: str, location: str, obj: Any = None) -> Iterator[ImportedRecord]:
        raw_json = None
        if obj is None:
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                self._problem(location, f"invalid JSON: {err.msg} at column {err.colno}")
                return
            except RecursionError:
                self._problem(location, "invalid JSON: nested too deeply")
                return
            raw_json = text
        if not isinstance(obj, dict):
            self._problem(location, f"expected a JSON object (a study), got {type(obj).__name__}")
            return
        if (raw_json is None or _SURROGATE_ESCAPE.search(raw_json)) and not _encodable(obj):
            self._problem(location, "text holds an unpaired UTF-16 surrogate escape (e.g. \\ud800): not valid Unicode")
            return
        if is_ctrdata_meta(obj):
            return  # ctrdata's query history: no trial
        if is_ctrdata_record(obj):
            yield from self._ctrdata_record(obj, location, raw_json=raw_json)
            return
        bad: list[FieldError] = []
        try:
            trial = study_to_trial(obj, source_format="ctgov_v2", size_hint=len(text) if raw_json else None, problems=bad)
        except FieldError as err:
            self._field_problem(location, err)
            return
        if bad:
            self._field_problems(location, bad)
        yield ImportedRecord(trial, obj, self.source, location, raw_json=raw_json)

    # -- ctrdata (EUCTR, CTIS, ISRCTN, CT.gov records collected by the R package ctrdata)
    def _ctrdata_record(self, obj: dict, location: str, *, record_id: str | None = None,
                        raw_json: str | None = None) -> Iterator[ImportedRecord]:
        bad: list[FieldError] = []
        try:
            trial, raw = ctrdata_to_trial(obj, record_id=record_id, problems=bad)
        except FieldError as err:
            if err.registry_id is None and record_id:
                err.registry_id = record_id
            self._field_problem(location, err)
            return
        if bad:
            self._field_problems(location, bad)
        yield ImportedRecord(trial, raw, self.source, location, as_of=import_date(obj),
                             raw_json=raw_json if raw is obj else None)

    def _ctrdata_sqlite(self) -> Iterator[ImportedRecord]:
        import sqlite3

        try:
            table, jsonb = _ctrdata_table(self.path)
            con = _sqlite_connect(self.path, need_jsonb=jsonb)
        except _SqliteError as err:
            self._problem("file", str(err))
            return
        column = "json(json)" if jsonb else "json"
        # the table name is a plain name found in the file (see _ctrdata_table), never user text
        count_sql = f'SELECT count(*) FROM "{table}"'  # noqa: S608
        rows_sql = f'SELECT _id, {column} FROM "{table}" ORDER BY rowid'  # noqa: S608
        try:
            total = max(1, con.execute(count_sql).fetchone()[0])
            for done, (record_id, text) in enumerate(con.execute(rows_sql), start=1):
                self._zip_position = self.size * done // total
                location = f"_id {str(record_id)[:60]}"
                if isinstance(text, bytes):
                    text = text.decode("utf-8", "replace")
                try:
                    obj = json.loads(text) if isinstance(text, str) else None
                except (json.JSONDecodeError, RecursionError) as err:
                    self._problem(location, f"invalid JSON in the json column ({err})", registry_id=None)
                    continue
                if not isinstance(obj, dict):
                    self._problem(location, "the json column holds no JSON object")
                    continue
                if is_ctrdata_meta(obj) or record_id == "meta-info":
                    continue
                if not is_ctrdata_record(obj):
                    self._problem(location, f"no known ctrname (register) in the record: {str(obj.get('ctrname'))[:40]!r}")
                    continue
                yield from self._ctrdata_record(obj, location, record_id=str(record_id))
        except Exception as err:  # sqlite3.Error, apsw.Error: the file is damaged from here on
            if not (isinstance(err, sqlite3.Error) or type(err).__module__ == "apsw"):
                raise
            self._problem("after records", f"the database cannot be read on ({err})", action="rest of file skipped")
        finally:
            con.close()

    def _read_whole(self, what: str, hint: str = "") -> bytes | None:
        """The whole file, or None (reported) past the record limit."""
        data = self._content if self._content is not None else read_capped(self._open(), self.size)
        if len(data) > MAX_RECORD_BYTES:
            self._problem("file", f"{what} larger than {MAX_RECORD_BYTES:,} bytes{hint}")
            return None
        return data

    def _v2_json(self) -> Iterator[ImportedRecord]:
        data = self._read_whole("JSON file", "; use JSON lines or a ZIP")
        if data is not None:
            yield from self._json_document(data, "", cut=self._gzip_error())

    def _json_document(self, data: bytes, prefix: str, cut: str | None = None) -> Iterator[ImportedRecord]:
        """``cut``: why the data end early (a truncated gzip file): the complete studies before
        the cut are read and one problem names the cut."""
        enc, bom = self._text_encoding(data[:400])
        try:
            text = data[bom:].decode(enc)
        except UnicodeDecodeError as err:
            if not (cut and err.reason == "unexpected end of data"):
                self._problem(prefix or "file", f"not valid {enc} ({err.reason} at byte {err.start})")
                return
            text = data[bom : bom + err.start].decode(enc)  # cut inside a character
        where = f"{prefix} " if prefix else ""
        try:
            doc = json.loads(text)
        except RecursionError:
            self._problem(prefix or "file", "invalid JSON: nested too deeply")
            return
        except json.JSONDecodeError as err:
            salvaged = 0
            for i, obj in enumerate(_salvage_array(text), start=1):
                salvaged += 1
                yield from self._json_record("", f"{where}study {i}", obj=obj)
            self._problem(
                prefix or "file",
                (cut or f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}")
                + (f"; {salvaged} complete studies before it were read" if salvaged else ""),
                action="rest of file skipped" if salvaged else "",
            )
            return
        if isinstance(doc, dict) and isinstance(doc.get("studies"), list):
            studies = doc["studies"]
        elif isinstance(doc, list):
            studies = doc
        elif is_study(doc):
            studies = [doc]
        else:
            kind = type(doc).__name__
            self._problem(
                prefix or "file",
                f"JSON {kind} is neither a v2 study (protocolSection), a list of studies, nor a /studies page",
            )
            return
        for i, obj in enumerate(studies, start=1):
            loc = prefix if (len(studies) == 1 and prefix) else f"{where}study {i}"
            yield from self._json_record("", loc, obj=obj)

    # -- ZIP
    def _zip(self) -> Iterator[ImportedRecord]:
        try:  # progress by members done (zipfile reads the archive itself)
            with zipfile.ZipFile(self.path) as zf:
                n_members = max(1, len(zf.infolist()))
        except (zipfile.BadZipFile, OSError):
            n_members = 0
        def members():
            for done, item in enumerate(iter_zip_members(self.path), start=1):
                self._zip_position = self.size * done // n_members if n_members else 0
                yield item

        yield from self._archive(members())

    def _archive(self, members: Iterable[tuple[str, bytes | MemberError]]) -> Iterator[ImportedRecord]:
        """The records of an archive's members; with ``shard``, only those of the blocks taken
        (the others go to ``on_foreign``, or are skipped unread)."""
        take, on_foreign = self._take, self.on_foreign
        block, mine, number = -1, True, 0
        for name, data in members:
            if name == "(archive)":  # the archive is cut short or corrupt: its reader reports it
                if take is None or on_foreign is not None or self._took_first:
                    yield from self._member_records(name, data)
                continue
            number += 1
            self.line = number
            if take is not None:
                b = (number - 1) // ARCHIVE_BLOCK
                if b != block:
                    block, mine = b, take(b)
                    if b == 0 and on_foreign is None:
                        self._took_first = mine
                if not mine:
                    if on_foreign is not None:
                        on_foreign(number, (name, data))
                    continue
            yield from self._member_records(name, data)

    def _member_records(self, name: str, data: bytes | MemberError) -> Iterator[ImportedRecord]:
        """The records of one archive member (JSON or XML, judged from its content)."""
        if name == "(archive)":  # the archive is cut short or corrupt from here on
            self._problem("archive", str(data), action="rest of file skipped")
            return
        loc = f"member {member_label(name)}"
        if isinstance(data, MemberError):
            self._problem(loc, str(data))
            return
        first = data[:1]  # the usual case: the document starts at its first byte
        if first == b"<":
            yield from self._xml_record(data, loc)
            return
        head = data[:400].lstrip()
        enc, bom = sniff_encoding(head)
        first = head[bom:].decode(enc, "replace").lstrip()[:1]
        if first in ("{", "["):
            yield from self._json_document(data, loc)
        elif first == "<":
            yield from self._xml_record(data, loc)
        elif first:
            self._problem(loc, "neither JSON nor XML; skipped")

    # -- tar
    def _tar_records(self) -> Iterator[ImportedRecord]:
        self._tar = TarMembers(self.path)
        yield from self._archive(self._tar)

    # -- legacy XML
    def _ctgov_xml(self) -> Iterator[ImportedRecord]:
        data = self._read_whole("XML record")
        if data is not None and (cut := self._gzip_error()):
            self._problem("clinical_study", f"{cut}; the record is incomplete", action="file skipped")
            return
        if data is not None:
            yield from self._xml_record(data, "clinical_study")

    def _xml_record(self, data: bytes, location: str) -> Iterator[ImportedRecord]:
        try:
            root = parse_record(data)
        except DefusedXmlException as err:
            self._problem(location, f"refused: {_defused_reason(err)}")
            return
        except SafeET.ParseError as err:
            self._problem(location, f"invalid XML: {err}")
            return
        bad: list[FieldError] = []
        flat: list[str] = []
        raw = element_to_dict(root, flat)  # the stored raw record; the mapping reads its fields from it
        try:
            trial = clinical_study_to_trial(root, problems=bad, raw=raw, size_hint=len(data))
        except FieldError as err:
            self._field_problem(location, err)
            return
        if bad:
            self._field_problems(location, bad)
        for tag in dict.fromkeys(flat):
            self._problem(location, f"elements nested more than {MAX_DEPTH} levels deep; the stored record keeps "
                          "them as text", field=tag, registry_id=trial.registry_id, action="field kept as text")
        yield ImportedRecord(trial, raw, self.source, location, as_of=download_date(root, raw), size=len(data))

    # -- ICTRP
    def _ictrp_xml(self) -> Iterator[ImportedRecord]:
        fh = self._open()
        index = 0
        try:
            for _event, elem in SafeET.iterparse(fh, events=("end",)):
                if elem.tag != "Trial":
                    continue
                index += 1
                record = {}
                for child in elem:
                    if isinstance(child.tag, str):
                        text = "".join(child.itertext())
                        prev = record.get(child.tag)
                        record[child.tag] = f"{prev};{text}" if prev else text
                elem.clear()
                yield from self._ictrp_record(record, f"Trial {index}", "ictrp_xml")
        except DefusedXmlException as err:
            self._problem(f"after Trial {index}", f"refused: {_defused_reason(err)}")
        except SafeET.ParseError as err:
            tail = f"; the {index} records before it were read" if index else ""
            cut = self._gzip_error()
            self._problem(f"after Trial {index}", f"{cut or f'invalid XML: {err}'}{tail}")
        else:
            if cut := self._gzip_error():  # the XML closed, but the gzip data go on corrupt
                self._problem(f"after Trial {index}", f"{cut}; the {index} records before it were read")

    def _ictrp_record(self, record: dict, location: str, source_format: str, raw: dict | None = None,
                      bad: list[FieldError] | None = None) -> Iterator[ImportedRecord]:
        bad = bad if bad is not None else []
        try:
            trial = ictrp_to_trial(record, source_format=source_format, problems=bad)
        except FieldError as err:
            self._field_problem(location, err)
            return
        if bad:
            for err in bad:
                err.registry_id = err.registry_id or trial.registry_id
            self._field_problems(location, bad)
        # the portal's Export_date is the date the record was exported: its as-of date
        yield ImportedRecord(trial, raw if raw is not None else record, self.source, location,
                             as_of=export_date(record))

    def _ictrp_csv(self) -> Iterator[ImportedRecord]:
        fh = self._open()
        head = fh.read(_HEAD)
        enc, bom = self._text_encoding(head)
        first_line = head[bom:].decode(enc, "replace").split("\n", 1)[0]
        if self._gzip is not None:  # a gzip stream cannot seek back: read it again
            self._fh.close()
            fh = self._open()
            fh.read(bom)
        else:
            fh.seek(bom)
        # undecodable bytes become lone surrogates, so one bad row does not cost the file
        text = io.TextIOWrapper(fh, encoding=enc, errors="surrogateescape", newline="")
        limit = csv.field_size_limit()
        csv.field_size_limit(MAX_FIELD_CHARS + 1)
        hint = "" if self.encoding else "; pass encoding= (e.g. latin-1) if the file is not UTF-8"
        try:
            try:  # only the delimiter: sniffed from a header line without quotes, the quoting rules
                # come out wrong (doublequote=False splits every cell holding "" in two)
                delimiter = csv.Sniffer().sniff(first_line, delimiters=",;\t").delimiter
            except csv.Error:
                delimiter = ","
            reader = csv.reader(text, csv.excel, delimiter=delimiter)
            header: list[str] | None = None
            source_format = "ictrp_csv"
            held: tuple[int, list[str]] | None = None  # gzip: a row is used once the next one is read
            while True:
                line = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except UnicodeDecodeError as err:
                    self._problem(f"line {line}", f"not valid {enc} ({err.reason}){hint}; rest of file skipped")
                    break
                except csv.Error as err:
                    self._problem(f"line {line}", f"unreadable CSV row: {err}")
                    continue
                if not any(c.strip() for c in row):
                    continue
                undecodable = any(_SURROGATE.search(c) for c in row)
                if undecodable and header is None:  # perhaps the header itself
                    self._problem(f"line {line}", f"not valid {enc}{hint}", registry_id=row[0][:40] or None)
                    continue
                if header is None:
                    if "trialid" in {normalise_key(c) for c in row}:
                        header = row
                        source_format = csv_layout(header)
                        continue
                    header = list(headerless_columns(row))
                    source_format = csv_layout(header)
                if self._gzip is not None:
                    held, (line, row) = (line, row), held or (0, [])
                    if not row:
                        continue
                yield from self._ictrp_row(line, row, header, source_format, enc, hint)
            if held is not None:
                if cut := self._gzip_error():  # the last row read may be cut short: not used
                    self._problem(f"after line {held[0] - 1}", f"{cut}; the records before it were read")
                else:
                    yield from self._ictrp_row(*held, header, source_format, enc, hint)
            elif cut := self._gzip_error():
                self._problem("after line 1" if header else "file", cut)
        finally:
            csv.field_size_limit(limit)

    def _ictrp_row(self, line: int, row: list[str], header: list[str], source_format: str, enc: str,
                   hint: str) -> Iterator[ImportedRecord]:
        if len(row) > len(header):
            self._problem(f"line {line}", f"{len(row)} columns, the header has {len(header)}", registry_id=row[0])
            return
        record = dict(zip(header, row, strict=False))
        bad: list[FieldError] = []
        raw = None
        if any(_SURROGATE.search(c) for c in row):
            # a cell with bytes not valid in the encoding is a bad field: emptied and
            # reported (kept in the raw record with U+FFFD for the bytes); a bad TrialID
            # is a bad record
            cells = [k for k, v in record.items() if _SURROGATE.search(v)]
            if any(normalise_key(k) == "trialid" for k in cells):
                self._problem(f"line {line}", f"TrialID not valid {enc}{hint}", field="TrialID")
                return
            raw = {k: _SURROGATE.sub("\ufffd", v) for k, v in record.items()}
            for k in cells:
                bad.append(FieldError(k, f"not valid {enc}{hint}"))
                record[k] = ""
        yield from self._ictrp_record(record, f"line {line}", source_format, raw=raw, bad=bad)


def _encodable(obj: Any) -> bool:
    """False when a parsed JSON value holds a lone surrogate (valid JSON, invalid Unicode)."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _salvage_array(text: str) -> Iterator[dict]:
    """Complete objects of a truncated ``[...]`` or ``{"studies": [...]`` document."""
    start = text.find("[") if not text.lstrip().startswith("{") else text.find('"studies"')
    if start < 0:
        return
    start = text.find("[", start)
    if start < 0:
        return
    decoder = json.JSONDecoder()
    pos = start + 1
    n = len(text)
    while pos < n:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n or text[pos] == "]":
            return
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError):
            return
        if isinstance(obj, dict):
            yield obj


def _defused_reason(err: DefusedXmlException) -> str:
    name = type(err).__name__
    if name == "EntitiesForbidden":
        return "the XML declares entities (possible entity-expansion bomb); entity declarations are not allowed"
    if name in {"ExternalReferenceForbidden", "DTDForbidden"}:
        return "the XML refers to an external entity or DTD; external references are not allowed"
    return f"unsafe XML ({name})"


def read_trials(
    path: str | os.PathLike,
    *,
    problems: list[ImportProblem] | None = None,
    encoding: str | None = None,
    format: str | None = None,
) -> Iterator[ImportedRecord]:
    """Yield every trial in a file of any supported format (detected from its content).

    Parameters
    ----------
    path : path
        The file to read.
    problems : list of ImportProblem, optional
        Problems are appended here (file, line or record, field, reason, action): a bad
        field is left empty and its record yielded ("field emptied"), a record that cannot
        be read is skipped ("record skipped"). When None, each is issued as a
        :class:`UserWarning`.
    encoding : str, optional
        Encoding of JSON-lines or CSV text without a byte-order mark (default UTF-8).
    format : str, optional
        Read as this format instead of detecting it.

    Yields
    ------
    ImportedRecord
        The normalised :class:`Trial`, the raw record, the source path and the location.

    Raises
    ------
    TrialFileError
        When the file is missing, empty or in no supported format.
    """
    yield from TrialReader(path, problems=problems, encoding=encoding, format=format)
