"""ClinicalTrials.gov API v2 study JSON -> Trial (files, JSON lines, bulk ZIP and the live API)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from neuromodmap.trials._readers._common import (
    MAX_FIELD_CHARS,
    FieldError,
    check_sizes,
    code,
    parse_date,
)
from neuromodmap.trials.models import Trial

__all__ = ["study_to_trial", "is_study"]

_EMPTY: dict = {}


def is_study(obj: Any) -> bool:
    return isinstance(obj, dict) and "protocolSection" in obj


def _module(parent: dict, key: str, path: str) -> dict:
    value = parent.get(key)
    if value is None:
        return _EMPTY
    if not isinstance(value, dict):
        raise FieldError(f"{path}.{key}", f"expected an object, got {type(value).__name__}")
    return value


def _list(parent: dict, key: str, path: str) -> list:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(f"{path}.{key}", f"expected a list, got {type(value).__name__}")
    return value


def _str(parent: dict, key: str, path: str) -> str:
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(f"{path}.{key}", f"expected text, got {type(value).__name__}")
    return value


def _opt_str(parent: dict, key: str, path: str) -> str | None:
    return _str(parent, key, path) or None


def _strings(parent: dict, key: str, path: str) -> list[str]:
    values = _list(parent, key, path)
    for v in values:
        if not isinstance(v, str):
            raise FieldError(f"{path}.{key}", f"expected a list of text, found {type(v).__name__}")
    return values


def _objects(parent: dict, key: str, path: str) -> list[dict]:
    values = _list(parent, key, path)
    for v in values:
        if not isinstance(v, dict):
            raise FieldError(f"{path}.{key}", f"expected a list of objects, found {type(v).__name__}")
    return values


def _date_struct(parent: dict, key: str, path: str):
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FieldError(f"{path}.{key}", f"expected an object, got {type(value).__name__}")
    return parse_date(value.get("date"), f"{path}.{key}.date")


def _mesh_terms(module: dict, path: str) -> list[str]:
    return [
        _str(m, "term", f"{path}.meshes[]") for m in _objects(module, "meshes", path) if m.get("term")
    ]


def study_to_trial(study: Any, *, source_format: str = "ctgov_v2", size_hint: int | None = None) -> Trial:
    """Map one API v2 study object to a :class:`Trial`.

    Only fields present in the record are set; the text-only 2018 corpus yields a Trial with
    an id, title, summary and description and nothing else.

    Raises
    ------
    FieldError
        When a field has the wrong type or an invalid value (named by its JSON path).
    """
    if not isinstance(study, dict):
        raise FieldError("study", f"expected a JSON object, got {type(study).__name__}")
    ps = study.get("protocolSection")
    if not isinstance(ps, dict):
        raise FieldError("protocolSection", "missing" if ps is None else "expected an object")
    P = "protocolSection"
    ident = _module(ps, "identificationModule", P)
    nct = ident.get("nctId")
    if not isinstance(nct, str) or not nct.strip():
        raise FieldError(f"{P}.identificationModule.nctId", "missing or not text")
    nct = nct.strip()
    try:
        return _map(study, ps, ident, nct, source_format, size_hint)
    except FieldError as err:
        err.registry_id = nct
        raise


def _map(study: dict, ps: dict, ident: dict, nct: str, source_format: str, size_hint: int | None) -> Trial:
    P = "protocolSection"
    IM = f"{P}.identificationModule"
    d: dict[str, Any] = {
        "registry_id": nct,
        "registry": "ctgov",
        "source_format": source_format,
        "url": f"https://clinicaltrials.gov/study/{nct}",
        "title": _str(ident, "briefTitle", IM),
        "official_title": _str(ident, "officialTitle", IM),
        "acronym": _str(ident, "acronym", IM),
    }
    sec = [
        _str(s, "id", f"{IM}.secondaryIdInfos[]") for s in _objects(ident, "secondaryIdInfos", IM)
    ]
    d["secondary_ids"] = [s for s in sec if s]
    desc = _module(ps, "descriptionModule", P)
    d["brief_summary"] = _str(desc, "briefSummary", f"{P}.descriptionModule")
    d["detailed_description"] = _str(desc, "detailedDescription", f"{P}.descriptionModule")

    if (status := ps.get("statusModule")) is not None:
        SM = f"{P}.statusModule"
        status = _module(ps, "statusModule", P)
        d["overall_status"] = code(status.get("overallStatus"), f"{SM}.overallStatus")
        d["start_date"] = _date_struct(status, "startDateStruct", SM)
        d["completion_date"] = _date_struct(status, "completionDateStruct", SM)
        d["registration_date"] = parse_date(status.get("studyFirstSubmitDate"), f"{SM}.studyFirstSubmitDate")
        d["last_update"] = _date_struct(status, "lastUpdatePostDateStruct", SM)

    if (spons := ps.get("sponsorCollaboratorsModule")) is not None:
        spons = _module(ps, "sponsorCollaboratorsModule", P)
        lead = _module(spons, "leadSponsor", f"{P}.sponsorCollaboratorsModule")
        d["sponsor"] = _opt_str(lead, "name", f"{P}.sponsorCollaboratorsModule.leadSponsor")
        d["sponsor_class"] = code(lead.get("class"), f"{P}.sponsorCollaboratorsModule.leadSponsor.class")

    cond = _module(ps, "conditionsModule", P)
    d["conditions"] = _strings(cond, "conditions", f"{P}.conditionsModule")
    d["keywords"] = _strings(cond, "keywords", f"{P}.conditionsModule")

    if (design := ps.get("designModule")) is not None:
        DM = f"{P}.designModule"
        design = _module(ps, "designModule", P)
        d["study_type"] = code(design.get("studyType"), f"{DM}.studyType")
        d["phases"] = _strings(design, "phases", DM)
        info = _module(design, "designInfo", DM)
        d["allocation"] = code(info.get("allocation"), f"{DM}.designInfo.allocation")
        d["primary_purpose"] = code(info.get("primaryPurpose"), f"{DM}.designInfo.primaryPurpose")
        masking = _module(info, "maskingInfo", f"{DM}.designInfo")
        d["masking"] = code(masking.get("masking"), f"{DM}.designInfo.maskingInfo.masking")
        enrol = _module(design, "enrollmentInfo", DM)
        count = enrol.get("count")
        if count is not None:
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise FieldError(f"{DM}.enrollmentInfo.count", f"expected a count, got {count!r:.40}")
            d["enrollment"] = count

    if (arms := ps.get("armsInterventionsModule")) is not None:
        AM = f"{P}.armsInterventionsModule"
        arms = _module(ps, "armsInterventionsModule", P)
        d["interventions"] = [
            {
                "type": code(iv.get("type"), f"{AM}.interventions[].type"),
                "name": _str(iv, "name", f"{AM}.interventions[]"),
                "description": _str(iv, "description", f"{AM}.interventions[]"),
                "other_names": _strings(iv, "otherNames", f"{AM}.interventions[]"),
                "arm_group_labels": _strings(iv, "armGroupLabels", f"{AM}.interventions[]"),
            }
            for iv in _objects(arms, "interventions", AM)
        ]

    if (outcomes := ps.get("outcomesModule")) is not None:
        OM = f"{P}.outcomesModule"
        outcomes = _module(ps, "outcomesModule", P)
        d["primary_outcomes"] = [
            _str(o, "measure", f"{OM}.primaryOutcomes[]") for o in _objects(outcomes, "primaryOutcomes", OM)
        ]
        d["secondary_outcomes"] = [
            _str(o, "measure", f"{OM}.secondaryOutcomes[]")
            for o in _objects(outcomes, "secondaryOutcomes", OM)
        ]

    if (contacts := ps.get("contactsLocationsModule")) is not None:
        CM = f"{P}.contactsLocationsModule"
        contacts = _module(ps, "contactsLocationsModule", P)
        countries: list[str] = []
        for loc in _objects(contacts, "locations", CM):
            c = _str(loc, "country", f"{CM}.locations[]")
            if c and c not in countries:
                countries.append(c)
        d["countries"] = countries

    derived = study.get("derivedSection")
    if derived is not None:
        derived = _module(study, "derivedSection", "")
        d["condition_mesh"] = _mesh_terms(
            _module(derived, "conditionBrowseModule", "derivedSection"), "derivedSection.conditionBrowseModule"
        )
        d["intervention_mesh"] = _mesh_terms(
            _module(derived, "interventionBrowseModule", "derivedSection"),
            "derivedSection.interventionBrowseModule",
        )
    has_results = study.get("hasResults")
    if has_results is not None:
        if not isinstance(has_results, bool):
            raise FieldError("hasResults", f"expected true/false, got {has_results!r:.40}")
        d["has_results"] = has_results

    if size_hint is None or size_hint > MAX_FIELD_CHARS:  # no field is longer than its record
        check_sizes(d, nct)
    try:
        return Trial.model_validate(d)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise FieldError(loc, first["msg"], nct) from None
