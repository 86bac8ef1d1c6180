"""The app's frame: navigation, static files served locally, errors as JSON or pages."""

from __future__ import annotations

from pathlib import Path


def test_base_page_has_the_four_tabs_and_local_scripts(trials_db: Path, client_for):
    client = client_for(trials_db)
    r = client.get("/trials")
    assert r.status_code == 200
    for label, href in [("Trials", "/trials"), ("Screening", "/screening"), ("Evidence", "/evidence"),
                        ("Connectome", "/connectome")]:
        assert f'href="{href}"' in r.text and f">{label}</a>" in r.text
    assert 'src="/static/htmx.min.js"' in r.text and "https://" not in r.text.split("<main")[0]
    js = client.get("/static/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text[:2000]
    assert client.get("/static/htmx.LICENSE").text.startswith("Zero-Clause BSD")


def test_unknown_paths_are_404_json_under_api_and_a_page_elsewhere(trials_db: Path, client_for):
    client = client_for(trials_db)
    r = client.get("/api/no-such-thing")
    assert r.status_code == 404 and r.json()["detail"]
    r = client.get("/no-such-page")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
