"""Brainstem targets on the default (ENIGMA) connectome through Hansen's nuclei, on the real data.

The reference values here are computed from the published files themselves (ENIGMA's CSV
matrix and labels, Hansen's .npy matrix and region table), not through the package's loaders.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuromodmap.connectome import load_connectome, map_targets, site_to_seed, target_catalogue

FS = {"accumb": "Accumbens-area", "amyg": "Amygdala", "caud": "Caudate", "hippo": "Hippocampus",
      "pal": "Pallidum", "put": "Putamen", "thal": "Thalamus-Proper"}


@pytest.fixture(scope="module")
def raw(data_root):
    """ENIGMA Schaefer-400 (Fisher z) and Hansen (r) on the 414 shared regions, read from the files."""
    root = data_root / "connectomes"
    enigma = np.loadtxt(root / "enigma_hcp" / "funcMatrix_with_ctx_schaefer_400.csv", delimiter=",")
    labels = [t.strip() for t in (root / "enigma_hcp" / "funcLabels_with_sctx_schaefer_400.csv").read_text()
              .replace("\n", ",").split(",") if t.strip()]
    hansen = np.load(root / "hansen_brainstem" / "brainstemfc_mean_corrcoeff_full_Schaefer400.npy")
    info = pd.read_csv(root / "hansen_brainstem" / "region_info_Schaefer400.csv", index_col=0)
    cortex = np.flatnonzero(info.structure.to_numpy() == "cortex")
    shared = []
    for k, label in enumerate(labels):
        if k < 400:
            # both follow Schaefer's 7-network order: check the names agree
            assert label.replace("7Networks_", "") in info["labels"].iloc[cortex[k]], (label, k)
            shared.append(cortex[k])
        else:
            shared.append(int(np.flatnonzero(info["labels"].to_numpy() == f"{label[0]}-{FS[label[1:]]}")[0]))
    shared = np.asarray(shared)
    return {"enigma": enigma, "hansen_r": hansen, "shared": shared, "info": info, "labels": labels}


def _equate(fit_a: np.ndarray, fit_b: np.ndarray):
    slope = fit_a.std() / fit_b.std()
    return slope, fit_a.mean() - slope * fit_b.mean()


def test_every_builtin_pain_target_maps_on_the_default(data_root):
    cat = target_catalogue(data_root)
    pain = cat[cat.indication.isin(["pain", "both"])]
    result = map_targets(pain, data_dir=data_root, null="depth-relabel", n_permutations=100)
    assert result.connectome.name == "enigma-schaefer400"
    assert result.skipped.empty, result.skipped
    assert len(result.targets) == len(pain)
    assert result.profiles.shape == (len(pain), 414)  # profiles keep ENIGMA's regions as columns
    brainstem = result.targets.set_index("id").loc[["pag", "parabrachial_left", "cuneiform_right", "raphe_magnus",
                                                    "dorsal_raphe"]]
    assert set(brainstem.method) == {"nearest_nucleus"}
    # PAG row: the Brainstem Navigator PAG centroid itself; RMg for the Bär 2016 raphe magnus coordinate
    assert brainstem.loc["pag", "regions"] == "PAG_2020" and brainstem.loc["pag", "distance_mm"] < 0.02
    assert brainstem.loc["raphe_magnus", "regions"] == "RMg"
    assert np.isfinite(result.overlap["r"])


def test_every_builtin_depression_target_maps_on_the_default(data_root):
    cat = target_catalogue(data_root)
    depression = cat[cat.indication.isin(["depression", "both"])]
    result = map_targets(depression, data_dir=data_root, n_permutations=100)
    assert result.skipped.empty and len(result.targets) == len(depression)


def test_nucleus_profile_is_the_equated_hansen_row(raw, schaefer400):
    """Fisher z of Hansen's PAG row on the shared regions, equated on the subcortical edges."""
    z = np.arctanh(raw["hansen_r"])
    e, shared = raw["enigma"], raw["shared"]
    sub = np.arange(400, 414)
    rows, cols = np.triu_indices(414, 1)
    fit = np.isin(rows, sub) | np.isin(cols, sub)
    assert fit.sum() == 14 * 400 + 14 * 13 // 2
    slope, intercept = _equate(e[rows[fit], cols[fit]], z[shared[rows[fit]], shared[cols[fit]]])
    pag = int(np.flatnonzero(raw["info"]["labels"].to_numpy() == "PAG_2020")[0])
    seed = schaefer400.seed((0.57, -32.57, -8.94), 3)
    assert seed.label == "PAG_2020" and not seed.weights.any()
    np.testing.assert_allclose(schaefer400.seed_profiles([seed])[0], intercept + slope * z[pag, shared], rtol=1e-10)
    cal = schaefer400.bridged.calibration
    assert cal["slope"] == pytest.approx(slope) and cal["intercept"] == pytest.approx(intercept)
    assert f"{intercept:.4f} + {slope:.4f} z" in schaefer400.methods()
    assert "Hansen" in schaefer400.methods() and "7T" in schaefer400.methods()


