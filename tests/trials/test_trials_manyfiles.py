"""Many small files and tar archives: folders, file lists, .tar/.tar.gz/.tgz, hostile members,
a killed many-file import resumed.

Every input is built from real records: the legacy XML files of the shipped AllPublicXML subset
(trials/ctgov_legacy_xml_allpublicxml_subset_reesewang25, a tar.gz of 6,786 ``<clinical_study>``
files) and the API v2 studies of trials/ctgov_v2_json.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from gzip import decompress as gzip_decompress
from pathlib import Path

import pandas as pd
import pytest
from test_trials_io_helpers import store_state, v2_files
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.store import ROW_GROUP_SIZE
from neuromodmap.trials import TrialStore, detect_format, read_trials
from neuromodmap.trials._readers._common import MAX_RECORD_BYTES
from neuromodmap.trials._readers._files import MemberError, TarMembers
from neuromodmap.trials.classify import classify
from neuromodmap.trials.io import expand_inputs

ARCHIVE = "ctgov_legacy_xml_allpublicxml_subset_reesewang25/AllPublicXML_subset_NCT0000xxxx_NCT0046xxxx_NCT0049xxxx.tar.gz"
BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                  b"<clinical_study><id_info><nct_id>NCT99999999</nct_id></id_info>"
                  b"<brief_title>&lol2;</brief_title></clinical_study>")
_VOLATILE = ["imported_at", "import_run_id"]


def _archive_members(trials_dir: Path, per_folder: dict[str, int]) -> list[tuple[str, bytes]]:
    """The first N members of each folder of the shipped archive, in archive order."""
    taken = dict.fromkeys(per_folder, 0)
    out = []
    with tarfile.open(trials_dir / ARCHIVE) as tf:
        for member in tf:
            if not member.isfile():
                continue
            folder = member.name.split("/")[0] if "/" in member.name else ""
            if folder in per_folder and taken[folder] < per_folder[folder]:
                taken[folder] += 1
                out.append((member.name, tf.extractfile(member).read()))
            if taken == per_folder:
                break
    assert taken == per_folder
    return out


@pytest.fixture(scope="module")
def members(trials_dir: Path) -> list[tuple[str, bytes]]:
    """Real members of three folders of AllPublicXML plus the loose NCT00496392.xml, and four odd
    ones: a record cut short and an entity bomb (skipped), a later copy of a record whose
    enrollment is not a count (kept with the field emptied), and a later copy of the first
    record with another status (both later copies win: they come later in path order)."""
    real = _archive_members(trials_dir, {"NCT0000xxxx": 120, "NCT0046xxxx": 40, "NCT0049xxxx": 40, "": 1})
    first = real[0][1]
    assert _nct(first) == "NCT00000102"
    changed, n = re.subn(rb"<overall_status>[^<]*</overall_status>", b"<overall_status>Terminated</overall_status>",
                         first)
    counted = next(d for name, d in real if name.startswith("NCT0049xxxx/") and re.search(rb"<enrollment[^>]*>\d+<", d))
    no_count = re.sub(rb"(<enrollment[^>]*>)\d+<", rb"\1many<", counted, count=1)
    assert n == 1 and no_count != counted
    bad = [
        ("NCT0046xxxx/zz_cut.xml", real[130][1][:700]),
        ("NCT0046xxxx/zz_bomb.xml", BILLION_LAUGHS),
        ("NCT0049xxxx/zz_enrollment.xml", no_count),
        ("zz_later/NCT00000102_changed.xml", changed),
    ]
    return sorted(real + bad, key=lambda item: tuple(item[0].split("/")))


def _nct(data: bytes) -> str:
    return re.search(rb"<nct_id>(NCT\d+)</nct_id>", data).group(1).decode()


def _good(members, n: int | None = None) -> list[tuple[str, bytes]]:
    return [(name, data) for name, data in members if "zz_" not in name][:n]


def _folder(tmp: Path, members) -> Path:
    folder = tmp / "AllPublicXML"
    for name, data in members:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def _tar(path: Path, members, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, members) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _import(db: Path, inputs) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with TrialStore(db) as store:
        store.import_files(inputs, progress=False)
        trials = store.con.execute("SELECT * FROM trials ORDER BY registry_id").df()
        problems = store.problems_df()
        runs = store.import_runs_df()
    return trials, problems, runs


def _problem_set(problems: pd.DataFrame) -> list[tuple]:
    return sorted((r.reason, r.registry_id or "", r.field or "", r.action) for r in problems.itertuples())


def test_folder_and_file_list_store_what_the_zip_stores(tmp_path, members):
    folder = _folder(tmp_path, members)
    files = [f.path for f in expand_inputs([folder])]
    assert [str(Path(p).relative_to(folder)) for p in files] == [name for name, _ in members]  # path order
    zpath = _zip(tmp_path / "AllPublicXML.zip", members)
    by_folder, folder_problems, folder_runs = _import(tmp_path / "folder.duckdb", [folder])
    by_list, list_problems, list_runs = _import(tmp_path / "list.duckdb", files)
    by_zip, zip_problems, _ = _import(tmp_path / "zip.duckdb", [zpath])

    # 201 real records + 2 later copies of two of them (same ids); 2 records skipped: 201 rows
    assert len(by_zip) == 201 and by_zip["registry_id"].is_unique
    same = [c for c in by_zip.columns if c not in ("source", "record_hash", *_VOLATILE)]
    pd.testing.assert_frame_equal(by_folder[same], by_zip[same])
    pd.testing.assert_frame_equal(by_list[same], by_zip[same])
    # same sources (each record's own file), hence the same hashes, named or found in the folder
    pd.testing.assert_frame_equal(by_folder[["source", "record_hash"]], by_list[["source", "record_hash"]])
    row = by_folder.set_index("registry_id").loc["NCT00000102"]
    assert row["source"] == str(folder / "zz_later" / "NCT00000102_changed.xml")  # the later copy won
    assert row["overall_status"] == "TERMINATED"
    emptied = by_folder[by_folder["source"].str.endswith("zz_enrollment.xml")]
    assert len(emptied) == 1 and pd.isna(emptied["enrollment"].iloc[0])
    assert set(by_zip["source"]) == {str(zpath)}

    # the same problems, each naming its own file (or the ZIP and its member)
    assert len(zip_problems) == 3
    assert _problem_set(folder_problems) == _problem_set(zip_problems) == _problem_set(list_problems)
    assert sorted(Path(s).name for s in folder_problems["source"]) == ["zz_bomb.xml", "zz_cut.xml", "zz_enrollment.xml"]
    assert sorted(zip_problems["location"]) == ["member NCT0046xxxx/zz_bomb.xml", "member NCT0046xxxx/zz_cut.xml",
                                                "member NCT0049xxxx/zz_enrollment.xml"]

    # one run each: the folder, and the named files over their common folder
    assert len(folder_runs) == 1 and len(list_runs) == 1
    run = folder_runs.iloc[0]
    assert (run["kind"], run["source"], run["n_files"], run["n_read"], run["n_problems"], run["status"]) == (
        "folder", str(folder), len(members), 203, 3, "completed")
    assert sorted(folder_problems["action"]) == ["field emptied", "record skipped", "record skipped"]
    assert (list_runs.iloc[0]["kind"], list_runs.iloc[0]["source"], list_runs.iloc[0]["n_files"]) == (
        "files", str(folder), len(members))

    # importing the folder again changes nothing
    with TrialStore(tmp_path / "folder.duckdb") as store:
        assert store.import_files([folder], progress=False).n_upserted == 0
        assert len(store) == 201


def test_tar_gz_tgz_tar_bz2_xz_store_what_the_zip_stores(tmp_path, members):
    zpath = _zip(tmp_path / "AllPublicXML.zip", members)
    by_zip, zip_problems, _ = _import(tmp_path / "zip.duckdb", [zpath])
    for name, mode in (("a.tar.gz", "w:gz"), ("a.tgz", "w:gz"), ("a.tar", "w"), ("a.tar.bz2", "w:bz2"),
                       ("a.tar.xz", "w:xz")):
        archive = _tar(tmp_path / name, members, mode)
        assert detect_format(archive) == "ctgov_xml_tar"
        # put the tar where the ZIP was: same source, so every column (hashes too) must match
        same_path = tmp_path / "AllPublicXML.zip"
        shutil.copyfile(archive, same_path)
        by_tar, tar_problems, runs = _import(tmp_path / f"{name}.duckdb", [same_path])
        pd.testing.assert_frame_equal(by_tar.drop(columns=_VOLATILE), by_zip.drop(columns=_VOLATILE))
        assert len(tar_problems) == 3
        pd.testing.assert_frame_equal(_sorted_problems(tar_problems), _sorted_problems(zip_problems))
        assert (runs.iloc[0]["format"], runs.iloc[0]["n_files"]) == ("ctgov_xml_tar", 1)


def _sorted_problems(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["run_id", "recorded_at"]).sort_values("location").reset_index(drop=True)


def test_v2_json_tar(tmp_path, trials_dir):
    files = v2_files(trials_dir)
    archive = _tar(tmp_path / "ctg-studies.tar.gz", [(f"studies/{p.name}", p.read_bytes()) for p in files])
    assert detect_format(archive) == "ctgov_v2_tar"
    problems = []
    got = [(r.trial.registry_id, r.location) for r in read_trials(archive, problems=problems)]
    expected = [(next(iter(read_trials(p))).trial.registry_id, f"member studies/{p.name}") for p in files]
    assert got == expected and problems == []


def test_the_shipped_tar_gz(trials_dir):
    """The AllPublicXML subset as shipped: 6,786 files in three folders and one loose file, read
    as a stream (SOURCES.md: 5,754 + 281 + 750 + 1)."""
    archive = trials_dir / ARCHIVE
    assert detect_format(archive) == "ctgov_xml_tar"
    names = [name for name, data in TarMembers(archive) if not isinstance(data, MemberError)]
    folders = pd.Series([n.split("/")[0] if "/" in n else "" for n in names]).value_counts().to_dict()
    assert folders == {"NCT0000xxxx": 5754, "NCT0049xxxx": 750, "NCT0046xxxx": 281, "": 1}
    first = next(iter(read_trials(archive)))
    assert first.trial.registry_id == "NCT00000102" and first.location == "member NCT0000xxxx/NCT00000102.xml"
    assert str(first.as_of) == "2023-02-03"


def test_hostile_members_cost_no_other_record(tmp_path, members):
    good = _good(members, 5)
    record = good[0][1].replace(b"NCT00000102", b"NCT99999998")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        def add(name: str, data: bytes, **attrs) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            for k, v in attrs.items():
                setattr(info, k, v)
            tf.addfile(info, io.BytesIO(data))

        add(*good[0])
        add("../../escape.xml", record)
        add("/etc/trial.xml", record)
        add("line\nbreak.xml", record)
        add("README.txt", b"AllPublicXML, extracted and packed again")
        add("link.xml", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add("bomb.xml", BILLION_LAUGHS)
        huge = tarfile.TarInfo("huge.xml")
        huge.size = MAX_RECORD_BYTES + 1
        tf.addfile(huge, io.BufferedReader(_Zeros(huge.size)))
        for name, data in good[1:]:
            add(name, data)
    archive = tmp_path / "hostile.tar.gz"
    archive.write_bytes(buf.getvalue())
    assert detect_format(archive) == "ctgov_xml_tar"
    problems = []
    ids = [r.trial.registry_id for r in read_trials(archive, problems=problems)]
    assert ids == [_nct(d) for _, d in good]
    lines = [str(p) for p in problems]
    assert all("\n" not in line and line.startswith(f"{archive}:member ") for line in lines)
    reasons = {p.location.removeprefix("member "): p.reason for p in problems}
    assert list(reasons) == ["../../escape.xml", "/etc/trial.xml", "line\\nbreak.xml", "README.txt", "link.xml",
                             "bomb.xml", "huge.xml"]
    assert "path traversal" in reasons["../../escape.xml"] and "absolute path" in reasons["/etc/trial.xml"]
    assert "control characters" in reasons["line\\nbreak.xml"]
    assert reasons["README.txt"] == "neither JSON nor XML; skipped"
    assert reasons["link.xml"] == "a symbolic link; not read" and reasons["bomb.xml"].startswith("refused")
    assert reasons["huge.xml"] == f"member is {MAX_RECORD_BYTES + 1:,} bytes (limit {MAX_RECORD_BYTES:,}); not read"
    # the same names in a ZIP are refused the same way
    zpath = tmp_path / "hostile.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(good[0][0], good[0][1])
        zf.writestr("../../escape.xml", record)
    problems = []
    assert [r.trial.registry_id for r in read_trials(zpath, problems=problems)] == ids[:1]
    assert [(p.location, "path traversal" in p.reason) for p in problems] == [("member ../../escape.xml", True)]


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, produced as read (a huge member without holding it)."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.left)
        buf[:n] = b"\0" * n
        self.left -= n
        return n


@pytest.mark.parametrize("mode", ["w:gz", "w", "w:bz2", "w:xz"])
def test_truncated_archive_keeps_the_members_before_the_cut(tmp_path, members, mode):
    good = _good(members, 40)
    whole = _tar(tmp_path / "whole.tar", good, mode).read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    if mode == "w:bz2":  # bzip2 decodes whole blocks (900 kB): a cut inside the first leaves nothing to read
        assert len(whole) < 900_000
        with pytest.raises(ValueError, match="bzip2 data cut short before anything could be read"):
            detect_format(cut)
        return
    problems = []
    records = list(read_trials(cut, problems=problems))
    assert 5 <= len(records) < 40
    assert [r.trial.registry_id for r in records] == [_nct(d) for _, d in good[: len(records)]]
    assert len(problems) == 1 and problems[0].location == "archive" and problems[0].action == "rest of file skipped"
    assert "cut short" in problems[0].reason and good[len(records) - 1][0] in problems[0].reason


def test_corrupt_header_midway_is_one_line(tmp_path, members):
    good = _good(members, 10)
    data = bytearray(_tar(tmp_path / "whole.tar", good, "w").read_bytes())
    # the header of the 6th member: offset after five members (header + data padded to 512)
    offset = sum(512 + -(-len(d) // 512) * 512 for _, d in good[:5])
    data[offset + 100: offset + 200] = b"\xff" * 100
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    problems = []
    records = list(read_trials(bad, problems=problems))
    assert len(records) == 5
    assert len(problems) == 1 and problems[0].location == "archive" and "corrupt archive" in problems[0].reason


def test_compressed_file_that_is_no_tar_is_a_clear_error(tmp_path):
    for name, data in (("x.bz2", bz2.compress(b"not a tar at all" * 100)), ("x.xz", lzma.compress(b"plain text"))):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match="not a tar archive"):
            detect_format(path)
    empty = tmp_path / "readme-only.tar.gz"
    _tar(empty, [("README.txt", b"nothing here")])
    with pytest.raises(ValueError, match="holds no v2 study JSON or <clinical_study> XML"):
        detect_format(empty)


_KILLABLE = textwrap.dedent(
    """
    import sys
    import neuromodmap.trials.store as st
    folder, db = sys.argv[1], sys.argv[2]
    upsert = st.TrialStore._upsert

    def counted(self, records, **kw):
        def gen():
            for i, rec in enumerate(records, start=1):
                if i % 250 == 0:
                    print(i, flush=True)
                yield rec
        return upsert(self, gen(), **kw)

    st.TrialStore._upsert = counted
    st.TrialStore(db).import_files([folder], progress=False, batch_size=250)
    print("done", flush=True)
    """
)


def test_killed_folder_import_resumes_without_duplicates(tmp_path, trials_dir):
    real = _archive_members(trials_dir, {"NCT0000xxxx": 3000})
    folder = _folder(tmp_path, real)
    killed_db = tmp_path / "killed.duckdb"
    env = {**os.environ, "NEUROMODMAP_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(folder), str(killed_db)], stdout=subprocess.PIPE,
                            text=True, env=env)
    for line in proc.stdout:
        # a fresh import commits whole row groups (ROW_GROUP_SIZE, 2,048 rows): the first 2,048
        # records are committed when the 2,500th is read (batches of 250), one file after another
        if line.strip() == "2500":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with TrialStore(killed_db) as store:
        partial = len(store)
        assert ROW_GROUP_SIZE <= partial < 3000  # really killed midway
        runs = store.import_runs_df()
        assert list(runs["status"]) == ["interrupted"] and runs.iloc[0]["n_read"] == partial
        store.import_files([folder], progress=False)
        rerun = store.con.execute("SELECT * FROM trials ORDER BY registry_id").df().drop(columns=_VOLATILE)
        assert list(store.import_runs_df()["status"]) == ["interrupted", "completed"]
    with TrialStore(tmp_path / "clean.duckdb") as store:
        store.import_files([folder], progress=False)
        clean = store.con.execute("SELECT * FROM trials ORDER BY registry_id").df().drop(columns=_VOLATILE)
    assert len(clean) == 3000
    pd.testing.assert_frame_equal(rerun, clean)


def test_cli_imports_a_folder_with_its_count(tmp_path, members):
    folder = _folder(tmp_path, _good(members))
    runner = CliRunner()
    result = runner.invoke(app, ["trials", "import", str(folder), "--db", str(tmp_path / "t.duckdb")])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert f"{folder}: 201 files (the folder and its subfolders)" in flat
    assert "Imported 201 trials" in flat and "201 file(s)" in flat
    (folder / "notes").mkdir()
    (folder / "notes" / "README.txt").write_text("how this folder was made")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: never read
    result = runner.invoke(app, ["trials", "import", str(folder), "--db", str(tmp_path / "t.duckdb")])
    flat = " ".join(result.output.split())
    assert result.exit_code == 1 and "could not read 1 file(s)" in flat and "README.txt" in flat
    assert "Imported 0 trials" in flat and "Traceback" not in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["trials", "import", str(empty), "--db", str(tmp_path / "t.duckdb")])
    assert result.exit_code == 2 and "the folder holds no files" in " ".join(result.output.split())


def test_classify_a_folder(tmp_path, members):
    from neuromodmap.trials.pipeline import classify_to_csv, import_and_classify

    folder = _folder(tmp_path, members)
    problems = []
    stats = classify_to_csv([folder], tmp_path / "labels.csv", problems=problems)
    assert stats["n_trials"] == 203 and len(problems) == 3  # one row per record read, as for a ZIP
    with TrialStore(tmp_path / "t.duckdb") as store:
        result = import_and_classify(store, [folder])
        assert result["n_classified"] == len(store) == 201
        assert len(store.import_runs_df()) == 1


# ---------------------------------------------------------------------- two processes
@pytest.fixture
def two_processes(monkeypatch):
    from neuromodmap.trials import io as trials_io
    from neuromodmap.trials import pipeline

    monkeypatch.delenv("NEUROMODMAP_SERIAL", raising=False)
    if pipeline._fork_context() is None:
        pytest.skip("no fork start method or a single core: the one-process way is tested elsewhere")
    return pipeline, trials_io


@pytest.mark.parametrize("named", [False, True], ids=["folder", "files named one by one"])
def test_folder_shared_by_two_processes_equals_one_process(tmp_path, members, trials_dir, two_processes,
                                                           monkeypatch, named):
    """A folder of one-study files (real legacy XML and v2 JSON files, the four odd ones, an
    empty file first and a real ICTRP export among them), or its files named one by one, goes
    through the two-process route, split by blocks of files, each file read once; the store
    (rows, hashes, runs, problems in order, labels) and the CSV are exactly those of one
    process."""
    pipeline, trials_io = two_processes
    folder = _folder(tmp_path, members)
    (folder / "0_empty.xml").write_bytes(b"")
    shutil.copyfile(trials_dir / "who_ictrp_xml_2024_machado" / "ICTRP-Results(1).xml",
                    folder / "NCT0046xxxx" / "zz_ictrp.xml")
    for path in v2_files(trials_dir):
        (folder / "v2").mkdir(exist_ok=True)
        shutil.copyfile(path, folder / "v2" / path.name)
    monkeypatch.setattr(pipeline, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(trials_io, "ARCHIVE_BLOCK", 4)  # many blocks, some for each process

    files = [f.path for f in expand_inputs([folder])]
    inputs = files if named else [folder]
    real_open = open

    def run(name: str) -> tuple[dict, list[str]]:
        """import_and_classify into ``name``.duckdb, logging every opening of a file of the
        folder by either process (appended: the forked worker inherits the wrapper)."""
        log = os.open(tmp_path / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)

        def logging_open(file, mode="r", *args, **kwargs):
            if str(file).startswith(str(folder)):
                os.write(log, f"{file}\n".encode())
            return real_open(file, mode, *args, **kwargs)

        with TrialStore(tmp_path / f"{name}.duckdb") as store:
            monkeypatch.setattr("builtins.open", logging_open)
            try:
                stats = pipeline.import_and_classify(store, inputs, csv_output=tmp_path / f"{name}.csv")
            finally:
                monkeypatch.setattr("builtins.open", real_open)
                os.close(log)
        return stats, sorted((tmp_path / f"{name}.log").read_text().splitlines())

    # each file opened once, by two processes or one; the ICTRP export twice (read whole to
    # judge it, then read as an export)
    stats, opened = run("two")
    assert stats["parallel"] is True
    assert opened == sorted(files + [str(folder / "NCT0046xxxx" / "zz_ictrp.xml")])
    monkeypatch.setenv("NEUROMODMAP_SERIAL", "1")
    one, opened = run("one")
    assert one["parallel"] is False
    assert opened == sorted(files + [str(folder / "NCT0046xxxx" / "zz_ictrp.xml")])
    two_state, one_state = store_state(tmp_path / "two.duckdb"), store_state(tmp_path / "one.duckdb")
    for name in ("trials", "runs", "problems", "labels"):
        pd.testing.assert_frame_equal(two_state[name], one_state[name], obj=name)
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    runs = two_state["runs"]
    # the empty file (a failed run), the files up to the ICTRP export, the export, the rest
    assert list(runs["kind"]) == ["file", "files" if named else "folder", "file", "files" if named else "folder"]
    # a folder's runs name the folder; named files' runs their common folder (the same here)
    assert list(runs["source"])[1:] == [str(folder), str(folder / "NCT0046xxxx" / "zz_ictrp.xml"), str(folder)]
    assert list(runs["status"]) == ["failed", "completed", "completed", "completed"]
    assert list(runs["format"].fillna("")) == ["", "ctgov_xml", "ictrp_xml", "ctgov_v2_json, ctgov_xml"]
    assert runs["n_files"].sum() == len(files)
    assert sorted(Path(s).name for s in two_state["problems"]["source"] if "zz_" in s or "empty" in s) == [
        "0_empty.xml", "zz_bomb.xml", "zz_cut.xml", "zz_enrollment.xml"]
    trials = two_state["trials"].set_index("registry_id")
    assert trials.loc["NCT00000102", "source"].endswith("NCT00000102_changed.xml")  # the later copy won
    assert trials.loc["NCT00000102", "overall_status"] == "TERMINATED"
    # every stored trial has the label classify() gives its stored row
    labels = two_state["labels"].set_index("registry_id")
    assert len(labels) == len(trials)
    with TrialStore(tmp_path / "two.duckdb") as store:
        for trial in store.iter_trials():
            c = classify(trial)
            assert (bool(labels.loc[trial.registry_id, "neuromod"]), list(labels.loc[trial.registry_id, "modalities"])
                    ) == (c.neuromod, c.modalities), trial.registry_id


def test_extracted_allpublicxml_folder_stores_what_its_tar_stores(tmp_path, trials_dir, two_processes):
    """All 6,786 files of the shipped AllPublicXML tar, extracted to a folder as a user has them,
    imported and classified by two processes (no setting lowered): the same records and labels
    as importing the tar itself, each record's source its own file."""
    pipeline, _ = two_processes
    folder = tmp_path / "AllPublicXML"
    with tarfile.open(trials_dir / ARCHIVE) as tf:
        names = [m.name for m in tf.getmembers() if m.isfile()]
        tf.extractall(folder, filter="data")
    assert len(names) == 6786 and sum(f.size for f in expand_inputs([folder])) >= pipeline._PARALLEL_MIN_BYTES
    states = {}
    for name, source in (("folder", folder), ("tar", trials_dir / ARCHIVE)):
        with TrialStore(tmp_path / f"{name}.duckdb") as store:
            stats = pipeline.import_and_classify(store, [source], problems=(problems := []))
            assert stats["parallel"] is True and problems == []
        states[name] = store_state(tmp_path / f"{name}.duckdb")
    by_folder, by_tar = states["folder"]["trials"], states["tar"]["trials"]
    assert len(by_folder) == 6786
    assert set(by_folder["source"]) == {str(folder / n) for n in names}
    assert all(Path(s).stem == i for s, i in zip(by_folder["source"], by_folder["registry_id"], strict=True))
    different = ["source", "record_hash"]  # the source (file or tar) enters the hash
    pd.testing.assert_frame_equal(by_folder.drop(columns=different), by_tar.drop(columns=different))
    pd.testing.assert_frame_equal(states["folder"]["labels"], states["tar"]["labels"])
    run = states["folder"]["runs"].iloc[0]
    assert (run["kind"], run["source"], run["n_files"], run["n_read"]) == ("folder", str(folder), 6786, 6786)


