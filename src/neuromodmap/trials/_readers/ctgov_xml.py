"""Legacy ClinicalTrials.gov ``<clinical_study>`` XML (classic API, AllPublicXML.zip) -> Trial."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import Element

from neuromodmap.trials._readers import _common
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
)
from neuromodmap.trials.models import Trial

__all__ = ["clinical_study_to_trial", "element_to_dict"]

_DOWNLOAD = re.compile(r"on\s+(.+?)\s*$")
_MISSING = object()


#: how deep the stored form of a record goes (real records: 5 levels); a hostile record nested
#: deeper keeps each element below this level as its text, so it is neither lost nor able to
#: exhaust the interpreter's stack
MAX_DEPTH = 48


def element_to_dict(elem: Element, flattened: list[str] | None = None, _depth: int = 0) -> dict[str, Any]:
    """An XML element as a JSON-able dict: repeated tags become lists, attributes ``@name``.

    An element more than :data:`MAX_DEPTH` levels down becomes its text (all of it, in
    document order); its tag is appended to ``flattened`` when given.
    """
    attrib = elem.attrib
    out: dict[str, Any] = {f"@{k}": v for k, v in attrib.items()} if attrib else {}
    for child in elem:
        tag = child.tag
        if tag.__class__ is not str:  # comments, processing instructions
            continue
        if _depth >= MAX_DEPTH and (len(child) or child.keys()):
            value: Any = " ".join("".join(child.itertext()).split())
            if flattened is not None:
                flattened.append(tag)
        elif len(child) or child.keys():  # keys(), not attrib: that would give every leaf a dict
            value = element_to_dict(child, flattened, _depth + 1)
            if not len(child) and (text := child.text) and (text := text.strip()):
                value["#text"] = text
        else:
            text = child.text
            value = text.strip() if text else ""
        prev = out.get(tag, _MISSING)
        if prev is _MISSING:
            out[tag] = value
        elif prev.__class__ is list:
            prev.append(value)
        else:
            out[tag] = [prev, value]
    return out


def _text(elem: Element | None, path: str) -> str:
    if elem is None:
        return ""
    node = elem.find(path)
    if node is None:
        return ""
    return clean_text("".join(node.itertext()), path)


def _texts(elem: Element, path: str) -> list[str]:
    out = []
    for node in elem.iterfind(path):
        t = clean_text("".join(node.itertext()), path)
        if t and t not in out:
            out.append(t)
    return out


def _textblock(elem: Element, path: str) -> str:
    # textblocks are hard-wrapped at ~80 columns with indentation; keep paragraph breaks only
    node = elem.find(path)
    if node is None:
        return ""
    return _paragraphs("".join(node.itertext()))


def _paragraphs(raw: str) -> str:
    paras = re.split(r"\n\s*\n", raw.strip())
    return "\n".join(" ".join(p.split()) for p in paras if p.strip())


class _Mixed(Exception):
    """A field's element has child elements (mixed content): read that record from the tree."""


def _nodes(d: Any, parts: tuple[str, ...]) -> Iterator[Any]:
    """The values at ``parts`` under the dict ``d`` (``element_to_dict`` output), in document
    order, as ``Element.iterfind`` would find the elements."""
    if not isinstance(d, dict):
        return
    v = d.get(parts[0], _MISSING)
    if v is _MISSING:
        return
    vals = v if isinstance(v, list) else (v,)
    if len(parts) == 1:
        yield from vals
    else:
        rest = parts[1:]
        for x in vals:
            yield from _nodes(x, rest)


def _leaf(v: Any) -> str:
    """The (stripped) text of an element's dict value; :class:`_Mixed` if it has children."""
    if isinstance(v, str):
        return v
    if all(k[0] in "@#" for k in v):  # attributes only (and "#text"): a leaf
        return v.get("#text", "")
    raise _Mixed


_PARTS: dict[str, tuple[str, ...]] = {}


def _first(d: Any, path: str) -> Any:
    parts = _PARTS.get(path)
    if parts is None:
        parts = _PARTS[path] = tuple(path.split("/"))
    v = d
    for part in parts:  # the usual case: one element at each step
        if v.__class__ is not dict:
            if v.__class__ is list:  # several: the first match in document order
                return next(_nodes(d, parts), _MISSING)
            return _MISSING
        v = v.get(part, _MISSING)
        if v is _MISSING:
            return _MISSING
    return v[0] if v.__class__ is list else v


