"""Small helpers shared by every stage (private)."""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["atomic_write", "defuse_formula", "defuse_frame", "defuse_row", "json_text", "progress_bar", "relaxed_gc",
           "restore_formula", "write_csv"]


_ORJSON_OPTS = orjson.OPT_PASSTHROUGH_DATETIME


def json_text(obj: Any) -> str:
    """``obj`` as compact JSON text, non-ASCII characters kept as they are.

    orjson (about five times faster than :func:`json.dumps` on full registry records, the
    largest single cost of storing them); dates, times and other values JSON has no type for
    are written as ``str()`` gives them, as ``json.dumps(obj, default=str)`` does. What orjson
    refuses (a lone surrogate, a non-string key, an integer beyond 64 bits) goes through
    :func:`json.dumps` with the same separators, so every value is written.
    """
    try:
        return orjson.dumps(obj, default=str, option=_ORJSON_OPTS).decode()
    except (TypeError, orjson.JSONEncodeError):
        import json

        return json.dumps(obj, ensure_ascii=False, default=str, separators=(",", ":"))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    An interrupted or failed write leaves no partial file behind.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is a file", str(path.parent))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the file the user asked for, not our temporary one
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    # mkstemp creates 0600; give the result the permissions an ordinary open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def relaxed_gc(threshold: int = 50_000) -> Iterator[None]:
    """Run the cyclic garbage collector less often inside the block (also a decorator).

    A bulk import allocates millions of short-lived objects (XML trees, dicts, models) that
    reference counting frees at once; with Python's default thresholds (700, 10, 10) the
    collector still walks the young objects every 700 allocations and every live object
    now and then: about a fifth of the CPU time of importing full AllPublicXML records
    (``benchmarks/trials_full_records.py``). Only cyclic garbage waits longer to be freed
    (the first generation is collected every ``threshold`` allocations). The previous
    thresholds come back on exit; a process forked inside the block inherits the setting.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], threshold), max(old[1], 20), max(old[2], 100))
    try:
        yield
    finally:
        gc.set_threshold(*old)


def progress_bar(transient: bool = False, disable: bool | None = None, *, unit: str = "",
                 by_bytes: bool = False) -> Progress:
    """The rich progress bar every stage uses: description, bar, count, elapsed time and ETA.

    ``unit`` is printed after the count ("studies"). With ``by_bytes`` the bar counts bytes
    read and shows a ``records`` field (add tasks with ``records=0``). ``NEUROMODMAP_NO_PROGRESS``
    turns every bar off.
    """
    disable = bool(disable) or bool(os.environ.get("NEUROMODMAP_NO_PROGRESS"))
    if by_bytes:
        count = [DownloadColumn(), TextColumn("{task.fields[records]:,} records")]
    else:
        count = [MofNCompleteColumn()] + ([TextColumn(unit)] if unit else [])
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        *count,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
        disable=disable,
    )


# ---------------------------------------------------------------------- CSV/XLSX formula injection
#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection":
#: = + - @ TAB CR; line feed and NUL too, which some importers strip or treat alike).
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\0")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _starts_formula(text: str) -> bool:
    if not text:
        return False
    if text[0] not in FORMULA_TRIGGERS and text.lstrip()[:1] not in FORMULA_TRIGGERS:
        return False
    # "-38" or "+1.5e-3" is read as that number, not run as a formula; "-1+1", "-A1" are formulas
    return not _PLAIN_NUMBER.fullmatch(text.strip())


def defuse_formula(value: Any) -> Any:
    """``value`` made safe to write into a CSV or XLSX cell (no spreadsheet formula can start).

    The project's rule for every table it writes, after OWASP's CSV-injection guidance: a text
    cell whose first character is ``=``, ``+``, ``-``, ``@``, TAB, CR, LF or NUL gets a leading
    apostrophe, which spreadsheets read as "this is text". Decisions:

    - only ``str`` cells are touched: numbers, booleans, dates and missing values are returned
      as they are (a negative number stays a number);
    - a text cell that is a plain decimal number (``"-38"``, ``"+1.5e-3"``) is left alone, since
      a spreadsheet reads it as that number; anything else starting with a sign (``"-1+1"``,
      ``"-A1"``, ``"-0.5 to 0.3"``) is defused;
    - leading whitespace does not hide a formula (``"  =1+1"`` is defused): Google Sheets and
      LibreOffice can trim spaces on import;
    - a text that already starts with apostrophes before such a formula gets one more, so that
      :func:`restore_formula` gives back exactly what was defused.
    """
    if isinstance(value, str) and value and _starts_formula(value.lstrip("'")):
        return "'" + value
    return value


def restore_formula(value: Any) -> Any:
    """Undo :func:`defuse_formula` on a cell read back from one of our own tables.

    For readers of CSV/XLSX files this package writes (the report builder, the evidence sheet,
    the dedup review): ``restore_formula(defuse_formula(v)) == v`` for every ``v``.
    """
    if isinstance(value, str) and value[:1] == "'" and _starts_formula(value.lstrip("'")):
        return value[1:]
    return value


def defuse_row(values: Iterable[Any]) -> list[Any]:
    """A row for ``csv.writer`` with every text cell passed through :func:`defuse_formula`."""
    return [defuse_formula(v) for v in values]


def defuse_frame(frame):
    """A copy of a pandas DataFrame whose text cells, column names and index labels are defused.

    Numeric, boolean and datetime columns are kept as they are (their dtype too).
    """
    import pandas as pd
    from pandas.api import types

    out = frame.copy()
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if (types.is_numeric_dtype(col.dtype) or types.is_bool_dtype(col.dtype)
                or types.is_datetime64_any_dtype(col.dtype) or types.is_timedelta64_dtype(col.dtype)):
            continue
        if isinstance(col.dtype, pd.CategoricalDtype):
            col = col.astype(object)
        if col.map(lambda v: defuse_formula(v) is not v).any():
            out.isetitem(i, col.map(defuse_formula))
    if any(isinstance(c, str) and defuse_formula(c) is not c for c in out.columns):
        out.columns = [defuse_formula(c) for c in out.columns]
    if not isinstance(out.index, pd.RangeIndex):
        out.index = out.index.map(defuse_formula)
    return out


def write_csv(frame, path: str | os.PathLike, **to_csv) -> Path:
    """Write a DataFrame atomically as UTF-8 CSV with no cell able to start a formula.

    Keyword arguments go to :meth:`pandas.DataFrame.to_csv` (``index`` defaults to False).
    """
    to_csv.setdefault("index", False)
    path = Path(path)
    with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
        defuse_frame(frame).to_csv(fh, **to_csv)
    return path
