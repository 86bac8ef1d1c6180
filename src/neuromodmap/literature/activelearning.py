"""Active learning for title/abstract screening, as ASReview does it.

TF-IDF features of title, abstract and keywords/MeSH terms, a naive Bayes (default),
logistic regression or linear SVM classifier, certainty-based ("max") sampling: after every
decision the model is refit on the labelled records and the unlabelled record it rates most
likely relevant comes next. Prior knowledge is a few labelled records (by default one
relevant and one irrelevant).

The model follows ASReview LAB (van de Schoot et al. 2021, Nat Mach Intell 3:125-133,
doi:10.1038/s42256-020-00287-7): ``MultinomialNB(alpha=3.822)`` on TF-IDF. Two class-balance
strategies are available: classes re-weighted so the few relevant records count as much as
the many irrelevant ones (the default, as ASReview's later ``balanced`` weights) and
ASReview v1's "double" resampling. The default features (keywords/MeSH, word pairs,
sublinear tf) and balance were chosen by the mean WSS@95 over the public labelled sets; see
docs/literature.md.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from neuromodmap._utils import atomic_write
from neuromodmap.provenance import Provenance

__all__ = ["ActiveLearner", "SimulationResult", "simulate", "MODELS", "BALANCES", "FIELDS", "record_text",
           "screening_metrics", "double_balance_counts"]

MODELS = ("nb", "logistic", "svm")
BALANCES = ("double", "weighted", "none")
FIELDS = ("title", "abstract", "keywords")

# The default configuration (chosen by the mean WSS@95 over all public labelled sets and label
# levels, not per dataset; every configuration tried is listed in docs/literature.md).
DEFAULT_BALANCE = "weighted"
DEFAULT_FIELDS = ("title", "abstract", "keywords")
DEFAULT_NGRAM_MAX = 2
DEFAULT_SUBLINEAR_TF = True

ASREVIEW_CITATION = (
    "van de Schoot R, de Bruin J, Schram R, et al. An open source machine learning framework for "
    "efficient and transparent systematic reviews. Nat Mach Intell 2021;3:125-133. "
    "doi:10.1038/s42256-020-00287-7"
)


class ActiveLearner:
    """TF-IDF + classifier that ranks unlabelled records by their chance of being relevant.

    Parameters
    ----------
    model : {"nb", "logistic", "svm"}
        Naive Bayes (ASReview's default), logistic regression or linear SVM.
    random_state : int, optional
        Seed of the balance strategy's resampling and of the models that use one.
    balance : {"double", "weighted", "none"}
        How the few relevant records are made to count: ``"double"`` is ASReview's dynamic
        resampling (:func:`double_balance_counts`), ``"weighted"`` weights each class by its
        inverse frequency, ``"none"`` fits on the labelled records as they are.
    ngram_max : int
        Longest word n-gram in the TF-IDF vocabulary (1 = single words, 2 = words and pairs).
    sublinear_tf : bool
        Use 1 + log(tf) instead of raw term counts.

    Examples
    --------
    >>> learner = ActiveLearner().fit_features(texts)        # doctest: +SKIP
    >>> order = learner.rank(labelled_idx, labels)           # doctest: +SKIP
    """

    def __init__(self, model: str = "nb", random_state: int | None = None, *, balance: str = DEFAULT_BALANCE,
                 ngram_max: int = DEFAULT_NGRAM_MAX, sublinear_tf: bool = DEFAULT_SUBLINEAR_TF) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        if balance not in BALANCES:
            raise ValueError(f"unknown balance strategy {balance!r}; choose one of {', '.join(BALANCES)}")
        self.model = model
        self.balance = balance
        self.ngram_max = int(ngram_max)
        self.sublinear_tf = bool(sublinear_tf)
        self.random_state = random_state
        self._rng = np.random.default_rng(random_state)
        self.features_: sparse.csr_matrix | None = None
        self.vectorizer_: TfidfVectorizer | None = None

    def fit_features(self, texts: list[str]) -> ActiveLearner:
        """Learn the TF-IDF vocabulary of ``texts`` (one string per record, see :func:`record_text`).

        A record without text (kept on its DOI or journal and pages, with no title, abstract or
        keywords) has no features and scores 0. When no record has a word the model can use,
        the vocabulary is empty and every score is 0: the records keep their order.
        """
        self.vectorizer_ = TfidfVectorizer(stop_words="english", ngram_range=(1, self.ngram_max),
                                           sublinear_tf=self.sublinear_tf)
        try:
            self.features_ = self.vectorizer_.fit_transform(texts).tocsr()
        except ValueError:
            # scikit-learn refuses an empty vocabulary (every text empty or stop words only)
            if self._has_words(texts):
                raise
            self.features_ = sparse.csr_matrix((len(texts), 0))
        return self

    def _has_words(self, texts: list[str]) -> bool:
        analyzer = self.vectorizer_.build_analyzer()
        return any(analyzer(t) for t in texts if t)

    def feature_names(self) -> np.ndarray:
        """The TF-IDF vocabulary (empty when no record has a usable word)."""
        if self.features_ is None:
            raise RuntimeError("call fit_features first")
        if self.features_.shape[1] == 0:
            return np.array([], dtype=object)
        return self.vectorizer_.get_feature_names_out()

    def _classifier(self):
        class_weight = "balanced" if self.balance == "weighted" else None
        if self.model == "logistic":
            return LogisticRegression(C=1.0, class_weight=class_weight, solver="liblinear",
                                      random_state=self.random_state)
        return LinearSVC(C=1.0, class_weight=class_weight, random_state=self.random_state)

    def training_weights(self, labels: np.ndarray) -> np.ndarray:
        """Weight of each labelled record in the next fit, by the balance strategy.

        ``"double"`` draws a new resample at every call (from ``random_state``), so the
        weights are copy counts: how often each record appears in ASReview's resampled
        training set.
        """
        labels = np.asarray(labels, dtype=int)
        if self.balance == "double":
            return double_balance_counts(labels, self._rng).astype(float)
        if self.balance == "weighted":
            n_pos = int(labels.sum())
            n_neg = len(labels) - n_pos
            return np.where(labels == 1, n_neg / max(n_pos, 1), 1.0)
        return np.ones(len(labels))

    def scores(self, labelled: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Relevance score of every record after fitting on the labelled ones.

        With only one class labelled so far there is nothing to learn; every score is 0.
        """
        if self.features_ is None:
            raise RuntimeError("call fit_features first")
        labelled = np.asarray(labelled, dtype=int)
        labels = np.asarray(labels, dtype=int)
        if len(set(labels.tolist())) < 2 or self.features_.shape[1] == 0:
            return np.zeros(self.features_.shape[0])
        weights = self.training_weights(labels)
        if self.model == "nb":
            return _nb_scores(self.features_, labelled, labels, weights)
        keep = weights > 0
        clf = self._classifier()
        if self.balance == "weighted":  # class_weight="balanced" does it
            clf.fit(self.features_[labelled], labels)
        else:
            clf.fit(self.features_[labelled[keep]], labels[keep], sample_weight=weights[keep])
        return clf.decision_function(self.features_)

    def rank(self, labelled: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Unlabelled record indices, most likely relevant first ("max" query strategy)."""
        scores = self.scores(labelled, labels)
        mask = np.ones(len(scores), dtype=bool)
        mask[labelled] = False
        candidates = np.flatnonzero(mask)
        # stable sort keeps file order among ties, so a run is reproducible
        return candidates[np.argsort(-scores[candidates], kind="stable")]


def double_balance_counts(labels: np.ndarray, rng: np.random.Generator, *, a: float = 2.155,
                          alpha: float = 0.94, b: float = 0.789, beta: float = 1.0) -> np.ndarray:
    """ASReview's "double" balance strategy as copy counts of the labelled records.

    Re-implements ``DoubleBalance.sample`` of ASReview v0.x/v1 (asreview/asreview,
    ``asreview/models/balance/double.py``, Apache-2.0; defaults a=2.155, alpha=0.94,
    b=0.789, beta=1.0): the training set keeps its size n = n_1 + n_0, and the relevant
    records get the share w_1 n_1 / (w_1 n_1 + w_0 n_0) of it, with
    w_1 = a (n_1/n_0)^-alpha and w_0 = 1 - (1 - b)(1 + ln n)^-beta, rounded up or down at
    random (at least 1, at most n - 2). Each class fills its share by whole copies of all
    its records plus a random draw without replacement for the remainder. Early on the few
    relevant records are copied many times and the irrelevant ones subsampled.

    Returns
    -------
    numpy.ndarray of int
        How many times each labelled record is in the resampled training set.
    """
    labels = np.asarray(labels, dtype=int)
    one_idx = np.flatnonzero(labels == 1)
    zero_idx = np.flatnonzero(labels == 0)
    n_one, n_zero = len(one_idx), len(zero_idx)
    counts = np.zeros(len(labels), dtype=int)
    if n_one == 0 or n_zero == 0:
        counts[:] = 1
        return counts
    n_train = n_one + n_zero
    one_weight = a * (n_one / n_zero) ** (-alpha)
    zero_weight = 1 - (1 - b) * (1 + math.log(n_train)) ** (-beta)
    share = one_weight * n_one * n_train / (one_weight * n_one + zero_weight * n_zero)
    n_one_train = math.floor(share) + int(rng.random() < share - math.floor(share))
    n_one_train = max(1, min(n_train - 2, n_one_train))
    for idx, n_fill in ((one_idx, n_one_train), (zero_idx, n_train - n_one_train)):
        copies, rest = divmod(n_fill, len(idx))
        counts[idx] += copies
        if rest:
            counts[rng.choice(idx, rest, replace=False)] += 1
    return counts


def _nb_scores(features: sparse.csr_matrix, labelled: np.ndarray, labels: np.ndarray, weights: np.ndarray,
               alpha: float = 3.822) -> np.ndarray:
    """Log-odds of relevance under multinomial naive Bayes, up to a constant.

    The same ranking as ``MultinomialNB(alpha).fit(X, y, sample_weight=weights)`` (the class
    prior only adds a constant), computed directly: scikit-learn's input checks cost more
    than the fit when the model is refit after every decision. The weighted term counts of
    each class are summed over the labelled rows only (a slice of the CSR matrix), so a refit
    costs one pass over the labelled records plus one sparse product for the scores.
    """
    pos_rows, neg_rows = labelled[labels == 1], labelled[labels == 0]
    pos = np.asarray(features[pos_rows].T @ weights[labels == 1]).ravel() + alpha
    neg = np.asarray(features[neg_rows].T @ weights[labels == 0]).ravel() + alpha
    term_weights = (np.log(pos) - np.log(pos.sum())) - (np.log(neg) - np.log(neg.sum()))
    return features @ term_weights


def record_text(record, fields: tuple[str, ...] | list[str] = DEFAULT_FIELDS, *,
                title_weight: int = 1) -> str:
    """The text the model sees for one record: the chosen fields joined by spaces.

    Parameters
    ----------
    record : Record
        A literature record (anything with ``title``, ``abstract``, ``keywords`` and
        ``mesh_terms`` attributes).
    fields : sequence of {"title", "abstract", "keywords"}
        ``"keywords"`` is the record's keywords and MeSH terms (Cohen's local build has
        them in a ``keywords`` column; MEDLINE and PubMed XML imports in ``mesh_terms``).
    title_weight : int
        How many times the title is repeated (a crude up-weighting of title words).
    """
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; choose from {', '.join(FIELDS)}")
    parts: list[str] = []
    for name in fields:
        if name == "title":
            parts.extend([record.title] * max(1, int(title_weight)))
        elif name == "abstract":
            parts.append(record.abstract)
        else:
            parts.append("; ".join([*record.keywords, *getattr(record, "mesh_terms", [])]))
    return " ".join(p for p in parts if p)


def screening_metrics(labels_in_order: np.ndarray, n_records: int, n_included: int) -> dict[str, float]:
    """WSS@95, WSS@100 and recall after 10 % screened, from the order records were screened.

    WSS@r = (N - n_r)/N - (1 - r), where n_r is the number of records screened to reach
    recall r (Cohen et al. 2006, JAMIA 13:206-219, doi:10.1197/jamia.M1929).
    """
    found = np.cumsum(labels_in_order)
    out: dict[str, float] = {}
    for recall, name in ((0.95, "95"), (1.0, "100")):
        target = math.ceil(recall * n_included - 1e-9)
        reached = np.flatnonzero(found >= target)
        n_needed = int(reached[0]) + 1 if len(reached) else n_records
        out[f"n_screened_at_{name}"] = n_needed
        out[f"wss_{name}"] = (n_records - n_needed) / n_records - (1 - recall)
    k = math.ceil(0.10 * n_records)
    out["recall_at_10pct"] = float(found[min(k, len(found)) - 1] / n_included) if len(found) else 0.0
    return out


@dataclass
class SimulationResult:
    """The outcome of a simulated screening of a labelled dataset."""

    dataset: str
    label_column: str
    model: str
    seed: int
    n_records: int
    n_included: int
    prior_indices: list[int]
    order: np.ndarray
    labels_in_order: np.ndarray
    wss_95: float
    wss_100: float
    recall_at_10pct: float
    n_screened_at_95: int
    n_screened_at_100: int
    random_wss_95: float
    random_recall_at_10pct: float
    balance: str = "weighted"
    fields: str = ""
    features: dict = field(default_factory=dict)
    provenance: Provenance = field(default_factory=lambda: Provenance(source="simulation"))

    def recall_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Share screened (x) and recall (y) after each record."""
        x = np.arange(1, len(self.labels_in_order) + 1) / self.n_records
        y = np.cumsum(self.labels_in_order) / self.n_included
        return x, y

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "label_column": self.label_column,
            "model": self.model,
            "balance": self.balance,
            "fields": self.fields,
            "feature_extraction": "tfidf",
            "features": self.features,
            "query_strategy": "max",
            "seed": self.seed,
            "n_records": self.n_records,
            "n_included": self.n_included,
            "n_prior": len(self.prior_indices),
            "wss_95": round(self.wss_95, 4),
            "wss_100": round(self.wss_100, 4),
            "recall_at_10pct": round(self.recall_at_10pct, 4),
            "n_screened_at_95": self.n_screened_at_95,
            "n_screened_at_100": self.n_screened_at_100,
            "random_order": {"wss_95": round(self.random_wss_95, 4),
                             "recall_at_10pct": round(self.random_recall_at_10pct, 4)},
            "provenance": json.loads(self.provenance.model_dump_json()),
            "methods": self.methods_sentence(),
        }

    def methods_sentence(self) -> str:
        return (
            f"Screening was simulated on {self.n_records} labelled records ({self.n_included} relevant) "
            f"with TF-IDF features{' of ' + self.fields.replace(',', ', ') if self.fields else ''}, "
            f"a {_MODEL_NAMES[self.model]} classifier ({_BALANCE_NAMES[self.balance]}) and certainty-based sampling "
            f"after {len(self.prior_indices)} prior records (seed {self.seed}), as in ASReview "
            f"(van de Schoot et al. 2021); WSS@95 was {self.wss_95:.1%} (random order {self.random_wss_95:.1%}) "
            f"and {self.recall_at_10pct:.1%} of relevant records were found after screening 10%."
        )

    def plot(self, path: str | os.PathLike) -> Path:
        """Save the recall curve (PNG or SVG, by extension) with the random-order diagonal."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x, y = self.recall_curve()
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ax.plot(np.concatenate([[0], x]), np.concatenate([[0], y]), label=f"active learning ({self.model})")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random order (expected)")
        ax.axhline(0.95, color="tab:red", linewidth=0.8, linestyle=":")
        ax.axvline(self.n_screened_at_95 / self.n_records, color="tab:red", linewidth=0.8, linestyle=":",
                   label=f"95% recall at {self.n_screened_at_95 / self.n_records:.1%} screened")
        ax.set_xlabel("share of records screened")
        ax.set_ylabel("recall (share of relevant records found)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{Path(self.dataset).name}: WSS@95 {self.wss_95:.1%}, seed {self.seed}", fontsize=10)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        path = Path(path)
        fmt = path.suffix.lstrip(".") or "png"
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=120)
        plt.close(fig)
        return path

    def write(self, directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``simulation.json`` and ``recall_curve.png`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        json_path = directory / "simulation.json"
        with atomic_write(json_path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2)
        png = self.plot(directory / "recall_curve.png")
        return json_path, png


_MODEL_NAMES = {"nb": "naive Bayes", "logistic": "logistic regression", "svm": "linear SVM"}
_BALANCE_NAMES = {"weighted": "classes weighted equally", "double": "ASReview's double resampling",
                  "none": "no class balancing"}


def simulate(
    texts: list[str],
    labels: list[int] | np.ndarray,
    *,
    model: str = "nb",
    seed: int = 0,
    n_prior_included: int = 1,
    n_prior_excluded: int = 1,
    batch_size: int = 1,
    balance: str = DEFAULT_BALANCE,
    ngram_max: int = DEFAULT_NGRAM_MAX,
    sublinear_tf: bool = DEFAULT_SUBLINEAR_TF,
    fields: str = "",
    dataset: str = "",
    label_column: str = "",
) -> SimulationResult:
    """Simulate screening a labelled dataset with active learning.

    Parameters
    ----------
    texts : list of str
        Title and abstract of each record.
    labels : array of 0/1
        The reviewers' decisions (1 = relevant).
    model : {"nb", "logistic", "svm"}
        Classifier.
    seed : int
        Chooses the prior records (and the random-order baseline).
    n_prior_included, n_prior_excluded : int
        Prior knowledge: labelled records drawn at random from each class.
    batch_size : int
        Records taken from the ranking between refits (1 = refit after every decision,
        as ASReview does).
    balance, ngram_max, sublinear_tf
        Passed to :class:`ActiveLearner`.
    fields : str
        Which record fields ``texts`` were built from (recorded in the result only).

    Returns
    -------
    SimulationResult
        The screening order, WSS@95/100, recall after 10 % screened, and the same figures
        for one random order drawn with the same seed.
    """
    labels = np.asarray(labels, dtype=int)
    n = len(labels)
    n_included = int(labels.sum())
    if len(texts) != n:
        raise ValueError("texts and labels differ in length")
    if n_included < n_prior_included or n - n_included < n_prior_excluded:
        raise ValueError(f"need at least {n_prior_included} relevant and {n_prior_excluded} irrelevant records")
    if n_included == 0:
        raise ValueError("the label column marks no record as relevant")
    rng = np.random.default_rng(seed)
    prior = list(rng.choice(np.flatnonzero(labels == 1), n_prior_included, replace=False)) + list(
        rng.choice(np.flatnonzero(labels == 0), n_prior_excluded, replace=False)
    )
    learner = ActiveLearner(model, random_state=seed, balance=balance, ngram_max=ngram_max,
                            sublinear_tf=sublinear_tf).fit_features(texts)
    order: list[int] = [int(i) for i in prior]
    found = int(labels[order].sum())
    while len(order) < n and found < n_included:
        labelled = np.asarray(order)
        ranked = learner.rank(labelled, labels[labelled])
        take = ranked[:batch_size].tolist()
        order.extend(take)
        found += int(labels[take].sum())
    if len(order) < n:
        # every relevant record is found; the rest are irrelevant and their order is moot
        seen = np.zeros(n, dtype=bool)
        seen[order] = True
        order.extend(np.flatnonzero(~seen).tolist())
    order_arr = np.asarray(order)
    labels_in_order = labels[order_arr]
    metrics = screening_metrics(labels_in_order, n, n_included)
    random_metrics = screening_metrics(labels[rng.permutation(n)], n, n_included)
    provenance = Provenance(
        source=dataset or "labelled records",
        as_of=dt.date.today(),
        citation=ASREVIEW_CITATION,
        extra={"label_column": label_column, "model": model, "balance": balance, "fields": fields,
               "seed": str(seed)},
    )
    return SimulationResult(
        dataset=dataset, label_column=label_column, model=model, seed=seed, n_records=n, n_included=n_included,
        prior_indices=[int(i) for i in prior], order=order_arr, labels_in_order=labels_in_order,
        wss_95=metrics["wss_95"], wss_100=metrics["wss_100"], recall_at_10pct=metrics["recall_at_10pct"],
        n_screened_at_95=metrics["n_screened_at_95"], n_screened_at_100=metrics["n_screened_at_100"],
        random_wss_95=random_metrics["wss_95"], random_recall_at_10pct=random_metrics["recall_at_10pct"],
        balance=balance, fields=fields,
        features={"ngram_max": ngram_max, "sublinear_tf": sublinear_tf, "n_features": int(learner.features_.shape[1])},
        provenance=provenance,
    )
