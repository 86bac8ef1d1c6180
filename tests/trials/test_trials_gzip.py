"""gzip-compressed trial files, recognised from the content inside the gzip and read as a stream:
real registry files from shared/data/trials, compressed, cut short, damaged or made hostile in
tmp_path.

* each text format read from gzip gives the same records and problems as the plain file
  (also split into several gzip members, with gzip(1)'s zero padding);
* a file cut short keeps exactly the records wholly before the cut (counted here from the
  decompressed prefix itself) and reports one problem naming the file;
* a damaged file (bytes changed in the middle) is not read at all, with one problem naming the
  file: gzip finds the damage only at its CRC check, after decoding the damaged bytes into
  plausible, wrong text;
* entity declarations inside gzipped XML are refused (defusedxml), and a gzip bomb is bounded
  by the 64 MB document limit."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import re
import zlib
from pathlib import Path

import pytest

from neuromodmap.trials import ImportProblem, TrialStore, read_trials
from neuromodmap.trials._readers._common import MAX_RECORD_BYTES, TrialFileError
from neuromodmap.trials.io import detect_format

ICTRP_XML = "who_ictrp_xml_2024_machado/ICTRP-Results(1).xml"
ICTRP_XML_GZ = "who_ictrp_covid19_2020_ebmdatalab/ICTRP-Results_18Mar2020.xml.gz"
ICTRP_CSV_GZ = "who_ictrp_covid19_2020_ebmdatalab/COVID19-927-trials_7Apr2020.csv.gz"
FULL_CSV = "who_ictrp_fullexport_samples_2020_worcjamessmith/ictrp_im_sample.csv"
V2_ARRAY_GZ = "ctgov_v2_json_download_herniated_disc_koy570/ctg-studies.json.gz"
V2_ONE = "ctgov_v2_json/NCT02552212.json"
LEGACY_XML = "ctgov_legacy_xml/NCT02586688.xml"
CTGOV_CSV_GZ = "ctgov_csv_mixed_1000_anand21jv/ctg-studies.csv.gz"


def _read(path, **kw):
    problems: list[ImportProblem] = []
    return list(read_trials(path, problems=problems, **kw)), problems


def _key(records):
    return [(r.trial.model_dump(), json.dumps(r.raw, sort_keys=True, default=str), r.as_of, r.location)
            for r in records]


def _no_source(problems):
    return [(p.location, p.field, p.registry_id, p.reason, p.action) for p in problems]


def _plain_and_gzip(trials_dir: Path, tmp_path: Path, name: str) -> tuple[Path, Path]:
    """The file both ways: the shared file as it is, and its other form written to tmp_path."""
    src = trials_dir / name
    data = src.read_bytes()
    if data[:2] == b"\x1f\x8b":
        plain = tmp_path / src.name.removesuffix(".gz")
        plain.write_bytes(gzip.decompress(data))
        return plain, src
    packed = tmp_path / (src.name + ".gz")
    packed.write_bytes(gzip.compress(data))
    return src, packed


def _jsonl(trials_dir: Path, tmp_path: Path) -> str:
    studies = json.loads(gzip.decompress((trials_dir / V2_ARRAY_GZ).read_bytes()))
    path = tmp_path / "studies.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in studies), encoding="utf-8")
    return path


CASES = [
    # (file, plain format, records in it: from its SOURCES.md)
    (ICTRP_XML, "ictrp_xml", 95),
    (ICTRP_XML_GZ, "ictrp_xml", 578),
    (ICTRP_CSV_GZ, "ictrp_csv", 927),
    (FULL_CSV, "ictrp_csv", 127),
    (V2_ARRAY_GZ, "ctgov_v2_json", 100),
    (V2_ONE, "ctgov_v2_json", 1),
    (LEGACY_XML, "ctgov_xml", 1),
    (CTGOV_CSV_GZ, "ctgov_csv", 1000),
    ("jsonl", "jsonl", 100),
]


@pytest.mark.parametrize(("name", "fmt", "n"), CASES, ids=[c[0].split("/")[-1] for c in CASES])
def test_gzip_reads_as_the_plain_file(trials_dir, tmp_path, name, fmt, n):
    if name == "jsonl":
        plain = _jsonl(trials_dir, tmp_path)
        packed = tmp_path / "studies.jsonl.gz"
        packed.write_bytes(gzip.compress(plain.read_bytes()))
    else:
        plain, packed = _plain_and_gzip(trials_dir, tmp_path, name)
    assert detect_format(plain) == fmt
    assert detect_format(packed) == ("jsonl_gz" if fmt == "jsonl" else f"{fmt}_gz")
    records, problems = _read(plain)
    assert len(records) == n
    got, got_problems = _read(packed)
    assert _key(got) == _key(records)
    assert _no_source(got_problems) == _no_source(problems)
    assert {r.source for r in got} == {str(packed)}
    # the same content in three gzip members (as `cat a.gz b.gz c.gz` makes), then zero padding
    data = plain.read_bytes()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    members = tmp_path / ("members-" + packed.name)
    members.write_bytes(b"".join(gzip.compress(data[a:b]) for a, b in itertools.pairwise(cuts)) + b"\0" * 512)
    again, again_problems = _read(members)
    assert _key(again) == _key(records)
    assert _no_source(again_problems) == _no_source(problems)


def test_gzip_store_import_as_plain(trials_dir, tmp_path):
    """Stored through the store, a gzip file is one run of format ``<format>_gz`` holding the
    same rows as the plain file."""
    plain, packed = _plain_and_gzip(trials_dir, tmp_path, ICTRP_CSV_GZ)
    rows = {}
    for path in (plain, packed):
        with TrialStore(tmp_path / f"{path.name}.duckdb") as store:
            store.import_files([path], progress=False)
            rows[path] = store.con.execute(
                "SELECT registry_id, title, start_date, enrollment, as_of FROM trials ORDER BY registry_id"
            ).fetchall()
            assert store.con.execute("SELECT format FROM import_runs").fetchall() == [
                ("ictrp_csv" if path == plain else "ictrp_csv_gz",)
            ]
    assert len(rows[plain]) == 927 and rows[plain] == rows[packed]


# ---------------------------------------------------------------- cut short
def _prefix(packed: Path, frac: float, tmp_path: Path) -> tuple[Path, str]:
    """The gzip file cut at ``frac`` of its bytes, and the text that decompresses from the cut file."""
    data = packed.read_bytes()
    cut = tmp_path / f"cut-{frac}-{packed.name}"
    cut.write_bytes(data[: int(len(data) * frac)])
    text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut.read_bytes())
    return cut, text.decode("utf-8", "ignore")


def _one_cut_problem(problems, path):
    assert len(problems) == 1, problems
    p = problems[0]
    assert p.source == str(path) and p.action == "rest of file skipped"
    assert "truncated gzip" in p.reason
    return p


@pytest.mark.parametrize("frac", [0.2, 0.5, 0.9, 0.999])
def test_cut_ictrp_xml(trials_dir, tmp_path, frac):
    packed = trials_dir / ICTRP_XML_GZ
    whole, _ = _read(packed)
    cut, text = _prefix(packed, frac, tmp_path)
    complete = len(re.findall(r"</Trial>", text))  # the <Trial> elements wholly before the cut
    assert 0 < complete < 578
    records, problems = _read(cut)
    assert _key(records) == _key(whole[:complete])
    _one_cut_problem(problems, cut)


@pytest.mark.parametrize("name", [ICTRP_CSV_GZ, FULL_CSV])
@pytest.mark.parametrize("frac", [0.2, 0.5, 0.9, 0.999])
def test_cut_ictrp_csv(trials_dir, tmp_path, name, frac):
    plain, packed = _plain_and_gzip(trials_dir, tmp_path, name)
    whole, whole_problems = _read(plain)
    cut, text = _prefix(packed, frac, tmp_path)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    rows = [r for r in rows[1:] if any(c.strip() for c in r)]  # after the header
    # the last row before the cut may itself be cut short: only the rows before it are kept
    assert len(rows) > 1
    records, problems = _read(cut)
    assert [r.trial.registry_id for r in records] == [r[0] for r in rows[:-1]]
    assert _key(records) == _key(whole[: len(rows) - 1])
    # the bad fields of the records kept (the sample's 'Mar-16' dates), then the cut
    kept = {r.location for r in records}
    assert _no_source(problems[:-1]) == _no_source([p for p in whole_problems if p.location in kept])
    _one_cut_problem(problems[-1:], cut)


@pytest.mark.parametrize("frac", [0.2, 0.5, 0.9, 0.999])
def test_cut_v2_json_array(trials_dir, tmp_path, frac):
    packed = trials_dir / V2_ARRAY_GZ
    whole, _ = _read(packed)
    full_text = gzip.decompress(packed.read_bytes()).decode("utf-8")
    cut, text = _prefix(packed, frac, tmp_path)
    assert full_text.startswith(text)
    # where each study of the whole document ends; those ending before the cut are complete
    ends, pos, decoder = [], full_text.index("[") + 1, json.JSONDecoder()
    while full_text[pos:].lstrip(" \r\n\t,")[:1] == "{":
        pos += len(full_text[pos:]) - len(full_text[pos:].lstrip(" \r\n\t,"))
        _, pos = decoder.raw_decode(full_text, pos)
        ends.append(pos)
    assert len(ends) == 100
    complete = sum(end <= len(text) for end in ends)
    records, problems = _read(cut)
    assert _key(records) == _key(whole[:complete])
    if complete:
        _one_cut_problem(problems, cut)
    else:
        assert len(problems) == 1 and problems[0].action == "file skipped"


def test_cut_legacy_xml_record(trials_dir, tmp_path):
    """A one-record file cut short has no record to keep: the file is skipped, once."""
    _, packed = _plain_and_gzip(trials_dir, tmp_path, LEGACY_XML)
    cut = tmp_path / "cut.xml.gz"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    records, problems = _read(cut)
    assert records == []
    assert len(problems) == 1 and problems[0].source == str(cut) and problems[0].action == "file skipped"
    assert "truncated gzip" in problems[0].reason


# ---------------------------------------------------------------- damaged
def _damage(packed: Path, tmp_path: Path, at: float = 0.5) -> Path:
    data = bytearray(packed.read_bytes())
    start = int(len(data) * at)
    for i in range(start, start + 64):
        data[i] ^= 0x55
    out = tmp_path / f"damaged-{packed.name}"
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("name", [ICTRP_CSV_GZ, ICTRP_XML_GZ, V2_ARRAY_GZ, CTGOV_CSV_GZ])
def test_damaged_gzip_is_not_read(trials_dir, tmp_path, name):
    packed = trials_dir / name
    damaged = _damage(packed, tmp_path)
    records, problems = _read(damaged)
    assert records == []
    assert len(problems) == 1, problems
    p = problems[0]
    assert (p.source, p.location, p.action) == (str(damaged), "file", "file skipped")
    assert "corrupt gzip data" in p.reason and "damaged" in p.reason


def test_damaged_gzip_decodes_to_wrong_text(trials_dir, tmp_path):
    """Why a damaged file is not read up to the damage: zlib decodes the damaged bytes without
    a word and fails only at the CRC check at the end, by which time the CSV parser has seen
    thousands of made-up rows."""
    packed = trials_dir / ICTRP_CSV_GZ
    damaged = _damage(packed, tmp_path)
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = damaged.read_bytes()
    decoded = b""
    with pytest.raises(zlib.error, match="incorrect data check"):
        for i in range(0, len(data), 1 << 16):
            decoded += d.decompress(data[i : i + (1 << 16)])
    rows = list(csv.reader(io.StringIO(decoded.decode("utf-8", "replace"), newline="")))
    assert len(rows) > 2 * 928  # header + 927 trials in the sound file


def test_damaged_jsonl_gz_keeps_lines_that_parse(trials_dir, tmp_path):
    """JSON lines are not checked whole first (the corpus is large, and each line is checked by
    the JSON parser): the lines before the damage are read, damaged lines are skipped one by
    one, and the CRC failure at the end is one problem naming the file."""
    plain = _jsonl(trials_dir, tmp_path)
    packed = tmp_path / "studies.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    whole, _ = _read(packed)
    damaged = _damage(packed, tmp_path)
    records, problems = _read(damaged)
    assert 0 < len(records) < 100
    assert _key(records) == _key(whole[: len(records)])
    assert {p.source for p in problems} == {str(damaged)}
    *lines, last = problems
    assert all(p.action == "record skipped" and "invalid JSON" in p.reason for p in lines)
    # the CRC check that failed, as zlib ("incorrect data check") or ISA-L ("Incorrect checksum") says
    assert last.action == "rest of file skipped" and re.search("incorrect (data check|checksum)", last.reason, re.I)
    assert last.reason.count("corrupt gzip data") == 1


def test_damage_in_the_first_bytes_is_a_file_error(trials_dir, tmp_path):
    _, packed = _plain_and_gzip(trials_dir, tmp_path, LEGACY_XML)  # 4 kB compressed: all in the head
    damaged = _damage(packed, tmp_path)
    with pytest.raises(TrialFileError, match=re.escape(str(damaged)) + ".*corrupt gzip"):
        list(read_trials(damaged, problems=[]))


# ---------------------------------------------------------------- hostile content
LAUGHS = """<!DOCTYPE Trials_downloaded_from_ICTRP [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
"""


@pytest.mark.parametrize("entity", ["bomb", "external"])
def test_entities_in_gzipped_ictrp_xml_are_refused(trials_dir, tmp_path, entity):
    text = (trials_dir / ICTRP_XML).read_text(encoding="utf-8")
    root = text.index("<Trials_downloaded_from_ICTRP>")
    doctype = LAUGHS if entity == "bomb" else (
        '<!DOCTYPE Trials_downloaded_from_ICTRP [<!ENTITY lol9 SYSTEM "file:///etc/passwd">]>\n')
    first = text.index("<Public_title>") + len("<Public_title>")
    hostile = text[:root] + doctype + text[root:first] + "&lol9;" + text[first:]
    path = tmp_path / "ICTRP-Results.xml.gz"
    path.write_bytes(gzip.compress(hostile.encode("utf-8")))
    assert detect_format(path) == "ictrp_xml_gz"
    records, problems = _read(path)
    assert records == []
    assert len(problems) == 1 and problems[0].source == str(path)
    # defusedxml refuses any entity declaration, an external one included, before any record
    assert "refused" in problems[0].reason and "declares entities" in problems[0].reason


def test_entities_in_gzipped_legacy_xml_are_refused(trials_dir, tmp_path):
    text = (trials_dir / LEGACY_XML).read_text(encoding="utf-8")
    root = text.index("<clinical_study")
    hostile = text[:root] + LAUGHS.replace("Trials_downloaded_from_ICTRP", "clinical_study") + text[root:]
    hostile = hostile.replace("<brief_title>", "<brief_title>&lol9;", 1)
    path = tmp_path / "NCT02586688.xml.gz"
    path.write_bytes(gzip.compress(hostile.encode("utf-8")))
    records, problems = _read(path)
    assert records == [] and len(problems) == 1
    assert "refused" in problems[0].reason and "entit" in problems[0].reason


def test_gzip_bomb_stops_at_the_document_limit(trials_dir, tmp_path):
    """A v2 JSON document that decompresses past the 64 MB limit (from about 64 kB of gzip) is
    refused with one problem, not read into memory whole."""
    study = (trials_dir / V2_ONE).read_bytes()
    path = tmp_path / "bomb.json.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"[" + study + b"," + b" " * (1 << 20))
        for _ in range(MAX_RECORD_BYTES >> 20):
            fh.write(b" " * (1 << 20))
        fh.write(b"]")
    assert path.stat().st_size < 200_000
    assert detect_format(path) == "ctgov_v2_json_gz"
    records, problems = _read(path)
    assert records == [] and len(problems) == 1
    assert f"larger than {MAX_RECORD_BYTES:,} bytes" in problems[0].reason


def test_gzip_of_something_else_names_what_is_inside(tmp_path):
    path = tmp_path / "notes.txt.gz"
    path.write_bytes(gzip.compress(b"These are my notes about trials.\n"))
    with pytest.raises(TrialFileError, match=r"notes\.txt\.gz: gzip-compressed; inside: unrecognised"):
        detect_format(path)
    empty = tmp_path / "empty.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(TrialFileError, match="gzip-compressed, but empty"):
        detect_format(empty)
