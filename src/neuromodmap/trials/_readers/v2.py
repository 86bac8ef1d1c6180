"""ClinicalTrials.gov API v2 study JSON -> Trial (files, JSON lines, bulk ZIP and the live API)."""

from __future__ import annotations

from typing import Any

from neuromodmap.trials._readers._common import (
    MAX_FIELD_CHARS,
    FieldError,
    Fields,
    RecordError,
    build_trial,
    check_sizes,
    code,
    date_precision,
    parse_date,
)
from neuromodmap.trials.models import Trial

__all__ = ["study_to_trial", "is_study", "PHASES"]

_EMPTY: dict = {}


def is_study(obj: Any) -> bool:
    return isinstance(obj, dict) and "protocolSection" in obj


def _module(parent: dict, key: str, path: str) -> dict:
    value = parent.get(key)
    if value is None:
        return _EMPTY
    if not isinstance(value, dict):
        raise FieldError(f"{path}.{key}" if path else key, f"expected an object, got {type(value).__name__}")
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


def _struct_precision(parent: dict, key: str) -> str | None:
    value = parent.get(key)
    return date_precision(value.get("date")) if isinstance(value, dict) else None


def _mesh_terms(module: dict, path: str) -> list[str]:
    return [
        _str(m, "term", f"{path}.meshes[]") for m in _objects(module, "meshes", path) if m.get("term")
    ]


#: the phase codes of the API v2 (``Phase`` enum of the data model)
PHASES = frozenset({"NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4"})


def _phases(design: dict, path: str) -> list[str]:
    values = _strings(design, "phases", path)
    for v in values:
        if v not in PHASES:
            raise FieldError(f"{path}.phases", f"unknown phase {v[:40]!r} (expected one of {', '.join(sorted(PHASES))})")
    return values


def _count(enrol: dict, path: str) -> int | None:
    count = enrol.get("count")
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise FieldError(f"{path}.count", f"expected a count, got {count!r:.40}")
    return count


def _has_results(study: dict) -> bool | None:
    value = study.get("hasResults")
    if value is not None and not isinstance(value, bool):
        raise FieldError("hasResults", f"expected true/false, got {value!r:.40}")
    return value


def _ids(ident: dict, path: str) -> list[str]:
    sec = [_str(s, "id", f"{path}.secondaryIdInfos[]") for s in _objects(ident, "secondaryIdInfos", path)]
    return [s for s in sec if s]


def _measures(outcomes: dict, key: str, path: str) -> list[str]:
    return [_str(o, "measure", f"{path}.{key}[]") for o in _objects(outcomes, key, path)]


def _countries(contacts: dict, path: str) -> list[str]:
    countries: list[str] = []
    for loc in _objects(contacts, "locations", path):
        c = _str(loc, "country", f"{path}.locations[]")
        if c and c not in countries:
            countries.append(c)
    return countries


def study_to_trial(
    study: Any,
    *,
    source_format: str = "ctgov_v2",
    size_hint: int | None = None,
    problems: list[FieldError] | None = None,
) -> Trial:
    """Map one API v2 study object to a :class:`Trial`.

    Only fields present in the record are set; the text-only 2018 corpus yields a Trial with
    an id, title, summary and description and nothing else.

    Parameters
    ----------
    problems : list, optional
        Each field with a wrong type or value is left empty and appended here as a
        :class:`FieldError` (named by its JSON path); the record is kept. Without a list the
        first such field raises.

    Raises
    ------
    RecordError
        When the study is not a JSON object, has no ``protocolSection`` or
        ``identificationModule`` object, or no NCT id: the record cannot be imported.
    FieldError
        Without ``problems``: the first field with a wrong type or an invalid value.
    """
    if not isinstance(study, dict):
        raise RecordError("study", f"expected a JSON object, got {type(study).__name__}")
    P = "protocolSection"
    ps = study.get(P)
    if not isinstance(ps, dict):
        raise RecordError(P, "missing" if ps is None else f"expected an object, got {type(ps).__name__}")
    ident = ps.get("identificationModule")
    if not isinstance(ident, dict):
        raise RecordError(
            f"{P}.identificationModule", "missing" if ident is None else f"expected an object, got {type(ident).__name__}"
        )
    nct = ident.get("nctId")
    if not isinstance(nct, str) or not nct.strip():
        raise RecordError(f"{P}.identificationModule.nctId", "missing or not text")
    nct = nct.strip()
    try:
        return _map(study, ps, ident, nct, source_format, size_hint, Fields(problems, nct))
    except FieldError as err:
        err.registry_id = nct
        raise


