"""Readers for every trial format, on the real records in shared/data/trials.

Expected values below were read by hand from the source files (the JSON/XML themselves),
not from this code's output.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import zipfile

import pytest
from test_trials_io_helpers import (
    corpus_lines,
    sample_ictrp,
    v2_files,
    v2_studies,
    write_ictrp_csv,
    write_ictrp_xml,
    write_zip,
    xml_files,
)

from neuromodmap.trials import ImportProblem, TrialFileError, detect_format, read_trials


def _one(path):
    problems: list[ImportProblem] = []
    records = list(read_trials(path, problems=problems))
    assert problems == []
    assert len(records) == 1
    return records[0]


# ---------------------------------------------------------------- real v2 JSON
def test_every_real_v2_and_xml_file_reads_without_problems(trials_dir):
    files = v2_files(trials_dir) + xml_files(trials_dir)
    assert len(files) == 72
    for path in files:
        rec = _one(path)
        # files are named by NCT id, except that the AACT fixture NCT00980226.xml holds the
        # record of NCT00081588 (its <nct_id> says so)
        expected = "NCT00081588" if path.name == "NCT00980226.xml" else path.stem
        assert rec.trial.registry_id == expected
        assert rec.source == str(path)


def test_v2_modules_mapped_from_real_record(trials_dir):
    # values read in ctgov_v2_json/NCT02552212.json
    rec = _one(trials_dir / "ctgov_v2_json" / "NCT02552212.json")
    t = rec.trial
    assert detect_format(trials_dir / "ctgov_v2_json" / "NCT02552212.json") == "ctgov_v2_json"
    assert t.registry == "ctgov" and t.source_format == "ctgov_v2"
    assert t.acronym == "C-AXSPAND"
    assert t.secondary_ids == ["2015-001894-41"]
    assert t.title.startswith("Multicenter Study Evaluating Certolizumab Pegol")
    assert t.overall_status == "COMPLETED"
    assert t.start_date == dt.date(2015, 9, 1)  # "2015-09"
    assert t.completion_date == dt.date(2020, 5, 1)
    assert t.registration_date == dt.date(2015, 9, 15)
    assert t.last_update == dt.date(2022, 8, 18)
    assert (t.sponsor, t.sponsor_class) == ("UCB BIOSCIENCES GmbH", "INDUSTRY")
    assert t.conditions[0] == "Axial Spondyloarthritis"
    assert "axSpA" in t.keywords
    assert (t.study_type, t.phases) == ("INTERVENTIONAL", ["PHASE3"])
    assert (t.allocation, t.masking, t.primary_purpose) == ("RANDOMIZED", "QUADRUPLE", "TREATMENT")
    assert t.enrollment == 317
    iv = t.interventions[0]
    assert (iv.type, iv.name, iv.other_names) == ("BIOLOGICAL", "Certolizumab Pegol", ["Cimzia", "CDP870"])
    assert "Certolizumab Pegol 200 mg Q2W" in iv.arm_group_labels
    assert t.primary_outcomes[0].startswith("Percentage of Subjects With Ankylosing Spondylitis Disease")
    assert t.countries[0] == "United States" and "Taiwan" in t.countries
    assert len(t.countries) == len(set(t.countries))
    assert "Spondylitis" in t.condition_mesh
    assert t.intervention_mesh == ["Certolizumab Pegol"]
    assert t.has_results is True
    assert rec.raw["protocolSection"]["identificationModule"]["nctId"] == "NCT02552212"


def test_v2_record_without_results_or_design(trials_dir):
    t = _one(trials_dir / "ctgov_v2_json" / "NCT04207047.json").trial
    assert t.title == "Histologic Evaluation of Tissue Following Lutronic System Exposure"
    assert t.has_results is False


# ---------------------------------------------------------------- legacy XML
def test_legacy_xml_mapped_from_real_record(trials_dir):
    # values read in ctgov_legacy_xml/NCT02654730.xml
    path = trials_dir / "ctgov_legacy_xml" / "NCT02654730.xml"
    assert detect_format(path) == "ctgov_xml"
    rec = _one(path)
    t = rec.trial
    assert rec.as_of == dt.date(2018, 5, 11)  # "processed this data on May 11, 2018"
    assert t.source_format == "ctgov_xml" and t.acronym == "SAFEPRIM-II"
    assert t.phases == ["PHASE2", "PHASE3"]  # "Phase 2/Phase 3"
    assert t.overall_status == "TERMINATED"
    assert t.enrollment == 61
    assert t.start_date == dt.date(2015, 12, 1)  # "December 2015"
    assert (t.allocation, t.masking, t.primary_purpose) == ("RANDOMIZED", "NONE", "TREATMENT")
    assert t.countries == ["Gambia"]
    assert t.sponsor == "London School of Hygiene and Tropical Medicine"
    assert t.sponsor_class == "OTHER"
    assert t.conditions == ["Malaria"]
    assert "Primaquine" in t.intervention_mesh
    assert t.interventions[0].type == "DRUG"
    assert t.has_results is False
    # hard-wrapped textblock joined into one paragraph
    assert t.brief_summary.startswith("The purpose of this study is to evaluate the tolerability and safety of increasing doses of primaquine")


def test_legacy_xml_withheld_and_results(trials_dir):
    withheld = _one(trials_dir / "ctgov_legacy_xml" / "NCT03182660.xml").trial
    assert withheld.overall_status == "WITHHELD" and withheld.study_type == "NA"
    assert withheld.title == "[Trial of device that is not approved or cleared by the U.S. FDA]"
    with_results = _one(trials_dir / "ctgov_legacy_xml" / "NCT00023673.xml").trial
    assert with_results.has_results is True
    assert with_results.phases == ["PHASE1", "PHASE2"] and with_results.enrollment == 63


# ---------------------------------------------------------------- text corpus
def test_corpus_record_has_only_text_fields(corpus_path):
    assert detect_format(corpus_path) == "jsonl_gz"
    first = next(iter(read_trials(corpus_path)))
    t = first.trial
    assert t.registry_id == "NCT00000102"
    assert t.title == "Congenital Adrenal Hyperplasia: Calcium Channels as Therapeutic Targets."
    assert t.brief_summary.startswith("This study will test the ability of extended release nifedipine")
    assert first.location == "line 1"
    # nothing invented for fields the corpus does not carry
    assert t.conditions == [] and t.interventions == [] and t.phases == []
    assert t.sponsor is None and t.start_date is None and t.has_results is None
    assert t.enrollment is None and t.overall_status is None and t.study_type is None


@pytest.mark.slow
def test_whole_corpus_reads(corpus_path):
    problems: list[ImportProblem] = []
    ids = [r.trial.registry_id for r in read_trials(corpus_path, problems=problems)]
    assert problems == []
    # SOURCES.md: 101,016 records, NCT00000102 .. NCT03579706
    assert len(ids) == 101_016 and len(set(ids)) == 101_016
    assert ids[0] == "NCT00000102" and max(ids) == "NCT03579706"


def test_plain_jsonl_and_content_not_extension(tmp_path, corpus_path, trials_dir):
    lines = corpus_lines(corpus_path, 30)
    plain = tmp_path / "corpus.json"  # misleading extension
    plain.write_bytes(b"".join(lines))
    assert detect_format(plain) == "jsonl"
    assert [r.trial.registry_id for r in read_trials(plain)] == [json.loads(x)["protocolSection"]["identificationModule"]["nctId"] for x in lines]
    disguised = tmp_path / "study.jsonl.gz"
    shutil.copy(trials_dir / "ctgov_legacy_xml" / "NCT02654730.xml", disguised)
    assert detect_format(disguised) == "ctgov_xml"
    gz = tmp_path / "noext"
    gz.write_bytes(gzip.compress(b"".join(lines)))
    assert detect_format(gz) == "jsonl_gz"
    assert len(list(read_trials(gz))) == 30


# ---------------------------------------------------------------- lists, pages, ZIPs
def test_v2_list_page_and_zip(tmp_path, trials_dir):
    studies = v2_studies(trials_dir)
    ids = sorted(s["protocolSection"]["identificationModule"]["nctId"] for s in studies)
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(studies))
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"studies": studies, "nextPageToken": "abc", "totalCount": 12}, indent=2))
    bulk = write_zip(tmp_path / "ctg-studies.json.zip", v2_files(trials_dir))
    for path, fmt in ((as_list, "ctgov_v2_json"), (page, "ctgov_v2_json"), (bulk, "ctgov_v2_zip")):
        assert detect_format(path) == fmt
        problems: list[ImportProblem] = []
        got = sorted(r.trial.registry_id for r in read_trials(path, problems=problems))
        assert got == ids and problems == []
    member = next(iter(read_trials(bulk)))
    assert member.location == "member NCT00465816.json"


def test_legacy_xml_zip(tmp_path, trials_dir):
    bulk = write_zip(tmp_path / "AllPublicXML.zip", xml_files(trials_dir))
    assert detect_format(bulk) == "ctgov_xml_zip"
    records = list(read_trials(bulk))
    assert len(records) == 60 and len({r.trial.registry_id for r in records}) == 59  # one duplicate file
    # 42 files say "processed this data on May 11, 2018", the others other dates (Oct 2017 - Apr 2019)
    as_of = [r.as_of for r in records]
    assert as_of.count(dt.date(2018, 5, 11)) == 42
    assert min(as_of) == dt.date(2017, 10, 20) and max(as_of) == dt.date(2019, 4, 19)


# ---------------------------------------------------------------- ICTRP
def test_ictrp_xml_fields(tmp_path):
    path = write_ictrp_xml(tmp_path / "ictrp.xml", sample_ictrp())
    assert detect_format(path) == "ictrp_xml"
    problems: list[ImportProblem] = []
    by_id = {r.trial.registry_id: r.trial for r in read_trials(path, problems=problems)}
    assert problems == []
    assert list(by_id) == ["NCT02552212", "EUCTR2015-001894-41-DE", "ISRCTN12345678", "ChiCTR2000012345", "ACTRN12618000123456"]
    nct = by_id["NCT02552212"]
    assert nct.source_format == "ictrp_xml" and nct.registry == "ClinicalTrials.gov"
    assert nct.registration_date == dt.date(2015, 9, 15)  # 15/09/2015, day first
    assert nct.countries == ["United States", "Australia", "Bulgaria"]
    assert nct.conditions == ["Axial Spondyloarthritis", "Nr-axSpA"]
    assert (nct.allocation, nct.masking, nct.primary_purpose) == ("RANDOMIZED", "QUADRUPLE", "TREATMENT")
    assert [(i.type, i.name) for i in nct.interventions] == [("DRUG", "Certolizumab Pegol"), ("OTHER", "Placebo")]
    assert nct.enrollment == 317 and nct.phases == ["PHASE3"]
    eu = by_id["EUCTR2015-001894-41-DE"]
    assert eu.official_title.endswith("Double-Blind Study & more")  # &amp;amp; in the file, once escaped by ICTRP
    assert eu.enrollment == 317  # Target condition:200;Difficulty condition:117
    # EUCTR ticks each phase: "(Phase I): no ... (Phase III): yes" is phase 3 only
    assert eu.phases == ["PHASE3"]
    isrctn = by_id["ISRCTN12345678"]
    assert isrctn.secondary_ids == ["SAFEPRIM-II", "NCT02654730"]
    assert isrctn.conditions == ["Malaria", "G6PD deficiency"]  # <br>-joined
    assert "\n" in isrctn.title and "&lt;" not in isrctn.title
    assert isrctn.last_update == dt.date(2018, 5, 11)
    # ChiCTR's stage "New Treatment Measure Clinical Study": no drug phase, ClinicalTrials.gov's "Not Applicable"
    assert by_id["ChiCTR2000012345"].phases == ["NA"]
    assert by_id["ChiCTR2000012345"].registration_date == dt.date(2020, 3, 20)
    assert by_id["ACTRN12618000123456"].phases == ["NA"]


@pytest.mark.parametrize("header", [True, False])
def test_ictrp_csv_with_and_without_header(tmp_path, header):
    from neuromodmap.trials._readers.ictrp import CSV_COLUMNS

    records = sample_ictrp()
    if header:
        path = write_ictrp_csv(tmp_path / "ictrp.csv", records)
    else:
        # header-less exports follow the WHO column order
        import csv

        path = tmp_path / "ictrp_noheader.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            for rec in records:
                w.writerow([rec.get(col.replace(" ", "_"), rec.get(col, "")) for col in CSV_COLUMNS])
    assert detect_format(path) == "ictrp_csv"
    problems: list[ImportProblem] = []
    got = {r.trial.registry_id: r for r in read_trials(path, problems=problems)}
    assert problems == []
    assert list(got) == [r["TrialID"] for r in records]
    nct = got["NCT02552212"].trial
    assert nct.source_format == "ictrp_csv"
    assert nct.countries == ["United States", "Australia", "Bulgaria"]
    assert nct.enrollment == 317
    assert got["ISRCTN12345678"].trial.secondary_ids == ["SAFEPRIM-II", "NCT02654730"]
    assert got["NCT02552212"].location == ("line 2" if header else "line 1")


# ---------------------------------------------------------------- unknown formats
@pytest.mark.parametrize(
    "content",
    [b"", b"   \n", b"hello world\n", b"<html><body>not a trial</body></html>", b"\x00\x01\x02binary"],
)
def test_unknown_content_is_a_clear_error_naming_the_file(tmp_path, content):
    path = tmp_path / "mystery.json"
    path.write_bytes(content)
    with pytest.raises(TrialFileError, match="mystery.json"):
        detect_format(path)
    with pytest.raises(TrialFileError, match="mystery.json"):
        list(read_trials(path))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(TrialFileError, match="nope.json"):
        detect_format(tmp_path / "nope.json")


def test_zip_of_other_things_is_refused(tmp_path):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "holiday pictures")
    with pytest.raises(TrialFileError, match="photos.zip"):
        detect_format(path)


def test_reader_position_for_progress_bars(tmp_path, corpus_path, trials_dir):
    from neuromodmap.trials.io import TrialReader

    gz = tmp_path / "slice.jsonl.gz"
    gz.write_bytes(gzip.compress(b"".join(corpus_lines(corpus_path, 2000))))
    bulk = write_zip(tmp_path / "bulk.zip", v2_files(trials_dir))
    for path in (gz, bulk):
        reader = TrialReader(path)
        seen = []
        for i, _ in enumerate(reader):
            if i % 5 == 0:
                seen.append(reader.position)
        assert seen == sorted(seen) and 0 <= seen[0] < reader.size
        assert reader.position == reader.size == path.stat().st_size


def test_jsonl_with_broken_first_lines_still_detected(tmp_path, corpus_path):
    lines = corpus_lines(corpus_path, 5)
    path = tmp_path / "broken_start.jsonl"
    path.write_bytes(lines[0][:50] + b"\n" + lines[1][:70] + b"\n" + b"".join(lines[2:]))
    assert detect_format(path) == "jsonl"
    problems: list[ImportProblem] = []
    assert len(list(read_trials(path, problems=problems))) == 3
    assert [p.location for p in problems] == ["line 1", "line 2"]


def test_read_capped_reads_whole_files_up_to_the_limit(monkeypatch):
    """A one-record file is read with a request sized from its listed size (not the 64 MB limit),
    yet a file that grew since it was listed is still read on, and one past the limit is cut at
    limit + 1 bytes (so the reader can say it is too large)."""
    import io as stdio

    from neuromodmap.trials import io as trials_io

    monkeypatch.setattr(trials_io, "MAX_RECORD_BYTES", 100)
    data = bytes(range(90))
    assert trials_io.read_capped(stdio.BytesIO(data), 90) == data
    assert trials_io.read_capped(stdio.BytesIO(data), 10) == data  # grew since listed
    assert trials_io.read_capped(stdio.BytesIO(data), 200) == data  # shrank
    big = bytes(300)
    assert len(trials_io.read_capped(stdio.BytesIO(big), 300)) == 101
    assert len(trials_io.read_capped(stdio.BytesIO(big), 5)) == 101
