"""The landscape survey, on real ClinicalTrials.gov records imported and classified by the pipeline."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from neuromodmap.trials.pipeline import import_and_classify
from neuromodmap.trials.store import TrialStore
from neuromodmap.trials.survey import SEED_004, survey

# Terms that make a corpus record worth keeping in the test slice: the slice must contain
# neuromodulation trials for the survey to have something to count.
_STIM = ("stimulation", "electroconvulsive", "tdcs", "rtms", "ultrasound")


@pytest.fixture(scope="module")
def surveyed(tmp_path_factory, corpus_path: Path):
    """Import a real slice (every stimulation-mentioning record among the first 30k, plus 2k others)."""
    tmp = tmp_path_factory.mktemp("survey")
    sliced = tmp / "slice.jsonl.gz"
    kept_other = 0
    with gzip.open(corpus_path, "rt", encoding="utf-8") as src, gzip.open(sliced, "wt", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= 30000:
                break
            low = line.lower()
            if any(t in low for t in _STIM):
                dst.write(line)
            elif kept_other < 2000:
                kept_other += 1
                dst.write(line)
    with TrialStore(tmp / "t.duckdb") as store:
        stats = import_and_classify(store, [sliced])
        trials, labels, runs = store.trials_df(), store.labels_df(), store.import_runs_df()
    result = survey(trials, labels, tmp / "out", import_runs=runs)
    return stats, trials, labels, result


def test_counts_agree_with_labels(surveyed):
    stats, _, labels, result = surveyed
    nm = labels[labels["neuromod"]]
    assert result.n_neuromod == len(nm) == stats["n_neuromod"] > 20
    groups = result.table("modality_group").set_index("modality_group")["n_trials"]
    expected = nm["modality_group"].explode().dropna().value_counts()
    assert groups.sort_index().to_dict() == expected.sort_index().to_dict()
    ind = result.table("indication").set_index("indication")["n_trials"]
    assert ind.sum() == len(nm)


def test_text_only_corpus_fields_reported_unavailable_not_invented(surveyed):
    # The 2018 corpus has only title/summary/description (shared/data/trials/SOURCES.md).
    _, _, _, result = surveyed
    for name in ("phase", "status", "country", "start_year", "enrollment", "sponsor_class"):
        assert name in result.unavailable
        assert name not in result.tables
    assert "not available in the source" in result.html_path.read_text().lower()


def test_every_table_has_a_figure_and_csv(surveyed):
    _, _, _, result = surveyed
    for name, table in result.tables.items():
        assert (result.out_dir / "tables" / f"{name}.csv").is_file()
        if len(table.frame):
            exts = sorted(p.suffix for p in table.figures)
            assert exts == [".png", ".svg"], name
            assert all(p.stat().st_size > 1000 for p in table.figures)


def test_seed_comparison_table(surveyed):
    _, _, labels, result = surveyed
    t = result.table("seed_comparison").set_index("modality_group")
    # seed 004 (Yamamoto, Elias et al. 2022): 49.3 % non-invasive cortical, 43.7 % SCS, < 3 % DBS of 487
    assert t.loc["noninvasive_cortical", "seed_004_percent"] == "49.3"
    assert t.loc["spinal_cord", "seed_004_percent"] == "43.7"
    assert t.loc["deep_brain", "seed_004_percent"] == "< 3"
    assert t.loc["all", "seed_004_percent"] == str(SEED_004["n_trials"])
    pain = labels[labels["neuromod"] & labels["indication"].isin(["pain", "both"])]
    assert t.loc["all", "our_n_trials"] == len(pain)
    central = pain[pain["modality_group"].map(
        lambda gs: bool({"noninvasive_cortical", "spinal_cord", "deep_brain", "motor_cortex"} & set(gs)))]
    assert t.loc["all", "our_n_central"] == len(central) and t.loc["all", "our_percent_central"] == 100.0
    n_scs = sum("spinal_cord" in gs for gs in pain["modality_group"])
    assert t.loc["spinal_cord", "our_n_central"] == n_scs == t.loc["spinal_cord", "our_n_trials"]
    assert t.loc["spinal_cord", "our_percent_central"] == pytest.approx(100 * n_scs / len(central), abs=0.05)


def test_methods_paragraph_names_source_and_classifier(surveyed):
    _, _, _, result = surveyed
    assert "slice.jsonl.gz" in result.methods
    assert "ClinicalTrials.gov" in result.methods
    assert "classifier" in result.methods


def test_full_records_fill_registry_field_tables(tmp_path, trials_dir: Path):
    """The complete v2 fixtures carry phase, status, countries, dates: those tables appear."""
    with TrialStore(tmp_path / "v2.duckdb") as store:
        store.import_files(sorted((trials_dir / "ctgov_v2_json").glob("*.json")))
        trials = store.trials_df()
    # these fixtures are not neuromodulation trials; label them as such here to exercise tabulation
    labels = pd.DataFrame({
        "registry_id": trials["registry_id"], "neuromod": True,
        "modalities": [["tms"]] * len(trials), "modality_group": [["noninvasive_cortical"]] * len(trials),
        "indication": "pain", "pain_subtype": [[]] * len(trials), "depression_subtype": [[]] * len(trials),
        "chronic_pain": True, "targets": [[]] * len(trials), "invasive": False, "classifier_version": "test",
    })
    result = survey(trials, labels, tmp_path / "out")
    status = result.table("status").set_index("status")["n_trials"]
    assert status.sum() == len(trials) == 12
    expected_status = trials["overall_status"].fillna("not reported").value_counts()
    assert status.sort_index().to_dict() == expected_status.sort_index().to_dict()
    assert "country" in result.tables and "continent" in result.tables
    assert "start_year" in result.tables


def test_registry_text_is_escaped_in_html(tmp_path):
    hostile = "<script>alert('x')</script>"
    trials = pd.DataFrame({"registry_id": ["NCT1"], "sponsor_class": [hostile], "countries": [[hostile]]})
    labels = pd.DataFrame({
        "registry_id": ["NCT1"], "neuromod": [True], "modalities": [["scs"]], "modality_group": [["spinal_cord"]],
        "indication": ["pain"], "pain_subtype": [["fbss"]], "depression_subtype": [[]], "chronic_pain": [True],
        "targets": [[]], "invasive": [True], "classifier_version": ["test"],
    })
    result = survey(trials, labels, tmp_path / "out")
    page = result.html_path.read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    json.dumps(result.methods)  # the methods paragraph is plain text
