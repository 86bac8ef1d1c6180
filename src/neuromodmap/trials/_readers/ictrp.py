"""WHO ICTRP exports (XML ``<Trials_downloaded_from_ICTRP>`` and CSV) -> Trial.

Both exports carry the same flat fields; XML tags use underscores (``Public_title``), CSV
headers spaces (``Public title``). Keys are normalised to ``public_title`` before mapping.
Multi-valued fields are ``;``-joined, text carries HTML entities and ``<br>``.
"""

from __future__ import annotations

import re
from typing import Any

from neuromodmap.trials._readers._common import (
    FieldError,
    Fields,
    RecordError,
    build_trial,
    check_sizes,
    clean_text,
    code,
    parse_date,
    phases,
    split_multi,
)
from neuromodmap.trials.models import Trial

__all__ = ["ictrp_to_trial", "normalise_key", "CSV_COLUMNS"]

#: column order of the WHO ICTRP CSV export, used for files without a header row
CSV_COLUMNS = (
    "TrialID", "Last Refreshed on", "Public title", "Scientific title", "Acronym",
    "Primary sponsor", "Date registration", "Date registration3", "Export date",
    "Source Register", "web address", "Recruitment Status", "other records",
    "Inclusion agemin", "Inclusion agemax", "Inclusion gender", "Date enrollement",
    "Target size", "Study type", "Study design", "Phase", "Countries", "Contact Firstname",
    "Contact Lastname", "Contact Address", "Contact Email", "Contact Tel",
    "Contact Affiliation", "Inclusion Criteria", "Exclusion Criteria", "Condition",
    "Intervention", "Primary outcome", "results date posted", "results date completed",
    "results url link", "Retrospective flag", "Bridging flag truefalse", "Bridged type",
    "results yes no", "Secondary outcome", "Secondary ID", "Source Support",
    "Secondary Sponsor",
)

_KEY = re.compile(r"[^a-z0-9]+")
_INTERVENTION_TYPES = {
    "drug", "device", "procedure", "biological", "behavioral", "behavioural", "radiation",
    "dietary supplement", "genetic", "combination product", "diagnostic test", "other",
}
_DESIGN = {
    "allocation": re.compile(r"allocation\s*:\s*([^.;:]+)", re.I),
    "masking": re.compile(r"masking\s*:\s*([^.;:(]+)", re.I),
    "primary_purpose": re.compile(r"primary purpose\s*:\s*([^.;:]+)", re.I),
}
_REGISTRY_PREFIX = re.compile(r"^([A-Za-z]+)")
_DIGITS = re.compile(r"\d+")


def normalise_key(key: str) -> str:
    """``Public title`` / ``Public_title`` -> ``public_title``."""
    return _KEY.sub("_", key.strip().lower()).strip("_")


def _interventions(text: str) -> list[dict[str, Any]]:
    out = []
    for part in split_multi(text):
        kind, sep, name = part.partition(":")
        if sep and kind.strip().lower() in _INTERVENTION_TYPES:
            out.append({"type": code(kind, "intervention.type"), "name": name.strip()})
        else:
            out.append({"type": None, "name": part})
    return out


_NOT_GIVEN = {"na", "n/a", "not applicable", "not available", "unknown", "null"}


def _target_size(text: str) -> int | None:
    """``120``; ``60;60`` and ``Target condition:100;Difficult condition:20`` (ChiCTR groups,
    summed; the count is what follows a group's last colon, so ``Group 1:30;Group 2:30`` and
    ``COVID-19 patients:100`` are 60 and 100); ``1,000``. ``NA`` is no count; text with no
    number raises :class:`FieldError`."""
    total = None
    for part in text.split(";"):
        count = part.rsplit(":", 1)[-1].replace(",", "")
        if m := _DIGITS.search(count):
            total = (total or 0) + int(m.group())
    if total is None and text.strip().lower() not in _NOT_GIVEN:
        raise FieldError("Target_size", f"expected a count, got {text.strip()[:40]!r}")
    return total


