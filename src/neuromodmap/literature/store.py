"""The ``literature_*`` tables in the project DuckDB (same file as the trials).

All statements with values are parameterised or go through registered DataFrames.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os

import duckdb
import pandas as pd

from neuromodmap import __version__
from neuromodmap.literature.records import ImportResult, Record
from neuromodmap.store import connect

__all__ = ["init_tables", "save_import", "load_records", "list_imports", "connect", "open_store", "save_dedup",
           "load_dedup", "load_dedup_pairs"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS literature_imports (
        import_id VARCHAR PRIMARY KEY, source_file VARCHAR, source_database VARCHAR,
        format VARCHAR, sha256 VARCHAR, n_records INTEGER, n_skipped INTEGER,
        imported_at TIMESTAMP, version VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS literature_records (
        record_id VARCHAR PRIMARY KEY, import_id VARCHAR, title VARCHAR, abstract VARCHAR,
        authors VARCHAR[], year INTEGER, journal VARCHAR, doi VARCHAR, pmid VARCHAR,
        keywords VARCHAR[], mesh_terms VARCHAR[], publication_types VARCHAR[], language VARCHAR,
        record_type VARCHAR, volume VARCHAR, issue VARCHAR, pages VARCHAR, url VARCHAR,
        source_database VARCHAR, source_file VARCHAR, source_format VARCHAR, source_line INTEGER,
        source_position INTEGER, extra VARCHAR, month INTEGER, secondary_ids VARCHAR[])""",
    """CREATE TABLE IF NOT EXISTS literature_import_issues (
        import_id VARCHAR, file VARCHAR, line INTEGER, position INTEGER, field VARCHAR,
        reason VARCHAR, action VARCHAR)""",
]

_RECORD_COLUMNS = [
    "record_id", "import_id", "title", "abstract", "authors", "year", "journal", "doi", "pmid",
    "keywords", "mesh_terms", "publication_types", "language", "record_type", "volume", "issue",
    "pages", "url", "source_database", "source_file", "source_format", "source_line",
    "source_position", "extra", "month", "secondary_ids",
]


def init_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in _SCHEMA:
        con.execute(statement)
    # stores written before records had a month or secondary ids get the column (NULL: unknown;
    # re-importing the file fills it in)
    columns = {row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'literature_records' "
        "AND table_schema = current_schema()").fetchall()}
    if "month" not in columns:
        con.execute("ALTER TABLE literature_records ADD COLUMN month INTEGER")
    if "secondary_ids" not in columns:
        con.execute("ALTER TABLE literature_records ADD COLUMN secondary_ids VARCHAR[]")


def _import_id(result: ImportResult) -> str:
    path_digest = hashlib.sha1(result.provenance.source.encode()).hexdigest()[:8]
    return f"imp-{path_digest}-{result.provenance.extra['sha256'][:8]}"


def save_import(con: duckdb.DuckDBPyConnection, result: ImportResult) -> str:
    """Store one file's records, replacing an earlier import of the same file.

    Returns the import id. The whole import is one transaction: a failure leaves the
    database as it was.
    """
    init_tables(con)
    import_id = _import_id(result)
    source = result.provenance.source
    frame = pd.DataFrame([r.model_dump() for r in result.records], columns=list(Record.model_fields))
    frame.insert(1, "import_id", import_id)
    frame["extra"] = [json.dumps(e, ensure_ascii=False) if e else None for e in frame["extra"]]
    frame["year"] = frame["year"].astype("Int64")
    frame["month"] = frame["month"].astype("Int64")
    frame["source_line"] = frame["source_line"].astype("Int64")
    frame = frame[_RECORD_COLUMNS]
    issues = pd.DataFrame(
        [{"import_id": import_id, **i.model_dump()} for i in result.issues],
        columns=["import_id", "file", "line", "position", "field", "reason", "action"],
    )
    issues["line"] = issues["line"].astype("Int64")
    issues["position"] = issues["position"].astype("Int64")
    con.execute("BEGIN TRANSACTION")
    try:
        old = [row[0] for row in con.execute(
            "SELECT import_id FROM literature_imports WHERE source_file = ?", [source]).fetchall()]
        for old_id in old:
            con.execute("DELETE FROM literature_records WHERE import_id = ?", [old_id])
            con.execute("DELETE FROM literature_import_issues WHERE import_id = ?", [old_id])
            con.execute("DELETE FROM literature_imports WHERE import_id = ?", [old_id])
        # another file may have produced the same ids only if it had the same path
        con.register("_lit_records_frame", frame)
        # by name: a store upgraded with ALTER TABLE may have its columns in another order
        columns = ", ".join(_RECORD_COLUMNS)
        con.execute(f"INSERT INTO literature_records ({columns}) SELECT {columns} FROM _lit_records_frame")  # noqa: S608
        con.unregister("_lit_records_frame")
        if len(issues):
            con.register("_lit_issues_frame", issues)
            con.execute("INSERT INTO literature_import_issues SELECT * FROM _lit_issues_frame")
            con.unregister("_lit_issues_frame")
        con.execute(
            "INSERT INTO literature_imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [import_id, source, result.source_database, result.format, result.provenance.extra["sha256"],
             len(result.records), result.n_skipped, dt.datetime.now(dt.UTC).replace(tzinfo=None), __version__],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return import_id


