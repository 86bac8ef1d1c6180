"""neuromodmap.literature: search exports → de-duplication → screening → PRISMA 2020.

Import search exports (:func:`read_records`), store them (:func:`save_import`), find
duplicates (:func:`deduplicate`), apply criteria (:func:`load_profile`,
:func:`apply_criteria`), screen with active learning (:class:`ScreeningSession`,
:func:`simulate`), draw the flow diagram (:func:`prisma_flow`) and export the included
records (:func:`export_extraction_sheet`). Live PubMed searches: :class:`EUtilsClient`.
"""

from neuromodmap.literature.activelearning import ActiveLearner, SimulationResult, simulate
from neuromodmap.literature.criteria import CriteriaProfile, apply_criteria, load_profile
from neuromodmap.literature.dedup import DedupResult, deduplicate
from neuromodmap.literature.eutils import EUtilsClient, EUtilsError
from neuromodmap.literature.export import (
    export_extraction_sheet,
    extraction_sheet,
    included_records,
)
from neuromodmap.literature.io import detect_format, read_many, read_records
from neuromodmap.literature.prisma import PrismaFlow, prisma_flow
from neuromodmap.literature.records import ImportIssue, ImportResult, LiteratureImportError, Record
from neuromodmap.literature.screening import ScreeningSession, record_decision
from neuromodmap.literature.store import load_records, open_store, save_dedup, save_import

__all__ = [
    "ActiveLearner", "SimulationResult", "simulate",
    "CriteriaProfile", "apply_criteria", "load_profile",
    "DedupResult", "deduplicate",
    "EUtilsClient", "EUtilsError",
    "export_extraction_sheet", "extraction_sheet", "included_records",
    "detect_format", "read_many", "read_records",
    "PrismaFlow", "prisma_flow",
    "ImportIssue", "ImportResult", "LiteratureImportError", "Record",
    "ScreeningSession", "record_decision",
    "load_records", "open_store", "save_dedup", "save_import",
]
