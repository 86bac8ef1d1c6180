"""Import → classify → store in one streaming pass (what the CLI and the demo run)."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from neuromodmap._utils import atomic_write, progress_bar
from neuromodmap.trials.classify import CLASSIFIER_VERSION, classification_row, classify
from neuromodmap.trials.io import ImportedRecord, read_trials
from neuromodmap.trials.models import ImportProblem

__all__ = ["classify_to_csv", "import_and_classify", "CSV_COLUMNS"]

CSV_COLUMNS = [
    "registry_id", "neuromod", "modalities", "modality_group", "indication", "pain_subtype",
    "depression_subtype", "chronic_pain", "targets", "invasive", "evidence",
]


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _records(inputs: list[Path], problems: list[ImportProblem], progress) -> Iterator[ImportedRecord]:
    task = progress.add_task("reading", total=None)
    for path in inputs:
        progress.update(task, description=f"{Path(path).name}")
        for record in read_trials(path, problems=problems):
            progress.advance(task)
            yield record


def classify_to_csv(
    inputs: list[Path],
    output: Path,
    *,
    db: Path | None = None,
    problems: list[ImportProblem] | None = None,
    batch_size: int = 5000,
) -> dict:
    """Classify trials from files (or, with no inputs, from the store ``db``) into ``output``.

    With both inputs and ``db``, the records and their labels are also upserted into the store.
    The CSV is written atomically: an interrupted run leaves no partial file.
    """
    problems = problems if problems is not None else []
    start = time.perf_counter()
    n_trials = n_neuromod = 0
    store = None
    if db is not None:
        from neuromodmap.trials.store import TrialStore

        store = TrialStore(db)
    try:
        with progress_bar() as progress, atomic_write(output, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            if inputs:
                for batch in _batched(_records(inputs, problems, progress), batch_size):
                    labels = [classify(r.trial) for r in batch]
                    writer.writerows(classification_row(c) for c in labels)
                    n_trials += len(labels)
                    n_neuromod += sum(c.neuromod for c in labels)
                    if store is not None:
                        by_source: dict[str, list[ImportedRecord]] = {}
                        for r in batch:
                            by_source.setdefault(r.source, []).append(r)
                        for source, recs in by_source.items():
                            store.upsert(recs, source=source, as_of=None)
                        store.write_labels(labels, classifier_version=CLASSIFIER_VERSION)
            else:
                task = progress.add_task("classifying store", total=None)
                for batch in _batched(store.iter_trials(), batch_size):
                    labels = [classify(t) for t in batch]
                    writer.writerows(classification_row(c) for c in labels)
                    store.write_labels(labels, classifier_version=CLASSIFIER_VERSION)
                    n_trials += len(labels)
                    n_neuromod += sum(c.neuromod for c in labels)
                    progress.advance(task, len(labels))
    finally:
        if store is not None:
            store.close()
    return {"n_trials": n_trials, "n_neuromod": n_neuromod, "seconds": time.perf_counter() - start}


def import_and_classify(store, inputs: list[Path], *, as_of=None, problems: list[ImportProblem] | None = None) -> dict:
    """Import ``inputs`` into ``store`` and classify every imported trial (labels stored too)."""
    problems = problems if problems is not None else []
    start = time.perf_counter()
    report = store.import_files(inputs, as_of=as_of, problems=problems)
    t_import = time.perf_counter() - start
    n = n_neuromod = 0
    with progress_bar() as progress:
        task = progress.add_task("classifying", total=report.n_upserted or None)
        for batch in _batched(store.iter_trials(), 5000):
            labels = [classify(t) for t in batch]
            store.write_labels(labels, classifier_version=CLASSIFIER_VERSION)
            n += len(labels)
            n_neuromod += sum(c.neuromod for c in labels)
            progress.advance(task, len(labels))
    return {"n_imported": report.n_upserted, "n_classified": n, "n_neuromod": n_neuromod,
            "import_seconds": t_import, "seconds": time.perf_counter() - start, "problems": problems}
