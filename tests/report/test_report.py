"""The report assembler: anchors and order, escaping, safe JSON, files inlined only from their folder."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.report import (
    Block,
    Figure,
    Headline,
    ReportWarning,
    Section,
    SectionError,
    Table,
    build_report,
    json_for_script,
    read_section,
)

# a real PNG: the smallest valid 1x1 image (IHDR, IDAT, IEND with their CRCs)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
EVIL = "</script><script>alert(1)</script><!-- <img src=x onerror=alert(2)>"


def _section(folder: Path, stage: str = "trials", sid: str = "trials-test", **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fig.png").write_bytes(PNG)
    (folder / "t.csv").write_text("registry_id,url,title\nNCT1,https://clinicaltrials.gov/study/NCT1,a title\n"
                                  "NCT2,javascript:alert(1),second\n", encoding="utf-8")
    defaults = dict(
        stage=stage, id=sid, title="Test section",
        headlines=[Headline(label="trials", value="2", table="list")],
        figures=[Figure(id="fig", src="fig.png", caption="A figure.")],
        tables=[Table(id="list", title="Trial list", csv="t.csv", searchable=True, links={"registry_id": "url"})],
        methods="Methods text.\n\n- first reference\n- second reference",
    )
    defaults.update(kwargs)
    return Section(**defaults).write(folder)


def test_anchors_in_fixed_order_and_missing_stages_say_so(tmp_path: Path):
    _section(tmp_path / "c", stage="connectome", sid="connectome-x")
    _section(tmp_path / "t", stage="trials", sid="trials-x")
    out = build_report([tmp_path / "c", tmp_path / "t"], tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    ids = re.findall(r'<section id="([a-z]+)"', text)
    assert ids == ["overview", "trials", "literature", "evidence", "connectome", "methods"]
    evidence = text[text.index('<section id="evidence"'):text.index('<section id="connectome"')]
    assert "No meta-analysis section among the inputs" in evidence
    # numbered figures and tables, with captions
    assert "Figure 1.</span> A figure." in text and "Figure 2.</span> A figure." in text
    assert text.count("data:image/png;base64,") == 2


def test_text_is_escaped_and_json_cannot_close_its_script(tmp_path: Path):
    folder = tmp_path / "s"
    _section(folder, title=EVIL, summary=EVIL,
             tables=[Table(id="list", title=EVIL, columns=["a", "b"], rows=[[EVIL, 1]], searchable=True),
                     Table(id="plain", title="plain", columns=["a"], rows=[[EVIL]])],
             blocks=[Block(kind="text", text=EVIL), Block(kind="list", items=[EVIL])],
             headlines=[Headline(label=EVIL, value=EVIL, table="list")])
    text = build_report([folder], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in text
    assert "<img src=x" not in text and "<!--" not in text
    assert text.count("<script") == 2  # the JSON data block and the table script
    data = re.search(r'<script type="application/json" id="([^"]+)">(.*?)</script>', text, re.S)
    assert data is not None
    spec = json.loads(data.group(2))
    assert spec["rows"][0][0] == EVIL  # the browser gets the text back exactly
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in text


@given(st.text())
def test_json_for_script_round_trips_and_never_holds_markup(value: str):
    encoded = json_for_script({"v": value})
    assert json.loads(encoded) == {"v": value}
    assert "<" not in encoded and ">" not in encoded and "&" not in encoded


def test_links_only_http(tmp_path: Path):
    folder = tmp_path / "s"
    _section(folder, tables=[Table(id="list", title="t", csv="t.csv", links={"registry_id": "url"})])
    text = build_report([folder], tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<a href="https://clinicaltrials.gov/study/NCT1" rel="noopener noreferrer">NCT1</a>' in text
    assert "javascript:" not in text
    # the URL column itself is not shown
    assert "<th scope=\"col\">url</th>" not in text


@pytest.mark.parametrize("ref", ["../../../../../../etc/passwd", "/etc/passwd", "../secret.png"])
def test_files_outside_the_section_folder_are_not_inlined(tmp_path: Path, ref: str):
    (tmp_path / "secret.png").write_bytes(PNG + b"SECRET-OUTSIDE")
    folder = tmp_path / "s"
    _section(folder, figures=[Figure(id="fig", src=ref, caption="x")],
             tables=[Table(id="list", title="t", csv=ref)])
    with pytest.warns(ReportWarning, match="not inlined"):
        text = build_report([folder], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "root:x:0:0" not in text
    assert base64.b64encode(PNG + b"SECRET-OUTSIDE").decode() not in text
    assert "figure fig not inlined" in text and "table list not inlined" in text


def test_symlink_out_of_the_folder_is_not_followed(tmp_path: Path):
    (tmp_path / "secret.csv").write_text("a\nSECRET-OUTSIDE\n")
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "link.csv").symlink_to(tmp_path / "secret.csv")
    _section(folder, tables=[Table(id="list", title="t", csv="link.csv")])
    with pytest.warns(ReportWarning):
        text = build_report([folder], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "SECRET-OUTSIDE" not in text


def test_legacy_pages_lose_scripts_and_remote_resources(tmp_path: Path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "a.png").write_bytes(PNG)
    (folder / "page.html").write_text(
        "<html><head><title>Old &amp; page</title><script src='https://cdn.example/x.js'></script></head><body>"
        "<h1 onclick=\"alert(1)\">Old</h1><img src=\"a.png\"><img src=\"../../../etc/passwd\">"
        "<img src=\"https://example.org/t.png\"><script>alert(3)</script><a href=\"https://example.org\">x</a>"
        "</body></html>")
    text = build_report([folder], tmp_path / "r.html").read_text(encoding="utf-8")
    page = text[text.index('<section id="other"'):text.index('<section id="methods"')]
    assert "alert" not in page and "cdn.example" not in page and "https://example.org/t.png" not in page
    assert "data:image/png;base64," in page
    assert "root:x:0:0" not in text
    assert '<a href="https://example.org">x</a>' in page  # links stay links
    assert "Old &amp; page" in text


def test_no_network_resource_and_a_policy_that_forbids_one(tmp_path: Path):
    _section(tmp_path / "s")
    text = build_report([tmp_path / "s"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "default-src 'none'" in text
    for attr, value in re.findall(r'\b(src|href)="([^"]*)"', text):
        assert value.startswith(("data:", "#", "https://clinicaltrials.gov/")), (attr, value)


def test_headline_naming_a_missing_table_is_reported(tmp_path: Path):
    _section(tmp_path / "s", headlines=[Headline(label="x", value="1", table="nope")])
    with pytest.warns(ReportWarning, match="names table 'nope'"):
        text = build_report([tmp_path / "s"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "names table &#39;nope&#39;" in text


def test_bad_section_file_names_file_and_field(tmp_path: Path):
    path = tmp_path / "section.json"
    path.write_text(json.dumps({"format": "neuromodmap-section", "stage": "nowhere", "id": "x", "title": "t"}))
    with pytest.raises(SectionError, match=r"section\.json: field stage"):
        read_section(path)
    path.write_text("{not json")
    with pytest.raises(SectionError, match="cannot read"):
        read_section(path)
    result = CliRunner().invoke(app, ["report", "build", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert "cannot read" in result.output
    assert not (tmp_path / "r.html").exists()


def test_report_errors_name_the_path(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope"):
        build_report([tmp_path / "nope"], tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no section.json and no HTML"):
        build_report([tmp_path / "empty"], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_cli_build_prints_the_report_path_last(tmp_path: Path):
    _section(tmp_path / "s")
    result = CliRunner().invoke(app, ["report", "build", str(tmp_path / "s"), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == f"Report: {(tmp_path / 'r.html').resolve()}"
