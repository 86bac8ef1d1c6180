"""Link literature records to registered trials, both ways.

A paper names the trial it reports by its registry id (PubMed ``SI`` and ``DataBankList``,
"Trial registration: NCT01234567" in the abstract, RIS notes); a ClinicalTrials.gov record
names the papers that report it (results references, PubMed-derived references, by PMID).
:func:`link_trials` finds both kinds of link between the records in the literature store
and the trials in a trials store, and keeps them in two tables:

``literature_registry_ids``
    every registry id quoted by a record: ``record_id``, ``registry``, ``registry_id``
    (normalised, see :mod:`neuromodmap.registry_ids`), ``field`` (``SI``, ``DataBank``,
    ``N1``, ``title``, ``abstract``, ``keywords``...), ``raw`` (as written) and
    ``in_trials_store``;
``literature_trial_links``
    one row per record-trial link: ``record_id``, ``registry_id`` (the trial in the trials
    store), ``quoted`` (the id, PMID or DOI that links them), ``method``
    (``record_quotes_registry_id``, ``record_quotes_secondary_id``: the id is one of the
    trial's secondary ids, ``registry_cites_pmid``, ``registry_cites_doi``) and ``detail``
    (the record field, or the registry's reference type: ``results``, ``derived``,
    ``background``).

Both are rewritten on every run (one transaction), so running it again after new imports
gives the same tables as a first run.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from neuromodmap import __version__
from neuromodmap.literature.records import Record
from neuromodmap.literature.store import init_tables, load_dedup, load_records
from neuromodmap.registry_ids import REGISTRIES, find_registry_ids

__all__ = ["TrialLinkReport", "link_trials", "record_registry_ids", "load_trial_links", "publications_by_trial",
           "has_linked", "LINK_METHODS"]

LINK_METHODS = ("record_quotes_registry_id", "record_quotes_secondary_id", "registry_cites_pmid",
                "registry_cites_doi")
_ID_COLUMNS = ["record_id", "registry", "registry_id", "field", "raw"]
_LINK_COLUMNS = ["record_id", "registry_id", "quoted", "method", "detail"]
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS literature_registry_ids (
        record_id VARCHAR, registry VARCHAR, registry_id VARCHAR, field VARCHAR, raw VARCHAR,
        in_trials_store BOOLEAN)""",
    """CREATE TABLE IF NOT EXISTS literature_trial_links (
        record_id VARCHAR, registry_id VARCHAR, quoted VARCHAR, method VARCHAR, detail VARCHAR,
        trials_db VARCHAR, linked_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS literature_runs (
        step VARCHAR, run_at TIMESTAMP, version VARCHAR, details VARCHAR)""",
]
_NCT = re.compile(r"NCT\d{8}")


def record_registry_ids(records: list[Record]) -> pd.DataFrame:
    """Every trial registry id the records quote, one row per record, id and field.

    Fields read: the ids the export declared (``secondary_ids``: PubMed SI and DataBankList,
    RIS/BibTeX notes), title, abstract and keywords. Columns: ``record_id``, ``registry``,
    ``registry_id`` (normalised), ``field``, ``raw``.
    """
    rows = []
    for record in records:
        sources = [(entry.partition(":")[0].strip() or "secondary_ids", entry.partition(":")[2] or entry)
                   for entry in record.secondary_ids]
        sources += [("title", record.title), ("abstract", record.abstract), ("keywords", "; ".join(record.keywords))]
        for name, text in sources:
            for found in find_registry_ids(text):
                rows.append((record.record_id, found.registry, found.id, name, found.raw))
    return pd.DataFrame(rows, columns=_ID_COLUMNS).drop_duplicates(["record_id", "registry_id", "field"])


