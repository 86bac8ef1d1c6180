"""The app and the CLI share a store: a real `neuromodmap trials import` runs into the store a real
uvicorn server is answering from; no request fails with a 500, the import completes, and the app
shows the imported trials afterwards."""

from __future__ import annotations

import collections
import gzip
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from neuromodmap.webapp import create_app

HERE = Path(__file__).resolve().parents[2]


def _import_cmd(src: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "neuromodmap", "trials", "import", str(src), "--db", str(db)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["NEUROMODMAP_NO_PROGRESS"] = "1"
    return env


def test_import_while_the_server_answers(trials_db_copy: Path, trials_dir: Path, tmp_path: Path, live_url,
                                         csrf_headers):
    # 20,000 more real records of the 2018 corpus (after the 15,000 the store has)
    src = tmp_path / "more.jsonl"
    with gzip.open(trials_dir / "ctgov_text_2018.jsonl.gz", "rt", encoding="utf-8") as fh, \
            open(src, "w", encoding="utf-8") as out:
        out.writelines(itertools.islice(fh, 15000, 35000))
    import duckdb

    con = duckdb.connect(str(trials_db_copy), read_only=True)
    old_ids = {r[0] for r in con.execute("SELECT registry_id FROM trials").fetchall()}
    con.close()
    with open(src, encoding="utf-8") as fh:
        new_ids = {json.loads(line)["protocolSection"]["identificationModule"]["nctId"] for line in fh}
    url = live_url(create_app(trials_db_copy, busy_wait=1.0))
    client = httpx.Client(base_url=url, timeout=60)
    before = client.get("/api/trials?neuromod=any&limit=1").json()["total"]
    client.get("/trials")  # CSRF cookie

    proc = subprocess.Popen(_import_cmd(src, trials_db_copy), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env())
    codes: collections.Counter = collections.Counter()
    bodies = []
    posted = False
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        for path in ("/api/trials?modality=tms&limit=5", "/trials?indication=depression", "/trials/NCT02586688"):
            r = client.get(path)
            codes[r.status_code] += 1
            if r.status_code != 200:
                bodies.append((path, r.status_code, r.headers.get("retry-after"), r.text))
        if not posted:  # a correction during the import: stored, or refused as busy, never half-done
            r = client.post("/api/trials/NCT02586688/labels", headers=csrf_headers(client),
                            json={"field": "indication", "value": "both", "reviewer": "during-import"})
            assert r.status_code in (201, 503), r.text
            posted = r.status_code == 201
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert "Imported 20,000 trials" in out
    assert set(codes) <= {200, 503}, bodies
    for path, status, retry_after, text in bodies:
        assert status == 503 and retry_after == "2" and "busy" in text, (path, text[-500:])
    assert codes[200] > 0

    after = client.get("/api/trials?neuromod=any&limit=1").json()["total"]
    assert before == len(old_ids) and after == len(old_ids | new_ids) > before
    page = client.get("/trials?neuromod=any")
    assert page.status_code == 200 and f'data-total="{after}"' in page.text
    if not posted:
        r = client.post("/api/trials/NCT02586688/labels", headers=csrf_headers(client),
                        json={"field": "indication", "value": "both", "reviewer": "after-import"})
        assert r.status_code == 201
    assert client.get("/api/trials/NCT02586688").json()["labels"]["indication"] == "both"


def test_an_import_started_during_a_request_burst_waits_and_succeeds(trials_db_copy: Path, trials_sources,
                                                                     live_url, tmp_path: Path):
    """The app holds a read-only instance while requests keep coming; a writer's signal makes it let go."""
    url = live_url(create_app(trials_db_copy, busy_wait=1.0, linger=30.0))
    client = httpx.Client(base_url=url, timeout=60)
    assert client.get("/api/trials?limit=1").status_code == 200  # the app now holds the file (linger 30 s)
    legacy = next(p for p in trials_sources if p.name == "ctgov_legacy_xml")
    t0 = time.monotonic()
    proc = subprocess.Popen(_import_cmd(legacy, trials_db_copy), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env())
    while proc.poll() is None and time.monotonic() - t0 < 120:
        r = client.get("/api/trials?limit=1")
        assert r.status_code in (200, 503)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert "in use by another process; waiting" in out  # it said so
    assert time.monotonic() - t0 < 60  # and did not wait for the 30 s linger
    assert client.get("/api/trials?limit=1").status_code == 200
