"""A bad field costs that field, never the record: real registry records, each edited in
tmp_path to hold one bad value, are imported with that field empty and the problem reported
(file, record, registry id, field, "field emptied"); only a record without a usable id is
skipped. Every format the trials readers take: legacy XML (file and ZIP), API v2 JSON (file,
JSON lines, ZIP), WHO ICTRP XML and CSV (the real exports in shared/data/trials)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.trials import ImportProblem, TrialStore, read_trials
from neuromodmap.trials._readers import _common, v2
from neuromodmap.trials.classify import classification_row, classify

XML = "ctgov_legacy_xml/NCT02586688.xml"  # NeuroStar TMS in depressed adolescents
V2 = "ctgov_v2_json/NCT02552212.json"
ICTRP_XML = "who_ictrp_xml_2024_machado/ICTRP-Results(1).xml"
ICTRP_CSV = "who_ictrp_fullexport_samples_2020_worcjamessmith/ictrp_im_sample.csv"


def _read(path, **kw):
    problems: list[ImportProblem] = []
    return list(read_trials(path, problems=problems, **kw)), problems


def _same_but(got, whole, emptied: dict) -> None:
    """``got`` has the values in ``emptied``, where the unchanged record has others; every other
    field equals the unchanged record's. An emptied date has no precision either."""
    emptied = {**emptied, **{f"{n}_precision": None for n in emptied if f"{n}_precision" in type(got).model_fields}}
    for name, value in emptied.items():
        assert getattr(whole, name) != value, name
        assert getattr(got, name) == value, name
    rest = set(type(got).model_fields) - set(emptied)
    assert {n: getattr(got, n) for n in rest} == {n: getattr(whole, n) for n in rest}


def _field_problem(problems, field, registry_id, location):
    assert len(problems) == 1, problems
    p = problems[0]
    assert (p.field, p.registry_id, p.location, p.action) == (field, registry_id, location, "field emptied")
    return p


# ---------------------------------------------------------------- legacy XML
XML_EDITS = [
    # (old text, new text, field named in the problem, Trial fields emptied, words of the reason)
    ("<start_date>October 2015</start_date>", "<start_date>-1+1</start_date>", "start_date",
     {"start_date": None}, "unrecognised date '-1+1'"),
    ('<enrollment type="Anticipated">100</enrollment>', '<enrollment type="Anticipated">about 100</enrollment>',
     "enrollment", {"enrollment": None}, "expected a count, got 'about 100'"),
    ("<phase>N/A</phase>", "<phase>Phase X</phase>", "phase", {"phases": []}, "unrecognised phase 'Phase X'"),
    ("<start_date>October 2015</start_date>", "<start_date>February 30, 2015</start_date>", "start_date",
     {"start_date": None}, "invalid date 'February 30, 2015'"),
]


@pytest.mark.parametrize(("old", "new", "field", "emptied", "reason"), XML_EDITS, ids=lambda v: str(v)[:20])
def test_legacy_xml_bad_field(tmp_path, trials_dir, old, new, field, emptied, reason):
    text = (trials_dir / XML).read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "NCT02586688.xml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    (whole,), none = _read(trials_dir / XML)
    assert none == []
    (rec,), problems = _read(path)
    p = _field_problem(problems, field, "NCT02586688", "clinical_study")
    assert reason in p.reason and p.source == str(path)
    _same_but(rec.trial, whole.trial, emptied)
    assert rec.as_of == whole.as_of == dt.date(2018, 5, 11)
    # the raw record keeps the bad value as read; the classifier works on what is left
    assert new.split(">")[1].split("<")[0] in json.dumps(rec.raw)
    assert classification_row(classify(rec.trial)) == classification_row(classify(whole.trial))
    assert classify(rec.trial).neuromod and "tms" in classify(rec.trial).modalities



