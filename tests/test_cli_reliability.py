"""Bad inputs through the real command line: one test per row of issue 15's table.

The rule (``neuromodmap.errors``): a user error prints ONE line naming the file (and row,
record or column) and what to do, and exits 2; an unexpected error prints one line and the log
file holding the traceback, exit 1; Ctrl-C stops cleanly (exit 130) saying what was kept; a bad
record or file costs only itself. Inputs are real files from shared/data, edited in tmp_path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.store import connect

runner = CliRunner()

# metadat dat.normand1999 (wviechtb/metadat data-raw/dat.normand1999.txt): study, n1, m1, sd1, n2, m2, sd2
NORMAND1999 = [("Edinburgh", 155, 55, 47, 156, 75, 64), ("Orpington-Mild", 31, 27, 7, 32, 29, 4),
               ("Orpington-Moderate", 75, 64, 17, 71, 119, 29), ("Orpington-Severe", 18, 66, 20, 18, 137, 48),
               ("Montreal-Home", 8, 14, 8, 13, 18, 11), ("Montreal-Transfer", 57, 19, 7, 52, 18, 4),
               ("Newcastle", 34, 52, 45, 33, 41, 34), ("Umea", 110, 21, 16, 183, 31, 27),
               ("Uppsala", 60, 30, 27, 52, 23, 20)]


@pytest.fixture(autouse=True)
def _env(data_root, monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROMODMAP_DATA", str(data_root))
    monkeypatch.setenv("NEUROMODMAP_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("COLUMNS", "100")  # one line must stay one line on a narrow terminal


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result, *parts: str, code: int = 2) -> str:
    """The result is exit ``code`` with exactly one output line, no traceback, holding every part."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def _v2_study(trials_dir: Path) -> dict:
    return json.loads((trials_dir / "ctgov_v2_json" / "NCT00465816.json").read_text())


# --------------------------------------------------------------------------------------------- RIS
def test_ris_keeps_text_between_angle_brackets(data_root, tmp_path):
    # a real Lens export: its abstracts carry <p> markup, which is still removed
    source = data_root / "literature" / "exports" / "citesource_gambling_harms" / "20221207_gambling-harms_lens_49.ris"
    text = source.read_text(encoding="utf-8-sig")
    first_title = next(line for line in text.splitlines() if line.startswith("TI  - "))
    text = text.replace(first_title, "TI  - Outcome <12 weeks vs >24 weeks after SCS", 1)
    path = tmp_path / "lens.ris"
    path.write_text(text, encoding="utf-8")
    db = tmp_path / "lit.duckdb"
    result = _run("literature", "import", path, "--db", db)
    assert result.exit_code == 0, result.output
    con = connect(db)  # the CLI's own connection is still attached in this process
    titles = [t for (t,) in con.execute("SELECT title FROM literature_records").fetchall()]
    abstracts = [a for (a,) in con.execute("SELECT abstract FROM literature_records").fetchall()]
    con.close()
    assert "Outcome <12 weeks vs >24 weeks after SCS" in titles
    assert len(titles) == 49  # every record kept
    assert not any("<p>" in a or "</p>" in a for a in abstracts)
    assert any(a.startswith("Background and aims: Both the Problem Gambling") for a in abstracts)


# ----------------------------------------------------------------------------------- formulas / ids
def test_formula_ids_never_reach_a_cell_and_invalid_ids_are_reported(trials_dir, tmp_path, scan_formulas):
    study = _v2_study(trials_dir)
    study["protocolSection"]["identificationModule"]["nctId"] = '=HYPERLINK("http://x")'
    evil = tmp_path / "in" / "evil.json"
    evil.parent.mkdir()
    evil.write_text(json.dumps(study))
    good = trials_dir / "ctgov_v2_json" / "NCT00763412.json"
    out = tmp_path / "out" / "labels.csv"
    result = _run("trials", "classify", evil, good, "-o", out)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "1 record(s) kept with an invalid registry id" in flat
    assert "evil.json" in flat and "registry_id" in flat and "is not a registry id" in flat
    assert "ClinicalTrials.gov ids are NCT + 8 digits" in flat
    rows = out.read_text().splitlines()
    assert len(rows) == 3  # header, the flagged record (kept) and the good one
    assert any(r.startswith("NCT00763412,") for r in rows)
    assert scan_formulas(out.parent) == []
    # a site id through connectome site-to-seed (real coordinates: Fox 2012 DLPFC sites)
    sites = tmp_path / "sites.csv"
    sites.write_text('id,x,y,z\n"=HYPERLINK(""http://x"")",-38,44,26\nbeam_f3,-46,36,20\n')
    result = _run("connectome", "site-to-seed", sites, "-o", tmp_path / "o2" / "sites_out.csv")
    assert result.exit_code == 0, result.output
    assert scan_formulas(tmp_path / "o2") == []
    assert "'=HYPERLINK" in (tmp_path / "o2" / "sites_out.csv").read_text()  # kept as text, not run


