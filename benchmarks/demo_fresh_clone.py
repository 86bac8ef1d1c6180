"""Time ``make demo`` on a fresh clone (install included) and measure the report it writes.

    python benchmarks/demo_fresh_clone.py [--repo .] [--data ../shared/data] [--no-pip-cache]
                                          [--screenshot docs/img/report-overview.png]

Clones the repository (its committed HEAD) into a temporary folder with ``shared/data`` linked
beside it, runs ``make demo`` there, and prints: wall time of the whole command (venv, pip install,
demo), the demo's own step times, the last line it printed, the report's size and what it embeds
(images, JSON tables, bytes of each). With ``--screenshot`` it opens the report in headless
Chromium (Debian's ``chromium``, via Playwright) and saves the overview as a PNG. The issue's goal:
under 10 minutes on a 2-core machine, a report of at most 15 MB. Quote ``uptime`` beside the time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _composition(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    total = len(text.encode("utf-8"))
    images = re.findall(r'src="(data:image/[^;]+;base64,[^"]+)"', text)
    data = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', text, re.S)
    img_bytes = sum(len(s) for s in images)
    data_bytes = sum(len(d[1].encode("utf-8")) for d in data)
    print(f"report: {report} {total / 2**20:.2f} MiB ({total:,} bytes)")
    print(f"  {len(images)} inlined images: {img_bytes / 2**20:.2f} MiB (base64)")
    print(f"  {len(data)} JSON tables: {data_bytes / 2**20:.2f} MiB")
    for name, payload in sorted(data, key=lambda d: -len(d[1]))[:5]:
        print(f"    {name}: {len(payload.encode('utf-8')) / 1024:.0f} KiB")
    print(f"  the rest (HTML tables, text, CSS, script): {(total - img_bytes - data_bytes) / 2**20:.2f} MiB")


def _screenshot(report: Path, path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("NEUROMODMAP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page.goto(report.resolve().as_uri())
        page.wait_for_load_state("load")
        clip = page.eval_on_selector("#overview", "e => { const r = e.getBoundingClientRect(); "
                                                  "return {x: 0, y: 0, width: 1280, height: r.bottom + 10}; }")
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), clip=clip, full_page=True)
        browser.close()
    print(f"screenshot: {path} ({path.stat().st_size / 1024:.0f} KiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--data", type=Path, default=None, help="shared/data folder (default: ../shared/data)")
    parser.add_argument("--no-pip-cache", action="store_true", help="install without pip's download cache")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    parser.add_argument("--screenshot", type=Path, default=None, help="save the overview as this PNG")
    args = parser.parse_args()
    data = (args.data or args.repo.resolve().parent / "shared" / "data").resolve()
    if not data.is_dir():
        print(f"no data folder at {data}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="neuromodmap-fresh-"))
    clone = work / "neuromodmap"
    subprocess.run(["git", "clone", "-q", str(args.repo.resolve()), str(clone)], check=True)
    (work / "shared").mkdir()
    (work / "shared" / "data").symlink_to(data)
    head = subprocess.run(["git", "-C", str(clone), "log", "-1", "--format=%h %s"], capture_output=True,
                          text=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROMODMAP_", "VIRTUAL_ENV"))}
    if args.no_pip_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
    print(f"clone of {head[:70]} in {clone}; load before: {_load()}; nproc {os.cpu_count()}")
    start = time.perf_counter()
    proc = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    print(f"make demo: exit {proc.returncode}, wall {wall:.0f} s ({wall / 60:.1f} min); load after: {_load()}")
    for line in proc.stderr.splitlines():
        if re.match(r"\s*\[\d+/\d+\]|\s*done in", line):
            print("  " + line.strip())
    print(f"last line: {lines[-1] if lines else '(none)'}")
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    report = Path(lines[-1].removeprefix("Report: "))
    _composition(report)
    if args.screenshot:
        _screenshot(report, args.screenshot)
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
