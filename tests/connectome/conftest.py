"""Connectomes shared by the connectome tests, loaded once per session from shared/data."""

import pytest

from neuromodmap.connectome import load_connectome


@pytest.fixture(scope="session")
def schaefer400(data_root):
    return load_connectome("enigma-schaefer400", data_root)


@pytest.fixture(scope="session")
def hansen(data_root):
    return load_connectome("hansen-brainstem", data_root)
