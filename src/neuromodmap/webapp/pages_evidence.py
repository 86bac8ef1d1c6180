"""Evidence page: pick a shipped extraction sheet or upload one, see the pooled results, forest and funnel.

Everything is the evidence stage's own code: :func:`neuromodmap.evidence.run_meta` (validation,
effect sizes, pooling, the forest and funnel figures, the methods paragraph). The page only
renders what it returns. ``/evidence/result?dataset=gaynes2011_fig13&measure=RR&by=subgroup`` is
an addressable view of a shipped sheet; an upload (CSV or XLSX, at most 5 MB) is analysed once
and not stored. JSON twins: ``GET /api/evidence/datasets``, ``GET /api/evidence/meta`` (same
query) and ``POST /api/evidence/meta`` (multipart upload).
"""

from __future__ import annotations

import base64
import io
import tempfile
import threading
from pathlib import Path

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse

from neuromodmap.webapp.app import render

__all__ = ["router"]

router = APIRouter()
MAX_UPLOAD = 5 * 1024 * 1024
_SUFFIXES = (".csv", ".tsv", ".xlsx", ".txt")
# matplotlib's pyplot state is not thread-safe: one analysis with figures at a time
_PLOT_LOCK = threading.Lock()


def _datasets() -> list[dict]:
    from neuromodmap.evidence import datasets

    return [{"name": d.name, "title": d.title, "measure": d.measure, "by": d.by, "figure": d.figure,
             "source": d.url} for d in datasets.DATASETS.values()]


def _options() -> dict:
    from neuromodmap.evidence._escalc import MEASURES
    from neuromodmap.evidence._rma import METHODS
    from neuromodmap.evidence.pipeline import GROUPABLE

    return {"measures": list(MEASURES), "methods": list(METHODS), "groupable": list(GROUPABLE)}


def _check(measure: str, by: str | None, method: str, test: str) -> tuple[str, str | None, str, str]:
    opts = _options()
    measure, method, test = measure.upper(), method.upper(), test.lower()
    by = by or None
    if measure not in opts["measures"]:
        raise HTTPException(422, f"unknown measure {measure!r}; one of {', '.join(opts['measures'])}")
    if method not in opts["methods"]:
        raise HTTPException(422, f"unknown method {method!r}; one of {', '.join(opts['methods'])}")
    if by is not None and by not in opts["groupable"]:
        raise HTTPException(422, f"cannot split by {by!r}; one of {', '.join(opts['groupable'])}")
    if test not in ("z", "knha"):
        raise HTTPException(422, "test must be 'z' or 'knha'")
    return measure, by, method, test


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _analyse(path: Path, label: str, measure: str, by: str | None, method: str, test: str) -> dict:
    """Run the evidence stage on ``path``; bad sheets become a 422 listing every bad cell."""
    import matplotlib.pyplot as plt

    from neuromodmap.evidence import run_meta
    from neuromodmap.evidence._errors import MetaAnalysisError, SheetError
    from neuromodmap.evidence.pipeline import SheetValidationError

    with _PLOT_LOCK:
        try:
            report = run_meta(path, measure=measure, by=by, method=method, test=test)
        except SheetValidationError as exc:
            lines = [str(p) for p in exc.problems]
            error = HTTPException(422, f"{label}: {len(lines)} bad cell(s), nothing was pooled: " + "; ".join(lines[:50]))
            error.problems = lines[:200]
            raise error from None
        except (SheetError, MetaAnalysisError, ValueError, KeyError, OSError) as exc:
            text = str(exc).replace(str(path), label)
            raise HTTPException(422, text if text.startswith(label) else f"{label}: {text}") from None
        try:
            figures = {name: _png(fig) for name, fig in report.figures.items()}
        finally:
            for fig in report.figures.values():
                plt.close(fig)
    pooled = report.pooled_table()
    studies = report.study_table()
    return {"sheet": label, "measure": measure, "by": by, "method": method, "test": test,
            "pooled": _records(pooled), "studies": _records(studies), "notes": list(report.notes),
            "methods": report.methods_paragraph(), "summary": str(report.result), "figures": figures}


def _records(frame) -> list[dict]:
    import numpy as np
    import pandas as pd

    out = []
    for row in frame.to_dict("records"):
        clean = {}
        for k, v in row.items():
            if isinstance(v, float | np.floating):
                clean[str(k)] = None if not np.isfinite(v) else float(v)
            elif isinstance(v, np.integer):
                clean[str(k)] = int(v)
            elif v is pd.NA or v is None or (not isinstance(v, list | tuple | dict) and pd.isna(v)):
                clean[str(k)] = None
            else:
                clean[str(k)] = v if isinstance(v, int | str | bool) else str(v)
        out.append(clean)
    return out


