"""Read search exports into :class:`~neuromodmap.literature.records.Record` objects.

The format is detected from the content (RIS, MEDLINE tagged, PubMed XML, BibTeX, CSV/TSV,
XLSX, optionally gzipped), never from the extension: PubMed→EndNote RIS files are often
named ``.txt``, and Web of Science RIS exports too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

from neuromodmap.literature._bibtex import parse_bibtex
from neuromodmap.literature._medline import parse_medline
from neuromodmap.literature._pubmed_xml import parse_pubmed_xml
from neuromodmap.literature._ris import parse_ris
from neuromodmap.literature._tabular import parse_table, read_table
from neuromodmap.literature._text import database_from_name, decode, read_bytes, sniff
from neuromodmap.literature.records import (
    ImportIssue,
    ImportResult,
    LiteratureImportError,
    make_record_id,
)
from neuromodmap.provenance import Provenance

__all__ = ["read_records", "read_many", "detect_format", "FORMATS"]

FORMATS = ("ris", "medline", "pubmed_xml", "bibtex", "csv", "xlsx")


def detect_format(path: str | os.PathLike) -> str:
    """Return the export format of ``path`` from its content."""
    path = Path(path)
    data = read_bytes(path)
    fmt = _detect(data, path, [])
    return fmt


_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"%PDF", "a PDF document"),
          (b"GIF8", "a GIF image"), (b"\xd0\xcf\x11\xe0", "an old Excel/Word file (save it as .xlsx or .csv)"))
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


def _refuse_binary(head: bytes, path: Path) -> None:
    """LiteratureImportError when ``head`` is not text: a search export is always text (or XLSX)."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise LiteratureImportError(f"{path}: not a search export but {what}")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return  # UTF-16 with a BOM: text
    n_control = len(head) - len(head.translate(None, _CONTROL))
    if b"\0" in head or n_control > max(4, len(head) // 100):
        raise LiteratureImportError(f"{path}: not a text file ({n_control} control bytes in the first "
                                    f"{len(head):,}); export the search again as RIS, MEDLINE, PubMed XML, "
                                    "BibTeX, CSV or XLSX")


def _detect(data: bytes, path: Path, issues: list[ImportIssue]) -> str:
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf"):
        raise LiteratureImportError(f"{path}: file is empty")
    if data[:4] != b"PK\x03\x04":
        _refuse_binary(data[:65536], path)
    head = decode(data[:65536], path, []) if data[:4] != b"PK\x03\x04" else ""
    fmt = sniff(data, head)
    if fmt is None:
        raise LiteratureImportError(
            f"{path}: unknown format (not RIS, MEDLINE, PubMed XML, BibTeX, CSV or XLSX); "
            f"it starts with {head[:60]!r}"
        )
    return fmt


def read_records(
    path: str | os.PathLike,
    *,
    database: str | None = None,
    format: str | None = None,
) -> ImportResult:
    """Read one search export.

    Parameters
    ----------
    path : path
        The export file (``.ris``, ``.nbib``, ``.txt``, ``.xml``, ``.bib``, ``.csv``, ``.xlsx``,
        or any of them gzipped).
    database : str, optional
        The database the search ran in (``PubMed``, ``Scopus``, ...). Defaults to what the
        export says (RIS ``DB`` tag), then to the file name, then ``unknown``.
    format : str, optional
        Force a format (one of :data:`FORMATS`) instead of detecting it.

    Returns
    -------
    ImportResult
        The records, the problems met (skipped or repaired records, records kept without a
        title or abstract, with file, line, record and reason) and the provenance of the file.

    Raises
    ------
    LiteratureImportError
        The file cannot be read at all: missing, empty, unknown format, or a table with
        neither a title column nor any column that identifies a record (abstract, DOI, PMID,
        journal, or authors with year).
    """
    path = Path(path)
    data = read_bytes(path)
    issues: list[ImportIssue] = []
    fmt = format or _detect(data, path, issues)
    if fmt not in FORMATS:
        raise LiteratureImportError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    # file names like "..._scopus_255.ris" name the database; only trusted for RIS and tables
    name_db = database or (database_from_name(path) if fmt in ("ris", "csv", "xlsx") else None)
    if fmt == "pubmed_xml":
        records = parse_pubmed_xml(data, path, name_db, issues)
    elif fmt == "xlsx":
        records = parse_table(read_table(data, None, path, fmt), path, name_db, fmt, issues)
    else:
        text = decode(data, path, issues)
        if fmt == "ris":
            records = parse_ris(text, path, database, issues)
            if not database and name_db:
                # a name like "..._pubmed_176.ris" beats a vendor's DB tag only when the tag is absent
                for record in records:
                    if record.source_database == "unknown":
                        record.source_database = name_db
        elif fmt == "medline":
            records = parse_medline(text, path, name_db, issues)
        elif fmt == "bibtex":
            records = parse_bibtex(text, path, name_db, issues)
        else:
            records = parse_table(read_table(data, text, path, fmt), path, name_db, fmt, issues)
    digest = hashlib.sha256(data).hexdigest()
    # ids from the file's content, not its path: stable when the export moves or is re-imported
    for record in records:
        record.record_id = make_record_id(digest, record.source_position)
    if not records and not issues:
        raise LiteratureImportError(f"{path}: no records found in this {fmt} file")
    databases = sorted({r.source_database for r in records}) or [name_db or "unknown"]
    provenance = Provenance(
        source=str(path),
        as_of=dt.date.fromtimestamp(path.stat().st_mtime),
        extra={"format": fmt, "sha256": digest, "database": ", ".join(databases)},
    )
    return ImportResult(records=records, issues=issues, format=fmt,
                        source_database=", ".join(databases), provenance=provenance)


def _read_one(args: tuple[str, str | None]) -> ImportResult | LiteratureImportError:
    path, database = args
    try:
        return read_records(path, database=database)
    except LiteratureImportError as exc:
        return exc


def read_many(
    paths: list[str | os.PathLike],
    *,
    database: str | None = None,
    workers: int | None = None,
    parallel_bytes: int = 8_000_000,
) -> list[ImportResult | LiteratureImportError]:
    """Read several exports, in parallel processes when there is enough to read.

    ``workers`` > 1 parses files in that many processes.

    Returns one entry per path, in order: its :class:`ImportResult`, or the
    :class:`LiteratureImportError` that stopped it (the other files are still read).
    Files totalling fewer than ``parallel_bytes`` are read in this process: starting
    workers costs more than it saves.
    """
    jobs = [(str(p), database) for p in paths]
    size = sum(Path(p).stat().st_size for p in paths if Path(p).is_file())
    # one process by default: on the 2-core reference machine two workers were slower (28 s
    # against 23 s for 100,000 records, benchmarks/literature_speed.py); more cores change that
    workers = workers or 1
    if workers <= 1 or len(jobs) < 2 or size < parallel_bytes:
        return [_read_one(job) for job in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the caller may hold a DuckDB connection and threads
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(_read_one, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
