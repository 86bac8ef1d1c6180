"""Screening in the browser: two or more named reviewers over the literature store (``--review``).

The order is ``literature screen``'s: the records are loaded, the criteria profile applied and
the TF-IDF features built once by :class:`~neuromodmap.literature.screening.ScreeningSession`
(kept in memory while the store's records do not change), and each reviewer's next record is
the one the active-learning model, refit on *that reviewer's own* votes, rates most likely
relevant (``maybe`` counts as relevant, so a doubtful record pulls similar ones forward).
Votes, conflicts, resolutions and agreement are :mod:`neuromodmap.literature.team`; the
statistical stopping rule is :mod:`neuromodmap.literature.stopping`; the PRISMA counts are
:func:`neuromodmap.literature.prisma.prisma_flow`'s.

Pages: ``/screening`` (team overview; ``?reviewer=NAME`` screens), ``/screening/conflicts``.
JSON twins under ``/api/screening/``; see docs/webapp_screening.md.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, Field

from neuromodmap.literature import team
from neuromodmap.literature.criteria import PROFILES, CriteriaError, load_profile
from neuromodmap.literature.records import Record
from neuromodmap.literature.screening import ScreeningSession, latest_decisions
from neuromodmap.literature.stopping import STOPPING_CITATION, StopCheck, check_stop
from neuromodmap.literature.store import load_dedup
from neuromodmap.webapp.app import render, stores

__all__ = ["router", "engine_for", "wait_for_refits"]

router = APIRouter()
_RELEVANT = ("include", "maybe")


# ------------------------------------------------------------------------------------ engine
@dataclass
class _Ranked:
    """A finished ranking: the votes it was fit on (``key``: count, last vote id; ``generation``: when
    those votes were read), the unscreened records best first, and the record ids voted then."""

    generation: int
    key: tuple
    order: list[int]
    voted: frozenset[str]


@dataclass
class _Engine:
    """The screening session of one store, built once: records, criteria, features."""

    fingerprint: tuple
    session: ScreeningSession | None
    profile_name: str
    message: str = ""
    #: reviewer -> the latest finished ranking: (key of the votes it was fit on, order, voted record ids)
    rankings: dict[str, _Ranked] = field(default_factory=dict)
    #: reviewer -> the newest votes waiting for a background refit; ``refitting``: reviewers with a refit thread
    pending: dict[str, tuple[int, tuple, list]] = field(default_factory=dict)
    refitting: dict[str, threading.Thread] = field(default_factory=dict)
    generation: int = 0
    stops: dict[str, tuple[tuple, StopCheck]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def n_eligible(self) -> int:
        return len(self.session.records) if self.session else 0

    def record(self, record_id: str) -> Record | None:
        if self.session is None:
            return None
        i = self.session._index.get(record_id)
        return None if i is None else self.session.records[i]


_ENGINES: dict[str, _Engine] = {}
_BUILD = threading.Lock()


_FINGERPRINT = (
    "SELECT (SELECT count(*) FROM literature_records), (SELECT max(imported_at) FROM literature_imports),"
    " (SELECT max(run_at) FROM literature_runs WHERE step = 'dedup'),"
    " (SELECT value FROM literature_screening_settings WHERE key = 'profile')")


def _prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table the screening pages read (a write connection)."""
    team.init_team(con)
    load_dedup(con)  # creates the de-duplication tables and literature_runs when missing


def _fingerprint(con: duckdb.DuckDBPyConnection) -> tuple:
    """What the session depends on: the records, the last import and de-duplication, the profile setting.

    One query, so that a read-only request checks it cheaply (the tables exist once a session was built).
    """
    return tuple(con.execute(_FINGERPRINT).fetchone())


