"""PRISMA 2020 flow diagram and counts, from what the pipeline recorded.

Counts come from the store: records identified per database (imports), duplicates removed
(de-duplication), records marked ineligible by automation (criteria profile), records
screened and excluded (title/abstract decisions; records left unscreened when the stopping
rule ended screening count as excluded and are reported), and the full-text stage
(decisions entered per record, or counts entered by hand). Layout: Page MJ et al. The
PRISMA 2020 statement. BMJ 2021;372:n71, doi:10.1136/bmj.n71, flow diagram for new
systematic reviews that searched databases and registers only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from neuromodmap._utils import atomic_write
from neuromodmap.literature.screening import init_decisions, latest_decisions
from neuromodmap.literature.store import load_dedup
from neuromodmap.provenance import Provenance

__all__ = ["PrismaFlow", "prisma_flow", "load_manual_counts", "PRISMA_CITATION"]

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


@dataclass
class PrismaFlow:
    """The counts of a PRISMA 2020 flow diagram."""

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
    provenance: Provenance = field(default_factory=lambda: Provenance(source="literature store", citation=PRISMA_CITATION))

    @property
    def records_identified(self) -> int:
        return sum(self.identified_by_database.values()) + sum(self.identified_by_register.values())

    def to_frame(self) -> pd.DataFrame:
        """The counts table: one row per box line."""
        rows = [("identification", f"records identified: {db}", n) for db, n in self.identified_by_database.items()]
        rows += [("identification", f"records identified: register {r}", n) for r, n in self.identified_by_register.items()]
        rows += [
            ("identification", "records identified: total", self.records_identified),
            ("identification", "duplicate records removed", self.duplicates_removed),
            ("identification", "records marked as ineligible by automation tools", self.automation_excluded),
        ]
        rows += [("identification", f"  automation: {reason}", n) for reason, n in self.automation_reasons.items()]
        rows += [
            ("identification", "records removed for other reasons", self.other_removed),
            ("screening", "records screened", self.records_screened),
            ("screening", "records excluded", self.records_excluded),
            ("screening", "  of which not screened (stopping rule)", self.records_not_screened),
            ("screening", "reports sought for retrieval", self.reports_sought),
            ("screening", "reports not retrieved", self.reports_not_retrieved),
            ("screening", "reports assessed for eligibility", self.reports_assessed),
        ]
        rows += [("screening", f"reports excluded: {reason}", n) for reason, n in self.reports_excluded.items()]
        rows += [
            ("included", "studies included in review", self.studies_included),
            ("included", "reports of included studies", self.reports_included),
        ]
        return pd.DataFrame(rows, columns=["stage", "count", "n"]).astype({"n": "Int64"})

    def methods_sentence(self) -> str:
        dbs = ", ".join(f"{db} ({n})" for db, n in self.identified_by_database.items())
        included = "pending full-text assessment" if self.studies_included is None else f"{self.studies_included} studies were included"
        return (f"The searches identified {self.records_identified} records ({dbs}); {self.duplicates_removed} duplicates "
                f"and {self.automation_excluded} records ineligible by the automatic criteria were removed, "
                f"{self.records_screened} records were screened on title and abstract and {self.records_excluded} "
                f"excluded; {self.reports_sought} reports were sought for retrieval and {included} "
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
        removed = ["Records removed before screening:", f"Duplicate records removed (n = {n(self.duplicates_removed)})",
                   "Records marked as ineligible", f"by automation tools (n = {n(self.automation_excluded)})"]
        removed += [f"    {reason.split(' (')[0][:38]} (n = {v})" for reason, v in self.automation_reasons.items()]
        removed += [f"Records removed for other reasons (n = {n(self.other_removed)})"]
        excluded = [f"Records excluded (n = {n(self.records_excluded)})"]
        if self.records_not_screened:
            excluded += [f"    not screened, stopping rule (n = {n(self.records_not_screened)})"]
        reasons = [f"    {r[:40]} (n = {v})" for r, v in self.reports_excluded.items()]
        boxes_left = [
            ("\n".join(ident), "identification"),
            (f"Records screened\n(n = {n(self.records_screened)})", "screening"),
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
        with atomic_write(csv_path, "w", encoding="utf-8", newline="") as fh:
            self.to_frame().to_csv(fh, index=False)
        return paths + [csv_path]


def prisma_flow(con: duckdb.DuckDBPyConnection, manual: dict | None = None) -> PrismaFlow:
    """Count every PRISMA 2020 box from the store; ``manual`` overrides or fills stages done by hand."""
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
    screened = len(pool) - len(criteria)
    ta = latest_decisions(con, "title_abstract")
    ta = ta[ta["record_id"].isin(pool_set)]
    n_include = int((ta["decision"] == "include").sum())
    n_exclude = int((ta["decision"] == "exclude").sum())
    not_screened = screened - n_include - n_exclude
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
    return PrismaFlow(
        identified_by_database={str(k): int(v) for k, v in by_db.items()},
        identified_by_register=dict(manual.get("registers", {})),
        duplicates_removed=duplicates,
        automation_excluded=len(criteria),
        automation_reasons={str(k): int(v) for k, v in automation_reasons.items()},
        other_removed=int(manual.get("other_removed", 0)),
        records_screened=screened,
        records_excluded=n_exclude + not_screened,
        records_not_screened=not_screened,
        reports_sought=int(sought),
        reports_not_retrieved=not_retrieved,
        reports_assessed=assessed,
        reports_excluded={str(k): int(v) for k, v in excluded_reasons.items()},
        studies_included=included,
        reports_included=manual.get("reports_included", included),
        provenance=Provenance(source="literature store", citation=PRISMA_CITATION),
    )
