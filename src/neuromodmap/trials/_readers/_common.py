"""Pieces every trial reader shares: the record wrapper, field and record errors, value normalisers.

Two kinds of problem (docs/trials_import.md, "Bad records and bad fields"):

* :class:`FieldError`: one field has a wrong type or value (a date no registry writes, a
  count that is not a number, text where a list belongs, an oversize text). The field is
  left empty, the record is kept, and the problem is reported (``action`` "field emptied").
* :class:`RecordError`: the record cannot be imported at all (no usable registry id, not a
  record of the right kind). The record is skipped and reported ("record skipped").

A mapper collects the field problems of one record in a :class:`Fields`; without a list to
collect them in (``problems=None``) the first one is raised, as a strict check.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from neuromodmap.trials.models import ArmGroup, Intervention, Trial

__all__ = [
    "ImportedRecord",
    "FieldError",
    "RecordError",
    "Fields",
    "TrialFileError",
    "MAX_FIELD_CHARS",
    "MAX_RECORD_BYTES",
    "parse_date",
    "date_precision",
    "code",
    "phases",
    "clean_text",
    "split_multi",
    "check_sizes",
    "build_trial",
    "FIELD_EMPTIED",
    "RECORD_SKIPPED",
    "ID_FLAGGED",
]

#: ``ImportProblem.action`` of a field problem: the field is left empty, the record kept
FIELD_EMPTIED = "field emptied"
#: ``ImportProblem.action`` of a record problem: the record is not imported
RECORD_SKIPPED = "record skipped"
#: ``ImportProblem.action`` of a record whose own registry id is not valid for its registry: kept, reported
ID_FLAGGED = "record kept, id invalid"

#: a text field longer than this is refused (a real registry text is at most a few 100 kB)
MAX_FIELD_CHARS = 1_000_000
#: one JSON line, JSON file or ZIP member larger than this is refused before parsing
MAX_RECORD_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class ImportedRecord:
    """One trial read from a source, with the raw record it came from.

    Attributes
    ----------
    trial : Trial
        The normalised record.
    raw : dict
        The source record as parsed (JSON object, or the XML/CSV record as a dict).
    source : str
        The file path (or API query) it came from.
    location : str
        Where in the source: ``line 12``, ``member NCT01.json``, ``record 3``.
    as_of : date, optional
        The date the source says the record refers to (legacy XML ``download_date``).
    raw_json : str, optional
        ``raw`` already serialised (the JSON line as read), so the store need not re-encode it.
    size : int
        Bytes of the source record when the reader knows them (an XML record), else 0; the
        store sizes its batches by it.
    """

    trial: Trial
    raw: dict[str, Any]
    source: str
    location: str
    as_of: dt.date | None = None
    raw_json: str | None = None
    size: int = 0


class FieldError(ValueError):
    """A field with a wrong type or value: the field is left empty and reported, the record kept.

    Raised by the value normalisers; a mapper given a problem list catches it per field (see
    :class:`Fields`). Its subclass :class:`RecordError` is the kind that costs the record.
    """

    def __init__(self, field: str, reason: str, registry_id: str | None = None):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.registry_id = registry_id


class RecordError(FieldError):
    """A record that cannot be imported at all (no usable registry id, not a record of the
    right kind); it is skipped and reported. ``field`` names what is missing or wrong."""


class Fields:
    """The field problems of one record.

    ``take(default, fn, *args)`` returns ``fn(*args)``, or ``default`` after noting the
    :class:`FieldError` it raised. A :class:`RecordError` always propagates; so does every
    FieldError when ``problems`` is None (strict: the first bad field raises).
    """

    __slots__ = ("problems", "registry_id")

    def __init__(self, problems: list[FieldError] | None, registry_id: str | None = None):
        self.problems = problems
        self.registry_id = registry_id

    def note(self, err: FieldError) -> None:
        if isinstance(err, RecordError) or self.problems is None:
            raise err
        err.registry_id = err.registry_id or self.registry_id
        self.problems.append(err)

    def take(self, default: Any, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except RecordError:
            raise
        except FieldError as err:
            self.note(err)
            return default


class TrialFileError(ValueError):
    """A file that cannot be read at all (unknown format, unreadable); names the file."""


_MONTHS = {
    m.lower(): i
    for i, m in enumerate(
        ["January", "February", "March", "April", "May", "June", "July", "August",
         "September", "October", "November", "December"],
        start=1,
    )
}
_MONTHS.update({k[:3]: v for k, v in list(_MONTHS.items())})
_ISO = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?(?:[T ].*)?$")
_DMY = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})$")
_YMD_SLASH = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
#: spellings of "no date given" (WHO ICTRP exports write NA): no date, not a problem
_NO_DATE = frozenset({"na", "n/a", "null", "none", "not available", "not applicable"})
_WORDS = re.compile(r"^(?:(\d{1,2})\s+)?([A-Za-z]+)\.?\s+(?:(\d{1,2}),?\s+)?(\d{4})$")


def parse_date(value: Any, field: str) -> dt.date | None:
    """Parse the date spellings registries use; a month-only date becomes its first day.

    ``2015-09``, ``2015-09-17``, ``December 2015``, ``August 1, 2017``, ``17 August 2017``,
    ``20/03/2020`` and ``20-03-2020`` (day first, as WHO ICTRP and CTRI write it),
    ``2016/12/06`` (year first, JPRN) and ``20200320``. Anything else raises
    :class:`FieldError` (``Mar-16``: March 2016 or 16 March?).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(field, f"expected a date string, got {type(value).__name__}")
    try:
        return _date_of(value)
    except _BadDate as err:
        raise FieldError(field, str(err)) from None


