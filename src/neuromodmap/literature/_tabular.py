"""CSV/TSV/XLSX exports and labelled screening sets with title/abstract columns."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from neuromodmap.literature._text import publication_month
from neuromodmap.literature.records import (
    ImportIssue,
    LiteratureImportError,
    Record,
    check_untitled,
    field_emptied,
    make_record_id,
    normalise_doi,
)

# column names seen in ASReview sets, Rayyan/Covidence exports, Scopus and WoS CSVs
_COLUMNS = {
    "title": ("title", "primary_title", "article title", "document title", "ti", "titles"),
    "abstract": ("abstract", "abstract note", "ab", "notes_abstract", "abstracts"),
    "authors": ("authors", "author", "au", "author full names"),
    "year": ("year", "publication year", "py", "pubyear", "date"),
    "month": ("month", "publication month", "pd"),
    "journal": ("journal", "source title", "secondary_title", "journal/book", "so", "publication title"),
    "doi": ("doi", "di"),
    "pmid": ("pmid", "pubmedid", "pubmed_id", "pubmed id"),
    "keywords": ("keywords", "author keywords", "kw", "de"),
    "language": ("language", "language of original document", "la"),
    "publication_types": ("document type", "publication type", "pt", "publication_types"),
    "volume": ("volume", "vl"),
    "issue": ("issue", "is"),
    "pages": ("pages", "page", "pg", "pagination"),
    "page_start": ("page start", "start page", "bp"),
    "page_end": ("page end", "end page", "ep"),
}
# without a title column a table is still read when one of these identifies its rows
_IDENTIFYING = ("abstract", "doi", "pmid", "journal")
_YEAR = re.compile(r"(1[89]\d\d|20\d\d)")


def read_table(data: bytes, text: str | None, path: Path, fmt: str):
    import pandas as pd  # only tables need pandas; RIS/XML imports stay light

    try:
        if fmt == "xlsx":
            try:
                return pd.read_excel(io.BytesIO(data), dtype=str, keep_default_na=False)
            except Exception as exc:  # zipfile, openpyxl and XML errors of a damaged workbook
                raise LiteratureImportError(f"{path}: damaged or unreadable XLSX workbook ({exc})") from exc
        sample = text[:20000]
        try:
            dialect = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t")
            sep = dialect.delimiter
        except csv.Error:
            sep = ","
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError, KeyError, OSError) as exc:
        raise LiteratureImportError(f"{path}: cannot read as a {fmt.upper()} table ({_reason(exc)}); export the "
                                    "search again as RIS, MEDLINE, PubMed XML, BibTeX, CSV or XLSX") from exc


_EOF_IN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _reason(exc: Exception) -> str:
    """pandas' tokenizer message in the user's words (one line)."""
    text = " ".join(str(exc).split())
    if m := _EOF_IN_QUOTE.search(text):
        return f"a quote opens a cell on row {int(m.group(1)) + 1} and is never closed"
    if m := _FIELDS.search(text):
        return f"line {m.group(2)} has {m.group(3)} cells where the lines before it have {m.group(1)}"
    return text.removeprefix("Error tokenizing data. ").removeprefix("C error: ")


def parse_table(frame, path: Path, database: str | None, fmt: str,
                issues: list[ImportIssue]) -> list[Record]:
    lower = {str(c).strip().lower(): c for c in frame.columns}
    mapped: dict[str, str] = {}
    for field, names in _COLUMNS.items():
        for name in names:
            if name in lower:
                mapped[field] = lower[name]
                break
    title_field = str(mapped.get("title", "title"))
    if "title" not in mapped:
        looked = (f"no title column (looked for {', '.join(_COLUMNS['title'])}; "
                  f"found {', '.join(map(str, frame.columns[:15])) or 'no columns'})")
        identifying = [str(mapped[f]) for f in _IDENTIFYING if f in mapped]
        if "authors" in mapped and "year" in mapped:
            identifying.append(f"{mapped['authors']} + {mapped['year']}")
        if not identifying:
            raise LiteratureImportError(
                f"{path}: {looked}, nor any column that identifies a record (abstract, DOI, PMID, journal, "
                f"or authors with year)")
        # read on the columns that identify each row; said once for the file
        issues.append(ImportIssue(file=str(path), field="title", action="kept",
                                  reason=f"{looked}; rows read on {', '.join(identifying)}"))
    used = set(mapped.values())
    extra_columns = [c for c in frame.columns if c not in used]
    records = []
    columns = {field: frame[column].astype(str).tolist() for field, column in mapped.items()}
    extras = {str(c): frame[c].astype(str).tolist() for c in extra_columns}
    for index in range(len(frame)):
        position = index + 1

        def get(field: str, index: int = index) -> str:
            values = columns.get(field)
            return " ".join(values[index].split()) if values is not None else ""

        title, abstract = get("title"), get("abstract")
        # a quoted cell may span lines, so a table record is located by its row number
        line = None
        year_match = _YEAR.search(get("year"))
        if not year_match and get("year"):
            field_emptied(issues, path, line, position, str(mapped["year"]), get("year"), "year (1800-2099)")
        pmid = get("pmid").split(".")[0]
        if pmid and not pmid.isdigit():
            field_emptied(issues, path, line, position, str(mapped["pmid"]), get("pmid"), "PMID (digits)")
        doi = normalise_doi(get("doi"))
        if doi is None and get("doi"):
            field_emptied(issues, path, line, position, str(mapped["doi"]), get("doi"), "DOI")
        authors_text = get("authors")
        splitter = ";" if ";" in authors_text else ","
        authors = [a.strip() for a in authors_text.split(splitter) if a.strip()] if splitter == ";" else (
            [authors_text] if authors_text else [])
        pages = get("pages") or "-".join(p for p in (get("page_start"), get("page_end")) if p)
        record = Record(
            record_id=make_record_id(str(path), position),
            title=title,
            abstract=abstract,
            authors=authors,
            year=int(year_match.group(1)) if year_match else None,
            month=publication_month(get("month"), get("year"), year=int(year_match.group(1))) if year_match else None,
            journal=get("journal"),
            doi=doi,
            pmid=pmid if pmid.isdigit() else None,
            keywords=[k.strip() for k in re.split(r"[;,]", get("keywords")) if k.strip()],
            publication_types=[p.strip() for p in get("publication_types").split(";") if p.strip()],
            language=get("language"),
            volume=get("volume"),
            issue=get("issue"),
            pages=pages,
            source_database=database or "unknown",
            source_file=str(path),
            source_format=fmt,
            source_line=line,
            source_position=position,
            extra={name: values[index] for name, values in extras.items()},
        )
        # no title and no abstract: kept on its DOI, PMID, journal and pages..., else skipped
        if title or abstract or check_untitled(record, issues, path, line, position, title_field):
            records.append(record)
    return records
