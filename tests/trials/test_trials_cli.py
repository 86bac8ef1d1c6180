"""The `neuromodmap trials ...` and `neuromodmap demo` commands on real records (CLI contract of issue 2)."""

from __future__ import annotations

import csv
import gzip
import itertools
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app

runner = CliRunner()

CONTRACT = ["registry_id", "neuromod", "modalities", "modality_group", "indication", "chronic_pain",
            "targets", "invasive", "evidence"]


@pytest.fixture(scope="module")
def corpus_slice(tmp_path_factory, corpus_path: Path) -> Path:
    """The first 3,000 real corpus records plus every later one that mentions stimulation up to 40,000."""
    out = tmp_path_factory.mktemp("cli") / "slice.jsonl.gz"
    with gzip.open(corpus_path, "rt", encoding="utf-8") as src, gzip.open(out, "wt", encoding="utf-8") as dst:
        for i, line in enumerate(itertools.islice(src, 40000)):
            if i < 3000 or "stimulation" in line.lower():
                dst.write(line)
    return out


def _flat(output: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(output.split())


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_classify_writes_contract_columns_for_every_format(tmp_path, corpus_slice, trials_dir):
    inputs = [corpus_slice, *sorted((trials_dir / "ctgov_v2_json").glob("*.json"))[:3],
              *sorted((trials_dir / "ctgov_legacy_xml").glob("*.xml"))[:3]]
    out = tmp_path / "labels.csv"
    result = runner.invoke(app, ["trials", "classify", *map(str, inputs), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert set(CONTRACT) <= set(rows[0])
    with gzip.open(corpus_slice, "rt") as fh:
        n_slice = sum(1 for _ in fh)
    assert len(rows) == n_slice + 6
    ids = [r["registry_id"] for r in rows]
    assert ids[0] == "NCT00000102"  # first record of the corpus (shared/data/trials/SOURCES.md)
    assert {r["neuromod"] for r in rows} == {"true", "false"}
    for r in rows:
        if r["neuromod"] == "true":
            assert r["modalities"] and r["evidence"], r
            assert all(";" not in m and m == m.strip() for m in r["modalities"].split(";"))
        else:
            assert r["modalities"] == ""


def test_classify_into_store_then_survey(tmp_path, corpus_slice):
    db = tmp_path / "t.duckdb"
    out = tmp_path / "labels.csv"
    result = runner.invoke(app, ["trials", "classify", str(corpus_slice), "-o", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["trials", "survey", "--db", str(db), "-o", str(tmp_path / "survey")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "survey" / "survey.html").is_file()
    rows = _rows(out)
    n_neuromod = sum(r["neuromod"] == "true" for r in rows)
    groups = _rows(tmp_path / "survey" / "tables" / "indication.csv")
    assert sum(int(g["n_trials"]) for g in groups) == n_neuromod


def test_missing_input_is_a_clear_error_and_no_output(tmp_path):
    out = tmp_path / "labels.csv"
    result = runner.invoke(app, ["trials", "classify", str(tmp_path / "nope.json"), "-o", str(out)])
    assert result.exit_code == 2
    assert "nope.json: no such file" in _flat(result.output) and "Traceback" not in result.output
    assert not out.exists()


def test_unreadable_file_is_reported_not_crashing(tmp_path, trials_dir):
    good = trials_dir / "ctgov_v2_json" / "NCT03453554.json"
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x00\x01 not a registry file")
    out = tmp_path / "labels.csv"
    result = runner.invoke(app, ["trials", "import", str(bad), str(good), "--db", str(tmp_path / "t.duckdb")])
    assert result.exit_code == 1
    flat = _flat(result.output)
    assert "bad.json: unrecognised trial file" in flat and "could not read 1 file(s)" in flat
    assert "Imported 1 trials" in flat and "Traceback" not in result.output
    assert not out.exists()


def test_import_with_no_readable_input_is_a_user_error_and_leaves_no_store(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x00\x01 not a registry file")
    db = tmp_path / "t.duckdb"
    result = runner.invoke(app, ["trials", "import", str(bad), "--db", str(db)])
    assert result.exit_code == 2, result.output
    flat = _flat(result.output)
    assert "bad.json: unrecognised trial file" in flat and "no input could be read" in flat
    assert not db.exists() and "Traceback" not in result.output


def test_survey_without_db_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["trials", "survey", "--db", str(tmp_path / "none.duckdb"), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "none.duckdb does not exist" in _flat(result.output)


def test_report_build_from_survey(tmp_path, corpus_slice):
    db = str(tmp_path / "t.duckdb")
    result = runner.invoke(app, ["trials", "classify", str(corpus_slice), "-o", str(tmp_path / "labels.csv"),
                                 "--db", db])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["trials", "survey", "--db", db, "-o", str(tmp_path / "survey")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "build", str(tmp_path / "survey"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == f"Report: {out.resolve()}"
    text = out.read_text()
    assert '<section id="trials"' in text and "data:image/png;base64," in text and 'src="figures/' not in text
    # the searchable list holds every trial the classifier called neuromodulation, no more
    n_neuromod = sum(r["neuromod"] == "true" for r in _rows(tmp_path / "labels.csv"))
    listed = _rows(tmp_path / "survey" / "tables" / "neuromod_trials.csv")
    assert len(listed) == n_neuromod > 0
    assert f'data-rows="{n_neuromod}"' in text


def _records(path: Path) -> list[str]:
    from neuromodmap.trials.io import read_trials

    return [r.trial.registry_id for r in read_trials(path, problems=[])]


@pytest.mark.parametrize("content", [b"\x00\x01 not a registry file", b"", b"x[/bold] <- no markup either"])
@pytest.mark.parametrize("with_db", [False, True])
def test_classify_unreadable_file_fails_with_one_line_and_no_output(tmp_path, content, with_db):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    out = tmp_path / "labels.csv"
    db = tmp_path / "t.duckdb"
    result = runner.invoke(app, ["trials", "classify", str(bad), "-o", str(out), *(["--db", str(db)] if with_db else [])])
    assert result.exit_code == 2, result.output
    flat = _flat(result.output)
    assert flat.startswith("error: ") and f"{bad}: " in flat and "Traceback" not in result.output
    assert ("empty file" if not content else "unrecognised trial file") in flat
    assert not out.exists() and not any(p.name.startswith(".labels.csv") for p in tmp_path.iterdir())
    assert not db.exists()  # nothing was read, so no store was opened either


@pytest.mark.parametrize("with_db", [False, True])
def test_classify_reports_unreadable_files_and_classifies_the_others(tmp_path, trials_dir, with_db):
    good = [trials_dir / "ctgov_v2_json" / "NCT03453554.json", trials_dir / "ctgov_legacy_xml" / "NCT02654730.xml"]
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x00\x01 not a registry file")
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    out = tmp_path / "labels.csv"
    args = ["trials", "classify", str(good[0]), str(bad), str(good[1]), str(empty), "-o", str(out)]
    result = runner.invoke(app, args + (["--db", str(tmp_path / "t.duckdb")] if with_db else []))
    assert result.exit_code == 1, result.output  # some files not read: 1, as trials import and literature import
    flat = _flat(result.output)
    assert "2 file(s) not read" in flat and f"{bad}: unrecognised trial file" in flat and f"{empty}: empty file" in flat
    assert "Traceback" not in result.output
    # the readable files' records, in the order given
    assert [r["registry_id"] for r in _rows(out)] == _records(good[0]) + _records(good[1])
