"""Records collected by the R package ctrdata (github.com/rfhb/ctrdata) -> Trial.

ctrdata downloads trials from the EU Clinical Trials Register (EUCTR), the EU Clinical
Trials Information System (CTIS), ISRCTN and ClinicalTrials.gov into one database (SQLite by
default: a table of ``_id`` and the record as JSON) and marks each record with its register in
``ctrname``. Each register keeps its own field names there:

* ``CTGOV2``: the ClinicalTrials.gov API v2 study, read as v2 JSON is;
* ``CTGOV``: the classic ClinicalTrials.gov XML record turned into JSON by ctrdata (element
  names as keys, repeated elements as lists, text XML-escaped); rebuilt as the
  ``<clinical_study>`` element it came from and read as legacy XML is;
* ``EUCTR``: the register's protocol sections, one key per question (``a2_eudract_number``,
  ``e73_therapeutic_confirmatory_phase_iii`` ...), one record per member state; its id is
  written as WHO ICTRP writes it, ``EUCTR2016-004489-24-DE``;
* ``ISRCTN``: the ISRCTN XML turned into JSON (``trialDescription``, ``participants``,
  ``conditions``, ``interventions``; a single element is an object, several a list); id
  ``ISRCTN20343063``;
* ``CTIS``: the CTIS public record (two shapes occur, from CTIS's older and newer public
  API: ``authorizedPartI`` at the top or inside ``authorizedApplication``); id
  ``CTIS2023-508143-51-01`` (ICTRP's spelling).

ctrdata's own query history (the ``meta-info`` row: ``{"queries": ...}``) is no trial and is
passed over. The as-of date of a record is the day ctrdata imported it (``record_last_import``).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any
from xml.etree.ElementTree import Element

import pycountry

from neuromodmap.geography import country_code
from neuromodmap.trials._readers._common import (
    FieldError,
    Fields,
    RecordError,
    build_trial,
    check_sizes,
    code,
    parse_date,
    phases,
)
from neuromodmap.trials._readers.ctgov_xml import clinical_study_to_trial, element_to_dict
from neuromodmap.trials._readers.v2 import study_to_trial
from neuromodmap.trials.models import Trial

__all__ = ["REGISTERS", "is_ctrdata_record", "is_ctrdata_meta", "ctrdata_to_trial", "ctgov_element"]

#: ``ctrname`` values and the register each stands for
REGISTERS = {
    "CTGOV2": "ClinicalTrials.gov", "CTGOV": "ClinicalTrials.gov", "EUCTR": "EU Clinical Trials Register",
    "ISRCTN": "ISRCTN", "CTIS": "Clinical Trials Information System",
}
_EUDRACT = re.compile(r"^\d{4}-\d{6}-\d{2}$")
_CTIS = re.compile(r"^\d{4}-5\d{5}-\d{2}-\d{2}$")
_ISRCTN = re.compile(r"^(?:ISRCTN)?(\d{8})$")
_NCT = re.compile(r"NCT\d{8}")
#: EUCTR member-state names that are not country names
_EU_STATES = {"outside eu/eea": "3RD", "uk": "GB", "greece": "GR"}
_NO = frozenset({"", "nil known", "nil", "none", "n/a", "na", "not applicable", "not provided at time of registration"})


def is_ctrdata_record(obj: Any) -> bool:
    """A ctrdata record: a JSON object with a ``ctrname`` this reader knows."""
    return isinstance(obj, dict) and obj.get("ctrname") in REGISTERS


def is_ctrdata_meta(obj: Any) -> bool:
    """ctrdata's query history row (``_id`` ``meta-info``): no trial."""
    return isinstance(obj, dict) and "queries" in obj and "ctrname" not in obj and (
        set(obj) <= {"queries", "_id"})


