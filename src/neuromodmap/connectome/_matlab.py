"""MATLAB files of Lead-DBS connectomes: v4-v7.2 through scipy, v7.3 (HDF5) through mat73.

Both give the same Python view: numeric arrays squeezed, strings as ``str``, structs as objects
with one attribute per field (scipy's ``struct_as_record=False``), cell arrays as 1-D object
arrays (nested cells nest).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from neuromodmap.connectome._errors import ConnectomeError

__all__ = ["loadmat"]


def loadmat(path: str | Path, variables: list[str] | None = None) -> dict:
    """The variables of a MATLAB file (all of them, or only ``variables``)."""
    from scipy.io import loadmat as scipy_loadmat

    path = Path(path)
    try:
        return scipy_loadmat(path, squeeze_me=True, struct_as_record=False, variable_names=variables)
    except NotImplementedError:  # scipy's answer to a v7.3 (HDF5) file
        return _loadmat73(path, variables)
    except (ValueError, TypeError, OSError) as exc:
        raise ConnectomeError(f"{path}: not a readable MATLAB file ({exc})") from None


def _loadmat73(path: Path, variables: list[str] | None) -> dict:
    try:
        import mat73
    except ModuleNotFoundError:
        raise ConnectomeError(f"{path} is a MATLAB v7.3 (HDF5) file: pip install mat73 to read it") from None
    try:
        data = mat73.loadmat(str(path), only_include=list(variables) if variables else None, verbose=False)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ConnectomeError(f"{path}: not a readable MATLAB v7.3 file ({exc})") from None
    return {name: _as_scipy(value) for name, value in (data or {}).items()}


def _as_scipy(value):
    """mat73's dicts and lists in the shape scipy's ``squeeze_me`` / ``struct_as_record=False`` gives."""
    if isinstance(value, dict):
        return SimpleNamespace(**{key: _as_scipy(item) for key, item in value.items()})
    if isinstance(value, list):
        out = np.empty(len(value), dtype=object)
        for i, item in enumerate(value):
            out[i] = _as_scipy(item)
        return out
    return value
