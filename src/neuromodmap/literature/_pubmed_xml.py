"""PubMed XML (PubmedArticleSet), read with defusedxml so hostile XML cannot expand entities."""

from __future__ import annotations

import io
import re
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from neuromodmap.literature._text import publication_month
from neuromodmap.literature.records import (
    ImportIssue,
    Record,
    check_untitled,
    field_emptied,
    make_record_id,
    normalise_doi,
)

_YEAR = re.compile(r"(1[89]\d\d|20\d\d)")


def _text(element: Element | None) -> str:
    if element is None:
        return ""
    # itertext keeps the words inside <i>, <sup> and friends
    return " ".join("".join(element.itertext()).split())


def parse_pubmed_xml(data: bytes, path: Path, database: str | None, issues: list[ImportIssue]) -> list[Record]:
    """Parse a PubmedArticleSet; a truncated file keeps every complete article before the break."""
    records: list[Record] = []
    position = 0
    try:
        for _event, element in iterparse(io.BytesIO(data), events=("end",)):
            if element.tag not in ("PubmedArticle", "PubmedBookArticle"):
                continue
            position += 1
            if element.tag == "PubmedBookArticle":
                issues.append(ImportIssue(file=str(path), position=position, field="PubmedBookArticle",
                                          reason="book records are not imported"))
            else:
                record = _to_record(element, path, database, position, issues)
                if record is not None:
                    records.append(record)
            element.clear()
    except ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        issues.append(ImportIssue(file=str(path), line=line, position=position + 1,
                                  reason=f"XML is malformed or truncated ({exc}); "
                                         f"the {len(records)} complete articles before it were kept"))
    except DefusedXmlException as exc:
        issues.append(ImportIssue(file=str(path), reason=f"XML refused for safety: {exc}"))
    return records


def _to_record(article: Element, path: Path, database: str | None, position: int,
               issues: list[ImportIssue]) -> Record | None:
    citation = article.find("MedlineCitation")
    art = citation.find("Article") if citation is not None else None
    if citation is None or art is None:
        issues.append(ImportIssue(file=str(path), position=position, field="MedlineCitation",
                                  reason="article has no MedlineCitation/Article element"))
        return None
    pmid = _text(citation.find("PMID"))
    title = _text(art.find("ArticleTitle")) or _text(art.find("VernacularTitle"))
    parts = []
    for node in art.findall("Abstract/AbstractText"):
        label = node.get("Label")
        body = _text(node)
        parts.append(f"{label}: {body}" if label else body)
    abstract = " ".join(parts)
    authors = []
    for author in art.findall("AuthorList/Author"):
        last = _text(author.find("LastName"))
        given = _text(author.find("ForeName")) or _text(author.find("Initials"))
        collective = _text(author.find("CollectiveName"))
        if last:
            authors.append(f"{last}, {given}" if given else last)
        elif collective:
            authors.append(collective)
    pub_date = art.find("Journal/JournalIssue/PubDate")
    # the issue date (Year + Month, or a MedlineDate such as "2014 Jan-Apr"), else the e-date
    if pub_date is not None and _text(pub_date.find("Year")):
        year_text, month_text = _text(pub_date.find("Year")), _text(pub_date.find("Month"))
    elif pub_date is not None and _text(pub_date.find("MedlineDate")):
        year_text = month_text = _text(pub_date.find("MedlineDate"))
    else:
        year_text, month_text = _text(art.find("ArticleDate/Year")), _text(art.find("ArticleDate/Month"))
    year_match = _YEAR.search(year_text)
    if year_text and not year_match:
        field_emptied(issues, path, None, position, "PubDate", year_text, "year (1800-2099)")
    if pmid and not pmid.isdigit():
        field_emptied(issues, path, None, position, "PMID", pmid, "PMID (digits)")
    month = publication_month(month_text, year=int(year_match.group(1))) if year_match else None
    doi = None
    for node in art.findall("ELocationID"):
        if node.get("EIdType") == "doi":
            doi = normalise_doi(_text(node))
    if doi is None:
        for node in article.findall("PubmedData/ArticleIdList/ArticleId"):
            if node.get("IdType") == "doi":
                doi = normalise_doi(_text(node))
    issue_node = art.find("Journal/JournalIssue")
    record = Record(
        record_id=make_record_id(str(path), position),
        title=title,
        abstract=abstract,
        authors=authors,
        year=int(year_match.group(1)) if year_match else None,
        month=month,
        journal=_text(art.find("Journal/Title")) or _text(art.find("Journal/ISOAbbreviation")),
        doi=doi,
        pmid=pmid if pmid.isdigit() else None,
        keywords=[_text(k) for k in citation.findall("KeywordList/Keyword") if _text(k)],
        mesh_terms=[_text(m.find("DescriptorName")) for m in citation.findall("MeshHeadingList/MeshHeading")
                    if m.find("DescriptorName") is not None],
        publication_types=[_text(p) for p in art.findall("PublicationTypeList/PublicationType")],
        language=_text(art.find("Language")),
        record_type="JOUR",
        volume=_text(issue_node.find("Volume")) if issue_node is not None else "",
        issue=_text(issue_node.find("Issue")) if issue_node is not None else "",
        pages=_text(art.find("Pagination/MedlinePgn")),
        source_database=database or "PubMed",
        source_file=str(path),
        source_format="pubmed_xml",
        source_position=position,
        secondary_ids=_databank_ids(art),
    )
    # no title and no abstract: kept on its PMID, DOI, journal and pages..., else skipped
    return check_untitled(record, issues, path, None, position, "ArticleTitle")


def _databank_ids(art: Element) -> list[str]:
    """DataBankList accession numbers as 'DataBank: ClinicalTrials.gov/NCT01234567' (MEDLINE's SI form)."""
    out = []
    for bank in art.findall("DataBankList/DataBank"):
        name = _text(bank.find("DataBankName"))
        for number in bank.findall("AccessionNumberList/AccessionNumber"):
            value = _text(number)
            if value:
                out.append(f"DataBank: {name}/{value}" if name else f"DataBank: {value}")
    return out
