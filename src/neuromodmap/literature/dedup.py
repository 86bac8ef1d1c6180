"""De-duplication of records from several databases, conservative by design.

A false merge silently removes a study from a systematic review, so a pair of records is merged
automatically only when they agree *beyond* the title, on one of:

* the same DOI or PMID;
* a similar title and the same journal with the same volume or first page;
* a similar title and the same first author, year and first page;
* the same journal, volume, first page, first author and year when the titles differ (a title
  translated by one database: ``[Bracketed English title]`` against the original language).

Nothing conflicts in a merged pair: two DOIs, volumes, first pages, journals or years (more
than one apart) that differ keep it apart, and so does a reviewer's "not duplicate". Clusters
never join records that conflict, whatever chain of pairs links them.

Records that are related but are *not* the same publication are **linked** with a named
relation, never merged: an erratum or correction notice and its article, a retraction notice,
a conference abstract and the full article, one text co-published in several journals, and a
recurring title (an editorial column) in another issue. A similar title without enough
agreeing fields goes to **review** with the fields that agree and those that disagree.

Nothing is deleted: every input record keeps a row, its cluster and the rule that merged it;
every pair keeps its rule and evidence; a reviewer's verdict (``decisions``) undoes or adds a
merge. Candidate pairs come from blocks (the same DOI or PMID, the title's first or last
characters, first author and year, volume and first page), so the cost grows with block sizes
rather than with the square of the number of records.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from neuromodmap.literature.records import Record
from neuromodmap.provenance import Provenance

__all__ = ["DedupResult", "deduplicate", "normalise_title", "first_author_surname", "score_dedup", "RULES"]

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_BRACKETED = re.compile(r"^\[(.*)\]\.?$")
_TRAILING_BRACKETS = re.compile(r"(?:\s*\[[^\[\]]*\]\s*\.?)+$")
_TRAILING_PAREN_NOTE = re.compile(
    r"\s*\((?:[^()]*\b(?:vol|volume|pg|erratum|review|refs|english|chinese|german|french|spanish|japanese|"
    r"russian|italian|portuguese|polish|dutch|korean|abstract)\b[^()]*|[^()]*\(\d{4}\)[^()]*)\)\s*\.?$",
    re.IGNORECASE)
_RETRACTED_PREFIX = re.compile(r"^\s*\[?\s*(?:retracted(?: article)?|withdrawn)\s*[:.\]-]\s*", re.IGNORECASE)
_TRANSLATION = re.compile(r"\[(?:[^\[\]\s]+\s+){3,}[^\[\]]*\]")  # a title in brackets of 4+ words
_HTML_TAG = re.compile(r"</?[a-z][^>]{0,40}>", re.IGNORECASE)
_STOP_JOURNAL = frozenset({"the", "of", "and", "a", "an", "for", "in", "on", "de", "la", "und", "fur", "et"})
_PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "das", "du", "le",
                        "la", "ten", "ter", "vom", "zu", "al", "el", "st", "mc", "jr", "sr", "ii", "iii"})

# notices about another record: linked to it, never merged with it
_NOTICE = re.compile(
    r"^\s*\[?\s*(?:(?:published\s+)?errat(?:um|a)|corrigend(?:um|a)|corrections?|(?:notice\s+of\s+)?retraction(?:\s+notice)?|"
    r"expression\s+of\s+concern|withdrawal|addend(?:um|a))\b",
    re.IGNORECASE)
_NOTICE_PREFIX = re.compile(
    r"^\s*\[?\s*(?:(?:published\s+)?errat(?:um|a)|corrigend(?:um|a)|corrections?|notice\s+of\s+retraction|"
    r"retraction(?:\s+notice)?|expression\s+of\s+concern)(?:\s+(?:to|for|of|on))?\s*(?:[:.\-\u2013\u2014]|\bto\b)\s*",
    re.IGNORECASE)
_CITES_ORIGINAL = re.compile(
    r"\((?:vol|volume)\.?\s*\d+\s*,\s*(?:pg|p|page|pages)\.?\s*[a-z]?\d+"  # WoS: (vol 360, pg 542, 2009)
    r"|\([^()]*\(\d{4}\)\s*\d+[^()]*\([^()]*\d+[^()]*\)\s*\)\s*\.?$",  # Embase: (Journal (2009) 360 (542-544))
    re.IGNORECASE)
_RETRACTION_WORDS = re.compile(r"retract|withdraw|expression of concern", re.IGNORECASE)
_NOTICE_TYPES = re.compile(r"errat|correct|retraction of|expression of concern", re.IGNORECASE)
_CONFERENCE_TYPES = frozenset({"conf", "cpaper", "abst", "inproceedings", "proceedings", "conference",
                               "conference abstract", "conference paper", "meeting abstract", "congress"})
_CONFERENCE_WORDS = re.compile(
    r"\b(?:conference|congress|meeting|symposium|abstracts?|workshop|annual\s+scientific|colloquium|"
    r"proceedings\s+of\s+the\s+(?:\d|\w+\s+(?:annual|international|conference)))\b", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")

#: the merge rules, strongest first, with what each needs beyond a similar title
RULES = {
    "reviewer": "a reviewer's verdict",
    "same DOI": "the same DOI (titles not contradicting)",
    "same PMID": "the same PubMed id",
    "title + volume + first page": "the same title, volume and first page",
    "title + journal + volume/pages": "the same title and journal, and the same first page or volume and issue",
    "title + first author + year + pages": "the same title, first author, year and first page",
    "title + journal + volume + first author + year": "the same title (4 words or more), journal, volume, "
                                                      "first author and year; first pages not comparable (on "
                                                      "one side only, or an e-locator against a print page)",
    "title + conference + year + first author": "two conference papers: the same title, conference, year and "
                                                "first author",
    "similar title + journal + pages + first author + year": "a similar title (≥ review threshold), and the same "
                                                             "journal, volume, first page, first author and year",
    "translated title + volume + pages + year": "one title in brackets (translated by the database), the same "
                                                "volume, first page and year, and no other author first",
}


def _ascii(value: str) -> str:
    if value.isascii():
        return value.lower()
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()


def normalise_title(title: str) -> str:
    """Lower-case ASCII words of a title, without database notes or translation brackets.

    ``[Bracketed English title]`` is unwrapped; trailing notes such as ``[Review] [57 refs]``,
    ``[Chinese]``, ``(vol 360, pg 542, 2009)`` and ``RETRACTED:`` prefixes are removed.
    """
    title = title.strip()
    if "<" in title:
        title = _HTML_TAG.sub(" ", title).strip()
    if title[:1] in "[RrWwEeCcNnAa":  # cheap test before the prefix expressions
        title = _RETRACTED_PREFIX.sub("", title)
        # "Erratum: <title>" pairs with <title>; the notice flag keeps them apart
        title = _NOTICE_PREFIX.sub("", title)
    if title.endswith(("]", ")", "].", ").")):
        title = _BRACKETED.sub(r"\1", title)
        for _ in range(3):
            stripped = _TRAILING_PAREN_NOTE.sub("", _TRAILING_BRACKETS.sub("", title)).strip()
            if stripped == title or not stripped:
                break
            title = stripped
        title = _BRACKETED.sub(r"\1", title.strip())
    return " ".join(_NON_ALNUM.sub(" ", _ascii(title)).split())


def _name_tokens(name: str) -> tuple[str, ...]:
    words = _NON_ALNUM.sub(" ", _ascii(name)).split()
    return tuple(w for w in words if len(w) > 1 and w not in _PARTICLES)


def first_author_surname(authors: list[str]) -> str:
    """The first author's surname, whatever the export's name order."""
    if not authors:
        return ""
    return _surname(authors[0])


@functools.lru_cache(maxsize=65536)
def _surname(name: str) -> str:
    name = name.strip()
    if "," in name:
        surname = name.split(",")[0]
    else:
        words = name.split()
        # MEDLINE "Smith AB": initials come last; "Alan Smith": the surname does
        surname = words[0] if len(words) > 1 and words[-1].isupper() and len(words[-1]) <= 3 else words[-1] if words else ""
    return _NON_ALNUM.sub("", _ascii(surname))


_JOURNAL_NOTES = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_JOURNAL_SPLIT = re.compile(r"\.(?=[A-Z])|:\s|\s[-=]\s")
_GENERIC_JOURNAL = frozenset({"journal", "j", "international", "int", "american", "am", "european", "eur",
                              "british", "br", "annals", "ann", "archives", "arch", "review", "reviews", "rev"})


def _tokens(text: str) -> tuple[str, ...]:
    words = _NON_ALNUM.sub(" ", _ascii(text).replace("&", " and ")).split()
    return tuple(w for w in words if w not in _STOP_JOURNAL)


@functools.lru_cache(maxsize=65536)
def _journal_tokens(journal: str) -> tuple[tuple[str, ...], ...]:
    """Word variants of a journal name: whole, and the part before a subtitle or a second title."""
    text = _JOURNAL_NOTES.sub(" ", journal)
    whole = _tokens(text)
    first = _tokens(_JOURNAL_SPLIT.split(text)[0])
    return (whole, first) if first and first != whole else (whole,)


@functools.lru_cache(maxsize=262144)
def _journals_compatible(a: tuple[tuple[str, ...], ...], b: tuple[tuple[str, ...], ...]) -> bool:
    """Same journal, allowing ISO abbreviations (``New Engl J Med`` = ``New England Journal of Medicine``),
    subtitles (``JAMA`` = ``JAMA: Journal of the American Medical Association``) and notes in brackets."""
    return any(_journal_names_compatible(x, y) for x in a for y in b)


def _abbreviates(short: str, word: str) -> bool:
    """``dtsch`` abbreviates ``deutsche``: the same first letter, the rest in order."""
    if len(short) < 3 or len(short) >= len(word) or short[0] != word[0]:
        return False
    it = iter(word[1:])
    return all(ch in it for ch in short[1:])


def _journal_names_compatible(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if not a or not b:
        return False
    if a == b:
        return True
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if long_[:len(short)] == short and set(short) - _GENERIC_JOURNAL:
        return True  # "The Journal of trauma" = "Journal of Trauma-Injury Infection & Critical Care"
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    # every word of the shorter name abbreviates a word of the longer one, in order
    k = 0
    matched = 0
    for word in short:
        while k < len(long_) and not (long_[k].startswith(word) or (len(word) >= 4 and word.startswith(long_[k]))
                                      or (len(word) > 3 and fuzz.ratio(word, long_[k]) >= 85)
                                      or _abbreviates(word, long_[k])):
            k += 1
        if k == len(long_):
            break
        matched += 1
        k += 1
    if matched == len(short) and len(short) >= min(2, len(long_)):
        # the longer name's unmatched words must be few (not a different journal sharing a prefix)
        return len(long_) - len(short) <= max(1, len(long_) // 2)
    if "".join(a) == "".join(b):
        return True
    return fuzz.token_set_ratio(" ".join(a), " ".join(b)) >= 92 and abs(len(a) - len(b)) <= 1


_PAGE_START = re.compile(r"""[\s"'(\[]*(?:suppl(?:ement)?\.?\s*\d*\s*[:,]?\s*)?([a-z]{0,2})(\d+)""", re.IGNORECASE)


