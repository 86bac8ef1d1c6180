"""neuromodmap.trials: registry import, the trials store, classification and survey.

Import: :func:`read_trials` reads any supported file (format detected from content),
:class:`TrialStore` keeps trials in DuckDB, :func:`fetch_studies` pages the live
ClinicalTrials.gov API v2, :func:`link_registries` links ICTRP records to NCT records.
"""

from neuromodmap._lazy import lazy_exports

# Names are imported on first use, so `neuromodmap --help` and reading one file stay light.
_EXPORTS = {
    "classify": ("CLASSIFIER_VERSION", "classification_row", "classify", "classify_many"),
    "dedup": ("link_registries",),
    "io": ("FORMATS", "ImportedRecord", "TrialFileError", "detect_format", "read_trials"),
    "models": ("Classification", "ImportProblem", "Intervention", "Label", "Trial"),
    "store": ("ImportReport", "TrialStore"),
    "ctgov": ("FetchError", "FetchReport", "fetch_studies"),  # the API client pulls in httpx
}

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
