"""Hostile input: whatever the bytes, an importer returns records/issues or raises LiteratureImportError."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuromodmap.literature import LiteratureImportError, read_records
from neuromodmap.literature.records import identifying_fields, is_untitled_issue

_LINES = st.sampled_from([
    "TY  - JOUR", "ER  -", "ER  - ", "TI  - Deep brain stimulation for depression", "AU  - Smith, A",
    "PY  - 2019", "DO  - 10.1000/xyz", "AB  - An abstract", "KW  - pain", "ZZ  - unknown", "  continued",
    "", "1.", "PMID- 123", "TI  - wrapped", "      line", "@article{k, title={T}, year=2020}",
    "<PubmedArticleSet>", "<PubmedArticle><MedlineCitation><PMID>1</PMID>", "title,abstract", "a,b",
    "\ufeffTY  - JOUR", "AU  - Müller, Ä", "T1  - Étude", "N2  - résumé",
])
_ENCODINGS = st.sampled_from(["utf-8", "cp1252", "utf-16", "latin-1"])


def _read(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"export{suffix}"
        path.write_bytes(data)
        try:
            result = read_records(path)
        except LiteratureImportError as exc:
            assert str(path) in str(exc)  # the error names the file
            return
        untitled = {i.position for i in result.issues if is_untitled_issue(i)}
        for record in result.records:
            # a record without title and abstract is kept only on what identifies it, and said so
            assert record.title or record.abstract or (identifying_fields(record)
                                                       and record.source_position in untitled)
        for issue in result.issues:
            assert issue.file and issue.reason


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINES, max_size=40), encoding=_ENCODINGS, crlf=st.booleans(),
       suffix=st.sampled_from([".ris", ".txt", ".csv", ".xml", ".bib"]))
def test_line_soup_never_crashes(lines, encoding, crlf, suffix) -> None:
    text = ("\r\n" if crlf else "\n").join(lines)
    _read(text.encode(encoding, errors="replace"), suffix)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".ris", ".xml", ".xlsx", ".csv.gz"]))
def test_random_bytes_never_crash(data, suffix) -> None:
    _read(data, suffix)
