"""The trials API over a real store: filters, one trial with its evidence, corrections with their
audit trail, and the survey reading the corrections."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from neuromodmap.trials.store import TrialStore
from neuromodmap.trials.survey import survey


def _frame(db: Path) -> pd.DataFrame:
    """Labels and registry fields of every classified trial, read straight from the store."""
    with TrialStore(db, read_only=True) as store:
        return store.labels_df().merge(store.trials_df(), on="registry_id", how="left")


def _ids(client, query: str) -> list[str]:
    out, offset = [], 0
    while True:
        page = client.get(f"/api/trials?{query}&limit=500&offset={offset}").json()
        out += [it["registry_id"] for it in page["items"]]
        offset += 500
        if offset >= page["total"]:
            assert len(out) == page["total"]
            return out


def test_filters_select_the_same_trials_as_the_store_says(trials_db: Path, client_for):
    client = client_for(trials_db)
    df = _frame(trials_db)
    nm = df[df["neuromod"].fillna(False)]
    assert len(nm) > 30  # real neuromodulation trials among the imported records

    def has(col, codes):
        return nm[col].map(lambda v: v is not None and bool(set(v) & set(codes)))

    tms_dep = nm[has("modalities", ["tms"]) & (nm["indication"] == "depression")]
    assert sorted(_ids(client, "modality=tms&indication=depression")) == sorted(tms_dep["registry_id"])
    assert len(tms_dep) >= 2

    either = nm[has("modalities", ["tms", "tens"])]
    assert sorted(_ids(client, "modality=tms,tens")) == sorted(either["registry_id"])
    assert sorted(_ids(client, "modality=tms&modality=tens")) == sorted(either["registry_id"])

    grp = nm[has("modality_group", ["peripheral"]) & nm["invasive"].eq(False)]
    assert sorted(_ids(client, "modality_group=peripheral&invasive=non-invasive")) == sorted(grp["registry_id"])

    with TrialStore(trials_db, read_only=True) as store:
        every = store.trials_df()  # neuromod=any: classified or not

    def listed(frame, col, value):
        return frame[frame[col].map(lambda v: v is not None and value in list(v))]

    ph = listed(every, "phases", "PHASE2")
    assert sorted(_ids(client, "phase=phase2&neuromod=any")) == sorted(ph["registry_id"]) and len(ph) > 0
    turkey = listed(every, "countries", "Turkey")
    assert sorted(_ids(client, "country=turkey&neuromod=any")) == sorted(turkey["registry_id"]) and len(turkey) > 0
    both = listed(ph, "countries", "United States")
    assert sorted(_ids(client, "neuromod=any&phase=PHASE2&country=United States")) == sorted(both["registry_id"])

    assert client.get("/api/trials?neuromod=any&limit=1").json()["total"] == len(df) + _unlabelled(trials_db)


def _unlabelled(db: Path) -> int:
    with TrialStore(db, read_only=True) as store:
        return store.con.execute(
            "SELECT count(*) FROM trials WHERE registry_id NOT IN (SELECT registry_id FROM trial_labels)").fetchone()[0]


def test_text_search_finds_words_in_the_registry_text(trials_db: Path, client_for):
    client = client_for(trials_db)
    # NCT02586688's title (ClinicalTrials.gov): "Safety and Effectiveness of NeuroStar® Transcranial
    # Magnetic Stimulation (TMS) Therapy in Depressed Adolescents"
    ids = _ids(client, "q=neurostar adolescents")
    assert ids == ["NCT02586688"]
    # a LIKE wildcard is taken literally: unescaped, "neurostar%adolescents" would match that title
    assert _ids(client, "q=neurostar%25adolescents") == []
    assert _ids(client, "q=neurostar_transcranial") == []


def test_one_trial_carries_record_labels_and_evidence(trials_db: Path, client_for):
    client = client_for(trials_db)
    d = client.get("/api/trials/NCT02586688").json()
    assert d["record"]["title"].startswith("Safety and Effectiveness of NeuroStar")
    assert d["registry_url"] == "https://clinicaltrials.gov/study/NCT02586688"
    assert "tms" in d["labels"]["modalities"] and d["labels"]["indication"] == "depression"
    mods = [e for e in d["evidence"] if e["label"] == "modality"]
    assert mods and all(e["text"].lower() in " ".join(d["record"][e["field"]].split()).lower() for e in mods
                        if e["field"] in d["record"] and isinstance(d["record"][e["field"]], str))


def test_pagination_walks_the_whole_result_once(trials_db: Path, client_for):
    client = client_for(trials_db)
    total = client.get("/api/trials?limit=1").json()["total"]
    pages = [client.get(f"/api/trials?limit=7&offset={o}").json()["items"] for o in range(0, total, 7)]
    ids = [it["registry_id"] for p in pages for it in p]
    assert len(ids) == total == len(set(ids)) and ids == sorted(ids)


def test_a_correction_is_stored_with_its_trail_and_the_survey_uses_it(trials_db_copy: Path, client_for, tmp_path, csrf_headers):
    db = trials_db_copy
    before = survey(*_survey_inputs(db), tmp_path / "before")
    pain_before = _n(before.table("indication"), "indication", "pain")
    client = client_for(db)
    api_before = client.get("/api/trials?indication=pain").json()["total"]
    assert api_before == pain_before

    others = client.get("/api/trials?indication=other&limit=1").json()["items"]
    rid = others[0]["registry_id"]  # a neuromodulation trial the classifier gave no pain/depression label
    r = client.post(f"/api/trials/{rid}/labels", headers=csrf_headers(client),
                    json={"field": "indication", "value": "pain", "reviewer": "A. Reviewer", "note": "disc protrusion pain"})
    assert r.status_code == 201, r.text
    o = r.json()["override"]
    assert (o["field"], o["old_value"], o["new_value"], o["reviewer"], o["note"]) == \
        ("indication", "other", "pain", "A. Reviewer", "disc protrusion pain")
    assert o["created_at"].endswith("Z") and o["reverted_at"] is None

    assert client.get("/api/trials?indication=pain").json()["total"] == api_before + 1
    after = survey(*_survey_inputs(db), tmp_path / "after")
    assert _n(after.table("indication"), "indication", "pain") == pain_before + 1
    d = client.get(f"/api/trials/{rid}").json()
    assert d["labels"]["indication"] == "pain" and d["classifier_labels"]["indication"] == "other"
    assert d["labels"]["corrected"] == ["indication"]

    hist = client.get(f"/api/trials/{rid}/history").json()["items"]
    assert [h["override_id"] for h in hist] == [o["override_id"]]
    r = client.post(f"/api/trials/{rid}/labels/{o['override_id']}/revert", headers=csrf_headers(client),
                    json={"reviewer": "B. Second", "note": "not a pain trial"})
    assert r.status_code == 200 and r.json()["override"]["reverted_by"] == "B. Second"
    assert client.get("/api/trials?indication=pain").json()["total"] == api_before
    again = survey(*_survey_inputs(db), tmp_path / "again")
    assert _n(again.table("indication"), "indication", "pain") == pain_before
    hist = client.get(f"/api/trials/{rid}/history").json()["items"]
    assert len(hist) == 1 and hist[0]["reverted_at"] is not None  # kept, marked reverted
    r = client.post(f"/api/trials/{rid}/labels/{o['override_id']}/revert", headers=csrf_headers(client),
                    json={"reviewer": "B. Second"})
    assert r.status_code == 409


def test_list_corrections_and_a_later_correction_wins(trials_db_copy: Path, client_for, csrf_headers):
    client = client_for(trials_db_copy)
    rid = "NCT02586688"
    h = csrf_headers(client)
    assert client.post(f"/api/trials/{rid}/labels", headers=h,
                       json={"field": "modalities", "value": "tms,tdcs", "reviewer": "a"}).status_code == 201
    second = client.post(f"/api/trials/{rid}/labels", headers=h,
                         json={"field": "modalities", "value": ["tdcs"], "reviewer": "b"}).json()["override"]
    assert second["old_value"] == ["tms", "tdcs"] and second["new_value"] == ["tdcs"]
    assert client.get(f"/api/trials/{rid}").json()["labels"]["modalities"] == ["tdcs"]
    assert rid in _ids(client, "modality=tdcs") and rid not in _ids(client, "modality=tms")
    client.post(f"/api/trials/{rid}/labels/{second['override_id']}/revert", headers=h, json={"reviewer": "b"})
    assert client.get(f"/api/trials/{rid}").json()["labels"]["modalities"] == ["tms", "tdcs"]
    assert client.post(f"/api/trials/{rid}/labels", headers=h,
                       json={"field": "invasive", "value": None, "reviewer": "a"}).status_code == 201
    assert rid in _ids(client, "invasive=unclear")


def _survey_inputs(db: Path):
    with TrialStore(db, read_only=True) as store:
        return store.trials_df(), store.labels_df()


def _n(table: pd.DataFrame, col: str, value: str) -> int:
    row = table[table[col] == value]
    return int(row["n_trials"].iloc[0]) if len(row) else 0


@pytest.mark.parametrize("body,status,words", [
    ({"field": "indication", "value": "painful", "reviewer": "a"}, 400, "unknown indication value 'painful'"),
    ({"field": "colour", "value": "red", "reviewer": "a"}, 400, "unknown label field 'colour'"),
    ({"field": "modalities", "value": ["tms", "magic"], "reviewer": "a"}, 400, "'magic'"),
    ({"field": "neuromod", "value": "maybe", "reviewer": "a"}, 400, "neuromod must be true or false"),
    ({"field": "modalities", "value": 42, "reviewer": "a"}, 400, "list of codes"),
    ({"field": "indication", "value": "pain", "reviewer": "  "}, 400, "reviewer"),
    ({"field": "indication", "value": "pain"}, 422, "reviewer: Field required"),
    ({"field": "indication", "value": "pain", "reviewer": "a", "extra": 1}, 422, "extra"),
])
def test_bad_corrections_are_4xx_and_change_nothing(trials_db_copy: Path, client_for, body, status, words, csrf_headers):
    client = client_for(trials_db_copy)
    before = _store_state(trials_db_copy)
    r = client.post("/api/trials/NCT02586688/labels", json=body, headers=csrf_headers(client))
    assert r.status_code == status and words in r.json()["detail"], r.text
    assert _store_state(trials_db_copy) == before


def test_malformed_json_unknown_trial_and_bad_paging_are_4xx(trials_db_copy: Path, client_for, csrf_headers):
    client = client_for(trials_db_copy)
    before = _store_state(trials_db_copy)
    h = {**csrf_headers(client), "content-type": "application/json"}
    for content in (b'{"field": "indication", "value": ', b"[1, 2]", b"null", "\udcff".encode("utf-8", "surrogatepass")):
        r = client.post("/api/trials/NCT02586688/labels", content=content, headers=h)
        assert 400 <= r.status_code < 500, (content, r.status_code, r.text)
        assert r.json()["detail"]
    r = client.post("/api/trials/NCT99999999/labels", headers=h,
                    json={"field": "indication", "value": "pain", "reviewer": "a"})
    assert r.status_code == 404 and "no trial 'NCT99999999'" in r.json()["detail"]
    assert client.get("/api/trials/NCT99999999").status_code == 404
    assert client.get("/api/trials/NCT99999999/history").status_code == 404
    for q in ("limit=0", "limit=100000", "offset=-1", "limit=abc", "start_year=20x5", "invasive=perhaps",
              "modality=magic", "nonsense=1", "neuromod=sometimes"):
        r = client.get(f"/api/trials?{q}")
        assert r.status_code == 400 and r.json()["detail"], q
    assert client.get("/trials?modality=magic").status_code == 400
    assert _store_state(trials_db_copy) == before


def _store_state(db: Path):
    with TrialStore(db, read_only=True) as store:
        labels = store.labels_df()
        n = store.con.execute("SELECT count(*) FROM trial_label_overrides").fetchone()[0] \
            if "trial_label_overrides" in {r[0] for r in store.con.execute("SHOW TABLES").fetchall()} else 0
    return n, labels.drop(columns=["classified_at"]).to_json()


def test_a_store_from_an_older_version_is_served(trials_db_copy: Path, client_for):
    """A store written before a column was added (here: arm groups) still shows its trials."""
    import duckdb

    con = duckdb.connect(str(trials_db_copy))
    con.execute("ALTER TABLE trials DROP COLUMN arm_groups")
    con.close()
    client = client_for(trials_db_copy)
    assert client.get("/trials/NCT02586688").status_code == 200
    assert client.get("/api/trials/NCT02586688").json()["record"]["arm_groups"] == []


def test_the_prisma_register_count_uses_corrections(trials_db_copy: Path, client_for, csrf_headers):
    import duckdb

    from neuromodmap.literature.prisma import register_trials

    def registered() -> set[str]:
        con = duckdb.connect(str(trials_db_copy), read_only=True)
        try:
            return set(register_trials(con, question="depression")["registry_id"])
        finally:
            con.close()

    before = registered()
    assert "NCT02586688" in before
    client = client_for(trials_db_copy)
    r = client.post("/api/trials/NCT02586688/labels", headers=csrf_headers(client),
                    json={"field": "neuromod", "value": False, "reviewer": "a"})
    assert r.status_code == 201
    client.close()  # the app lets go of the store
    assert registered() == before - {"NCT02586688"}
