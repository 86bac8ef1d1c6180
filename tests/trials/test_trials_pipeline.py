"""The two-process pipeline gives exactly what one process gives, on real corpus records.

Every expected label here comes from calling :func:`classify` on the record directly, not
from the pipeline; the parallel paths are forced on small slices by lowering the size
threshold and the shard block size (the forked worker inherits both).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import struct
from pathlib import Path

import pytest
from test_trials_io_helpers import damaged_xml_tar

from neuromodmap.trials import io as trials_io
from neuromodmap.trials import pipeline
from neuromodmap.trials.classify import CLASSIFIER_VERSION, classification_row, classify
from neuromodmap.trials.io import TrialReader, read_trials
from neuromodmap.trials.models import ImportProblem
from neuromodmap.trials.store import TrialStore

N_LINES = 1200


@pytest.fixture(scope="module")
def corpus_slice(tmp_path_factory, corpus_path: Path) -> Path:
    """The first real corpus lines, with two broken lines and a later changed duplicate."""
    lines = []
    with gzip.open(corpus_path, "rt", encoding="utf-8") as src:
        for i, line in enumerate(src):
            if i >= N_LINES:
                break
            lines.append(line)
    dup = json.loads(lines[10])
    dup["protocolSection"]["identificationModule"]["briefTitle"] = (
        "Repetitive transcranial magnetic stimulation of the left DLPFC for treatment-resistant depression"
    )
    lines[700] = "{not json\n"                 # line 701
    lines[1001] = '{"protocolSection": \n'     # line 1002, truncated
    lines.append(json.dumps(dup) + "\n")       # line 1201: the later copy of line 11 wins
    path = tmp_path_factory.mktemp("pipeline") / "slice.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as dst:
        dst.writelines(lines)
    return path


@pytest.fixture
def force_parallel(monkeypatch):
    monkeypatch.delenv("NEUROMODMAP_SERIAL", raising=False)
    monkeypatch.setattr(pipeline, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(trials_io, "SHARD_BLOCK", 16)  # many blocks in a small slice
    if pipeline._fork_context() is None:
        pytest.skip("no fork start method or a single core: the serial path is tested elsewhere")


def _expected_rows(path: Path) -> list[list[str]]:
    return [list(classification_row(classify(r.trial)).values()) for r in read_trials(path, problems=[])]


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == pipeline.CSV_COLUMNS
    return rows[1:]


def test_reader_shards_partition_the_file(corpus_slice, monkeypatch):
    monkeypatch.setattr(trials_io, "SHARD_BLOCK", 16)
    whole = [(r.location, r.trial.registry_id) for r in read_trials(corpus_slice, problems=[])]
    parts, problem_lines = [], []
    for k in range(3):
        problems: list[ImportProblem] = []
        parts.append([(r.location, r.trial.registry_id) for r in TrialReader(corpus_slice, problems=problems, shard=(k, 3))])
        problem_lines += [p.location for p in problems]
    assert sorted(x for part in parts for x in part) == sorted(whole)
    assert all(set(a).isdisjoint(b) for i, a in enumerate(parts) for b in parts[i + 1:])
    assert sorted(problem_lines) == ["line 1002", "line 701"]  # each reported once, by its owner
    # a callable decides block by block
    odd = [r.location for r in TrialReader(corpus_slice, problems=[], shard=lambda b: b % 2 == 1)]
    assert odd and all(((int(loc.split()[1]) - 1) // 16) % 2 == 1 for loc in odd)
    with pytest.raises(ValueError, match="0 <= k < n"):
        TrialReader(corpus_slice, shard=(2, 2))


def test_classify_to_csv_two_processes_equal_one(tmp_path, corpus_slice, force_parallel, monkeypatch):
    problems: list[ImportProblem] = []
    stats = pipeline.classify_to_csv([corpus_slice], tmp_path / "par.csv", problems=problems)
    rows = _read_csv(tmp_path / "par.csv")
    expected = _expected_rows(corpus_slice)
    assert rows == expected  # same rows, in the file's order
    assert stats["n_trials"] == len(expected) == N_LINES - 1  # 2 broken lines, 1 duplicate added
    assert stats["n_neuromod"] == sum(r[1] == "true" for r in expected) > 0
    assert sorted(p.location for p in problems) == ["line 1002", "line 701"]
    assert all(p.source == str(corpus_slice) for p in problems)
    monkeypatch.setenv("NEUROMODMAP_SERIAL", "1")
    pipeline.classify_to_csv([corpus_slice], tmp_path / "ser.csv", problems=[])
    assert (tmp_path / "ser.csv").read_bytes() == (tmp_path / "par.csv").read_bytes()


def test_import_and_classify_labels_every_stored_trial(tmp_path, corpus_slice, force_parallel):
    problems: list[ImportProblem] = []
    with TrialStore(tmp_path / "t.duckdb") as store:
        stats = pipeline.import_and_classify(store, [corpus_slice], problems=problems)
        assert stats["parallel"] is True
        assert {"n_imported", "n_classified", "n_neuromod", "import_seconds", "seconds", "problems"} <= set(stats)
        labels = store.labels_df().set_index("registry_id")
        trials = list(store.iter_trials())
        runs = store.import_runs_df()
    assert len(labels) == len(trials) == stats["n_classified"] == N_LINES - 2
    assert sorted(p.location for p in problems) == ["line 1002", "line 701"]
    assert len(runs) == 1 and runs.iloc[0]["source"] == str(corpus_slice)
    for trial in trials:  # each stored trial carries the label of its stored text
        c = classify(trial)
        row = labels.loc[trial.registry_id]
        assert (row["neuromod"], list(row["modalities"]), row["indication"]) == (c.neuromod, c.modalities, c.indication)
        assert row["classifier_version"] == CLASSIFIER_VERSION
        assert json.loads(row["evidence"]) == [e.model_dump() for e in c.evidence]
    # the later copy of the duplicated record won, in the trials and in the labels
    with gzip.open(corpus_slice, "rt", encoding="utf-8") as fh:
        dup_id = json.loads(fh.readlines()[-1])["protocolSection"]["identificationModule"]["nctId"]
    assert labels.loc[dup_id]["neuromod"] and list(labels.loc[dup_id]["modalities"]) == ["tms"]
    assert stats["n_neuromod"] == int(labels["neuromod"].sum())


def test_failed_worker_falls_back_to_serial(tmp_path, corpus_slice, force_parallel, monkeypatch):
    def broken_worker(*args):
        raise SystemExit(3)

    monkeypatch.setattr(pipeline, "_split_worker", broken_worker)
    problems: list[ImportProblem] = []
    with pytest.warns(UserWarning, match="classifier process failed"), TrialStore(tmp_path / "t.duckdb") as store:
        stats = pipeline.import_and_classify(store, [corpus_slice], problems=problems)
        assert stats["n_classified"] == len(store) == len(store.labels_df()) == N_LINES - 2
    assert sorted(p.location for p in problems) == ["line 1002", "line 701"]  # reported once


def test_worker_dying_midway_falls_back_without_loss(tmp_path, corpus_slice, force_parallel, monkeypatch):
    """The worker is killed while sending its sixth message: the run warns, then imports and
    classifies serially, and the store ends up as a serial import's."""
    real_worker = pipeline._split_worker

    class DyingPipe:
        def __init__(self, conn):
            self.conn, self.n = conn, 0

        def send(self, msg):
            self.n += 1
            if self.n == 6:
                # a message header promising 1,000 bytes, ten of them, then the process is gone
                os.write(self.conn.fileno(), struct.pack("!i", 1000) + b"\x80\x05 half a")
                os._exit(9)
            self.conn.send(msg)

        def close(self):
            self.conn.close()

    def dying_worker(paths, labels_path, as_of, pending, conn, **options):
        real_worker(paths, labels_path, as_of, pending, DyingPipe(conn), **options)

    monkeypatch.setattr(pipeline, "_split_worker", dying_worker)
    with pytest.warns(UserWarning, match="classifier process failed"), TrialStore(tmp_path / "t.duckdb") as store:
        stats = pipeline.import_and_classify(store, [corpus_slice], problems=[])
        got = _stored(store)
        assert stats["n_classified"] == len(store.labels_df()) == N_LINES - 2
    with TrialStore(tmp_path / "serial.duckdb") as serial:
        serial.import_files([corpus_slice], progress=False)
        assert got.equals(_stored(serial))


