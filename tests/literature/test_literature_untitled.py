"""A record with neither title nor abstract is never lost when something else identifies it.

Real search exports (RIS, MEDLINE, PubMed XML, BibTeX, CSV/XLSX) are copied into tmp_path and
one record edited: its title and abstract lines deleted. The record is kept with its DOI,
PMID, journal, volume and pages as the export gives them, and an issue names the file, the
record and what it was kept on. A record stripped of everything that identifies it is skipped
and reported. Downstream (store, criteria, screening, export, PRISMA, report table, citation)
the empty title is handled.
"""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.literature import (
    LiteratureImportError,
    ScreeningSession,
    apply_criteria,
    export_extraction_sheet,
    load_profile,
    load_records,
    open_store,
    prisma_flow,
    read_records,
    save_import,
)
from neuromodmap.literature._reportlet import records_table
from neuromodmap.literature._terminal import _panel
from neuromodmap.literature.records import is_untitled_issue

RIS = "citesource_valid_data/pubmed_46.ris"


def _edit_nth(text: str, start: str, end: str, n: int, *subs: tuple[str, str]) -> str:
    """Apply each ``re.sub(pattern, new)`` inside the ``n``-th (1-based) ``start`` .. ``end`` block."""
    i = -1
    for _ in range(n):
        i = text.index(start, i + 1)
    j = text.index(end, i + len(start)) + len(end)
    block = text[i:j]
    for pattern, new in subs:
        block, count = re.subn(pattern, new, block, flags=re.M)
        assert count >= 1, pattern  # the real record has the field
    return text[:i] + block + text[j:]


def _ris_drop(*tags: str) -> tuple[str, str]:
    """Delete the lines of these RIS tags (CRLF file; a value may wrap onto indented lines)."""
    return rf"^(?:{'|'.join(tags)})  - .*\r?\n(?: {{6}}.*\r?\n)*", ""


def _same_except(got, ref, *fields: str) -> None:
    skip = {"record_id", "source_file", *fields}
    assert got.model_dump(exclude=skip) == ref.model_dump(exclude=skip)


def _only(result, position: int):
    issues = [i for i in result.issues if i.position == position]
    assert len(issues) == 1, issues
    return issues[0]


# --- RIS ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("dropped", "kept_on", "not_on"),
    [
        # title and abstract gone: kept on the DOI, the journal with volume/pages/year, authors + year
        (("TI", "T1", "AB", "N2"), ["DOI 10.3389/fpsyt.2022.940397", "journal 'Frontiers in psychiatry'",
                                    "volume 13", "pages 940397", "year 2022", "first author 'Takiguchi, Naoko'"],
         []),
        # and the DOI: the journal, volume and first page still identify it
        (("TI", "T1", "AB", "N2", "DO"), ["journal 'Frontiers in psychiatry'", "volume 13", "pages 940397"], ["DOI"]),
        # and every journal tag: first author and year are left
        (("TI", "T1", "AB", "N2", "DO", "T2", "J2"), ["first author 'Takiguchi, Naoko', year 2022"],
         ["DOI", "journal"]),
    ],
)
def test_ris_record_without_title_or_abstract_is_kept(tmp_path: Path, exports_dir: Path, dropped, kept_on,
                                                      not_on) -> None:
    text = (exports_dir / RIS).read_text(encoding="utf-8-sig")
    whole = read_records(exports_dir / RIS)
    path = tmp_path / "pubmed_46.ris"
    path.write_text(_edit_nth(text, "TY  -", "ER  -", 3, _ris_drop(*dropped)), encoding="utf-8", newline="")
    got = read_records(path)
    assert len(got.records) == len(whole.records) == 46 and got.n_skipped == 0
    record, ref = got.records[2], whole.records[2]
    assert ref.title.startswith("Secrecy, self-blame") and ref.abstract  # the real record had both
    assert (record.title, record.abstract) == ("", "")
    emptied = {"title", "abstract"} | ({"doi"} if "DO" in dropped else set()) | (
        {"journal"} if "T2" in dropped else set())
    _same_except(record, ref, *emptied)
    issue = _only(got, 3)
    assert issue.file == str(path) and issue.line == ref.source_line and issue.action == "kept"
    assert issue.reason.startswith("no title or abstract; kept on ")
    for phrase in kept_on:
        assert phrase in issue.reason
    for word in not_on:
        assert word not in issue.reason
    assert f"{path}, line {ref.source_line}, record 3, field TI: no title or abstract; kept on" in str(issue)
    assert str(issue).endswith("(kept)")
    for a, b in zip(got.records[3:], whole.records[3:], strict=True):  # the others are untouched
        _same_except(a, b, "source_line")