def _d_text(d: Any, path: str) -> str:
    v = _first(d, path)
    return "" if v is _MISSING else clean_text(_leaf(v), path)


def _d_texts(d: Any, path: str) -> list[str]:
    parts = _PARTS.get(path)
    if parts is None:
        parts = _PARTS[path] = tuple(path.split("/"))
    if len(parts) == 1 and d.__class__ is dict:  # most repeated fields: condition, keyword, ...
        v = d.get(parts[0], _MISSING)
        if v is _MISSING:
            return []
        if v.__class__ is str:
            t = clean_text(v, path)
            return [t] if t else []
        nodes: Any = v if v.__class__ is list else (v,)
    else:
        nodes = _nodes(d, parts)
    out = []
    for v in nodes:
        t = clean_text(v if v.__class__ is str else _leaf(v), path)
        if t and t not in out:
            out.append(t)
    return out


def _d_textblock(d: Any, path: str) -> str:
    v = _first(d, path)
    return "" if v is _MISSING else _paragraphs(_leaf(v))


def _d_iter(d: Any, tag: str) -> Iterator[Any]:
    return _nodes(d, (tag,))


def _d_has(d: Any, tag: str) -> bool:
    return isinstance(d, dict) and tag in d


def _e_has(elem: Element, tag: str) -> bool:
    return elem.find(tag) is not None


#: how the mapping reads the record: from the element tree (any record) or from its
#: ``element_to_dict`` form (faster; every field a leaf element, else :class:`_Mixed`)
_ON_TREE = (_text, _texts, _textblock, Element.iterfind, _e_has)
_ON_DICT = (_d_text, _d_texts, _d_textblock, _d_iter, _d_has)


def download_date(root: Element, raw: dict[str, Any] | None = None) -> dt.date | None:
    """The ``download_date`` of a record ("ClinicalTrials.gov processed this data on May 11, 2018");
    ``raw``: the record's ``element_to_dict`` form, read instead of the tree when it serves."""
    text = None
    if raw is not None:
        try:
            text = _d_text(raw, "required_header/download_date")
        except _Mixed:
            pass
    if text is None:
        text = _text(root, "required_header/download_date")
    m = _DOWNLOAD.search(text)
    if not m:
        return None
    try:
        return parse_date(m.group(1), "required_header/download_date")
    except FieldError:
        return None


def clinical_study_to_trial(root: Element, problems: list[FieldError] | None = None, *,
                            raw: dict[str, Any] | None = None, size_hint: int | None = None) -> Trial:
    """Map a parsed ``<clinical_study>`` element to a :class:`Trial`.

    Parameters
    ----------
    problems : list, optional
        Each field with an invalid value (a date, enrollment or phase no registry writes, an
        oversize text) is left empty and appended here as a :class:`FieldError` named by its
        element path; the record is kept. Without a list the first such field raises.
    raw : dict, optional
        ``element_to_dict(root)``, already built for the store: the fields are read from it
        (dict look-ups instead of element paths); a record where a field's element has child
        elements is read from the tree (same result either way).
    size_hint : int, optional
        The record's size in bytes: no field of a record under the field limit can exceed it,
        so the field sizes are not checked then.

    Raises
    ------
    RecordError
        When the root is not ``clinical_study`` or the NCT id is missing.
    FieldError
        Without ``problems``: the first field with an invalid value.
    """
    if root.tag != "clinical_study":
        raise RecordError("clinical_study", f"root element is <{root.tag}>, not <clinical_study>")
    check = size_hint is None or size_hint > _common.MAX_FIELD_CHARS  # the module's, read now
    if raw is not None:
        try:
            nct = _d_text(raw, "id_info/nct_id")
            if not nct:
                raise RecordError("id_info/nct_id", "missing")
            bad: list[FieldError] | None = [] if problems is not None else None
            try:
                trial = _map(raw, nct, Fields(bad, nct), _ON_DICT, check)
            except FieldError as err:
                err.registry_id = nct
                raise
            if bad:
                problems.extend(bad)
            return trial
        except _Mixed:
            pass
    nct = _text(root, "id_info/nct_id")
    if not nct:
        raise RecordError("id_info/nct_id", "missing")
    try:
        return _map(root, nct, Fields(problems, nct), _ON_TREE, check)
    except FieldError as err:
        err.registry_id = nct
        raise