def test_shared_import_stores_what_a_serial_import_stores(tmp_path, corpus_slice, force_parallel):
    problems: list[ImportProblem] = []
    with TrialStore(tmp_path / "t.duckdb") as store:
        stats = pipeline.import_and_classify(store, [corpus_slice], problems=problems)
        assert stats["n_imported"] == N_LINES - 2
        got = _stored(store)
        got_problems = store.problems_df()[["location", "reason"]]
    serial_problems: list[ImportProblem] = []
    with TrialStore(tmp_path / "serial.duckdb") as serial:
        serial.import_files([corpus_slice], progress=False, problems=serial_problems)
        expected = _stored(serial)
        expected_problems = serial.problems_df()[["location", "reason"]]
    assert got.equals(expected)  # every column, the raw record and its hash included
    assert [(p.location, p.reason) for p in problems] == [(p.location, p.reason) for p in serial_problems]
    assert got_problems.equals(expected_problems)


def _stored(store: TrialStore):
    from neuromodmap.trials.store import TRIAL_COLUMNS

    cols = ", ".join([*TRIAL_COLUMNS, "raw", "source", "as_of", "record_hash"])
    return store.con.execute(f"SELECT {cols} FROM trials ORDER BY registry_id").df()  # noqa: S608


def test_classify_with_db_imports_once_per_file(tmp_path, corpus_slice, trials_dir, force_parallel):
    xml = trials_dir / "ctgov_legacy_xml" / "NCT02654730.xml"
    out = tmp_path / "with_db.csv"
    pipeline.classify_to_csv([corpus_slice, xml], out, db=tmp_path / "t.duckdb", problems=[])
    assert _read_csv(out) == _expected_rows(corpus_slice) + _expected_rows(xml)
    with TrialStore(tmp_path / "t.duckdb", read_only=True) as store:
        runs = store.import_runs_df()
        assert sorted(runs["source"]) == sorted([str(corpus_slice), str(xml)])  # one run per file
        assert set(runs["status"]) == {"completed"}
        assert len(store.labels_df()) == len(store) == N_LINES - 2 + 1


