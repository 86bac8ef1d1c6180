"""The embedded DuckDB store shared by every stage.

Each stage owns its tables (``trials_*``, ``literature_*``, ...) and creates them through
:func:`connect`; all statements that carry user or registry values are parameterised.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

__all__ = ["DEFAULT_DB", "connect"]

DEFAULT_DB = "neuromodmap.duckdb"


def connect(path: str | os.PathLike | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the project database at ``path`` (default ``./neuromodmap.duckdb``)."""
    path = Path(path or DEFAULT_DB)
    if read_only and not path.exists():
        raise FileNotFoundError(f"database {path} does not exist; import data first")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute(
        "CREATE TABLE IF NOT EXISTS meta_info (key VARCHAR PRIMARY KEY, value VARCHAR)"
        if not read_only
        else "SELECT 1"
    )
    return con
