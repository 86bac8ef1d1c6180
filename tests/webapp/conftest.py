"""The web app over a small real trials store; a real uvicorn server; a real headless Chromium.

``trials_db`` imports real ClinicalTrials.gov records (the first 15,000 of the 2018 text corpus,
the 100 full API v2 records of the herniated-disc download and the 60 legacy XML fixtures) and
classifies them, once per session; ``trials_db_copy`` gives a test its own copy to change.
"""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

N_TEXT_RECORDS = 15000


def trial_sources(trials_dir: Path, work: Path) -> list[Path]:
    sample = work / "ctgov_text_2018_first15000.jsonl"
    with gzip.open(trials_dir / "ctgov_text_2018.jsonl.gz", "rt", encoding="utf-8") as src, \
            open(sample, "w", encoding="utf-8") as dst:
        dst.writelines(itertools.islice(src, N_TEXT_RECORDS))
    return [trials_dir / "ctgov_v2_json_download_herniated_disc_koy570" / "ctg-studies.json.gz",
            trials_dir / "ctgov_legacy_xml", sample]


def build_store(db: Path, sources: list[Path]) -> Path:
    from neuromodmap.trials.io import expand_inputs
    from neuromodmap.trials.pipeline import classify_to_csv
    from neuromodmap.trials.store import TrialStore

    with TrialStore(db) as store:
        store.import_files(expand_inputs(sources), problems=[])
    classify_to_csv([], db.with_suffix(".labels.csv"), db=db, problems=[])
    return db


@pytest.fixture(scope="session")
def trials_sources(tmp_path_factory, trials_dir: Path) -> list[Path]:
    return trial_sources(trials_dir, tmp_path_factory.mktemp("webapp-sources"))


@pytest.fixture(scope="session")
def trials_db(tmp_path_factory, trials_sources) -> Path:
    """A real classified trials store (read it, do not change it: see ``trials_db_copy``)."""
    return build_store(tmp_path_factory.mktemp("webapp-store") / "trials.duckdb", trials_sources)


@pytest.fixture()
def trials_db_copy(trials_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "trials.duckdb"
    shutil.copyfile(trials_db, copy)
    return copy


@pytest.fixture()
def client_for() -> Callable:
    """``client_for(db, review=None, token=None)``: a TestClient on a loopback Host, CSRF cookie set."""
    from fastapi.testclient import TestClient

    from neuromodmap.webapp import create_app

    made = []

    def make(db: Path, review: Path | None = None, token: str | None = None, **kwargs):
        client = TestClient(create_app(db, review, token, **kwargs), base_url="http://127.0.0.1")
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()


def _csrf_headers(client) -> dict[str, str]:
    if "nm_csrf" not in client.cookies:
        client.get("/api/csrf")
    return {"X-CSRF-Token": client.cookies["nm_csrf"]}


@pytest.fixture()
def csrf_headers() -> Callable:
    """``csrf_headers(client)``: the CSRF header for ``client`` (fetching one first if it has no cookie)."""
    return _csrf_headers


@pytest.fixture()
def live_url():
    """``live_url(app)``: serve the app with a real uvicorn in a thread; return its base URL."""
    from neuromodmap.webapp.server import running_server

    stack = []

    def start(app) -> str:
        cm = running_server(app)
        url = cm.__enter__()
        stack.append(cm)
        return url

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)




@pytest.fixture()
def page_for(browser):
    """``page_for(base_url)``: a fresh browser context and page, recording errors and remote requests."""
    contexts = []

    def open_page(base_url: str):
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        contexts.append(context)
        pg = context.new_page()
        pg.page_errors, pg.console_messages, pg.remote_requests = [], [], []
        pg.on("pageerror", lambda e: pg.page_errors.append(str(e)))
        pg.on("console", lambda m: pg.console_messages.append((m.type, m.text)))
        pg.on("request", lambda r: pg.remote_requests.append(r.url) if not r.url.startswith(base_url) else None)
        return pg

    yield open_page
    for c in contexts:
        c.close()


# ---------------------------------------------------------------------- hostile registry text
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
def hostile(trials_db_copy: Path, trials_dir: Path, tmp_path: Path):
    """The small store plus one real record made hostile: ``.db``, ``.id``, ``.title``."""
    from neuromodmap.trials.io import expand_inputs
    from neuromodmap.trials.pipeline import classify_to_csv
    from neuromodmap.trials.store import TrialStore

    src = tmp_path / "hostile.jsonl"
    src.write_text(json.dumps(hostile_record(trials_dir)) + "\n", encoding="utf-8")
    with TrialStore(trials_db_copy) as store:
        store.import_files(expand_inputs([src]), problems=[])
    classify_to_csv([], tmp_path / "labels.csv", db=trials_db_copy, problems=[])
    return SimpleNamespace(db=trials_db_copy, id=HOSTILE_ID, title=HOSTILE_TITLE)


