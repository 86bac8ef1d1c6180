"""Store, screening session, terminal screener, PRISMA flow and export, on the gambling-harms set."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from rich.console import Console

from neuromodmap.evidence.sheet import CITATION_COLUMNS, COLUMNS
from neuromodmap.literature import (
    ScreeningSession,
    deduplicate,
    export_extraction_sheet,
    load_profile,
    load_records,
    open_store,
    prisma_flow,
    read_records,
    record_decision,
    save_dedup,
    save_import,
)
from neuromodmap.literature._terminal import run_screener
from neuromodmap.literature.prisma import load_manual_counts
from neuromodmap.literature.screening import latest_decisions


@pytest.fixture()
def store(tmp_path: Path, gambling_files):
    con = open_store(tmp_path / "review.duckdb")
    for path in gambling_files:
        save_import(con, read_records(path))
    save_dedup(con, deduplicate(load_records(con)))
    yield con
    con.close()


def test_store_round_trip_and_reimport(tmp_path: Path, gambling_files) -> None:
    con = open_store(tmp_path / "a.duckdb")
    result = read_records(gambling_files[0])
    save_import(con, result)
    save_import(con, read_records(gambling_files[0]))  # re-import replaces, never duplicates
    loaded = load_records(con)
    assert [r.model_dump() for r in loaded] == [r.model_dump() for r in result.records]
    imports = con.execute("SELECT source_database, n_records, format FROM literature_imports").fetchall()
    assert imports == [("Criminal Justice Abstracts", 41, "ris")]


def test_store_written_before_months_is_upgraded(tmp_path: Path, gambling_files) -> None:
    import duckdb

    path = tmp_path / "old.duckdb"
    con = open_store(path)
    save_import(con, read_records(gambling_files[0]))
    con.execute("ALTER TABLE literature_records DROP COLUMN month")  # the layout before months
    con.close()
    con = duckdb.connect(str(path))
    assert "month" not in {c[0] for c in con.execute("DESCRIBE literature_records").fetchall()}
    con.close()
    con = open_store(path)
    old = load_records(con)
    assert len(old) == 41 and all(r.month is None for r in old)  # unknown, not guessed
    save_import(con, read_records(gambling_files[0]))  # re-import fills the months in
    assert sum(r.month is not None for r in load_records(con)) == 41
    con.close()


def test_session_criteria_ranking_and_resume(store) -> None:
    profile = load_profile("depression")
    session = ScreeningSession(store, profile)
    criteria = latest_decisions(store, "criteria")
    assert len(criteria) == len(session.criteria.excluded) > 0
    assert all(criteria["reason"] != "")
    first = session.next_record()
    # before any decision, records that use the review-question terms come first
    assert session.topic.search(first.title + " " + first.abstract)
    with_terms = sum(bool(session.topic.search(r.title + " " + r.abstract)) for r in session.records)
    head = [session.records[i] for i in session.ranking()[:with_terms]]
    assert sum(bool(session.topic.search(r.title + " " + r.abstract)) for r in head) >= 0.8 * with_terms
    session.decide(first.record_id, True)
    second = session.next_record()
    session.decide(second.record_id, False, reason="not about neuromodulation")
    third = session.next_record()
    assert third.record_id not in (first.record_id, second.record_id)
    # a new session on the same database resumes where the last one stopped
    resumed = ScreeningSession(store, profile)
    progress = resumed.progress()
    assert (progress.n_screened, progress.n_included, progress.irrelevant_in_a_row) == (2, 1, 1)
    assert resumed.next_record().record_id == third.record_id
    assert resumed.undo() == second.record_id
    assert resumed.progress().n_screened == 1
    with pytest.raises(KeyError):
        resumed.decide("lit-000000000000", True)


def test_terminal_screener_saves_each_decision_and_stops(store) -> None:
    session = ScreeningSession(store, load_profile("pain"), stop_after_irrelevant=4)
    answers = iter(["i", "maybe", "e", "e:wrong population", "u", "e", "e", "e"])
    given = []

    def read(prompt: str) -> str:
        # every earlier answer is already in the database when the next is asked
        saved = len(latest_decisions(store, "title_abstract"))
        assert saved == sum(1 for a in given if a[0] in "ie") - sum(1 for a in given if a == "u")
        answer = next(answers)
        given.append(answer)
        return answer

    console = Console(record=True, width=100)
    reason = run_screener(session, console=console, read=read)
    assert reason == "4 irrelevant records in a row"
    text = console.export_text()
    assert "Unknown answer 'maybe'" in text and "Stopping rule met" in text
    decided = latest_decisions(store, "title_abstract")
    assert decided["decision"].tolist() == ["include", "exclude", "exclude", "exclude", "exclude"]
    assert "wrong population" not in decided["reason"].tolist()  # that decision was undone


def test_target_share_stop(store) -> None:
    session = ScreeningSession(store, load_profile("default"), target_share=0.01, stop_after_irrelevant=1000)
    answers = iter(["i"] * 10)
    reason = run_screener(session, console=Console(file=open("/dev/null", "w")), read=lambda p: next(answers))
    assert "target 1%" in reason
    assert session.progress().n_screened == -(-len(session.records) // 100)


def test_prisma_counts_from_pipeline(store, tmp_path: Path) -> None:
    session = ScreeningSession(store, load_profile("default"))
    included = []
    for k in range(6):
        record = session.next_record()
        session.decide(record.record_id, k % 2 == 0)
        if k % 2 == 0:
            included.append(record.record_id)
    record_decision(store, included[0], "full_text", "include")
    record_decision(store, included[1], "full_text", "exclude", reason="no outcome data")
    record_decision(store, included[2], "full_text", "not_retrieved")
    flow = prisma_flow(store)
    # per-database counts are the files' record counts
    assert flow.identified_by_database == {"Scopus": 255, "PubMed": 176, "PsycINFO": 124, "Lens.org": 49,
                                           "Criminal Justice Abstracts": 41}
    n_unique = session.criteria.table.shape[0]
    assert flow.duplicates_removed == 645 - n_unique
    assert flow.automation_excluded == len(session.criteria.excluded)
    # six records screened (3 included, 3 excluded); the others await screening, none excluded unscreened
    assert flow.records_entering_screening == len(session.records)
    assert (flow.records_screened, flow.records_excluded, flow.records_not_screened) == (6, 3, 0)
    assert flow.records_awaiting_screening == len(session.records) - 6 and flow.stopping_rule is None
    assert (flow.reports_sought, flow.reports_not_retrieved, flow.reports_assessed) == (3, 1, 2)
    assert flow.reports_excluded == {"no outcome data": 1} and flow.studies_included == 1
    paths = flow.write(tmp_path / "prisma")
    svg, png, table = paths
    assert "<svg" in svg.read_text()[:1000] and "Records screened" in svg.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {r["count"]: r["n"] for r in csv.DictReader(table.open())}
    assert rows["records identified: total"] == "645" and rows["studies included in review"] == "1"
    assert rows["records awaiting screening"] == str(len(session.records) - 6)
    assert "stopping rule" not in svg.read_text()
    manual = tmp_path / "manual.yaml"
    manual.write_text("reports_not_retrieved: 0\nreports_excluded: {wrong comparator: 1}\nstudies_included: 2\n")
    flow2 = prisma_flow(store, load_manual_counts(manual))
    assert (flow2.reports_assessed, flow2.studies_included, flow2.reports_excluded) == (3, 2, {"wrong comparator": 1})
    assert "645 records" in flow2.methods_sentence()
    manual.write_text("reports_lost: 3\n")
    with pytest.raises(ValueError, match="unknown keys reports_lost"):
        load_manual_counts(manual)


def test_export_to_extraction_sheet(store, tmp_path: Path) -> None:
    session = ScreeningSession(store, load_profile("default"))
    chosen = []
    for _ in range(3):
        record = session.next_record()
        session.decide(record.record_id, True)
        chosen.append(record)
    paths, n = export_extraction_sheet(store, tmp_path / "sheet.csv")
    path = paths[0]
    assert n == 3 and paths[1].name == "sheet.dictionary.csv"
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == list(COLUMNS)
    for row, record in zip(rows, chosen, strict=True):
        assert row["doi"] == (record.doi or "") and row["title"] == record.title
        assert row["year"] == str(record.year)
        assert record.record_id in row["notes"] and "found in" in row["notes"]
        assert all(row[c] for c in CITATION_COLUMNS if c not in ("pmid", "doi"))
    from neuromodmap.evidence._io import read_sheet

    sheet_rows, problems = read_sheet(path)  # the evidence stage reads the sheet back
    assert len(sheet_rows) == 3
    xlsx_paths, _ = export_extraction_sheet(store, tmp_path / "sheet.xlsx")
    assert xlsx_paths[0].read_bytes()[:2] == b"PK"
    assert len(read_sheet(xlsx_paths[0])[0]) == 3


def test_prisma_fresh_import_awaits_screening(store, tmp_path: Path) -> None:
    # imported and de-duplicated, nothing screened: every unique record awaits screening, none is excluded
    n_unique = int(store.execute("SELECT count(DISTINCT cluster_id) FROM literature_dedup_clusters").fetchone()[0])
    flow = prisma_flow(store)
    assert (flow.records_entering_screening, flow.records_awaiting_screening) == (n_unique, n_unique)
    assert (flow.records_screened, flow.records_excluded, flow.records_not_screened) == (0, 0, 0)
    svg = flow.plot(tmp_path / "prisma.svg").read_text()
    assert f"Records awaiting screening (n = {n_unique})" in svg
    assert "Records excluded (n = 0)" in svg and "stopping rule" not in svg
    table = flow.to_frame()
    assert set(table["source"].dropna()) >= {"literature_imports", "literature_dedup_clusters"}
    assert "literature_stops" not in set(table["source"])
    # the rows add up: identified - removed = entering screening = screened + awaiting
    n = dict(zip(table["count"], table["n"], strict=True))
    assert (n["records identified: databases"] - n["duplicate records removed"]
            - n["records marked as ineligible by automation tools"] - n["records removed for other reasons"]
            == n["records entering screening (databases)"]
            == n["records screened"] + n["records awaiting screening"])


def test_prisma_stopping_rule_only_when_applied(store, tmp_path: Path) -> None:
    profile_path = tmp_path / "stop.yaml"
    profile_path.write_text("extends: pain\nstopping:\n  irrelevant_in_a_row: 3\n  recall_target: 0.95\n")
    session = ScreeningSession(store, load_profile(profile_path))
    answers = iter(["i", "e", "e", "e"])
    reason = run_screener(session, console=Console(file=open("/dev/null", "w")), read=lambda p: next(answers))
    assert reason == "3 irrelevant records in a row"
    flow = prisma_flow(store)
    eligible = len(session.records)
    assert flow.stopping_rule["rule"] == "irrelevant_in_a_row" and flow.stopping_rule["recall_target"] == 0.95
    assert (flow.records_not_screened, flow.records_awaiting_screening) == (eligible - 4, 0)
    assert (flow.records_screened, flow.records_excluded) == (eligible, eligible - 4 + 3)
    svg = flow.plot(tmp_path / "stopped.svg").read_text()
    assert "3 irrelevant records in a row" in svg and "recall target 95%" in svg
    rows = {r["count"]: (r["n"], r["source"]) for _, r in flow.to_frame().astype(str).iterrows()}
    assert rows["  of which not screened (stopping rule: 3 irrelevant records in a row; recall target 95%)"] == (
        str(eligible - 4), "literature_stops")
    # going on screening past the rule voids it: the rest await screening again
    session = ScreeningSession(store, load_profile(profile_path))
    session.decide(session.next_record().record_id, True)
    flow = prisma_flow(store)
    assert flow.stopping_rule is None and flow.records_not_screened == 0
    assert (flow.records_screened, flow.records_awaiting_screening) == (5, eligible - 5)
    # an undo after a new stop voids that stop as well
    session.decide(session.next_record().record_id, False)
    session.decide(session.next_record().record_id, False)
    session.decide(session.next_record().record_id, False)
    assert session.record_stop() is not None and prisma_flow(store).stopping_rule is not None
    session.undo()
    assert prisma_flow(store).stopping_rule is None


def test_profile_extends_a_profile_that_extends_default(tmp_path: Path) -> None:
    # pain.yaml extends default; a user profile extending pain keeps default's rules
    path = tmp_path / "mine.yaml"
    path.write_text("extends: pain\nstopping:\n  irrelevant_in_a_row: 3\n")
    mine, pain = load_profile(path), load_profile("pain")
    assert mine.question == "pain" and mine.exclude == pain.exclude and mine.years == pain.years
    assert set(mine.exclude) == {"conference_abstract", "case_report", "not_peer_reviewed"}
    assert mine.stopping.irrelevant_in_a_row == 3
