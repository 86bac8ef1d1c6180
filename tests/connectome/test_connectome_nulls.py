"""Null models of connectome map: random sites, variogram surrogates, depth relabelling (real data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from neuromodmap.cli import app
from neuromodmap.connectome import ConnectomeError, map_targets, target_catalogue
from neuromodmap.connectome._nulls import (
    CALIBRATION_REJECTS_AT_05,
    CALIBRATION_SENTENCE,
    SitePools,
    SiteTemplate,
    depth_class,
    draw_sites,
    parse_nulls,
    variogram_surrogates,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def catalogue(data_root):
    return target_catalogue(data_root)


@pytest.fixture(scope="module")
def pain_default(catalogue, schaefer400):
    return map_targets(catalogue, schaefer400, indication="pain", n_null=60, n_permutations=200, random_state=3)


def test_null_names_are_checked():
    assert parse_nulls("random-sites, variogram") == ("random-sites", "variogram")
    assert parse_nulls(["all"]) == ("random-sites", "variogram", "depth-relabel")
    assert parse_nulls("none") == () and parse_nulls(None) == ()
    with pytest.raises(ConnectomeError, match=r"unknown null model 'spin'; choose from random-sites, variogram"):
        parse_nulls("random-sites,spin")


def test_overlap_table_has_one_row_per_null_with_p_in_unit_interval(pain_default):
    table = pain_default.overlap_table
    assert table.null_model.tolist() == ["random-sites", "variogram", "depth-relabel"]
    assert set(table.indication) == {"pain"}
    assert table.n_null.tolist() == [60, 60, 200]
    # Monte-Carlo p = (1 + k) / (1 + n): never 0, at most 1, on the 1/(n+1) grid
    for row in table.itertuples():
        for p in (row.p_null, row.p_null_dice):
            assert 1 / (row.n_null + 1) <= p <= 1
            assert (p * (row.n_null + 1)) == pytest.approx(round(p * (row.n_null + 1)))
    # observed statistics are the same for every null on ENIGMA (all 414 regions have centroids)
    assert table.r.nunique() == 1 and table.n_regions.eq(414).all()
    assert pain_default.overlap["p_null"] == dict(zip(table.null_model, table.p_null, strict=True))


def test_pain_and_depression_are_never_mixed(catalogue, schaefer400):
    both = map_targets(catalogue, schaefer400, indication="all", null="depth-relabel", n_permutations=100)
    pain = map_targets(catalogue, schaefer400, indication="pain", null="depth-relabel", n_permutations=100)
    assert list(both.overlaps) == ["pain", "depression"]  # pain first: the seed-004 headline
    assert both.overlap["indication"] == "pain"
    # the pain comparison on the whole catalogue uses only pain (and 'both') targets
    assert both.overlaps["pain"]["r"] == pytest.approx(pain.overlap["r"])
    assert both.overlaps["pain"]["n_superficial"] == pain.overlap["n_superficial"]
    ids = set(pain.targets.id)
    assert "dlpfc_ba46_left" not in ids and "dlpfc_f3_left" in ids and "scc_left" not in ids
    dep = both.overlaps["depression"]
    cat = catalogue[catalogue.indication.isin(["depression", "both"])]
    assert (dep["n_superficial"], dep["n_deep"]) == ((cat.depth == "superficial").sum(), (cat.depth == "deep").sum())
    assert pain.summary().startswith("Pain targets (")
    only = map_targets(catalogue, schaefer400, indication="depression", null="none")
    assert list(only.overlaps) == ["depression"] and not only.overlap_reasons  # F3 ('both') is no pain set here
    assert (only.overlap["n_superficial"], only.overlap["n_deep"]) == (dep["n_superficial"], dep["n_deep"])
    with pytest.raises(ConnectomeError, match="unknown indication 'migraine'"):
        map_targets(catalogue, schaefer400, indication="migraine")


def test_random_sites_fall_in_grey_matter_of_their_depth_class(catalogue, hansen):
    pain = catalogue[catalogue.indication.isin(["pain", "both"])]
    seeds = [hansen.seed((r.x, r.y, r.z), r.radius) for r in pain.itertuples()]
    classes = [depth_class(hansen, s) for s in seeds]
    of = dict(zip(pain.id, classes, strict=True))
    assert of["m1_left"] == of["insula_right"] == "cortex" and of["thalamus_vpl_left"] == "subcortex"
    assert of["pag"] == of["raphe_magnus"] == of["parabrachial_left"] == "brainstem"
    assert all(of[i] == "cortex" for i in pain[pain.depth == "superficial"].id)
    template = SiteTemplate.from_targets(pain[["x", "y", "z"]].to_numpy(), classes, pain.radius.to_numpy(),
                                         pain.depth.to_numpy())
    ids = pain.id.tolist()
    pairs = [(ids[template.partner[j]], ids[j]) for j in range(len(ids)) if template.partner[j] >= 0]
    assert ("m1_left", "m1_right") in pairs and ("thalamus_vpl_left", "thalamus_vpl_right") in pairs
    assert ("thalamus_vpm_left", "thalamus_vpm_right") in pairs
    leaders = [a for a, _ in pairs]
    assert len(set(leaders)) == len(leaders) and not set(leaders) & {b for _, b in pairs}  # one partner each
    assert not any("pag" in p or "raphe_magnus" in p for p in pairs)  # midline targets stay single
    pools = SitePools.of(hansen)
    xyz, region, tree = hansen.atlas._voxels
    structure = hansen.regions.structure.to_numpy()
    nuclei = {tuple(c) for c in pools.nuclei}
    rng = np.random.default_rng(11)
    for _ in range(20):
        coords, site_seeds = draw_sites(hansen, template, rng, 5.0)
        for i, (c, s) in enumerate(zip(coords, site_seeds, strict=True)):
            assert depth_class(hansen, s) == classes[i]
            if classes[i] == "brainstem":
                # a nucleus centroid (or the mirror image of one, for a lateral pair)
                assert tuple(c) in nuclei or template.partner[i] >= 0
                assert hansen.regions.structure[s.regions[0]] == "brainstem"
            elif template.partner[i] < 0:
                # drawn within half a 2-mm voxel (on each axis) of a voxel of its class
                near = tree.query_ball_point(c, np.sqrt(3) + 1e-9)
                want = {"cortex"} if classes[i] == "cortex" else {"subcortex"}
                assert want & set(structure[region[near]])
            if template.partner[i] >= 0:
                j = template.partner[i]
                assert np.allclose(c, coords[j] * [-1, 1, 1])
    # same seed, same sites
    a = draw_sites(hansen, template, np.random.default_rng(5), 5.0)[0]
    b = draw_sites(hansen, template, np.random.default_rng(5), 5.0)[0]
    assert np.array_equal(a, b)


def test_a_shifted_copy_is_far_beyond_every_spatial_null(catalogue, schaefer400):
    """Deep 'targets' that are the superficial ones moved 3 mm: r near 1, far above random sites."""
    sup = catalogue[catalogue.id.isin(["m1_left", "m1_right", "insula_left", "insula_right", "acc_left",
                                       "dlpfc_f3_left"])].copy()
    sup["indication"] = "pain"
    deep = sup.copy()
    deep["id"] = deep["id"] + "_shifted"
    deep["z"] = deep["z"] + 3.0
    deep["depth"] = "deep"
    targets = pd.concat([sup, deep], ignore_index=True)
    result = map_targets(targets, schaefer400, null="random-sites,variogram", n_null=99, random_state=1)
    assert result.overlap["r"] > 0.9
    p = result.overlap_table.set_index("null_model").p_null
    assert p["random-sites"] == pytest.approx(0.01) and p["variogram"] == pytest.approx(0.01)
    # the random deep sites are drawn from cortex too: the shifted copies are cortical
    assert set(result.targets.depth_class) == {"cortex"}
    assert "12 cortex" in result.methods()


@pytest.mark.filterwarnings("ignore:`row_stack` alias is deprecated:DeprecationWarning")
def test_fast_variogram_generator_is_brainsmash(schaefer400):
    """Our dense-matrix Base gives brainsmash's own surrogates (same seed, same parameters)."""
    from brainsmash.mapgen.base import Base
    from scipy.spatial.distance import cdist

    xyz = schaefer400.regions[["x", "y", "z"]].to_numpy(float)
    d = cdist(xyz, xyz)
    x = schaefer400.matrix[schaefer400.labels.index("Lthal")]
    ours = variogram_surrogates(x, d, 20, seed=7, batch_size=10)
    ref = np.vstack([Base(x, d, seed=7)(n=10, batch_size=10) for _ in range(1)])
    assert np.allclose(ours[:10], ref, atol=1e-10)
    # and surrogates keep the map's spatial autocorrelation: neighbours correlate as in the map
    near = (d > 0) & (d < 15)
    i, j = np.nonzero(np.triu(near))
    r_map = np.corrcoef(x[i], x[j])[0, 1]
    r_surr = np.mean([np.corrcoef(s[i], s[j])[0, 1] for s in ours])
    rng = np.random.default_rng(0)
    r_shuffled = np.mean([np.corrcoef(p[i], p[j])[0, 1] for p in (rng.permutation(x) for _ in range(50))])
    assert r_map > 0.3 and r_surr > 0.3 and abs(r_shuffled) < 0.05


