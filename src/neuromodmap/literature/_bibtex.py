"""A small, forgiving BibTeX reader: braces or quotes, @string macros, LaTeX accents."""

from __future__ import annotations

import re
import unicodedata
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
from neuromodmap.registry_ids import find_registry_ids

_ENTRY = re.compile(r"@\s*([A-Za-z]+)\s*([{(])")
_YEAR = re.compile(r"(1[89]\d\d|20\d\d)")
# LaTeX accent commands -> Unicode combining marks
_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "v": "\u030c", "u": "\u0306", "H": "\u030b", "c": "\u0327", "k": "\u0328",
            "r": "\u030a"}
_SYMBOLS = {r"\ss": "ß", r"\o": "ø", r"\O": "Ø", r"\ae": "æ", r"\AE": "Æ", r"\aa": "å", r"\AA": "Å",
            r"\l": "ł", r"\L": "Ł", r"\i": "ı", r"\&": "&", r"\%": "%", r"\_": "_", r"\$": "$"}
_ACCENT_RE = re.compile(r"\\([`'^\"~=.]|[vuHckr](?=[\s{]))\s*(?:\{\s*(\\?[A-Za-z])\s*\}|(\\?[A-Za-z]))")
_SKIP_TYPES = {"comment", "preamble"}


def latex_to_unicode(value: str) -> str:
    def accent(match: re.Match[str]) -> str:
        letter = match.group(2) or match.group(3)
        letter = {"\\i": "i", "\\j": "j"}.get(letter, letter)
        return unicodedata.normalize("NFC", letter + _ACCENTS[match.group(1)])

    value = _ACCENT_RE.sub(accent, value)
    for command, char in _SYMBOLS.items():
        value = re.sub(re.escape(command) + r"(?![A-Za-z])\s?", char, value)
    value = value.replace("{", "").replace("}", "").replace("--", "–")
    return " ".join(value.split())


def _read_value(text: str, i: int, strings: dict[str, str]) -> tuple[str, int]:
    """Read a field value starting at ``i``: {..}, ".." or a macro/number, joined by #."""
    parts = []
    n = len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise ValueError("value runs to the end of the file")
        if text[i] == "{":
            depth, j = 0, i
            while j < n:
                if text[j] == "{" and text[j - 1] != "\\":
                    depth += 1
                elif text[j] == "}" and text[j - 1] != "\\":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if depth:
                raise ValueError("unbalanced braces")
            parts.append(text[i + 1:j])
            i = j + 1
        elif text[i] == '"':
            j, depth = i + 1, 0
            while j < n and not (text[j] == '"' and depth == 0):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            if j >= n:
                raise ValueError("unterminated quoted value")
            parts.append(text[i + 1:j])
            i = j + 1
        else:
            match = re.compile(r"[\w\-:.]+").match(text, i)
            if not match:
                raise ValueError(f"unexpected character {text[i]!r}")
            token = match.group(0)
            parts.append(strings.get(token.lower(), token))
            i = match.end()
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == "#":
            i += 1
            continue
        return "".join(parts), i


