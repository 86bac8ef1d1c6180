"""A real headless Chromium (Debian's package, driven by Playwright) and a demo report to open in it.

The browser tests are never skipped silently: without Chromium or Playwright they fail with what to
install, unless ``NEUROMODMAP_SKIP_BROWSER_TESTS=1`` opts out explicitly (local machines only).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.datasets import _fetch


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, data_root: Path):
    """``neuromodmap demo`` on a reduced but real run: the first 15,000 corpus records, the structured
    fixtures, the five-database literature export, the pain and depression targets."""
    # run where `make demo` runs it: in the working folder, with the default relative output folder
    work = tmp_path_factory.mktemp("demo")
    cwd = os.getcwd()
    os.chdir(work)
    downloads: list[str] = []

    def no_network(url, dest):
        downloads.append(url)
        raise OSError(f"no network in the tests: {url}")

    try:
        # everything from --data-dir: no NEUROMODMAP_DATA to fall back on, an empty cache, and any
        # download recorded (and refused)
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("NEUROMODMAP_DATA", raising=False)
            mp.setenv("NEUROMODMAP_CACHE", str(tmp_path_factory.mktemp("empty-cache")))
            mp.setattr(_fetch, "_download", no_network)
            result = CliRunner().invoke(app, ["demo", "--data-dir", str(data_root), "--sample", "15000", "--quick"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return _DemoRun((work / "neuromodmap-demo", result.output), downloads)


class _DemoRun(tuple):
    """(output folder, printed text) of the demo run, with the downloads it tried."""

    def __new__(cls, items, downloads):
        run = super().__new__(cls, items)
        run.downloads = downloads
        return run


@pytest.fixture()
def page(browser, demo_run):
    """The demo report opened from disk, with every console message and non-local request recorded."""
    out, _ = demo_run
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.console_messages, pg.page_errors, pg.remote_requests = [], [], []
    pg.on("console", lambda m: pg.console_messages.append((m.type, m.text)))
    pg.on("pageerror", lambda e: pg.page_errors.append(str(e)))
    pg.on("request", lambda r: pg.remote_requests.append(r.url)
          if not r.url.startswith(("file:", "data:")) else None)
    pg.goto((out / "report.html").resolve().as_uri())
    pg.wait_for_load_state("load")
    yield pg
    context.close()
