"""The landscape survey of classified neuromodulation trials: tables, figures, HTML.

Input is two DataFrames (the store's ``trials`` and ``trial_labels`` tables) so the
survey never parses registry files. Every count table gets a figure (PNG and SVG), and
the HTML page carries a methods paragraph (source, query, as-of date) and a comparison
with seed 004 (Yamamoto, Elias et al. 2022, Stereotact Funct Neurosurg 100:14-25:
487 pain trials, 49.3 % non-invasive cortical, 43.7 % spinal cord, < 3 % DBS).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from neuromodmap import __version__  # noqa: E402
from neuromodmap import vocabulary as vocab  # noqa: E402
from neuromodmap._utils import atomic_write, write_csv  # noqa: E402
from neuromodmap.geography import continent  # noqa: E402

__all__ = ["SurveyResult", "survey", "SEED_004", "linked_publications_table", "LINKED_PUBLICATION_DEFINITION"]

#: seed 004's reported shares of pain neuromodulation trials, in percent
SEED_004 = {
    "n_trials": 487,
    "shares": {"noninvasive_cortical": 49.3, "spinal_cord": 43.7, "deep_brain": "< 3"},
    "citation": "Yamamoto K, Elias GJB, et al. Neuromodulation for Pain: A Comprehensive Survey and "
                "Systematic Review of Clinical Trials and Connectomic Analysis of Brain Targets. "
                "Stereotact Funct Neurosurg. 2022;100(1):14-25. doi:10.1159/000517873",
}

_PALETTE = ["#1b6ca8", "#e07a1f", "#3a923a", "#c23b3b", "#7b5ea7", "#8c564b", "#d46fb6", "#6b6b6b",
            "#b5b52a", "#1fb5c4"]


@dataclass
class SurveyTable:
    name: str
    title: str
    frame: pd.DataFrame
    figures: list[Path] = field(default_factory=list)
    note: str = ""


@dataclass
class SurveyResult:
    """What :func:`survey` wrote: tables, figures, the methods paragraph and the HTML page."""

    out_dir: Path
    tables: dict[str, SurveyTable]
    methods: str
    html_path: Path
    n_trials: int
    n_neuromod: int
    unavailable: list[str]
    #: the neuromodulation trials (labels and registry fields), one row each
    neuromod: pd.DataFrame | None = None
    import_runs: pd.DataFrame | None = None

    def table(self, name: str) -> pd.DataFrame:
        return self.tables[name].frame

    def section(self, sources=None):
        """The report section (:class:`neuromodmap.report.Section`); also writes the trial list CSV."""
        from neuromodmap.trials._reportlet import survey_section

        return survey_section(self, self.neuromod, import_runs=self.import_runs, sources=sources)


# ---------------------------------------------------------------------------
# Counting helpers
# ---------------------------------------------------------------------------
def _as_list(value) -> list:
    if value is None or value is pd.NA or value is pd.NaT:
        return []
    if isinstance(value, float) and math.isnan(value):
        return []
    if isinstance(value, str):
        return [v for v in value.split(";") if v]
    return list(value)


def _count_multi(series: pd.Series, denominator: int, labels: dict[str, str] | None = None,
                 key: str = "code") -> pd.DataFrame:
    """Trials per value of a multi-valued column; a trial counts once for each of its values."""
    exploded = series.map(_as_list).explode().dropna()
    counts = exploded.value_counts()
    frame = pd.DataFrame({key: counts.index.astype(str), "n_trials": counts.values.astype(int)})
    if labels is not None:
        frame.insert(1, "label", frame[key].map(lambda c: labels.get(c, c)))
    frame["percent"] = (100.0 * frame["n_trials"] / denominator).round(1) if denominator else np.nan
    return frame.reset_index(drop=True)


def _count_single(series: pd.Series, denominator: int, key: str) -> pd.DataFrame:
    counts = series.fillna("not reported").astype(str).value_counts()
    frame = pd.DataFrame({key: counts.index, "n_trials": counts.values.astype(int)})
    frame["percent"] = (100.0 * frame["n_trials"] / denominator).round(1) if denominator else np.nan
    return frame


def _present(v) -> bool:
    if isinstance(v, (list, tuple, np.ndarray)):
        return len(v) > 0
    return not pd.isna(v) and v != ""


def _has_data(series: pd.Series) -> bool:
    return bool(series.map(_present).any())


#: the registry fields only structured records carry (the 2018 text corpus has none of them)
_REGISTRY_COLUMNS = ("phases", "overall_status", "sponsor_class", "allocation", "masking", "primary_purpose",
                     "has_results", "countries", "start_date", "enrollment")


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------
_DPI = 150


def _tight_bbox(fig):
    """The area ``savefig(bbox_inches="tight")`` crops the PNG to: the figure's tight box on the Agg
    renderer at the PNG's dpi, padded by ``savefig.pad_inches``.

    Found once and given to both savefig calls (PNG and SVG): with ``bbox_inches="tight"`` each
    call first drew the whole figure without output to find it, half the survey's figure time.
    savefig's pass draws before measuring; these figures have nothing placed at draw time that
    the measure does not place itself (tick labels, titles and legends are laid out by
    ``get_tightbbox``), so the box is the same and the PNG byte-identical (checked on every survey
    figure: tests/trials/test_trials_survey_structured.py). The SVG shares the PNG's box, a
    fraction of a point wider or narrower than the box the SVG renderer's own pass found.
    """
    fig.set_dpi(_DPI)
    pad = matplotlib.rcParams["savefig.pad_inches"]
    return fig.get_tightbbox(fig.canvas.get_renderer()).padded(pad)


def _save(fig, out: Path, stem: str) -> list[Path]:
    paths = []
    bbox = _tight_bbox(fig)
    for ext in ("png", "svg"):
        path = out / "figures" / f"{stem}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, format=ext, dpi=_DPI, bbox_inches=bbox)
        paths.append(path)
    plt.close(fig)
    return paths


def _barh(frame: pd.DataFrame, label_col: str, title: str, out: Path, stem: str) -> list[Path]:
    data = frame.head(25).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(data) + 1.2))
    ax.barh(data[label_col].astype(str), data["n_trials"], color=_PALETTE[0])
    for y, (n, p) in enumerate(zip(data["n_trials"], data.get("percent", [np.nan] * len(data)), strict=False)):
        text = f"{n}" if (p is None or (isinstance(p, float) and math.isnan(p))) else f"{n} ({p:.1f} %)"
        ax.text(n, y, " " + text, va="center", fontsize=8)
    ax.set_xlabel("trials")
    ax.set_title(title, fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlim(0, max(1, data["n_trials"].max()) * 1.25)
    return _save(fig, out, stem)


_INDICATION_COLOURS = {"pain": "#3a923a", "depression": "#1b6ca8", "both": "#7b5ea7", "other": "#b0b0b0"}


def _stacked_on(ax, cross: pd.DataFrame, title: str, legend: str = "lower right") -> None:
    left = np.zeros(len(cross))
    for i, col in enumerate(cross.columns):
        ax.barh(cross.index.astype(str), cross[col].values, left=left, label=str(col),
                color=_INDICATION_COLOURS.get(str(col), _PALETTE[i % len(_PALETTE)]))
        left += cross[col].values
    ax.set_xlabel("trials")
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=7, frameon=False, loc=legend)
    ax.spines[["top", "right"]].set_visible(False)


def _stacked(cross: pd.DataFrame, title: str, out: Path, stem: str) -> list[Path]:
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(cross) + 1.5))
    _stacked_on(ax, cross, title)
    return _save(fig, out, stem)


def _stacked_pair(by_group: pd.DataFrame, by_indication: pd.DataFrame, title: str, out: Path,
                  stem: str) -> list[Path]:
    """One figure, two panels: a field's values by modality group (left) and by indication (right)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.4 * len(by_group) + 2.2), sharey=True)
    _stacked_on(left, by_group, f"{title}, by modality group", legend="upper left")
    _stacked_on(right, by_indication, "by indication", legend="lower right")
    left.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.4 / max(1, len(by_group))),
                ncol=2)
    return _save(fig, out, stem)