def load_records(con: duckdb.DuckDBPyConnection, record_ids: list[str] | None = None) -> list[Record]:
    """Records from the store, in import order (optionally only ``record_ids``)."""
    init_tables(con)
    frame = con.execute(
        "SELECT r.* EXCLUDE (import_id) FROM literature_records r "
        "JOIN literature_imports i USING (import_id) ORDER BY i.imported_at, r.source_file, r.source_position"
    ).df()
    if record_ids is not None:
        wanted = set(record_ids)
        frame = frame[frame["record_id"].isin(wanted)]
    return [_row_to_record(row) for row in frame.to_dict("records")]


def _row_to_record(row: dict) -> Record:
    def listish(value) -> list[str]:
        return [] if value is None or (isinstance(value, float) and pd.isna(value)) else list(value)

    data = {}
    for key, value in row.items():
        if key in ("authors", "keywords", "mesh_terms", "publication_types", "secondary_ids"):
            data[key] = listish(value)
        elif key == "extra":
            data[key] = json.loads(value) if isinstance(value, str) and value else {}
        elif value is None or (not isinstance(value, list | tuple) and pd.isna(value)):
            data[key] = None if key in ("year", "month", "doi", "pmid", "source_line") else (
                "" if key != "source_position" else 0)
        elif key in ("year", "month", "source_line", "source_position"):
            data[key] = int(value)
        else:
            data[key] = value
    return Record(**data)


def list_imports(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    init_tables(con)
    return con.execute("SELECT * FROM literature_imports ORDER BY imported_at").df()


def open_store(db: str | os.PathLike | None) -> duckdb.DuckDBPyConnection:
    con = connect(db)
    init_tables(con)
    return con


_DEDUP_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS literature_dedup_clusters (
        record_id VARCHAR PRIMARY KEY, cluster_id VARCHAR, is_primary BOOLEAN, source_database VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS literature_dedup_pairs (
        record_id_a VARCHAR, record_id_b VARCHAR, rule VARCHAR, title_similarity DOUBLE,
        decision VARCHAR, reason VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS literature_runs (
        step VARCHAR, run_at TIMESTAMP, version VARCHAR, details VARCHAR)""",
    # added with the conservative de-duplication; stores made before get the columns empty
    "ALTER TABLE literature_dedup_clusters ADD COLUMN IF NOT EXISTS source_file VARCHAR",
    "ALTER TABLE literature_dedup_clusters ADD COLUMN IF NOT EXISTS source_position INTEGER",
    "ALTER TABLE literature_dedup_clusters ADD COLUMN IF NOT EXISTS rule VARCHAR",
    "ALTER TABLE literature_dedup_pairs ADD COLUMN IF NOT EXISTS relation VARCHAR",
    "ALTER TABLE literature_dedup_pairs ADD COLUMN IF NOT EXISTS agree VARCHAR",
    "ALTER TABLE literature_dedup_pairs ADD COLUMN IF NOT EXISTS disagree VARCHAR",
]
_CLUSTER_COLUMNS = ["record_id", "cluster_id", "is_primary", "source_database", "source_file", "source_position",
                    "rule"]
_PAIR_COLUMNS = ["record_id_a", "record_id_b", "rule", "title_similarity", "decision", "reason", "relation", "agree",
                 "disagree"]
# column names are the constants above, never user text
_C, _P = ", ".join(_CLUSTER_COLUMNS), ", ".join(_PAIR_COLUMNS)
_INSERT_CLUSTERS = f"INSERT INTO literature_dedup_clusters ({_C}) SELECT {_C} FROM _lit_clusters"  # noqa: S608
_INSERT_PAIRS = f"INSERT INTO literature_dedup_pairs ({_P}) SELECT {_P} FROM _lit_pairs"  # noqa: S608
_SELECT_CLUSTERS = f"SELECT {_C} FROM literature_dedup_clusters"  # noqa: S608
_SELECT_PAIRS = f"SELECT {_P} FROM literature_dedup_pairs"  # noqa: S608


def save_dedup(con: duckdb.DuckDBPyConnection, result) -> None:
    """Replace the stored de-duplication with ``result`` (a :class:`DedupResult`).

    Every record keeps its row (cluster, source file and position, the rule that merged it),
    and every compared pair its decision, rule, relation and evidence, so a merge can be
    traced and undone (``literature dedup --decisions``).
    """
    for statement in _DEDUP_SCHEMA:
        con.execute(statement)
    clusters = result.clusters.reindex(columns=_CLUSTER_COLUMNS)
    pairs = result.pairs.reindex(columns=_PAIR_COLUMNS)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM literature_dedup_clusters")
        con.execute("DELETE FROM literature_dedup_pairs")
        con.register("_lit_clusters", clusters)
        con.execute(_INSERT_CLUSTERS)
        con.unregister("_lit_clusters")
        if len(pairs):
            con.register("_lit_pairs", pairs)
            con.execute(_INSERT_PAIRS)
            con.unregister("_lit_pairs")
        con.execute("INSERT INTO literature_runs VALUES (?, ?, ?, ?)",
                    ["dedup", dt.datetime.now(dt.UTC).replace(tzinfo=None), __version__, result.methods_sentence()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def load_dedup(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """The stored clusters (``record_id``, ``cluster_id``, ``is_primary``, ``source_database``,
    ``source_file``, ``source_position``, ``rule``), or None."""
    for statement in _DEDUP_SCHEMA:
        con.execute(statement)
    frame = con.execute(_SELECT_CLUSTERS).df()
    return frame if len(frame) else None


def load_dedup_pairs(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    for statement in _DEDUP_SCHEMA:
        con.execute(statement)
    return con.execute(_SELECT_PAIRS).df()
