"""Shared fixtures: the real data in ../shared/data (or $NEUROMODMAP_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NEUROMODMAP_NO_PROGRESS", "1")


def _data_root() -> Path:
    env = os.environ.get("NEUROMODMAP_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if not root.is_dir():
        pytest.fail(f"real test data not found at {root}; set NEUROMODMAP_DATA to the shared/data folder")
    return root


@pytest.fixture(scope="session")
def trials_dir(data_root: Path) -> Path:
    return data_root / "trials"


@pytest.fixture(scope="session")
def corpus_path(trials_dir: Path) -> Path:
    return trials_dir / "ctgov_text_2018.jsonl.gz"
