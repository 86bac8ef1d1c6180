"""Audit of `neuromodmap trials import` on every real registry export in shared/data/trials.

Each file is imported alone with the CLI (``neuromodmap trials import FILE --db X``) into a
fresh store. Independently of our readers, the raw file is read with the csv module, a regular
expression or the json module, and for each structured field the script counts the records
that carry it (a non-empty value in the file) and, of those, the records whose stored row
keeps it (not empty) and agrees with it (a date's year, and its month where the file gives
one; an enrollment written as a plain count is that count). It also checks that the store
holds exactly the ids the file holds.

    NEUROMODMAP_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python benchmarks/trials_import_audit.py
    ... benchmarks/trials_import_audit.py --only ictrp --markdown     # a subset, a Markdown table

Fields: phases, status, start (start date; ICTRP ``Date_enrollement``), enrollment (ICTRP
``Target_size``), countries, registration (first submitted; ICTRP ``Date_registration``).
A cell that only says there is no value (``NULL``, ``N/A``, ``NA``, ``None``, and ICTRP's
phase words for "no phase given": ``Not selected``, ``Other``, and ChiCTR's ``Retrospective
study``, an observational study) is not counted as carried; an ``N/A`` phase is a value (the
phase does not apply: stored as ``NA``). The website CSVs
hold ``First Posted`` but no first-submitted date: registration is shown as not carried.

The counting functions are also used by tests/trials/test_trials_import_audit.py.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import csv
import datetime as dt
import gzip
import html
import io
import json
import os
import re
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = ("phases", "status", "start", "enrollment", "countries", "registration")
#: stored column for each audited field
COLUMNS = {"phases": "phases", "status": "overall_status", "start": "start_date",
           "enrollment": "enrollment", "countries": "countries", "registration": "registration_date"}
_NULL = {"", "null", "n/a", "na", "none", "nil", "-"}
# ICTRP phase texts that say no phase was given (docs/trials_import.md, "not problems at all")
_NO_PHASE = {"not selected", "other", "retrospective study"}

_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"], start=1)}
_MONTHS.update({k[:3]: v for k, v in list(_MONTHS.items())})


@dataclass
class Raw:
    """What the raw file holds: its ids and, per field, the raw value of each id carrying it."""

    ids: list[str] = field(default_factory=list)
    values: dict[str, dict[str, str]] = field(default_factory=lambda: {f: {} for f in FIELDS})
    #: fields the layout has no column for
    absent: set[str] = field(default_factory=set)
    #: records whose only value for a field means "none" (not counted as carried), per field
    null_words: dict[str, int] = field(default_factory=dict)

    def put(self, rid: str, name: str, value, *, phase_words: bool = False) -> None:
        text = "" if value is None else str(value).strip()
        low = text.lower()
        # a phase "N/A" / "NA" is a value: the phase does not apply (stored as NA)
        if (low in _NULL and not (phase_words and low in ("n/a", "na"))) or (phase_words and low in _NO_PHASE):
            if text:
                self.null_words[name] = self.null_words.get(name, 0) + 1
            return
        self.values[name][rid] = text


# ---------------------------------------------------------------- opening the raw files


def _text(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8-sig", errors="replace")


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(_text(path), newline="")))
    return rows[0], rows[1:]


# ---------------------------------------------------------------- CT.gov website CSV

_CSV_COLUMNS = {  # our field -> the website's column names (current, classic)
    "phases": ("Phases",),
    "status": ("Study Status", "Status"),
    "start": ("Start Date",),
    "enrollment": ("Enrollment",),
    "countries": ("Locations",),
}
_NCT = re.compile(r"NCT\d{8}")


def raw_ctgov_csv(path: Path) -> Raw:
    header, rows = _csv_rows(path)
    raw = Raw(absent={"registration"})
    idx = {h: i for i, h in enumerate(header)}
    for name, options in _CSV_COLUMNS.items():
        if not any(o in idx for o in options):
            raw.absent.add(name)
    for row in rows:
        if row == header or not any(row):
            continue
        cell = dict(zip(header, row, strict=False))
        rid = cell.get("NCT Number") or (_NCT.search(cell.get("URL", "") + cell.get("Study URL", "")) or [""])[0]
        raw.ids.append(rid)
        for name, options in _CSV_COLUMNS.items():
            for o in options:
                if o in cell:
                    raw.put(rid, name, cell[o], phase_words=name == "phases")
    return raw


# ---------------------------------------------------------------- CT.gov legacy XML

def _tag(text: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}(?:\s[^>]*)?>(.*?)</{tag}>", text, re.S)
    return html.unescape(m.group(1)) if m else None


def _legacy_record(raw: Raw, text: str) -> None:
    block = _tag(text, "id_info") or ""
    rid = _tag(block, "nct_id") or ""
    raw.ids.append(rid)
    raw.put(rid, "phases", _tag(text, "phase"), phase_words=True)
    raw.put(rid, "status", _tag(text, "overall_status"))
    raw.put(rid, "start", _tag(text, "start_date"))
    raw.put(rid, "enrollment", _tag(text, "enrollment"))
    countries = _tag(text, "location_countries")
    raw.put(rid, "countries", _tag(countries, "country") if countries else None)
    raw.put(rid, "registration", _tag(text, "study_first_submitted"))


def raw_legacy_xml(path: Path) -> Raw:
    raw = Raw()
    _legacy_record(raw, _text(path))
    return raw


def raw_legacy_tar(path: Path, *, every: int = 1) -> Raw:
    """Every ``every``-th XML member (1: all)."""
    raw = Raw()
    with tarfile.open(path, "r:*") as tar:
        n = 0
        for member in tar:
            if member.isfile() and member.name.endswith(".xml"):
                if n % every == 0:
                    _legacy_record(raw, tar.extractfile(member).read().decode("utf-8", errors="replace"))
                n += 1
    return raw


# ---------------------------------------------------------------- CT.gov API v2 JSON

def _v2_study(raw: Raw, study: dict) -> None:
    proto = study.get("protocolSection", {})
    rid = proto.get("identificationModule", {}).get("nctId", "")
    raw.ids.append(rid)
    status = proto.get("statusModule", {})
    design = proto.get("designModule", {})
    raw.put(rid, "phases", "|".join(design.get("phases", []) or []), phase_words=True)
    raw.put(rid, "status", status.get("overallStatus"))
    raw.put(rid, "start", (status.get("startDateStruct") or {}).get("date"))
    raw.put(rid, "enrollment", (design.get("enrollmentInfo") or {}).get("count"))
    locations = proto.get("contactsLocationsModule", {}).get("locations", []) or []
    raw.put(rid, "countries", "|".join(loc.get("country", "") for loc in locations if loc.get("country")))
    raw.put(rid, "registration", status.get("studyFirstSubmitDate"))


def raw_v2_json(path: Path) -> Raw:
    raw = Raw()
    doc = json.loads(_text(path))
    studies = doc.get("studies", [doc]) if isinstance(doc, dict) else doc
    for study in studies:
        _v2_study(raw, study)
    return raw


def raw_v2_zip(path: Path) -> Raw:
    raw = Raw()
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.endswith(".json"):
                _v2_study(raw, json.loads(zf.read(name)))
    return raw


# ---------------------------------------------------------------- WHO ICTRP

_ICTRP = {  # our field -> names in the XML, the COVID-19 CSV and the full export
    "phases": ("Phase", "phase"),
    "status": ("Recruitment_Status", "Recruitment Status", "Recruitment_status"),
    "start": ("Date_enrollement", "Date enrollement", "Date_enrollment"),
    "enrollment": ("Target_size", "Target size"),
    "countries": ("Countries",),
    "registration": ("Date_registration", "Date registration", "Date_registration3", "Date registration3"),
}


def _ictrp_record(raw: Raw, cell: dict[str, str]) -> None:
    rid = (cell.get("TrialID") or "").strip()
    raw.ids.append(rid)
    for name, options in _ICTRP.items():
        values = [cell[o] for o in options if o in cell and (cell[o] or "").strip().lower() not in _NULL]
        raw.put(rid, name, values[0] if values else next((cell[o] for o in options if o in cell), None),
                phase_words=name == "phases")


def raw_ictrp_xml(path: Path) -> Raw:
    raw = Raw()
    for block in re.findall(r"<Trial>(.*?)</Trial>", _text(path), re.S):
        cell = {m.group(1): html.unescape(m.group(2)) for m in re.finditer(r"<(\w+)>(.*?)</\1>", block, re.S)}
        _ictrp_record(raw, cell)
    return raw


def raw_ictrp_csv(path: Path, columns: list[str] | None = None) -> Raw:
    """``columns``: the names of a headerless full export (WHO's field list, in its order)."""
    header, rows = _csv_rows(path)
    if columns is not None:
        header, rows = columns, [header, *rows]
    raw = Raw()
    for row in rows:
        _ictrp_record(raw, dict(zip(header, row, strict=False)))
    return raw


# ---------------------------------------------------------------- AACT studies table

_AACT = {"phases": "phase", "status": "overall_status", "start": "start_date", "enrollment": "enrollment",
         "countries": "Countries_name", "registration": "study_first_submitted_date"}


def _aact_registry_date(cell: dict[str, str], prefix: str) -> str | None:
    """The date as the registry wrote it: AACT's ``start_month_year`` text (``March 2015``,
    ``2015-03``), else its derived ``start_date``. AACT fills a month-only text with the
    month's last day in ``start_date``; in an extract whose month-year column R or a
    spreadsheet turned into a date (``2015-03-01``), a first of the month beside a different
    derived date, that month's last day, was month-only text: it is given as ``2015-03``."""
    text = (cell.get(f"{prefix}_month_year") or "").strip()
    derived = (cell.get(f"{prefix}_date") or "").strip()
    if text.lower() in _NULL:
        return derived
    first = re.fullmatch(r"(\d{4})-(\d{2})-01", text)
    last = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", derived)
    if first and last and last.group(1, 2) == first.group(1, 2):
        year, month = int(first.group(1)), int(first.group(2))
        if int(last.group(3)) == calendar.monthrange(year, month)[1]:
            return text[:7]
    return text


def raw_aact_csv(path: Path) -> Raw:
    """An AACT ``studies`` table (one row per trial, AACT's column names; the AACT-derived
    pain set adds ``Countries_name``). The start date is the registry's text
    (``start_month_year``, see :func:`_aact_registry_date`), so its precision is checked too."""
    header, rows = _csv_rows(path)
    raw = Raw(absent={name for name, column in _AACT.items() if column not in header})
    for row in rows:
        cell = dict(zip(header, row, strict=False))
        rid = cell.get("nct_id", "")
        raw.ids.append(rid)
        for name, column in _AACT.items():
            value = _aact_registry_date(cell, "start") if name == "start" else cell.get(column)
            raw.put(rid, name, value, phase_words=name == "phases")
    return raw


# ---------------------------------------------------------------- ctrdata and the 2018 corpus

def raw_ctrdata_sqlite(path: Path) -> Raw:
    """The trial ids of a ctrdata database, from its ``_id`` column (plain text, readable by
    any SQLite), in ICTRP's spelling: EUCTR ``2016-004489-24-DE`` -> ``EUCTR2016-004489-24-DE``,
    CTIS ``2023-508143-51-01`` -> ``CTIS2023-508143-51-01``, ISRCTN ``20343063`` ->
    ``ISRCTN20343063``; ctrdata's ``meta-info`` row is no trial. The fields are ctrdata's JSON
    (JSONB) and are checked against each record in tests/trials/test_trials_ctrdata.py."""
    import sqlite3

    raw = Raw(absent=set(FIELDS))
    con = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        for (rid,) in con.execute("SELECT _id FROM my_trials"):
            if rid == "meta-info":
                continue
            if re.fullmatch(r"\d{8}", rid):
                rid = "ISRCTN" + rid
            elif re.fullmatch(r"\d{4}-\d{6}-\d{2}-\d{2}", rid):
                rid = "CTIS" + rid
            elif re.fullmatch(r"\d{4}-\d{6}-\d{2}-[A-Z]+", rid):
                rid = "EUCTR" + rid
            raw.ids.append(rid)
    finally:
        con.close()
    return raw


def raw_jsonl_ids(path: Path) -> Raw:
    raw = Raw(absent=set(FIELDS))
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            raw.ids.append(re.search(r'"nct_?[iI]d"\s*:\s*"(NCT\d{8})"', line).group(1))
    return raw


# ---------------------------------------------------------------- the real files

#: (key, path under trials/, raw reader, note); key names the file in tables and tests
FILES: list[tuple[str, str, object]] = [
    ("csv_current30_1000", "ctgov_csv_mixed_1000_anand21jv/ctg-studies.csv.gz", raw_ctgov_csv),
    ("csv_current29_635", "ctgov_v2_json_zip_and_csv_erectile_dysfunction_marcmorcos/ctg-studies.csv.gz", raw_ctgov_csv),
    ("csv_current9_4145", "ctgov_csv_alzheimer_dementia_sammijiyoung2/ctg-studies.csv.gz", raw_ctgov_csv),
    ("csv_classic27_100", "ctgov_legacy_xml_allpublicxml_subset_reesewang25/SearchResults.csv", raw_ctgov_csv),
    ("csv_classic8_5938", "ctgov_csv_classic_oldformat_trauma_jeffreys518/SearchResults.csv.gz", raw_ctgov_csv),
    ("v2_json_array_100", "ctgov_v2_json_download_herniated_disc_koy570/ctg-studies.json.gz", raw_v2_json),
    ("v2_zip_635", "ctgov_v2_json_zip_and_csv_erectile_dysfunction_marcmorcos/ctg-studies.json.zip", raw_v2_zip),
    ("legacy_tar_6786", "ctgov_legacy_xml_allpublicxml_subset_reesewang25/"
     "AllPublicXML_subset_NCT0000xxxx_NCT0046xxxx_NCT0049xxxx.tar.gz", raw_legacy_tar),
    ("ictrp_xml2020_578", "who_ictrp_covid19_2020_ebmdatalab/ICTRP-Results_18Mar2020.xml.gz", raw_ictrp_xml),
    ("ictrp_xml2024_95", "who_ictrp_xml_2024_machado/ICTRP-Results(1).xml", raw_ictrp_xml),
    ("ictrp_csv_927", "who_ictrp_covid19_2020_ebmdatalab/COVID19-927-trials_7Apr2020.csv.gz", raw_ictrp_csv),
    ("ictrp_csv_1135", "who_ictrp_covid19_2020_ebmdatalab/COVID19-1135-trials.csv.gz", raw_ictrp_csv),
    ("ictrp_full_127", "who_ictrp_fullexport_samples_2020_worcjamessmith/ictrp_im_sample.csv", raw_ictrp_csv),
    ("ctrdata_sqlite_25", "ctrdata_demo_sqlite_eu_registers_rfhb/demo.sqlite", raw_ctrdata_sqlite),
    ("aact_1200", "aact_derived_pain_trials_us_anhkhoavo/All_pain_master_file.csv.gz", raw_aact_csv),
]
#: one-record files, each imported alone; audited together per folder
FOLDERS: list[tuple[str, str, object]] = [
    ("v2_json_files_12", "ctgov_v2_json", raw_v2_json),
    ("legacy_xml_files_60", "ctgov_legacy_xml", raw_legacy_xml),
]
SLOW = [("jsonl_2018_101k", "ctgov_text_2018.jsonl.gz", raw_jsonl_ids)]


# ---------------------------------------------------------------- comparing with the store

def _raw_date(text: str) -> tuple[int | None, int | None]:
    """(year, month) of a registry date in any spelling the registries use, read here
    without our parser: month names, ISO order, day-first numeric (every register writes its
    numeric dates day first or year first: registry_prefixes_date_formats.csv), and the
    yyyymmdd of ICTRP's Date_registration3."""
    t = text.strip().lower()
    if re.fullmatch(r"\d{8}", t):
        return int(t[:4]), int(t[4:6])
    name = re.search(r"[a-z]+", t)
    if name and name.group(0)[:3] in _MONTHS:
        year = re.search(r"\d{4}", t)
        if year is None and (yy := re.fullmatch(r"[a-z]{3}-(\d{2})", t)):  # a spreadsheet's mmm-yy
            return 2000 + int(yy.group(1)) if int(yy.group(1)) < 69 else 1900 + int(yy.group(1)), _MONTHS[t[:3]]
        return (int(year.group(0)) if year else None), _MONTHS[name.group(0)[:3]]
    parts = [int(p) for p in re.findall(r"\d+", t.split(" ")[0] if re.match(r"\d", t) else t)]
    if not parts:
        return None, None
    if parts[0] > 31:  # year first
        return parts[0], (parts[1] if len(parts) > 1 else None)
    if len(parts) >= 3:  # day first
        return parts[2], parts[1]
    if len(parts) == 2:  # month/year
        return parts[1], parts[0]
    return None, None


_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4"}


def _phase_numbers(text: str) -> set[str] | None:
    """The phase numbers a phase text names (``Phase 1/Phase 2``, ``PHASE1|PHASE2``, ``Phase
    II/III``, ``1-2``), ``NA`` for not applicable; None for a text this check does not judge
    (EU tick lists, ``Early Phase 1``, ChiCTR's stage words)."""
    t = text.lower()
    if any(w in t for w in ("yes", "early", "market", "measure", "basic", "diagnostic")):
        return None
    if t.replace("/", "").replace(" ", "") in ("na", "n/a", "notapplicable", "0"):
        return {"NA"}
    t = re.sub(r"phase\s*", " ", t)
    nums = {_ROMAN.get(tok, tok) for tok in re.findall(r"\b(iv|iii|ii|i|[0-4])\b", t)}
    return nums or None


def _raw_precision(text: str) -> str | None:
    """year, month or day: how much of the date the file writes (``2015``, ``2015-09``,
    ``September 2015``, ``Mar-16``; ``2015-09-17``, ``17/09/2015``, ``September 17, 2015``, ``20150917``)."""
    t = text.strip().lower()
    if re.fullmatch(r"\d{8}", t):
        return "day"
    numbers = re.findall(r"\d+", t.split(" ")[0] if re.match(r"\d", t) else t)
    if re.search(r"[a-z]{3}", t):  # a month name: a day number besides the year?
        return "day" if len(numbers) >= 2 and not re.fullmatch(r"[a-z]{3}-\d{2}", t) else "month"
    return {1: "year", 2: "month", 3: "day"}.get(len(numbers))


def _agrees(name: str, raw_value: str, stored, row: dict | None = None) -> bool:
    """Whether a kept value says what the file says (judged here, without our readers); a
    start date also at the precision the file writes it."""
    if name == "start" and row is not None and "start_date_precision" in row:
        if row["start_date_precision"] != _raw_precision(raw_value):
            return False
    if name in ("start", "registration"):
        year, month = _raw_date(raw_value)
        return year == stored.year and (month is None or month == stored.month)
    if name == "enrollment" and re.fullmatch(r"\d+", raw_value):
        return int(raw_value) == stored
    if name == "phases":
        expected = _phase_numbers(raw_value)
        got = {"NA" if p == "NA" else p.replace("EARLY_PHASE1", "0").replace("PHASE", "") for p in stored}
        return expected is None or expected == got or (expected == {"0"} and got == {"NA"})
    if name == "status":  # the API v2 spelling: Active, not recruiting -> ACTIVE_NOT_RECRUITING
        slug = re.sub(r"[^A-Z]+", "_", raw_value.upper()).strip("_")
        return stored == {"UNKNOWN_STATUS": "UNKNOWN"}.get(slug, slug)
    if name == "countries":
        # the first country named: a location's last comma part (website CSV), the first
        # ';' part (ICTRP), the first <country> / v2 country
        first = raw_value.split("|")[0].split(";")[0]
        first = first.rsplit(",", 1)[-1].strip().lower()
        return (not first or any(first == c.lower() or first in c.lower() or c.lower() in first for c in stored)
                or all(c.lower() in raw_value.lower() for c in stored))
    return True


@dataclass
class Audit:
    key: str
    path: str
    exit_code: int
    n_ids: int
    ids_equal: bool
    missing: list[str]
    extra: list[str]
    #: field -> (carried, kept, agreeing); None when the layout has no such column
    fields: dict[str, tuple[int, int, int] | None]
    seconds: float
    samples: dict[str, list[tuple[str, str, object]]] = field(default_factory=dict)
    #: a second import of the file left every row as it was (None: not tried)
    reimport_same: bool | None = None


def compare(key: str, path: str, raw: Raw, rows: dict[str, dict], exit_code: int, seconds: float) -> Audit:
    ids = set(raw.ids)
    stored_ids = set(rows)
    fields: dict[str, tuple[int, int, int] | None] = {}
    samples: dict[str, list] = {}
    for name in FIELDS:
        if name in raw.absent and not raw.values[name]:
            fields[name] = None
            continue
        carried = raw.values[name]
        kept = agree = 0
        for rid, value in carried.items():
            stored = rows.get(rid, {}).get(COLUMNS[name])
            if stored is None or (isinstance(stored, list) and not stored):
                samples.setdefault(name, []).append((rid, value, stored))
                continue
            kept += 1
            if _agrees(name, value, stored, rows.get(rid)):
                agree += 1
            else:
                samples.setdefault(name, []).append((rid, value, stored))
        fields[name] = (len(carried), kept, agree)
    return Audit(key, path, exit_code, len(ids), ids == stored_ids and len(ids) == len(raw.ids),
                 sorted(ids - stored_ids), sorted(stored_ids - ids), fields, seconds, samples)


def stored_rows(db: Path) -> dict[str, dict]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        have = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'trials'").fetchall()}
        cols = ", ".join(sorted(set(COLUMNS.values()) | ({"start_date_precision"} & have)))
        cur = con.execute(f"SELECT registry_id, {cols} FROM trials")  # noqa: S608 (fixed names)
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names, r, strict=False)) for r in cur.fetchall()}