def parse_bibtex(text: str, path: Path, database: str | None, issues: list[ImportIssue]) -> list[Record]:
    records: list[Record] = []
    strings: dict[str, str] = {}
    position = 0
    pos = 0
    while True:
        match = _ENTRY.search(text, pos)
        if not match:
            break
        entry_type = match.group(1).lower()
        line = text.count("\n", 0, match.start()) + 1
        closer = "}" if match.group(2) == "{" else ")"
        i = match.end()
        if entry_type in _SKIP_TYPES:
            pos = i
            continue
        try:
            fields: dict[str, str] = {}
            key = ""
            if entry_type != "string":
                key_match = re.compile(r"\s*([^,\s]*)\s*,").match(text, i)
                if not key_match:
                    raise ValueError("entry has no citation key")
                key = key_match.group(1)
                i = key_match.end()
            while True:
                while i < len(text) and (text[i].isspace() or text[i] == ","):
                    i += 1
                if i >= len(text):
                    raise ValueError("entry is not closed")
                if text[i] == closer:
                    i += 1
                    break
                if text[i] == "@":
                    raise ValueError("entry is not closed before the next @entry")
                name_match = re.compile(r"([\w\-:.]+)\s*=").match(text, i)
                if not name_match:
                    raise ValueError(f"expected 'field = value' at {text[i:i + 20]!r}")
                name = name_match.group(1).lower()
                value, i = _read_value(text, name_match.end(), strings)
                fields[name] = value
            pos = i
        except ValueError as exc:
            position += 1 if entry_type != "string" else 0
            issues.append(ImportIssue(file=str(path), line=line, position=position or None,
                                      reason=f"malformed @{entry_type} entry: {exc}"))
            pos = match.end()
            continue
        if entry_type == "string":
            strings.update({k: v for k, v in fields.items()})
            continue
        position += 1
        record = _to_record(entry_type, key, fields, path, database, line, position, issues)
        if record is not None:
            records.append(record)
    return records


_TYPE_MAP = {"article": "JOUR", "inproceedings": "CONF", "conference": "CONF", "book": "BOOK",
             "incollection": "CHAP", "inbook": "CHAP", "phdthesis": "THES", "mastersthesis": "THES",
             "techreport": "RPRT", "misc": "GEN", "unpublished": "UNPB", "online": "ELEC"}


def _to_record(entry_type: str, key: str, fields: dict[str, str], path: Path, database: str | None,
               line: int, position: int, issues: list[ImportIssue]) -> Record | None:
    title = latex_to_unicode(fields.get("title", ""))
    abstract = latex_to_unicode(fields.get("abstract", ""))
    authors = [latex_to_unicode(a) for a in re.split(r"\s+and\s+", fields.get("author", "")) if a.strip()]
    authors = [a for a in authors if a.lower() != "others"]
    year_field = "year" if fields.get("year", "").strip() else "date"
    year_text = fields.get(year_field, "")
    year_match = _YEAR.search(year_text)
    if year_text.strip() and not year_match:
        field_emptied(issues, path, line, position, year_field, year_text, "year (1800-2099)")
    pmid = fields.get("pmid", "").strip()
    if pmid and not pmid.isdigit():
        field_emptied(issues, path, line, position, "pmid", pmid, "PMID (digits)")
    if fields.get("doi", "").strip() and normalise_doi(fields["doi"]) is None:
        field_emptied(issues, path, line, position, "doi", fields["doi"], "DOI")
    record = Record(
        record_id=make_record_id(str(path), position),
        title=title,
        abstract=abstract,
        authors=authors,
        year=int(year_match.group(1)) if year_match else None,
        month=publication_month(fields.get("month", "").strip("{}\" "), fields.get("date", ""),
                                year=int(year_match.group(1))) if year_match else None,
        journal=latex_to_unicode(fields.get("journal", "") or fields.get("booktitle", "")),
        doi=normalise_doi(fields.get("doi")),
        pmid=pmid if pmid.isdigit() else None,
        keywords=[k.strip() for k in re.split(r"[;,]", latex_to_unicode(fields.get("keywords", ""))) if k.strip()],
        language=fields.get("language", ""),
        record_type=_TYPE_MAP.get(entry_type, entry_type.upper()),
        volume=fields.get("volume", ""),
        issue=fields.get("number", ""),
        pages=fields.get("pages", "").replace("--", "-"),
        url=fields.get("url", ""),
        source_database=database or "unknown",
        source_file=str(path),
        source_format="bibtex",
        source_line=line,
        source_position=position,
        extra={"citation_key": key},
        secondary_ids=[f"{name}: {found.raw}" for name in ("note", "annote", "annotation", "addendum")
                       for found in find_registry_ids(fields.get(name, ""))],
    )
    # no title and no abstract: kept on its DOI, journal and pages..., else skipped
    return check_untitled(record, issues, path, line, position, "title",
                          f" (entry {key!r})" if key else "")