def _first_page(pages: str) -> str:
    """The first page's digits (``S34``, ``c37`` and ``e12724`` give ``34``, ``37`` and ``12724``).

    Empty when the field does not start with a page (Ovid's ``Suppl-42`` and ``t-20`` hold only
    the end of a range).
    """
    match = _PAGE_START.match(pages or "")
    return match.group(2).lstrip("0") if match else ""


def _page_prefix(pages: str) -> str:
    """The letters before the first page (``e`` of ``e12724``, ``a`` of BMJ's ``a1754``)."""
    match = _PAGE_START.match(pages or "")
    return match.group(1).lower() if match else ""


_RANGE_START = re.compile(r"(?:^|[,;+]\s*)[a-z]{0,2}(\d+)", re.IGNORECASE)


def _page_starts(pages: str) -> frozenset[str]:
    """First pages of every range in a multi-part pages field (``233-8, 230-5, 246-51``)."""
    return frozenset(m.lstrip("0") for m in _RANGE_START.findall((pages or "").strip(" \"'")))


def _volume(volume: str) -> str:
    match = _DIGITS.search(volume or "")
    return match.group(0).lstrip("0") if match else ""


@dataclass
class _Norm:
    title: str
    compact: str
    n_words: int
    surname: str
    first_tokens: tuple[str, ...]
    authors: tuple[str, ...]
    journal: tuple[tuple[str, ...], ...]
    volume: str
    issue: str
    bracketed: bool
    page: str
    page_starts: frozenset[str]
    page_prefix: str
    year: int | None
    doi: str | None
    pmid: str | None
    notice: bool
    retraction: bool
    conference: bool
    generic: bool