def test_legacy_xml_markup_inside_fields_and_a_bad_date(tmp_path, trials_dir):
    """Markup inside a field (a child element: the reader then maps the record from its tree,
    not from the raw dict) keeps the field's whole text; an attribute on a field element
    changes nothing; the bad date is still emptied and reported once, not once per route."""
    text = (trials_dir / XML).read_text(encoding="utf-8")
    edits = [
        ("<condition>Major Depressive Disorder</condition>", '<condition lang="en">Major Depressive Disorder</condition>'),
        ("<start_date>October 2015</start_date>", "<start_date>-1+1</start_date>"),
        ("<agency>Neuronetics</agency>", "<agency><b>Neuro</b>netics</agency>"),  # mapped after the date
    ]
    for old, new in edits:
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = tmp_path / "NCT02586688.xml"
    path.write_text(text, encoding="utf-8")
    (whole,), none = _read(trials_dir / XML)
    assert none == []
    (rec,), problems = _read(path)
    p = _field_problem(problems, "start_date", "NCT02586688", "clinical_study")
    assert "unrecognised date '-1+1'" in p.reason
    _same_but(rec.trial, whole.trial, {"start_date": None})
    # the file's own text, with the markup's text in place
    assert rec.trial.sponsor == "Neuronetics" and rec.trial.conditions == ["Major Depressive Disorder"]
    # the raw record keeps the markup as elements, the attribute as "@lang"
    assert rec.raw["condition"] == {"@lang": "en", "#text": "Major Depressive Disorder"}
    assert rec.raw["sponsors"]["lead_sponsor"]["agency"] == {"b": "Neuro"}

def _sizes(trial) -> dict[str, int]:
    """Characters of each text field (a list: all its items; interventions: each sub-field)."""
    out = {}
    for name, value in trial:
        if isinstance(value, str):
            out[name] = len(value)
        elif isinstance(value, list) and name not in ("interventions", "arm_groups"):
            out[name] = sum(len(v) for v in value)
    for key in ("interventions", "arm_groups"):
        for item in getattr(trial, key):
            for name, value in item:
                n = len(value) if isinstance(value, str) else sum(len(v) for v in value or [])
                out[f"{key}[].{name}"] = max(out.get(f"{key}[].{name}", 0), n)
    return out


def _oversize_limit(trial) -> tuple[str, int]:
    """The longest text field and a limit only it is over."""
    sizes = sorted(_sizes(trial).items(), key=lambda kv: kv[1])
    (field, n), (_, second) = sizes[-1], sizes[-2]
    assert second < n - 1
    return field, n - 1


def test_legacy_xml_oversize_field(tmp_path, trials_dir, monkeypatch):
    (whole,), _ = _read(trials_dir / XML)
    field, limit = _oversize_limit(whole.trial)
    assert field == "detailed_description"
    monkeypatch.setattr(_common, "MAX_FIELD_CHARS", limit)
    (rec,), problems = _read(trials_dir / XML)
    p = _field_problem(problems, field, "NCT02586688", "clinical_study")
    assert f"{limit + 1:,} characters (limit {limit:,})" in p.reason
    _same_but(rec.trial, whole.trial, {field: ""})


def test_legacy_xml_zip_member_with_bad_field_and_one_without_id(tmp_path, trials_dir):
    text = (trials_dir / XML).read_text(encoding="utf-8")
    no_id = text.replace("<nct_id>NCT02586688</nct_id>", "<nct_id> </nct_id>")
    path = tmp_path / "bulk.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("NCT02586688.xml", text.replace("<start_date>October 2015</start_date>", "<start_date>soon</start_date>"))
        zf.writestr("noid.xml", no_id)
        zf.write(trials_dir / "ctgov_legacy_xml" / "NCT02654730.xml", "NCT02654730.xml")
    records, problems = _read(path)
    assert [r.trial.registry_id for r in records] == ["NCT02586688", "NCT02654730"]
    assert records[0].trial.start_date is None and records[0].trial.title.startswith("Safety and Effectiveness")
    assert [(p.location, p.field, p.action) for p in problems] == [
        ("member NCT02586688.xml", "start_date", "field emptied"),
        ("member noid.xml", "id_info/nct_id", "record skipped"),
    ]
    assert problems[1].registry_id is None and problems[1].reason == "missing"


