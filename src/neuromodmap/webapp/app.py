"""The FastAPI application: stores, templates, security and the routers of every page.

See README_DEV.md in this folder for the conventions a page module follows.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from neuromodmap import __version__
from neuromodmap.webapp.db import StoreBusy, StoreMissing, Stores
from neuromodmap.webapp.search import TextIndex
from neuromodmap.webapp.security import CSRF_FIELD, SecurityMiddleware

__all__ = ["create_app", "render", "stores", "templates", "NAV", "PAGE_MODULES"]

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
log = logging.getLogger("neuromodmap.webapp")

#: the navigation bar: (key, label, path)
NAV = [("trials", "Trials", "/trials"), ("screening", "Screening", "/screening"),
       ("evidence", "Evidence", "/evidence"), ("connectome", "Connectome", "/connectome")]
#: page modules included when present: each defines ``router`` (an ``APIRouter``)
PAGE_MODULES = ["neuromodmap.webapp.trials", "neuromodmap.webapp.screening",
                "neuromodmap.webapp.pages_evidence", "neuromodmap.webapp.pages_connectome"]


def stores(request: Request) -> Stores:
    """The app's :class:`~neuromodmap.webapp.db.Stores` (use as a FastAPI dependency or call it)."""
    return request.app.state.stores


def text_index(request: Request) -> TextIndex:
    """The app's word index of the trials store (the ``q`` filter)."""
    return request.app.state.text_index


def _csrf_input(request: Request) -> Markup:
    token = getattr(request.state, "csrf_token", "")
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">')


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200, nav: str | None = None) -> HTMLResponse:
    """Render ``template`` (which extends ``base.html``) with the common context.

    The context always has ``request``, ``csrf_token`` (for ``X-CSRF-Token``), ``csrf_input``
    (a hidden form field), ``nav`` (the active tab key), ``nav_items``, ``version`` and
    ``has_review`` (whether the app was started with ``--review``).
    """
    ctx = {
        "request": request,
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "csrf_input": _csrf_input(request),
        "nav": nav,
        "nav_items": NAV,
        "version": __version__,
        "has_review": request.app.state.stores.paths.get("review") is not None,
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or ("application/json" in accept and "text/html" not in accept)


def _error(request: Request, status: int, message: str, headers: dict | None = None) -> Response:
    """An error as JSON (``{"detail": message}``) for the API, as a page otherwise."""
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    resp = render(request, "error.html", {"status": status, "message": message}, status_code=status)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            return "malformed JSON body: " + str(err.get("ctx", {}).get("error", msg))
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "bad request: " + "; ".join(parts)


def create_app(db: Path, review: Path | None = None, token: str | None = None, *,
               host: str | None = None, busy_wait: float = 4.0, linger: float = 5.0,
               text_index: str | None = None) -> FastAPI:
    """The web app over the trials store ``db`` (and the literature/review store ``review``).

    ``token``: when set, every request must carry it (see :mod:`neuromodmap.webapp.security`).
    ``host``: the address served on, accepted in the Host header besides the loopback names.
    ``busy_wait``: seconds a request waits for a store another process holds before a 503.
    ``linger``: idle seconds after which the app closes its read-only instance of a store.
    ``text_index``: how ``q`` searches: ``background`` (default; a word index built once per
    store version), ``sync`` or ``off`` (scan); see :mod:`neuromodmap.webapp.search`.
    """
    app = FastAPI(title="neuromodmap", version=__version__, docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.stores = Stores(Path(db), Path(review) if review else None, busy_wait=busy_wait, linger=linger)
    app.state.token = token
    app.state.text_index = TextIndex(lambda: app.state.stores.read("trials"), text_index)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(StoreBusy)
    async def _busy(request: Request, exc: StoreBusy):
        return _error(request, 503, str(exc), headers={"Retry-After": "2"})

    @app.exception_handler(StoreMissing)
    async def _missing(request: Request, exc: StoreMissing):
        return _error(request, 404, str(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return _error(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(404)
    async def _not_found(request: Request, exc):
        detail = getattr(exc, "detail", None) or "not found"
        return _error(request, 404, str(detail) if detail != "Not Found" else f"no page at {request.url.path}")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return _error(request, 422 if not any(e.get("type") == "json_invalid" for e in exc.errors()) else 400,
                      _validation_message(exc))

    @app.get("/", include_in_schema=False)
    def _home() -> RedirectResponse:
        return RedirectResponse("/trials", status_code=303)

    @app.get("/api/csrf", tags=["security"])
    def _csrf(request: Request) -> dict:
        """This browser's CSRF token (also in the ``nm_csrf`` cookie), for API clients without a token."""
        return {"csrf_token": request.state.csrf_token, "header": "X-CSRF-Token"}

    for name in PAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        app.include_router(module.router)

    allowed = {host} if host else set()
    app.add_middleware(SecurityMiddleware, token=token, allowed_hosts=allowed)
    return app
