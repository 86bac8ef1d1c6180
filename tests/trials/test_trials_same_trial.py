"""Issue 14, item 3: the same trial arriving through different real exports is one row, and
cross-registry links are found on real records (the pairs counted from the raw files, not
through our readers: benchmarks/trials_import_audit.py's csv/regex counters)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import duckdb
import pytest
from test_trials_import_audit import A

from neuromodmap.trials import TrialStore, link_registries

COVID = "who_ictrp_covid19_2020_ebmdatalab"
XML2020 = f"{COVID}/ICTRP-Results_18Mar2020.xml.gz"
CSV927 = f"{COVID}/COVID19-927-trials_7Apr2020.csv.gz"
CSV1135 = f"{COVID}/COVID19-1135-trials.csv.gz"
XML2024 = "who_ictrp_xml_2024_machado/ICTRP-Results(1).xml"
FULL = "who_ictrp_fullexport_samples_2020_worcjamessmith/ictrp_im_sample.csv"
ED = "ctgov_v2_json_zip_and_csv_erectile_dysfunction_marcmorcos"
ALZ_CSV = "ctgov_csv_alzheimer_dementia_sammijiyoung2/ctg-studies.csv.gz"


def _rows(db: Path, columns: str) -> dict[str, tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {r[0]: r[1:] for r in con.execute(f"SELECT registry_id, {columns} FROM trials").fetchall()}  # noqa: S608


def _import(db: Path, *paths: Path) -> None:
    for path in paths:  # each file a command of its own, as a user runs them
        code, output = A.cli_import(path, db)
        assert code == 0, output


def test_three_covid_exports_are_1147_trials(trials_dir, tmp_path):
    """The XML of 18 March and the CSVs of 7 and 15 April 2020 (SOURCES.md: two snapshots of
    one feed) hold 1,147 distinct TrialIDs together; imported one after another into one store
    they are 1,147 rows, in either order, and importing all three again adds none."""
    raw = [A.raw_ictrp_xml(trials_dir / XML2020), A.raw_ictrp_csv(trials_dir / CSV927),
           A.raw_ictrp_csv(trials_dir / CSV1135)]
    union = set().union(*(r.ids for r in raw))
    assert len(union) == 1147
    files = [trials_dir / XML2020, trials_dir / CSV927, trials_dir / CSV1135]
    db = tmp_path / "covid.duckdb"
    _import(db, *files)
    first = _rows(db, "source, record_hash")
    assert set(first) == union
    _import(db, *files)  # the same files again, the same order: nothing changes
    assert _rows(db, "source, record_hash") == first
    reverse = tmp_path / "reverse.duckdb"
    _import(reverse, *reversed(files))
    assert set(_rows(reverse, "source")) == union
    # a trial only in the March XML keeps the XML as its source, one only in the April files a CSV
    only_xml = set(raw[0].ids) - set(raw[1].ids) - set(raw[2].ids)
    assert only_xml and {first[r][0] for r in only_xml} == {str(files[0])}
    assert {first[r][0] for r in union - set(raw[0].ids)} <= {str(files[1]), str(files[2])}


FIVE = "overall_status, start_date, enrollment, list_sort(countries), study_type"


def test_marcmorcos_zip_and_csv_give_one_row_of_the_same_values(trials_dir, tmp_path):
    """The 635 studies of the erectile-dysfunction query, downloaded as the JSON ZIP and as
    the CSV (SOURCES.md: the same 635 NCT ids): each alone gives the same status, start date,
    enrollment, countries and study type for every trial; both into one store are 635 rows."""
    zip_path, csv_path = trials_dir / ED / "ctg-studies.json.zip", trials_dir / ED / "ctg-studies.csv.gz"
    _import(tmp_path / "zip.duckdb", zip_path)
    _import(tmp_path / "csv.duckdb", csv_path)
    from_zip, from_csv = _rows(tmp_path / "zip.duckdb", FIVE), _rows(tmp_path / "csv.duckdb", FIVE)
    assert len(from_zip) == len(from_csv) == 635
    assert set(from_zip) == set(A.raw_ctgov_csv(csv_path).ids)
    differ = {rid: (from_zip[rid], from_csv.get(rid)) for rid in from_zip if from_zip[rid] != from_csv.get(rid)}
    assert differ == {}
    # every field is filled for most trials: the comparison is not of empty values
    for i in range(5):
        assert sum(v[i] not in (None, []) for v in from_zip.values()) >= 540, i
    both = tmp_path / "both.duckdb"
    _import(both, csv_path, zip_path)
    rows = _rows(both, "source_format")
    assert len(rows) == 635 and set(v[0] for v in rows.values()) == {"ctgov_v2"}  # the later copy wins


@pytest.mark.parametrize("order", ["ictrp_first", "ctgov_first"])
def test_ictrp_copy_of_a_ctgov_trial_is_its_row(trials_dir, tmp_path, order):
    """The 2024 ICTRP XML and the Alzheimer CSV download share NCT trials (counted from the raw
    files); in one store each is one row, and the ClinicalTrials.gov version is kept whichever
    file comes first (an ICTRP re-export never replaces a CT.gov record)."""
    ictrp, ctgov = A.raw_ictrp_xml(trials_dir / XML2024), A.raw_ctgov_csv(trials_dir / ALZ_CSV)
    shared = set(ictrp.ids) & set(ctgov.ids)
    assert len(shared) == 8
    files = [trials_dir / XML2024, trials_dir / ALZ_CSV]
    db = tmp_path / "both.duckdb"
    _import(db, *(files if order == "ictrp_first" else files[::-1]))
    rows = _rows(db, "source_format")
    assert set(rows) == set(ictrp.ids) | set(ctgov.ids)
    assert {rows[r][0] for r in shared} == {"ctgov_csv"}


# ------------------------------------------------------------ cross-registry links on real records

_NCT = re.compile(r"NCT\d{8}")
_EUDRACT = re.compile(r"\d{4}-\d{6}-\d{2}")


def _expected_links(trials: dict[str, str]) -> dict[str, set[frozenset]]:
    """Links a reader of the raw file expects. ``trials``: TrialID -> Secondary_ID text.

    secondary_id: a record whose Secondary_ID names another record of the file, by NCT id or
    by EudraCT number (the EU register's TrialID is EUCTR + the EudraCT number + the member
    state); trial_id: EU records of one EudraCT number in several member states."""
    ids = set(trials)
    secondary, same = set(), set()
    for rid, text in trials.items():
        for token in re.split(r"[;,]", text):
            for nct in _NCT.findall(token):
                if nct in ids and nct != rid:
                    secondary.add(frozenset((rid, nct)))
            for number in _EUDRACT.findall(token):
                secondary |= {frozenset((rid, o)) for o in ids if o.startswith("EUCTR" + number) and o != rid}
    by_number: dict[str, list[str]] = {}
    for rid in ids:
        if m := re.fullmatch(r"EUCTR(\d{4}-\d{6}-\d{2})-\w+", rid):
            by_number.setdefault(m.group(1), []).append(rid)
    for group in by_number.values():
        same |= {frozenset(p) for p in itertools.combinations(group, 2)}
    return {"secondary_id": secondary, "trial_id": same}


def _links(db_dir: Path, path: Path) -> dict[str, set[frozenset]]:
    with TrialStore(db_dir / "links.duckdb") as store:
        store.import_files([path], progress=False)
        links = link_registries(store, fuzzy=False)
    out: dict[str, set[frozenset]] = {"secondary_id": set(), "trial_id": set()}
    for r in links.itertuples():
        out[r.method].add(frozenset((r.registry_id, r.linked_id)))
    return out


def test_links_on_the_2024_ictrp_export(trials_dir, tmp_path):
    """The 95 trials of the 2024 export name each other: ICTRP records (CTIS, EUCTR, JPRN)
    naming NCT trials of the file, NCT trials naming EudraCT numbers of EUCTR records of the
    file, and one EU trial registered in five member states."""
    text = A._text(trials_dir / XML2024)
    trials = {}
    for block in re.findall(r"<Trial>(.*?)</Trial>", text, re.S):
        rid = re.search(r"<TrialID>\s*(.*?)\s*</TrialID>", block, re.S).group(1)
        sec = re.search(r"<Secondary_ID>(.*?)</Secondary_ID>", block, re.S)
        trials[rid] = sec.group(1) if sec else ""
    expected = _expected_links(trials)
    kinds = {frozenset(r[:4] if not r.startswith("JPRN") else "JPRN" for r in pair) for pair in expected["secondary_id"]}
    # real ICTRP <-> NCT pairs and EudraCT <-> EUCTR pairs are there to test
    assert {frozenset(("JPRN", "NCT0")), frozenset(("CTIS", "NCT0")), frozenset(("EUCT", "NCT0"))} <= kinds
    assert sum(frozenset(("EUCT", "NCT0")) == k for k in
               ({p[:4] for p in pair} for pair in expected["secondary_id"])) >= 4
    assert len(expected["trial_id"]) == 11  # 2021-000037-14 in DK, ES, HU, PL, PT (10) + 2017-005115-13 FR/ES
    got = _links(tmp_path, trials_dir / XML2024)
    assert got == expected


def test_links_on_the_full_export_sample(trials_dir, tmp_path):
    """The 127-row full-export sample: the Peruvian record PER-016-17 lists the EudraCT number
    of EUCTR2015-003026-14-PL, also in the sample."""
    raw_rows = A._csv_rows(trials_dir / FULL)
    header, rows = raw_rows
    i, j = header.index("TrialID"), header.index("SecondaryIDs")
    expected = _expected_links({row[i]: row[j] for row in rows})
    assert expected["secondary_id"] == {frozenset(("PER-016-17", "EUCTR2015-003026-14-PL"))}
    assert _links(tmp_path, trials_dir / FULL) == expected
