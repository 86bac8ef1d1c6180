"""The survey's structured landscape on real full records, checked against the raw files.

The store holds the AllPublicXML subset (6,786 legacy XML records, Feb 2023) and the
erectile-dysfunction bulk ZIP (635 API v2 records, Sep 2024), imported and classified as a
user would. Every expected count below is computed here from the raw files with regular
expressions (XML) or the json module (v2), never from the store or the survey; only the set
of neuromodulation trials and their modality group / indication come from the classifier, as
they define the rows being counted.
"""

from __future__ import annotations

import collections
import io
import json
import re
import statistics
import tarfile
import zipfile

import pandas as pd
import pytest

from neuromodmap.trials import survey as survey_module
from neuromodmap.trials.classify import CLASSIFIER_VERSION, classify
from neuromodmap.trials.store import TrialStore
from neuromodmap.trials.survey import survey

TAR = ("ctgov_legacy_xml_allpublicxml_subset_reesewang25/"
       "AllPublicXML_subset_NCT0000xxxx_NCT0046xxxx_NCT0049xxxx.tar.gz")
ZIP = "ctgov_v2_json_zip_and_csv_erectile_dysfunction_marcmorcos/ctg-studies.json.zip"
GROUP_LABEL = {"noninvasive_cortical": "Non-invasive cortical stimulation", "deep_brain": "Deep brain stimulation",
               "motor_cortex": "Invasive motor cortex stimulation", "peripheral": "Peripheral nerve stimulation",
               "vagal": "Vagus nerve stimulation", "convulsive": "Convulsive therapies",
               "other": "Other neuromodulation", "spinal_cord": "Spinal cord stimulation",
               "ultrasound": "Focused ultrasound"}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()


def _xml_fields(text: str) -> dict:
    def one(tag: str) -> str | None:
        m = re.search(rf"<{tag}>([^<]*)</{tag}>", text)
        return m.group(1).strip() if m else None

    phase = one("phase")
    phases = []
    if phase:
        phases = ["NA"] if phase == "N/A" else [f"PHASE{n}" for n in re.findall(r"Phase (\d)", phase)]
        phases = ["EARLY_PHASE1"] if phase == "Early Phase 1" else phases
    sponsor = re.search(r"<lead_sponsor>.*?<agency_class>([^<]*)</agency_class>", text, re.S)
    sponsor_class = {"Other": "OTHER", "NIH": "NIH", "Industry": "INDUSTRY", "U.S. Fed": "FED"}.get(
        sponsor.group(1)) if sponsor else None
    masking = one("masking")
    start = one("start_date")
    enrol = re.search(r"<enrollment[^>]*>(\d+)</enrollment>", text)
    countries = re.search(r"<location_countries>(.*?)</location_countries>", text, re.S)
    return {
        "phase": phases,
        "status": [_slug(one("overall_status"))] if one("overall_status") else [],
        "sponsor_class": [sponsor_class] if sponsor_class else [],
        "allocation": [_slug(one("allocation"))] if one("allocation") else [],
        "masking": [_slug(masking.split("(")[0])] if masking else [],
        "has_results": ["results posted" if "<clinical_results>" in text else "no results posted"],
        "country": list(dict.fromkeys(re.findall(r"<country>([^<]*)</country>", countries.group(1))))
        if countries else [],
        "start_year": int(re.search(r"\d{4}", start).group(0)) if start else None,
        "enrollment": int(enrol.group(1)) if enrol else None,
    }


def _v2_fields(study: dict) -> dict:
    ps = study["protocolSection"]
    design = ps.get("designModule", {})
    info = design.get("designInfo", {})
    status = ps.get("statusModule", {})
    sponsor = ps.get("sponsorCollaboratorsModule", {}).get("leadSponsor", {}).get("class")
    masking = info.get("maskingInfo", {}).get("masking")
    start = status.get("startDateStruct", {}).get("date")
    countries = [loc["country"] for loc in ps.get("contactsLocationsModule", {}).get("locations", []) if loc.get("country")]
    return {
        "phase": design.get("phases", []),
        "status": [status["overallStatus"]] if status.get("overallStatus") else [],
        "sponsor_class": [sponsor] if sponsor else [],
        "allocation": [info["allocation"]] if info.get("allocation") else [],
        "masking": [masking] if masking else [],
        "has_results": ["results posted" if study.get("hasResults") else "no results posted"],
        "country": list(dict.fromkeys(countries)),
        "start_year": int(start[:4]) if start else None,
        "enrollment": design.get("enrollmentInfo", {}).get("count"),
    }


@pytest.fixture(scope="module")
def surveyed(tmp_path_factory, trials_dir):
    db = tmp_path_factory.mktemp("structured") / "s.duckdb"
    with TrialStore(db) as store:
        store.import_files([trials_dir / TAR, trials_dir / ZIP], progress=False)
        store.write_labels((classify(t) for t in store.iter_trials()), classifier_version=CLASSIFIER_VERSION)
        trials, labels = store.trials_df(), store.labels_df()
        runs = store.import_runs_df()
    out = tmp_path_factory.mktemp("survey")
    # each figure as matplotlib's own savefig(bbox_inches="tight") writes it, made after the survey
    # saved it (so the survey's cropping box is found without the draw that savefig makes first)
    tight_png: dict[str, bytes] = {}
    save = survey_module._save

    def save_and_keep_tight(fig, out_, stem):
        paths = save(fig, out_, stem)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
        tight_png[stem] = buffer.getvalue()
        return paths

    survey_module._save = save_and_keep_tight
    try:
        result = survey(trials, labels, out, import_runs=runs)
    finally:
        survey_module._save = save
    result.tight_png = tight_png
    nm = labels[labels["neuromod"]]
    wanted = set(nm["registry_id"])
    raw = {}
    with tarfile.open(trials_dir / TAR, "r:gz") as tf:
        for info in tf:
            if info.isfile() and info.name.endswith(".xml"):
                text = tf.extractfile(info).read().decode("utf-8")
                rid = re.search(r"<nct_id>([^<]+)</nct_id>", text).group(1)
                if rid in wanted:
                    raw[rid] = _xml_fields(text)
    with zipfile.ZipFile(trials_dir / ZIP) as zf:
        for name in zf.namelist():
            study = json.loads(zf.read(name))
            rid = study["protocolSection"]["identificationModule"]["nctId"]
            if rid in wanted:
                raw[rid] = _v2_fields(study)
    assert set(raw) == wanted  # every neuromodulation trial came from one of the two files
    groups = {r.registry_id: list(r.modality_group) for r in nm.itertuples()}
    indication = dict(zip(nm["registry_id"], nm["indication"], strict=True))
    return result, raw, groups, indication


