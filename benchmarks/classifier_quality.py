"""Quality and speed of the trial classifier, measured on hand labels.

    NEUROMODMAP_DATA=/work/shared/data .venv/bin/python benchmarks/classifier_quality.py
    NEUROMODMAP_DATA=/work/shared/data .venv/bin/python benchmarks/classifier_quality.py --throughput

Prints precision, recall and F1 per label (neuromod, each modality, each indication class,
chronic pain, invasive), accuracy for ``indication`` and for the exact ``modalities`` set
(plus exact pain subtypes and targets, for information) on the dev split, the held-out test
split and all records. ``--throughput`` times classification alone (records are imported
first, outside the timer) over the whole 101k corpus and prints records per second of CPU
time on one core (median over ``--repeats``) and peak RSS. ``--errors dev`` lists the dev
records the classifier gets wrong (never run it on ``test`` while changing rules).

How the labelled sample was drawn (``--draw-sample`` re-draws it; it takes minutes)
-----------------------------------------------------------------------------------
The sample was drawn by :func:`draw_sample` *before* any classifier rule was written, from
``ctgov_text_2018.jsonl.gz`` (101,016 records), with ``random.Random(20261122)``:

* ``neuromod_term``: 6 records from each of 14 families found by broad regexes over the
  whole text (TMS, tDCS, tACS/CES/tRNS, DBS, MCS, SCS, DRG, PNS/ONS/SPG, VNS/tVNS, TENS,
  ECT, FUS, sacral/tibial, electroacupuncture/trigeminal/MST): 84 records (the DRG family
  had 3 in the corpus);
* ``trap``: 7 records from each of 8 trap regexes (dried blood spot, SCS beside
  corticosteroid, verbal numeric scale, TENS beside labour/delivery, NMES/FES, DBS beside
  Parkinson, TMS beside MEP/excitability/paired-pulse, drug words beside "stimulation");
  the regexes are broad, so some of these records turned out to be ordinary negatives;
* ``random``: 70 records uniformly from the rest.

Then 24 more were added, because depression was rare: 16 records with "depress" in the
title or summary and a stimulation term in the text, and 8 with "depress" in the title and
none (``random.Random(20261124)``). Total 227 records. A third of each draw is the held-out
``test`` split (``random.Random(20261123)`` and ``random.Random(20261125)``), 75 records.

How the labels were made
------------------------
Every record was read (title, summary, description) and labelled by hand, as a domain
reader would, before the classifier existed: ``neuromod`` (the trial tests a
neuromodulation intervention as an arm), the modality codes, indication, pain subtype,
chronic pain, targets named in the text, invasive. The decisions on the traps are in
``docs/trials_classify.md``. ``tests/data/trial_labels.csv`` holds only the NCT ids, the
labels and a short note in our own words. The test split was not looked at while the rules
were tuned; its numbers are reported as they came out.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import re
import resource
import statistics
import sys
import time
from pathlib import Path

from neuromodmap import vocabulary
from neuromodmap.config import data_dir
from neuromodmap.trials._readers.v2 import study_to_trial
from neuromodmap.trials.classify import classify
from neuromodmap.trials.models import Trial

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "tests" / "data" / "trial_labels.csv"
SEED = 20261122


def corpus_path() -> Path:
    return data_dir() / "trials" / "ctgov_text_2018.jsonl.gz"


def read_corpus(wanted: set[str] | None = None):
    """Yield (registry_id, Trial) from the corpus, optionally only ``wanted`` ids."""
    with gzip.open(corpus_path(), "rt", encoding="utf-8") as f:
        for line in f:
            i = line.find('"nctId"')
            rid = line[i:i + 40].split('"')[3] if i >= 0 else None
            if wanted is None or rid in wanted:
                yield rid, study_to_trial(json.loads(line))


# --------------------------------------------------------------------------- metrics
def prf(gold: list[bool], pred: list[bool]) -> tuple[float, float, float, int]:
    tp = sum(g and p for g, p in zip(gold, pred, strict=True))
    p = tp / sum(pred) if sum(pred) else float("nan")
    r = tp / sum(gold) if sum(gold) else float("nan")
    f = 2 * p * r / (p + r) if sum(pred) and sum(gold) and (p + r) else float("nan")
    return p, r, f, sum(gold)


def codes(value: str) -> set[str]:
    return set(filter(None, value.split(";")))


def evaluate(rows: list[dict], preds: dict) -> list[tuple[str, str]]:
    """(metric name, formatted value) lines for one split."""
    out = []

    def line(name, gold, pred):
        p, r, f, n = prf(gold, pred)
        out.append((name, f"P={p:.3f} R={r:.3f} F1={f:.3f} (n+={n})"))

    line("neuromod", [r["neuromod"] == "true" for r in rows], [preds[r["registry_id"]].neuromod for r in rows])
    for code in vocabulary.MODALITIES:
        gold = [code in codes(r["modalities"]) for r in rows]
        pred = [code in preds[r["registry_id"]].modalities for r in rows]
        if any(gold) or any(pred):
            line(f"modality {code}", gold, pred)
    for ind in vocabulary.INDICATIONS:
        gold = [r["indication"] == ind for r in rows]
        pred = [preds[r["registry_id"]].indication == ind for r in rows]
        if any(gold) or any(pred):
            line(f"indication {ind}", gold, pred)
    line("chronic_pain (true)", [r["chronic_pain"] == "true" for r in rows],
         [preds[r["registry_id"]].chronic_pain is True for r in rows])
    line("invasive (true)", [r["invasive"] == "true" for r in rows],
         [preds[r["registry_id"]].invasive is True for r in rows])

    def acc(name, ok):
        out.append((name, f"{sum(ok) / len(ok):.3f} ({sum(ok)}/{len(ok)})"))

    acc("accuracy indication", [preds[r["registry_id"]].indication == r["indication"] for r in rows])
    acc("accuracy exact modalities", [set(preds[r["registry_id"]].modalities) == codes(r["modalities"])
                                      for r in rows])
    acc("accuracy exact pain_subtype", [set(preds[r["registry_id"]].pain_subtype) == codes(r["pain_subtype"])
                                        for r in rows])
    acc("accuracy exact targets (neuromod)", [set(preds[r["registry_id"]].targets) == codes(r["targets"])
                                              for r in rows if r["neuromod"] == "true"])
    return out


def quality(errors: str | None) -> None:
    with LABELS.open(newline="") as f:
        labels = list(csv.DictReader(f))
    trials = dict(read_corpus({r["registry_id"] for r in labels}))
    preds = {rid: classify(t) for rid, t in trials.items()}
    print(f"hand labels: {LABELS.relative_to(ROOT)} ({len(labels)} records); corpus: {corpus_path()}")
    for split in ("dev", "test", "all"):
        rows = [r for r in labels if split == "all" or r["split"] == split]
        print(f"\n== {split} ({len(rows)} records)")
        for name, value in evaluate(rows, preds):
            print(f"  {name:36s} {value}")
    if errors:
        print(f"\n== misclassified {errors} records")
        for r in labels:
            if r["split"] != errors:
                continue
            c = preds[r["registry_id"]]
            if (c.neuromod != (r["neuromod"] == "true") or c.indication != r["indication"]
                    or set(c.modalities) != codes(r["modalities"])):
                print(f"  {r['registry_id']} gold: {r['neuromod']} {r['modalities'] or '-'} {r['indication']}"
                      f" | predicted: {str(c.neuromod).lower()} {';'.join(c.modalities) or '-'} {c.indication}"
                      f" | {r['note']}")


# --------------------------------------------------------------------------- speed
def throughput(limit: int | None, repeats: int) -> None:
    trials: list[Trial] = []
    t0 = time.perf_counter()
    for _, trial in read_corpus():
        trials.append(trial)
        if limit and len(trials) >= limit:
            break
    print(f"imported {len(trials)} records in {time.perf_counter() - t0:.1f} s (not timed below)")
    rates, walls = [], []
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        n_neuromod = sum(classify(t).neuromod for t in trials)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        rates.append(len(trials) / cpu)
        walls.append(len(trials) / wall)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"classify only, one core: median {statistics.median(rates):,.0f} records/s of CPU time "
          f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}); wall {statistics.median(walls):,.0f} records/s "
          f"(load average {os.getloadavg()[0]:.1f})")
    print(f"neuromod trials: {n_neuromod}; peak RSS {peak:,.0f} MiB (all {len(trials)} Trial objects held in memory)")


# --------------------------------------------------------------------------- the sample
FAMILIES = {
    "tms": r"transcranial magnetic|\brTMS\b|theta[- ]burst",
    "tdcs": r"direct current stimulation|\btDCS\b",
    "tacs_ces": r"alternating current stimulation|\btACS\b|cranial electrotherapy|random noise stimulation",
    "dbs": r"deep brain stimulat",
    "mcs": r"motor cortex stimulation",
    "scs": r"spinal cord stimulat",
    "drg": r"dorsal root ganglion stimulat",
    "pns": r"peripheral nerve stimulat|occipital nerve stimulat|sphenopalatine ganglion stimulat|peripheral nerve field",
    "vns": r"vag(?:us|al) nerve stimulat|\bt?a?VNS\b",
    "tens": r"transcutaneous electrical nerve|\bTENS\b",
    "ect": r"electroconvulsive|\bECT\b",
    "fus": r"focused ultrasound|\bMRgFUS\b",
    "sacral_tibial": r"sacral (?:nerve )?(?:neuro)?(?:modulation|stimulation)|tibial nerve stimulat",
    "other": r"electroacupuncture|trigeminal nerve stimulation|magnetic seizure",
}
TRAPS = {
    "dried_blood_spot": r"dried blood spot",
    "systemic_corticosteroid": r"\bSCS\b.{0,300}corticosteroid|corticosteroid.{0,300}\bSCS\b",
    "verbal_numeric": r"verbal numeric",
    "labour_tens": r"(?:TENS|transcutaneous electrical nerve).{0,400}(?:labou?r|childbirth|delivery)"
                   r"|(?:labou?r|childbirth).{0,400}(?:TENS|transcutaneous electrical nerve)",
    "nmes_fes": r"neuromuscular electrical stimulation|\bNMES\b|functional electrical stimulation",
    "parkinson_dbs": r"(?:deep brain stimulat|\bDBS\b).{0,600}parkinson|parkinson.{0,600}(?:deep brain stimulat|\bDBS\b)",
    "tms_measure": r"(?:motor evoked potential|cortical excitability|paired[- ]pulse|\bMEPs?\b).{0,400}"
                   r"(?:\bTMS\b|transcranial magnetic)|(?:\bTMS\b|transcranial magnetic).{0,400}"
                   r"(?:motor evoked potential|cortical excitability|paired[- ]pulse|\bMEPs?\b)",
    "drug_with_stim": r"(?:\bmg\b|tablet|capsule|placebo pill|infusion).{0,1500}(?:stimulation)"
                      r"|(?:stimulation).{0,1500}(?:\bmg\b|tablet|capsule|infusion)",
}
DEPRESSION_STIM = (r"transcranial magnetic|\brTMS\b|electroconvulsive|\bECT\b|direct current stimulation|\btDCS\b"
                   r"|deep brain stimulat|vag(?:us|al) nerve stimulat|magnetic seizure|cranial electrotherapy")


def draw_sample(out: Path) -> None:
    """Re-draw the labelled sample (ids, stratum, split) exactly as it was drawn."""
    recs = [(rid, t.title, t.brief_summary, t.detailed_description) for rid, t in read_corpus()]
    text = {r[0]: " ".join(r[1:]) for r in recs}
    ids = [r[0] for r in recs]
    rng = random.Random(SEED)
    chosen: dict[str, str] = {}

    def take(stratum, name, pattern, n):
        rx = re.compile(pattern, re.I | re.S)
        hits = [i for i in ids if rx.search(text[i]) and i not in chosen]
        rng.shuffle(hits)
        for i in hits[:n]:
            chosen[i] = f"{stratum}:{name}"

    for name, pattern in FAMILIES.items():
        take("neuromod_term", name, pattern, 6)
    for name, pattern in TRAPS.items():
        take("trap", name, pattern, 7)
    for i in rng.sample([i for i in ids if i not in chosen], 70):
        chosen[i] = "random:corpus"
    first = sorted(chosen)
    test = set(random.Random(SEED + 1).sample(first, len(first) // 3))
    # the depression supplement
    rng2 = random.Random(SEED + 2)
    dep, stim = re.compile(r"depress", re.I), re.compile(DEPRESSION_STIM, re.I)
    a = sorted(r[0] for r in recs if r[0] not in chosen and dep.search(" ".join(r[1:3])) and stim.search(text[r[0]]))
    b = sorted(r[0] for r in recs if r[0] not in chosen and dep.search(r[1]) and not stim.search(text[r[0]]))
    extra = {i: "supplement:depression_stim" for i in rng2.sample(a, 16)}
    extra |= {i: "supplement:depression_other" for i in rng2.sample(b, 8)}
    test |= set(random.Random(SEED + 3).sample(sorted(extra), len(extra) // 3))
    chosen |= extra
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["registry_id", "stratum", "split"])
        for i in sorted(chosen):
            w.writerow([i, chosen[i], "test" if i in test else "dev"])
    print(f"wrote {len(chosen)} ids to {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--throughput", action="store_true", help="also time classification over the corpus")
    parser.add_argument("--limit", type=int, default=None, help="classify only the first N corpus records")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--errors", choices=["dev"], help="list the misclassified dev records")
    parser.add_argument("--draw-sample", type=Path, metavar="OUT.csv", help="re-draw the labelled sample")
    args = parser.parse_args(argv)
    if not corpus_path().is_file():
        print(f"corpus not found: {corpus_path()} (set NEUROMODMAP_DATA)", file=sys.stderr)
        return 2
    if args.draw_sample:
        draw_sample(args.draw_sample)
        return 0
    quality(args.errors)
    if args.throughput:
        throughput(args.limit, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
