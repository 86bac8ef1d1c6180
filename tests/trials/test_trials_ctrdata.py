"""EU registers (EUCTR, CTIS), ISRCTN and ClinicalTrials.gov records as collected by the R
package ctrdata: its real demo database (shared/data/trials/ctrdata_demo_sqlite_eu_registers_rfhb,
SQLite with JSONB records) and the JSON-lines copy made from it with another SQLite. The ids
and counts come from that folder's SOURCES.md; the fields are checked against the record's
own JSON at the register's field names."""

from __future__ import annotations

import datetime as dt
import gzip
import html
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.trials import ImportProblem, TrialStore, read_trials
from neuromodmap.trials._readers._common import TrialFileError
from neuromodmap.trials.io import detect_format

FOLDER = "ctrdata_demo_sqlite_eu_registers_rfhb"
SQLITE = f"{FOLDER}/demo.sqlite"
NDJSON = f"{FOLDER}/demo_records_json_text.ndjson.gz"

# SOURCES.md: 25 trial records + 1 meta-info row
CTIS = ["2023-508143-51-01", "2022-500244-37-00", "2024-510663-34-00", "2023-505613-24-00"]
EUCTR = ["2016-004489-24-DE", "2022-000099-20-DE", "2019-002663-10-ES", "2013-000615-24-BE"]
COUNTS = {"CTIS": 4, "EUCTR": 4, "ISRCTN": 9, "CTGOV": 3, "CTGOV2": 5}


def _read(path, **kw):
    problems: list[ImportProblem] = []
    return list(read_trials(path, problems=problems, **kw)), problems


def _lines(trials_dir: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress((trials_dir / NDJSON).read_bytes()).splitlines()]


