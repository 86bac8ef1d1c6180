"""De-duplication of records from several databases.

Two passes, as in the dedup tools reviewers use (EndNote, Covidence, ASySD):

1. exact identifiers: the same DOI or the same PMID;
2. blocked fuzzy matching (rapidfuzz) on the normalised title, then year, first author and
   journal. Candidate pairs come only from records that share a block (the title's first or
   last characters, or first author and year), so the cost grows with block sizes rather than
   with the square of the number of records.

Pairs at or above ``merge_threshold`` with no conflicting DOI, year or first author merge.
Pairs between ``review_threshold`` and ``merge_threshold``, or above it with a conflict,
go to a review list. A merged record keeps every source database: PRISMA counts need them.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from neuromodmap.literature.records import Record
from neuromodmap.provenance import Provenance

__all__ = ["DedupResult", "deduplicate", "normalise_title", "first_author_surname"]

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_BRACKETED = re.compile(r"^\[(.*)\]\.?$")
_STOP_JOURNAL = re.compile(r"\b(?:the|of|and|journal|j)\b")


def _ascii(value: str) -> str:
    if value.isascii():
        return value.lower()
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()


def normalise_title(title: str) -> str:
    """Lower-case ASCII words of a title, without punctuation or translation brackets."""
    title = _BRACKETED.sub(r"\1", title.strip())
    return " ".join(_NON_ALNUM.sub(" ", _ascii(title)).split())


def first_author_surname(authors: list[str]) -> str:
    """The first author's surname, whatever the export's name order."""
    if not authors:
        return ""
    name = authors[0].strip()
    if "," in name:
        surname = name.split(",")[0]
    else:
        words = name.split()
        # MEDLINE "Smith AB": initials come last; "Alan Smith": the surname does
        surname = words[0] if len(words) > 1 and words[-1].isupper() and len(words[-1]) <= 3 else words[-1] if words else ""
    return _NON_ALNUM.sub("", _ascii(surname))


def _normalise_journal(journal: str) -> str:
    text = _NON_ALNUM.sub(" ", _ascii(journal).replace("&", " and "))
    return " ".join(_STOP_JOURNAL.sub(" ", text).split())


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


@dataclass
class DedupResult:
    """Clusters of duplicate records, the pairs behind them, and the review list.

    Attributes
    ----------
    records : list of Record
        The input records.
    clusters : DataFrame
        One row per record: ``record_id``, ``cluster_id``, ``is_primary``, ``source_database``.
    pairs : DataFrame
        Matched pairs: ``record_id_a``, ``record_id_b``, ``rule``, ``title_similarity``,
        ``decision`` (``merged`` or ``review``) and ``reason``.
    """

    records: list[Record]
    clusters: pd.DataFrame
    pairs: pd.DataFrame
    merge_threshold: float
    review_threshold: float
    provenance: Provenance = field(default_factory=lambda: Provenance(source="neuromodmap.literature.deduplicate"))

    @property
    def n_records(self) -> int:
        return len(self.records)

    @property
    def n_unique(self) -> int:
        return int(self.clusters["cluster_id"].nunique()) if len(self.clusters) else 0

    @property
    def n_duplicates_removed(self) -> int:
        return self.n_records - self.n_unique

    @property
    def review(self) -> pd.DataFrame:
        """Borderline pairs for a person to decide."""
        return self.pairs[self.pairs["decision"] == "review"].reset_index(drop=True)

    def duplicate_pairs(self) -> set[frozenset[str]]:
        """Every pair of records that ended in the same cluster."""
        out: set[frozenset[str]] = set()
        for _, group in self.clusters.groupby("cluster_id"):
            ids = list(group["record_id"])
            for i in range(len(ids)):
                for j in range(i + 1, len(ids)):
                    out.add(frozenset((ids[i], ids[j])))
        return out

    def unique_records(self) -> pd.DataFrame:
        """One row per cluster: the most complete record, plus every database it was found in."""
        by_id = {r.record_id: r for r in self.records}
        primary = self.clusters[self.clusters["is_primary"]]
        databases = self.clusters.groupby("cluster_id")["source_database"].agg(lambda s: sorted(set(s)))
        members = self.clusters.groupby("cluster_id")["record_id"].agg(list)
        rows = []
        for record_id, cluster_id in zip(primary["record_id"], primary["cluster_id"], strict=True):
            row = by_id[record_id].model_dump()
            row["cluster_id"] = cluster_id
            row["source_databases"] = databases[cluster_id]
            row["duplicate_ids"] = [m for m in members[cluster_id] if m != record_id]
            rows.append(row)
        return pd.DataFrame(rows)

    def counts_by_database(self) -> pd.DataFrame:
        """Records identified, and unique records contributed, per database."""
        identified = self.clusters.groupby("source_database").size().rename("identified")
        unique_to = (
            self.clusters.groupby("cluster_id")["source_database"].agg(lambda s: set(s))
            .loc[lambda s: s.map(len) == 1].map(lambda s: next(iter(s))).value_counts().rename("only_here")
        )
        return pd.concat([identified, unique_to], axis=1).fillna(0).astype(int).sort_values("identified", ascending=False)

    def to_frame(self) -> pd.DataFrame:
        return self.clusters.copy()

    def methods_sentence(self) -> str:
        return (
            f"Duplicates were removed with neuromodmap {self.provenance.version}: exact DOI or PMID matches, "
            f"then blocked fuzzy matching of normalised titles (rapidfuzz ratio ≥ {self.merge_threshold:g} "
            f"merged when year, first author and DOI agreed; {self.review_threshold:g}–{self.merge_threshold:g} "
            f"or conflicting pairs reviewed by hand). {self.n_records} records gave {self.n_unique} unique "
            f"records ({self.n_duplicates_removed} duplicates removed; {len(self.review)} pairs left for review)."
        )


def _block_keys(title: str, surname: str, year: int | None) -> list[str]:
    compact = title.replace(" ", "")
    keys = []
    if len(compact) >= 10:
        keys.append("t:" + compact[:14])
        keys.append("e:" + compact[-14:])
    if surname and year:
        keys.append(f"a:{surname}:{year}")
    return keys


def deduplicate(
    records: list[Record],
    *,
    merge_threshold: float = 95.0,
    review_threshold: float = 85.0,
    year_tolerance: int = 1,
    max_block: int = 5000,
    decisions: dict[frozenset[str], bool] | None = None,
) -> DedupResult:
    """Find duplicate records.

    Parameters
    ----------
    records : list of Record
        Records from any number of files and databases.
    merge_threshold : float
        Title similarity (rapidfuzz ``ratio``, 0-100) at or above which a pair merges when
        nothing conflicts.
    review_threshold : float
        Title similarity at or above which a pair is at least listed for review. A pair in
        ``[review_threshold, merge_threshold)`` still merges when first author, year and
        journal agree.
    year_tolerance : int
        Years may differ by this much (online-first versus issue year).
    max_block : int
        Blocks larger than this (a very common title start) are skipped for that key; the
        other keys still pair their records.
    decisions : dict, optional
        A reviewer's verdicts on review pairs: ``{frozenset((id_a, id_b)): True}`` merges
        the pair, ``False`` keeps it apart and off the review list.

    Returns
    -------
    DedupResult
    """
    n = len(records)
    titles = [normalise_title(r.title) for r in records]
    surnames = [first_author_surname(r.authors) for r in records]
    journals = [_normalise_journal(r.journal) for r in records]
    uf = _UnionFind(n)
    pair_rows: list[tuple[int, int, str, float, str, str]] = []
    seen: set[tuple[int, int]] = set()

    # pass 1: identifiers
    for attr in ("doi", "pmid"):
        first: dict[str, int] = {}
        for i, record in enumerate(records):
            value = getattr(record, attr)
            if not value:
                continue
            if value in first:
                j = first[value]
                pair = (j, i)
                if pair not in seen:
                    seen.add(pair)
                    uf.union(j, i)
                    pair_rows.append((j, i, f"same {attr.upper()}", float(fuzz.ratio(titles[i], titles[j])),
                                      "merged", ""))
            else:
                first[value] = i

    # pass 2: blocked fuzzy title matching
    blocks: dict[str, list[int]] = defaultdict(list)
    for i in range(n):
        for key in _block_keys(titles[i], surnames[i], records[i].year):
            blocks[key].append(i)
    decisions = decisions or {}

    def consider(i: int, j: int, score: float) -> None:
        decision, reason = _judge(records[i], records[j], score, surnames[i], surnames[j],
                                  journals[i], journals[j], merge_threshold, year_tolerance)
        verdict = decisions.get(frozenset((records[i].record_id, records[j].record_id))) \
            if decision == "review" else None
        if verdict is not None:
            decision, reason = ("merged", "reviewer: duplicate") if verdict else ("kept apart", "reviewer: not a duplicate")
        if decision == "merged":
            uf.union(i, j)
        pair_rows.append((i, j, "fuzzy title", score, decision, reason))

    for members in blocks.values():
        size = len(members)
        if size < 2 or size > max_block:
            continue
        if size <= 16:
            # most blocks hold a handful of records: direct calls beat a cdist matrix
            for x in range(size):
                for y in range(x + 1, size):
                    i, j = members[x], members[y]
                    if i > j:
                        i, j = j, i
                    if (i, j) in seen:
                        continue
                    seen.add((i, j))
                    if uf.find(i) == uf.find(j):
                        continue  # already linked through identifiers or other pairs
                    score = fuzz.ratio(titles[i], titles[j], score_cutoff=review_threshold)
                    if score:
                        consider(i, j, float(score))
            continue
        block_titles = [titles[i] for i in members]
        scores = process.cdist(block_titles, block_titles, scorer=fuzz.ratio, score_cutoff=review_threshold,
                               dtype=np.uint8, workers=1)
        rows, cols = np.nonzero(scores)
        for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
            if a >= b:
                continue
            i, j = sorted((members[a], members[b]))
            if (i, j) in seen:
                continue
            seen.add((i, j))
            if uf.find(i) == uf.find(j):
                continue
            consider(i, j, float(fuzz.ratio(titles[i], titles[j])))

    roots = [uf.find(i) for i in range(n)]
    completeness = [
        (bool(r.doi) + bool(r.abstract) + bool(r.pmid) + bool(r.journal) + bool(r.year) + bool(r.authors),
         len(r.abstract))
        for r in records
    ]
    best: dict[int, int] = {}
    for i, root in enumerate(roots):
        if root not in best or completeness[i] > completeness[best[root]]:
            best[root] = i
    cluster_numbers = {root: k + 1 for k, root in enumerate(sorted(set(roots)))}
    clusters = pd.DataFrame({
        "record_id": [r.record_id for r in records],
        "cluster_id": [f"dup-{cluster_numbers[root]:06d}" for root in roots],
        "is_primary": [best[root] == i for i, root in enumerate(roots)],
        "source_database": [r.source_database for r in records],
    })
    pairs = pd.DataFrame(
        [(records[i].record_id, records[j].record_id, rule, score, decision, reason)
         for i, j, rule, score, decision, reason in pair_rows],
        columns=["record_id_a", "record_id_b", "rule", "title_similarity", "decision", "reason"],
    )
    # a review pair whose records were merged through other pairs needs no review
    if len(pairs):
        cluster_of = dict(zip(clusters["record_id"], clusters["cluster_id"], strict=True))
        same = pairs["record_id_a"].map(cluster_of) == pairs["record_id_b"].map(cluster_of)
        pairs = pairs[~((pairs["decision"] == "review") & same)].reset_index(drop=True)
    provenance = Provenance(
        source="neuromodmap.literature.deduplicate",
        as_of=dt.date.today(),
        extra={"merge_threshold": str(merge_threshold), "review_threshold": str(review_threshold),
               "n_records": str(n)},
    )
    return DedupResult(records=list(records), clusters=clusters, pairs=pairs, merge_threshold=merge_threshold,
                       review_threshold=review_threshold, provenance=provenance)


def _judge(a: Record, b: Record, score: float, surname_a: str, surname_b: str, journal_a: str,
           journal_b: str, merge_threshold: float, year_tolerance: int) -> tuple[str, str]:
    """Merge, or send to review with the reason."""
    conflicts = []
    if a.doi and b.doi and a.doi != b.doi:
        conflicts.append(f"different DOIs ({a.doi} / {b.doi})")
    author_ok = bool(surname_a and surname_b and fuzz.ratio(surname_a, surname_b) >= 80)
    journal_ok = bool(journal_a and journal_b and fuzz.token_set_ratio(journal_a, journal_b) >= 80)
    # online-first and issue years can be two years apart; allow it when all else agrees
    tolerance = year_tolerance + 1 if (score >= merge_threshold and author_ok and journal_ok) else year_tolerance
    # same volume and first page: a garbled year field (EBSCO "2007/08//2014 Sep") is no conflict
    same_place = bool(a.volume and a.pages and a.volume == b.volume
                      and a.pages.split("-")[0] == b.pages.split("-")[0])
    if a.year and b.year and abs(a.year - b.year) > tolerance and not (same_place and author_ok):
        conflicts.append(f"years {a.year} / {b.year}")
    if surname_a and surname_b and not author_ok:
        conflicts.append(f"first authors {surname_a} / {surname_b}")
    if conflicts:
        return "review", "; ".join(conflicts)
    if score >= merge_threshold:
        return "merged", ""
    if author_ok and journal_ok and a.year and b.year:
        return "merged", "similar title, same first author, year and journal"
    return "review", f"title similarity {score:.0f} below {merge_threshold:g}"
