"""Shared fixtures: the real data in ../shared/data (or $NEUROMODMAP_DATA)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NEUROMODMAP_NO_PROGRESS", "1")

# In CI (the CI environment variable set, as GitHub Actions and most CI services do), a missing
# test extra fails the run instead of skipping its tests silently: pytest.importorskip fails there.
if os.environ.get("CI") and not getattr(pytest.importorskip, "_fails_in_ci", False):
    _importorskip = pytest.importorskip

    def _import_or_fail(modname, minversion=None, reason=None, **kwargs):
        try:
            return _importorskip(modname, minversion=minversion, reason=reason, **kwargs)
        except pytest.skip.Exception as exc:
            pytest.fail(f"CI: the test extra {modname!r} is missing ({exc}); pip install -e .[test]", pytrace=False)

    _import_or_fail._fails_in_ci = True
    pytest.importorskip = _import_or_fail


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


# ---------------------------------------------------------------------- CSV/XLSX formula injection
# Written apart from neuromodmap._utils.defuse_formula, so that the tests do not judge the code by
# itself. OWASP "CSV Injection": a cell starting with = + - @ TAB or CR is read as a formula by
# Excel, LibreOffice Calc or Google Sheets (the last two may trim leading spaces first). A cell
# that is a plain decimal number ("-38", "-0.5") is read as that number, which is harmless.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def starts_formula(cell) -> bool:
    if not isinstance(cell, str) or not cell:
        return False
    if cell[0] in "\t\r\n":
        return True
    text = cell.strip()
    return text[:1] in ("=", "+", "-", "@") and not _PLAIN_NUMBER.fullmatch(text)


def formula_cells(folder: Path) -> list[tuple[str, int, int, str]]:
    """(file, row, column, cell) of every CSV/XLSX cell under ``folder`` that could start a formula."""
    import csv

    from openpyxl import load_workbook

    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".csv":
            with open(path, encoding="utf-8-sig", newline="") as fh:
                rows = list(csv.reader(fh))
        elif path.suffix == ".xlsx":
            rows = []
            for ws in load_workbook(path).worksheets:  # not data_only: a formula cell shows as its formula
                rows += [[c.value for c in row] for row in ws.iter_rows()]
        else:
            continue
        found += [(str(path.relative_to(folder)), r, c, cell) for r, row in enumerate(rows)
                  for c, cell in enumerate(row) if starts_formula(cell)]
    return found


def table_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".csv", ".xlsx"))


@pytest.fixture(scope="session")
def scan_formulas():
    """``scan_formulas(folder)``: the CSV/XLSX cells under ``folder`` that could start a formula."""
    return formula_cells


# One Chromium for the whole session: Playwright's sync API allows one running instance per
# thread, so the report's and the web app's browser tests share this fixture.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def _chromium() -> str | None:
    for candidate in (os.environ.get("NEUROMODMAP_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    opt_out = os.environ.get("NEUROMODMAP_SKIP_BROWSER_TESTS") == "1"
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if opt_out:
            pytest.skip("NEUROMODMAP_SKIP_BROWSER_TESTS=1 and Playwright is not installed")
        pytest.fail("the browser tests need Playwright: pip install -e '.[test]' "
                    "(or set NEUROMODMAP_SKIP_BROWSER_TESTS=1 to skip them on this machine)")
    if executable is None:
        if opt_out:
            pytest.skip("NEUROMODMAP_SKIP_BROWSER_TESTS=1 and Chromium is not installed")
        pytest.fail("the browser tests need Chromium: apt-get install -y chromium (or set NEUROMODMAP_CHROMIUM "
                    "to its path, or NEUROMODMAP_SKIP_BROWSER_TESTS=1 to skip them on this machine)")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