def test_ris_record_with_nothing_identifying_is_skipped(tmp_path: Path, exports_dir: Path) -> None:
    text = (exports_dir / RIS).read_text(encoding="utf-8-sig")
    whole = read_records(exports_dir / RIS)
    # every tag but TY, authors, keywords, language and ISSN deleted: authors without a year
    # and an ISSN do not tell which paper this is
    edited = _edit_nth(text, "TY  -", "ER  -", 5, (r"^(?!TY|ER|AU|KW|LA|SN)[A-Z][A-Z0-9]  - .*\r?\n", ""))
    path = tmp_path / "pubmed_46.ris"
    path.write_text(edited, encoding="utf-8", newline="")
    got = read_records(path)
    assert len(got.records) == 45 and got.n_skipped == 1
    assert [r.doi for r in got.records] == [r.doi for r in whole.records if r.source_position != 5]
    issue = _only(got, 5)
    assert issue.action == "skipped" and issue.line == whole.records[4].source_line and issue.file == str(path)
    assert "neither a title nor an abstract, nor a DOI, PMID" in issue.reason


def test_ris_the_wos_export_keeps_a_record_with_only_its_title_removed(tmp_path: Path, exports_dir: Path) -> None:
    """Web of Science's export (T1 titles, N2 abstracts, JO journals) through the same rule."""
    name = "asreview_demo/web_of_science.txt"
    text = (exports_dir / name).read_text(encoding="utf-8-sig")
    whole = read_records(exports_dir / name)
    ref = whole.records[0]
    assert ref.title and ref.journal
    edited = _edit_nth(text, "TY  -", "ER  -", 1, _ris_drop("TI", "T1", "AB", "N2"))
    path = tmp_path / "savedrecs.txt"
    path.write_text(edited, encoding="utf-8")
    got = read_records(path)
    assert len(got.records) == len(whole.records) and got.records[0].title == ""
    _same_except(got.records[0], ref, "title", "abstract")
    issue = _only(got, 1)
    assert issue.action == "kept" and f"journal {ref.journal!r}" in issue.reason


# --- MEDLINE --------------------------------------------------------------------------------

MEDLINE = "medline/pubmed_result2.txt"


def test_medline_record_without_title_or_abstract_is_kept_on_its_pmid(tmp_path: Path, exports_dir: Path) -> None:
    text = (exports_dir / MEDLINE).read_text(encoding="utf-8")
    whole = read_records(exports_dir / MEDLINE)
    edited = _edit_nth(text, "PMID-", "\nPMID-", 2, (r"^(?:TI|AB)  - .*\n(?: {6}.*\n)*", ""))
    path = tmp_path / "pubmed_result2.txt"
    path.write_text(edited, encoding="utf-8")
    got = read_records(path)
    assert len(got.records) == len(whole.records) == 4 and got.n_skipped == 0
    record, ref = got.records[1], whole.records[1]
    assert ref.title.startswith("GenomeDiagram") and (record.title, record.abstract) == ("", "")
    _same_except(record, ref, "title", "abstract")
    issue = _only(got, 2)
    assert issue.action == "kept" and issue.line == ref.source_line
    for phrase in ("PMID 16377612", "DOI 10.1093/bioinformatics/btk021", "journal 'Bioinformatics (Oxford, England)'",
                   "volume 22", "pages 616-7", "year 2006"):
        assert phrase in issue.reason


