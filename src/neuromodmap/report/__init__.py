"""neuromodmap.report: stitch the stages' HTML sections into one self-contained report."""

from neuromodmap.report._build import build_report

__all__ = ["build_report"]
