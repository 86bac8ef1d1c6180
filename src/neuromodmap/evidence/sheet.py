"""The neuromodulation data-extraction sheet: columns, data dictionary and validation.

The columns follow the data-extraction list of the first seed (Mukhtar 2025, "Development
of neuromodulation in the treatment of chronic pain and depression", Methods): study
design, sample size, demographics, technique and parameters, treatment duration, clinical
outcomes (pain intensity, depression scales), adverse events and follow-up. Modality,
target and indication use the shared codes of :mod:`neuromodmap.vocabulary`.

One row is one comparison of one outcome at one time point in one study: the *active*
arm against the *control* arm (sham or other comparator). Single-arm studies (response
rates pooled as proportions) leave the control columns empty.

The literature stage pre-fills :data:`CITATION_COLUMNS`; reviewers fill the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neuromodmap import vocabulary

__all__ = [
    "COLUMNS",
    "CITATION_COLUMNS",
    "ARM_COLUMNS",
    "NUMERIC_COLUMNS",
    "DESIGNS",
    "SHAM_TYPES",
    "OUTCOME_MEASURES",
    "ExtractionRecord",
    "CellProblem",
    "data_dictionary",
    "normalise_outcome",
    "validate_rows",
    "cross_field_problems",
    "INTEGER_COLUMNS",
]

DESIGNS: dict[str, str] = {
    "rct_parallel": "Randomised controlled trial, parallel groups",
    "rct_crossover": "Randomised controlled trial, crossover",
    "nonrandomised_controlled": "Non-randomised controlled study",
    "single_arm": "Single-arm trial / open-label series",
    "cohort": "Cohort or registry study",
    "case_series": "Case series",
    "other": "Other design",
}

SHAM_TYPES: dict[str, str] = {
    "none": "No sham (open-label or uncontrolled)",
    "sham_coil": "Sham TMS coil (shielded or placebo coil)",
    "tilted_coil": "Tilted / angled active coil",
    "sham_stimulation": "Device implanted or applied but switched off / ramped down",
    "subthreshold": "Sub-therapeutic (sub-perception or low-intensity) stimulation",
    "placebo_device": "Inactive placebo device",
    "waitlist": "Waiting list",
    "usual_care": "Usual care / conventional medical management",
    "active_comparator": "Active comparator (drug, other stimulation, surgery)",
    "other": "Other control",
}

#: Outcome scales: code -> (label, domain, synonyms). All are scored so lower is better.
OUTCOME_MEASURES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "VAS": ("Visual analogue scale for pain", "pain", ("vas pain", "visual analogue scale", "visual analog scale")),
    "NRS": ("Numeric rating scale for pain", "pain", ("nprs", "numeric rating scale", "numerical rating scale")),
    "BPI": ("Brief Pain Inventory (severity or interference)", "pain", ("brief pain inventory", "bpi-sf")),
    "MPQ": ("McGill Pain Questionnaire", "pain", ("sf-mpq", "mcgill", "mcgill pain questionnaire")),
    "ODI": ("Oswestry Disability Index", "pain", ("oswestry",)),
    "FIQ": ("Fibromyalgia Impact Questionnaire", "pain", ("fiq-r", "fibromyalgia impact questionnaire")),
    "HAM-D": ("Hamilton Depression Rating Scale", "depression",
              ("hamd", "ham-d17", "hamd-17", "hamd17", "hamd-24", "hdrs", "hrsd", "hamilton")),
    "MADRS": ("Montgomery-Asberg Depression Rating Scale", "depression", ("montgomery-asberg",)),
    "BDI": ("Beck Depression Inventory", "depression", ("bdi-ii", "bdi-2", "beck depression inventory")),
    "QIDS": ("Quick Inventory of Depressive Symptomatology", "depression", ("qids-sr", "qids-c", "ids-sr")),
    "PHQ-9": ("Patient Health Questionnaire-9", "depression", ("phq9", "phq")),
    "HADS-D": ("Hospital Anxiety and Depression Scale, depression", "depression", ("hads", "hadsd")),
    "CGI": ("Clinical Global Impression (severity)", "other", ("cgi-s",)),
    "other": ("Other scale (name it in outcome_note)", "other", ()),
}

# column name -> (type, description). Order is the sheet's column order.
_SPEC: dict[str, tuple[str, str]] = {
    # citation: pre-filled by the literature stage
    "study_id": ("text", "Unique study key, e.g. 'Lefaucheur2004'. Rows of one study share it."),
    "citation": ("text", "Short citation: first author, year, journal."),
    "doi": ("text", "DOI (10.xxxx/...)."),
    "pmid": ("text", "PubMed identifier (digits)."),
    "title": ("text", "Article title."),
    "year": ("integer", "Publication year."),
    # design
    "design": ("code", "Study design: " + ", ".join(DESIGNS)),
    "sham_type": ("code", "Control condition: " + ", ".join(SHAM_TYPES)),
    "modality": ("code", "Neuromodulation modality (shared vocabulary): " + ", ".join(vocabulary.MODALITIES)),
    "target": ("code", "Stimulation target (shared vocabulary): " + ", ".join(vocabulary.TARGETS)),
    "x": ("number", "Stimulation site, MNI x (mm, -100 to 100); give x, y and z together or leave all three empty."),
    "y": ("number", "Stimulation site, MNI y (mm)."),
    "z": ("number", "Stimulation site, MNI z (mm)."),
    "indication": ("code", "Indication: " + ", ".join(vocabulary.INDICATIONS)),
    "condition": ("text", "Condition as reported, e.g. 'fibromyalgia', 'treatment-resistant depression'."),
    "subgroup": ("text", "Any grouping of your own for --by subgroup, e.g. 'tier 1' (a published analysis's subgroups)."),
    # demographics
    "age_mean": ("number", "Mean age of participants, years."),
    "female_percent": ("number", "Percentage of female participants (0-100)."),
    # stimulation parameters
    "frequency_hz": ("number", "Stimulation frequency, Hz (e.g. 10 for rTMS, 10000 for HF10 SCS)."),
    "intensity": ("number", "Stimulation intensity, in intensity_unit."),
    "intensity_unit": ("text", "Unit of intensity: '% RMT', 'mA', 'V', 'uA', ..."),
    "pulses_per_session": ("integer", "Pulses per session (TMS)."),
    "sessions": ("integer", "Number of stimulation sessions."),
    "weeks": ("number", "Treatment duration, weeks."),
    # outcome
    "outcome_measure": ("code", "Outcome scale: " + ", ".join(OUTCOME_MEASURES) + " (lower is better)."),
    "outcome_note": ("text", "Outcome detail, e.g. 'change from baseline', 'HAM-D 17-item'."),
    "time_point_weeks": ("number", "Time of the outcome assessment, weeks from the start of treatment."),
    # per arm
    "active_n": ("integer", "Active arm: participants analysed (>= 2)."),
    "active_mean": ("number", "Active arm: mean score (or mean change) at the time point."),
    "active_sd": ("number", "Active arm: standard deviation (>= 0)."),
    "active_responders": ("integer", "Active arm: responders (e.g. >= 50% reduction)."),
    "active_remitters": ("integer", "Active arm: remitters."),
    "control_n": ("integer", "Control arm: participants analysed (>= 2)."),
    "control_mean": ("number", "Control arm: mean score (or mean change)."),
    "control_sd": ("number", "Control arm: standard deviation (>= 0)."),
    "control_responders": ("integer", "Control arm: responders."),
    "control_remitters": ("integer", "Control arm: remitters."),
    # follow-up and safety
    # a study's effect as published, when the arm data are not available (generic inverse variance)
    "effect": ("number", "Effect as reported, on the measure's own scale (a ratio for RR/OR, e.g. 1.84); "
               "used only when the arm columns the measure needs are empty."),
    "effect_ci_lb": ("number", "Lower bound of the reported 95% CI of effect."),
    "effect_ci_ub": ("number", "Upper bound of the reported 95% CI of effect."),
    "follow_up_weeks": ("number", "Longest follow-up, weeks."),
    "adverse_events": ("text", "Adverse events as reported (e.g. 'headache 12%, 1 seizure')."),
    "serious_adverse_events": ("integer", "Number of serious adverse events (all arms)."),
    "notes": ("text", "Reviewer notes."),
}

#: Every column of the sheet, in order.
COLUMNS: tuple[str, ...] = tuple(_SPEC)
#: Columns the literature stage pre-fills from an included record.
CITATION_COLUMNS: tuple[str, ...] = ("study_id", "citation", "doi", "pmid", "title", "year")
#: Per-arm outcome columns.
ARM_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c.startswith(("active_", "control_")))
#: Columns that must hold numbers.
NUMERIC_COLUMNS: tuple[str, ...] = tuple(c for c, (t, _) in _SPEC.items() if t in ("number", "integer"))
INTEGER_COLUMNS: tuple[str, ...] = tuple(c for c, (t, _) in _SPEC.items() if t == "integer")


def data_dictionary() -> list[dict[str, str]]:
    """The data dictionary: one row per column with its type and description."""
    return [
        {"column": c, "type": t, "required": "yes" if c in _REQUIRED else "no", "description": d}
        for c, (t, d) in _SPEC.items()
    ]


_REQUIRED = ("study_id", "modality")

_OUTCOME_LOOKUP: dict[str, str] = {}
for _code, (_label, _domain, _syn) in OUTCOME_MEASURES.items():
    for _name in (_code, _label, *_syn):
        _OUTCOME_LOOKUP[_name.lower().replace(" ", "")] = _code


def normalise_outcome(value: str) -> str | None:
    """Map 'HAMD-17', 'hdrs', 'Visual analogue scale' ... to an outcome code, or None."""
    return _OUTCOME_LOOKUP.get(value.strip().lower().replace(" ", ""))


def _code_validator(table: dict, what: str, normaliser=None):
    def check(value: Any) -> str | None:
        if value is None:
            return None
        text = str(value).strip()
        if not text:
            return None
        key = text.lower().replace("-", "_").replace(" ", "_")
        if key in table:
            return key
        if normaliser is not None and (code := normaliser(text)):
            return code
        raise ValueError(f"unknown {what} {text!r}; valid codes: {', '.join(table)}")

    return check


class ExtractionRecord(BaseModel):
    """One validated row of the extraction sheet."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    study_id: str = Field(min_length=1)
    citation: str | None = None
    doi: str | None = None
    pmid: str | None = None
    title: str | None = None
    year: int | None = Field(default=None, ge=1900, le=2100)
    design: str | None = None
    sham_type: str | None = None
    modality: str
    target: str | None = None
    x: float | None = Field(default=None, ge=-100, le=100)
    y: float | None = Field(default=None, ge=-100, le=100)
    z: float | None = Field(default=None, ge=-100, le=100)
    indication: str | None = None
    condition: str | None = None
    subgroup: str | None = None
    age_mean: float | None = Field(default=None, ge=0, le=120)
    female_percent: float | None = Field(default=None, ge=0, le=100)
    frequency_hz: float | None = Field(default=None, ge=0)
    intensity: float | None = Field(default=None, ge=0)
    intensity_unit: str | None = None
    pulses_per_session: int | None = Field(default=None, ge=0)
    sessions: int | None = Field(default=None, ge=0)
    weeks: float | None = Field(default=None, ge=0)
    outcome_measure: str | None = None
    outcome_note: str | None = None
    time_point_weeks: float | None = Field(default=None, ge=0)
    active_n: int | None = Field(default=None, ge=2)
    active_mean: float | None = None
    active_sd: float | None = Field(default=None, ge=0)
    active_responders: int | None = Field(default=None, ge=0)
    active_remitters: int | None = Field(default=None, ge=0)
    control_n: int | None = Field(default=None, ge=2)
    control_mean: float | None = None
    control_sd: float | None = Field(default=None, ge=0)
    control_responders: int | None = Field(default=None, ge=0)
    control_remitters: int | None = Field(default=None, ge=0)
    effect: float | None = None
    effect_ci_lb: float | None = None
    effect_ci_ub: float | None = None
    follow_up_weeks: float | None = Field(default=None, ge=0)
    adverse_events: str | None = None
    serious_adverse_events: int | None = Field(default=None, ge=0)
    notes: str | None = None

    @field_validator(*NUMERIC_COLUMNS, mode="before")
    @classmethod
    def _finite_number(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().replace(",", ".") if value.count(",") == 1 and "." not in value else value.strip()
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"expected a number, got text {value!r}") from None
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {value!r}")
            if value.is_integer():
                value = int(value) if abs(value) < 2**53 else value
        return value

    @field_validator("pmid", "doi", "study_id", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, int):
            return str(value)
        return value

    _modality = field_validator("modality", mode="before")(
        lambda v: _code_validator(vocabulary.MODALITIES, "modality", vocabulary.normalise_modality)(v))
    _target = field_validator("target", mode="before")(
        lambda v: _code_validator(vocabulary.TARGETS, "target", vocabulary.normalise_target)(v))
    _indication = field_validator("indication", mode="before")(
        lambda v: _code_validator(vocabulary.INDICATIONS, "indication")(v))
    _design = field_validator("design", mode="before")(lambda v: _code_validator(DESIGNS, "design")(v))
    _sham = field_validator("sham_type", mode="before")(lambda v: _code_validator(SHAM_TYPES, "sham_type")(v))

    @field_validator("outcome_measure", mode="before")
    @classmethod
    def _outcome(cls, value: Any) -> Any:
        if value is None:
            return None
        code = normalise_outcome(str(value))
        if code is None:
            raise ValueError(f"unknown outcome measure {value!r}; valid: {', '.join(OUTCOME_MEASURES)}")
        return code

    @model_validator(mode="after")
    def _consistent(self) -> ExtractionRecord:
        problems = cross_field_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(f"{col}: {msg}" for col, msg in problems))
        return self


