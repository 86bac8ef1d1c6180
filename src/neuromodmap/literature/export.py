"""Export included records to the evidence extraction sheet, citation fields pre-filled."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd

from neuromodmap.evidence.sheet import COLUMNS
from neuromodmap.literature.dedup import first_author_surname
from neuromodmap.literature.records import Record
from neuromodmap.literature.screening import latest_decisions
from neuromodmap.literature.store import load_dedup, load_records

__all__ = ["included_records", "extraction_sheet", "export_extraction_sheet"]


def included_records(con: duckdb.DuckDBPyConnection, stage: str | None = None) -> list[Record]:
    """Records included at full text (or, when no full-text decision exists yet, at title/abstract)."""
    if stage is None:
        stage = "full_text" if len(latest_decisions(con, "full_text")) else "title_abstract"
    decisions = latest_decisions(con, stage)
    ids = decisions.loc[decisions["decision"] == "include", "record_id"].tolist()
    by_id = {r.record_id: r for r in load_records(con)}
    return [by_id[i] for i in ids if i in by_id]


def _study_id(record: Record) -> str:
    surname = first_author_surname(record.authors).capitalize() or "Anon"
    return f"{surname}{record.year or ''}"


def extraction_sheet(records: list[Record], databases: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One row per included record with the sheet's columns; citation columns filled."""
    bases = [_study_id(r) for r in records]
    totals = pd.Series(bases).value_counts().to_dict() if bases else {}
    rows, used = [], {}
    for base in bases:
        used[base] = used.get(base, 0) + 1
        # Smith2020a, Smith2020b: same first author and year stay distinct
        rows.append(base if totals[base] == 1 else f"{base}{chr(ord('a') + used[base] - 1)}")
    out = []
    for record, study_id in zip(records, rows, strict=True):
        first = record.authors[0].split(",")[0].strip() if record.authors else "Anon"
        citation = f"{first}{' et al.' if len(record.authors) > 1 else ''} {record.year or 'n.d.'}"
        if record.journal:
            citation += f", {record.journal}"
        # volume and pages: what identifies a record the export gave no title
        place = ":".join(p for p in (record.volume, record.pages) if p)
        if place:
            citation += f" {place}" if record.journal else f", {place}"
        found_in = ", ".join((databases or {}).get(record.record_id, [record.source_database]))
        notes = f"literature record {record.record_id}; found in {found_in}"
        if not record.title:
            notes += "; the search export gave no title"
        row = dict.fromkeys(COLUMNS, "")
        row.update({"study_id": study_id, "citation": citation, "doi": record.doi or "", "pmid": record.pmid or "",
                    "title": record.title, "year": record.year if record.year else "", "notes": notes})
        out.append(row)
    return pd.DataFrame(out, columns=list(COLUMNS))


def export_extraction_sheet(con: duckdb.DuckDBPyConnection, path: str | os.PathLike, *,
                            stage: str | None = None) -> tuple[list[Path], int]:
    """Write the included records as an extraction sheet (CSV, or XLSX by suffix).

    Written by :func:`neuromodmap.evidence.write_sheet`, so the file is the evidence
    stage's own template (data dictionary beside it, drop-down lists in XLSX, spreadsheet
    formulas defused). Returns the files written and the number of records.
    """
    from neuromodmap.evidence import write_sheet

    records = included_records(con, stage)
    clusters = load_dedup(con)
    databases: dict[str, list[str]] = {}
    if clusters is not None:
        by_cluster = clusters.groupby("cluster_id")["source_database"].agg(lambda s: sorted(set(s)))
        for record_id, cluster_id in zip(clusters["record_id"], clusters["cluster_id"], strict=True):
            databases[record_id] = by_cluster[cluster_id]
    sheet = extraction_sheet(records, databases)
    rows = [{key: value for key, value in row.items() if value != ""} for row in sheet.to_dict("records")]
    return write_sheet(Path(path), rows), len(rows)
