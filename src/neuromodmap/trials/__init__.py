"""neuromodmap.trials: registry import, the trials store, classification and survey.

Import: :func:`read_trials` reads any supported file (format detected from content),
:class:`TrialStore` keeps trials in DuckDB, :func:`fetch_studies` pages the live
ClinicalTrials.gov API v2, :func:`link_registries` links ICTRP records to NCT records.
"""

from neuromodmap.trials.classify import (
    CLASSIFIER_VERSION,
    classification_row,
    classify,
    classify_many,
)
from neuromodmap.trials.dedup import link_registries
from neuromodmap.trials.io import (
    FORMATS,
    ImportedRecord,
    TrialFileError,
    detect_format,
    read_trials,
)
from neuromodmap.trials.models import Classification, ImportProblem, Intervention, Label, Trial
from neuromodmap.trials.store import ImportReport, TrialStore

__all__ = [
    "CLASSIFIER_VERSION",
    "classification_row",
    "Classification",
    "FORMATS",
    "FetchError",
    "FetchReport",
    "ImportProblem",
    "ImportReport",
    "ImportedRecord",
    "Intervention",
    "Label",
    "Trial",
    "TrialFileError",
    "TrialStore",
    "classify",
    "classify_many",
    "detect_format",
    "fetch_studies",
    "link_registries",
    "read_trials",
]

_LAZY = {"FetchError", "FetchReport", "fetch_studies"}  # the API client pulls in httpx (~0.1 s)


def __getattr__(name: str):
    if name in _LAZY:
        from neuromodmap.trials import ctgov

        return getattr(ctgov, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