def test_hubs_and_similarity_against_random_sites(pain_default):
    hubs = pain_default.hubs
    for col in ("null_mean", "null_q95", "p_null", "q_fdr", "hub"):
        assert col in hubs
    assert hubs.p_null.between(1 / 61, 1).all() and (hubs.q_fdr >= hubs.p_null - 1e-12).all()
    assert hubs.hub.equals(hubs.q_fdr < 0.05)
    # a region reached by more targets than 95 % of random-site sets: at most 5 % of 60 draws (+1) reach it
    top = hubs[hubs.n_targets > hubs.null_q95]
    assert len(top) and (top.p_null <= (1 + 0.05 * 60) / 61 + 1e-9).all()
    assert (hubs[hubs.n_targets < hubs.null_mean].p_null > 0.3).all()
    sim = pain_default.similarity_null.set_index("comparison")
    assert list(sim.index) == ["within superficial", "within deep", "between superficial and deep"]
    values = pain_default.similarity.to_numpy()
    targets = pain_default.targets
    sup = (targets.depth == "superficial").to_numpy()
    between = values[np.ix_(sup, ~sup)].mean()
    assert sim.loc["between superficial and deep", "mean_r"] == pytest.approx(between)
    assert sim.p_null.between(1 / 61, 1).all()


def test_methods_name_every_null_and_its_parameters(pain_default):
    text = pain_default.methods()
    for phrase in ("random seed 3", "60 random site sets", "7 cortex", "brainstem nuclei of Hansen",
                   "60 variogram-matched surrogates", "brainsmash", "pv = 25", "nh = 25", "exp kernel",
                   "200 relabellings", "Benjamini-Hochberg"):
        assert phrase in text, phrase
    html = pain_default.html_section()
    assert "random sites (same depth classes)" in html and "variogram surrogates (brainsmash)" in html
    # the reader learns which null is calibrated: the calibration sentence is in the methods
    assert CALIBRATION_SENTENCE in text and "not evidence for one" in text


