"""Where neuromodmap finds data and keeps its cache.

Resolution order for the shared data directory (real data for demos and tests):
an explicit ``data_dir`` argument, then the ``NEUROMODMAP_DATA`` environment variable,
then ``../shared/data`` next to the current working directory. Downloaded data go to
``NEUROMODMAP_CACHE`` or ``~/.cache/neuromodmap``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "cache_dir", "DataNotFoundError"]

ENV_DATA = "NEUROMODMAP_DATA"
ENV_CACHE = "NEUROMODMAP_CACHE"


class DataNotFoundError(FileNotFoundError):
    """Raised when a data file is neither local nor downloadable."""


def data_dir(explicit: str | os.PathLike | None = None, *, required: bool = True) -> Path | None:
    """Return the local data directory (``../shared/data`` layout), or None if none is set.

    Parameters
    ----------
    explicit : path, optional
        A directory given by the user (``--data-dir``); wins over the environment.
    required : bool
        Raise :class:`DataNotFoundError` when no directory is found.
    """
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get(ENV_DATA):
        candidates.append(Path(os.environ[ENV_DATA]))
    candidates.append(Path.cwd().parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    if explicit:
        raise DataNotFoundError(f"data directory {explicit} does not exist")
    if required:
        raise DataNotFoundError(
            f"no local data directory: set {ENV_DATA} or pass --data-dir "
            "(a folder laid out like shared/data: trials/, connectomes/, meta/, targets/, literature/)"
        )
    return None


def cache_dir() -> Path:
    """Directory for downloaded data (created on demand)."""
    root = Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "neuromodmap")
    root.mkdir(parents=True, exist_ok=True)
    return root
