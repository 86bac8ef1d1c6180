"""Errors and warnings of the evidence stage."""

from __future__ import annotations

__all__ = ["MetaAnalysisError", "ConvergenceError", "MetaAnalysisWarning", "SheetError"]


class MetaAnalysisError(ValueError):
    """Input that cannot be meta-analysed (k < 2, zero variances, text instead of numbers...)."""


class ConvergenceError(MetaAnalysisError):
    """An iterative tau² estimator (ML, REML, PM) did not converge."""


class SheetError(ValueError):
    """An extraction sheet that cannot be read (wrong format, merged cells, extra sheets...)."""


class MetaAnalysisWarning(UserWarning):
    """Studies dropped or adjusted (double-zero studies, missing values)."""