def _dataset_result(dataset: str, measure: str | None, by: str | None, method: str, test: str) -> dict:
    from neuromodmap.evidence import datasets

    if dataset not in datasets.DATASETS:
        raise HTTPException(404, f"unknown dataset {dataset!r}; one of {', '.join(datasets.DATASETS)}")
    ds = datasets.DATASETS[dataset]
    by = ds.by if not by else (None if by == "none" else by)  # empty: the sheet's own split
    measure, by, method, test = _check(measure or ds.measure, by, method, test)
    result = _analyse(datasets.dataset_path(dataset), ds.filename, measure, by, method, test)
    result["dataset"] = {"name": ds.name, "title": ds.title, "figure": ds.figure, "source": ds.url,
                         "citation": datasets.GAYNES_2011}
    return result


async def _upload_result(sheet: UploadFile, measure: str, by: str | None, method: str, test: str) -> dict:
    name = Path(sheet.filename or "sheet.csv").name
    if not name.lower().endswith(_SUFFIXES):
        raise HTTPException(422, f"{name}: upload a CSV, TSV or XLSX extraction sheet")
    data = await sheet.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise HTTPException(413, f"{name}: larger than {MAX_UPLOAD // (1024 * 1024)} MB")
    if not data:
        raise HTTPException(422, f"{name}: the file is empty")
    measure, by, method, test = _check(measure, by, method, test)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        return _analyse(path, name, measure, by, method, test)


# ------------------------------------------------------------------------------------ API
@router.get("/api/evidence/datasets", tags=["evidence"])
def api_datasets() -> dict:
    """The extraction sheets shipped with neuromodmap (real, cited) and the analysis options."""
    return {"datasets": _datasets(), **_options()}


@router.get("/api/evidence/meta", tags=["evidence"])
def api_meta(dataset: str = Query(..., max_length=100), measure: str | None = Query(None, max_length=10),
             by: str | None = Query(None, max_length=40), method: str = Query("REML", max_length=10),
             test: str = Query("z", max_length=10), figures: bool = False) -> dict:
    """Pool a shipped sheet: pooled table, per-study effects, notes, methods (figures as PNG data URIs on request)."""
    result = _dataset_result(dataset, measure, by, method, test)
    if not figures:
        result.pop("figures")
    return result


@router.post("/api/evidence/meta", tags=["evidence"])
async def api_meta_upload(sheet: UploadFile = File(...), measure: str = Form("SMD"), by: str = Form(""),
                          method: str = Form("REML"), test: str = Form("z")) -> dict:
    """Pool an uploaded extraction sheet (multipart; not stored)."""
    result = await _upload_result(sheet, measure, by or None, method, test)
    result.pop("figures")
    return result


# ------------------------------------------------------------------------------------ pages
@router.get("/evidence", response_class=HTMLResponse, include_in_schema=False)
def page_evidence(request: Request):
    return render(request, "evidence/index.html", {"datasets": _datasets(), **_options()}, nav="evidence")


@router.get("/evidence/result", response_class=HTMLResponse, include_in_schema=False)
def page_result(request: Request, dataset: str = Query(..., max_length=100),
                measure: str | None = Query(None, max_length=10), by: str | None = Query(None, max_length=40),
                method: str = Query("REML", max_length=10), test: str = Query("z", max_length=10)):
    result = _dataset_result(dataset, measure, by, method, test)
    return render(request, "evidence/result.html", {"r": result, "datasets": _datasets(), **_options()},
                  nav="evidence")


@router.post("/evidence/upload", response_class=HTMLResponse, include_in_schema=False)
async def page_upload(request: Request, sheet: UploadFile = File(...), measure: str = Form("SMD"),
                      by: str = Form(""), method: str = Form("REML"), test: str = Form("z")):
    try:
        result = await _upload_result(sheet, measure, by or None, method, test)
    except HTTPException as exc:
        problems = getattr(exc, "problems", [])
        message = str(exc.detail).split(": ", 1)[0] + ": " + (f"{len(problems)} bad cell(s), nothing was pooled"
                                                              if problems else str(exc.detail).split(": ", 1)[-1])
        detail = {"message": message, "problems": problems}
        return render(request, "evidence/index.html", {"datasets": _datasets(), "error": detail, **_options()},
                      status_code=exc.status_code, nav="evidence")
    return render(request, "evidence/result.html", {"r": result, "datasets": _datasets(), **_options()},
                  nav="evidence")
