"""``neuromodmap trials import`` takes the two-process route of ``trials classify --db`` (the
worker reads and prepares store columns, nothing is classified, no label is written) and
leaves exactly what one process (``NEUROMODMAP_SERIAL=1``) leaves: the stored rows, the import
runs, the problems, the printed notes, the exit code. Real files from shared/data: the shipped
AllPublicXML tar, folders of one-study files, the five ClinicalTrials.gov website exports.

Counts and dates asserted come from the data folders' SOURCES.md files, not from our code.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import tarfile
import warnings
from pathlib import Path

import pandas as pd
import pytest
from test_trials_io_helpers import ALLPUBLICXML, damaged_xml_tar, store_state
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.trials import cli as trials_cli
from neuromodmap.trials import io as trials_io
from neuromodmap.trials import pipeline

# the five website exports (CSV, the current and the classic site), with their rows (SOURCES.md)
WEBSITE_EXPORTS = {
    "ctgov_csv_alzheimer_dementia_sammijiyoung2/ctg-studies.csv.gz": 4145,
    "ctgov_csv_classic_oldformat_trauma_jeffreys518/SearchResults.csv.gz": 5938,
    "ctgov_csv_mixed_1000_anand21jv/ctg-studies.csv.gz": 1000,
    "ctgov_v2_json_zip_and_csv_erectile_dysfunction_marcmorcos/ctg-studies.csv.gz": 635,
    "ctgov_legacy_xml_allpublicxml_subset_reesewang25/SearchResults.csv": 100,
}
runner = CliRunner()


@pytest.fixture
def two_processes(monkeypatch):
    monkeypatch.delenv("NEUROMODMAP_SERIAL", raising=False)
    if pipeline._fork_context() is None:
        pytest.skip("no fork start method or a single core: the one-process way is tested elsewhere")


class Run:
    """One CLI call's output, exit code, route and the records either process classified."""

    def __init__(self, output: str, exit_code: int, db: Path, shared: int, classified: int, warned: list[str]):
        self.output, self.exit_code, self.db = output, exit_code, db
        self.shared, self.classified, self.warned = shared, classified, warned

    @property
    def flat(self) -> str:
        """The output on one line, the store's path and the timing left out."""
        flat = " ".join(self.output.split()).replace(str(self.db), "DB")
        return re.sub(r"[\d,.]+ s \([^)]*records/s\)", "T", flat)

    def notes(self) -> list[str]:
        return re.findall(r"\S+: ClinicalTrials\.gov website export .*?\)(?=$| /| Imported| Classified)",
                          " ".join(self.output.split()))


def _cli(tmp_path: Path, monkeypatch, name: str, args: list[str], *, serial: bool, command: str = "import") -> Run:
    """``neuromodmap trials <command> ARGS --db <name>.duckdb``, counting calls of the shared
    route and of ``classify`` in either process (the forked worker inherits the wrapper and
    appends to the same log)."""
    db = tmp_path / f"{name}.duckdb"
    log = tmp_path / f"{name}.classified"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    real_classify, real_shared = pipeline.classify, pipeline._shared
    shared = []
    monkeypatch.setattr(trials_cli.console, "_width", 10_000)  # no line wrapped inside a path

    def counting_classify(trial):
        os.write(fd, b".")
        return real_classify(trial)

    monkeypatch.setattr(pipeline, "classify", counting_classify)
    monkeypatch.setattr(pipeline, "_shared", lambda *a, **k: shared.append(1) or real_shared(*a, **k))
    if serial:
        monkeypatch.setenv("NEUROMODMAP_SERIAL", "1")
    else:
        monkeypatch.delenv("NEUROMODMAP_SERIAL", raising=False)
    extra = ["-o", str(tmp_path / f"{name}.csv")] if command == "classify" else []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = runner.invoke(app, ["trials", command, *args, "--db", str(db), *extra])
    finally:
        os.close(fd)
        monkeypatch.setattr(pipeline, "classify", real_classify)
        monkeypatch.setattr(pipeline, "_shared", real_shared)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return Run(result.output, result.exit_code, db, len(shared), log.stat().st_size,
               [str(w.message) for w in caught if issubclass(w.category, UserWarning)])


def _same(two: Run, one: Run) -> dict[str, pd.DataFrame]:
    """The two-process import took the shared route, classified nothing, and left and printed
    what the one-process import did."""
    assert (two.shared, one.shared) == (1, 0)
    assert two.warned == [] and two.classified == 0 and one.classified == 0
    assert two.exit_code == one.exit_code
    assert two.flat == one.flat
    state, expected = store_state(two.db), store_state(one.db)
    for name in ("trials", "runs", "problems", "labels"):
        pd.testing.assert_frame_equal(state[name], expected[name], obj=name)
    assert len(state["labels"]) == 0  # trials import writes no labels
    return state