def _enrollment(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise FieldError("enrollment", f"expected a count, got {text[:40]!r}")
    return int(text)


def _map(root: Any, nct: str, f: Fields, on: tuple, check: bool = True) -> Trial:
    T = f.take  # T(default, fn, *args): fn(*args), or the default when that field is bad
    _text, _texts, _textblock, iterfind, has = on  # read from the tree or from its dict
    secondary = _texts(root, "id_info/secondary_id") + _texts(root, "id_info/nct_alias")
    study_type = _text(root, "study_type")
    phase = _text(root, "phase")
    last_update = "last_update_posted" if _text(root, "last_update_posted") else "last_update_submitted"
    countries = _texts(root, "location_countries/country")
    if not countries:
        countries = _texts(root, "location/facility/address/country")
    interventions = [
        {
            "type": code(_text(iv, "intervention_type"), "intervention/intervention_type"),
            "name": _text(iv, "intervention_name"),
            "description": _text(iv, "description"),
            "other_names": _texts(iv, "other_name"),
            "arm_group_labels": _texts(iv, "arm_group_label"),
        }
        for iv in iterfind(root, "intervention")
    ]
    arm_groups = [
        {
            "label": _text(arm, "arm_group_label"),
            "type": code(_text(arm, "arm_group_type"), "arm_group/arm_group_type"),
            "description": _text(arm, "description"),
        }
        for arm in iterfind(root, "arm_group")
    ]
    d: dict[str, Any] = {
        "registry_id": nct,
        "registry": "ctgov",
        "source_format": "ctgov_xml",
        "url": _text(root, "required_header/url") or f"https://clinicaltrials.gov/study/{nct}",
        "secondary_ids": secondary,
        "title": _text(root, "brief_title"),
        "official_title": _text(root, "official_title"),
        "acronym": _text(root, "acronym"),
        "brief_summary": _textblock(root, "brief_summary/textblock"),
        "detailed_description": _textblock(root, "detailed_description/textblock"),
        "conditions": _texts(root, "condition"),
        "keywords": _texts(root, "keyword"),
        "condition_mesh": _texts(root, "condition_browse/mesh_term"),
        "intervention_mesh": _texts(root, "intervention_browse/mesh_term"),
        "interventions": interventions,
        "arm_groups": arm_groups,
        "primary_outcomes": _texts(root, "primary_outcome/measure"),
        "secondary_outcomes": _texts(root, "secondary_outcome/measure"),
        # "Observational [Patient Registry]" is OBSERVATIONAL in v2 (with a registry flag)
        "study_type": code(study_type.split("[", 1)[0], "study_type"),
        "phases": T([], phases, phase, "phase") if phase else [],
        "overall_status": code(_text(root, "overall_status"), "overall_status"),
        "start_date": T(None, parse_date, _text(root, "start_date"), "start_date"),
        "completion_date": T(None, parse_date, _text(root, "completion_date"), "completion_date"),
        "start_date_precision": date_precision(_text(root, "start_date")),
        "completion_date_precision": date_precision(_text(root, "completion_date")),
        "registration_date": T(None, parse_date, _text(root, "study_first_submitted"), "study_first_submitted"),
        "last_update": T(None, parse_date, _text(root, last_update), last_update),
        "enrollment": T(None, _enrollment, _text(root, "enrollment")),
        "countries": countries,
        "sponsor": _text(root, "sponsors/lead_sponsor/agency") or None,
        "sponsor_class": code(_text(root, "sponsors/lead_sponsor/agency_class"), "agency_class"),
        "allocation": code(_text(root, "study_design_info/allocation"), "allocation"),
        "masking": code(_text(root, "study_design_info/masking"), "masking"),
        "primary_purpose": code(_text(root, "study_design_info/primary_purpose"), "primary_purpose"),
        "has_results": has(root, "clinical_results"),
    }
    if check:
        check_sizes(d, nct, f)
    return build_trial(d, f)
