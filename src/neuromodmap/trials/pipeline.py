"""Read → classify → store (what the CLI and the demo run): one route for every format.

Each input file's format is detected once (:func:`_detect`); its reader (:class:`TrialReader`,
one per format under :mod:`neuromodmap.trials._readers`) yields normalised records; each record
is classified as it is read; the classification becomes a CSV row (``trials classify -o``) and a
label row, the record store columns. No file is read twice.

Where a file can be split (JSON lines by blocks of lines, ZIP and tar archives by blocks of
members: :data:`~neuromodmap.trials.io.SPLITTABLE`) and there is a second core, two processes
share it (the ``fork`` start method on Linux, so library callers need no ``if __name__ ==
"__main__"`` guard): a worker reads the file once and, block by block, either parses,
classifies and prepares the block itself (store columns, CSV rows, label rows) or hands its
raw lines or members to this process whenever fewer than two blocks wait here. This process
parses what it is handed, and writes every block, in file order, to the store and the CSV, so
each record is parsed once and only plain lists and bytes cross between the processes.
Labels are bulk-loaded at the end. Every other format (CSV and XML exports, single JSON or
XML files, ctrdata databases), small inputs, a single core or ``NEUROMODMAP_SERIAL=1``: one
process reads, classifies and stores in one pass, with the same output.
"""

from __future__ import annotations

import contextlib
import csv
import multiprocessing as mp
import os
import queue
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from neuromodmap._utils import atomic_write, json_text, progress_bar, relaxed_gc
from neuromodmap.trials.classify import CLASSIFIER_VERSION, classification_row, classify
from neuromodmap.trials.io import (
    SPLITTABLE,
    InputFile,
    TrialFileError,
    TrialReader,
    detect_format,
    expand_inputs,
)
from neuromodmap.trials.models import Classification, ImportProblem

__all__ = ["classify_to_csv", "import_and_classify", "CSV_COLUMNS", "label_record"]

CSV_COLUMNS = [
    "registry_id", "neuromod", "modalities", "modality_group", "indication", "pain_subtype",
    "depression_subtype", "chronic_pain", "targets", "invasive", "evidence",
]
# below this size a second process costs more than it saves
_PARALLEL_MIN_BYTES = 2_000_000
_JSONL = ("jsonl", "jsonl_gz")


def label_record(c: Classification, seq: int = 0) -> dict:
    """One ``trial_labels`` row as plain JSON-able values (``seq`` orders duplicates)."""
    return {
        "seq": seq, "registry_id": c.registry_id, "neuromod": c.neuromod, "modalities": c.modalities,
        "modality_group": c.modality_group, "indication": c.indication, "pain_subtype": c.pain_subtype,
        "depression_subtype": c.depression_subtype, "chronic_pain": c.chronic_pain, "targets": c.targets,
        "invasive": c.invasive, "evidence": [e.model_dump() for e in c.evidence],
    }


def _fork_context():
    """The ``fork`` multiprocessing context, or None where it is missing or switched off."""
    if os.environ.get("NEUROMODMAP_SERIAL") or sys.platform != "linux" or (os.cpu_count() or 1) < 2:
        return None
    try:
        return mp.get_context("fork")
    except ValueError:
        return None


def _start(ctx, target, args, kwargs=None):
    proc = ctx.Process(target=target, args=args, kwargs=kwargs or {}, daemon=True)
    with warnings.catch_warnings():  # the child runs pure Python, never the parent's DuckDB threads
        warnings.simplefilter("ignore", DeprecationWarning)
        proc.start()
    return proc


def _stop(proc) -> None:
    if proc.is_alive():
        proc.terminate()
    proc.join(5)


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _detect(files: list[InputFile]) -> tuple[list[InputFile], list[ImportProblem]]:
    """Each file with its format, detected once (kept where known); and one problem per file
    that cannot be read (its format left None)."""
    out: list[InputFile] = []
    unreadable: list[ImportProblem] = []
    for f in files:
        if f.format is None:
            try:
                f = InputFile(f.path, f.folder, f.size, detect_format(f.path))
            except TrialFileError as err:
                unreadable.append(ImportProblem(source=f.path, location="file", reason=str(err)))
        out.append(f)
    return out, unreadable


