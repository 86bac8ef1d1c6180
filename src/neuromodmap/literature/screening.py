"""Title/abstract screening: a resumable session over the store, ranked by active learning.

Each decision is written to ``literature_decisions`` the moment it is made, so a session
can stop anywhere and resume later (or on another machine with the same database). The
next record is the unscreened record the model rates most likely relevant; until both an
include and an exclude exist, records are ranked by how many review-question terms they
contain. Records the criteria profile excludes never reach the screener; they are stored
as automatic exclusions with their reason (PRISMA: "marked as ineligible by automation").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from neuromodmap.literature.activelearning import ActiveLearner, record_text
from neuromodmap.literature.criteria import (
    CriteriaProfile,
    CriteriaResult,
    apply_criteria,
    topic_pattern,
)
from neuromodmap.literature.records import Record
from neuromodmap.literature.store import init_tables, load_dedup, load_records

__all__ = ["ScreeningSession", "ScreeningProgress", "init_decisions", "record_decision", "latest_decisions",
           "STAGES", "latest_stop"]

STAGES = ("criteria", "title_abstract", "full_text")
_DECISIONS = ("include", "exclude", "not_retrieved")


def init_decisions(con: duckdb.DuckDBPyConnection) -> None:
    init_tables(con)
    con.execute("CREATE SEQUENCE IF NOT EXISTS literature_decision_seq")
    con.execute(
        """CREATE TABLE IF NOT EXISTS literature_decisions (
            decision_id BIGINT DEFAULT nextval('literature_decision_seq'), record_id VARCHAR,
            stage VARCHAR, decision VARCHAR, reason VARCHAR, method VARCHAR, reviewer VARCHAR,
            profile VARCHAR, decided_at TIMESTAMP)"""
    )
    _init_stops(con)


def _init_stops(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """CREATE TABLE IF NOT EXISTS literature_stops (
            stopped_at TIMESTAMP, profile VARCHAR, rule VARCHAR, description VARCHAR, recall_target DOUBLE,
            n_eligible INTEGER, n_screened INTEGER, reviewer VARCHAR, last_decision_id BIGINT)"""
    )


def latest_stop(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The stopping rule that ended title/abstract screening, if it still applies.

    A stop recorded by :meth:`ScreeningSession.record_stop` applies while the title/abstract
    decisions are those it was recorded on: a later decision (``--ignore-stop``) or an undo
    voids it. Returns a dict with
    ``rule`` (``irrelevant_in_a_row`` or ``target_share``), ``description``, ``recall_target``
    (None when no target was declared), ``stopped_at``, ``profile``, ``n_eligible`` and
    ``n_screened``; None when no stopping rule applies.
    """
    init_decisions(con)
    row = con.execute("SELECT * FROM literature_stops ORDER BY stopped_at DESC LIMIT 1").fetchone()
    if row is None:
        return None
    stop = dict(zip([d[0] for d in con.description], row, strict=True))
    if _last_decision_id(con) != stop.pop("last_decision_id"):
        return None
    if stop["recall_target"] is not None and pd.isna(stop["recall_target"]):
        stop["recall_target"] = None
    return stop


def _last_decision_id(con: duckdb.DuckDBPyConnection) -> int | None:
    return con.execute("SELECT max(decision_id) FROM literature_decisions WHERE stage = 'title_abstract'").fetchone()[0]


