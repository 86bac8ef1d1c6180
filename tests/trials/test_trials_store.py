"""The DuckDB trials store: upsert, idempotent re-import, provenance, labels, kill-and-rerun."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from test_trials_io_helpers import corpus_lines, sample_ictrp, v2_files, write_ictrp_xml, xml_files

from neuromodmap.trials import Classification, Label, TrialFileError, TrialStore, read_trials

_VOLATILE = ["imported_at", "import_run_id"]


def _table(store: TrialStore, drop=()) -> pd.DataFrame:
    df = store.con.execute("SELECT * FROM trials ORDER BY registry_id").df()
    return df.drop(columns=list(drop))


@pytest.fixture
def corpus_slice(tmp_path, corpus_path):
    path = tmp_path / "slice.jsonl"
    path.write_bytes(b"".join(corpus_lines(corpus_path, 3000)))
    return path


def test_import_real_files_and_read_back(tmp_path, trials_dir, corpus_slice):
    store = TrialStore(tmp_path / "t.duckdb")
    files = [corpus_slice, *v2_files(trials_dir), *xml_files(trials_dir)]
    report = store.import_files(files, progress=False, as_of=dt.date(2018, 7, 1))
    assert report.problems == [] and report.n_read == 3000 + 12 + 60
    # NCT00980226.xml repeats NCT00081588, and NCT00001177 is both in the corpus slice and an
    # XML file: one row each, the later import (the full XML record) wins
    assert len(store) == 3000 + 12 + 59 - 1
    assert store.get_trial("NCT00001177").source_format == "ctgov_xml"
    # a round trip through DuckDB gives back the very Trial the reader made
    for path in (trials_dir / "ctgov_v2_json" / "NCT02552212.json", trials_dir / "ctgov_legacy_xml" / "NCT02654730.xml"):
        original = next(iter(read_trials(path))).trial
        assert store.get_trial(original.registry_id) == original
    assert store.get_trial("NCT99999999") is None
    assert store.get_raw("NCT02552212")["protocolSection"]["identificationModule"]["acronym"] == "C-AXSPAND"
    df = store.trials_df()
    assert "raw" not in df.columns and df["registry_id"].is_unique
    row = df.set_index("registry_id").loc["NCT02654730"]
    assert row["as_of"].date() == dt.date(2018, 5, 11)  # the record's own download_date
    assert row["source"].endswith("NCT02654730.xml")
    assert list(row["countries"]) == ["Gambia"] and row["enrollment"] == 61
    first = df.set_index("registry_id").loc["NCT00000102"]
    assert first["as_of"].date() == dt.date(2018, 7, 1)  # the caller's as_of for the corpus
    assert list(first["conditions"]) == [] and list(first["phases"]) == []  # empty, not NULL
    types = dict(store.con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'trials'").fetchall())
    assert types["conditions"] == "VARCHAR[]" and types["start_date"] == "DATE"
    assert types["raw"] == "JSON" and types["interventions"] == "JSON" and types["enrollment"] == "INTEGER"
    trials = list(store.iter_trials(chunk_size=500))
    assert len(trials) == len(store) and trials[0].registry_id == "NCT00000102"
    runs = store.import_runs_df()
    # the corpus is a run of its own; the 72 one-study files, named one after another, are one
    # run over their common folder (each row keeps its own file as source, as checked above)
    assert len(runs) == 2 and set(runs["status"]) == {"completed"}
    assert runs.iloc[0]["format"] == "jsonl" and runs.iloc[0]["n_ok"] == 3000 and runs.iloc[0]["n_files"] == 1
    group = runs.iloc[1]
    assert (group["kind"], group["source"], group["n_files"], group["n_read"]) == ("files", str(trials_dir), 72, 72)
    assert group["format"] == "ctgov_v2_json, ctgov_xml"
    store.close()


def test_reimport_is_idempotent(tmp_path, trials_dir, corpus_slice):
    store = TrialStore(tmp_path / "t.duckdb")
    files = [corpus_slice, *v2_files(trials_dir)]
    first = store.import_files(files, progress=False, as_of=dt.date(2018, 7, 1))
    before = _table(store)
    again = store.import_files(files, progress=False, as_of=dt.date(2018, 7, 1))
    # unchanged records are left exactly as they were, provenance columns included
    pd.testing.assert_frame_equal(_table(store), before)
    assert first.n_upserted == 3012 and again.n_upserted == 0
    # a changed record is updated in place
    changed = tmp_path / "NCT02552212.json"
    study = json.loads((trials_dir / "ctgov_v2_json" / "NCT02552212.json").read_text())
    study["protocolSection"]["statusModule"]["overallStatus"] = "TERMINATED"
    changed.write_text(json.dumps(study))
    report = store.import_files([changed], progress=False)
    assert report.n_upserted == 1 and len(store) == 3012
    assert store.get_trial("NCT02552212").overall_status == "TERMINATED"
    store.close()


def test_ictrp_copy_never_replaces_the_ctgov_record(tmp_path, trials_dir):
    ictrp = write_ictrp_xml(tmp_path / "ictrp.xml", sample_ictrp())
    ctgov = trials_dir / "ctgov_v2_json" / "NCT02552212.json"
    for order in ([ictrp, ctgov], [ctgov, ictrp]):
        store = TrialStore(tmp_path / f"{order[0].stem}.duckdb")
        store.import_files(order, progress=False)
        assert store.get_trial("NCT02552212").source_format == "ctgov_v2"
        assert len(store) == 5  # the 5 ICTRP records, NCT02552212 once
        store.close()


def test_problems_are_recorded_with_the_run(tmp_path, corpus_path):
    lines = corpus_lines(corpus_path, 5)
    path = tmp_path / "broken.jsonl"
    path.write_bytes(lines[0] + b'{"protocolSection": {}\n' + lines[1] + b"not json\n")
    unknown = tmp_path / "notes.txt"
    unknown.write_text("meeting notes")
    store = TrialStore(tmp_path / "t.duckdb")
    collected = []
    report = store.import_files([path, unknown], progress=False, problems=collected)
    assert report.n_read == 2 and len(report.problems) == 3 and collected == report.problems
    problems = store.problems_df()
    assert list(problems["location"]) == ["line 2", "line 4", "file"]
    assert problems["source"].iloc[0] == str(path) and "notes.txt" in problems["reason"].iloc[2]
    runs = store.import_runs_df().set_index("source")
    assert runs.loc[str(path), "n_problems"] == 2 and runs.loc[str(unknown), "status"] == "failed"
    with pytest.raises(TrialFileError, match="missing.json"):
        store.import_files([path, tmp_path / "missing.json"], progress=False)
    store.close()


def test_labels_round_trip(tmp_path, trials_dir):
    store = TrialStore(tmp_path / "t.duckdb")
    store.import_files(v2_files(trials_dir), progress=False)
    labels = [
        Classification(registry_id="NCT02552212", neuromod=False, indication="other"),
        Classification(
            registry_id="NCT04207047", neuromod=True, modalities=["tms"], modality_group=["noninvasive_cortical"],
            indication="depression", depression_subtype=["trd"], targets=["dlpfc_left"], invasive=False,
            evidence=[Label(label="modality", value="tms", field="title", text="rTMS")],
        ),
    ]
    assert store.write_labels(labels, classifier_version="test-1") == 2
    df = store.labels_df().set_index("registry_id")
    assert bool(df.loc["NCT04207047", "neuromod"]) and list(df.loc["NCT04207047", "modalities"]) == ["tms"]
    assert json.loads(df.loc["NCT04207047", "evidence"])[0]["text"] == "rTMS"
    assert df.loc["NCT02552212", "classifier_version"] == "test-1"
    labels[0] = Classification(registry_id="NCT02552212", neuromod=True, modalities=["scs"], indication="pain")
    store.write_labels(labels[:1], classifier_version="test-2")
    df = store.labels_df().set_index("registry_id")
    assert len(df) == 2 and df.loc["NCT02552212", "indication"] == "pain"
    store.close()


def test_read_only_store(tmp_path, trials_dir):
    with pytest.raises(FileNotFoundError):
        TrialStore(tmp_path / "absent.duckdb", read_only=True)
    with TrialStore(tmp_path / "t.duckdb") as store:
        store.import_files(v2_files(trials_dir)[:2], progress=False)
    with TrialStore(tmp_path / "t.duckdb", read_only=True) as ro:
        assert len(ro) == 2



def test_a_store_of_an_older_version_is_read_without_migrating_it(tmp_path, trials_dir):
    """Read-only commands (survey, the demo's survey, classify --db) cannot migrate a store: the
    columns and tables added since it was written are supplied empty, and the file is untouched.
    (A store written before start_date_precision/arm_groups/overrides made `trials survey` fail
    with a DuckDB Binder error.)"""
    import hashlib

    from typer.testing import CliRunner

    from neuromodmap.cli import app

    db = tmp_path / "old.duckdb"
    with TrialStore(db) as store:
        store.import_files(v2_files(trials_dir) + xml_files(trials_dir), progress=False)
    result = CliRunner().invoke(app, ["trials", "classify", "--db", str(db), "-o", str(tmp_path / "labels.csv")])
    assert result.exit_code == 0, result.output
    import duckdb

    con = duckdb.connect(str(db))  # make it the layout of an older version
    for column in ("arm_groups", "start_date_precision", "completion_date_precision"):
        con.execute(f"ALTER TABLE trials DROP COLUMN {column}")
    con.execute("ALTER TABLE import_problems DROP COLUMN action")
    con.execute("DROP TABLE IF EXISTS trial_label_overrides")
    n_stored = con.execute("SELECT count(*) FROM trials").fetchone()[0]
    con.close()
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with TrialStore(db, read_only=True) as ro:
        assert len(ro) == n_stored
        assert ro.trials_df()["start_date_precision"].isna().all()
    result = CliRunner().invoke(app, ["trials", "survey", "--db", str(db), "-o", str(tmp_path / "survey")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "survey" / "survey.html").exists()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest  # read, never written
    with TrialStore(db) as rw:  # a writable open migrates it
        assert "start_date_precision" in rw.trials_df().columns


_KILLABLE = textwrap.dedent(
    """
    import sys, datetime as dt
    from neuromodmap.trials.io import read_trials
    from neuromodmap.trials.store import TrialStore
    src, db = sys.argv[1], sys.argv[2]
    store = TrialStore(db)

    def records():
        for i, rec in enumerate(read_trials(src), start=1):
            if i % 1000 == 0:
                print(i, flush=True)
            yield rec

    store._upsert(records(), source=src, as_of=dt.date(2018, 7, 1),
                  run_id=store._start_run(kind="file", source=src, fmt="jsonl", query=None, as_of=None),
                  batch_size=1000)
    print("done", flush=True)
    """
)


def test_killed_import_then_rerun_equals_clean_run(tmp_path, corpus_path):
    src = tmp_path / "slice.jsonl"
    src.write_bytes(b"".join(corpus_lines(corpus_path, 8000)))
    killed_db = tmp_path / "killed.duckdb"
    env = {**os.environ, "NEUROMODMAP_NO_PROGRESS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, str(src), str(killed_db)], stdout=subprocess.PIPE, text=True, env=env
    )
    for line in proc.stdout:
        # a fresh import commits every two batches: records 1-4000 are committed, the later
        # ones read so far are still held back
        if line.strip() == "6000":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with TrialStore(killed_db) as store:
        partial = len(store)
        assert 4000 <= partial < 8000  # really killed midway
        assert set(store.import_runs_df()["status"]) == {"interrupted"}
        store.import_files([src], progress=False, as_of=dt.date(2018, 7, 1))
        rerun = _table(store, _VOLATILE)
    with TrialStore(tmp_path / "clean.duckdb") as clean_store:
        clean_store.import_files([src], progress=False, as_of=dt.date(2018, 7, 1))
        clean = _table(clean_store, _VOLATILE)
    assert len(clean) == 8000
    pd.testing.assert_frame_equal(rerun, clean)


def test_bulk_flush_refused_falls_back_batch_then_record(tmp_path, corpus_path):
    """A staged record the database refuses (raw text that is not JSON) fails the bulk
    flush; the flush is retried batch by batch and the refused batch record by record, so
    every other record is stored and the bad one is reported with its file line."""
    from neuromodmap.trials.io import ImportedRecord
    from neuromodmap.trials.store import _Stage

    src = tmp_path / "slice.jsonl"
    src.write_bytes(b"".join(corpus_lines(corpus_path, 30)))
    records = list(read_trials(src))
    bad = records[20]
    records[20] = ImportedRecord(bad.trial, bad.raw, bad.source, bad.location, raw_json="{not json")
    with TrialStore(tmp_path / "t.duckdb") as store:
        run_id = store._start_run(kind="file", source=str(src), fmt="jsonl", query=None, as_of=None)
        problems = []
        stage = _Stage(store, run_id, str(src), problems)
        for part in (records[:15], records[15:]):
            df = store._batch_frame({r.trial.registry_id: r for r in part}, str(src), None, run_id)
            assert stage.add(df, len(part))
        assert stage.flush() == 29
        assert len(store) == 29 and store.get_trial(bad.trial.registry_id) is None
        assert [(p.registry_id, p.location, p.source) for p in problems] == [(bad.trial.registry_id, "line 21", str(src))]
        assert "refused by the database" in problems[0].reason
        # a batch holding an id already stored is not staged: it must take the upsert path
        assert not stage.add(df.iloc[:3], 3)
    with TrialStore(tmp_path / "t2.duckdb") as store:
        run_id = store._start_run(kind="file", source=str(src), fmt="jsonl", query=None, as_of=None)
        stage = _Stage(store, run_id, str(src), None)
        first = store._batch_frame({r.trial.registry_id: r for r in records[:10]}, str(src), None, run_id)
        again = store._batch_frame({r.trial.registry_id: r for r in records[8:12]}, str(src), None, run_id)
        assert stage.add(first, 10)
        assert not stage.add(again, 4)  # nor one holding an id staged already: the later copy must win
        assert stage.rows == 10 and stage.flush() == 10 and len(store) == 10


def test_refused_record_in_an_open_row_group_costs_no_other_record(tmp_path, corpus_path):
    """Staged batches are inserted into a transaction that commits at each whole row group. A
    record the database refuses after the first row group was committed (batches of 250: the
    2,048 first records committed, the next ones in the open transaction) rolls back only the
    open transaction, whose batches are then written on their own: every other record is stored,
    the row groups committed stay as they were, and the bad one is reported with its line."""
    from neuromodmap.store import ROW_GROUP_SIZE, cursor
    from neuromodmap.trials.io import ImportedRecord
    from neuromodmap.trials.store import _Writer

    src = tmp_path / "slice.jsonl"
    src.write_bytes(b"".join(corpus_lines(corpus_path, 2600)))
    records = list(read_trials(src))
    k = ROW_GROUP_SIZE + 300
    bad = records[k]
    records[k] = ImportedRecord(bad.trial, bad.raw, bad.source, bad.location, raw_json="{not json")
    with TrialStore(tmp_path / "t.duckdb") as store:
        run_id = store._start_run(kind="file", source=str(src), fmt="jsonl", query=None, as_of=None)
        problems = []
        writer = _Writer(store, run_id, str(src), problems)
        for start in range(0, len(records), 250):
            part = records[start:start + 250]
            writer.write(store._batch_frame({r.trial.registry_id: r for r in part}, str(src), None, run_id), len(part))
            if start + 250 == ROW_GROUP_SIZE + 202:  # 2,250 read: the first row group committed
                committed = cursor(store.con).execute("SELECT count(*) FROM trials").fetchone()[0]
                assert committed == ROW_GROUP_SIZE
        writer.finish()
        assert writer.written == len(store) == 2599
        assert store.get_trial(bad.trial.registry_id) is None
        assert [(p.registry_id, p.location) for p in problems] == [(bad.trial.registry_id, f"line {k + 1}")]
        stored = store.con.execute("SELECT registry_id FROM trials").fetchall()
    assert sorted(r for (r,) in stored) == sorted(r.trial.registry_id for i, r in enumerate(records) if i != k)
