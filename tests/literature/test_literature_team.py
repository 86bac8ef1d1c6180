"""Team screening (named reviewers' votes, conflicts, resolution, agreement) and the statistical
stopping rule, on real records (Cohen et al. 2006 ADHD set imported into a review store)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuromodmap.literature import load_records, open_store, read_records, save_import, team
from neuromodmap.literature.activelearning import simulate
from neuromodmap.literature.prisma import prisma_flow
from neuromodmap.literature.screening import latest_decisions
from neuromodmap.literature.stopping import check_stop, h0_pvalue, relevant_left_bound


@pytest.fixture(scope="module")
def adhd_store(tmp_path_factory, labelled_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("team") / "review.duckdb"
    con = open_store(path)
    save_import(con, read_records(labelled_dir / "Cohen_2006_ADHD.csv.gz"))
    con.close()
    return path


@pytest.fixture()
def con(adhd_store: Path, tmp_path: Path):
    copy = tmp_path / "review.duckdb"
    copy.write_bytes(adhd_store.read_bytes())
    c = open_store(copy)
    team.init_team(c)
    yield c
    c.close()


def _ids(con, n: int) -> list[str]:
    return [r.record_id for r in load_records(con)[:n]]


def test_votes_agree_conflict_resolve_and_undo_keep_an_audit_trail(con) -> None:
    a, b, c = _ids(con, 3)
    assert team.cast_vote(con, a, "Ana", "include") == "waiting"
    assert team.cast_vote(con, a, "Ben", "include") == "agreed"
    assert team.cast_vote(con, b, "Ana", "exclude") == "waiting"
    assert team.cast_vote(con, b, "Ben", "include") == "conflict"
    assert team.cast_vote(con, c, "Ana", "maybe") == "waiting"
    assert team.cast_vote(con, c, "Ben", "maybe") == "conflict"  # agreeing on maybe still needs a decision
    finals = latest_decisions(con, "title_abstract").set_index("record_id")
    assert finals.loc[a, "decision"] == "include" and finals.loc[a, "method"] == "dual_screening"
    assert finals.loc[a, "reviewer"] == "Ana, Ben"
    assert b not in finals.index and c not in finals.index
    assert list(team.conflicts(con)["record_id"]) == [b, c]
    # PRISMA counts the team's decisions only
    flow = prisma_flow(con)
    assert flow.records_screened == 1 and flow.reports_sought == 1
    team.resolve_conflict(con, b, "exclude", "Cleo", note="no sham arm")
    assert list(team.conflicts(con)["record_id"]) == [c]
    resolved = team.conflicts(con, include_resolved=True).set_index("record_id")
    assert resolved.loc[b, "resolved"] == "exclude" and resolved.loc[b, "resolved_by"] == "Cleo"
    assert prisma_flow(con).records_excluded == 1
    # Ben withdraws his include on a: the team decision goes, the vote stays with its undo time
    assert team.undo_vote(con, "Ben") == c
    assert team.undo_vote(con, "Ben") == b  # b stays resolved: a resolution stands
    assert team.undo_vote(con, "Ben") == a
    assert a not in set(latest_decisions(con, "title_abstract")["record_id"])
    trail = con.execute("SELECT record_id, reviewer, decision, undone_at IS NOT NULL FROM literature_screening_votes "
                        "WHERE reviewer = 'Ben' ORDER BY vote_id").fetchall()
    assert trail == [(a, "Ben", "include", True), (b, "Ben", "include", True), (c, "Ben", "maybe", True)]
    assert latest_decisions(con, "title_abstract").set_index("record_id").loc[b, "decision"] == "exclude"
    assert team.undo_vote(con, "Ben") is None


def test_bad_votes_are_refused_and_change_nothing(con) -> None:
    (a,) = _ids(con, 1)
    with pytest.raises(team.ReviewerError):
        team.cast_vote(con, a, "<script>", "include")
    with pytest.raises(team.ReviewerError):
        team.cast_vote(con, a, "Ana", "yes")
    with pytest.raises(KeyError):
        team.cast_vote(con, "lit-000000000000", "Ana", "include")
    with pytest.raises(team.ReviewerError):
        team.set_setting(con, "recall_target", "1.5")
    assert con.execute("SELECT count(*) FROM literature_screening_votes").fetchone()[0] == 0


def test_kappa_reproduces_the_textbook_example(con) -> None:
    # Cohen's kappa, worked example (Wikipedia "Cohen's kappa", Simple example; also in many
    # textbooks): 50 proposals, both yes 20, A yes / B no 5, A no / B yes 10, both no 15:
    # p_o = 0.70, p_e = 0.50, kappa = 0.40
    ids = _ids(con, 50)
    pattern = [("include", "include")] * 20 + [("include", "exclude")] * 5 + \
              [("exclude", "include")] * 10 + [("exclude", "exclude")] * 15
    for record_id, (x, y) in zip(ids, pattern, strict=True):
        team.cast_vote(con, record_id, "A", x)
        team.cast_vote(con, record_id, "B", y)
    (pair,) = team.agreement(con)
    assert pair["n_common"] == 50
    assert pair["percent_agreement"] == pytest.approx(70.0)
    assert pair["kappa"] == pytest.approx(0.40)
    assert pair["table"]["include/exclude"] == 5 and pair["table"]["exclude/include"] == 10
    assert len(team.conflicts(con)) == 15


def test_h0_pvalue_matches_the_hypergeometric_sum_written_out() -> None:
    # independent of scipy: the lower tail of the hypergeometric distribution by binomial
    # coefficients, minimised over the runs of the last n records (Callaghan & Mueller-Hansen 2020)
    rng = np.random.default_rng(3)
    for _ in range(20):
        n_total = int(rng.integers(30, 80))
        n_seen = int(rng.integers(5, n_total))
        labels = (rng.random(n_seen) < np.linspace(0.6, 0.05, n_seen)).astype(int)
        target = float(rng.choice([0.8, 0.9, 0.95]))
        r = int(labels.sum())
        k_null = math.floor(r / target) + 1
        best = 1.0
        for n in range(1, n_seen + 1):
            k = int(labels[-n:].sum())
            population = n_total - (n_seen - n)
            red = min(k_null - (r - k), population)
            p = sum(math.comb(red, j) * math.comb(population - red, n - j) for j in range(k + 1)) / math.comb(population, n)
            best = min(best, p)
        assert h0_pvalue(labels, n_total, target) == pytest.approx(best, rel=1e-9, abs=1e-12)


def test_relevant_left_bound_is_the_largest_count_not_rejected() -> None:
    labels = np.r_[np.ones(30, int), np.zeros(400, int)]
    bound = relevant_left_bound(labels, 1000)
    # with 400 irrelevant records in a row out of 970 unscreened, a handful left is plausible, dozens are not
    assert 0 < bound < 10
    assert relevant_left_bound(labels[:0], 1000) == 1000
    assert relevant_left_bound(np.ones(1000, int), 1000) == 0


def test_the_rule_stops_only_past_the_recall_target_on_a_real_screening_order(labelled_dir: Path) -> None:
    frame = pd.read_csv(labelled_dir / "Cohen_2006_ADHD.csv.gz")
    texts = (frame["title"].fillna("") + " " + frame["abstract"].fillna("") + " " + frame["keywords"].fillna("")).tolist()
    labels = frame["label_abstract_screening"].to_numpy(dtype=int)  # 84 relevant of 851
    result = simulate(texts, labels, seed=0)
    order = result.labels_in_order
    stop_at = next((n for n in range(10, len(order) + 1, 10) if check_stop(order[:n], len(order)).stop), None)
    assert stop_at is not None and stop_at < len(order)  # it saves work ...
    recall = order[:stop_at].sum() / labels.sum()
    assert recall >= 0.95  # ... and stops only once the target is reached
    check = check_stop(order[:stop_at], len(order))
    assert check.p_value < 0.05 and "below 0.05" in check.why
    assert check.relevant_left_upper >= labels.sum() - order[:stop_at].sum()