def test_calibration_sentence_quotes_the_documented_calibration_run():
    # the rejection rates in the methods sentence are those of the calibration table in
    # docs/connectome.md (benchmarks/connectome_null_calibration.py, 400 sets, seed 2024)
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "connectome.md").read_text(encoding="utf-8")
    documented = {}
    for line in docs.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[2] == "r" and cells[1] in CALIBRATION_REJECTS_AT_05:
            documented.setdefault(cells[1], {})[cells[0]] = float(cells[4].split()[0])
    for null, (default, hansen) in CALIBRATION_REJECTS_AT_05.items():
        assert documented[null] == {"enigma-schaefer400": default, "hansen-brainstem": hansen}, null


@pytest.fixture()
def env(data_root, monkeypatch):
    monkeypatch.setenv("NEUROMODMAP_DATA", str(data_root))
    monkeypatch.setenv("COLUMNS", "200")


def test_cli_random_sites_writes_p_null(env, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["connectome", "map", "--targets", "builtin", "--indication", "pain", "--null",
                                 "random-sites", "--n-null", "30", "--seed", "4", "--no-figures", "-o", str(out)])
    assert result.exit_code == 0, result.output
    overlap = pd.read_csv(out / "overlap.csv")
    assert overlap.null_model.tolist() == ["random-sites"] and overlap.indication.tolist() == ["pain"]
    assert overlap.n_null.tolist() == [30] and 0 < overlap.p_null[0] <= 1
    hubs = pd.read_csv(out / "hubs.csv")
    assert {"null_mean", "null_q95", "p_null", "q_fdr", "hub"} <= set(hubs.columns)
    assert (out / "similarity_null.csv").is_file()
    assert "Pain targets (" in result.output and "random sites p =" in result.output
    again = tmp_path / "again"
    runner.invoke(app, ["connectome", "map", "--indication", "pain", "--null", "random-sites", "--n-null", "30",
                        "--seed", "4", "--no-figures", "-o", str(again)])
    assert pd.read_csv(again / "overlap.csv").equals(overlap)


@pytest.mark.parametrize(("args", "message"), [
    (["--null", "spins"], "--null: unknown null model 'spins'"),
    (["--indication", "migraine"], "--indication must be one of pain, depression, all"),
    (["--n-null", "0"], "--n-null must be between 1"),
])
def test_cli_bad_null_options_are_one_clear_line(env, tmp_path, args, message):
    result = runner.invoke(app, ["connectome", "map", *args, "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "o").exists()
