"""Read → classify → store (what the CLI and the demo run): one route for every format.

Each input file's format is detected once, as it is read (a one-study file from the content
read whole, see :func:`~neuromodmap.trials.io.reader_for`); its reader (:class:`TrialReader`,
one per format under :mod:`neuromodmap.trials._readers`) yields normalised records; each record
is classified as it is read; the classification becomes a CSV row (``trials classify -o``) and a
label row, the record store columns. No file is read twice. ``trials import``
(:func:`import_files`) takes the same route with nothing classified: store columns only, no
label rows.

Where the inputs can be split (JSON lines by blocks of lines, ZIP and tar archives by blocks of
members: :data:`~neuromodmap.trials.io.SPLITTABLE`; one-study files of a folder, or named one
after another, by blocks of files: :func:`_plan`) and there is a second core, two processes
share them (the ``fork`` start method on Linux, so library callers need no ``if __name__ ==
"__main__"`` guard): a worker reads each file once and, block by block, either parses,
classifies and prepares the block itself (store columns, CSV rows, label rows) or hands its
raw lines, members or file contents to this process whenever fewer than two blocks wait here.
This process parses what it is handed, and writes every block, in file order, to the store and
the CSV, so each record is parsed once and only plain lists and bytes cross between the
processes. A file that cannot be split (a website or ICTRP export, a ctrdata database) is
read, classified and prepared by the worker while this process writes it. Labels are
bulk-loaded at the end. Small inputs, a single core or ``NEUROMODMAP_SERIAL=1``: one process
reads, classifies and stores in one pass, with the same output.
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from neuromodmap._utils import atomic_write, json_text, progress_bar, relaxed_gc
from neuromodmap.trials import io as trials_io
from neuromodmap.trials.classify import CLASSIFIER_VERSION, classification_row, classify
from neuromodmap.trials.io import (
    ONE_RECORD_FORMATS,
    SPLITTABLE,
    InputFile,
    TrialFileError,
    TrialReader,
    detect_format,
    expand_inputs,
    read_capped,
    read_whole_first,
    reader_for,
)
from neuromodmap.trials.models import Classification, ImportProblem

if TYPE_CHECKING:
    from neuromodmap.trials.store import ImportReport

__all__ = ["classify_to_csv", "import_and_classify", "import_files", "CSV_COLUMNS", "label_record"]

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


def _seq(file_index: int, position: int) -> int:
    """A record's order across files and processes (a later duplicate wins)."""
    return (file_index << 40) | position


#: positions a one-study file's records take in a group job (a list of studies in one file:
#: past 65,535 they share the last one); see :class:`_Group`
_ONE_STUDY_SPAN = 1 << 16


@dataclass(slots=True)
class _Job:
    """One piece of the shared route: a file that can be split (``group`` False), or files of
    one study each from one folder argument, or named one after another (``group`` True; their
    formats may be unknown yet: the worker judges each from the content it reads)."""

    files: list[InputFile]
    group: bool

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def _plan(ctx, files: list[InputFile]) -> tuple[list[InputFile], list[_Job] | None]:
    """The files (the formats of all but likely one-study files detected) and the jobs of the
    shared route, or None when one process does it all: one core, under
    :data:`_PARALLEL_MIN_BYTES`, an unreadable large file, or nothing to share (a lone
    one-study file). A file that can be split is a job of its own, split by blocks of lines or
    members. Any other files are group jobs: one-study files (found in a folder or named one
    after another) split between the processes by blocks of files; a file of many records
    that cannot be split (a website or ICTRP export, a ctrdata database) is read by the worker
    as a run of its own while this process writes the store, as in
    :meth:`TrialStore.import_files`, which makes such a file end a run of one-study files."""
    if ctx is None or not files or sum(f.size for f in files) < _PARALLEL_MIN_BYTES:
        return files, None
    out: list[InputFile] = []
    jobs: list[_Job] | None = []
    for f in files:
        # a likely one-study file is not opened before the worker reads it whole (its format is
        # judged from that content, so it is read once); any other file is detected here
        deferred = read_whole_first(f)
        if f.format is None and not deferred:
            with contextlib.suppress(TrialFileError):  # unreadable: one process reports it
                f = InputFile(f.path, f.folder, f.size, detect_format(f.path))
        out.append(f)
        if jobs is None:
            continue
        if f.format is None and not deferred:
            jobs = None  # unreadable: one process reports it
        elif f.format in SPLITTABLE:
            jobs.append(_Job([f], False))
        elif jobs and jobs[-1].group and jobs[-1].files[-1].folder == f.folder:
            jobs[-1].files.append(f)
        else:
            jobs.append(_Job([f], True))
    # a lone one-study file gains nothing from a second process
    if jobs is not None and not any(not job.group or len(job.files) > 1 or job.files[0].format not in
                                    (None, *ONE_RECORD_FORMATS) for job in jobs):
        jobs = None
    return out, jobs


