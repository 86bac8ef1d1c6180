"""Store access for the web app: a connection per request, never a lock held between requests.

DuckDB lets one process write a database file, or several processes read it. The app therefore
opens the store for each request (read-only for reads, a short write transaction for a
correction) and closes it before the response is sent, so a ``neuromodmap trials import`` run
from the command line can take the file between two requests. While such an import holds the
file, opening fails with a lock error: :meth:`Stores.read` and :meth:`Stores.write` retry with a
short backoff for ``busy_wait`` seconds and then raise :class:`StoreBusy`, which the app turns
into a "store busy, retry" page (HTTP 503 with ``Retry-After``), never a 500.

Inside the app process a readers-writer lock keeps a write connection apart from the read-only
ones (DuckDB refuses to open one file with two configurations in one process).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from neuromodmap.store import connect

__all__ = ["StoreBusy", "StoreMissing", "Stores", "is_lock_error"]


class StoreBusy(Exception):
    """The store is held by another process (e.g. an import) for longer than the app waits."""

    def __init__(self, which: str, path: Path, waited: float):
        self.which, self.path, self.waited = which, path, waited
        super().__init__(f"the {which} store {path.name} is busy (another process, e.g. an import, is writing it); "
                         f"waited {waited:.1f} s, retry in a moment")


class StoreMissing(Exception):
    """The app was started without this store (e.g. no ``--review``) or the file is gone."""

    def __init__(self, which: str, path: Path | None):
        self.which, self.path = which, path
        where = f" ({path} does not exist)" if path is not None else " (start serve with --review REVIEW.duckdb)"
        super().__init__(f"no {which} store{where}")


def is_lock_error(exc: BaseException) -> bool:
    """True when ``exc`` is DuckDB refusing a file another process holds."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("lock" in text or "conflicting" in text or "resource temporarily" in text)


class _RWLock:
    """Many readers or one writer (threads of this process)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class Stores:
    """The stores the app serves: ``"trials"`` (``--db``) and ``"review"`` (``--review``).

    Use ``with stores.read("trials") as con:`` for queries and ``with stores.write("review") as con:``
    for changes (one transaction: committed when the block ends, rolled back on an exception).
    """

    def __init__(self, trials: Path, review: Path | None = None, *, busy_wait: float = 4.0):
        self.paths: dict[str, Path | None] = {"trials": Path(trials), "review": Path(review) if review else None}
        self.busy_wait = busy_wait
        self._locks = {name: _RWLock() for name in self.paths}

    def path(self, which: str) -> Path:
        path = self.paths.get(which)
        if path is None:
            raise StoreMissing(which, None)
        return path

    def _open(self, which: str, opener):
        path = self.path(which)
        start = time.monotonic()
        delay = 0.02
        while True:
            try:
                return opener(path)
            except duckdb.Error as exc:
                if not is_lock_error(exc):
                    raise
                waited = time.monotonic() - start
                if waited >= self.busy_wait:
                    raise StoreBusy(which, path, waited) from None
                time.sleep(min(delay, max(0.0, self.busy_wait - waited)))
                delay = min(delay * 2, 0.5)

    @contextlib.contextmanager
    def read(self, which: str = "trials") -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection, closed when the block ends."""
        path = self.path(which)
        if not path.exists():
            raise StoreMissing(which, path)
        with self._locks[which].shared():
            con = self._open(which, lambda p: duckdb.connect(str(p), read_only=True))
            try:
                yield con
            finally:
                con.close()

    @contextlib.contextmanager
    def write(self, which: str = "trials") -> Iterator[duckdb.DuckDBPyConnection]:
        """A writable connection inside one transaction, committed and closed when the block ends."""
        with self._locks[which].exclusive():
            con = self._open(which, lambda p: connect(p, wait=0))
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                    con.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(duckdb.Error):
                        con.execute("ROLLBACK")
                    raise
            finally:
                con.close()