def test_the_shipped_allpublicxml_tar(tmp_path, trials_dir, two_processes, monkeypatch):
    """The 6,786 full legacy XML records of the shipped tar (SOURCES.md), split by members
    between two processes with no setting lowered."""
    tar = trials_dir / ALLPUBLICXML
    assert tar.stat().st_size >= pipeline._PARALLEL_MIN_BYTES
    two = _cli(tmp_path, monkeypatch, "two", [str(tar)], serial=False)
    one = _cli(tmp_path, monkeypatch, "one", [str(tar)], serial=True)
    state = _same(two, one)
    assert two.exit_code == 0 and "Imported 6,786 trials into DB from 6,786 records in 1 file(s), T" in two.flat
    assert len(state["trials"]) == 6786 and set(state["trials"]["source"]) == {str(tar)}
    run = state["runs"].iloc[0]
    assert (run["kind"], run["format"], run["n_read"], run["n_files"], run["status"]) == (
        "file", "ctgov_xml_tar", 6786, 1, "completed")


@pytest.fixture(scope="module")
def damaged_tar(tmp_path_factory, trials_dir: Path) -> Path:
    """The first 200 members of the shipped tar, with a README (member 11), member 61 cut inside
    its XML and, at the end, a changed copy of member 4 (the later copy wins)."""
    return damaged_xml_tar(trials_dir, 200, tmp_path_factory.mktemp("route") / "damaged.tar.gz")