class _WorkerFailed(Exception):
    pass


# ---------------------------------------------------------------------- the shared route
class _Labeller:
    """Classifies blocks of records: label rows (JSON lines, when labels are stored) as it
    goes; returns the block's store columns and CSV rows (each only when wanted). With neither
    label rows nor CSV rows wanted (``trials import``), nothing is classified."""

    def __init__(self, labels, file_index: int, *, cols: bool, rows: bool):
        self.labels, self.i, self.want_cols, self.want_rows = labels, file_index, cols, rows
        self.dumps = json_text

    def block(self, records: list[tuple[int, object]], source: str, as_of) -> tuple[dict | None, list | None]:
        """Classify ``(position, record)`` pairs; return (store columns, CSV rows)."""
        from neuromodmap.trials.store import record_columns

        rows: list | None = [] if self.want_rows else None
        labels, dumps = self.labels, self.dumps
        if labels is not None or rows is not None:
            for position, rec in records:
                c = classify(rec.trial)
                if labels is not None:
                    labels.write(dumps(label_record(c, _seq(self.i, position))))
                    labels.write("\n")
                if rows is not None:
                    rows.append(list(classification_row(c).values()))
        cols = record_columns([rec for _, rec in records], source, as_of) if self.want_cols else None
        return cols, rows


def _hand_on(pending, ahead: int) -> bool:
    """Whether the next block goes to the importer: fewer than ``ahead`` of its blocks wait there
    (``pending``, a shared counter, then counts this one too)."""
    with pending.get_lock():
        if pending.value < ahead:
            pending.value += 1
            return True
    return False


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
        self.block, self.mine = block, not _hand_on(self.pending, self.ahead)
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