def record_decision(con: duckdb.DuckDBPyConnection, record_id: str, stage: str, decision: str, *,
                    reason: str = "", method: str = "manual", reviewer: str = "", profile: str = "") -> None:
    """Save one decision now (the latest decision per record and stage counts)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    if decision not in _DECISIONS:
        raise ValueError(f"unknown decision {decision!r}; one of {', '.join(_DECISIONS)}")
    init_decisions(con)
    known = con.execute("SELECT count(*) FROM literature_records WHERE record_id = ?", [record_id]).fetchone()[0]
    if not known:
        raise KeyError(f"no record {record_id!r} in the database")
    con.execute(
        "INSERT INTO literature_decisions (record_id, stage, decision, reason, method, reviewer, profile, decided_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [record_id, stage, decision, reason, method, reviewer, profile,
         dt.datetime.now(dt.UTC).replace(tzinfo=None)],
    )


def latest_decisions(con: duckdb.DuckDBPyConnection, stage: str | None = None) -> pd.DataFrame:
    """The latest decision per record (and stage), in the order they were made."""
    init_decisions(con)
    frame = con.execute(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY record_id, stage ORDER BY decision_id DESC) AS k "
        "FROM literature_decisions WHERE (? IS NULL OR stage = ?)) WHERE k = 1 ORDER BY decision_id",
        [stage, stage],
    ).df()
    return frame.drop(columns=["k"])


@dataclass
class ScreeningProgress:
    """Where a screening session stands against its stopping rule."""

    n_eligible: int
    n_screened: int
    n_included: int
    n_excluded: int
    irrelevant_in_a_row: int
    stop_after_irrelevant: int | None
    target_share: float | None

    @property
    def share_screened(self) -> float:
        return self.n_screened / self.n_eligible if self.n_eligible else 1.0

    @property
    def stop_rule(self) -> str | None:
        """Which stopping rule is met (``irrelevant_in_a_row``, ``target_share``), or None.

        Screening every eligible record is the end of screening, not a stopping rule.
        """
        if self.n_screened >= self.n_eligible:
            return None
        if self.stop_after_irrelevant and self.irrelevant_in_a_row >= self.stop_after_irrelevant:
            return "irrelevant_in_a_row"
        if self.target_share and self.share_screened >= self.target_share:
            return "target_share"
        return None

    @property
    def stop_reason(self) -> str | None:
        if self.n_screened >= self.n_eligible:
            return "every eligible record has been screened"
        if self.stop_after_irrelevant and self.irrelevant_in_a_row >= self.stop_after_irrelevant:
            return f"{self.irrelevant_in_a_row} irrelevant records in a row"
        if self.target_share and self.share_screened >= self.target_share:
            return f"{self.share_screened:.0%} of the records screened (target {self.target_share:.0%})"
        return None

    def summary(self) -> str:
        rule = []
        if self.stop_after_irrelevant:
            rule.append(f"{self.irrelevant_in_a_row}/{self.stop_after_irrelevant} irrelevant in a row")
        if self.target_share:
            rule.append(f"{self.share_screened:.0%} of target {self.target_share:.0%} screened")
        return (f"{self.n_screened}/{self.n_eligible} screened, {self.n_included} included, "
                f"{self.n_excluded} excluded; " + "; ".join(rule))


class ScreeningSession:
    """A resumable title/abstract screening session on the records in a database.

    Parameters
    ----------
    con : duckdb connection
        The project database, with imported (and ideally de-duplicated) records.
    profile : CriteriaProfile
        Eligibility criteria, review question (topic terms) and stopping rule.
    model : {"nb", "logistic", "svm"}
        Active-learning classifier.
    reviewer : str
        Stored with every decision.
    stop_after_irrelevant, target_share : optional
        Override the profile's stopping rule.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, profile: CriteriaProfile, *, model: str = "nb",
                 reviewer: str = "", stop_after_irrelevant: int | None = None,
                 target_share: float | None = None) -> None:
        self.con = con
        self.profile = profile
        self.reviewer = reviewer
        self.stop_after_irrelevant = stop_after_irrelevant or profile.stopping.irrelevant_in_a_row
        self.target_share = target_share or profile.stopping.target_share
        init_decisions(con)
        records = load_records(con)
        clusters = load_dedup(con)
        if clusters is not None:
            primary = set(clusters.loc[clusters["is_primary"], "record_id"])
            clustered = set(clusters["record_id"])
            # one record per duplicate cluster; records imported after the last dedup run stay in
            records = [r for r in records if r.record_id in primary or r.record_id not in clustered]
        if not records:
            raise ValueError("the database holds no literature records; import search exports first")
        self.criteria: CriteriaResult = apply_criteria(records, profile)
        self._store_criteria()
        eligible = set(self.criteria.eligible_ids)
        self.records: list[Record] = [r for r in records if r.record_id in eligible]
        self._index = {r.record_id: i for i, r in enumerate(self.records)}
        self.topic = topic_pattern(profile)
        # the simulation's default model, balance and fields (title, abstract, keywords/MeSH)
        self.learner = ActiveLearner(model).fit_features([record_text(r) for r in self.records]) \
            if self.records else None
        self._prior: np.ndarray | None = None
        self._ranking: list[int] | None = None

    def _prior_scores(self) -> np.ndarray:
        """TF-IDF weight of the review-question terms in each record: the ranking before any model.

        The term pattern is matched once against the TF-IDF vocabulary (single words such as
        depression, neuropathic, rTMS, DBS, neurostimulation), not against every abstract: a
        long alternation scanned over 50,000 abstracts would take minutes.
        """
        if self._prior is None:
            vocabulary = self.learner.feature_names()
            # single words only: with word pairs in the vocabulary (the default) the regex would
            # otherwise run over several times more entries
            columns = [i for i, word in enumerate(vocabulary) if " " not in word and self.topic.fullmatch(word)]
            features = self.learner.features_
            self._prior = (np.asarray(features[:, columns].sum(axis=1)).ravel() if columns
                           else np.zeros(features.shape[0]))
        return self._prior

    # -- criteria ---------------------------------------------------------------------------
    def _store_criteria(self) -> None:
        excluded = self.criteria.excluded
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = pd.DataFrame({
            "record_id": excluded["record_id"],
            "stage": "criteria",
            "decision": "exclude",
            "reason": [f"{r}: {d}" if d else r for r, d in zip(excluded["reason"], excluded["detail"], strict=True)],
            "method": "criteria",
            "reviewer": "",
            "profile": self.profile.name,
            "decided_at": now,
        })
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("DELETE FROM literature_decisions WHERE stage = 'criteria'")
            if len(rows):
                # one set-based insert: a big search can have thousands of automatic exclusions
                self.con.register("_lit_criteria", rows)
                self.con.execute(
                    "INSERT INTO literature_decisions (record_id, stage, decision, reason, method, reviewer, profile,"
                    " decided_at) SELECT * FROM _lit_criteria")
                self.con.unregister("_lit_criteria")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    # -- decisions --------------------------------------------------------------------------
    def _decided(self) -> pd.DataFrame:
        frame = latest_decisions(self.con, "title_abstract")
        return frame[frame["record_id"].isin(self._index)]

    def decide(self, record_id: str, include: bool, reason: str = "") -> None:
        """Save an include/exclude decision for ``record_id`` at once."""
        if record_id not in self._index:
            raise KeyError(f"record {record_id!r} is not eligible for screening in this session")
        record_decision(self.con, record_id, "title_abstract", "include" if include else "exclude",
                        reason=reason or ("" if include else "not relevant (title/abstract)"),
                        method="active_learning", reviewer=self.reviewer, profile=self.profile.name)
        self._ranking = None

    def undo(self) -> str | None:
        """Withdraw the latest title/abstract decision of this database; returns its record id."""
        row = self.con.execute(
            "SELECT decision_id, record_id FROM literature_decisions WHERE stage = 'title_abstract' "
            "ORDER BY decision_id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        self.con.execute("DELETE FROM literature_decisions WHERE decision_id = ?", [row[0]])
        self._ranking = None
        return row[1]

    def record_stop(self, progress: ScreeningProgress | None = None) -> dict | None:
        """Record that screening ends here by the stopping rule (read by the PRISMA flow).

        Does nothing (returns None) when no stopping rule is met. The records left unscreened
        count as excluded by the stopping rule until screening resumes.
        """
        progress = progress or self.progress()
        rule = progress.stop_rule
        if rule is None:
            return None
        if rule == "irrelevant_in_a_row":
            description = f"{progress.stop_after_irrelevant} irrelevant records in a row"
        else:
            description = f"{progress.target_share:.0%} of the eligible records screened"
        stop = {"stopped_at": dt.datetime.now(dt.UTC).replace(tzinfo=None), "profile": self.profile.name,
                "rule": rule, "description": description, "recall_target": self.profile.stopping.recall_target,
                "n_eligible": progress.n_eligible, "n_screened": progress.n_screened, "reviewer": self.reviewer,
                "last_decision_id": _last_decision_id(self.con)}
        self.con.execute("INSERT INTO literature_stops VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", list(stop.values()))
        return stop

    # -- ranking ----------------------------------------------------------------------------
    def ranking(self) -> list[int]:
        """Unscreened eligible records (indices), most likely relevant first."""
        if self._ranking is not None:
            return self._ranking
        self._ranking = self.rank_decided(self._decided())
        return self._ranking

    def rank_decided(self, decided: pd.DataFrame, relevant: tuple[str, ...] = ("include",)) -> list[int]:
        """The ranking for any set of decisions (``record_id``, ``decision``), e.g. one team member's.

        Records of ``decided`` that are not eligible in this session are ignored; a decision in
        ``relevant`` counts as relevant for the model, any other as irrelevant.
        """
        index = self._index
        pairs = [(index[r], d in relevant) for r, d in zip(decided["record_id"].tolist(),
                                                            decided["decision"].tolist(), strict=True) if r in index]
        labelled = np.array([i for i, _ in pairs], dtype=int)
        labels = np.array([y for _, y in pairs], dtype=int)
        if len(labelled) and len(set(labels.tolist())) == 2:
            order = self.learner.rank(labelled, labels).tolist()
        else:
            mask = np.ones(len(self.records), dtype=bool)
            mask[labelled] = False
            candidates = np.flatnonzero(mask)
            order = candidates[np.argsort(-self._prior_scores()[candidates], kind="stable")].tolist()
        return order

    def next_record(self) -> Record | None:
        """The unscreened record most likely to be relevant, or None when all are screened."""
        order = self.ranking()
        return self.records[order[0]] if order else None

    def progress(self) -> ScreeningProgress:
        decided = self._decided()
        decisions = decided["decision"].tolist()
        streak = 0
        for decision in reversed(decisions):
            if decision != "exclude":
                break
            streak += 1
        return ScreeningProgress(
            n_eligible=len(self.records), n_screened=len(decisions), n_included=decisions.count("include"),
            n_excluded=decisions.count("exclude"), irrelevant_in_a_row=streak,
            stop_after_irrelevant=self.stop_after_irrelevant, target_share=self.target_share,
        )