def test_a_damaged_tar_split_in_many_blocks(tmp_path, damaged_tar, two_processes, monkeypatch):
    """Problems (a member that is no record, a cut record) in archive order, the later copy
    winning, the same summary: blocks of 4 members, so both processes parse some."""
    monkeypatch.setattr(pipeline, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(trials_io, "ARCHIVE_BLOCK", 4)
    two = _cli(tmp_path, monkeypatch, "two", [str(damaged_tar)], serial=False)
    one = _cli(tmp_path, monkeypatch, "one", [str(damaged_tar)], serial=True)
    state = _same(two, one)
    assert two.exit_code == 0 and "Imported 199 trials into DB from 200 records" in two.flat
    with tarfile.open(damaged_tar) as tf:
        cut = [m.name for m in tf if m.isfile()][60]
    assert list(state["problems"]["location"].str.split("/").str[-1]) == ["README.txt", cut.split("/")[-1]]
    assert "2 problem(s)" in two.flat
    trials = state["trials"]
    assert trials["title"].str.startswith("Copy: ").sum() == 1


def test_folders_of_one_study_files(tmp_path, trials_dir, two_processes, monkeypatch):
    """The 60 legacy XML files and the 12 v2 JSON files (SOURCES.md), as two folder arguments,
    with an empty file (first) and a record cut short among the XML files: shared by blocks of
    files with no setting lowered; one run per folder, the empty file a failed run of a file that
    could not be read (exit code 1), as in one process."""
    xml = tmp_path / "ctgov_legacy_xml"
    shutil.copytree(trials_dir / "ctgov_legacy_xml", xml)
    first = sorted(xml.glob("*.xml"))[0]
    (xml / "NCT0000000_empty.xml").write_bytes(b"")
    (xml / "zz_cut.xml").write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    v2 = trials_dir / "ctgov_v2_json"
    assert sum(f.size for f in trials_io.expand_inputs([xml, v2])) >= pipeline._PARALLEL_MIN_BYTES
    two = _cli(tmp_path, monkeypatch, "two", [str(xml), str(v2)], serial=False)
    one = _cli(tmp_path, monkeypatch, "one", [str(xml), str(v2)], serial=True)
    state = _same(two, one)
    assert two.exit_code == 1 and "could not read 1 file(s): " in two.flat and "NCT0000000_empty.xml" in two.flat
    assert f"{xml}: 62 files (the folder and its subfolders)" in two.flat
    assert f"{v2}: 12 files (the folder and its subfolders)" in two.flat
    # the empty file, first, is a failed run of its own; then one run per folder
    runs = state["runs"]
    assert list(runs["kind"]) == ["file", "folder", "folder"]
    assert list(runs["source"]) == [str(xml / "NCT0000000_empty.xml"), str(xml), str(v2)]
    assert list(runs["status"]) == ["failed", "completed", "completed"]
    assert list(runs["n_files"]) == [1, 61, 12] and list(runs["n_read"]) == [0, 60, 12]
    assert sorted(Path(s).name for s in state["problems"]["source"]) == ["NCT0000000_empty.xml", "zz_cut.xml"]
    # the NCT ids the files hold (NCT00980226.xml holds NCT00081588, a second copy of it)
    ids = {re.search(rb"<nct_id>(NCT\d{8})</nct_id>", p.read_bytes())[1].decode()
           for p in (trials_dir / "ctgov_legacy_xml").glob("*.xml")}
    ids |= {re.search(rb'"nctId": *"(NCT\d{8})"', p.read_bytes())[1].decode() for p in v2.glob("*.json")}
    assert sorted(state["trials"]["registry_id"]) == sorted(ids)


@pytest.mark.parametrize("as_of", [None, "2025-06-01"], ids=["as of the files", "as of given"])
def test_the_five_website_exports(tmp_path, trials_dir, two_processes, monkeypatch, as_of):
    """The five real website exports in one call (2.5 MB: the route with no setting lowered;
    each read whole by the worker while the importer writes it): the note each gets (layout,
    records, as-of date) is printed by both routes, and by ``trials classify --db`` too."""
    files = [str(trials_dir / name) for name in WEBSITE_EXPORTS]
    assert sum(os.path.getsize(f) for f in files) >= pipeline._PARALLEL_MIN_BYTES
    args = files + (["--as-of", as_of] if as_of else [])
    two = _cli(tmp_path, monkeypatch, "two", args, serial=False)
    one = _cli(tmp_path, monkeypatch, "one", args, serial=True)
    state = _same(two, one)
    assert two.exit_code == 0
    notes = two.notes()
    assert notes == one.notes() and len(notes) == 5
    for note, (name, n) in zip(notes, WEBSITE_EXPORTS.items(), strict=True):
        assert note.startswith(f"{trials_dir / name}: ClinicalTrials.gov website export (") and f", {n:,} records, " in note
    if as_of is None:  # the latest date posted in each export; the oldest classic layout has none
        assert "(classic site, CSV, 8 columns), 5,938 records, no as-of date in it (pass --as-of)" in notes[1]
        assert notes[2].endswith("(current site, CSV, 30 columns), 1,000 records, as of 2025-05-09 "
                                 "(its latest date posted; pass --as-of for the download date)")
    else:
        assert all(note.endswith(f"records, as of {as_of} (given)") for note in notes)
    assert list(state["runs"]["n_read"]) == list(WEBSITE_EXPORTS.values())
    if as_of is None:  # trials classify --db (no --as-of there): the same notes; here records are classified
        classify = _cli(tmp_path, monkeypatch, "classify", files, serial=False, command="classify")
        assert classify.exit_code == 0, classify.output
        assert classify.shared == 1 and classify.classified >= sum(WEBSITE_EXPORTS.values())
        assert classify.notes() == notes


def test_worker_dying_midway_falls_back_to_one_process(tmp_path, damaged_tar, two_processes, monkeypatch):
    """The worker killed while sending its fifth message: a warning, then the one-process
    import; the stored rows are those of one process (the upsert makes the repeat safe)."""
    monkeypatch.setattr(pipeline, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(trials_io, "ARCHIVE_BLOCK", 4)
    real_worker = pipeline._split_worker

    class DyingPipe:
        def __init__(self, conn):
            self.conn, self.n = conn, 0

        def send(self, msg):
            self.n += 1
            if self.n == 5:  # a message header promising 1,000 bytes, ten of them, then the process is gone
                os.write(self.conn.fileno(), struct.pack("!i", 1000) + b"\x80\x05 half a")
                os._exit(9)
            self.conn.send(msg)

        def close(self):
            self.conn.close()

    monkeypatch.setattr(pipeline, "_split_worker", lambda jobs, labels, as_of, pending, conn, **kw: real_worker(
        jobs, labels, as_of, pending, DyingPipe(conn), **kw))
    two = _cli(tmp_path, monkeypatch, "two", [str(damaged_tar)], serial=False)
    one = _cli(tmp_path, monkeypatch, "one", [str(damaged_tar)], serial=True)
    assert two.exit_code == one.exit_code == 0 and two.shared == 1 and two.classified == 0
    assert len(two.warned) == 1 and "importing in one process" in two.warned[0]
    state, expected = store_state(two.db), store_state(one.db)
    pd.testing.assert_frame_equal(state["trials"], expected["trials"])
    assert len(state["labels"]) == 0
    # the first try is a failed run; the one-process run after it is the one-process import's
    assert list(state["runs"]["status"]) == ["failed", "completed"]
    pd.testing.assert_frame_equal(state["runs"].iloc[1:].reset_index(drop=True), expected["runs"])
