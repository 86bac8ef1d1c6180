"""The literature stage's parts of the report (private): the PRISMA flow and a screening simulation.

:func:`prisma_section` is written by ``neuromodmap literature prisma`` beside the flow diagram;
:func:`simulation_section` by ``neuromodmap literature simulate``. Both become
``section.json`` files that :func:`neuromodmap.report.build_report` assembles.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import duckdb
import pandas as pd

from neuromodmap._utils import write_csv
from neuromodmap.literature.prisma import PRISMA_CITATION, PrismaFlow
from neuromodmap.literature.screening import latest_decisions
from neuromodmap.literature.store import list_imports, load_dedup, load_dedup_pairs, load_records
from neuromodmap.report import Block, Figure, Headline, Section, Source, Table

__all__ = ["prisma_section", "simulation_section", "records_table"]


def _csv(frame: pd.DataFrame, path: Path) -> None:
    write_csv(frame, path)


def _decision(frame: pd.DataFrame) -> dict[str, str]:
    return {r.record_id: (r.decision + (f": {r.reason}" if isinstance(r.reason, str) and r.reason else ""))
            for r in frame.itertuples()}


def records_table(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per record left after de-duplication: citation, links, databases and every decision."""
    records = con.execute(
        "SELECT record_id, title, year, journal, doi, pmid, source_database FROM literature_records").df()
    clusters = load_dedup(con)
    databases = records.set_index("record_id")["source_database"].map(lambda d: [d]).to_dict()
    if clusters is not None:
        by_cluster = clusters.groupby("cluster_id")["source_database"].agg(lambda s: sorted(set(s)))
        primary = clusters[clusters["is_primary"]]
        databases.update(dict(zip(primary["record_id"], primary["cluster_id"].map(by_cluster), strict=True)))
        clustered = set(clusters["record_id"])
        keep = set(primary["record_id"])
        records = records[records["record_id"].isin(keep) | ~records["record_id"].isin(clustered)]
    criteria = _decision(latest_decisions(con, "criteria"))
    title_abstract = _decision(latest_decisions(con, "title_abstract"))
    full_text = _decision(latest_decisions(con, "full_text"))

    def link(doi, pmid) -> str:
        if isinstance(doi, str) and doi:
            return "https://doi.org/" + quote(doi, safe="/:;()._-")
        if isinstance(pmid, str) and pmid.isdigit():
            return f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
        return ""

    frame = pd.DataFrame({
        "record_id": records["record_id"],
        # a record kept without a title (on its DOI or journal and pages) still needs link text
        "title": records["title"].fillna("").map(lambda t: t or "(no title)"),
        "year": records["year"].map(lambda y: "" if pd.isna(y) else str(int(y))),
        "journal": records["journal"].fillna(""),
        "doi": records["doi"].fillna(""),
        "pmid": records["pmid"].fillna(""),
        "link": [link(d, p) for d, p in zip(records["doi"], records["pmid"], strict=True)],
        "databases": records["record_id"].map(lambda r: "; ".join(databases.get(r, []))),
        "criteria": records["record_id"].map(lambda r: criteria.get(r, "eligible" if criteria else "")),
        "title_abstract": records["record_id"].map(lambda r: title_abstract.get(r, "not screened yet")),
        "full_text": records["record_id"].map(lambda r: full_text.get(r, "")),
    })
    frame.loc[frame["criteria"].str.startswith("exclude"), "title_abstract"] = ""
    return frame.sort_values(["year", "title"], ascending=[False, True]).reset_index(drop=True)


