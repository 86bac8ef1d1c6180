"""Publications a registry record cites: ClinicalTrials.gov references (PMID, DOI, type).

ClinicalTrials.gov records list publications in API v2
``protocolSection.referencesModule.references[]`` (``pmid``, ``type``, ``citation``) and in
legacy XML ``<reference>`` and ``<results_reference>`` (``PMID``, ``citation``). The type
says what the publication is to the trial:

``results``
    a report of the trial's results, entered by the sponsor (v2 ``RESULT``, legacy
    ``results_reference``);
``derived``
    a PubMed record that quotes the trial's NCT id, added by ClinicalTrials.gov (v2
    ``DERIVED``);
``background``
    a publication cited for background (v2 ``BACKGROUND``, legacy ``reference``): not a
    report of the trial.

The references are read from the raw record the trials store keeps, so nothing has to be
re-imported. WHO ICTRP exports and the 2018 text-only corpus carry no references.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from neuromodmap.literature.records import normalise_doi

__all__ = ["trial_references", "PUBLICATION_RELATIONS", "REFERENCE_COLUMNS"]

#: reference types that make a publication a report of the trial (not background reading)
PUBLICATION_RELATIONS = ("results", "derived")
REFERENCE_COLUMNS = ["registry_id", "pmid", "doi", "relation", "citation"]

_V2_TYPES = {"RESULT": "results", "DERIVED": "derived", "BACKGROUND": "background"}
_SQL = """
SELECT registry_id, source_format,
       json_extract(raw, '$.protocolSection.referencesModule.references') AS v2,
       json_extract(raw, '$.reference') AS background,
       json_extract(raw, '$.results_reference') AS results,
       (json_extract(raw, '$.protocolSection.referencesModule') IS NOT NULL
        OR json_extract(raw, '$.protocolSection.statusModule') IS NOT NULL
        OR source_format = 'ctgov_xml') AS has_fields
FROM trials WHERE source_format IN ('ctgov_v2', 'ctgov_api', 'ctgov_xml')
"""


def _as_list(value) -> list:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return []
    if isinstance(data, dict):
        return [data]
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _pmid(value) -> str | None:
    text = str(value or "").strip()
    return text if text.isdigit() and len(text) <= 9 else None


def _stream(cursor, size: int = 2048):
    """Rows in batches: the raw records of a large store do not fit the store's memory limit at once."""
    while rows := cursor.fetchmany(size):
        yield from rows


def trial_references(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, set[str]]:
    """The publications every ClinicalTrials.gov record in the trials store cites.

    Parameters
    ----------
    con : duckdb connection
        A connection to the trials store (``TrialStore.con``).

    Returns
    -------
    references : DataFrame
        One row per reference: ``registry_id``, ``pmid`` (digits, or None), ``doi`` (a DOI
        written in the citation, or None), ``relation`` (``results``, ``derived`` or
        ``background``; ``unspecified`` where a v2 reference has no type) and ``citation``.
    with_fields : set of str
        Registry ids whose stored record carries the registry's reference fields at all (a
        full v2 or legacy XML record). For the others, no reference means "not available",
        not "no publication".
    """
    has_trials = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'trials' "
        "AND table_schema = current_schema()").fetchone()[0]
    if not has_trials:
        return pd.DataFrame(columns=REFERENCE_COLUMNS), set()
    rows: list[tuple] = []
    with_fields: set[str] = set()
    for registry_id, _fmt, v2, background, results, has_fields in _stream(con.execute(_SQL)):
        if has_fields:
            with_fields.add(registry_id)
        items = [(_V2_TYPES.get(str(ref.get("type", "")).upper(), "unspecified"), ref.get("pmid"), ref.get("citation"))
                 for ref in _as_list(v2)]
        items += [("background", ref.get("PMID"), ref.get("citation")) for ref in _as_list(background)]
        items += [("results", ref.get("PMID"), ref.get("citation")) for ref in _as_list(results)]
        for relation, pmid, citation in items:
            citation = str(citation or "")
            pmid = _pmid(pmid)
            doi = normalise_doi(citation) if "10." in citation else None
            if pmid or doi or citation:
                rows.append((registry_id, pmid, doi, relation, citation))
    frame = pd.DataFrame(rows, columns=REFERENCE_COLUMNS)
    # one row per publication: the same PMID (or, without one, DOI or citation) listed twice counts once
    key = frame["pmid"].fillna(frame["doi"]).fillna(frame["citation"])
    frame = frame[~pd.DataFrame({"r": frame["registry_id"], "k": key, "t": frame["relation"]}).duplicated()]
    frame = frame.reset_index(drop=True)
    return frame, with_fields
