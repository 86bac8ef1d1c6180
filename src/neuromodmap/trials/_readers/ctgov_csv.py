"""ClinicalTrials.gov website exports, CSV or TSV (current site and classic site) -> Trial.

The website's "Download" button writes one row per study with the columns the user ticked.
Two families of layouts exist:

* **current site** (clinicaltrials.gov since 2023): ``NCT Number, Study Title, Study URL,
  Acronym, Study Status, Brief Summary, Study Results, Conditions, Interventions, ...``
  (30 columns at most); enumerations in API v2 spelling (``RECRUITING``, ``PHASE1|PHASE2``,
  ``DEVICE: rTMS``), ISO dates (``2025-05`` or ``2025-05-09``);
* **classic site** (``SearchResults.csv``, until 2023): ``Rank, NCT Number, Title, ...,
  URL`` (27 columns at most; the oldest default had 8 and no NCT Number, the id being only in
  the URL); words (``Active, not recruiting``, ``Phase 1|Phase 2``, ``Device: rTMS``) and
  dates like ``February 1, 2020``.

Columns are recognised by name (case and spacing aside), in any order and any selection; the
values are read whatever their family's spelling. Multi-valued cells are joined with ``|``.
A file is recognised as such an export when its header names an ``NCT Number`` column, or a
``Study URL``/``URL`` column beside another website column; a header with website columns but
neither is refused with one error (the trials cannot be identified).

The reading rules (docs/trials_import.md): a bad date, enrollment, phase, results flag or
oversize cell empties that field and is reported (``field emptied``); a row without an NCT id,
with more cells than the header, or that is not valid CSV is skipped and reported (``record
skipped``); a file that ends inside a quoted cell keeps the rows before it (``rest of file
skipped``). Text that is not valid UTF-8 (and has no byte-order mark) is read cell by cell as
Windows-1252, each such cell reported (``field read as cp1252``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from neuromodmap.trials._readers._common import (
    MAX_RECORD_BYTES,
    FieldError,
    Fields,
    ImportedRecord,
    RecordError,
    build_trial,
    check_sizes,
    code,
    date_precision,
    parse_date,
    phases,
)
from neuromodmap.trials._readers._files import sniff_encoding
from neuromodmap.trials.models import Trial

__all__ = [
    "COLUMNS", "FIELD_READ_AS_CP1252", "CsvExport", "header_kind", "row_to_trial", "NO_ID_COLUMN",
]

#: ``ImportProblem.action`` of a cell that was not valid UTF-8: it was read as Windows-1252
FIELD_READ_AS_CP1252 = "field read as cp1252"

#: the website's column names (lower case, spaces single) -> the key this reader uses
COLUMNS: dict[str, str] = {
    "rank": "rank",
    "nct number": "nct",
    "study title": "title", "title": "title",
    "study url": "url", "url": "url",
    "acronym": "acronym",
    "study status": "status", "status": "status",
    "brief summary": "summary",
    "study results": "results",
    "conditions": "conditions",
    "interventions": "interventions",
    "primary outcome measures": "primary_outcomes",
    "secondary outcome measures": "secondary_outcomes",
    "other outcome measures": "other_outcomes",
    "outcome measures": "outcomes",
    "sponsor": "sponsor",
    "collaborators": "collaborators",
    "sponsor/collaborators": "sponsor_collaborators",
    "sex": "sex", "gender": "sex",
    "age": "age",
    "phases": "phases", "phase": "phases",
    "enrollment": "enrollment",
    "funder type": "funder_type",
    "funded bys": "funded_bys",
    "study type": "study_type",
    "study design": "study_design", "study designs": "study_design",
    "other ids": "other_ids",
    "start date": "start_date",
    "primary completion date": "primary_completion_date",
    "completion date": "completion_date",
    "first posted": "first_posted", "first received": "first_posted",
    "results first posted": "results_first_posted", "results first received": "results_first_posted",
    "last update posted": "last_update_posted", "last updated": "last_update_posted",
    "locations": "locations",
    "study documents": "documents",
}
_CURRENT_ONLY = {"study title", "study url", "study status", "brief summary", "sex", "funder type",
                 "study design", "primary outcome measures", "secondary outcome measures",
                 "other outcome measures", "collaborators"}
_CLASSIC_ONLY = {"rank", "title", "url", "status", "gender", "funded bys", "study designs",
                 "outcome measures", "sponsor/collaborators", "first received", "last updated",
                 "results first received"}
#: columns whose latest date bounds the export's date from below (see :meth:`CsvExport.latest_date`)
_POSTED = ("last_update_posted", "first_posted", "results_first_posted")
#: header of a website export without a column that identifies the trials (see :func:`header_kind`)
NO_ID_COLUMN = "no_id_column"
_DELIMITERS = {",": "CSV", "\t": "TSV", ";": "semicolon-separated"}

_NCT = re.compile(r"NCT\d{8}", re.IGNORECASE)
_SURROGATE = re.compile("[\udc80-\udcff]")
_V2_PHASES = frozenset({"NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4"})
_INTERVENTION_TYPES = frozenset({
    "DRUG", "DEVICE", "BIOLOGICAL", "PROCEDURE", "RADIATION", "BEHAVIORAL", "GENETIC",
    "DIETARY_SUPPLEMENT", "COMBINATION_PRODUCT", "DIAGNOSTIC_TEST", "OTHER",
})
_RESULTS = {"yes": True, "has results": True, "no": False, "no results available": False}
# the part after a location's last comma that is the end of a country name, not the country:
# "Korea, Republic of", "Congo, The Democratic Republic of the", "Palestinian Territory, occupied",
# "Palestinian Territories, Occupied" (the registry's names; both spellings of the last occur)
_COUNTRY_TAIL = re.compile(r"(?:\bof(?: the)?|^[a-z].*|^Occupied|^Sint Eustatius and Saba"
                           r"|^Ascension and Tristan da Cunha|^U\.S\.|^British)$")


def _key(cell: str) -> str:
    return " ".join(cell.replace("\ufeff", "").split()).lower()


def _split_header(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return []


def header_kind(first_line: str) -> tuple[str | None, str]:
    """Judge a file's first line: (``"ctgov_csv"``, delimiter) for a website export that
    identifies its trials; (:data:`NO_ID_COLUMN`, delimiter) for website columns without an
    NCT Number or URL column; (None, "") for anything else."""
    best: tuple[int, str, set[str]] = (0, "", set())
    for delimiter in _DELIMITERS:
        names = {_key(c) for c in _split_header(first_line, delimiter)}
        n = len(names & COLUMNS.keys())
        if n > best[0]:
            best = (n, delimiter, names)
    n, delimiter, names = best
    if "nct number" in names:
        return "ctgov_csv", delimiter
    if n >= 2 and names & {"study url", "url"}:
        return "ctgov_csv", delimiter
    # three website columns and a typical one: a website export, but its trials have no id
    if n >= 3 and names & {"study title", "conditions", "interventions", "study status", "study results"}:
        return NO_ID_COLUMN, delimiter
    return None, ""


# --------------------------------------------------------------------------- values
def _multi(cell: str) -> list[str]:
    out: list[str] = []
    for part in cell.split("|"):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def _interventions(cell: str) -> list[dict[str, Any]]:
    """``DEVICE: rTMS|BEHAVIORAL: CBT`` (or ``Device: rTMS``) -> interventions with type and
    name. A part without a known type continues the previous name (a name holding ``|``)."""
    out: list[dict[str, Any]] = []
    for part in cell.split("|"):
        kind, sep, name = part.partition(":")
        itype = code(kind, "interventions") if sep else None
        if itype == "BEHAVIOURAL":
            itype = "BEHAVIORAL"
        if itype in _INTERVENTION_TYPES:
            out.append({"type": itype, "name": name[1:] if name.startswith(" ") else name})
        elif out:
            out[-1]["name"] += "|" + part
        elif part.strip():
            out.append({"type": None, "name": part.strip()})
    for iv in out:
        iv["name"] = iv["name"].strip()
    return [iv for iv in out if iv["name"] or iv["type"]]


def _phases(cell: str, field: str) -> list[str]:
    out: list[str] = []
    for part in cell.split("|"):
        part = part.strip()
        if not part:
            continue
        found = [part.upper()] if part.upper() in _V2_PHASES else phases(part, field)
        out.extend(p for p in found if p not in out)
    return out


def _enrollment(cell: str, field: str) -> int | None:
    text = cell.strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise FieldError(field, f"expected a count, got {text[:40]!r}")
    return int(text)


def _results(cell: str, field: str) -> bool | None:
    text = " ".join(cell.split()).lower()
    if not text:
        return None
    if text not in _RESULTS:
        raise FieldError(field, f"expected YES/NO (or Has Results/No Results Available), got {cell.strip()[:40]!r}")
    return _RESULTS[text]


def _countries(cell: str) -> list[str]:
    """The country of each ``Facility, City, State, Zip, Country`` location (the last part; a
    country name with a comma, such as ``Korea, Republic of``, is kept whole)."""
    out: list[str] = []
    for loc in cell.split("|"):
        parts = [p.strip() for p in loc.split(",")]
        while parts and not parts[-1]:
            parts.pop()
        if not parts:
            continue
        country = parts.pop()
        if parts and _COUNTRY_TAIL.search(country):
            country = f"{parts.pop()}, {country}"
        if country not in out:
            out.append(country)
    return out


def _design(cell: str) -> dict[str, str | None]:
    """``Allocation: RANDOMIZED|Intervention Model: PARALLEL|Masking: DOUBLE (...)|Primary
    Purpose: TREATMENT`` -> allocation, masking, primary purpose in API v2 spelling."""
    out: dict[str, str | None] = {}
    for part in cell.split("|"):
        key, sep, value = part.partition(":")
        key = _key(key)
        if not sep:
            continue
        for name, label in (("allocation", "allocation"), ("masking", "masking"), ("primary_purpose", "primary purpose")):
            if key == label:
                out[name] = code(value, name)
    return out


def _nct_of(row: dict[str, str], names: dict[str, str]) -> str:
    """The row's NCT id: its NCT Number, else the one in its URL; a RecordError when neither."""
    nct_col, url_col = names.get("nct"), names.get("url")
    nct = row.get("nct", "").strip()
    if nct:
        if not _NCT.fullmatch(nct):
            raise RecordError(nct_col or "NCT Number", f"not an NCT id: {nct[:40]!r}")
        return nct.upper()
    url = row.get("url", "")
    if m := _NCT.search(url):
        return m.group().upper()
    where = " or ".join(repr(c) for c in (nct_col, url_col) if c)
    raise RecordError(nct_col or url_col or "NCT Number", f"no NCT id in {where}")