@pytest.fixture(scope="module")
def bad_field_slice(tmp_path_factory, corpus_path: Path) -> Path:
    """300 real corpus lines; lines 5, 40, 41 and 290 each hold one bad field, line 100 has
    no NCT id (the only record skipped)."""
    with gzip.open(corpus_path, "rt", encoding="utf-8") as src:
        studies = [json.loads(next(src)) for _ in range(300)]
    studies[4]["protocolSection"]["identificationModule"]["briefTitle"] = 12345
    studies[39]["protocolSection"]["descriptionModule"] = "not an object"
    studies[40]["protocolSection"]["descriptionModule"]["briefSummary"] = ["a", "list"]
    studies[289]["protocolSection"]["designModule"] = {"enrollmentInfo": {"count": -3}}
    studies[99]["protocolSection"]["identificationModule"].pop("nctId")
    path = tmp_path_factory.mktemp("badfields") / "slice.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in studies), encoding="utf-8")
    return path


def test_shared_import_keeps_bad_field_records_as_a_serial_import(tmp_path, bad_field_slice, force_parallel):
    problems: list[ImportProblem] = []
    with TrialStore(tmp_path / "t.duckdb") as store:
        stats = pipeline.import_and_classify(store, [bad_field_slice], problems=problems)
        assert stats["parallel"] is True and stats["n_imported"] == 299
        got = _stored(store)
        cols = ["source", "location", "registry_id", "field", "action", "reason"]
        got_problems = store.problems_df()[cols]
        labels = store.labels_df().set_index("registry_id")
        kept = store.get_trial(json.loads(bad_field_slice.read_text().splitlines()[4])["protocolSection"][
            "identificationModule"]["nctId"])
    serial_problems: list[ImportProblem] = []
    with TrialStore(tmp_path / "serial.duckdb") as serial:
        serial.import_files([bad_field_slice], progress=False, problems=serial_problems)
        expected = _stored(serial)
        expected_problems = serial.problems_df()[cols]
    assert got.equals(expected)
    assert [p.model_dump() for p in problems] == [p.model_dump() for p in serial_problems]
    assert got_problems.equals(expected_problems)
    assert [(p.location, p.field, p.action) for p in problems] == [
        ("line 5", "protocolSection.identificationModule.briefTitle", "field emptied"),
        ("line 40", "protocolSection.descriptionModule", "field emptied"),
        ("line 41", "protocolSection.descriptionModule.briefSummary", "field emptied"),
        ("line 100", "protocolSection.identificationModule.nctId", "record skipped"),
        ("line 290", "protocolSection.designModule.enrollmentInfo.count", "field emptied"),
    ]
    # the record whose title was emptied is stored, and labelled from its summary
    assert kept is not None and kept.title == "" and kept.brief_summary
    c = classify(kept)
    assert labels.loc[kept.registry_id]["neuromod"] == c.neuromod
    assert len(labels) == 299




