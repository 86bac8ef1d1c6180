"""neuromodmap: a reproducible pipeline for neuromodulation research in chronic pain and
depression (trial registries, literature screening, meta-analysis, connectomic mapping)."""

__version__ = "0.1.0"

CITATION = (
    "neuromodmap {version}: a reproducible pipeline for neuromodulation research in chronic "
    "pain and depression."
).format(version=__version__)

__all__ = ["__version__", "CITATION"]
