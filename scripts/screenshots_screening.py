"""Screenshots of the screening, evidence and connectome pages for docs/webapp_screening.md.

Builds a review store from the real Cohen et al. 2006 ADHD records, lets two reviewers vote on a
few records through the API (as the published labels say, one reviewer differing twice), serves
the app with uvicorn and photographs the pages with Debian's Chromium (Playwright).

Run: ``NEUROMODMAP_DATA=../shared/data python scripts/screenshots_screening.py [--out docs/img]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--chromium", default=os.environ.get("NEUROMODMAP_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    import httpx
    from playwright.sync_api import sync_playwright

    from neuromodmap.literature import open_store, read_records, save_import
    from neuromodmap.webapp import create_app
    from neuromodmap.webapp.server import running_server

    data = Path(os.environ.get("NEUROMODMAP_DATA", "../shared/data")) / "literature" / "labelled"
    source = data / "Cohen_2006_ADHD.csv.gz"
    labels = dict(zip(*pd.read_csv(source)[["title", "label_abstract_screening"]].T.values, strict=True))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        review = Path(tmp) / "review.duckdb"
        con = open_store(review)
        save_import(con, read_records(source))
        con.close()
        app = create_app(Path(tmp) / "trials.duckdb", review)
        with running_server(app) as base, httpx.Client(base_url=base, timeout=120) as client:
            client.get("/api/csrf")
            headers = {"X-CSRF-Token": client.cookies["nm_csrf"]}
            for reviewer, flips in (("Ana", set()), ("Ben", {2, 5})):
                for step in range(12):
                    record = client.get("/api/screening/next", params={"reviewer": reviewer}).json()["record"]
                    include = bool(labels.get(record["title"], 0)) ^ (step in flips)
                    client.post("/api/screening/decisions", headers=headers,
                                json={"record_id": record["record_id"], "reviewer": reviewer,
                                      "decision": "include" if include else "exclude"}).raise_for_status()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=["--headless", "--no-sandbox"])
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                for path, name in (("/screening?reviewer=Ana", "webapp-screening.png"),
                                   ("/screening/conflicts?reviewer=Ana", "webapp-screening-conflicts.png"),
                                   ("/evidence/result?dataset=gaynes2011_fig13", "webapp-evidence.png"),
                                   ("/connectome", "webapp-connectome.png")):
                    response = page.goto(base + path)
                    if response is None or response.status != 200:
                        print(f"skipped {path}: HTTP {response.status if response else '?'}")
                        continue
                    page.wait_for_timeout(6000 if "connectome" in path else 1500)
                    page.screenshot(path=str(args.out / name), full_page=False)
                    print(f"wrote {args.out / name}")
                browser.close()


if __name__ == "__main__":
    main()
