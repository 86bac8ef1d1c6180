"""Our screening model against ASReview itself, on the same labelled sets and the same protocol.

ASReview is *not* a dependency of neuromodmap. Install it in a separate virtual environment
and point this script at its ``asreview`` command::

    python3 -m venv /tmp/asr/venv && /tmp/asr/venv/bin/pip install "asreview==1.6.6"
    python3 -m venv /tmp/asr/venv2 && /tmp/asr/venv2/bin/pip install "asreview==2.2"
    python3 -m venv /tmp/asr/venv3 && /tmp/asr/venv3/bin/pip install "asreview==3.0.8"
    NEUROMODMAP_DATA=/work/shared/data nice -n 19 .venv/bin/python benchmarks/literature_vs_asreview.py \\
        --asreview /tmp/asr/venv/bin/asreview --asreview /tmp/asr/venv2/bin/asreview \\
        --asreview /tmp/asr/venv3/bin/asreview \\
        --seeds 0-9 --work /tmp/asr/work
    # the same on the records that have an abstract:
    ... --require-abstract

Protocol, the same for every tool and seed (that of ``neuromodmap literature simulate``):

* data: the seven dataset/label sets of docs/literature.md section 5 (Cohen 2006 ADHD,
  atypical antipsychotics and opioids at the final and the title/abstract label level,
  Bannach-Brown 2019), read with neuromodmap's reader; ASReview gets a CSV with exactly the
  same records in the same order (columns ``title``, ``abstract``, ``label_included``; with
  ``--require-abstract`` records without an abstract are left out of both);
* prior knowledge: 1 relevant + 1 irrelevant record, the ones ``simulate(seed=s)`` draws
  (``numpy.random.default_rng(s)``), passed to ASReview by row number (v1 ``--prior_idx``,
  v2 ``--prior-idx``); ASReview's model seed is ``--seed s``;
* one record per query step, refit after every decision (ASReview's default), ASReview's
  default model for its version (v1: naive Bayes + TF-IDF + max + double balance;
  v2 and v3: their default "ELAS u4" model, SVM + TF-IDF + max + balanced), run until every
  relevant record is found;
* WSS@95 from each tool's labelling order with neuromodmap's
  :func:`~neuromodmap.literature.activelearning.screening_metrics` (the 2 prior records count
  as screened; records never labelled are appended, they are all irrelevant).

Our side runs ``simulate`` with the default settings (fields title + abstract + keywords/MeSH)
and with ASReview's fields (title + abstract only), plus ``--ours CONFIG`` variants. Every run
is cached as JSON under ``--work`` so an interrupted run resumes; the table is printed at the
end (markdown, mean (sd) over the seeds). The simulations are not timed (run them with
``nice``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from neuromodmap.literature import activelearning as al
from neuromodmap.literature.io import read_records

SETS = [  # (key, file, label column, table name)
    ("adhd_fin", "Cohen_2006_ADHD.csv.gz", "label_included", "Cohen ADHD (final)"),
    ("adhd_ta", "Cohen_2006_ADHD.csv.gz", "label_abstract_screening", "Cohen ADHD (title/abstract)"),
    ("aa_fin", "Cohen_2006_AtypicalAntipsychotics.csv.gz", "label_included", "Cohen atypical antipsychotics (final)"),
    ("aa_ta", "Cohen_2006_AtypicalAntipsychotics.csv.gz", "label_abstract_screening",
     "Cohen atypical antipsychotics (title/abstract)"),
    ("op_fin", "Cohen_2006_Opiods.csv.gz", "label_included", "Cohen opioids (final)"),
    ("op_ta", "Cohen_2006_Opiods.csv.gz", "label_abstract_screening", "Cohen opioids (title/abstract)"),
    ("bb", "Bannach-Brown_2019.csv.gz", "label_included", "Bannach-Brown 2019"),
]

# Our configurations: name -> (fields, simulate keyword arguments)
OURS = {
    "ours-default": (tuple(al.DEFAULT_FIELDS), {}),
    "ours-ta": (("title", "abstract"), {}),
    # our re-implementation of ASReview v1's default (NB, double, title + abstract, words, raw tf)
    "ours-v1-like": (("title", "abstract"), {"balance": "double", "ngram_max": 1, "sublinear_tf": False}),
}


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            seeds.extend(range(int(lo), int(hi) + 1))
        else:
            seeds.append(int(part))
    return seeds


def prior_indices(labels: np.ndarray, seed: int) -> list[int]:
    """The 1 + 1 prior records ``activelearning.simulate`` draws for ``seed`` (checked against it)."""
    rng = np.random.default_rng(seed)
    return [int(rng.choice(np.flatnonzero(labels == 1), 1, replace=False)[0]),
            int(rng.choice(np.flatnonzero(labels == 0), 1, replace=False)[0])]


def _labelled_dir() -> Path:
    root = Path(os.environ.get("NEUROMODMAP_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    folder = root / "literature" / "labelled"
    if not folder.is_dir():
        sys.exit(f"no labelled sets under {folder}; set NEUROMODMAP_DATA")
    return folder


def load_set(file: str, label: str, require_abstract: bool):
    records = read_records(_labelled_dir() / file).records
    if require_abstract:
        records = [r for r in records if r.abstract.strip()]
    labels = np.array([int(float(r.extra[label])) for r in records])
    return records, labels


def asreview_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    return re.search(r"(\d+\.\d+(\.\d+)?)", out).group(1)


def write_asreview_csv(records, labels, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["title", "abstract", "label_included"])
        for rec, lab in zip(records, labels, strict=True):
            writer.writerow([rec.title, rec.abstract, int(lab)])


def read_labelling_order(project: Path) -> list[tuple[int, int]]:
    """(record_id, label) in the order ASReview labelled them, from its project file (v1 or v2)."""
    with zipfile.ZipFile(project) as zf, tempfile.TemporaryDirectory() as tmp:
        # v1 and v2: reviews/<id>/results.sql|db; v3: results.db at the top
        names = [n for n in zf.namelist()
                 if (n.startswith("reviews/") and n.endswith((".sql", ".db"))) or n == "results.db"]
        if len(names) != 1:
            raise RuntimeError(f"{project}: expected one results database, found {names}")
        db = zf.extract(names[0], tmp)
        con = sqlite3.connect(db)
        try:
            tables = {t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "record" in tables:  # v3 keeps its own record ids; map them back to row numbers
                sql = ("SELECT r.dataset_row, s.label FROM results s JOIN record r "
                       "ON r.record_id = s.record_id ORDER BY s.rowid")
            else:
                sql = "SELECT record_id, label FROM results ORDER BY rowid"
            return [(int(r), int(lab)) for r, lab in con.execute(sql).fetchall()]
        finally:
            con.close()


def run_asreview(exe: str, major: int, csv_path: Path, priors: list[int], seed: int, project: Path,
                 log: Path) -> float:
    if project.exists():
        project.unlink()
    if major == 1:
        cmd = [exe, "simulate", str(csv_path), "--prior_idx", *map(str, priors), "--seed", str(seed),
               "--n_instances", "1", "-s", str(project)]
    else:
        cmd = [exe, "simulate", str(csv_path), "--prior-idx", *map(str, priors), "--seed", str(seed),
               "-o", str(project)]
    t0 = time.perf_counter()
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        # run in the work folder: ASReview 2 and 3 leave a request cache (synergy_cache.sqlite) in the cwd
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=True, cwd=project.parent)
    return time.perf_counter() - t0


def asreview_metrics_wss95(exe: str, project: Path) -> float | None:
    """WSS@95 as ASReview's own ``asreview metrics`` (asreview-insights) reports it, if installed."""
    out = project.with_suffix(".metrics.json")
    done = subprocess.run([exe, "metrics", str(project), "-o", str(out)], capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        return None
    items = json.loads(out.read_text())["data"]["items"]
    out.unlink()
    wss = next((i["value"] for i in items if i["id"] == "wss"), None)
    return next((float(v) for r, v in wss if abs(r - 0.95) < 1e-9), None) if wss else None


def insights_def_wss95(labels_in_order: np.ndarray, n_priors: int = 2, recall: float = 0.95) -> float:
    """WSS@95 as asreview-insights 1.5 computes it (``asreview metrics``), re-implemented.

    From ``asreviewcontrib/insights/algorithms.py::_wss_values`` and ``metrics.py::_slice_metric``:
    prior records left out; for k = 1..n relevant, the records screened before the k-th relevant
    one are compared with a straight-line "random" curve, and the value is read at the last k
    with k/n <= 0.95. It differs from Cohen's definition used everywhere else here (the work
    saved at the first point where recall >= 95 %, minus 0.05): on a set with 14 relevant
    records after the priors it is read at 13 found, so one late record does not count.
    Checked against the package's own output on the ASReview 1.6.6 runs (``insights_wss_95``).
    """
    labels = np.asarray(labels_in_order[n_priors:], dtype=float)
    n_docs, n_pos = len(labels), int(labels.sum())
    found = np.cumsum(labels)
    found_random = np.round(np.linspace(0, n_pos, n_docs))
    k = np.arange(1, n_pos + 1)
    y = (np.searchsorted(found_random, k) - np.searchsorted(found, k)) / n_docs
    i = np.searchsorted(k / n_pos, recall, side="right")
    return float(y[i - 1])


def metrics_from_order(pairs: list[tuple[int, int]], labels: np.ndarray, priors: list[int]) -> dict:
    order = [r for r, _ in pairs]
    if sorted(order[:2]) != sorted(priors):
        raise RuntimeError(f"the tool's first records {order[:2]} are not the priors {priors}")
    if any(labels[r] != lab for r, lab in pairs):
        raise RuntimeError("the tool's record ids do not match the rows given to it")
    if len(set(order)) != len(order):
        raise RuntimeError("a record was labelled twice")
    seen = np.zeros(len(labels), dtype=bool)
    seen[order] = True
    full = np.array(order + np.flatnonzero(~seen).tolist())
    m = al.screening_metrics(labels[full], len(labels), int(labels.sum()))
    m["wss_95_insights_def"] = insights_def_wss95(labels[full])
    m["order"] = "".join(map(str, labels[full].tolist()))
    if labels[np.flatnonzero(~seen)].any():
        m["incomplete"] = True  # stopped before finding every relevant record
    m["n_labelled"] = len(order)
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--asreview", action="append", default=[],
                    help="path to an `asreview` command (repeat for several versions)")
    ap.add_argument("--seeds", default="0-9")
    ap.add_argument("--sets", default=",".join(k for k, *_ in SETS), help="comma-separated keys: "
                    + ", ".join(k for k, *_ in SETS))
    ap.add_argument("--ours", default="ours-default,ours-ta,ours-v1-like",
                    help="our configurations to run: " + ", ".join(OURS) + " (empty for none)")
    ap.add_argument("--require-abstract", action="store_true")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "nmm_vs_asreview")
    ap.add_argument("--insights", action="store_true",
                    help="also record WSS@95 from `asreview metrics` (needs asreview-insights in that install)")
    ap.add_argument("--table-only", action="store_true", help="print the table from the cached runs")
    args = ap.parse_args(argv)

    seeds = parse_seeds(args.seeds)
    keys = [k for k in args.sets.split(",") if k]
    ours = [c for c in args.ours.split(",") if c]
    suffix = "-req" if args.require_abstract else ""
    work = args.work
    (work / "runs").mkdir(parents=True, exist_ok=True)
    tools = [(exe, asreview_version(exe)) for exe in args.asreview]
    tool_names = [f"asreview-{v}" for _, v in tools]

    results: dict[tuple[str, str], list[dict]] = {}
    for key, file, label, _ in SETS:
        if key not in keys:
            continue
        records, labels = load_set(file, label, args.require_abstract)
        csv_path = work / f"{key}{suffix}.csv"
        if tools and not args.table_only:
            write_asreview_csv(records, labels, csv_path)
        for seed in seeds:
            priors = prior_indices(labels, seed)
            for name in ours:
                fields, kwargs = OURS[name]
                cache = work / "runs" / f"{name}{suffix}_{key}_{seed}.json"
                if not cache.exists() and not args.table_only:
                    texts = [al.record_text(r, fields) for r in records]
                    t0 = time.perf_counter()
                    sim = al.simulate(texts, labels, seed=seed, fields=",".join(fields), **kwargs)
                    if sim.prior_indices != priors:
                        raise RuntimeError(f"prior records differ: {sim.prior_indices} vs {priors}")
                    m = al.screening_metrics(sim.labels_in_order, sim.n_records, sim.n_included)
                    m["wss_95_insights_def"] = insights_def_wss95(np.asarray(sim.labels_in_order))
                    m["order"] = "".join(map(str, np.asarray(sim.labels_in_order, dtype=int).tolist()))
                    m.update(seconds=time.perf_counter() - t0, random_wss_95=sim.random_wss_95, priors=priors)
                    cache.write_text(json.dumps(m))
                if cache.exists():
                    results.setdefault((name, key), []).append(json.loads(cache.read_text()))
            for (exe, version), name in zip(tools, tool_names, strict=True):
                cache = work / "runs" / f"{name}{suffix}_{key}_{seed}.json"
                if not cache.exists() and not args.table_only:
                    project = work / "projects" / f"{name}{suffix}_{key}_{seed}.asreview"
                    project.parent.mkdir(exist_ok=True)
                    secs = run_asreview(exe, int(version.split(".")[0]), csv_path, priors, seed, project,
                                        work / f"{name}.log")
                    m = metrics_from_order(read_labelling_order(project), labels, priors)
                    m.update(seconds=secs, priors=priors)
                    if args.insights:
                        m["insights_wss_95"] = asreview_metrics_wss95(exe, project)
                    cache.write_text(json.dumps(m))
                    project.unlink()
                if cache.exists():
                    results.setdefault((name, key), []).append(json.loads(cache.read_text()))
            done = {n: results.get((n, key), [{}])[-1].get("wss_95") for n in ours + tool_names}
            print(f"{key}{suffix} seed {seed}: " + ", ".join(f"{n} {v:.3f}" for n, v in done.items()
                                                           if v is not None), file=sys.stderr, flush=True)
    print_table(results, keys, ours + tool_names, suffix)
    print_table(results, keys, ours + tool_names, suffix, key="wss_95_insights_def")
    return 0


