"""The screening API: CSRF, bad input answered 4xx without changing the store, escaping, live PRISMA."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest

from neuromodmap.literature import open_store, read_records, save_import


def csrf_headers(client) -> dict[str, str]:
    if "nm_csrf" not in client.cookies:
        client.get("/api/csrf")
    return {"X-CSRF-Token": client.cookies["nm_csrf"]}


@pytest.fixture(scope="module")
def review(tmp_path_factory, data_root: Path) -> Path:
    """The real ADHD records plus one record whose title and abstract carry markup."""
    folder = tmp_path_factory.mktemp("screening-api")
    path = folder / "review.duckdb"
    hostile = folder / "hostile.csv"
    with open(hostile, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["title", "abstract", "year"])
        writer.writerow(["<script>alert(1)</script> deep brain stimulation & depression",
                         "<img src=x onerror=alert(2)> transcranial magnetic stimulation", "2015"])
    con = open_store(path)
    save_import(con, read_records(data_root / "literature" / "labelled" / "Cohen_2006_ADHD.csv.gz"))
    save_import(con, read_records(hostile))
    con.close()
    return path


@pytest.fixture()
def client(review, tmp_path, client_for):
    copy = tmp_path / "review.duckdb"
    shutil.copyfile(review, copy)
    c = client_for(tmp_path / "trials.duckdb", copy)
    c.review_path = copy
    return c


def _votes(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*) FROM literature_screening_votes").fetchone()[0]


def test_vote_needs_csrf_and_bad_input_is_4xx_without_a_change(client) -> None:
    record = client.get("/api/screening/next", params={"reviewer": "Ana"}).json()["record"]
    body = {"record_id": record["record_id"], "reviewer": "Ana", "decision": "include"}
    assert client.post("/api/screening/decisions", json=body).status_code == 403
    headers = csrf_headers(client)
    bad = [
        ({**body, "decision": "yes"}, 422),
        ({**body, "reviewer": "<b>"}, 422),
        ({**body, "reviewer": ""}, 422),
        ({**body, "record_id": "lit-000000000000"}, 404),
        ({**body, "extra": 1}, 422),
        ({"reviewer": "Ana"}, 422),
    ]
    for payload, status in bad:
        response = client.post("/api/screening/decisions", json=payload, headers=headers)
        assert response.status_code == status, payload
        assert response.json()["detail"]
    response = client.post("/api/screening/decisions", content=b"{not json", headers={**headers, "content-type": "application/json"})
    assert response.status_code == 400 and "malformed JSON" in response.json()["detail"]
    assert client.post("/api/screening/undo", json={"reviewer": "Ana"}, headers=headers).status_code == 409
    assert client.post("/api/screening/conflicts/lit-000000000000/resolve",
                       json={"decision": "include", "reviewer": "Ana"}, headers=headers).status_code == 404
    assert client.get("/api/screening/next", params={"reviewer": "x" * 41}).status_code == 422
    assert client.post("/api/screening/settings", json={"recall_target": 1.2}, headers=headers).status_code == 422
    assert _votes(client.review_path) == 0
    assert client.post("/api/screening/decisions", json=body, headers=headers).json()["state"] == "waiting"
    assert _votes(client.review_path) == 1


def test_record_text_is_escaped_and_terms_highlighted(client) -> None:
    with duckdb.connect(str(client.review_path), read_only=True) as con:
        (rid,) = con.execute("SELECT record_id FROM literature_records WHERE title LIKE '<script>%'").fetchone()
    headers = csrf_headers(client)
    for who, decision in (("Ana", "include"), ("Ben", "exclude")):
        assert client.post("/api/screening/decisions", json={"record_id": rid, "reviewer": who, "decision": decision},
                           headers=headers).json()["state"] in ("waiting", "conflict")
    page = client.get("/screening/conflicts").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page and "<img src=x" not in page
    assert '<mark class="nm-ev">deep brain stimulation</mark> &amp; <mark class="nm-ev">depression</mark>' in page
    assert '<mark class="nm-ev">transcranial magnetic stimulation</mark>' in page
    assert client.get(f"/api/screening/records/{rid}").json()["record"]["title"].startswith("<script>")


def test_prisma_counts_follow_the_team_decisions(client) -> None:
    headers = csrf_headers(client)

    def prisma() -> dict:
        rows = client.get("/api/screening/status").json()["prisma"]["rows"]
        return {r["count"]: r["n"] for r in rows}

    start = prisma()
    assert start["records screened"] == 0
    refused = client.post("/api/screening/stop", json={"reviewer": "Ana"}, headers=headers)
    assert refused.status_code == 409 and "not met" in refused.json()["detail"]
    rid = client.get("/api/screening/next", params={"reviewer": "Ana"}).json()["record"]["record_id"]
    for who in ("Ana", "Ben"):
        client.post("/api/screening/decisions", json={"record_id": rid, "reviewer": who, "decision": "exclude"},
                    headers=headers)
    after = prisma()
    assert after["records screened"] == 1 and after["records excluded"] == 1
    assert after["records awaiting screening"] == start["records awaiting screening"] - 1
    detail = client.get(f"/api/screening/records/{rid}").json()
    assert detail["decision"]["method"] == "dual_screening" and len(detail["votes"]) == 2
    status = client.get("/api/screening/status").json()
    assert status["stop"]["recall_target"] == 0.95 and status["stop"]["stop"] is False
    assert {r["reviewer"] for r in status["reviewers"]} == {"Ana", "Ben"}


def test_settings_change_the_recall_target_and_reviewers_needed(client) -> None:
    headers = csrf_headers(client)
    out = client.post("/api/screening/settings", json={"recall_target": 0.9, "required_reviewers": 3},
                      headers=headers).json()
    assert out == {"required_reviewers": "3", "recall_target": "0.9", "profile": ""}
    status = client.get("/api/screening/status").json()
    assert status["recall_target"] == 0.9 and status["required_reviewers"] == 3


def test_the_stop_is_recorded_for_prisma_only_when_the_rule_is_met(client, data_root: Path) -> None:
    import pandas as pd

    from neuromodmap.literature import team

    headers = csrf_headers(client)
    # Ana screens alone (one reviewer per record) as the published title/abstract labels say: the 84
    # relevant records first, then 400 irrelevant ones in a row (Cohen et al. 2006, ADHD); the votes
    # are cast before the app first opens the store
    labels = pd.read_csv(data_root / "literature" / "labelled" / "Cohen_2006_ADHD.csv.gz")
    relevant = set(labels.loc[labels["label_abstract_screening"] == 1, "title"].str.strip())
    con = open_store(client.review_path)
    team.init_team(con)
    team.set_setting(con, "required_reviewers", "1")
    records = con.execute("SELECT record_id, title FROM literature_records ORDER BY record_id").fetchall()
    yes = [rid for rid, title in records if title.strip() in relevant]
    no = [rid for rid, title in records if title.strip() not in relevant and not title.startswith("<script>")]
    assert len(yes) == 84
    for rid in yes:
        team.cast_vote(con, rid, "Ana", "include")
    for rid in no[:400]:
        team.cast_vote(con, rid, "Ana", "exclude")
    con.close()
    status = client.get("/api/screening/status").json()
    (ana,) = status["reviewers"]
    assert status["stop"]["stop"] is True and ana["p_value"] < 0.05 and ana["n_relevant_found"] == 84
    recorded = client.post("/api/screening/stop", json={"reviewer": "Ana"}, headers=headers).json()
    assert recorded["recorded"] and recorded["recall_target"] == 0.95
    rows = {r["count"]: r["n"] for r in recorded["prisma"]["rows"]}
    eligible, screened = status["n_eligible"], ana["n_screened"]
    assert rows["records awaiting screening"] == 0
    assert rows["records screened"] == eligible
    assert rows["records excluded"] == eligible - 84
    stopped = [k for k in rows if k.startswith("  of which not screened")]
    assert stopped and "recall target 95%" in stopped[0] and rows[stopped[0]] == eligible - screened
    # screening on voids the stop: the records left are awaiting screening again
    rid = client.get("/api/screening/next", params={"reviewer": "Ana"}).json()["record"]["record_id"]
    assert client.post("/api/screening/decisions", json={"record_id": rid, "reviewer": "Ana", "decision": "exclude"},
                       headers=headers).status_code == 200
    rows = {r["count"]: r["n"] for r in client.get("/api/screening/status").json()["prisma"]["rows"]}
    assert rows["records awaiting screening"] == eligible - screened - 1


def test_an_import_while_serving_is_picked_up_and_a_held_store_answers_503(review, tmp_path, client_for,
                                                                           data_root: Path) -> None:
    import subprocess
    import sys
    import time

    copy = tmp_path / "review.duckdb"
    shutil.copyfile(review, copy)
    client = client_for(tmp_path / "trials.duckdb", copy, busy_wait=0.5)
    before = client.get("/api/screening/next", params={"reviewer": "Ana"}).json()["progress"]["n_eligible"]
    # `literature import` in another process between two requests: the app holds no lock, and the next
    # request sees the new records (the screening session is rebuilt)
    export = sorted((data_root / "literature" / "exports" / "citesource_gambling_harms").glob("*.ris"))[0]
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run([sys.executable, "-m", "neuromodmap", "literature", "import", str(export), "--db", str(copy)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    after = client.get("/api/screening/next", params={"reviewer": "Ana"}).json()["progress"]["n_eligible"]
    assert after > before
    # another process holding the store for writing: 503 with Retry-After, never a 500
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(30)", str(copy)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = client.get("/api/screening/next", params={"reviewer": "Ana"})
        assert busy.status_code == 503 and busy.headers.get("retry-after") and "busy" in busy.json()["detail"]
        page = client.get("/screening", params={"reviewer": "Ana"})
        assert page.status_code == 503
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.2)
    assert client.get("/api/screening/next", params={"reviewer": "Ana"}).status_code == 200


def test_next_record_never_repeats_a_vote_while_the_refit_runs_and_then_catches_up(client, monkeypatch) -> None:
    import threading

    from neuromodmap.webapp import screening

    # hold every background refit until released, so the served ranking is stale for sure
    gate = threading.Event()
    fit = screening._fit

    def gated_fit(engine, rows):
        if threading.current_thread().name.startswith("screening-refit-"):
            assert gate.wait(60)
        return fit(engine, rows)

    monkeypatch.setattr(screening, "_fit", gated_fit)
    headers = csrf_headers(client)
    first = client.get("/api/screening/next", params={"reviewer": "Ana"}).json()
    assert first["ranking"] == {"ranking_votes": 0, "votes": 0, "current": True}
    shown, record = [], first["record"]
    for i in range(6):
        shown.append(record["record_id"])
        decision = "include" if i in (0, 3) else "exclude"  # both classes: the refit uses the model
        assert client.post("/api/screening/decisions", json={"record_id": record["record_id"], "reviewer": "Ana",
                                                            "decision": decision}, headers=headers).status_code == 200
        nxt = client.get("/api/screening/next", params={"reviewer": "Ana"}).json()
        # served from the ranking fit on no votes, with every voted record left out
        assert nxt["ranking"] == {"ranking_votes": 0, "votes": i + 1, "current": False}
        assert nxt["progress"]["n_screened"] == i + 1
        assert nxt["progress"]["n_left"] == nxt["progress"]["n_eligible"] - (i + 1)
        record = nxt["record"]
        assert record["record_id"] not in shown
    page = client.get("/screening", params={"reviewer": "Ana"}).text
    assert "ranked on 0 of 6 votes (updating)" in page
    gate.set()
    assert screening.wait_for_refits(60)
    caught_up = client.get("/api/screening/next", params={"reviewer": "Ana"}).json()
    assert caught_up["ranking"] == {"ranking_votes": 6, "votes": 6, "current": True}
    assert caught_up["record"]["record_id"] not in shown
    # the ranking served now is the model's on all six votes, the same as a refit in the request
    with duckdb.connect(str(client.review_path), read_only=True) as con:
        votes = con.execute("SELECT vote_id, record_id, decision FROM literature_screening_votes "
                            "WHERE reviewer = 'Ana' ORDER BY vote_id").df()
    engine = next(iter(e for k, e in screening._ENGINES.items() if k == str(client.review_path.resolve())))
    order = engine.session.rank_decided(votes, relevant=("include", "maybe"))
    assert caught_up["record"]["record_id"] == engine.session.records[order[0]].record_id
    assert set(shown).isdisjoint(engine.session.records[i].record_id for i in order)
    # undo: the withdrawn record comes back first, before and after the refit on the five votes left
    gate.clear()
    assert client.post("/api/screening/undo", json={"reviewer": "Ana"}, headers=headers).status_code == 200
    for current in (False, True):
        after_undo = client.get("/api/screening/next", params={"reviewer": "Ana"}).json()
        assert after_undo["ranking"] == {"ranking_votes": 5 if current else 6, "votes": 5, "current": current}
        assert after_undo["record"]["record_id"] == shown[-1]
        assert after_undo["progress"]["n_left"] == after_undo["progress"]["n_eligible"] - 5
        gate.set()
        assert screening.wait_for_refits(60)