# ---------------------------------------------------------------- API v2 JSON
def _v2(trials_dir) -> dict:
    return json.loads((trials_dir / V2).read_text(encoding="utf-8"))


V2_EDITS = [
    # (edit, field named, Trial fields emptied)
    (lambda s: s["protocolSection"]["statusModule"]["completionDateStruct"].__setitem__("date", "-1+1"),
     "protocolSection.statusModule.completionDateStruct.date", {"completion_date": None}),
    (lambda s: s["protocolSection"]["designModule"]["enrollmentInfo"].__setitem__("count", "317"),
     "protocolSection.designModule.enrollmentInfo.count", {"enrollment": None}),
    (lambda s: s["protocolSection"]["conditionsModule"].__setitem__("keywords", {"0": "axSpA"}),
     "protocolSection.conditionsModule.keywords", {"keywords": []}),
    (lambda s: s["protocolSection"]["designModule"].__setitem__("phases", ["PHASE3B"]),
     "protocolSection.designModule.phases", {"phases": []}),
    (lambda s: s["protocolSection"]["sponsorCollaboratorsModule"]["leadSponsor"].__setitem__("name", ["UCB"]),
     "protocolSection.sponsorCollaboratorsModule.leadSponsor.name", {"sponsor": None}),
]


def _write_jsonl(path: Path, studies: list[dict]) -> Path:
    path.write_text("".join(json.dumps(s) + "\n" for s in studies), encoding="utf-8")
    return path


@pytest.mark.parametrize(("edit", "field", "emptied"), V2_EDITS, ids=lambda v: str(v)[-30:])
@pytest.mark.parametrize("container", ["json", "jsonl", "zip"])
def test_v2_bad_field(tmp_path, trials_dir, edit, field, emptied, container):
    study = _v2(trials_dir)
    bad = json.loads(json.dumps(study))
    edit(bad)
    other = json.loads((trials_dir / "ctgov_v2_json" / "NCT00465816.json").read_text(encoding="utf-8"))
    if container == "json":
        path = tmp_path / "page.json"
        path.write_text(json.dumps({"studies": [bad, other]}), encoding="utf-8")
        location = "study 1"
    elif container == "jsonl":
        path = _write_jsonl(tmp_path / "studies.jsonl", [other, bad])
        location = "line 2"
    else:
        path = tmp_path / "ctg-studies.json.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("NCT00465816.json", json.dumps(other))
            zf.writestr("NCT02552212.json", json.dumps(bad))
        location = "member NCT02552212.json"
    records, problems = _read(path)
    assert sorted(r.trial.registry_id for r in records) == ["NCT00465816", "NCT02552212"]
    _field_problem(problems, field, "NCT02552212", location)
    rec = next(r for r in records if r.trial.registry_id == "NCT02552212")
    _same_but(rec.trial, v2.study_to_trial(study), emptied)
    assert rec.raw == bad


def test_v2_oversize_field(tmp_path, trials_dir, monkeypatch):
    study = _v2(trials_dir)
    whole = v2.study_to_trial(study)
    field, limit = _oversize_limit(whole)
    monkeypatch.setattr(_common, "MAX_FIELD_CHARS", limit)
    monkeypatch.setattr(v2, "MAX_FIELD_CHARS", limit)
    path = _write_jsonl(tmp_path / "one.jsonl", [study])
    (rec,), problems = _read(path, format="jsonl")
    _field_problem(problems, field, "NCT02552212", "line 1")
    if field.startswith("interventions[]."):  # emptied in that intervention only
        sub = field.split(".", 1)[1]
        longest = max(whole.interventions, key=lambda iv: len(getattr(iv, sub)))
        assert getattr(rec.trial.interventions[whole.interventions.index(longest)], sub) == ""
    else:
        _same_but(rec.trial, whole, {field: "" if isinstance(getattr(whole, field), str) else []})