def ictrp_to_trial(
    record: dict[str, Any], *, source_format: str = "ictrp_xml", problems: list[FieldError] | None = None
) -> Trial:
    """Map one ICTRP record (keys as exported or normalised) to a :class:`Trial`.

    Parameters
    ----------
    problems : list, optional
        Each field with a wrong type or value (a date no register writes, a phase text that
        names no phase, an oversize text) is left empty and appended here as a
        :class:`FieldError` named by its ICTRP field name; the record is kept. Without a
        list the first such field raises.

    Raises
    ------
    RecordError
        When TrialID is missing or not text.
    FieldError
        Without ``problems``: the first field with a wrong type or an invalid value.
    """
    r: dict[str, str] = {}
    bad: list[FieldError] = []
    for key, value in record.items():
        if value is None:
            continue
        if not isinstance(value, str):
            bad.append(FieldError(str(key), f"expected text, got {type(value).__name__}"))
            continue
        r[normalise_key(key)] = value
    trial_id = clean_text(r.get("trialid"), "TrialID").replace(" ", "")
    if not trial_id:
        raise RecordError("TrialID", "missing" if not any(normalise_key(e.field) == "trialid" for e in bad)
                          else "not text")
    f = Fields(problems, trial_id)
    try:
        for err in bad:
            f.note(err)
        return _map(r, trial_id, source_format, f)
    except FieldError as err:
        err.registry_id = trial_id
        raise


def _map(r: dict[str, str], trial_id: str, source_format: str, f: Fields) -> Trial:
    T = f.take  # T(default, fn, *args): fn(*args), or the default when that field is bad

    def text(key: str) -> str:
        return clean_text(r.get(key), key)

    registry = text("source_register")
    if not registry:
        m = _REGISTRY_PREFIX.match(trial_id)
        registry = m.group(1).upper() if m else ""
    phase_text = text("phase")
    design_text = text("study_design")
    design = {}
    for name, pattern in _DESIGN.items():
        m = pattern.search(design_text)
        design[name] = code(m.group(1), name) if m else None
    size = text("target_size")
    results = text("results_yes_no").lower()
    registration, registration_field = text("date_registration3"), "Date_registration3"
    if not registration:
        registration, registration_field = text("date_registration"), "Date_registration"
    enrolment, enrolment_field = text("date_enrollement"), "Date_enrollement"
    if not enrolment:
        enrolment, enrolment_field = text("date_enrollment"), "Date_enrollment"
    d: dict[str, Any] = {
        "registry_id": trial_id,
        "registry": registry,
        "source_format": source_format,
        "secondary_ids": [s for s in split_multi(text("secondary_id")) if s != trial_id],
        "title": text("public_title"),
        "official_title": text("scientific_title"),
        "acronym": text("acronym"),
        "conditions": split_multi(text("condition")),
        "interventions": _interventions(text("intervention")),
        "primary_outcomes": split_multi(text("primary_outcome")),
        "secondary_outcomes": split_multi(text("secondary_outcome")),
        "study_type": code(text("study_type"), "Study_type"),
        "phases": T([], phases, phase_text, "Phase") if phase_text else [],
        "overall_status": code(text("recruitment_status"), "Recruitment_Status"),
        "registration_date": T(None, parse_date, registration, registration_field),
        "start_date": T(None, parse_date, enrolment, enrolment_field),
        "last_update": T(None, parse_date, text("last_refreshed_on"), "Last_Refreshed_on"),
        "enrollment": T(None, _target_size, size) if size else None,
        "countries": split_multi(text("countries")),
        "sponsor": text("primary_sponsor") or None,
        "url": text("web_address") or None,
        "has_results": {"yes": True, "no": False}.get(results),
        **design,
    }
    check_sizes(d, trial_id, f)
    return build_trial(d, f)
