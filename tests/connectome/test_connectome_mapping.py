"""map_targets on real connectomes: profiles, groups, overlap, hubs, similarity, outputs."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from neuromodmap.connectome import (
    ConnectomeError,
    TargetsFileError,
    load_connectome,
    map_targets,
    read_targets,
    target_catalogue,
)


@pytest.fixture(scope="module")
def pain_map(data_root):
    cat = target_catalogue(data_root)
    pain = cat[cat.indication.isin(["pain", "both"])]
    return map_targets(pain, load_connectome("hansen-brainstem", data_root), n_permutations=500, n_null=100)


def test_all_pain_targets_map_on_the_brainstem_connectome(pain_map, data_root):
    cat = target_catalogue(data_root)
    n = int(cat.indication.isin(["pain", "both"]).sum())
    assert len(pain_map.targets) == n and pain_map.skipped.empty
    assert pain_map.profiles.shape == (n, 483)
    # a single-nucleus seed's profile is exactly that nucleus' row of the published matrix
    c = pain_map.connectome
    pag = c.labels.index("PAG_2020")
    assert np.array_equal(pain_map.profiles.loc["pag"].to_numpy(), c.matrix[pag])
    thal = c.labels.index("L-Thalamus-Proper")  # the VPM's 3 mm sphere lies wholly in the left thalamus
    assert pain_map.targets.set_index("id").loc["thalamus_vpm_left", "regions"] == "L-Thalamus-Proper"
    assert np.allclose(pain_map.profiles.loc["thalamus_vpm_left"].to_numpy(), c.matrix[thal])


def test_group_maps_are_means_of_member_profiles(pain_map):
    deep = pain_map.targets.depth == "deep"
    expected = pain_map.profiles.to_numpy()[deep.to_numpy()].mean(axis=0)
    row = pain_map.groups.loc[("depth", "deep")]
    assert row.n_targets == deep.sum()
    assert np.allclose(row[pain_map.profiles.columns].to_numpy(float), expected)
    # "both" (the F3 DLPFC row) counts as pain and as depression
    assert pain_map.groups.loc[("indication", "depression"), "n_targets"] == 1
    assert pain_map.groups.loc[("modality", "tms"), "n_targets"] == 5  # F3, M1 x2, insula x2


def test_overlap_statistics(pain_map):
    ov = pain_map.overlap
    r, _ = stats.pearsonr(ov["superficial"], ov["deep"])
    assert ov["r"] == pytest.approx(r)
    n_sup, n_deep = ov["n_superficial"], ov["n_deep"]
    depth = pain_map.targets.depth
    assert (n_sup, n_deep) == ((depth == "superficial").sum(), (depth == "deep").sum()) and n_sup == 7
    # 20 choose 7 = 77520 relabellings > 500: random permutations, p bounded by 1/(n+1)
    assert not ov["exact"] and ov["n_permutations"] == 500 and 1 / 501 <= ov["p_permutation"] <= 1
    k = math.ceil(483 * 10 / 100)
    top_s = set(np.argsort(-ov["superficial"].to_numpy())[:k])
    top_d = set(np.argsort(-ov["deep"].to_numpy())[:k])
    assert ov["dice"] == pytest.approx(2 * len(top_s & top_d) / (2 * k))
    conj = ov["conjunction"].to_numpy()
    assert set(np.flatnonzero(conj)) == top_s & top_d
    assert ov["n_conjunction"] == len(top_s & top_d)


def test_exhaustive_permutations_when_few_targets(data_root):
    cat = target_catalogue(data_root).set_index("id")
    few = cat.loc[["m1_left", "insula_left", "thalamus_vpl_left", "thalamus_vpl_right"]].reset_index()
    result = map_targets(few, "enigma-schaefer400", data_dir=data_root, null="depth-relabel")
    assert result.overlap["exact"] and result.overlap["n_permutations"] == math.comb(4, 2)
    # the observed labelling is one of the 6, so p >= 1/6
    assert result.overlap["p_permutation"] >= 1 / 6


def test_hubs_count_targets_with_region_in_their_top_percent(pain_map):
    values = pain_map.profiles.to_numpy()
    k = math.ceil(values.shape[1] * 0.10)
    counts = np.zeros(values.shape[1], dtype=int)
    for v in values:
        counts[np.argsort(-v, kind="stable")[:k]] += 1
    hubs = pain_map.hubs.set_index("label")
    labels = np.asarray(pain_map.profiles.columns)
    for j in np.flatnonzero(counts):
        assert hubs.loc[labels[j], "n_targets"] == counts[j]
    assert pain_map.hubs.n_targets.is_monotonic_decreasing
    assert {"network", "hemisphere", "targets"} <= set(pain_map.hubs.columns)


def test_similarity_matrix(pain_map):
    sim = pain_map.similarity
    assert sim.shape == (len(pain_map.targets), len(pain_map.targets))
    assert np.allclose(np.diag(sim), 1) and np.allclose(sim, sim.T)
    assert sim.loc["m1_left", "m1_right"] == pytest.approx(
        np.corrcoef(pain_map.profiles.loc["m1_left"], pain_map.profiles.loc["m1_right"])[0, 1])


def test_skipped_targets_are_reported_not_lost(data_root):
    # Schaefer-200 has no Hansen counterpart, so its brainstem targets cannot be mapped
    cat = target_catalogue(data_root)
    result = map_targets(cat, "enigma-schaefer200", data_dir=data_root, null="none")
    brainstem = {"parabrachial_left", "parabrachial_right", "cuneiform_left", "cuneiform_right", "raphe_magnus",
                 "dorsal_raphe", "pag"}
    assert brainstem <= set(result.skipped.id)
    assert len(result.targets) + len(result.skipped) == len(cat)
    assert "could not be mapped" in result.methods()
    assert "enigma-schaefer400" in result.skipped.set_index("id").reason["pag"]


def test_bad_inputs(data_root, tmp_path):
    with pytest.raises(TargetsFileError, match="no targets"):
        map_targets(pd.DataFrame(columns=["id", "x", "y", "z"]), "enigma-schaefer100", data_dir=data_root)
    with pytest.raises(TargetsFileError, match="lacks column 'z'"):
        map_targets(pd.DataFrame({"id": ["a"], "x": [1], "y": [2]}), "enigma-schaefer100", data_dir=data_root)
    outside = pd.DataFrame({"id": ["a"], "x": [-95.0], "y": [0.0], "z": [0.0]})
    with pytest.raises(ConnectomeError, match="none of the 1 targets"):
        map_targets(outside, "enigma-schaefer100", data_dir=data_root)
    with pytest.raises(ConnectomeError, match="top_percent"):
        map_targets(outside, "enigma-schaefer100", top_percent=0, data_dir=data_root)


def test_save_writes_tables_images_figures_and_escaped_html(data_root, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,x,y,z,radius,indication,modality,depth\n"
                    "<script>alert(1)</script>,-37,26,49,10,pain,tms,superficial\n"
                    "m1,-41,-7,45,10,pain,tms,superficial\n"
                    "thal,-14,-26,2,5,pain,dbs,deep\n"
                    "pag,0.57,-32.57,-8.94,3,pain,dbs,deep\n", encoding="utf-8")
    result = map_targets(read_targets(path), "hansen-brainstem", data_dir=data_root, n_null=50)
    out = tmp_path / "out"
    files = result.save(out)
    names = {p.relative_to(out).as_posix() for p in files}
    assert {"profiles.csv", "profiles.nii.gz", "hubs.csv", "similarity.csv", "overlap.csv", "conjunction.nii.gz",
            "connectome.html", "methods.txt", "figures/hubs.png", "figures/similarity.png",
            "figures/glass_depth_deep.png", "figures/stat_conjunction.png", "groups/depth_deep.nii.gz"} <= names
    img = nib.load(out / "profiles.nii.gz")
    assert img.shape == (91, 109, 91, 4)
    html = (out / "connectome.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Hansen J.Y. et al. (2024)" in html and "Tian Y. et al. (2020)" in html
    profiles = pd.read_csv(out / "profiles.csv", index_col=0)
    assert np.allclose(profiles.to_numpy(), result.profiles.to_numpy())
    assert not list(out.rglob("*.tmp"))
    section = result.html_section()
    assert section.startswith('<section class="connectome"') and "&lt;script&gt;" in section