@functools.lru_cache(maxsize=65536)
def _is_conference_venue(journal: str) -> bool:
    return bool(_CONFERENCE_WORDS.search(journal))


def _normalise(record: Record) -> _Norm:
    title = normalise_title(record.title)
    raw_title = record.title.strip()
    notice = bool((raw_title[:1] in "[EeCcRrNnWwAaPp" and _NOTICE.match(raw_title))
                  or ("(" in raw_title and _CITES_ORIGINAL.search(raw_title))
                  or any(_NOTICE_TYPES.search(t) for t in record.publication_types if "retracted" not in t.lower()))
    journal = _journal_tokens(record.journal) if record.journal.strip() else ()
    conference = bool(record.record_type.strip().lower() in _CONFERENCE_TYPES
                      or (record.journal and _is_conference_venue(record.journal))
                      or any("congress" in t.lower() or "conference" in t.lower() for t in record.publication_types))
    page = _first_page(record.pages)
    first = record.authors[0] if record.authors else ""
    return _Norm(
        title=title,
        compact=title.replace(" ", ""),
        n_words=title.count(" ") + 1 if title else 0,
        surname=_surname(first) if first else "",
        first_tokens=_name_tokens(first) if first else (),
        authors=tuple(record.authors[:12]),
        journal=journal,
        volume=_volume(record.volume),
        issue=_volume(record.issue),
        bracketed=bool(raw_title.startswith("[") or ("[" in raw_title and _TRANSLATION.search(raw_title))),
        page=page,
        page_starts=_page_starts(record.pages) if page else frozenset(),
        page_prefix=_page_prefix(record.pages) if page else "",
        year=record.year,
        doi=record.doi,
        pmid=record.pmid,
        notice=notice,
        retraction=notice and bool(_RETRACTION_WORDS.search(raw_title[:60] + " " + " ".join(record.publication_types))),
        conference=conference,
        generic=title in _GENERIC_TITLES or (bool(title) and title.count(" ") < 1),
    )


