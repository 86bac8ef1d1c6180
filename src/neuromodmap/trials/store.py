"""The trials store: one DuckDB file holding trials, labels, cross-registry links and provenance.

Tables
------
``trials``
    One row per registry id: every :class:`Trial` field as a column (lists ``VARCHAR[]``,
    interventions JSON, dates DATE), the raw record (JSON), its ``source`` (file or API
    query), ``as_of`` date, ``imported_at``, ``import_run_id`` and a ``record_hash``.
``trial_labels``
    One row per classified trial (written by :meth:`TrialStore.write_labels`).
``trial_label_overrides``
    Reviewers' corrections of labels, with their audit trail (:mod:`neuromodmap.trials.overrides`);
    :meth:`TrialStore.labels_df` applies the standing ones.
``trial_links``
    Cross-registry links found by :func:`neuromodmap.trials.dedup.link_registries`.
``import_runs``
    One row per import (a file, the one-study files of a folder or a list, or an API query):
    as-of date, start/finish, counts, files, status and, for the API, the checkpoint (next
    page token) a killed run resumes from.
``import_problems``
    Every problem of an import, with file, location, registry id, field, reason and
    ``action``: ``field emptied`` (the record was imported with that field empty) or
    ``record skipped`` (``file skipped``, ``rest of file skipped``).

Imports are idempotent: a record is upserted by registry id, and a row whose content,
source and as-of date are unchanged is left exactly as it was. A fresh import
commits at every whole row group (an update, every batch), so an import killed midway leaves
only whole commits, and re-running it gives the same ``trials`` table as a clean run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import operator
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from neuromodmap import __version__
from neuromodmap._utils import json_text, progress_bar, relaxed_gc
from neuromodmap.store import ROW_GROUP_SIZE, connect, cursor
from neuromodmap.trials._readers._common import ImportedRecord, TrialFileError
from neuromodmap.trials.io import (
    ONE_RECORD_FORMATS,
    InputFile,
    TrialReader,
    expand_inputs,
    reader_for,
)
from neuromodmap.trials.models import Classification, ImportProblem, Trial
from neuromodmap.trials.overrides import OVERRIDES_DDL, OVERRIDES_MIGRATE, effective_labels_sql

__all__ = ["TrialStore", "ImportReport", "TRIAL_COLUMNS", "trial_from_row"]

_LIST_FIELDS = {
    "secondary_ids", "conditions", "keywords", "condition_mesh", "intervention_mesh",
    "primary_outcomes", "secondary_outcomes", "phases", "countries",
}
_DATE_FIELDS = {"start_date", "completion_date", "registration_date", "last_update"}
_SQL_TYPE = {"enrollment": "INTEGER", "has_results": "BOOLEAN", "interventions": "JSON", "arm_groups": "JSON"}

#: the normalised Trial columns of the ``trials`` table, in order
TRIAL_COLUMNS: tuple[str, ...] = tuple(Trial.model_fields)
_TRIAL_VALUES = operator.attrgetter(*TRIAL_COLUMNS)
_PROVENANCE_COLUMNS = ("raw", "source", "as_of", "record_hash", "imported_at", "import_run_id")


def _sql_type(name: str) -> str:
    if name in _LIST_FIELDS:
        return "VARCHAR[]"
    if name in _DATE_FIELDS:
        return "DATE"
    return _SQL_TYPE.get(name, "VARCHAR")


_TRIALS_DDL = (
    "CREATE TABLE IF NOT EXISTS trials (registry_id VARCHAR PRIMARY KEY, "
    + ", ".join(f"{c} {_sql_type(c)}" for c in TRIAL_COLUMNS if c != "registry_id")
    + ", raw JSON, source VARCHAR, as_of DATE, record_hash VARCHAR, imported_at TIMESTAMP, "
    "import_run_id VARCHAR)"
)
_SCHEMA = [
    _TRIALS_DDL,
    """CREATE TABLE IF NOT EXISTS trial_labels (
        registry_id VARCHAR PRIMARY KEY, neuromod BOOLEAN, modalities VARCHAR[],
        modality_group VARCHAR[], indication VARCHAR, pain_subtype VARCHAR[],
        depression_subtype VARCHAR[], chronic_pain BOOLEAN, targets VARCHAR[], invasive BOOLEAN,
        evidence JSON, classifier_version VARCHAR, classified_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS trial_links (
        registry_id VARCHAR, linked_id VARCHAR, method VARCHAR, score DOUBLE, confirmed BOOLEAN,
        detail VARCHAR, linked_at TIMESTAMP, PRIMARY KEY (registry_id, linked_id, method))""",
    """CREATE TABLE IF NOT EXISTS import_runs (
        run_id VARCHAR PRIMARY KEY, kind VARCHAR, source VARCHAR, format VARCHAR, query JSON,
        as_of DATE, started TIMESTAMP, finished TIMESTAMP, n_read BIGINT, n_ok BIGINT,
        n_problems BIGINT, total_count BIGINT, checkpoint VARCHAR, status VARCHAR,
        software_version VARCHAR, n_files BIGINT)""",
    # stores made before runs of many files had no n_files column
    "ALTER TABLE import_runs ADD COLUMN IF NOT EXISTS n_files BIGINT",
    """CREATE TABLE IF NOT EXISTS import_problems (
        run_id VARCHAR, source VARCHAR, location VARCHAR, field VARCHAR, reason VARCHAR,
        registry_id VARCHAR, recorded_at TIMESTAMP, action VARCHAR)""",
    # stores made before field problems kept their record had no action column
    "ALTER TABLE import_problems ADD COLUMN IF NOT EXISTS action VARCHAR",
    # stores made before arms were kept had no arm_groups column
    "ALTER TABLE trials ADD COLUMN IF NOT EXISTS arm_groups JSON",
    # stores made before partial dates kept their precision
    "ALTER TABLE trials ADD COLUMN IF NOT EXISTS start_date_precision VARCHAR",
    "ALTER TABLE trials ADD COLUMN IF NOT EXISTS completion_date_precision VARCHAR",
    # reviewers' corrections of labels (neuromodmap serve); see neuromodmap.trials.overrides
    OVERRIDES_DDL,
    OVERRIDES_MIGRATE,
]

_INSERT_COLUMNS = TRIAL_COLUMNS + _PROVENANCE_COLUMNS


def read_only_compat(con) -> list[str]:
    """Let a store written by an older version be read without migrating it.

    A writable store is migrated when opened (the ``ALTER TABLE ... ADD COLUMN`` and ``CREATE
    TABLE IF NOT EXISTS`` statements of the schema). A read-only connection cannot migrate, so
    each column added since the store was written is supplied as NULL by a temporary view over
    the stored table, and each table added since as an empty temporary table; the file is not
    touched. Returns what was supplied (``table.column`` or ``table``).
    """
    import re

    db = con.execute("SELECT current_database()").fetchone()[0]
    qdb = '"' + db.replace('"', '""') + '"'
    stored = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'", [db]).fetchall()}
    have: dict[str, set[str]] = {}
    for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main'",
            [db]).fetchall():
        have.setdefault(table, set()).add(column)
    wanted: dict[str, dict[str, str]] = {"trials": {c: _sql_type(c) for c in (*TRIAL_COLUMNS, *_PROVENANCE_COLUMNS)}}
    wanted["trials"].update({"raw": "JSON", "as_of": "DATE", "imported_at": "TIMESTAMP"})
    supplied: list[str] = []
    for ddl in _SCHEMA:
        created = re.match(r"\s*CREATE TABLE IF NOT EXISTS (\w+)", ddl)
        if created and created.group(1) not in stored:
            con.execute(ddl.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE IF NOT EXISTS", 1))
            supplied.append(created.group(1))
            continue
        added = re.match(r"\s*ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+) (.+)$", ddl)
        if added:
            wanted.setdefault(added.group(1), {})[added.group(2)] = added.group(3).strip()
    for table, columns in wanted.items():
        if table not in stored:
            continue
        missing = [c for c in columns if c not in have.get(table, set())]
        if missing:
            extra = ", ".join(f"CAST(NULL AS {columns[c]}) AS {c}" for c in missing)
            con.execute(f"CREATE TEMP VIEW {table} AS SELECT *, {extra} FROM {qdb}.main.{table}")  # noqa: S608 (names from the schema)
            supplied += [f"{table}.{c}" for c in missing]
    return supplied

_CASTS = {"raw": "JSON", "as_of": "DATE", "imported_at": "TIMESTAMP"}
_SELECT_CAST = ", ".join(
    f"CAST({c} AS {_sql_type(c) if c in TRIAL_COLUMNS else _CASTS.get(c, 'VARCHAR')}) AS {c}"
    for c in _INSERT_COLUMNS
)
# A CT.gov-sourced row is never replaced by the ICTRP re-export of the same trial; an
# unchanged record (same hash) is left as it is, so re-imports are no-ops.
_STAGE_SQL = f"CREATE OR REPLACE TEMP TABLE _trial_batch AS SELECT {_SELECT_CAST} FROM _trial_frame"  # noqa: S608
_INSERT_NEW_SQL = (
    f"INSERT INTO trials ({', '.join(_INSERT_COLUMNS)}) SELECT * FROM _trial_batch b"  # noqa: S608
    " WHERE NOT EXISTS (SELECT 1 FROM trials t WHERE t.registry_id = b.registry_id)"
)
_INSERT_FRAME_SQL = f"INSERT INTO trials ({', '.join(_INSERT_COLUMNS)}) SELECT {_SELECT_CAST} FROM _trial_frame"  # noqa: S608
# A fresh import holds its batches back and inserts them together once they make whole row
# groups (neuromodmap.store.ROW_GROUP_SIZE), which DuckDB writes straight to the file instead
# of the write-ahead log; the rows past the last whole group wait for the next flush (see
# _Stage.flush). A frame's ``_location`` column is not stored.
_BATCH = 2048
# ... or fewer records when they are large: a batch is written once its raw records reach this
# many characters (full AllPublicXML records average ~12 KB of raw JSON and several times that
# as Python objects)
_BATCH_CHARS = 8_000_000


def _record_chars(rec: ImportedRecord) -> int:
    """About how many characters a record stores (its raw JSON), without serialising it."""
    if rec.raw_json is not None:
        return len(rec.raw_json)
    if rec.size:
        return rec.size
    t = rec.trial
    return 2 * (len(t.title) + len(t.official_title) + len(t.brief_summary) + len(t.detailed_description)) + 2000
_ANY_KNOWN_SQL = (
    "SELECT count(*) FROM _trial_frame b WHERE EXISTS (SELECT 1 FROM trials t WHERE t.registry_id = b.registry_id)"
)
_UPSERT_SQL = (
    f"INSERT INTO trials ({', '.join(_INSERT_COLUMNS)}) SELECT * FROM _trial_batch b"  # noqa: S608
    " WHERE EXISTS (SELECT 1 FROM trials t WHERE t.registry_id = b.registry_id) "
    "ON CONFLICT (registry_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _INSERT_COLUMNS if c != "registry_id")
    + " WHERE trials.record_hash IS DISTINCT FROM EXCLUDED.record_hash"
    " AND NOT (EXCLUDED.source_format LIKE 'ictrp%' AND trials.source_format NOT LIKE 'ictrp%')"
)


def _rollback(con) -> None:
    """Roll back if a transaction is still open (a failed COMMIT has already ended it)."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


class _Stage:
    """The batch frames of a fresh import, held back and inserted into ``trials`` together.

    A batch joins the stage when none of its ids is stored or staged already; otherwise the
    stage is flushed first and the batch takes the upsert path (so a later duplicate still
    wins). A staged batch is inserted at once into a transaction that stays open until it holds
    a whole row group (:data:`~neuromodmap.store.ROW_GROUP_SIZE` rows: a batch that crosses the
    boundary is split there), which commits with the run's counts (so a killed import leaves
    only whole commits behind) and goes straight to the database file; ``flush`` commits what
    is open (the rest of a file). The insert work is so done as the batches come, and the last
    commit of a file is only a commit. If the database refuses a batch (a value it cannot take),
    the open transaction is rolled back and each of its batches written on its own, a refused
    one record by record, so only the bad record is lost and reported.
    """

    def __init__(self, store: TrialStore, run_id: str, source: str, problems: list[ImportProblem] | None):
        self.store = store
        self.con = store.con
        self.source = source
        self.run_id = run_id
        self.problems = problems
        self.frames: list[tuple[pd.DataFrame, int]] = []  # the open transaction's
        self.ids: set[str] = set()
        self.rows = 0  # rows in the open transaction
        self.n_read = 0  # records read into them
        self.inserted = 0  # rows the open transaction's inserts wrote
        self.open = False
        self.written = 0  # rows committed

    def add(self, df: pd.DataFrame, n_batch: int) -> bool:
        """Stage ``df``; False when it must take the upsert path (nothing was staged)."""
        ids = df["registry_id"].tolist()
        if not self.ids.isdisjoint(ids):
            return False
        con = self.con
        # the ids alone: registering the whole frame makes DuckDB sample every text column
        con.register("_trial_frame", pd.DataFrame({"registry_id": ids}, dtype=object))
        try:
            if con.execute(_ANY_KNOWN_SQL).fetchall()[0][0]:
                return False
        finally:
            with contextlib.suppress(duckdb.Error):
                con.unregister("_trial_frame")
        self.ids.update(ids)
        while len(df):
            room = ROW_GROUP_SIZE - self.rows
            if len(df) < room:
                self._insert(df, n_batch)
                break
            rest = len(df) - room  # the records read past the boundary are counted with the rest
            self._insert(df.iloc[:room] if rest else df, n_batch - rest)
            self._commit()
            df, n_batch = df.iloc[room:].reset_index(drop=True), rest
            self.ids.update(df["registry_id"].tolist())  # the open transaction's ids again
        return True

    def _insert(self, df: pd.DataFrame, n_batch: int) -> None:
        con = self.con
        self.frames.append((df, n_batch))
        self.rows += len(df)
        self.n_read += n_batch
        try:
            if not self.open:
                con.execute("BEGIN TRANSACTION")
                self.open = True
            con.register("_trial_frame", df)
            try:
                self.inserted += con.execute(_INSERT_FRAME_SQL).fetchall()[0][0]
            finally:
                with contextlib.suppress(duckdb.Error):
                    con.unregister("_trial_frame")
        except duckdb.Error:
            self._refused()
        except BaseException:
            self.drop()
            raise

    def _commit(self) -> None:
        if not self.open:
            return
        con = self.con
        try:
            con.execute(
                "UPDATE import_runs SET n_read = n_read + ?, n_ok = n_ok + ? WHERE run_id = ?",
                [self.n_read, self.n_read, self.run_id],
            )
            con.execute("COMMIT")
        except duckdb.Error:
            self._refused()
            return
        except BaseException:
            self.drop()
            raise
        self.open = False
        self.written += self.inserted
        self.drop()

    def _refused(self) -> None:
        """The database refused a batch or the commit: roll back, write batch by batch."""
        frames = self.frames
        self.drop()
        if self.problems is None:
            raise
        self.written += self._batch_by_batch(frames)

    def flush(self) -> int:
        """Commit the open transaction (part of a row group, at the end of a file or before an
        upsert); return the rows written so far."""
        self._commit()
        return self.written

    def _batch_by_batch(self, frames: list[tuple[pd.DataFrame, int]]) -> int:
        """After a refused flush: each batch on its own; a refused one record by record."""
        store, written = self.store, 0
        for df, n_batch in frames:
            try:
                written += store._write_batch(self.con, df, n_batch, self.run_id, None)
            except duckdb.Error:
                written += store._write_one_by_one(df, self.run_id, None, self.problems)
        return written

    def drop(self) -> None:
        """Forget the open transaction (rolled back if it is still open)."""
        if self.open:
            _rollback(self.con)
            self.open = False
        self.frames, self.ids = [], set()
        self.rows = self.n_read = self.inserted = 0


def trial_from_row(row: tuple) -> Trial:
    """A :class:`Trial` from a ``SELECT`` of :data:`TRIAL_COLUMNS` (in that order)."""
    data = dict(zip(TRIAL_COLUMNS, row, strict=True))
    data["interventions"] = json.loads(data["interventions"] or "[]")
    data["arm_groups"] = json.loads(data["arm_groups"] or "[]")
    for name in _LIST_FIELDS:
        if data[name] is None:
            data[name] = []
    for name in ("title", "official_title", "acronym", "brief_summary", "detailed_description", "source_format"):
        if data[name] is None:
            data[name] = ""
    return Trial.model_validate(data)


def _record_hash(source: str, as_of, source_format: str, raw: str) -> str:
    """A stored row's ``record_hash``: a re-import of the same record from the same source, as
    of the same date, writes nothing."""
    return hashlib.blake2b(f"{source}\x1f{as_of}\x1f{source_format}\x1f{raw}".encode("utf-8", "surrogatepass"),
                           digest_size=16).hexdigest()


def _late_as_of(cols: dict[str, list], as_of) -> dict[str, list]:
    """``cols`` (built with no as-of date) for the as-of date found after they were built:
    records without their own take ``as_of``, and the hashes follow (see :func:`record_columns`)."""
    as_ofs = [a or as_of for a in cols["as_of"]]
    cols["as_of"] = as_ofs
    cols["record_hash"] = [_record_hash(s, a, f, raw) for s, a, f, raw in
                           zip(cols["source"], as_ofs, cols["source_format"], cols["raw"], strict=True)]
    return cols


def record_columns(records: list[ImportedRecord], source: str, as_of) -> dict[str, list]:
    """The ``trials`` columns of ``records`` (plus ``_location``), as lists of plain values.

    Everything but the import run's id and time, so a worker process can build them and
    send them to the process that writes the store (see :mod:`neuromodmap.trials.pipeline`).
    """
    trials = [r.trial for r in records]
    cols: dict[str, Any] = (
        dict(zip(TRIAL_COLUMNS, map(list, zip(*map(_TRIAL_VALUES, trials), strict=True)), strict=True))
        if trials else {c: [] for c in TRIAL_COLUMNS}
    )
    cols["interventions"] = [
        json_text([iv.model_dump() for iv in t.interventions]) if t.interventions else "[]" for t in trials
    ]
    cols["arm_groups"] = [
        json_text([arm.model_dump() for arm in t.arm_groups]) if t.arm_groups else "[]" for t in trials
    ]
    raws = [r.raw_json if r.raw_json is not None else json_text(r.raw) for r in records]
    sources = [r.source or source for r in records]
    as_ofs = [r.as_of or as_of for r in records]
    cols["raw"] = raws
    cols["source"] = sources
    cols["as_of"] = as_ofs
    cols["record_hash"] = [
        _record_hash(s, a, t.source_format, raw) for s, a, t, raw in zip(sources, as_ofs, trials, raws, strict=True)
    ]
    cols["_location"] = [r.location for r in records]
    return cols


def _frame(cols: dict[str, list], run_id: str) -> pd.DataFrame:
    # object columns: DuckDB reads the Python values as they are (it finds each column's type in
    # the values); letting pandas turn the text into Arrow strings first cost more than the insert
    # (full records: 0.13-0.29 s per 6,144 rows, against 0.01 s)
    df = pd.DataFrame(cols, dtype=object)
    df["imported_at"] = _now()
    df["import_run_id"] = run_id
    return df


class _Writer:
    """Writes batch frames of one import run: staged in bulk when new, upserted otherwise.

    A batch the database refuses is retried record by record, so one bad record is reported
    in ``problems`` (or raised, when None) and the others are kept. ``checkpoint(con)`` (the
    API client's page token) commits with every batch, so then nothing is staged.
    """

    def __init__(self, store: TrialStore, run_id: str, source: str, problems: list[ImportProblem] | None,
                 checkpoint: Callable | None = None):
        self.store = store
        self.run_id = run_id
        self.problems = problems
        self.checkpoint = checkpoint
        self.stage = _Stage(store, run_id, source, problems) if checkpoint is None else None
        self.upserted = 0  # rows written outside the stage

    @property
    def written(self) -> int:
        """Rows written (committed) so far."""
        return self.upserted + (self.stage.written if self.stage is not None else 0)

    def write(self, df: pd.DataFrame | None, n_batch: int) -> None:
        stage, store = self.stage, self.store
        try:
            if stage is not None and df is not None:
                if stage.add(df, n_batch):
                    df = None
                else:
                    stage.flush()
            if df is not None or self.checkpoint is not None:
                self.upserted += store._write_batch(store.con, df, n_batch, self.run_id, self.checkpoint)
        except duckdb.Error:
            if self.problems is None or df is None:
                raise
            if stage is not None:  # a value the stage refused: keep order, then go one by one
                stage.flush()
            self.upserted += store._write_one_by_one(df, self.run_id, self.checkpoint, self.problems)

    def finish(self) -> None:
        if self.stage is not None:
            self.stage.flush()

    def close(self) -> None:
        if self.stage is not None:
            self.stage.drop()


class _BlockImport:
    """One file's import run, fed column blocks in file order (the two-process pipeline
    builds them in both processes, so each record is parsed once).

    ``add`` gathers blocks into batches of ``batch_size`` rows (a later duplicate wins) and
    writes them; ``finish`` writes the rest and closes the run with ``problems``, which may
    have grown meanwhile (the skipped lines of either process); ``abort`` marks it failed.
    """

    def __init__(self, store: TrialStore, path: Path, fmt: str, *, as_of, problems: list[ImportProblem],
                 batch_size: int = _BATCH, kind: str = "file", source: str | None = None, n_files: int | None = 1):
        self.store, self.problems, self.batch_size = store, problems, batch_size
        source = source or str(path)
        self.run_id = store._start_run(kind=kind, source=source, fmt=fmt, query=None, as_of=as_of, n_files=n_files)
        self.writer = _Writer(store, self.run_id, source, problems)
        # the worker process keeps another core busy: DuckDB's own threads would only compete
        # with it (one thread inserts the frames ~20 % faster on two cores)
        self.threads = store.con.execute("SELECT current_setting('threads')").fetchone()[0]
        store.con.execute("SET threads = 1")
        self.pending: dict[str, list] = {}
        self.n_pending = self.n_read = self.chars = 0

    def add(self, cols: dict[str, list]) -> None:
        n = len(cols["registry_id"])
        if not n:
            return
        if self.pending:
            for name, values in cols.items():
                self.pending[name] += values
        else:
            self.pending = {name: list(values) for name, values in cols.items()}
        self.n_pending += n
        self.n_read += n
        self.chars += sum(map(len, cols["raw"]))
        if self.n_pending >= self.batch_size or self.chars >= _BATCH_CHARS:
            self._flush()

    def _flush(self) -> None:
        if self.n_pending:
            df = _frame(self.pending, self.run_id).drop_duplicates("registry_id", keep="last")
            self.writer.write(df, self.n_pending)
        self.pending, self.n_pending, self.chars = {}, 0, 0

    def finish(self, **run) -> int:
        """Write what is left, close the run (``run``: what a run of many files turned out to
        cover: ``source``, ``kind``, ``fmt``, ``n_files``); return the rows written."""
        try:
            self._flush()
            self.writer.finish()
        except BaseException:
            self.abort()
            raise
        self.writer.close()
        self._threads()
        self.store._finish_run(self.run_id, n_read=self.n_read, n_ok=self.n_read, problems=self.problems,
                               status="completed", **run)
        return self.writer.written

    def abort(self) -> None:
        self.writer.close()
        self._threads()
        self.store._finish_run(self.run_id, n_read=0, n_ok=0, problems=self.problems, status="failed")

    def _threads(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.store.con.execute(f"SET threads = {int(self.threads)}")


def _tap(records: Iterable[ImportedRecord], on_record: Callable[[ImportedRecord], None] | None):
    """``records``, each handed to ``on_record`` first (when given)."""
    if on_record is None:
        return records
    return (on_record(rec) or rec for rec in records)


def import_note(path, what: str | None, n_read: int, as_of, *, given: bool) -> str | None:
    """The line an import prints for a file whose kind and as-of date the user should see
    (``what``: :attr:`TrialReader.provenance`, None for formats without one): website exports."""
    if what is None:
        return None
    when = (f"as of {as_of} (given)" if given
            else f"as of {as_of} (its latest date posted; pass --as-of for the download date)"
            if as_of is not None else "no as-of date in it (pass --as-of)")
    return f"{path}: {what}, {n_read:,} records, {when}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class ImportReport:
    """What an import did: records read and upserted, problems, time taken."""

    n_read: int = 0
    n_upserted: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    seconds: float = 0.0
    runs: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    #: one line per file whose kind and as-of date the user should see (website exports)
    notes: list[str] = field(default_factory=list)

    @property
    def records_per_second(self) -> float:
        return self.n_read / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.n_read:,} records read from {len(self.files)} file(s), {self.n_upserted:,} new or "
            f"changed, {len(self.problems):,} problem(s), {self.seconds:.1f} s "
            f"({self.records_per_second:,.0f} records/s)"
        )