_EXPORTS = [
    "ctgov_csv_mixed_1000_anand21jv/ctg-studies.csv.gz",  # website CSV: its as-of found while read
    "ctgov_v2_json_zip_and_csv_erectile_dysfunction_marcmorcos/ctg-studies.json.zip",  # split by members
    "ctgov_csv_classic_oldformat_trauma_jeffreys518/SearchResults.csv.gz",
    "ctgov_v2_json_download_herniated_disc_koy570/ctg-studies.json.gz",
    "who_ictrp_covid19_2020_ebmdatalab/COVID19-1135-trials.csv.gz",  # holds NCT ids stored above
    "who_ictrp_xml_2024_machado/ICTRP-Results(1).xml",
    "aact_derived_pain_trials_us_anhkhoavo/All_pain_master_file.csv.gz",
    "ctrdata_demo_sqlite_eu_registers_rfhb/demo.sqlite",
    "who_ictrp_fullexport_samples_2020_worcjamessmith/ictrp_im_sample.csv",
]


def test_every_export_shares_the_two_process_route(tmp_path, trials_dir, two_processes, monkeypatch):
    """The real exports of every format that cannot be split, imported and classified in one
    call: the worker reads each whole (the importer only writes), a splittable ZIP among them is
    split; the store (rows, hashes, as-of dates, runs, problems, labels, ICTRP rows that leave
    CT.gov rows alone) and the CSV are those of one process."""
    pipeline, _ = two_processes
    inputs = [trials_dir / name for name in _EXPORTS]
    monkeypatch.setattr(pipeline, "_PARALLEL_MIN_BYTES", 0)
    with TrialStore(tmp_path / "two.duckdb") as store:
        two = pipeline.import_and_classify(store, inputs, csv_output=tmp_path / "two.csv")
    monkeypatch.setenv("NEUROMODMAP_SERIAL", "1")
    with TrialStore(tmp_path / "one.duckdb") as store:
        one = pipeline.import_and_classify(store, inputs, csv_output=tmp_path / "one.csv")
    assert (two["parallel"], one["parallel"]) == (True, False)
    two_state, one_state = store_state(tmp_path / "two.duckdb"), store_state(tmp_path / "one.duckdb")
    for name in ("trials", "runs", "problems", "labels"):
        pd.testing.assert_frame_equal(two_state[name], one_state[name], obj=name)
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    runs = two_state["runs"]
    assert list(runs["status"]) == ["completed"] * len(_EXPORTS)
    assert str(runs["as_of"].iloc[0].date()) == "2025-05-09"  # the website export's latest date posted
    assert set(two_state["trials"]["source_format"]) >= {"ctgov_csv", "ctgov_v2", "ictrp_xml", "aact_csv"}


