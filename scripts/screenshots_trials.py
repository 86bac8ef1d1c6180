"""Screenshots of the trials pages of the web app for docs/webapp.md.

Uses a classified trials store (``--db``; by default builds a small one from real records: the
first 15,000 of the 2018 ClinicalTrials.gov text corpus, the 100 herniated-disc API v2 records and
the 60 legacy XML records), corrects one label through the API, serves the app with uvicorn and
photographs the explorer, a trial page, its correction history and the "store busy" page with
Debian's Chromium (Playwright).

Run: ``NEUROMODMAP_DATA=../shared/data python scripts/screenshots_trials.py [--db STORE] [--out docs/img]``
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOLDER = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); time.sleep(60)"


def build_store(db: Path, data: Path, work: Path) -> None:
    from neuromodmap.trials.io import expand_inputs
    from neuromodmap.trials.pipeline import classify_to_csv
    from neuromodmap.trials.store import TrialStore

    sample = work / "sample.jsonl"
    with gzip.open(data / "trials" / "ctgov_text_2018.jsonl.gz", "rt", encoding="utf-8") as src, \
            open(sample, "w", encoding="utf-8") as out:
        out.writelines(itertools.islice(src, 15000))
    trials = data / "trials"
    with TrialStore(db) as store:
        store.import_files(expand_inputs([trials / "ctgov_v2_json_download_herniated_disc_koy570" / "ctg-studies.json.gz",
                                          trials / "ctgov_legacy_xml", sample]), problems=[])
    classify_to_csv([], work / "labels.csv", db=db, problems=[])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, default=None, help="a classified trials store (copied, not changed)")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--chromium", default=os.environ.get("NEUROMODMAP_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    import httpx
    from playwright.sync_api import sync_playwright

    from neuromodmap.store import write_wanted_path
    from neuromodmap.webapp import create_app
    from neuromodmap.webapp.server import running_server

    data = Path(os.environ.get("NEUROMODMAP_DATA", "../shared/data"))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "trials.duckdb"
        if args.db:
            shutil.copyfile(args.db, db)
        else:
            build_store(db, data, Path(tmp))
        with running_server(create_app(db, token="docs-token", busy_wait=0.5)) as url, sync_playwright() as pw:
            api = httpx.Client(base_url=url, headers={"Authorization": "Bearer docs-token"})
            rid = api.get("/api/trials?modality=tms&indication=depression&limit=1").json()["items"][0]["registry_id"]
            api.post(f"/api/trials/{rid}/labels", json={"field": "depression_subtype", "value": "trd",
                                                       "reviewer": "A. Reviewer",
                                                       "note": "the summary names treatment-resistant patients"})
            browser = pw.chromium.launch(executable_path=args.chromium,
                                         args=["--headless", "--no-sandbox", "--disable-gpu",
                                               "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            page.goto(url + "/trials?token=docs-token")
            page.goto(url + "/trials?modality_group=noninvasive_cortical")
            page.screenshot(path=str(args.out / "webapp-trials.png"), full_page=False)
            page.goto(f"{url}/trials/{rid}")
            page.screenshot(path=str(args.out / "webapp-trial.png"), full_page=False)
            page.locator("#record").scroll_into_view_if_needed()
            page.locator("#record").screenshot(path=str(args.out / "webapp-trial-evidence.png"))
            page.locator("#history").screenshot(path=str(args.out / "webapp-trial-history.png"))
            # the page a request gets while another process writes the store (as an import does)
            signal = write_wanted_path(db)
            signal.write_text("screenshot")  # the app lets go of the file ...
            time.sleep(0.5)
            holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
            try:
                assert holder.stdout.readline().strip() == "holding"  # ... and another process takes it
                signal.unlink()
                page.goto(url + "/trials")
                page.screenshot(path=str(args.out / "webapp-busy.png"), full_page=False)
            finally:
                holder.kill()
                holder.wait()
            browser.close()
    for name in ("webapp-trials", "webapp-trial", "webapp-trial-evidence", "webapp-trial-history", "webapp-busy"):
        print(args.out / f"{name}.png")


if __name__ == "__main__":
    main()
