"""Active learning: metric definitions, and simulation on a real labelled set (Cohen 2006 ADHD)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neuromodmap.literature import ActiveLearner, read_records, simulate
from neuromodmap.literature.activelearning import (
    double_balance_counts,
    record_text,
    screening_metrics,
)


def test_wss_definition_small_example() -> None:
    # Cohen et al. 2006: WSS@r = (N - n_r)/N - (1 - r). Two relevant among 10, found at
    # positions 1 and 3: 95% recall needs both, so n_95 = 3 and WSS@95 = 7/10 - 0.05.
    metrics = screening_metrics(np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0]), 10, 2)
    assert metrics["n_screened_at_95"] == 3
    assert metrics["wss_95"] == pytest.approx(0.65)
    assert metrics["wss_100"] == pytest.approx(0.7)
    assert metrics["recall_at_10pct"] == pytest.approx(0.5)  # 1 record screened, 1 of 2 found


def test_random_order_saves_no_work_on_average() -> None:
    rng = np.random.default_rng(1)
    labels = np.array([1] * 50 + [0] * 950)
    wss = [screening_metrics(labels[rng.permutation(1000)], 1000, 50)["wss_95"] for _ in range(300)]
    # expected WSS@95 of a random order is about 0 (it needs ~95% of the records for 95% recall)
    assert abs(np.mean(wss)) < 0.02


def test_cold_start_scores_are_flat() -> None:
    learner = ActiveLearner().fit_features(["deep brain stimulation", "spinal cord stimulation", "gambling"])
    assert np.all(learner.scores(np.array([0]), np.array([1])) == 0)
    with pytest.raises(ValueError, match="unknown model"):
        ActiveLearner("forest")


@pytest.fixture(scope="module")
def adhd(labelled_dir: Path):
    records = read_records(labelled_dir / "Cohen_2006_ADHD.csv.gz").records
    texts = [f"{r.title} {r.abstract}" for r in records]
    labels = np.array([int(r.extra["label_included"]) for r in records])
    return texts, labels


def test_simulation_beats_random_by_a_wide_margin(adhd, tmp_path: Path) -> None:
    texts, labels = adhd
    result = simulate(texts, labels, seed=0, dataset="Cohen_2006_ADHD.csv.gz", label_column="label_included")
    assert result.n_records == 851 and result.n_included == 20  # SOURCES.md
    assert sorted(result.order.tolist()) == list(range(851))  # every record screened once
    assert labels[result.order[0]] == 1 and labels[result.order[1]] == 0  # the two priors
    # random order: WSS@95 ~ 0 and recall after 10 % ~ 10 %
    assert result.wss_95 > 0.4
    assert result.recall_at_10pct >= 0.5
    json_path, png = result.write(tmp_path)
    data = json.loads(json_path.read_text())
    for key in ("n_records", "n_included", "wss_95", "recall_at_10pct", "random_order", "methods"):
        assert key in data
    assert data["wss_95"] == round(result.wss_95, 4)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_logistic_and_batches(adhd) -> None:
    texts, labels = adhd
    result = simulate(texts, labels, model="logistic", seed=3, batch_size=10)
    assert result.wss_95 > result.random_wss_95 + 0.2
    with pytest.raises(ValueError, match="need at least"):
        simulate(texts[:5], [0, 0, 0, 0, 0])


def test_naive_bayes_matches_scikit_learn(adhd) -> None:
    # reference: sklearn MultinomialNB(alpha=3.822) fitted with balancing sample weights
    from sklearn.naive_bayes import MultinomialNB

    texts, labels = adhd
    learner = ActiveLearner("nb").fit_features(texts)
    labelled = np.arange(0, 851, 3)
    y = labels[labelled]
    weights = np.where(y == 1, (len(y) - y.sum()) / y.sum(), 1.0)
    clf = MultinomialNB(alpha=3.822).fit(learner.features_[labelled], y, sample_weight=weights)
    log_proba = clf.predict_log_proba(learner.features_)
    np.testing.assert_allclose(learner.scores(labelled, y), log_proba[:, 1] - log_proba[:, 0], rtol=1e-9, atol=1e-9)


def test_double_balance_follows_asreview_formula() -> None:
    # ASReview v1 DoubleBalance (asreview/models/balance/double.py): w1 = a (n1/n0)^-alpha,
    # w0 = 1 - (1 - b)(1 + ln n)^-beta, relevant share of the n training rows = w1 n1 n / (w1 n1 + w0 n0)
    labels = np.array([1] * 10 + [0] * 500)
    w1 = 2.155 * (10 / 500) ** -0.94
    w0 = 1 - (1 - 0.789) * (1 + np.log(510)) ** -1.0
    share = w1 * 10 * 510 / (w1 * 10 + w0 * 500)  # about 325 of 510 rows
    for seed in range(5):
        counts = double_balance_counts(labels, np.random.default_rng(seed))
        assert counts.sum() == 510  # the training set keeps its size
        assert counts[:10].sum() in (int(np.floor(share)), int(np.ceil(share)))
        assert counts[:10].min() >= counts[:10].sum() // 10  # whole copies of every relevant record first
        assert set(np.unique(counts[10:])) <= {0, 1}  # irrelevant records subsampled without replacement
        assert counts[10:].sum() == 510 - counts[:10].sum()
    # one of each: at least one relevant row, and n - 2 caps it, so both records once
    assert double_balance_counts(np.array([1, 0]), np.random.default_rng(0)).tolist() == [1, 1]


def test_double_balance_naive_bayes_is_multinomial_nb_on_the_resample(adhd) -> None:
    # reference: scikit-learn MultinomialNB(alpha=3.822) fitted on the resampled rows (duplicates
    # as ASReview builds them); the class prior only shifts every score by the same constant
    from sklearn.naive_bayes import MultinomialNB

    texts, labels = adhd
    learner = ActiveLearner("nb", random_state=7, balance="double").fit_features(texts)
    labelled = np.arange(0, 851, 5)
    y = labels[labelled]
    counts = double_balance_counts(y, np.random.default_rng(7))
    rows = np.repeat(labelled, counts)
    clf = MultinomialNB(alpha=3.822).fit(learner.features_[rows], labels[rows])
    log_proba = clf.predict_log_proba(learner.features_)
    diff = learner.scores(labelled, y) - (log_proba[:, 1] - log_proba[:, 0])
    np.testing.assert_allclose(diff, diff[0], atol=1e-8)


def test_record_text_fields(labelled_dir: Path) -> None:
    record = read_records(labelled_dir / "Cohen_2006_ADHD.csv.gz").records[0]
    text = record_text(record, ("title", "abstract", "keywords"))
    assert text.startswith(record.title) and "Clonidine" in text.split(record.abstract)[1]  # MeSH term after
    assert record_text(record, ("title",), title_weight=2) == f"{record.title} {record.title}"
    with pytest.raises(ValueError, match="unknown field"):
        record_text(record, ("title", "journal"))


def test_simulation_is_deterministic_per_seed(adhd) -> None:
    texts, labels = adhd
    a = simulate(texts, labels, seed=4, balance="double")
    b = simulate(texts, labels, seed=4, balance="double")
    assert np.array_equal(a.order, b.order) and a.wss_95 == b.wss_95
    assert a.to_dict()["balance"] == "double"
