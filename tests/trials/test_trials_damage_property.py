"""Issue 14, item 2 as a property: damaging one field of a valid real record, in every reader
format, never loses the record. The record is stored, that field is empty, every other audited
field is as in the undamaged import, and one problem names the file, the record id, the field
and the raw value (`field emptied`).

Each example takes two real records of a real export (one for a legacy XML file), writes them in that export's own
format with one field of the first replaced by a value no registry writes (drawn by
hypothesis: a ``~`` and letters, no digit, so no date, count or phase can be read from it),
and imports the file into a fresh store. Examples are few (the suite stays fast); the formats
and fields are many.
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import re
import zipfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from neuromodmap.trials import TrialStore

FEW = settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
#: no digit (no date, count or phase number), no i/v (no roman phase), nothing XML or CSV
#: would escape; the leading "~" keeps it from being a month name or a "no value" word
JUNK = st.text(alphabet="abcdefghjklmnopqrstuwxyzABCDEFGHJKLMNOPQRSTUWXYZ#%", min_size=1, max_size=12).map(
    lambda s: "~" + s
)
COLUMNS = {"start": "start_date", "enrollment": "enrollment", "phases": "phases", "registration": "registration_date"}
AUDITED = "registry_id, title, overall_status, start_date, enrollment, phases, countries, registration_date"


# ------------------------------------------------------------ each format: two real records, one damaged

def _v2_studies(trials_dir) -> list[dict]:
    data = gzip.decompress((trials_dir / "ctgov_v2_json_download_herniated_disc_koy570" / "ctg-studies.json.gz").read_bytes())
    studies = json.loads(data)
    # records that carry all four fields
    full = [s for s in studies if s["protocolSection"]["designModule"].get("phases")
            and s["protocolSection"]["designModule"].get("enrollmentInfo")]
    return full[:2]


_V2_PATHS = {
    "start": ("protocolSection", "statusModule", "startDateStruct", "date"),
    "enrollment": ("protocolSection", "designModule", "enrollmentInfo", "count"),
    "phases": ("protocolSection", "designModule", "phases"),
    "registration": ("protocolSection", "statusModule", "studyFirstSubmitDate"),
}


def _v2_damaged(trials_dir, name, junk):
    studies = copy.deepcopy(_v2_studies(trials_dir))
    node = studies[0]
    path = _V2_PATHS[name]
    for key in path[:-1]:
        node = node[key]
    if junk is not None:
        node[path[-1]] = [junk] if name == "phases" else junk
    return studies, ".".join(path)


def write_v2_array(trials_dir, tmp, name, junk):
    studies, field = _v2_damaged(trials_dir, name, junk)
    path = tmp / "ctg-studies.json.gz"
    path.write_bytes(gzip.compress(json.dumps(studies).encode()))
    return path, studies[0]["protocolSection"]["identificationModule"]["nctId"], field


def write_v2_zip(trials_dir, tmp, name, junk):
    studies, field = _v2_damaged(trials_dir, name, junk)
    path = tmp / "ctg-studies.json.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for s in studies:
            zf.writestr(s["protocolSection"]["identificationModule"]["nctId"] + ".json", json.dumps(s))
    return path, studies[0]["protocolSection"]["identificationModule"]["nctId"], field


_XML_TAGS = {"start": "start_date", "enrollment": "enrollment", "phases": "phase", "registration": "study_first_submitted"}


def write_legacy_xml(trials_dir, tmp, name, junk):
    src = trials_dir / "ctgov_legacy_xml" / "NCT00151216.xml"
    text = src.read_text(encoding="utf-8")
    tag = _XML_TAGS[name]
    if junk is not None:
        text, n = re.subn(rf"(<{tag}(?:\s[^>]*)?>)[^<]*(</{tag}>)", lambda m: m.group(1) + junk + m.group(2), text,
                          count=1)
        assert n == 1
    path = tmp / src.name
    path.write_text(text, encoding="utf-8")
    return path, "NCT00151216", tag


def _csv_damaged(src: Path, tmp: Path, column: str, junk: str, id_column: str, filled: list[str], gz: bool):
    data = src.read_bytes()
    text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    col = {h: i for i, h in enumerate(header)}
    full = [r for r in rows[1:] if all(r[col[c]].strip() not in ("", "NULL") for c in filled)][:2]
    if junk is not None:
        full[0][col[column]] = junk
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *full])
    path = tmp / src.name
    path.write_bytes(gzip.compress(buf.getvalue().encode()) if gz else buf.getvalue().encode())
    return path, full[0][col[id_column]], column


_CSV_COLUMNS = {"start": "Start Date", "enrollment": "Enrollment", "phases": "Phases"}


def write_ctgov_csv(trials_dir, tmp, name, junk):
    src = trials_dir / "ctgov_csv_mixed_1000_anand21jv" / "ctg-studies.csv.gz"
    return _csv_damaged(src, tmp, _CSV_COLUMNS[name], junk, "NCT Number", list(_CSV_COLUMNS.values()), True)


def write_classic_csv(trials_dir, tmp, name, junk):
    src = trials_dir / "ctgov_legacy_xml_allpublicxml_subset_reesewang25" / "SearchResults.csv"
    return _csv_damaged(src, tmp, _CSV_COLUMNS[name], junk, "NCT Number", list(_CSV_COLUMNS.values()), False)


_ICTRP_CSV = {"start": "Date enrollement", "enrollment": "Target size", "phases": "Phase",
              "registration": "Date registration3"}


def write_ictrp_csv(trials_dir, tmp, name, junk):
    src = trials_dir / "who_ictrp_covid19_2020_ebmdatalab" / "COVID19-1135-trials.csv.gz"
    return _csv_damaged(src, tmp, _ICTRP_CSV[name], junk, "TrialID", list(_ICTRP_CSV.values()), True)


_FULL = {"start": "Date_enrollment", "enrollment": "Target_size", "phases": "Phase", "registration": "Date_registration"}


def write_ictrp_full(trials_dir, tmp, name, junk):
    src = trials_dir / "who_ictrp_fullexport_samples_2020_worcjamessmith" / "ictrp_im_sample.csv"
    return _csv_damaged(src, tmp, _FULL[name], junk, "TrialID", list(_FULL.values()), False)


_ICTRP_TAGS = {"start": "Date_enrollement", "enrollment": "Target_size", "phases": "Phase",
               "registration": "Date_registration3"}


def write_ictrp_xml(trials_dir, tmp, name, junk):
    text = (trials_dir / "who_ictrp_xml_2024_machado" / "ICTRP-Results(1).xml").read_text(encoding="utf-8")
    trials = re.findall(r"<Trial>.*?</Trial>", text, re.S)

    def filled(block):
        return all(re.search(rf"<{t}>\s*[^<\s]", block) for t in _ICTRP_TAGS.values())

    two = [b for b in trials if filled(b) and "<TrialID>NCT" not in b][:2]
    tag = _ICTRP_TAGS[name]
    if junk is not None:
        two[0] = re.sub(rf"<{tag}>[^<]*</{tag}>", f"<{tag}>{junk}</{tag}>", two[0], count=1)
    head = text[: text.index("<Trial>")]
    path = tmp / "ICTRP-Results.xml"
    path.write_text(head + "\n".join(two) + "\n</Trials_downloaded_from_ICTRP>\n", encoding="utf-8")
    rid = re.search(r"<TrialID>\s*(.*?)\s*</TrialID>", two[0], re.S).group(1)
    return path, rid, tag


_CTRDATA = {  # register -> our field -> the key of ctrdata's record
    "EUCTR": {"registration": ("x6_date_on_which_this_record_was_first_entered_in_the_eudract_database",),
              "enrollment": ("f422_in_the_whole_clinical_trial",)},
    "ISRCTN": {"start": ("participants", "recruitmentStart"), "enrollment": ("participants", "targetEnrolment")},
}


def _ctrdata(register, trials_dir, tmp, name, junk):
    lines = gzip.decompress((trials_dir / "ctrdata_demo_sqlite_eu_registers_rfhb" /
                             "demo_records_json_text.ndjson.gz").read_bytes()).decode().splitlines()
    two = [json.loads(ln) for ln in lines if json.loads(ln).get("ctrname") == register][:2]
    path_keys = _CTRDATA[register][name]
    if junk is not None:
        node = two[0]
        for key in path_keys[:-1]:
            node = node[key]
        node[path_keys[-1]] = junk
    path = tmp / "ctrdata.ndjson.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in two).encode()))
    # ICTRP's spelling of the first record's id (SOURCES.md: EUCTR 2016-004489-24-DE first)
    rid = "EUCTR2016-004489-24-DE" if register == "EUCTR" else "ISRCTN" + two[0]["isrctn"]
    return path, rid, ".".join(path_keys)


def write_ctrdata_euctr(trials_dir, tmp, name, junk):
    return _ctrdata("EUCTR", trials_dir, tmp, name, junk)


def write_ctrdata_isrctn(trials_dir, tmp, name, junk):
    return _ctrdata("ISRCTN", trials_dir, tmp, name, junk)


FORMATS = {
    "v2_json_array_gz": (write_v2_array, ["start", "enrollment", "phases", "registration"]),
    "v2_zip": (write_v2_zip, ["start", "enrollment", "phases", "registration"]),
    "legacy_xml": (write_legacy_xml, ["start", "enrollment", "phases", "registration"]),
    "ctgov_csv_current": (write_ctgov_csv, ["start", "enrollment", "phases"]),
    "ctgov_csv_classic": (write_classic_csv, ["start", "enrollment", "phases"]),
    "ictrp_xml": (write_ictrp_xml, ["start", "enrollment", "phases", "registration"]),
    "ictrp_csv": (write_ictrp_csv, ["start", "enrollment", "phases", "registration"]),
    "ictrp_full_csv": (write_ictrp_full, ["start", "enrollment", "phases", "registration"]),
    "ctrdata_euctr": (write_ctrdata_euctr, ["registration", "enrollment"]),
    "ctrdata_isrctn": (write_ctrdata_isrctn, ["start", "enrollment"]),
}


def _import(path: Path, db: Path) -> tuple[dict[str, dict], list[tuple]]:
    with TrialStore(db) as store:
        store.import_files([path], progress=False)
    with duckdb.connect(str(db), read_only=True) as con:
        cur = con.execute(f"SELECT {AUDITED} FROM trials")  # noqa: S608 (fixed names)
        names = [d[0] for d in cur.description]
        rows = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
        problems = con.execute("SELECT source, location, registry_id, field, reason, action FROM import_problems").fetchall()
    return rows, problems


@pytest.mark.parametrize("fmt", list(FORMATS))
@FEW
@given(data=st.data())
def test_one_damaged_field_never_loses_the_record(trials_dir, tmp_path_factory, fmt, data):
    writer, fields = FORMATS[fmt]
    name = data.draw(st.sampled_from(fields), label="field")
    junk = data.draw(JUNK, label="value")
    # the same two records undamaged: what every other field should read
    tmp = tmp_path_factory.mktemp(fmt)
    clean_dir, bad_dir = tmp / "clean", tmp / "bad"
    clean_dir.mkdir(), bad_dir.mkdir()
    clean_path, rid, _ = writer(trials_dir, clean_dir, name, None)
    clean, clean_problems = _import(clean_path, clean_dir / "t.duckdb")
    assert clean[rid][COLUMNS[name]] not in (None, []), "the real record carries the field"

    path, rid2, field = writer(trials_dir, bad_dir, name, junk)
    assert rid2 == rid
    rows, problems = _import(path, bad_dir / "t.duckdb")
    assert set(rows) == set(clean)  # no record lost
    assert rows[rid][COLUMNS[name]] in (None, [])  # the damaged field is empty
    assert {k: v for k, v in rows[rid].items() if k != COLUMNS[name]} == {
        k: v for k, v in clean[rid].items() if k != COLUMNS[name]}
    for other in set(rows) - {rid}:  # the other record (a legacy XML file holds one)
        assert rows[other] == clean[other]
    new = [p for p in problems if p not in clean_problems]
    assert len(new) == 1, new
    source, _location, registry_id, problem_field, reason, action = new[0]
    assert source == str(path) and registry_id == rid and action == "field emptied"
    assert problem_field.endswith(field) or problem_field == field, (problem_field, field)
    assert junk in reason, reason  # the raw value
