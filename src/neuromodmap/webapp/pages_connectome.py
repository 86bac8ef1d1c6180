"""Connectome page: the target catalogue and the maps in an interactive brain viewer, offline.

The catalogue is :func:`neuromodmap.connectome.target_catalogue` (literature and atlas-derived
rows, each with its citation). The maps are :func:`neuromodmap.connectome.map_targets` on the
default parcel connectome (no null models: the page shows profiles, the CLI tests them): one
target's connectivity profile, or a group's mean profile, painted into the atlas. The viewers are
nilearn's ``view_markers`` (plotly) and ``view_img`` (brainsprite) HTML, whose JavaScript nilearn
inlines; the one outside reference it writes (a favicon link to GitHub) is removed, so the viewer
makes no network request. They are served as documents of their own and framed by the page.

JSON twins: ``GET /api/connectome/targets`` (the catalogue), ``GET /api/connectome/maps`` (the
maps on offer).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from neuromodmap.webapp.app import render

__all__ = ["router"]

router = APIRouter()
_LOCK = threading.Lock()
_REMOTE_ICON = re.compile(r"<link\s+rel=\"icon\"[^>]*>", re.IGNORECASE)
_MAP_ID = re.compile(r"(target|group):[a-z0-9_]+(?::[a-z0-9_]+)?")
_DEPTH_COLOURS = {"superficial": "#1b6ca8", "deep": "#c2571a"}


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(503, f"the connectome data are not available ({exc}); set NEUROMODMAP_DATA to the "
                              "shared data folder or fetch the connectomes (docs/connectome.md)")


@lru_cache(maxsize=1)
def _catalogue():
    from neuromodmap.connectome import target_catalogue

    return target_catalogue()


@lru_cache(maxsize=1)
def _mapped():
    from neuromodmap.connectome import load_connectome, map_targets

    connectome = load_connectome()
    return map_targets(_catalogue(), connectome, null="none")


def catalogue():
    with _LOCK:
        try:
            return _catalogue()
        except (OSError, ValueError, KeyError) as exc:
            raise _unavailable(exc) from None


def mapped():
    with _LOCK:
        try:
            return _mapped()
        except (OSError, ValueError, KeyError) as exc:
            raise _unavailable(exc) from None


def _maps() -> list[dict]:
    tm = mapped()
    names = catalogue().set_index("id")["name"]
    out = [{"id": f"group:{g}:{v}", "label": f"mean profile, {g} = {v} ({int(row['n_targets'])} targets)"}
           for (g, v), row in tm.groups.iterrows()]
    out += [{"id": f"target:{t}", "label": f"{names.get(t, t)} ({t})"} for t in tm.profiles.index]
    return out


def _offline(html: str) -> str:
    return _REMOTE_ICON.sub("", html)


def _map_image(map_id: str):
    if not _MAP_ID.fullmatch(map_id or ""):
        raise HTTPException(422, f"map {map_id[:80]!r} is not a map id (target:ID or group:COLUMN:VALUE)")
    tm = mapped()
    kind, _, rest = map_id.partition(":")
    if kind == "target":
        if rest not in tm.profiles.index:
            raise HTTPException(404, f"no mapped target {rest!r}")
        return tm.connectome.atlas.paint(tm.profiles.loc[rest].to_numpy(float)), f"connectivity of {rest}"
    column, _, value = rest.partition(":")
    if (column, value) not in tm.groups.index:
        raise HTTPException(404, f"no group {column} = {value!r}")
    return tm.group_image(column, value), f"mean connectivity, {column} = {value}"


# ------------------------------------------------------------------------------------ API
@router.get("/api/connectome/targets", tags=["connectome"])
def api_targets() -> dict:
    """The built-in target catalogue: MNI coordinates, depth, indication, modality, source and citation."""
    frame = catalogue()
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return {"total": len(records), "items": records}


@router.get("/api/connectome/maps", tags=["connectome"])
def api_maps() -> dict:
    """The maps the viewer offers (ids for ``/connectome/viewer/map?map=...``) and the connectome used."""
    tm = mapped()
    return {"connectome": repr(tm.connectome), "units": tm.connectome.units, "maps": _maps()}


# ------------------------------------------------------------------------------------ pages
@router.get("/connectome", response_class=HTMLResponse, include_in_schema=False)
def page_connectome(request: Request, map: str | None = Query(None, max_length=120)):  # noqa: A002
    frame = catalogue()
    maps = _maps()
    chosen = map or maps[0]["id"]
    if not _MAP_ID.fullmatch(chosen):
        raise HTTPException(422, "map must be target:ID or group:COLUMN:VALUE")
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return render(request, "connectome/index.html",
                  {"targets": rows, "maps": maps, "chosen": chosen, "connectome": repr(mapped().connectome)},
                  nav="connectome")


@router.get("/connectome/viewer/targets", response_class=HTMLResponse, include_in_schema=False)
def viewer_targets() -> HTMLResponse:
    """nilearn view_markers of the catalogue, coloured by depth (blue superficial, orange deep)."""
    from nilearn import plotting

    frame = catalogue()
    colours = [_DEPTH_COLOURS.get(d, "#555555") for d in frame["depth"]]
    with _LOCK:
        view = plotting.view_markers(frame[["x", "y", "z"]].to_numpy(float), marker_color=colours,
                                     marker_size=7, marker_labels=[str(n) for n in frame["name"]],
                                     title="stimulation targets (blue superficial, orange deep)")
        html = view.get_standalone()
    return HTMLResponse(_offline(html))


@router.get("/connectome/viewer/map", response_class=HTMLResponse, include_in_schema=False)
def viewer_map(map: str = Query(..., max_length=120)) -> HTMLResponse:  # noqa: A002
    """nilearn view_img of one map (a target's profile or a group's mean) on the MNI template."""
    from nilearn import plotting

    image, title = _map_image(map)
    with _LOCK:
        view = plotting.view_img(image, threshold=None, symmetric_cmap=True, title=title, colorbar=True,
                                 black_bg=False, draw_cross=True)
        html = view.get_standalone()
    return HTMLResponse(_offline(html))
