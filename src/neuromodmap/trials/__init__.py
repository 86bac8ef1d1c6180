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
from neuromodmap.trials.ctgov import FetchError, FetchReport, fetch_studies
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
