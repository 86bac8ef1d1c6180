"""Literature records <-> registered trials, on real records from both sides that do match.

The shipped search exports and the trials corpus overlap in two real trials: the ovid
PsycINFO/Zotero exports quote NCT02265588 (HAPPY-IBD) and a Bannach-Brown 2019 abstract
quotes NCT01237119, both in the 2018 ClinicalTrials.gov corpus. The other way round, the
legacy XML records of the AllPublicXML subset cite, by PMID, records of Cohen's 2006
labelled sets (e.g. NCT00000388, the MTA ADHD study, lists PMIDs 10591283 and 9294378 as
results references). Expected values were read from those files by hand (grep).
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.literature import (
    deduplicate,
    load_records,
    open_store,
    read_records,
    save_dedup,
    save_import,
)
from neuromodmap.literature.trial_links import link_trials, load_trial_links, publications_by_trial
from neuromodmap.trials import TrialStore
from neuromodmap.trials.references import trial_references

# legacy XML records of the AllPublicXML subset that cite PMIDs found in Cohen's sets
SUBSET_TRIALS = ("NCT00000388", "NCT00005014", "NCT00007774", "NCT00001656", "NCT00001483", "NCT00009672",
                 "NCT00490997", "NCT00498225")


def flat(text: str) -> str:
    """Console output with rich's line wrapping undone."""
    return " ".join(text.split())


def corpus_lines(corpus: Path, wanted: set[str], out: Path) -> Path:
    """The corpus records of ``wanted`` NCT ids, as a JSON-lines file (real records, unchanged)."""
    keys = {f'"nctId": "{n}"'.encode() for n in wanted}
    with gzip.open(corpus, "rb") as fh, out.open("wb") as dst:
        for line in fh:
            if any(k in line for k in keys):
                dst.write(line)
    return out


def subset_members(trials_dir: Path, names: tuple[str, ...], out: Path) -> list[Path]:
    archive = next((trials_dir / "ctgov_legacy_xml_allpublicxml_subset_reesewang25").glob("*.tar.gz"))
    out.mkdir(exist_ok=True)
    paths = []
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if Path(member.name).stem in names and member.isfile():
                path = out / Path(member.name).name
                path.write_bytes(tar.extractfile(member).read())
                paths.append(path)
    assert len(paths) == len(names)
    return sorted(paths)


@pytest.fixture(scope="module")
def trials_db(tmp_path_factory, trials_dir: Path, corpus_path: Path) -> Path:
    tmp = tmp_path_factory.mktemp("trials")
    files = [corpus_lines(corpus_path, {"NCT02265588", "NCT01237119"}, tmp / "corpus_subset.jsonl")]
    files += subset_members(trials_dir, SUBSET_TRIALS, tmp / "xml")
    files += sorted((trials_dir / "ctgov_v2_json").glob("*.json"))
    db = tmp / "trials.duckdb"
    with TrialStore(db) as store:
        store.import_files(files, progress=False)
    return db


