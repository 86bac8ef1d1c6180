"""Arm groups and arm roles: read from real registry files and used by the classifier.

A TENS or electro-acupuncture arm given as the *comparator*, or as a co-intervention in every
arm beside the intervention the trial tests, does not make a trial a neuromodulation trial
(issue 14, item 5). The trials below are the real ones found by classifying every structured
record in ``$NEUROMODMAP_DATA/trials`` with and without their arms
(``benchmarks/classifier_arms.py``): only the herniated-disc download has such trials; the
AllPublicXML subset, the erectile-dysfunction ZIP, the AACT fixtures and the ctrdata demo have
none (their neuromodulation interventions sit in EXPERIMENTAL arms). Each was read by hand.
"""

from __future__ import annotations

import collections
import gzip
import json
import re
import tarfile

import duckdb
import pytest

from neuromodmap.trials.classify import classify
from neuromodmap.trials.io import read_trials
from neuromodmap.trials.store import TrialStore

HERNIATED = "ctgov_v2_json_download_herniated_disc_koy570/ctg-studies.json.gz"
TAR = ("ctgov_legacy_xml_allpublicxml_subset_reesewang25/"
       "AllPublicXML_subset_NCT0000xxxx_NCT0046xxxx_NCT0049xxxx.tar.gz")

#: TENS / electro-acupuncture only in a comparator arm, or in every arm beside the tested one
#: (read in the records: arm types, arm descriptions and interventions)
NOT_TESTED = {
    # "Conventional Physiotherapy Group" (ACTIVE_COMPARATOR: ultrasound + TENS + exercise) beside
    # the high-intensity laser arm the title names; no arm is typed EXPERIMENTAL
    "NCT05474625": "comparator",
    # hot pack + TENS in the PEMF and the sham-PEMF arms: PEMF is tested
    "NCT04049812": "co-intervention",
    # hot pack, TENS, exercise in the ultrasound, short-wave diathermy and control arms
    "NCT03835182": "co-intervention",
    # conservative physiotherapy (hot packs, TENS, traction) in the ELDOA arm and the comparator
    "NCT04044092": "co-intervention",
    # post-treatment TENS and infrared heat in the ELDOA arm and the decompression comparator
    "NCT04930523": "co-intervention",
    # "conventional treatment" (with TENS) in the kinesio-taping arm and a comparator arm
    "NCT04039581": "co-intervention",
    # electro-acupuncture in both Korean-medicine arms; the Doin exercise is tested
    "NCT03571503": "co-intervention",
}
#: electro-acupuncture inside the EXPERIMENTAL Korean-medicine package (acupuncture, herbal
#: medicine, pharmacopuncture, electro-acupuncture ...) versus drugs: the registry puts it in
#: the tested arm, so the classifier keeps it (a package, not a stimulation trial: see docs)
PACKAGE = "NCT04833270"


@pytest.fixture(scope="module")
def herniated(trials_dir):
    return {r.trial.registry_id: r.trial for r in read_trials(trials_dir / HERNIATED)}


def test_v2_arms_match_the_raw_file(trials_dir, herniated):
    raw = json.loads(gzip.open(trials_dir / HERNIATED).read())
    raw_types = collections.Counter()
    raw_n = {}
    for study in raw:
        arms = study["protocolSection"].get("armsInterventionsModule", {}).get("armGroups", [])
        raw_n[study["protocolSection"]["identificationModule"]["nctId"]] = len(arms)
        raw_types.update(a.get("type") for a in arms)
    ours = collections.Counter(a.type for t in herniated.values() for a in t.arm_groups)
    assert ours == raw_types
    assert {rid: len(t.arm_groups) for rid, t in herniated.items()} == raw_n
    arm = herniated["NCT05474625"].arm_groups[2]
    assert (arm.label, arm.type) == ("Conventional Physiotherapy Group", "ACTIVE_COMPARATOR")
    assert "Device: Transcutaneous nerve stimulation (TENS)" in arm.intervention_names