def _database_table(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    clusters = load_dedup(con)
    if clusters is None:
        frame = con.execute("SELECT source_database AS database, count(*) AS identified FROM literature_records "
                            "GROUP BY 1 ORDER BY 2 DESC").df()
        frame["only_here"] = pd.NA
        return frame
    identified = clusters.groupby("source_database").size().rename("identified")
    sets = clusters.groupby("cluster_id")["source_database"].agg(lambda s: frozenset(s))
    only = sets[sets.map(len) == 1].map(lambda s: next(iter(s))).value_counts().rename("only_here")
    frame = pd.concat([identified, only], axis=1).fillna(0).astype(int).sort_values("identified", ascending=False)
    return frame.rename_axis("database").reset_index()


def _dedup_pairs_table(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Linked pairs and pairs to review, one row each, with both records' citations."""
    columns = ["decision", "relation", "reason", "record_a", "record_b", "agree", "disagree"]
    pairs = load_dedup_pairs(con)
    pairs = pairs[pairs["decision"].isin(["linked", "review"])]
    if not len(pairs):
        return pd.DataFrame(columns=columns)
    ids = sorted(set(pairs["record_id_a"]) | set(pairs["record_id_b"]))
    citation = {r.record_id: r.citation() for r in load_records(con, ids)}
    return pd.DataFrame({
        "decision": pairs["decision"].to_numpy(),
        "relation": pairs["relation"].fillna("").to_numpy(),
        "reason": pairs["reason"].fillna("").to_numpy(),
        "record_a": pairs["record_id_a"].map(citation).fillna("").to_numpy(),
        "record_b": pairs["record_id_b"].map(citation).fillna("").to_numpy(),
        "agree": pairs["agree"].fillna("").to_numpy(),
        "disagree": pairs["disagree"].fillna("").to_numpy(),
    }).sort_values(["decision", "relation"], kind="stable")


def _methods_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    try:
        rows = con.execute("SELECT step, details FROM literature_runs ORDER BY run_at").fetchall()
    except duckdb.Error:
        return []
    latest: dict[str, str] = {}
    for step, details in rows:
        latest[step] = details
    return [d for d in latest.values() if d]


def _criteria_methods(decisions: pd.DataFrame) -> str:
    """The eligibility criteria's methods sentence, for the profile named in the stored decisions."""
    from neuromodmap.literature.criteria import CriteriaError, load_profile

    names = [p for p in decisions.get("profile", pd.Series(dtype=str)).dropna().unique() if p]
    if len(names) != 1:
        return ""
    try:
        return load_profile(names[0]).methods_sentence()
    except CriteriaError:
        return f"Eligibility criteria: profile {names[0]}."


def prisma_section(con: duckdb.DuckDBPyConnection, flow: PrismaFlow, out_dir: str | os.PathLike, *,
                   criteria_methods: str = "", sources: list[Source] | None = None, trial_links=None,
                   title: str = "Search, de-duplication and screening (PRISMA 2020)", note: str = "") -> Section:
    """The report section of a PRISMA flow; writes its tables into ``out_dir`` (the flow's folder).

    ``out_dir`` must already hold ``prisma.png`` (:meth:`PrismaFlow.write`). ``trial_links``: a
    :class:`~neuromodmap.literature.trial_links.TrialLinkReport`, shown as the records' links to
    registered trials. ``note``: a sentence for the reader, added to the section's summary (e.g.
    what the search was about).
    """
    out = Path(out_dir)
    records = records_table(con)
    _csv(records, out / "records.csv")
    databases = _database_table(con)
    _csv(databases, out / "databases.csv")
    criteria = latest_decisions(con, "criteria")
    criteria = criteria[(criteria["decision"] == "exclude") & criteria["record_id"].isin(set(records["record_id"]))]
    reasons = (criteria["reason"].fillna("").str.split(":").str[0].value_counts().rename_axis("reason")
               .rename("records").reset_index())

    dedup_pairs = _dedup_pairs_table(con)
    _csv(dedup_pairs, out / "dedup_pairs.csv")

    counts = flow.to_frame()
    counts["n"] = [("pending" if pd.isna(v) else int(v)) for v in counts["n"]]
    n_db = len(flow.identified_by_database)
    screened_done = flow.records_screened - flow.records_not_screened
    tables = [
        Table.from_frame("prisma_counts", "PRISMA 2020 counts", counts,
                         caption="Every number of the flow diagram, box by box (Page et al. 2021); "
                                 "'pending' where a later stage has no decisions yet."),
        Table(id="databases", title="Records per database", csv="databases.csv",
              labels={"only_here": "unique to this database (clusters)"},
              caption="Records each database returned, and how many duplicate clusters only that database found."),
        Table(id="dedup_pairs", title="De-duplication: related records and pairs to review", csv="dedup_pairs.csv",
              searchable=True, facets=["decision", "relation"],
              caption="Records linked but not merged (an erratum or retraction notice and its article, a preprint, "
                      "a conference abstract, a text co-published in several journals), and the pairs left for a "
                      "reviewer with the fields that agree and disagree. Decide them with `neuromodmap literature "
                      "dedup --review FILE.csv`, then `--decisions FILE.csv`."),
        Table.from_frame("automation", "Records excluded by the eligibility criteria", reasons,
                         caption="Reasons of the automatic exclusions (the first rule a record failed)."),
        Table(id="records", title=f"The {len(records):,} records after de-duplication, with every decision",
              csv="records.csv", searchable=True, links={"title": "link"}, hidden=["record_id"],
              facets=["databases", "criteria", "title_abstract"],
              labels={"title_abstract": "title/abstract", "full_text": "full text"},
              caption="Search titles, journals, DOIs; filter by database or decision. A title links to the DOI "
                      "(or PubMed) page. Criteria: the automatic eligibility decision and its reason."),
    ]
    figures = [Figure(id="prisma", src="prisma.png",
                      caption="PRISMA 2020 flow diagram for new systematic reviews that searched databases and "
                              "registers, with the counts recorded by the pipeline (Page et al. 2021).")]
    blocks = [Block(kind="figure", ref="prisma"), Block(kind="table", ref="prisma_counts"),
              Block(kind="table", ref="databases"), Block(kind="table", ref="dedup_pairs"),
              Block(kind="table", ref="automation"),
              Block(kind="heading", text="Records"), Block(kind="table", ref="records")]
    included = "pending" if flow.studies_included is None else f"{flow.studies_included:,}"
    headlines = [
        Headline(label="Records identified", value=f"{flow.records_identified:,}",
                 detail=f"{sum(flow.identified_by_database.values()):,} from {n_db} database{'s' if n_db != 1 else ''}"
                        + (f", {sum(flow.identified_by_register.values()):,} from registers (trials stage)"
                           if flow.identified_by_register else "")
                        + f"; {flow.duplicates_removed:,} duplicates removed",
                 table="prisma_counts"),
        Headline(label="Records screened (title and abstract)", value=f"{flow.records_screened:,}",
                 detail=f"{flow.automation_excluded:,} removed by the eligibility criteria; "
                        f"{screened_done:,} decided so far; {flow.records_awaiting_screening:,} awaiting screening"
                        + (f"; {flow.records_not_screened:,} left by the {flow.stopping_rule_text()}"
                           if flow.stopping_rule else ""), table="prisma_counts"),
        Headline(label="Studies included", value=included, table="prisma_counts",
                 detail="no full-text decisions recorded yet" if flow.studies_included is None else ""),
    ]
    if trial_links is not None:
        tables.append(Table.from_frame(
            "trial_links", "Links between the records and registered trials", trial_links.to_frame(),
            caption="Registry ids the records quote (PubMed SI/DataBank, abstracts, RIS notes) and the publications "
                    "the stored trials cite, matched both ways; counted once per duplicate cluster."))
        blocks.append(Block(kind="table", ref="trial_links"))
    if not criteria_methods:
        criteria_methods = _criteria_methods(criteria)
    methods = "\n\n".join(x for x in [*_methods_lines(con), criteria_methods, flow.methods_sentence()] if x)
    if sources is None:
        sources = []
        for row in list_imports(con).itertuples():
            sources.append(Source(name=f"{row.source_database} export ({row.format}, {row.n_records} records)",
                                  source=str(row.source_file),
                                  as_of=f"imported {pd.Timestamp(row.imported_at).date().isoformat()}"))
    sources = [*sources, Source(name="PRISMA 2020 flow diagram", citation=PRISMA_CITATION)]
    return Section(stage="literature", id="literature-prisma", title=title,
                   summary=f"{sum(flow.identified_by_database.values()):,} records from {n_db} "
                           f"database{'s' if n_db != 1 else ''}"
                           + (f" and {sum(flow.identified_by_register.values()):,} registered trials from the trials "
                              "stage" if flow.identified_by_register else "") + "; "
                           f"{flow.duplicates_removed:,} duplicates removed; {flow.records_entering_screening:,} "
                           f"records to screen on title and abstract after the eligibility criteria."
                           + (f" {note}" if note else ""),
                   headlines=headlines, blocks=blocks, figures=figures, tables=tables, methods=methods,
                   sources=sources)


def simulation_section(result, out_dir: str | os.PathLike, *, figure: str = "recall_curve.png",
                       dataset_name: str = "", citation: str = "") -> Section:
    """The report section of a screening simulation (:class:`SimulationResult` written in ``out_dir``)."""
    name = dataset_name or Path(result.dataset).name
    metrics = pd.DataFrame([
        {"measure": "records", "active learning": result.n_records, "random order": result.n_records},
        {"measure": "relevant records", "active learning": result.n_included, "random order": result.n_included},
        {"measure": "WSS@95 (%)", "active learning": round(100 * result.wss_95, 1),
         "random order": round(100 * result.random_wss_95, 1)},
        {"measure": "recall after 10 % screened (%)", "active learning": round(100 * result.recall_at_10pct, 1),
         "random order": round(100 * result.random_recall_at_10pct, 1)},
        {"measure": "records screened to find 95 % of the relevant ones", "active learning": result.n_screened_at_95,
         "random order": ""},
        {"measure": "records screened to find all relevant ones", "active learning": result.n_screened_at_100,
         "random order": ""},
    ])
    return Section(
        stage="literature", id="literature-simulation", order=10, title=f"Screening simulation on {name}",
        summary=f"Active-learning screening of {result.n_records:,} labelled records ({result.n_included:,} relevant) "
                f"found 95 % of the relevant records after {result.n_screened_at_95:,} "
                f"({result.n_screened_at_95 / result.n_records:.0%}) of them.",
        headlines=[Headline(label="Screening simulation: work saved at 95 % recall (WSS@95)",
                            value=f"{100 * result.wss_95:.1f} %",
                            detail=f"{name}; random order {100 * result.random_wss_95:.1f} %", table="metrics")],
        figures=[Figure(id="recall", src=figure,
                        caption=f"Recall curve of the simulated screening of {name}: share of relevant records found "
                                f"against share screened, most relevant first (seed {result.seed}); dashed: random "
                                "order; dotted: 95 % recall.")],
        tables=[Table.from_frame("metrics", "Simulated screening against random order", metrics,
                                 caption="WSS@95: work saved over sampling at 95 % recall (Cohen et al. 2006).")],
        methods=result.methods_sentence(),
        sources=[Source(name=name, source=result.dataset, citation=citation),
                 Source(name="ASReview", citation=result.provenance.citation)],
    )
