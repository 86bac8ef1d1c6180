"""Live PubMed searches through NCBI E-utilities: esearch (history server), then efetch in batches.

NCBI asks for at most 3 requests per second without an API key and 10 with one, and for
``tool`` and ``email`` parameters on every request
(https://www.ncbi.nlm.nih.gov/books/NBK25497/). Transient failures (network errors, HTTP
429 and 5xx) are retried with exponential backoff. Fetched batches are cached on disk,
keyed by the query, date range, batch position and the hit count, so re-running an
unchanged search costs one esearch request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import ParseError

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from neuromodmap._utils import atomic_write
from neuromodmap.config import cache_dir
from neuromodmap.literature._pubmed_xml import parse_pubmed_xml
from neuromodmap.literature.records import ImportIssue, ImportResult, make_record_id
from neuromodmap.provenance import Provenance

__all__ = ["EUtilsClient", "EUtilsError", "SearchHandle", "EUTILS_BASE"]

EUTILS_BASE = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"


class EUtilsError(RuntimeError):
    """NCBI answered with an error, or not at all after the retries."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class SearchHandle:
    """An esearch result kept on the NCBI history server."""

    term: str
    count: int
    webenv: str
    query_key: str
    mindate: str | None = None
    maxdate: str | None = None


class EUtilsClient:
    """A polite E-utilities client.

    Parameters
    ----------
    api_key : str, optional
        NCBI API key: raises the rate limit from 3 to 10 requests per second.
    email, tool : str
        Sent with every request, as NCBI asks.
    base_url : str
        The E-utilities root (a local server in tests).
    cache : path or False, optional
        Folder for fetched batches (default ``<cache>/eutils``); ``False`` turns caching off.
    max_attempts : int
        Tries per request before giving up.
    """

    def __init__(self, *, api_key: str | None = None, email: str | None = None, tool: str = "neuromodmap",
                 base_url: str = EUTILS_BASE, cache: str | Path | bool | None = None, timeout: float = 60.0,
                 max_attempts: int = 5, backoff: float = 1.0) -> None:
        self.api_key = api_key
        self.email = email
        self.tool = tool
        self.base_url = base_url.rstrip("/")
        self.min_interval = 1.0 / (10 if api_key else 3)
        if cache is False:
            self.cache_dir = None
        else:
            self.cache_dir = Path(cache) if cache not in (None, True) else cache_dir() / "eutils"
        self._client = httpx.Client(timeout=timeout, follow_redirects=True)
        self._lock = threading.Lock()
        self._last_request = 0.0
        self.n_requests = 0
        self._get_with_retry = retry(
            retry=retry_if_exception(_retryable), wait=wait_exponential(multiplier=backoff, max=30),
            stop=stop_after_attempt(max_attempts), reraise=True,
        )(self._get_once)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EUtilsClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- HTTP -------------------------------------------------------------------------------
    def _throttle(self) -> None:
        with self._lock:
            wait = self._last_request + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_request = time.monotonic()

    def _get_once(self, endpoint: str, params: dict[str, str]) -> bytes:
        self._throttle()
        self.n_requests += 1
        response = self._client.get(f"{self.base_url}/{endpoint}", params=params)
        response.raise_for_status()
        return response.content

    def _get(self, endpoint: str, params: dict[str, str]) -> bytes:
        full = dict(params, tool=self.tool)
        if self.email:
            full["email"] = self.email
        if self.api_key:
            full["api_key"] = self.api_key
        try:
            return self._get_with_retry(endpoint, full)
        except httpx.HTTPStatusError as exc:
            raise EUtilsError(f"{endpoint}: NCBI answered HTTP {exc.response.status_code}") from exc
        except httpx.TransportError as exc:
            raise EUtilsError(f"{endpoint}: cannot reach {self.base_url} ({exc})") from exc

    # -- E-utilities ------------------------------------------------------------------------
    def esearch(self, term: str, *, mindate: str | None = None, maxdate: str | None = None,
                datetype: str = "pdat") -> SearchHandle:
        """Run a PubMed search on the history server (``usehistory=y``)."""
        params = {"db": "pubmed", "term": term, "usehistory": "y", "retmax": "0"}
        if mindate or maxdate:
            params.update({"datetype": datetype, "mindate": mindate or "1800", "maxdate": maxdate or "3000"})
        data = self._get("esearch.fcgi", params)
        try:
            root = fromstring(data)
        except (ParseError, DefusedXmlException) as exc:
            raise EUtilsError(f"esearch: unreadable answer ({exc})") from exc
        error = root.findtext("ERROR")
        if error:
            raise EUtilsError(f"esearch: {error}")
        try:
            count = int(root.findtext("Count") or "")
        except ValueError as exc:
            raise EUtilsError("esearch: the answer has no Count") from exc
        webenv, query_key = root.findtext("WebEnv"), root.findtext("QueryKey")
        if count and not (webenv and query_key):
            raise EUtilsError("esearch: the answer has no WebEnv/QueryKey (history server)")
        return SearchHandle(term=term, count=count, webenv=webenv or "", query_key=query_key or "",
                            mindate=mindate, maxdate=maxdate)

    def _cache_path(self, handle: SearchHandle, start: int, size: int) -> Path | None:
        if self.cache_dir is None:
            return None
        key = f"{handle.term}\x00{handle.mindate}\x00{handle.maxdate}\x00{handle.count}\x00{start}\x00{size}"
        return self.cache_dir / f"efetch-{hashlib.sha256(key.encode()).hexdigest()[:24]}.xml"

    def efetch_batches(self, handle: SearchHandle, *, batch_size: int = 200,
                       max_records: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield ``(retstart, PubMed XML)`` batches of a search, from the cache when possible."""
        total = handle.count if max_records is None else min(handle.count, max_records)
        for start in range(0, total, batch_size):
            size = min(batch_size, total - start)
            cached = self._cache_path(handle, start, size)
            if cached is not None and cached.is_file():
                yield start, cached.read_bytes()
                continue
            data = self._get("efetch.fcgi", {"db": "pubmed", "query_key": handle.query_key, "WebEnv": handle.webenv,
                                             "retstart": str(start), "retmax": str(size), "retmode": "xml"})
            if cached is not None:
                with atomic_write(cached, "wb") as fh:
                    fh.write(data)
            yield start, data

    def search(self, term: str, *, mindate: str | None = None, maxdate: str | None = None, batch_size: int = 200,
               max_records: int | None = None, on_batch: Callable[[int, int], None] | None = None) -> ImportResult:
        """Search PubMed and fetch every hit as :class:`Record` objects (one ImportResult)."""
        handle = self.esearch(term, mindate=mindate, maxdate=maxdate)
        records, issues = [], []
        digest = hashlib.sha256()
        label = Path(f"pubmed-search:{term}")
        position = 0
        for start, data in self.efetch_batches(handle, batch_size=batch_size, max_records=max_records):
            digest.update(data)
            batch_issues: list[ImportIssue] = []
            batch = parse_pubmed_xml(data, label, "PubMed", batch_issues)
            for issue in batch_issues:
                issue.file = f"efetch retstart={start}"
            issues.extend(batch_issues)
            for record in batch:
                position += 1
                record.source_position = position
                record.source_file = f"PubMed E-utilities: {term}"
                # PMIDs are stable, so a repeated search gives the same record ids
                record.record_id = make_record_id(f"pubmed:{record.pmid or digest.hexdigest()}", 0 if record.pmid else position)
            records.extend(batch)
            if on_batch:
                on_batch(start + len(batch), handle.count if max_records is None else min(handle.count, max_records))
        provenance = Provenance(
            source=f"PubMed E-utilities esearch: {term}", as_of=dt.date.today(),
            extra={"format": "pubmed_xml", "sha256": digest.hexdigest(), "database": "PubMed",
                   "count": str(handle.count), "mindate": mindate or "", "maxdate": maxdate or "",
                   "base_url": self.base_url},
        )
        return ImportResult(records=records, issues=issues, format="pubmed_xml", source_database="PubMed",
                            provenance=provenance)
