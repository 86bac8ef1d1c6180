"""Hostile and broken inputs for every importer: nothing crashes, every good record is kept,
every bad one is reported with its file, line/record and reason."""

from __future__ import annotations

import copy
import gzip
import json

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from test_trials_io_helpers import (
    corpus_lines,
    sample_ictrp,
    v2_files,
    v2_studies,
    write_ictrp_csv,
    write_ictrp_xml,
    write_zip,
)

from neuromodmap.trials import ImportProblem, read_trials
from neuromodmap.trials._readers import _common, _files

# no shrinking phase: a failure prints its seed, and shrinking large inputs takes minutes
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<clinical_study><id_info><nct_id>NCT99999999</nct_id></id_info><brief_title>&lol9;</brief_title></clinical_study>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE clinical_study [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<clinical_study><id_info><nct_id>NCT99999998</nct_id></id_info><brief_title>&xxe;</brief_title></clinical_study>
"""


def _read(path, **kw):
    problems: list[ImportProblem] = []
    records = list(read_trials(path, problems=problems, **kw))
    return records, problems


@pytest.fixture(scope="module")
def good_lines(corpus_path):
    return [line.rstrip(b"\n") for line in corpus_lines(corpus_path, 40)]


def _nct(line: bytes) -> str:
    return json.loads(line)["protocolSection"]["identificationModule"]["nctId"]


# ---------------------------------------------------------------- JSON lines
_garbage = st.one_of(
    # (a byte-order mark at the start of a file rightly decides its encoding: not garbage)
    st.binary(min_size=1, max_size=60).filter(lambda b: b"\n" not in b and b.strip() and not b.startswith(_BOMS)),
    st.sampled_from([b"{", b"[1, 2]", b'"just a string"', b"null", b'{"protocolSection": 5}', b"{}",
                     b'{"protocolSection": {"identificationModule": {"nctId": 12}}}', b"\x80\x81garbage",
                     b"[" * 5000 + b"]" * 5000]),
)


@FUZZ
@given(data=st.data())
def test_jsonl_with_malformed_and_truncated_lines(tmp_path_factory, good_lines, data):
    lines: list[bytes] = []
    expected_good: list[str] = []
    bad_lines: list[int] = []
    for line in good_lines[:15]:
        kind = data.draw(st.sampled_from(["good", "good", "truncate", "garbage"]))
        if kind == "good":
            lines.append(line)
            expected_good.append(_nct(line))
        elif kind == "truncate":
            cut = data.draw(st.integers(1, len(line) - 1))
            lines.append(line[:cut])
            bad_lines.append(len(lines))
        else:
            lines.append(data.draw(_garbage))
            bad_lines.append(len(lines))
    path = tmp_path_factory.mktemp("jsonl") / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    # detection may call a file whose lines are mostly broken a single JSON document; read it
    # as JSON lines, which is what it is
    records, problems = _read(path, format="jsonl")
    assert [r.trial.registry_id for r in records] == expected_good
    assert sorted(int(p.location.split()[-1]) for p in problems) == bad_lines
    assert all(p.source == str(path) and p.reason for p in problems)


@FUZZ
@given(cut=st.integers(min_value=20, max_value=10_000))
def test_truncated_gzip_keeps_complete_lines(tmp_path_factory, good_lines, cut):
    blob = gzip.compress(b"\n".join(good_lines) + b"\n")
    cut = min(cut, len(blob) - 1)
    path = tmp_path_factory.mktemp("gz") / "cut.jsonl.gz"
    path.write_bytes(blob[:cut])
    records, problems = _read(path, format="jsonl_gz")
    ids = [r.trial.registry_id for r in records]
    assert ids == [_nct(x) for x in good_lines[: len(ids)]]  # a clean prefix, nothing invented
    assert len(ids) < len(good_lines)
    assert problems, "a truncated gzip must be reported"
    assert "truncated" in problems[-1].reason or "corrupt" in problems[-1].reason or "invalid JSON" in problems[0].reason


@FUZZ
@given(cut=st.integers(min_value=100, max_value=200_000))
def test_truncated_zip_keeps_complete_members(tmp_path_factory, trials_dir, cut):
    tmp = tmp_path_factory.mktemp("zip")
    whole = write_zip(tmp / "whole.zip", v2_files(trials_dir)).read_bytes()
    cut = min(cut, len(whole) - 1)
    path = tmp / "cut.zip"
    path.write_bytes(whole[:cut])
    records, problems = _read(path, format="ctgov_v2_zip")
    ids = [r.trial.registry_id for r in records]
    all_ids = [p.stem for p in v2_files(trials_dir)]
    assert ids == all_ids[: len(ids)]
    assert len(ids) < len(all_ids) or problems == []
    if len(ids) < len(all_ids):
        assert problems and all(p.source == str(path) for p in problems)


# ---------------------------------------------------------------- encodings
def test_latin1_line_reported_then_read_with_encoding(tmp_path, good_lines):
    study = json.loads(good_lines[0])
    study["protocolSection"]["identificationModule"]["briefTitle"] = "Étude de la douleur chronique"
    latin = json.dumps(study, ensure_ascii=False).encode("latin-1")
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b"\n".join([good_lines[1], latin, good_lines[2]]) + b"\n")
    records, problems = _read(path)
    assert [r.trial.registry_id for r in records] == [_nct(good_lines[1]), _nct(good_lines[2])]
    assert len(problems) == 1 and problems[0].location == "line 2"
    assert "utf-8" in problems[0].reason and "encoding=" in problems[0].reason
    records, problems = _read(path, encoding="latin-1")
    assert problems == [] and records[1].trial.title == "Étude de la douleur chronique"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-16-le"])
def test_jsonl_in_utf16_and_with_bom(tmp_path, good_lines, encoding):
    text = "\n".join(x.decode("utf-8") for x in good_lines[:5]) + "\n"
    path = tmp_path / f"{encoding}.jsonl"
    path.write_bytes(text.encode(encoding))
    records, problems = _read(path)
    assert problems == []
    assert [r.trial.registry_id for r in records] == [_nct(x) for x in good_lines[:5]]


def test_ictrp_csv_utf16_and_bad_bytes(tmp_path):
    path = write_ictrp_csv(tmp_path / "utf16.csv", sample_ictrp(), encoding="utf-16")
    records, problems = _read(path)
    assert problems == [] and len(records) == 5
    raw = write_ictrp_csv(tmp_path / "cp1252.csv", sample_ictrp()).read_bytes().replace(b"Gambia", b"Gamb\xefa")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(raw)
    records, problems = _read(bad)
    # only the ISRCTN row (line 4) holds the byte, in its title and Countries cells: those two
    # fields are emptied, the record and the other four rows are kept
    ids = ["NCT02552212", "EUCTR2015-001894-41-DE", "ISRCTN12345678", "ChiCTR2000012345", "ACTRN12618000123456"]
    assert [r.trial.registry_id for r in records] == ids
    assert [(p.location, p.field, p.registry_id, p.action) for p in problems] == [
        ("line 4", "Public title", ids[2], "field emptied"), ("line 4", "Countries", ids[2], "field emptied")]
    assert all("not valid utf-8" in p.reason and "encoding=" in p.reason for p in problems)
    isrctn = records[2]
    assert isrctn.trial.countries == [] and isrctn.trial.title == ""
    assert isrctn.trial.conditions == ["Malaria", "G6PD deficiency"]
    assert isrctn.raw["Countries"] == "Gamb\ufffda"  # the raw cell marks the undecodable byte
    from neuromodmap.trials import TrialStore

    with TrialStore(tmp_path / "t.duckdb") as store:  # and it can be stored
        report = store.import_files([bad], progress=False)
        assert report.n_upserted == 5 and store.get_trial(ids[2]).countries == []
    # a bad byte in the TrialID costs the record: it has no usable id
    worse = tmp_path / "worse.csv"
    worse.write_bytes(raw.replace(b"ISRCTN12345678", b"ISRCTN1234567\xef"))
    records, problems = _read(worse)
    assert [r.trial.registry_id for r in records] == [i for i in ids if i != ids[2]]
    assert [(p.location, p.field, p.action) for p in problems] == [("line 4", "TrialID", "record skipped")]


# ---------------------------------------------------------------- XML bombs
@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_xml_entity_attacks_are_refused(tmp_path, trials_dir, payload):
    path = tmp_path / "bomb.xml"
    path.write_bytes(payload)
    records, problems = _read(path)
    assert records == []
    assert len(problems) == 1 and problems[0].reason.startswith("refused")
    # inside a ZIP the other members still import
    import zipfile

    bulk = tmp_path / "bulk.zip"
    with zipfile.ZipFile(bulk, "w") as zf:
        zf.writestr("NCT99999999.xml", payload)
        zf.write(trials_dir / "ctgov_legacy_xml" / "NCT02654730.xml", "NCT02654730.xml")
    records, problems = _read(bulk)
    assert [r.trial.registry_id for r in records] == ["NCT02654730"]
    assert problems[0].location == "member NCT99999999.xml" and problems[0].reason.startswith("refused")


def test_ictrp_xml_bomb_refused(tmp_path):
    path = tmp_path / "ictrp.xml"
    path.write_bytes(
        BILLION_LAUGHS.replace(b"clinical_study", b"Trials_downloaded_from_ICTRP").replace(
            b"<id_info><nct_id>NCT99999999</nct_id></id_info><brief_title>&lol9;</brief_title>",
            b"<Trial><TrialID>X1</TrialID><Public_title>&lol9;</Public_title></Trial>",
        )
    )
    records, problems = _read(path)
    assert records == [] and problems[0].reason.startswith("refused")


def test_truncated_ictrp_xml_keeps_earlier_trials(tmp_path):
    whole = write_ictrp_xml(tmp_path / "whole.xml", sample_ictrp()).read_bytes()
    cut = whole.index(b"<TrialID>ChiCTR")
    path = tmp_path / "cut.xml"
    path.write_bytes(whole[:cut])
    records, problems = _read(path)
    assert [r.trial.registry_id for r in records] == ["NCT02552212", "EUCTR2015-001894-41-DE", "ISRCTN12345678"]
    assert len(problems) == 1 and "invalid XML" in problems[0].reason and problems[0].location == "after Trial 3"


# ---------------------------------------------------------------- oversize, missing, wrong types
def test_oversize_field_and_line(tmp_path, good_lines, monkeypatch):
    monkeypatch.setattr(_common, "MAX_FIELD_CHARS", 1000)
    from neuromodmap.trials._readers import v2

    monkeypatch.setattr(v2, "MAX_FIELD_CHARS", 1000)
    monkeypatch.setattr(_files, "MAX_RECORD_BYTES", 50_000)
    study = json.loads(good_lines[0])
    study["protocolSection"]["descriptionModule"]["briefSummary"] = "pain " * 400
    huge = json.loads(good_lines[1])
    huge["protocolSection"]["descriptionModule"]["detailedDescription"] = "x" * 60_000
    path = tmp_path / "oversize.jsonl"
    short = min(good_lines, key=len)  # a real record with no field over the lowered limit
    path.write_bytes(b"\n".join([json.dumps(study).encode(), json.dumps(huge).encode(), short]) + b"\n")
    records, problems = _read(path)
    # the oversize field is emptied and its record kept; a line over the record limit cannot
    # be parsed at all, so that record is skipped
    assert [r.trial.registry_id for r in records] == [_nct(good_lines[0]), _nct(short)]
    assert records[0].trial.brief_summary == "" and records[0].trial.title == study["protocolSection"][
        "identificationModule"]["briefTitle"]
    assert records[0].raw == study  # the raw record is kept as read
    assert problems[0].location == "line 1" and problems[0].field == "brief_summary"
    assert problems[0].registry_id == _nct(good_lines[0]) and problems[0].action == "field emptied"
    assert "2,000 characters (limit 1,000)" in problems[0].reason
    assert problems[1].location == "line 2" and "limit" in problems[1].reason and problems[1].action == "record skipped"
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s.pop("protocolSection"), "protocolSection"),
        (lambda s: s["protocolSection"]["identificationModule"].pop("nctId"), "protocolSection.identificationModule.nctId"),
        (lambda s: s["protocolSection"].__setitem__("identificationModule", "NCT02552212"),
         "protocolSection.identificationModule"),
    ],
)
def test_records_without_an_id_are_skipped(tmp_path, trials_dir, mutate, field):
    study = json.loads((trials_dir / "ctgov_v2_json" / "NCT02552212.json").read_text())
    bad = copy.deepcopy(study)
    mutate(bad)
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"studies": [bad, v2_studies(trials_dir)[0]]}))
    records, problems = _read(path)
    assert [r.trial.registry_id for r in records] == ["NCT00465816"]
    assert len(problems) == 1
    assert problems[0].field == field and problems[0].location == "study 1"
    assert problems[0].action == "record skipped"


@pytest.mark.parametrize(
    ("mutate", "field", "emptied"),
    [
        (lambda s: s["protocolSection"]["conditionsModule"].__setitem__("conditions", "Axial Spondyloarthritis"),
         "protocolSection.conditionsModule.conditions", {"conditions": []}),
        (lambda s: s["protocolSection"]["designModule"]["enrollmentInfo"].__setitem__("count", "many"),
         "protocolSection.designModule.enrollmentInfo.count", {"enrollment": None}),
        (lambda s: s.__setitem__("hasResults", "yes"), "hasResults", {"has_results": None}),
        (lambda s: s["protocolSection"]["statusModule"]["startDateStruct"].__setitem__("date", "sometime"),
         "protocolSection.statusModule.startDateStruct.date", {"start_date": None}),
        # a module of the wrong type empties every field read from it
        (lambda s: s["protocolSection"].__setitem__("designModule", ["not", "an", "object"]),
         "protocolSection.designModule",
         {"enrollment": None, "phases": [], "allocation": None, "masking": None, "study_type": None,
          "primary_purpose": None}),
        (lambda s: s["protocolSection"]["designModule"].__setitem__("phases", ["PHASE3", "PHASE 9"]),
         "protocolSection.designModule.phases", {"phases": []}),
        (lambda s: s["protocolSection"]["armsInterventionsModule"]["interventions"][0].__setitem__("type", 7),
         "protocolSection.armsInterventionsModule.interventions[].type", {}),
    ],
)
def test_a_bad_field_is_emptied_and_the_record_kept(tmp_path, trials_dir, mutate, field, emptied):
    from neuromodmap.trials._readers.v2 import study_to_trial

    study = json.loads((trials_dir / "ctgov_v2_json" / "NCT02552212.json").read_text())
    whole = study_to_trial(study)
    bad = copy.deepcopy(study)
    mutate(bad)
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"studies": [bad, v2_studies(trials_dir)[0]]}))
    records, problems = _read(path)
    assert [r.trial.registry_id for r in records] == ["NCT02552212", "NCT00465816"]
    assert len(problems) == 1
    # an emptied date has no precision either
    emptied = {**emptied, **{f"{n}_precision": None for n in emptied if n.endswith("_date")}}
    p = problems[0]
    assert (p.field, p.location, p.registry_id, p.action) == (field, "study 1", "NCT02552212", "field emptied")
    got = records[0].trial
    assert records[0].raw == bad  # the raw record is kept as read, bad value included
    for name, value in emptied.items():
        assert getattr(whole, name) != value  # the real record has that field
        assert getattr(got, name) == value
    # every other field is as in the unchanged record
    same = set(type(got).model_fields) - set(emptied) - {"interventions"}
    assert {n: getattr(got, n) for n in same} == {n: getattr(whole, n) for n in same}
    if "interventions" in field:  # only that intervention's type is emptied
        assert got.interventions[0].type is None and whole.interventions[0].type == "BIOLOGICAL"
        assert got.interventions[0].name == whole.interventions[0].name
        assert got.interventions[1:] == whole.interventions[1:]
    # strict mapping (no problem list) still raises on the first bad field
    with pytest.raises(_common.FieldError) as err:
        study_to_trial(bad)
    assert err.value.field == field and err.value.registry_id == "NCT02552212"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
_PATHS = [
    ("protocolSection", "identificationModule", "briefTitle"),
    ("protocolSection", "identificationModule", "secondaryIdInfos"),
    ("protocolSection", "statusModule"),
    ("protocolSection", "statusModule", "overallStatus"),
    ("protocolSection", "designModule", "phases"),
    ("protocolSection", "designModule", "designInfo"),
    ("protocolSection", "armsInterventionsModule", "interventions"),
    ("protocolSection", "contactsLocationsModule", "locations"),
    ("protocolSection", "outcomesModule"),
    ("derivedSection", "conditionBrowseModule", "meshes"),
    ("hasResults",),
]


def _skeleton(text: str) -> str:
    """The visible characters of ``text`` (what a reader may not lose: spacing and controls may be cleaned)."""
    return "".join(ch for ch in text if ch.isprintable() and not ch.isspace())


@FUZZ
@given(path=st.sampled_from(_PATHS), value=_json_values)
def test_any_value_anywhere_never_crashes(trials_dir, path, value):
    from neuromodmap.trials._readers._common import FieldError
    from neuromodmap.trials._readers.v2 import study_to_trial

    study = json.loads((trials_dir / "ctgov_v2_json" / "NCT02552212.json").read_text())
    node = study
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    try:
        trial = study_to_trial(study)
    except FieldError as err:
        assert err.field and err.reason and err.registry_id == "NCT02552212"
    else:
        assert trial.registry_id == "NCT02552212"
    # collecting the field problems instead: no value outside the id costs the record
    problems: list[FieldError] = []
    trial = study_to_trial(study, problems=problems)
    assert trial.registry_id == "NCT02552212" and trial.official_title.startswith("Phase 3")  # a field off the path
    assert all(type(e) is FieldError and e.field and e.reason and e.registry_id == "NCT02552212" for e in problems)
    # what is kept: every field read from a part of the record the mutation did not touch
    whole = study_to_trial(json.loads((trials_dir / "ctgov_v2_json" / "NCT02552212.json").read_text()))
    for name in ("official_title", "acronym", "brief_summary", "conditions", "keywords", "sponsor"):
        if hasattr(whole, name):
            assert getattr(trial, name) == getattr(whole, name), name
    if path == ("protocolSection", "identificationModule", "briefTitle"):
        # a text title is kept (cleaned); anything else empties the title, and says so
        if isinstance(value, str) and value.strip():
            assert _skeleton(trial.title) == _skeleton(value)
        elif value not in (None, ""):
            assert trial.title == "" and any("briefTitle" in e.field for e in problems), problems


@FUZZ
@given(text=st.text(max_size=200))
@example(text="None")  # found by CI: a title of a null spelling reads empty, as ICTRP means it
def test_ictrp_csv_random_cells(tmp_path_factory, text):
    rec = sample_ictrp()[4] | {"Public_title": text, "Target_size": text[:10], "Date_registration": text[:12]}
    path = write_ictrp_csv(tmp_path_factory.mktemp("csv") / "x.csv", [rec, sample_ictrp()[0]])
    records, problems = _read(path, format="ictrp_csv")
    # what is kept: both records, in file order (the cells are quoted, so no text can break a row)
    assert [r.trial.registry_id for r in records] == [rec["TrialID"], "NCT02552212"]
    # what is reported: only fields of the mutated cells, each emptied on its own record, never the record
    assert all(p.action == "field emptied" and p.registry_id == rec["TrialID"] for p in problems), problems
    reported = {p.field.replace(" ", "_") for p in problems}
    assert reported <= {"Public_title", "Target_size", "Date_registration"}, reported
    mutated = records[0].trial
    if "Public_title" in reported:
        assert mutated.title == ""
    elif text.strip().lower() in {"null", "na", "n/a", "none"}:
        assert mutated.title == ""  # ICTRP's spellings of "no value" (the full export writes NULL)
    elif text.strip():
        assert _skeleton(mutated.title) == _skeleton(text)  # every visible character kept, in order
    # the untouched cells of the mutated record, and the other record, are read whole
    untouched = _read(write_ictrp_csv(tmp_path_factory.mktemp("csv") / "y.csv", [sample_ictrp()[4]]),
                      format="ictrp_csv")[0][0].trial
    assert (mutated.conditions, mutated.countries, mutated.registry) == (untouched.conditions, untouched.countries,
                                                                         untouched.registry)


def test_lone_surrogate_escape_is_reported_not_stored(tmp_path, good_lines):
    from neuromodmap.trials import TrialStore

    bad = json.dumps({"protocolSection": {"identificationModule": {"nctId": "NCT00000001", "briefTitle": "x \ud800 y"}}})
    pair = json.dumps({"protocolSection": {"identificationModule": {"nctId": "NCT00000002", "briefTitle": "ok \U0001f600"}}})
    path = tmp_path / "surrogate.jsonl"
    path.write_bytes(b"\n".join([good_lines[0], bad.encode(), pair.encode()]) + b"\n")
    with TrialStore(tmp_path / "t.duckdb") as store:
        report = store.import_files([path], progress=False)
        assert [p.location for p in report.problems] == ["line 2"] and "surrogate" in report.problems[0].reason
        assert len(store) == 2 and store.get_trial("NCT00000002").title == "ok \U0001f600"


def test_database_refusal_isolates_the_bad_record(tmp_path, good_lines):
    from neuromodmap.trials import TrialStore
    from neuromodmap.trials.io import ImportedRecord

    records = list(read_trials(_write(tmp_path / "ok.jsonl", good_lines[:6])))
    # a record whose raw text is not JSON: DuckDB's JSON column refuses the whole batch
    broken = records[3]
    records[3] = ImportedRecord(broken.trial, broken.raw, broken.source, broken.location, raw_json="{not json")
    problems: list[ImportProblem] = []
    with TrialStore(tmp_path / "t.duckdb") as store:
        written = store.upsert(records, source="test", as_of=None, problems=problems)
        assert written == 5 and len(store) == 5
        assert len(problems) == 1 and problems[0].registry_id == broken.trial.registry_id
        assert problems[0].location == broken.location and "refused by the database" in problems[0].reason
        with pytest.raises(Exception, match="(?i)json"):
            store.upsert(records[3:4], source="test", as_of=None)


def _write(path, lines):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