def _by_register(trials_dir: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for obj in _lines(trials_dir):
        if "ctrname" in obj:
            out.setdefault(obj["ctrname"], []).append(obj)
    return out


def _key(records):
    return [(r.trial.model_dump(), r.as_of) for r in records]


def test_sqlite_and_json_lines_give_the_same_25_trials(trials_dir):
    pytest.importorskip("apsw")  # the demo database stores JSONB: SQLite 3.45+ (apsw brings one)
    assert detect_format(trials_dir / SQLITE) == "ctrdata_sqlite"
    assert detect_format(trials_dir / NDJSON) == "jsonl_gz"
    from_db, problems = _read(trials_dir / SQLITE)
    assert problems == []
    from_lines, problems = _read(trials_dir / NDJSON)
    assert problems == []  # the meta-info line is passed over: it is no trial
    assert _key(from_db) == _key(from_lines)
    ids = [r.trial.registry_id for r in from_db]
    assert len(ids) == len(set(ids)) == sum(COUNTS.values()) == 25
    assert {f"CTIS{n}" for n in CTIS} | {f"EUCTR{n}" for n in EUCTR} <= set(ids)
    assert sum(i.startswith("ISRCTN") for i in ids) == 9 and sum(i.startswith("NCT") for i in ids) == 8
    # each record's as-of date is the day ctrdata imported it
    imported = [dt.date.fromisoformat(o["record_last_import"][:10]) for o in _lines(trials_dir) if "ctrname" in o]
    assert [r.as_of for r in from_lines] == imported


def test_euctr_fields(trials_dir):
    records = {r.trial.registry_id: r.trial for r in _read(trials_dir / NDJSON)[0]}
    for obj in _by_register(trials_dir)["EUCTR"]:
        state = obj["a1_member_state_concerned"].split(" - ")[0]
        code = {"Germany": "DE", "Spain": "ES", "Belgium": "BE"}[state]
        t = records[f"EUCTR{obj['a2_eudract_number']}-{code}"]
        assert t.registry == "EU Clinical Trials Register" and t.source_format == "ctrdata_euctr"
        assert t.official_title == " ".join(obj["a3_full_title_of_the_trial"].split())
        lay = obj["a31_title_of_the_trial_for_lay_people_in_easily_understood_ie_nontechnical_language"]
        assert t.title == " ".join(lay.split())
        ticks = {"e71_human_pharmacology_phase_i": "PHASE1", "e72_therapeutic_exploratory_phase_ii": "PHASE2",
                 "e73_therapeutic_confirmatory_phase_iii": "PHASE3", "e74_therapeutic_use_phase_iv": "PHASE4"}
        assert t.phases == [p for k, p in ticks.items() if obj.get(k) == "Yes"]
        whole = obj.get("f422_in_the_whole_clinical_trial") or obj["f41_in_the_member_state"]
        assert t.enrollment == int(whole)
        assert t.sponsor == obj["b1_sponsor"][0]["b11_name_of_sponsor"]
        assert t.registration_date == dt.date.fromisoformat(
            obj["x6_date_on_which_this_record_was_first_entered_in_the_eudract_database"])
        assert t.countries == [state]
        assert t.allocation == ("RANDOMIZED" if obj.get("e811_randomised") == "Yes" else None)
        names = {p.get("d31_product_name") or p.get("d2111_trade_name") for p in obj["dimp"]}
        assert {i.name for i in t.interventions} <= names | {
            i.get("d38_inn__proposed_inn") for p in obj["dimp"] for i in p.get("d38_imp_identification_details", [])}
        if obj.get("a52_us_nct_clinicaltrialsgov_registry_number"):
            assert obj["a52_us_nct_clinicaltrialsgov_registry_number"] in t.secondary_ids
    # the Spanish nusinersen record is phase II and III at once, the only one with an NCT id
    assert records["EUCTR2019-002663-10-ES"].phases == ["PHASE2", "PHASE3"]
    assert "NCT04089566" in records["EUCTR2019-002663-10-ES"].secondary_ids


def test_isrctn_fields(trials_dir):
    records = {r.trial.registry_id: r.trial for r in _read(trials_dir / NDJSON)[0]}
    objs = _by_register(trials_dir)["ISRCTN"]
    assert len(objs) == 9
    for obj in objs:
        t = records["ISRCTN" + obj["isrctn"]]
        desc, part = obj["trialDescription"], obj["participants"]
        assert t.title == " ".join(desc["title"].split())
        assert t.official_title == " ".join(desc["scientificTitle"].split())
        assert t.enrollment == int(part["targetEnrolment"])
        assert t.start_date == dt.date.fromisoformat(part["recruitmentStart"][:10])
        assert t.completion_date == dt.date.fromisoformat(obj["trialDesign"]["overallEndDate"][:10])
        assert t.conditions == [" ".join(obj["conditions"]["condition"]["description"].split())]
        assert t.url == f"https://www.isrctn.com/ISRCTN{obj['isrctn']}"
        countries = obj["participants"]["recruitmentCountries"]["country"]
        countries = countries if isinstance(countries, list) else [countries]
        # England, Scotland and Wales are parts of the United Kingdom, not more countries
        assert set(t.countries) == set(countries) - ({"England", "Scotland", "Wales"} if "United Kingdom" in countries
                                                     else set())
        eudract = obj["externalRefs"]["eudraCTNumber"]
        if eudract and eudract != "Nil known":
            assert eudract in t.secondary_ids
        assert "Nil known" not in t.secondary_ids


def test_ctis_fields_in_both_layouts(trials_dir):
    records = {r.trial.registry_id: r.trial for r in _read(trials_dir / NDJSON)[0]}
    objs = _by_register(trials_dir)["CTIS"]
    # CTIS's older public API put authorizedPartI at the top; the newer inside authorizedApplication
    assert sum("authorizedPartI" in o for o in objs) == 2 and sum("authorizedApplication" in o for o in objs) == 2
    for obj in objs:
        t = records["CTIS" + obj["ctNumber"]]
        part1 = obj.get("authorizedPartI") or obj["authorizedApplication"]["authorizedPartI"]
        ids = part1["trialDetails"]["clinicalTrialIdentifiers"]
        assert t.title == " ".join(ids["publicTitle"].split())
        assert t.conditions == [c["medicalCondition"] for c in part1["medicalConditions"]]
        assert t.enrollment == int(obj["totalNumberEnrolled"])
        roman = {"I": "PHASE1", "II": "PHASE2", "III": "PHASE3", "IV": "PHASE4"}
        assert t.phases == [roman[obj["trialPhase"].rsplit("Phase ", 1)[1].rstrip(")")]]
        eudract = (obj.get("eudraCtInfo") or obj.get("authorizedApplication", {}).get("eudraCt") or {}).get("eudraCtCode")
        assert t.secondary_ids == ([eudract] if eudract else [])
        assert t.sponsor and t.countries


def test_ctgov_records_read_as_their_own_formats(trials_dir, tmp_path):
    """ctrdata's CTGOV2 records are API v2 studies: read from a plain v2 JSON array they give
    the same trials. Its CTGOV records are classic XML turned into JSON: checked against the
    JSON's own elements (text XML-escaped there)."""
    regs = _by_register(trials_dir)
    records = {r.trial.registry_id: r.trial for r in _read(trials_dir / NDJSON)[0]}
    v2 = tmp_path / "ctg-studies.json"
    v2.write_text(json.dumps([{k: v for k, v in o.items() if k not in ("ctrname", "record_last_import")}
                              for o in regs["CTGOV2"]]), encoding="utf-8")
    plain, problems = _read(v2)
    assert problems == [] and len(plain) == 5
    for r in plain:
        assert records[r.trial.registry_id] == r.trial
    for obj in regs["CTGOV"]:
        t = records[obj["id_info"]["nct_id"]]
        assert t.source_format == "ctgov_xml"
        assert t.title == html.unescape(obj["brief_title"])
        assert t.enrollment == int(obj["enrollment"])
        assert t.start_date == dt.datetime.strptime(obj["start_date"], "%B %d, %Y").date()
        conditions = obj["condition"] if isinstance(obj["condition"], list) else [obj["condition"]]
        assert t.conditions == [html.unescape(c) for c in conditions]
        countries = obj["location_countries"]["country"]
        assert t.countries == (countries if isinstance(countries, list) else [countries])
        assert t.sponsor == html.unescape(obj["sponsors"]["lead_sponsor"]["agency"])
        assert [i.name for i in t.interventions] == [html.unescape(i["intervention_name"]) for i in obj["intervention"]]


def _text_db(path: Path, objs: list[tuple[str, dict]]) -> Path:
    """A ctrdata database as older ctrdata versions write it: JSON as text."""
    con = sqlite3.connect(path)
    con.execute('CREATE TABLE "my_trials" (_id TEXT PRIMARY KEY NOT NULL, json TEXT)')
    con.executemany("INSERT INTO my_trials VALUES (?, ?)", [(i, json.dumps(o)) for i, o in objs])
    con.commit()
    con.close()
    return path


def _ctrdata_id(obj: dict) -> str:
    name = obj["ctrname"]
    if name == "CTIS":
        return obj["ctNumber"]
    if name == "EUCTR":
        code = {"Germany": "DE", "Spain": "ES", "Belgium": "BE"}[obj["a1_member_state_concerned"].split(" - ")[0]]
        return f"{obj['a2_eudract_number']}-{code}"
    if name == "ISRCTN":
        return obj["isrctn"]
    if name == "CTGOV":
        return obj["id_info"]["nct_id"]
    return obj["protocolSection"]["identificationModule"]["nctId"]


def test_text_json_database_bad_field_and_record_without_id(trials_dir, tmp_path):
    objs = [o for o in _lines(trials_dir) if "ctrname" in o]
    whole, _ = _read(trials_dir / NDJSON)
    euctr = next(i for i, o in enumerate(objs) if o["ctrname"] == "EUCTR")
    isrctn = next(i for i, o in enumerate(objs) if o["ctrname"] == "ISRCTN")
    objs[euctr] = {**objs[euctr], "f422_in_the_whole_clinical_trial": "many"}
    no_id = {**objs[isrctn], "isrctn": ""}
    rows = [(_ctrdata_id(o), o) for o in objs]
    rows[isrctn] = ("", no_id)
    db = _text_db(tmp_path / "my.sqlite", rows)
    assert detect_format(db) == "ctrdata_sqlite"
    records, problems = _read(db)
    assert len(records) == 24
    assert [(p.action, p.field) for p in problems] == [
        ("field emptied", "f422_in_the_whole_clinical_trial"), ("record skipped", "isrctn")]
    bad = next(r.trial for r in records if r.trial.registry_id.startswith("EUCTR" + objs[euctr]["a2_eudract_number"]))
    before = next(r.trial for r in whole if r.trial.registry_id == bad.registry_id)
    assert bad.enrollment is None and before.enrollment is not None
    assert bad.model_dump(exclude={"enrollment"}) == before.model_dump(exclude={"enrollment"})


def test_sqlite_that_is_no_ctrdata_database(tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
    con.commit()
    con.close()
    with pytest.raises(TrialFileError, match=r"other\.sqlite: SQLite database, but no table with the columns _id and json"):
        detect_format(path)


def test_jsonb_without_apsw_is_one_clear_problem(trials_dir, monkeypatch):
    if sqlite3.sqlite_version_info >= (3, 45):
        pytest.skip("this SQLite reads JSONB itself")
    monkeypatch.setitem(sys.modules, "apsw", None)  # import apsw -> ImportError
    records, problems = _read(trials_dir / SQLITE)
    assert records == [] and len(problems) == 1
    assert problems[0].action == "file skipped" and "pip install apsw" in problems[0].reason


def test_cli_import_leaves_the_database_untouched(trials_dir, tmp_path):
    pytest.importorskip("apsw")
    copy = tmp_path / "data" / "demo.sqlite"
    copy.parent.mkdir()
    shutil.copy(trials_dir / SQLITE, copy)
    before = copy.read_bytes()
    result = CliRunner().invoke(app, ["trials", "import", str(copy), "--db", str(tmp_path / "t.duckdb")])
    assert result.exit_code == 0, result.output
    assert "Imported 25 trials" in " ".join(result.output.split())
    assert copy.read_bytes() == before and [p.name for p in copy.parent.iterdir()] == ["demo.sqlite"]
    with TrialStore(tmp_path / "t.duckdb") as store:
        rows = store.con.execute("SELECT registry, count(*) FROM trials GROUP BY registry ORDER BY registry").fetchall()
    assert rows == [("Clinical Trials Information System", 4), ("EU Clinical Trials Register", 4), ("ISRCTN", 9),
                    ("ctgov", 8)]
