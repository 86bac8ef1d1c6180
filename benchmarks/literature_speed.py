"""Literature stage speed: import + de-duplication of 100,000 records, one active-learning step
on 10,000 records, and peak memory.

The 100,000 records are replicated from the real RIS exports in ``$NEUROMODMAP_DATA/literature``
(about 1,100 records in 20 files from 8 databases). Each replicate is a "parallel" copy of the
same searches: every title and author word is mapped to another real word by a hash of
(word, copy), DOIs and PMIDs get copy-specific values. So copies do not duplicate each other,
while inside a copy the cross-database duplicates keep their real spelling differences, and
the duplicate structure of the real exports is repeated 90-odd times.

Run: ``NEUROMODMAP_DATA=../shared/data python benchmarks/literature_speed.py [--records 100000] [--repeats 3]``
Each measurement runs in a fresh process so its peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import resource
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

_WORD = re.compile(r"[A-Za-z]+")
_PMID = re.compile(r"(pubmed(?:\.ncbi\.nlm\.nih\.gov)?/|list_uids=)(\d{1,9})")


def _data_root() -> Path:
    root = Path(os.environ.get("NEUROMODMAP_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not (root / "literature").is_dir():
        sys.exit(f"no literature data under {root}; set NEUROMODMAP_DATA")
    return root / "literature"


def _ris_files(root: Path) -> list[Path]:
    from neuromodmap.literature import detect_format

    files = sorted(p for p in (root / "exports").rglob("*") if p.is_file())
    return [p for p in files if detect_format(p) == "ris"]


def _mapper(vocabulary: list[str], copy: int):
    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        new = vocabulary[zlib.crc32(f"{word.lower()}\x00{copy}".encode()) % len(vocabulary)]
        return new.capitalize() if word[0].isupper() else new

    return swap


def _replicate(files: list[Path], n_records: int, out: Path) -> int:
    """Write copies of the RIS files until ``n_records`` records; returns the count."""
    texts = [f.read_bytes().decode("utf-8-sig") for f in files]
    per_copy = sum(t.count("\nER  -") + t.startswith("ER  -") for t in texts)
    vocabulary = sorted({w.lower() for t in texts for line in t.splitlines()
                         if line[:2] in ("TI", "T1", "AU", "A1") for w in _WORD.findall(line[6:]) if len(w) > 2})
    written, copy = 0, 0
    while written < n_records:
        swap = _mapper(vocabulary, copy)
        for path, text in zip(files, texts, strict=True):
            lines = []
            for line in text.splitlines():
                tag = line[:2]
                if tag in ("TI", "T1", "AU", "A1") and line[2:6] == "  - ":
                    line = line[:6] + _WORD.sub(swap, line[6:])
                elif tag == "DO" and line[2:6] == "  - " and line[6:].strip():
                    line = line.rstrip() + f".c{copy}"
                elif tag in ("UR", "L2", "AN", "C1"):
                    line = _PMID.sub(lambda m, copy=copy: m.group(1) + str((int(m.group(2)) * 131 + copy) % 999_999_937),
                                     line)
                    if tag == "AN" and line[6:].strip().isdigit():
                        line = line[:6] + str((int(line[6:]) * 131 + copy) % 999_999_937)
                lines.append(line)
            (out / f"c{copy:04d}_{path.name}").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written += per_copy
        copy += 1
    return written


def _import_and_dedup(folder: str, workers: int, queue) -> None:
    from neuromodmap.literature import deduplicate, read_many

    files = sorted(Path(folder).iterdir())
    t0 = time.perf_counter()
    records = [r for result in read_many(files, workers=workers) for r in result.records]
    t1 = time.perf_counter()
    result = deduplicate(records)
    t2 = time.perf_counter()
    queue.put({"n": len(records), "import_s": t1 - t0, "dedup_s": t2 - t1, "unique": result.n_unique,
               "review": len(result.review), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def _active_learning_step(n_records: int, repeats: int, queue) -> None:
    import numpy as np

    from neuromodmap.literature import ActiveLearner, read_records

    root = _data_root() / "labelled"
    base = [r for f in sorted(root.glob("*.csv.gz")) for r in read_records(f).records]
    texts = []
    vocabulary = sorted({w.lower() for r in base[:2000] for w in _WORD.findall(r.title) if len(w) > 2})
    copy = 0
    while len(texts) < n_records:
        swap = _mapper(vocabulary, copy) if copy else None
        for r in base:
            text = f"{r.title} {r.abstract}"
            texts.append(_WORD.sub(swap, text) if swap else text)
            if len(texts) == n_records:
                break
        copy += 1
    rng = np.random.default_rng(0)
    labelled = rng.choice(n_records, 200, replace=False)
    labels = np.zeros(200, dtype=int)
    labels[:20] = 1
    out = {"n": n_records}
    t0 = time.perf_counter()
    learner = ActiveLearner("nb").fit_features(texts)
    out["tfidf_s"] = time.perf_counter() - t0
    out["n_features"] = learner.features_.shape[1]
    for model in ("nb", "logistic", "svm"):
        learner.model = model
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            learner.rank(labelled, labels)
            times.append(time.perf_counter() - t)
        out[f"step_{model}_s"] = statistics.median(times)
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(out)


def _in_process(target, *args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--al-records", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = _data_root()
    files = _ris_files(root)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        n = _replicate(files, args.records, Path(tmp))
        print(f"replicated {len(files)} real RIS exports to {n:,} records in {len(os.listdir(tmp)):,} files")
        by_workers = {w: [_in_process(_import_and_dedup, tmp, w) for _ in range(args.repeats)]
                      for w in (1, os.cpu_count() or 1)}
    runs = [r for rs in by_workers.values() for r in rs]
    for workers, rs in by_workers.items():
        imp = statistics.median(r["import_s"] for r in rs)
        ded = statistics.median(r["dedup_s"] for r in rs)
        total = statistics.median(r["import_s"] + r["dedup_s"] for r in rs)
        r0 = rs[0]
        print(f"[1] import ({workers} process{'es' if workers > 1 else ''}) + de-duplication of {r0['n']:,} records: "
              f"{total:.1f} s median of {args.repeats} (import {imp:.1f} s = {r0['n'] / imp:,.0f} records/s, "
              f"dedup {ded:.1f} s); {r0['unique']:,} unique, {r0['review']:,} pairs for review; "
              f"goal < 30 s -> {total / 30:.2f} of budget")
    al = _in_process(_active_learning_step, args.al_records, max(args.repeats, 5))
    print(f"[2] one active-learning step on {al['n']:,} records ({al['n_features']:,} TF-IDF features, built once "
          f"in {al['tfidf_s']:.2f} s): naive Bayes {al['step_nb_s'] * 1000:.0f} ms, logistic "
          f"{al['step_logistic_s'] * 1000:.0f} ms, SVM {al['step_svm_s'] * 1000:.0f} ms (median); goal < 1 s -> "
          f"{al['step_nb_s']:.3f} of budget (NB)")
    print(f"[3] peak memory (ru_maxrss): import + dedup {max(r['rss_mb'] for r in runs):,.0f} MB; "
          f"active learning {al['rss_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
