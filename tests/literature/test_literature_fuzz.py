"""Hostile input as properties: what an importer keeps and what it reports, whatever the bytes.

- RIS records built from random titles, years and authors (with ``<``, ``>``, ``=`` and
  non-ASCII text, unknown tags, CRLF, any of four encodings) come back one for one, each field
  whole, and each unknown tag is reported;
- line soup (fragments of every format) gives records that carry a title, an abstract or what
  identifies them, and issues that name the file, or one error naming the file;
- random bytes are refused in one message naming the file; bytes with NUL or many control
  characters are refused as "not a text file" and never parsed as a table.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from neuromodmap.literature import LiteratureImportError, read_records
from neuromodmap.literature.records import identifying_fields, is_untitled_issue

# words that cannot spell an HTML/JATS tag name (those tags are stripped on purpose): letters
# from "kqvwxyz", digits, non-ASCII letters and the characters a title may hold
_WORD = st.text(alphabet="kqvwxyzKQVWXYZ0123456789<>=+-.,;:()%'\"/éüßçÅ中文", min_size=1, max_size=12)
_TITLE = st.lists(_WORD, min_size=1, max_size=8).map(" ".join)
_AUTHOR = st.tuples(st.text(alphabet="KQVWXYZkqvwxyzéü", min_size=2, max_size=10),
                    st.text(alphabet="KQVWXYZ", min_size=1, max_size=2)).map(lambda t: f"{t[0]}, {t[1]}")
_RECORD = st.fixed_dictionaries({
    "title": _TITLE,
    "year": st.integers(1950, 2025),
    "authors": st.lists(_AUTHOR, max_size=3),
    "unknown_tag": st.booleans(),
})
_ENCODING = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"])


def _ris(records: list[dict]) -> str:
    lines = []
    for r in records:
        lines += ["TY  - JOUR", f"TI  - {r['title']}", *[f"AU  - {a}" for a in r["authors"]], f"PY  - {r['year']}"]
        if r["unknown_tag"]:
            lines.append("ZZ  - a vendor's own field")
        lines += ["ER  - ", ""]
    return "\n".join(lines)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_RECORD, min_size=1, max_size=8), encoding=_ENCODING, crlf=st.booleans())
def test_ris_records_come_back_whole(records, encoding, crlf) -> None:
    if encoding == "cp1252":  # Windows-1252 has no CJK characters
        records = [r | {"title": r["title"].replace("中", "k").replace("文", "q")} for r in records]
    text = _ris(records)
    if crlf:
        text = text.replace("\n", "\r\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.ris"
        path.write_bytes(text.encode(encoding))
        result = read_records(path)
    # kept: every record, in order, with its fields whole
    assert [r.title for r in result.records] == [" ".join(r["title"].split()) for r in records]
    assert [r.year for r in result.records] == [r["year"] for r in records]
    assert [r.authors for r in result.records] == [r["authors"] for r in records]
    assert result.n_skipped == 0
    # reported: the unknown tag (once per file), nothing else skipped or repaired
    unknown = [i for i in result.issues if "ZZ" in i.reason]
    assert bool(unknown) == any(r["unknown_tag"] for r in records)
    assert all(i.file == str(path) and i.reason for i in result.issues)
    assert not any(i.action == "skipped" for i in result.issues)


_LINES = st.sampled_from([
    "TY  - JOUR", "ER  -", "ER  - ", "TI  - Deep brain stimulation for depression", "AU  - Smith, A",
    "PY  - 2019", "DO  - 10.1000/xyz", "AB  - An abstract", "KW  - pain", "ZZ  - unknown", "  continued",
    "", "1.", "PMID- 123", "TI  - wrapped", "      line", "@article{k, title={T}, year=2020}",
    "<PubmedArticleSet>", "<PubmedArticle><MedlineCitation><PMID>1</PMID>", "title,abstract", "a,b",
    "\ufeffTY  - JOUR", "AU  - Müller, Ä", "T1  - Étude", "N2  - résumé",
])


def _read(data: bytes, suffix: str):
    """(result, None) or (None, error message); the error must name the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"export{suffix}"
        path.write_bytes(data)
        try:
            result = read_records(path)
        except LiteratureImportError as exc:
            assert str(path) in str(exc)  # the error names the file
            return None, str(exc)
        untitled = {i.position for i in result.issues if is_untitled_issue(i)}
        for record in result.records:
            # a record without title and abstract is kept only on what identifies it, and said so
            assert record.title or record.abstract or (identifying_fields(record)
                                                       and record.source_position in untitled)
        for issue in result.issues:
            assert issue.file == str(path) and issue.reason
        return result, None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINES, max_size=40), encoding=st.sampled_from(["utf-8", "cp1252", "utf-16", "latin-1"]),
       crlf=st.booleans(), suffix=st.sampled_from([".ris", ".txt", ".csv", ".xml", ".bib"]))
def test_line_soup_keeps_what_it_can_and_says_the_rest(lines, encoding, crlf, suffix) -> None:
    text = ("\r\n" if crlf else "\n").join(lines)
    result, error = _read(text.encode(encoding, errors="replace"), suffix)
    if error is not None:
        assert "Traceback" not in error and "\n" not in error  # one line
        return
    # a complete RIS record (TY ... TI ... ER) in a file read as RIS is never lost
    if result.format == "ris":
        complete = sum(1 for i, line in enumerate(lines) if line.lstrip("\ufeff") == "TY  - JOUR"
                       and any(x.startswith(("TI  -", "T1  -")) for x in lines[i + 1:i + 2])
                       and lines[i + 2:i + 3] in (["ER  -"], ["ER  - "]))
        assert len(result.records) + result.n_skipped >= complete


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".ris", ".xml", ".xlsx", ".csv.gz"]))
@example(data=b'";', suffix=".ris")  # found by CI: pandas' "Error tokenizing data. C error: EOF inside string"
def test_random_bytes_are_refused_in_one_line(data, suffix) -> None:
    result, error = _read(data, suffix)
    head = data[:65536]
    binary = (b"\0" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff", b"PK\x03\x04", b"\x1f\x8b")))
    if binary:
        # never parsed as a table or a format: refused as what it is
        assert error is not None and ("not a text file" in error or "not a search export" in error
                                      or "empty" in error), error
    if error is not None:
        assert "\n" not in error and "Error tokenizing" not in error, error


def test_a_broken_table_is_named_in_the_users_words(tmp_path) -> None:
    """pandas' tokenizer messages ("Error tokenizing data. C error: ...") are said as what is
    wrong with the file: a quote never closed, a line with more cells than those before it."""
    _, error = _read(b'";', ".ris")
    assert error.endswith("cannot read as a CSV table (a quote opens a cell on row 1 and is never closed); "
                          "export the search again as RIS, MEDLINE, PubMed XML, BibTeX, CSV or XLSX"), error
    _, error = _read(b"title,year\nA,2001,x\nB,2002,y,z\n", ".csv")
    assert "line 3 has 4 cells where the lines before it have 3" in error, error