def cross_field_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Checks that span columns: counts within n, x/y/z together, CI around the effect.

    Returns (column, message) pairs."""
    problems: list[tuple[str, str]] = []

    def num(col: str) -> float | None:
        v = values.get(col)
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        return v if math.isfinite(v) else None

    for arm in ("active", "control"):
        n = num(f"{arm}_n")
        for what in ("responders", "remitters"):
            count = num(f"{arm}_{what}")
            if n is not None and count is not None and count > n:
                problems.append((f"{arm}_{what}", f"{what} ({count:g}) > n ({n:g})"))
    given = [c for c in ("x", "y", "z") if not _is_blank(values.get(c))]
    if given and len(given) < 3:
        missing = [c for c in ("x", "y", "z") if c not in given]
        problems.append((missing[0], f"empty, but {', '.join(given)} given: a site needs x, y and z"))
    eff, lb, ub = num("effect"), num("effect_ci_lb"), num("effect_ci_ub")
    if eff is not None and (lb is None or ub is None):
        problems.append(("effect_ci_lb" if lb is None else "effect_ci_ub",
                         "empty, but effect is given: its 95% CI gives the study's weight"))
    if eff is not None and lb is not None and ub is not None and not lb <= eff <= ub:
        problems.append(("effect", f"{eff:g} lies outside its CI [{lb:g}, {ub:g}]"))
    if lb is not None and ub is not None and lb >= ub:
        problems.append(("effect_ci_ub", f"upper CI bound ({ub:g}) is not above the lower ({lb:g})"))
    return problems


@dataclass(frozen=True)
class CellProblem:
    """One bad cell: the sheet row (as the user sees it), the column and what is wrong."""

    row: int
    column: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.message}"


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def validate_rows(rows: list[dict[str, Any]], first_row: int = 2) -> tuple[list[ExtractionRecord], list[CellProblem]]:
    """Validate sheet rows; return the good records and every bad cell.

    ``first_row`` is the number the user sees for the first data row (2 in a spreadsheet
    with a header row).
    """
    records: list[ExtractionRecord] = []
    problems: list[CellProblem] = []
    for i, raw in enumerate(rows):
        line = raw.get("_row", first_row + i)
        row = {k: None if _is_blank(v) else v for k, v in raw.items() if k != "_row"}
        try:
            records.append(ExtractionRecord.model_validate(row))
        except ValidationError as exc:
            found_field_error = False
            for err in exc.errors():
                loc = err.get("loc") or ()
                if loc:
                    found_field_error = True
                    column = str(loc[0])
                    msg = err["msg"].removeprefix("Value error, ")
                    problems.append(CellProblem(line, column, msg, row.get(column)))
                else:
                    for column, msg in cross_field_problems(row):
                        problems.append(CellProblem(line, column, msg, row.get(column)))
            if found_field_error:
                # the model validator did not run; still report the cross-column problems
                for column, msg in cross_field_problems(row):
                    problems.append(CellProblem(line, column, msg, row.get(column)))
    return records, problems
