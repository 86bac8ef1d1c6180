"""Literature de-duplication on labelled benchmarks, ours side by side with bib-dedupe.

The labelled data are the literature de-duplication benchmark datasets that bib-dedupe's
authors published with their package (CoLRev-Environment/bib-dedupe, commit
13c2bafa04c4d0a8244cb17ed7219816dd5c9807, ``data/<topic>/records_pre_merged.csv`` and
``merged_record_ids.csv``; MIT). Four of the topics (cytology screening, haematology,
respiratory, stroke) are the search results of real systematic reviews whose duplicates were
labelled by hand for the ASySD study (Hair et al. 2023, BMC Biology 21:189,
doi:10.1186/s12915-023-01686-z); ``digital_work`` is an information-systems review, and
``special_cases`` bib-dedupe's own hard cases. The labels are the benchmark authors', not ours.
The files are downloaded on first use from their pinned URLs (sha256 checked) into the cache,
or read from ``--data DIR`` laid out as ``DIR/<topic>/{records_pre_merged,merged_record_ids}.csv``.

bib-dedupe is *not* a dependency of neuromodmap. Install it apart and pass its Python::

    python3 -m venv /tmp/bd/venv && /tmp/bd/venv/bin/pip install "bib-dedupe==0.11.0"
    .venv/bin/python benchmarks/literature_dedup.py --bib-dedupe /tmp/bd/venv/bin/python

Both tools get exactly the same records and are scored by one function,
:func:`neuromodmap.literature.dedup.score_dedup`: pairwise precision, recall and F1 over all
pairs of records placed in one group, and the number of records wrongly merged (put in a group
with at least one record that is not their duplicate). Our review pairs count as *not* merged
(what happens when nobody reviews them); "recall after review" is the recall once a reviewer who
knows the labels has answered our review list. Prints a markdown table per dataset and pooled,
and the times (median of ``--repeats`` runs for ours; one run of bib-dedupe, ``cpu=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from neuromodmap.datasets import RemoteFile, fetch
from neuromodmap.literature.dedup import deduplicate, score_dedup
from neuromodmap.literature.records import Record, normalise_doi

COMMIT = "13c2bafa04c4d0a8244cb17ed7219816dd5c9807"
BASE = f"https://raw.githubusercontent.com/CoLRev-Environment/bib-dedupe/{COMMIT}/data"
SHA256 = {
    "cytology_screening/merged_record_ids.csv": "36acc06f6ecf31cfc4b04390469e2962520df0b43f503bbbeac50dd5e4f1b7e3",
    "cytology_screening/records_pre_merged.csv": "ed5f10365f1f96d60ed0f0888c5cd53f833c3d3c4e71ede233e93632aeb6d44a",
    "digital_work/merged_record_ids.csv": "2b1c389ac50ef2c6841ce3108634ad796b140a62a416b8c211087669eff2911e",
    "digital_work/records_pre_merged.csv": "f959922408982c4b70ec985afcdffa464cbbfffd555da73dbda747b63363744d",
    "haematology/merged_record_ids.csv": "89b44c105524135c7565d27c780ff8cbe022782efbd8fda5e91e6f22d2716548",
    "haematology/records_pre_merged.csv": "c8ec567898eb90ef53bbd9db3924ecbebd4eb6efbe2bca4fa28bda2f893cb8b7",
    "respiratory/merged_record_ids.csv": "e1499be388326dff85becb8e440d60c158dacc81647ae72fb209cb1861f7cdc6",
    "respiratory/records_pre_merged.csv": "979dca5cf19faae228210aff77478ac7da0590e9c3b1d96c34cda140fdc40fb1",
    "special_cases/merged_record_ids.csv": "e622da974cb6b0f202c127a65705e2405d6851dbe82b8d5270c3240290fa9395",
    "special_cases/records_pre_merged.csv": "d311b6285c5db7c513a3287796d1f890b1209dde1ca3812b09ba8bd715e19a27",
    "stroke/merged_record_ids.csv": "f932a243ef78d5909d2a8c23a2db7c440de7b8bf732c80d351366aaec10e0987",
    "stroke/records_pre_merged.csv": "a1ea76cdfe5c0fa98896fec8fa74d116deac3b20e06a67ba7a288b787c7793ed",
}
TOPICS = ["cytology_screening", "digital_work", "haematology", "respiratory", "stroke", "special_cases"]
CITATION = ("Wagner G (2024) BibDedupe, JOSS 9(97):6318, doi:10.21105/joss.06318; Hair K et al. (2023) "
            "ASySD, BMC Biology 21:189, doi:10.1186/s12915-023-01686-z")

BIB_DEDUPE_SCRIPT = r"""
import json, sys, pandas as pd
from bib_dedupe.bib_dedupe import prep, block, match, cluster
import time
df = pd.read_csv(sys.argv[1])
t = time.perf_counter()
records = prep(df, verbosity_level=0, cpu=1)
pairs = block(records, verbosity_level=0, cpu=1)
matched = match(pairs, verbosity_level=0, cpu=1)
groups = cluster(matched, verbosity_level=0)
elapsed = time.perf_counter() - t
json.dump({"groups": [sorted(map(str, g)) for g in groups], "seconds": elapsed}, open(sys.argv[2], "w"))
"""


def topic_files(topic: str, data: Path | None) -> tuple[Path, Path]:
    out = []
    for name in ("records_pre_merged.csv", "merged_record_ids.csv"):
        rel = f"{topic}/{name}"
        if data is not None:
            out.append(data / rel)
            continue
        remote = RemoteFile(relpath=f"literature/dedup_benchmark/{rel}", url=f"{BASE}/{rel}", sha256=SHA256[rel],
                            citation=CITATION, licence="MIT (bib-dedupe repository)")
        out.append(fetch(remote))
    return out[0], out[1]


def _text(value) -> str:
    return "" if pd.isna(value) else str(value).strip()


def to_records(frame: pd.DataFrame, topic: str) -> list[Record]:
    """The benchmark's BibTeX-like rows as neuromodmap records (authors split on ' and ')."""
    records = []
    for position, row in enumerate(frame.to_dict("records"), start=1):
        year = _text(row.get("year"))
        container = _text(row.get("journal")) or _text(row.get("booktitle"))
        records.append(Record(
            record_id=_text(row["ID"]),
            title=_text(row.get("title")),
            abstract=_text(row.get("abstract")),
            authors=[a.strip() for a in _text(row.get("author")).split(" and ") if a.strip()],
            year=int(float(year)) if year[:4].isdigit() else None,
            journal=container,
            doi=normalise_doi(_text(row.get("doi"))) or None,
            volume=_text(row.get("volume")).removesuffix(".0"),
            issue=_text(row.get("number")).removesuffix(".0"),
            pages=_text(row.get("pages")),
            record_type=_text(row.get("ENTRYTYPE")),
            source_file=f"{topic}/records_pre_merged.csv",
            source_position=position,
        ))
    return records


