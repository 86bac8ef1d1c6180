"""Free-text search (``q``) through the app's word index gives the same trials as a plain
substring scan of the registry text, and an import makes the app rebuild it."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import duckdb
import pytest

N_TEXT_RECORDS = 15000  # the records tests/webapp/conftest.py imports (trials_db)

QUERIES = ["neurostar adolescents", "pain", "tDCS", "deep brain", "NCT0258", "hd-tdcs", "stimulat depress",
           "(tms)", "50%", "e", "zzzqxj", "Transcranial magnetic stimulation", "back_pain"]


def _ids(client, query: str) -> tuple[list[str], set[str]]:
    out, offset, how = [], 0, set()
    while True:
        page = client.get("/api/trials", params={"q": query, "neuromod": "any", "limit": 500, "offset": offset}).json()
        out += [it["registry_id"] for it in page["items"]]
        how.add(page.get("text_search"))
        offset += 500
        if offset >= page["total"]:
            return out, how


def _python_scan(db: Path, query: str) -> list[str]:
    """Every word, lower-cased, a substring of one of the searched fields (Python's ``in``)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT registry_id, title, official_title, brief_summary, detailed_description,"
                           " conditions FROM trials").fetchall()
    finally:
        con.close()
    words = [w.lower() for w in query.split()]
    out = []
    for rid, *texts, conditions in rows:
        fields = [t.lower() for t in [rid, *texts] if t] + (["; ".join(c for c in conditions if c).lower()]
                                                          if conditions else [])
        if all(any(w in f for f in fields) for w in words):
            out.append(rid)
    return sorted(out)


def test_the_index_finds_what_a_substring_scan_finds(trials_db: Path, client_for):
    indexed, scanned = client_for(trials_db, text_index="sync"), client_for(trials_db, text_index="off")
    found = 0
    for q in QUERIES:
        expect = _python_scan(trials_db, q)
        got, how = _ids(indexed, q)
        assert how == {"index"}, q
        assert got == expect, q
        plain, how = _ids(scanned, q)
        assert how == {"scan"} and plain == expect, q
        found += bool(expect)
    assert found >= 10  # the queries do find real trials
    assert _ids(indexed, "neurostar adolescents")[0] == ["NCT02586688"]
    # with label filters too, and in the survey counts
    q = {"q": "depress", "modality": "tms"}
    a = indexed.get("/api/trials", params={**q, "limit": 500}).json()
    b = scanned.get("/api/trials", params={**q, "limit": 500}).json()
    assert a["total"] == b["total"] > 0 and a["items"] == b["items"]
    assert indexed.get("/api/survey", params=q).json()["figures"] == scanned.get("/api/survey", params=q).json()["figures"]


def test_an_import_makes_the_app_rebuild_the_index(trials_db_copy: Path, client_for, trials_dir: Path, tmp_path):
    from neuromodmap.trials.store import TrialStore

    client = client_for(trials_db_copy, text_index="sync")
    assert _ids(client, "pain")[1] == {"index"}
    more = tmp_path / "next50.jsonl"
    with gzip.open(trials_dir / "ctgov_text_2018.jsonl.gz", "rt", encoding="utf-8") as src, \
            open(more, "w", encoding="utf-8") as dst:
        dst.writelines(itertools.islice(src, N_TEXT_RECORDS, N_TEXT_RECORDS + 50))
    con = duckdb.connect(str(trials_db_copy), read_only=True)
    before = {r[0] for r in con.execute("SELECT registry_id FROM trials").fetchall()}
    con.close()
    client.app.state.stores.close()  # let go of the file, as the app does when an import signals
    with TrialStore(trials_db_copy) as store:
        store.import_files([more], problems=[])
    con = duckdb.connect(str(trials_db_copy), read_only=True)
    new = sorted({r[0] for r in con.execute("SELECT registry_id FROM trials").fetchall()} - before)
    con.close()
    assert len(new) >= 40
    got, how = _ids(client, new[0])
    assert how == {"index"} and got == [new[0]] == _python_scan(trials_db_copy, new[0])
    assert _ids(client, "pain")[0] == _python_scan(trials_db_copy, "pain")


@pytest.mark.parametrize("mode", ["background"])
def test_background_mode_scans_until_the_index_is_ready(trials_db: Path, client_for, mode):
    import time

    client = client_for(trials_db, text_index=mode)
    first, how = _ids(client, "neurostar")
    assert how == {"scan"} and first == _python_scan(trials_db, "neurostar")
    index = client.app.state.text_index
    deadline = time.monotonic() + 120
    while not index.ready and time.monotonic() < deadline:
        time.sleep(0.2)
    assert index.ready, index.last_error
    assert _ids(client, "neurostar") == (first, {"index"})