# -------------------------------------------------------------------------------------- report build
def test_report_build_inlines_only_files_inside_its_folders(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nSECRET-BYTES-OUTSIDE")
    folder = tmp_path / "section"
    folder.mkdir()
    (folder / "inside.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><text>INSIDE</text></svg>')
    (folder / "link.png").symlink_to(secret)
    (folder / "page.html").write_text(
        '<html><body><h1>t</h1><img src="/etc/passwd"><img src="../secret.png"><img src="link.png">'
        '<img src="inside.svg"></body></html>')
    out = tmp_path / "report.html"
    result = _run("report", "build", folder, "-o", out)
    assert result.exit_code == 0, result.output
    html = out.read_text()
    import base64

    assert base64.b64encode(secret.read_bytes()).decode() not in html
    assert base64.b64encode(Path("/etc/passwd").read_bytes()).decode()[:40] not in html
    assert base64.b64encode((folder / "inside.svg").read_bytes()).decode() in html  # inside: inlined
    flat = " ".join(result.output.split())
    for ref in ("/etc/passwd", "../secret.png", "link.png"):
        assert f"'{ref}' not inlined" in flat, ref


# ----------------------------------------------------------------------------------- --db problems
@pytest.mark.parametrize("args", [
    ["trials", "import", "V2", "--db", "DB"],
    ["trials", "classify", "--db", "DB", "-o", "OUT"],
    ["trials", "survey", "--db", "DB", "-o", "OUT"],
    ["literature", "dedup", "--db", "DB"],
])
def test_db_that_is_not_duckdb_is_one_line(trials_dir, tmp_path, args):
    db = tmp_path / "x.duckdb"
    db.write_text("x")
    args = [db if a == "DB" else tmp_path / "out" if a == "OUT" else trials_dir / "ctgov_v2_json" / "NCT00465816.json"
            if a == "V2" else a for a in args]
    _one_line_error(_run(*args), "x.duckdb: not a DuckDB database")
    assert db.read_text() == "x" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [
    ["trials", "classify", "--db", "DB", "-o", "OUT"],
    ["literature", "export", "--db", "DB", "-o", "OUT"],
    ["literature", "prisma", "--db", "DB", "-o", "OUT"],
    ["literature", "dedup", "--db", "DB"],
])
def test_mistyped_db_creates_nothing(tmp_path, args):
    db = tmp_path / "typo.duckdb"
    out = tmp_path / "out.csv"
    result = _run(*[db if a == "DB" else out if a == "OUT" else a for a in args])
    _one_line_error(result, "typo.duckdb: no such store", "check the --db path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"] or list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- one bad file among several
def test_one_unreadable_file_among_several(trials_dir, data_root, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    out = tmp_path / "out.csv"
    good = trials_dir / "ctgov_v2_json" / "NCT00763412.json"
    result = _run("trials", "classify", good, bad, "-o", out)
    assert result.exit_code == 1, result.output  # 1: some files were not read (as trials/literature import)
    assert out.read_text().splitlines()[1].startswith("NCT00763412,")
    assert "bad.png" in result.output and "file(s) not read" in result.output
    # literature: the good export is imported, the bad one named with what is wrong
    rand = tmp_path / "random.ris"
    rand.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(3000)))
    ris = data_root / "literature" / "exports" / "citesource_gambling_harms" / "20221207_gambling-harms_lens_49.ris"
    db = tmp_path / "lit.duckdb"
    result = _run("literature", "import", ris, rand, "--db", db)
    assert result.exit_code == 1, result.output  # 1: some files were not imported
    flat = " ".join(result.output.split())
    assert "random.ris: not a text file" in flat and "Error tokenizing" not in flat
    con = connect(db)
    assert con.execute("SELECT count(*) FROM literature_records").fetchone()[0] == 49
    con.close()