class _BadDate(ValueError):
    pass


@functools.lru_cache(maxsize=8192)
def _date_of(value: str) -> dt.date | None:
    """:func:`parse_date` of one spelling (registries repeat a few thousand of them); a spelling
    it cannot read raises :class:`_BadDate` (not cached)."""
    text = value.strip()
    if not text or text.lower() in _NO_DATE:
        return None
    try:
        if m := _ISO.match(text):
            y, mo, d = m.groups()
            return dt.date(int(y), int(mo or 1), int(d or 1))
        if m := _DMY.match(text):
            d, _, mo, y = m.groups()
            return dt.date(int(y), int(mo), int(d))
        if m := _YMD_SLASH.match(text):
            y, mo, d = m.groups()
            return dt.date(int(y), int(mo), int(d))
        if m := _COMPACT.match(text):
            y, mo, d = m.groups()
            return dt.date(int(y), int(mo), int(d))
        if m := _WORDS.match(text):
            d1, month, d2, y = m.groups()
            mo = _MONTHS.get(month.lower())
            if mo is not None:
                return dt.date(int(y), mo, int(d1 or d2 or 1))
    except ValueError as err:
        raise _BadDate(f"invalid date {text!r} ({err})") from None
    raise _BadDate(f"unrecognised date {text[:40]!r}")


_MON_YY = re.compile(r"^[A-Za-z]{3}-\d{2}$")


def date_precision(value: Any) -> str | None:
    """How much of a date a registry wrote: ``year`` (``2015``), ``month`` (``2015-09``,
    ``September 2015``, ``Mar-16``) or ``day`` (``2015-09-17``, ``17/09/2015``, ``September
    17, 2015``); None for no date or a spelling :func:`parse_date` does not read."""
    if not isinstance(value, str):
        return None
    return _precision_of(value)


@functools.lru_cache(maxsize=8192)
def _precision_of(value: str) -> str | None:
    text = value.strip()
    if m := _ISO.match(text):
        return "day" if m.group(3) else "month" if m.group(2) else "year"
    if _DMY.match(text) or _YMD_SLASH.match(text) or _COMPACT.match(text):
        return "day"
    if m := _WORDS.match(text):
        return "day" if m.group(1) or m.group(3) else "month"
    if _MON_YY.match(text):
        return "month"
    return None


_CODE_SPECIAL = {
    "UNKNOWN_STATUS": "UNKNOWN",
    "NONE_OPEN_LABEL": "NONE",
    "U_S_FED": "FED",
    "N_A": "NA",
    "NOT_APPLICABLE": "NA",
}