def test_later_duplicate_row_of_an_export_gives_the_label_when_shared(tmp_path, trials_dir, two_processes,
                                                                       monkeypatch):
    """A real website export with one row repeated at its end, retitled as a TMS trial, read
    whole by the worker: the later row is stored and its label is the one kept."""
    import csv as csvmod
    import gzip

    pipeline, _ = two_processes
    monkeypatch.setattr(pipeline, "_PARALLEL_MIN_BYTES", 0)
    with gzip.open(trials_dir / _EXPORTS[0], "rt", encoding="utf-8", newline="") as fh:
        rows = list(csvmod.reader(fh))
    title = rows[0].index("Study Title")
    copy = list(rows[5])
    copy[title] = "Repetitive transcranial magnetic stimulation for treatment-resistant depression"
    path = tmp_path / "ctg-studies.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csvmod.writer(fh).writerows([*rows, copy])
    with TrialStore(tmp_path / "t.duckdb") as store:
        stats = pipeline.import_and_classify(store, [path, trials_dir / _EXPORTS[1]])
        assert stats["parallel"] is True
        trial = store.get_trial(rows[5][0])
        label = store.labels_df().set_index("registry_id").loc[rows[5][0]]
    assert trial.title == copy[title]
    c = classify(trial)
    assert c.neuromod and (bool(label["neuromod"]), list(label["modalities"])) == (c.neuromod, c.modalities)