# ---------------------------------------------------------------------------------- -o problems
def test_output_that_is_a_folder_or_cannot_be_made(data_root, tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body><h1>ok</h1></body></html>")
    folder = tmp_path / "somedir"
    folder.mkdir()
    _one_line_error(_run("report", "build", page, "-o", folder), f"{folder}: is a folder", "give a file name")
    _one_line_error(_run("connectome", "targets", "-o", folder), f"{folder}: is a folder")
    blocker = tmp_path / "afile"
    blocker.write_text("")
    _one_line_error(_run("connectome", "targets", "-o", blocker / "t.csv"), f"{blocker}: is a file", "not a folder")
    lit = tmp_path / "lit.duckdb"
    ris = data_root / "literature" / "exports" / "citesource_gambling_harms" / "20221207_gambling-harms_lens_49.ris"
    assert _run("literature", "import", ris, "--db", lit).exit_code == 0
    _one_line_error(_run("literature", "prisma", "--db", lit, "-o", blocker), f"{blocker}: File exists",
                    "give a folder name")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".") and "tmp" in p.name] == []  # none left
    if os.geteuid() != 0:  # root writes anywhere: the permission case needs an ordinary user
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o555)
        _one_line_error(_run("connectome", "targets", "-o", locked / "t.csv"), "Permission denied")


