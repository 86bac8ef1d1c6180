"""Small helpers shared by every stage (private)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["atomic_write", "progress_bar"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    An interrupted or failed write leaves no partial file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
