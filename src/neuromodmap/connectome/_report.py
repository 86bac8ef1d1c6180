"""Files, figures and the HTML section of a :class:`TargetMap` (private)."""

from __future__ import annotations

import gzip
import io
import re
from importlib.resources import files
from pathlib import Path

import jinja2
import nibabel as nib
import numpy as np
from matplotlib.figure import Figure

from neuromodmap._utils import atomic_write, write_csv

__all__ = ["write_outputs", "render_section", "save_nifti"]

_NULL_NAMES = {"random-sites": "random sites (same depth classes)", "variogram": "variogram surrogates (brainsmash)",
               "depth-relabel": "depth relabelling (random splits of the same targets)", "none": "no null"}


def save_nifti(img: nib.Nifti1Image, path: Path) -> Path:
    """Write a gzip NIfTI atomically (no partial file on failure)."""
    with atomic_write(path, "wb") as fh:
        fh.write(gzip.compress(img.to_bytes(), compresslevel=6))
    return path


def _save_figure(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _glass_brain(img: nib.Nifti1Image, title: str, path: Path) -> Path:
    from nilearn import plotting

    data = np.asarray(img.dataobj)
    vmax = float(np.nanmax(np.abs(data))) or 1.0
    fig = Figure(figsize=(10, 3))
    plotting.plot_glass_brain(img, figure=fig, display_mode="lyrz", colorbar=True, plot_abs=False,
                                        cmap="RdBu_r", vmin=-vmax, vmax=vmax, title=title)
    # a bare Figure (not pyplot) so nothing leaks into the user's pyplot state
    return _save_figure(fig, path)


def _stat_map(img: nib.Nifti1Image, title: str, path: Path) -> Path:
    from nilearn import plotting

    data = np.asarray(img.dataobj)
    vmax = float(np.nanmax(np.abs(data))) or 1.0
    fig = Figure(figsize=(10, 3.2))
    plotting.plot_stat_map(img, figure=fig, display_mode="ortho", colorbar=True, cmap="RdBu_r",
                                     vmax=vmax, title=title, draw_cross=False)
    # a bare Figure (not pyplot) so nothing leaks into the user's pyplot state
    return _save_figure(fig, path)


def _hub_bars(result, path: Path, n: int = 20) -> Path:
    hubs = result.hubs.head(n).iloc[::-1]
    fig = Figure(figsize=(7, max(3, 0.28 * len(hubs) + 1)))
    ax = fig.add_subplot()
    ax.barh(hubs.label, hubs.n_targets, color="#4c72b0")
    ax.set_xlabel(f"targets with this region in their top {result.top_percent:g} %")
    ax.set_title(f"Hubs on {result.connectome.name}")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return _save_figure(fig, path)


def _similarity_heatmap(result, path: Path) -> Path:
    sim = result.similarity
    size = max(4, 0.3 * len(sim) + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.add_subplot()
    im = ax.imshow(sim.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(sim)), sim.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(sim)), sim.index, fontsize=7)
    ax.set_title("Target × target similarity (Pearson r of profiles)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return _save_figure(fig, path)


def _figures(result, out: Path) -> list[dict]:
    figs = []
    for (group_by, group) in result.groups.index:
        if group_by == "indication" and result.indication in ("pain", "depression") and group != result.indication:
            continue  # a 'both' target in a pain-only run is not a depression group
        if group_by in ("depth", "indication") and group != "unspecified":
            path = out / "figures" / f"glass_{group_by}_{_slug(group)}.png"
            n = int(result.groups.loc[(group_by, group), "n_targets"])
            _glass_brain(result.group_image(group_by, group), f"{group} targets (n={n})", path)
            figs.append({"path": path, "caption": f"Mean connectivity of {group} targets (n = {n}), "
                                                  f"{result.connectome.units}."})
    conj = result.conjunction_image()
    if conj is not None:
        path = out / "figures" / "stat_conjunction.png"
        which = result.overlap.get("indication", "")
        _stat_map(conj, f"superficial ∩ deep conjunction ({which} targets)", path)
        figs.append({"path": path, "caption": f"Conjunction of superficial and deep {which} target maps (top "
                                              f"{result.top_percent:g} % of each, minimum statistic)."})
    path = _hub_bars(result, out / "figures" / "hubs.png")
    figs.append({"path": path, "caption": "Regions in the top connectivity of the most targets."})
    path = _similarity_heatmap(result, out / "figures" / "similarity.png")
    figs.append({"path": path, "caption": "Similarity of target connectivity profiles."})
    if "pooled_effect" in result.targets and result.targets["pooled_effect"].notna().any():
        from neuromodmap.connectome._effects import plot_target_effects

        path = _save_figure(plot_target_effects(result.targets), out / "figures" / "target_effects.png")
        figs.append({"path": path, "caption": "Targets coloured by the pooled effect of the studies that "
                                              "stimulated them (evidence stage, per target code; grey: no "
                                              "pooled effect), marker area proportional to the number of "
                                              "studies."})
    return figs


def _write_csv(frame, path: Path, **kwargs) -> Path:
    kwargs.setdefault("index", True)  # profiles, group maps and similarity keep their index
    return write_csv(frame, path, **kwargs)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                              loader=jinja2.FunctionLoader(
                                  lambda name: (files("neuromodmap.connectome") / "templates" / name)
                                  .read_text(encoding="utf-8")))


