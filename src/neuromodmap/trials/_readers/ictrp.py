"""WHO ICTRP exports (XML ``<Trials_downloaded_from_ICTRP>`` and CSV) -> Trial.

Three layouts carry the same flat fields under different names; keys are normalised
(``Public title`` / ``Public_title`` -> ``public_title``) and the variants mapped to one name
(:data:`KEY_ALIASES`) before mapping:

* the search portal's "Export results to XML" (2020 and 2024 layouts: the 2024 one adds
  ``Internal_Number``, ``Secondary_ID``, ``Ethics_review_*``) and its CSV downloads (the
  COVID-19 CSV: 40 columns with spaces in the names);
* the **full export** (``ICTRPFullExport-*.csv``): no header row, 62 columns in the order of
  WHO's field list (:data:`FULL_EXPORT_COLUMNS`), other names (``Conditions``,
  ``Interventions``, ``Primary_Outcome``, ``SecondaryIDs``, ``url``, ``Recruitment_status``),
  ``NULL`` for an empty value. A copy with a header row (as researchers share samples of it)
  is read by its header.

Multi-valued fields are ``;``-joined, text carries HTML entities and ``<br>``. Dates are
written per register (the full export's list of formats, :data:`REGISTER_DATE_FORMATS`);
``Export_date`` is the portal's US-style ``3/18/2020 6:53:35 PM`` and becomes the record's
as-of date.
"""

from __future__ import annotations

import datetime as dt
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
    date_precision,
    parse_date,
    phases,
    split_multi,
)
from neuromodmap.trials.models import Trial

__all__ = [
    "ictrp_to_trial", "normalise_key", "CSV_COLUMNS", "FULL_EXPORT_COLUMNS", "KEY_ALIASES",
    "REGISTER_DATE_FORMATS", "csv_layout", "headerless_columns", "export_date",
]

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

#: column order of the WHO ICTRP full export (``ICTRPFullExport-*.csv``, no header row): WHO's
#: "ICTRP CSV export file list of data fields" (updated 22/05/2020, Agemin/Agemax/Gender added)
FULL_EXPORT_COLUMNS = (
    "TrialID", "SecondaryIDs", "public_title", "Scientific_title", "url",
    "Public_Contact_Firstname", "Public_Contact_Lastname", "Public_Contact_Address",
    "Public_Contact_Email", "Public_Contact_Tel", "Public_Contact_Affiliation",
    "Scientific_Contact_Firstname", "Scientific_Contact_Lastname", "Scientific_Contact_Address",
    "Scientific_Contact_Email", "Scientific_Contact_Tel", "Scientific_Contact_Affiliation",
    "study_type", "study_design", "phase", "Date_registration", "Date_enrollement", "Target_size",
    "Recruitment_status", "Primary_sponsor", "Secondary_sponsors", "Source_Support", "Countries",
    "Conditions", "Interventions", "Agemin", "Agemax", "Gender", "Inclusion_Criteria",
    "Exclusion_Criteria", "Primary_Outcome", "Secondary_Outcomes", "Bridging_flag", "Bridged_type",
    "Childs", "type_enrolment", "Retrospective_flag", "results_actual_enrollment",
    "results_url_link", "results_summary", "results_date_posted", "results_date_first_publication",
    "results_baseline_char", "results_participant_flow", "results_adverse_events",
    "results_outcome_measures", "results_url_protocol", "results_IPD_plan",
    "results_IPD_description", "results_date_completed", "results_yes_no", "Ethics_Status",
    "Ethics_Approval_Date", "Ethics_Contact_Name", "Ethics_Contact_Address",
    "Ethics_Contact_Phone", "Ethics_Contact_Email",
)

#: normalised key variants -> the name the mapper reads (full export and portal spellings)
KEY_ALIASES = {
    "conditions": "condition",
    "interventions": "intervention",
    "secondary_outcomes": "secondary_outcome",
    "secondaryids": "secondary_id",
    "secondary_ids": "secondary_id",
    "url": "web_address",
    "date_enrollment": "date_enrollement",
    "secondary_sponsors": "secondary_sponsor",
}