def _seq(file_index: int, position: int) -> int:
    """A record's order across files and processes (a later duplicate wins)."""
    return (file_index << 40) | position


class _WorkerFailed(Exception):
    pass


# ---------------------------------------------------------------------- the shared route
class _Labeller:
    """Classifies blocks of records: label rows (JSON lines, when a store is written) as it
    goes; returns the block's store columns and CSV rows (each only when wanted)."""

    def __init__(self, labels, file_index: int, *, cols: bool, rows: bool):
        self.labels, self.i, self.want_cols, self.want_rows = labels, file_index, cols, rows
        self.dumps = json_text

    def block(self, records: list[tuple[int, object]], source: str, as_of) -> tuple[dict | None, list | None]:
        """Classify ``(position, record)`` pairs; return (store columns, CSV rows)."""
        from neuromodmap.trials.store import record_columns

        rows: list | None = [] if self.want_rows else None
        labels, dumps = self.labels, self.dumps
        for position, rec in records:
            c = classify(rec.trial)
            if labels is not None:
                labels.write(dumps(label_record(c, _seq(self.i, position))))
                labels.write("\n")
            if rows is not None:
                rows.append(list(classification_row(c).values()))
        cols = record_columns([rec for _, rec in records], source, as_of) if self.want_cols else None
        return cols, rows


class _Sender:
    """Sends messages over a pipe from a thread, so the worker never waits for the reader.

    A pipe, not a ``multiprocessing.Queue``: once the parent has closed its copy of the
    sending end, a worker that dies (even midway through a message) shows as end-of-file to
    the parent instead of a read that never ends.
    """

    def __init__(self, conn):
        self.conn = conn
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        while (msg := self.queue.get()) is not None:
            self.conn.send(msg)

    def put(self, msg) -> None:
        self.queue.put(msg)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self.conn.close()


class _Splitter:
    """The worker's side of one splittable file: it reads every line or member and, block by
    block, either prepares the block itself or hands its units, as read, to this process.

    The importer gets a block whenever fewer than ``ahead`` of its blocks are waiting, so it
    never idles and never falls far behind; the rest the worker parses, classifies and turns
    into store columns and CSV rows. Messages go out in file order.
    """

    def __init__(self, out: _Sender, file_index: int, source: str, as_of, labeller: _Labeller,
                 problems: list[ImportProblem], pending, ahead: int = 2):
        self.out, self.i, self.source, self.as_of = out, file_index, source, as_of
        self.labeller, self.problems, self.pending, self.ahead = labeller, problems, pending, ahead
        self.block: int | None = None
        self.mine = True
        self.records: list[tuple[int, object]] = []
        self.units: list[tuple[int, object]] = []
        self.sent = 0  # problems already handed on
        self.reader: TrialReader | None = None

    def take(self, block: int) -> bool:
        self.finish()
        with self.pending.get_lock():
            give = self.pending.value < self.ahead
            if give:
                self.pending.value += 1
        self.block, self.mine = block, not give
        return self.mine

    def foreign(self, number: int, unit) -> None:
        self.units.append((number, unit))

    def finish(self) -> None:
        if self.block is None:
            return
        problems = [p.model_dump() for p in self.problems[self.sent:]]
        self.sent = len(self.problems)
        at = self.reader.position  # bytes read, for the importer's progress bar
        if self.mine:
            cols, rows = self.labeller.block(self.records, self.source, self.as_of)
            self.out.put(("cols", self.i, at, cols, rows, problems))
        else:
            self.out.put(("units", self.i, at, self.reader.text_encoding, self.units, problems))
        self.block, self.records, self.units = None, [], []