def _cell(runs: list[dict], key: str = "wss_95") -> str:
    vals = [r[key] for r in runs]
    if not vals:
        return "-"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.2f} ({sd:.2f})"


def print_table(results, keys, names, suffix, key: str = "wss_95") -> None:
    if key != "wss_95":
        # the same runs scored as asreview-insights scores them; only runs that kept their order
        results = {k: [r for r in v if key in r] for k, v in results.items()}
        names = [n for n in names if not n.endswith(" insights")]
        print(f"\nWSS@95 as asreview-insights defines it (insights_def_wss95), mean (sd) over seeds"
              f"{' (records with an abstract)' if suffix else ''}\n")
    else:
        # ASReview's own figure (asreview-insights), where it was recorded, as extra columns
        for name in [n for n in names if n.startswith("asreview")]:
            for k in keys:
                runs = [r for r in results.get((name, k), []) if r.get("insights_wss_95") is not None]
                if runs:
                    results[(f"{name} insights", k)] = [{"wss_95": r["insights_wss_95"]} for r in runs]
            if any((f"{name} insights", k) in results for k in keys):
                names = [*names, f"{name} insights"]
        print(f"\nWSS@95 (Cohen 2006), mean (sd) over seeds{' (records with an abstract)' if suffix else ''}\n")
    print("| set | " + " | ".join(names) + " | random order | seeds |")
    print("|---|" + "---|" * (len(names) + 2))
    means = {n: [] for n in names}
    for set_key, _, _, title in SETS:
        if set_key not in keys:
            continue
        cells = []
        for n in names:
            runs = results.get((n, set_key), [])
            cells.append(_cell(runs, key))
            if runs:
                means[n].append(statistics.mean(r[key] for r in runs))
        rnd = [r["random_wss_95"] for n in names for r in results.get((n, set_key), []) if "random_wss_95" in r]
        nseeds = {len(results.get((n, set_key), [])) for n in names}
        rnd_cell = f"{statistics.mean(rnd):.2f}" if rnd and key == "wss_95" else "-"
        print(f"| {title} | " + " | ".join(cells) + f" | {rnd_cell} | {'/'.join(map(str, sorted(nseeds)))} |")
    print("| mean of the sets | " + " | ".join(f"{statistics.mean(v):.3f}" if v else "-" for v in means.values())
          + " | | |")
    if key == "wss_95":
        checks = [abs(r["insights_wss_95"] - r["wss_95_insights_def"]) for v in results.values() for r in v
                  if r.get("insights_wss_95") is not None and "wss_95_insights_def" in r]
        if checks:
            print(f"\ninsights_def_wss95 against asreview-insights' own output: {len(checks)} runs, "
                  f"largest difference {max(checks):.2e}")


if __name__ == "__main__":
    sys.exit(main())
