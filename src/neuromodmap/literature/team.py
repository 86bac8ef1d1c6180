"""Screening as a team: independent votes by named reviewers, conflicts, resolution, agreement.

Each reviewer screens on their own (their votes are the ``include``, ``exclude`` or ``maybe``
rows of ``literature_screening_votes``, with the reviewer's name and the time). Votes never
overwrite each other, and an undo keeps the vote with the time it was withdrawn
(``undone_at``), so the table is the audit trail.

The team's decision on a record, the one PRISMA counts, is written to
``literature_decisions`` (stage ``title_abstract``) as before:

- when the required number of reviewers (``required_reviewers``, default 2) have voted and
  all said ``include`` or all said ``exclude``: method ``dual_screening``;
- otherwise (they differ, or one said ``maybe``) the record is a *conflict* until someone
  resolves it: method ``conflict_resolution``, with the resolver's name and note.

Agreement between each pair of reviewers, on the records both voted on: percent agreement
and Cohen's kappa (scikit-learn's ``cohen_kappa_score``) over the three categories.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import re

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from neuromodmap.literature.screening import init_decisions, latest_decisions, record_decision

__all__ = ["VOTES", "init_team", "cast_vote", "undo_vote", "reviewer_votes", "all_votes", "conflicts",
           "resolve_conflict", "agreement", "get_setting", "set_setting", "valid_reviewer", "ReviewerError"]

VOTES = ("include", "exclude", "maybe")
AGREED_METHOD = "dual_screening"
RESOLVED_METHOD = "conflict_resolution"
_REVIEWER = re.compile(r"[\w][\w .'-]{0,39}", re.UNICODE)
_DEFAULTS = {"required_reviewers": "2", "recall_target": "0.95", "profile": ""}


class ReviewerError(ValueError):
    """A reviewer name, vote or setting that cannot be stored."""


def valid_reviewer(name: str) -> str:
    """A reviewer's name, trimmed: 1-40 letters, digits, spaces, dots, apostrophes or hyphens."""
    name = (name or "").strip()
    if not _REVIEWER.fullmatch(name):
        raise ReviewerError(f"reviewer name {name[:60]!r} is not valid: use 1-40 letters, digits, spaces, "
                            "'.', \"'\" or '-'")
    return name


@contextlib.contextmanager
def _atomic(con: duckdb.DuckDBPyConnection, atomic: bool):
    """One transaction; ``atomic=False`` when the caller has begun one (e.g. the web app)."""
    if not atomic:
        yield
        return
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def init_team(con: duckdb.DuckDBPyConnection) -> None:
    """Create the team tables if missing (a store from before team screening is upgraded in place)."""
    init_decisions(con)
    con.execute("CREATE SEQUENCE IF NOT EXISTS literature_vote_seq")
    con.execute(
        """CREATE TABLE IF NOT EXISTS literature_screening_votes (
            vote_id BIGINT DEFAULT nextval('literature_vote_seq'), record_id VARCHAR, reviewer VARCHAR,
            decision VARCHAR, reason VARCHAR, profile VARCHAR, decided_at TIMESTAMP, undone_at TIMESTAMP)""")
    con.execute("CREATE TABLE IF NOT EXISTS literature_screening_settings (key VARCHAR PRIMARY KEY, value VARCHAR)")


def get_setting(con: duckdb.DuckDBPyConnection, key: str) -> str:
    if key not in _DEFAULTS:
        raise ReviewerError(f"unknown setting {key!r}; one of {', '.join(_DEFAULTS)}")
    row = con.execute("SELECT value FROM literature_screening_settings WHERE key = ?", [key]).fetchone()
    return row[0] if row else _DEFAULTS[key]


