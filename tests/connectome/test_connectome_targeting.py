"""Fox-style site-to-seed connectivity and the anticorrelation search (ENIGMA HCP, Schaefer-400)."""

from __future__ import annotations

import numpy as np
import pytest

from neuromodmap.connectome import (
    SGACC_SEED,
    CoordinateError,
    search_anticorrelated,
    site_to_seed,
    target_catalogue,
)


@pytest.fixture(scope="module")
def fc(schaefer400):
    return schaefer400


@pytest.fixture(scope="module")
def dlpfc_sites(data_root):
    cat = target_catalogue(data_root)
    return cat[cat.target == "dlpfc_left"][["id", "x", "y", "z"]]


def test_fox_2012_ordering_of_dlpfc_sites(fc, dlpfc_sites):
    """Fox et al. (2012, Biol Psychiatry 72:595) found the clinically better DLPFC sites (BA46, their
    optimum) more anticorrelated with the sgACC than the 5-cm-rule site; the HCP group matrix agrees."""
    result = site_to_seed(dlpfc_sites, SGACC_SEED, radius=10, connectome=fc).set_index("id")
    assert result.connectivity["dlpfc_ba46_left"] < 0
    assert result.connectivity["dlpfc_fox_optimum_left"] < 0
    assert result.connectivity["dlpfc_5cm_left"] > result.connectivity["dlpfc_ba46_left"]
    assert result.connectivity["dlpfc_5cm_left"] > result.connectivity["dlpfc_fox_optimum_left"]
    assert result.connectivity["dlpfc_f3_left"] > result.connectivity["dlpfc_ba46_left"]
    assert set(result.connectivity_units) == {"Fisher z-transformed Pearson r (group mean)"}


def test_connectivity_is_the_bilinear_form_of_two_spheres(fc):
    sites = site_to_seed(
        __import__("pandas").DataFrame({"id": ["a"], "x": [-44.0], "y": [40.0], "z": [29.0], "extra": ["kept"]}),
        (6, 16, -10), radius=8, seed_radius=10, connectome=fc)
    w_site = fc.seed((-44, 40, 29), 8).weights
    w_seed = fc.seed((6, 16, -10), 10).weights
    assert sites.connectivity[0] == pytest.approx(w_site @ fc.matrix @ w_seed)
    assert sites.extra[0] == "kept"


def test_unmappable_site_is_kept_with_reason(fc):
    import pandas as pd

    sites = pd.DataFrame({"id": ["ok", "off"], "x": [-44.0, -95.0], "y": [40.0, 0.0], "z": [29.0, 0.0]})
    result = site_to_seed(sites, connectome=fc)
    assert result.method.tolist() == ["sphere", "not_mapped"]
    assert np.isnan(result.connectivity[1]) and "from the nearest parcel" in result.note[1]
    with pytest.raises(CoordinateError, match="seed:"):
        site_to_seed(sites, (0, 0, 120), connectome=fc)


def test_search_ranks_cortical_candidates(fc, data_root):
    ranked = search_anticorrelated("dlpfc_left", SGACC_SEED, connectome=fc, data_dir=data_root)
    assert ranked.connectivity.is_monotonic_increasing and ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert all(label.startswith("7Networks_LH_") for label in ranked.label)
    best = ranked.iloc[0]
    assert best.connectivity < 0
    # the candidate coordinate lies inside its parcel and reproduces its ranking value
    seed_w = fc.seed(SGACC_SEED, 10).weights
    row = fc.labels.index(best.label)
    assert best.connectivity == pytest.approx(fc.matrix[row] @ seed_w)
    assert fc.seed((best.x, best.y, best.z), 0.5).regions == (row,)
    sphere = search_anticorrelated("-40,40,30,12", connectome=fc)
    assert len(sphere) < len(ranked)
    by_label = search_anticorrelated("RH_Cont_PFCl", connectome=fc)
    assert set(by_label.network) == {"Cont"} and set(by_label.hemisphere) == {"R"}
