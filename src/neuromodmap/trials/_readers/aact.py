"""AACT ``studies`` rows -> Trial: a CSV (or AACT's pipe-delimited flat file) with AACT's column names.

AACT (the CTTI's Aggregate Analysis of ClinicalTrials.gov) publishes the registry as
PostgreSQL tables; researchers share its ``studies`` table (one row per trial, columns
``nct_id``, ``brief_title``, ``overall_status``, ``phase``, ``enrollment``, ``start_date``,
``study_first_submitted_date``, ``results_first_posted_date`` ...) as CSV, often with
joined columns (``agency_class`` of the lead sponsor, ``description`` the brief summary,
``Countries_name``). Columns this reader does not know are kept in the raw record only.
"""

from __future__ import annotations

import csv
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
        "start_date": T(None, parse_date, cell("start_date"), "start_date"),
        "completion_date": T(None, parse_date, cell("completion_date"), "completion_date"),
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