#: the date format of each register's dates in ICTRP exports (TrialID prefix -> strptime
#: format), from the table of James Smith et al. (github.com/worcjamessmith/
#: COVID-trial-characteristics, data/initial_import/supplementary/registry_prefixes_date_formats.csv,
#: commit 833ccc2). Every register writes its numeric dates day first or year first, none
#: month first; so 03/04/2019 is 3 April. A date in another spelling is parsed as usual.
REGISTER_DATE_FORMATS = {
    "ACTRN": "%d/%m/%Y", "CHICTR": "%Y-%m-%d", "CTRI": "%d-%m-%Y", "DRKS": "%d/%m/%Y",
    "EUCTR": "%d/%m/%Y", "IRCT": "%Y-%m-%d", "ISRCTN": "%d/%m/%Y", "JPRN": "%d/%m/%Y",
    "KCT": "%Y-%m-%d", "LBCTR": "%d/%m/%Y", "NCT": "%d/%m/%Y", "NL": "%d/%m/%Y", "NTR": "%d/%m/%Y",
    "PACTR": "%d/%m/%Y", "PER": "%d/%m/%Y", "RBR": "%d/%m/%Y", "RPCEC": "%d/%m/%Y",
    "SLCTR": "%Y-%m-%d", "TCTR": "%d/%m/%Y",
}

#: ICTRP's spellings of "no value" (the full export writes NULL for an empty cell)
_NULL = frozenset({"null", "na", "n/a", "none"})

#: a register's name as the portal exports write ``Source_Register``, by TrialID prefix: the
#: name of a record whose export has no ``Source_Register`` (the full export)
REGISTER_NAMES = {
    "NCT": "ClinicalTrials.gov", "EUCTR": "EU Clinical Trials Register", "CTIS": "Clinical Trials Information System",
    "CHICTR": "ChiCTR", "ACTRN": "ANZCTR", "ISRCTN": "ISRCTN", "DRKS": "German Clinical Trials Register",
    "JPRN": "JPRN", "IRCT": "IRCT", "CTRI": "CTRI", "TCTR": "TCTR", "KCT": "CRIS",
    "NTR": "Netherlands Trial Register", "NL": "Netherlands Trial Register", "PACTR": "PACTR",
    "RBR": "ReBec", "PER": "REPEC", "SLCTR": "SLCTR", "LBCTR": "LBCTR", "RPCEC": "RPCEC",
}
_EXPORT_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\b")


def headerless_columns(first_row: list[str]) -> tuple[str, ...]:
    """The column names of a CSV without a header row, judged from its first row: the full
    export (62 columns, the trial's address in column 5) or the search portal's CSV."""
    if len(first_row) > len(CSV_COLUMNS) or (
        len(first_row) > 4 and first_row[4].strip().lower().startswith(("http://", "https://"))
    ):
        return FULL_EXPORT_COLUMNS
    return CSV_COLUMNS


def csv_layout(header: list[str]) -> str:
    """``ictrp_full_csv`` for the full export's field names, else ``ictrp_csv`` (portal CSV)."""
    keys = {normalise_key(k) for k in header}
    return "ictrp_full_csv" if {"conditions", "interventions", "url"} & keys else "ictrp_csv"


def export_date(record: dict[str, Any]):
    """The record's ``Export_date`` as a date (the portal writes it month first, US style:
    ``3/18/2020 6:53:35 PM``, ``06/09/2024 16:01:13`` = 9 June 2024), or None."""
    for key, value in record.items():
        if isinstance(value, str) and normalise_key(str(key)) == "export_date":
            if m := _EXPORT_DATE.match(value):
                mo, d, y = (int(g) for g in m.groups())
                try:
                    return dt.date(y, mo, d)
                except ValueError:
                    return None
    return None


#: ``Mar-16``: a month and year as a spreadsheet shows them (mmm-yy), where ICTRP writes a
#: ClinicalTrials.gov start date as ``March 2016``; the 11 such cells of the full-export sample
#: (ictrp_im_sample.csv, all NCT Date_enrollment) are March 2016 etc. in its authors' own
#: normalised column (Date_enrollment_format ``01/03/2016``, Day_inferred TRUE)
_MON_YY = re.compile(r"^([A-Za-z]{3})-(\d{2})$")


