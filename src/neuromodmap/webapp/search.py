"""Free-text search (the ``q`` filter) through an in-memory word index of the trials store.

``q`` keeps its meaning: every whitespace-separated word must occur, case-insensitively and
literally (no wildcards), as a substring of one of the searched fields (:data:`FIELDS`). A
plain scan of those fields (ILIKE) takes about a second on the 101k store, so the app keeps,
per store, an index built from the store's text once:

* the text of each trial (the fields joined by newlines, lower-cased) is split at whitespace
  into tokens, and each distinct token keeps the sorted list of the trials it occurs in;
* a word has no whitespace, so it occurs in a trial's text exactly when it is a substring of
  one of that trial's tokens: the trials of a word are the union of the lists of the tokens
  that contain it (``contains`` over the ~0.8 M distinct tokens, not ~300 MB of text), and
  the trials of ``q`` the intersection over its words. Same results as the scan.

The index lives in the app process (an in-memory DuckDB database, about 100 MB for the 101k
store), never in the store: the app keeps no write lock and an import is not slowed. It is
built in a background thread the first time ``q`` is used (reading the text takes one short
read, ~2 s; tokenising ~15-25 s on one core), and rebuilt when the store's version changes
(number of trials, latest ``imported_at``, import runs), so an import invalidates it. Until
the index of the current version is ready, ``q`` is answered by the scan, as before.

``NEUROMODMAP_TEXT_INDEX`` (or ``create_app(text_index=...)``): ``background`` (default),
``sync`` (build within the request that needs it; tests) or ``off`` (always scan).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np

__all__ = ["FIELDS", "TextIndex", "scan_clause", "store_version"]

log = logging.getLogger(__name__)

#: the searched fields (SQL over ``trials``)
FIELDS = ("registry_id", "title", "official_title", "brief_summary", "detailed_description",
          "array_to_string(conditions, '; ')")
_TEXT = "lower(concat_ws(chr(10), " + ", ".join(FIELDS) + "))"
MODES = ("background", "sync", "off")
#: DuckDB's memory while it builds the index (it spills to a temporary folder beyond it)
_BUILD_MEMORY = "600MB"


def scan_clause(word: str, alias: str = "t") -> tuple[str, list]:
    """The scan of one word (SQL and its parameters): the plain way, used until the index is ready."""
    cols = [f"{alias}.{c}" if c.isidentifier() else c.replace("(conditions", f"({alias}.conditions") for c in FIELDS]
    if any(c in word for c in "%_\\"):  # taken literally: no LIKE wildcards
        return "(" + " OR ".join(f"contains(lower({c}), ?)" for c in cols) + ")", [word.lower()] * len(cols)
    # ILIKE is the fastest scan DuckDB offers here
    return "(" + " OR ".join(f"{c} ILIKE ?" for c in cols) + ")", [f"%{word}%"] * len(cols)


def store_version(con: duckdb.DuckDBPyConnection) -> tuple:
    """What changes whenever an import changes the trials: count, latest imported_at, runs."""
    n, last = con.execute("SELECT count(*), max(imported_at) FROM trials").fetchone()
    runs = ()
    has_runs = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'import_runs'"
                           " AND database_name = current_database()").fetchone()[0]
    if has_runs:
        runs = con.execute("SELECT count(*), max(started), max(finished) FROM import_runs").fetchone()
    return (n, str(last), *map(str, runs))


@dataclass
class _Built:
    version: tuple
    ids: np.ndarray  # registry ids, sorted; a trial's number is its position
    blob: str  # the distinct tokens, sorted, each followed by a newline
    starts: np.ndarray  # where each token starts in ``blob`` (and len(blob) at the end)
    ptr: np.ndarray  # token i's trials: docs[ptr[i]:ptr[i + 1]]
    docs: np.ndarray
    seconds: float

    def _tokens_with(self, word: str) -> np.ndarray:
        """Numbers of the tokens that contain ``word`` (a search of the token blob)."""
        hits = np.fromiter((m.start() for m in re.finditer(re.escape(word), self.blob)), dtype=np.int64)
        return np.unique(np.searchsorted(self.starts, hits, side="right") - 1)

    def _trials_of(self, toks: np.ndarray) -> np.ndarray:
        """The trials (sorted, distinct) in the postings of the tokens ``toks`` (vectorised gather)."""
        lo, hi = self.ptr[toks], self.ptr[toks + 1]
        lengths = hi - lo
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64)
        at = np.arange(total, dtype=np.int64) + np.repeat(lo - (np.cumsum(lengths) - lengths), lengths)
        mask = np.zeros(len(self.ids), dtype=bool)
        mask[self.docs[at]] = True
        return np.flatnonzero(mask)

    def search(self, words: list[str]) -> np.ndarray:
        """Positions (sorted) of the trials whose text contains every word."""
        out: np.ndarray | None = None
        for w in sorted({w.lower() for w in words}, key=len, reverse=True):  # longest (rarest) first
            got = self._trials_of(self._tokens_with(w))
            out = got if out is None else np.intersect1d(out, got, assume_unique=True)
            if not len(out):
                break
        return out if out is not None else np.arange(len(self.ids))


def _tokenise(holder: list) -> tuple:
    """The word index of the texts in ``holder[0]`` (a frame of registry_id, text, sorted by
    registry_id; taken out of the holder so that it is freed early), built in an in-memory DuckDB
    database that is dropped afterwards."""
    t0 = time.perf_counter()
    df = holder.pop()
    ids = df["registry_id"].to_numpy(dtype=object)
    df = df.drop(columns="registry_id")
    df["doc"] = np.arange(len(df), dtype=np.int32)
    spill = tempfile.TemporaryDirectory(prefix="nm-text-index-")
    db = duckdb.connect(":memory:")
    try:
        db.execute("SET threads = 1")  # leave the other core to the requests
        db.execute(f"SET memory_limit = '{_BUILD_MEMORY}'")  # beyond it DuckDB spills to a temporary folder
        db.execute("SET temp_directory = ?", [spill.name])
        db.register("docs", df)
        db.execute(r"""CREATE TABLE toks AS SELECT row_number() OVER (ORDER BY token) - 1 AS tid, token, docs FROM
            (SELECT token, list(doc ORDER BY doc) AS docs FROM
             (SELECT DISTINCT unnest(string_split_regex(text, '\s+')) AS token, doc FROM docs)
             WHERE token <> '' GROUP BY token)""")
        db.unregister("docs")
        del df
        tokens = db.execute("SELECT token, len(docs) AS n FROM toks ORDER BY tid").fetchnumpy()
        docs = db.execute("SELECT d FROM (SELECT unnest(docs) AS d, tid FROM toks) ORDER BY tid, d").fetchnumpy()["d"]
    finally:
        db.close()
        spill.cleanup()
    docs = np.asarray(docs, dtype=np.int32)
    ptr = np.zeros(len(tokens["n"]) + 1, dtype=np.int64)
    np.cumsum(tokens["n"], out=ptr[1:])
    toks = [str(t) for t in tokens["token"]]
    del tokens
    lengths = np.fromiter((len(t) + 1 for t in toks), dtype=np.int64, count=len(toks))
    starts = np.zeros(len(toks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    blob = "\n".join(toks) + "\n"
    return ids, blob, starts, ptr, docs, time.perf_counter() - t0


def _build(con: duckdb.DuckDBPyConnection) -> _Built:
    """Read the text with ``con`` (one query), then build the index apart from the store."""
    version = store_version(con)
    holder = [con.execute(f"SELECT registry_id, {_TEXT} AS text FROM trials ORDER BY registry_id").df()]  # noqa: S608
    return _Built(version, *_tokenise(holder))


class TextIndex:
    """The app's word index of one trials store (see the module's description)."""

    def __init__(self, read: Callable, mode: str | None = None):
        #: ``read()``: a context manager giving a read-only cursor on the store (``Stores.read``)
        self._read = read
        self.mode = mode or os.environ.get("NEUROMODMAP_TEXT_INDEX", "background")
        if self.mode not in MODES:
            raise ValueError(f"text index mode {self.mode!r}: use one of {', '.join(MODES)}")
        self._lock = threading.Lock()
        self._built: _Built | None = None
        self._building: threading.Thread | None = None
        self.last_error: str | None = None

    def close(self) -> None:
        self._built = None

    def trials(self, con: duckdb.DuckDBPyConnection, words: list[str]) -> np.ndarray | None:
        """The registry ids whose text contains every word, from the index of the store's current
        version (``con``'s view); None when that index is not ready (then scan)."""
        if self.mode == "off" or not words:
            return None
        version = store_version(con)
        built = self._built
        if built is None or built.version != version:
            if self.mode == "sync":
                with self._lock:
                    self._swap(_build(con))
            else:
                self._start()
                return None
            built = self._built
            if built is None or built.version != version:
                return None
        return built.ids[built.search(words)]

    @property
    def ready(self) -> bool:
        return self._built is not None

    def _swap(self, built: _Built) -> None:
        self._built = built  # the old one goes when the last search using it is done
        log.info("text index built: %d trials in %.1f s", len(built.ids), built.seconds)

    def _start(self) -> None:
        with self._lock:
            if self._building is not None and self._building.is_alive():
                return
            self._building = threading.Thread(target=self._run, name="nm-text-index", daemon=True)
            self._building.start()

    def _run(self) -> None:
        try:
            with self._read() as con:  # one short read; the tokenising runs with the store let go
                version = store_version(con)
                holder = [con.execute(f"SELECT registry_id, {_TEXT} AS text FROM trials ORDER BY registry_id").df()]  # noqa: S608
            self._swap(_Built(version, *_tokenise(holder)))
            self.last_error = None
        except Exception as exc:  # noqa: BLE001 (the scan answers; the next q tries again)
            self.last_error = f"{type(exc).__name__}: {exc}"
            # an interrupt: the process is ending (the thread is a daemon); nothing to report
            level = logging.DEBUG if isinstance(exc, duckdb.InterruptException) else logging.WARNING
            log.log(level, "text index not built (%s); q uses the scan", self.last_error)
