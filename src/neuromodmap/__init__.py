"""neuromodmap: a reproducible pipeline for neuromodulation research in chronic pain and
depression (trial registries, literature screening, meta-analysis, connectomic mapping)."""

__version__ = "0.1.0"

CITATION = (
    f"neuromodmap {__version__}: a reproducible pipeline for neuromodulation research in chronic "
    "pain and depression."
)

__all__ = ["__version__", "CITATION"]