@pytest.fixture(scope="module")
def xml_tar(tmp_path_factory, trials_dir: Path) -> Path:
    """The first 150 real AllPublicXML records as a tar.gz, with a README, a member that is not
    well-formed XML (member 61) and, at the end, a changed copy of member 3 (the later copy wins)."""
    return damaged_xml_tar(trials_dir, 150, tmp_path_factory.mktemp("tar") / "subset.tar.gz")


@pytest.fixture
def force_parallel_archives(force_parallel, monkeypatch):
    monkeypatch.setattr(trials_io, "ARCHIVE_BLOCK", 4)  # many blocks in a small archive


def test_archive_split_between_processes_equals_one_process(tmp_path, xml_tar, force_parallel_archives):
    """A tar of legacy XML records is shared by two processes like JSON lines: the store,
    the problems (in archive order) and the labels are those of a one-process import."""
    problems: list[ImportProblem] = []
    with TrialStore(tmp_path / "t.duckdb") as store:
        stats = pipeline.import_and_classify(store, [xml_tar], problems=problems, csv_output=tmp_path / "par.csv")
        assert stats["parallel"] is True
        got = _stored(store)
        got_problems = store.problems_df()[["source", "location", "reason", "action"]]
        labels = store.labels_df().set_index("registry_id")
        trials = list(store.iter_trials())
    serial_problems: list[ImportProblem] = []
    with TrialStore(tmp_path / "serial.duckdb") as serial:
        serial.import_files([xml_tar], progress=False, problems=serial_problems)
        expected = _stored(serial)
        expected_problems = serial.problems_df()[["source", "location", "reason", "action"]]
    assert len(got) == 150 - 1  # one record cut short; the copy replaced its original
    assert got.equals(expected)
    assert [p.model_dump() for p in problems] == [p.model_dump() for p in serial_problems]
    assert [p.location.split("/")[-1] for p in problems] == ["README.txt", members_name(xml_tar, 61)]
    assert got_problems.equals(expected_problems)
    # one CSV row per record read, in archive order, as classify() gives them
    assert _read_csv(tmp_path / "par.csv") == _expected_rows(xml_tar)
    assert len(labels) == len(trials) == 149
    for trial in trials:
        c = classify(trial)
        assert (labels.loc[trial.registry_id]["neuromod"], list(labels.loc[trial.registry_id]["modalities"])) == (
            c.neuromod, c.modalities)
    copy = next(t for t in trials if t.title.startswith("Copy: "))
    assert copy.registry_id == expected.loc[expected["title"].str.startswith("Copy: "), "registry_id"].iat[0]


def members_name(path: Path, k: int) -> str:
    """The file name of the k-th regular member (from 1) of a tar."""
    import tarfile

    with tarfile.open(path) as tf:
        return [m.name for m in tf if m.isfile()][k - 1].split("/")[-1]


