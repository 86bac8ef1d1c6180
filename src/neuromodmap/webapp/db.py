"""Store access for the web app: never a write lock held between requests, never in the way of an import.

DuckDB lets one process write a database file, or several processes read it. The app reads
through a read-only instance that stays open while requests keep coming and is closed after
``linger`` idle seconds, or at once when another process wants to write: ``neuromodmap trials
import`` (any :func:`neuromodmap.store.connect` for writing) that finds the file held leaves a
``STORE.duckdb.write-wanted`` signal while it retries, and the app lets go and waits for it.
A correction opens a writable connection for one short transaction and closes it.

While a writer holds the file, opening fails with a lock error: :meth:`Stores.read` and
:meth:`Stores.write` retry with a short backoff for ``busy_wait`` seconds and then raise
:class:`StoreBusy`, which the app turns into a "store busy, retry" page (HTTP 503 with
``Retry-After``), never a 500.

Inside the app process a readers-writer lock keeps a write connection apart from the read-only
instance (DuckDB refuses to open one file with two configurations in one process).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from neuromodmap.store import connect, write_wanted_path

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

    def acquire_shared(self) -> None:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1

    def release_shared(self) -> None:
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


class _Reader:
    """A read-only DuckDB instance kept open between requests (each request gets a cursor)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.active = 0
        self.last = time.monotonic()


_CLOSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nm-store-close")


class Stores:
    """The stores the app serves: ``"trials"`` (``--db``) and ``"review"`` (``--review``).

    Use ``with stores.read("trials") as con:`` for queries and ``with stores.write("review") as con:``
    for changes (one transaction: committed when the block ends, rolled back on an exception).

    A read-only instance of a store stays open while requests keep coming and is closed after
    ``linger`` idle seconds, or at once when a writer wants the file: another process's
    :func:`neuromodmap.store.connect` leaves a ``.write-wanted`` signal beside the store while
    it waits, and the app then lets go (and waits, up to ``busy_wait``, for the writer to take
    the file) instead of competing for it. A read-only instance cannot see later writes, but
    none can happen while it is open: a writer needs the file to itself.
    """

    def __init__(self, trials: Path, review: Path | None = None, *, busy_wait: float = 4.0, linger: float = 5.0,
                 threads: int = 1):
        #: DuckDB threads of the read-only instance: the app's queries are small, and one thread
        #: answers them sooner on a busy machine than several that wait for each other
        self.threads = threads
        self.paths: dict[str, Path | None] = {"trials": Path(trials), "review": Path(review) if review else None}
        self.busy_wait = busy_wait
        self.linger = linger
        self._locks = {name: _RWLock() for name in self.paths}
        self._mutex = threading.Lock()
        self._readers: dict[str, _Reader] = {}
        self._janitor: threading.Thread | None = None
        self._closed = threading.Event()

    def path(self, which: str) -> Path:
        path = self.paths.get(which)
        if path is None:
            raise StoreMissing(which, None)
        return path

    # ------------------------------------------------------------------ opening
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

    @staticmethod
    def writer_waiting(path: Path) -> bool:
        """True while another process waits to write ``path`` (a fresh ``.write-wanted`` signal)."""
        try:
            age = time.time() - write_wanted_path(path).stat().st_mtime
        except OSError:
            return False
        return age < 120

    def _yield_to_writer(self, path: Path) -> None:
        deadline = time.monotonic() + self.busy_wait
        while self.writer_waiting(path) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _drop_reader(self, which: str) -> None:
        """Close the cached read-only instance of ``which`` (no request is using it)."""
        with self._mutex:
            reader = self._readers.pop(which, None)
        if reader is not None:
            reader.con.close()

    def _janitor_loop(self) -> None:
        while not self._closed.wait(0.1):
            now = time.monotonic()
            with self._mutex:
                idle = [w for w, r in self._readers.items()
                        if r.active == 0 and (now - r.last > self.linger or self.writer_waiting(self.paths[w]))]
                readers = [self._readers.pop(w) for w in idle]
            for r in readers:
                _CLOSER.submit(r.con.close)

    def close(self) -> None:
        """Close every cached instance (the app is shutting down)."""
        self._closed.set()
        with self._mutex:
            readers, self._readers = list(self._readers.values()), {}
        for r in readers:
            r.con.close()

    # ------------------------------------------------------------------ public
    @contextlib.contextmanager
    def read(self, which: str = "trials") -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection (a cursor on the cached instance) for the block."""
        path = self.path(which)
        if not path.exists():
            raise StoreMissing(which, path)
        lock = self._locks[which]
        lock.acquire_shared()
        try:
            reader = self._reader(which, path)
        except BaseException:
            lock.release_shared()
            raise
        try:
            cur = reader.con.cursor()
            try:
                yield cur
            finally:
                cur.close()
        finally:
            with self._mutex:
                reader.active -= 1
                reader.last = time.monotonic()
            lock.release_shared()

    def _connect_read_only(self, path: Path) -> duckdb.DuckDBPyConnection:
        # SET rather than a connect() config: the instance stays shareable with other read-only
        # connections of this process (DuckDB refuses one file with two configurations)
        con = duckdb.connect(str(path), read_only=True)
        try:
            con.execute(f"SET threads = {int(self.threads)}")
        except BaseException:
            con.close()
            raise
        return con

    def _reader(self, which: str, path: Path) -> _Reader:
        with self._mutex:
            reader = self._readers.get(which)
            if reader is not None and not self.writer_waiting(path):
                reader.active += 1
                return reader
        if self.writer_waiting(path):
            self._yield_to_writer(path)
        con = self._open(which, self._connect_read_only)
        with self._mutex:
            existing = self._readers.get(which)
            if existing is not None:  # another request opened it meanwhile: use that one
                _CLOSER.submit(con.close)
                existing.active += 1
                return existing
            reader = _Reader(con)
            reader.active = 1
            self._readers[which] = reader
            if self._janitor is None:
                self._janitor = threading.Thread(target=self._janitor_loop, name="nm-store-janitor", daemon=True)
                self._janitor.start()
        return reader

    @contextlib.contextmanager
    def write(self, which: str = "trials") -> Iterator[duckdb.DuckDBPyConnection]:
        """A writable connection inside one transaction, committed and closed when the block ends."""
        with self._locks[which].exclusive():
            self._drop_reader(which)  # this process's read-only instance must let go of the file
            path = self.path(which)
            try:
                con = connect(path, wait=self.busy_wait)
            except duckdb.Error as exc:
                if is_lock_error(exc):
                    raise StoreBusy(which, path, self.busy_wait) from None
                raise
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