def _trend(frame: pd.DataFrame, title: str, out: Path, stem: str) -> list[Path]:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, col in enumerate(frame.columns):
        ax.plot(frame.index, frame[col], marker="o", ms=3, label=str(col), color=_PALETTE[i % len(_PALETTE)])
    ax.set_xlabel("start year")
    ax.set_ylabel("trials")
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, out, stem)


def _histogram(values: pd.Series, title: str, out: Path, stem: str) -> list[Path]:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    positive = values[values > 0]
    bins = np.logspace(0, max(1.0, math.log10(positive.max()) + 0.1), 25) if len(positive) else 10
    ax.hist(positive, bins=bins, color=_PALETTE[0])
    ax.set_xscale("log")
    ax.set_xlabel("planned or actual enrollment (participants, log scale)")
    ax.set_ylabel("trials")
    ax.set_title(title, fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, out, stem)


def _boxplots(frames: dict[str, pd.DataFrame], group_labels: dict, out: Path, stem: str) -> list[Path]:
    """Enrollment box plots by modality group (left) and by indication (right), log scale."""
    panels = []
    for by, frame in frames.items():
        parts = [(group_labels.get(k, k) if by == "group" else k, p["enrollment"].astype(float))
                 for k, p in frame.groupby("key", sort=False)]
        parts = [(k, v[v > 0]) for k, v in parts if (v > 0).any()]
        panels.append(sorted(parts, key=lambda kv: len(kv[1])))
    rows = max(1, *(len(p) for p in panels))
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * rows + 1.4))
    for ax, parts, title in zip(axes, panels, ("Enrollment, by modality group", "by indication"), strict=True):
        if parts:
            ax.boxplot([v.values for _, v in parts], orientation="horizontal", widths=0.6)
            ax.set_yticks(range(1, len(parts) + 1), [f"{k} (n = {len(v)})" for k, v in parts], fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("enrollment (participants, log scale)")
        ax.set_title(title, fontsize=10, loc="left")
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _save(fig, out, stem)


def _enrollment_row(values: pd.Series) -> dict:
    e = pd.to_numeric(values, errors="coerce").dropna()
    if not len(e):
        return {"n_trials": 0, "median": np.nan, "q1": np.nan, "q3": np.nan, "min": np.nan, "max": np.nan}
    return {"n_trials": len(e), "median": float(e.median()), "q1": float(e.quantile(0.25)),
            "q3": float(e.quantile(0.75)), "min": float(e.min()), "max": float(e.max())}


#: how single-valued registry codes read in the split tables
_FIELD_VALUE = {"has_results": {"True": "results posted", "False": "no results posted"}}
_CROSS_NOTE = ("The trials from structured registry records (text-only records are left out). A trial counts "
               "once in each of its modality groups (and, for phase, country and continent, once for each of "
               "its values); 'all trials' counts it once per value. 'not reported': a structured record without "
               "a value for the field.")


def _crosstab(values: pd.Series, nm: pd.DataFrame, by: str, group_labels: dict, name: str,
              top: int | None = None) -> pd.DataFrame:
    """Trials per field value (rows) and per modality group or indication (columns), plus all trials.

    ``values``: each trial's list of values (index aligned with ``nm``)."""
    frame = pd.DataFrame({"value": values, "registry_id": nm["registry_id"]})
    frame["key"] = nm["modality_group"].map(_as_list) if by == "group" else nm["indication"].map(lambda v: [v])
    exploded = frame.explode("value")
    exploded["value"] = exploded["value"].fillna("not reported")
    total = exploded.drop_duplicates(["registry_id", "value"])["value"].value_counts()
    cells = exploded.explode("key").dropna(subset=["key"])
    cells = cells.drop_duplicates(["registry_id", "value", "key"])
    cross = pd.crosstab(cells["value"], cells["key"])
    if by == "group":
        order = [g for g in vocab.MODALITY_GROUPS if g in cross.columns]
        cross = cross[order].rename(columns=group_labels)
    else:
        order = [c for c in ("pain", "depression", "both", "other") if c in cross.columns]
        cross = cross[order + [c for c in cross.columns if c not in order]]
    cross = cross.reindex(total.index, fill_value=0)
    cross["all trials"] = total
    cross = cross.sort_values("all trials", ascending=False, kind="stable")
    if top is not None:
        cross = cross.head(top)
    cross.index.name = name
    cross.columns.name = None
    return cross.astype(int)


# ---------------------------------------------------------------------------
# Survey
# ---------------------------------------------------------------------------
def _group_by_folder(sources: list[str], most: int = 3) -> list[str]:
    """Sources in order, with more than ``most`` files of one folder named as that folder."""
    folders: dict[str, list[str]] = {}
    for src in sources:
        path = src.split(" (query ")[0].split(", as of ")[0]
        folder = str(Path(path).parent) if "://" not in path and "/" in path else src
        folders.setdefault(folder, []).append(src)
    out = []
    for folder, items in folders.items():
        out.extend(items if len(items) <= most else [f"{len(items)} files in {folder}"])
    return out


def _methods(trials: pd.DataFrame, runs: pd.DataFrame | None, n_total: int, n_neuromod: int,
             classifier_version: str) -> str:
    sources = []
    if runs is not None and len(runs):
        for _, run in runs.iterrows():
            src = str(run.get("source") or "")
            query = run.get("query")
            as_of = run.get("as_of")
            piece = src
            if isinstance(query, str) and query and query not in ("{}", "null"):
                piece += f" (query {query})"
            if as_of is not None and not (isinstance(as_of, float) and math.isnan(as_of)) and str(as_of) != "NaT":
                piece += f", as of {pd.Timestamp(as_of).date().isoformat()}"
            sources.append(piece)
    elif "source" in trials:
        sources = sorted({str(s) for s in trials["source"].dropna().unique()})
    source_text = "; ".join(_group_by_folder(list(dict.fromkeys(sources)))) or "the imported registry records"
    return (
        f"Registry records were imported from {source_text}. ClinicalTrials.gov content is provided by the "
        f"U.S. National Library of Medicine. Of {n_total:,} records, {n_neuromod:,} were classified as testing "
        f"a neuromodulation intervention as a treatment arm by neuromodmap {__version__} (rule-based classifier "
        f"{classifier_version}; every label carries the field and text that support it). Modalities were "
        "grouped as in seed 004 (non-invasive cortical stimulation; spinal cord stimulation including dorsal "
        "root ganglion stimulation; deep brain stimulation; others). A trial that tests several modalities is "
        "counted once in each of its modalities and groups, so percentages can sum to more than 100. "
        "Fields a source does not carry (phase, status, dates, enrollment, countries, sponsor, design) are "
        "reported as unavailable rather than imputed."
    )


def survey(
    trials: pd.DataFrame,
    labels: pd.DataFrame,
    out_dir: str | Path,
    *,
    import_runs: pd.DataFrame | None = None,
    title: str = "Neuromodulation trial landscape",
    publications: pd.DataFrame | None = None,
    sources: list | None = None,
) -> SurveyResult:
    """Survey the neuromodulation trials: CSV tables, PNG/SVG figures, ``survey.html`` and the
    report section (``section.json``, with the searchable trial list ``tables/neuromod_trials.csv``).

    Parameters
    ----------
    trials : DataFrame
        One row per trial (the store's ``trials`` table, ``TrialStore.trials_df()``).
    labels : DataFrame
        One row per classified trial (``TrialStore.labels_df()``).
    out_dir : path
        Output directory; created if needed. Files are written atomically.
    import_runs : DataFrame, optional
        Import provenance (``TrialStore.import_runs_df()``) for the methods paragraph.
    publications : DataFrame, optional
        Per-trial publication links
        (:func:`neuromodmap.literature.trial_links.publications_by_trial`): adds the table of
        trials with a linked publication by modality group. Without it that table is listed
        as unavailable.
    sources : list, optional
        Data sources for the report section (as :meth:`SurveyResult.section` takes them).
    """
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    merged = labels.merge(trials, on="registry_id", how="left", suffixes=("", "_trial"))
    n_total = len(labels)
    nm = merged[merged["neuromod"].fillna(False).astype(bool)].copy()
    n = len(nm)
    classifier_version = str(labels["classifier_version"].iloc[0]) if "classifier_version" in labels and n_total else ""

    tables: dict[str, SurveyTable] = {}
    unavailable: list[str] = []

    def add(name: str, title_: str, frame: pd.DataFrame, figs: list[Path], note: str = "") -> None:
        write_csv(frame, out / "tables" / f"{name}.csv")
        tables[name] = SurveyTable(name, title_, frame, figs, note)

    group_labels = {k: g.label for k, g in vocab.MODALITY_GROUPS.items()}
    mod_labels = {k: m.label for k, m in vocab.MODALITIES.items()}

    t = _count_multi(nm["modality_group"], n, group_labels, key="modality_group")
    add("modality_group", "Trials by modality group", t, _barh(t, "label", "Trials by modality group", out, "modality_group"))

    t = _count_multi(nm["modalities"], n, mod_labels, key="modality")
    t.insert(2, "modality_group", t["modality"].map(lambda c: vocab.MODALITIES[c].group if c in vocab.MODALITIES else ""))
    add("modality", "Trials by modality", t, _barh(t, "label", "Trials by modality", out, "modality"))

    t = _count_single(nm["indication"], n, "indication")
    add("indication", "Trials by indication", t, _barh(t, "indication", "Trials by indication", out, "indication"))

    pain = nm[nm["indication"].isin(["pain", "both"])]
    depression = nm[nm["indication"].isin(["depression", "both"])]
    sub_labels = {k: s.label for k, s in vocab.PAIN_SUBTYPES.items()}
    t = _count_multi(pain["pain_subtype"], len(pain), sub_labels, key="pain_subtype")
    add("pain_subtype", "Pain trials by subtype", t,
        _barh(t, "label", "Pain trials by subtype", out, "pain_subtype") if len(t) else [])
    sub_labels = {k: s.label for k, s in vocab.DEPRESSION_SUBTYPES.items()}
    t = _count_multi(depression["depression_subtype"], len(depression), sub_labels, key="depression_subtype")
    add("depression_subtype", "Depression trials by subtype", t,
        _barh(t, "label", "Depression trials by subtype", out, "depression_subtype") if len(t) else [])

    chronic = pain["chronic_pain"].map({True: "chronic", False: "acute / not chronic"}).fillna("unclear")
    t = _count_single(chronic, len(pain), "chronic_pain")
    add("chronic_pain", "Pain trials: chronic vs acute", t, _barh(t, "chronic_pain", "Pain trials: chronic vs acute", out, "chronic_pain"))

    inv = nm["invasive"].map({True: "invasive", False: "non-invasive"}).fillna("unclear")
    t = _count_single(inv, n, "invasiveness")
    add("invasive", "Invasive vs non-invasive", t, _barh(t, "invasiveness", "Invasive vs non-invasive", out, "invasive"))

    exploded = nm[["registry_id", "modality_group", "indication"]].copy()
    exploded["modality_group"] = exploded["modality_group"].map(_as_list)
    exploded = exploded.explode("modality_group").dropna(subset=["modality_group"])
    if len(exploded):
        cross = pd.crosstab(exploded["modality_group"].map(group_labels), exploded["indication"])
        order = [c for c in ("pain", "depression", "both", "other") if c in cross.columns]
        cross = cross[order + [c for c in cross.columns if c not in order]]
        cross = cross.loc[cross.sum(axis=1).sort_values().index]
        add("group_by_indication", "Modality group by indication", cross.reset_index(),
            _stacked(cross, "Modality group by indication", out, "group_by_indication"))

    t = _count_multi(nm["targets"], n, {k: tg.label for k, tg in vocab.TARGETS.items()}, key="target")
    add("targets", "Trials by stimulation target", t,
        _barh(t, "label", "Trials by stimulation target", out, "targets") if len(t) else [])

    # seed 004 comparison: pain trials, share per group
    pain_groups = _count_multi(pain["modality_group"], len(pain), group_labels, key="modality_group").set_index("modality_group")
    # Seed 004's three groups cover ~96 % of its trials, so its search was essentially central
    # (brain and spinal) stimulation; TENS and other peripheral trials dilute our shares. The
    # second column restricts the denominator to pain trials with a central modality group.
    central_groups = set(SEED_004["shares"]) | {"motor_cortex"}
    central = pain[pain["modality_group"].map(lambda gs: bool(central_groups & set(_as_list(gs))))]
    rows = []
    for code, seed_share in SEED_004["shares"].items():
        n_ours = int(pain_groups.loc[code, "n_trials"]) if code in pain_groups.index else 0
        rows.append({
            "modality_group": code, "label": group_labels[code], "seed_004_percent": str(seed_share),
            "our_n_trials": n_ours,
            "our_percent": round(100.0 * n_ours / len(pain), 1) if len(pain) else float("nan"),
            "our_n_central": n_ours,
            "our_percent_central": round(100.0 * n_ours / len(central), 1) if len(central) else float("nan"),
        })
    rows.append({"modality_group": "all", "label": "Pain neuromodulation trials (n)",
                 "seed_004_percent": str(SEED_004["n_trials"]), "our_n_trials": len(pain), "our_percent": 100.0,
                 "our_n_central": len(central), "our_percent_central": 100.0 if len(central) else float("nan")})
    t = pd.DataFrame(rows)
    fig_frame = t.iloc[:-1].copy()
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(fig_frame))
    seed_vals = [2.9 if str(v).startswith("<") else float(v) for v in fig_frame["seed_004_percent"]]
    ax.bar(x - 0.27, seed_vals, 0.27, label=f"seed 004 (n = {SEED_004['n_trials']}; DBS drawn at its bound < 3 %)", color=_PALETTE[7])
    ax.bar(x, fig_frame["our_percent"], 0.27, label=f"this survey, all pain trials (n = {len(pain)})", color=_PALETTE[0])
    ax.bar(x + 0.27, fig_frame["our_percent_central"], 0.27,
           label=f"this survey, central stimulation only (n = {len(central)})", color=_PALETTE[2])
    ax.set_xticks(x, fig_frame["label"], fontsize=8)
    ax.set_ylabel("% of pain neuromodulation trials")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    add("seed_comparison", "Pain trials by group, beside seed 004", t, _save(fig, out, "seed_comparison"),
        note="Seed 004 searched ClinicalTrials.gov and ICTRP for pain neuromodulation trials; the shares here come "
             "from whatever records were imported, so they agree only as far as the imported sample resembles "
             "the seed's search. our_percent uses every pain neuromodulation trial (TENS and other peripheral "
             "stimulation included); our_percent_central only those with a brain or spinal modality, closer to "
             "the seed's scope (its three groups make up about 96 % of its trials); our_n_central counts those "
             "trials, and the 'all' row gives each denominator. A trial in two groups counts in both.")

    # registry fields that exist only in full records
    optional = [
        ("phase", "phases", "Trials by phase", True),
        ("status", "overall_status", "Trials by recruitment status", False),
        ("sponsor_class", "sponsor_class", "Trials by sponsor class", False),
        ("allocation", "allocation", "Trials by allocation", False),
        ("masking", "masking", "Trials by masking", False),
        ("primary_purpose", "primary_purpose", "Trials by primary purpose", False),
        ("has_results", "has_results", "Trials with posted results", False),
        ("country", "countries", "Trials by country (top 25)", True),
    ]
    def add_split(name: str, title_: str, values: pd.Series, top: int | None = None) -> None:
        """``<name>_by_group`` and ``<name>_by_indication``: tables, and one two-panel figure."""
        crosses = {by: _crosstab(values, structured, by, group_labels, name, top=top) for by in ("group", "indication")}
        figures = _stacked_pair(*(c.drop(columns="all trials").iloc[::-1] for c in crosses.values()), title_, out,
                                f"{name}_split")
        add(f"{name}_by_group", f"{title_}, by modality group", crosses["group"].reset_index(), figures,
            note=_CROSS_NOTE)
        add(f"{name}_by_indication", f"{title_}, by indication", crosses["indication"].reset_index(), [],
            note=_CROSS_NOTE)

    # the split tables count the trials from structured records (any registry field): a text-only
    # record is left out, a structured one without the field is 'not reported'
    columns = [c for c in _REGISTRY_COLUMNS if c in nm]
    structured = nm[nm[columns].apply(lambda row: any(map(_present, row)), axis=1)] if columns and n else nm.iloc[:0]
    for name, column, title_, multi in optional:
        if column not in nm or not _has_data(nm[column]):
            unavailable.append(name)
            continue
        if multi:
            t = _count_multi(nm[column], n, key=name)
        else:
            t = _count_single(nm[column].map(lambda v: None if pd.isna(v) else str(v)), n, name)
        add(name, title_, t, _barh(t, name, title_, out, name))
        if name == "country":
            cont = nm[column].map(lambda cs: sorted({c for c in (continent(x) for x in _as_list(cs)) if c}))
            t = _count_multi(cont, n, key="continent")
            add("continent", "Trials by continent", t, _barh(t, "continent", "Trials by continent", out, "continent"))

        # the same field split by modality group and by indication (seed 004's tables)
        readable = _FIELD_VALUE.get(name, {})
        values = structured[column].map(_as_list) if multi else structured[column].map(
            lambda v, readable=readable: [readable.get(str(v), str(v)) if not pd.isna(v) else "not reported"])
        add_split(name, title_.split(" (")[0], values, top=25 if multi else None)
        if name == "country":
            add_split("continent", "Trials by continent", cont.loc[structured.index])
    if "country" in unavailable:
        unavailable.append("continent")

    if "start_date" in nm and nm["start_date"].notna().any():
        years = pd.to_datetime(nm["start_date"], errors="coerce").dt.year
        ex = pd.DataFrame({"year": years, "group": nm["modality_group"].map(_as_list)}).explode("group").dropna()
        trend = pd.crosstab(ex["year"].astype(int), ex["group"].map(group_labels))
        add("start_year", "Trials by start year and modality group", trend.reset_index(),
            _trend(trend, "Trials by start year and modality group", out, "start_year"))
        known = years.notna()
        trend = pd.crosstab(years[known].astype(int), nm.loc[known, "indication"])
        add("start_year_by_indication", "Trials by start year and indication", trend.reset_index(),
            _trend(trend, "Trials by start year and indication", out, "start_year_by_indication"))
    else:
        unavailable.append("start_year")

    if "enrollment" in nm and nm["enrollment"].notna().any():
        e = pd.to_numeric(nm["enrollment"], errors="coerce").dropna()
        desc = pd.DataFrame([_enrollment_row(e)])
        add("enrollment", "Enrollment distribution", desc, _histogram(e, "Enrollment distribution", out, "enrollment"))
        enrol = pd.to_numeric(nm["enrollment"], errors="coerce")
        frames, split = {}, {}
        for by in ("group", "indication"):
            rows = []
            keys = nm["modality_group"].map(_as_list) if by == "group" else nm["indication"].map(lambda v: [v])
            frames[by] = frame = pd.DataFrame({"key": keys, "enrollment": enrol}).explode("key").dropna()
            for key, part in frame.groupby("key", sort=False):
                label = group_labels.get(key, key) if by == "group" else key
                rows.append({by if by == "indication" else "modality_group": label, **_enrollment_row(part["enrollment"])})
            split[by] = pd.DataFrame(rows).sort_values("n_trials", ascending=False)
        add("enrollment_by_group", "Enrollment, by modality group", split["group"],
            _boxplots(frames, group_labels, out, "enrollment_split"))
        add("enrollment_by_indication", "Enrollment, by indication", split["indication"], [])
    else:
        unavailable.append("enrollment")

    if publications is not None:
        t = linked_publications_table(nm, publications)
        add("linked_publications", "Trials with a linked publication, by modality group", t,
            _linked_figure(t, out), note=LINKED_PUBLICATION_DEFINITION)
    else:
        unavailable.append("linked_publications")

    methods = _methods(trials, import_runs, n_total, n, classifier_version)
    html_path = out / "survey.html"
    _write_html(html_path, title, tables, methods, n_total, n, unavailable)
    result = SurveyResult(out, tables, methods, html_path, n_total, n, unavailable, neuromod=nm,
                          import_runs=import_runs)
    result.section(sources=sources).write(out)
    return result


