"""AACT ``studies`` rows -> Trial: a CSV (or AACT's pipe-delimited flat file) with AACT's column names.

AACT (the CTTI's Aggregate Analysis of ClinicalTrials.gov) publishes the registry as
PostgreSQL tables; researchers share its ``studies`` table (one row per trial, columns
``nct_id``, ``brief_title``, ``overall_status``, ``phase``, ``enrollment``, ``start_date``,
``study_first_submitted_date``, ``results_first_posted_date`` ...) as CSV, often with
joined columns (``agency_class`` of the lead sponsor, ``description`` the brief summary,
``Countries_name``). Columns this reader does not know are kept in the raw record only.

Start and completion dates: AACT's ``start_date`` / ``completion_date`` are DATE values it
derives from the registry's text, which it keeps in ``start_month_year`` /
``completion_month_year``; a month-only text (``March 2015``, ``2015-03``) becomes the
month's LAST day (``2015-03-31``). Like every other reader, this one stores what the registry
wrote: a month-only text as the first of the month at precision ``month``, a year as 1 January
at ``year``, a whole date at ``day``. Shared extracts often hold the month-year column already
turned into a date by R or a spreadsheet (``2015-03-01`` for ``March 2015``); such a first of
the month whose AACT date is that month's last day (a different day) is read as month-only.
Without a month-year column the AACT date is stored as it is, at day precision.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from neuromodmap.trials._readers._common import (
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
from neuromodmap.trials.models import Trial

__all__ = ["is_aact_header", "row_to_trial", "read_rows"]

_NCT = re.compile(r"^NCT\d{8}$")
_PROCESSED = re.compile(r"processed this data on\s+(.+?)\s*$", re.I)
_SURROGATE = re.compile("[\udc80-\udcff]")
#: the columns that make a header AACT's ``studies`` table
_REQUIRED = {"nct_id", "brief_title", "overall_status"}


def is_aact_header(cells: list[str]) -> bool:
    return _REQUIRED <= {c.strip().strip('"').lower() for c in cells}


def _enrollment(text: str) -> int | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise FieldError("enrollment", f"expected a count, got {text[:40]!r}") from None
    if value < 0 or value != int(value):
        raise FieldError("enrollment", f"expected a count, got {text[:40]!r}")
    return int(value)


def _countries(text: str) -> list[str]:
    return list(dict.fromkeys(c.strip() for c in re.split(r"[|;]", text) if c.strip()))


def _month_end(day: dt.date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def _registry_date(f: Fields, text: str, derived: str, text_field: str, date_field: str
                   ) -> tuple[dt.date | None, str | None]:
    """(date, precision) of an AACT date: from the registry's text (``start_month_year``) when
    the row has it, else AACT's derived date (``start_date``) at day precision.

    Each unreadable cell is reported (FieldError noted in ``f``); the other one is used when it
    reads, else the field is left empty. The record is always kept.
    """
    aact = f.take(None, parse_date, derived, date_field)
    if text:
        try:
            value = parse_date(text, text_field)
        except FieldError as err:
            f.note(err)
            value = None
        if value is not None:
            precision = date_precision(text)
            # "March 2015" read as a date by R or a spreadsheet (2015-03-01) beside AACT's
            # 2015-03-31: AACT fills a month-only text with the month's last day
            if (precision == "day" and aact is not None and value.day == 1 and aact != value
                    and aact.replace(day=1) == value and _month_end(aact)):
                precision = "month"
            return value, precision
    return aact, ("day" if aact is not None else None)


def row_to_trial(row: dict[str, str], problems: list[FieldError] | None = None) -> Trial:
    """Map one AACT ``studies`` row (cells by lower-case column name) to a Trial."""
    nct = row.get("nct_id", "").strip().upper()
    if not _NCT.match(nct):
        raise RecordError("nct_id", "missing" if not nct else f"not an NCT id: {nct[:40]!r}")
    f = Fields(problems, nct)
    T = f.take

    def cell(key: str) -> str:
        return (row.get(key) or "").strip()

    phase = cell("phase")
    start, start_precision = _registry_date(f, cell("start_month_year"), cell("start_date"),
                                            "start_month_year", "start_date")
    completion, completion_precision = _registry_date(
        f, cell("completion_month_year"), cell("completion_date"), "completion_month_year", "completion_date")
    results = cell("results_first_posted_date") or cell("results_first_submitted_date")
    d: dict[str, Any] = {
        "registry_id": nct,
        "registry": "ctgov",
        "source_format": "aact_csv",
        "url": f"https://clinicaltrials.gov/study/{nct}",
        "title": cell("brief_title"),
        "official_title": cell("official_title"),
        "acronym": cell("acronym"),
        "brief_summary": cell("description") or cell("brief_summary"),
        "study_type": code(cell("study_type"), "study_type"),
        "phases": T([], phases, phase, "phase") if phase else [],
        "overall_status": code(cell("overall_status"), "overall_status"),
        "start_date": start,
        "start_date_precision": start_precision,
        "completion_date": completion,
        "completion_date_precision": completion_precision,
        "registration_date": T(None, parse_date, cell("study_first_submitted_date"), "study_first_submitted_date"),
        "last_update": T(None, parse_date, cell("last_update_posted_date"), "last_update_posted_date"),
        "enrollment": T(None, _enrollment, cell("enrollment")),
        "sponsor": cell("source") or None,
        "sponsor_class": code(cell("agency_class"), "agency_class"),
        "countries": _countries(cell("countries_name")),
        # AACT has results_first_posted_date for every trial with results, empty otherwise
        "has_results": bool(results) if ("results_first_posted_date" in row or "results_first_submitted_date" in row)
        else None,
    }
    check_sizes(d, nct, f)
    return build_trial(d, f)


def read_rows(stream: BinaryIO, source: str, problem) -> Iterator[ImportedRecord]:
    """The records of an AACT ``studies`` file (comma, tab or pipe separated, UTF-8 or cp1252).

    ``problem(location, reason, field=None, registry_id=None, action="")`` reports problems.
    A cell that is not valid UTF-8 is read as Windows-1252 (AACT-derived files mix them).
    """
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    first = text.readline()
    delimiter = max(",\t|", key=first.count)
    header = [h.strip().strip('"').lower() for h in next(csv.reader([first], delimiter=delimiter))]
    reader = csv.reader(text, delimiter=delimiter)
    for n, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        location = f"row {n}"
        row: dict[str, str] = {}
        for name, value in zip(header, cells, strict=False):
            if _SURROGATE.search(value):
                value = value.encode("utf-8", "surrogateescape").decode("cp1252", "replace")
            if name and name not in row:
                row[name] = "" if value == "NA" else value  # R's missing value in shared AACT extracts
        errors: list[FieldError] = []
        try:
            trial = row_to_trial(row, errors)
        except (RecordError, FieldError) as err:
            problem(location, err.reason, err.field, err.registry_id or None)
            continue
        for err in errors:
            problem(location, err.reason, err.field, err.registry_id, "field emptied")
        as_of = None
        m = _PROCESSED.search(row.get("nlm_download_date_description", ""))
        if m:
            try:
                as_of = parse_date(m.group(1), "nlm_download_date_description")
            except FieldError:
                as_of = None
        yield ImportedRecord(trial=trial, raw=row, source=source, location=location, as_of=as_of)