class _Clusters:
    """Union-find whose unions refuse to join records that conflict."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.members: dict[int, list[int]] = {i: [i] for i in range(n)}

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def blocking_pair(self, i: int, j: int, conflict) -> tuple[int, int] | None:
        a, b = self.find(i), self.find(j)
        if a == b:
            return None
        for x in self.members[a]:
            for y in self.members[b]:
                if conflict(x, y):
                    return x, y
        return None

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a == b:
            return
        keep, gone = min(a, b), max(a, b)
        self.parent[gone] = keep
        self.members[keep].extend(self.members.pop(gone))


@dataclass
class DedupResult:
    """Clusters of duplicate records, the pairs behind them, the links and the review list.

    Attributes
    ----------
    records : list of Record
        The input records, all of them (nothing is deleted).
    clusters : DataFrame
        One row per record: ``record_id``, ``cluster_id``, ``is_primary``, ``source_database``,
        ``source_file``, ``source_position`` and ``rule`` (the strongest rule that merged the
        record into its cluster; empty for a record left alone).
    pairs : DataFrame
        Pairs that were compared and found related: ``record_id_a``, ``record_id_b``, ``rule``,
        ``title_similarity``, ``decision`` (``merged``, ``linked``, ``review`` or ``kept apart``),
        ``reason``, ``relation`` (for linked pairs: ``erratum``, ``retraction notice``,
        ``conference abstract``, ``co-published``, ``recurring title``), ``agree`` and ``disagree``
        (the fields that agree and those that conflict, ``; ``-separated).
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
        """Uncertain pairs for a person to decide, with the reason and the fields that agree and disagree."""
        return self.pairs[self.pairs["decision"] == "review"].reset_index(drop=True)

    @property
    def links(self) -> pd.DataFrame:
        """Related records that are not duplicates (errata, conference abstracts, co-publications...)."""
        return self.pairs[self.pairs["decision"] == "linked"].reset_index(drop=True)

    def duplicate_pairs(self) -> set[frozenset[str]]:
        """Every pair of records that ended in the same cluster."""
        return _pairs_of(self.clusters.groupby("cluster_id")["record_id"].agg(list))

    def groups(self) -> pd.DataFrame:
        """The outcome one row per record, as ``literature dedup --groups`` writes it.

        Columns ``source_file``, ``source_position`` (1-based order in its file), ``record_id``,
        ``group_id`` (shared by records merged as one; empty for a record left alone) and ``rule``.
        """
        frame = self.clusters[["source_file", "source_position", "record_id", "cluster_id", "rule"]].copy()
        sizes = frame.groupby("cluster_id")["record_id"].transform("size")
        frame["group_id"] = frame["cluster_id"].where(sizes > 1, "")
        return frame[["source_file", "source_position", "record_id", "group_id", "rule"]]

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
        merged = self.pairs[self.pairs["decision"] == "merged"]
        by_rule = merged["rule"].value_counts()
        rules = ", ".join(f"{rule} {n}" for rule, n in by_rule.items()) or "none"
        return (
            f"Duplicates were identified with neuromodmap {self.provenance.version}, which merges two records only "
            f"when they agree beyond the title (the same DOI or PMID; or a title similarity ≥ {self.merge_threshold:g} "
            f"with the same journal and volume or first page, or with the same first author, year and first page; "
            f"or the same journal, volume, first page, first author and year) and nothing conflicts; errata, "
            f"retraction notices, conference abstracts and co-published texts were linked, not merged. "
            f"{self.n_records} records gave {self.n_unique} unique records ({self.n_duplicates_removed} duplicates; "
            f"merged pairs by rule: {rules}; {len(self.links)} links; {len(self.review)} pairs left for review)."
        )


def _block_keys(norm: _Norm) -> list[str]:
    keys = []
    compact = norm.compact
    if len(compact) >= 10:
        keys.append("t:" + compact[:14])
        keys.append("e:" + compact[-14:])
    if norm.surname and norm.year:
        keys.append(f"a:{norm.surname}:{norm.year}")
    if norm.volume and norm.page:
        keys.append(f"p:{norm.volume}:{norm.page}")
    if norm.doi:
        keys.append("d:" + norm.doi)
    if norm.pmid:
        keys.append("m:" + norm.pmid)
    return keys


_PREPRINT_DOI = re.compile(r"^10\.(?:31234|31219|31235|31222|1101|21203|2139|20944|48550|36227|22541|32942|35542|5281)/")
_GENERIC_TITLES = frozenset({
    "editorial", "guest editorial", "editorial notes", "editorial note", "editors comments", "editor s comments",
    "editorial introduction", "introduction", "preface", "foreword", "commentary", "comment", "letter",
    "letter to the editor", "reply", "response", "correspondence", "in this issue", "news", "book review",
    "book reviews", "abstracts", "erratum", "correction", "corrigendum", "index", "contents", "editors note",
    "from the editor", "from the editors", "retraction", "reviewers", "acknowledgement", "acknowledgements",
})


def _is_preprint(doi: str | None) -> bool:
    """A DOI of a preprint server (PsyArXiv/OSF, bioRxiv/medRxiv, Research Square, SSRN, arXiv...)."""
    return bool(doi and _PREPRINT_DOI.match(doi))