@pytest.fixture(scope="module")
def review_template(tmp_path_factory, exports_dir: Path, labelled_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("review") / "review.duckdb"
    con = open_store(path)
    files = [exports_dir / "asreview_demo" / "ovid_psycinfo.ris", exports_dir / "asreview_demo" / "ovid_zotero.ris",
             exports_dir / "pubmed_xml" / "pubmed-29768149.xml", labelled_dir / "Bannach-Brown_2019.csv.gz",
             labelled_dir / "Cohen_2006_ADHD.csv.gz", labelled_dir / "Cohen_2006_AtypicalAntipsychotics.csv.gz",
             labelled_dir / "Cohen_2006_Opiods.csv.gz"]
    for file in files:
        save_import(con, read_records(file))
    save_dedup(con, deduplicate(load_records(con)))
    con.close()
    return path


@pytest.fixture()
def review(tmp_path: Path, review_template: Path):
    path = tmp_path / "review.duckdb"
    shutil.copyfile(review_template, path)
    con = open_store(path)
    yield con
    con.close()


def test_registry_references_read_from_the_raw_records(trials_db: Path) -> None:
    with TrialStore(trials_db, read_only=True) as store:
        refs, with_fields = trial_references(store.con)
    mta = refs[refs["registry_id"] == "NCT00000388"]
    # NCT00000388.xml: 43 <results_reference> and 37 <reference> elements, each with a PMID or a citation
    assert set(mta["relation"]) == {"results", "background"}
    assert {"10591283", "10591284", "10637676", "10637677", "9294378"} <= set(mta.loc[mta["relation"] == "results", "pmid"])
    # API v2: NCT06171568 cites 8 PMIDs, all BACKGROUND
    v2 = refs[refs["registry_id"] == "NCT06171568"]
    assert sorted(v2["pmid"]) == sorted(["26269030", "29016402", "16983222", "27323708", "22460612", "30031892",
                                         "31073378", "24102622"]) and set(v2["relation"]) == {"background"}
    # the 2018 text corpus carries no reference fields: "no reference" there means "not available"
    assert "NCT02265588" not in with_fields and "NCT00000388" in with_fields and "NCT06171568" in with_fields


def test_link_trials_both_ways_on_real_records(review, trials_db: Path) -> None:
    with TrialStore(trials_db, read_only=True) as store:
        report = link_trials(review, store.con, trials_db=str(trials_db))
    links = report.links
    quoted = links[links["method"] == "record_quotes_registry_id"]
    assert set(quoted["registry_id"]) == {"NCT02265588", "NCT01237119"}
    # both ovid exports (PsycINFO and its Zotero copy) quote HAPPY-IBD in the abstract
    assert (quoted["registry_id"] == "NCT02265588").sum() == 2 and set(quoted["detail"]) == {"abstract"}
    cited = links[links["method"] == "registry_cites_pmid"]
    results = {(r.registry_id, r.quoted) for r in cited.itertuples() if r.detail == "results"}
    assert {("NCT00000388", p) for p in ("10591283", "10591284", "10637676", "10637677", "9294378")} <= results
    assert ("NCT00007774", "14645311") in results  # olanzapine vs haloperidol (CATIE-like VA study)
    background = {(r.registry_id, r.quoted) for r in cited.itertuples() if r.detail == "background"}
    assert ("NCT00009672", "10342407") in background  # "Are opioids effective in relieving neuropathic pain?"
    # counts: NCT02149199 (SYGMA 1), ACTRN12613000483752 are quoted but not in this trials store
    assert (report.n_ids, report.n_ids_in_store, report.n_ids_not_in_store) == (4, 2, 2)
    assert report.n_records_with_id == 4  # the two ovid copies are one record after de-duplication
    assert report.n_records_linked_by_id == 2
    stored = load_trial_links(review)
    assert len(stored) == len(links)
    ids = review.execute("SELECT registry_id, in_trials_store FROM literature_registry_ids "
                         "ORDER BY registry_id, field").fetchall()
    assert ("NCT02149199", False) in ids and ("NCT02265588", True) in ids
    counts = dict(report.to_frame().itertuples(index=False))
    assert counts["distinct registry ids quoted"] == 4 and counts["  not in the trials store"] == 2


def test_link_trials_is_idempotent_and_follows_reimports(review, trials_db: Path, exports_dir: Path) -> None:
    with TrialStore(trials_db, read_only=True) as store:
        first = link_trials(review, store.con).links
        again = link_trials(review, store.con).links
        assert first.equals(again)
        assert len(load_trial_links(review)) == len(first)
        save_import(review, read_records(exports_dir / "asreview_demo" / "ovid_zotero.ris"))  # re-import: same ids
        third = link_trials(review, store.con).links
    assert third.sort_values(list(third.columns)).reset_index(drop=True).equals(
        first.sort_values(list(first.columns)).reset_index(drop=True))
    runs = review.execute("SELECT count(*) FROM literature_runs WHERE step = 'link_trials'").fetchone()[0]
    assert runs == 3


def test_publications_by_trial(review, trials_db: Path) -> None:
    with TrialStore(trials_db, read_only=True) as store:
        link_trials(review, store.con)
        pubs = publications_by_trial(store.con, review).set_index("registry_id")
    # HAPPY-IBD: no registry reference fields in the 2018 corpus; one record (two copies, one cluster
    # each export) quotes it
    assert not pubs.loc["NCT02265588", "registry_fields"] and pubs.loc["NCT02265588", "n_literature_records"] == 2
    assert pubs.loc["NCT00000388", "n_registry_publications"] >= 5
    # a trial that cites only background publications has none of its own
    assert pubs.loc["NCT06171568", "n_registry_publications"] == 0


def test_link_trials_cli_with_a_separate_trials_store(tmp_path: Path, trials_db: Path, exports_dir: Path) -> None:
    db = str(tmp_path / "review.duckdb")
    runner = CliRunner()
    result = runner.invoke(app, ["literature", "import", str(exports_dir / "asreview_demo" / "ovid_psycinfo.ris"),
                                 "--db", db])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["literature", "link-trials", "--db", db, "--trials-db", str(trials_db),
                                 "-o", str(tmp_path / "links")])
    assert result.exit_code == 0, result.output
    assert "1 of 6 records quote a trial registry id" in flat(result.output)
    rows = list(csv.DictReader((tmp_path / "links" / "trial_links.csv").open()))
    assert [(r["registry_id"], r["method"]) for r in rows] == [("NCT02265588", "record_quotes_registry_id")]
    counts = {r["count"]: r["n"] for r in csv.DictReader((tmp_path / "links" / "trial_link_counts.csv").open())}
    assert counts["  found in the trials store"] == "1"
    result = runner.invoke(app, ["literature", "link-trials", "--db", db, "--trials-db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2 and "none.duckdb: no such trials store" in flat(result.output)
    # without a trials store the ids are still found and reported, none as found
    result = runner.invoke(app, ["literature", "link-trials", "--db", db])
    assert result.exit_code == 0 and "0 in the trials store, 1 not" in flat(result.output)


def test_store_written_before_secondary_ids_is_upgraded(tmp_path: Path, exports_dir: Path) -> None:
    path = tmp_path / "old.duckdb"
    xml = exports_dir / "pubmed_xml" / "pubmed-29768149.xml"
    con = open_store(path)
    save_import(con, read_records(xml))
    con.execute("ALTER TABLE literature_records DROP COLUMN secondary_ids")  # the layout before this column
    con.execute("ALTER TABLE literature_records DROP COLUMN month")  # and before months
    con.close()
    con = open_store(path)
    assert load_records(con)[0].secondary_ids == []  # unknown until the file is imported again
    assert link_trials(con).n_ids == 1  # the abstract still names NCT02149199
    save_import(con, read_records(xml))
    assert load_records(con)[0].secondary_ids == ["DataBank: ClinicalTrials.gov/NCT02149199"]
    con.close()


def test_hostile_notes_and_references(tmp_path: Path, trials_dir: Path) -> None:
    # a RIS record whose notes hold a spaced id, an id inside a word and 500 kB of noise
    noise = "0123456789 NCT-x ISRCTN distinct01234567 " * 12_000
    ris = tmp_path / "notes.ris"
    ris.write_text(f"TY  - JOUR\nTI  - A trial report\nN1  - Trial registration: NCT 0123 4567; {noise}\n"
                   "AN  - 12345678\nM1  - EUCTR2015-001894-41-DE\nER  - \n", encoding="utf-8")
    record = read_records(ris).records[0]
    assert record.secondary_ids == ["N1: NCT 0123 4567", "M1: EUCTR2015-001894-41"]
    # a real v2 record with its references mangled: wrong types, a PMID with letters, a DOI only
    # in the citation, a 100,000-character citation; nothing crashes and nothing is invented
    study = json.loads((trials_dir / "ctgov_v2_json" / "NCT06171568.json").read_text(encoding="utf-8"))
    study["protocolSection"]["referencesModule"]["references"] = [
        {"pmid": "12ab", "type": "RESULT", "citation": "Smith J. A trial. doi: 10.1000/XYZ.123."},
        "garbage", None, 42,
        {"pmid": 123456, "type": None},
        {"type": "RESULT", "citation": "x" * 100_000},
    ]
    path = tmp_path / "mangled.json"
    path.write_text(json.dumps(study), encoding="utf-8")
    with TrialStore(tmp_path / "t.duckdb") as store:
        store.import_files([path], progress=False)
        refs, with_fields = trial_references(store.con)
    assert with_fields == {"NCT06171568"}
    rows = {tuple(None if pd.isna(v) else v for v in (r.pmid, r.doi, r.relation)) for r in refs.itertuples()}
    assert rows == {(None, "10.1000/xyz.123", "results"), ("123456", None, "unspecified"), (None, None, "results")}


def test_a_quoted_secondary_id_links_the_ctgov_record(tmp_path: Path, trials_dir: Path) -> None:
    # NCT00002576 (AllPublicXML subset) lists ISRCTN39268693 as a secondary id. No shipped export
    # quotes it, so the literature side is a constructed RIS record (the trial side is real): a
    # paper citing the ISRCTN number finds the ClinicalTrials.gov record.
    files = subset_members(trials_dir, ("NCT00002576",), tmp_path / "xml")
    with TrialStore(tmp_path / "trials.duckdb") as store:
        store.import_files(files, progress=False)
        assert "ISRCTN39268693" in store.get_trial("NCT00002576").secondary_ids
        ris = tmp_path / "paper.ris"
        ris.write_text("TY  - JOUR\nTI  - Report of the trial\nAB  - Registered as ISRCTN 39268693.\nER  - \n",
                       encoding="utf-8")
        con = open_store(tmp_path / "review.duckdb")
        save_import(con, read_records(ris))
        report = link_trials(con, store.con)
    assert [(r.registry_id, r.quoted, r.method) for r in report.links.itertuples()] == [
        ("NCT00002576", "ISRCTN39268693", "record_quotes_secondary_id")]
    assert report.by_registry.to_dict("records") == [
        {"registry": "isrctn", "name": "ISRCTN", "ids": 1, "in_trials_store": 1, "not_in_trials_store": 0}]
    con.close()
