"""The one internal model every trial-registry importer produces."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ArmGroup", "Intervention", "Trial", "Label", "Classification", "ImportProblem"]


class Intervention(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(default=None, description="DEVICE, PROCEDURE, DRUG, ... (upper case)")
    name: str = ""
    description: str = ""
    other_names: list[str] = Field(default_factory=list)
    arm_group_labels: list[str] = Field(default_factory=list)


class ArmGroup(BaseModel):
    """One arm of a trial as the registry describes it: its label, its role and what it gets."""

    model_config = ConfigDict(extra="forbid")

    label: str = ""
    type: str | None = Field(
        default=None, description="EXPERIMENTAL, ACTIVE_COMPARATOR, PLACEBO_COMPARATOR, SHAM_COMPARATOR, "
                                  "NO_INTERVENTION, OTHER (upper case); None when the registry gives none")
    description: str = ""
    #: the arm's interventions as the registry names them ("Device: TENS"; API v2 only): the
    #: interventions' own ``arm_group_labels`` link them to the arm everywhere else
    intervention_names: list[str] = Field(default_factory=list)


class Trial(BaseModel):
    """A registered trial, normalised from any source.

    Fields a source does not carry stay ``None`` or empty: the 2018 text corpus has only
    title, summary and description, and code must not invent the rest.
    """

    model_config = ConfigDict(extra="forbid")

    registry_id: str = Field(description="NCT id, or the ICTRP TrialID (e.g. ISRCTN..., ChiCTR...)")
    registry: str = Field(description="ctgov or the ICTRP Source_Register (e.g. ISRCTN, ChiCTR)")
    secondary_ids: list[str] = Field(default_factory=list)
    title: str = ""
    official_title: str = ""
    acronym: str = ""
    brief_summary: str = ""
    detailed_description: str = ""
    conditions: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    condition_mesh: list[str] = Field(default_factory=list)
    intervention_mesh: list[str] = Field(default_factory=list)
    interventions: list[Intervention] = Field(default_factory=list)
    #: the arms and their roles (API v2 ``armGroups``, legacy XML ``arm_group``); empty when the
    #: source has none (website CSV, ICTRP, the text corpus)
    arm_groups: list[ArmGroup] = Field(default_factory=list)
    primary_outcomes: list[str] = Field(default_factory=list)
    secondary_outcomes: list[str] = Field(default_factory=list)
    study_type: str | None = None
    phases: list[str] = Field(default_factory=list)
    overall_status: str | None = None
    start_date: dt.date | None = None
    completion_date: dt.date | None = None
    #: how much of the date the registry wrote: "year" (2015), "month" (2015-09, September
    #: 2015: the date is the 1st) or "day"; None when there is no date
    start_date_precision: Literal["year", "month", "day"] | None = None
    completion_date_precision: Literal["year", "month", "day"] | None = None
    registration_date: dt.date | None = None
    last_update: dt.date | None = None
    enrollment: int | None = None
    countries: list[str] = Field(default_factory=list)
    sponsor: str | None = None
    sponsor_class: str | None = None
    allocation: str | None = None
    masking: str | None = None
    primary_purpose: str | None = None
    has_results: bool | None = None
    url: str | None = None
    #: the importer that produced this record: ctgov_v2, ctgov_xml, ctgov_csv (website export),
    #: ctgov_api, ictrp_xml, ictrp_csv, ictrp_full_csv (ICTRP full export)
    source_format: str = ""

    def text_fields(self) -> dict[str, str]:
        """The free-text fields a text classifier reads, by field name."""
        return {
            "title": self.title,
            "official_title": self.official_title,
            "brief_summary": self.brief_summary,
            "detailed_description": self.detailed_description,
        }


class Label(BaseModel):
    """One piece of evidence for a classification label: the field and the matched text."""

    label: str
    value: str
    field: str
    text: str


class Classification(BaseModel):
    registry_id: str
    neuromod: bool
    modalities: list[str] = Field(default_factory=list)
    modality_group: list[str] = Field(default_factory=list)
    indication: str = "other"
    pain_subtype: list[str] = Field(default_factory=list)
    depression_subtype: list[str] = Field(default_factory=list)
    chronic_pain: bool | None = None
    targets: list[str] = Field(default_factory=list)
    invasive: bool | None = None
    evidence: list[Label] = Field(default_factory=list)


class ImportProblem(BaseModel):
    """A problem met while importing (file, line or record, field, reason) and what was done.

    ``action`` is ``field emptied`` when one field was bad: the field is left empty and the
    record imported; ``record skipped`` when the record could not be imported; ``file
    skipped`` (``location`` "file") when nothing of the file could be read, and ``rest of
    file skipped`` (``location`` "after line 12" ...) when a file is cut short or corrupt
    from some point on; ``field kept as text`` when a legacy XML record nests elements deeper
    than its stored form goes (they are stored as their text). See docs/trials_import.md.
    """

    source: str
    location: str = Field(description="line number, record index, ZIP member, or XPath")
    field: str | None = None
    reason: str
    registry_id: str | None = None
    action: str = Field(
        default="", description="field emptied, record skipped, file skipped or rest of file skipped"
    )

    def model_post_init(self, __context: Any) -> None:
        if not self.action:
            if self.location == "file":
                self.action = "file skipped"
            elif self.location.startswith("after "):
                self.action = "rest of file skipped"
            else:
                self.action = "record skipped"

    def __str__(self) -> str:
        where = f"{self.source}:{self.location}"
        fld = f" field {self.field}" if self.field else ""
        rid = f" ({self.registry_id})" if self.registry_id else ""
        return f"{where}{rid}{fld}: {self.reason} [{self.action}]"


RawRecord = dict[str, Any]