def _title_similarity(a: _Norm, b: _Norm) -> tuple[float, bool]:
    """Title similarity 0-100, and whether one title is contained in the other."""
    if not a.title or not b.title:
        return 0.0, False
    if a.compact == b.compact:
        return 100.0, False
    score = float(fuzz.ratio(a.title, b.title))
    short, long_ = (a, b) if len(a.compact) <= len(b.compact) else (b, a)
    contained = short.n_words >= 4 and (long_.compact.startswith(short.compact) or long_.compact.endswith(short.compact))
    return score, contained


@functools.lru_cache(maxsize=4096)
def _surnames(authors: tuple[str, ...]) -> frozenset[str]:
    return frozenset(s for s in map(_surname, authors) if s)


def _first_author(a: _Norm, b: _Norm) -> str:
    """``same`` (the same first author, whatever the name order), ``listed`` (one's first author is
    among the other's authors), ``different``, or ``""`` when one side has no authors."""
    if not a.surname or not b.surname:
        return ""
    if a.surname == b.surname or (set(a.first_tokens) & set(b.first_tokens)):
        return "same"
    if fuzz.ratio(a.surname, b.surname) >= 80:
        return "same"
    if a.surname in _surnames(b.authors) or b.surname in _surnames(a.authors):
        return "listed"
    return "different"


@dataclass
class _Comparison:
    title: float
    contained: bool
    agree: list[str]
    conflicts: list[str]
    journal_ok: bool
    volume_ok: bool
    issue_ok: bool
    page_ok: bool
    author: str
    year_ok: bool
    same_year: bool
    same_id: str  # "DOI" / "PMID" / ""


def _compare(a: _Norm, b: _Norm, title: float, contained: bool, year_tolerance: int) -> _Comparison:
    agree: list[str] = []
    conflicts: list[str] = []
    same_id = ""
    if a.doi and b.doi:
        if a.doi == b.doi:
            agree.append("DOI")
            same_id = "DOI"
        else:
            conflicts.append("DOI")
    if a.pmid and b.pmid:
        if a.pmid == b.pmid:
            agree.append("PMID")
            same_id = same_id or "PMID"
        else:
            conflicts.append("PMID")
    if title >= 85 or contained:
        agree.append("title" if title >= 85 else "title (one inside the other)")
    volume_ok = bool(a.volume and a.volume == b.volume)
    page_ok = bool(a.page and (a.page == b.page or (len(a.page_starts) > 1 and len(b.page_starts) > 1
                                                    and a.page_starts == b.page_starts)))
    journal_ok = bool(a.journal and b.journal and _journals_compatible(a.journal, b.journal))
    if a.journal and b.journal:
        # journal names are the least reliable field: with volume and first page agreeing (or two
        # conference papers on the same pages), a name the abbreviation rules cannot match is no conflict
        if journal_ok:
            agree.append("journal")
        elif not ((volume_ok and page_ok) or (page_ok and a.conference and b.conference)):
            conflicts.append("journal")
    if a.volume and b.volume:
        (agree if volume_ok else conflicts).append("volume")
    issue_ok = bool(a.issue and a.issue == b.issue)
    if a.issue and b.issue and not issue_ok and not a.page and not b.page:
        conflicts.append("issue")  # a column in each issue of one volume ("Editor's Comments")
    # page 1 against an article number is the page count of an online-only article ("1-6"); an
    # e-locator against a print page (BMJ "a1754" / "969-972") is another numbering, not a conflict
    if a.page and b.page and (page_ok or ("1" not in (a.page, b.page) and a.page_prefix == b.page_prefix)):
        (agree if page_ok else conflicts).append("first page")
    author = _first_author(a, b)
    if author:
        if author == "different":
            # a group author, or a name mangled by one database: no conflict when the title,
            # volume and first page all agree
            if not (title >= 95 and volume_ok and page_ok):
                conflicts.append("first author")
        else:
            agree.append("first author" if author == "same" else "first author among the other's authors")
    year_ok = same_year = False
    if a.year and b.year:
        gap = abs(a.year - b.year)
        # same volume and first page: a garbled or online-first year is no conflict
        year_ok = gap <= year_tolerance
        same_year = gap == 0
        if year_ok:
            agree.append("year")
        elif not (volume_ok and page_ok and "journal" not in conflicts):
            # the same journal, volume and first page: a garbled year ("2007/08//2014 Sep") is no conflict
            conflicts.append("year")
    return _Comparison(title, contained, agree, conflicts, journal_ok, volume_ok, issue_ok, page_ok, author, year_ok,
                       same_year, same_id)