def test_archive_classify_to_csv_two_processes_equal_one(tmp_path, xml_tar, force_parallel_archives, monkeypatch):
    problems: list[ImportProblem] = []
    stats = pipeline.classify_to_csv([xml_tar], tmp_path / "par.csv", problems=problems)
    assert _read_csv(tmp_path / "par.csv") == _expected_rows(xml_tar)
    assert stats["n_trials"] == 150
    monkeypatch.setenv("NEUROMODMAP_SERIAL", "1")
    serial_problems: list[ImportProblem] = []
    pipeline.classify_to_csv([xml_tar], tmp_path / "ser.csv", problems=serial_problems)
    assert (tmp_path / "ser.csv").read_bytes() == (tmp_path / "par.csv").read_bytes()
    assert [p.model_dump() for p in problems] == [p.model_dump() for p in serial_problems]
    assert len(problems) == 2


def test_cut_archive_reported_once_when_shared(tmp_path, xml_tar, force_parallel_archives):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(xml_tar.read_bytes()[: xml_tar.stat().st_size * 2 // 3])
    problems: list[ImportProblem] = []
    with TrialStore(tmp_path / "t.duckdb") as store:
        pipeline.import_and_classify(store, [cut], problems=problems)
        n = len(store)
    serial_problems: list[ImportProblem] = []
    with TrialStore(tmp_path / "serial.duckdb") as serial:
        serial.import_files([cut], progress=False, problems=serial_problems)
        assert len(serial) == n > 0
    assert [p.model_dump() for p in problems] == [p.model_dump() for p in serial_problems]
    assert sum(p.location == "archive" for p in problems) == 1


def test_ictrp_import_relabels_only_the_rows_it_wrote(tmp_path, corpus_slice, trials_dir):
    """An ICTRP export imported over a classified store: every stored trial carries the label of
    its stored row; the ICTRP copy of a stored CT.gov trial changes neither row nor label; rows
    the export did not touch are not classified again."""
    import re

    with gzip.open(corpus_slice, "rt", encoding="utf-8") as fh:
        nct = json.loads(fh.readline())["protocolSection"]["identificationModule"]["nctId"]
    xml = (trials_dir / "who_ictrp_xml_2024_machado" / "ICTRP-Results(1).xml").read_text(encoding="utf-8")
    trials = re.findall(r"<Trial>.*?</Trial>", xml, flags=re.S)[:20]
    # the first one becomes an ICTRP copy of the corpus' first trial, titled as a TMS trial
    trials[0] = re.sub(r"<TrialID>.*?</TrialID>", f"<TrialID>{nct}</TrialID>", trials[0], flags=re.S)
    trials[0] = re.sub(r"<Public_title>.*?</Public_title>",
                       "<Public_title>Repetitive transcranial magnetic stimulation for depression</Public_title>",
                       trials[0], flags=re.S)
    ictrp = tmp_path / "ictrp.xml"
    ictrp.write_text("<?xml version='1.0' encoding='UTF-8' ?>\n<Trials_downloaded_from_ICTRP>\n"
                     + "\n".join(trials) + "\n</Trials_downloaded_from_ICTRP>\n", encoding="utf-8")
    with TrialStore(tmp_path / "t.duckdb") as store:
        pipeline.import_and_classify(store, [corpus_slice])
        before = store.labels_df().set_index("registry_id")
        ct_row = store.get_trial(nct)
        stats = pipeline.import_and_classify(store, [ictrp])
        labels = store.labels_df().set_index("registry_id")
        stored = {t.registry_id: t for t in store.iter_trials()}
    assert len(stored) == len(before) + 19 == stats["n_classified"] == len(labels)
    assert stored[nct].source_format == ct_row.source_format and stored[nct].title == ct_row.title
    for rid, trial in stored.items():
        c = classify(trial)
        assert (labels.loc[rid]["neuromod"], list(labels.loc[rid]["modalities"])) == (c.neuromod, c.modalities), rid
    assert not labels.loc[nct]["neuromod"] and not classify(ct_row).neuromod
    # the corpus rows were not classified again (same time stamp), the copy's included
    assert (labels.loc[before.index, "classified_at"] == before["classified_at"]).all()
