"""PRISMA 2020 flow diagram and counts, from what the pipeline recorded.

Counts come from the store: records identified per database (imports), duplicates removed
(de-duplication), records marked ineligible by automation (criteria profile), records
screened and excluded (title/abstract decisions), and the full-text stage (decisions entered
per record, or counts entered by hand). Records nobody has screened yet are *awaiting
screening*, not excluded; they count as excluded only when a stopping rule ended screening
(recorded by the screener with its rule and declared recall target, see
:func:`~neuromodmap.literature.screening.latest_stop`). Records identified from registers
come from the trials stage (:func:`register_counts`: the classified neuromodulation trials
of the review's question) or are entered by hand. Every count carries the table it comes
from (:meth:`PrismaFlow.to_frame`). Layout: Page MJ et al. The PRISMA 2020 statement. BMJ
2021;372:n71, doi:10.1136/bmj.n71, flow diagram for new systematic reviews that searched
databases and registers only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from neuromodmap._utils import atomic_write, write_csv
from neuromodmap.literature.screening import init_decisions, latest_decisions, latest_stop
from neuromodmap.literature.store import load_dedup
from neuromodmap.provenance import Provenance

__all__ = ["PrismaFlow", "prisma_flow", "load_manual_counts", "register_counts", "register_trials", "PRISMA_CITATION"]

PRISMA_CITATION = "Page MJ, McKenzie JE, Bossuyt PM, et al. The PRISMA 2020 statement. BMJ 2021;372:n71. doi:10.1136/bmj.n71"

_MANUAL_KEYS = {"registers", "other_removed", "reports_sought", "reports_not_retrieved", "reports_excluded",
                "studies_included", "reports_included"}


def load_manual_counts(path: str | os.PathLike) -> dict:
    """Read hand-entered counts (YAML) for stages outside the tool, e.g. full-text retrieval."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read manual PRISMA counts ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: manual PRISMA counts must be a YAML mapping")
    unknown = set(data) - _MANUAL_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_MANUAL_KEYS))}")
    for key, value in data.items():
        values = value.values() if isinstance(value, dict) else [value]
        if not all(isinstance(v, int) and v >= 0 for v in values):
            raise ValueError(f"{path}: {key} must be a non-negative whole number (or a mapping of them)")
    return data


_QUESTION_INDICATIONS = {"both": ("pain", "depression", "both"), "pain": ("pain", "both"),
                         "depression": ("depression", "both")}
_REGISTER_NAMES = {"ctgov": "ClinicalTrials.gov"}


def register_trials(trials_con: duckdb.DuckDBPyConnection, *, question: str = "both") -> pd.DataFrame:
    """The trials store's neuromodulation trials of the review's question (``registry_id``, ``registry``).

    The trials the trials stage classified as testing a neuromodulation intervention for the
    review's indication (``question``: ``pain``, ``depression`` or ``both``; a trial labelled
    for both counts in either; reviewers' label corrections applied), leaving out records that a confirmed cross-registry link shows
    to be copies of another stored record (as ``TrialStore.trials_df(deduplicate=True)``).
    Empty when the store has no classified trials.
    """
    if question not in _QUESTION_INDICATIONS:
        raise ValueError(f"unknown review question {question!r}; one of {', '.join(_QUESTION_INDICATIONS)}")
    tables = {row[0] for row in trials_con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()}
    if not {"trials", "trial_labels"} <= tables:
        return pd.DataFrame(columns=["registry_id", "registry"])
    copies = ("AND t.registry_id NOT IN (SELECT l.registry_id FROM trial_links l JOIN trials p "
              "ON p.registry_id = l.linked_id WHERE l.confirmed)") if "trial_links" in tables else ""
    indications = list(_QUESTION_INDICATIONS[question])
    placeholders = ", ".join("?" for _ in indications)
    from neuromodmap.trials.overrides import effective_labels_sql  # reviewers' corrections applied

    labels = effective_labels_sql(trials_con)
    frame = trials_con.execute(
        f"SELECT t.registry_id, t.registry FROM trials t JOIN {labels} b USING (registry_id) "  # noqa: S608
        f"WHERE b.neuromod AND b.indication IN ({placeholders}) {copies} ORDER BY t.registry_id",
        indications).df()
    frame["registry"] = frame["registry"].map(lambda r: _REGISTER_NAMES.get(str(r), str(r)))
    return frame