def _map(study: dict, ps: dict, ident: dict, nct: str, source_format: str, size_hint: int | None,
         f: Fields) -> Trial:
    T = f.take  # T(default, fn, *args): fn(*args), or the default when that field is bad
    P = "protocolSection"
    IM = f"{P}.identificationModule"
    d: dict[str, Any] = {
        "registry_id": nct,
        "registry": "ctgov",
        "source_format": source_format,
        "url": f"https://clinicaltrials.gov/study/{nct}",
        "title": T("", _str, ident, "briefTitle", IM),
        "official_title": T("", _str, ident, "officialTitle", IM),
        "acronym": T("", _str, ident, "acronym", IM),
    }
    if "secondaryIdInfos" in ident:
        d["secondary_ids"] = T([], _ids, ident, IM)
    if "descriptionModule" in ps:
        desc = T(_EMPTY, _module, ps, "descriptionModule", P)
        d["brief_summary"] = T("", _str, desc, "briefSummary", f"{P}.descriptionModule")
        d["detailed_description"] = T("", _str, desc, "detailedDescription", f"{P}.descriptionModule")

    if ps.get("statusModule") is not None:
        SM = f"{P}.statusModule"
        status = T(_EMPTY, _module, ps, "statusModule", P)
        d["overall_status"] = T(None, code, status.get("overallStatus"), f"{SM}.overallStatus")
        d["start_date"] = T(None, _date_struct, status, "startDateStruct", SM)
        d["completion_date"] = T(None, _date_struct, status, "completionDateStruct", SM)
        d["start_date_precision"] = _struct_precision(status, "startDateStruct")
        d["completion_date_precision"] = _struct_precision(status, "completionDateStruct")
        d["registration_date"] = T(None, parse_date, status.get("studyFirstSubmitDate"), f"{SM}.studyFirstSubmitDate")
        d["last_update"] = T(None, _date_struct, status, "lastUpdatePostDateStruct", SM)

    if ps.get("sponsorCollaboratorsModule") is not None:
        SC = f"{P}.sponsorCollaboratorsModule"
        spons = T(_EMPTY, _module, ps, "sponsorCollaboratorsModule", P)
        lead = T(_EMPTY, _module, spons, "leadSponsor", SC)
        d["sponsor"] = T(None, _opt_str, lead, "name", f"{SC}.leadSponsor")
        d["sponsor_class"] = T(None, code, lead.get("class"), f"{SC}.leadSponsor.class")

    if "conditionsModule" in ps:
        cond = T(_EMPTY, _module, ps, "conditionsModule", P)
        d["conditions"] = T([], _strings, cond, "conditions", f"{P}.conditionsModule")
        d["keywords"] = T([], _strings, cond, "keywords", f"{P}.conditionsModule")

    if ps.get("designModule") is not None:
        DM = f"{P}.designModule"
        design = T(_EMPTY, _module, ps, "designModule", P)
        d["study_type"] = T(None, code, design.get("studyType"), f"{DM}.studyType")
        d["phases"] = T([], _phases, design, DM)
        info = T(_EMPTY, _module, design, "designInfo", DM)
        d["allocation"] = T(None, code, info.get("allocation"), f"{DM}.designInfo.allocation")
        d["primary_purpose"] = T(None, code, info.get("primaryPurpose"), f"{DM}.designInfo.primaryPurpose")
        masking = T(_EMPTY, _module, info, "maskingInfo", f"{DM}.designInfo")
        d["masking"] = T(None, code, masking.get("masking"), f"{DM}.designInfo.maskingInfo.masking")
        d["enrollment"] = T(None, _count, T(_EMPTY, _module, design, "enrollmentInfo", DM), f"{DM}.enrollmentInfo")

    if ps.get("armsInterventionsModule") is not None:
        AM = f"{P}.armsInterventionsModule"
        IV = f"{AM}.interventions[]"
        arms = T(_EMPTY, _module, ps, "armsInterventionsModule", P)
        d["interventions"] = [
            {
                "type": T(None, code, iv.get("type"), f"{IV}.type"),
                "name": T("", _str, iv, "name", IV),
                "description": T("", _str, iv, "description", IV),
                "other_names": T([], _strings, iv, "otherNames", IV),
                "arm_group_labels": T([], _strings, iv, "armGroupLabels", IV),
            }
            for iv in T([], _objects, arms, "interventions", AM)
        ]
        AG = f"{AM}.armGroups[]"
        d["arm_groups"] = [
            {
                "label": T("", _str, arm, "label", AG),
                "type": T(None, code, arm.get("type"), f"{AG}.type"),
                "description": T("", _str, arm, "description", AG),
                "intervention_names": T([], _strings, arm, "interventionNames", AG),
            }
            for arm in T([], _objects, arms, "armGroups", AM)
        ]

    if ps.get("outcomesModule") is not None:
        OM = f"{P}.outcomesModule"
        outcomes = T(_EMPTY, _module, ps, "outcomesModule", P)
        d["primary_outcomes"] = T([], _measures, outcomes, "primaryOutcomes", OM)
        d["secondary_outcomes"] = T([], _measures, outcomes, "secondaryOutcomes", OM)

    if ps.get("contactsLocationsModule") is not None:
        CM = f"{P}.contactsLocationsModule"
        d["countries"] = T([], _countries, T(_EMPTY, _module, ps, "contactsLocationsModule", P), CM)

    if study.get("derivedSection") is not None:
        DS = "derivedSection"
        derived = T(_EMPTY, _module, study, DS, "")
        d["condition_mesh"] = T(
            [], _mesh_terms, T(_EMPTY, _module, derived, "conditionBrowseModule", DS), f"{DS}.conditionBrowseModule"
        )
        d["intervention_mesh"] = T(
            [], _mesh_terms, T(_EMPTY, _module, derived, "interventionBrowseModule", DS), f"{DS}.interventionBrowseModule"
        )
    if "hasResults" in study:
        d["has_results"] = T(None, _has_results, study)

    if size_hint is None or size_hint > MAX_FIELD_CHARS:  # no field is longer than its record
        check_sizes(d, nct, f)
    return build_trial(d, f)