# ------------------------------------------------------------------------- Ctrl-C and a locked store
def _cli(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "NEUROMODMAP_NO_PROGRESS": "1", "COLUMNS": "100"}
    return subprocess.Popen([sys.executable, "-m", "neuromodmap", *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


def test_ctrl_c_during_trials_import_says_what_was_kept(corpus_path, tmp_path):
    db = tmp_path / "t.duckdb"
    proc = _cli("trials", "import", corpus_path, "--db", db)
    # interrupt once some batches are written (the store's files pass 200 MB of ~700 MB), not after a fixed
    # time: on a quiet machine the whole 101k corpus imports in about 10 s
    wal = db.with_name(db.name + ".wal")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        size = sum(f.stat().st_size for f in (db, wal) if f.exists())
        if size > 200_000_000:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "Query interrupted" not in err, err
    assert lines[0].startswith("interrupted (Ctrl-C); stopped.") and "run the same command again" in lines[0]
    con = duckdb.connect(str(db), read_only=True)
    n = con.execute("SELECT count(*) FROM trials").fetchone()[0]
    con.close()
    assert f"holds {n:,} trials (+{n:,} from this run" in lines[0]
    assert 0 < n < 101_016


def test_store_in_use_by_another_process(trials_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROMODMAP_LOCK_WAIT", "0")  # store.connect waits for the lock; here not at all
    db = tmp_path / "t.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(db)!r}); "
                               "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = _run("trials", "import", trials_dir / "ctgov_v2_json" / "NCT00465816.json", "--db", db)
        line = _one_line_error(result, "t.duckdb: in use by another process", "wait until it finishes")
        assert f"(PID {holder.pid})" in line
        _one_line_error(_run("literature", "dedup", "--db", db), "in use by another process")
        # waiting for it: one note that it waits, then the same one-line error
        monkeypatch.setenv("NEUROMODMAP_LOCK_WAIT", "1")
        result = _run("trials", "import", trials_dir / "ctgov_v2_json" / "NCT00465816.json", "--db", db)
        assert result.exit_code == 2 and "Traceback" not in result.output
        note, error = result.output.strip().splitlines()
        assert "in use by another process; waiting up to 1 s" in note and "in use by another process (PID" in error
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------------- evidence sheets
def _normand_csv(path: Path, encoding: str = "utf-8", tiny_sd_row: int | None = None) -> Path:
    lines = ["study_id,modality,active_n,active_mean,active_sd,control_n,control_mean,control_sd"]
    for i, (name, n1, m1, s1, n2, m2, s2) in enumerate(NORMAND1999):
        if i == tiny_sd_row:
            s1 = s2 = "1e-300"
        lines.append(f"{name},tms,{n1},{m1},{s1},{n2},{m2},{s2}")
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_sd_of_1e_300_names_the_row(tmp_path):
    sheet = _normand_csv(tmp_path / "normand.csv", tiny_sd_row=1)  # sheet row 3 (header is row 1)
    out = tmp_path / "meta"
    line = _one_line_error(_run("evidence", "meta", sheet, "--measure", "SMD", "--by", "none", "-o", out),
                           "normand.csv, row 3, column active_sd, control_sd", "SD of 1e-300")
    assert "internal error" not in line and "--skip-invalid" in line
    assert not out.exists()


def test_utf16_sheet_png_page_and_random_ris(data_root, tmp_path):
    # a UTF-16 sheet (Excel's "Unicode Text") is read, and pools as metafor does
    ref = json.loads((data_root / "meta" / "metafor_reference.json").read_text())["dat.normand1999_SMD"]["REML"]
    sheet = _normand_csv(tmp_path / "normand16.csv", encoding="utf-16")
    out = tmp_path / "meta"
    result = _run("evidence", "meta", sheet, "--measure", "SMD", "--by", "none", "-o", out)
    assert result.exit_code == 0, result.output
    import csv

    pooled = next(csv.DictReader((out / "pooled.csv").open()))
    assert float(pooled["estimate"]) == pytest.approx(ref["est"], abs=1.5e-4)  # metadat dat.normand1999.html
    # the same text without a byte-order mark cannot be told from binary: one line saying what to do
    raw = sheet.read_bytes()[2:]
    nobom = tmp_path / "nobom.csv"
    nobom.write_bytes(raw)
    _one_line_error(_run("evidence", "meta", nobom, "--measure", "SMD", "-o", tmp_path / "m2"),
                    "nobom.csv: UTF-16 text without a byte-order mark", "CSV UTF-8")
    # a PNG named .html
    png = tmp_path / "figure.html"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    _one_line_error(_run("report", "build", png, "-o", tmp_path / "r.html"),
                    "figure.html: not an HTML page but a PNG image")
    assert not (tmp_path / "r.html").exists()
    # random bytes named .ris: one line, no store
    rand = tmp_path / "random.ris"
    rand.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(3000)))
    _one_line_error(_run("literature", "import", rand, "--db", tmp_path / "lit.duckdb"),
                    "random.ris: not a text file")
    assert not (tmp_path / "lit.duckdb").exists()


# ------------------------------------------------------------------------------- unexpected errors
def test_unexpected_error_is_one_line_and_a_log(tmp_path, monkeypatch):
    import neuromodmap.report as report

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(report, "build_report", broken)
    page = tmp_path / "page.html"
    page.write_text("<html><body>x</body></html>")
    line = _one_line_error(_run("report", "build", page, "-o", tmp_path / "r.html"),
                           "unexpected RuntimeError: a bug", code=1)
    (log,) = (tmp_path / "logs").glob("neuromodmap-error-*.log")
    assert str(log) in line and "Traceback" in log.read_text() and "broken" in log.read_text()


# ------------------------------------------------------------------------------------------ help
def test_help_loads_no_science_library():
    """`neuromodmap --help` (and `import neuromodmap`) import none of the heavy libraries.

    Their speed is measured by benchmarks/cli_help_speed.py; this pins the cause of slowness.
    """
    probe = ("import sys, io, contextlib\nfrom neuromodmap.cli import app\n"
             "for argv in (['--help'], ['trials', '--help'], ['evidence', 'meta', '--help'], "
             "['connectome', 'map', '--help'], ['literature', '--help'], ['report', 'build', '--help']):\n"
             "    sys.argv = ['neuromodmap', *argv]\n"
             "    with contextlib.redirect_stdout(io.StringIO()):\n"
             "        try:\n            app()\n        except SystemExit:\n            pass\n"
             "heavy = {'scipy', 'nilearn', 'duckdb', 'pandas', 'matplotlib', 'numpy', 'nibabel', 'sklearn'}\n"
             "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:]
