"""Live ClinicalTrials.gov API v2 client: page through ``/studies`` into the trials store.

Polite by default (at most one request per second), it retries with exponential backoff on
HTTP 429, 5xx, timeouts, dropped connections and truncated or invalid JSON bodies, honouring
``Retry-After``. After every page the studies and the next page token are committed in one
transaction, so a run that is killed resumes from its checkpoint with no duplicates.

API reference: https://clinicaltrials.gov/data-api/api (``query.cond``, ``query.intr``,
``query.term``, ``filter.advanced``, ``pageSize``, ``pageToken``, ``countTotal``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt

from neuromodmap import __version__
from neuromodmap._utils import progress_bar
from neuromodmap.trials._readers._common import FIELD_EMPTIED, FieldError, ImportedRecord
from neuromodmap.trials._readers.v2 import study_to_trial
from neuromodmap.trials.io import _encodable
from neuromodmap.trials.models import ImportProblem

__all__ = ["fetch_studies", "FetchReport", "FetchError", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
CITATION = "ClinicalTrials.gov, US National Library of Medicine (API v2)"


class FetchError(RuntimeError):
    """The API could not be queried (bad query, or still failing after every retry)."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class FetchReport:
    """What a fetch did: pages and studies fetched, rows written, retries, problems."""

    run_id: str
    source: str
    as_of: dt.date
    total_count: int | None = None
    n_pages: int = 0
    n_studies: int = 0
    n_upserted: int = 0
    retries: int = 0
    resumed: bool = False
    completed: bool = False
    seconds: float = 0.0
    problems: list[ImportProblem] = field(default_factory=list)

    def __str__(self) -> str:
        total = f" of {self.total_count:,}" if self.total_count is not None else ""
        state = "complete" if self.completed else "incomplete (re-run to resume)"
        resumed = ", resumed from checkpoint" if self.resumed else ""
        return (
            f"{self.n_studies:,}{total} studies in {self.n_pages} page(s), {self.n_upserted:,} new or changed, "
            f"{self.retries} retried request(s), {len(self.problems)} problem(s){resumed}; {state}"
        )

    def methods_sentence(self) -> str:
        """One sentence for a methods section: source, query and as-of date."""
        return (
            f"Trial records were retrieved from {CITATION} on {self.as_of.isoformat()} with the query "
            f"{self.source} ({self.n_studies:,} studies; neuromodmap {__version__})."
        )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class _RateLimiter:
    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.last = -float("inf")
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            delay = self.last + self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.last = time.monotonic()


