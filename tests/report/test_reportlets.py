"""Stage outputs written to relative folders (as users type them) still assemble into a full report."""

from __future__ import annotations

import warnings
from pathlib import Path

from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.report import ReportWarning, build_report, read_section


def test_relative_output_folders_keep_their_figures(tmp_path: Path, monkeypatch, data_root: Path):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["connectome", "map", "-o", "maps/pain", "--null", "depth-relabel",
                                 "--permutations", "50", "--data-dir", str(data_root)])
    assert result.exit_code == 0, result.output
    fixtures = sorted((data_root / "trials" / "ctgov_v2_json").glob("*.json"))
    result = runner.invoke(app, ["trials", "classify", *map(str, fixtures), "-o", "labels.csv", "--db", "t.duckdb"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["trials", "survey", "--db", "t.duckdb", "-o", "survey"])
    assert result.exit_code == 0, result.output
    for folder in ("maps/pain", "survey"):
        section = read_section(Path(folder) / "section.json")
        assert section.figures
        for figure in section.figures:
            assert not Path(figure.src).is_absolute() and (Path(folder) / figure.src).is_file(), figure.src
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReportWarning)  # nothing left out
        text = build_report([Path("survey"), Path("maps")], "report.html").read_text(encoding="utf-8")
    connectome = text[text.index('<section id="connectome"'):text.index('<section id="methods"')]
    assert connectome.count("data:image/png;base64,") == len(read_section(Path("maps/pain/section.json")).figures)