@pytest.mark.parametrize("route", ["import", "import_and_classify"])
def test_full_records_are_committed_as_whole_row_groups(tmp_path, trials_dir, route, monkeypatch):
    """Full AllPublicXML records come in batches bounded by characters (a few hundred records),
    yet every commit but the last holds whole row groups, which DuckDB writes straight to the
    file: only the rest of the last row group goes through the write-ahead log (a commit of part
    of a row group goes through the log, and one too many of them once bloated the store to
    1.4 GB). ``import_and_classify`` then commits the labels with a checkpoint: every row group
    is on disk after it and nothing is left in the log."""
    from neuromodmap.trials.pipeline import import_and_classify

    db = tmp_path / "t.duckdb"
    wal = db.with_name(db.name + ".wal")
    logged: list[int] = []
    checkpointing = TrialStore._checkpointing

    def spy(self):
        logged.append(wal.stat().st_size if wal.exists() else 0)
        return checkpointing(self)

    monkeypatch.setattr(TrialStore, "_checkpointing", spy)
    with TrialStore(db) as store:
        if route == "import":
            n = store.import_files([trials_dir / ARCHIVE], progress=False).n_read
            logged.append(wal.stat().st_size)
        else:
            n = import_and_classify(store, [trials_dir / ARCHIVE])["n_classified"]
        assert n == len(store) == 6786
        raw_bytes = store.con.execute("SELECT sum(length(raw)) FROM trials").fetchone()[0]
        groups = store.con.execute(
            "SELECT row_group_id, sum(count), bool_and(persistent) FROM pragma_storage_info('trials') "
            "WHERE column_name = 'registry_id' AND segment_type <> 'VALIDITY' GROUP BY 1 ORDER BY 1").fetchall()
        left = wal.stat().st_size if wal.exists() else 0
    whole, rest = divmod(n, ROW_GROUP_SIZE)
    on_disk = route != "import"  # the last, part row group: in the log until a checkpoint
    assert [(rows, disk) for _, rows, disk in groups] == [(ROW_GROUP_SIZE, True)] * whole + [(rest, on_disk)]
    # before the last checkpoint the log held the rest of the last row group only (all: ~106 MB)
    assert len(logged) == 1 and logged[0] < 2 * raw_bytes * rest / n, (logged, raw_bytes)
    if on_disk:
        assert left < 1_000_000


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_member_data_read_from_the_stream_as_tarfile_extracts_them(tmp_path, members, fmt):
    """Members' data are read straight from the archive stream after their headers (not through
    tarfile's per-member file object): the same bytes as ``tarfile.extractfile`` for real records
    under long names (a pax record or a GNU long-name header) and sizes of 0, 1, 511, 512 and 513
    bytes; a cut inside a member's data names that member."""
    good = _good(members, 6)
    deep = "NCT0000xxxx/" + "sub-folder/" * (14 if fmt != tarfile.USTAR_FORMAT else 1)  # > 100 bytes
    entries = [(deep + name.split("/")[-1], data) for name, data in good]
    entries += [(f"sizes/{n}.bin", bytes(range(256)) * 2 + b"x" * n)[:2] for n in (0, 1, 511, 512, 513)]
    entries = [(name, data[: int(name.split("/")[-1].split(".")[0])] if name.startswith("sizes/") else data)
               for name, data in entries]
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz", format=fmt) as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with tarfile.open(archive) as tf:
        expected = [(m.name, tf.extractfile(m).read()) for m in tf if m.isreg()]
    assert [len(d) for n, d in expected if n.startswith("sizes/")] == [0, 1, 511, 512, 513]
    assert len(expected[0][0]) > 100 or fmt == tarfile.USTAR_FORMAT
    assert list(TarMembers(archive)) == expected
    # cut 100 bytes into the third member's data (plain tar: offsets are exact)
    plain = tmp_path / "a.tar"
    plain.write_bytes(gzip_decompress(archive.read_bytes()))
    with tarfile.open(plain) as tf:
        third = [m for m in tf if m.isreg()][2]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(plain.read_bytes()[: third.offset_data + 100])
    got = list(TarMembers(cut))
    assert got[:2] == expected[:2]
    assert len(got) == 3 and got[2][0] == "(archive)" and isinstance(got[2][1], MemberError)
    assert str(got[2][1]) == (f"the archive is cut short (member {third.name}: unexpected end of data); "
                              f"the members up to {expected[1][0]} were read")
