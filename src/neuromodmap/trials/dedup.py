"""Cross-registry de-duplication: link WHO ICTRP records to the ClinicalTrials.gov records
they copy or mirror.

Three kinds of link, written to the ``trial_links`` table:

``trial_id``
    An ICTRP record whose TrialID names a stored record in another spelling (``NCT 0123…``,
    lower case) or the same EU trial in another member state (``EUCTR2015-001894-41-DE`` and
    ``…-GB``). An ICTRP copy whose TrialID *is* a stored NCT id is the same row already:
    the store keeps the ClinicalTrials.gov version (see :class:`TrialStore`).
``secondary_id``
    A record listing another record's id among its secondary ids, either way round
    (ICTRP Secondary_ID ``NCT01234567``; a CT.gov ``secondaryIdInfos`` EudraCT number
    ``2015-001894-41`` matching ``EUCTR2015-001894-41-DE``).
``fuzzy_title``
    A rapidfuzz title match at or above the threshold between an ICTRP record and a CT.gov
    record that no id links. Only a flagged candidate (``confirmed = False``) for a person to
    check; never used to merge or drop records.

Confirmed links (the first two) let :meth:`TrialStore.trials_df` drop the copies with
``deduplicate=True``.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process, utils

from neuromodmap.trials.store import _rollback

__all__ = ["link_registries", "normalise_id"]

_NCT = re.compile(r"NCT\s*-?\s*(\d{8})", re.I)
_EUDRACT = re.compile(r"(\d{4}-\d{6}-\d{2})")
_LINK_COLUMNS = ["registry_id", "linked_id", "method", "score", "confirmed", "detail"]


def normalise_id(value: str) -> str:
    """A comparable form of a registry id: NCT ids and EudraCT numbers pulled out, case folded.

    >>> normalise_id("nct 01234567"), normalise_id("EUCTR2015-001894-41-DE")
    ('NCT01234567', 'EUDRACT2015-001894-41')
    """
    text = value.strip()
    if m := _NCT.search(text):
        return f"NCT{m.group(1)}"
    if m := _EUDRACT.search(text):
        return f"EUDRACT{m.group(1)}"
    return re.sub(r"[\s_]+", "", text).upper()


def link_registries(store, *, fuzzy_threshold: float = 90, fuzzy: bool = True) -> pd.DataFrame:
    """Find and store links between ICTRP records and the other records in ``store``.

    Parameters
    ----------
    store : TrialStore
        The store; ``trial_links`` is rewritten from its current contents.
    fuzzy_threshold : float
        Minimum rapidfuzz ``token_sort_ratio`` (0-100) for a title candidate.
    fuzzy : bool
        Also look for title candidates (only between records no id links).

    Returns
    -------
    pandas.DataFrame
        Columns ``registry_id`` (the ICTRP record or the record that lists the other's id),
        ``linked_id``, ``method`` (``trial_id``, ``secondary_id``, ``fuzzy_title``),
        ``score`` (100 for id links), ``confirmed`` (False for fuzzy candidates) and
        ``detail`` (the id or titles that matched).
    """
    df = store.con.execute(
        "SELECT registry_id, source_format, secondary_ids, title, official_title FROM trials"
    ).df()
    is_ictrp = df["source_format"].fillna("").str.startswith("ictrp").to_numpy()
    ids = df["registry_id"].tolist()
    by_norm: dict[str, list[str]] = {}
    for rid in ids:
        by_norm.setdefault(normalise_id(rid), []).append(rid)

    ictrp_ids = {rid for rid, flag in zip(ids, is_ictrp, strict=True) if flag}
    links: dict[tuple[str, str, str], dict] = {}

    def add(a: str, b: str, method: str, score: float, confirmed: bool, detail: str) -> None:
        if a == b:
            return
        key = (a, b, method)
        if key not in links and (b, a, method) not in links:
            links[key] = dict(zip(_LINK_COLUMNS, (a, b, method, score, confirmed, detail), strict=True))

    # TrialID spelled differently, or the same EU trial in another member state
    for rid, ictrp in zip(ids, is_ictrp, strict=True):
        if not ictrp:
            continue
        for other in by_norm.get(normalise_id(rid), []):
            if other != rid:
                add(rid, other, "trial_id", 100.0, True, f"TrialID {rid} = {other}")

    # secondary ids, either direction
    for rid, secondary, ictrp in zip(ids, df["secondary_ids"], is_ictrp, strict=True):
        if secondary is None:
            continue
        for sec in secondary:
            for other in by_norm.get(normalise_id(sec), []):
                if other == rid:
                    continue
                if ictrp:
                    add(rid, other, "secondary_id", 100.0, True, f"Secondary_ID {sec}")
                elif other in ictrp_ids:
                    add(other, rid, "secondary_id", 100.0, True, f"{rid} lists secondary id {sec}")

    if fuzzy and is_ictrp.any() and (~is_ictrp).any():
        linked = {a for a, _, _ in links} | {b for _, b, _ in links}
        _fuzzy_candidates(df, is_ictrp, linked, fuzzy_threshold, add)

    out = pd.DataFrame(list(links.values()), columns=_LINK_COLUMNS)
    out["linked_at"] = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    store.con.execute("BEGIN TRANSACTION")
    try:
        store.con.execute("DELETE FROM trial_links")
        if len(out):
            store.con.register("_links", out)
            try:
                store.con.execute(
                    "INSERT INTO trial_links SELECT registry_id, linked_id, method, CAST(score AS DOUBLE),"
                    " CAST(confirmed AS BOOLEAN), detail, CAST(linked_at AS TIMESTAMP) FROM _links"
                )
            finally:
                store.con.unregister("_links")
        store.con.execute("COMMIT")
    except BaseException:
        _rollback(store.con)
        raise
    return out.sort_values(["registry_id", "linked_id", "method"]).reset_index(drop=True)


def _fuzzy_candidates(df: pd.DataFrame, is_ictrp: np.ndarray, linked: set[str], threshold: float, add) -> None:
    """Title candidates between unlinked ICTRP records and unlinked other records."""
    def titles(rows: pd.DataFrame) -> list[str]:
        # the scientific/official title is the more specific; fall back to the public one
        return [
            utils.default_process(o or t or "") for t, o in zip(rows["title"], rows["official_title"], strict=True)
        ]

    left = df[is_ictrp & ~df["registry_id"].isin(linked).to_numpy()]
    right = df[~is_ictrp & ~df["registry_id"].isin(linked).to_numpy()]
    if left.empty or right.empty:
        return
    lt, rt = titles(left), titles(right)
    for start in range(0, len(lt), 256):  # blocks keep the score matrix small
        block = lt[start : start + 256]
        scores = process.cdist(block, rt, scorer=fuzz.token_sort_ratio, score_cutoff=threshold, dtype=np.uint8)
        for i, j in zip(*np.nonzero(scores), strict=True):
            if not block[i] or not rt[j]:
                continue
            a, b = left["registry_id"].iat[start + i], right["registry_id"].iat[j]
            add(a, b, "fuzzy_title", float(scores[i, j]), False, f"{block[i][:120]} ~ {rt[j][:120]}")