# ---------------------------------------------------------------------------
# Linked publications
# ---------------------------------------------------------------------------
LINKED_PUBLICATION_DEFINITION = (
    "A trial has a linked publication when its registry record lists a results reference or a "
    "PubMed-derived reference (ClinicalTrials.gov RESULT or DERIVED references, legacy results_reference; "
    "by PMID or DOI), or when a record in the literature store quotes the trial's registry id or one of its "
    "secondary ids (neuromodmap literature link-trials; blank when no literature store was linked). "
    "Background references do not count. "
    "n_with_registry_fields counts the trials whose stored record carries the registry's reference fields at "
    "all (full API v2 or legacy XML records); for the others (e.g. the 2018 text-only corpus, ICTRP "
    "exports) a missing reference means the information is not available, not that no publication exists, "
    "so percent_linked is a lower bound and percent_registry_linked_of_full is the rate where the registry "
    "could show one. A trial with several modality groups counts in each; 'all' counts it once."
)


def linked_publications_table(nm: pd.DataFrame, publications: pd.DataFrame) -> pd.DataFrame:
    """Neuromodulation trials with a linked publication, per modality group and overall.

    ``nm``: the classified neuromodulation trials (``registry_id``, ``modality_group``);
    ``publications``: :func:`~neuromodmap.literature.trial_links.publications_by_trial`.
    """
    pubs = publications.set_index("registry_id") if len(publications) else None

    def lookup(column: str, default):
        if pubs is None or column not in pubs:
            return pd.Series(default, index=nm.index)
        return nm["registry_id"].map(pubs[column]).fillna(default)

    frame = pd.DataFrame({
        "registry_id": nm["registry_id"],
        "group": nm["modality_group"].map(_as_list),
        "fields": lookup("registry_fields", False).astype(bool),
        "registry": lookup("n_registry_publications", 0).astype(int) > 0,
        "literature": lookup("n_literature_records", 0).astype(int) > 0,
    })
    literature_linked = bool(len(publications)) and publications["n_literature_records"].notna().any()
    frame["linked"] = frame["registry"] | frame["literature"]
    group_labels = {k: g.label for k, g in vocab.MODALITY_GROUPS.items()}

    def row(code: str, label: str, part: pd.DataFrame) -> dict:
        n_fields = int(part["fields"].sum())
        n_registry = int(part["registry"].sum())
        n_linked = int(part["linked"].sum())
        return {
            "modality_group": code, "label": label, "n_trials": len(part),
            "n_with_registry_fields": n_fields,
            "n_linked_by_registry_reference": n_registry,
            "n_linked_by_literature_record": int(part["literature"].sum()) if literature_linked else float("nan"),
            "n_linked": n_linked,
            "percent_linked": round(100.0 * n_linked / len(part), 1) if len(part) else float("nan"),
            "percent_registry_linked_of_full": round(100.0 * n_registry / n_fields, 1) if n_fields else float("nan"),
        }

    exploded = frame.explode("group").dropna(subset=["group"])
    rows = [row(code, group_labels.get(code, code), part) for code, part in exploded.groupby("group", sort=False)]
    rows.sort(key=lambda r: -r["n_trials"])
    rows.append(row("all", "All neuromodulation trials", frame))
    return pd.DataFrame(rows)