def test_v2_record_level_problems_still_skip(tmp_path, trials_dir):
    study = _v2(trials_dir)
    no_id = json.loads(json.dumps(study))
    no_id["protocolSection"]["identificationModule"]["nctId"] = ""
    lines = [json.dumps(study), json.dumps(no_id), "[1, 2]", '{"protocolSection": {"identif', json.dumps(study)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records, problems = _read(path, format="jsonl")
    assert [r.location for r in records] == ["line 1", "line 5"]
    assert [(p.location, p.action) for p in problems] == [("line 2", "record skipped"), ("line 3", "record skipped"),
                                                        ("line 4", "record skipped")]
    assert problems[0].field == "protocolSection.identificationModule.nctId"
    assert "expected a JSON object" in problems[1].reason and "invalid JSON" in problems[2].reason


# ---------------------------------------------------------------- WHO ICTRP XML
def _edit_ictrp_xml(text: str, trial_id: str, tag: str, value: str | None) -> str:
    """Set (or, with None, remove) ``tag`` of the Trial whose TrialID is ``trial_id``."""
    start = text.index(f"<TrialID>{trial_id}")
    start = text.rindex("<Trial>", 0, start)
    end = text.index("</Trial>", start)
    block = text[start:end]
    open_, close = f"<{tag}>", f"</{tag}>"
    i = block.index(open_)
    j = block.index(close, i) + len(close)
    new = "" if value is None else f"{open_}{value}{close}"
    return text[:start] + block[:i] + new + block[j:] + text[end:]


ICTRP_EDITS = [
    ("Date_registration3", "2024-13-40", "Date_registration3", {"registration_date": None}),
    ("Date_enrollement", "some time in 2024", "Date_enrollement", {"start_date": None}),
    ("Target_size", "five hundred", "Target_size", {"enrollment": None}),
]


@pytest.mark.parametrize(("tag", "value", "field", "emptied"), ICTRP_EDITS, ids=lambda v: str(v)[:20])
def test_ictrp_xml_bad_field(tmp_path, trials_dir, tag, value, field, emptied):
    text = (trials_dir / ICTRP_XML).read_text(encoding="utf-8")
    whole, none = _read(trials_dir / ICTRP_XML)
    assert len(whole) == 95 and none == []  # JPRN's 2016/12/06 dates are read too
    path = tmp_path / "ictrp.xml"
    path.write_text(_edit_ictrp_xml(text, "NCT06360289", tag, value), encoding="utf-8")
    records, problems = _read(path)
    assert [r.trial.registry_id for r in records] == [r.trial.registry_id for r in whole]
    p = _field_problem(problems, field, "NCT06360289", "Trial 1")
    assert value[:10] in p.reason
    _same_but(records[0].trial, whole[0].trial, emptied)
    assert [r.trial for r in records[1:]] == [r.trial for r in whole[1:]]


def test_ictrp_xml_unknown_phase_and_missing_id(tmp_path, trials_dir):
    text = (trials_dir / ICTRP_XML).read_text(encoding="utf-8")
    whole, _ = _read(trials_dir / ICTRP_XML)
    phased = next(r for r in whole if r.trial.phases and r.trial.phases != ["NA"])
    rid = phased.trial.registry_id
    text = _edit_ictrp_xml(text, rid, "Phase", "Phase Q")
    text = _edit_ictrp_xml(text, "NCT06360289", "TrialID", None)
    path = tmp_path / "ictrp.xml"
    path.write_text(text, encoding="utf-8")
    records, problems = _read(path)
    assert [r.trial.registry_id for r in records] == [r.trial.registry_id for r in whole[1:]]
    assert [(p.location, p.field, p.action) for p in problems] == [
        ("Trial 1", "TrialID", "record skipped"),
        (next(r.location for r in whole if r.trial.registry_id == rid), "Phase", "field emptied"),
    ]
    assert problems[1].registry_id == rid and "unrecognised phase 'Phase Q'" in problems[1].reason
    got = next(r.trial for r in records if r.trial.registry_id == rid)
    _same_but(got, phased.trial, {"phases": []})


# ---------------------------------------------------------------- WHO ICTRP CSV
def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def _write_csv(path: Path, header, rows) -> Path:
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def test_ictrp_csv_real_export_keeps_records_with_unreadable_dates(trials_dir, tmp_path):
    """The full-export sample writes CT.gov enrolment dates as Excel's "Mar-16" (a month and
    a two-digit year; the authors' normalised column reads them as the 1st of that month):
    they are read as month-year. A date in no known spelling is still emptied and reported
    while the record is kept."""
    records, problems = _read(trials_dir / ICTRP_CSV)
    assert len(records) == 127 and problems == []
    by_id = {r.trial.registry_id: r for r in records}
    assert by_id["NCT02708173"].trial.start_date == dt.date(2016, 3, 1)  # 'Mar-16', line 14
    header, rows = _csv_rows(trials_dir / ICTRP_CSV)
    col = header.index("Date_enrollment")
    rows[12][col] = "Mar-2016?"  # line 14 of the file
    path = _write_csv(tmp_path / "bad.csv", header, rows)
    records, problems = _read(path)
    assert len(records) == 127
    assert [(p.location, p.registry_id, p.field, p.action) for p in problems] == [
        ("line 14", "NCT02708173", "Date_enrollment", "field emptied")]
    assert "'Mar-2016?'" in problems[0].reason
    kept = {r.trial.registry_id: r.trial for r in records}["NCT02708173"]
    assert kept.start_date is None and kept.title


@pytest.mark.parametrize(
    ("column", "value", "emptied"),
    [("Date_registration", "31/02/2019", {"registration_date": None}),
     ("Target_size", "many", {"enrollment": None}),
     ("Phase", "Phase Z", {"phases": []})],
)
def test_ictrp_csv_bad_field(tmp_path, trials_dir, column, value, emptied):
    header, rows = _csv_rows(trials_dir / ICTRP_CSV)
    whole, _ = _read(trials_dir / ICTRP_CSV)
    col = header.index(column)
    # the first row whose field has a value the reader takes
    k = next(i for i, r in enumerate(whole) if getattr(r.trial, next(iter(emptied))) not in (None, []))
    rows = [list(r) for r in rows]
    rows[k][col] = value
    path = _write_csv(tmp_path / "ictrp.csv", header, rows)
    records, problems = _read(path)
    assert [r.trial.registry_id for r in records] == [r.trial.registry_id for r in whole]
    new = [p for p in problems if p.location == whole[k].location]
    _field_problem(new, column, whole[k].trial.registry_id, whole[k].location)
    _same_but(records[k].trial, whole[k].trial, emptied)


def test_ictrp_csv_row_without_id_is_skipped(tmp_path, trials_dir):
    header, rows = _csv_rows(trials_dir / ICTRP_CSV)
    rows = [list(r) for r in rows]
    rows[0][header.index("TrialID")] = ""
    path = _write_csv(tmp_path / "ictrp.csv", header, rows)
    records, problems = _read(path)
    assert len(records) == 126
    skipped = [p for p in problems if p.action == "record skipped"]
    assert [(p.location, p.field, p.reason) for p in skipped] == [("line 2", "TrialID", "missing")]


# ---------------------------------------------------------------- store and CLI
def _bad_xml(tmp_path, trials_dir) -> Path:
    text = (trials_dir / XML).read_text(encoding="utf-8")
    path = tmp_path / "NCT02586688.xml"
    path.write_text(text.replace("<start_date>October 2015</start_date>", "<start_date>-1+1</start_date>"),
                    encoding="utf-8")
    return path


def test_store_keeps_the_record_and_the_problem(tmp_path, trials_dir):
    path = _bad_xml(tmp_path, trials_dir)
    with TrialStore(tmp_path / "t.duckdb") as store:
        report = store.import_files([path], progress=False)
        assert report.n_read == report.n_upserted == 1
        trial = store.get_trial("NCT02586688")
        assert trial.start_date is None and trial.completion_date == dt.date(2018, 12, 1)
        raw, record_hash = store.con.execute(
            "SELECT raw, record_hash FROM trials WHERE registry_id = 'NCT02586688'").fetchone()
        assert "-1+1" in raw and record_hash
        rows = store.con.execute(
            "SELECT source, location, registry_id, field, action, reason FROM import_problems").fetchall()
        assert rows == [(str(path), "clinical_study", "NCT02586688", "start_date", "field emptied",
                         "unrecognised date '-1+1'")]
        run = store.con.execute("SELECT n_read, n_ok, n_problems, status FROM import_runs").fetchone()
        assert run == (1, 1, 1, "completed")


def test_old_store_gains_the_action_column(tmp_path, trials_dir):
    import duckdb

    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE import_problems (run_id VARCHAR, source VARCHAR, location VARCHAR, field VARCHAR,"
                " reason VARCHAR, registry_id VARCHAR, recorded_at TIMESTAMP)")
    con.execute("INSERT INTO import_problems VALUES ('r0', 'old.json', 'line 1', NULL, 'invalid JSON', NULL, now())")
    con.close()
    with TrialStore(db) as store:
        store.import_files([_bad_xml(tmp_path, trials_dir)], progress=False)
        got = store.con.execute("SELECT location, action FROM import_problems ORDER BY recorded_at").fetchall()
    assert got == [("line 1", None), ("clinical_study", "field emptied")]


def test_cli_import_prints_one_line_per_problem(tmp_path, trials_dir):
    bad = _bad_xml(tmp_path, trials_dir)
    no_id = tmp_path / "noid.xml"
    no_id.write_text((trials_dir / XML).read_text(encoding="utf-8").replace("NCT02586688</nct_id>", "</nct_id>"),
                     encoding="utf-8")
    problems_csv = tmp_path / "problems.csv"
    result = CliRunner().invoke(app, ["trials", "import", str(bad), str(no_id), "--db", str(tmp_path / "t.duckdb"),
                                      "--problems", str(problems_csv)], terminal_width=80)
    assert result.exit_code == 0, result.output  # problems in records are not a failed import
    lines = result.output.splitlines()
    assert f"  {bad}:clinical_study (NCT02586688) field start_date: unrecognised date '-1+1' [field emptied]" in lines
    assert f"  {no_id}:clinical_study field id_info/nct_id: missing [record skipped]" in lines
    assert "2 problem(s): 1 field(s) emptied (record kept), 1 record(s) skipped" in lines
    assert "Imported 1 trials" in result.output
    with open(problems_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["registry_id"], r["field"], r["action"]) for r in rows] == [
        ("NCT02586688", "start_date", "field emptied"), ("", "id_info/nct_id", "record skipped")]