def code(value: Any, field: str) -> str | None:
    """Normalise an enumerated value to the API v2 spelling (``Active, not recruiting`` ->
    ``ACTIVE_NOT_RECRUITING``; ``Double (Participant, Investigator)`` -> ``DOUBLE``)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(field, f"expected text, got {type(value).__name__}")
    return _code_of(value, field.endswith("masking"))


@functools.lru_cache(maxsize=4096)
def _code_of(value: str, masking: bool) -> str | None:
    text = value.strip()
    if not text:
        return None
    if masking and "(" in text and not text.lower().startswith("none"):
        text = text.split("(", 1)[0]
    slug = _NON_CODE.sub("_", text).strip("_").upper()
    return _CODE_SPECIAL.get(slug, slug)


_NON_CODE = re.compile(r"[^A-Za-z0-9]+")


_PHASE_ROMAN = {"I": "1", "II": "2", "III": "3", "IV": "4"}
_PHASE_TOKEN = re.compile(r"\b(IV|III|II|I|[0-4])[AB]?\b")
# EUCTR (via ICTRP) ticks each phase: "Human pharmacology (Phase I): no Therapeutic
# exploratory (Phase II): yes ..."; only the ticked ones are the trial's phases
_PHASE_TICK = re.compile(r"\(\s*phase\s+(IV|III|II|I)\s*\)\s*:\s*(yes|no)?", re.IGNORECASE)
#: phase texts registries use for "no phase given" (WHO ICTRP exports); read as no phase, not
#: reported. ChiCTR's "Retrospective study" marks an observational study (85 of the 103 in the
#: 1,135-trial COVID-19 export are "Observational study"), which ClinicalTrials.gov gives no phase.
NO_PHASE = frozenset({"not selected", "null", "none", "other", "retrospective study"})
#: ChiCTR's other study stages (its registration form, via ICTRP), read as the
#: ClinicalTrials.gov phase they describe: a post-marketing study is phase 4 (ClinicalTrials.gov
#: glossary: "Phase 4: ... after FDA has approved a drug for marketing"); a trial of a new
#: treatment or diagnostic technique, or basic science, has no drug phase: "Not Applicable"
#: ("trials without FDA-defined phases, including trials of devices or behavioral interventions")
_STAGE_PHASE = {
    "post-market": ["PHASE4"], "post market": ["PHASE4"],
    "new treatment measure clinical study": ["NA"],
    "diagnostic new technique clinical study": ["NA"], "diagnostic new technique clincal study": ["NA"],
    "basic science": ["NA"],
}


def phases(value: str, field: str) -> list[str]:
    """Legacy/ICTRP phase text -> v2 codes: ``Phase 2/Phase 3`` -> ``['PHASE2', 'PHASE3']``.

    ``Phase 0`` is ``EARLY_PHASE1`` (as ClinicalTrials.gov relabelled it); ``IIIb`` is phase 3;
    a EUCTR tick list keeps the phases ticked "yes". A text naming no phase raises
    :class:`FieldError`, except the "no phase given" texts of :data:`NO_PHASE`.
    """
    text = " ".join(value.split())
    if not text:
        return []
    low = text.lower()
    if low in {"n/a", "na", "not applicable", "not specified", "0"}:
        return ["NA"]
    if low in NO_PHASE:
        return []
    if low in _STAGE_PHASE:
        return list(_STAGE_PHASE[low])
    if "early" in low:
        return ["EARLY_PHASE1"]
    ticks = _PHASE_TICK.findall(text)
    if ticks:
        out = [f"PHASE{_PHASE_ROMAN[r.upper()]}" for r, answer in ticks if answer.lower() == "yes"]
        return list(dict.fromkeys(out))
    out: list[str] = []
    zero = False
    for tok in _PHASE_TOKEN.findall(text.upper().replace("PHASE", " ")):
        num = _PHASE_ROMAN.get(tok, tok)
        if num == "0":
            zero = True
            continue
        c = f"PHASE{num}"
        if c not in out:
            out.append(c)
    if not out and zero:
        return ["EARLY_PHASE1"]
    if not out:
        raise FieldError(field, f"unrecognised phase {text[:40]!r}")
    return out


_BR = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_WS = re.compile(r"[ \t\r\f\v]+")


def clean_text(value: Any, field: str) -> str:
    """Text from an export: HTML entities decoded, ``<br>`` as line breaks, spaces tidied."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(field, f"expected text, got {type(value).__name__}")
    if value.isprintable() and "  " not in value and "&" not in value and "<" not in value:
        return value.strip()  # no entity, tag, line break, tab or run of spaces: nothing to tidy
    if "&" in value:
        value = html.unescape(value)
    if "<" in value:
        value = _BR.sub("\n", value)
    if "\n" not in value:  # one line (most fields): the same result, without the line loop
        return _WS.sub(" ", value).strip()
    lines = (_WS.sub(" ", ln).strip() for ln in value.split("\n"))
    return "\n".join(ln for ln in lines if ln)