def test_medline_record_with_nothing_identifying_is_skipped(tmp_path: Path, exports_dir: Path) -> None:
    text = (exports_dir / MEDLINE).read_text(encoding="utf-8")
    whole = read_records(exports_dir / MEDLINE)
    # the first record keeps only its owner, status, publication model and ISSN lines
    edited = _edit_nth(text, "PMID-", "\nPMID-", 1,
                       (r"^(?!OWN|STAT|PUBM|IS  )[A-Z][A-Z0-9]{1,3}\s*- .*\n(?: {6}.*\n)*", ""))
    path = tmp_path / "pubmed_result2.txt"
    path.write_text(edited, encoding="utf-8")
    got = read_records(path)
    assert [r.pmid for r in got.records] == [r.pmid for r in whole.records[1:]]
    issue = _only(got, 1)
    assert issue.action == "skipped" and "nor a DOI, PMID" in issue.reason


# --- PubMed XML -----------------------------------------------------------------------------

XML = "pubmed_xml/asreview_pubmed.xml"


def test_pubmed_xml_article_without_title_or_abstract_is_kept(tmp_path: Path, exports_dir: Path) -> None:
    text = (exports_dir / XML).read_text(encoding="utf-8")
    whole = read_records(exports_dir / XML)
    edited = _edit_nth(text, "<PubmedArticle>", "</PubmedArticle>", 2,
                       (r"<ArticleTitle>.*?</ArticleTitle>", "<ArticleTitle></ArticleTitle>"),
                       (r"(?s)<Abstract>.*?</Abstract>\s*", ""))
    path = tmp_path / "asreview_pubmed.xml"
    path.write_text(edited, encoding="utf-8")
    got = read_records(path)
    assert len(got.records) == len(whole.records) == 10 and got.n_skipped == 0
    record, ref = got.records[1], whole.records[1]
    assert ref.title.startswith("Remarkable Short-Term Regression") and ref.abstract
    assert (record.title, record.abstract) == ("", "")
    _same_except(record, ref, "title", "abstract")
    issue = _only(got, 2)
    assert issue.action == "kept" and issue.field == "ArticleTitle" and issue.file == str(path)
    for phrase in ("PMID 30576676", "DOI 10.1016/j.joms.2018.11.016", "volume 77", "pages 555.e1-555.e6"):
        assert phrase in issue.reason


def test_pubmed_xml_article_with_nothing_identifying_is_skipped(tmp_path: Path, exports_dir: Path) -> None:
    text = (exports_dir / XML).read_text(encoding="utf-8")
    whole = read_records(exports_dir / XML)
    edited = _edit_nth(text, "<PubmedArticle>", "</PubmedArticle>", 3,
                       (r"<ArticleTitle>.*?</ArticleTitle>", "<ArticleTitle/>"),
                       (r"(?s)<Abstract>.*?</Abstract>", ""),
                       (r"(<PMID[^>]*>)\d+(</PMID>)", r"\1\2"),
                       (r"<ELocationID EIdType=\"doi\"[^>]*>.*?</ELocationID>", ""),
                       (r"<ArticleId IdType=\"doi\">.*?</ArticleId>", ""),
                       (r"<Title>.*?</Title>", ""),
                       (r"<ISOAbbreviation>.*?</ISOAbbreviation>", ""),
                       (r"(?s)<AuthorList.*?</AuthorList>", ""))
    path = tmp_path / "asreview_pubmed.xml"
    path.write_text(edited, encoding="utf-8")
    got = read_records(path)
    assert [r.pmid for r in got.records] == [r.pmid for r in whole.records if r.source_position != 3]
    issue = _only(got, 3)
    assert issue.action == "skipped" and "neither a title nor an abstract" in issue.reason


# --- BibTeX ---------------------------------------------------------------------------------

BIB = "bibtex/pubmed_parser_paper.bib"