@pytest.fixture(scope="module")
def tar_records(trials_dir):
    """(arm types of every record, the records named in the tests) from one pass over the tar."""
    types, kept = collections.Counter(), {}
    for r in read_trials(trials_dir / TAR):
        types.update(a.type for a in r.trial.arm_groups)
        if r.trial.registry_id in ("NCT00004980", "NCT00460902"):
            kept[r.trial.registry_id] = r.trial
    return types, kept


def test_legacy_xml_arms_match_the_raw_tar(trials_dir, tar_records):
    # <arm_group> elements and their <arm_group_type>, counted with a regex over the raw XML
    raw = collections.Counter()
    with tarfile.open(trials_dir / TAR, "r:gz") as tf:
        for info in tf:
            if info.isfile() and info.name.endswith(".xml"):
                text = tf.extractfile(info).read().decode("utf-8")
                for arm in re.findall(r"<arm_group>(.*?)</arm_group>", text, re.S):
                    typed = re.search(r"<arm_group_type>([^<]*)</arm_group_type>", arm)
                    raw[re.sub(r"\W+", "_", typed.group(1).strip()).upper() if typed else None] += 1
    assert tar_records[0] == raw
    assert raw["EXPERIMENTAL"] > 1000  # the subset really carries arms


@pytest.mark.parametrize("registry_id", sorted(NOT_TESTED))
def test_comparator_or_shared_tens_is_not_a_neuromodulation_trial(herniated, registry_id):
    trial = herniated[registry_id]
    # the text alone names TENS / electro-acupuncture as an intervention ...
    assert classify(trial.model_copy(update={"arm_groups": []})).modalities == ["tens"]
    # ... the arms say it is the control or a co-intervention
    c = classify(trial)
    assert not c.neuromod and c.modalities == []
    roles = [e for e in c.evidence if e.label == "arm_role"]
    assert [e.value for e in roles] == [NOT_TESTED[registry_id]]
    assert roles[0].field == "arm_groups" and roles[0].text.startswith("tens: '")
    why = [e.text for e in c.evidence if e.label == "neuromod" and e.value == "false"]
    assert why and why[0].startswith("tens: ")


def test_package_in_the_experimental_arm_is_kept(herniated):
    c = classify(herniated[PACKAGE])
    assert c.modalities == ["tens"]
    assert [(e.value, e.text) for e in c.evidence if e.label == "arm_role"] == [
        ("experimental", "tens: 'KM non-pharmacological treatment group' (EXPERIMENTAL)")]


def test_herniated_disc_download_has_no_other_neuromodulation_trial(herniated):
    # NCT04833270 is the one left (see PACKAGE); the other 99 are not stimulation trials
    assert sorted(rid for rid, t in herniated.items() if classify(t).neuromod) == [PACKAGE]


def test_stimulation_in_experimental_arms_still_counts(tar_records):
    wanted = {"NCT00004980": "tms", "NCT00460902": "tms"}  # active vs sham rTMS; deep TMS H-coil
    found = tar_records[1]
    assert set(found) == set(wanted)
    for rid, trial in found.items():
        c = classify(trial)
        assert wanted[rid] in c.modalities
        assert any(e.label == "arm_role" and e.value == "experimental" for e in c.evidence)


def test_arms_survive_the_store_and_old_stores_get_the_column(tmp_path, trials_dir, herniated):
    db = tmp_path / "t.duckdb"
    # a store made before arms were kept: no arm_groups column
    with TrialStore(db):
        pass
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE trials DROP COLUMN arm_groups")
    con.close()
    with TrialStore(db) as store:
        store.import_files([trials_dir / HERNIATED], progress=False)
        back = store.get_trial("NCT05474625")
    assert back.arm_groups == herniated["NCT05474625"].arm_groups
    assert not classify(back).neuromod
