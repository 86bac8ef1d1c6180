"""E-utilities client against a local HTTP server that serves the real PubMed XML sample."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from neuromodmap.literature import EUtilsClient, EUtilsError, open_store, save_import
from neuromodmap.literature.store import load_records


class _FakeNCBI:
    """esearch answers with a history-server handle; efetch slices the real PubmedArticleSet."""

    def __init__(self, xml: bytes, *, fail_first: int = 0, esearch_error: str | None = None) -> None:
        head, rest = xml.split(b"<PubmedArticle>", 1)
        self.head = head
        self.articles = [b"<PubmedArticle>" + part.split(b"</PubmedArticle>")[0] + b"</PubmedArticle>"
                         for part in (b"<PubmedArticle>" + rest).split(b"<PubmedArticle>")[1:]]
        self.requests: list[tuple[float, str, dict]] = []
        self.fail_first = fail_first
        self.esearch_error = esearch_error

    def handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append((time.monotonic(), url.path, params))
                if fake.fail_first > 0:
                    fake.fail_first -= 1
                    self.send_response(429)
                    self.end_headers()
                    return
                if url.path.endswith("esearch.fcgi"):
                    if fake.esearch_error:
                        body = f"<eSearchResult><ERROR>{fake.esearch_error}</ERROR></eSearchResult>".encode()
                    else:
                        body = (f"<eSearchResult><Count>{len(fake.articles)}</Count><RetMax>0</RetMax>"
                                "<QueryKey>1</QueryKey><WebEnv>MCID_local</WebEnv><IdList/></eSearchResult>").encode()
                elif url.path.endswith("efetch.fcgi"):
                    assert params["WebEnv"] == "MCID_local" and params["query_key"] == "1"
                    start, size = int(params["retstart"]), int(params["retmax"])
                    body = (b'<?xml version="1.0"?>\n<PubmedArticleSet>\n'
                            + b"\n".join(fake.articles[start:start + size]) + b"\n</PubmedArticleSet>\n")
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture()
def ncbi(exports_dir: Path):
    servers = []

    def start(**kwargs) -> tuple[_FakeNCBI, str]:
        fake = _FakeNCBI((exports_dir / "pubmed_xml/asreview_pubmed.xml").read_bytes(), **kwargs)
        server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return fake, f"http://127.0.0.1:{server.server_address[1]}/entrez/eutils"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_search_in_batches_with_history_and_cache(ncbi, tmp_path: Path) -> None:
    fake, url = ncbi()
    assert len(fake.articles) == 10  # SOURCES.md: 10 PubmedArticle
    sent: list[float] = []  # when each request left the client (server arrival times jitter under load)
    with EUtilsClient(base_url=url, email="me@example.org", cache=tmp_path / "cache", backoff=0.01) as client:
        real_get = client._client.get

        def timed_get(*args, **kwargs):
            sent.append(time.monotonic())
            return real_get(*args, **kwargs)

        client._client.get = timed_get
        result = client.search("odontogenic cyst", mindate="2000/01/01", maxdate="2025/04/30", batch_size=4)
    assert [r.pmid for r in result.records][:1] == ["31690499"]
    assert len(result.records) == 10 and len({r.record_id for r in result.records}) == 10
    paths = [p for _, p, _ in fake.requests]
    assert paths == ["/entrez/eutils/esearch.fcgi"] + ["/entrez/eutils/efetch.fcgi"] * 3  # 4 + 4 + 2
    esearch = fake.requests[0][2]
    assert esearch["usehistory"] == "y" and esearch["tool"] == "neuromodmap" and esearch["email"] == "me@example.org"
    assert (esearch["mindate"], esearch["maxdate"], esearch["datetype"]) == ("2000/01/01", "2025/04/30", "pdat")
    assert [r[2]["retstart"] for r in fake.requests[1:]] == ["0", "4", "8"]
    # no key: at most 3 requests per second
    assert len(sent) == 4
    assert min(b - a for a, b in zip(sent, sent[1:], strict=False)) >= 1 / 3 - 1e-3
    # the same search again: one esearch, every batch from the cache
    with EUtilsClient(base_url=url, cache=tmp_path / "cache") as client:
        again = client.search("odontogenic cyst", mindate="2000/01/01", maxdate="2025/04/30", batch_size=4)
    assert [p for _, p, _ in fake.requests[4:]] == ["/entrez/eutils/esearch.fcgi"]
    assert [r.record_id for r in again.records] == [r.record_id for r in result.records]
    con = open_store(tmp_path / "db.duckdb")
    save_import(con, result)
    assert len(load_records(con)) == 10


def test_api_key_rate_and_retries(ncbi) -> None:
    fake, url = ncbi(fail_first=2)
    with EUtilsClient(base_url=url, api_key="SECRET", cache=False, backoff=0.01) as client:
        assert client.min_interval == pytest.approx(0.1)
        handle = client.esearch("x")
    assert handle.count == 10 and handle.webenv == "MCID_local"
    assert len(fake.requests) == 3  # two 429 answers, then success
    assert fake.requests[-1][2]["api_key"] == "SECRET"


def test_errors_are_clear(ncbi) -> None:
    fake, url = ncbi(esearch_error="Invalid query syntax")
    with EUtilsClient(base_url=url, cache=False, backoff=0.01) as client, \
            pytest.raises(EUtilsError, match="esearch: Invalid query syntax"):
        client.esearch("((")
    fake, url = ncbi(fail_first=100)
    with EUtilsClient(base_url=url, cache=False, backoff=0.01, max_attempts=2) as client, \
            pytest.raises(EUtilsError, match=re.escape("esearch.fcgi: NCBI answered HTTP 429")):
        client.esearch("x")
    with EUtilsClient(base_url="http://127.0.0.1:9/eutils", cache=False, backoff=0.01, max_attempts=2,
                      timeout=2) as client, pytest.raises(EUtilsError, match="cannot reach"):
        client.esearch("x")


def test_pubmed_command_imports_hits(ncbi, tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from neuromodmap.cli import app

    fake, url = ncbi()
    monkeypatch.setenv("NEUROMODMAP_CACHE", str(tmp_path / "cache"))
    db = tmp_path / "db.duckdb"
    result = CliRunner().invoke(app, ["literature", "pubmed", "odontogenic cyst", "--db", str(db),
                                      "--batch-size", "5", "--max-records", "7", "--base-url", url])
    assert result.exit_code == 0, result.output
    assert "7 PubMed records imported (10 hits)" in " ".join(result.output.split())
    assert [r[2]["retmax"] for r in fake.requests[1:]] == ["5", "2"]
    con = open_store(db)
    assert con.execute("SELECT count(*), min(source_database) FROM literature_records").fetchone() == (7, "PubMed")
    fake.esearch_error = "Invalid query"
    result = CliRunner().invoke(app, ["literature", "pubmed", "((", "--db", str(db), "--base-url", url])
    assert result.exit_code == 2 and "esearch: Invalid query" in result.output and "Traceback" not in result.output
