"""The demo report as a reader sees it, in headless Chromium: sections, figures, tables that search
and sort, numbers traceable to tables, no console errors, no network."""

from __future__ import annotations

import csv
import re
from pathlib import Path

STAGES = ("trials", "literature", "evidence", "connectome")


def _csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_demo_reads_everything_from_its_data_folder(demo_run):
    """``neuromodmap demo --data-dir D`` takes every file from D: run with no NEUROMODMAP_DATA and
    an empty cache it downloads nothing (the evidence step's target sites once fetched the
    Hansen region table from GitHub)."""
    assert demo_run.downloads == []


def test_demo_prints_the_report_path_last(demo_run):
    out, output = demo_run
    assert output.strip().splitlines()[-1] == f"Report: {(out / 'report.html').resolve()}"


def test_the_six_parts_are_shown_in_order(page):
    ids = page.eval_on_selector_all("main > section", "els => els.map(e => e.id)")
    assert ids == ["overview", *STAGES, "methods"]
    for sid in ids:
        assert page.locator(f"section#{sid} > h2").is_visible()
    page.click("nav a[href='#connectome']")
    page.wait_for_function("() => document.querySelector('#connectome').getBoundingClientRect().top < 200")


def test_figures_load_and_have_captions(page):
    figures = page.eval_on_selector_all(
        "figure", "els => els.map(f => ({w: f.querySelector('img').naturalWidth, "
                  "stage: f.closest('section.nm-stage').id, caption: f.querySelector('figcaption').innerText}))")
    assert figures and all(f["w"] > 0 for f in figures)
    assert "not inlined" not in page.inner_text("body") and "Build notes" not in page.inner_text("#methods")
    assert all(re.match(r"Figure \d+\. \S", f["caption"]) for f in figures)
    tables = page.eval_on_selector_all("div.nm-table-block", "els => els.map(t => t.closest('section').id)")
    for stage in STAGES:
        assert sum(f["stage"] == stage for f in figures) >= 1, stage
        assert tables.count(stage) >= 1, stage


def test_evidence_reproduces_the_published_pooled_estimate(page):
    # Gaynes et al. 2011 (AHRQ CER 33), Figure 13: rTMS vs sham, response, MDD only, Tiers 1 and 2 pooled:
    # RR 2.18 (95% CI 1.47 to 3.22); Tier 1 2.82 (1.57 to 5.09); Tier 2 1.87 (1.23 to 2.84)
    card = page.inner_text("#overview .nm-card[data-stage=evidence]")
    assert "2.18 (1.47 to 3.22)" in card and "published 2.18 (1.47 to 3.22)" in card
    rows = page.locator("[id$='-reproduction'] tbody tr").all_inner_texts()
    published = {r.split("\t")[0]: r for r in rows}
    assert "2.82\t1.57 to 5.09\t2.82\t1.57 to 5.09" in published["Tier 1"]
    assert "1.87\t1.23 to 2.84\t1.87\t1.23 to 2.84" in published["Tier 2"]
    assert "2.18\t1.47 to 3.22\t2.18\t1.47 to 3.22" in published["overall"]


def test_no_console_errors_and_no_network(page):
    page.fill("#trials-survey-trials input[type=search]", "stimulation")
    page.click("#trials-survey-trials th:has-text('registry id')")
    assert page.page_errors == []
    assert [m for m in page.console_messages if m[0] in ("error", "warning")] == []
    assert page.remote_requests == []


def _matching(page, host: str) -> int:
    return int(page.get_attribute(host, "data-matching"))


