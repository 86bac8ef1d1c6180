"""A bad year, PMID or DOI field costs that field, never the record: real search exports with
the first record edited in tmp_path are read with every record kept, the field left empty
and the problem reported (file, record, field, "field emptied"). Records without title and
abstract: test_literature_untitled.py."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import pytest

from neuromodmap.literature import read_records


def _edit_first(text: str, start: str, end: str, pattern: str, new: str) -> str:
    """Apply ``re.sub(pattern, new)`` inside the first ``start`` .. ``end`` block of ``text``."""
    i = text.index(start)
    j = text.index(end, i) + len(end)
    block, n = re.subn(pattern, new, text[i:j], flags=re.M)
    assert n >= 1, pattern
    return text[:i] + block + text[j:]


def _compare(whole, got, emptied: dict) -> None:
    assert len(got.records) == len(whole.records)
    first, ref = got.records[0], whole.records[0]
    for name, value in emptied.items():
        assert getattr(ref, name) != value, name  # the real record has the field
        assert getattr(first, name) == value, name
    rest = set(type(first).model_fields) - set(emptied) - {"record_id", "source_file", "month"}
    assert {n: getattr(first, n) for n in rest} == {n: getattr(ref, n) for n in rest}
    for a, b in zip(got.records[1:], whole.records[1:], strict=True):
        assert a.model_dump(exclude={"record_id", "source_file"}) == b.model_dump(exclude={"record_id", "source_file"})


def _emptied(result) -> list[tuple]:
    return [(i.position, i.field, i.action) for i in result.issues]


RIS = "citesource_valid_data/pubmed_46.ris"


@pytest.mark.parametrize(
    ("pattern", "new", "field", "emptied"),
    [
        (r"^(PY|Y1|DA|Y2)  - .*$", "PY  - in press", "PY", {"year": None}),
        (r"^(PY|Y1|DA|Y2)  - .*$", "PY  - 1750", "PY", {"year": None}),
        (r"^DO  - .*$", "DO  - not a doi", "DO", {"doi": None}),
    ],
)
def test_ris_bad_field(tmp_path: Path, exports_dir: Path, pattern, new, field, emptied) -> None:
    text = (exports_dir / RIS).read_text(encoding="utf-8-sig")
    whole = read_records(exports_dir / RIS)
    edited = _edit_first(text, "TY  -", "ER  -", pattern, new)  # every year tag of the record
    path = tmp_path / "pubmed_46.ris"
    path.write_text(edited, encoding="utf-8")
    got = read_records(path)
    assert _emptied(got) == [(1, field, "field emptied")]
    assert got.issues[0].line == 1 and new.split(" - ")[1] in got.issues[0].reason
    assert got.n_skipped == 0
    _compare(whole, got, emptied)


MEDLINE = "medline/pubmed_result2.txt"


@pytest.mark.parametrize(
    ("pattern", "new", "field", "emptied"),
    [(r"^DP  - .*$", "DP  - undated", "DP", {"year": None}),
     (r"^PMID- .*$", "PMID- 164O3221", "PMID", {"pmid": None})],
)
def test_medline_bad_field(tmp_path: Path, exports_dir: Path, pattern, new, field, emptied) -> None:
    text = (exports_dir / MEDLINE).read_text(encoding="utf-8")
    whole = read_records(exports_dir / MEDLINE)
    path = tmp_path / "pubmed_result2.txt"
    path.write_text(_edit_first(text, "PMID-", "\nPMID-", pattern, new), encoding="utf-8")
    got = read_records(path)
    assert _emptied(got) == [(1, field, "field emptied")]
    _compare(whole, got, emptied)


XML = "pubmed_xml/asreview_pubmed.xml"


@pytest.mark.parametrize(
    ("start", "end", "pattern", "new", "field", "emptied"),
    [("<PubDate>", "</PubDate>", r"<Year>\d+</Year>", "<Year>Unknown</Year>", "PubDate", {"year": None}),
     ("<MedlineCitation", "</PMID>", r">\d+</PMID>", ">PMC31690499</PMID>", "PMID", {"pmid": None})],
)
def test_pubmed_xml_bad_field(tmp_path: Path, exports_dir: Path, start, end, pattern, new, field, emptied) -> None:
    text = (exports_dir / XML).read_text(encoding="utf-8")
    whole = read_records(exports_dir / XML)
    path = tmp_path / "asreview_pubmed.xml"
    path.write_text(_edit_first(text, start, end, pattern, new), encoding="utf-8")
    got = read_records(path)
    assert _emptied(got) == [(1, field, "field emptied")]
    _compare(whole, got, emptied)


BIB = "bibtex/pubmed_parser_paper.bib"


@pytest.mark.parametrize(
    ("pattern", "new", "field", "emptied"),
    [(r"year=\{2019\}", "year={forthcoming}", "year", {"year": None}),
     (r"doi=\{[^}]*\}", "doi={n/a}", "doi", {"doi": None})],
)
def test_bibtex_bad_field(tmp_path: Path, exports_dir: Path, pattern, new, field, emptied) -> None:
    text = (exports_dir / BIB).read_text(encoding="utf-8")
    whole = read_records(exports_dir / BIB)
    path = tmp_path / "refs.bib"
    path.write_text(_edit_first(text, "@article", "\n}", pattern, new), encoding="utf-8")
    got = read_records(path)
    assert _emptied(got) == [(1, field, "field emptied")]
    assert got.issues[0].line == 1
    _compare(whole, got, emptied)


def test_csv_bad_year_and_pmid(tmp_path: Path, labelled_dir: Path) -> None:
    """A labelled screening set (real rows) with one row's year and another's PMID edited."""
    for name, column, value, field in (("Bannach-Brown_2019.csv.gz", "year", "n.d.", "year"),
                                       ("Cohen_2006_ADHD.csv.gz", "pubmedID", "PMID:x", "pmid")):
        with gzip.open(labelled_dir / name, "rt", encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        rows = rows[:51]  # the header and 50 real rows
        k = next(i for i, r in enumerate(rows[1:], start=1) if r[rows[0].index(column)].strip())
        src = tmp_path / f"orig_{field}.csv"
        with open(src, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)
        rows[k][rows[0].index(column)] = value
        path = tmp_path / f"edited_{field}.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)
        whole, got = read_records(src), read_records(path)
        assert len(got.records) == len(whole.records) == 50
        assert _emptied(got) == [(k, column, "field emptied")]
        assert getattr(whole.records[k - 1], field) is not None and getattr(got.records[k - 1], field) is None
        assert got.records[k - 1].title == whole.records[k - 1].title