def register_counts(trials_con: duckdb.DuckDBPyConnection, *, question: str = "both") -> dict[str, int]:
    """Records identified from registers, per register: :func:`register_trials` counted."""
    counts = register_trials(trials_con, question=question)["registry"].value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


@dataclass
class PrismaFlow:
    """The counts of a PRISMA 2020 flow diagram.

    ``records_screened`` counts the records with a title/abstract decision, plus, when a
    stopping rule ended screening, the records it left unscreened (``records_not_screened``,
    counted as excluded). Without an applied stopping rule, records without a decision are
    ``records_awaiting_screening``: neither screened nor excluded.

    Register records (``identified_by_register``) were screened by the trials stage's
    classifier, not by the literature screener: they are counted at identification, and the
    screening boxes count database records only (``records_entering_screening``).
    """

    identified_by_database: dict[str, int]
    identified_by_register: dict[str, int]
    duplicates_removed: int
    automation_excluded: int
    automation_reasons: dict[str, int]
    other_removed: int
    records_screened: int
    records_excluded: int
    records_not_screened: int
    reports_sought: int
    reports_not_retrieved: int | None
    reports_assessed: int | None
    reports_excluded: dict[str, int]
    studies_included: int | None
    reports_included: int | None
    records_awaiting_screening: int = 0
    stopping_rule: dict | None = None
    register_source: str = ""
    registers_linked: int | None = None
    provenance: Provenance = field(default_factory=lambda: Provenance(source="literature store", citation=PRISMA_CITATION))

    @property
    def records_identified(self) -> int:
        return sum(self.identified_by_database.values()) + sum(self.identified_by_register.values())

    @property
    def records_entering_screening(self) -> int:
        """Database records left after the removals: screened + awaiting screening."""
        return self.records_screened + self.records_awaiting_screening

    def stopping_rule_text(self) -> str:
        """The applied stopping rule in words, with its recall target, or ''."""
        if not self.stopping_rule:
            return ""
        target = self.stopping_rule.get("recall_target")
        target_text = f"recall target {target:.0%}" if target else "no recall target declared"
        return f"stopping rule: {self.stopping_rule['description']}; {target_text}"

    def to_frame(self) -> pd.DataFrame:
        """The counts table: one row per box line, with the table each number comes from."""
        imports, clusters = "literature_imports", "literature_dedup_clusters"
        criteria, ta = "literature_decisions (criteria)", "literature_decisions (title_abstract)"
        ft = "literature_decisions (full_text)" if self.reports_assessed is not None else "manual counts"
        registers = self.register_source or "manual counts"
        rows = [("identification", f"records identified: {db}", n, imports)
                for db, n in self.identified_by_database.items()]
        rows += [("identification", f"records identified: register {r}", n, registers)
                 for r, n in self.identified_by_register.items()]
        rows += [
            ("identification", "records identified: databases", sum(self.identified_by_database.values()), imports),
            ("identification", "records identified: registers", sum(self.identified_by_register.values()), registers),
            ("identification", "records identified: total", self.records_identified, "sum of the rows above"),
        ]
        if self.registers_linked is not None:
            rows.append(("identification", "  register records that a database record reports (linked by registry "
                         "id, PMID or DOI)", self.registers_linked, "literature_trial_links"))
        rows += [
            ("identification", "duplicate records removed", self.duplicates_removed, clusters),
            ("identification", "records marked as ineligible by automation tools", self.automation_excluded, criteria),
        ]
        rows += [("identification", f"  automation: {reason}", n, criteria)
                 for reason, n in self.automation_reasons.items()]
        rows += [
            ("identification", "records removed for other reasons", self.other_removed, "manual counts"),
            ("screening", "records entering screening (databases)", self.records_entering_screening,
             "records identified from databases minus the three removals"),
            ("screening", "records screened", self.records_screened, ta),
            ("screening", "records awaiting screening", self.records_awaiting_screening, ta),
            ("screening", "records excluded", self.records_excluded, ta),
        ]
        if self.stopping_rule:
            rows.append(("screening", f"  of which not screened ({self.stopping_rule_text()})",
                         self.records_not_screened, "literature_stops"))
        rows += [
            ("screening", "reports sought for retrieval", self.reports_sought, ta),
            ("screening", "reports not retrieved", self.reports_not_retrieved, ft),
            ("screening", "reports assessed for eligibility", self.reports_assessed, ft),
        ]
        rows += [("screening", f"reports excluded: {reason}", n, ft) for reason, n in self.reports_excluded.items()]
        rows += [
            ("included", "studies included in review", self.studies_included, ft),
            ("included", "reports of included studies", self.reports_included, ft),
        ]
        return pd.DataFrame(rows, columns=["stage", "count", "n", "source"]).astype({"n": "Int64"})

    def methods_sentence(self) -> str:
        dbs = ", ".join(f"{db} ({n})" for db, n in self.identified_by_database.items())
        regs = ", ".join(f"{r} ({n})" for r, n in self.identified_by_register.items())
        sources = dbs + (f"; registers: {regs}" if regs else "")
        included = ("pending full-text assessment" if self.studies_included is None
                    else f"{self.studies_included} studies were included")
        screening = (f"{self.records_screened} records were screened on title and abstract and "
                     f"{self.records_excluded} excluded")
        if self.stopping_rule:
            screening += (f" ({self.records_not_screened} of them left unscreened when the "
                          f"{self.stopping_rule_text()} ended screening)")
        if self.records_awaiting_screening:
            screening += f"; {self.records_awaiting_screening} records await screening"
        return (f"The searches identified {self.records_identified} records ({sources}); {self.duplicates_removed} "
                f"duplicates and {self.automation_excluded} records ineligible by the automatic criteria were removed, "
                f"{screening}; {self.reports_sought} reports were sought for retrieval and {included} "
                f"(PRISMA 2020 flow diagram; Page et al. 2021).")

    def plot(self, path: str | os.PathLike) -> Path:
        """Draw the flow diagram to ``path`` (format from the suffix: .svg, .png, .pdf)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

        def n(value) -> str:
            return "pending" if value is None else f"{value:,}"

        ident = ["Records identified from:", f"Databases (n = {n(sum(self.identified_by_database.values()))})"]
        ident += [f"    {db} (n = {n(v)})" for db, v in self.identified_by_database.items()]
        ident += [f"Registers (n = {n(sum(self.identified_by_register.values()))})"]
        ident += [f"    {r} (n = {n(v)})" for r, v in self.identified_by_register.items()]
        if self.identified_by_register and self.register_source.startswith("trials store"):
            ident += ["    (neuromodulation trials of the review's", "    question, classified by the trials stage)"]
        if self.registers_linked is not None:
            ident += [f"    reported by a database record (n = {n(self.registers_linked)})"]
        removed = ["Records removed before screening:", f"Duplicate records removed (n = {n(self.duplicates_removed)})",
                   "Records marked as ineligible", f"by automation tools (n = {n(self.automation_excluded)})"]
        removed += [f"    {reason.split(' (')[0][:38]} (n = {v})" for reason, v in self.automation_reasons.items()]
        removed += [f"Records removed for other reasons (n = {n(self.other_removed)})"]
        excluded = [f"Records excluded (n = {n(self.records_excluded)})"]
        screened = [f"Records screened (n = {n(self.records_screened)})"]
        if self.stopping_rule:
            rule = self.stopping_rule
            target = rule.get("recall_target")
            excluded += [f"    not screened: stopping rule (n = {n(self.records_not_screened)})",
                         f"    {rule['description'][:44]}",
                         f"    {'recall target ' + format(target, '.0%') if target else 'no recall target declared'}"]
            screened += [f"    by a reviewer (n = {n(self.records_screened - self.records_not_screened)})",
                         f"    left by the stopping rule (n = {n(self.records_not_screened)})"]
        if self.records_awaiting_screening:
            screened += [f"Records awaiting screening (n = {n(self.records_awaiting_screening)})"]
        reasons = [f"    {r[:40]} (n = {v})" for r, v in self.reports_excluded.items()]
        boxes_left = [
            ("\n".join(ident), "identification"),
            ("\n".join(screened), "screening"),
            (f"Reports sought for retrieval\n(n = {n(self.reports_sought)})", "screening"),
            (f"Reports assessed for eligibility\n(n = {n(self.reports_assessed)})", "screening"),
            (f"Studies included in review\n(n = {n(self.studies_included)})\n"
             f"Reports of included studies\n(n = {n(self.reports_included)})", "included"),
        ]
        boxes_right = [
            "\n".join(removed),
            "\n".join(excluded),
            f"Reports not retrieved\n(n = {n(self.reports_not_retrieved)})",
            "\n".join([f"Reports excluded (n = {n(sum(self.reports_excluded.values()))}):"] + reasons),
            None,
        ]
        heights = [max(1.0, 0.22 * (max(left.count("\n"), (right or "").count("\n")) + 1) + 0.3)
                   for (left, _), right in zip(boxes_left, boxes_right, strict=True)]
        gap = 0.45
        total = sum(heights) + gap * (len(heights) - 1) + 0.6
        fig, ax = plt.subplots(figsize=(10, total * 0.95))
        ax.set_xlim(0, 10)
        ax.set_ylim(-0.2, total)
        ax.axis("off")
        ax.text(5, total - 0.2, "PRISMA 2020 flow diagram", ha="center", va="top", fontsize=12, weight="bold")
        y = total - 0.6
        centres = []
        for (left, stage), right, h in zip(boxes_left, boxes_right, heights, strict=True):
            top = y
            ax.add_patch(FancyBboxPatch((1.0, top - h), 4.0, h, boxstyle="round,pad=0.02", fc="white", ec="black"))
            ax.text(1.15, top - 0.12, left, ha="left", va="top", fontsize=8.5)
            if right:
                ax.add_patch(FancyBboxPatch((6.0, top - h), 3.8, h, boxstyle="round,pad=0.02", fc="#f2f2f2",
                                            ec="black"))
                ax.text(6.15, top - 0.12, right, ha="left", va="top", fontsize=8.5)
                ax.add_patch(FancyArrowPatch((5.0, top - h / 2), (6.0, top - h / 2), arrowstyle="-|>",
                                             mutation_scale=12))
            centres.append((top, h, stage))
            y = top - h - gap
        for (top, h, _), (next_top, _, _) in zip(centres, centres[1:], strict=False):
            ax.add_patch(FancyArrowPatch((3.0, top - h), (3.0, next_top), arrowstyle="-|>", mutation_scale=12))
        colours = {"identification": "#cfe2f3", "screening": "#fce5cd", "included": "#d9ead3"}
        for stage in ("identification", "screening", "included"):
            spans = [(top, h) for top, h, s in centres if s == stage]
            upper = spans[0][0]
            lower = spans[-1][0] - spans[-1][1]
            ax.add_patch(FancyBboxPatch((0.1, lower), 0.6, upper - lower, boxstyle="round,pad=0.02",
                                        fc=colours[stage], ec="none"))
            ax.text(0.4, (upper + lower) / 2, stage.capitalize(), rotation=90, ha="center", va="center",
                    fontsize=9, weight="bold")
        path = Path(path)
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, format=path.suffix.lstrip(".") or "png", dpi=150, bbox_inches="tight")
        plt.close(fig)
        return path

    def write(self, directory: str | os.PathLike) -> list[Path]:
        """Write ``prisma.svg``, ``prisma.png`` and ``prisma_counts.csv`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = [self.plot(directory / "prisma.svg"), self.plot(directory / "prisma.png")]
        csv_path = directory / "prisma_counts.csv"
        write_csv(self.to_frame(), csv_path)
        return paths + [csv_path]


def prisma_flow(con: duckdb.DuckDBPyConnection, manual: dict | None = None, *,
                trials_con: duckdb.DuckDBPyConnection | None = None, question: str = "both",
                trials_db: str = "") -> PrismaFlow:
    """Count every PRISMA 2020 box from the store; ``manual`` overrides or fills stages done by hand.

    Parameters
    ----------
    con : duckdb connection
        The literature store.
    manual : dict, optional
        Hand-entered counts (:func:`load_manual_counts`); ``registers`` there replaces the
        trials store's counts.
    trials_con : duckdb connection, optional
        The trials store whose classified trials are the records identified from registers
        (:func:`register_counts`); default ``con`` itself when it holds classified trials.
    question : {"both", "pain", "depression"}
        The review question that decides which classified trials count.
    trials_db : str
        A label for the trials store, written as the source of the register counts.
    """
    manual = manual or {}
    init_decisions(con)
    records = con.execute("SELECT record_id, source_database FROM literature_records").df()
    if not len(records):
        raise ValueError("the database holds no literature records; import search exports first")
    by_db = records.groupby("source_database").size().sort_values(ascending=False)
    clusters = load_dedup(con)
    if clusters is not None:
        clustered = set(clusters["record_id"])
        primary = set(clusters.loc[clusters["is_primary"], "record_id"])
        pool = [r for r in records["record_id"] if r in primary or r not in clustered]
    else:
        pool = list(records["record_id"])
    pool_set = set(pool)
    duplicates = len(records) - len(pool)
    criteria = latest_decisions(con, "criteria")
    criteria = criteria[criteria["record_id"].isin(pool_set) & (criteria["decision"] == "exclude")]
    automation_reasons = (criteria["reason"].str.split(":").str[0].value_counts().to_dict()
                          if len(criteria) else {})
    other_removed = int(manual.get("other_removed", 0))
    entering = len(pool) - len(criteria) - other_removed
    eligible = pool_set - set(criteria["record_id"])
    ta = latest_decisions(con, "title_abstract")
    ta = ta[ta["record_id"].isin(eligible)]
    n_include = int((ta["decision"] == "include").sum())
    n_exclude = int((ta["decision"] == "exclude").sum())
    undecided = max(0, entering - n_include - n_exclude)
    # records without a decision are excluded only when a stopping rule ended screening
    stop = latest_stop(con)
    not_screened = undecided if stop else 0
    awaiting = 0 if stop else undecided
    ft = latest_decisions(con, "full_text")
    ft = ft[ft["record_id"].isin(set(ta.loc[ta["decision"] == "include", "record_id"]))]
    has_ft = len(ft) > 0
    sought = manual.get("reports_sought", n_include)
    not_retrieved = manual.get("reports_not_retrieved", int((ft["decision"] == "not_retrieved").sum()) if has_ft else None)
    excluded_reasons = manual.get("reports_excluded")
    if excluded_reasons is None:
        fx = ft[ft["decision"] == "exclude"]
        excluded_reasons = fx["reason"].replace("", "no reason given").value_counts().to_dict() if has_ft else {}
    included = manual.get("studies_included", int((ft["decision"] == "include").sum()) if has_ft else None)
    assessed = sought - not_retrieved if not_retrieved is not None else None
    registers, register_source, registers_linked = _registers(con, manual, trials_con, question, trials_db)
    return PrismaFlow(
        identified_by_database={str(k): int(v) for k, v in by_db.items()},
        identified_by_register=registers,
        duplicates_removed=duplicates,
        automation_excluded=len(criteria),
        automation_reasons={str(k): int(v) for k, v in automation_reasons.items()},
        other_removed=other_removed,
        records_screened=n_include + n_exclude + not_screened,
        records_excluded=n_exclude + not_screened,
        records_not_screened=not_screened,
        records_awaiting_screening=awaiting,
        stopping_rule=stop,
        reports_sought=int(sought),
        reports_not_retrieved=not_retrieved,
        reports_assessed=assessed,
        reports_excluded={str(k): int(v) for k, v in excluded_reasons.items()},
        studies_included=included,
        reports_included=manual.get("reports_included", included),
        register_source=register_source,
        registers_linked=registers_linked,
        provenance=Provenance(source="literature store", citation=PRISMA_CITATION),
    )


def _registers(con, manual: dict, trials_con, question: str, trials_db: str) -> tuple[dict[str, int], str, int | None]:
    """Register counts (hand-entered, or the trials store's), their source, and how many a record reports."""
    if "registers" in manual:
        return dict(manual["registers"]), "manual counts", None
    trials = register_trials(trials_con if trials_con is not None else con, question=question)
    if not len(trials):
        return {}, "", None
    counts = trials["registry"].value_counts()
    registers = {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}
    source = f"trials store{' ' + trials_db if trials_db else ''}: trials + trial_labels (neuromod, question {question})"
    from neuromodmap.literature.trial_links import has_linked, load_trial_links
    from neuromodmap.trials.references import PUBLICATION_RELATIONS

    if not has_linked(con):  # link-trials has not run: unknown, not zero
        return registers, source, None
    links = load_trial_links(con)
    reports = links[links["method"].str.startswith("record_quotes") | links["detail"].isin(PUBLICATION_RELATIONS)]
    return registers, source, int(trials["registry_id"].isin(set(reports["registry_id"])).sum())