def test_bibtex_entries_without_title(tmp_path: Path, exports_dir: Path) -> None:
    text = (exports_dir / BIB).read_text(encoding="utf-8")
    whole = read_records(exports_dir / BIB)
    keys = [r.extra["citation_key"] for r in whole.records]
    k_mesh, k_arxiv = keys.index("abdeddaim2019mesh") + 1, keys.index("miller2017automated") + 1
    # abdeddaim2019mesh loses its title (the file has no abstracts): kept on DOI, journal, volume, pages
    edited = _edit_nth(text, "@article{abdeddaim2019mesh", "\n}", 1, (r"^\s*title=\{.*\},\n", ""))
    # miller2017automated loses title and year: an arXiv "journal" without volume, pages or year,
    # an author without a year and a URL do not identify a record; skipped
    edited = _edit_nth(edited, "@article{miller2017automated", "\n}", 1, (r"^\s*(title|year)=\{.*\},?\n", ""))
    path = tmp_path / "refs.bib"
    path.write_text(edited, encoding="utf-8")
    got = read_records(path)
    assert len(got.records) == len(whole.records) - 1 and got.n_skipped == 1
    kept = next(r for r in got.records if r.extra["citation_key"] == "abdeddaim2019mesh")
    ref = whole.records[k_mesh - 1]
    assert ref.title.startswith("The MeSH-Gram") and kept.title == ""
    _same_except(kept, ref, "title", "source_line")
    issue = _only(got, k_mesh)
    assert issue.action == "kept" and issue.field == "title" and "(entry 'abdeddaim2019mesh')" in issue.reason
    for phrase in ("DOI 10.3233/shti190172", "journal 'Studies in health technology and informatics'",
                   "volume 264", "pages 5-9", "year 2019"):
        assert phrase in issue.reason
    skipped = _only(got, k_arxiv)
    assert skipped.action == "skipped" and "(entry 'miller2017automated')" in skipped.reason


def test_bibtex_entry_without_title_kept_on_journal_and_year(tmp_path: Path, exports_dir: Path) -> None:
    text = (exports_dir / BIB).read_text(encoding="utf-8")
    whole = read_records(exports_dir / BIB)
    path = tmp_path / "refs.bib"
    path.write_text(_edit_nth(text, "@article{miller2017automated", "\n}", 1, (r"^\s*title=\{.*\},\n", "")),
                    encoding="utf-8")
    got = read_records(path)
    assert len(got.records) == len(whole.records) and got.n_skipped == 0
    position = next(r.source_position for r in whole.records if r.extra["citation_key"] == "miller2017automated")
    issue = _only(got, position)
    assert "journal 'arXiv preprint arXiv:1702.04615', year 2017" in issue.reason
    assert "first author 'Miller, Daniel'" in issue.reason


# --- CSV / XLSX -----------------------------------------------------------------------------

