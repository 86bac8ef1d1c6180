"""MEDLINE/PubMed tagged format (.nbib, PubMed "Save as PubMed" .txt)."""

from __future__ import annotations

import re
from pathlib import Path

from neuromodmap.literature._text import publication_month
from neuromodmap.literature.records import (
    ImportIssue,
    Record,
    check_untitled,
    field_emptied,
    make_record_id,
    normalise_doi,
)

_TAG = re.compile(r"^([A-Z][A-Z0-9]{1,3})\s*- ?(.*)$")
_YEAR = re.compile(r"(1[89]\d\d|20\d\d)")


def parse_medline(text: str, path: Path, database: str | None, issues: list[ImportIssue]) -> list[Record]:
    records: list[Record] = []
    fields: dict[str, list[str]] = {}
    start_line = 0
    last_tag: str | None = None
    position = 0

    def close() -> None:
        nonlocal fields, position
        if fields:
            position += 1
            record = _to_record(fields, path, database, start_line, position, issues)
            if record is not None:
                records.append(record)
        fields = {}

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n").replace("\ufeff", "")
        if not line.strip():
            continue
        if line.startswith("      ") or line.startswith("\t"):
            if last_tag and fields:
                fields[last_tag][-1] += " " + line.strip()
            continue
        match = _TAG.match(line)
        if not match:
            issues.append(ImportIssue(file=str(path), line=number, reason=f"line is not a MEDLINE tag: {line[:40]!r}",
                                      action="kept"))
            continue
        tag, value = match.group(1), match.group(2).strip()
        if tag == "PMID":
            close()
            start_line = number
        elif not fields:
            start_line = number
        fields.setdefault(tag, []).append(value)
        last_tag = tag
    close()
    return records


def _to_record(fields: dict[str, list[str]], path: Path, database: str | None, line: int, position: int,
               issues: list[ImportIssue]) -> Record | None:
    def first(*tags: str) -> str:
        for tag in tags:
            if fields.get(tag):
                return " ".join(fields[tag][0].split())
        return ""

    title = first("TI", "BTI")
    abstract = first("AB")
    doi = None
    for value in fields.get("AID", []) + fields.get("LID", []):
        if "[doi]" in value:
            doi = normalise_doi(value.replace("[doi]", ""))
            break
    date_text = first("DP", "DEP", "DA")
    year_match = _YEAR.search(date_text)
    if date_text and not year_match:
        field_emptied(issues, path, line, position, next(t for t in ("DP", "DEP", "DA") if fields.get(t)),
                      date_text, "year (1800-2099)")
    pmid = first("PMID")
    if pmid and not pmid.isdigit():
        field_emptied(issues, path, line, position, "PMID", pmid, "PMID (digits)")
    record = Record(
        record_id=make_record_id(str(path), position),
        title=title,
        abstract=abstract,
        authors=[" ".join(a.split()) for a in (fields.get("FAU") or fields.get("AU") or [])],
        year=int(year_match.group(1)) if year_match else None,
        month=publication_month(date_text) if year_match else None,
        journal=first("JT", "TA"),
        doi=doi,
        pmid=pmid if pmid.isdigit() else None,
        keywords=[" ".join(k.split()) for k in fields.get("OT", [])],
        mesh_terms=[" ".join(m.split()) for m in fields.get("MH", [])],
        publication_types=[" ".join(p.split()) for p in fields.get("PT", [])],
        language=first("LA"),
        record_type="JOUR",
        volume=first("VI"),
        issue=first("IP"),
        pages=first("PG"),
        source_database=database or "PubMed",
        source_file=str(path),
        source_format="medline",
        source_line=line,
        source_position=position,
        # secondary source ids: "ClinicalTrials.gov/NCT01234567", "GENBANK/AF123456", ...
        secondary_ids=[f"SI: {' '.join(v.split())}" for v in fields.get("SI", []) if v.strip()],
    )
    # no title and no abstract: kept on its PMID, DOI, journal and pages..., else skipped
    return check_untitled(record, issues, path, line, position, "TI")
