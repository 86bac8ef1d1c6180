"""Two reviewers screen ten real records each with the keyboard in headless Chromium and see
Cohen's kappa, checked against scikit-learn on the decisions stored."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from neuromodmap.literature import open_store, read_records, save_import


@pytest.fixture(scope="module")
def adhd_review(tmp_path_factory, data_root: Path) -> Path:
    """Cohen et al. 2006 ADHD records (851, real PubMed titles and abstracts) in a review store."""
    path = tmp_path_factory.mktemp("screening") / "review.duckdb"
    con = open_store(path)
    save_import(con, read_records(data_root / "literature" / "labelled" / "Cohen_2006_ADHD.csv.gz"))
    con.close()
    return path


@pytest.fixture()
def review_copy(adhd_review: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "review.duckdb"
    shutil.copyfile(adhd_review, copy)
    return copy


@pytest.fixture(scope="module")
def labels(data_root: Path) -> dict[str, int]:
    """The published title/abstract decision of each ADHD record, by title."""
    frame = pd.read_csv(data_root / "literature" / "labelled" / "Cohen_2006_ADHD.csv.gz")
    return dict(zip(frame["title"].str.strip(), frame["label_abstract_screening"], strict=False))


def _screen(page, base: str, reviewer: str, keys: list[str]) -> list[str]:
    page.goto(f"{base}/screening?reviewer={reviewer}")
    seen = []
    for key in keys:
        record = page.locator("#nm-record")
        old = record.get_attribute("data-record-id")
        seen.append(old)
        page.keyboard.press(key)
        page.wait_for_function(
            "old => { const r = document.getElementById('nm-record');"
            " return r && r.dataset.recordId !== old && !document.body.dataset.busy; }", arg=old)
    return seen


def _keys_for(page, base, reviewer, labels, flip=()) -> list[str]:
    """Screen 10 records: include what the published labels include, except at the positions in ``flip``."""
    page.goto(f"{base}/screening?reviewer={reviewer}")
    pressed = []
    for i in range(10):
        title = page.inner_text("#nm-record .nm-screen-title").strip()
        label = labels.get(title)
        assert label is not None, title  # the page shows the real record's title, unchanged
        key = "i" if label == 1 else "e"
        if i in flip:
            key = flip[i]
        old = page.get_attribute("#nm-record", "data-record-id")
        page.keyboard.press(key)
        page.wait_for_function(
            "old => { const r = document.getElementById('nm-record');"
            " return r && r.dataset.recordId !== old && !document.body.dataset.busy; }", arg=old)
        pressed.append(key)
    return pressed


def test_two_reviewers_screen_with_the_keyboard_and_see_kappa(review_copy, tmp_path, live_url, page_for, labels):
    from neuromodmap.webapp import create_app

    base = live_url(create_app(tmp_path / "trials.duckdb", review_copy))
    page = page_for(base)
    failed = []
    page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
    page.goto(f"{base}/screening?reviewer=Ana")
    # the criteria beside the record, the review-question terms highlighted, the stopping rule stated
    criteria = page.inner_text("#nm-criteria")
    assert criteria.startswith("Criteria (seed-000)") and "review question" in criteria  # the default profile
    assert page.locator("#nm-record mark.nm-ev").count() >= 1
    assert "recall target 95 %" in page.inner_text("#nm-stop")

    _keys_for(page, base, "Ana", labels)
    # Ben disagrees twice and is unsure once; then undoes his last vote and votes again
    _keys_for(page, base, "Ben", labels, flip={1: "m", 3: "i", 6: "e"})
    before = page.inner_text("#nm-progress")
    assert "Ben" in before and "Ana" in before
    old = page.get_attribute("#nm-record", "data-record-id")
    page.keyboard.press("u")
    page.wait_for_function("old => document.getElementById('nm-record').dataset.recordId !== old"
                           " && !document.body.dataset.busy", arg=old)
    page.keyboard.press("e")
    page.wait_for_function("() => !document.body.dataset.busy")
    page.wait_for_timeout(300)

    with duckdb.connect(str(review_copy), read_only=True) as con:
        votes = con.execute("SELECT record_id, reviewer, decision FROM literature_screening_votes "
                            "WHERE undone_at IS NULL ORDER BY vote_id").df()
        undone = con.execute("SELECT count(*) FROM literature_screening_votes WHERE undone_at IS NOT NULL").fetchone()[0]
        stamped = con.execute("SELECT count(*) FROM literature_screening_votes WHERE decided_at IS NULL").fetchone()[0]
    assert undone == 1 and stamped == 0
    assert (votes["reviewer"] == "Ana").sum() == 10 and (votes["reviewer"] == "Ben").sum() == 10
    wide = votes.pivot(index="record_id", columns="reviewer", values="decision").dropna()
    expected = cohen_kappa_score(wide["Ana"], wide["Ben"], labels=["include", "exclude", "maybe"])
    agreement = (wide["Ana"] == wide["Ben"]).mean() * 100

    page.reload()
    cell = page.locator("#nm-agreement tr[data-pair='Ana|Ben'] .nm-kappa")
    assert float(cell.get_attribute("data-kappa")) == pytest.approx(expected)
    assert cell.inner_text() == f"{expected:.3f}"
    assert page.inner_text("#nm-agreement tr[data-pair='Ana|Ben'] .nm-pct") == f"{agreement:.1f}"
    assert page.inner_text("#nm-agreement tr[data-pair='Ana|Ben'] td:nth-child(2)") == str(len(wide))
    # the records they disagree on are listed for resolution
    n_conflicts = int((wide["Ana"] != wide["Ben"]).sum() + ((wide["Ana"] == "maybe") & (wide["Ben"] == "maybe")).sum())
    assert n_conflicts >= 1
    page.click("text=Conflicts")
    assert page.locator(".nm-conflict").count() == n_conflicts
    first = page.locator(".nm-conflict").first
    rid = first.get_attribute("data-record-id")
    first.locator("input[name=reviewer]").fill("Cleo")
    first.locator("input[name=note]").fill("<b>no sham</b>")
    first.locator("button[value=exclude]").click()
    page.wait_for_selector(f".nm-conflict[data-record-id='{rid}'] .nm-resolution")
    assert "Resolved: exclude by Cleo (<b>no sham</b>)" in page.inner_text(f".nm-conflict[data-record-id='{rid}']")
    assert page.page_errors == [] and page.remote_requests == []
    # every request of the pages answered (the browser's own favicon request aside)
    assert [f for f in failed if not f[1].endswith("/favicon.ico")] == []