def _split_worker(paths: list[str], labels_path: str | None, as_of, pending, conn, *,
                  formats: list[str] | None = None, cols: bool = True, rows: bool = False) -> None:
    """Read every file; prepare some blocks, hand the others on (see :class:`_Splitter`);
    then ("done", file, problems, time) per file. ``cols``/``rows``: prepare store columns /
    CSV rows; ``labels_path``: write label rows there (None: no store)."""
    out = _Sender(conn)
    try:
        with contextlib.ExitStack() as stack:
            labels = stack.enter_context(open(labels_path, "w", encoding="utf-8")) if labels_path else None
            for i, path in enumerate(paths):
                problems: list[ImportProblem] = []
                split = _Splitter(out, i, path, as_of, _Labeller(labels, i, cols=cols, rows=rows), problems, pending)
                reader = TrialReader(path, problems=problems, shard=split.take, on_foreign=split.foreign,
                                     format=formats[i] if formats else None)
                split.reader = reader
                for rec in reader:
                    split.records.append((reader.line, rec))
                split.finish()
                out.put(("done", i, [p.model_dump() for p in problems[split.sent:]], time.perf_counter()))
    except BaseException:  # noqa: BLE001 - reported to the parent, which falls back to serial
        out.put(("error", traceback.format_exc()))
    finally:
        out.close()


def _line_of(problem: ImportProblem) -> int:
    digits = "".join(ch if ch.isdigit() else " " for ch in problem.location).split()
    return int(digits[0]) if digits else 1 << 62


def _receive(conn, proc) -> tuple:
    try:
        msg = conn.recv()
    except Exception as err:  # noqa: BLE001 - end of file, or a message cut short
        proc.join(5)
        raise _WorkerFailed(f"the worker process stopped (exit code {proc.exitcode}; {type(err).__name__})") from None
    if msg[0] == "error":
        raise _WorkerFailed(msg[1])
    return msg


def _shared(ctx, files: list[InputFile], *, store, writer, as_of, tmp: Path | None,
            problems: list[ImportProblem], timings: dict | None = None) -> tuple[int, int, list[Path]]:
    """Read, classify and (with ``store``) import splittable files with both processes sharing
    the work; with ``writer``, write the CSV rows in file order.

    The worker reads the files; this process parses the blocks it is handed, writes every
    block in file order and so parses each record exactly once. Returns (rows written to the
    store, CSV rows, label files). Raises :class:`_WorkerFailed` if the worker dies (the caller
    runs again serially: the upsert makes that safe).
    """
    paths = [f.path for f in files]
    formats = [f.format for f in files]
    pending = ctx.Value("i", 0)
    conn, sending = ctx.Pipe(duplex=False)
    label_files = [tmp / "labels.jsonl", tmp / "labels-main.jsonl"] if store is not None else []
    proc = _start(ctx, _split_worker, (paths, str(label_files[0]) if label_files else None, as_of, pending, sending),
                  {"formats": formats, "cols": store is not None, "rows": writer is not None})
    sending.close()  # the worker holds the only sending end: its death reads as end-of-file
    written = n_rows = 0
    try:
        with contextlib.ExitStack() as stack:
            labels = stack.enter_context(open(label_files[1], "w", encoding="utf-8")) if label_files else None
            bar = stack.enter_context(progress_bar(by_bytes=True))
            for i, (path, fmt) in enumerate(zip(map(Path, paths), formats, strict=True)):
                file_problems: list[ImportProblem] = []  # the store's (records it refuses)
                ordered: list[ImportProblem] = []  # the reading's, in file order
                own: list[ImportProblem] = []
                parser = TrialReader(path, problems=own, format=fmt)
                labeller = _Labeller(labels, i, cols=store is not None, rows=writer is not None)
                importer = store._block_import(path, fmt, as_of=as_of, problems=file_problems) if store is not None else None
                task = bar.add_task(path.name, total=path.stat().st_size, records=0)
                n = 0
                try:
                    while True:
                        msg = _receive(conn, proc)
                        if msg[1] != i:
                            raise _WorkerFailed(f"the worker sent file {msg[1]} while file {i} is read")
                        if msg[0] == "done":
                            ordered.extend(ImportProblem(**p) for p in msg[2])
                            if timings is not None:
                                timings["worker_done"] = msg[3]
                            break
                        if msg[0] == "cols":
                            _, _, at, cols, rows, probs = msg
                        else:
                            _, _, at, enc, units, probs = msg
                            records = [(number, rec) for number, unit in units
                                       for rec in parser.parse_unit(number, unit, enc)]
                            cols, rows = labeller.block(records, str(path), as_of)
                            with pending.get_lock():
                                pending.value -= 1
                            ordered.extend(own)
                            own.clear()
                        ordered.extend(ImportProblem(**p) for p in probs)
                        if importer is not None:
                            importer.add(cols)
                        if rows:
                            writer.writerows(rows)
                            n_rows += len(rows)
                        n += len(rows) if rows is not None else len(cols["registry_id"])
                        bar.update(task, completed=at, records=n)
                    if fmt in _JSONL:  # in line order, as a serial read reports them
                        ordered.sort(key=_line_of)
                    file_problems[:] = ordered + file_problems
                    bar.update(task, completed=path.stat().st_size)
                except BaseException:
                    if importer is not None:
                        importer.abort()
                    raise
                if importer is not None:
                    written += importer.finish()
                problems.extend(file_problems)
                if timings is not None:  # seconds since the start of the pipeline (last file's)
                    timings["store_done"] = time.perf_counter()
        proc.join(10)
    finally:
        _stop(proc)
        conn.close()
    if proc.exitcode != 0:
        raise _WorkerFailed(f"the worker process stopped (exit code {proc.exitcode})")
    return written, n_rows, label_files


