"""De-duplication on the CiteSource gambling-harms set (5 databases, 645 records).

The reference is a hand check: every pair in tests/literature/data/gambling_harms_dedup_verdicts.csv
was read (titles, authors, journal, volume/pages, DOIs) and judged duplicate or not. The sample
holds all 48 fuzzy merges, 40 random DOI/PMID merges, every unmerged pair with similar titles
(or the same first author), and each record without a DOI with its best-matching title.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from neuromodmap.literature import deduplicate, read_records
from neuromodmap.literature.dedup import first_author_surname, normalise_title
from neuromodmap.literature.records import Record

VERDICTS = Path(__file__).parent / "data" / "gambling_harms_dedup_verdicts.csv"


@pytest.fixture(scope="module")
def gambling(gambling_files):
    records = [r for f in gambling_files for r in read_records(f).records]
    return records, deduplicate(records)


def test_counts(gambling) -> None:
    records, result = gambling
    assert len(records) == 645
    # SOURCES.md: ~265 unique DOIs, 272 unique titles, ~271 after a crude DOI-or-title dedup
    assert 265 <= result.n_unique <= 280
    assert result.n_duplicates_removed == len(records) - result.n_unique
    by_db = result.counts_by_database()["identified"].to_dict()
    assert by_db == {"Scopus": 255, "PubMed": 176, "PsycINFO": 124, "Lens.org": 49, "Criminal Justice Abstracts": 41}


def test_merged_records_keep_every_database(gambling) -> None:
    _, result = gambling
    unique = result.unique_records()
    hing = unique[unique["title"].str.contains("help-seeking amongst indigenous", case=False)]
    assert len(hing) == 1  # EBSCO's "Y1 - 2007/08//2014 Sep" record merges on volume/pages
    assert set(hing.iloc[0]["source_databases"]) == {"Criminal Justice Abstracts", "Lens.org", "PsycINFO",
                                                     "PubMed", "Scopus"}
    assert sum(len(row) for row in unique["source_databases"]) >= len(unique)


def test_precision_recall_against_hand_check(gambling) -> None:
    records, result = gambling
    key = {(Path(r.source_file).name.replace("20221207_gambling-harms_", ""), r.source_position): r.record_id
           for r in records}
    predicted = result.duplicate_pairs()
    tp = fp = fn = tn = 0
    with VERDICTS.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 200
    for row in rows:
        a = key[(row["file_a"], int(row["position_a"]))]
        b = key[(row["file_b"], int(row["position_b"]))]
        said = frozenset((a, b)) in predicted
        truth = row["verdict"] == "duplicate"
        tp += said and truth
        fp += said and not truth
        fn += truth and not said
        tn += not said and not truth
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    assert precision == 1.0, (tp, fp)
    assert recall >= 0.98, (tp, fn)
    assert tn >= 90  # the preprint, the erratum and different articles by the same authors stay apart


def test_preprint_and_erratum_go_to_review_not_merge(gambling) -> None:
    records, result = gambling
    by_id = {r.record_id: r for r in records}
    reasons = " ".join(result.review["reason"])
    assert "10.31234/osf.io/fu4mj" in reasons  # PsyArXiv preprint vs BMC Public Health article
    assert "10.1136/bmj.m2832" in reasons  # BMJ letter vs its erratum
    for a, b in zip(result.review["record_id_a"], result.review["record_id_b"], strict=True):
        assert by_id[a].doi != by_id[b].doi or not by_id[a].doi


def test_baseline_zotero_round_trip(exports_dir) -> None:
    # SOURCES.md: the same 100 records exported twice (Lens RIS and Zotero RIS)
    a = read_records(exports_dir / "asreview_demo/baseline.ris").records
    b = read_records(exports_dir / "asreview_demo/baseline_zotero.ris").records
    result = deduplicate(a + b)
    assert result.n_unique == 100


def _rec(i: int, title: str, **kw) -> Record:
    return Record(record_id=f"r{i}", title=title, **kw)


def test_fuzzy_rules_on_small_cases() -> None:
    records = [
        _rec(1, "Transcranial magnetic stimulation for depression: a trial", authors=["Smith, A"], year=2020,
             journal="Brain Stimulation"),
        _rec(2, "Transcranial Magnetic Stimulation for Depression - A Trial.", authors=["Smith A"], year=2021,
             journal="Brain stimulation"),
        _rec(3, "Transcranial magnetic stimulation for depression: a trial", authors=["Jones, B"], year=2020),
        _rec(4, "Spinal cord stimulation for pain", authors=["Lee, C"], year=2012, doi="10.1/x"),
        _rec(5, "Spinal cord stimulation for pain", authors=["Lee, C"], year=2012, doi="10.1/y"),
    ]
    result = deduplicate(records)
    clusters = dict(zip(result.clusters["record_id"], result.clusters["cluster_id"], strict=True))
    assert clusters["r1"] == clusters["r2"]  # punctuation, case, one year apart
    assert clusters["r3"] != clusters["r1"]  # different first author: review, not merge
    assert clusters["r4"] != clusters["r5"]  # different DOIs: review, not merge
    review = {frozenset((a, b)) for a, b in zip(result.review["record_id_a"], result.review["record_id_b"],
                                                   strict=True)}
    assert frozenset(("r4", "r5")) in review
    assert any("r3" in pair for pair in review)


def test_normalisers() -> None:
    assert normalise_title("[Stimulation cérébrale profonde.]") == "stimulation cerebrale profonde"
    assert first_author_surname(["van de Schoot, Rens"]) == "vandeschoot"
    assert first_author_surname(["Casbon JA"]) == "casbon"
    assert first_author_surname(["Alan Turing"]) == "turing"
    assert first_author_surname([]) == ""