class _Group:
    """The worker's side of a group job (one-study files): it reads each file once, whole, and
    judges its format from that content; by blocks of :data:`~neuromodmap.trials.io.ARCHIVE_BLOCK`
    files it either parses, classifies and prepares the block itself or hands the files'
    content to the importer (whenever fewer than ``ahead`` of its blocks wait there), as
    :class:`_Splitter` does with an archive's members.

    Messages, in file order: ``("begin", job, "group", first path, format, as_of, False)``
    opens the run of consecutive one-study files; ``cols``/``units`` blocks; ``("end", job,
    problems, run, None)`` closes it. A file that cannot be read before any one-study file is a
    failed run of its own (``("failed", job, path, problem)``), after one a problem of the
    run; a file of many records ends the run and is read here whole as a run of its own
    (``begin`` ``"file"`` ... ``("end", job, problems, None, provenance)``, the provenance for
    the note a website export gets), as :meth:`TrialStore.import_files` does.
    """

    def __init__(self, out: _Sender, job: int, as_of, labels, pending, *, cols: bool, rows: bool, ahead: int = 2):
        self.out, self.i, self.as_of, self.labels, self.pending, self.ahead = out, job, as_of, labels, pending, ahead
        self.want_cols, self.want_rows = cols, rows
        self.labeller = _Labeller(labels, job, cols=cols, rows=rows)
        self.open = False
        self.at = 0  # bytes of the job's files read
        self.base = 0  # the next free position (label order) in the job: see _ONE_STUDY_SPAN
        self._reset()

    def _reset(self) -> None:
        self.problems: list[ImportProblem] = []
        self.sent = 0
        self.n = self.n_files = 0
        self.formats: set[str] = set()
        self.common: str | None = None
        self.block: int | None = None
        self.mine = True
        self.records: list[tuple[int, object]] = []
        self.units: list[tuple[int, tuple[str, str, bytes]]] = []
        self.first = ""

    def run(self, files: list[InputFile]) -> None:
        for f in files:
            fmt, data, why = f.format, b"", None
            try:
                if fmt is None or fmt in ONE_RECORD_FORMATS:  # a file of many records: its reader reads it
                    with open(f.path, "rb") as fh:
                        data = read_capped(fh, f.size)
                if fmt is None:
                    fmt = detect_format(f.path, data)
            except OSError as err:
                why = f"{f.path}: cannot read ({err.strerror or err})"
            except TrialFileError as err:
                why = str(err)
            if why is not None:
                problem = ImportProblem(source=f.path, location="file", reason=why)
                if self.open:
                    self.problems.append(problem)
                    self.n_files += 1
                else:
                    self.out.put(("failed", self.i, f.path, problem.model_dump()))
            elif fmt in ONE_RECORD_FORMATS:
                self._one_study(f, fmt, data)
            else:
                self.end()
                self._whole_file(f, fmt)
            self.at += f.size
        self.end()
        self.out.put(("done", self.i, [], time.perf_counter()))

    def _one_study(self, f: InputFile, fmt: str, data: bytes) -> None:
        if not self.open:
            self.open, self.first = True, f.path
            self.out.put(("begin", self.i, "group", f.path, fmt, self.as_of, False))
        self.n += 1
        self.n_files += 1
        self.formats.add(fmt)
        parent = os.path.dirname(f.path)
        self.common = parent if self.common is None else (
            self.common if parent == self.common else os.path.commonpath([self.common, parent]))
        block = (self.n - 1) // trials_io.ARCHIVE_BLOCK
        if block != self.block:
            self._send_block()
            self.block, self.mine = block, not _hand_on(self.pending, self.ahead)
        if self.mine:
            reader = TrialReader(f.path, problems=self.problems, format=fmt, content=data)
            self.records.extend((self.base + min(k, _ONE_STUDY_SPAN - 1), rec) for k, rec in enumerate(reader))
        else:
            self.units.append((self.base, (f.path, fmt, data)))
        self.base += _ONE_STUDY_SPAN

    def _send_block(self) -> None:
        if self.block is None:
            return
        problems = [p.model_dump() for p in self.problems[self.sent:]]
        self.sent = len(self.problems)
        if self.mine:
            cols, rows = self.labeller.block(self.records, self.first, self.as_of)
            self.out.put(("cols", self.i, self.at, cols, rows, problems))
        else:
            self.out.put(("units", self.i, self.at, None, self.units, problems))
        self.block, self.records, self.units = None, [], []

    def end(self) -> None:
        """Close the run of one-study files, if one is open."""
        if not self.open:
            return
        self._send_block()
        run = {"n_files": self.n_files, "formats": sorted(self.formats), "common": self.common}
        self.out.put(("end", self.i, [p.model_dump() for p in self.problems[self.sent:]], run, None))
        self.open = False
        self._reset()

    def _whole_file(self, f: InputFile, fmt: str) -> None:
        """A file of many records that cannot be split (a website or ICTRP export, a ctrdata
        database, a single JSON file of studies), or one found among one-study files: read here,
        as an import run of its own, its blocks sent as they are prepared (the importer only
        writes them). A website export without ``as_of`` is held until its date is known (found
        while its rows are read; it enters the hashes), as :meth:`TrialStore.import_files` does.
        ICTRP rows write no label rows (their labels come from the row the store keeps)."""
        from neuromodmap.trials.store import _late_as_of

        problems: list[ImportProblem] = []
        reader = TrialReader(f.path, problems=problems, format=fmt)
        ictrp = fmt.startswith("ictrp")
        late = self.as_of is None and reader.as_of_from_file
        labeller = _Labeller(None if ictrp else self.labels, self.i, cols=self.want_cols, rows=self.want_rows)
        held: list[tuple[dict | None, list | None]] = []
        if not late:
            self.out.put(("begin", self.i, "file", f.path, fmt, self.as_of, ictrp))

        def send(block: list[tuple[int, object]]) -> None:
            cols, rows = labeller.block(block, f.path, self.as_of)
            if late:
                held.append((cols, rows))
            else:
                self.out.put(("cols", self.i, self.at + reader.position, cols, rows, []))

        block: list[tuple[int, object]] = []
        for rec in reader:
            block.append((self.base, rec))  # each record its own position: a later duplicate wins
            self.base += 1
            if len(block) >= 256:
                send(block)
                block = []
        if block:
            send(block)
        if late:
            as_of = reader.default_as_of()
            self.out.put(("begin", self.i, "file", f.path, fmt, as_of, ictrp))
            for cols, rows in held:
                self.out.put(("cols", self.i, self.at, _late_as_of(cols, as_of) if cols is not None else None, rows, []))
        self.out.put(("end", self.i, [p.model_dump() for p in problems], None, reader.provenance))


