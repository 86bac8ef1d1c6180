"""The API v2 client against a local HTTP server serving pages of real records, with faults
injected: 429 + Retry-After, 500, a timeout, truncated bodies; checkpoints and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from test_trials_io_helpers import corpus_lines, v2_studies

from neuromodmap.trials import FetchError, TrialStore, fetch_studies

PAGE = 1000


class FakeCtGov:
    """A tiny ``/api/v2/studies`` that pages a fixed list of studies; faults by request number."""

    def __init__(self, studies: list[dict], faults: dict[int, str] | None = None, slow: float = 0.0):
        self.studies = studies
        self.faults = dict(faults or {})
        self.slow = slow
        self.requests: list[dict] = []
        self.times: list[float] = []
        self.served_pages = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                owner.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v2"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.lock:
            self.requests.append(params)
            self.times.append(time.monotonic())
            n = len(self.requests)
            fault = self.faults.pop(n, None)
        if url.path != "/api/v2/studies":
            return self._send(h, 404, b'{"error": "not found"}')
        if fault == "429":
            return self._send(h, 429, b"slow down", {"Retry-After": "1"})
        if fault == "500":
            return self._send(h, 500, b"internal error")
        if fault == "503":
            return self._send(h, 503, b"unavailable")
        if fault == "400":
            return self._send(h, 400, b'{"message": "unknown field in filter.advanced"}')
        if fault == "timeout":
            time.sleep(1.0)  # past the client's timeout
        offset = int(params.get("pageToken", "t0")[1:])
        size = int(params.get("pageSize", "10"))
        page = {"studies": self.studies[offset : offset + size]}
        if offset + size < len(self.studies):
            page["nextPageToken"] = f"t{offset + size}"
        if params.get("countTotal") == "true":
            page["totalCount"] = len(self.studies)
        body = json.dumps(page).encode()
        if fault == "truncated":  # an honest Content-Length for a cut body: invalid JSON
            return self._send(h, 200, body[: len(body) // 2])
        if fault == "short":  # the connection drops before Content-Length bytes arrive
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[:1000])
            h.wfile.flush()
            h.close_connection = True
            return
        if self.slow:
            time.sleep(self.slow)
        with self.lock:
            self.served_pages += 1
        self._send(h, 200, body)

    @staticmethod
    def _send(h, status: int, body: bytes, headers: dict | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)


@pytest.fixture(scope="module")
def studies(corpus_path, trials_dir) -> list[dict]:
    """3,012 real records: the first 3,000 corpus lines and the 12 complete v2 studies."""
    return [json.loads(x) for x in corpus_lines(corpus_path, 3000)] + v2_studies(trials_dir)


def _ids(studies):
    return sorted(s["protocolSection"]["identificationModule"]["nctId"] for s in studies)


def _fast(**kw):
    return dict(rate=0, progress=False, backoff=0.01, max_backoff=2.0, timeout=0.5, **kw)


def test_fetch_all_pages_through_every_fault(tmp_path, studies):
    faults = {1: "429", 3: "500", 4: "timeout", 5: "truncated", 7: "short", 8: "503"}
    with FakeCtGov(studies, faults) as api, TrialStore(tmp_path / "t.duckdb") as store:
        started = time.monotonic()
        report = fetch_studies(store, cond="chronic pain", intr="stimulation", base_url=api.base_url, **_fast())
        assert report.completed and report.total_count == 3012
        assert report.n_pages == 4 and report.n_studies == 3012 and report.retries == 6
        # every record exactly once
        ids = [r[0] for r in store.con.execute("SELECT registry_id FROM trials").fetchall()]
        assert sorted(ids) == _ids(studies)
        # the 429's Retry-After (1 s) was honoured before the second request
        assert api.times[1] - api.times[0] >= 0.95
        assert time.monotonic() - started < 30
        first = api.requests[1]
        assert first["query.cond"] == "chronic pain" and first["query.intr"] == "stimulation"
        assert first["pageSize"] == "1000" and first["countTotal"] == "true" and "pageToken" not in first
        assert all("countTotal" not in r for r in api.requests if "pageToken" in r)
        run = store.import_runs_df().iloc[-1]
        assert run["status"] == "completed" and run["checkpoint"] is None and run["total_count"] == 3012
        assert run["kind"] == "api" and "query.cond=chronic+pain" in run["source"]
        assert store.get_trial("NCT02552212").source_format == "ctgov_api"
        sentence = report.methods_sentence()
        assert report.as_of.isoformat() in sentence and "query.cond=chronic+pain" in sentence and "3,012 studies" in sentence


def test_rate_limit(tmp_path, studies):
    with FakeCtGov(studies[:500]) as api, TrialStore(tmp_path / "t.duckdb") as store:
        fetch_studies(store, term="pain", base_url=api.base_url, page_size=100, progress=False, rate=10)
        gaps = [b - a for a, b in zip(api.times, api.times[1:], strict=False)]
        assert len(api.times) == 5 and min(gaps) >= 0.09  # at most 10 requests/s


def test_resume_from_checkpoint_without_refetching(tmp_path, studies):
    with FakeCtGov(studies) as api, TrialStore(tmp_path / "t.duckdb") as store:
        part = fetch_studies(store, cond="depression", base_url=api.base_url, max_pages=2, **_fast())
        assert not part.completed and part.n_studies == 2000
        run = store.import_runs_df().iloc[-1]
        assert run["status"] == "interrupted" and run["checkpoint"] == "t2000"
        rest = fetch_studies(store, cond="depression", base_url=api.base_url, **_fast())
        assert rest.resumed and rest.completed and rest.run_id == part.run_id and rest.n_studies == 1012
        assert api.requests[2]["pageToken"] == "t2000"  # resumed, not restarted
        assert api.served_pages == 4
        assert len(store) == 3012
        # a completed query starts afresh next time (a new run, same rows)
        again = fetch_studies(store, cond="depression", base_url=api.base_url, **_fast())
        assert not again.resumed and again.n_upserted == 0 and len(store) == 3012


_KILLABLE = textwrap.dedent(
    """
    import sys
    from neuromodmap.trials import TrialStore, fetch_studies
    store = TrialStore(sys.argv[1])
    fetch_studies(store, cond="pain", base_url=sys.argv[2], rate=0, progress=False)
    """
)


def test_killed_fetch_resumes_with_no_duplicates(tmp_path, studies):
    db = tmp_path / "t.duckdb"
    with FakeCtGov(studies, slow=0.3) as api:
        proc = subprocess.Popen(
            [sys.executable, "-c", _KILLABLE, str(db), api.base_url], env={**os.environ, "NEUROMODMAP_NO_PROGRESS": "1"}
        )
        deadline = time.monotonic() + 60
        while api.served_pages < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # let page 2 commit
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with TrialStore(db) as store:
            committed = len(store)
            # whole pages only (the kill lands after page 2; under load a third page may have
            # committed too), never a partial page and never everything
            assert committed % 1000 == 0 and 1000 <= committed < len(studies)
            report = fetch_studies(store, cond="pain", base_url=api.base_url, **_fast())
            assert report.resumed and report.completed
            ids = [r[0] for r in store.con.execute("SELECT registry_id FROM trials").fetchall()]
            assert sorted(ids) == _ids(studies)
            assert api.requests[-(report.n_pages)]["pageToken"] == f"t{committed}"


def test_gives_up_but_keeps_checkpoint(tmp_path, studies):
    faults = {n: "503" for n in range(2, 10)}
    with FakeCtGov(studies, faults) as api, TrialStore(tmp_path / "t.duckdb") as store:
        with pytest.raises(FetchError, match="still failing after 2 retries"):
            fetch_studies(store, cond="pain", base_url=api.base_url, max_retries=2, **_fast())
        run = store.import_runs_df().iloc[-1]
        assert run["status"] == "failed" and run["checkpoint"] == "t1000" and len(store) == 1000


def test_bad_query_is_not_retried(tmp_path, studies):
    with FakeCtGov(studies, {1: "400"}) as api, TrialStore(tmp_path / "t.duckdb") as store:
        with pytest.raises(FetchError, match="HTTP 400.*unknown field"):
            fetch_studies(store, advanced="AREA[Bogus]x", base_url=api.base_url, **_fast())
        assert len(api.requests) == 1
    with TrialStore(tmp_path / "u.duckdb") as store, pytest.raises(FetchError, match="at least one"):
        fetch_studies(store, progress=False)


def test_fetched_study_with_a_bad_field_is_kept(tmp_path, trials_dir):
    """A study the API sends with one bad value is stored with that field empty and the
    problem kept in the run's problems; a study without an id is skipped."""
    good = v2_studies(trials_dir)
    bad = json.loads(json.dumps(good[4]))
    nct = bad["protocolSection"]["identificationModule"]["nctId"]
    bad["protocolSection"]["statusModule"]["startDateStruct"]["date"] = "2015-02-30"
    no_id = json.loads(json.dumps(good[5]))
    no_id["protocolSection"]["identificationModule"].pop("nctId")
    served = [good[0], bad, no_id, good[1]]
    with FakeCtGov(served) as api, TrialStore(tmp_path / "t.duckdb") as store:
        report = fetch_studies(store, cond="x", base_url=api.base_url, **_fast(page_size=2))
        assert report.completed and len(store) == 3
        trial = store.get_trial(nct)
        assert trial.start_date is None and trial.title == good[4]["protocolSection"]["identificationModule"]["briefTitle"]
        rows = store.con.execute("SELECT location, registry_id, field, action FROM import_problems").fetchall()
    assert sorted(rows) == [
        ("page 1 study 2", nct, "protocolSection.statusModule.startDateStruct.date", "field emptied"),
        ("page 2 study 1", None, "protocolSection.identificationModule.nctId", "record skipped"),
    ]
    assert [p.action for p in report.problems] == ["field emptied", "record skipped"]
