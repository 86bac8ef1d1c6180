"""Web app screening speed: latency of "next screening record" on 10,000 records, measured with a
real HTTP client (httpx) against the app served by a real uvicorn server.

The records are the 5,879 real labelled titles and abstracts in ``$NEUROMODMAP_DATA/literature/
labelled`` (Cohen 2006 ADHD, atypical antipsychotics, opioids; Bannach-Brown 2019), copied with
every title/abstract word mapped to another real word (by a hash of word and copy, as
benchmarks/literature_speed.py does) until there are ``--records``. They are imported into a
fresh review store; the server builds the screening session (criteria, TF-IDF) on its first
request, which is timed apart ("warm-up").

Then a reviewer screens ``--steps`` records, voting as the published labels say (so the model
is refit on both classes), and each step times:

- ``next``: ``GET /api/screening/next?reviewer=R`` right after a vote (the figure the issue asks
  for, goal p95 < 100 ms): served from the latest finished ranking while the model is refit on the
  new votes in a background thread; the lag (votes cast minus votes the served ranking was fit on)
  is reported;
- ``next (cached)``: the same request again, answered from the cached ranking;
- ``vote``: ``POST /api/screening/decisions`` (the vote and the team's decision, one transaction);
- ``status``: ``GET /api/screening/status`` every 10th step (stopping rule, kappa, PRISMA).

Run: ``NEUROMODMAP_DATA=../shared/data python benchmarks/webapp_screening_speed.py [--records 10000] [--steps 200] [--repeats 3] [--sync-refit]``
(``--sync-refit``: the model refit inside the request after each vote, as before the background refit).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import re
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

_WORD = re.compile(r"[A-Za-z]+")


def _data_root() -> Path:
    root = Path(os.environ.get("NEUROMODMAP_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not (root / "literature" / "labelled").is_dir():
        sys.exit(f"no literature data under {root}; set NEUROMODMAP_DATA")
    return root / "literature" / "labelled"


def _write_records(n_records: int, out: Path) -> dict[str, int]:
    """A CSV of ``n_records`` records (real ones first, then word-mapped copies); title -> label."""
    rows = []
    for path in sorted(_data_root().glob("*.csv.gz")):
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                label = row.get("label_abstract_screening") or row.get("label_included") or "0"
                rows.append((row.get("title") or "", row.get("abstract") or "", row.get("keywords") or "",
                             int(float(label or 0))))
    vocabulary = sorted({w.lower() for t, *_ in rows[:3000] for w in _WORD.findall(t) if len(w) > 2})
    labels: dict[str, int] = {}
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["title", "abstract", "keywords", "year", "journal"])
        copy = written = 0
        while written < n_records:
            def swap(m, copy=copy):
                word = m.group(0)
                new = vocabulary[zlib.crc32(f"{word.lower()}\x00{copy}".encode()) % len(vocabulary)]
                return new.capitalize() if word[0].isupper() else new

            for title, abstract, keywords, label in rows:
                if copy:
                    title, abstract = _WORD.sub(swap, title), _WORD.sub(swap, abstract)
                if not title.strip() or title in labels:
                    continue
                writer.writerow([title, abstract, keywords, 2010, "Journal of Replicated Records"])
                labels[title] = label
                written += 1
                if written == n_records:
                    break
            copy += 1
    return labels


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _run(n_records: int, steps: int, work: Path) -> dict:
    import httpx

    from neuromodmap.literature import open_store, read_records, save_import
    from neuromodmap.webapp import create_app
    from neuromodmap.webapp.server import running_server

    source = work / "records.csv"
    labels = _write_records(n_records, source)
    review = work / "review.duckdb"
    con = open_store(review)
    save_import(con, read_records(source))
    con.close()
    out: dict = {"n_records": len(labels)}
    app = create_app(work / "trials.duckdb", review)
    with running_server(app) as base, httpx.Client(base_url=base, timeout=120) as client:
        client.get("/api/csrf")
        headers = {"X-CSRF-Token": client.cookies["nm_csrf"]}
        t = time.perf_counter()
        first = client.get("/api/screening/next", params={"reviewer": "bench"})
        out["warmup_s"] = time.perf_counter() - t
        first.raise_for_status()
        out["n_eligible"] = first.json()["progress"]["n_eligible"]
        times: dict[str, list[float]] = {"next": [], "next_cached": [], "vote": [], "status": []}
        record = first.json()["record"]
        lags: list[int] = []
        for step in range(steps):
            decision = "include" if labels.get(record["title"], 0) else "exclude"
            t = time.perf_counter()
            client.post("/api/screening/decisions", json={"record_id": record["record_id"], "reviewer": "bench",
                                                          "decision": decision}, headers=headers).raise_for_status()
            times["vote"].append(time.perf_counter() - t)
            t = time.perf_counter()
            response = client.get("/api/screening/next", params={"reviewer": "bench"})
            times["next"].append(time.perf_counter() - t)
            response.raise_for_status()
            ranking = response.json().get("ranking") or {}
            lags.append(ranking.get("votes", 0) - ranking.get("ranking_votes", 0))
            t = time.perf_counter()
            client.get("/api/screening/next", params={"reviewer": "bench"}).raise_for_status()
            times["next_cached"].append(time.perf_counter() - t)
            if step % 10 == 9:
                t = time.perf_counter()
                client.get("/api/screening/status").raise_for_status()
                times["status"].append(time.perf_counter() - t)
            record = response.json()["record"]
    out["lag_mean_votes"] = statistics.mean(lags)
    out["lag_max_votes"] = max(lags)
    for name, values in times.items():
        out[f"{name}_p50_ms"] = statistics.median(values) * 1000
        out[f"{name}_p95_ms"] = _percentile(values, 0.95) * 1000
        out[f"{name}_n"] = len(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sync-refit", action="store_true",
                        help="refit in the request after each vote (the behaviour before the background refit)")
    args = parser.parse_args()
    if args.sync_refit:
        from neuromodmap.webapp import screening

        screening.BACKGROUND_REFIT = False
    runs = []
    for i in range(args.repeats):
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            result = _run(args.records, args.steps, Path(tmp))
        result["load"] = load
        runs.append(result)
        print(f"run {i + 1}: {result['n_records']:,} records ({result['n_eligible']:,} eligible), load {load:.1f}, "
              f"warm-up {result['warmup_s']:.1f} s; next after a vote p50 {result['next_p50_ms']:.0f} ms "
              f"p95 {result['next_p95_ms']:.0f} ms; next cached p95 {result['next_cached_p95_ms']:.0f} ms; "
              f"vote p95 {result['vote_p95_ms']:.0f} ms; status p95 {result['status_p95_ms']:.0f} ms; "
              f"ranking lag mean {result['lag_mean_votes']:.1f} max {result['lag_max_votes']} votes "
              f"({result['next_n']} steps)", flush=True)
    keys = ["warmup_s", "next_p50_ms", "next_p95_ms", "next_cached_p50_ms", "next_cached_p95_ms",
            "vote_p50_ms", "vote_p95_ms", "status_p50_ms", "status_p95_ms", "lag_mean_votes", "lag_max_votes",
            "load"]
    print(f"median of {len(runs)} runs:")
    for key in keys:
        print(f"  {key:22s} {statistics.median(r[key] for r in runs):9.1f}")
    print("goal: next screening record p95 < 100 ms on this 2-core machine")


if __name__ == "__main__":
    main()
