"""RIS reader (Scopus, Embase, Web of Science, Ovid, ProQuest, Lens, EBSCO, Zotero, EndNote)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from neuromodmap.literature._text import database_from_tag, publication_month
from neuromodmap.literature.records import (
    ImportIssue,
    Record,
    check_untitled,
    field_emptied,
    normalise_doi,
)
from neuromodmap.registry_ids import find_registry_ids

_YEAR = re.compile(r"(1[89]\d\d|20\d\d)")
_PMID_URL = re.compile(r"(?:pubmed(?:\.ncbi\.nlm\.nih\.gov)?/|list_uids=|pmid[:=])(\d{1,9})\b", re.I)
# markup that exports put in titles and abstracts (Lens: HTML paragraphs; publishers: JATS/MathML);
# only these named tags are removed, so text such as "<12 weeks vs >24 weeks" is kept whole
_HTML_TAG = re.compile(
    r"</?(?:(?:jats|mml):[a-z-]+|p|br|hr|i|b|u|em|strong|sup|sub|span|div|a|font|small|big|scp|sc|inf|"
    r"italic|bold|ul|ol|li|h[1-6]|title|abstract|sec|label|list|list-item|named-content)"
    r"(?=[\s/>])[^<>]{0,200}>",
    re.IGNORECASE,
)

# every tag of the RIS specification and of the vendor variants in the real exports; other
# two-letter tags are kept out of the record and reported once per file
KNOWN_TAGS = set(
    "TY ER TI T1 T2 T3 ST CT BT AB N2 N1 AU A1 A2 A3 A4 AD AI PY Y1 Y2 DA JF JO JA J1 J2 DO L1 L2 L3 L4 "
    "UR AN ID KW LA M1 M2 M3 SN SP EP VL IS PB CY DB DP C1 C2 C3 C4 C5 C6 C7 C8 ET LK U1 U2 U3 U4 U5 "
    "NL RP OP CN CA SE NV RI TA TT LB FU FX PA PI PU WE J9 JI WP ED CP MA BN EF".split()
)

# the tags a Record is built from; the rest are recognised and dropped
_USED_TAGS = set("TY TI T1 CT BT AB N2 AU A1 PY Y1 DA Y2 T2 JF JO JA J2 J1 DO L2 UR C1 AN KW M3 LA SP EP VL IS "
                 "DB DP".split())
# notes, accession numbers and custom fields: only the trial registry ids found in them are kept
_NOTE_TAGS = ("N1", "AN", "M1", "M2", "U1", "U2", "U3", "U4", "U5", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8")
_USED_TAGS |= set(_NOTE_TAGS)
_CONTENT_TAGS = {"TI", "T1", "AU", "A1", "AB", "N2", "PY", "Y1", "DO"}
_TITLE_TAGS = ("TI", "T1", "CT", "BT")
_ABSTRACT_TAGS = ("AB", "N2")
_JOURNAL_TAGS = ("T2", "JF", "JO", "JA", "J2", "J1")
_YEAR_TAGS = ("PY", "Y1", "DA", "Y2")


def _clean(value: str) -> str:
    # Lens puts HTML paragraphs in abstracts; entities appear in several exports
    value = _HTML_TAG.sub(" ", value) if "<" in value else value
    value = html.unescape(value) if "&" in value else value
    # collapse runs of whitespace only where there are any (splitting long abstracts is costly)
    return " ".join(value.split()) if ("  " in value or "\t" in value or "\n" in value) else value.strip()


def parse_ris(text: str, path: Path, database: str | None, issues: list[ImportIssue]) -> list[Record]:
    """Parse RIS text into records; broken records are repaired or skipped with a reason."""
    records: list[Record] = []
    fields: dict[str, list[str]] | None = None
    start_line = 0
    last_tag: str | None = None
    unknown: dict[str, int] = {}
    position = 0

    def close(end_reason: str | None) -> None:
        nonlocal fields, position
        position += 1
        if end_reason:
            issues.append(ImportIssue(file=str(path), line=start_line, position=position,
                                      field="ER", reason=end_reason, action="kept"))
        record = _to_record(fields or {}, path, database, start_line, position, issues)
        if record is not None:
            records.append(record)
        fields = None

    if "\ufeff" in text:
        text = text.replace("\ufeff", "")
    for number, line in enumerate(text.splitlines(), start=1):
        # string tests, not a regex: this loop runs once per line of 100,000-record exports
        tag = line[:2]
        if line[2:5] == "  -" and (len(line) == 5 or line[5] == " ") and tag.isalnum() and tag.isupper() \
                and tag[0].isalpha():
            value = line[6:].strip()
            if tag == "TY":
                if fields is not None:
                    close(f"record has no ER line; it ends where the next TY starts (line {number})")
                fields = {"TY": [value]}
                start_line = number
                last_tag = "TY"
                continue
            if tag == "ER":
                if fields is None:
                    continue  # a stray ER: nothing to close
                close(None)
                last_tag = None
                continue
            if fields is None:
                if tag not in _CONTENT_TAGS:
                    continue  # e.g. Ovid's NL line after ER
                # content before any TY (a lost TY line): keep it as a record, ER/TY closes it
                fields = {}
                start_line = number
            if tag not in _USED_TAGS:
                if tag not in KNOWN_TAGS:
                    unknown[tag] = unknown.get(tag, 0) + 1
                last_tag = None  # known but unused (addresses, notes...): not kept
                continue
            fields.setdefault(tag, []).append(value)
            last_tag = tag
        elif fields is not None and last_tag and line.strip():
            # wrapped continuation line (EndNote/Ovid wrap long abstracts)
            if last_tag not in ("TY", "ER"):
                fields[last_tag][-1] = (fields[last_tag][-1] + " " + line.strip()).strip()
        # lines outside a record (Ovid's "1." numbering and link footers) carry no data
    if fields is not None:
        close("file ends inside a record (no ER line); the record was kept")
    if unknown:
        tags = ", ".join(f"{t} ({n}x)" for t, n in sorted(unknown.items()))
        issues.append(ImportIssue(file=str(path), field="tags", action="kept",
                                  reason=f"unknown RIS tags ignored: {tags}"))
    return records


def _first(fields: dict[str, list[str]], tags: tuple[str, ...]) -> str:
    for tag in tags:
        for value in fields.get(tag, ()):
            if value.strip():
                return value
    return ""


def _to_record(fields: dict[str, list[str]], path: Path, database: str | None, line: int,
               position: int, issues: list[ImportIssue]) -> Record | None:
    title = _clean(_first(fields, _TITLE_TAGS))
    abstract = _clean(_first(fields, _ABSTRACT_TAGS))
    year = None
    for tag in _YEAR_TAGS:
        for value in fields.get(tag, ()):
            found = _YEAR.search(value)
            if found:
                year = int(found.group(1))
                break
        if year:
            break
    if year is None:
        given = next(((tag, v) for tag in _YEAR_TAGS for v in fields.get(tag, ()) if v.strip()), None)
        if given:
            field_emptied(issues, path, line, position, given[0], given[1], "year (1800-2099)")
    month = publication_month(*(value for tag in ("PY", "Y1", "DA") for value in fields.get(tag, ())),
                              year=year) if year else None
    doi = None
    for tag in ("DO", "L2", "UR"):
        for value in fields.get(tag, ()):
            # link fields hold many URLs; only a doi.org link names the record's own DOI
            if tag != "DO" and "doi.org/" not in value.lower():
                continue
            doi = normalise_doi(value)
            if doi:
                break
        if doi:
            break
    given_doi = _first(fields, ("DO",))
    if given_doi and normalise_doi(given_doi) is None:
        field_emptied(issues, path, line, position, "DO", given_doi, "DOI")
    pmid = None
    for value in fields.get("UR", []) + fields.get("L2", []) + fields.get("C1", []):
        found = _PMID_URL.search(value)
        if found:
            pmid = found.group(1)
            break
    db_tag = _first(fields, ("DB", "DP"))
    db_name = database or (database_from_tag(db_tag) if db_tag else "unknown")
    # PubMed exports through EndNote put the PMID in AN
    if pmid is None and fields.get("AN") and re.fullmatch(r"\d{5,9}", fields["AN"][0].strip()) and (
        db_name == "PubMed"
    ):
        pmid = fields["AN"][0].strip()
    # values are already stripped; only markup needs cleaning
    authors = [_clean(a) if "<" in a or "&" in a else a for a in fields.get("AU", []) + fields.get("A1", []) if a]
    keywords = [_clean(k) if "<" in k or "&" in k else k for k in fields.get("KW", []) if k]
    pages = "-".join(p for p in (_first(fields, ("SP",)), _first(fields, ("EP",))) if p)
    publication_types = [_clean(v) for v in fields.get("M3", []) if v and not normalise_doi(v)]
    record = Record(
        record_id="pending",  # read_records sets the content-based id
        title=title,
        abstract=abstract,
        authors=authors,
        year=year,
        month=month,
        journal=_clean(_first(fields, _JOURNAL_TAGS)),
        doi=doi,
        pmid=pmid,
        keywords=keywords,
        publication_types=publication_types,
        language=_clean(_first(fields, ("LA",))),
        record_type=_first(fields, ("TY",)).upper(),
        volume=_first(fields, ("VL",)),
        issue=_first(fields, ("IS",)),
        pages=pages,
        url=_first(fields, ("UR",)),
        source_database=db_name,
        source_file=str(path),
        source_format="ris",
        source_line=line,
        source_position=position,
        secondary_ids=[f"{tag}: {found.raw}" for tag in _NOTE_TAGS for value in fields.get(tag, ())
                       for found in find_registry_ids(value)],
    )
    # no title and no abstract: kept on its DOI, PMID, journal and pages..., else skipped
    return record if (title or abstract) else check_untitled(record, issues, path, line, position, "TI")
