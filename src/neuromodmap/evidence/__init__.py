"""neuromodmap.evidence: effect sizes, metafor-grade meta-analysis and the extraction sheet.

metafor's verbs, in Python, with metafor's numbers::

    from neuromodmap.evidence import escalc, rma, regtest, trimfill, forest
    es = escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, slab=author)
    res = rma(es.yi, es.vi, method="REML", slab=es.index)
    print(res)                      # like metafor's summary
    res.predict(transf_exp)         # back-transformed estimate, CI and prediction interval
    mv = rma_mv(yi, vi, study=study_id)   # three-level model: several effects per study
    robust(mv)                      # cluster-robust (CR1) tests and CIs

The extraction sheet's columns are :data:`neuromodmap.evidence.sheet.COLUMNS`.
"""

from neuromodmap.evidence._errors import (
    ConvergenceError,
    MetaAnalysisError,
    MetaAnalysisWarning,
    SheetError,
)
from neuromodmap.evidence._escalc import MEASURES, escalc
from neuromodmap.evidence._io import read_sheet, write_sheet, write_template
from neuromodmap.evidence._metareg import (
    ConnectivityMetaRegression,
    connectivity_metaregression,
    study_sites,
)
from neuromodmap.evidence._methods import (
    BootstrapResult,
    RegtestResult,
    TrimfillResult,
    bootstrap,
    cumul,
    leave1out,
    regtest,
    trimfill,
)
from neuromodmap.evidence._rma import METHODS, RMAResult, SubgroupResult, qprofile_tau2, rma
from neuromodmap.evidence._rma_mv import RMAMVResult, rma_mv, robust
from neuromodmap.evidence._transforms import (
    back_transform,
    transf_exp,
    transf_ilogit,
    transf_ipft,
    transf_ipft_hm,
    transf_pft,
)
from neuromodmap.evidence.pipeline import MetaReport, SheetValidationError, effect_sizes, run_meta
from neuromodmap.evidence.sheet import CITATION_COLUMNS, COLUMNS, ExtractionRecord, validate_rows

__all__ = [
    "escalc", "rma", "rma_mv", "robust", "leave1out", "cumul", "regtest", "trimfill", "bootstrap", "qprofile_tau2", "forest", "funnel",
    "RMAResult", "RMAMVResult", "SubgroupResult", "BootstrapResult", "RegtestResult", "TrimfillResult",
    "transf_exp", "transf_ilogit", "transf_pft", "transf_ipft", "transf_ipft_hm", "back_transform",
    "MEASURES", "METHODS", "COLUMNS", "CITATION_COLUMNS", "ExtractionRecord", "validate_rows",
    "read_sheet", "write_sheet", "write_template", "effect_sizes", "run_meta", "MetaReport", "SheetValidationError",
    "MetaAnalysisError", "ConvergenceError", "MetaAnalysisWarning", "SheetError",
    "connectivity_metaregression", "ConnectivityMetaRegression", "study_sites", "datasets",
]


def __getattr__(name):
    # plotting pulls in matplotlib; import it only when asked for
    if name == "datasets":
        import importlib

        return importlib.import_module("neuromodmap.evidence.datasets")
    if name in ("forest", "funnel"):
        from neuromodmap.evidence import _plots

        return getattr(_plots, name)
    raise AttributeError(name)
