"""The reportlet every stage renders: a small, self-describing section of the report.

A stage writes ``section.json`` into its output folder beside the figures and CSV tables it
refers to (paths relative to that folder). :func:`~neuromodmap.report.build_report` reads
these files, inlines what they refer to (never a file outside the section's folder) and
assembles one document: overview, trials, literature, evidence, connectome, methods.

Nothing in a section is HTML: text, headlines, captions and table cells are plain strings that
the report's template escapes, so a registry title or an abstract cannot inject markup.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from neuromodmap import __version__
from neuromodmap._utils import atomic_write
from neuromodmap.provenance import Provenance

__all__ = ["STAGES", "STAGE_TITLES", "SECTION_FILE", "Headline", "Figure", "Table", "Block", "Source",
           "Section", "SectionError", "read_section", "software_versions"]

#: the stages, in the report's order
STAGES = ("trials", "literature", "evidence", "connectome")
STAGE_TITLES = {
    "trials": "Registered trials",
    "literature": "Literature search and screening",
    "evidence": "Meta-analysis",
    "connectome": "Connectomic mapping of targets",
}
SECTION_FILE = "section.json"
FORMAT = "neuromodmap-section"

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_URL = re.compile(r"^https?://[^\s<>\"']+$", re.I)


class SectionError(ValueError):
    """A ``section.json`` that cannot be read or does not describe a section."""


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{value!r} is not an id (lower-case letters, digits, '-' or '_', at most 64)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Headline(_Model):
    """One number of the overview, with the table of the report that holds it."""

    label: str
    value: str
    detail: str = Field("", description="context, e.g. the seed's figure beside ours")
    table: str = Field("", description="id of the table (in the same section) the number comes from")


class Figure(_Model):
    id: str
    src: str = Field(description="image file, relative to the section folder (PNG, SVG, JPEG)")
    caption: str
    alt: str = ""

    _id = field_validator("id")(_check_id)


class Table(_Model):
    """A table: inline ``columns``/``rows`` or a CSV file in the section folder.

    ``searchable`` tables are shown with a search box, facet filters and pages (rendered in the
    browser from embedded JSON); the others as plain, sortable HTML tables. ``links`` maps a
    column to the column that holds its URL (http or https only); ``hidden`` columns are not
    shown.
    """

    id: str
    title: str
    caption: str = ""
    csv: str = ""
    columns: list[str] = Field(default_factory=list)
    rows: list[list[Any]] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict)
    hidden: list[str] = Field(default_factory=list)
    searchable: bool = False
    facets: list[str] = Field(default_factory=list)
    page_size: int = Field(25, ge=5, le=500)
    max_rows: int = Field(0, ge=0, description="rows shown in a plain table (0: all)")

    _id = field_validator("id")(_check_id)

    @classmethod
    def from_frame(cls, id: str, title: str, frame: pd.DataFrame, **kwargs) -> Table:
        """A table with the frame's cells inline (NaN becomes an empty cell)."""
        frame = frame.reset_index(drop=True)
        return cls(id=id, title=title, columns=[str(c) for c in frame.columns],
                   rows=[[_cell(v) for v in row] for row in frame.itertuples(index=False)], **kwargs)


class Block(_Model):
    """One item of a section's body, in order: a heading, a paragraph, a note, a list, or a
    figure or table given by id (figures and tables that no block names follow at the end)."""

    kind: Literal["heading", "text", "note", "list", "figure", "table"]
    text: str = ""
    items: list[str] = Field(default_factory=list)
    ref: str = ""


class Source(_Model):
    """A data source of the section, for the methods: what, where from, as of when, how to cite."""

    name: str
    source: str = ""
    as_of: str = ""
    citation: str = ""
    licence: str = ""

    @classmethod
    def from_provenance(cls, name: str, prov: Provenance) -> Source:
        return cls(name=name, source=prov.source, as_of=prov.as_of.isoformat() if prov.as_of else "",
                   citation=prov.citation, licence=prov.licence)


class Section(_Model):
    """A stage's part of the report (see the module docstring)."""

    format: Literal["neuromodmap-section"] = FORMAT
    format_version: int = 1
    stage: Literal["trials", "literature", "evidence", "connectome"]
    id: str
    title: str
    order: int = 0
    summary: str = ""
    headlines: list[Headline] = Field(default_factory=list)
    blocks: list[Block] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    methods: str = ""
    sources: list[Source] = Field(default_factory=list)
    software: dict[str, str] = Field(default_factory=lambda: software_versions())
    created: str = Field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat())

    _id = field_validator("id")(_check_id)

    def write(self, folder: str | os.PathLike) -> Path:
        """Write ``section.json`` into ``folder`` (the files it refers to must be there)."""
        path = Path(folder) / SECTION_FILE
        with atomic_write(path, "w", encoding="utf-8") as fh:
            fh.write(self.model_dump_json(indent=1))
        return path

    def table(self, table_id: str) -> Table:
        for t in self.tables:
            if t.id == table_id:
                return t
        raise KeyError(table_id)


def read_section(path: str | os.PathLike) -> Section:
    """Read a ``section.json``; any problem is one :class:`SectionError` naming the file and field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SectionError(f"{path}: cannot read the section ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SectionError(f"{path}: not a neuromodmap section (no \"format\": \"{FORMAT}\")")
    try:
        return Section.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SectionError(f"{path}: field {where}: {err['msg']}") from None


def _cell(value: Any) -> Any:
    """A JSON-safe table cell: numbers stay numbers, missing values become ''."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else value
    if isinstance(value, bool | int | str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item())
    if isinstance(value, list | tuple | set):
        return "; ".join(str(v) for v in value)
    if hasattr(value, "tolist"):
        return "; ".join(str(v) for v in value.tolist())
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp):
        return value.isoformat()[:10] if not isinstance(value, dt.datetime) or not value.time() else value.isoformat()
    return str(value)


_SOFTWARE = ("numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "nilearn", "nibabel", "duckdb", "jinja2")


def software_versions() -> dict[str, str]:
    """neuromodmap, Python and the main libraries, with their versions."""
    out = {"neuromodmap": __version__, "python": platform.python_version()}
    for name in _SOFTWARE:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def is_url(value: str) -> bool:
    """True for an http(s) URL that is safe in an ``href`` (no javascript:, no quotes)."""
    return bool(_URL.match(value or ""))