def row_to_trial(row: dict[str, str], names: dict[str, str], problems: list[FieldError] | None = None) -> Trial:
    """Map one export row (cells by this module's keys, see :data:`COLUMNS`) to a Trial.

    ``names`` maps the keys to the column names as the file spells them (for problems).
    Each bad field is left empty and appended to ``problems`` (without a list the first
    raises); a row without an NCT id raises :class:`RecordError`.
    """
    nct = _nct_of(row, names)
    f = Fields(problems, nct)
    T = f.take  # T(default, fn, *args): fn(*args), or the default when that field is bad

    def cell(key: str) -> str:
        return row.get(key, "").strip()

    def name(key: str) -> str:
        return names.get(key, key)

    d: dict[str, Any] = {
        "registry_id": nct,
        "registry": "ctgov",
        "source_format": "ctgov_csv",
        "url": f"https://clinicaltrials.gov/study/{nct}",
        "title": cell("title"),
        "acronym": cell("acronym"),
        "brief_summary": cell("summary"),
        "conditions": _multi(row.get("conditions", "")),
        "interventions": _interventions(row.get("interventions", "")),
        "primary_outcomes": _multi(row.get("primary_outcomes", "")),
        "secondary_outcomes": _multi(row.get("secondary_outcomes", "")),
        "overall_status": code(cell("status"), "overall_status"),
        "study_type": code(cell("study_type").split("[", 1)[0], "study_type"),
        "phases": T([], _phases, cell("phases"), name("phases")),
        "enrollment": T(None, _enrollment, cell("enrollment"), name("enrollment")),
        "has_results": T(None, _results, cell("results"), name("results")),
        "start_date": T(None, parse_date, cell("start_date"), name("start_date")),
        "completion_date": T(None, parse_date, cell("completion_date"), name("completion_date")),
        "start_date_precision": date_precision(cell("start_date")),
        "completion_date_precision": date_precision(cell("completion_date")),
        "last_update": T(None, parse_date, cell("last_update_posted"), name("last_update_posted")),
        "countries": _countries(row.get("locations", "")),
        **_design(row.get("study_design", "")),
    }
    # Other IDs: the sponsor's own study id first, then the secondary ids
    other_ids = [s.strip() for s in row.get("other_ids", "").split("|") if s.strip()]
    d["secondary_ids"] = [s for s in other_ids[1:] if s != nct]
    if "sponsor" in row:
        d["sponsor"] = cell("sponsor") or None
        d["sponsor_class"] = code(cell("funder_type"), "sponsor_class")
    elif "sponsor_collaborators" in row:  # classic: the lead sponsor first, then collaborators
        d["sponsor"] = next(iter(_multi(row["sponsor_collaborators"])), None)
        classes = _multi(row.get("funded_bys", ""))  # the classes of all funders, each once
        d["sponsor_class"] = code(classes[0], "sponsor_class") if len(classes) == 1 else None
    url = row.get("url", "").strip()
    if url and row.get("nct", "").strip() and (m := _NCT.search(url)) and m.group().upper() != nct:
        f.note(FieldError(name("url"), f"names {m.group()}, not the row's {nct}"))
        d["url"] = None
    check_sizes(d, nct, f)
    return build_trial(d, f)