def _register_date(value: str, field: str, prefix: str):
    """A date in the register's own format when it has that shape, else any known spelling."""
    fmt = REGISTER_DATE_FORMATS.get(prefix)
    text = value.strip()
    if (m := _MON_YY.match(text)) and m.group(1).lower() in _MONTH_ABBR:
        return dt.datetime.strptime(f"{m.group(1).title()}-{m.group(2)}", "%b-%y").date()
    if fmt and text[:1].isdigit():
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    return parse_date(value, field)

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
_MONTH_ABBR = frozenset({"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"})
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
#: how registers write "no secondary id" (ANZCTR: Nil)
_NO_SECONDARY_ID = frozenset({"nil", "none", "null", "na", "n/a", "not applicable", "no", "-"})
#: fields whose "N/A" means something (a phase that does not apply; dates and counts know NA)
_NULL_MEANS_SOMETHING = frozenset({"phase", "target_size", "date_registration", "date_registration3",
                                   "date_enrollement", "last_refreshed_on"})


def _target_size(text: str, field: str = "Target_size") -> int | None:
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
        raise FieldError(field, f"expected a count, got {text.strip()[:40]!r}")
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
    names: dict[str, str] = {}  # normalised key -> the file's own column name (for problems)
    bad: list[FieldError] = []
    for key, value in record.items():
        if value is None:
            continue
        if not isinstance(value, str):
            bad.append(FieldError(str(key), f"expected text, got {type(value).__name__}"))
            continue
        k = normalise_key(str(key))
        k = KEY_ALIASES.get(k, k)
        if k in r and r[k].strip() and r[k].strip().lower() not in _NULL:
            continue  # two spellings of one field: the first that holds a value
        r[k] = value
        names[k] = str(key)
    trial_id = clean_text(r.get("trialid"), "TrialID").replace(" ", "")
    if not trial_id:
        raise RecordError("TrialID", "missing" if not any(normalise_key(e.field) == "trialid" for e in bad)
                          else "not text")
    f = Fields(problems, trial_id)
    try:
        for err in bad:
            f.note(err)
        return _map(r, names, trial_id, source_format, f)
    except FieldError as err:
        err.registry_id = trial_id
        raise


def _map(r: dict[str, str], names: dict[str, str], trial_id: str, source_format: str, f: Fields) -> Trial:
    T = f.take  # T(default, fn, *args): fn(*args), or the default when that field is bad

    def col(key: str) -> str:
        return names.get(key, key)

    def text(key: str) -> str:
        value = clean_text(r.get(key), col(key))
        return "" if value.lower() in _NULL and key not in _NULL_MEANS_SOMETHING else value

    m = _REGISTRY_PREFIX.match(trial_id)
    prefix = m.group(1).upper() if m else ""
    registry = text("source_register") or REGISTER_NAMES.get(prefix, prefix)

    def date(value: str, field: str):
        return _register_date(value, field, prefix)

    phase_text = text("phase")
    design_text = text("study_design")
    design = {}
    for name, pattern in _DESIGN.items():
        m = pattern.search(design_text)
        design[name] = code(m.group(1), name) if m else None
    size = text("target_size")
    results = text("results_yes_no").lower()
    registration, registration_field = text("date_registration3"), col("date_registration3")
    if not registration:
        registration, registration_field = text("date_registration"), col("date_registration")
    enrolment, enrolment_field = text("date_enrollement"), col("date_enrollement")
    d: dict[str, Any] = {
        "registry_id": trial_id,
        "registry": registry,
        "source_format": source_format,
        "secondary_ids": [s for s in split_multi(text("secondary_id"))
                          if s != trial_id and s.lower() not in _NO_SECONDARY_ID],
        "title": text("public_title"),
        "official_title": text("scientific_title"),
        "acronym": text("acronym"),
        "conditions": split_multi(text("condition")),
        "interventions": _interventions(text("intervention")),
        "primary_outcomes": split_multi(text("primary_outcome")),
        "secondary_outcomes": split_multi(text("secondary_outcome")),
        "study_type": code(text("study_type"), col("study_type")),
        "phases": T([], phases, phase_text, col("phase")) if phase_text else [],
        "overall_status": code(text("recruitment_status"), col("recruitment_status")),
        "registration_date": T(None, date, registration, registration_field),
        "start_date": T(None, date, enrolment, enrolment_field),
        "start_date_precision": date_precision(enrolment),
        "last_update": T(None, parse_date, text("last_refreshed_on"), col("last_refreshed_on")),
        "enrollment": T(None, _target_size, size, col("target_size")) if size else None,
        "countries": split_multi(text("countries")),
        "sponsor": text("primary_sponsor") or None,
        "url": text("web_address") or None,
        "has_results": {"yes": True, "no": False}.get(results),
        **design,
    }
    check_sizes(d, trial_id, f)
    return build_trial(d, f)
