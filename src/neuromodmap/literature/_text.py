"""Byte-level helpers shared by the importers: decoding, format sniffing, database names."""

from __future__ import annotations

import functools
import gzip
import re
from pathlib import Path

from neuromodmap.literature.records import ImportIssue, LiteratureImportError

# the database a file came from, guessed from its name when the export does not say
_DATABASE_NAMES = [
    (r"pubmed|medline|nbib", "PubMed"),
    (r"scopus", "Scopus"),
    (r"web.?of.?science|\bwos\b|wos_|savedrecs", "Web of Science"),
    (r"psycinfo|psychinfo", "PsycINFO"),
    (r"embase", "Embase"),
    (r"cochrane|central", "Cochrane Library"),
    (r"proquest", "ProQuest"),
    (r"lens", "Lens.org"),
    (r"crimjust|criminal.?justice", "Criminal Justice Abstracts"),
    (r"cinahl", "CINAHL"),
]

# DB/DP tag values seen in real exports, mapped to the names above
_DB_TAG_NAMES = [
    (r"^psyh$", "PsycINFO"),  # EBSCOhost database codes
    (r"^i3h$", "Criminal Justice Abstracts"),
    (r"^(?:cmedm|nlm)$", "PubMed"),
    (r"^(?:c8h|ccm)$", "CINAHL"),
    (r"scopus", "Scopus"),
    (r"embase", "Embase"),
    (r"psycinfo|psychinfo", "PsycINFO"),
    (r"pubmed|medline", "PubMed"),
    (r"web of science|wos", "Web of Science"),
    (r"criminal justice", "Criminal Justice Abstracts"),
    (r"proquest", "ProQuest"),
    (r"cochrane", "Cochrane Library"),
]


def database_from_name(path: Path) -> str | None:
    name = path.name.lower()
    for pattern, label in _DATABASE_NAMES:
        if re.search(pattern, name):
            return label
    return None


@functools.lru_cache(maxsize=256)
def database_from_tag(value: str) -> str:
    for pattern, label in _DB_TAG_NAMES:
        if re.search(pattern, value, re.IGNORECASE):
            return label
    return value.strip()


def read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LiteratureImportError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise LiteratureImportError(f"{path}: truncated or corrupt gzip file ({exc})") from exc
    return data


def decode(data: bytes, path: Path, issues: list[ImportIssue]) -> str:
    """Decode an export to text, line by line where the file mixes encodings.

    UTF-8 (with or without BOM) and UTF-16 with a BOM are read as such; a UTF-8 file with
    some Windows-1252 lines (a classic of merged exports) keeps every line, and each
    repaired line is reported.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = data.split(b"\n")
    out = []
    n_repaired = 0
    for number, raw in enumerate(lines, start=1):
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(raw.decode("cp1252", errors="replace"))
            n_repaired += 1
            if n_repaired <= 20:
                issues.append(
                    ImportIssue(
                        file=str(path),
                        line=number,
                        reason="line is not valid UTF-8; decoded as Windows-1252",
                        action="repaired",
                    )
                )
    if n_repaired > 20:
        issues.append(
            ImportIssue(
                file=str(path),
                reason=f"{n_repaired - 20} more lines decoded as Windows-1252",
                action="repaired",
            )
        )
    return "".join(line + "\n" for line in out[:-1]) + out[-1]


_RIS_TAG = re.compile(r"^(?:\d+\.\s*\r?\n)?\s*TY  -", re.MULTILINE)
_MEDLINE_TAG = re.compile(r"^PMID- ?\d", re.MULTILINE)
_BIBTEX_ENTRY = re.compile(r"^\s*@\s*[A-Za-z]+\s*[{(]", re.MULTILINE)


def sniff(data: bytes, text_head: str) -> str | None:
    """Guess the export format from the content, never from the extension."""
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    head = text_head.lstrip()
    if head.startswith("<") and ("PubmedArticle" in text_head or "<?xml" in head[:10]):
        return "pubmed_xml"
    if _MEDLINE_TAG.search(text_head):
        return "medline"
    if _RIS_TAG.search(text_head):
        return "ris"
    if _BIBTEX_ENTRY.search(text_head):
        return "bibtex"
    first_line = head.splitlines()[0] if head else ""
    if any(sep in first_line for sep in (",", "\t", ";")):
        return "csv"
    return None


_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_MONTH_NAME = re.compile(r"(?<![a-z])(jan|feb|mar|apr|may|jun|jul|aug|sept?|oct|nov|dec)[a-z]*\.?(?![a-z])",
                         re.IGNORECASE)
# 2025/05/12, 2025-05, 2020/07//undefined: a month right after a four-digit year
_NUMERIC_MONTH = re.compile(r"(?<!\d)(?:1[89]|20)\d\d[/-](\d{1,2})(?!\d)")
_YEAR_IN = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_BARE_MONTH = re.compile(r"(\d{1,2})(?:\.0)?")  # a month column: 5, 05, or 5.0 from a spreadsheet


def publication_month(*values: str | None, year: int | None = None) -> int | None:
    """The month (1-12) of the first date field in ``values`` that names one, else ``None``.

    Reads the forms search exports use: ``2025 May 12`` and ``2014 Jan-Apr`` (MEDLINE DP and
    MedlineDate: the first month), ``2025/05/12/`` and ``2020/07//undefined`` (RIS PY/DA/Y1),
    ``SEP`` (Web of Science DA), ``2025-05-12`` (BibTeX date, ISO) and numeric ``5``/``05``
    month fields. A value naming a year other than ``year`` is ignored (an access or entry date
    is not the publication date). Seasons (``Spring``) give ``None``: no month is invented.
    """
    for value in values:
        if not value:
            continue
        text = value.strip()
        found_year = _YEAR_IN.search(text)
        if year is not None and found_year and int(found_year.group(1)) != year:
            continue
        numeric = _NUMERIC_MONTH.search(text)
        if numeric:
            month = int(numeric.group(1))
            if 1 <= month <= 12:
                return month
            continue
        named = _MONTH_NAME.search(text)
        if named:
            return _MONTHS[named.group(1).lower()[:3]]
        bare = _BARE_MONTH.fullmatch(text)
        if bare and 1 <= int(bare.group(1)) <= 12:
            return int(bare.group(1))
    return None