def import_date(obj: dict) -> dt.date | None:
    """The day ctrdata imported the record (``record_last_import``: ``2024-06-17 20:10:58``)."""
    value = obj.get("record_last_import")
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def ctrdata_to_trial(obj: dict, *, record_id: str | None = None,
                     problems: list[FieldError] | None = None) -> tuple[Trial, Any]:
    """Map one ctrdata record to a :class:`Trial`; returns it and the raw record to keep.

    ``record_id`` is ctrdata's ``_id`` where known (its SQLite table has it; a JSON-lines copy
    may not): for EUCTR it carries the member state (``2016-004489-24-DE``).

    Raises
    ------
    RecordError
        When the record has no id of its register (not an importable record).
    """
    name = obj.get("ctrname")
    if name == "CTGOV2":
        return study_to_trial(obj, source_format="ctgov_v2", problems=problems), obj
    if name == "CTGOV":
        root = ctgov_element(obj)
        return clinical_study_to_trial(root, problems=problems), element_to_dict(root)
    mapper = {"EUCTR": _euctr, "ISRCTN": _isrctn, "CTIS": _ctis}.get(name)
    if mapper is None:
        raise RecordError("ctrname", f"unknown register {str(name)[:40]!r}")
    return mapper(obj, record_id, problems), obj


