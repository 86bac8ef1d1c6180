"""Security of the web app: the access token, CSRF, the Host check, and hostile registry text."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

HOSTILE_ID = "NCT99000001"
HOSTILE_TITLE = ('Transcranial Magnetic Stimulation <script>window.__pwned = 1</script> for Depression '
                 '"><img src=x onerror="window.__pwned = 2">')
HOSTILE_SUMMARY = ("rTMS in major depressive disorder <svg onload=\"window.__pwned=3\"></svg> "
                   "and {{ 7*7 }} {% raw %} & <b>bold</b> ' \" </textarea></mark>")


def hostile_record(trials_dir: Path) -> dict:
    """A real record of the 2018 corpus (its first one with 'Transcranial Magnetic' in the title),
    renamed and with hostile markup put into its title and summary."""
    with gzip.open(trials_dir / "ctgov_text_2018.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            ident = rec["protocolSection"]["identificationModule"]
            if "Transcranial Magnetic" in ident.get("briefTitle", ""):
                break
    ident["nctId"] = HOSTILE_ID
    ident["briefTitle"] = HOSTILE_TITLE
    desc = rec["protocolSection"].setdefault("descriptionModule", {})
    desc["briefSummary"] = HOSTILE_SUMMARY + " " + desc.get("briefSummary", "")
    return rec


@pytest.fixture()
def hostile_db(trials_db_copy: Path, trials_dir: Path, tmp_path: Path) -> Path:
    from neuromodmap.trials.io import expand_inputs
    from neuromodmap.trials.pipeline import classify_to_csv
    from neuromodmap.trials.store import TrialStore

    src = tmp_path / "hostile.jsonl"
    src.write_text(json.dumps(hostile_record(trials_dir)) + "\n", encoding="utf-8")
    with TrialStore(trials_db_copy) as store:
        store.import_files(expand_inputs([src]), problems=[])
    classify_to_csv([], tmp_path / "labels.csv", db=trials_db_copy, problems=[])
    return trials_db_copy


def _overrides(db: Path) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        return con.execute("SELECT count(*) FROM trial_label_overrides").fetchone()[0] \
            if "trial_label_overrides" in tables else 0
    finally:
        con.close()


CORRECTION = {"field": "indication", "value": "pain", "reviewer": "mallory"}


def test_token_required_cookie_after_first_use_and_bearer(trials_db_copy: Path, client_for):
    client = client_for(trials_db_copy, token="s3cret-token")
    r = client.get("/trials")
    assert r.status_code == 401 and "token" in r.text
    assert client.get("/api/trials").status_code == 401
    assert client.get("/static/htmx.min.js").status_code == 401  # nothing is served without it
    assert client.get("/trials?token=wrong").status_code == 403
    assert client.get("/api/trials", headers={"Authorization": "Bearer wrong"}).status_code == 403

    r = client.get("/trials?token=s3cret-token&modality=tms", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/trials?modality=tms"  # token leaves the URL
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("nm_token="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/trials?modality=tms").status_code == 200  # the cookie carries it now

    other = client_for(trials_db_copy, token="s3cret-token")
    r = other.get("/api/trials?modality=tms", headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 200 and r.json()["total"] >= 1


def test_state_changes_need_the_csrf_token_unless_bearer(trials_db_copy: Path, client_for, csrf_headers):
    client = client_for(trials_db_copy, token="tok")
    client.get("/trials?token=tok")  # cookie session, as a browser has
    url = "/api/trials/NCT02586688/labels"
    assert client.post(url, json=CORRECTION).status_code == 403
    assert client.post(url, json=CORRECTION, headers={"X-CSRF-Token": "x" * 43}).status_code == 403
    r = client.post(url, data={**CORRECTION, "csrf_token": "y" * 43})
    assert r.status_code == 403
    assert _overrides(trials_db_copy) == 0
    good = csrf_headers(client)
    # a page on another site cannot pass the Origin check even with a token it somehow learnt
    assert client.post(url, json=CORRECTION, headers={**good, "Origin": "http://evil.example"}).status_code == 403
    assert _overrides(trials_db_copy) == 0
    assert client.post(url, json=CORRECTION, headers={**good, "Origin": "http://127.0.0.1"}).status_code == 201
    # the form route takes the token as a form field, urlencoded or multipart
    r = client.post("/trials/NCT02586688/labels", follow_redirects=False,
                    data={**CORRECTION, "value": "depression", "csrf_token": good["X-CSRF-Token"]})
    assert r.status_code == 303
    r = client.post("/trials/NCT02586688/labels", follow_redirects=False,
                    files={"x": ("a.txt", b"ignored")},
                    data={**CORRECTION, "value": "both", "csrf_token": good["X-CSRF-Token"]})
    assert r.status_code == 303
    assert _overrides(trials_db_copy) == 3
    # an API client with the bearer token is not exposed to CSRF and needs none
    api = client_for(trials_db_copy, token="tok")
    r = api.post(url, json={**CORRECTION, "value": "other"}, headers={"Authorization": "Bearer tok"})
    assert r.status_code == 201
    assert _overrides(trials_db_copy) == 4


def test_without_a_token_only_loopback_host_names_are_answered(trials_db: Path, client_for):
    client = client_for(trials_db)
    assert client.get("/api/trials?limit=1").status_code == 200
    for host in ("evil.example", "127.0.0.1.nip.io", "attacker.localhost.com"):
        r = client.get("/api/trials?limit=1", headers={"Host": host})
        assert r.status_code == 400 and "Host" in r.json()["detail"]
    assert client.get("/api/trials?limit=1", headers={"Host": "localhost:8765"}).status_code == 200


def test_hostile_registry_text_is_escaped_everywhere(hostile_db: Path, client_for, csrf_headers):
    client = client_for(hostile_db)
    d = client.get(f"/api/trials/{HOSTILE_ID}").json()
    assert d["record"]["title"] == HOSTILE_TITLE  # stored as the registry gave it
    assert "tms" in d["labels"]["modalities"]
    pages = [client.get(f"/trials/{HOSTILE_ID}").text, client.get("/trials?q=pwned").text]
    client.post(f"/api/trials/{HOSTILE_ID}/labels", headers=csrf_headers(client),
                json={"field": "indication", "value": "pain", "reviewer": '<script>alert("r")</script>',
                      "note": '<img src=x onerror=alert(1)>'})
    pages.append(client.get(f"/trials/{HOSTILE_ID}").text)
    for html in pages:
        assert "<script>window.__pwned" not in html and "<img src=x" not in html and "<svg onload" not in html
        assert "<script>alert" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in pages[0]
    assert "{{ 7*7 }}" in pages[0] and "49" not in pages[0].split("{{ 7*7 }}")[0][-20:]
    assert HOSTILE_ID in pages[1]
    assert "&lt;script&gt;alert(&#34;r&#34;)&lt;/script&gt;" in pages[2]
