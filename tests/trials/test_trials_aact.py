"""AACT ``studies`` rows: the AACT-derived table of 1,200 US pain trials (snapshot 2020-06-30).

Expected values are read from the raw file with the csv module (cp1252 as its SOURCES.md
says), never from our reader: ids, phases, statuses, start years, enrollments, sponsor
classes; then the survey of the pain neuromodulation trials it holds is checked against the
same raw cells.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import gzip
import io

import pytest

from neuromodmap.trials.classify import CLASSIFIER_VERSION, classify
from neuromodmap.trials.io import detect_format, read_trials
from neuromodmap.trials.store import TrialStore
from neuromodmap.trials.survey import survey

AACT = "aact_derived_pain_trials_us_anhkhoavo/All_pain_master_file.csv.gz"
PHASE = {"Phase 1": ["PHASE1"], "Phase 2": ["PHASE2"], "Phase 3": ["PHASE3"], "Phase 4": ["PHASE4"],
         "Phase 1/Phase 2": ["PHASE1", "PHASE2"], "Phase 2/Phase 3": ["PHASE2", "PHASE3"],
         "Early Phase 1": ["EARLY_PHASE1"], "N/A": ["NA"]}
STATUS = {"Completed": "COMPLETED", "Terminated": "TERMINATED", "Active, not recruiting": "ACTIVE_NOT_RECRUITING",
          "Unknown status": "UNKNOWN", "Recruiting": "RECRUITING", "Withdrawn": "WITHDRAWN",
          "Enrolling by invitation": "ENROLLING_BY_INVITATION", "Suspended": "SUSPENDED",
          "Not yet recruiting": "NOT_YET_RECRUITING"}
SPONSOR = {"Other": "OTHER", "Industry": "INDUSTRY", "U.S. Fed": "FED", "NIH": "NIH"}


@pytest.fixture(scope="module")
def raw(trials_dir):
    text = gzip.open(trials_dir / AACT).read().decode("cp1252", "replace")
    return {row["nct_id"]: row for row in csv.DictReader(io.StringIO(text))}


@pytest.fixture(scope="module")
def records(trials_dir):
    problems = []
    return {r.trial.registry_id: r for r in read_trials(trials_dir / AACT, problems=problems)}, problems


def test_detected_and_every_trial_read(trials_dir, raw, records):
    assert detect_format(trials_dir / AACT) == "aact_csv_gz"
    got, problems = records
    assert set(got) == set(raw) and len(raw) == 1200
    # R's missing value "NA" (the enrollment of NCT00262678) is a missing field, not a bad one
    assert problems == []
    assert got["NCT00262678"].trial.enrollment is None and got["NCT00262678"].trial.title


def test_fields_match_the_raw_cells(raw, records):
    got, _ = records
    kept = collections.Counter()
    for rid, row in raw.items():
        trial = got[rid].trial
        kept["phase"] += trial.phases == PHASE.get(row["phase"], [])
        kept["status"] += trial.overall_status == STATUS[row["overall_status"]]
        kept["start"] += trial.start_date == (dt.date.fromisoformat(row["start_date"]) if row["start_date"] else None)
        enrol = row["enrollment"]
        kept["enrollment"] += trial.enrollment == (int(float(enrol)) if enrol not in ("", "NA") else None)
        kept["sponsor_class"] += trial.sponsor_class == SPONSOR[row["agency_class"]]
        kept["country"] += trial.countries == [row["Countries_name"]]
        kept["has_results"] += trial.has_results == bool(row["results_first_posted_date"] not in ("", "NA"))
        kept["as_of"] += got[rid].as_of in (dt.date(2020, 6, 30), dt.date(2020, 7, 10), dt.date(2020, 7, 2))
    assert kept == {k: 1200 for k in kept}


@pytest.fixture(scope="module")
def pain_survey(tmp_path_factory, trials_dir):
    db = tmp_path_factory.mktemp("aact") / "a.duckdb"
    with TrialStore(db) as store:
        store.import_files([trials_dir / AACT], progress=False)
        store.write_labels((classify(t) for t in store.iter_trials()), classifier_version=CLASSIFIER_VERSION)
        trials, labels, runs = store.trials_df(), store.labels_df(), store.import_runs_df()
    return survey(trials, labels, tmp_path_factory.mktemp("aact_survey"), import_runs=runs), labels


def test_pain_survey_tables_match_the_raw_cells(raw, pain_survey):
    result, labels = pain_survey
    nm = labels[labels["neuromod"]]
    pain = nm[nm["indication"].isin(["pain", "both"])]
    assert len(pain) >= 30  # SOURCES.md: a keyword grep finds 48 pain neuromodulation trials
    phase = collections.Counter(p for rid in pain["registry_id"] for p in PHASE.get(raw[rid]["phase"], ["not reported"]))
    table = result.table("phase_by_indication").set_index("phase")
    assert {v: int(table.loc[v, ["pain", "both"]].sum() if "both" in table else table.loc[v, "pain"])
            for v in table.index if (table.loc[v, "pain"] or ("both" in table and table.loc[v, "both"]))} == phase
    sponsor = collections.Counter(SPONSOR[raw[rid]["agency_class"]] for rid in nm["registry_id"])
    table = result.table("sponsor_class_by_indication").set_index("sponsor_class")
    assert table["all trials"].to_dict() == sponsor
    years = collections.Counter(int(raw[rid]["start_date"][:4]) for rid in nm["registry_id"])
    trend = result.table("start_year_by_indication").set_index("start_date")
    assert trend.sum(axis=1).to_dict() == years
    assert result.table("continent")["continent"].tolist() == ["North America"]
