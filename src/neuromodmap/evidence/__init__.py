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

from neuromodmap._lazy import lazy_exports

# Names are imported on first use, so `neuromodmap --help` and reading one file stay light.
_EXPORTS = {
    "_errors": ("ConvergenceError", "MetaAnalysisError", "MetaAnalysisWarning", "SheetError"),
    "_escalc": ("MEASURES", "escalc"),
    "_io": ("read_sheet", "write_sheet", "write_template"),
    "_metareg": ("ConnectivityMetaRegression", "connectivity_metaregression", "study_sites"),
    "_methods": ("BootstrapResult", "RegtestResult", "TrimfillResult", "bootstrap", "cumul", "leave1out", "regtest", "trimfill"),
    "_rma": ("METHODS", "RMAResult", "SubgroupResult", "qprofile_tau2", "rma"),
    "_rma_mv": ("RMAMVResult", "rma_mv", "robust"),
    "_transforms": ("back_transform", "transf_exp", "transf_ilogit", "transf_ipft", "transf_ipft_hm", "transf_pft"),
    "pipeline": ("MetaReport", "SheetValidationError", "effect_sizes", "run_meta"),
    "sheet": ("CITATION_COLUMNS", "COLUMNS", "ExtractionRecord", "validate_rows"),
    "_plots": ("forest", "funnel"),  # matplotlib
    "datasets": ("datasets",),
}

__all__ = [
    "escalc", "rma", "rma_mv", "robust", "leave1out", "cumul", "regtest", "trimfill", "bootstrap", "qprofile_tau2", "forest", "funnel",
    "RMAResult", "RMAMVResult", "SubgroupResult", "BootstrapResult", "RegtestResult", "TrimfillResult",
    "transf_exp", "transf_ilogit", "transf_pft", "transf_ipft", "transf_ipft_hm", "back_transform",
    "MEASURES", "METHODS", "COLUMNS", "CITATION_COLUMNS", "ExtractionRecord", "validate_rows",
    "read_sheet", "write_sheet", "write_template", "effect_sizes", "run_meta", "MetaReport", "SheetValidationError",
    "MetaAnalysisError", "ConvergenceError", "MetaAnalysisWarning", "SheetError",
    "connectivity_metaregression", "ConnectivityMetaRegression", "study_sites", "datasets",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
