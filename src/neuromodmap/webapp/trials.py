"""The trials explorer: ``/trials`` and ``/trials/{registry_id}``, with JSON twins under ``/api/trials``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from neuromodmap.webapp.app import render, stores

router = APIRouter()


@router.get("/trials", include_in_schema=False)
def trials_page(request: Request):
    with stores(request).read("trials") as con:
        (n,) = con.execute("SELECT count(*) FROM trials").fetchone()
    return render(request, "trials/list.html", {"total": n}, nav="trials")
