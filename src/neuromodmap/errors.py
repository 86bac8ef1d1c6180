"""The one error rule of the ``neuromodmap`` command line.

- A **user error** (a bad file, a bad option, a store that is missing or in use) is raised as
  :class:`UserError`: the CLI prints ONE line naming the file (and line/record/column where
  there is one) and what to do, and exits with status 2.
- An **unexpected error** (a bug) prints one line and the path of a log file holding the full
  traceback, and exits with status 1.
- **Ctrl-C** stops cleanly (status 130) with one line saying what was kept.

Library code raises :class:`UserError` (or its own subclasses of ``ValueError``/``OSError``
that each stage's CLI turns into one); :func:`handle` is the single handler the root command
wraps around every sub-command. This module imports nothing heavy.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import traceback
from pathlib import Path

__all__ = ["EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_USER", "Interrupted", "UserError", "handle", "is_interrupt",
           "log_dir", "user_line"]

EXIT_USER = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
ENV_LOG = "NEUROMODMAP_LOG_DIR"


class UserError(Exception):
    """A problem the user can fix: printed as one line, exit status 2.

    Parameters
    ----------
    message : str
        What is wrong (and, ideally, what to do).
    path : path, optional
        The file it is about; printed first.
    where : str, optional
        Where in the file: ``"line 12"``, ``"record 3"``, ``"row 4, column sd"``.
    hint : str, optional
        What to do, appended after a semicolon.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, where: str | None = None,
                 hint: str | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.where = where
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        head = ", ".join(p for p in (self.path, self.where) if p)
        text = f"{head}: {self.message}" if head else self.message
        return f"{text}; {self.hint}" if self.hint else text


class Interrupted(Exception):
    """Ctrl-C caught by a command that can say what it kept (``kept`` is printed)."""

    def __init__(self, kept: str) -> None:
        self.kept = kept
        super().__init__(kept)


def log_dir() -> Path:
    """Where tracebacks of unexpected errors go: ``$NEUROMODMAP_LOG_DIR``, else the cache's ``logs/``."""
    if os.environ.get(ENV_LOG):
        return Path(os.environ[ENV_LOG])
    root = os.environ.get("NEUROMODMAP_CACHE") or Path.home() / ".cache" / "neuromodmap"
    return Path(root) / "logs"


def _write_log(exc: BaseException) -> Path | None:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = (f"neuromodmap {' '.join(sys.argv[1:])}\n{dt.datetime.now().isoformat()}\n\n"
            + "".join(traceback.format_exception(exc)))
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"neuromodmap-error-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _duckdb_problem(exc: BaseException) -> str | None:
    """One line for a DuckDB error that is the user's to fix (a lock, a file that is not a database)."""
    if not type(exc).__module__.startswith("duckdb") and not type(exc).__module__.startswith("_duckdb"):
        return None
    text = str(exc)
    if "Could not set lock on file" in text or "Conflicting lock is held" in text:
        path = _quoted_path(text)
        pid = ""
        if "(PID " in text:
            pid = " (PID " + text.split("(PID ", 1)[1].split(")", 1)[0] + ")"
        return (f"{path or 'the store'}: in use by another process{pid}; wait until it finishes, "
                "or give another --db file")
    if "not a valid DuckDB database" in text or "is not a DuckDB" in text or "file is not a database" in text.lower():
        path = _quoted_path(text)
        return (f"{path or 'the --db file'}: not a DuckDB database; give the .duckdb file neuromodmap made, "
                "or a new file name to create a store")
    return None


def _quoted_path(text: str) -> str | None:
    for quote in ('"', "'"):
        if text.count(quote) >= 2:
            candidate = text.split(quote)[1]
            if os.sep in candidate or "." in candidate:
                return candidate
    return None


def user_line(exc: BaseException) -> str | None:
    """The one line for an exception that is a user error, else None."""
    if isinstance(exc, UserError):
        return exc.line()
    duck = _duckdb_problem(exc)
    if duck:
        return duck
    if isinstance(exc, OSError) and exc.filename is not None:
        what = exc.strerror or type(exc).__name__
        hint = {
            IsADirectoryError: "give a file name, not a folder",
            PermissionError: "choose a place you can write to (or read), or fix the permissions",
            FileNotFoundError: "check the path",
            NotADirectoryError: "a part of the path is a file, not a folder",
            FileExistsError: "a file is in the way: give a folder name for the output",
        }.get(type(exc), "")
        return f"{exc.filename}: {what}" + (f"; {hint}" if hint else "")
    return None


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C: KeyboardInterrupt, or DuckDB stopping the query it was running ("Query interrupted")."""
    return (isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "InterruptException"
            or (isinstance(exc, RuntimeError) and str(exc).startswith("Query interrupted")))


def handle(exc: BaseException, echo) -> int:
    """Report ``exc`` as the one-line rule says (through ``echo(line)``) and return the exit status."""
    if is_interrupt(exc):
        echo("interrupted (Ctrl-C); stopped. Everything committed before the interruption is kept; "
             "nothing half-written was saved")
        return EXIT_INTERRUPTED
    if isinstance(exc, Interrupted):
        echo(f"interrupted (Ctrl-C); stopped. {exc.kept}")
        return EXIT_INTERRUPTED
    line = user_line(exc)
    if line is not None:
        echo(f"error: {_one_line(line)}")
        return EXIT_USER
    log = _write_log(exc)
    where = f"full traceback in {log}" if log else "no log file could be written"
    echo(f"error: unexpected {type(exc).__name__}: {_one_line(exc)[:300]} (a bug; {where}; please report it)")
    return EXIT_INTERNAL
