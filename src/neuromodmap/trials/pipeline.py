"""Import → classify → store (what the CLI and the demo run), on both cores where it pays.

Two processes share the work on Linux (the ``fork`` start method, so library callers need no
``if __name__ == "__main__"`` guard); elsewhere, for small inputs, or with
``NEUROMODMAP_SERIAL=1`` everything runs serially in this process, with the same output.

- :func:`classify_to_csv` splits a JSON-lines file into blocks of lines: this process reads,
  classifies and writes the even blocks, a worker the odd ones; rows keep the file's order.
- :func:`import_and_classify`, for JSON-lines files: the worker reads the file and, block
  by block, either parses, classifies and turns the block into store columns itself, or hands
  its raw lines to this process whenever fewer than two blocks wait here. This process
  parses and classifies the blocks it is handed and writes every block to the store in file
  order, so each record is parsed once and only plain lists cross between the processes
  (pickling a :class:`Trial` costs more than parsing it). Labels are bulk-loaded at the end.
  For other formats, or with a CSV to write, this process imports while the worker reads the
  files again and classifies them.
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
from neuromodmap.trials.io import TrialFileError, TrialReader, expand_inputs
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


def _csv_parallel(ctx, inputs: list[str], writer, problems: list[ImportProblem], progress) -> tuple[int, int]:
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
            progress.update(task, description=Path(path).name)
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


def _csv_serial(inputs: list[str], writer, problems: list[ImportProblem], progress) -> tuple[int, int]:
    n = n_neuromod = 0
    task = progress.add_task("classifying", total=None)
    for path in inputs:
        progress.update(task, description=Path(path).name)
        try:
            reader = TrialReader(path, problems=problems)
        except TrialFileError as err:  # one unreadable file (a stray file in a folder) costs no other
            problems.append(ImportProblem(source=str(path), location="file", reason=str(err)))
            continue
        for rec in reader:
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
    if inputs and db is None:  # folders stand for the files under them
        inputs = [f.path for f in expand_inputs(inputs)]
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
            ) and sum(os.path.getsize(p) for p in inputs) >= _PARALLEL_MIN_BYTES
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


class _Labeller:
    """Classifies records and writes their label rows (JSON lines) as it goes."""

    def __init__(self, labels, file_index: int):
        self.labels, self.i = labels, file_index
        self.dumps = json.JSONEncoder(ensure_ascii=False).encode

    def columns(self, records: list[tuple[int, object]], source: str, as_of) -> dict:
        """Label ``(line, record)`` pairs; return the records' store columns."""
        from neuromodmap.trials.store import record_columns

        for line, rec in records:
            self.labels.write(self.dumps(label_record(classify(rec.trial), _seq(self.i, line))))
            self.labels.write("\n")
        return record_columns([rec for _, rec in records], source, as_of)


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
    """The worker's side of one JSON-lines file: it reads every line and, block by block,
    either prepares the block itself or hands its lines, as read, to the importing process.

    The importer gets a block whenever fewer than ``ahead`` of its blocks are waiting, so it
    never idles and never falls far behind; the rest the worker parses, classifies and turns
    into store columns. Messages go out in file order.
    """

    def __init__(self, out: _Sender, file_index: int, source: str, as_of, labeller: _Labeller,
                 problems: list[ImportProblem], pending, ahead: int = 2):
        self.out, self.i, self.source, self.as_of = out, file_index, source, as_of
        self.labeller, self.problems, self.pending, self.ahead = labeller, problems, pending, ahead
        self.block: int | None = None
        self.mine = True
        self.records: list[tuple[int, object]] = []
        self.lines: list[tuple[int, object]] = []
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

    def foreign(self, lineno: int, line) -> None:
        self.lines.append((lineno, line))

    def finish(self) -> None:
        if self.block is None:
            return
        problems = [p.model_dump() for p in self.problems[self.sent:]]
        self.sent = len(self.problems)
        at = self.reader.position  # bytes read, for the importer's progress bar
        if self.mine:
            cols = self.labeller.columns(self.records, self.source, self.as_of)
            self.out.put(("cols", self.i, at, cols, problems))
        else:
            self.out.put(("lines", self.i, at, self.reader.text_encoding, self.lines, problems))
        self.block, self.records, self.lines = None, [], []


