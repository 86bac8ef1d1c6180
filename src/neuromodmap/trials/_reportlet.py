"""The trials survey's part of the report (private): headlines, figures, tables, the trial list.

Written by :func:`~neuromodmap.trials.survey.survey` as ``section.json`` beside its tables and
figures; :func:`neuromodmap.report.build_report` assembles it with the other stages.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from neuromodmap import vocabulary as vocab
from neuromodmap._utils import write_csv
from neuromodmap.report import Block, Figure, Headline, Section, Source, Table

__all__ = ["survey_section", "trial_list", "CTGOV_CITATION"]

CTGOV_CITATION = ("ClinicalTrials.gov [Internet]. Bethesda (MD): U.S. National Library of Medicine; 2000-. "
                  "Cite with the as-of date of the records.")

# what each figure shows, beyond its title
_CAPTIONS = {
    "linked_publications": "Neuromodulation trials with a linked publication (blue) among all (grey), by modality "
                           "group: a results or PubMed-derived reference in the registry record, or a literature "
                           "record quoting the trial's registry id.",
    "seed_comparison": "Share of pain neuromodulation trials in each of seed 004's modality groups, beside the "
                       "seed's figures (Yamamoto, Elias et al. 2022: 49.3 % non-invasive cortical, 43.7 % spinal cord, "
                       "< 3 % deep brain, n = 487). Green bars count only trials with a brain or spinal modality.",
    "modality_group": "Neuromodulation trials by modality group (seed 004's grouping). A trial with several "
                      "modalities counts once in each group.",
    "modality": "Neuromodulation trials by modality (top 25).",
    "indication": "Neuromodulation trials by indication: pain, depression, both, or another condition.",
    "group_by_indication": "Modality groups split by indication.",
    "pain_subtype": "Pain trials by pain subtype; a trial can name several.",
    "depression_subtype": "Depression trials by subtype; a trial can name several.",
    "chronic_pain": "Pain trials studying chronic versus acute or procedural pain.",
    "invasive": "Invasive (implanted or surgical) versus non-invasive stimulation.",
    "targets": "Stimulation targets named in the registry text (top 25).",
    "phases": "Trial phase, for the records that carry one.",
    "phase": "Trial phase, for the records that carry one.",
    "status": "Recruitment status, for the records that carry one.",
    "sponsor_class": "Lead sponsor class, for the records that carry one.",
    "allocation": "Allocation (randomised or not), for the records that carry it.",
    "masking": "Masking, for the records that carry it.",
    "primary_purpose": "Primary purpose, for the records that carry it.",
    "has_results": "Trials with results posted on the registry.",
    "country": "Countries with a trial site (top 25), for the records that list sites.",
    "continent": "Continents with a trial site.",
    "start_year": "Trials by start year and modality group, for the records with a start date.",
    "enrollment": "Planned or actual enrollment (log scale), for the records that carry it.",
    "start_year_by_indication": "Trials by start year and indication, for the records with a start date.",
    "enrollment_by_group": "Enrollment (log scale) by modality group (left; a trial in two groups counts in both) "
                           "and by indication (right): median, quartiles and range.",
    "enrollment_by_indication": "Enrollment (log scale) by indication: median, quartiles and range.",
}
_LANDSCAPE = ("seed_comparison", "modality_group", "modality", "indication", "group_by_indication", "pain_subtype",
              "depression_subtype", "chronic_pain", "invasive", "targets")
_REGISTRY_FIELDS = ("phase", "status", "sponsor_class", "allocation", "masking", "primary_purpose", "has_results",
                   "country", "continent", "start_year", "enrollment")
#: each registry field, then the same field by modality group and by indication
_REGISTRY = tuple(f"{name}{split}" for name in _REGISTRY_FIELDS for split in ("", "_by_group", "_by_indication"))
_SPLIT_CAPTION = {
    "_by_group": " Left: split by modality group (a trial in two groups counts in both); right: by indication "
                 "(pain, depression, both, other). Only trials from structured records; the tables follow.",
    "_by_indication": " Split by indication (pain, depression, both, other).",
}


def _as_list(value) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return []
    if isinstance(value, str):
        return [v for v in value.split(";") if v]
    return [str(v) for v in value]


def _evidence_text(value) -> str:
    try:
        items = json.loads(value) if isinstance(value, str) else list(value or [])
    except (TypeError, ValueError):
        return ""
    parts = []
    for e in items:
        if isinstance(e, dict) and e.get("label") in ("modality", "indication", "pain_subtype", "depression_subtype",
                                                       "target", "exclusion", "not_neuromod"):
            parts.append(f"{e.get('label')}={e.get('value')} ({e.get('field')}: “{e.get('text', '')}”)")
    return "; ".join(parts)


def trial_list(neuromod: pd.DataFrame) -> pd.DataFrame:
    """One row per neuromodulation trial: id, registry link, title, labels and the evidence of each."""
    group_labels = {k: g.label for k, g in vocab.MODALITY_GROUPS.items()}

    def year(v) -> str:
        ts = pd.to_datetime(v, errors="coerce")
        return "" if pd.isna(ts) else str(ts.year)

    def flag(v) -> str:
        return "" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else ("yes" if v else "no")

    url = neuromod["url"] if "url" in neuromod else pd.Series("", index=neuromod.index)
    frame = pd.DataFrame({
        "registry_id": neuromod["registry_id"],
        "registry_url": [u if isinstance(u, str) and u.startswith("https://") else
                         (f"https://clinicaltrials.gov/study/{r}" if str(r).startswith("NCT") else "")
                         for u, r in zip(url, neuromod["registry_id"], strict=True)],
        "title": neuromod["title"].fillna("") if "title" in neuromod else "",
        "modalities": neuromod["modalities"].map(lambda v: "; ".join(_as_list(v))),
        "modality_group": neuromod["modality_group"].map(
            lambda v: "; ".join(group_labels.get(g, g) for g in _as_list(v))),
        "indication": neuromod["indication"].fillna(""),
        "subtype": [
            "; ".join(_as_list(p) + _as_list(d))
            for p, d in zip(neuromod["pain_subtype"], neuromod["depression_subtype"], strict=True)
        ],
        "targets": neuromod["targets"].map(lambda v: "; ".join(_as_list(v))),
        "invasive": neuromod["invasive"].map(flag),
        "phase": neuromod["phases"].map(lambda v: "; ".join(_as_list(v))) if "phases" in neuromod else "",
        "start_year": neuromod["start_date"].map(year) if "start_date" in neuromod else "",
        "countries": neuromod["countries"].map(lambda v: "; ".join(_as_list(v))) if "countries" in neuromod else "",
        "evidence": neuromod["evidence"].map(_evidence_text) if "evidence" in neuromod else "",
    })
    return frame.sort_values("registry_id").reset_index(drop=True)


def _csv(frame: pd.DataFrame, path: Path) -> None:
    write_csv(frame, path)  # no cell may start a spreadsheet formula


def _sources(import_runs: pd.DataFrame | None) -> list[Source]:
    """One source per folder of imported files (or per API query), with its as-of dates."""
    if import_runs is None or not len(import_runs):
        return []
    runs = import_runs.copy()
    runs["folder"] = [str(Path(s).parent) if isinstance(s, str) and not s.startswith("http") else str(s)
                      for s in runs["source"]]
    out = []
    for folder, group in runs.groupby("folder", sort=False):
        files = [str(s) for s in group["source"]]
        as_of = pd.to_datetime(group.get("as_of"), errors="coerce").dropna() if "as_of" in group else pd.Series([])
        dates = sorted({d.date().isoformat() for d in as_of})
        when = dates[0] if len(dates) == 1 else (f"{dates[0]} to {dates[-1]}" if dates else "")
        name = files[0] if len(files) == 1 else f"{len(files)} files in {folder}"
        out.append(Source(name=Path(name).name if len(files) == 1 else name, source=name if len(files) == 1 else folder,
                          as_of=when, citation=CTGOV_CITATION if "ictrp" not in folder.lower() else
                          "WHO International Clinical Trials Registry Platform (ICTRP). Cite with the export date."))
    return out


def survey_section(result, neuromod: pd.DataFrame, *, import_runs: pd.DataFrame | None = None,
                   sources: list[Source] | None = None) -> Section:
    """The report section of a survey (``result``: :class:`SurveyResult`; ``neuromod``: its trials).

    Writes ``tables/neuromod_trials.csv`` (the searchable trial list) into the survey folder.
    """
    from neuromodmap.trials.survey import SEED_004

    out = Path(result.out_dir)
    listing = trial_list(neuromod)
    _csv(listing, out / "tables" / "neuromod_trials.csv")
    tables, figures, blocks = [], [], []

    n_pain = int(neuromod["indication"].isin(["pain", "both"]).sum())
    n_dep = int(neuromod["indication"].isin(["depression", "both"]).sum())
    has_start = int(pd.to_datetime(neuromod.get("start_date"), errors="coerce").notna().sum()) \
        if "start_date" in neuromod else 0
    summary = pd.DataFrame([
        {"measure": "registry records classified", "n": result.n_trials},
        {"measure": "neuromodulation trials", "n": result.n_neuromod},
        {"measure": "  of which pain (incl. pain and depression)", "n": n_pain},
        {"measure": "  of which depression (incl. pain and depression)", "n": n_dep},
        {"measure": "  of which with structured registry fields (start date)", "n": has_start},
    ])
    tables.append(Table.from_frame("summary", "Records and trials", summary,
                                   caption="Counts of the classified records; every number of the overview's "
                                           "trials card is in this table or the seed comparison."))

    def add(name: str) -> None:
        t = result.tables.get(name)
        if t is None:
            return
        pngs = [p for p in t.figures if p.suffix == ".png"]
        if pngs:
            base, split = next(((name.removesuffix(x), x) for x in _SPLIT_CAPTION if name.endswith(x)), (name, ""))
            caption = _CAPTIONS.get(name) or (
                _CAPTIONS[base] + _SPLIT_CAPTION[split] if split and base in _CAPTIONS else t.title)
            figures.append(Figure(id=name, src=pngs[0].resolve().relative_to(out.resolve()).as_posix(),
                                  caption=caption))
            blocks.append(Block(kind="figure", ref=name))
        tables.append(Table(id=name, title=t.title, csv=f"tables/{name}.csv", caption=t.note, max_rows=40))
        blocks.append(Block(kind="table", ref=name))

    blocks.append(Block(kind="table", ref="summary"))
    blocks.append(Block(kind="heading", text="The landscape, beside seed 004"))
    for name in _LANDSCAPE:
        add(name)
    registry = [n for n in _REGISTRY if n in result.tables]
    if registry:
        blocks.append(Block(kind="heading", text="Registry fields"))
        blocks.append(Block(kind="note", text=f"Only structured registry records carry phase, status, sponsor, "
                                              f"sites, dates and enrollment ({has_start:,} of the "
                                              f"{result.n_neuromod:,} neuromodulation trials have a start date); "
                                              "text-only records are left out of these tables, not imputed."))
        for name in registry:
            add(name)
    if "linked_publications" in result.tables:
        blocks.append(Block(kind="heading", text="Registered trials and their publications"))
        add("linked_publications")
    if result.unavailable:
        blocks.append(Block(kind="note", text="Not available in the imported records (no table, nothing imputed): "
                                              + ", ".join(result.unavailable) + "."))
    blocks.append(Block(kind="heading", text="Every classified neuromodulation trial"))
    tables.append(Table(
        id="trials", title=f"The {len(listing):,} neuromodulation trials, with the evidence of each label",
        csv="tables/neuromod_trials.csv", searchable=True, links={"registry_id": "registry_url"},
        facets=["modality_group", "indication", "invasive"],
        labels={"registry_id": "registry id", "modality_group": "modality group", "start_year": "start",
                "subtype": "subtype(s)"},
        caption="Search any word (e.g. a modality code such as tdcs, a target, a condition); all words must match. "
                "Click a header to sort. The evidence column gives the field and the words behind each label; "
                "the registry id links to the registry's page."))
    blocks.append(Block(kind="table", ref="trials"))

    comparison = result.tables["seed_comparison"].frame.set_index("modality_group")

    def share(code: str, column: str) -> str:
        return f"{comparison.loc[code, column]:.1f} %" if code in comparison.index else "n/a"

    groups = ("noninvasive_cortical", "spinal_cord", "deep_brain")
    headlines = [
        Headline(label="Neuromodulation trials", value=f"{result.n_neuromod:,}",
                 detail=f"of {result.n_trials:,} registry records classified; {n_pain:,} pain, {n_dep:,} depression",
                 table="summary"),
        Headline(label="Pain trials: non-invasive cortical / spinal cord / deep brain",
                 value=" / ".join(share(g, "our_percent") for g in groups),
                 detail=f"seed 004: {SEED_004['shares']['noninvasive_cortical']} % / "
                        f"{SEED_004['shares']['spinal_cord']} % / {SEED_004['shares']['deep_brain']} % "
                        f"(n = {SEED_004['n_trials']}); brain and spinal stimulation only: "
                        + " / ".join(share(g, "our_percent_central") for g in groups),
                 table="seed_comparison"),
    ]
    if "linked_publications" in result.tables:
        linked = result.tables["linked_publications"].frame.set_index("modality_group")
        if "all" in linked.index:
            row = linked.loc["all"]
            headlines.append(Headline(
                label="Neuromodulation trials with a linked publication",
                value=f"{int(row['n_linked']):,} of {int(row['n_trials']):,}",
                detail=f"{int(row['n_linked_by_registry_reference']):,} by the registry's results or PubMed "
                       f"references ({int(row['n_with_registry_fields']):,} records carry those fields)"
                       + ("" if pd.isna(row["n_linked_by_literature_record"]) else
                          f", {int(row['n_linked_by_literature_record']):,} by a literature record quoting the id"),
                table="linked_publications"))
    return Section(
        stage="trials", id="trials-survey", title="Neuromodulation trial landscape",
        summary=f"{result.n_neuromod:,} of {result.n_trials:,} classified registry records test a neuromodulation "
                f"intervention ({n_pain:,} for pain, {n_dep:,} for depression).",
        headlines=headlines, blocks=blocks, figures=figures, tables=tables, methods=result.methods,
        sources=(sources if sources is not None else _sources(import_runs))
        + [Source(name="Seed 004", citation=SEED_004["citation"])],
    )