# --------------------------------------------------------------------------- files
class CsvExport:
    """One website export being read.

    Parameters
    ----------
    open_binary : callable
        Returns a fresh binary stream of the file's content (decompressed when gzipped).
    source : str
        The file, as problems and records name it.
    problem : callable
        ``problem(location, reason, field=None, registry_id=None, action="")``.
    encoding : str, optional
        The file's encoding when it has no byte-order mark; without it UTF-8 is read, and a
        cell that is not valid UTF-8 is read as Windows-1252 (and reported).
    cut : callable, optional
        For a compressed file: returns why its content ended early (a truncated gzip), or
        None. Each row is then used only once the next one has been read, so a row cut in
        half is never imported.
    """

    def __init__(self, open_binary: Callable[[], BinaryIO], *, source: str, problem: Callable[..., None],
                 encoding: str | None = None, cut: Callable[[], str | None] | None = None):
        self._open = open_binary
        self._cut = cut
        self.source = source
        self._problem = problem
        self.encoding = encoding
        with self._open() as fh:
            head = fh.read(64 * 1024)
        enc, bom = sniff_encoding(head)
        self.bom = bom
        self.fallback = bom == 0 and not encoding and enc == "utf-8"
        self.text_encoding = encoding if (bom == 0 and encoding) else enc
        first = head[bom:].decode(self.text_encoding, "replace").split("\n", 1)[0].rstrip("\r")
        kind, self.delimiter = header_kind(first)
        self.delimiter = self.delimiter or ","
        self._first_cells = _split_header(first, self.delimiter)  # the header, before the rows are read
        self.header: list[str] = []
        #: the latest posted date of the rows read so far (see :meth:`latest_date`), and whether
        #: :meth:`records` has read every row (then it is the file's, found without a second pass)
        self.latest: dt.date | None = None
        self.read_through = False

    @property
    def layout(self) -> str:
        """``current site, CSV, 30 columns``."""
        header = self.header or self._first_cells
        keys = {_key(c) for c in header}
        site = ("current site" if keys & _CURRENT_ONLY else
                "classic site" if keys & _CLASSIC_ONLY else "website")
        return f"{site}, {_DELIMITERS.get(self.delimiter, 'CSV')}, {len(header)} columns"

    @property
    def provenance(self) -> str:
        return f"ClinicalTrials.gov website export ({self.layout})"

    def _rows(self, fh: BinaryIO) -> Iterator[tuple[int, list[str] | Exception]]:
        """(first line, cells) per row; (line, error) for a row that is not valid CSV."""
        if self.bom:
            fh.read(self.bom)
        text = io.TextIOWrapper(fh, encoding=self.text_encoding, errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=self.delimiter, strict=True)
        while True:
            line = reader.line_num + 1
            # a cell may be up to a record's size; an oversize one is emptied by check_sizes
            limit = csv.field_size_limit(MAX_RECORD_BYTES)
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as err:
                yield line, err
                continue
            finally:
                csv.field_size_limit(limit)
            yield line, row

    def latest_date(self) -> dt.date | None:
        """The latest Last Update Posted, First Posted or Results First Posted date in the file
        (none after today): the export was made on that day or later. None when the file has
        none of those columns (or no such date).

        Once :meth:`records` has read the file through, the date it found on the way (the file
        is not read again); before, the file is scanned for it."""
        if self.read_through:
            return self.latest
        latest: dt.date | None = None
        today = dt.date.today()
        try:
            with self._open() as fh:
                rows = self._rows(fh)
                header = None
                for _, cells in rows:
                    if isinstance(cells, Exception):
                        continue
                    if header is None:
                        header = [COLUMNS.get(_key(c)) for c in cells]
                        wanted = [i for i, k in enumerate(header) if k in _POSTED]
                        if not wanted:
                            return None
                        continue
                    for i in wanted:
                        if i < len(cells) and cells[i]:
                            try:
                                day = parse_date(cells[i], "date")
                            except FieldError:
                                continue
                            if day is not None and day <= today and (latest is None or day > latest):
                                latest = day
        except (OSError, EOFError, zlib.error, ValueError):
            pass  # a cut or corrupt file: reported when its records are read
        return latest

    def _posted(self, cell: str, today: dt.date) -> None:
        try:
            day = parse_date(cell, "date")
        except FieldError:
            return
        if day is not None and day <= today and (self.latest is None or day > self.latest):
            self.latest = day

    def records(self, fh: BinaryIO) -> Iterator[ImportedRecord]:
        hint = "" if self.encoding else "; pass encoding= if the file is in another encoding"
        names: dict[str, str] = {}
        keys: list[str | None] = []
        line = 0
        n_rows = 0
        held: tuple[int, list[str]] | None = None  # a compressed file: the row read last, not yet used
        posted: list[int] = []  # the columns whose latest date bounds the export's date
        today = dt.date.today()
        self.latest, self.read_through = None, False
        try:
            for line, cells in self._rows(fh):
                if isinstance(cells, Exception):
                    if isinstance(cells, csv.Error) and "unexpected end of data" in str(cells):
                        if held is not None:  # a row began after it: it is whole
                            yield from self._record(*held, keys, names, hint)
                            held = None
                        if self._cut is not None and self._cut():
                            line -= 1
                            break  # the compressed data end inside a cell: reported below
                        self._problem(
                            f"line {line}", "the file ends inside a quoted cell that opens on this line (cut short, "
                            f"or a stray quote); the {n_rows:,} rows before it were read", action="rest of file skipped")
                        self.read_through = True
                        return
                    self._problem(f"line {line}", f"not a valid CSV row ({cells}); skipped")
                    continue
                if not any(c.strip() for c in cells):
                    continue
                if not self.header:
                    self.header = cells
                    keys = [COLUMNS.get(_key(c)) for c in cells]
                    posted = [i for i, k in enumerate(keys) if k in _POSTED]
                    for k, c in zip(keys, cells, strict=True):
                        if k and k not in names:
                            names[k] = c.strip()
                    if "nct" not in names and "url" not in names:
                        self._problem("file", "a ClinicalTrials.gov website export needs an 'NCT Number' or "
                                              "'Study URL' column to identify its trials; the header has neither")
                        return
                    continue
                for i in posted:  # every row, kept or not, as latest_date() reads them
                    if i < len(cells) and cells[i]:
                        self._posted(cells[i], today)
                if cells == self.header:
                    self._problem(f"line {line}", "the header row again (files joined?); skipped")
                    continue
                n_rows += 1
                if self._cut is None:
                    yield from self._record(line, cells, keys, names, hint)
                    continue
                if held is not None:
                    yield from self._record(*held, keys, names, hint)
                held = (line, cells)
        except OSError as err:
            self._problem(f"after line {line}", f"the file cannot be read on ({err}); the {n_rows:,} rows before "
                                                "it were read", action="rest of file skipped")
            self.read_through = True  # as far as it can be read: latest_date() would stop there too
            return
        self.read_through = True
        why = self._cut() if self._cut is not None else None
        if why:  # the last row read may be cut short: not used
            kept, last = (n_rows - 1, held[0] - 1) if held is not None else (n_rows, line)
            self._problem(f"after line {last}", f"{why}; the {kept:,} rows before it were read",
                          action="rest of file skipped" if self.header else "file skipped")
        elif held is not None:
            yield from self._record(*held, keys, names, hint)

    def _record(self, line: int, cells: list[str], keys: list[str | None], names: dict[str, str],
                hint: str) -> Iterator[ImportedRecord]:
        header = self.header
        location = f"line {line}"
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            rid = next((m.group().upper() for c in cells[:3] if (m := _NCT.search(c))), None)
            self._problem(location, f"{len(cells)} cells, the header has {len(header)}: the cells cannot be matched "
                                    "to their columns", registry_id=rid)
            return
        bad: list[FieldError] = []
        recoded: list[tuple[str, str]] = []
        if any(_SURROGATE.search(c) for c in cells):
            cells = list(cells)
            for i, c in enumerate(cells):
                if not _SURROGATE.search(c):
                    continue
                column = header[i] if i < len(header) else f"column {i + 1}"
                raw = c.encode(self.text_encoding, "surrogateescape")
                is_id = i < len(keys) and keys[i] == "nct"
                if self.fallback and not is_id:
                    cells[i] = raw.decode("cp1252", "replace")
                    recoded.append((column, cells[i]))
                else:
                    cells[i] = raw.decode(self.text_encoding, "replace")
                    bad.append(FieldError(column, f"not valid {self.text_encoding}{hint}"))
        raw_record = {}
        row: dict[str, str] = {}
        for i, column in enumerate(header):
            value = cells[i] if i < len(cells) else ""
            raw_record.setdefault(column or f"column {i + 1}", value)
            k = keys[i]
            if k and k not in row:
                row[k] = "" if any(e.field == column for e in bad) else value
        try:
            trial = row_to_trial(row, names, problems=bad)
        except FieldError as err:
            self._problem(location, err.reason, err.field, err.registry_id)
            return
        for column, value in recoded:
            self._problem(location, f"not valid UTF-8; read as Windows-1252 (cp1252): {value[:40]!r}", column,
                          trial.registry_id, FIELD_READ_AS_CP1252)
        for err in bad:
            self._problem(location, err.reason, err.field, err.registry_id or trial.registry_id, "field emptied")
        if len(cells) < len(header):
            missing = header[len(cells)]
            self._problem(location, f"{len(cells)} cells, the header has {len(header)}: the missing cells are "
                                    "read as empty", missing, trial.registry_id, "field emptied")
        yield ImportedRecord(trial, raw_record, self.source, location)