def _split_worker(jobs: list[_Job], labels_path: str | None, as_of, pending, conn, *,
                  cols: bool = True, rows: bool = False) -> None:
    """Read every job's files; prepare some blocks, hand the others on (see :class:`_Splitter`
    and :class:`_Group`); then ("done", job, problems, time) per job. ``cols``/``rows``: prepare
    store columns / CSV rows; ``labels_path``: write label rows there (None: no store)."""
    # the sending thread waits for the interpreter lock while this thread parses: at the default
    # 5 ms between switches the importer waited 1-3 ms for many blocks (its idle time in the
    # 6,786-record tar 0.23 -> 0.16 s with 0.5 ms)
    sys.setswitchinterval(0.0005)
    out = _Sender(conn)
    try:
        with contextlib.ExitStack() as stack:
            labels = stack.enter_context(open(labels_path, "w", encoding="utf-8")) if labels_path else None
            for i, job in enumerate(jobs):
                if job.group:
                    _Group(out, i, as_of, labels, pending, cols=cols, rows=rows).run(job.files)
                    continue
                path, fmt = job.files[0].path, job.files[0].format
                problems: list[ImportProblem] = []
                split = _Splitter(out, i, path, as_of, _Labeller(labels, i, cols=cols, rows=rows), problems, pending)
                reader = TrialReader(path, problems=problems, shard=split.take, on_foreign=split.foreign, format=fmt)
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