def _linked_figure(table: pd.DataFrame, out: Path) -> list[Path]:
    data = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(data) + 1.4))
    y = np.arange(len(data))
    ax.barh(y, data["n_trials"], color="#d9d9d9", label="neuromodulation trials")
    ax.barh(y, data["n_linked"], color=_PALETTE[0], label="with a linked publication")
    for k, (n_all, n_linked) in enumerate(zip(data["n_trials"], data["n_linked"], strict=True)):
        ax.text(n_all, k, f" {n_linked}/{n_all}", va="center", fontsize=8)
    ax.set_yticks(y, data["label"].astype(str), fontsize=8)
    ax.set_xlabel("trials")
    ax.set_title("Trials with a linked publication, by modality group", fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlim(0, max(1, int(data["n_trials"].max())) * 1.25)
    return _save(fig, out, "linked_publications")


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------
_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}img{max-width:100%}.note{color:#555;font-size:.9em}.kpi{font-size:1.1em}
</style></head><body>
<h1>{{ title }}</h1>
<p class="kpi">{{ n_neuromod }} neuromodulation trials among {{ n_total }} classified records.</p>
<h2>Methods</h2><p>{{ methods }}</p>
{% for t in tables %}
<section id="{{ t.name }}"><h2>{{ t.title }}</h2>
{% if t.note %}<p class="note">{{ t.note }}</p>{% endif %}
{% for img in t.images %}<img alt="{{ t.title }}" src="data:image/png;base64,{{ img }}">{% endfor %}
<table><thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in t.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
</section>
{% endfor %}
{% if unavailable %}<h2>Not available in the source</h2>
<p class="note">These fields are absent from the imported records, so no table is shown (nothing is imputed): {{ unavailable|join(", ") }}.</p>{% endif %}
<p class="note">Generated by neuromodmap {{ version }} on {{ today }}. Seed 004: {{ seed_citation }}.</p>
</body></html>
"""


def _write_html(path: Path, title: str, tables: dict[str, SurveyTable], methods: str, n_total: int,
                n_neuromod: int, unavailable: Iterable[str]) -> None:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    rendered_tables = []
    for t in tables.values():
        images = [base64.b64encode(p.read_bytes()).decode("ascii") for p in t.figures if p.suffix == ".png"]
        frame = t.frame.head(40)
        rendered_tables.append({
            "name": t.name, "title": t.title, "note": t.note, "images": images,
            "columns": [str(c) for c in frame.columns],
            "rows": [["" if (isinstance(v, float) and math.isnan(v)) else v for v in row]
                     for row in frame.itertuples(index=False)],
        })
    html = env.from_string(_TEMPLATE).render(
        title=title, tables=rendered_tables, methods=methods, n_total=f"{n_total:,}",
        n_neuromod=f"{n_neuromod:,}", unavailable=list(unavailable), version=__version__,
        today=dt.date.today().isoformat(), seed_citation=SEED_004["citation"],
    )
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(html)
