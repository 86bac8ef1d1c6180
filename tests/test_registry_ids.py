"""Trial registry ids in free text: real exports, the registries' documented formats, hostile input."""

from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path

import pytest

from neuromodmap.literature import read_records
from neuromodmap.registry_ids import find_registry_ids, normalise_registry_id, registry_url


def ids(text) -> list[str]:
    return [r.id for r in find_registry_ids(text)]


def test_every_id_in_the_real_search_exports(data_root: Path) -> None:
    # the ids a hand search (grep for every registry prefix) finds in the shipped exports; the
    # PROSPERO review registrations (CRD42...) in baseline.ris and pubmed_zotero.ris are not trials
    found: dict[str, set[str]] = {}
    for path in sorted((data_root / "literature" / "exports").glob("*/*")):
        if path.suffix not in (".ris", ".txt", ".xml", ".bib"):
            continue
        for record in read_records(path).records:
            text = " ".join([record.title, record.abstract, *record.keywords, *record.secondary_ids])
            for rid in ids(text):
                found.setdefault(rid, set()).add(path.name)
    assert found == {
        "NCT02149199": {"pubmed-29768149.xml"},
        "NCT02265588": {"ovid_psycinfo.ris", "ovid_zotero.ris"},
        "ACTRN12617000876392": {"pubmed_zotero.ris"},
        "DRKS00011685": {"scopus.ris"},
        "ACTRN12622000497707": {"20221207_gambling-harms_pubmed_176.ris"},
        "DRKS00013888": {"pubmed_46.ris", "psycinfo_64.ris", "WoS_79.ris"},
    }


