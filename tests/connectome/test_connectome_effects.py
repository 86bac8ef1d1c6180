"""Pooled effects per target on the connectome side: read, attached to targets, listed and drawn.

The effects are the real ones the evidence stage pools from the shipped Gaynes 2011 data (AHRQ CER 33,
Figure 13 RRs; trial sites from the trials' abstracts, see src/neuromodmap/evidence/data/SOURCES.md). The
left-DLPFC pooled RR is checked against R metafor 3.8-1 (tests/evidence/reference/gaynes2011_metafor.json);
Kauffmann 2004, the only right-DLPFC trial, carries its published RR 1.43 (0.41 to 4.99).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.connectome import (
    TargetsFileError,
    attach_target_effects,
    map_targets,
    plot_target_effects,
    read_target_effects,
    target_catalogue,
)
from neuromodmap.evidence import datasets, run_meta

REF = json.loads((Path(__file__).parents[1] / "evidence" / "reference" / "gaynes2011_metafor.json").read_text())
LEFT_RR = math.exp(REF["fig13"]["by_target"]["dlpfc_left"]["beta"])  # metafor REML, 3 left-DLPFC trials
runner = CliRunner()


@pytest.fixture(scope="module")
def meta_out(tmp_path_factory):
    """`evidence meta --by target` on the shipped sheet: pooled.csv and by_target.csv."""
    out = tmp_path_factory.mktemp("meta")
    report = run_meta(datasets.dataset_path("gaynes2011_fig13"), measure="RR", by="target", skip_invalid=True,
                      figures=False)
    report.write(out)
    return out


def test_reads_evidence_meta_pooled_csv(meta_out):
    eff = read_target_effects(meta_out / "pooled.csv")
    # pooled.csv has the subgroups pooled with k >= 2 and an overall row, which is left out
    assert list(eff["target"]) == ["dlpfc_left"]
    row = eff.iloc[0]
    assert row.k == 3 and abs(row.effect - LEFT_RR) < 1e-4 and row.scale == "RR"
    assert row.ci_lb < row.effect < row.ci_ub


def test_reads_by_target_csv_with_single_study_targets(meta_out):
    eff = read_target_effects(meta_out / "by_target.csv").set_index("target")
    assert set(eff.index) == {"dlpfc_left", "dlpfc_right"}
    assert abs(eff.loc["dlpfc_left", "effect"] - LEFT_RR) < 1e-4
    right = eff.loc["dlpfc_right"]
    assert (round(right.effect, 2), round(right.ci_lb, 2), round(right.ci_ub, 2), right.k) == (1.43, 0.41, 4.99, 1)


@pytest.mark.parametrize("cells, message", [
    ({"subgroup": "nowhere"}, r"row 2, column subgroup: unknown target code 'nowhere'"),
    ({"k": "three"}, r"row 2, column k: not a number"),
    ({"estimate_bt": "=1+1"}, r"row 2, column estimate_bt: not a number"),
])
def test_bad_cells_are_named_by_file_row_and_column(meta_out, tmp_path, cells, message):
    frame = pd.read_csv(meta_out / "pooled.csv", dtype=str, keep_default_na=False)
    for col, value in cells.items():
        frame.loc[0, col] = value
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(TargetsFileError, match=message) as err:
        read_target_effects(path)
    assert str(path) in str(err.value)


def test_duplicates_missing_columns_and_unreadable_files_are_refused(meta_out, tmp_path):
    frame = pd.read_csv(meta_out / "by_target.csv", dtype=str, keep_default_na=False)
    twice = pd.concat([frame.iloc[:1], frame.iloc[:1]])
    twice.to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(TargetsFileError, match="row 3, column target: target dlpfc_left already given on row 2"):
        read_target_effects(tmp_path / "twice.csv")
    frame.drop(columns=["k"]).to_csv(tmp_path / "nok.csv", index=False)
    with pytest.raises(TargetsFileError, match=r"not a pooled-effects table \(missing k\)"):
        read_target_effects(tmp_path / "nok.csv")
    (tmp_path / "latin1.csv").write_bytes("target,k,estimate,ci_lb,ci_ub\nm1,1,0.5,0.1,0.9 \xe9\n".encode("latin-1"))
    with pytest.raises(TargetsFileError, match="cannot read the pooled effects"):
        read_target_effects(tmp_path / "latin1.csv")


def test_every_catalogue_row_of_a_target_gets_its_pooled_effect(meta_out, data_root):
    cat = target_catalogue(data_root)
    out = attach_target_effects(cat, meta_out / "by_target.csv")
    left = out[out.target == "dlpfc_left"]
    assert len(left) == (cat.target == "dlpfc_left").sum() >= 4
    assert np.allclose(left["pooled_effect"], LEFT_RR, atol=1e-4) and set(left["pooled_k"]) == {3}
    right = out[out.target == "dlpfc_right"]
    assert list(right["id"]) == ["dlpfc_rmfg_right"] and round(float(right["pooled_effect"].iloc[0]), 2) == 1.43
    others = out[~out.target.isin(["dlpfc_left", "dlpfc_right"])]
    assert others["pooled_effect"].isna().all() and (others["pooled_k"].isna()).all()
    assert out.attrs["unmatched"] == []
    m1_only = cat[cat.target == "m1"]
    assert attach_target_effects(m1_only, meta_out / "by_target.csv").attrs["unmatched"] == ["dlpfc_left",
                                                                                              "dlpfc_right"]


def test_glass_brain_colours_by_log_rr_and_draws_the_report_table(data_root):
    table = datasets.pooled_by_target("gaynes2011_fig13", data_dir=data_root)  # what the report passes
    fig = plot_target_effects(table)
    # the colour scale is symmetric around no effect (RR 1) on the log scale: |log RR| of the largest effect
    # (nilearn prints the colour-bar limits to 2 decimals)
    limits = [ax.get_ylim() for ax in fig.axes if any(type(c).__name__ == "QuadMesh" for c in ax.collections)]
    assert len(limits) == 1
    assert np.allclose(sorted(limits[0]), [-math.log(LEFT_RR), math.log(LEFT_RR)], atol=0.005)
    with pytest.raises(TargetsFileError, match="no target with both a pooled effect and MNI coordinates"):
        plot_target_effects(table[table.target == ""])


def test_map_lists_the_effect_beside_each_target_and_adds_the_figure(meta_out, schaefer400, data_root, tmp_path):
    cat = target_catalogue(data_root)
    subset = cat[cat.id.isin(["dlpfc_ba9_left", "dlpfc_f3_left", "dlpfc_rmfg_right", "m1_left", "pag"])]
    result = map_targets(attach_target_effects(subset, meta_out / "by_target.csv"), schaefer400, n_permutations=10)
    files = {p.name for p in result.save(tmp_path / "map")}
    assert "target_effects.png" in files
    html = (tmp_path / "map" / "connectome.html").read_text()
    assert "pooled effect (95% CI), studies" in html
    assert f"RR {LEFT_RR:.2f}" in html and "RR 1.43 (0.41 to 4.99), k = 1" in html
    mapped = pd.read_csv(tmp_path / "map" / "targets_mapped.csv").set_index("id")
    assert np.isnan(mapped.loc["m1_left", "pooled_effect"]) and mapped.loc["dlpfc_f3_left", "pooled_k"] == 3


def test_cli_map_takes_effects(meta_out, tmp_path, data_root):
    out = tmp_path / "cli"
    result = runner.invoke(app, ["connectome", "map", "--indication", "depression", "--effects",
                                 str(meta_out / "pooled.csv"), "--permutations", "10", "--no-figures",
                                 "--data-dir", str(data_root), "-o", str(out)])
    assert result.exit_code == 0, result.output
    mapped = pd.read_csv(out / "targets_mapped.csv")
    assert np.allclose(mapped.loc[mapped.target == "dlpfc_left", "pooled_effect"], LEFT_RR, atol=1e-4)
    result = runner.invoke(app, ["connectome", "map", "--effects", str(tmp_path / "missing.csv"), "--no-figures",
                                 "--data-dir", str(data_root), "-o", str(out)])
    assert result.exit_code == 2 and "cannot read the pooled effects" in result.output
