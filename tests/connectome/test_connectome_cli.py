"""`neuromodmap connectome ...` commands: outputs and clear errors without tracebacks."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app

runner = CliRunner()


@pytest.fixture()
def env(data_root, monkeypatch):
    monkeypatch.setenv("NEUROMODMAP_DATA", str(data_root))
    monkeypatch.setenv("COLUMNS", "200")


def test_targets_lists_and_exports(env, tmp_path):
    result = runner.invoke(app, ["connectome", "targets", "-o", str(tmp_path / "cat.csv"), "--indication", "pain"])
    assert result.exit_code == 0, result.output
    cat = pd.read_csv(tmp_path / "cat.csv")
    assert set(cat.indication) == {"pain", "both"} and "pag" in set(cat.id)
    shown = runner.invoke(app, ["connectome", "targets"])
    assert shown.exit_code == 0 and "dlpfc_ba46_left" in shown.output


def test_targets_lists_the_deep_targets_with_citations(env):
    shown = runner.invoke(app, ["connectome", "targets", "--indication", "pain"])
    assert shown.exit_code == 0, shown.output
    for row_id in ("thalamus_vpl_left", "thalamus_vpm_right", "thalamus_cmpf_left", "pag"):
        line = next(x for x in shown.output.splitlines() if f" {row_id} " in x)
        assert "atlas_centroid" in line and ("doi:10.1002/cne.24080" in line or "Hansen J.Y." in line), line
    assert "habenula_left" not in shown.output and "bnst_right" not in shown.output
    depression = runner.invoke(app, ["connectome", "targets", "--indication", "depression"])
    assert "habenula_left" in depression.output and "bnst_right" in depression.output
    assert "thalamus_vpl_left" not in depression.output
    assert "Left out" in depression.output and "slMFB" in depression.output and "PVG" in depression.output
    bad = runner.invoke(app, ["connectome", "targets", "--indication", "ocd"])
    assert bad.exit_code == 2 and "--indication must be pain or depression" in bad.output


def test_map_writes_the_output_folder(env, tmp_path):
    sites = tmp_path / "t.csv"
    sites.write_text("id,x,y,z,depth\nm1,-41,-7,45,superficial\ninsula,38,0,-1,superficial\n"
                     "thal,-14,-26,2,deep\nnacc,8,11,-10,deep\nfar,0,-34,-40,deep\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["connectome", "map", "--targets", str(sites), "--radius", "6",
                                 "--connectome", "enigma-schaefer200", "--n-null", "20", "--no-figures", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "skipped far" in result.output and "hansen-brainstem" in result.output
    profiles = pd.read_csv(out / "profiles.csv", index_col=0)
    assert profiles.shape == (4, 214)
    assert (out / "connectome.html").is_file() and (out / "targets_skipped.csv").is_file()


def test_site_to_seed_and_search(env, tmp_path):
    sites = tmp_path / "sites.csv"
    sites.write_text("id,x,y,z,clinic\nba46,-44,40,29,A\nfive_cm,-41,16,54,B\n")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["connectome", "site-to-seed", str(sites), "--seed", "6,16,-10", "--radius", "10",
                                 "--search", "dlpfc_left", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert table.columns[:5].tolist() == ["id", "x", "y", "z", "clinic"]
    assert table.set_index("id").connectivity["ba46"] < table.set_index("id").connectivity["five_cm"]
    ranked = pd.read_csv(tmp_path / "out.search.csv")
    assert ranked.connectivity.is_monotonic_increasing


@pytest.mark.parametrize(("args", "message"), [
    (["connectome", "site-to-seed", "EMPTY", "--seed", "6,16,-10"], "the file is empty"),
    (["connectome", "site-to-seed", "EMPTY", "--seed", "6,16"], "--seed must be three numbers"),
    (["connectome", "site-to-seed"], "give a SITES.csv"),
    (["connectome", "map", "--targets", "EMPTY", "-o", "OUT"], "the file is empty"),
    (["connectome", "map", "--connectome", "nope", "-o", "OUT"], "unknown connectome 'nope'"),
    (["connectome", "map", "--radius", "-3", "-o", "OUT"], "--radius must be between"),
    (["connectome", "site-to-seed", "--search", "(unclosed"], "valid label pattern"),
])
def test_errors_are_one_clear_line(env, tmp_path, args, message):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    args = [str(empty) if a == "EMPTY" else str(tmp_path / "o") if a == "OUT" else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    # each on its own: "A and B or C" would read "(A and B) or C" and pass whatever the output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1, result.output  # one line (COLUMNS=200 in env)