def _judge(a: _Norm, b: _Norm, c: _Comparison, merge_threshold: float,
           review_threshold: float) -> tuple[str, str, str, str]:
    """(decision, rule, relation, reason) for a compared pair."""
    title = c.title
    similar = title >= review_threshold or c.contained
    # an identifier first: one database may label the correction notice that another does not
    if c.same_id == "DOI" and "PMID" not in c.conflicts:
        if a.title and b.title and title < 60 and not c.contained:
            return "review", "", "", f"same DOI but different titles (similarity {title:.0f})"
        return "merged", "same DOI", "", ""
    if c.same_id == "PMID" and "DOI" not in c.conflicts:
        return "merged", "same PMID", "", ""
    if a.notice != b.notice:
        if (a if a.notice else b).retraction:
            return "linked", "", "retraction notice", "one record is a retraction notice about the other"
        return "linked", "", "erratum", "one record is an erratum or correction about the other"
    same_place = c.volume_ok and c.page_ok
    if a.conference != b.conference and similar and not same_place:
        return "linked", "", "conference abstract", "a conference abstract or paper and a journal article"
    author_same = c.author == "same"
    if c.conflicts:
        hard = set(c.conflicts)
        if not (similar or title >= merge_threshold):
            return "", "", "", ""
        if "DOI" in hard and _is_preprint(a.doi) != _is_preprint(b.doi):
            return "linked", "", "preprint", "a preprint and the published article"
        if a.generic or b.generic:
            return "kept apart", "", "", f"a generic title ({a.title!r}) with conflicting {', '.join(c.conflicts)}"
        if title >= merge_threshold or c.contained:
            if "journal" in hard and not (a.conference or b.conference):
                return ("linked", "", "co-published",
                        "the same title in different journals (a co-published text or a duplicate publication)")
            if hard & {"volume", "year", "issue"} and "journal" not in hard:
                if min(a.n_words, b.n_words) < 6:
                    return "kept apart", "", "recurring title", "the same short title in another volume, issue or year"
                return ("review", "", "", "the same title in another volume, issue or year (an online-first and "
                        "an issue record?): conflicting " + ", ".join(c.conflicts))
        if "DOI" in hard and hard & {"first page", "volume", "journal"}:
            return "kept apart", "", "", "different DOIs and " + ", ".join(sorted(hard - {"DOI"}))
        if title >= merge_threshold or c.contained or hard <= {"first author", "DOI", "PMID"}:
            return "review", "", "", "conflicting " + ", ".join(c.conflicts)
        return "", "", "", ""
    if title >= merge_threshold:
        if same_place:
            return "merged", "title + volume + first page", "", ""
        if c.journal_ok and (c.page_ok or (c.volume_ok and c.issue_ok)):
            return "merged", "title + journal + volume/pages", "", ""
        if author_same and c.year_ok and c.page_ok:
            return "merged", "title + first author + year + pages", "", ""
        if a.conference and b.conference and c.journal_ok and author_same and c.same_year:
            return "merged", "title + conference + year + first author", "", ""
        if (c.journal_ok and c.volume_ok and author_same and c.year_ok and min(a.n_words, b.n_words) >= 4
                and "first page" not in c.agree and "first page" not in c.conflicts):  # pages not comparable
            return "merged", "title + journal + volume + first author + year", "", ""
    if similar and c.journal_ok and same_place and author_same and c.year_ok:
        return "merged", "similar title + journal + pages + first author + year", "", ""
    if ((a.bracketed or b.bracketed) and same_place and c.year_ok
            and (c.author == "same" or (not c.author and (c.journal_ok or not (a.journal and b.journal))))):
        return "merged", "translated title + volume + pages + year", "", ""
    if (not a.title or not b.title) and same_place and (c.journal_ok or author_same):
        return ("review", "", "", "no title on one side; " + ", ".join(x for x in c.agree) + " agree")
    if similar:
        missing = [name for name, ok in (("journal", c.journal_ok), ("volume or first page", c.volume_ok or c.page_ok),
                                         ("first author", author_same), ("year", c.year_ok)) if not ok]
        return ("review", "", "",
                f"title similarity {title:.0f}; not enough beyond the title to merge (no agreeing "
                f"{', '.join(missing) or 'pages'})")
    return "", "", "", ""


_RULE_RANK = {rule: rank for rank, rule in enumerate(RULES)}


