"""Security of the web app: the access token, CSRF, the Host check, and hostile registry text."""

from __future__ import annotations

from pathlib import Path

from neuromodmap.evidence import datasets


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
    # a file part ending in CRLF (the shipped Gaynes 2011 sheet, as Windows writes CSV) is followed by a
    # blank line and the closing boundary, which must not be read as the token (a greedy header match did)
    sheet = datasets.dataset_path("gaynes2011_fig13").read_bytes()
    assert sheet.endswith(b"\r\n")
    r = client.post("/trials/NCT02586688/labels", follow_redirects=False,
                    files={"sheet": ("gaynes.csv", sheet)},
                    data={**CORRECTION, "value": "pain", "csrf_token": good["X-CSRF-Token"]})
    assert r.status_code == 303
    assert _overrides(trials_db_copy) == 4
    # an API client with the bearer token is not exposed to CSRF and needs none
    api = client_for(trials_db_copy, token="tok")
    r = api.post(url, json={**CORRECTION, "value": "other"}, headers={"Authorization": "Bearer tok"})
    assert r.status_code == 201
    assert _overrides(trials_db_copy) == 5


def test_without_a_token_only_loopback_host_names_are_answered(trials_db: Path, client_for):
    client = client_for(trials_db)
    assert client.get("/api/trials?limit=1").status_code == 200
    for host in ("evil.example", "127.0.0.1.nip.io", "attacker.localhost.com"):
        r = client.get("/api/trials?limit=1", headers={"Host": host})
        assert r.status_code == 400 and "Host" in r.json()["detail"]
    assert client.get("/api/trials?limit=1", headers={"Host": "localhost:8765"}).status_code == 200


def test_hostile_registry_text_is_escaped_everywhere(hostile, client_for, csrf_headers):
    client = client_for(hostile.db)
    HOSTILE_ID = hostile.id  # noqa: N806
    d = client.get(f"/api/trials/{HOSTILE_ID}").json()
    assert d["record"]["title"] == hostile.title  # stored as the registry gave it
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


def test_answers_cannot_be_framed_or_sniffed(trials_db: Path, client_for):
    r = client_for(trials_db).get("/trials")
    assert r.headers["x-frame-options"] == "SAMEORIGIN" and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
