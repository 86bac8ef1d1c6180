"""WHO ICTRP exports as users download them (shared/data/trials/who_ictrp_*): every layout is
detected and read whole, with the counts and fields checked against the file itself (the csv
module, a regular expression over the XML), never against our own output.

Layouts: the search portal's "Export results to XML" (2020 and 2024 layouts), the COVID-19
CSV downloads (40 columns, names with spaces, every value quoted), the full export with a
header row (a researcher's sample, names with underscores, NULL cells) and the same rows as
WHO ships the full export: no header, 62 columns in the order of WHO's own field list."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import html
import io
import re
from pathlib import Path

import pytest

from neuromodmap.trials import ImportProblem, read_trials
from neuromodmap.trials.io import detect_format

COVID = "who_ictrp_covid19_2020_ebmdatalab"
XML_2020 = f"{COVID}/ICTRP-Results_18Mar2020.xml.gz"
CSV_927 = f"{COVID}/COVID19-927-trials_7Apr2020.csv.gz"
CSV_1135 = f"{COVID}/COVID19-1135-trials.csv.gz"
XML_2024 = "who_ictrp_xml_2024_machado/ICTRP-Results(1).xml"
FULL = "who_ictrp_fullexport_samples_2020_worcjamessmith"
FULL_CSV = f"{FULL}/ictrp_im_sample.csv"
FIELD_LIST = f"{FULL}/ICTRP_export_datafields.txt"


def _read(path, **kw):
    problems: list[ImportProblem] = []
    return list(read_trials(path, problems=problems, **kw)), problems


def _text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(_text(path), newline="")))
    return rows[0], [r for r in rows[1:] if any(c.strip() for c in r)]


def _xml_ids(path: Path) -> list[str]:
    return [m.strip() for m in re.findall(r"<TrialID>([^<]*)</TrialID>", _text(path))]


def _plain(cell: str) -> str:
    """An export cell as plain words: entities decoded, <br> and every run of blanks one space."""
    return " ".join(re.sub(r"<br\s*/?>", " ", html.unescape(cell), flags=re.I).split())


def _words(value) -> str:
    return " ".join((value or "").split())


def _multi(cell: str) -> list[str]:
    """A ;-joined cell as its distinct values in order (NULL is no value)."""
    out: list[str] = []
    for part in _plain(cell).split(";"):
        part = part.strip()
        if part and part.upper() != "NULL" and part not in out:
            out.append(part)
    return out


# ---------------------------------------------------------------- the portal's XML exports
@pytest.mark.parametrize(("name", "fmt", "exported"), [
    # Export_date "3/18/2020 6:53:35 PM" and "06/09/2024 16:01:13": the portal writes it month
    # first (the 2024 file's SOURCES.md: exported 2024-06-09; no 18th month exists)
    (XML_2020, "ictrp_xml_gz", dt.date(2020, 3, 18)),
    (XML_2024, "ictrp_xml", dt.date(2024, 6, 9)),
])
def test_portal_xml_every_trial(trials_dir, name, fmt, exported):
    path = trials_dir / name
    ids = _xml_ids(path)
    assert len(ids) == len(set(ids)) and len(ids) in (578, 95)  # SOURCES.md: 578 and 95 trials
    assert detect_format(path) == fmt
    records, problems = _read(path)
    assert problems == []
    assert [r.trial.registry_id for r in records] == ids
    assert {r.as_of for r in records} == {exported}
    assert {r.trial.source_format for r in records} == {"ictrp_xml"}
    # each trial's title and address as the file writes them
    text = _text(path)
    titles = [_plain(t) for t in re.findall(r"<Public_title>([^<]*)</Public_title>", text)]
    urls = [u.strip() for u in re.findall(r"<web_address>([^<]*)</web_address>", text)]
    assert [_words(r.trial.title) for r in records] == titles
    assert [r.trial.url for r in records] == urls


def test_portal_xml_2024_registers_and_dates(trials_dir, tmp_path):
    """Date_registration is written day first (dd/mm/yyyy) by every register, beside
    Date_registration3 (yyyymmdd): the two must give the same date for all 95 trials, so the
    file checks our reading of the day-first spelling."""
    path = trials_dir / XML_2024
    text = _text(path)
    records, _ = _read(path)
    registers = [s.strip() for s in re.findall(r"<Source_Register>([^<]*)</Source_Register>", text)]
    assert [r.trial.registry for r in records] == registers
    compact = [dt.datetime.strptime(s.strip(), "%Y%m%d").date()
               for s in re.findall(r"<Date_registration3>([^<]*)</Date_registration3>", text)]
    assert [r.trial.registration_date for r in records] == compact
    without = tmp_path / "no_registration3.xml"
    without.write_text(re.sub(r"<Date_registration3>[^<]*</Date_registration3>", "", text), encoding="utf-8")
    again, problems = _read(without)
    assert problems == []
    assert [r.trial.registration_date for r in again] == compact
    # month-first reading would differ: at least one registration has a day-of-month <= 12
    # that differs from its month
    assert any(d.day <= 12 and d.day != d.month for d in compact)


# ---------------------------------------------------------------- the COVID-19 CSV downloads
@pytest.mark.parametrize(("name", "exported"), [
    (CSV_927, dt.date(2020, 4, 7)),  # Export date "4/7/2020 10:40:56 AM"; the file name says 7Apr2020
    (CSV_1135, dt.date(2020, 4, 15)),  # "4/15/2020 4:11:24 PM"
])
def test_covid_csv_every_row(trials_dir, name, exported):
    path = trials_dir / name
    header, rows = _csv_rows(path)
    assert len(header) == 40
    col = {c: i for i, c in enumerate(header)}
    assert detect_format(path) == "ictrp_csv_gz"
    records, problems = _read(path)
    assert problems == []
    # one record per CSV row: cells holding "" (a quote) are not split (before the quoting
    # fix, the sniffed dialect read the 1,135 rows as 1,780)
    assert [r.trial.registry_id for r in records] == [row[0].strip() for row in rows]
    assert len(records) == int(name.split("-")[1])  # the file name gives the count
    assert {r.as_of for r in records} == {exported}
    for rec, row in zip(records, rows, strict=True):
        t = rec.trial
        assert _words(t.title) == _plain(row[col["Public title"]]), t.registry_id
        assert t.url == row[col["web address"]].strip()
        assert t.countries == _multi(row[col["Countries"]]), t.registry_id
        assert t.conditions and all(c in _plain(row[col["Condition"]]) for c in t.conditions)
        assert all(i.name in _plain(row[col["Intervention"]]) for i in t.interventions)
        assert t.registration_date == dt.datetime.strptime(row[col["Date registration3"]], "%Y%m%d").date()
        assert (t.registry == row[col["Source Register"]].strip()) or not row[col["Source Register"]].strip()


def test_covid_csv_registers_day_first(trials_dir, tmp_path):
    """The 1,135-trial CSV holds ten registers; each writes 'Date registration' its own way
    (ChiCTR and IRCT 2020-02-17, the others 27/01/2020). Without 'Date registration3' the
    date is read from that column, and must equal Date registration3 for every row."""
    path = trials_dir / CSV_1135
    header, rows = _csv_rows(path)
    j = header.index("Date registration3")
    prefixes = {re.match(r"[A-Za-z]+", row[0]).group().upper() for row in rows}
    assert len(prefixes) == 10
    out = tmp_path / "no_registration3.csv"
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
        for row in [header, *rows]:
            writer.writerow(row[:j] + row[j + 1:])
    records, problems = _read(out)
    assert problems == []
    assert [r.trial.registration_date for r in records] == [
        dt.datetime.strptime(row[j], "%Y%m%d").date() for row in rows
    ]


def test_two_snapshots_of_one_feed(trials_dir):
    """SOURCES.md: the 927 and 1,135 files share 924 TrialIDs (two exports of one feed)."""
    first, _ = _read(trials_dir / CSV_927)
    second, _ = _read(trials_dir / CSV_1135)
    common = {r.trial.registry_id for r in first} & {r.trial.registry_id for r in second}
    assert len(common) == 924


# ---------------------------------------------------------------- the full export
def _who_fields(trials_dir: Path) -> list[str]:
    text = (trials_dir / FIELD_LIST).read_text(encoding="utf-8")
    body = text.split("list of data fields:", 1)[1]
    return [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.startswith("-")]


def test_full_export_columns_are_whos_list(trials_dir):
    from neuromodmap.trials._readers.ictrp import FULL_EXPORT_COLUMNS

    fields = _who_fields(trials_dir)
    assert len(fields) == 62
    assert list(FULL_EXPORT_COLUMNS) == fields


def test_full_export_with_header(trials_dir):
    path = trials_dir / FULL_CSV
    header, rows = _csv_rows(path)
    col = {c: i for i, c in enumerate(header)}
    assert detect_format(path) == "ictrp_csv"
    records, problems = _read(path)
    assert [r.trial.registry_id for r in records] == [row[0] for row in rows]
    assert len(records) == 127  # SOURCES.md
    assert {r.trial.source_format for r in records} == {"ictrp_full_csv"}
    # Date_enrollment cells that a spreadsheet turned into 'Mar-16' are month-year: the
    # authors' own normalised column says 01/03/2016 (day inferred) for each
    assert problems == []
    mon_yy = [row for row in rows if re.fullmatch(r"[A-Z][a-z]{2}-\d\d", row[col["Date_enrollment"]])]
    assert len(mon_yy) == 11
    by_id = {r.trial.registry_id: r.trial for r in records}
    for row in mon_yy:
        assert row[col["Day_inferred"]] == "TRUE"
        want = dt.datetime.strptime(row[col["Date_enrollment_format"]], "%d/%m/%Y").date()
        assert by_id[row[0]].start_date == want, row[0]
    null_countries = 0
    for rec, row in zip(records, rows, strict=True):
        t = rec.trial
        # the full export's own names: Conditions, Interventions, url, SecondaryIDs ...
        assert t.conditions and all(c in _plain(row[col["Conditions"]]) for c in t.conditions)
        assert t.interventions and all(i.name in _plain(row[col["Interventions"]]) for i in t.interventions)
        assert t.url == row[col["url"]]
        assert t.countries == _multi(row[col["Countries"]])
        null_countries += row[col["Countries"]] == "NULL"
        assert t.has_results is {"Yes": True, "NULL": None}[row[col["results_yes_no"]]]
        # ANZCTR writes Nil, others None, N/A or NULL, for "no secondary id"
        given = [s for s in _multi(row[col["SecondaryIDs"]]) if s.upper() not in ("NIL", "NONE", "N/A", "NA")]
        assert t.secondary_ids == [s for s in given if s != t.registry_id]
        # NULL is no value: no text field holds it
        for name in ("title", "official_title", "acronym", "sponsor", "url", "study_type", "overall_status"):
            assert (getattr(t, name) or "").upper() != "NULL", (t.registry_id, name)
        assert "NULL" not in [c.upper() for c in t.conditions + t.countries + t.secondary_ids]
    assert null_countries == 10


@pytest.mark.parametrize("quoting", [csv.QUOTE_ALL, csv.QUOTE_MINIMAL], ids=["quoted", "minimal"])
def test_full_export_headerless(trials_dir, tmp_path, quoting):
    """The full export as WHO ships it has no header row: its 62 columns come in the order of
    WHO's field list. The sample's rows, put in that order without a header, read as the same
    trials as the sample read by its header."""
    header, rows = _csv_rows(trials_dir / FULL_CSV)
    where = {c.lower(): i for i, c in enumerate(header)}
    where["date_enrollement"] = where["date_enrollment"]  # WHO's spelling, the sample's spelling
    order = [where[f.lower()] for f in _who_fields(trials_dir)]
    path = tmp_path / "ICTRPFullExport-sample.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, quoting=quoting)
        for row in rows:
            writer.writerow([row[i] for i in order])
    assert detect_format(path) == "ictrp_csv"
    records, problems = _read(path)
    with_header, header_problems = _read(trials_dir / FULL_CSV)
    assert len(records) == len(rows) == 127
    assert [r.trial.model_dump() for r in records] == [r.trial.model_dump() for r in with_header]
    # the same bad dates, now under WHO's column name, one line earlier (no header)
    assert [(p.registry_id, p.field, p.location) for p in problems] == [
        (p.registry_id, "Date_enrollement", f"line {int(p.location.split()[1]) - 1}") for p in header_problems
    ]
    assert {r.as_of for r in records} == {None}  # the full export carries no export date
