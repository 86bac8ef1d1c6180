"""Import → classify → store (what the CLI and the demo run), on both cores where it pays.

Two processes share the work on Linux (the ``fork`` start method, so library callers need no
``if __name__ == "__main__"`` guard); elsewhere, for small inputs, or with
``NEUROMODMAP_SERIAL=1`` everything runs serially in this process, with the same output.

- :func:`classify_to_csv` splits a JSON-lines file into blocks of lines: this process reads,
  classifies and writes the even blocks, a worker the odd ones; rows keep the file's order.
- :func:`import_and_classify`, for JSON-lines files: both processes read the file and take
  blocks of lines first come, first served; each parses, classifies and turns its blocks
  into store columns (plain lists, cheap to send, unlike pickled :class:`Trial` objects), and
  this process writes every block to the store in file order. Each record is parsed once.
  Labels are bulk-loaded at the end. For other formats, or with a CSV to write, this process
  imports while the worker reads the files again and classifies them.
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing as mp
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from neuromodmap._utils import atomic_write, progress_bar
from neuromodmap.trials.classify import CLASSIFIER_VERSION, classification_row, classify
from neuromodmap.trials.io import TrialFileError, TrialReader
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


def _start(ctx, target, args):
    proc = ctx.Process(target=target, args=args, daemon=True)
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


def _formats(inputs: list[Path]) -> list[str | None]:
    formats = []
    for path in inputs:
        try:
            formats.append(TrialReader(path).format)
        except Exception:  # noqa: BLE001 - the reader in the main process reports it properly
            formats.append(None)
    return formats


# ---------------------------------------------------------------------- classify → CSV
def _csv_shard_worker(paths: list[str], shard: tuple[int, int], out: mp.Queue) -> None:
    """Classify one shard of each file; send ("rows", file, block, rows) then ("done", file, problems)."""
    try:
        for i, path in enumerate(paths):
            problems: list[ImportProblem] = []
            reader = TrialReader(path, problems=problems, shard=shard)
            block, rows = -1, []
            for rec in reader:
                b = (reader.line - 1) // _block_size()
                if b != block and rows:
                    out.put(("rows", i, block, rows))
                    rows = []
                block = b
                rows.append(list(classification_row(classify(rec.trial)).values()))
            if rows:
                out.put(("rows", i, block, rows))
            out.put(("done", i, [p.model_dump() for p in problems]))
    except BaseException:  # noqa: BLE001 - reported to the parent, which falls back to serial
        out.put(("error", traceback.format_exc()))


def _block_size() -> int:
    from neuromodmap.trials.io import SHARD_BLOCK

    return SHARD_BLOCK


class _WorkerFailed(Exception):
    pass


def _get(out: mp.Queue, proc) -> tuple:
    while True:
        try:
            msg = out.get(timeout=1.0)
        except queue.Empty:
            if not proc.is_alive():
                raise _WorkerFailed(f"the worker process stopped (exit code {proc.exitcode})") from None
            continue
        if msg[0] == "error":
            raise _WorkerFailed(msg[1])
        return msg


def _csv_parallel(ctx, inputs: list[Path], writer, problems: list[ImportProblem], progress) -> tuple[int, int]:
    """Rows of every input, this process taking shard 0 and a worker shard 1, in file order.

    Finished blocks wait in ``ready`` until every block before them is written, so the two
    processes never wait for each other (a block with no readable line holds the rest back
    until the end of its file, costing memory, never order).
    """
    out = ctx.Queue()
    proc = _start(ctx, _csv_shard_worker, ([str(p) for p in inputs], (1, 2), out))
    n = n_neuromod = 0
    task = progress.add_task("classifying", total=None)
    try:
        for path in inputs:
            progress.update(task, description=path.name)
            ready: dict[int, list] = {}
            next_block = 0
            worker_done = False

            def take(msg, ready=ready) -> bool:
                """File a worker message; True when the worker finished this file."""
                nonlocal n_neuromod
                if msg[0] == "done":
                    problems.extend(ImportProblem(**p) for p in msg[2])
                    return True
                ready[msg[2]] = msg[3]
                n_neuromod += sum(r[1] == "true" for r in msg[3])
                return False

            def flush(ready=ready) -> None:
                nonlocal next_block, n
                while next_block in ready:
                    rows = ready.pop(next_block)
                    writer.writerows(rows)
                    n += len(rows)
                    progress.advance(task, len(rows))
                    next_block += 1

            def drain() -> None:
                nonlocal worker_done
                while not worker_done:
                    try:
                        msg = out.get_nowait()
                    except queue.Empty:
                        if not proc.is_alive():
                            _get(out, proc)  # raises with the reason
                        return
                    if msg[0] == "error":
                        raise _WorkerFailed(msg[1])
                    worker_done = take(msg)

            reader = TrialReader(path, problems=problems, shard=(0, 2))
            block, rows = -1, []
            for rec in reader:
                b = (reader.line - 1) // _block_size()
                if b != block and rows:
                    ready[block] = rows
                    rows = []
                    drain()
                    flush()
                block = b
                c = classify(rec.trial)
                rows.append(list(classification_row(c).values()))
                n_neuromod += bool(c.neuromod)
            if rows:
                ready[block] = rows
            while not worker_done:
                worker_done = take(_get(out, proc))
            flush()
            for b in sorted(ready):  # after a block with no readable line
                writer.writerows(ready[b])
                n += len(ready[b])
        proc.join(10)
    finally:
        _stop(proc)
        out.close()
    return n, n_neuromod


def _csv_serial(inputs: list[Path], writer, problems: list[ImportProblem], progress) -> tuple[int, int]:
    n = n_neuromod = 0
    task = progress.add_task("classifying", total=None)
    for path in inputs:
        progress.update(task, description=path.name)
        for rec in TrialReader(path, problems=problems):
            c = classify(rec.trial)
            writer.writerow(classification_row(c).values())
            n += 1
            n_neuromod += bool(c.neuromod)
            progress.advance(task)
    return n, n_neuromod


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

    Returns
    -------
    dict
        ``n_trials`` (rows written), ``n_neuromod``, ``seconds``.
    """
    problems = problems if problems is not None else []
    inputs = [Path(p) for p in inputs or []]
    output = Path(output)
    start = time.perf_counter()
    if inputs and db is not None:
        from neuromodmap.trials.store import TrialStore

        with TrialStore(db) as store:
            stats = import_and_classify(store, inputs, problems=problems, csv_output=output)
        return {"n_trials": stats["n_classified"], "n_neuromod": stats["n_neuromod"],
                "seconds": time.perf_counter() - start}
    n_trials = n_neuromod = 0
    with progress_bar() as progress, atomic_write(output, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        if inputs:
            ctx = _fork_context()
            parallel = ctx is not None and all(
                f in _JSONL for f in _formats(inputs)
            ) and sum(p.stat().st_size for p in inputs) >= _PARALLEL_MIN_BYTES
            done = False
            if parallel:
                found: list[ImportProblem] = []
                try:
                    n_trials, n_neuromod = _csv_parallel(ctx, inputs, writer, found, progress)
                    problems.extend(found)
                    done = True
                except _WorkerFailed as err:  # start again, serially, into a fresh file
                    warnings.warn(f"parallel classification failed, running serially: {err}", stacklevel=2)
                    fh.seek(0)
                    fh.truncate()
                    writer.writerow(CSV_COLUMNS)
            if not done:
                n_trials, n_neuromod = _csv_serial(inputs, writer, problems, progress)
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


# ---------------------------------------------------------------------- import + classify
def _seq(file_index: int, position: int) -> int:
    """A record's order across files and processes (a later duplicate wins)."""
    return (file_index << 40) | position


def _label_worker(paths: list[str], labels_path: str, csv_path: str | None) -> None:
    """Read and classify the files; write label rows as JSON lines and, optionally, the CSV
    rows (all records, in order)."""
    with contextlib.ExitStack() as stack:
        labels = stack.enter_context(open(labels_path, "w", encoding="utf-8"))
        writer = None
        if csv_path is not None:
            writer = csv.writer(stack.enter_context(open(csv_path, "w", newline="", encoding="utf-8")))
            writer.writerow(CSV_COLUMNS)
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        for i, path in enumerate(paths):
            try:
                reader = TrialReader(path, problems=[])
            except Exception:  # noqa: BLE001 - the importer reports unreadable files
                continue
            for k, rec in enumerate(reader):
                c = classify(rec.trial)
                labels.write(dumps(label_record(c, _seq(i, k))))
                labels.write("\n")
                if writer is not None:
                    writer.writerow(classification_row(c).values())


class _Blocks:
    """First come, first served: which process parses, classifies and prepares each block.

    Both processes read every line of a JSON-lines file but parse only the blocks they
    claim; the worker sends its prepared blocks (store columns) to the importing process,
    which writes every block to the store in file order. Each record is parsed once.
    """

    MAIN, WORKER = 1, 2

    def __init__(self, ctx, n_files: int):
        self.stride = (1 << 22) // max(n_files, 1)
        self.owner = ctx.RawArray("b", self.stride * max(n_files, 1))
        self.lock = ctx.Lock()

    def claim(self, file_index: int, block: int, who: int) -> bool:
        if block >= self.stride:  # beyond the table (a file of over a billion lines): the importer's
            return who == self.MAIN
        i = file_index * self.stride + block
        with self.lock:
            if self.owner[i] == 0:
                self.owner[i] = who
            return self.owner[i] == who


class _BlockBuilder:
    """Collects one process's records block by block; a finished block becomes store columns
    (and label rows, written at once). ``take`` is the reader's shard callable."""

    def __init__(self, blocks: _Blocks, who: int, file_index: int, source: str, as_of, labels, problems: list):
        self.blocks, self.who, self.i, self.source, self.as_of = blocks, who, file_index, source, as_of
        self.labels = labels
        self.problems = problems
        self.dumps = json.JSONEncoder(ensure_ascii=False).encode
        self.block: int | None = None
        self.records: list = []
        self.sent = 0  # problems already handed on
        self.done: list[tuple[int, dict, list]] = []  # finished blocks: (block, columns, problems)
        self.seen: list[int] = []  # every block met, in file order

    def take(self, block: int) -> bool:
        self.finish()
        ok = self.blocks.claim(self.i, block, self.who)
        self.seen.append(block)
        if ok:
            self.block = block
        return ok

    def add(self, line: int, rec) -> None:
        self.records.append((line, rec))

    def finish(self) -> None:
        if self.block is None:
            return
        from neuromodmap.trials.store import record_columns

        recs = [rec for _, rec in self.records]
        for line, rec in self.records:
            self.labels.write(self.dumps(label_record(classify(rec.trial), _seq(self.i, line))))
            self.labels.write("\n")
        cols = record_columns(recs, self.source, self.as_of)
        self.done.append((self.block, cols, [p.model_dump() for p in self.problems[self.sent:]]))
        self.sent = len(self.problems)
        self.block, self.records = None, []


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


def _block_worker(paths: list[str], blocks: _Blocks, labels_path: str, as_of, conn) -> None:
    """Parse, classify and prepare the blocks this process claims; send ("block", file, block,
    columns, problems) for each, then ("done", file, problems) per file."""
    out = _Sender(conn)
    try:
        with open(labels_path, "w", encoding="utf-8") as labels:
            for i, path in enumerate(paths):
                problems: list[ImportProblem] = []
                builder = _BlockBuilder(blocks, _Blocks.WORKER, i, path, as_of, labels, problems)
                try:
                    reader = TrialReader(path, problems=problems, shard=builder.take)
                except Exception:  # noqa: BLE001 - the importer reports unreadable files
                    out.put(("done", i, []))
                    continue
                for rec in reader:
                    builder.add(reader.line, rec)
                    if builder.done:
                        for item in builder.done:
                            out.put(("block", i, *item))
                        builder.done.clear()
                builder.finish()
                for item in builder.done:
                    out.put(("block", i, *item))
                out.put(("done", i, [p.model_dump() for p in problems[builder.sent:]], time.perf_counter()))
    except BaseException:  # noqa: BLE001 - reported to the parent, which falls back to serial
        out.put(("error", traceback.format_exc()))
    finally:
        out.close()


def _line_of(problem: ImportProblem) -> int:
    digits = "".join(ch if ch.isdigit() else " " for ch in problem.location).split()
    return int(digits[0]) if digits else 1 << 62


class _SharedFile:
    """The importing side of one JSON-lines file read by both processes.

    At every block boundary it files the worker's finished blocks and pushes every block
    that is next in file order (its own or the worker's) to the store, so the store work
    keeps pace with both processes instead of piling up at the end.
    """

    def __init__(self, conn, proc, builder: _BlockBuilder, importer, bar, task):
        self.conn, self.proc, self.builder, self.importer = conn, proc, builder, importer
        self.bar, self.task = bar, task
        self.reader: TrialReader | None = None
        self.ready: dict[int, dict] = {}
        self.next = 0  # index into builder.seen of the next block to store
        self.worker_done = False
        self.worker_problems: list[ImportProblem] = []
        self.n = 0  # records stored
        self.read_at = self.worker_finished_at = 0.0  # when each process finished the file

    def take(self, block: int) -> bool:
        """The reader's shard callable: claim (or leave) the block, then store what is ready."""
        ok = self.builder.take(block)
        self.receive(False)
        self._store()
        self.bar.update(self.task, completed=self.reader.position, records=self.n)
        return ok

    def receive(self, wait: bool) -> None:
        """File the worker's finished blocks (waiting for one message if ``wait``)."""
        while not self.worker_done:
            try:
                if not self.conn.poll(None if wait else 0):
                    return
                msg = self.conn.recv()
            except Exception as err:  # noqa: BLE001 - end of file, or a message cut short
                self.proc.join(5)
                raise _WorkerFailed(f"the worker process stopped (exit code {self.proc.exitcode}; "
                                    f"{type(err).__name__})") from None
            if msg[0] == "error":
                raise _WorkerFailed(msg[1])
            if msg[1] != self.builder.i:
                raise _WorkerFailed(f"the worker sent file {msg[1]} while file {self.builder.i} is read")
            if msg[0] == "done":
                self.worker_problems.extend(ImportProblem(**p) for p in msg[2])
                self.worker_done = True
                self.worker_finished_at = msg[3]
                return
            _, _, b, cols, probs = msg
            self.ready[b] = cols
            self.worker_problems.extend(ImportProblem(**p) for p in probs)
            wait = False  # got one: take the rest without waiting

    def _store(self) -> None:
        builder = self.builder
        for b, cols, _ in builder.done:
            self.ready[b] = cols
        builder.done.clear()
        seen = builder.seen
        while self.next < len(seen) and seen[self.next] in self.ready:
            cols = self.ready.pop(seen[self.next])
            self.next += 1
            self.n += len(cols["registry_id"])
            self.importer.add(cols)

    def run(self, reader: TrialReader) -> None:
        """Read the file (``reader`` uses :meth:`take`), store every block, and give the
        importer the skipped lines of both processes, in file order."""
        self.reader = reader
        builder = self.builder
        for rec in reader:
            builder.add(reader.line, rec)
        builder.finish()
        self.read_at = time.perf_counter()
        self._store()
        while not self.worker_done:
            self.receive(True)
            self._store()
        if self.next != len(builder.seen):
            raise _WorkerFailed(f"{len(builder.seen) - self.next} blocks of {reader.source} never arrived")
        problems = self.importer.problems
        problems[:] = sorted(problems + builder.problems + self.worker_problems, key=_line_of)
        self.bar.update(self.task, completed=reader.size, records=self.n)


def _import_shared(ctx, store, inputs: list[Path], formats: list[str], *, as_of, tmp: Path,
                   problems: list[ImportProblem], timings: dict | None = None) -> tuple[int, list[Path]]:
    """Import and classify JSON-lines files with both processes sharing the parsing.

    Returns (rows written, label files). Raises :class:`_WorkerFailed` if the worker dies
    (the caller imports again serially: the upsert makes that safe).
    """
    blocks = _Blocks(ctx, len(inputs))
    conn, sending = ctx.Pipe(duplex=False)
    worker_labels = tmp / "labels.jsonl"
    own_labels = tmp / "labels-main.jsonl"
    proc = _start(ctx, _block_worker, ([str(p) for p in inputs], blocks, str(worker_labels), as_of, sending))
    sending.close()  # the worker holds the only sending end: its death reads as end-of-file
    written = 0
    try:
        with open(own_labels, "w", encoding="utf-8") as labels, progress_bar(by_bytes=True) as bar:
            for i, (path, fmt) in enumerate(zip(inputs, formats, strict=True)):
                builder = _BlockBuilder(blocks, _Blocks.MAIN, i, str(path), as_of, labels, [])
                file_problems: list[ImportProblem] = []
                importer = store._block_import(path, fmt, as_of=as_of, problems=file_problems)
                side = _SharedFile(conn, proc, builder, importer, bar,
                                   bar.add_task(path.name, total=path.stat().st_size, records=0))
                try:
                    side.run(TrialReader(path, problems=builder.problems, shard=side.take))
                except BaseException:
                    importer.abort()
                    raise
                written += importer.finish()
                problems.extend(file_problems)
                if timings is not None:  # seconds since the start of the pipeline (last file's)
                    timings.update(main_read_done=side.read_at, worker_done=side.worker_finished_at,
                                   store_done=time.perf_counter())
        proc.join(10)
    finally:
        _stop(proc)
        conn.close()
    if proc.exitcode != 0:
        raise _WorkerFailed(f"the worker process stopped (exit code {proc.exitcode})")
    return written, [worker_labels, own_labels]


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
        Trial files of any supported format.
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
    inputs = [Path(p) for p in inputs]
    start = time.perf_counter()
    ctx = _fork_context()
    formats = _formats(inputs)
    # ICTRP rows never replace a stored CT.gov row, so their labels must come from the store
    parallel = (
        ctx is not None
        and inputs
        and all(f is not None and not f.startswith("ictrp") for f in formats)
        and sum(p.stat().st_size for p in inputs if p.is_file()) >= _PARALLEL_MIN_BYTES
    )
    n_loaded = 0
    n_imported = 0
    csv_done = False
    timings: dict[str, float] = {}
    if parallel:
        parent = csv_output.parent if csv_output is not None else (
            store.db_path.parent if store.db_path is not None else None)
        tmp = Path(tempfile.mkdtemp(prefix=".neuromodmap-", dir=parent))
        try:
            if csv_output is None and all(f in _JSONL for f in formats):
                # both processes parse, classify and prepare blocks; this one writes the store
                found: list[ImportProblem] = []
                try:
                    n_imported, label_files = _import_shared(ctx, store, inputs, formats, as_of=as_of, tmp=tmp,
                                                             problems=found, timings=timings)
                    timings.update({k: v - start for k, v in timings.items()})
                except _WorkerFailed as err:
                    warnings.warn(f"the classifier process failed ({str(err).strip().splitlines()[-1]}); "
                                  "importing and classifying serially", stacklevel=2)
                    n_imported = store.import_files(inputs, as_of=as_of, problems=problems).n_upserted
                else:
                    problems.extend(found)
                    timings["import_done"] = time.perf_counter() - start
                    n_loaded = store.load_labels_file(label_files[0], classifier_version=CLASSIFIER_VERSION,
                                                      also=label_files[1:])
                t_import = time.perf_counter() - start
            else:
                # this process imports; a worker reads the files again and classifies them
                # (and writes the CSV in file order)
                labels_path = tmp / "labels.jsonl"
                csv_tmp = tmp / "classified.csv" if csv_output is not None else None
                proc = _start(ctx, _label_worker, ([str(p) for p in inputs], str(labels_path),
                                                   str(csv_tmp) if csv_tmp else None))
                try:
                    n_imported = store.import_files(inputs, as_of=as_of, problems=problems).n_upserted
                    t_import = time.perf_counter() - start
                    proc.join()
                    timings["worker_done"] = time.perf_counter() - start
                finally:
                    _stop(proc)
                if proc.exitcode == 0:
                    n_loaded = store.load_labels_file(labels_path, classifier_version=CLASSIFIER_VERSION)
                    if csv_tmp is not None:
                        with atomic_write(csv_output, "wb") as out, open(csv_tmp, "rb") as src:
                            shutil.copyfileobj(src, out, 1 << 20)
                        csv_done = True
                else:
                    warnings.warn(f"the classifier process failed (exit code {proc.exitcode}); classifying serially",
                                  stacklevel=2)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        n_imported = store.import_files(inputs, as_of=as_of, problems=problems).n_upserted
        t_import = time.perf_counter() - start
    # serially: every stored trial (as before); after the worker: what it did not label
    # (trials stored before, or all of them when it failed)
    unlabelled = CLASSIFIER_VERSION if parallel else None
    with progress_bar(transient=True) as progress:
        task = progress.add_task("classifying", total=None)
        for batch in _batched(store.iter_trials(unlabelled=unlabelled), 5000):
            labels = [classify(t) for t in batch]
            store.write_labels(labels, classifier_version=CLASSIFIER_VERSION)
            progress.advance(task, len(labels))
    if csv_output is not None and not csv_done:
        with atomic_write(csv_output, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for path in inputs:
                # unreadable files were already reported by the import above
                with contextlib.suppress(TrialFileError):
                    for rec in TrialReader(path, problems=[]):
                        writer.writerow(classification_row(classify(rec.trial)).values())
    n, n_neuromod = store.con.execute(
        "SELECT count(*), count(*) FILTER (WHERE neuromod) FROM trial_labels WHERE classifier_version = ?",
        [CLASSIFIER_VERSION],
    ).fetchone()
    return {"n_imported": n_imported, "n_classified": n, "n_neuromod": n_neuromod,
            "import_seconds": t_import, "seconds": time.perf_counter() - start, "problems": problems,
            "n_labels_loaded": n_loaded, "parallel": bool(parallel), "timings": timings}
