"""Errors of the connectome stage (private; re-exported from ``neuromodmap.connectome``)."""

from __future__ import annotations

__all__ = [
    "ConnectomeError",
    "CoordinateError",
    "TargetsFileError",
    "AtlasMismatchError",
    "ImageError",
    "TimeSeriesError",
]


class ConnectomeError(ValueError):
    """Base class: an input the connectome stage cannot use; the message says which and why."""


class CoordinateError(ConnectomeError):
    """A coordinate lies too far from any parcel of the atlas."""


class TargetsFileError(ConnectomeError):
    """A targets/sites CSV is empty, lacks a column or holds a non-numeric value."""


class AtlasMismatchError(ConnectomeError):
    """A connectome matrix does not match its labels or its atlas volume."""


class ImageError(ConnectomeError):
    """A NIfTI image has the wrong shape, dimensionality or space."""


class TimeSeriesError(ConnectomeError):
    """Time series are unusable (too short, all NaN, zero variance)."""
