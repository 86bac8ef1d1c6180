"""Evidence and connectome pages in headless Chromium: the shipped Gaynes 2011 sheet pooled with its
forest and funnel plots, an uploaded sheet with a bad cell refused, the target catalogue and the
nilearn viewers working offline."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


@pytest.fixture()
def base(tmp_path: Path, live_url) -> str:
    from neuromodmap.webapp import create_app

    return live_url(create_app(tmp_path / "trials.duckdb"))


def test_pooled_results_forest_and_funnel_of_a_shipped_sheet(base, page_for) -> None:
    page = page_for(base)
    page.goto(f"{base}/evidence")
    page.select_option("#nm-pick select[name=dataset]", "gaynes2011_fig13")
    page.click("#nm-pick button[type=submit]")
    page.wait_for_selector("#nm-pooled")
    assert "dataset=gaynes2011_fig13" in page.url  # an addressable view
    # Gaynes et al. 2011 (AHRQ CER 33), Figure 13, rTMS vs sham response: Tier 1 RR 2.82 (1.57 to 5.09),
    # Tier 2 RR 1.87 (1.23 to 2.84), each pooled within its tier (REML)
    tier1 = page.inner_text("#nm-pooled tr[data-subgroup='Tier 1']")
    tier2 = page.inner_text("#nm-pooled tr[data-subgroup='Tier 2']")
    assert "2.82" in tier1 and "1.57 to 5.09" in tier1
    assert "1.87" in tier2 and "1.23 to 2.84" in tier2
    for figure in ("#nm-forest", "#nm-funnel"):
        assert page.eval_on_selector(figure, "img => img.naturalWidth") > 300
    assert "DerSimonian" in page.inner_text("body") or "REML" in page.inner_text("body")
    assert page.page_errors == [] and page.remote_requests == []


def test_an_uploaded_sheet_is_pooled_and_a_bad_cell_named(base, page_for, tmp_path: Path) -> None:
    from neuromodmap.evidence import datasets

    good = datasets.dataset_path("gaynes2011_fig10")
    with open(good, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    rows[1][rows[0].index("effect")] = "<b>n/a</b>"  # the first study's RR
    bad = tmp_path / "my_sheet.csv"
    with open(bad, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    page = page_for(base)
    page.goto(f"{base}/evidence")
    page.set_input_files("#nm-upload input[type=file]", str(good))
    page.select_option("#nm-upload select[name=measure]", "RR")
    page.select_option("#nm-upload select[name=by]", "subgroup")
    page.click("#nm-upload button[type=submit]")
    page.wait_for_selector("#nm-pooled")
    # Gaynes 2011 Figure 10, Tier 1 trials, MDD/bipolar mix: RR 5.38 (1.88 to 15.46), pooled by the report
    # from the trials' counts; pooled here from the figure's 2-decimal RRs and CIs, so within 1 %
    rr = float(page.inner_text("#nm-pooled tr[data-subgroup='MDD/bipolar mix'] .nm-bt"))
    lb, ub = (float(x) for x in page.inner_text("#nm-pooled tr[data-subgroup='MDD/bipolar mix'] .nm-bt-ci").split(" to "))
    assert rr == pytest.approx(5.38, rel=0.01)
    assert lb == pytest.approx(1.88, rel=0.01) and ub == pytest.approx(15.46, rel=0.01)
    page.goto(f"{base}/evidence")
    page.set_input_files("#nm-upload input[type=file]", str(bad))
    page.select_option("#nm-upload select[name=measure]", "RR")
    page.click("#nm-upload button[type=submit]")
    page.wait_for_selector("#nm-ev-error")
    error = page.inner_text("#nm-ev-error")
    assert "my_sheet.csv: 1 bad cell(s), nothing was pooled" in error
    assert "row 2, column effect" in error and "<b>n/a</b>" in error  # shown as text, not markup
    assert page.locator("#nm-ev-error li b").count() == 0
    assert page.page_errors == [] and page.remote_requests == []


def test_catalogue_and_offline_brain_viewers(base, page_for) -> None:
    from neuromodmap.connectome import target_catalogue

    catalogue = target_catalogue()
    page = page_for(base)
    page.goto(f"{base}/connectome")
    assert page.locator("#nm-catalogue tbody tr").count() == len(catalogue)
    row = page.inner_text("#nm-catalogue tr[data-id='dlpfc_ba9_left']")
    ba9 = catalogue.set_index("id").loc["dlpfc_ba9_left"]
    assert f"{ba9.x:.1f}, {ba9.y:.1f}, {ba9.z:.1f}" in row
    markers = page.frame_locator("#nm-markers")
    markers.locator(".plotly, .js-plotly-plot").first.wait_for(timeout=60000)
    page.select_option("select[name=map]", "target:dlpfc_ba9_left")
    page.wait_for_url("**/connectome?map=target*")
    brain = page.frame_locator("#nm-map")
    brain.locator("canvas").first.wait_for(timeout=60000)
    page.wait_for_timeout(500)
    assert page.page_errors == []
    assert page.remote_requests == []  # nilearn's JavaScript is inlined and its favicon link removed


def test_evidence_and_connectome_api_answer_bad_input_with_4xx(tmp_path: Path, client_for) -> None:
    from neuromodmap.evidence import datasets

    client = client_for(tmp_path / "trials.duckdb")
    assert client.get("/api/evidence/meta", params={"dataset": "nope"}).status_code == 404
    assert client.get("/api/evidence/meta", params={"dataset": "gaynes2011_fig13", "by": "bogus"}).status_code == 422
    assert client.get("/api/evidence/meta", params={"dataset": "gaynes2011_fig13", "method": "XX"}).status_code == 422
    client.get("/api/csrf")
    headers = {"X-CSRF-Token": client.cookies["nm_csrf"]}
    sheet = datasets.dataset_path("gaynes2011_fig13").read_bytes()
    assert client.post("/api/evidence/meta", files={"sheet": ("s.csv", sheet, "text/csv")},
                       data={"measure": "RR"}).status_code == 403  # no CSRF token
    cases = [(("s.exe", sheet), 422), (("s.csv", b""), 422), (("s.csv", b"\x89PNG\r\n\x1a\n\x00\x00"), 422),
             (("s.xlsx", b"PK\x03\x04 not a workbook"), 422), (("s.csv", b"study_id,effect\n"), 422)]
    for (name, content), status in cases:
        response = client.post("/api/evidence/meta", files={"sheet": (name, content, "text/csv")},
                               data={"measure": "RR"}, headers=headers)
        assert response.status_code == status, name
        assert name in response.json()["detail"]
    ok = client.post("/api/evidence/meta", files={"sheet": ("s.csv", sheet, "text/csv")},
                     data={"measure": "RR", "by": "subgroup"}, headers=headers).json()
    tier1 = next(r for r in ok["pooled"] if r["subgroup"] == "Tier 1")
    # Gaynes et al. 2011, Figure 13: Tier 1 RR 2.82 (1.57 to 5.09)
    assert round(tier1["estimate_bt"], 2) == 2.82 and round(tier1["ci_lb_bt"], 2) == 1.57
    assert client.get("/connectome/viewer/map", params={"map": "<script>"}).status_code == 422
    assert client.get("/connectome/viewer/map", params={"map": "target:no_such_target"}).status_code == 404
    maps = client.get("/api/connectome/maps").json()["maps"]
    assert {"id": "group:depth:deep", "label": maps[[m["id"] for m in maps].index("group:depth:deep")]["label"]} in maps
    targets = client.get("/api/connectome/targets").json()
    assert targets["total"] == len(targets["items"]) > 20
