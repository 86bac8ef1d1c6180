"""Fixtures for the literature tests: the real search exports and labelled sets."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def exports_dir(data_root: Path) -> Path:
    return data_root / "literature" / "exports"


@pytest.fixture(scope="session")
def labelled_dir(data_root: Path) -> Path:
    return data_root / "literature" / "labelled"


@pytest.fixture(scope="session")
def gambling_files(exports_dir: Path) -> list[Path]:
    return sorted((exports_dir / "citesource_gambling_harms").glob("*.ris"))