def render_section(result, figures: list[dict] | None = None) -> str:
    """The HTML section (escaped): summary, methods, overlap, hubs, targets, figures."""
    ov = result.overlap if result.overlap.get("r") is not None else None
    targets = result.targets.copy()
    if "citation" not in targets:
        targets["citation"] = ""
    from neuromodmap.connectome._mapping import HUB_ALPHA

    headline, summary = result.headline(), result.summary()
    table = result.overlap_table
    overlap_rows = [] if table is None or table.empty else list(table.itertuples())
    sim_rows = [] if result.similarity_null is None else list(result.similarity_null.itertuples())
    return _environment().get_template("section.html.j2").render(
        headline=headline, summary=summary[len(headline):].lstrip(". ") if summary.startswith(headline) else summary, methods=result.methods(), overlap=ov,
        overlaps=result.overlaps, overlap_rows=overlap_rows, similarity_rows=sim_rows,
        null_names=_NULL_NAMES, hub_null="hub" in result.hubs, hub_alpha=f"{HUB_ALPHA:g}",
        top_percent=f"{result.top_percent:g}",
        units=result.connectome.units, hubs=list(result.hubs.head(20).itertuples()),
        targets=list(targets.astype(object).where(targets.notna(), "").itertuples()),
        skipped=list(result.skipped.itertuples()),
        has_effects="pooled_effect" in targets and bool(targets["pooled_effect"].notna().any()),
        figures=figures or [], provenance=result.provenance.sentence())


def write_outputs(result, out: Path, *, figures: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _write_csv(result.targets, out / "targets_mapped.csv", index=False),
        _write_csv(result.profiles, out / "profiles.csv"),
        _write_csv(result.groups, out / "group_maps.csv"),
        _write_csv(result.hubs, out / "hubs.csv", index=False),
        _write_csv(result.similarity, out / "similarity.csv"),
    ]
    if len(result.skipped):
        written.append(_write_csv(result.skipped, out / "targets_skipped.csv", index=False))
    ov = result.overlap
    if ov.get("r") is not None:
        import pandas as pd

        written.append(_write_csv(result.overlap_table, out / "overlap.csv", index=False))
        if len(result.similarity_null):
            written.append(_write_csv(result.similarity_null, out / "similarity_null.csv", index=False))
        # one column per indication and map when several indications were compared
        several = len(result.overlaps) > 1
        maps = pd.DataFrame({(f"{ind}_{key}" if several else key): o[key]
                             for ind, o in result.overlaps.items() for key in ("superficial", "deep", "conjunction")})
        written.append(_write_csv(maps, out / "overlap_maps.csv", index_label="region"))
        written.append(save_nifti(result.conjunction_image(), out / "conjunction.nii.gz"))
    written.append(save_nifti(result.profile_image(), out / "profiles.nii.gz"))
    for (group_by, group) in result.groups.index:
        written.append(save_nifti(result.group_image(group_by, group),
                                  out / "groups" / f"{group_by}_{_slug(group)}.nii.gz"))
    figs = []
    if figures:
        figs = _figures(result, out)
        written += [f["path"] for f in figs]
    rel = [{"src": f["path"].relative_to(out).as_posix(), "caption": f["caption"]} for f in figs]
    html = render_section(result, figures=rel)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>neuromodmap connectome"
            "</title></head><body>\n" + html + "\n</body></html>\n")
    with atomic_write(out / "connectome.html", "w", encoding="utf-8") as fh:
        fh.write(page)
    written.append(out / "connectome.html")
    with atomic_write(out / "methods.txt", "w", encoding="utf-8") as fh:
        fh.write(result.methods() + "\n")
    written.append(out / "methods.txt")
    from neuromodmap.connectome._reportlet import map_section

    written.append(map_section(result, out, figs).write(out))
    written.append(out / "targets_report.csv")
    return written
