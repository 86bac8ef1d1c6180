"""neuromodmap.evidence: effect sizes, metafor-grade meta-analysis and the extraction sheet.

The extraction sheet's columns are :data:`neuromodmap.evidence.sheet.COLUMNS`.
"""

from neuromodmap.evidence.sheet import CITATION_COLUMNS, COLUMNS, ExtractionRecord

__all__ = ["COLUMNS", "CITATION_COLUMNS", "ExtractionRecord"]