def _shared(ctx, jobs: list[_Job], *, store, writer, as_of, tmp: Path | None,
            problems: list[ImportProblem], timings: dict | None = None,
            relabel_runs: list[str] | None = None, report: ImportReport | None = None) -> tuple[int, int, list[Path]]:
    """Read, classify and (with ``store``) import the jobs (see :func:`_plan`) with both
    processes sharing the work; with ``writer``, write the CSV rows in file order; with
    ``tmp``, the label rows of a store there (without ``tmp`` and ``writer`` nothing is
    classified: ``trials import``). ``report`` gets each run's id, records read, rows written
    and note, as :meth:`TrialStore.import_files` reports them.

    The worker reads the files; this process parses the blocks it is handed, writes every
    block in file order and so parses each record exactly once. Returns (rows written to the
    store, CSV rows, label files); the runs whose rows need labels from the store (ICTRP
    files among one-study files) are appended to ``relabel_runs``. Raises
    :class:`_WorkerFailed` if the worker dies (the caller runs again serially: the upsert
    makes that safe).
    """
    pending = ctx.Value("i", 0)
    conn, sending = ctx.Pipe(duplex=False)
    label_files = [tmp / "labels.jsonl", tmp / "labels-main.jsonl"] if store is not None and tmp is not None else []
    proc = _start(ctx, _split_worker, (jobs, str(label_files[0]) if label_files else None, as_of, pending, sending),
                  {"cols": store is not None, "rows": writer is not None})
    sending.close()  # the worker holds the only sending end: its death reads as end-of-file
    written = n_rows = 0
    relabel_runs = relabel_runs if relabel_runs is not None else []
    try:
        with contextlib.ExitStack() as stack:
            labels = stack.enter_context(open(label_files[1], "w", encoding="utf-8")) if label_files else None
            bar = stack.enter_context(progress_bar(by_bytes=True))
            for i, job in enumerate(jobs):
                follow = _follow_group if job.group else _follow_file
                w, r = follow(conn, proc, i, job, store=store, writer=writer, labels=labels, as_of=as_of, bar=bar,
                              pending=pending, problems=problems, timings=timings, relabel_runs=relabel_runs,
                              report=report)
                written += w
                n_rows += r
        proc.join(10)
    finally:
        _stop(proc)
        conn.close()
    if proc.exitcode != 0:
        raise _WorkerFailed(f"the worker process stopped (exit code {proc.exitcode})")
    return written, n_rows, label_files


def _next(conn, proc, i: int) -> tuple:
    msg = _receive(conn, proc)
    if msg[1] != i:
        raise _WorkerFailed(f"the worker sent job {msg[1]} while job {i} is read")
    return msg


def _take_block(msg: tuple, parse: Callable, source: str, labeller: _Labeller, as_of, pending,
                ordered: list[ImportProblem], own: list[ImportProblem], importer, writer) -> tuple[int, int, int]:
    """One "cols" message (a block the worker prepared) or "units" message (a block handed on
    as read, parsed here by ``parse(units, encoding)``): its store columns to ``importer``, its
    CSV rows to ``writer``, its problems after those already reported. Returns (bytes read so
    far, records, CSV rows)."""
    if msg[0] == "cols":
        _, _, at, cols, rows, probs = msg
    else:
        _, _, at, enc, units, probs = msg
        cols, rows = labeller.block(parse(units, enc), source, as_of)
        with pending.get_lock():
            pending.value -= 1
        ordered.extend(own)
        own.clear()
    ordered.extend(ImportProblem(**p) for p in probs)
    if importer is not None:
        importer.add(cols)
    n_rows = 0
    if rows:
        writer.writerows(rows)
        n_rows = len(rows)
    return at, len(rows) if rows is not None else len(cols["registry_id"]), n_rows


def _parse_files(problems: list[ImportProblem], units, _enc) -> list[tuple[int, object]]:
    """The records of one-study files handed on as read: ``(number, (path, format, content))``."""
    records = []
    for number, (path, fmt, data) in units:
        reader = TrialReader(path, problems=problems, format=fmt, content=data)
        records.extend((number + min(k, _ONE_STUDY_SPAN - 1), rec) for k, rec in enumerate(reader))
    return records


def _follow_file(conn, proc, i: int, job: _Job, *, store, writer, labels, as_of, bar, pending,
                 problems: list[ImportProblem], timings: dict | None, relabel_runs: list[str],
                 report: ImportReport | None) -> tuple[int, int]:
    """This process's side of a file split by :class:`_Splitter`: (rows written, CSV rows)."""
    path, fmt = Path(job.files[0].path), job.files[0].format
    file_problems: list[ImportProblem] = []  # the store's (records it refuses)
    ordered: list[ImportProblem] = []  # the reading's, in file order
    own: list[ImportProblem] = []
    parser = TrialReader(path, problems=own, format=fmt)
    labeller = _Labeller(labels, i, cols=store is not None, rows=writer is not None)
    importer = store._block_import(path, fmt, as_of=as_of, problems=file_problems) if store is not None else None
    task = bar.add_task(path.name, total=path.stat().st_size, records=0)

    def parse(units, enc):
        return [(number, rec) for number, unit in units for rec in parser.parse_unit(number, unit, enc)]

    n = n_rows = written = 0
    try:
        while True:
            msg = _next(conn, proc, i)
            if msg[0] == "done":
                ordered.extend(ImportProblem(**p) for p in msg[2])
                if timings is not None:
                    timings["worker_done"] = msg[3]
                break
            at, k, r = _take_block(msg, parse, str(path), labeller, as_of, pending, ordered, own, importer, writer)
            n, n_rows = n + k, n_rows + r
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
        written += _ran(report, importer, importer.finish())
    problems.extend(file_problems)
    if timings is not None:  # seconds since the start of the pipeline (last file's)
        timings["store_done"] = time.perf_counter()
    return written, n_rows


