"""Importing many small registry files: N separate legacy XML files against the same records
as one ZIP and as one tar.gz (and, with ``--dir``, the folder given as one argument).

The records are the shipped AllPublicXML subset (``trials/ctgov_legacy_xml_allpublicxml_subset_reesewang25``,
6,786 ``<clinical_study>`` files): the first ``--files`` members are extracted to a temporary
folder (its layout kept), and packed again as a deflated ZIP (the AllPublicXML.zip layout) and
as a tar.gz. Each import runs in a fresh process into a fresh DuckDB file (``TrialStore.import_files``,
interpreter start-up excluded); the modes are interleaved, repeat by repeat, so a drifting
machine hits them alike. Prints files/s and records/s (medians over the repeats), the peak
size of DuckDB's write-ahead log during the import (sampled every 20 ms), peak RSS, and the
load average before and after.

    NEUROMODMAP_DATA=/work/shared/data python benchmarks/trials_manyfiles.py --files 2000 --repeats 3
    NEUROMODMAP_DATA=/work/shared/data python benchmarks/trials_manyfiles.py --files 0 --repeats 3 --dir   # all 6,786
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ARCHIVE = ("trials/ctgov_legacy_xml_allpublicxml_subset_reesewang25/"
           "AllPublicXML_subset_NCT0000xxxx_NCT0046xxxx_NCT0049xxxx.tar.gz")

_CHILD = r"""
import json, os, resource, sys, threading, time
from neuromodmap.trials.store import TrialStore
db, listing = sys.argv[1], sys.argv[2]
paths = [line for line in open(listing, encoding="utf-8").read().splitlines() if line]
wal = db + ".wal"
peak = [0]
stop = threading.Event()

def watch():
    while not stop.wait(0.02):
        try:
            peak[0] = max(peak[0], os.path.getsize(wal))
        except OSError:
            pass

threading.Thread(target=watch, daemon=True).start()
t = time.perf_counter(); c = time.process_time()
store = TrialStore(db)
report = store.import_files(paths, progress=False)
n_rows = len(store)
store.close()
wall = time.perf_counter() - t
stop.set()
print(json.dumps({"n": report.n_read, "rows": n_rows, "problems": len(report.problems), "seconds": wall,
                  "cpu": time.process_time() - c, "wal_mb": peak[0] / 2**20,
                  "db_mb": os.path.getsize(db) / 2**20,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _prepare(archive: Path, n_files: int, work: Path) -> dict[str, list[str]]:
    """Extract the first ``n_files`` XML members; pack them as a ZIP and a tar.gz."""
    folder = work / "AllPublicXML"
    files: list[Path] = []
    with tarfile.open(archive) as tf:
        for member in tf:
            if not (member.isfile() and member.name.endswith(".xml")):
                continue
            name = Path(member.name)
            if name.is_absolute() or ".." in name.parts:
                continue
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tf.extractfile(member).read())
            files.append(target)
            if n_files and len(files) >= n_files:
                break
    zpath = work / "AllPublicXML.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.relative_to(folder).as_posix())
    tpath = work / "AllPublicXML.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        for f in files:
            tf.add(f, f.relative_to(folder).as_posix())
    return {"files": [str(f) for f in files], "dir": [str(folder)], "zip": [str(zpath)], "tar.gz": [str(tpath)]}


def _run(paths: list[str], work: Path) -> dict | None:
    listing = work / "listing.txt"
    listing.write_text("\n".join(paths), encoding="utf-8")
    db = work / "bench.duckdb"
    for stale in (db, Path(str(db) + ".wal")):
        stale.unlink(missing_ok=True)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(db), str(listing)], capture_output=True, text=True,
                         env={**os.environ, "NEUROMODMAP_NO_PROGRESS": "1"})
    for stale in (db, Path(str(db) + ".wal")):
        stale.unlink(missing_ok=True)
    if out.returncode != 0:
        print(f"    failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from neuromodmap.config import data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="XML files to use (0: all 6,786)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", action="store_true", help="also import the folder as one argument")
    parser.add_argument("--modes", default=None, help="comma-separated subset of files,dir,zip,tar.gz")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    archive = data_dir(args.data_dir) / ARCHIVE
    modes = ["files", "zip", "tar.gz"] + (["dir"] if args.dir else [])
    if args.modes:
        modes = [m for m in args.modes.split(",") if m]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="manyfiles-") as tmp:
        work = Path(tmp)
        inputs = _prepare(archive, args.files, work)
        n_files = len(inputs["files"])
        print(f"{n_files:,} XML files ({sum(Path(f).stat().st_size for f in inputs['files']) / 2**20:.0f} MB); "
              f"ZIP {Path(inputs['zip'][0]).stat().st_size / 2**20:.0f} MB, "
              f"tar.gz {Path(inputs['tar.gz'][0]).stat().st_size / 2**20:.0f} MB")
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for r in range(args.repeats):
            for mode in modes:
                res = _run(inputs[mode], work)
                if res is not None:
                    runs[mode].append(res)
                    print(f"  repeat {r + 1} {mode:>6}: {res['seconds']:6.2f} s ({res['n']:,} records, "
                          f"WAL peak {res['wal_mb']:.0f} MB, load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    summary = {}
    for mode, results in runs.items():
        if not results or not results[0]["n"]:
            print(f"{mode:>6}: could not be imported"
                  + (f" ({results[0]['problems']} problem(s), no record read)" if results else ""))
            continue
        secs = statistics.median(x["seconds"] for x in results)
        n = results[0]["n"]
        summary[mode] = {"files": n_files, "records": n, "rows": results[0]["rows"],
                         "problems": results[0]["problems"], "median_seconds": round(secs, 2),
                         "files_per_second": round(n_files / secs), "records_per_second": round(n / secs),
                         "median_cpu_seconds": round(statistics.median(x["cpu"] for x in results), 2),
                         "wal_peak_mb": round(max(x["wal_mb"] for x in results)),
                         "db_mb": round(results[0]["db_mb"]),
                         "peak_rss_mb": round(max(x["peak_rss_mb"] for x in results)),
                         "all_seconds": [round(x["seconds"], 2) for x in results]}
        print(f"{mode:>6}: median {secs:.2f} s over {len(results)} runs = {n_files / secs:,.0f} files/s, "
              f"{n / secs:,.0f} records/s; WAL peak {summary[mode]['wal_peak_mb']} MB, "
              f"peak RSS {summary[mode]['peak_rss_mb']} MB")
    if "files" in summary and "zip" in summary:
        print(f"files / ZIP time ratio: {summary['files']['median_seconds'] / summary['zip']['median_seconds']:.2f}")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
