"""`neuromodmap literature ...` end to end: import → dedup → criteria → screen → prisma → export; simulate."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from neuromodmap.cli import app

runner = CliRunner()


class _Result:
    """CLI result with rich's line wrapping undone."""

    def __init__(self, result) -> None:
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())


def _run(*args: str, input: str | None = None) -> _Result:
    return _Result(runner.invoke(app, ["literature", *args], input=input))


def test_pipeline(tmp_path: Path, gambling_files, exports_dir: Path) -> None:
    db = str(tmp_path / "review.duckdb")
    empty = tmp_path / "empty.ris"
    empty.write_text("")
    result = _run("import", *map(str, gambling_files), str(empty), "--db", db)
    assert result.exit_code == 1  # one file failed: the others are still imported
    assert "empty.ris: file is empty" in result.output and "Traceback" not in result.output
    assert "Scopus" in result.output
    result = _run("dedup", "--db", db, "--review", str(tmp_path / "review.csv"), "--groups",
                  str(tmp_path / "groups.csv"))
    assert result.exit_code == 0, result.output
    n_unique = int(re.search(r"645 records gave (\d+) unique", result.output).group(1))
    assert "Merged pairs by rule" in result.output and "same DOI" in result.output
    assert "Linked, not merged:" in result.output and "preprint" in result.output
    groups = list(csv.DictReader((tmp_path / "groups.csv").open()))
    assert len(groups) == 645 and list(groups[0]) == ["source_file", "source_position", "record_id", "group_id",
                                                      "rule"]
    group_of = {g["record_id"]: g["group_id"] or g["record_id"] for g in groups}
    assert len(set(group_of.values())) == n_unique
    review = list(csv.DictReader((tmp_path / "review.csv").open()))
    assert review and {"verdict", "agree", "disagree", "citation_a", "citation_b"} <= set(review[0])
    # the reviewer decides: the BMJ letter and its correction (two DOIs) are not duplicates, every
    # other pair (repository copies, online-first and issue records) is
    for row in review:
        row["verdict"] = "not_duplicate" if "conflicting DOI" in row["reason"] else "duplicate"
    assert {row["verdict"] for row in review} == {"duplicate", "not_duplicate"}
    with (tmp_path / "decided.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(review[0]))
        writer.writeheader()
        writer.writerows(review)
    result = _run("dedup", "--db", db, "--decisions", str(tmp_path / "decided.csv"), "--groups",
                  str(tmp_path / "groups2.csv"))
    assert result.exit_code == 0, result.output
    assert "0 pairs left for review" in result.output
    # expected clusters: the automatic groups joined along every "duplicate" verdict
    parent = {g: g for g in set(group_of.values())}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for row in review:
        if row["verdict"] == "duplicate":
            parent[find(group_of[row["record_id_a"]])] = find(group_of[row["record_id_b"]])
    expected = len({find(g) for g in parent})
    assert f"645 records gave {expected} unique" in result.output and expected < n_unique
    groups2 = {g["record_id"]: g["group_id"] or g["record_id"] for g in csv.DictReader((tmp_path / "groups2.csv").open())}
    for row in review:
        same = groups2[row["record_id_a"]] == groups2[row["record_id_b"]]
        assert same == (row["verdict"] == "duplicate"), row
    (tmp_path / "bad.csv").write_text("record_id_a,record_id_b,verdict\na,b,maybe\n")
    result = _run("dedup", "--db", db, "--decisions", str(tmp_path / "bad.csv"))
    assert result.exit_code == 2 and "line 2, field verdict: 'maybe'" in result.output
    result = _run("dedup", "--db", db)  # back to the automatic result for the rest of the test
    assert f"645 records gave {n_unique} unique" in result.output
    result = _run("criteria", "--db", db, "--profile", "pain")
    assert result.exit_code == 0 and "case report" in result.output
    result = _run("screen", "--db", db, "--profile", "depression", "--reviewer", "AB", input="i\ne\ni\nq\n")
    assert result.exit_code == 0, result.output
    assert "Run the same command to resume" in result.output
    result = _run("screen", "--db", db, "--profile", "depression", input="q\n")
    screened = re.search(r"3/(\d+) screened, 2 included", result.output)
    assert screened, result.output
    eligible = int(screened.group(1))
    manual = tmp_path / "manual.yaml"
    manual.write_text("reports_not_retrieved: 0\nstudies_included: 2\n")
    result = _run("prisma", "--db", db, "-o", str(tmp_path / "prisma"), "--manual", str(manual))
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "prisma").iterdir()} == {
        "prisma.svg", "prisma.png", "prisma_counts.csv", "section.json", "records.csv", "databases.csv",
        "dedup_pairs.csv"}
    # the report lists the links and the pairs left for review, as the dedup step stored them
    pairs_shown = list(csv.DictReader((tmp_path / "prisma" / "dedup_pairs.csv").open(encoding="utf-8")))
    assert {p["decision"] for p in pairs_shown} <= {"linked", "review"}
    assert sum(p["decision"] == "review" for p in pairs_shown) == len(review)
    assert {p["relation"] for p in pairs_shown if p["decision"] == "linked"} >= {"preprint", "erratum"}
    assert all(p["record_a"] and p["record_b"] for p in pairs_shown)
    # the report section: headlines from the flow, one row per unique record with its decisions
    from neuromodmap.report import read_section

    section = read_section(tmp_path / "prisma" / "section.json")
    assert [(h.label, h.value) for h in section.headlines] == [
        ("Records identified", "645"), ("Records screened (title and abstract)", "3"), ("Studies included", "2")]
    # 3 of the eligible records screened; the others await screening (no stopping rule applied)
    assert f"{eligible - 3} awaiting screening" in section.headlines[1].detail
    records = list(csv.DictReader((tmp_path / "prisma" / "records.csv").open(encoding="utf-8")))
    assert len(records) == n_unique
    excluded = sum(r["criteria"].startswith("exclude") for r in records)
    assert 5 <= excluded <= 20 and eligible == n_unique - excluded  # the pain criteria's exclusions
    assert sum(r["title_abstract"] == "include" for r in records) == 2
    result = _run("export", "--db", db, "-o", str(tmp_path / "sheet.csv"))
    assert result.exit_code == 0 and "2 included records" in result.output
    rows = list(csv.DictReader((tmp_path / "sheet.csv").open()))
    record_id = rows[0]["notes"].split()[2].rstrip(";")
    result = _run("fulltext", record_id, "exclude", "--db", db)
    assert result.exit_code == 2 and "needs --reason" in result.output
    result = _run("fulltext", record_id, "exclude", "--reason", "wrong population", "--db", db)
    assert result.exit_code == 0
    result = _run("export", "--db", db, "-o", str(tmp_path / "sheet2.csv"))
    assert "0 included records" in result.output  # full-text stage now decides