def _cohen_rows(labelled_dir: Path, n: int = 50) -> list[list[str]]:
    with gzip.open(labelled_dir / "Cohen_2006_ADHD.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))[: n + 1]


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_csv_rows_without_title_or_abstract(tmp_path: Path, labelled_dir: Path) -> None:
    rows = _cohen_rows(labelled_dir)
    header = rows[0]
    t, a, p = header.index("title"), header.index("abstract"), header.index("pubmedID")
    whole = read_records(_write_csv(tmp_path / "orig.csv", rows))
    rows[7][t] = rows[7][a] = ""                      # row 7: kept on its PMID (and nothing else)
    rows[9][t] = rows[9][a] = rows[9][p] = ""         # row 9: authors but no year column: skipped
    got = read_records(_write_csv(tmp_path / "adhd.csv", rows))
    assert len(got.records) == 49 and got.n_skipped == 1
    kept = next(r for r in got.records if r.source_position == 7)
    _same_except(kept, whole.records[6], "title", "abstract")
    assert kept.pmid == whole.records[6].pmid and kept.authors
    issue = _only(got, 7)
    assert issue.action == "kept" and issue.field == "title" and issue.reason == (
        f"no title or abstract; kept on PMID {kept.pmid}")
    assert str(issue) == f"{tmp_path / 'adhd.csv'}, record 7, field title: no title or abstract; kept on PMID " \
                         f"{kept.pmid} (kept)"
    assert _only(got, 9).action == "skipped"
    # the same rows as an XLSX workbook
    xlsx = tmp_path / "adhd.xlsx"
    pd.DataFrame(rows[1:], columns=header).to_excel(xlsx, index=False)
    got_x = read_records(xlsx)
    assert [(i.position, i.action) for i in got_x.issues] == [(7, "kept"), (9, "skipped")]
    assert [r.pmid for r in got_x.records] == [r.pmid for r in got.records]


def test_csv_without_title_column_is_read_on_its_identifying_columns(tmp_path: Path, labelled_dir: Path) -> None:
    rows = _cohen_rows(labelled_dir)
    whole = read_records(_write_csv(tmp_path / "orig.csv", rows))
    t = rows[0].index("title")
    no_title = [r[:t] + r[t + 1:] for r in rows]
    got = read_records(_write_csv(tmp_path / "no_title.csv", no_title))
    # every row is kept: with an abstract as it is, without one on its PMID
    assert [r.pmid for r in got.records] == [r.pmid for r in whole.records] and got.n_skipped == 0
    assert all(r.title == "" for r in got.records)
    assert [r.abstract for r in got.records] == [r.abstract for r in whole.records]
    file_issues = [i for i in got.issues if i.position is None]
    assert len(file_issues) == 1  # said once for the file
    assert file_issues[0].field == "title" and "no title column" in file_issues[0].reason
    assert "rows read on abstract, pubmedID" in file_issues[0].reason
    no_abstract = [r.source_position for r in whole.records if not r.abstract]
    assert no_abstract  # the real file has rows without an abstract
    assert sorted(i.position for i in got.issues if is_untitled_issue(i)) == no_abstract
    # Bannach-Brown 2019 (no DOI or PMID): abstract, authors and year columns
    with gzip.open(labelled_dir / "Bannach-Brown_2019.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        bb = list(csv.reader(fh))[:101]
    t = bb[0].index("title")
    got = read_records(_write_csv(tmp_path / "bb.csv", [r[:t] + r[t + 1:] for r in bb]))
    assert len(got.records) + got.n_skipped == 100
    assert "rows read on abstract, authors + year" in got.issues[0].reason


def test_csv_without_any_identifying_column_is_refused(tmp_path: Path, labelled_dir: Path) -> None:
    rows = _cohen_rows(labelled_dir)
    keep = [i for i, name in enumerate(rows[0]) if name not in ("title", "abstract", "pubmedID")]
    path = _write_csv(tmp_path / "labels_only.csv", [[r[i] for i in keep] for r in rows])
    with pytest.raises(LiteratureImportError, match=r"labels_only\.csv: no title column .*found record_id, keywords, "
                                                    r"authors.*nor any column that identifies a record"):
        read_records(path)


# --- the CLI --------------------------------------------------------------------------------

def _edited_ris(tmp_path: Path, exports_dir: Path) -> Path:
    """pubmed_46.ris with record 3 stripped of title, abstract and keywords (kept on its DOI...)
    and record 5 of everything that identifies it (skipped)."""
    text = (exports_dir / RIS).read_text(encoding="utf-8-sig")
    text = _edit_nth(text, "TY  -", "ER  -", 3, _ris_drop("TI", "T1", "AB", "N2", "KW"))
    text = _edit_nth(text, "TY  -", "ER  -", 5, (r"^(?!TY|ER|AU|KW|LA|SN)[A-Z][A-Z0-9]  - .*\r?\n", ""))
    path = tmp_path / "pubmed_46.ris"
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_cli_import_prints_one_line_per_issue(tmp_path: Path, exports_dir: Path) -> None:
    path = _edited_ris(tmp_path, exports_dir)
    db = tmp_path / "review.duckdb"
    result = CliRunner().invoke(app, ["literature", "import", str(path), "--db", str(db)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    kept = [line for line in lines if "record 3" in line]
    skipped = [line for line in lines if "record 5" in line]
    # each record is located by its TY line in the edited file
    ty_lines = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                if line.startswith("TY  -")]
    assert kept == [f"{path}, line {ty_lines[2]}, record 3, field TI: no title or abstract; kept on DOI "
                    "10.3389/fpsyt.2022.940397, journal 'Frontiers in psychiatry', volume 13, pages 940397, "
                    "year 2022, first author 'Takiguchi, Naoko' (kept)"]
    assert len(skipped) == 1 and skipped[0].startswith(
        f"{path}, line {ty_lines[4]}, record 5, field TI: record has neither a title nor an abstract")
    assert skipped[0].endswith("(skipped)")
    con = open_store(db)
    try:
        assert con.execute("SELECT n_records, n_skipped FROM literature_imports").fetchall() == [(45, 1)]
        assert con.execute("SELECT position, action FROM literature_import_issues ORDER BY position").fetchall() == [
            (3, "kept"), (5, "skipped")]
    finally:
        con.close()


def test_cli_import_lists_records_first_and_counts_the_rest(tmp_path: Path, labelled_dir: Path) -> None:
    rows = _cohen_rows(labelled_dir, 200)
    t = rows[0].index("title")
    path = _write_csv(tmp_path / "no_title.csv", [r[:t] + r[t + 1:] for r in rows])
    n_issues = len(read_records(path).issues)
    assert n_issues > 3
    result = CliRunner().invoke(app, ["literature", "import", str(path), "--db", str(tmp_path / "r.duckdb"),
                                      "--show-issues", "2"])
    assert result.exit_code == 0, result.output
    listed = [line for line in result.output.splitlines() if line.startswith(str(path))]
    # the two record-level issues first (rows kept without a title), then how many more
    assert len(listed) == 3 and all("no title or abstract; kept on PMID" in line for line in listed[:2])
    assert listed[2] == (f"{path}: {n_issues - 2} more problems not listed (--show-issues {n_issues} lists them; "
                         "all are stored in literature_import_issues)")


# --- downstream -----------------------------------------------------------------------------

def _topic_profile(tmp_path: Path, question: str):
    """A built-in profile that also excludes records without a modality or indication term."""
    path = tmp_path / f"{question}_topic.yaml"
    path.write_text(f"extends: {question}\nrequire_topic: true\n", encoding="utf-8")
    profile = load_profile(path)
    assert profile.require_topic and profile.question == question
    return profile


def test_untitled_record_downstream(tmp_path: Path, exports_dir: Path) -> None:
    """Store, criteria, screening, export, PRISMA, report table and citation with an empty title."""
    path = _edited_ris(tmp_path, exports_dir)
    con = open_store(tmp_path / "review.duckdb")
    try:
        save_import(con, read_records(path))
        records = load_records(con)
        assert len(records) == 45
        untitled = next(r for r in records if r.source_position == 3)
        assert (untitled.title, untitled.abstract, untitled.keywords) == ("", "", [])
        assert (untitled.doi, untitled.journal, untitled.volume, untitled.pages) == (
            "10.3389/fpsyt.2022.940397", "Frontiers in psychiatry", "13", "940397")
        assert untitled.citation() == ("Takiguchi, Naoko, Kawanishi, Yuko, Samuelsson, Eva. Frontiers in psychiatry. "
                                       "2022;13:940397. doi:10.3389/fpsyt.2022.940397")
        # criteria: with nothing to read, the topic is the reviewer's call, not an automatic exclusion
        profile = _topic_profile(tmp_path, "pain")
        table = apply_criteria(records, profile).table.set_index("record_id")
        assert table.loc[untitled.record_id, "eligible"]
        assert table.loc[untitled.record_id, "detail"] == "no title, abstract or keywords: topic left to the reviewer"
        # the same record with its keywords is judged on them (gambling: off topic for pain)
        with_kw = read_records(exports_dir / RIS).records[2]
        assert apply_criteria([with_kw], profile).table.loc[0, "reason_code"] == "off_topic"
        # screening: the model ranks it (no features, score 0) and the screener shows what identifies it
        session = ScreeningSession(con, load_profile("default"))
        assert untitled.record_id in [session.records[i].record_id for i in session.ranking()]
        others = [r.record_id for r in session.records if r.record_id != untitled.record_id]
        session.decide(others[0], True)
        session.decide(others[1], False)
        assert untitled.record_id in [session.records[i].record_id for i in session.ranking()]
        panel = _panel(untitled, session, 1)
        from rich.console import Console
        console = Console(width=200, record=True)
        console.print(panel)
        shown = console.export_text()
        assert "(no title)" in shown and "doi:10.3389/fpsyt.2022.940397" in shown and "13:940397" in shown
        session.decide(untitled.record_id, True)
        # export: the extraction sheet row is identified by citation and DOI; the note says why
        paths, n = export_extraction_sheet(con, tmp_path / "sheet.csv")
        assert n == 2
        sheet = {row["doi"]: row for row in csv.DictReader(paths[0].open(encoding="utf-8"))}
        row = sheet["10.3389/fpsyt.2022.940397"]
        assert row["title"] == "" and row["citation"] == "Takiguchi et al. 2022, Frontiers in psychiatry 13:940397"
        assert row["notes"].endswith("the search export gave no title")
        # PRISMA: the record is counted like any other (45 identified, 2 included at title/abstract)
        flow = prisma_flow(con)
        assert sum(flow.identified_by_database.values()) == 45
        assert flow.records_screened == 3
        # the report's records table: link text for a record without a title
        frame = records_table(con).set_index("record_id")
        assert frame.loc[untitled.record_id, "title"] == "(no title)"
        assert frame.loc[untitled.record_id, "link"] == "https://doi.org/10.3389/fpsyt.2022.940397"
        assert frame.loc[untitled.record_id, "title_abstract"] == "include"
    finally:
        con.close()


def test_screening_when_no_record_has_text(tmp_path: Path, labelled_dir: Path) -> None:
    """A CSV of PMIDs only (Cohen's real PMIDs): every record kept, the learner has no words
    to learn from, and the screener still serves every record in file order."""
    rows = _cohen_rows(labelled_dir, 20)
    p = rows[0].index("pubmedID")
    path = _write_csv(tmp_path / "pmids.csv", [["record_id", "pmid"]] + [[r[0], r[p]] for r in rows[1:]])
    result = read_records(path)
    assert len(result.records) == 20 and sum(is_untitled_issue(i) for i in result.issues) == 20
    con = open_store(tmp_path / "review.duckdb")
    try:
        save_import(con, result)
        session = ScreeningSession(con, _topic_profile(tmp_path, "depression"))
        assert len(session.records) == 20  # nothing excluded as off topic: there is no text to judge
        assert session.learner.features_.shape == (20, 0)
        session.decide(session.records[0].record_id, True)
        session.decide(session.records[1].record_id, False)
        assert session.ranking() == list(range(2, 20))
        assert session.next_record().pmid == result.records[2].pmid
    finally:
        con.close()


def test_two_untitled_studies_of_one_author_and_year_are_not_merged(tmp_path: Path, exports_dir: Path) -> None:
    from neuromodmap.literature import deduplicate

    name = "citesource_gambling_harms/20221207_gambling-harms_pubmed_176.ris"
    text = (exports_dir / name).read_text(encoding="utf-8-sig")
    whole = read_records(exports_dir / name)
    a, b = whole.records[2], whole.records[113]  # Hing 2019, PLoS One and J Gambl Stud: two studies
    assert (a.authors[0].split(",")[0], a.year) == (b.authors[0].split(",")[0], b.year) and a.doi != b.doi
    text = _edit_nth(text, "TY  -", "ER  -", 3, _ris_drop("TI", "T1", "AB", "N2"))
    text = _edit_nth(text, "TY  -", "ER  -", 114, _ris_drop("TI", "T1", "AB", "N2", "DO"))
    path = tmp_path / "pubmed_176.ris"
    path.write_text(text, encoding="utf-8", newline="")
    got = read_records(path)
    assert len(got.records) == 176
    result = deduplicate(got.records)
    clusters = result.clusters.set_index("record_id")["cluster_id"]
    ra, rb = got.records[2].record_id, got.records[113].record_id
    assert clusters[ra] != clusters[rb]