def _can_share(ctx, files: list[InputFile]) -> bool:
    """Both processes pay: every file splittable (and readable), enough bytes in all."""
    return (ctx is not None and bool(files) and all(f.format in SPLITTABLE for f in files)
            and sum(f.size for f in files) >= _PARALLEL_MIN_BYTES)


# ---------------------------------------------------------------------- one process
def _csv_serial(files: list[InputFile], writer, problems: list[ImportProblem], progress) -> tuple[int, int]:
    n = n_neuromod = 0
    task = progress.add_task("classifying", total=None)
    for f in files:
        progress.update(task, description=Path(f.path).name)
        if f.format is None:  # reported by _detect
            continue
        for rec in TrialReader(f.path, problems=problems, format=f.format):
            c = classify(rec.trial)
            writer.writerow(classification_row(c).values())
            n += 1
            n_neuromod += bool(c.neuromod)
            progress.advance(task)
    return n, n_neuromod


def _import_serial(store, files: list[InputFile], *, as_of, problems: list[ImportProblem], writer,
                   labels_path: Path | None) -> tuple[int, int, list[str]]:
    """Import in this process, classifying each record as it is read (label rows to
    ``labels_path``, CSV rows to ``writer``). Returns (rows written, CSV rows, import runs)."""
    n_rows = 0
    with contextlib.ExitStack() as stack:
        labels = stack.enter_context(open(labels_path, "w", encoding="utf-8")) if labels_path else None
        dumps = json_text
        seq = 0

        def on_record(rec) -> None:
            nonlocal seq, n_rows
            c = classify(rec.trial)
            if labels is not None:
                labels.write(dumps(label_record(c, seq)))
                labels.write("\n")
            seq += 1
            if writer is not None:
                writer.writerow(classification_row(c).values())
                n_rows += 1

        report = store.import_files(files, as_of=as_of, problems=problems, on_record=on_record)
    return report.n_upserted, n_rows, report.runs


