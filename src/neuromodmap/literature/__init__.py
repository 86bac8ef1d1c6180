"""neuromodmap.literature: search exports → de-duplication → screening → PRISMA 2020.

Import search exports (:func:`read_records`, :func:`read_many`), store them
(:func:`save_import`), find duplicates (:func:`deduplicate`), apply criteria
(:func:`load_profile`, :func:`apply_criteria`), screen with active learning
(:class:`ScreeningSession`, :func:`simulate`), draw the flow diagram (:func:`prisma_flow`),
export the included records (:func:`export_extraction_sheet`) and link records to the
registered trials they report (:func:`link_trials`). Live PubMed searches: :class:`EUtilsClient`.

Names are imported on first use, so reading a file does not load scikit-learn.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "activelearning": ("ActiveLearner", "SimulationResult", "simulate"),
    "criteria": ("CriteriaProfile", "apply_criteria", "load_profile"),
    "dedup": ("DedupResult", "deduplicate"),
    "eutils": ("EUtilsClient", "EUtilsError"),
    "export": ("export_extraction_sheet", "extraction_sheet", "included_records"),
    "io": ("detect_format", "read_many", "read_records"),
    "prisma": ("PrismaFlow", "prisma_flow"),
    "records": ("ImportIssue", "ImportResult", "LiteratureImportError", "Record"),
    "screening": ("ScreeningSession", "record_decision"),
    "store": ("load_records", "open_store", "save_dedup", "save_import"),
    "trial_links": ("TrialLinkReport", "link_trials", "load_trial_links", "publications_by_trial"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