def _profile_name(con: duckdb.DuckDBPyConnection) -> str:
    """The team's profile setting, else the profile of the stored criteria decisions, else ``default``."""
    chosen = team.get_setting(con, "profile")
    if chosen:
        return chosen
    row = con.execute("SELECT profile FROM literature_decisions WHERE stage = 'criteria' "
                      "ORDER BY decision_id DESC LIMIT 1").fetchone()
    return row[0] if row and row[0] in PROFILES else "default"


def engine_for(con: duckdb.DuckDBPyConnection, key: str) -> _Engine:
    """The cached session for the store at ``key`` (``con``: a write connection in a transaction).

    Rebuilt when records were imported or de-duplicated since, or the profile setting changed.
    Building applies the criteria (stored as automatic exclusions, as ``literature screen`` does).
    """
    engine = _ENGINES.get(key)
    if engine is not None:  # its tables exist: one query tells whether it is current
        try:
            fingerprint = _fingerprint(con)
        except duckdb.CatalogException:  # the file was replaced under the app
            _ENGINES.pop(key, None)
            raise HTTPException(409, "the review store changed under the app (a table is missing); "
                                     "reload the page") from None
        if engine.fingerprint == fingerprint:
            return engine
    _prepare(con)
    fingerprint = _fingerprint(con)
    with _BUILD:
        engine = _ENGINES.get(key)
        if engine is not None and engine.fingerprint == fingerprint:
            return engine
        profile = _profile_name(con)
        try:
            prof = load_profile(profile)
        except CriteriaError as exc:
            raise HTTPException(400, str(exc)) from None
        # ScreeningSession stores the criteria in a transaction of its own (as the CLI does), so
        # the request's transaction is committed first and a new one begun after
        con.execute("COMMIT")
        try:
            session = ScreeningSession(con, prof)
            message = ""
        except ValueError as exc:  # no records imported yet
            session, message = None, str(exc)
        finally:
            con.execute("BEGIN TRANSACTION")
        if session is not None:
            session.con = None  # never kept: every request opens the store anew
            if not session.records:
                message = "no record passes the eligibility criteria; nothing to screen"
        engine = _Engine(fingerprint=_fingerprint(con), session=session if session and session.records else None,
                         profile_name=prof.name, message=message)
        _ENGINES[key] = engine
        return engine


@contextlib.contextmanager
def _session(request: Request, *, write: bool = False) -> Iterator[tuple[_Engine, duckdb.DuckDBPyConnection]]:
    """The engine and a connection: read-only when the engine is built and current and ``write`` is
    False (one query checks it), else a write transaction (which builds the engine when needed)."""
    key = str(stores(request).path("review").resolve())
    engine = _ENGINES.get(key)
    if engine is not None and not write:
        with stores(request).read("review") as con:
            try:
                current = _fingerprint(con) == engine.fingerprint
            except duckdb.CatalogException:
                current = False
            if current:
                yield engine, con
        if current:
            return
    with stores(request).write("review") as con:
        yield engine_for(con, key), con


#: Refit the reviewer's model in a background thread after a vote (False: refit in the request, as before).
BACKGROUND_REFIT = True


def _fit(engine: _Engine, rows: list) -> list[int]:
    decided = pd.DataFrame(rows, columns=["vote_id", "record_id", "decision"])
    return engine.session.rank_decided(decided, relevant=_RELEVANT)


def _store(engine: _Engine, reviewer: str, ranked: _Ranked) -> None:
    """Keep ``ranked`` unless a ranking fit on newer votes is already there (``engine.lock`` held)."""
    current = engine.rankings.get(reviewer)
    if current is None or current.generation < ranked.generation:
        engine.rankings[reviewer] = ranked


