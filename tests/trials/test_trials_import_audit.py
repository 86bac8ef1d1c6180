"""Issue 14, "done when": each real export in shared/data/trials, imported alone with
`neuromodmap trials import FILE --db X`, exits 0, stores exactly the ids the file holds and keeps
>= 98 % of the phases, statuses, start dates, enrollments, countries and registration dates the
file carries.

The ids and fields are counted from the raw file by benchmarks/trials_import_audit.py (csv
module, regular expressions, json; never our readers), which also prints the whole table.
A field counts as kept when the stored value says what the file says (a date's year and month,
a plain count, the status and phase numbers, the first country). The AllPublicXML tar is
sampled here (every 8th record, repacked as a tar.gz); the script audits all 6,786.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "trials_import_audit.py"


def _load_audit():
    spec = importlib.util.spec_from_file_location("trials_import_audit", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


A = _load_audit()

#: the number of trials each file holds, from its SOURCES.md (not from our code)
DOCUMENTED = {
    "csv_current30_1000": 1000, "csv_current29_635": 635, "csv_current9_4145": 4145,
    "csv_classic27_100": 100, "csv_classic8_5938": 5938, "v2_json_array_100": 100,
    "v2_zip_635": 635, "ictrp_xml2020_578": 578, "ictrp_xml2024_95": 95, "ictrp_csv_927": 927,
    "ictrp_csv_1135": 1135, "ictrp_full_127": 127, "ctrdata_sqlite_25": 25, "aact_1200": 1200,
    "v2_json_files_12": 12,
    # 60 files; NCT00980226.xml is the record of NCT00081588 served under its alias
    # (<nct_alias>NCT00980226</nct_alias>), so 59 trials
    "legacy_xml_files_60": 59,
}
#: the fields each layout has no column for (SOURCES.md: the columns of each download)
ABSENT = {
    "csv_current30_1000": {"registration"}, "csv_current29_635": {"registration"},
    "csv_current9_4145": {"phases", "start", "enrollment", "countries", "registration"},
    "csv_classic27_100": {"registration"},
    "csv_classic8_5938": {"phases", "start", "enrollment", "registration"},
    "ctrdata_sqlite_25": set(A.FIELDS),
}
CASES = [c for c in A.FILES if "tar" not in c[0]] + A.FOLDERS


def _assert_whole(audit, n_expected: int | None, absent: set[str]) -> None:
    assert audit.exit_code == 0
    # importing the file again changes nothing: same rows, hashes, sources, import times and runs
    assert audit.reimport_same is True
    if n_expected is not None:
        assert audit.n_ids == n_expected
    assert audit.ids_equal, (audit.missing[:5], audit.extra[:5])
    for name in A.FIELDS:
        cell = audit.fields[name]
        if name in absent:
            assert cell is None, name
            continue
        carried, kept, agree = cell
        assert carried > 0, name  # the file does carry it: the raw count works
        wrong = [s for s in audit.samples.get(name, [])][:3]
        assert kept / carried >= 0.98, (name, carried, kept, wrong)
        assert agree / carried >= 0.98, (name, carried, agree, wrong)


@pytest.mark.parametrize(("key", "rel", "reader"), CASES, ids=[c[0] for c in CASES])
def test_real_file_imported_alone_keeps_ids_and_fields(trials_dir, tmp_path, key, rel, reader):
    if key == "legacy_xml_files_60":  # each file is a store of its own: every 3rd here, all in the script
        audit = A.audit_one(key, rel, reader, trials_dir, tmp_path, every=3, reimport=True)
        _assert_whole(audit, None, set())
        assert audit.n_ids == 20
        return
    audit = A.audit_one(key, rel, reader, trials_dir, tmp_path, reimport=True)
    _assert_whole(audit, DOCUMENTED[key], ABSENT.get(key, set()))


def test_allpublicxml_tar_sample(trials_dir, tmp_path):
    """Every 8th record of the 6,786-record tar, repacked as a tar.gz as the bulk download
    lays it out (the script audits the whole tar: benchmarks/trials_import_audit.py)."""
    key, rel, _ = next(c for c in A.FILES if "tar" in c[0])
    sample = tmp_path / "sample" / "AllPublicXML_sample.tar.gz"
    sample.parent.mkdir()
    with tarfile.open(trials_dir / rel, "r:*") as src, tarfile.open(sample, "w:gz") as dst:
        n = 0
        for member in src:
            if member.isfile() and member.name.endswith(".xml"):
                if n % 8 == 0:
                    dst.addfile(member, src.extractfile(member))
                n += 1
    audit = A.audit_one(key, str(sample), A.raw_legacy_tar, trials_dir, tmp_path, reimport=True)
    _assert_whole(audit, (6786 + 7) // 8, set())


# ------------------------------------------------------------ every date format of every register

def _registry_formats(trials_dir) -> list[dict]:
    path = trials_dir / "who_ictrp_fullexport_samples_2020_worcjamessmith" / "registry_prefixes_date_formats.csv"
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_register_date_format(trials_dir, tmp_path):
    """Each register's date spelling (registry_prefixes_date_formats.csv: prefix, example,
    strptime format) read as that register's registration and start date, in a real COVID-19
    CSV row given the register's prefix; the expected date is strptime of the table's own format.
    A day-first example with day <= 12 is also checked swapped (03/04 is 3 April, never 4 March)."""
    rows = _registry_formats(trials_dir)
    assert len(rows) == 20
    text = A._text(trials_dir / "who_ictrp_covid19_2020_ebmdatalab" / "COVID19-1135-trials.csv.gz")
    reader = csv.reader(io.StringIO(text, newline=""))
    header, template = next(reader), next(reader)
    col = {name: i for i, name in enumerate(header)}
    out_rows, expected = [], {}
    for i, row in enumerate(rows):
        example = row["Date Example"].strip('"')
        want = dt.datetime.strptime(example, row["Format"]).date()
        for j, (value, date) in enumerate([(example, want), (_early_day(example, row["Format"]))]):
            cells = list(template)
            trial_id = f"{row['Prefix']}{9000 + 10 * i + j}"
            cells[col["TrialID"]] = trial_id
            cells[col["Date registration"]] = value
            cells[col["Date registration3"]] = ""
            cells[col["Date enrollement"]] = value
            out_rows.append(cells)
            expected[trial_id] = date
    path = tmp_path / "registers.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *out_rows])
    db = tmp_path / "registers.duckdb"
    code, output = A.cli_import(path, db)
    assert code == 0, output
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        got = dict(con.execute("SELECT registry_id, registration_date FROM trials").fetchall())
        starts = dict(con.execute("SELECT registry_id, start_date FROM trials").fetchall())
    assert got == expected
    assert starts == expected


def _early_day(example: str, fmt: str) -> tuple[str, dt.date]:
    """The example's date moved to the 3rd of April: written in the same format, 03/04 or
    2016-04-03, where reading it month first would give 4 March."""
    date = dt.datetime.strptime(example, fmt).date().replace(month=4, day=3)
    return date.strftime(fmt), date


# ------------------------------------------------------------ partial dates at their precision

def test_partial_dates_keep_their_precision(trials_dir, tmp_path):
    """A start date written as a year, a month or a day is stored as its first day with that
    precision, in the website CSV and in the v2 JSON; the real files hold month and day
    dates (the audit above checks every one of them against the file's own spelling), a year
    alone is written here into a real row."""
    src = trials_dir / "ctgov_v2_json_zip_and_csv_erectile_dysfunction_marcmorcos" / "ctg-studies.csv.gz"
    header, rows = A._csv_rows(src)
    col = header.index("Start Date")
    rows = [r for r in rows if r[col]][:3]
    spellings = {"2015": (dt.date(2015, 1, 1), "year"), "2015-09": (dt.date(2015, 9, 1), "month"),
                 "2015-09-17": (dt.date(2015, 9, 17), "day")}
    for row, text in zip(rows, spellings, strict=True):
        row[col] = text
    path = tmp_path / "ctg-studies.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    v2 = tmp_path / "ctg-studies.json"
    study = json.loads(A._text(trials_dir / "ctgov_v2_json" / "NCT02552212.json"))
    studies = []
    for i, text in enumerate(spellings):
        s = copy.deepcopy(study)
        s["protocolSection"]["identificationModule"]["nctId"] = f"NCT9999000{i}"
        s["protocolSection"]["statusModule"]["startDateStruct"]["date"] = text
        studies.append(s)
    v2.write_text(json.dumps(studies), encoding="utf-8")
    import duckdb

    for p, ids in ((path, [r[0] for r in rows]), (v2, [f"NCT9999000{i}" for i in range(3)])):
        db = tmp_path / f"{p.suffix}.duckdb"
        code, output = A.cli_import(p, db)
        assert code == 0, output
        with duckdb.connect(str(db), read_only=True) as con:
            got = {r[0]: (r[1], r[2]) for r in con.execute(
                "SELECT registry_id, start_date, start_date_precision FROM trials").fetchall()}
        assert [got[i] for i in ids] == list(spellings.values())