def fetch_studies(
    store,
    *,
    cond: str | None = None,
    intr: str | None = None,
    term: str | None = None,
    advanced: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    rate: float = 1.0,
    page_size: int = 1000,
    progress: bool = True,
    client: httpx.Client | None = None,
    max_retries: int = 6,
    timeout: float = 60.0,
    backoff: float = 2.0,
    max_backoff: float = 120.0,
    max_pages: int | None = None,
    resume: bool = True,
) -> FetchReport:
    """Fetch every study matching a query from the ClinicalTrials.gov API v2 into ``store``.

    Parameters
    ----------
    store : TrialStore
        Where studies are upserted; ``import_runs`` keeps the query, as-of date and checkpoint.
    cond, intr, term, advanced : str, optional
        ``query.cond`` (conditions), ``query.intr`` (interventions), ``query.term`` (any
        field) and ``filter.advanced`` (Essie expression, e.g. ``AREA[Phase]PHASE3``).
    base_url : str
        API root (a local test server in tests).
    rate : float
        At most this many requests per second (retries included); 0 for no limit.
    page_size : int
        Studies per page (the API allows up to 1000).
    progress : bool
        Show a rich progress bar (the first page asks ``countTotal``).
    client : httpx.Client, optional
        A client to use (its own timeout applies); by default one is made and closed.
    max_retries : int
        Retries per page on 429, 5xx, timeouts and truncated bodies before giving up.
    timeout : float
        Seconds before a request times out (and is retried).
    backoff, max_backoff : float
        Exponential backoff: ``backoff * 2**attempt`` seconds, capped; ``Retry-After`` wins.
    max_pages : int, optional
        Stop after this many pages (the run stays resumable).
    resume : bool
        Continue the last unfinished run of the same query from its checkpoint.

    Returns
    -------
    FetchReport

    Raises
    ------
    FetchError
        When the API rejects the query or a page still fails after ``max_retries``; the
        checkpoint is kept, so running again resumes where it stopped.
    """
    if not any((cond, intr, term, advanced)):
        raise FetchError("give at least one of cond, intr, term or advanced (a query for the whole registry is not allowed)")
    if not 1 <= page_size <= 1000:
        raise FetchError(f"page_size must be between 1 and 1000, not {page_size}")
    params = {
        k: v
        for k, v in (
            ("query.cond", cond),
            ("query.intr", intr),
            ("query.term", term),
            ("filter.advanced", advanced),
        )
        if v
    }
    params.update({"format": "json", "pageSize": str(page_size)})
    base_url = base_url.rstrip("/")
    url = f"{base_url}/studies"
    source = f"{url}?{urlencode(params)}"
    query_json = {"base_url": base_url, **params}

    started = time.perf_counter()
    report, token, done = _open_run(store, source, query_json, resume)
    limiter = _RateLimiter(rate)
    own_client = client is None
    if own_client:
        client = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": f"neuromodmap/{__version__} (+https://github.com/neuromodmap)"},
            follow_redirects=True,
        )

    def get_page(page_params: dict) -> dict:
        limiter.wait()
        try:
            resp = client.get(url, params=page_params)
        except httpx.TimeoutException as err:
            raise _Retryable(f"timed out ({type(err).__name__})") from None
        except httpx.TransportError as err:
            raise _Retryable(f"connection failed ({type(err).__name__}: {err})") from None
        status = resp.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}", _retry_after(resp.headers.get("Retry-After")))
        if status >= 400:
            raise FetchError(f"{source}: the API answered HTTP {status}: {resp.text[:300]}")
        try:
            data = json.loads(resp.content)
        except (ValueError, RecursionError):
            raise _Retryable(f"invalid or truncated JSON body ({len(resp.content):,} bytes)") from None
        if not isinstance(data, dict) or not isinstance(data.get("studies", []), list):
            raise _Retryable("response is not a /studies page")
        return data

    def wait(state) -> float:
        exc = state.outcome.exception()
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, max_backoff)
        return min(max_backoff, backoff * 2 ** (state.attempt_number - 1))

    def before_sleep(state) -> None:
        report.retries += 1

    retrying = Retrying(
        retry=retry_if_exception_type(_Retryable),
        stop=stop_after_attempt(max_retries + 1),
        wait=wait,
        before_sleep=before_sleep,
        reraise=False,
    )

    bar = progress_bar(disable=not progress, unit="studies")
    try:
        with bar:
            task = bar.add_task("ClinicalTrials.gov", total=report.total_count, completed=done)
            while True:
                page_params = dict(params)
                if token:
                    page_params["pageToken"] = token
                elif report.total_count is None:
                    page_params["countTotal"] = "true"
                try:
                    data = retrying(get_page, page_params)
                except RetryError as err:
                    last = err.last_attempt.exception()
                    raise FetchError(
                        f"{source}: still failing after {max_retries} retries ({last}); the checkpoint is "
                        "kept, run the same fetch again to resume"
                    ) from None
                report.n_pages += 1
                if report.total_count is None and isinstance(data.get("totalCount"), int):
                    report.total_count = data["totalCount"]
                    bar.update(task, total=report.total_count)
                next_token = data.get("nextPageToken") or None
                if next_token is not None and not isinstance(next_token, str):
                    raise FetchError(f"{source}: nextPageToken is not text: {next_token!r:.60}")
                written = _store_page(store, report, data.get("studies") or [], next_token, source)
                report.n_upserted += written
                bar.update(task, advance=len(data.get("studies") or []))
                token = next_token
                if token is None:
                    report.completed = True
                    break
                if max_pages is not None and report.n_pages >= max_pages:
                    break
    except BaseException:
        store.con.execute(
            "UPDATE import_runs SET status = 'failed', finished = ? WHERE run_id = ?",
            [_now(), report.run_id],
        )
        raise
    finally:
        if own_client:
            client.close()
    status = "completed" if report.completed else "interrupted"
    store.con.execute(
        "UPDATE import_runs SET status = ?, finished = ?, checkpoint = ?, n_problems = ("
        "SELECT count(*) FROM import_problems WHERE run_id = ?) WHERE run_id = ?",
        [status, _now(), None if report.completed else token, report.run_id, report.run_id],
    )
    report.seconds = time.perf_counter() - started
    return report


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _open_run(store, source: str, query_json: dict, resume: bool) -> tuple[FetchReport, str | None, int]:
    """Start a run, or resume the last unfinished one of the same query from its checkpoint."""
    row = None
    if resume:
        row = store.con.execute(
            "SELECT run_id, checkpoint, total_count, as_of, n_ok FROM import_runs WHERE kind = 'api'"
            " AND source = ? AND status <> 'completed' AND checkpoint IS NOT NULL ORDER BY started DESC LIMIT 1",
            [source],
        ).fetchone()
    if row is not None:
        run_id, token, total, as_of, done = row
        store.con.execute("UPDATE import_runs SET status = 'running' WHERE run_id = ?", [run_id])
        report = FetchReport(run_id=run_id, source=source, as_of=as_of, total_count=total, resumed=True)
        return report, token, done or 0
    as_of = dt.datetime.now(dt.UTC).date()
    run_id = store._start_run(kind="api", source=source, fmt="ctgov_api", query=query_json, as_of=as_of)
    return FetchReport(run_id=run_id, source=source, as_of=as_of), None, 0


def _store_page(store, report: FetchReport, studies: list, next_token: str | None, source: str) -> int:
    """Upsert one page and move the checkpoint, in one transaction."""
    page = report.n_pages
    records: list[ImportedRecord] = []
    problems: list[ImportProblem] = []
    for i, study in enumerate(studies, start=1):
        location = f"page {page} study {i}"
        if not _encodable(study):
            problems.append(ImportProblem(source=source, location=location, reason="text holds an unpaired UTF-16 surrogate"))
            continue
        bad: list[FieldError] = []
        try:
            trial = study_to_trial(study, source_format="ctgov_api", problems=bad)
        except FieldError as err:
            problems.append(
                ImportProblem(source=source, location=location, field=err.field, reason=err.reason, registry_id=err.registry_id)
            )
            continue
        problems.extend(  # the bad fields are left empty; the study is kept
            ImportProblem(source=source, location=location, field=e.field, reason=e.reason, registry_id=e.registry_id,
                          action=FIELD_EMPTIED)
            for e in bad
        )
        records.append(ImportedRecord(trial, study, source, location))
    report.n_studies += len(studies)
    report.problems.extend(problems)

    def checkpoint(con) -> None:
        store._write_problems(report.run_id, problems)
        con.execute(
            "UPDATE import_runs SET checkpoint = ?, total_count = ? WHERE run_id = ?",
            [next_token, report.total_count, report.run_id],
        )

    _, written = store._upsert(
        records,
        source=source,
        as_of=report.as_of,
        run_id=report.run_id,
        batch_size=len(records) + 1,
        checkpoint=checkpoint,
        problems=report.problems,
    )
    return written