def set_setting(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    if key not in _DEFAULTS:
        raise ReviewerError(f"unknown setting {key!r}; one of {', '.join(_DEFAULTS)}")
    if key == "required_reviewers" and not (str(value).isdigit() and 1 <= int(value) <= 10):
        raise ReviewerError("required_reviewers must be a whole number from 1 to 10")
    if key == "recall_target":
        try:
            target = float(value)
        except ValueError:
            target = -1.0
        if not 0.5 <= target < 1:
            raise ReviewerError("recall_target must be a number from 0.5 to below 1 (e.g. 0.95)")
    con.execute("INSERT OR REPLACE INTO literature_screening_settings VALUES (?, ?)", [key, str(value)])


def all_votes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every reviewer's standing vote per record (the latest not undone), in voting order."""
    return con.execute(
        "SELECT vote_id, record_id, reviewer, decision, reason, decided_at FROM ("
        " SELECT *, row_number() OVER (PARTITION BY record_id, reviewer ORDER BY vote_id DESC) AS k"
        " FROM literature_screening_votes WHERE undone_at IS NULL) WHERE k = 1 ORDER BY vote_id").df()


def reviewer_votes(con: duckdb.DuckDBPyConnection, reviewer: str) -> pd.DataFrame:
    """One reviewer's standing votes (``record_id``, ``decision``), in the order they were cast."""
    return con.execute(
        "SELECT vote_id, record_id, decision FROM ("
        " SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY vote_id DESC) AS k"
        " FROM literature_screening_votes WHERE undone_at IS NULL AND reviewer = ?) WHERE k = 1 ORDER BY vote_id",
        [reviewer]).df()


def _record_votes(con, record_id: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT reviewer, decision FROM ("
        " SELECT *, row_number() OVER (PARTITION BY reviewer ORDER BY vote_id DESC) AS k"
        " FROM literature_screening_votes WHERE undone_at IS NULL AND record_id = ?) WHERE k = 1",
        [record_id]).fetchall()
    return dict(rows)


def _latest_final(con, record_id: str) -> tuple[int, str, str] | None:
    return con.execute(
        "SELECT decision_id, decision, method FROM literature_decisions WHERE stage = 'title_abstract' "
        "AND record_id = ? ORDER BY decision_id DESC LIMIT 1", [record_id]).fetchone()


def _settle(con, record_id: str, required: int, profile: str) -> str:
    """Write or withdraw the team's decision on one record after its votes changed.

    Returns ``agreed``, ``conflict``, ``waiting`` or ``resolved``.
    """
    final = _latest_final(con, record_id)
    if final is not None and final[2] == RESOLVED_METHOD:
        return "resolved"  # a resolution stands whatever the votes do later
    votes = _record_votes(con, record_id)
    agreed = None
    if len(votes) >= required and len(set(votes.values())) == 1 and next(iter(votes.values())) != "maybe":
        agreed = next(iter(votes.values()))
    if final is not None and final[2] == AGREED_METHOD and (agreed is None or final[1] != agreed):
        con.execute("DELETE FROM literature_decisions WHERE decision_id = ?", [final[0]])
        final = None
    if agreed is not None:
        if final is None or final[2] != AGREED_METHOD:
            names = ", ".join(sorted(votes))
            record_decision(con, record_id, "title_abstract", agreed, method=AGREED_METHOD, reviewer=names,
                            reason=f"{agreed}d by {names}",
                            profile=profile)
        return "agreed"
    if len(votes) >= 2 and len(set(votes.values())) > 1 or (len(votes) >= required and "maybe" in votes.values()):
        return "conflict"
    return "waiting"


def cast_vote(con: duckdb.DuckDBPyConnection, record_id: str, reviewer: str, decision: str, *,
              reason: str = "", profile: str = "", atomic: bool = True, prepared: bool = False) -> str:
    """Store one reviewer's vote at once and settle the record; returns its state.

    The state is ``agreed`` (the team's decision was written), ``conflict``, ``waiting`` (for
    more reviewers) or ``resolved`` (a resolution already decided it). The vote and the team's
    decision are one transaction (``atomic=False``: the caller's open transaction).
    ``prepared=True``: the caller has made the tables and checked the record id.
    """
    reviewer = valid_reviewer(reviewer)
    if decision not in VOTES:
        raise ReviewerError(f"unknown decision {decision!r}; one of {', '.join(VOTES)}")
    if not prepared:
        init_team(con)
        known = con.execute("SELECT count(*) FROM literature_records WHERE record_id = ?", [record_id]).fetchone()[0]
        if not known:
            raise KeyError(f"no record {record_id!r} in the review store")
    required = int(get_setting(con, "required_reviewers"))
    with _atomic(con, atomic):
        con.execute(
            "INSERT INTO literature_screening_votes (record_id, reviewer, decision, reason, profile, decided_at)"
            " VALUES (?, ?, ?, ?, ?, ?)", [record_id, reviewer, decision, (reason or "")[:500], profile, _now()])
        state = _settle(con, record_id, required, profile)
    return state


def undo_vote(con: duckdb.DuckDBPyConnection, reviewer: str, *, profile: str = "",
              atomic: bool = True) -> str | None:
    """Withdraw the reviewer's latest standing vote (kept, marked ``undone_at``); returns its record id."""
    reviewer = valid_reviewer(reviewer)
    init_team(con)
    row = con.execute(
        "SELECT vote_id, record_id FROM literature_screening_votes WHERE reviewer = ? AND undone_at IS NULL "
        "ORDER BY vote_id DESC LIMIT 1", [reviewer]).fetchone()
    if row is None:
        return None
    required = int(get_setting(con, "required_reviewers"))
    with _atomic(con, atomic):
        con.execute("UPDATE literature_screening_votes SET undone_at = ? WHERE vote_id = ?", [_now(), row[0]])
        _settle(con, row[1], required, profile)
    return row[1]


def conflicts(con: duckdb.DuckDBPyConnection, *, include_resolved: bool = False) -> pd.DataFrame:
    """Records the reviewers disagree on (or marked ``maybe``): one row per record.

    Columns ``record_id``, ``votes`` (reviewer -> decision), ``resolved`` (the resolution's
    decision or None), ``resolved_by``, ``note``.
    """
    init_team(con)
    required = int(get_setting(con, "required_reviewers"))
    votes = all_votes(con)
    finals = latest_decisions(con, "title_abstract")
    resolved = finals[finals["method"] == RESOLVED_METHOD].set_index("record_id")
    rows = []
    for record_id, group in votes.groupby("record_id", sort=False):
        decisions = dict(zip(group["reviewer"], group["decision"], strict=True))
        disagree = len(decisions) >= 2 and len(set(decisions.values())) > 1
        maybe = len(decisions) >= required and "maybe" in decisions.values()
        if not (disagree or maybe):
            continue
        done = record_id in resolved.index
        if done and not include_resolved:
            continue
        rows.append({"record_id": record_id, "votes": decisions,
                     "resolved": resolved.at[record_id, "decision"] if done else None,
                     "resolved_by": resolved.at[record_id, "reviewer"] if done else None,
                     "note": resolved.at[record_id, "reason"] if done else None})
    return pd.DataFrame(rows, columns=["record_id", "votes", "resolved", "resolved_by", "note"])


def resolve_conflict(con: duckdb.DuckDBPyConnection, record_id: str, decision: str, resolver: str, *,
                     note: str = "", profile: str = "") -> None:
    """Record the final decision on a conflict (``include`` or ``exclude``), by whom and why."""
    resolver = valid_reviewer(resolver)
    if decision not in ("include", "exclude"):
        raise ReviewerError("a conflict is resolved with 'include' or 'exclude'")
    init_team(con)
    votes = _record_votes(con, record_id)
    if not votes:
        raise KeyError(f"no votes on record {record_id!r}; nothing to resolve")
    record_decision(con, record_id, "title_abstract", decision, method=RESOLVED_METHOD, reviewer=resolver,
                    reason=(note or "")[:500], profile=profile)


def agreement(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Percent agreement and Cohen's kappa for each pair of reviewers, on the records both voted on.

    Kappa is scikit-learn's ``cohen_kappa_score`` over include/exclude/maybe; it is None when
    it is undefined (no records in common, or both reviewers used a single category).
    """
    init_team(con)
    votes = all_votes(con)
    out = []
    for a, b in itertools.combinations(sorted(votes["reviewer"].unique()), 2):
        va = votes[votes["reviewer"] == a].set_index("record_id")["decision"]
        vb = votes[votes["reviewer"] == b].set_index("record_id")["decision"]
        common = va.index.intersection(vb.index)
        ya, yb = va.loc[common].to_numpy(), vb.loc[common].to_numpy()
        n = len(common)
        kappa = None
        if n and len(set(ya) | set(yb)) > 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                value = cohen_kappa_score(ya, yb, labels=list(VOTES))
            kappa = None if np.isnan(value) else float(value)
        table = {f"{x}/{y}": int(((ya == x) & (yb == y)).sum()) for x in VOTES for y in VOTES}
        out.append({"reviewer_a": a, "reviewer_b": b, "n_common": n,
                    "percent_agreement": float((ya == yb).mean() * 100) if n else None,
                    "kappa": kappa, "table": table})
    return out
