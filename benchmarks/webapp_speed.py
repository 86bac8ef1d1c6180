"""Latency of the trials API of ``neuromodmap serve`` on the 101k-record store, with a real client.

Starts ``neuromodmap serve --db STORE --port 0`` as a user would (a separate process, uvicorn),
and times ``GET /api/trials`` with two filters (rotating over four real combinations, e.g.
``modality=tms&indication=depression``) from an httpx client over HTTP keep-alive, one request
at a time. Prints the median, p95 and max per repetition and the median p95 over repetitions,
with the load average (the machine has 2 cores shared with other work).

Also timed, for information: the same requests when each one finds the store closed (the app
closes its read-only instance after 5 s idle, so the first request after a pause reopens the
file), and the ``/trials`` page (list, counts and survey figures) with two filters.

Goal (issue 16): p95 < 150 ms for ``/api/trials`` with two filters.

Free text: ``/api/trials`` with ``q`` (rotating over :data:`TEXT_QUERIES`, some with a label
filter, some over all trials with ``neuromod=any``), timed once the app's word index is ready
(the wait for it is printed); ``--text-index off`` serves with the plain scan instead.

The store is built once (import + classify of ctgov_text_2018.jsonl.gz, about 2 minutes) into
``--db`` (default ``.bench/webapp_trials_101k.duckdb``) and reused.

Usage: NEUROMODMAP_DATA=../shared/data python benchmarks/webapp_speed.py [--requests 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

QUERIES = [
    "modality=tms&indication=depression",
    "modality_group=spinal_cord&indication=pain",
    "modality=dbs&indication=depression",
    "modality_group=noninvasive_cortical&invasive=non-invasive",
]

TEXT_QUERIES = [
    "q=pain",
    "q=depression&modality=tms",
    "q=transcranial+magnetic",
    "q=spinal+cord&neuromod=any",
    "q=tdcs&neuromod=any",
    "q=parkinson&neuromod=any",
    "q=stimulat+depress",
    "q=chronic+low+back&neuromod=any",
]


def build_store(db: Path, corpus: Path) -> None:
    from neuromodmap.trials.pipeline import import_and_classify
    from neuromodmap.trials.store import TrialStore

    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_suffix(".building.duckdb")
    tmp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with TrialStore(tmp) as store:
        stats = import_and_classify(store, [corpus])
    tmp.rename(db)
    print(f"built {db}: {stats['n_imported']:,} trials, {stats['n_neuromod']:,} neuromodulation, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)


def percentile(values: list[float], q: float) -> float:
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, int(round(q / 100 * len(xs) + 0.5)) - 1))  # nearest rank
    return xs[k]


def time_requests(client: httpx.Client, paths: list[str], *, pause: float = 0.0) -> list[float]:
    out = []
    for path in paths:
        if pause:
            time.sleep(pause)
        t0 = time.perf_counter()
        r = client.get(path)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"{path}: HTTP {r.status_code}: {r.text[:200]}")
    return out


def describe(ms: list[float]) -> str:
    return (f"n={len(ms)} median {statistics.median(ms):.1f} ms, p95 {percentile(ms, 95):.1f} ms, "
            f"max {max(ms):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=Path(".bench/webapp_trials_101k.duckdb"))
    parser.add_argument("--requests", type=int, default=200, help="requests per repetition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", type=int, default=10, help="requests each after a 5.5 s pause (store reopened)")
    parser.add_argument("--text-requests", type=int, default=80, help="q requests per repetition (0: none)")
    parser.add_argument("--text-index", choices=["background", "off"], default="background",
                        help="how the served app answers q (NEUROMODMAP_TEXT_INDEX)")
    parser.add_argument("--data-dir", default=os.environ.get("NEUROMODMAP_DATA", "../shared/data"))
    args = parser.parse_args()

    if not args.db.is_file():
        corpus = Path(args.data_dir) / "trials" / "ctgov_text_2018.jsonl.gz"
        if not corpus.is_file():
            sys.exit(f"corpus not found: {corpus} (set NEUROMODMAP_DATA)")
        build_store(args.db, corpus)

    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NEUROMODMAP_TOKEN", None)
    env["NEUROMODMAP_TEXT_INDEX"] = args.text_index
    proc = subprocess.Popen([sys.executable, "-m", "neuromodmap", "serve", "--db", str(args.db), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        m = re.match(r"Serving on (http://\S+?)/?\s*$", line)
        if not m:
            sys.exit(f"serve did not start: {line!r} {proc.stderr.read()[:500]}")
        base = m.group(1)
        with httpx.Client(base_url=base, timeout=60) as client:
            totals = {q: client.get(f"/api/trials?{q}").json()["total"] for q in QUERIES}
            n_all = client.get("/api/trials?neuromod=any&limit=1").json()["total"]
            print(f"store: {args.db} ({n_all:,} trials); server: {base} (neuromodmap serve, uvicorn)")
            print("queries (total matching): " + "; ".join(f"{q} ({n})" for q, n in totals.items()))
            paths = [f"/api/trials?{QUERIES[i % len(QUERIES)]}&limit=50&offset=0" for i in range(args.requests)]
            time_requests(client, paths[:20])  # warm-up
            p95s, medians = [], []
            for rep in range(args.repeats):
                ms = time_requests(client, paths)
                p95s.append(percentile(ms, 95))
                medians.append(statistics.median(ms))
                print(f"  /api/trials repeat {rep + 1}: {describe(ms)}  (load {os.getloadavg()[0]:.2f})", flush=True)
            print(f"/api/trials, two filters: median of medians {statistics.median(medians):.1f} ms, "
                  f"median p95 {statistics.median(p95s):.1f} ms over {args.repeats} x {args.requests} requests "
                  f"(goal p95 < 150 ms; load {os.getloadavg()[0]:.2f})")
            if args.cold:
                ms = time_requests(client, paths[: args.cold], pause=5.5)
                print(f"/api/trials after a 5.5 s pause (store reopened each time): {describe(ms)}")
            pages = [f"/trials?{QUERIES[i % len(QUERIES)]}" for i in range(min(40, args.requests))]
            ms = time_requests(client, pages)
            print(f"/trials page (list + counts + survey figures), two filters: {describe(ms)}")
            if args.text_requests:
                time_text(client, args)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def time_text(client: httpx.Client, args) -> None:
    t0 = time.perf_counter()
    while args.text_index != "off":  # the first q starts the index build; wait until it answers
        how = client.get(f"/api/trials?{TEXT_QUERIES[0]}&limit=1").json().get("text_search")
        if how == "index":
            break
        if time.perf_counter() - t0 > 600:
            sys.exit("the text index was not ready after 600 s")
        time.sleep(1)
    print(f"text index ready after {time.perf_counter() - t0:.1f} s (mode {args.text_index}; load "
          f"{os.getloadavg()[0]:.2f})")
    totals = {q: client.get(f"/api/trials?{q}&limit=1").json()["total"] for q in TEXT_QUERIES}
    print("text queries (total matching): " + "; ".join(f"{q} ({n})" for q, n in totals.items()))
    paths = [f"/api/trials?{TEXT_QUERIES[i % len(TEXT_QUERIES)]}&limit=50&offset=0" for i in range(args.text_requests)]
    time_requests(client, paths[:8])  # warm-up
    p95s, medians = [], []
    for rep in range(args.repeats):
        ms = time_requests(client, paths)
        p95s.append(percentile(ms, 95))
        medians.append(statistics.median(ms))
        print(f"  /api/trials?q= repeat {rep + 1}: {describe(ms)}  (load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"/api/trials with q ({args.text_index}): median of medians {statistics.median(medians):.1f} ms, "
          f"median p95 {statistics.median(p95s):.1f} ms over {args.repeats} x {args.text_requests} requests "
          f"(load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
