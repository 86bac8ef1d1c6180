"""The embedded DuckDB store shared by every stage.

Each stage owns its tables (``trials_*``, ``literature_*``, ...) and creates them through
:func:`connect`; all statements that carry user or registry values are parameterised.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["DEFAULT_DB", "ROW_GROUP_SIZE", "connect", "cursor", "write_wanted_path"]

DEFAULT_DB = "neuromodmap.duckdb"

# Rows per row group of a store opened for writing (DuckDB's default is 122,880). A
# transaction that inserts whole row groups is written straight to the database file
# ("optimistic writing", compressed as it is written) instead of going through the write-ahead
# log and being compressed at the next checkpoint; the bulk imports commit whole row groups
# (neuromodmap.trials.store._Stage) and only the rest of a file's last one goes through the log.
# A commit of part of a row group is written again later: committed that way, the 101k corpus
# store bloated to 1.4 GB. 10,240 -> 4,096 (2026-12-07): closing after 6,786 full records 0.33
# -> 0.21 s, the 101k corpus import + classify about 20 % faster. 4,096 -> 2,048 with commits of
# whole row groups whatever the batch (2026-12-08): the full records' close 0.16 -> 0.06 s (less
# left for the log), the 101k store 716 -> 733 MB.
ROW_GROUP_SIZE = 2048


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: seconds :func:`connect` waits for a store another process holds (``$NEUROMODMAP_LOCK_WAIT``)
LOCK_WAIT = 15.0


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock on file" in text or "Conflicting lock is held" in text


def write_wanted_path(path: str | os.PathLike) -> Path:
    """The signal file a waiting writer leaves beside the store (``STORE.duckdb.write-wanted``).

    A long-lived reader of the store (``neuromodmap serve``) that sees it closes its connection
    so the writer gets the file; the writer removes it once it has the file or gives up.
    """
    return Path(str(Path(path).resolve()) + ".write-wanted")


def connect(path: str | os.PathLike | None = None, *, read_only: bool = False,
            wait: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the project database at ``path`` (default ``./neuromodmap.duckdb``).

    A writable store is attached to a DuckDB instance named after the file (so every
    connection to one file in this process shares one instance, as ``duckdb.connect(path)``
    would) with :data:`ROW_GROUP_SIZE`. The file stays an ordinary DuckDB database.

    When another process holds the file (DuckDB: one writer or several readers; e.g.
    ``neuromodmap serve`` answering a request), opening is retried with a short backoff for
    ``wait`` seconds (default :data:`LOCK_WAIT`, or ``$NEUROMODMAP_LOCK_WAIT``), saying so once
    on stderr; after that the lock error is raised. Meanwhile a writer leaves the
    :func:`write_wanted_path` signal, which makes ``serve`` let go of the file.
    """
    import duckdb  # imported here so that `neuromodmap --help` does not load DuckDB

    if wait is None:
        try:
            wait = float(os.environ.get("NEUROMODMAP_LOCK_WAIT", LOCK_WAIT))
        except ValueError:
            wait = LOCK_WAIT
    start, delay, told, signal = time.monotonic(), 0.05, False, None
    try:
        while True:
            try:
                return _connect(path, read_only=read_only)
            except duckdb.Error as exc:
                waited = time.monotonic() - start
                if not _is_lock_error(exc) or waited >= wait:
                    raise
                if not read_only and signal is None:
                    signal = write_wanted_path(path or DEFAULT_DB)
                    try:
                        signal.write_text(str(os.getpid()), encoding="ascii")
                    except OSError:
                        pass
                if not told:
                    print(f"{Path(path or DEFAULT_DB)}: in use by another process; waiting up to {wait:.0f} s ...",
                          file=sys.stderr, flush=True)
                    told = True
                time.sleep(min(delay, wait - waited))
                delay = min(delay * 2, 0.5)
    finally:
        if signal is not None:
            try:
                if signal.read_text(encoding="ascii") == str(os.getpid()):
                    signal.unlink()
            except OSError:
                pass


def _connect(path: str | os.PathLike | None, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    import duckdb

    path = Path(path or DEFAULT_DB)
    if read_only and not path.exists():
        raise FileNotFoundError(f"database {path} does not exist; import data first")
    if read_only:
        return duckdb.connect(str(path), read_only=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    resolved = str(path.resolve())
    con = duckdb.connect(":memory:neuromodmap-" + hashlib.sha256(resolved.encode()).hexdigest()[:24])
    try:
        # ATTACH takes no prepared parameters; the path is quoted as an SQL string literal
        con.execute(f"ATTACH IF NOT EXISTS {_quote(resolved)} AS store (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        con.execute("USE store")
        con.execute("CREATE TABLE IF NOT EXISTS meta_info (key VARCHAR PRIMARY KEY, value VARCHAR)")
    except BaseException:
        con.close()
        raise
    return con


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A second connection to the same database as ``con`` (for reading while ``con`` writes)."""
    ((name,),) = con.execute("SELECT current_database()").fetchall()
    cur = con.cursor()
    cur.execute('USE "' + name.replace('"', '""') + '"')
    return cur