class TrialStore:
    """The DuckDB store of imported trials.

    Parameters
    ----------
    db_path : path, optional
        The database file (default ``./neuromodmap.duckdb``); created when missing.
    read_only : bool
        Open without write access (several readers may share a file).
    memory_limit : str
        DuckDB's memory limit for this database (it spills to disk beyond it).

    Examples
    --------
    >>> store = TrialStore("trials.duckdb")                       # doctest: +SKIP
    >>> report = store.import_files(["ctgov_text_2018.jsonl.gz"])  # doctest: +SKIP
    >>> store.trials_df().shape                                   # doctest: +SKIP
    """

    def __init__(
        self, db_path: str | os.PathLike | None = None, read_only: bool = False, *, memory_limit: str = "512MB"
    ):
        self.db_path = Path(db_path) if db_path else None
        self.read_only = read_only
        self.con = connect(db_path, read_only=read_only)
        if not read_only:
            for ddl in _SCHEMA:
                self.con.execute(ddl)
            # checkpoint rarely: each one recompresses the table's growing last row group, which
            # doubled both the import time and the file size of the 101k corpus (1.3 GB vs 0.67 GB)
            self.con.execute("SET wal_autocheckpoint = '1GB'")
            # DuckDB's default cache is 80 % of RAM; the store needs little (peak-RSS budget)
            self.con.execute("SET memory_limit = ?", [memory_limit])
            # a writer holds the file lock, so any run still marked running was killed
            self.con.execute("UPDATE import_runs SET status = 'interrupted' WHERE status = 'running'")
        else:
            tables = {r[0] for r in self.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            if "trials" not in tables:
                raise FileNotFoundError(f"{db_path or 'the database'} holds no trials; import some first")
            read_only_compat(self.con)

    # ------------------------------------------------------------------ context
    def close(self) -> None:
        """Close the database connection."""
        self.con.close()

    def __enter__(self) -> TrialStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    @contextlib.contextmanager
    def _checkpointing(self) -> Iterator[None]:
        """Commits in this block write the database file (a checkpoint) instead of the write-ahead
        log. For the last commit of ``import_and_classify`` (the labels): what earlier commits left
        in the log (the rest of a row group of records) is compressed then instead of when the
        store is closed, and the labels never go through the log (6,786 full records: closing
        0.06 -> 0.01 s, the labels' commit 0.035 -> 0.075 s).
        Not for every import run: a checkpoint after each of 11 files made an import 50 % slower.
        DuckDB skips the checkpoint, and writes the log as usual, while another transaction is open.
        """
        con = self.con
        old = con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
        con.execute("SET checkpoint_threshold = '0b'")
        try:
            yield
        finally:
            con.execute("SET checkpoint_threshold = " + "'" + str(old).replace("'", "''") + "'")

    def _start_run(self, *, kind: str, source: str, fmt: str | None, query: dict | None, as_of,
                   n_files: int | None = None) -> str:
        run_id = uuid.uuid4().hex[:16]
        self.con.execute(
            "INSERT INTO import_runs (run_id, kind, source, format, query, as_of, started, n_read, n_ok,"
            " n_problems, status, software_version, n_files) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 'running', ?, ?)",
            [run_id, kind, source, fmt, json.dumps(query) if query is not None else None, as_of, _now(), __version__,
             n_files],
        )
        return run_id

    def _finish_run(self, run_id: str, *, n_read: int, n_ok: int, problems: list[ImportProblem], status: str,
                    source: str | None = None, kind: str | None = None, fmt: str | None = None,
                    n_files: int | None = None, as_of: dt.date | None = None) -> None:
        """Close a run: counts, status and problems (and, for a run of many files, what it
        turned out to cover: source folder, kind, formats, files), in one transaction."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._write_problems(run_id, problems)
            self.con.execute(
                "UPDATE import_runs SET finished = ?, n_read = ?, n_ok = ?, n_problems = ?, status = ?,"
                " source = coalesce(?, source), kind = coalesce(?, kind), format = coalesce(?, format),"
                " n_files = coalesce(?, n_files), as_of = coalesce(?, as_of) WHERE run_id = ?",
                [_now(), n_read, n_ok, len(problems), status, source, kind, fmt, n_files, as_of, run_id],
            )
            self.con.execute("COMMIT")
        except BaseException:
            _rollback(self.con)
            raise

    def _write_problems(self, run_id: str, problems: list[ImportProblem]) -> None:
        if not problems:
            return
        df = pd.DataFrame(
            {
                "run_id": run_id,
                "source": [p.source for p in problems],
                "location": [p.location for p in problems],
                "field": [p.field for p in problems],
                "reason": [p.reason for p in problems],
                "registry_id": [p.registry_id for p in problems],
                "action": [p.action for p in problems],
                "recorded_at": _now(),
            }
        )
        self.con.register("_problem_batch", df)
        try:
            self.con.execute(
                "INSERT INTO import_problems (run_id, source, location, field, reason, registry_id, recorded_at,"
                " action) SELECT run_id, source, location, field, reason, registry_id,"
                " CAST(recorded_at AS TIMESTAMP), action FROM _problem_batch"
            )
        finally:
            self.con.unregister("_problem_batch")

    # ------------------------------------------------------------------ upsert
    def _batch_frame(self, batch: dict[str, ImportedRecord], source: str, as_of, run_id: str) -> pd.DataFrame:
        return _frame(record_columns(list(batch.values()), source, as_of), run_id)

    def _write_batch(self, con, df: pd.DataFrame | None, n_batch: int, run_id: str, checkpoint) -> int:
        """One transaction: upsert a batch frame, advance the run's counts and checkpoint."""
        con.execute("BEGIN TRANSACTION")
        try:
            written = 0
            if df is not None:
                con.register("_trial_frame", df)
                try:
                    if con.execute(_ANY_KNOWN_SQL).fetchone()[0]:
                        # some ids are stored already: stage once, upsert those, insert the rest
                        con.execute(_STAGE_SQL)
                        written += con.execute(_UPSERT_SQL).fetchone()[0]
                        written += con.execute(_INSERT_NEW_SQL).fetchone()[0]
                        con.execute("DROP TABLE _trial_batch")
                    else:  # all new (a fresh import): one bulk insert straight from the frame
                        written += con.execute(_INSERT_FRAME_SQL).fetchone()[0]
                finally:
                    with contextlib.suppress(duckdb.Error):
                        con.unregister("_trial_frame")
            if checkpoint is not None:
                checkpoint(con)
            con.execute(
                "UPDATE import_runs SET n_read = n_read + ?, n_ok = n_ok + ? WHERE run_id = ?",
                [n_batch, n_batch, run_id],
            )
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
        return written

    def _upsert(
        self,
        records: Iterable[ImportedRecord],
        *,
        source: str,
        as_of: dt.date | None,
        run_id: str,
        batch_size: int = _BATCH,
        on_batch: Callable[[int, int], None] | None = None,
        checkpoint: Callable | None = None,
        problems: list[ImportProblem] | None = None,
        as_of_after: Callable[[], dt.date | None] | None = None,
    ) -> tuple[int, int]:
        """Upsert in batches, one transaction each; return (records read, rows written).

        ``as_of_after()``: the as-of date, known only once every record is read (a website
        export's latest posted date, found while its rows are read): the batches' columns are
        held back until then and written with it (``as_of`` is then unused).

        ``checkpoint(con)`` runs inside the last batch's transaction (the API client moves
        its page token there, so rows and checkpoint commit together). A batch the database
        refuses is retried record by record, so one bad record is reported in ``problems``
        (or raised, when None) and the others are kept.
        """
        n_read = chars = 0
        batch: dict[str, ImportedRecord] = {}
        writer = _Writer(self, run_id, source, problems, checkpoint)
        held: list[tuple[dict[str, list], int]] | None = [] if as_of_after is not None else None

        def flush() -> None:
            nonlocal chars
            if not batch and checkpoint is None:
                return
            if held is not None:
                if batch:
                    held.append((record_columns(list(batch.values()), source, None), len(batch)))
            else:
                writer.write(self._batch_frame(batch, source, as_of, run_id) if batch else None, len(batch))
            if on_batch is not None:
                on_batch(n_read, writer.written)
            batch.clear()
            chars = 0

        try:
            for rec in records:
                n_read += 1
                batch.pop(rec.trial.registry_id, None)  # a later duplicate wins, as across batches
                batch[rec.trial.registry_id] = rec
                chars += _record_chars(rec)
                if len(batch) >= batch_size or chars >= _BATCH_CHARS:
                    flush()
            flush()
            if held is not None:
                late = as_of_after()
                while held:
                    cols, n = held.pop(0)
                    writer.write(_frame(_late_as_of(cols, late), run_id), n)
            writer.finish()
        finally:
            writer.close()
        n_written = writer.written
        return n_read, n_written

    def _write_one_by_one(self, df: pd.DataFrame, run_id: str, checkpoint, problems: list[ImportProblem]) -> int:
        written = 0
        for k in range(len(df)):
            row = df.iloc[k:k + 1]
            try:
                written += self._write_batch(self.con, row, 1, run_id, None)
            except duckdb.Error as err:
                problems.append(
                    ImportProblem(
                        source=row["source"].iat[0],
                        location=row["_location"].iat[0],
                        registry_id=row["registry_id"].iat[0],
                        reason=f"refused by the database: {str(err).splitlines()[0][:200]}",
                    )
                )
        if checkpoint is not None:
            self._write_batch(self.con, None, 0, run_id, checkpoint)
        return written

    def upsert(
        self,
        records: Iterable[ImportedRecord],
        *,
        source: str,
        as_of: dt.date | None,
        batch_size: int = _BATCH,
        problems: list[ImportProblem] | None = None,
    ) -> int:
        """Insert or update records by registry id; return the number of rows written.

        Parameters
        ----------
        records : iterable of ImportedRecord
            From :func:`~neuromodmap.trials.io.read_trials` or the API client.
        source : str
            Where they came from (file path or query), kept as provenance for records that do
            not carry their own.
        as_of : date, optional
            The date the data refer to, for records without their own (legacy XML carries its
            ``download_date``).
        batch_size : int
            Records per batch. A fresh import commits at every whole row group
            (:data:`~neuromodmap.store.ROW_GROUP_SIZE` rows), an update every batch.
        problems : list, optional
            Records the database refuses are reported here and skipped (the rest of their
            batch is kept); when None such an error is raised.
        """
        run_id = self._start_run(kind="records", source=source, fmt=None, query=None, as_of=as_of)
        found: list[ImportProblem] = []
        try:
            n_read, n_written = self._upsert(
                records,
                source=source,
                as_of=as_of,
                run_id=run_id,
                batch_size=batch_size,
                problems=found if problems is not None else None,
            )
        except BaseException:
            self.con.execute("UPDATE import_runs SET status = 'failed', finished = ? WHERE run_id = ?", [_now(), run_id])
            raise
        self._finish_run(run_id, n_read=n_read, n_ok=n_read - len(found), problems=found, status="completed")
        if problems is not None:
            problems.extend(found)
        return n_written

    @relaxed_gc()
    def import_files(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        progress: bool = True,
        problems: list[ImportProblem] | None = None,
        as_of: dt.date | None = None,
        encoding: str | None = None,
        batch_size: int = _BATCH,
        on_record: Callable[[ImportedRecord], None] | None = None,
    ) -> ImportReport:
        """Import trial files of any supported format, with a progress bar.

        A file of many records (JSON lines, a ZIP or tar archive, an ICTRP export) is one
        import run. Files of one study each (legacy XML, v2 JSON), named one after another
        or found in a folder, are imported together as one run, committed in batches like
        the records of one large file (a folder argument: one run per folder); each record
        keeps its own file as ``source``, each problem names its file.

        Parameters
        ----------
        paths : iterable of path
            Files or folders (read recursively, in path order; hidden files skipped) to
            import; formats are detected from content.
        progress : bool
            Show a rich progress bar (bytes read, files, records, ETA).
        problems : list, optional
            Skipped records are appended here as well as to the report and the
            ``import_problems`` table.
        as_of : date, optional
            The date the files' data refer to (the 2018 corpus carries none). Legacy XML
            records use their own ``download_date``.
        encoding : str, optional
            Encoding of JSON-lines/CSV files without a byte-order mark (default UTF-8).
        batch_size : int
            Records per batch. A fresh import commits at every whole row group
            (:data:`~neuromodmap.store.ROW_GROUP_SIZE` rows), an update every batch.
        on_record : callable, optional
            Called with each record as it is read, in reading order, before it is stored (the
            pipeline classifies records so, without reading the files again).

        Raises
        ------
        TrialFileError
            When a path does not exist, or a folder is empty or unreadable (checked before
            anything is imported).
        """
        inputs = expand_inputs(paths)
        report = ImportReport(files=[f.path for f in inputs])
        started = time.perf_counter()
        with progress_bar(disable=not progress, by_bytes=True) as bar:
            pos = 0
            while pos < len(inputs):
                path = Path(inputs[pos].path)
                file_problems: list[ImportProblem] = []
                try:
                    reader = reader_for(inputs[pos], problems=file_problems, encoding=encoding)
                except TrialFileError as err:
                    file_problems.append(ImportProblem(source=str(path), location="file", reason=str(err)))
                    run_id = self._start_run(kind="file", source=str(path), fmt=None, query=None, as_of=as_of,
                                             n_files=1)
                    self._finish_run(run_id, n_read=0, n_ok=0, problems=file_problems, status="failed")
                    report.problems.extend(file_problems)
                    report.runs.append(run_id)
                    pos += 1
                    continue
                if reader.format in ONE_RECORD_FORMATS:
                    pos = self._import_group(inputs, pos, reader, bar, report, as_of=as_of, encoding=encoding,
                                             batch_size=batch_size, on_record=on_record)
                    continue
                pos += 1
                # a website export carries no date: its latest posted date bounds it (see default_as_of),
                # found while its rows are read; they are written once it is known
                late = as_of is None and reader.as_of_from_file
                run_as_of = as_of
                run_id = self._start_run(kind="file", source=str(path), fmt=reader.format, query=None,
                                         as_of=run_as_of, n_files=1)
                task = bar.add_task(path.name, total=reader.size, records=0)

                def on_batch(n_read: int, _written: int, task=task, reader=reader) -> None:
                    bar.update(task, completed=reader.position, records=n_read)

                try:
                    n_read, n_written = self._upsert(
                        _tap(reader, on_record),
                        source=str(path),
                        as_of=run_as_of,
                        run_id=run_id,
                        batch_size=batch_size,
                        on_batch=on_batch,
                        problems=file_problems,
                        as_of_after=reader.default_as_of if late else None,
                    )
                except BaseException:
                    self._finish_run(run_id, n_read=0, n_ok=0, problems=file_problems, status="failed")
                    raise
                bar.update(task, completed=reader.size)
                if late:
                    run_as_of = reader.default_as_of()
                self._finish_run(run_id, n_read=n_read, n_ok=n_read, problems=file_problems, status="completed",
                                 as_of=run_as_of)
                if (note := import_note(path, reader.provenance, n_read, run_as_of, given=as_of is not None)):
                    report.notes.append(note)
                report.n_read += n_read
                report.n_upserted += n_written
                report.problems.extend(file_problems)
                report.runs.append(run_id)
        if problems is not None:
            problems.extend(report.problems)
        report.seconds = time.perf_counter() - started
        return report

    def _import_group(self, inputs: list[InputFile], start: int, first: TrialReader, bar, report: ImportReport, *,
                      as_of: dt.date | None, encoding: str | None, batch_size: int,
                      on_record: Callable[[ImportedRecord], None] | None = None) -> int:
        """Import ``inputs[start:]`` as one run while they are one-study files of the same folder
        argument (or named files); return the index of the first input left for another run.

        The records of all the files go through one :meth:`_upsert`, so they are committed in
        batches (whole row groups for a fresh import), not file by file. A file that cannot be
        read is one problem of the run.
        """
        folder = inputs[start].folder
        end = start
        while end < len(inputs) and inputs[end].folder == folder:
            end += 1
        n_candidates = end - start
        problems: list[ImportProblem] = []
        run_id = self._start_run(kind="folder" if folder is not None else "files",
                                 source=str(folder) if folder is not None else inputs[start].path,
                                 fmt=first.format, query=None, as_of=as_of)
        label = f"{folder.name or folder}/" if folder is not None else "files"
        task = bar.add_task(label, total=sum(f.size for f in inputs[start:end]), records=0)
        state = {"pos": start, "files": 0, "bytes": 0, "records": 0}
        formats: set[str] = set()
        common: list[str] = []  # the folder all named files are in

        def tick(force: bool = False) -> None:
            if force or state["files"] % 32 == 0:
                bar.update(task, completed=state["bytes"], records=state["records"],
                           description=f"{label} {state['files']:,}/{n_candidates:,} files")

        def records() -> Iterator[ImportedRecord]:
            reader = first
            while True:
                item = inputs[state["pos"]]
                reader.problems = problems
                formats.add(reader.format)
                try:
                    for rec in reader:
                        state["records"] += 1
                        if on_record is not None:
                            on_record(rec)
                        yield rec
                except OSError as err:  # the file went away or turned unreadable since it was listed
                    problems.append(ImportProblem(source=item.path, location="file",
                                                  reason=f"cannot read ({err.strerror or err})"))
                parent = os.path.dirname(item.path)
                if not common:
                    common.append(parent)
                elif parent != common[0]:
                    common[0] = os.path.commonpath([common[0], parent])
                state["pos"] += 1
                state["files"] += 1
                state["bytes"] += item.size
                tick()
                while True:  # the next one-study file of this group, if any
                    if state["pos"] >= end:
                        return
                    item = inputs[state["pos"]]
                    try:
                        reader = reader_for(item, problems=problems, encoding=encoding)
                    except TrialFileError as err:
                        problems.append(ImportProblem(source=item.path, location="file", reason=str(err)))
                        state["pos"] += 1
                        state["files"] += 1
                        state["bytes"] += item.size
                        continue
                    if reader.format not in ONE_RECORD_FORMATS:  # a file of many records: a run of its own
                        inputs[state["pos"]] = InputFile(item.path, item.folder, item.size, reader.format)
                        return
                    break

        try:
            n_read, n_written = self._upsert(records(), source=str(folder or inputs[start].path), as_of=as_of,
                                             run_id=run_id, batch_size=batch_size, problems=problems)
        except BaseException:
            self._finish_run(run_id, n_read=0, n_ok=0, problems=problems, status="failed")
            raise
        n_files = state["files"]
        tick(force=True)
        bar.update(task, total=state["bytes"])
        if folder is not None:
            source, kind = str(folder), "folder"
        elif n_files == 1:
            source, kind = inputs[start].path, "file"
        else:
            source, kind = common[0] if common else os.path.dirname(inputs[start].path), "files"
        self._finish_run(run_id, n_read=n_read, n_ok=n_read, problems=problems, status="completed",
                         source=source, kind=kind, fmt=", ".join(sorted(formats)) or first.format, n_files=n_files)
        report.n_read += n_read
        report.n_upserted += n_written
        report.problems.extend(problems)
        report.runs.append(run_id)
        return state["pos"]

    def _block_import(self, path: Path, fmt: str, *, as_of: dt.date | None,
                      problems: list[ImportProblem], **run) -> _BlockImport:
        """An import run for one file (or, with ``run`` = ``kind``, ``source``, ``n_files``, for
        the one-study files of a folder) whose records are pushed as column blocks
        (:func:`record_columns`) in file order; see :class:`_BlockImport`."""
        return _BlockImport(self, path, fmt, as_of=as_of, problems=problems, **run)

    # ------------------------------------------------------------------ read back
    def _trial_from_row(self, row: tuple) -> Trial:
        return trial_from_row(row)

    def iter_trials(self, *, chunk_size: int = 2000, unlabelled: str | None = None,
                    runs: Iterable[str] | None = None) -> Iterator[Trial]:
        """Every stored trial, in registry-id order, read in chunks (bounded memory).

        With ``unlabelled`` (a classifier version), only the trials that have no label from
        that version yet; with ``runs`` (import run ids) as well, those and the trials whose
        stored row those runs wrote.
        """
        cur = cursor(self.con)
        where, params = "", []
        if unlabelled is not None:
            where = (" WHERE registry_id NOT IN (SELECT registry_id FROM trial_labels"
                     " WHERE classifier_version = ?)")
            params = [unlabelled]
            if runs is not None:
                where += " OR import_run_id IN (SELECT unnest(?))"
                params.append(list(runs))
        try:
            cur.execute(f"SELECT {', '.join(TRIAL_COLUMNS)} FROM trials{where} ORDER BY registry_id", params)  # noqa: S608
            while rows := cur.fetchmany(chunk_size):
                for row in rows:
                    yield self._trial_from_row(row)
        finally:
            cur.close()

    def get_trial(self, registry_id: str) -> Trial | None:
        """The stored trial with this registry id, or None."""
        row = self.con.execute(
            f"SELECT {', '.join(TRIAL_COLUMNS)} FROM trials WHERE registry_id = ?", [registry_id]  # noqa: S608
        ).fetchone()
        return self._trial_from_row(row) if row else None

    def get_raw(self, registry_id: str) -> dict | None:
        """The raw source record of a trial, as imported."""
        row = self.con.execute("SELECT raw FROM trials WHERE registry_id = ?", [registry_id]).fetchone()
        return json.loads(row[0]) if row else None

    def __len__(self) -> int:
        return self.con.execute("SELECT count(*) FROM trials").fetchone()[0]

    def trials_df(self, *, deduplicate: bool = False) -> pd.DataFrame:
        """One row per trial: the normalised fields plus source, as-of date and run (no raw).

        Parameters
        ----------
        deduplicate : bool
            Drop records that a confirmed cross-registry link (TrialID or Secondary_ID, see
            :func:`~neuromodmap.trials.dedup.link_registries`) identifies as a copy of another
            stored record. Fuzzy title candidates are never dropped.
        """
        cols = ", ".join(TRIAL_COLUMNS + ("source", "as_of", "imported_at", "import_run_id"))
        where = ""
        if deduplicate:
            where = (
                " WHERE registry_id NOT IN (SELECT l.registry_id FROM trial_links l JOIN trials p"
                " ON p.registry_id = l.linked_id WHERE l.confirmed)"
            )
        return self.con.execute(f"SELECT {cols} FROM trials{where} ORDER BY registry_id").df()  # noqa: S608 (fixed column names)

    def import_runs_df(self) -> pd.DataFrame:
        """Import provenance: one row per file or API query imported."""
        return self.con.execute("SELECT * FROM import_runs ORDER BY started").df()

    def problems_df(self) -> pd.DataFrame:
        """Every skipped record: run, file, location, field, reason."""
        return self.con.execute("SELECT * FROM import_problems ORDER BY recorded_at, source").df()

    def links_df(self) -> pd.DataFrame:
        """Cross-registry links (see :func:`~neuromodmap.trials.dedup.link_registries`)."""
        return self.con.execute("SELECT * FROM trial_links ORDER BY registry_id, linked_id, method").df()

    # ------------------------------------------------------------------ labels
    def write_labels(self, classifications: Iterable[Classification], *, classifier_version: str, batch_size: int = 10000) -> int:
        """Upsert classifier output into ``trial_labels``; return the number of rows written."""
        n = 0
        batch: list[Classification] = []

        def flush() -> None:
            nonlocal n
            if not batch:
                return
            now = _now()
            df = pd.DataFrame(
                {
                    "registry_id": [c.registry_id for c in batch],
                    "neuromod": [c.neuromod for c in batch],
                    # lists as JSON text and flags as nullable booleans: DuckDB infers a column's type
                    # from its first rows, and a batch whose first thousands of lists are all empty
                    # (or flags all None) would otherwise be read as NULL and refuse the later values
                    "modalities": [json_text(c.modalities) for c in batch],
                    "modality_group": [json_text(c.modality_group) for c in batch],
                    "indication": [c.indication for c in batch],
                    "pain_subtype": [json_text(c.pain_subtype) for c in batch],
                    "depression_subtype": [json_text(c.depression_subtype) for c in batch],
                    "chronic_pain": pd.array([c.chronic_pain for c in batch], dtype="boolean"),
                    "targets": [json_text(c.targets) for c in batch],
                    "invasive": pd.array([c.invasive for c in batch], dtype="boolean"),
                    "evidence": [json_text([e.model_dump() for e in c.evidence]) for c in batch],
                    "classifier_version": classifier_version,
                    "classified_at": now,
                }
            ).drop_duplicates("registry_id", keep="last")
            self.con.register("_label_batch", df)
            try:
                self.con.execute(
                    "INSERT OR REPLACE INTO trial_labels SELECT registry_id, CAST(neuromod AS BOOLEAN),"
                    " CAST(CAST(modalities AS JSON) AS VARCHAR[]), CAST(CAST(modality_group AS JSON) AS VARCHAR[]),"
                    " indication, CAST(CAST(pain_subtype AS JSON) AS VARCHAR[]),"
                    " CAST(CAST(depression_subtype AS JSON) AS VARCHAR[]), CAST(chronic_pain AS BOOLEAN),"
                    " CAST(CAST(targets AS JSON) AS VARCHAR[]), CAST(invasive AS BOOLEAN),"
                    " CAST(evidence AS JSON), classifier_version, CAST(classified_at AS TIMESTAMP)"
                    " FROM _label_batch"
                )
            finally:
                self.con.unregister("_label_batch")
            n += len(df)
            batch.clear()

        for c in classifications:
            batch.append(c)
            if len(batch) >= batch_size:
                flush()
        flush()
        return n

    def load_labels_file(self, path: str | os.PathLike, *, classifier_version: str, also: Iterable = ()) -> int:
        """Bulk-load labels from a JSON-lines file of :func:`label_record` rows; return rows written.

        Used by the two-process pipeline (a worker classifies while this process imports).
        Only labels of stored trials are kept, and for a registry id met twice the later line
        wins, as in an import (rows order by their ``seq``). ``also``: more such files.
        One transaction: all or nothing.
        """
        columns = {
            "seq": "BIGINT", "registry_id": "VARCHAR", "neuromod": "BOOLEAN", "modalities": "VARCHAR[]",
            "modality_group": "VARCHAR[]", "indication": "VARCHAR", "pain_subtype": "VARCHAR[]",
            "depression_subtype": "VARCHAR[]", "chronic_pain": "BOOLEAN", "targets": "VARCHAR[]",
            "invasive": "BOOLEAN", "evidence": "JSON",
        }
        files = [str(f) for f in (path, *also) if Path(f).stat().st_size > 0]
        if not files:
            return 0
        with self._checkpointing():
            return self._load_labels(files, classifier_version, columns)

    def _load_labels(self, files: list[str], classifier_version: str, columns: dict[str, str]) -> int:
        self.con.execute("BEGIN TRANSACTION")
        try:
            n = self.con.execute(
                "INSERT OR REPLACE INTO trial_labels SELECT registry_id, neuromod, modalities, modality_group,"
                " indication, pain_subtype, depression_subtype, chronic_pain, targets, invasive, evidence,"
                " ?, CAST(? AS TIMESTAMP) FROM read_json(?, format = 'newline_delimited', columns = ?)"
                " WHERE registry_id IN (SELECT registry_id FROM trials)"
                " QUALIFY row_number() OVER (PARTITION BY registry_id ORDER BY seq DESC) = 1",
                [classifier_version, _now(), files, columns],
            ).fetchone()[0]
            self.con.execute("COMMIT")
        except BaseException:
            _rollback(self.con)
            raise
        return n

    def labels_df(self, *, corrections: bool = True) -> pd.DataFrame:
        """The stored classifications, one row per trial (evidence as JSON text).

        Reviewers' standing corrections (``trial_label_overrides``, see
        :mod:`neuromodmap.trials.overrides`) replace the classifier's values unless
        ``corrections`` is False; the survey and the report read labels here.
        """
        source = effective_labels_sql(self.con) if corrections else "trial_labels"
        return self.con.execute(f"SELECT * FROM {source} ORDER BY registry_id").df()  # noqa: S608 (fixed SQL)
