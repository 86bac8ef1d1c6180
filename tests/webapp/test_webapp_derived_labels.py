"""Labels derived from a corrected label follow it: correcting a real TMS trial's modalities to deep
brain stimulation moves its modality group and invasiveness too (the API, the survey endpoint and
``TrialStore.labels_df`` agree), an explicit correction of a derived label wins, the history
says what was derived from which correction, and reverting the source undoes both."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from neuromodmap.trials.store import TrialStore


def _labels(db: Path, rid: str) -> dict:
    with TrialStore(db, read_only=True) as store:
        df = store.labels_df()
    row = df[df["registry_id"] == rid].iloc[0]

    def plain(v):
        if hasattr(v, "__len__") and not isinstance(v, str):
            return list(v)
        v = v.item() if hasattr(v, "item") else v
        return None if v is pd.NA or (isinstance(v, float) and v != v) else v  # a missing value is None
    return {k: plain(v) for k, v in row.items()}


def _count(client, key: str, value: str) -> int:
    fig = next(f for f in client.get("/api/survey").json()["figures"] if f["key"] == key)
    return next((c["n"] for c in fig["counts"] if c["value"] == value), 0)


def _tms_only_trial(db: Path) -> str:
    """A real trial the classifier labelled TMS alone (non-invasive cortical stimulation)."""
    with TrialStore(db, read_only=True) as store:
        df = store.labels_df(corrections=False)
    tms = df[df["modalities"].map(lambda v: v is not None and list(v) == ["tms"])]
    assert len(tms) >= 1
    return str(sorted(tms["registry_id"])[0])


def test_correcting_modalities_moves_group_and_invasiveness_and_revert_undoes_both(trials_db_copy, client_for,
                                                                                    csrf_headers):
    db = trials_db_copy
    rid = _tms_only_trial(db)
    before = _labels(db, rid)
    # the classifier's own labels for a TMS-only trial (vocabulary seed 004: TMS is non-invasive cortical)
    assert before["modality_group"] == ["noninvasive_cortical"] and before["invasive"] is False
    client = client_for(db)
    h = csrf_headers(client)
    n_deep, n_inv = _count(client, "modality_group", "deep_brain"), _count(client, "invasive", "invasive")
    n_cort = _count(client, "modality_group", "noninvasive_cortical")

    r = client.post(f"/api/trials/{rid}/labels", headers=h,
                    json={"field": "modalities", "value": ["dbs"], "reviewer": "A. Reviewer", "note": "implanted"})
    assert r.status_code == 201, r.text
    src = r.json()["override"]
    derived = {d["field"]: d for d in src["derived"]}
    assert set(derived) == {"neuromod", "modality_group", "invasive"}
    # DBS: the deep-brain group, an implanted device (vocabulary seed 004)
    assert derived["modality_group"]["old_value"] == ["noninvasive_cortical"]
    assert derived["modality_group"]["new_value"] == ["deep_brain"]
    assert (derived["invasive"]["old_value"], derived["invasive"]["new_value"]) == (False, True)
    assert all(d["derived_from"] == src["override_id"] and src["override_id"] in d["note"] for d in derived.values())

    d = client.get(f"/api/trials/{rid}").json()
    assert d["labels"]["modality_group"] == ["deep_brain"] and d["labels"]["invasive"] is True
    assert d["classifier_labels"]["modality_group"] == ["noninvasive_cortical"]
    assert set(d["labels"]["corrected"]) == {"modalities", "neuromod", "modality_group", "invasive"}
    assert rid in [it["registry_id"] for it in
                   client.get("/api/trials?modality_group=deep_brain&invasive=invasive&limit=500").json()["items"]]
    assert _count(client, "modality_group", "deep_brain") == n_deep + 1
    assert _count(client, "modality_group", "noninvasive_cortical") == n_cort - 1
    assert _count(client, "invasive", "invasive") == n_inv + 1
    after = _labels(db, rid)
    assert after["modality_group"] == ["deep_brain"] and after["invasive"] is True and after["modalities"] == ["dbs"]

    hist = client.get(f"/api/trials/{rid}/history").json()["items"]
    assert {h_["field"]: h_["derived_from"] for h_ in hist} == {
        "modalities": None, "neuromod": src["override_id"], "modality_group": src["override_id"],
        "invasive": src["override_id"]}
    assert all(h_["in_force"] for h_ in hist)
    page = client.get(f"/trials/{rid}").text  # the page's history says where each derived value came from
    assert page.count(f"derived from {src['override_id']}") == 3

    # a derived correction is not reverted alone
    r = client.post(f"/api/trials/{rid}/labels/{derived['invasive']['override_id']}/revert", headers=h,
                    json={"reviewer": "B"})
    assert r.status_code == 409 and src["override_id"] in r.json()["detail"]
    assert _labels(db, rid)["invasive"] is True

    r = client.post(f"/api/trials/{rid}/labels/{src['override_id']}/revert", headers=h, json={"reviewer": "B"})
    assert r.status_code == 200, r.text
    assert {x["field"] for x in r.json()["override"]["derived"] if x["reverted_at"]} == set(derived)
    assert _labels(db, rid) == before
    assert _count(client, "modality_group", "deep_brain") == n_deep
    assert _count(client, "invasive", "invasive") == n_inv
    hist = client.get(f"/api/trials/{rid}/history").json()["items"]
    assert len(hist) == 4 and all(h_["reverted_at"] and not h_["in_force"] for h_ in hist)


def test_an_explicit_correction_of_a_derived_label_wins(trials_db_copy, client_for, csrf_headers):
    db = trials_db_copy
    rid = _tms_only_trial(db)
    client = client_for(db)
    h = csrf_headers(client)
    # the reviewer first says invasiveness is unclear, then corrects the modality to DBS
    exp = client.post(f"/api/trials/{rid}/labels", headers=h,
                      json={"field": "invasive", "value": None, "reviewer": "A"}).json()["override"]
    src = client.post(f"/api/trials/{rid}/labels", headers=h,
                      json={"field": "modalities", "value": "dbs,tms", "reviewer": "A"}).json()["override"]
    lab = _labels(db, rid)
    assert lab["invasive"] is None  # the explicit correction stands over the derived one
    assert lab["modality_group"] == ["noninvasive_cortical", "deep_brain"]
    inv = next(d for d in src["derived"] if d["field"] == "invasive")
    assert "explicit correction of invasive stands" in inv["note"]
    hist = {x["override_id"]: x for x in client.get(f"/api/trials/{rid}/history").json()["items"]}
    assert hist[exp["override_id"]]["in_force"] and not hist[inv["override_id"]]["in_force"]
    # a later explicit correction wins too
    client.post(f"/api/trials/{rid}/labels", headers=h, json={"field": "modality_group", "value": ["other"],
                                                              "reviewer": "A"})
    assert _labels(db, rid)["modality_group"] == ["other"]
    # once the explicit one is reverted, the value derived from the standing modalities applies
    assert client.post(f"/api/trials/{rid}/labels/{exp['override_id']}/revert", headers=h,
                       json={"reviewer": "A"}).status_code == 200
    assert _labels(db, rid)["invasive"] is True


def test_derived_labels_are_the_classifiers_function():
    from neuromodmap import vocabulary as vocab
    from neuromodmap.trials.overrides import DERIVED

    assert DERIVED["modalities"] == ("neuromod", "modality_group", "invasive")
    # nothing correctable is left: no modality, no neuromodulation, invasiveness unclear (classify's rule)
    assert vocab.labels_from_modalities([]) == {"neuromod": False, "modality_group": [], "invasive": None}
    # TENS is a peripheral, non-invasive modality; SCS an implanted spinal one (seed 004)
    assert vocab.labels_from_modalities(["scs", "tens"]) == {
        "neuromod": True, "modality_group": ["spinal_cord", "peripheral"], "invasive": True}