def _follow_group(conn, proc, i: int, job: _Job, *, store, writer, labels, as_of, bar, pending,
                  problems: list[ImportProblem], timings: dict | None, relabel_runs: list[str],
                  report: ImportReport | None) -> tuple[int, int]:
    """This process's side of a group job read by :class:`_Group`: the import runs it opens
    and closes (one per stretch of one-study files, as :meth:`TrialStore.import_files` makes
    them), the blocks it is handed parsed here. Returns (rows written, CSV rows)."""
    from neuromodmap.trials.store import import_note

    folder = job.files[0].folder
    order = {f.path: k for k, f in enumerate(job.files)}
    name = f"{folder.name or folder}/" if folder is not None else "files"
    task = bar.add_task(name, total=job.size, records=0)
    labeller = _Labeller(labels, i, cols=store is not None, rows=writer is not None)
    importer = None
    group = False
    first = ""
    found: list[ImportProblem] = []  # the run's: the reading's (in file order), then the store's
    ordered: list[ImportProblem] = []
    own: list[ImportProblem] = []
    n = n_rows = written = 0
    try:
        while True:
            msg = _next(conn, proc, i)
            kind = msg[0]
            if kind == "done":
                if timings is not None:
                    timings["worker_done"] = msg[3]
                break
            if kind == "failed":  # an unreadable file before any one-study file: a failed run
                problem = ImportProblem(**msg[3])
                if store is not None:
                    run_id = store._start_run(kind="file", source=msg[2], fmt=None, query=None, as_of=as_of, n_files=1)
                    store._finish_run(run_id, n_read=0, n_ok=0, problems=[problem], status="failed")
                    if report is not None:
                        report.runs.append(run_id)
                problems.append(problem)
                continue
            if kind == "begin":
                _, _, what, first, fmt, run_as_of, ictrp = msg
                group, found, ordered = what == "group", [], []
                if store is not None:
                    run = ({"kind": "folder" if folder is not None else "files", "n_files": None,
                            "source": str(folder) if folder is not None else first} if group else {})
                    importer = store._block_import(Path(first), fmt, as_of=run_as_of, problems=found, **run)
                    if ictrp:
                        relabel_runs.append(importer.run_id)
                continue
            if kind == "end":
                ordered.extend(ImportProblem(**p) for p in msg[2])
                if group:  # file by file, as one process reports them
                    ordered.sort(key=lambda p: order.get(p.source, len(order)))
                found[:] = ordered + found
                if importer is not None:
                    written += _ran(report, importer,
                                    importer.finish(**_group_run(msg[3], folder, first)) if group else importer.finish(),
                                    note=import_note(first, msg[4], importer.n_read, run_as_of,
                                                     given=as_of is not None))
                    importer = None
                problems.extend(found)
                continue
            at, k, r = _take_block(msg, partial(_parse_files, own), first, labeller, as_of, pending, ordered, own,
                                   importer, writer)
            n, n_rows = n + k, n_rows + r
            bar.update(task, completed=at, records=n)
        bar.update(task, completed=job.size)
    except BaseException:
        if importer is not None:
            importer.abort()
        raise
    if timings is not None:
        timings["store_done"] = time.perf_counter()
    return written, n_rows