def _split_worker(paths: list[str], labels_path: str, as_of, pending, conn) -> None:
    """Read every file; prepare some blocks, hand the others on (see :class:`_Splitter`);
    then ("done", file, problems, time) per file."""
    out = _Sender(conn)
    try:
        with open(labels_path, "w", encoding="utf-8") as labels:
            for i, path in enumerate(paths):
                problems: list[ImportProblem] = []
                split = _Splitter(out, i, path, as_of, _Labeller(labels, i), problems, pending)
                reader = TrialReader(path, problems=problems, shard=split.take, on_foreign=split.foreign)
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


def _import_shared(ctx, store, inputs: list[str], formats: list[str], *, as_of, tmp: Path,
                   problems: list[ImportProblem], timings: dict | None = None) -> tuple[int, list[Path]]:
    """Import and classify JSON-lines files with both processes sharing the work.

    The worker reads the files; this process parses and classifies the blocks it is handed,
    writes every block to the store in file order and so parses each record exactly once.
    Returns (rows written, label files). Raises :class:`_WorkerFailed` if the worker dies
    (the caller imports again serially: the upsert makes that safe).
    """
    pending = ctx.Value("i", 0)
    conn, sending = ctx.Pipe(duplex=False)
    worker_labels = tmp / "labels.jsonl"
    own_labels = tmp / "labels-main.jsonl"
    proc = _start(ctx, _split_worker, ([str(p) for p in inputs], str(worker_labels), as_of, pending, sending))
    sending.close()  # the worker holds the only sending end: its death reads as end-of-file
    written = 0
    try:
        with open(own_labels, "w", encoding="utf-8") as labels, progress_bar(by_bytes=True) as bar:
            for i, (path, fmt) in enumerate(zip(map(Path, inputs), formats, strict=True)):
                file_problems: list[ImportProblem] = []
                own_problems: list[ImportProblem] = []
                worker_problems: list[ImportProblem] = []
                parser = TrialReader(path, problems=own_problems, format=fmt)
                labeller = _Labeller(labels, i)
                importer = store._block_import(path, fmt, as_of=as_of, problems=file_problems)
                task = bar.add_task(path.name, total=path.stat().st_size, records=0)
                n = 0
                try:
                    while True:
                        msg = _receive(conn, proc)
                        if msg[1] != i:
                            raise _WorkerFailed(f"the worker sent file {msg[1]} while file {i} is read")
                        if msg[0] == "done":
                            worker_problems.extend(ImportProblem(**p) for p in msg[2])
                            if timings is not None:
                                timings["worker_done"] = msg[3]
                            break
                        if msg[0] == "cols":
                            _, _, at, cols, probs = msg
                        else:
                            _, _, at, enc, lines, probs = msg
                            records = [(lineno, rec) for lineno, line in lines
                                       for rec in parser.parse_line(lineno, line, enc)]
                            cols = labeller.columns(records, str(path), as_of)
                            with pending.get_lock():
                                pending.value -= 1
                        worker_problems.extend(ImportProblem(**p) for p in probs)
                        importer.add(cols)
                        n += len(cols["registry_id"])
                        bar.update(task, completed=at, records=n)
                    file_problems[:] = sorted(file_problems + own_problems + worker_problems, key=_line_of)
                    bar.update(task, completed=path.stat().st_size)
                except BaseException:
                    importer.abort()
                    raise
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
    start = time.perf_counter()
    # the files named, a folder standing for the files under it; the store gets the arguments
    # as given, so that a folder is one import run
    expanded = expand_inputs(inputs)
    arguments, inputs = list(inputs), [f.path for f in expanded]
    ctx = _fork_context()
    formats = _formats(inputs)
    # ICTRP rows never replace a stored CT.gov row, so their labels must come from the store
    parallel = (
        ctx is not None
        and inputs
        and all(f is not None and not f.startswith("ictrp") for f in formats)
        and sum(f.size for f in expanded) >= _PARALLEL_MIN_BYTES
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
                    n_imported = store.import_files(arguments, as_of=as_of, problems=problems).n_upserted
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
                    n_imported = store.import_files(arguments, as_of=as_of, problems=problems).n_upserted
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
        n_imported = store.import_files(arguments, as_of=as_of, problems=problems).n_upserted
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
