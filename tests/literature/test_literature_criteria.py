"""Criteria profiles: the seed's default rules, pain/depression questions, reasons, bad YAML."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from neuromodmap.literature import apply_criteria, load_profile, read_records
from neuromodmap.literature.criteria import CriteriaError
from neuromodmap.literature.records import Record


def _rec(i, **kw) -> Record:
    return Record(record_id=f"r{i}", title=kw.pop("title", f"Title {i}"), **kw)


def test_default_profile_is_the_seed() -> None:
    profile = load_profile()
    assert profile.years.start.isoformat() == "2000-01-01" and profile.years.end.isoformat() == "2025-04-30"
    assert profile.languages == ["english"]
    assert {"conference_abstract", "case_report", "not_peer_reviewed"} <= set(profile.exclude)
    assert "systematic review" in profile.include_study_types and "guideline" in profile.include_study_types


def test_rules_and_reasons() -> None:
    records = [
        _rec(1, year=2010, language="eng", publication_types=["Randomized Controlled Trial"]),
        _rec(2, year=1999),
        _rec(3, year=2026),
        _rec(4, year=2015, language="ger"),
        _rec(5, year=2015, publication_types=["Case Reports"]),
        _rec(6, year=2015, title="A case of refractory neuralgia treated with SCS"),
        _rec(7, year=2020, doi="10.1101/2020.01.01.123456"),
        _rec(8, year=2020, publication_types=["Congress"]),
        _rec(9, year=2019, record_type="ABST"),
        _rec(10),  # no year, no language: nothing to exclude on
        _rec(11, year=2021, language="English; French"),
        _rec(12, year=2018, journal="medRxiv"),
    ]
    result = apply_criteria(records, load_profile())
    table = result.table.set_index("record_id")
    assert table.loc[["r1", "r10", "r11"], "eligible"].all()
    expected = {"r2": "date_range", "r3": "date_range", "r4": "language", "r5": "case_report",
                "r6": "case_report", "r7": "not_peer_reviewed", "r8": "conference_abstract",
                "r9": "conference_abstract", "r12": "not_peer_reviewed"}
    assert table.loc[list(expected), "reason_code"].to_dict() == expected
    assert (result.excluded["reason"] != "").all()  # every exclusion carries its reason
    assert table.loc["r7", "detail"] == "DOI 10.1101/2020.01.01.123456"


def test_date_limit_is_checked_to_the_month() -> None:
    # the seed searched "January 2000 to April 2025" (profiles/default.yaml)
    records = [_rec(1, year=2025, month=4), _rec(2, year=2025, month=5), _rec(3, year=2025),
               _rec(4, year=2000, month=1), _rec(5, year=1999, month=12), _rec(6, year=2026)]
    table = apply_criteria(records, load_profile()).table.set_index("record_id")
    assert table["eligible"].to_dict() == {"r1": True, "r2": False, "r3": True, "r4": True, "r5": False,
                                           "r6": False}
    assert table.loc["r2", "detail"] == "published 2025-05, after 2025-04-30"
    assert table.loc["r5", "detail"] == "published 1999-12, before 2000-01-01"


def test_month_limit_on_real_records(exports_dir: Path) -> None:
    # real WoS records: DA SEP / PY 2018 and DA MAY / PY 2016; a search ending August 2018
    records = read_records(exports_dir / "asreview_demo/web_of_science.txt").records[:2]
    default = load_profile()
    profile = default.model_copy(update={"years": default.years.model_copy(update={"end": dt.date(2018, 8, 31)})})
    table = apply_criteria(records, profile).table
    assert table["eligible"].tolist() == [False, True]
    assert table["detail"].iloc[0] == "published 2018-09, after 2018-08-31"


def test_pain_and_depression_questions() -> None:
    pain = load_profile("pain")
    depression = load_profile("depression")
    assert pain.question == "pain" and depression.question == "depression"
    records = [_rec(1, year=2015, title="Spinal cord stimulation for neuropathic pain"),
               _rec(2, year=2015, title="rTMS in treatment-resistant depression"),
               _rec(3, year=2015, title="Gambling harm in Finland")]
    for profile, kept in ((pain, {"r1"}), (depression, {"r2"})):
        strict = profile.model_copy(update={"require_topic": True})
        result = apply_criteria(records, strict)
        eligible = set(result.eligible_ids)
        # the modality terms count for both questions; the indication terms decide the rest
        assert kept <= eligible and "r3" not in eligible
    both = load_profile("default", question="both").model_copy(update={"require_topic": True})
    assert set(apply_criteria(records, both).eligible_ids) == {"r1", "r2"}


def test_real_scopus_publication_types(exports_dir: Path) -> None:
    records = read_records(exports_dir / "citesource_gambling_harms/20221207_gambling-harms_scopus_255.ris").records
    result = apply_criteria(records, load_profile())
    counts = result.excluded["reason_code"].value_counts().to_dict()
    # the file's M3 lines: Letter 5, Editorial 3, Erratum 2, Note 17 -> 27 non-peer-reviewed items;
    # the 2 "Conference Paper" items are full papers and stay
    assert counts.get("not_peer_reviewed", 0) >= 27
    assert counts.get("conference_abstract", 0) == 0


def test_profile_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nyears: {start: 2000-01-01}\nlanguges: [english]\n")
    with pytest.raises(CriteriaError, match=r"bad\.yaml: invalid criteria profile .*languges"):
        load_profile(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(CriteriaError, match="cannot read criteria profile"):
        load_profile(broken)
    with pytest.raises(CriteriaError, match="no such criteria profile"):
        load_profile(tmp_path / "absent.yaml")
    custom = tmp_path / "mine.yaml"
    custom.write_text("extends: default\nname: mine\nyears: {start: 2010-01-01, end: 2024-12-31}\n")
    profile = load_profile(custom)
    assert profile.years.start.year == 2010 and "case_report" in profile.exclude
