"""The one internal bibliographic record every literature importer produces."""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from neuromodmap.provenance import Provenance

__all__ = [
    "Record",
    "ImportIssue",
    "ImportResult",
    "LiteratureImportError",
    "normalise_doi",
    "make_record_id",
    "field_emptied",
    "identifying_fields",
    "check_untitled",
    "is_untitled_issue",
]

_DOI_RE = re.compile(r"(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)


class LiteratureImportError(ValueError):
    """A file that cannot be read at all (empty, unknown format, a table with no column that
    identifies a record...).

    The message names the file and, where it applies, the line and the field.
    """


def normalise_doi(value: str | None) -> str | None:
    """Return the bare, lower-case DOI in ``value`` (URL forms and ``doi:`` prefixes removed)."""
    if not value:
        return None
    match = _DOI_RE.search(value)
    if not match:
        return None
    # trailing punctuation from free text and URL-encoded characters are not part of a DOI
    doi = match.group(1).rstrip(".,;)]}").lower()
    return doi.replace("%2f", "/")


def make_record_id(file_key: str, position: int) -> str:
    """A stable id for the ``position``-th record of a file (``file_key``: its content hash)."""
    digest = hashlib.sha1(f"{file_key}\x00{position}".encode()).hexdigest()[:12]
    return f"lit-{digest}"


def field_emptied(issues: list[ImportIssue], path, line: int | None, position: int, field: str, value: str,
                  what: str) -> None:
    """Report a field whose text holds no ``what`` (a year, a PMID, a DOI): it is left empty
    and the record kept."""
    issues.append(ImportIssue(file=str(path), line=line, position=position, field=field,
                              reason=f"no {what} in {' '.join(value.split())[:60]!r}", action="field emptied"))


def identifying_fields(record: Record) -> list[str]:
    """What identifies ``record`` without its title and abstract, as short phrases.

    A DOI, a PMID, a journal (or other container) with its volume, pages or year, or authors
    with the year; empty when none of these is there. The phrases name the values
    (``DOI 10.1016/...``, ``journal 'Pain'``, ``volume 12``), so a reviewer can find the study.
    """
    found = []
    if record.doi:
        found.append(f"DOI {record.doi}")
    if record.pmid:
        found.append(f"PMID {record.pmid}")
    year_used = False
    if record.journal and (record.volume or record.pages or record.year):
        found.append(f"journal {' '.join(record.journal.split())[:60]!r}")
        found += [f"{name} {value}" for name, value in (("volume", record.volume), ("pages", record.pages)) if value]
        if record.year:
            found.append(f"year {record.year}")
            year_used = True
    if record.authors and record.year:
        found.append(f"first author {record.authors[0][:40]!r}" + ("" if year_used else f", year {record.year}"))
    return found


_NOTHING_IDENTIFYING = ("record has neither a title nor an abstract, nor a DOI, PMID, journal with volume, "
                        "pages or year, or authors with year")


def check_untitled(record: Record, issues: list[ImportIssue], path, line: int | None, position: int,
                   field: str, note: str = "") -> Record | None:
    """A record with neither title nor abstract: kept, and reported (``kept``), when something
    else identifies it (:func:`identifying_fields`); otherwise reported as ``skipped`` and
    ``None`` returned. A record with a title or an abstract is returned as it is. ``note`` is
    added to the reason (e.g. the BibTeX citation key)."""
    if record.title or record.abstract:
        return record
    found = identifying_fields(record)
    if found:
        issues.append(ImportIssue(file=str(path), line=line, position=position, field=field, action="kept",
                                  reason=f"no title or abstract; kept on {', '.join(found)}{note}"))
        return record
    issues.append(ImportIssue(file=str(path), line=line, position=position, field=field,
                              reason=_NOTHING_IDENTIFYING + note, action="skipped"))
    return None


def is_untitled_issue(issue: ImportIssue) -> bool:
    """Whether ``issue`` reports a record kept without title and abstract."""
    return issue.action == "kept" and issue.reason.startswith("no title or abstract; kept on ")


class Record(BaseModel):
    """A bibliographic record from any search export, normalised.

    Fields a source does not carry stay ``None`` or empty; importers never invent them.
    """

    model_config = ConfigDict(extra="forbid")

    record_id: str = Field(description="stable id: hash of source file and position")
    title: str = ""
    abstract: str = ""
    authors: list[str] = Field(default_factory=list, description="'Surname, Given' where the source allows")
    year: int | None = None
    month: int | None = Field(default=None, ge=1, le=12, description="publication month, where the export gives it")
    journal: str = ""
    doi: str | None = None
    pmid: str | None = None
    keywords: list[str] = Field(default_factory=list)
    mesh_terms: list[str] = Field(default_factory=list)
    publication_types: list[str] = Field(default_factory=list)
    language: str = ""
    record_type: str = Field(default="", description="RIS TY / BibTeX entry type, e.g. JOUR, CONF")
    volume: str = ""
    issue: str = ""
    pages: str = ""
    url: str = ""
    source_database: str = Field(default="unknown", description="PubMed, Scopus, Web of Science, ...")
    source_file: str = ""
    source_format: str = ""
    source_line: int | None = Field(default=None, description="first line of the record in its file")
    source_position: int = Field(default=0, description="1-based order of the record in its file")
    extra: dict[str, str] = Field(default_factory=dict, description="unmapped columns (e.g. labels)")
    secondary_ids: list[str] = Field(
        default_factory=list,
        description="ids the export declares beside the record's own, as 'FIELD: value': PubMed SI "
                    "('SI: ClinicalTrials.gov/NCT01234567'), PubMed XML DataBankList ('DataBank: ...'), and "
                    "trial registry ids found in RIS/BibTeX note fields ('N1: NCT01234567')")

    @property
    def first_author(self) -> str:
        return self.authors[0] if self.authors else ""

    def citation(self) -> str:
        """A short Vancouver-like citation string: authors. title. journal. year;volume(issue):pages.

        A record without a title (kept on its DOI or journal and pages) is cited without one;
        nothing is put in its place.
        """
        authors = ", ".join(self.authors[:3]) + (" et al." if len(self.authors) > 3 else "")
        where = str(self.year or "")
        if self.volume:
            where += (";" if where else "") + self.volume + (f"({self.issue})" if self.issue else "")
        if self.pages:
            where += (":" if self.volume else (";" if where else "")) + self.pages
        parts = [p for p in (authors, self.title.rstrip("."), self.journal, where) if p]
        text = ". ".join(parts) + "." if parts else ""
        if self.doi:
            text += f" doi:{self.doi}"
        if self.pmid:
            text += f" PMID:{self.pmid}"
        return text.strip()


class ImportIssue(BaseModel):
    """A problem met while reading a file and what was done: the record ``skipped`` (nothing
    identifies it: no title, abstract, DOI, PMID, journal with volume/pages/year or authors with
    year; or it cannot be parsed), ``kept`` or ``repaired`` as read (a record without title and
    abstract is ``kept`` on its DOI, PMID or journal and pages), or
    one of its fields left empty (``field emptied``: a year, PMID or DOI field whose text
    holds none; the record is imported)."""

    file: str
    line: int | None = None
    position: int | None = Field(default=None, description="record number in the file")
    field: str | None = None
    reason: str
    action: Literal["skipped", "kept", "repaired", "field emptied"] = "skipped"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.position is not None:
            where += f", record {self.position}"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.reason} ({self.action})"


class ImportResult(BaseModel):
    """Records read from one file, the problems met, and where they came from."""

    records: list[Record]
    issues: list[ImportIssue] = Field(default_factory=list)
    format: str
    source_database: str
    provenance: Provenance

    @property
    def n_skipped(self) -> int:
        return sum(1 for issue in self.issues if issue.action == "skipped")

    def to_frame(self):
        """One row per record."""
        return records_to_frame(self.records)

    def methods_sentence(self) -> str:
        return (
            f"{len(self.records)} records were imported from {self.source_database} "
            f"({self.format} export {self.provenance.source}); {self.n_skipped} were skipped."
        )


def records_to_frame(records: list[Record]):
    """A pandas DataFrame with one row per record."""
    import pandas as pd

    rows = [r.model_dump() for r in records]
    columns = list(Record.model_fields)
    return pd.DataFrame(rows, columns=columns)