# ---------------------------------------------------------------------- entry points
@relaxed_gc()
def import_and_classify(
    store,
    inputs: list[Path],
    *,
    as_of=None,
    problems: list[ImportProblem] | None = None,
    csv_output: Path | None = None,
) -> dict:
    """Import ``inputs`` into ``store`` and classify every stored trial (labels stored too).

    Parameters
    ----------
    store : TrialStore
        Open for writing.
    inputs : list of path
        Trial files of any supported format, or folders of them.
    as_of : date, optional
        The date the files' data refer to.
    problems : list, optional
        Skipped records are appended here.
    csv_output : path, optional
        Also write the ``trials classify`` CSV (one row per record read), atomically.

    Returns
    -------
    dict
        ``n_imported`` (rows new or changed), ``n_classified`` (trials labelled),
        ``n_neuromod``, ``import_seconds``, ``seconds``, ``problems``.
    """
    problems = problems if problems is not None else []
    start = time.perf_counter()
    # the files named, a folder standing for the files under it (its InputFile keeps the folder,
    # so that a folder is still one import run); each format detected once, here
    files, _ = _detect(expand_inputs(inputs))  # the store reports the unreadable ones
    ctx = _fork_context()
    parallel = _can_share(ctx, files)
    # ICTRP rows never replace a stored CT.gov row, so their labels must come from the store
    ictrp = any(f.format is not None and f.format.startswith("ictrp") for f in files)
    timings: dict[str, float] = {}
    n_loaded = n_imported = 0
    runs: list[str] = []
    parent = csv_output.parent if csv_output is not None else (
        store.db_path.parent if store.db_path is not None else None)
    tmp = Path(tempfile.mkdtemp(prefix=".neuromodmap-", dir=parent))
    try:
        with contextlib.ExitStack() as stack:
            writer = fh = None
            if csv_output is not None:
                fh = stack.enter_context(atomic_write(csv_output, "w", newline="", encoding="utf-8"))
                writer = csv.writer(fh)
                writer.writerow(CSV_COLUMNS)
            label_files: list[Path] = []
            done = False
            if parallel:
                found: list[ImportProblem] = []
                try:
                    n_imported, _, label_files = _shared(ctx, files, store=store, writer=writer, as_of=as_of,
                                                         tmp=tmp, problems=found, timings=timings)
                    timings.update({k: v - start for k, v in timings.items()})
                    problems.extend(found)
                    done = True
                except _WorkerFailed as err:
                    warnings.warn(f"the classifier process failed ({str(err).strip().splitlines()[-1]}); "
                                  "importing and classifying serially", stacklevel=2)
                    if fh is not None:  # start the CSV again (the store: the upsert makes it safe)
                        fh.seek(0)
                        fh.truncate()
                        writer.writerow(CSV_COLUMNS)
            if not done:
                label_files = [] if ictrp else [tmp / "labels-serial.jsonl"]
                n_imported, _, runs = _import_serial(store, files, as_of=as_of, problems=problems, writer=writer,
                                               labels_path=label_files[0] if label_files else None)
            t_import = time.perf_counter() - start
            timings["import_done"] = t_import
            if label_files:
                n_loaded = store.load_labels_file(label_files[0], classifier_version=CLASSIFIER_VERSION,
                                                  also=label_files[1:])
    finally:
        for f in tmp.iterdir() if tmp.exists() else ():
            f.unlink()
        with contextlib.suppress(OSError):
            tmp.rmdir()
    # what the route did not label: trials stored before without a label of this version, and
    # (ICTRP inputs) every row this run wrote, classified from the row that stayed
    with progress_bar(transient=True) as progress:
        task = progress.add_task("classifying", total=None)
        for batch in _batched(store.iter_trials(unlabelled=CLASSIFIER_VERSION, runs=runs if ictrp else None), 5000):
            labels = [classify(t) for t in batch]
            store.write_labels(labels, classifier_version=CLASSIFIER_VERSION)
            progress.advance(task, len(labels))
    n, n_neuromod = store.con.execute(
        "SELECT count(*), count(*) FILTER (WHERE neuromod) FROM trial_labels WHERE classifier_version = ?",
        [CLASSIFIER_VERSION],
    ).fetchone()
    return {"n_imported": n_imported, "n_classified": n, "n_neuromod": n_neuromod,
            "import_seconds": t_import, "seconds": time.perf_counter() - start, "problems": problems,
            "n_labels_loaded": n_loaded, "parallel": bool(parallel), "timings": timings}