def split_multi(value: str) -> list[str]:
    """Split a ``;``-joined (or ``<br>``-joined) multi-value export field."""
    if not value:
        return []
    parts = re.split(r"[;\n]", value)
    out: list[str] = []
    for p in parts:
        p = p.strip()
        if p and p not in out:
            out.append(p)
    return out


def _empty(key: str) -> Any:
    return Trial.model_fields[key].get_default(call_default_factory=True)


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(v) for v in value if isinstance(v, str))
    return 0


def _too_long(field: str, n: int, registry_id: str | None, many: bool) -> FieldError:
    return FieldError(field, f"{n:,} characters{' in all' if many else ''} (limit {MAX_FIELD_CHARS:,})", registry_id)


def check_sizes(data: dict[str, Any], registry_id: str | None, fields: Fields | None = None) -> None:
    """Empty the oversize text fields of a mapped record (a corrupt or hostile record), naming
    each; an intervention's oversize name or description is emptied in that intervention.

    Without ``fields`` (or with a strict one) the first oversize field raises FieldError.
    """
    fields = fields if fields is not None else Fields(None, registry_id)
    for key, value in data.items():
        if key in ("interventions", "arm_groups") and isinstance(value, list):
            model = Intervention if key == "interventions" else ArmGroup
            for iv in value:
                if not isinstance(iv, dict):
                    continue
                for sub, v in iv.items():
                    if (n := _chars(v)) > MAX_FIELD_CHARS:
                        fields.note(_too_long(f"{key}[].{sub}", n, registry_id, isinstance(v, list)))
                        iv[sub] = model.model_fields[sub].get_default(call_default_factory=True)
            continue
        if (n := _chars(value)) > MAX_FIELD_CHARS:
            if key == "registry_id":
                raise RecordError(key, f"{n:,} characters: not a registry id")
            fields.note(_too_long(key, n, registry_id, isinstance(value, list)))
            data[key] = _empty(key) if key in Trial.model_fields else None


def build_trial(data: dict[str, Any], fields: Fields) -> Trial:
    """Validate a mapped record as a :class:`Trial`; a field the model refuses is emptied and
    noted (a bad registry id is a :class:`RecordError`). A date without a precision is a
    whole day (readers of sources that write partial dates give theirs)."""
    for name in ("start_date", "completion_date"):
        key = f"{name}_precision"
        data[key] = (data.get(key) or "day") if data.get(name) is not None else None
    for _ in range(len(Trial.model_fields) + 1):
        try:
            return Trial.model_validate(data)
        except ValidationError as err:
            for e in err.errors():
                loc = ".".join(str(x) for x in e["loc"])
                key = str(e["loc"][0]) if e["loc"] else ""
                if key in ("registry_id", "registry") or key not in Trial.model_fields:
                    raise RecordError(loc or "record", e["msg"], fields.registry_id) from None
                fields.note(FieldError(loc, e["msg"], fields.registry_id))
                data[key] = _empty(key)
    raise RecordError("record", "the model refuses it", fields.registry_id)  # pragma: no cover