def cli_import(path: Path, db: Path) -> tuple[int, str]:
    """``neuromodmap trials import PATH --db DB`` (the CLI, in this process): exit code, output."""
    from typer.testing import CliRunner

    from neuromodmap.cli import app

    os.environ["NEUROMODMAP_NO_PROGRESS"] = "1"
    result = CliRunner().invoke(app, ["trials", "import", str(path), "--db", str(db)])
    return result.exit_code, result.output


def _files(path: Path, every: int = 1) -> list[Path]:
    return sorted(path.iterdir())[::every] if path.is_dir() else [path]


def read_raw(path: Path, reader, every: int = 1) -> Raw:
    """The raw counts of a file, or of the one-record files of a folder together (every
    ``every``-th file)."""
    paths = _files(path, every)
    raw = Raw(absent=set())
    for p in paths:
        r = reader(p)
        raw.ids += r.ids
        raw.absent |= r.absent
        for name in FIELDS:
            raw.values[name].update(r.values[name])
    return raw


def snapshot(db: Path) -> dict[str, tuple]:
    """Every stored row's id, hash, source, as-of date, import time and run."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT registry_id, record_hash, source, as_of, imported_at, import_run_id FROM trials")
        return {r[0]: r[1:] for r in rows.fetchall()}


def audit_one(key: str, rel: str, reader, trials_dir: Path, workdir: Path, every: int = 1,
              reimport: bool = False) -> Audit:
    """Import the file (each file of a folder alone, into a store of its own; every
    ``every``-th file) and compare. ``reimport``: import each file a second time into its
    store and note in ``Audit.reimport_same`` whether every row stayed as it was."""
    path = trials_dir / rel
    paths = _files(path, every)
    raw = read_raw(path, reader, every)
    rows: dict[str, dict] = {}
    code = 0
    t = time.perf_counter()
    ids_equal = reimport_same = True
    for i, p in enumerate(paths):
        db = workdir / f"{key}-{i}.duckdb"
        exit_code, output = cli_import(p, db)
        if exit_code:
            print(output[-2000:], file=sys.stderr)
        code = max(code, exit_code)
        stored = stored_rows(db)
        if reimport:
            before = snapshot(db)
            again, output = cli_import(p, db)
            reimport_same &= again == exit_code and snapshot(db) == before
        ids_equal &= set(stored) == set(reader(p).ids) if len(paths) > 1 else True
        rows.update(stored)
    seconds = time.perf_counter() - t
    audit = compare(key, rel, raw, rows, code, seconds)
    if len(paths) > 1:  # one-record files: each store holds its file's id
        audit.ids_equal = ids_equal and not audit.missing and not audit.extra
    audit.reimport_same = reimport_same if reimport else None
    return audit


def _pct(cell: tuple[int, int, int] | None) -> str:
    if cell is None:
        return "—"
    carried, kept, agree = cell
    if not carried:
        return "0/0"
    return f"{agree}/{carried} {100 * agree / carried:.1f}%" + ("" if kept == agree else f" (kept {kept})")


def table(audits: list[Audit], markdown: bool) -> str:
    head = ["file", "exit", "ids", "ids equal", *FIELDS]
    body = [[a.key, str(a.exit_code), f"{a.n_ids:,}", "yes" if a.ids_equal else f"NO (-{len(a.missing)} +{len(a.extra)})",
             *(_pct(a.fields[f]) for f in FIELDS)] for a in audits]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in [head, *body])


def main() -> int:
    from neuromodmap.config import data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--only", default="", help="audit only the files whose key contains this text")
    parser.add_argument("--with-corpus", action="store_true", help="also the 101k-record 2018 corpus (ids only)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--show", type=int, default=3, help="records shown per field that is not kept")
    args = parser.parse_args()
    trials_dir = data_dir(args.data_dir) / "trials"
    todo = FILES + FOLDERS + (SLOW if args.with_corpus else [])
    todo = [t for t in todo if args.only in t[0]]
    audits = []
    with tempfile.TemporaryDirectory() as tmp:
        for key, rel, reader in todo:
            audits.append(audit_one(key, rel, reader, trials_dir, Path(tmp)))
            a = audits[-1]
            print(f"{key}: exit {a.exit_code}, {a.n_ids:,} ids, {a.seconds:.1f} s", file=sys.stderr)
    print(table(audits, args.markdown))
    print("\ncell: agreeing/carried %; '(kept n)' where n stored values disagree with the file; '—': no such column")
    for a in audits:
        for name, rows in a.samples.items():
            for rid, value, stored in rows[: args.show]:
                print(f"  {a.key} {name} {rid}: file {value[:60]!r} -> stored {stored!r}")
        if a.missing or a.extra:
            print(f"  {a.key} ids missing {a.missing[:5]} extra {a.extra[:5]}")
    with contextlib.suppress(OSError):
        load = os.getloadavg()
        print(f"\nload average {load[0]:.2f}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    bad = any(a.exit_code or not a.ids_equal or any(c and c[0] and c[2] / c[0] < 0.98 for c in a.fields.values())
              for a in audits)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