def _store_index(trials_con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Normalised id -> [(stored registry id, 'registry_id' | 'secondary_id')] for every trial."""
    index: dict[str, list[tuple[str, str]]] = {}
    frame = trials_con.execute("SELECT registry_id, secondary_ids FROM trials").fetchall()
    for registry_id, secondary in frame:
        own = registry_id if _NCT.fullmatch(registry_id) else next(
            (f.id for f in find_registry_ids(registry_id)), registry_id)
        index.setdefault(own, []).append((registry_id, "registry_id"))
        for value in secondary or ():
            for found in find_registry_ids(value):
                if found.id != own:
                    index.setdefault(found.id, []).append((registry_id, "secondary_id"))
    return index


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema()",
        [name]).fetchone()[0])


@dataclass
class TrialLinkReport:
    """What :func:`link_trials` found; counts are over records after de-duplication.

    A record counts once per duplicate cluster (a paper found in PubMed and Scopus is one
    record), as in the PRISMA flow.
    """

    n_records: int
    n_records_with_id: int
    n_ids: int
    n_ids_in_store: int
    n_records_linked: int
    n_records_linked_by_id: int
    n_records_linked_by_reference: int
    n_records_cited_as_background: int
    n_trials_linked: int
    by_registry: pd.DataFrame
    links: pd.DataFrame
    trials_db: str = ""
    n_trials: int = 0
    run_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))

    @property
    def n_ids_not_in_store(self) -> int:
        return self.n_ids - self.n_ids_in_store

    def to_frame(self) -> pd.DataFrame:
        """The counts as a table (``count``, ``n``), ready to write beside a report."""
        rows = [
            ("records (after de-duplication)", self.n_records),
            ("records quoting a trial registry id", self.n_records_with_id),
            ("distinct registry ids quoted", self.n_ids),
            ("  found in the trials store", self.n_ids_in_store),
            ("  not in the trials store", self.n_ids_not_in_store),
            ("trials in the trials store", self.n_trials),
            ("records linked to a stored trial as its report", self.n_records_linked),
            ("  by a quoted registry id", self.n_records_linked_by_id),
            ("  by a results or PubMed-derived reference of the trial (PMID or DOI)", self.n_records_linked_by_reference),
            ("records a stored trial cites as background only", self.n_records_cited_as_background),
            ("trials linked to a record as its report", self.n_trials_linked),
        ]
        return pd.DataFrame(rows, columns=["count", "n"])

    def summary(self) -> str:
        return (f"{self.n_records_with_id} of {self.n_records} records quote a trial registry id "
                f"({self.n_ids} distinct ids: {self.n_ids_in_store} in the trials store, "
                f"{self.n_ids_not_in_store} not); {self.n_records_linked} records are linked as reports to "
                f"{self.n_trials_linked} of the {self.n_trials:,} stored trials "
                f"({self.n_records_linked_by_id} by a quoted id, {self.n_records_linked_by_reference} "
                f"as a results or PubMed-derived reference of the trial); {self.n_records_cited_as_background} "
                f"more are cited by a trial as background only.")


def link_trials(con: duckdb.DuckDBPyConnection, trials_con: duckdb.DuckDBPyConnection | None = None, *,
                trials_db: str = "") -> TrialLinkReport:
    """Find the registry ids the literature records quote and link records and stored trials.

    Parameters
    ----------
    con : duckdb connection
        The literature store (:func:`neuromodmap.literature.open_store`).
    trials_con : duckdb connection, optional
        The trials store (``TrialStore.con``); default ``con`` itself (one project database).
        Without a ``trials`` table, ids are still extracted and reported, none as found.
    trials_db : str
        A label for the trials store, kept with each link (e.g. its path).

    Returns
    -------
    TrialLinkReport
        Counts, per-registry table and the links. The tables ``literature_registry_ids`` and
        ``literature_trial_links`` are replaced with this run's result.
    """
    from neuromodmap.trials.references import trial_references

    init_tables(con)
    trials_con = trials_con if trials_con is not None else con
    records = load_records(con)
    ids = record_registry_ids(records)
    has_trials = _has_table(trials_con, "trials")
    index = _store_index(trials_con) if has_trials else {}
    n_trials = trials_con.execute("SELECT count(*) FROM trials").fetchone()[0] if has_trials else 0
    ids["in_trials_store"] = ids["registry_id"].isin(index)

    links = []
    for record_id, registry_id, name in ids[["record_id", "registry_id", "field"]].itertuples(index=False):
        for stored, how in index.get(registry_id, ()):
            method = "record_quotes_registry_id" if how == "registry_id" else "record_quotes_secondary_id"
            links.append((record_id, stored, registry_id, method, name))
    references, _ = trial_references(trials_con) if has_trials else (pd.DataFrame(), set())
    if len(references):
        by_pmid: dict[str, list[tuple[str, str]]] = {}
        by_doi: dict[str, list[tuple[str, str]]] = {}
        for registry_id, pmid, doi, relation in references[["registry_id", "pmid", "doi", "relation"]].itertuples(
                index=False):
            if isinstance(pmid, str) and pmid:  # missing values are NaN in pandas' string columns
                by_pmid.setdefault(pmid, []).append((registry_id, relation))
            if isinstance(doi, str) and doi:
                by_doi.setdefault(doi, []).append((registry_id, relation))
        for record in records:
            for registry_id, relation in by_pmid.get(record.pmid or "", ()):
                links.append((record.record_id, registry_id, record.pmid, "registry_cites_pmid", relation))
            for registry_id, relation in by_doi.get(record.doi or "", ()):
                links.append((record.record_id, registry_id, record.doi, "registry_cites_doi", relation))
    link_frame = pd.DataFrame(links, columns=_LINK_COLUMNS).drop_duplicates().reset_index(drop=True)
    report = _report(con, records, ids, link_frame, n_trials, trials_db)
    _save(con, ids, link_frame, report)
    return report


def _cluster_of(con: duckdb.DuckDBPyConnection, records: list[Record]) -> dict[str, str]:
    """record id -> the id that stands for its duplicate cluster (itself when not de-duplicated)."""
    clusters = load_dedup(con)
    out = {r.record_id: r.record_id for r in records}
    if clusters is not None:
        out.update(dict(zip(clusters["record_id"], clusters["cluster_id"], strict=True)))
    return out


def _report(con, records, ids: pd.DataFrame, links: pd.DataFrame, n_trials: int, trials_db: str) -> TrialLinkReport:
    cluster = _cluster_of(con, records)

    def clusters(record_ids) -> int:
        return len({cluster.get(r, r) for r in record_ids})

    from neuromodmap.trials.references import PUBLICATION_RELATIONS

    by_id = links[links["method"].str.startswith("record_quotes")]
    cites = links[links["method"].str.startswith("registry_cites")]
    by_ref = cites[cites["detail"].isin(PUBLICATION_RELATIONS)]
    reports = pd.concat([by_id, by_ref])
    background = set(cites["record_id"]) - set(reports["record_id"])
    distinct = ids.drop_duplicates("registry_id")
    by_registry = (distinct.groupby("registry")
                   .agg(ids=("registry_id", "size"), in_trials_store=("in_trials_store", "sum"))
                   .reset_index())
    by_registry["not_in_trials_store"] = by_registry["ids"] - by_registry["in_trials_store"]
    by_registry.insert(1, "name", by_registry["registry"].map(REGISTRIES))
    return TrialLinkReport(
        n_records=clusters(r.record_id for r in records),
        n_records_with_id=clusters(ids["record_id"]),
        n_ids=len(distinct),
        n_ids_in_store=int(distinct["in_trials_store"].sum()),
        n_records_linked=clusters(reports["record_id"]),
        n_records_linked_by_id=clusters(by_id["record_id"]),
        n_records_linked_by_reference=clusters(by_ref["record_id"]),
        n_records_cited_as_background=clusters(background),
        n_trials_linked=reports["registry_id"].nunique(),
        by_registry=by_registry.sort_values("ids", ascending=False).reset_index(drop=True),
        links=links,
        trials_db=trials_db,
        n_trials=int(n_trials),
    )


def _save(con: duckdb.DuckDBPyConnection, ids: pd.DataFrame, links: pd.DataFrame, report: TrialLinkReport) -> None:
    for statement in _SCHEMA:
        con.execute(statement)
    ids = ids[[*_ID_COLUMNS, "in_trials_store"]].astype({"in_trials_store": bool})
    links = links.assign(trials_db=report.trials_db, linked_at=report.run_at)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM literature_registry_ids")
        con.execute("DELETE FROM literature_trial_links")
        if len(ids):
            con.register("_lit_registry_ids", ids)
            con.execute("INSERT INTO literature_registry_ids SELECT * FROM _lit_registry_ids")
            con.unregister("_lit_registry_ids")
        if len(links):
            con.register("_lit_trial_links", links)
            con.execute("INSERT INTO literature_trial_links SELECT record_id, registry_id, quoted, method, detail, "
                        "trials_db, CAST(linked_at AS TIMESTAMP) FROM _lit_trial_links")
            con.unregister("_lit_trial_links")
        # the methods line of this step (the counts table has the numbers)
        con.execute("INSERT INTO literature_runs VALUES (?, ?, ?, ?)",
                    ["link_trials", report.run_at, __version__, report.summary()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def load_trial_links(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The stored record-trial links (empty when :func:`link_trials` has not run)."""
    if not _has_table(con, "literature_trial_links"):
        return pd.DataFrame(columns=[*_LINK_COLUMNS, "trials_db", "linked_at"])
    return con.execute("SELECT * FROM literature_trial_links ORDER BY record_id, registry_id, method").df()


def has_linked(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether :func:`link_trials` has run on this literature store (so no link means none found)."""
    return _has_table(con, "literature_trial_links")


def publications_by_trial(trials_con: duckdb.DuckDBPyConnection,
                          con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Per trial, the publications linked to it: what the survey's publication table counts.

    A trial has a linked publication when its registry record cites a results or
    PubMed-derived reference (by PMID or DOI), or when a literature record in ``con`` quotes
    its registry id (or one of its secondary ids). Background references do not count.

    Returns one row per stored trial with the registry's reference fields or a link:
    ``registry_id``, ``registry_fields`` (the stored record carries the registry's reference
    fields, so "none" is a real none), ``n_registry_publications`` (distinct results/derived
    references), ``n_literature_records`` (distinct literature records quoting the id; NA
    when ``con`` is None or :func:`link_trials` has not run on it).
    """
    from neuromodmap.trials.references import PUBLICATION_RELATIONS, trial_references

    references, with_fields = trial_references(trials_con)
    pubs = references[references["relation"].isin(PUBLICATION_RELATIONS)]
    key = pubs["pmid"].fillna(pubs["doi"]).fillna(pubs["citation"])
    n_registry = pubs.assign(key=key).groupby("registry_id")["key"].nunique()
    n_literature = pd.Series(dtype=int)
    linked = con is not None and has_linked(con)
    if linked:
        links = load_trial_links(con)
        quoted = links[links["method"].str.startswith("record_quotes")]
        n_literature = quoted.groupby("registry_id")["record_id"].nunique()
    trials = sorted(with_fields | set(n_registry.index) | set(n_literature.index))
    return pd.DataFrame({
        "registry_id": trials,
        "registry_fields": [t in with_fields for t in trials],
        "n_registry_publications": [int(n_registry.get(t, 0)) for t in trials],
        # unknown (NA), not 0, when no literature store was linked
        "n_literature_records": pd.array([int(n_literature.get(t, 0)) if linked else None for t in trials],
                                         dtype="Int64"),
    })