# --------------------------------------------------------------------------- helpers
def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _items(value: Any) -> list:
    """ctrdata writes one element as an object, several as a list: always a list here."""
    if value is None or value == {} or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _str(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldError(field, f"expected text, got {type(value).__name__}")
    return " ".join(str(value).split())


def _given(value: str) -> str:
    return "" if value.lower() in _NO else value


def _count(value: Any, field: str) -> int | None:
    text = _str(value, field)
    if not _given(text):
        return None
    if not text.isdigit():
        raise FieldError(field, f"expected a count, got {text[:40]!r}")
    return int(text)


def _date(value: Any, field: str) -> dt.date | None:
    text = _str(value, field)
    if "T" in text[:11] and text[:4].isdigit():  # 2013-12-31T00:00:00.000Z
        text = text.split("T", 1)[0]
    return parse_date(text, field)


def _unique(values) -> list[str]:
    out: list[str] = []
    for v in values:
        if v and v not in out:
            out.append(v)
    return out


def _yes(obj: dict, key: str) -> bool:
    return str(obj.get(key, "")).strip().lower() == "yes"


# --------------------------------------------------------------------------- CTGOV (classic XML as JSON)
def ctgov_element(obj: dict) -> Element:
    """The ``<clinical_study>`` element a ctrdata CTGOV record was made from."""
    root = Element("clinical_study")
    _fill(root, {k: v for k, v in obj.items() if k not in ("ctrname", "record_last_import", "comment")})
    return root


def _fill(elem: Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == "@attributes" and isinstance(sub, dict):
                for name, attr in sub.items():
                    elem.set(str(name), html.unescape(str(attr)))
                continue
            if key in ("#text", "textvalue"):
                elem.text = html.unescape(str(sub))
                continue
            for item in sub if isinstance(sub, list) else [sub]:
                child = Element(str(key))
                _fill(child, item)
                elem.append(child)
    elif value is not None:
        elem.text = html.unescape(str(value))


# --------------------------------------------------------------------------- EUCTR
def _member_state(obj: dict, record_id: str | None) -> str:
    """The two-letter code of the record's member state (``3RD`` outside the EU/EEA)."""
    if record_id and (m := re.search(r"-([A-Z]{2}|3RD)$", record_id.strip())):
        return m.group(1)
    state = _str(obj.get("a1_member_state_concerned"), "a1_member_state_concerned")
    country = state.split(" - ", 1)[0].strip()
    cc = _EU_STATES.get(country.lower()) or country_code(country)
    if not cc:
        raise RecordError("a1_member_state_concerned", f"no member state in {state[:40]!r}")
    return cc


_EUCTR_PHASES = (("e71_human_pharmacology_phase_i", "PHASE1"), ("e72_therapeutic_exploratory_phase_ii", "PHASE2"),
                 ("e73_therapeutic_confirmatory_phase_iii", "PHASE3"), ("e74_therapeutic_use_phase_iv", "PHASE4"))


def _euctr(obj: dict, record_id: str | None, problems) -> Trial:
    number = _str(obj.get("a2_eudract_number"), "a2_eudract_number")
    if not _EUDRACT.match(number):
        raise RecordError("a2_eudract_number", "missing" if not number else f"not a EudraCT number: {number[:40]!r}")
    state = _member_state(obj, record_id)
    rid = f"EUCTR{number}-{state}"
    f = Fields(problems, rid)
    T = f.take

    def text(key: str) -> str:
        return T("", _str, obj.get(key), key)

    sponsors = [s for s in _items(obj.get("b1_sponsor")) if isinstance(s, dict)]
    lead = sponsors[0] if sponsors else {}
    status_of_sponsor = str(lead.get("b31_and_b32_status_of_the_sponsor", "")).lower()
    products = []
    for p in _items(obj.get("dimp")):
        if not isinstance(p, dict):
            continue
        name = _str(p.get("d31_product_name") or p.get("d2111_trade_name"), "dimp.d31_product_name")
        inns = [_str(i.get("d38_inn__proposed_inn"), "dimp.d38_inn__proposed_inn")
                for i in _items(p.get("d38_imp_identification_details")) if isinstance(i, dict)]
        name = name or next((i for i in inns if i), "")
        if name and name not in [x["name"] for x in products]:
            products.append({"type": "DRUG", "name": name,
                             "other_names": _unique(i for i in inns if i and i != name)})
    masking = ("DOUBLE" if _yes(obj, "e814_double_blind") else "SINGLE" if _yes(obj, "e813_single_blind")
               else "NONE" if _yes(obj, "e812_open") else None)
    conditions = _unique([text("e11_medical_conditions_being_investigated"),
                          text("e111_medical_condition_in_easily_understood_language")])
    secondary = [text("a52_us_nct_clinicaltrialsgov_registry_number"), text("a53_who_universal_trial_reference_number_utrn"),
                 text("a41_sponsors_protocol_code_number")]
    d: dict[str, Any] = {
        "registry_id": rid,
        "registry": REGISTERS["EUCTR"],
        "source_format": "ctrdata_euctr",
        "secondary_ids": _unique(s for s in secondary if _given(s)),
        "title": text("a31_title_of_the_trial_for_lay_people_in_easily_understood_ie_nontechnical_language")
                 or text("a3_full_title_of_the_trial"),
        "official_title": text("a3_full_title_of_the_trial"),
        "acronym": text("a32_name_or_abbreviated_title_of_the_trial_where_available"),
        "brief_summary": text("e21_main_objective_of_the_trial"),
        "conditions": conditions,
        "interventions": products,
        "primary_outcomes": _unique([text("e51_primary_end_points")]),
        "secondary_outcomes": _unique([text("e52_secondary_end_points")]),
        "study_type": "INTERVENTIONAL",  # the register holds interventional trials of medicines only
        "phases": [c for key, c in _EUCTR_PHASES if _yes(obj, key)],
        "overall_status": T(None, code, text("p_end_of_trial_status") or text("x5_trial_status"), "x5_trial_status"),
        "registration_date": T(None, _date, obj.get(
            "x6_date_on_which_this_record_was_first_entered_in_the_eudract_database"),
            "x6_date_on_which_this_record_was_first_entered_in_the_eudract_database"),
        "enrollment": T(None, _count, obj.get("f422_in_the_whole_clinical_trial") or obj.get("f41_in_the_member_state"),
                        "f422_in_the_whole_clinical_trial" if obj.get("f422_in_the_whole_clinical_trial")
                        else "f41_in_the_member_state"),
        "countries": [c for c in [_str(obj.get("a1_member_state_concerned"), "a1").split(" - ", 1)[0]] if c
                      and state != "3RD"],
        "sponsor": _str(lead.get("b11_name_of_sponsor"), "b1_sponsor.b11_name_of_sponsor") or None,
        "sponsor_class": {"commercial": "INDUSTRY", "non-commercial": "OTHER"}.get(status_of_sponsor),
        "allocation": "RANDOMIZED" if _yes(obj, "e811_randomised") else None,
        "masking": masking,
        "url": f"https://www.clinicaltrialsregister.eu/ctr-search/trial/{number}/{state}",
    }
    check_sizes(d, rid, f)
    return build_trial(d, f)


# --------------------------------------------------------------------------- ISRCTN
def _isrctn(obj: dict, record_id: str | None, problems) -> Trial:
    raw = _str(obj.get("isrctn") or record_id, "isrctn")
    m = _ISRCTN.match(raw.replace(" ", ""))
    if not m:
        raise RecordError("isrctn", "missing" if not raw else f"not an ISRCTN number: {raw[:40]!r}")
    rid = f"ISRCTN{m.group(1)}"
    f = Fields(problems, rid)
    T = f.take
    desc = obj.get("trialDescription") if isinstance(obj.get("trialDescription"), dict) else {}
    design = obj.get("trialDesign") if isinstance(obj.get("trialDesign"), dict) else {}
    part = obj.get("participants") if isinstance(obj.get("participants"), dict) else {}
    refs = obj.get("externalRefs") if isinstance(obj.get("externalRefs"), dict) else {}

    def text(parent: dict, key: str, where: str) -> str:
        return _given(T("", _str, parent.get(key), f"{where}.{key}"))

    conditions, interventions, phase_texts = [], [], []
    for c in _items(_get(obj, "conditions", "condition")):
        if isinstance(c, dict):
            conditions.append(T("", _str, c.get("description"), "conditions.condition.description"))
    for iv in _items(_get(obj, "interventions", "intervention")):
        if not isinstance(iv, dict):
            continue
        kind = T(None, code, _str(iv.get("interventionType"), "interventions.intervention.interventionType"),
                 "interventions.intervention.interventionType")
        name = _given(_str(iv.get("drugNames"), "interventions.intervention.drugNames"))
        description = _str(iv.get("description"), "interventions.intervention.description")
        interventions.append({"type": kind, "name": name or description[:200], "description": description})
        phase_texts.append(_str(iv.get("phase"), "interventions.intervention.phase"))
    found: list[str] = []
    for p in phase_texts:
        found += T([], phases, p, "interventions.intervention.phase") if p else []
    countries = [_str(c, "participants.recruitmentCountries.country")
                 for c in _items(_get(part, "recruitmentCountries", "country"))]
    countries = [c for c in countries if c not in ("England", "Scotland", "Wales", "Northern Ireland")
                 or "United Kingdom" not in countries]
    secondary = [text(refs, "clinicalTrialsGovNumber", "externalRefs"), text(refs, "eudraCTNumber", "externalRefs"),
                 text(refs, "irasNumber", "externalRefs")]
    secondary += [_str(s, "externalRefs.secondaryNumbers.secondaryNumber")
                  for s in _items(_get(refs, "secondaryNumbers", "secondaryNumber"))]
    status = text(part, "recruitmentStatusOverride", "participants") or text(part, "recruitmentStartStatusOverride", "participants")
    d: dict[str, Any] = {
        "registry_id": rid,
        "registry": REGISTERS["ISRCTN"],
        "source_format": "ctrdata_isrctn",
        "secondary_ids": _unique(s for s in secondary if _given(s) and s != rid),
        "title": text(desc, "title", "trialDescription"),
        "official_title": text(desc, "scientificTitle", "trialDescription"),
        "acronym": text(desc, "acronym", "trialDescription"),
        "brief_summary": text(desc, "plainEnglishSummary", "trialDescription"),
        "conditions": _unique(conditions),
        "interventions": interventions,
        "primary_outcomes": _unique([text(desc, "primaryOutcome", "trialDescription")
                                     or text(desc, "primaryOutcomes", "trialDescription")]),
        "secondary_outcomes": _unique([text(desc, "secondaryOutcome", "trialDescription")
                                       or text(desc, "secondaryOutcomes", "trialDescription")]),
        "study_type": T(None, code, text(design, "primaryStudyDesign", "trialDesign"), "trialDesign.primaryStudyDesign"),
        "phases": list(dict.fromkeys(found)),
        "overall_status": T(None, code, status, "participants.recruitmentStatusOverride") if status else None,
        "start_date": T(None, _date, part.get("recruitmentStart"), "participants.recruitmentStart"),
        "completion_date": T(None, _date, design.get("overallEndDate"), "trialDesign.overallEndDate"),
        "enrollment": T(None, _count, part.get("targetEnrolment"), "participants.targetEnrolment"),
        "countries": _unique(countries),
        "allocation": "RANDOMIZED" if "randomi" in text(design, "studyDesign", "trialDesign").lower() else None,
        "url": f"https://www.isrctn.com/{rid}",
    }
    check_sizes(d, rid, f)
    return build_trial(d, f)


# --------------------------------------------------------------------------- CTIS
_CTIS_PHASES = {"phase i": "PHASE1", "phase ii": "PHASE2", "phase iii": "PHASE3", "phase iv": "PHASE4"}


def _ctis(obj: dict, record_id: str | None, problems) -> Trial:
    number = _str(obj.get("ctNumber") or record_id, "ctNumber")
    if not _CTIS.match(number):
        raise RecordError("ctNumber", "missing" if not number else f"not a CTIS number: {number[:40]!r}")
    rid = f"CTIS{number}"
    f = Fields(problems, rid)
    T = f.take
    part1 = obj.get("authorizedPartI") or _get(obj, "authorizedApplication", "authorizedPartI") or {}
    part1 = part1 if isinstance(part1, dict) else {}
    details = _get(part1, "trialDetails") or {}
    ids = _get(details, "clinicalTrialIdentifiers") or {}
    info = _get(details, "trialInformation") or {}

    def text(parent: Any, key: str, where: str) -> str:
        return T("", _str, parent.get(key) if isinstance(parent, dict) else None, f"{where}.{key}")

    conditions = [text(c, "medicalCondition", "authorizedPartI.medicalConditions")
                  for c in _items(part1.get("medicalConditions")) if isinstance(c, dict)]
    products = []
    for p in _items(part1.get("products")):
        info_p = _get(p, "productDictionaryInfo") or {}
        name = _str(info_p.get("prodName") or info_p.get("activeSubstanceName"), "products.productDictionaryInfo.prodName")
        substance = _str(info_p.get("activeSubstanceName"), "products.productDictionaryInfo.activeSubstanceName")
        if name and name not in [x["name"] for x in products]:
            products.append({"type": "DRUG", "name": name,
                             "other_names": [substance] if substance and substance != name else []})
    phase_text = _str(obj.get("trialPhase"), "trialPhase").lower()
    found = [c for words, c in _CTIS_PHASES.items() if re.search(rf"\({words}\)", phase_text)]
    countries = []
    for entry in _items(obj.get("trialCountries")):
        # "NL:Authorised, not started" (older API) or "Spain:4" (newer)
        for part in _str(entry, "trialCountries").split(","):
            head = part.split(":", 1)[0].strip()
            if not head or (":" not in part and countries):
                continue
            name = head
            if len(head) == 2 and head.isupper():
                hit = pycountry.countries.get(alpha_2=head)
                name = hit.name if hit else head
            countries.append(name)
    sponsor = (_get(obj, "primarySponsor", "organisation", "name")
               or next((_get(s, "organisation", "name") for s in _items(part1.get("sponsors"))
                        if isinstance(s, dict) and s.get("primary")), None)
               or next((_get(s, "organisation", "name") for s in _items(part1.get("sponsors")) if isinstance(s, dict)),
                       None))
    status = obj.get("ctStatus")
    eudract = _str(_get(obj, "eudraCtInfo", "eudraCtCode") or _get(obj, "authorizedApplication", "eudraCt", "eudraCtCode"),
                   "eudraCtCode")
    d: dict[str, Any] = {
        "registry_id": rid,
        "registry": REGISTERS["CTIS"],
        "source_format": "ctrdata_ctis",
        "secondary_ids": [eudract] if _EUDRACT.match(eudract) else [],
        "title": text(ids, "publicTitle", "trialDetails.clinicalTrialIdentifiers") or text(obj, "title", "record"),
        "official_title": text(ids, "fullTitle", "trialDetails.clinicalTrialIdentifiers"),
        "acronym": text(ids, "shortTitle", "trialDetails.clinicalTrialIdentifiers") or text(obj, "shortTitle", "record"),
        "brief_summary": text(_get(info, "trialObjective") or {}, "mainObjective", "trialInformation.trialObjective"),
        "conditions": _unique(conditions),
        "interventions": products,
        "study_type": "INTERVENTIONAL",  # CTIS holds interventional trials of medicines only
        "phases": found,
        # the older API writes the status in words; the newer a number whose meaning is not published
        "overall_status": T(None, code, status, "ctStatus") if isinstance(status, str) else None,
        "registration_date": T(None, _date, obj.get("submissionDate"), "submissionDate"),
        "start_date": T(None, _date, obj.get("startDateEU") or _get(info, "trialDuration", "estimatedRecruitmentStartDate"),
                        "startDateEU"),
        "completion_date": T(None, _date, _get(info, "trialDuration", "estimatedEndDate"),
                             "trialInformation.trialDuration.estimatedEndDate"),
        "last_update": T(None, _date, obj.get("lastUpdated"), "lastUpdated"),
        "enrollment": T(None, _count, obj.get("totalNumberEnrolled"), "totalNumberEnrolled"),
        "countries": _unique(countries),
        "sponsor": _str(sponsor, "sponsor") or None,
        "url": f"https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&EUCT={number}",
    }
    check_sizes(d, rid, f)
    return build_trial(d, f)
