"""Bad input to escalc/rma and the extraction sheet: clear errors naming what is wrong."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
from openpyxl import Workbook, load_workbook

from neuromodmap import vocabulary
from neuromodmap.evidence import (
    CITATION_COLUMNS,
    COLUMNS,
    ConvergenceError,
    MetaAnalysisError,
    MetaAnalysisWarning,
    SheetError,
    escalc,
    rma,
)
from neuromodmap.evidence._io import read_sheet, write_sheet, write_template
from neuromodmap.evidence.sheet import ExtractionRecord, data_dictionary, validate_rows


# --- rma / escalc ----------------------------------------------------------------------
def test_k0_and_k1_are_refused_with_a_message():
    with pytest.raises(MetaAnalysisError, match="k = 0"):
        rma([], [])
    with pytest.raises(MetaAnalysisError, match="only one study"):
        rma([0.5], [0.1], slab=["Smith 2020"])


def test_all_zero_variances_are_refused():
    with pytest.raises(MetaAnalysisError, match="all sampling variances are zero"):
        rma([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(MetaAnalysisError, match="zero sampling variance.*B"):
        rma([0.1, 0.2, 0.3], [0.1, 0, 0.2], method="EE", slab=["A", "B", "C"])
    with pytest.raises(MetaAnalysisError, match="negative sampling variance for: C"):
        rma([0.1, 0.2, 0.3], [0.1, 0.1, -0.2], slab=["A", "B", "C"])


def test_nan_studies_are_omitted_with_a_warning_naming_them():
    with pytest.warns(MetaAnalysisWarning, match="omitted: B"):
        res = rma([0.1, np.nan, 0.3, 0.5], [0.1, 0.1, 0.2, 0.1], slab=["A", "B", "C", "D"])
    assert res.k == 3 and res.labels == ["A", "C", "D"]
    full = rma([0.1, 0.3, 0.5], [0.1, 0.2, 0.1])
    assert res.estimate == pytest.approx(full.estimate, rel=1e-12)
    with pytest.warns(MetaAnalysisWarning), pytest.raises(MetaAnalysisError, match="k = 0"):
        rma([np.nan, np.nan], [0.1, 0.1])


def test_text_in_numeric_input_names_the_position():
    with pytest.raises(MetaAnalysisError, match=r"yi\[1\] is not a number: 'n/a'"):
        rma([0.1, "n/a", 0.3], [0.1, 0.1, 0.1])
    with pytest.raises(MetaAnalysisError, match=r"sd1i\[0\] is not a number"):
        escalc("SMD", m1i=[1], sd1i=["wide"], n1i=[10], m2i=[0], sd2i=[1], n2i=[10])


def test_non_convergence_is_reported_not_silent():
    y = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79, -1.62, 0.01]
    v = [0.33, 0.19, 0.42, 0.02, 0.05, 0.007, 0.22, 0.004]
    with pytest.raises(ConvergenceError, match="did not converge in 1 iterations"):
        rma(y, v, method="REML", max_iter=1)


def test_unknown_method_test_and_measure():
    with pytest.raises(MetaAnalysisError, match="unknown method 'XYZ'"):
        rma([0.1, 0.2], [0.1, 0.1], method="XYZ")
    with pytest.raises(MetaAnalysisError, match="unknown test"):
        rma([0.1, 0.2], [0.1, 0.1], test="welch")
    with pytest.raises(MetaAnalysisError, match="unknown measure 'HR'"):
        escalc("HR", ai=[1], bi=[2], ci=[3], di=[4])


def test_double_zero_studies_are_dropped_with_a_message():
    # dat.nielweise2007 study 15 (Yucel 2004): 0/118 vs 0/105 (wviechtb/metadat data-raw)
    with pytest.warns(MetaAnalysisWarning, match="1 double-zero study dropped.*Yucel 2004"):
        es = escalc("OR", ai=[2, 0], n1i=[208, 118], ci=[9, 0], n2i=[195, 105], slab=["Maki 1997", "Yucel 2004"],
                    drop00=True)
    assert np.isnan(es.yi.iloc[1]) and es.note.iloc[1].startswith("dropped")
    assert np.isfinite(es.yi.iloc[0])


def test_double_zero_studies_are_kept_by_default_as_metafor():
    # metafor escalc(drop00=FALSE) default: 1/2 added to each cell, log OR = log((a/b) / (c/d))
    es = escalc("OR", ai=[2, 0], n1i=[208, 118], ci=[9, 0], n2i=[195, 105])
    assert es.yi.iloc[1] == pytest.approx(np.log((0.5 / 118.5) / (0.5 / 105.5)), rel=1e-12)
    assert es.vi.iloc[1] == pytest.approx(1 / 0.5 + 1 / 118.5 + 1 / 0.5 + 1 / 105.5, rel=1e-12)
    assert es.note.iloc[1].startswith("0.5 added")


def test_escalc_rejects_impossible_counts():
    with pytest.raises(MetaAnalysisError, match="larger than the group size"):
        escalc("PLO", xi=[12], ni=[10])
    with pytest.raises(MetaAnalysisError, match="negative"):
        escalc("RR", ai=[12], n1i=[10], ci=[1], n2i=[10])
    with pytest.raises(MetaAnalysisError, match="standard deviations are negative"):
        escalc("MD", m1i=[1], sd1i=[-1], n1i=[10], m2i=[0], sd2i=[1], n2i=[10])


def test_summary_prints_like_metafor(data_root):
    ref = json.loads((data_root / "meta" / "metafor_reference.json").read_text())["dat.bcg"]
    tpos, tneg, cpos, cneg = (np.array([r[i] for r in ref["rows"]]) for i in (2, 3, 4, 5))
    es = escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg)
    text = str(rma(es.yi, es.vi))
    # the lines of metafor's print.rma.uni for this model (metafor rma.uni.html)
    assert "Random-Effects Model (k = 13; tau^2 estimator: REML)" in text
    assert "tau^2 (estimated amount of total heterogeneity): 0.3132 (SE = 0.1664)" in text
    assert "tau (square root of estimated tau^2 value):      0.5597" in text
    assert "Q(df = 12) = 152.2330, p-val < .0001" in text
    assert "-0.7145   0.1798  -3.9744   <.0001  -1.0669  -0.3622 ***" in text
    frame = rma(es.yi, es.vi).to_frame()
    assert {"estimate", "se", "zval", "pval", "ci_lb", "ci_ub", "tau2", "i2", "h2", "q", "q_p", "k", "pi_lb",
            "pi_ub"} <= set(frame.columns)


# --- the extraction sheet schema ----------------------------------------------------------
def test_columns_cover_the_seed_extraction_list():
    # seed 000 (Mukhtar 2025) Methods: design, sample size, demographics, technique and
    # parameters, duration, outcomes, adverse events, follow-up; plus citation fields
    for col in ("study_id", "doi", "pmid", "design", "sham_type", "modality", "target", "indication",
                "condition", "frequency_hz", "intensity", "pulses_per_session", "sessions", "weeks",
                "outcome_measure", "time_point_weeks", "active_n", "active_mean", "active_sd",
                "active_responders", "active_remitters", "control_n", "control_sd", "follow_up_weeks",
                "adverse_events", "age_mean", "female_percent"):
        assert col in COLUMNS
    assert set(CITATION_COLUMNS) <= set(COLUMNS)
    assert [d["column"] for d in data_dictionary()] == list(COLUMNS)


def test_vocabulary_codes_and_synonyms_are_accepted():
    rec = ExtractionRecord.model_validate({"study_id": "S1", "modality": "rTMS", "target": "left DLPFC",
                                           "indication": "depression", "outcome_measure": "HDRS"})
    assert (rec.modality, rec.target, rec.indication, rec.outcome_measure) == ("tms", "dlpfc_left", "depression", "HAM-D")
    for code in vocabulary.MODALITIES:
        assert ExtractionRecord.model_validate({"study_id": "x", "modality": code}).modality == code


def test_every_bad_cell_is_reported_by_row_and_column():
    rows = [
        {"_row": 2, "study_id": "ok", "modality": "scs", "active_n": 20, "active_sd": 1.5},
        {"_row": 3, "study_id": "bad", "modality": "magic wand", "active_n": 1, "active_sd": -2,
         "active_responders": 5, "control_mean": "twelve", "control_n": "30"},
        {"_row": 4, "study_id": "bad2", "modality": "dbs", "active_n": 10, "active_responders": 11,
         "control_n": 10, "control_remitters": 12},
    ]
    records, problems = validate_rows(rows)
    assert [r.study_id for r in records] == ["ok"]
    found = {(p.row, p.column) for p in problems}
    assert found == {(3, "modality"), (3, "active_n"), (3, "active_sd"), (3, "control_mean"),
                     (3, "active_responders"), (4, "active_responders"), (4, "control_remitters")}
    text = {str(p) for p in problems}
    assert "row 3, column control_mean: expected a number, got text 'twelve'" in text
    assert any(s.startswith("row 3, column modality: unknown modality 'magic wand'") for s in text)
    assert "row 4, column active_responders: responders (11) > n (10)" in text


# --- reading sheets -------------------------------------------------------------------------
def test_csv_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_bytes("study_id,modality,condition\nA,tms,depresi\u00f3n\n".encode("cp1252"))
    with pytest.raises(SheetError, match=r"not valid UTF-8 \(byte 0xf3 on line 2\)"):
        read_sheet(path)


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"study_id,modality\n\"A,tms\n", "malformed CSV"),
    (b"\x00\x01\x02binary", "binary content"),
    (b"title,year\nX,2001\n", "required column.*study_id, modality"),
    (b"study_id,modality,study_id\nA,tms,B\n", "appears twice"),
])
def test_malformed_csv(tmp_path, content, message):
    path = tmp_path / "sheet.csv"
    path.write_bytes(content)
    with pytest.raises(SheetError, match=message):
        read_sheet(path)


def test_csv_semicolon_and_blank_rows_keep_row_numbers(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text("study_id;modality;active_n;unknown_col\nA;tms;10;x\n;;;\nB;scs;12;y\n", encoding="utf-8")
    rows, notes = read_sheet(path)
    assert [(r["study_id"], r["_row"]) for r in rows] == [("A", 2), ("B", 4)]
    assert "unknown_col" in notes[0]


def _workbook(tmp_path, name="sheet.xlsx", merged=None, extra_sheet=None):
    wb = Workbook()
    ws = wb.active
    ws.title = "extraction"
    ws.append(["study_id", "modality", "active_n"])
    ws.append(["A", "tms", 10])
    ws.append(["B", "scs", 12])
    if merged:
        ws.merge_cells(merged)
    if extra_sheet:
        wb.create_sheet(extra_sheet).append(["anything"])
    path = tmp_path / name
    wb.save(path)
    return path


def test_xlsx_reads_and_rejects_merged_cells_and_extra_sheets(tmp_path):
    rows, _ = read_sheet(_workbook(tmp_path))
    assert [(r["study_id"], r["active_n"], r["_row"]) for r in rows] == [("A", 10, 2), ("B", 12, 3)]
    with pytest.raises(SheetError, match="merged cells at A2:A3"):
        read_sheet(_workbook(tmp_path, "m.xlsx", merged="A2:A3"))
    with pytest.raises(SheetError, match="2 sheets besides the data dictionary.*extraction, Sheet2"):
        read_sheet(_workbook(tmp_path, "e.xlsx", extra_sheet="Sheet2"))
    rows, _ = read_sheet(_workbook(tmp_path, "e2.xlsx", extra_sheet="Sheet2"), sheet="extraction")
    assert len(rows) == 2
    with pytest.raises(SheetError, match="no sheet named 'nope'"):
        read_sheet(_workbook(tmp_path, "e3.xlsx"), sheet="nope")


def test_corrupt_and_legacy_excel(tmp_path):
    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(SheetError, match="not a readable .xlsx workbook"):
        read_sheet(bad)
    legacy = tmp_path / "old.xls"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(SheetError, match="legacy .xls"):
        read_sheet(legacy)
    with pytest.raises(SheetError, match="file not found"):
        read_sheet(tmp_path / "missing.csv")


def test_template_round_trips(tmp_path):
    written = write_template(tmp_path / "t.xlsx")
    from openpyxl import load_workbook

    wb = load_workbook(written[0])
    assert wb.sheetnames == ["extraction", "dictionary"]
    assert [c.value for c in wb["extraction"][1]] == list(COLUMNS)
    assert wb["dictionary"].max_row == len(COLUMNS) + 1
    rows, _ = read_sheet(written[0])  # the dictionary sheet is not an "extra" sheet
    assert rows == []
    csv_files = write_template(tmp_path / "t.csv")
    assert csv_files[1].name == "t.dictionary.csv"
    assert csv_files[0].read_text().strip().split(",") == list(COLUMNS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_sheet(csv_files[0])[0] == []


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_prefilled_sheet_round_trips_for_the_literature_stage(tmp_path, suffix):
    # citation fields of an included record, as the literature stage exports them
    rows = [{"study_id": "Lefaucheur2004", "citation": "Lefaucheur JP et al. 2004, JNNP", "pmid": "15377690",
             "year": 2004, "modality": "rTMS", "title": "=cmd|' /C calc'!A0"}]
    write_sheet(tmp_path / f"pre{suffix}", rows)
    # in the file the title cannot run as a formula (apostrophe first) ...
    if suffix == ".csv":
        on_disk = next(csv.DictReader((tmp_path / "pre.csv").open(encoding="utf-8")))
    else:
        ws = load_workbook(tmp_path / "pre.xlsx")["extraction"]
        on_disk = dict(zip([c.value for c in ws[1]], [c.value for c in ws[2]], strict=True))
    assert on_disk["title"] == "'=cmd|' /C calc'!A0" and on_disk["year"] in ("2004", 2004)
    # ... and reads back as the literature stage wrote it
    back, _ = read_sheet(tmp_path / f"pre{suffix}")
    assert back[0]["study_id"] == "Lefaucheur2004" and back[0]["title"] == "=cmd|' /C calc'!A0"
    records, problems = validate_rows(back)
    assert problems == [] and records[0].modality == "tms" and records[0].pmid == "15377690"
    with pytest.raises(SheetError, match="unknown column.*colour"):
        write_sheet(tmp_path / f"bad{suffix}", [{"study_id": "x", "colour": "red"}])