def test_no_false_ids_in_8_mb_of_real_abstracts(data_root: Path) -> None:
    # 5,879 titles and abstracts full of numbers, years, doses and p-values; the only two ids
    # are real trial registrations quoted in Bannach-Brown 2019 abstracts
    found = {}
    for path in sorted((data_root / "literature" / "labelled").glob("*.csv.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                for rid in find_registry_ids(row["title"] + " " + row["abstract"]):
                    found[rid.id] = (path.name, rid.raw)
    assert found == {"NCT01237119": ("Bannach-Brown_2019.csv.gz", "NCT01237119"),
                     "ACTRN12613000483752": ("Bannach-Brown_2019.csv.gz", "ACTRN12613000483752")}


def test_pubmed_xml_databank_and_abstract(data_root: Path) -> None:
    record = read_records(data_root / "literature" / "exports" / "pubmed_xml" / "pubmed-29768149.xml").records[0]
    assert record.secondary_ids == ["DataBank: ClinicalTrials.gov/NCT02149199"]
    assert ids(record.abstract) == ["NCT02149199"]  # "... ClinicalTrials.gov number, NCT02149199."


def test_medline_si_lines(tmp_path: Path) -> None:
    # the MEDLINE form of the same real record (PMID 29768149, SYGMA 1): its SI line and a
    # GenBank accession, which is kept as declared but is not a trial id
    path = tmp_path / "sygma.nbib"
    path.write_text("PMID- 29768149\nTI  - As-Needed Budesonide-Formoterol versus Maintenance Budesonide in Mild "
                    "Asthma.\nSI  - ClinicalTrials.gov/NCT02149199\nSI  - GENBANK/AF123456\n", encoding="utf-8")
    record = read_records(path).records[0]
    assert record.secondary_ids == ["SI: ClinicalTrials.gov/NCT02149199", "SI: GENBANK/AF123456"]
    assert [ids(s) for s in record.secondary_ids] == [["NCT02149199"], []]


@pytest.mark.parametrize(("text", "expected"), [
    # ClinicalTrials.gov: spaces, case, separators, typographic dashes, full-width characters
    ("ClinicalTrials.gov/NCT02149199", ["NCT02149199"]),
    ("registered (NCT 0123 4567)", ["NCT01234567"]),
    ("nct01234567; NCT-0123-4567; NCT#01234567; NCT: 01234567", ["NCT01234567"]),
    ("NCT\u00a00123\u20134567", ["NCT01234567"]),
    ("\uff2e\uff23\uff34\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17", ["NCT01234567"]),
    ("https://clinicaltrials.gov/ct2/show/NCT01234567?term=x", ["NCT01234567"]),
    # the other registries, in the forms their ids take
    ("ISRCTN: 12345678 and ISRCTN87654321", ["ISRCTN12345678", "ISRCTN87654321"]),
    ("EudraCT No. 2015-001894-41; EUCTR2015-001894-41-DE", ["2015-001894-41"]),
    ("EU CT number 2022-500014-26-00", ["2022-500014-26-00"]),
    ("ANZCTR ACTRN12617000876392p", ["ACTRN12617000876392"]),
    ("ChiCTR-TRC-12001234, chictr-ior-17013317 and ChiCTR2000029953",
     ["ChiCTR-TRC-12001234", "ChiCTR-IOR-17013317", "ChiCTR2000029953"]),
    ("German Clinical Trials Register DRKS00013888", ["DRKS00013888"]),
    ("CTRI/2018/01/011234 and CTRI/2009/091/000123", ["CTRI/2018/01/011234", "CTRI/2009/091/000123"]),
    ("UMIN000012345, UMIN-CTR000054321, jRCTs031180001, JPRN-jRCT2031190001, JapicCTI-184011",
     ["JPRN-UMIN000012345", "JPRN-UMIN000054321", "JPRN-jRCTs031180001", "JPRN-jRCT2031190001",
      "JPRN-JapicCTI-184011"]),
    ("IRCT20200405046953N1 and irct138804062175n2", ["IRCT20200405046953N1", "IRCT138804062175N2"]),
    ("Clinical Research Information Service KCT0001234", ["KCT0001234"]),
    ("NTR 4263; Netherlands Trial Register (NL7587); NL-OMON12345", ["NTR4263", "NL7587", "NL-OMON12345"]),
    ("PACTR201509001238402", ["PACTR201509001238402"]),
    ("TCTR20170606001", ["TCTR20170606001"]),
    ("ReBEC RBR-2XHQQK", ["RBR-2xhqqk"]),
    ("SLCTR/2019/012", ["SLCTR/2019/012"]),
    ("Universal Trial Number U1111-1234-5678", ["U1111-1234-5678"]),
    ("LBCTR2020043495 and RPCEC00000123", ["LBCTR2020043495", "RPCEC00000123"]),
])
def test_registry_formats_normalised(text: str, expected: list[str]) -> None:
    assert ids(text) == expected


@pytest.mark.parametrize("text", [
    "distinct01234567",                      # NCT inside a word
    "instinct 0123 4567",                   # ... even with a separator
    "NCT012345678 and NCT0123456",          # nine and seven digits
    "ISRCTN123456789 ISRCTN1234567",        # nine and seven digits
    "ACTRN1261700087639",                   # thirteen digits
    "CRD42019133962",                       # PROSPERO: a review, not a trial
    "NTR1 and NTR2 receptors; p75NTR1234",  # neurotensin receptors, a gene name
    "NL1234 was measured",                  # an NL number without the register's name
    "1999-123456-12 and 2015-123456-789",   # no EudraCT before 2004; a third group of 3 digits
    "ABC2015-001894-41 and 12-2015-001894-41",  # glued to other text
    "RBR 2xhqqk",                           # ReBEC ids have a hyphen
    "U1111-123-4567",
    "tel. 2015-123456",
])
def test_no_false_ids(text: str) -> None:
    assert ids(text) == []


def test_hostile_input_never_crashes() -> None:
    rng = random.Random(0)
    assert find_registry_ids(None) == [] and find_registry_ids("") == []
    assert find_registry_ids(12345678) == []  # not text
    assert ids("NCT" * 100_000) == []
    assert ids("\x00NCT01234567\x00") == ["NCT01234567"]
    garbage = "".join(chr(rng.randrange(0, 0x2FFF)) for _ in range(200_000))
    assert isinstance(find_registry_ids(garbage), list)
    digits = "".join(rng.choice("0123456789- /NCTRISN") for _ in range(500_000))
    for rid in find_registry_ids(digits):  # whatever random text holds, every id is well formed
        assert normalise_registry_id(rid.id) == rid.id
    many = " ".join(f"NCT{n:08d}" for n in range(20_000))
    assert len(ids(many)) == 20_000
    # text past 2,000,000 characters is not read
    assert ids("x" * 2_000_001 + " NCT01234567") == []


def test_normalise_one_id_and_urls() -> None:
    assert normalise_registry_id("EUCTR2015-001894-41-DE") == "2015-001894-41"
    assert normalise_registry_id("JPRN-UMIN000040188") == "JPRN-UMIN000040188"
    assert normalise_registry_id("sponsor protocol 123") is None
    nct, = find_registry_ids("NCT01234567")
    assert registry_url(nct) == "https://clinicaltrials.gov/study/NCT01234567"
    ctri, = find_registry_ids("CTRI/2018/01/011234")
    assert registry_url(ctri) == "https://trialsearch.who.int/Trial2.aspx?TrialID=CTRI%2F2018%2F01%2F011234"