def _refit_worker(engine: _Engine, reviewer: str) -> None:
    """Refit on the newest pending votes until none are pending (one thread per reviewer).

    Uses no store connection: the votes were read by the request, the model is the session's in
    memory, so the per-request DuckDB connections are never shared with this thread.
    """
    while True:
        with engine.lock:
            job = engine.pending.pop(reviewer, None)
            if job is None:
                engine.refitting.pop(reviewer, None)
                return
        generation, key, rows = job
        try:
            order = _fit(engine, rows)
        except Exception:  # noqa: BLE001 - a failed refit leaves the older ranking; the next request retries
            import logging

            logging.getLogger(__name__).exception("screening refit for %s failed", reviewer)
            with engine.lock:
                engine.refitting.pop(reviewer, None)
            return
        with engine.lock:
            _store(engine, reviewer, _Ranked(generation, key, order, frozenset(r[1] for r in rows)))


def wait_for_refits(timeout: float = 60.0) -> bool:
    """Block until no background refit runs (tests, benchmarks); False if one still runs at ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        threads = [t for engine in list(_ENGINES.values()) for t in list(engine.refitting.values())]
        if not threads:
            return True
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            return not any(engine.refitting for engine in list(_ENGINES.values()))


def _ranking(engine: _Engine, con, reviewer: str) -> tuple[list[int], int, int, int, bool]:
    """The reviewer's unscreened records, best first; their count of votes, of relevant votes, the
    count of votes the ranking was fit on, and whether it was fit on the reviewer's current votes.

    A ranking fit on other votes than the reviewer's current ones is served at once with the records
    voted since left out (so a record is never shown twice), while a background thread refits the
    model on the newest votes (ASReview LAB's way); only the first ranking is fit in the request.
    Records whose vote the reviewer withdrew (undo) and has not cast again come first, the most
    recently withdrawn first, so that undo shows the record again.
    """
    rows = con.execute(
        "SELECT vote_id, record_id, decision FROM ("
        " SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY vote_id DESC) AS k"
        " FROM literature_screening_votes WHERE undone_at IS NULL AND reviewer = ?) WHERE k = 1 ORDER BY vote_id",
        [reviewer]).fetchall()
    index = engine.session._index
    rows = [row for row in rows if row[1] in index]
    key = (len(rows), rows[-1][0] if rows else 0)
    voted = frozenset(row[1] for row in rows)
    withdrawn = [index[r] for (r,) in con.execute(
        "SELECT record_id FROM literature_screening_votes WHERE undone_at IS NOT NULL AND reviewer = ?"
        " GROUP BY record_id ORDER BY max(undone_at) DESC, max(vote_id) DESC", [reviewer]).fetchall()
        if r in index and r not in voted]
    with engine.lock:
        engine.generation += 1
        generation = engine.generation
        cached = engine.rankings.get(reviewer)
        fresh = cached is not None and cached.key == key
        if cached is not None and not fresh and BACKGROUND_REFIT:
            engine.pending[reviewer] = (generation, key, rows)  # the newest votes win
            if reviewer not in engine.refitting:
                thread = threading.Thread(target=_refit_worker, args=(engine, reviewer), daemon=True,
                                          name=f"screening-refit-{reviewer}")
                engine.refitting[reviewer] = thread
                thread.start()
    if cached is None or (not fresh and not BACKGROUND_REFIT):
        ranked = _Ranked(generation, key, _fit(engine, rows), voted)
        with engine.lock:
            _store(engine, reviewer, ranked)
        cached, fresh = ranked, True
    n_relevant = sum(row[2] in _RELEVANT for row in rows)
    skip = {index[r] for r in voted - cached.voted} | set(withdrawn)
    order = withdrawn + [i for i in cached.order if i not in skip] if skip else cached.order
    return order, len(rows), n_relevant, len(cached.voted), fresh


def _stop_check(engine: _Engine, con, reviewer: str, recall_target: float) -> tuple[StopCheck, int]:
    """The statistical rule's verdict on the reviewer's votes, and their irrelevant votes in a row at the end."""
    votes = team.reviewer_votes(con, reviewer)
    votes = votes[votes["record_id"].isin(engine.session._index)]
    key = (len(votes), int(votes["vote_id"].max()) if len(votes) else 0, recall_target)
    cached = engine.stops.get(reviewer)
    if cached is None or cached[0] != key:
        labels = votes["decision"].isin(_RELEVANT).to_numpy(dtype=int)
        streak = len(labels) - (int(np.flatnonzero(labels)[-1]) + 1 if labels.any() else 0)
        cached = (key, (check_stop(labels, engine.n_eligible, recall_target=recall_target), streak))
        engine.stops[reviewer] = cached
    return cached[1]


# ------------------------------------------------------------------------------------ views
def _reviewer(name: str | None) -> str:
    try:
        return team.valid_reviewer(name or "")
    except team.ReviewerError as exc:
        raise HTTPException(422, str(exc)) from None


def highlight(text: str, pattern: re.Pattern[str] | None) -> Markup:
    """``text`` escaped, with every review-question term in ``<mark>``."""
    if not text:
        return Markup("")
    if pattern is None:
        return escape(text)
    out, last = [], 0
    for match in pattern.finditer(text):
        if match.end() == match.start():
            continue
        out.append(escape(text[last:match.start()]))
        out.append(Markup('<mark class="nm-ev">') + escape(match.group(0)) + Markup("</mark>"))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def _record_json(record: Record) -> dict:
    return {"record_id": record.record_id, "title": record.title, "abstract": record.abstract,
            "authors": record.authors, "year": record.year, "journal": record.journal, "doi": record.doi,
            "pmid": record.pmid, "keywords": record.keywords, "source_database": record.source_database,
            "volume": record.volume, "pages": record.pages}


def _criteria(engine: _Engine) -> dict:
    prof = engine.session.profile
    return {"profile": prof.name, "description": prof.description, "question": prof.question,
            "years": [str(prof.years.start or ""), str(prof.years.end or "")], "languages": prof.languages,
            "include_study_types": prof.include_study_types,
            "exclusions": [rule.reason for rule in prof.exclude.values()],
            "methods": prof.methods_sentence()}


def _next_payload(engine: _Engine, con, reviewer: str) -> dict:
    order, n_voted, n_relevant, ranked_on, current = _ranking(engine, con, reviewer)
    record = engine.session.records[order[0]] if order else None
    return {"reviewer": reviewer, "record": _record_json(record) if record else None,
            "progress": {"n_eligible": engine.n_eligible, "n_screened": n_voted, "n_relevant": n_relevant,
                         "n_left": len(order)},
            "ranking": {"ranking_votes": ranked_on, "votes": n_voted, "current": current}}


def _prisma(con) -> dict:
    from neuromodmap.literature.prisma import prisma_flow

    try:
        flow = prisma_flow(con)
    except ValueError as exc:
        return {"error": str(exc)}
    frame = flow.to_frame()
    return {"rows": [{"stage": s, "count": c, "n": None if pd.isna(n) else int(n), "source": src}
                     for s, c, n, src in frame.itertuples(index=False)],
            "records_screened": flow.records_screened, "records_excluded": flow.records_excluded,
            "records_awaiting_screening": flow.records_awaiting_screening,
            "reports_sought": flow.reports_sought}


def _status(engine: _Engine, con, reviewer: str | None) -> dict:
    """Team status: each reviewer's progress and stopping verdict, agreement, conflicts, PRISMA."""
    target = float(team.get_setting(con, "recall_target"))
    required = int(team.get_setting(con, "required_reviewers"))
    votes = team.all_votes(con)
    names = sorted(set(votes["reviewer"]) | ({reviewer} if reviewer else set()))
    reviewers = []
    heuristic = engine.session.profile.stopping.irrelevant_in_a_row
    for name in names:
        check, streak = _stop_check(engine, con, name, target)
        reviewers.append({"reviewer": name, **check.to_dict(), "irrelevant_in_a_row": streak,
                          "profile_rule_met": bool(heuristic and streak >= heuristic)})
    # the team may stop when at least the required number of reviewers have screened and each one's
    # rule says stop
    team_stop = len(reviewers) >= required and all(r["stop"] for r in reviewers)
    open_conflicts = team.conflicts(con)
    finals = latest_decisions(con, "title_abstract")
    finals = finals[finals["record_id"].isin(engine.session._index)]
    if not reviewers:
        why = "nobody has screened yet"
    elif len(reviewers) < required:
        why = f"{len(reviewers)} of the {required} reviewers needed have screened"
    else:
        why = "; ".join(f"{r['reviewer']}: {'stop' if r['stop'] else 'go on'} ({r['why']})" for r in reviewers)
    return {
        "recall_target": target, "required_reviewers": required, "n_eligible": engine.n_eligible,
        "profile_rule": {"irrelevant_in_a_row": heuristic,
                         "note": "the profile's heuristic rule (as `literature screen`); it does not estimate recall"},
        "profile": engine.profile_name,
        "stop": {"stop": team_stop, "recall_target": target, "why": why,
                 "rule": "hypergeometric stopping rule (Callaghan & Müller-Hansen 2020), every reviewer",
                 "citation": STOPPING_CITATION},
        "reviewers": reviewers,
        "agreement": team.agreement(con),
        "conflicts_open": len(open_conflicts),
        "final_decisions": {"include": int((finals["decision"] == "include").sum()),
                            "exclude": int((finals["decision"] == "exclude").sum())},
        "prisma": _prisma(con),
    }


def _no_session(engine: _Engine) -> None:
    if engine.session is None:
        raise HTTPException(409, engine.message or "nothing to screen")


# ------------------------------------------------------------------------------------ API
class Vote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record_id: str = Field(min_length=1, max_length=200)
    reviewer: str = Field(min_length=1, max_length=40)
    decision: Literal["include", "exclude", "maybe"]
    reason: str = Field(default="", max_length=500)


class Undo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: str = Field(min_length=1, max_length=40)


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["include", "exclude"]
    reviewer: str = Field(min_length=1, max_length=40)
    note: str = Field(default="", max_length=500)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    required_reviewers: int | None = Field(default=None, ge=1, le=10)
    recall_target: float | None = Field(default=None, ge=0.5, lt=1)
    profile: Literal["default", "pain", "depression"] | None = None


@router.get("/api/screening/next", tags=["screening"])
def api_next(request: Request, reviewer: str = Query(..., max_length=40)) -> dict:
    """The reviewer's next record (most likely relevant by their own votes) and their progress."""
    name = _reviewer(reviewer)
    with _session(request) as (engine, con):
        _no_session(engine)
        return _next_payload(engine, con, name)


@router.post("/api/screening/decisions", tags=["screening"])
def api_decide(request: Request, vote: Vote) -> dict:
    """Store a vote (include / exclude / maybe) with the reviewer's name and the time."""
    name = _reviewer(vote.reviewer)
    with _session(request, write=True) as (engine, con):
        _no_session(engine)
        if vote.record_id not in engine.session._index:
            raise HTTPException(404, f"record {vote.record_id!r} is not eligible for screening in this review")
        state = team.cast_vote(con, vote.record_id, name, vote.decision, reason=vote.reason,
                               profile=engine.profile_name, atomic=False, prepared=True)
        return {"record_id": vote.record_id, "reviewer": name, "decision": vote.decision, "state": state}


@router.post("/api/screening/undo", tags=["screening"])
def api_undo(request: Request, body: Undo) -> dict:
    """Withdraw the reviewer's latest vote (kept in the audit trail with the time it was withdrawn)."""
    name = _reviewer(body.reviewer)
    with _session(request, write=True) as (engine, con):
        undone = team.undo_vote(con, name, profile=engine.profile_name, atomic=False)
    if undone is None:
        raise HTTPException(409, f"{name} has no vote to undo")
    return {"undone": undone, "reviewer": name}


@router.get("/api/screening/status", tags=["screening"])
def api_status(request: Request, reviewer: str | None = Query(None, max_length=40)) -> dict:
    """Progress, stopping rule, agreement (Cohen's kappa, percent), open conflicts and PRISMA counts."""
    name = _reviewer(reviewer) if reviewer else None
    with _session(request, write=True) as (engine, con):
        _no_session(engine)
        return _status(engine, con, name)


@router.get("/api/screening/agreement", tags=["screening"])
def api_agreement(request: Request) -> dict:
    """Cohen's kappa and percent agreement for each pair of reviewers, on the records both screened."""
    with stores(request).write("review") as con:
        team.init_team(con)
        return {"pairs": team.agreement(con)}


@router.get("/api/screening/conflicts", tags=["screening"])
def api_conflicts(request: Request, resolved: bool = False) -> dict:
    """Records the reviewers disagree on; ``resolved=true`` lists the resolved ones too."""
    with stores(request).write("review") as con:
        team.init_team(con)
        frame = team.conflicts(con, include_resolved=resolved)
        return {"total": len(frame), "items": frame.to_dict("records")}


@router.post("/api/screening/conflicts/{record_id}/resolve", tags=["screening"])
def api_resolve(request: Request, record_id: str, body: Resolution) -> dict:
    """The final decision on a conflict, with who made it and why."""
    name = _reviewer(body.reviewer)
    with _session(request, write=True) as (engine, con):
        listed = set(team.conflicts(con, include_resolved=True)["record_id"])
        if record_id not in listed:
            raise HTTPException(404, f"record {record_id!r} is not a conflict")
        team.resolve_conflict(con, record_id, body.decision, name, note=body.note, profile=engine.profile_name)
    return {"record_id": record_id, "decision": body.decision, "resolved_by": name}


@router.get("/api/screening/records/{record_id}", tags=["screening"])
def api_record(request: Request, record_id: str) -> dict:
    """One record with every vote on it (including withdrawn ones) and the team's decision."""
    with _session(request) as (engine, con):
        _no_session(engine)
        record = engine.record(record_id)
        if record is None:
            raise HTTPException(404, f"record {record_id!r} is not eligible for screening in this review")
        votes = con.execute(
            "SELECT reviewer, decision, reason, decided_at, undone_at FROM literature_screening_votes "
            "WHERE record_id = ? ORDER BY vote_id", [record_id]).df()
        final = con.execute(
            "SELECT decision, method, reviewer, reason, decided_at FROM literature_decisions "
            "WHERE record_id = ? AND stage = 'title_abstract' ORDER BY decision_id DESC LIMIT 1", [record_id]).df()
    for frame in (votes, final):
        for col in ("decided_at", "undone_at"):
            if col in frame:
                frame[col] = frame[col].astype(str).replace({"NaT": None, "None": None})
    return {"record": _record_json(record), "votes": votes.to_dict("records"),
            "decision": final.to_dict("records")[0] if len(final) else None}


@router.get("/api/screening/settings", tags=["screening"])
def api_settings(request: Request) -> dict:
    with stores(request).write("review") as con:
        team.init_team(con)
        return {key: team.get_setting(con, key) for key in ("required_reviewers", "recall_target", "profile")}


class Stop(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: str = Field(min_length=1, max_length=40)


@router.post("/api/screening/stop", tags=["screening"])
def api_stop(request: Request, body: Stop) -> dict:
    """Record that title/abstract screening ends by the stopping rule (read by the PRISMA flow).

    Refused (409) unless the team's rule says stop. From then on PRISMA counts the records left
    unscreened as excluded by the stopping rule, naming the rule and its recall target; any later
    team decision voids the stop (as with ``literature screen``).
    """
    import datetime as dt

    name = _reviewer(body.reviewer)
    with _session(request, write=True) as (engine, con):
        _no_session(engine)
        status = _status(engine, con, None)
        if not status["stop"]["stop"]:
            raise HTTPException(409, "the stopping rule is not met: " + status["stop"]["why"])
        target = status["recall_target"]
        description = (f"hypergeometric stopping rule (Callaghan & Müller-Hansen 2020) met by every reviewer "
                       f"({', '.join(r['reviewer'] for r in status['reviewers'])}), p < 0.05")
        decided = status["final_decisions"]["include"] + status["final_decisions"]["exclude"]
        last = con.execute("SELECT max(decision_id) FROM literature_decisions "
                           "WHERE stage = 'title_abstract'").fetchone()[0]
        con.execute("INSERT INTO literature_stops VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [dt.datetime.now(dt.UTC).replace(tzinfo=None), engine.profile_name, "hypergeometric",
                     description, target, engine.n_eligible, decided, name, last])
        prisma = _prisma(con)
    return {"recorded": True, "rule": "hypergeometric", "description": description, "recall_target": target,
            "prisma": prisma}


@router.post("/api/screening/settings", tags=["screening"])
def api_set_settings(request: Request, body: Settings) -> dict:
    """Reviewers needed per record, the recall target of the stopping rule, the criteria profile."""
    with stores(request).write("review") as con:
        team.init_team(con)
        for key, value in body.model_dump(exclude_none=True).items():
            try:
                team.set_setting(con, key, str(value))
            except team.ReviewerError as exc:
                raise HTTPException(422, str(exc)) from None
        return {key: team.get_setting(con, key) for key in ("required_reviewers", "recall_target", "profile")}


# ------------------------------------------------------------------------------------ pages
@router.get("/screening", response_class=HTMLResponse, include_in_schema=False)
def page_screening(request: Request, reviewer: str | None = Query(None, max_length=40)):
    name = _reviewer(reviewer) if reviewer else None
    with _session(request, write=True) as (engine, con):
        if engine.session is None:
            return render(request, "screening/empty.html", {"message": engine.message}, nav="screening")
        status = _status(engine, con, name)
        context = {"reviewer": name, "status": status, "criteria": _criteria(engine)}
        if name:
            payload = _next_payload(engine, con, name)
            context["next"] = payload
            record = engine.record(payload["record"]["record_id"]) if payload["record"] else None
            context["record"] = record
            context["hl"] = lambda text: highlight(text, engine.session.topic)
    return render(request, "screening/index.html", context, nav="screening")


@router.get("/screening/fragment/record", response_class=HTMLResponse, include_in_schema=False)
def fragment_record(request: Request, reviewer: str = Query(..., max_length=40)):
    name = _reviewer(reviewer)
    with _session(request) as (engine, con):
        _no_session(engine)
        payload = _next_payload(engine, con, name)
        record = engine.record(payload["record"]["record_id"]) if payload["record"] else None
    return render(request, "screening/_record.html", {"reviewer": name, "next": payload, "record": record,
                                                      "hl": lambda text: highlight(text, engine.session.topic)})


@router.get("/screening/fragment/status", response_class=HTMLResponse, include_in_schema=False)
def fragment_status(request: Request, reviewer: str | None = Query(None, max_length=40)):
    name = _reviewer(reviewer) if reviewer else None
    with _session(request, write=True) as (engine, con):
        _no_session(engine)
        status = _status(engine, con, name)
    return render(request, "screening/_status.html", {"reviewer": name, "status": status})


@router.get("/screening/conflicts", response_class=HTMLResponse, include_in_schema=False)
def page_conflicts(request: Request, reviewer: str | None = Query(None, max_length=40)):
    name = _reviewer(reviewer) if reviewer else None
    with _session(request, write=True) as (engine, con):
        _no_session(engine)
        frame = team.conflicts(con, include_resolved=True)
        items = []
        for row in frame.to_dict("records"):
            record = engine.record(row["record_id"])
            items.append({**row, "record": record})
    def hl(text: str) -> Markup:
        return highlight(text, engine.session.topic)

    return render(request, "screening/conflicts.html", {"items": items, "reviewer": name, "hl": hl},
                  nav="screening")