def test_trials_table_searches_filters_and_sorts(page, demo_run):
    out, _ = demo_run
    rows = _csv(out / "trials" / "tables" / "neuromod_trials.csv")
    host = "#trials-survey-trials .nm-datatable"
    assert _matching(page, host) == len(rows) > 20
    assert page.locator(f"{host} tbody tr").count() == 25
    shown = [c for c in rows[0] if c != "registry_url"]

    def hits(word: str) -> int:
        return sum(any(word in r[c].lower() for c in shown) for r in rows)

    page.fill(f"{host} input[type=search]", "tdcs")
    expected = hits("tdcs")
    assert expected > 0
    page.wait_for_function(f"() => document.querySelector('{host}').dataset.matching === '{expected}'")
    assert page.locator(f"{host} tbody tr").count() == min(25, expected)
    for text in page.locator(f"{host} tbody tr").all_inner_texts():
        assert "tdcs" in text.lower()
    page.fill(f"{host} input[type=search]", "")
    page.select_option(f"{host} select[data-column=indication]", "pain")
    expected = sum("pain" == r["indication"] for r in rows)
    page.wait_for_function(f"() => document.querySelector('{host}').dataset.matching === '{expected}'")
    header = page.locator(f"{host} th", has_text="registry id")
    header.click()
    first = page.locator(f"{host} tbody tr td").first.inner_text()
    header.click()
    last = page.locator(f"{host} tbody tr td").first.inner_text()
    pain_ids = sorted(r["registry_id"] for r in rows if r["indication"] == "pain")
    assert (first, last) == (pain_ids[0], pain_ids[-1])
    # the registry id links to the registry's page
    href = page.locator(f"{host} tbody tr td a").first.get_attribute("href")
    assert href == next(r["registry_url"] for r in rows if r["registry_id"] == last)


def test_plain_tables_sort_numerically(page):
    table = "#trials-survey-modality table"
    page.click(f"{table} th:has-text('n_trials')")
    values = [int(v) for v in page.locator(f"{table} tbody tr td:nth-child(4)").all_inner_texts()]
    assert values == sorted(values) and len(values) > 3
    page.click(f"{table} th:has-text('n_trials')")
    values = [int(v) for v in page.locator(f"{table} tbody tr td:nth-child(4)").all_inner_texts()]
    assert values == sorted(values, reverse=True)


def test_literature_records_are_searchable(page, demo_run):
    out, _ = demo_run
    rows = _csv(out / "literature" / "prisma" / "records.csv")
    host = "#literature-prisma-records .nm-datatable"
    # one row per unique record of the 645 (shared/data SOURCES: ~271 after a crude DOI-or-title dedup;
    # the conservative de-duplicator leaves a few repository and online-first copies for review)
    assert _matching(page, host) == len(rows) and 265 <= len(rows) <= 285
    page.fill(f"{host} input[type=search]", "gambling harm")
    shown = [c for c in rows[0] if c not in ("record_id", "link")]
    expected = sum(all(any(w in r[c].lower() for c in shown) for w in ("gambling", "harm")) for r in rows)
    page.wait_for_function(f"() => document.querySelector('{host}').dataset.matching === '{expected}'")
    assert expected > 0
    # the links (errata, preprints...) and the pairs left for duplicate review are in the page too
    pairs = _csv(out / "literature" / "prisma" / "dedup_pairs.csv")
    assert pairs and _matching(page, "#literature-prisma-dedup_pairs .nm-datatable") == len(pairs)
    # the reader is told that this real search is about another topic, and why nothing is screened
    text = page.inner_text("#literature")
    assert "not a neuromodulation search" in text and "awaiting screening" in text


def test_every_overview_number_is_in_the_table_it_links_to(page):
    headlines = page.eval_on_selector_all(
        "#overview dd.nm-headline", "els => els.map(d => { const a = d.querySelector('a'); "
        "const href = a ? a.getAttribute('href') : ''; const t = href ? document.querySelector(href) : null; "
        "return {value: a ? a.innerText : d.innerText, target: t ? t.innerText : null}; })")
    assert len(headlines) >= 7
    for h in headlines:
        assert h["target"] is not None, h  # every number links to a table of the report
        target = h["target"].replace(",", "")
        numbers = re.findall(r"\d+(?:\.\d+)?", h["value"].replace(",", ""))
        for token in numbers or [h["value"]]:
            assert token in target, (token, h["value"])


def test_methods_name_every_stage_source_with_dates_and_the_software(page):
    methods = page.inner_text("#methods")
    for stage in ("Registered trials:", "Literature search and screening:", "Meta-analysis:",
                  "Connectomic mapping of targets:"):
        assert stage in methods
    # the run's own data: the first 15,000 corpus records, no AllPublicXML subset (--quick)
    assert "the first 15,000 records" in methods and "AllPublicXML" not in methods
    assert "(as of 2024-12-16)" in methods  # the herniated-disc export's versionHolder date (its SOURCES.md)
    assert "Gaynes BN" in methods and "Page MJ" in methods and "Lariviere S" in methods
    assert re.search(r"neuromodmap \d+\.\d+\.\d+, python 3\.\d+", methods)