def deduplicate(
    records: list[Record],
    *,
    merge_threshold: float = 95.0,
    review_threshold: float = 85.0,
    year_tolerance: int = 1,
    max_block: int = 5000,
    decisions: dict[frozenset[str], bool] | None = None,
) -> DedupResult:
    """Find duplicate records, conservatively.

    Parameters
    ----------
    records : list of Record
        Records from any number of files and databases.
    merge_threshold : float
        Title similarity (rapidfuzz ``ratio`` of normalised titles, 0-100) at or above which a
        title counts as the same. A merge still needs a DOI, PMID, or journal/volume/pages/author
        agreement (see the module docstring).
    review_threshold : float
        Title similarity at or above which an unconfirmed pair goes to the review list.
    year_tolerance : int
        Years may differ by this much (online-first versus issue year); one more when volume
        and first page agree.
    max_block : int
        Blocks larger than this (a very common title start) are skipped for that key; the
        other keys still pair their records.
    decisions : dict, optional
        A reviewer's verdicts on pairs: ``{frozenset((id_a, id_b)): True}`` merges the pair,
        ``False`` keeps the two records apart (also undoing an automatic merge) and off the
        review list.

    Returns
    -------
    DedupResult
    """
    n = len(records)
    norms = [_normalise(r) for r in records]
    decisions = decisions or {}
    index = {r.record_id: i for i, r in enumerate(records)}
    cannot: set[tuple[int, int]] = set()
    forced: list[tuple[int, int]] = []
    for pair, verdict in decisions.items():
        ids = sorted(pair)
        if len(ids) != 2 or ids[0] not in index or ids[1] not in index:
            continue
        i, j = sorted((index[ids[0]], index[ids[1]]))
        if verdict:
            forced.append((i, j))
        else:
            cannot.add((i, j))

    # candidate pairs from blocks
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, norm in enumerate(norms):
        for key in _block_keys(norm):
            blocks[key].append(i)
    candidates: set[tuple[int, int]] = set()
    for key, members in blocks.items():
        size = len(members)
        if size < 2 or size > max_block:
            continue
        if size <= 40 or key[0] in "dm":
            for x in range(size):
                for y in range(x + 1, size):
                    i, j = members[x], members[y]
                    candidates.add((i, j) if i < j else (j, i))
            continue
        if key[0] == "p":
            continue  # volume 1, page 1 of many journals: the title keys pair these
        block_titles = [norms[i].title for i in members]
        scores = process.cdist(block_titles, block_titles, scorer=fuzz.ratio, score_cutoff=review_threshold,
                               dtype=np.uint8, workers=1)
        rows, cols = np.nonzero(scores)
        for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
            if a < b:
                i, j = members[a], members[b]
                candidates.add((i, j) if i < j else (j, i))

    comparisons: dict[tuple[int, int], _Comparison] = {}

    def compare(i: int, j: int, similarity: tuple[float, bool] | None = None) -> _Comparison:
        key = (i, j) if i < j else (j, i)
        c = comparisons.get(key)
        if c is None:
            title, contained = similarity or _title_similarity(norms[key[0]], norms[key[1]])
            c = comparisons[key] = _compare(norms[key[0]], norms[key[1]], title, contained, year_tolerance)
        return c

    def conflict(i: int, j: int, by_id: bool = False) -> bool:
        """Whether records i and j may not share a cluster. Joining by DOI or PMID, only another
        identifier (or a notice, or a reviewer) stands in the way: a wrong first page is then the
        database's error. Joining on bibliographic fields, any conflict but the first author does."""
        key = (i, j) if i < j else (j, i)
        if key in cannot:
            return True
        a, b = norms[key[0]], norms[key[1]]
        if a.notice != b.notice and not (a.doi and a.doi == b.doi) and not (a.pmid and a.pmid == b.pmid):
            return True
        if by_id and not ((a.doi and b.doi) or (a.pmid and b.pmid)):
            return False
        c = compare(*key)
        hard = set(c.conflicts) - {"first author"}
        return bool(hard & {"DOI", "PMID"}) if by_id else bool(hard)

    merges: list[tuple[int, float, int, int, str]] = []
    other: list[tuple[int, int, str, float, str, str, str]] = []
    for i, j in sorted(candidates):
        a, b = norms[i], norms[j]
        title, contained = _title_similarity(a, b)
        if (title < review_threshold and not contained and not (a.doi and a.doi == b.doi)
                and not (a.pmid and a.pmid == b.pmid) and not (a.volume and a.page and a.volume == b.volume
                                                               and a.page == b.page)):
            continue
        c = compare(i, j, (title, contained))
        decision, rule, relation, reason = _judge(a, b, c, merge_threshold, review_threshold)
        if (i, j) in cannot:
            decision, rule, reason = "kept apart", "reviewer", "reviewer: not a duplicate"
        if decision == "merged":
            merges.append((_RULE_RANK[rule], -title, i, j, rule))
        elif decision:
            other.append((i, j, relation, title, decision, rule, reason))
    # a reviewer's merges come last: automatic merges are checked for conflicts among themselves
    # first, then the reviewer joins what they decided, whatever conflicts they accepted
    for i, j in forced:
        merges.append((len(_RULE_RANK), -compare(i, j).title, i, j, "reviewer"))

    clusters = _Clusters(n)
    record_rule: dict[int, tuple[int, str]] = {}
    pair_rows: list[tuple] = []
    for rank, negative_title, i, j, rule in sorted(merges):
        c = compare(i, j)
        by_id = rule in ("same DOI", "same PMID")
        blocking = None if rule == "reviewer" else clusters.blocking_pair(
            i, j, lambda x, y, by_id=by_id: conflict(x, y, by_id))
        if blocking is not None:
            x, y = blocking
            why = ("which a reviewer kept apart" if (min(x, y), max(x, y)) in cannot
                   else "which conflict (" + ", ".join(compare(x, y).conflicts or ["a notice and its article"]) + ")")
            pair_rows.append((i, j, rule, -negative_title, "review", "",
                              f"{rule}, but it would join {records[x].record_id} and {records[y].record_id}, {why}",
                              c))
            continue
        clusters.union(i, j)
        pair_rows.append((i, j, rule, -negative_title, "merged", "", "", c))
        for k in (i, j):
            if k not in record_rule or rank < record_rule[k][0]:
                record_rule[k] = (rank, rule)
    for i, j, relation, title, decision, rule, reason in other:
        pair_rows.append((i, j, rule, title, decision, relation, reason, compare(i, j)))

    roots = [clusters.find(i) for i in range(n)]
    completeness = [
        (bool(r.doi) + bool(r.abstract) + bool(r.pmid) + bool(r.journal) + bool(r.year) + bool(r.authors)
         + bool(r.pages) + bool(r.title), len(r.abstract))
        for r in records
    ]
    best: dict[int, int] = {}
    for i, root in enumerate(roots):
        if root not in best or completeness[i] > completeness[best[root]]:
            best[root] = i
    cluster_numbers = {root: k + 1 for k, root in enumerate(sorted(set(roots)))}
    frame = pd.DataFrame({
        "record_id": [r.record_id for r in records],
        "cluster_id": [f"dup-{cluster_numbers[root]:06d}" for root in roots],
        "is_primary": [best[root] == i for i, root in enumerate(roots)],
        "source_database": [r.source_database for r in records],
        "source_file": [r.source_file for r in records],
        "source_position": [r.source_position for r in records],
        "rule": [record_rule[i][1] if i in record_rule else "" for i in range(n)],
    })
    pairs = pd.DataFrame(
        [(records[i].record_id, records[j].record_id, rule, title, decision, reason, relation,
          "; ".join(c.agree), "; ".join(c.conflicts))
         for i, j, rule, title, decision, relation, reason, c in pair_rows],
        columns=["record_id_a", "record_id_b", "rule", "title_similarity", "decision", "reason", "relation",
                 "agree", "disagree"],
    )
    if len(pairs):
        # a review pair whose records were merged through other pairs needs no review; of the
        # review pairs between two clusters, one (the most similar titles) is enough, and none
        # once a reviewer kept any two of their records apart
        cluster_of = dict(zip(frame["record_id"], frame["cluster_id"], strict=True))
        ca, cb = pairs["record_id_a"].map(cluster_of), pairs["record_id_b"].map(cluster_of)
        key = [tuple(sorted(k)) for k in zip(ca, cb, strict=True)]
        pairs["_clusters"] = key
        apart = {k for k, d, r in zip(key, pairs["decision"], pairs["rule"], strict=True)
                 if d == "kept apart" and r == "reviewer"}
        apart |= {tuple(sorted((cluster_of[records[i].record_id], cluster_of[records[j].record_id])))
                  for i, j in cannot}
        review = pairs["decision"] == "review"
        drop = review & ((ca == cb) | pairs["_clusters"].isin(apart))
        pairs = pairs[~drop]
        review = pairs["decision"] == "review"
        order = pairs[review].sort_values("title_similarity", ascending=False, kind="stable")
        keep = set(order.drop_duplicates("_clusters").index)
        pairs = pairs[~review | pairs.index.isin(keep)].drop(columns="_clusters").reset_index(drop=True)
    provenance = Provenance(
        source="neuromodmap.literature.deduplicate",
        as_of=dt.date.today(),
        extra={"merge_threshold": str(merge_threshold), "review_threshold": str(review_threshold),
               "n_records": str(n)},
    )
    return DedupResult(records=list(records), clusters=frame, pairs=pairs, merge_threshold=merge_threshold,
                       review_threshold=review_threshold, provenance=provenance)