@relaxed_gc()
def classify_to_csv(
    inputs: list[Path],
    output: Path,
    *,
    db: Path | None = None,
    problems: list[ImportProblem] | None = None,
    batch_size: int = 5000,
) -> dict:
    """Classify trials from files (or, with no inputs, from the store ``db``) into ``output``.

    With both inputs and ``db``, the files are also imported into the store (one import run
    per file, with its provenance) and the labels stored. The CSV is written atomically: an
    interrupted run leaves no partial file.

    A file that cannot be read (unknown format, empty, unreadable) is reported in
    ``problems`` (location ``file``) and the others are classified; when no input can be
    read, :class:`TrialFileError` is raised (naming the files) and nothing is written.

    Returns
    -------
    dict
        ``n_trials`` (rows written), ``n_neuromod``, ``seconds``.
    """
    problems = problems if problems is not None else []
    inputs = [Path(p) for p in inputs or []]
    output = Path(output)
    start = time.perf_counter()
    files: list[InputFile] = []
    if inputs:  # folders stand for the files under them; each format detected once, here
        files, unreadable = _detect(expand_inputs(inputs))
        if len(unreadable) == len(files):
            raise TrialFileError("; ".join(p.reason for p in unreadable))
        if db is None:  # with a store, its import reports them (a failed run each)
            problems.extend(unreadable)
    if files and db is not None:
        from neuromodmap.trials.store import TrialStore

        with TrialStore(db) as store:
            stats = import_and_classify(store, files, problems=problems, csv_output=output)
        return {"n_trials": stats["n_classified"], "n_neuromod": stats["n_neuromod"],
                "seconds": time.perf_counter() - start}
    n_trials = n_neuromod = 0
    with progress_bar() as progress, atomic_write(output, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        if files:
            readable = [f for f in files if f.format is not None]
            ctx = _fork_context()
            done = False
            if _can_share(ctx, readable):
                found: list[ImportProblem] = []
                counter = _Counting(writer)
                try:
                    _, n_trials, _ = _shared(ctx, readable, store=None, writer=counter, as_of=None, tmp=None,
                                             problems=found)
                    n_neuromod = counter.n_neuromod
                    problems.extend(found)
                    done = True
                except _WorkerFailed as err:  # start again, serially, into a fresh file
                    warnings.warn(f"parallel classification failed, running serially: {err}", stacklevel=2)
                    fh.seek(0)
                    fh.truncate()
                    writer.writerow(CSV_COLUMNS)
            if not done:
                n_trials, n_neuromod = _csv_serial(readable, writer, problems, progress)
        else:
            from neuromodmap.trials.store import TrialStore

            if db is None:
                raise ValueError("give input files, a database, or both")
            with TrialStore(db) as store:
                task = progress.add_task("classifying store", total=None)
                for batch in _batched(store.iter_trials(), batch_size):
                    labels = [classify(t) for t in batch]
                    writer.writerows(classification_row(c).values() for c in labels)
                    store.write_labels(labels, classifier_version=CLASSIFIER_VERSION)
                    n_trials += len(labels)
                    n_neuromod += sum(bool(c.neuromod) for c in labels)
                    progress.advance(task, len(labels))
    return {"n_trials": n_trials, "n_neuromod": n_neuromod, "seconds": time.perf_counter() - start}


class _Counting:
    """A CSV writer that counts the neuromodulation rows it writes."""

    def __init__(self, writer):
        self.writer, self.n_neuromod = writer, 0

    def writerows(self, rows: list[list[str]]) -> None:
        self.writer.writerows(rows)
        self.n_neuromod += sum(r[1] == "true" for r in rows)