def test_legacy_xml_nested_deeper_than_the_stack_keeps_the_record(tmp_path, trials_dir):
    """A hostile record: 100,000 nested elements inside a real record (once, an unexpected
    RecursionError ended the whole import with exit code 1). The record is stored with every
    field it had; the deep element is kept as its text and reported; the CLI exits 0."""
    (whole,), _ = _read(trials_dir / XML)
    text = (trials_dir / XML).read_text(encoding="utf-8")
    depth = 100_000
    deep = "<nest>" * depth + "bottom" + "</nest>" * depth
    path = tmp_path / "NCT02586688.xml"
    path.write_text(text.replace("</clinical_study>", f"<extra>{deep}</extra></clinical_study>"), encoding="utf-8")
    (rec,), problems = _read(path)
    assert rec.trial == whole.trial
    assert len(problems) == 1
    p = problems[0]
    assert (p.field, p.registry_id, p.action) == ("nest", "NCT02586688", "field kept as text")
    # the stored form goes MAX_DEPTH levels down, then the element's text
    node, levels = rec.raw["extra"], 0
    while isinstance(node, dict):
        node, levels = node["nest"], levels + 1
    assert node == "bottom" and levels == 48
    result = CliRunner().invoke(app, ["trials", "import", str(path), "--db", str(tmp_path / "t.duckdb")])
    assert result.exit_code == 0, result.output
    assert "field nest: elements nested more than 48 levels deep" in " ".join(result.output.split())
    with TrialStore(tmp_path / "t.duckdb", read_only=True) as store:
        assert store.get_trial("NCT02586688").title == whole.trial.title