def _ran(report: ImportReport | None, importer, written: int, note: str | None = None) -> int:
    """Add an import run the importer finished (``written`` rows) to ``report``; return ``written``."""
    if report is None:
        return written
    report.runs.append(importer.run_id)
    report.n_read += importer.n_read
    report.n_upserted += written
    if note:
        report.notes.append(note)
    return written


def _group_run(run: dict, folder: Path | None, first: str) -> dict:
    """What a run of one-study files covered, as :meth:`TrialStore.import_files` records it."""
    n_files = run["n_files"]
    if folder is not None:
        source, kind = str(folder), "folder"
    elif n_files == 1:
        source, kind = first, "file"
    else:
        source, kind = run["common"] or os.path.dirname(first), "files"
    return {"source": source, "kind": kind, "fmt": ", ".join(run["formats"]) or None, "n_files": n_files}


# ---------------------------------------------------------------------- one process
def _csv_serial(files: list[InputFile], writer, problems: list[ImportProblem], progress) -> tuple[int, int]:
    n = n_neuromod = 0
    task = progress.add_task("classifying", total=None)
    for f in files:
        progress.update(task, description=Path(f.path).name)
        try:  # detected here (a one-study file from the content read whole: read once)
            reader = reader_for(f, problems=problems)
        except TrialFileError as err:
            problems.append(ImportProblem(source=f.path, location="file", reason=str(err)))
            continue
        for rec in reader:
            c = classify(rec.trial)
            writer.writerow(classification_row(c).values())
            n += 1
            n_neuromod += bool(c.neuromod)
            progress.advance(task)
    return n, n_neuromod