def test_bad_profile_and_empty_db(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    result = _run("dedup", "--db", db)  # a mistyped --db: no store is created
    assert result.exit_code == 2 and "x.duckdb: no such store" in " ".join(result.output.split())
    assert not (tmp_path / "x.duckdb").exists()
    from neuromodmap.literature.store import open_store

    open_store(tmp_path / "x.duckdb").close()  # an empty store
    result = _run("dedup", "--db", db)
    assert result.exit_code == 2 and "holds no literature records" in result.output
    result = _run("criteria", "--db", db, "--profile", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2 and "no such criteria profile" in result.output


def test_simulate(tmp_path: Path, labelled_dir: Path) -> None:
    # a real subset: every included ADHD record and the first 300 others
    with gzip.open(labelled_dir / "Cohen_2006_ADHD.csv.gz", "rt", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    subset = [r for r in rows if r["label_included"] == "1"] + [r for r in rows if r["label_included"] == "0"][:300]
    path = tmp_path / "adhd_subset.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(subset)
    out = tmp_path / "sim"
    result = _run("simulate", str(path), "--label", "label_included", "--seed", "1", "-o", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads((out / "simulation.json").read_text())
    assert (data["n_records"], data["n_included"]) == (320, 20)
    assert 0 < data["wss_95"] <= 1 - 20 / 320 and 0 <= data["recall_at_10pct"] <= 1
    assert (out / "recall_curve.png").read_bytes()[:4] == b"\x89PNG"
    # the report section: its headline is the simulation's WSS@95, its table the same figures as the JSON
    from neuromodmap.report import read_section

    section = read_section(out / "section.json")
    assert section.headlines[0].value == f"{100 * data['wss_95']:.1f} %"
    metrics = dict((row[0], row[1]) for row in section.table("metrics").rows)
    assert metrics["records screened to find 95 % of the relevant ones"] == data["n_screened_at_95"]
    assert [f.src for f in section.figures] == ["recall_curve.png"]
    result = _run("simulate", str(path), "--label", "label_included", "--repeat", "2", "-o", str(tmp_path / "sim2"))
    summary = json.loads((tmp_path / "sim2" / "simulation.json").read_text())
    assert summary["seeds"] == [0, 1] and len(summary["runs"]) == 2
    result = _run("simulate", str(path), "--label", "nope", "-o", str(out))
    assert result.exit_code == 2 and "no label column 'nope'" in result.output
    # the model settings are options and are recorded
    assert (data["model"], data["balance"], data["fields"]) == ("nb", "weighted", "title,abstract,keywords")
    result = _run("simulate", str(path), "--fields", "title,abstract", "--balance", "double", "--raw-tf",
                  "-o", str(tmp_path / "sim3"))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "sim3" / "simulation.json").read_text())
    assert (data["balance"], data["fields"], data["features"]["sublinear_tf"]) == ("double", "title,abstract", False)
    result = _run("simulate", str(path), "--fields", "title,journal", "-o", str(out))
    assert result.exit_code == 2 and "--fields" in result.output