def _pairs_of(groups) -> set[frozenset[str]]:
    out: set[frozenset[str]] = set()
    for group in groups:
        ids = sorted(set(group))
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                out.add(frozenset((ids[x], ids[y])))
    return out


def score_dedup(true_groups, predicted_groups, record_ids=None) -> dict:
    """Score predicted duplicate groups against labelled ones.

    Parameters
    ----------
    true_groups, predicted_groups : iterable of iterables of str
        Record ids placed together (groups of one may be left out).
    record_ids : iterable of str, optional
        Every record scored; only used to leave out ids that are not among them.

    Returns
    -------
    dict
        ``tp``, ``false_pairs``, ``missed_pairs``, ``true_pairs`` (pair counts), ``precision``,
        ``recall``, ``f1`` (pairwise; 1.0 when there is nothing to find or claim),
        ``wrongly_merged`` (records put in a group with at least one record that is not their
        duplicate) and the lists of false and missed pairs.
    """
    keep = set(record_ids) if record_ids is not None else None

    def clean(groups):
        return [[i for i in g if keep is None or i in keep] for g in groups]

    truth = _pairs_of(clean(true_groups))
    predicted = _pairs_of(clean(predicted_groups))
    tp = len(truth & predicted)
    false = predicted - truth
    missed = truth - predicted
    precision = tp / (tp + len(false)) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    wrongly = {i for pair in false for i in pair}
    return {"tp": tp, "false_pairs": len(false), "missed_pairs": len(missed), "true_pairs": len(truth),
            "precision": precision, "recall": recall, "f1": f1, "wrongly_merged": len(wrongly),
            "false_pair_list": [tuple(sorted(p)) for p in false], "missed_pair_list": [tuple(sorted(p)) for p in missed]}