def _import_serial(store, files: list[InputFile], *, as_of, problems: list[ImportProblem], writer,
                   labels_path: Path | None) -> tuple[ImportReport, int, bool]:
    """Import in this process, classifying each record as it is read (label rows to
    ``labels_path``, CSV rows to ``writer``). Returns (the store's report, CSV rows, whether
    an ICTRP record was read)."""
    n_rows = 0
    ictrp = False
    with contextlib.ExitStack() as stack:
        labels = stack.enter_context(open(labels_path, "w", encoding="utf-8")) if labels_path else None
        dumps = json_text
        seq = 0

        def on_record(rec) -> None:
            nonlocal seq, n_rows, ictrp
            ictrp = ictrp or rec.trial.source_format.startswith("ictrp")
            c = classify(rec.trial)
            if labels is not None:
                labels.write(dumps(label_record(c, seq)))
                labels.write("\n")
            seq += 1
            if writer is not None:
                writer.writerow(classification_row(c).values())
                n_rows += 1

        report = store.import_files(files, as_of=as_of, problems=problems, on_record=on_record)
    return report, n_rows, ictrp


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
        ``n_neuromod``, ``import_seconds``, ``seconds``, ``problems``, ``notes`` (the lines
        ``trials import`` prints for website exports: layout, records, as-of date).
    """
    from neuromodmap.trials.store import ImportReport

    problems = problems if problems is not None else []
    start = time.perf_counter()
    # the files named, a folder standing for the files under it (its InputFile keeps the folder,
    # so that a folder is still one import run); each format detected once: here, or (files of
    # one study shared by two processes) by the worker from the content it reads
    ctx = _fork_context()
    files, jobs = _plan(ctx, expand_inputs(inputs))
    parallel = jobs is not None
    timings: dict[str, float] = {}
    n_loaded = n_imported = 0
    runs: list[str] = []  # the runs whose rows are labelled from the store afterwards (ICTRP)
    ictrp = False
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
            report = ImportReport()
            if parallel:
                found: list[ImportProblem] = []
                try:
                    n_imported, _, label_files = _shared(ctx, jobs, store=store, writer=writer, as_of=as_of,
                                                         tmp=tmp, problems=found, timings=timings, relabel_runs=runs,
                                                         report=report)
                    ictrp = bool(runs)
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
            if not done:  # the store detects each file's format as it reads it, and reports the unreadable ones
                label_files = [tmp / "labels-serial.jsonl"]
                report, _, ictrp = _import_serial(store, files, as_of=as_of, problems=problems, writer=writer,
                                                  labels_path=label_files[0])
                n_imported, runs = report.n_upserted, report.runs
                # ICTRP rows never replace a stored CT.gov row, so their labels must come from the store
                if ictrp:
                    label_files = []
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
            "n_labels_loaded": n_loaded, "parallel": bool(parallel), "timings": timings, "notes": report.notes}


@relaxed_gc()
def import_files(store, inputs: list, *, as_of=None, problems: list[ImportProblem] | None = None) -> ImportReport:
    """Import ``inputs`` into ``store`` without classifying them (``neuromodmap trials import``).

    The route of :func:`import_and_classify` with nothing classified and no labels written:
    shared by two processes where :func:`_plan` finds work to share (the worker only reads,
    parses and prepares store columns), else :meth:`TrialStore.import_files` in this process;
    if the worker fails, a warning, then that one-process import (the upsert makes the repeat
    safe). ``inputs``: paths, or :class:`InputFile` as :func:`expand_inputs` gives them.

    Returns
    -------
    ImportReport
        As :meth:`TrialStore.import_files` reports it (runs, records read, rows written,
        problems, the website exports' notes), whichever way the files went.
    """
    from neuromodmap.trials.store import ImportReport

    problems = problems if problems is not None else []
    start = time.perf_counter()
    ctx = _fork_context()
    files, jobs = _plan(ctx, expand_inputs(inputs))
    if jobs is not None:
        report = ImportReport(files=[f.path for f in files])
        try:
            _shared(ctx, jobs, store=store, writer=None, as_of=as_of, tmp=None, problems=report.problems,
                    report=report)
        except _WorkerFailed as err:
            warnings.warn(f"the import's second process failed ({str(err).strip().splitlines()[-1]}); "
                          "importing in one process", stacklevel=2)
        else:
            problems.extend(report.problems)
            report.seconds = time.perf_counter() - start
            return report
    report = store.import_files(files, as_of=as_of, problems=problems)
    report.seconds = time.perf_counter() - start
    return report


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
        ``n_trials`` (rows written), ``n_neuromod``, ``seconds``; with ``db`` and inputs,
        ``notes`` too (see :func:`import_and_classify`).
    """
    problems = problems if problems is not None else []
    inputs = [Path(p) for p in inputs or []]
    output = Path(output)
    start = time.perf_counter()
    files: list[InputFile] = []
    if inputs:  # folders stand for the files under them
        files = expand_inputs(inputs)
        # nothing is written when no input can be read: checked file by file up to the first
        # readable one (the others are detected as they are read, each once)
        unreadable: list[ImportProblem] = []
        for k, f in enumerate(files):
            try:
                files[k] = InputFile(f.path, f.folder, f.size, detect_format(f.path))
                break
            except TrialFileError as err:
                unreadable.append(ImportProblem(source=f.path, location="file", reason=str(err)))
        else:
            raise TrialFileError("; ".join(p.reason for p in unreadable))
        if db is None:  # with a store, its import reports them (a failed run each)
            problems.extend(unreadable)
            files = files[len(unreadable):]
    if files and db is not None:
        from neuromodmap.trials.store import TrialStore

        with TrialStore(db) as store:
            stats = import_and_classify(store, files, problems=problems, csv_output=output)
        return {"n_trials": stats["n_classified"], "n_neuromod": stats["n_neuromod"],
                "seconds": time.perf_counter() - start, "notes": stats["notes"]}
    n_trials = n_neuromod = 0
    with progress_bar() as progress, atomic_write(output, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        if files:
            ctx = _fork_context()
            files, jobs = _plan(ctx, files)
            done = False
            if jobs is not None:
                found: list[ImportProblem] = []
                counter = _Counting(writer)
                try:
                    _, n_trials, _ = _shared(ctx, jobs, store=None, writer=counter, as_of=None, tmp=None,
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
                n_trials, n_neuromod = _csv_serial(files, writer, problems, progress)
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