def true_groups(path: Path) -> list[list[str]]:
    frame = pd.read_csv(path)
    return [[p.strip() for p in str(s).split(";") if p.strip()] for s in frame["merged_ids"]]


def run_ours(records: list[Record]) -> tuple[list[list[str]], float, int, list[tuple[str, str]]]:
    t = time.perf_counter()
    result = deduplicate(records)
    elapsed = time.perf_counter() - t
    groups = result.clusters.groupby("cluster_id")["record_id"].agg(list).tolist()
    review = list(zip(result.review["record_id_a"], result.review["record_id_b"], strict=True))
    return groups, elapsed, len(result.review), review


def after_review(groups: list[list[str]], review: list[tuple[str, str]], truth: list[list[str]]) -> list[list[str]]:
    """The groups once a reviewer who knows the labels has answered the review list."""
    true_group = {i: k for k, g in enumerate(truth) for i in g}
    group_of = {i: k for k, g in enumerate(groups) for i in g}
    parent = list(range(len(groups)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in review:
        if a in true_group and true_group.get(b) == true_group[a]:
            parent[find(group_of[a])] = find(group_of[b])
    joined: dict[int, list[str]] = {}
    for k, g in enumerate(groups):
        joined.setdefault(find(k), []).extend(g)
    return list(joined.values())


def run_bib_dedupe(python: str, records_csv: Path) -> tuple[list[list[str]], float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "groups.json"
        script = Path(tmp) / "run.py"
        script.write_text(BIB_DEDUPE_SCRIPT)
        proc = subprocess.run([python, str(script), str(records_csv), str(out)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode:
            raise SystemExit(f"bib-dedupe failed on {records_csv}:\n{proc.stderr[-3000:]}")
        data = json.loads(out.read_text())
    return data["groups"], data["seconds"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="local copy laid out as DIR/<topic>/*.csv")
    parser.add_argument("--bib-dedupe", help="Python of a virtual environment with bib-dedupe installed")
    parser.add_argument("--topics", default=",".join(TOPICS))
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of ours per dataset (median)")
    parser.add_argument("--errors", type=Path, help="write our false and missed pairs to this CSV")
    args = parser.parse_args(argv)

    rows = []
    reviewed_recall: dict[str, int] = {}
    pooled: dict[str, dict[str, int]] = {}
    errors = []
    for topic in args.topics.split(","):
        records_csv, labels_csv = topic_files(topic, args.data)
        frame = pd.read_csv(records_csv, dtype=str)
        records = to_records(frame, topic)
        truth = true_groups(labels_csv)
        tools = {}
        times = []
        for _ in range(max(1, args.repeats)):
            groups, seconds, n_review, review = run_ours(records)
            times.append(seconds)
        tools["neuromodmap"] = (groups, statistics.median(times), n_review)
        reviewed_recall[topic] = score_dedup(truth, after_review(groups, review, truth))["tp"]
        if args.bib_dedupe:
            groups_bd, seconds_bd = run_bib_dedupe(args.bib_dedupe, records_csv)
            tools["bib-dedupe 0.11.0"] = (groups_bd, seconds_bd, None)
        by_id = {r.record_id: r for r in records}
        for tool, (groups, seconds, n_review) in tools.items():
            score = score_dedup(truth, groups, [r.record_id for r in records])
            rows.append({"dataset": topic, "tool": tool, "records": len(records), "true pairs": score["true_pairs"],
                         "precision": score["precision"], "recall": score["recall"], "F1": score["f1"],
                         "false pairs": score["false_pairs"], "missed pairs": score["missed_pairs"],
                         "wrongly merged records": score["wrongly_merged"], "review pairs": n_review,
                         "recall after review": (reviewed_recall[topic] / score["true_pairs"]
                                                 if tool == "neuromodmap" and score["true_pairs"] else None),
                         "seconds": seconds})
            total = pooled.setdefault(tool, {})
            for key in ("tp", "false_pairs", "missed_pairs", "wrongly_merged", "records", "true_pairs"):
                total[key] = total.get(key, 0) + (len(records) if key == "records" else score[key])
            if tool == "neuromodmap" and args.errors:
                for kind in ("false", "missed"):
                    for a, b in sorted(score[f"{kind}_pair_list"]):
                        ra, rb = by_id[a], by_id[b]
                        errors.append({"dataset": topic, "kind": kind, "id_a": a, "id_b": b,
                                       "title_a": ra.title, "title_b": rb.title,
                                       "author_a": "; ".join(ra.authors[:2]), "author_b": "; ".join(rb.authors[:2]),
                                       "year_a": ra.year, "year_b": rb.year, "journal_a": ra.journal,
                                       "journal_b": rb.journal, "vol_a": ra.volume, "vol_b": rb.volume,
                                       "pages_a": ra.pages, "pages_b": rb.pages, "doi_a": ra.doi, "doi_b": rb.doi})
    for tool, total in pooled.items():
        tp, fp, fn = total["tp"], total["false_pairs"], total["missed_pairs"]
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        rows.append({"dataset": "pooled", "tool": tool, "records": total["records"], "true pairs": total["true_pairs"],
                     "precision": precision, "recall": recall,
                     "F1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
                     "false pairs": fp, "missed pairs": fn, "wrongly merged records": total["wrongly_merged"],
                     "review pairs": sum(r["review pairs"] or 0 for r in rows if r["tool"] == tool) or None,
                     "recall after review": (sum(reviewed_recall.values()) / total["true_pairs"]
                                             if tool == "neuromodmap" else None),
                     "seconds": sum(r["seconds"] for r in rows if r["tool"] == tool)})
    table = pd.DataFrame(rows)
    table["wrongly merged %"] = 100 * table["wrongly merged records"] / table["records"]
    print(table.to_markdown(index=False, floatfmt=".4f"))
    if args.errors:
        pd.DataFrame(errors).to_csv(args.errors, index=False)
        print(f"{len(errors)} error pairs written to {args.errors}", file=sys.stderr)


if __name__ == "__main__":
    main()