@pytest.mark.parametrize("field", ["phase", "status", "sponsor_class", "allocation", "masking", "has_results",
                                   "country"])
@pytest.mark.parametrize("by", ["group", "indication"])
def test_split_tables_match_the_raw_files(surveyed, field, by):
    result, raw, groups, indication = surveyed
    expected: collections.Counter = collections.Counter()
    for rid, fields in raw.items():
        values = fields[field] or ["not reported"]
        keys = [GROUP_LABEL[g] for g in groups[rid]] if by == "group" else [indication[rid]]
        for value in values:
            expected[value, "all trials"] += 1
            for key in keys:
                expected[value, key] += 1
    table = result.table(f"{field}_by_{by}").set_index(field)
    got = collections.Counter({(value, column): int(n) for value, row in table.iterrows()
                               for column, n in row.items() if n})
    if field == "country":  # the top 25 countries only
        expected = collections.Counter({k: n for k, n in expected.items() if k[0] in set(table.index)})
        assert len(table) == min(25, len({v for v, _ in expected}))
    assert got == expected


def test_enrollment_and_start_year_match_the_raw_files(surveyed):
    result, raw, groups, indication = surveyed
    table = result.table("enrollment_by_indication").set_index("indication")
    for ind in set(indication.values()):
        values = [raw[r]["enrollment"] for r in raw if indication[r] == ind and raw[r]["enrollment"] is not None]
        assert table.loc[ind, "n_trials"] == len(values)
        assert table.loc[ind, "median"] == pytest.approx(statistics.median(values))
    years = result.table("start_year_by_indication").set_index("start_date")
    expected = collections.Counter((raw[r]["start_year"], indication[r]) for r in raw if raw[r]["start_year"])
    got = collections.Counter({(int(y), c): int(n) for y, row in years.iterrows() for c, n in row.items() if n})
    assert got == expected


def test_the_structured_sections_are_in_the_report_section(surveyed):
    result = surveyed[0]
    section = json.loads((result.out_dir / "section.json").read_text())
    figures = {f["id"] for f in section["figures"]}
    tables = {t["id"] for t in section["tables"]}
    for name in ("phase", "status", "sponsor_class", "allocation", "masking", "has_results", "country",
                 "continent", "enrollment"):
        # one two-panel figure (by group | by indication) beside the two split tables
        assert {name, f"{name}_by_group"} <= figures, name
        assert {name, f"{name}_by_group", f"{name}_by_indication"} <= tables, name
    assert {"start_year", "start_year_by_indication"} <= figures
    assert result.unavailable == ["linked_publications"]


def test_a_text_only_store_says_what_is_missing(tmp_path, corpus_path):
    # the 2018 text corpus carries no registry fields: no split table, one sentence naming them
    from neuromodmap.trials.io import read_trials

    trials, labels = [], []
    for i, record in enumerate(read_trials(corpus_path)):
        if i == 3000:
            break
        trials.append({"registry_id": record.trial.registry_id, "title": record.trial.title})
        c = classify(record.trial)
        labels.append({"registry_id": c.registry_id, "neuromod": c.neuromod, "modalities": c.modalities,
                       "modality_group": c.modality_group, "indication": c.indication,
                       "pain_subtype": c.pain_subtype, "depression_subtype": c.depression_subtype,
                       "chronic_pain": c.chronic_pain, "targets": c.targets, "invasive": c.invasive,
                       "evidence": "[]", "classifier_version": CLASSIFIER_VERSION})
    result = survey(pd.DataFrame(trials), pd.DataFrame(labels), tmp_path)
    assert result.n_neuromod > 0
    assert not [name for name in result.tables if name.endswith(("_by_group", "_by_indication"))
                and name != "group_by_indication"]
    assert {"phase", "status", "country", "continent", "start_year", "enrollment"} <= set(result.unavailable)
    html = result.html_path.read_text()
    assert "These fields are absent from the imported records" in html and "phase" in html


def test_figures_are_cropped_as_savefig_tight_crops_them(surveyed):
    """The survey finds each figure's tight box once for its PNG and SVG, without savefig's extra
    draw; every PNG must still be byte-identical to matplotlib's savefig(bbox_inches="tight")."""
    result = surveyed[0]
    assert len(result.tight_png) >= 20  # the count tables, the split pairs, trend, box plots
    for stem, expected in result.tight_png.items():
        assert (result.out_dir / "figures" / f"{stem}.png").read_bytes() == expected, stem
        svg = (result.out_dir / "figures" / f"{stem}.svg").read_text(encoding="utf-8")
        assert "<svg" in svg and "</svg>" in svg, stem
