"""The trials pages in a real headless Chromium against a real uvicorn server: filter, open a
trial and see its evidence highlighted, correct a label and see the survey count change."""

from __future__ import annotations

from pathlib import Path

import httpx

from neuromodmap.webapp import create_app


def _bar(page, key: str, value: str) -> int:
    sel = f"#survey section[data-key='{key}'] .nm-bar-row[data-value='{value}']"
    return int(page.get_attribute(sel, "data-n")) if page.locator(sel).count() else 0


def _total(page) -> int:
    return int(page.get_attribute("#total", "data-total"))


def test_filter_the_trials_with_the_form(trials_db: Path, live_url, page_for):
    url = live_url(create_app(trials_db))
    api = httpx.Client(base_url=url)
    page = page_for(url)
    page.goto(url + "/trials")
    everything = _total(page)
    assert everything == api.get("/api/trials?limit=1").json()["total"] > 30

    with page.expect_response(lambda r: "/trials?" in r.url and r.status == 200):
        page.select_option("#f-modality", "tms")
    page.wait_for_function("() => location.search.includes('modality=tms')")
    tms = api.get("/api/trials?modality=tms&limit=500").json()
    page.wait_for_function(f"() => document.querySelector('#total').dataset.total === '{tms['total']}'")
    assert 0 < tms["total"] < everything
    shown = page.eval_on_selector_all("#trials-table tbody tr[data-id]", "rs => rs.map(r => r.dataset.id)")
    assert shown == [it["registry_id"] for it in tms["items"]][:50]
    assert _bar(page, "modality", "tms") == tms["total"]  # every trial of the view is a TMS trial

    with page.expect_response(lambda r: "indication=depression" in r.url):
        page.select_option("#f-indication", "depression")
    both = api.get("/api/trials?modality=tms&indication=depression").json()["total"]
    page.wait_for_function(f"() => document.querySelector('#total').dataset.total === '{both}'")
    assert _bar(page, "indication", "depression") == both and _bar(page, "indication", "pain") == 0
    # the view is an address: reloading it shows the same filter
    page.reload()
    assert _total(page) == both and page.input_value("#f-indication") == "depression"
    assert page.page_errors == [] and page.remote_requests == []


def test_a_trial_page_highlights_the_words_behind_each_label(trials_db: Path, live_url, page_for):
    url = live_url(create_app(trials_db))
    page = page_for(url)
    page.goto(url + "/trials?modality=tms&indication=depression")
    first = page.locator("#trials-table tbody tr[data-id] a").first
    rid = first.inner_text()
    first.click()
    page.wait_for_url(f"**/trials/{rid}")
    d = httpx.get(f"{url}/api/trials/{rid}").json()
    marks = page.eval_on_selector_all("#record mark.nm-ev", "ms => ms.map(m => ({text: m.innerText, "
                                      "labels: m.dataset.labels, field: m.closest('[data-field]').dataset.field}))")
    assert any("modality" in m["labels"] for m in marks) and any("indication" in m["labels"] for m in marks)
    evidence = {(e["label"], e["field"], " ".join(e["text"].split()).lower()) for e in d["evidence"]}
    for m in marks:  # every mark is a piece of evidence, in the field it came from
        assert any(label in m["labels"].split() and field == m["field"] and " ".join(m["text"].split()).lower() == text
                   for label, field, text in evidence), m
    href = page.get_attribute("#registry-link", "href")
    assert href == f"https://clinicaltrials.gov/study/{rid}" and page.get_attribute("#registry-link", "rel") == "noopener noreferrer"
    assert page.page_errors == [] and page.remote_requests == []


def test_correct_a_label_and_see_the_survey_count_change(trials_db_copy: Path, live_url, page_for):
    url = live_url(create_app(trials_db_copy, token="browser-token"))
    page = page_for(url)
    page.goto(url + "/trials?token=browser-token")
    assert "token" not in page.url  # the token went into a cookie
    pain_before, other_before = _bar(page, "indication", "pain"), _bar(page, "indication", "other")
    api = httpx.Client(base_url=url, headers={"Authorization": "Bearer browser-token"})
    rid = api.get("/api/trials?indication=other&limit=1").json()["items"][0]["registry_id"]

    page.goto(f"{url}/trials/{rid}")
    page.select_option("#c-field", "indication")
    page.fill("#c-value", "pain")
    page.fill("#c-reviewer", "Dr Browser")
    page.fill("#c-note", "pain is the primary outcome")
    with page.expect_navigation():
        page.click("#correct-form button[type=submit]")
    row = page.locator("#labels tr[data-field='indication']")
    assert "pain" in row.locator(".nm-value").inner_text() and "corrected" in row.inner_text()
    hist = page.locator("#history tbody tr").first.inner_text()
    assert "Dr Browser" in hist and "pain is the primary outcome" in hist and "other" in hist

    page.goto(url + "/trials")
    assert _bar(page, "indication", "pain") == pain_before + 1
    assert _bar(page, "indication", "other") == other_before - 1

    # a bad value is refused on the page and changes nothing
    page.goto(f"{url}/trials/{rid}")
    page.select_option("#c-field", "modalities")
    page.fill("#c-value", "tms, telepathy")
    page.click("#correct-form button[type=submit]")
    page.wait_for_selector("#form-error")
    assert "telepathy" in page.inner_text("#form-error")
    assert len(api.get(f"/api/trials/{rid}/history").json()["items"]) == 1

    # revert: the count goes back
    page.fill("#history form.nm-revert input[name=reviewer]", "Dr Second")
    with page.expect_navigation():
        page.click("#history form.nm-revert button")
    assert "reverted" in page.locator("#history tbody tr").first.inner_text()
    page.goto(url + "/trials")
    assert _bar(page, "indication", "pain") == pain_before
    assert page.page_errors == [] and page.remote_requests == []


def test_hostile_text_does_not_run(hostile, live_url, page_for):
    HOSTILE_ID = hostile.id  # noqa: N806
    url = live_url(create_app(hostile.db))
    page = page_for(url)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{url}/trials/{HOSTILE_ID}")
    page.goto(f"{url}/trials?q=pwned")
    page.goto(f"{url}/trials/{HOSTILE_ID}")
    assert page.evaluate("() => window.__pwned === undefined") and dialogs == []
    assert "<script>window.__pwned = 1</script>" in page.inner_text("#trial-title")
    assert page.locator("#record mark.nm-ev").count() >= 1
