"""Provenance carried by every result: where the data came from, when, and how to cite it."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from neuromodmap import __version__

__all__ = ["Provenance"]


class Provenance(BaseModel):
    """Source, as-of date, software version and citation of a dataset or result."""

    source: str = Field(description="file path, URL or query the data came from")
    as_of: dt.date | None = Field(default=None, description="date the source data refer to")
    retrieved: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    version: str = Field(default=__version__, description="neuromodmap version")
    citation: str = ""
    licence: str = ""
    extra: dict[str, str] = Field(default_factory=dict)

    def sentence(self) -> str:
        """One methods-section sentence describing this provenance."""
        as_of = f" as of {self.as_of.isoformat()}" if self.as_of else ""
        cite = f" ({self.citation})" if self.citation else ""
        return f"Data from {self.source}{as_of}{cite}; processed with neuromodmap {self.version}."
