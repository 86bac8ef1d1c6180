"""A statistical stopping rule for prioritised screening, with a stated recall target.

The built-in rules of a criteria profile (``irrelevant_in_a_row``, ``target_share``) are
heuristics: they do not say how likely it is that the recall target has been missed. This
module implements the hypergeometric test of Callaghan & Müller-Hansen (2020), the rule that
the ``buscar`` R package and ``buscarpy`` implement:

    Callaghan MW, Müller-Hansen F. Statistical stopping criteria for automated screening in
    systematic reviews. Syst Rev 2020;9:254. doi:10.1186/s13643-020-01521-4

Null hypothesis: the recall target has been missed, i.e. the records hold at least
``K = floor(r / target) + 1`` relevant records when ``r`` have been found. Each run of the
last ``n`` screened records is treated as a random sample (drawn without replacement) of the
records that were still unscreened before it; under the null hypothesis that population held
``K - (r - k)`` relevant records, where ``k`` is the number found in the run. If seeing as few
as ``k`` is improbable for some run (the smallest hypergeometric lower-tail probability
below ``alpha``), the null hypothesis is rejected and screening can stop. Treating a
prioritised order as random is conservative: the model puts relevant records first, so the
records still unscreened are poorer in relevant ones than the sample was.

The same test gives an upper confidence bound on the relevant records left: the largest
number left that the runs seen so far do not reject at ``alpha``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import hypergeom

__all__ = ["StopCheck", "check_stop", "h0_pvalue", "relevant_left_bound", "STOPPING_CITATION"]

STOPPING_CITATION = (
    "Callaghan MW, Müller-Hansen F. Statistical stopping criteria for automated screening in systematic "
    "reviews. Syst Rev 2020;9:254. doi:10.1186/s13643-020-01521-4"
)


def _labels(labels) -> np.ndarray:
    out = np.asarray(labels, dtype=np.int64).ravel()
    if out.size and not np.isin(out, (0, 1)).all():
        raise ValueError("labels must be 0 (irrelevant) or 1 (relevant), in screening order")
    return out


_ALL_RUNS = 200  # runs of every length up to this; longer ones on a geometric grid


def _run_sizes(n_seen: int) -> np.ndarray:
    """Lengths of the runs tested: every length up to 200, then about 1 % apart.

    Testing a subset of the runs can only raise the smallest p-value, so the rule stays
    conservative; it keeps one check on 10,000 screened records to a few milliseconds.
    """
    sizes = np.arange(1, min(n_seen, _ALL_RUNS) + 1)
    if n_seen > _ALL_RUNS:
        grid = np.unique(np.geomspace(_ALL_RUNS, n_seen, num=max(2, int(100 * math.log(n_seen / _ALL_RUNS)) + 2))
                         .round().astype(np.int64))
        sizes = np.unique(np.concatenate([sizes, grid, [n_seen]]))
    return sizes


def _min_p(labels: np.ndarray, n_total: int, relevant_left: int) -> float:
    """Smallest lower-tail probability over the runs of the last n screened records."""
    n_seen = len(labels)
    sizes = _run_sizes(n_seen)
    found_in_run = np.cumsum(labels[::-1])[sizes - 1]
    population = n_total - (n_seen - sizes)  # the run plus everything never screened
    relevant_in_population = relevant_left + found_in_run
    p = hypergeom.cdf(found_in_run, population, np.minimum(relevant_in_population, population), sizes)
    return float(np.min(p))


def h0_pvalue(labels, n_total: int, recall_target: float = 0.95) -> float:
    """p-value of "the recall target has been missed", from the screening order so far.

    Parameters
    ----------
    labels : sequence of 0/1
        The screened records in the order they were screened (1 = relevant).
    n_total : int
        All records that could be screened (screened + unscreened).
    recall_target : float
        The recall the team aims for (0-1).

    Returns 1.0 before anything is screened.
    """
    y = _labels(labels)
    if not 0 < recall_target < 1:
        raise ValueError("recall_target must be between 0 and 1 (exclusive)")
    if n_total < len(y):
        raise ValueError(f"n_total ({n_total}) is smaller than the records screened ({len(y)})")
    if not len(y):
        return 1.0
    r = int(y.sum())
    k_null = math.floor(r / recall_target) + 1  # fewest relevant records with recall < target
    # under H0, relevant records still unscreened after the whole sequence: k_null - r; the
    # population before a run also holds the run's own relevant records (added in _min_p)
    return _min_p(y, n_total, k_null - r)


def relevant_left_bound(labels, n_total: int, alpha: float = 0.05) -> int:
    """Upper (1 - alpha) confidence bound on the relevant records not yet screened.

    The largest number ``m`` of relevant records left among the unscreened ones for which no
    run of the last screened records is improbable (p >= alpha); 0 when all are screened.
    """
    y = _labels(labels)
    unscreened = n_total - len(y)
    if unscreened <= 0:
        return 0
    if not len(y):
        return unscreened

    def p_of(m: int) -> float:
        return _min_p(y, n_total, m)

    if p_of(unscreened) >= alpha:
        return unscreened
    lo, hi = 0, unscreened  # p_of(lo) >= alpha > p_of(hi) once lo is checked; p falls as m grows
    if p_of(0) < alpha:  # cannot happen (k found in a run is always possible with none left)
        return 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if p_of(mid) >= alpha:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class StopCheck:
    """The stopping rule's verdict on one screening order."""

    stop: bool
    recall_target: float
    alpha: float
    p_value: float
    n_screened: int
    n_total: int
    n_relevant_found: int
    relevant_left_upper: int
    relevant_left_point: float
    window: int

    @property
    def why(self) -> str:
        left = self.n_total - self.n_screened
        if left == 0:
            return "every record has been screened"
        if self.n_screened == 0:
            return "nothing screened yet"
        k_null = math.floor(self.n_relevant_found / self.recall_target) + 1
        verdict = "below" if self.stop else "not below"
        return (f"{self.n_relevant_found} relevant found in {self.n_screened} screened; had the recall target "
                f"{self.recall_target:.0%} been missed, at least {k_null - self.n_relevant_found} relevant "
                f"record{'s' if k_null - self.n_relevant_found != 1 else ''} would remain among the {left} unscreened, and the chance of the recent records holding as few "
                f"relevant ones as they did is p = {self.p_value:.3g}, {verdict} {self.alpha:g}")

    def to_dict(self) -> dict:
        return {"stop": self.stop, "recall_target": self.recall_target, "alpha": self.alpha,
                "p_value": self.p_value, "n_screened": self.n_screened, "n_total": self.n_total,
                "n_relevant_found": self.n_relevant_found, "relevant_left_upper": self.relevant_left_upper,
                "relevant_left_point": self.relevant_left_point, "window": self.window, "why": self.why,
                "method": "hypergeometric stopping rule (Callaghan & Müller-Hansen 2020)",
                "citation": STOPPING_CITATION}


def check_stop(labels, n_total: int, recall_target: float = 0.95, alpha: float = 0.05,
               window: int = 100) -> StopCheck:
    """Whether screening can stop with ``recall_target`` at confidence ``1 - alpha``.

    Besides the test, a point estimate of the relevant records left: the share of relevant
    records among the last ``window`` screened times the records left (with a prioritised
    order this overstates what is left, since later records are poorer).
    """
    y = _labels(labels)
    p = h0_pvalue(y, n_total, recall_target)
    left = n_total - len(y)
    recent = y[-window:] if len(y) else y
    point = float(recent.mean() * left) if len(recent) else float("nan")
    return StopCheck(stop=bool(left == 0 or (len(y) > 0 and p < alpha)), recall_target=recall_target, alpha=alpha,
                     p_value=p, n_screened=len(y), n_total=n_total, n_relevant_found=int(y.sum()),
                     relevant_left_upper=relevant_left_bound(y, n_total, alpha), relevant_left_point=point,
                     window=min(window, len(y)))