def test_subcortical_equating_predicts_held_out_structures(raw):
    """Why the fit uses subcortical edges: it predicts ENIGMA's values for a held-out deep structure.

    For each FreeSurfer structure (both hemispheres held out), equate on the remaining
    subcortical rows, on all remaining edges, or not at all (Fisher z only), and compare with
    ENIGMA's values of the held-out rows. A brainstem nucleus is a deep seed like these.
    """
    z = np.arctanh(raw["hansen_r"])[np.ix_(raw["shared"], raw["shared"])]
    e = raw["enigma"]
    errors = {"subcortical": [], "all": [], "none": []}
    for s in range(7):
        held = [400 + s, 407 + s]
        keep = np.setdiff1d(np.arange(414), held)
        test_e = np.concatenate([np.delete(e[i], i)[np.isin(np.delete(np.arange(414), i), keep)] for i in held])
        test_z = np.concatenate([np.delete(z[i], i)[np.isin(np.delete(np.arange(414), i), keep)] for i in held])
        rows, cols = np.triu_indices(414, 1)
        ok = np.isin(rows, keep) & np.isin(cols, keep)
        deep = ok & ((rows >= 400) | (cols >= 400))
        for name, mask in (("subcortical", deep), ("all", ok)):
            slope, intercept = _equate(e[rows[mask], cols[mask]], z[rows[mask], cols[mask]])
            errors[name].append(np.abs(intercept + slope * test_z - test_e).mean())
        errors["none"].append(np.abs(test_z - test_e).mean())
    mae = {k: float(np.mean(v)) for k, v in errors.items()}
    assert mae["subcortical"] < 0.5 * mae["all"] < 0.5 * mae["none"]
    assert all(a < b for a, b in zip(errors["subcortical"], errors["all"], strict=True))


def test_site_to_seed_reaches_brainstem_sites_on_the_default(schaefer400):
    sites = pd.DataFrame({"id": ["pag", "dlpfc", "outside"], "x": [0.57, -37.0, -95.0], "y": [-32.57, 26.0, 0.0],
                          "z": [-8.94, 49.0, 0.0]})
    out = site_to_seed(sites, (0.82, -37.45, -44.0), radius=3, connectome=schaefer400)  # seed: RMg centroid
    pag = schaefer400.bridged.regions.label.tolist().index("PAG_2020")
    rmg = schaefer400.bridged.regions.label.tolist().index("RMg")
    assert out.loc[0, "connectivity"] == pytest.approx(schaefer400.bridged.block[pag, rmg])
    dlpfc = schaefer400.seed((-37, 26, 49), 3)
    assert out.loc[1, "connectivity"] == pytest.approx(dlpfc.weights @ schaefer400.bridged.profiles[rmg])
    assert out.loc[0, "regions"] == "PAG_2020" and out.loc[2, "method"] == "not_mapped"


def test_structural_and_schaefer200_connectomes_carry_no_bridge(data_root):
    assert load_connectome("enigma-schaefer400-sc", data_root).bridged is None
    assert load_connectome("enigma-schaefer200", data_root).bridged is None
    s100 = load_connectome("enigma-schaefer100", data_root)
    assert s100.bridged.profiles.shape == (67, 114) and s100.bridged.source == "hansen-brainstem-schaefer100"
