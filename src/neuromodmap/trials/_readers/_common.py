"""Pieces every trial reader shares: the record wrapper, field errors, value normalisers."""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass
from typing import Any

from neuromodmap.trials.models import Trial

__all__ = [
    "ImportedRecord",
    "FieldError",
    "TrialFileError",
    "MAX_FIELD_CHARS",
    "MAX_RECORD_BYTES",
    "parse_date",
    "code",
    "phases",
    "clean_text",
    "split_multi",
    "check_sizes",
]

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
    """

    trial: Trial
    raw: dict[str, Any]
    source: str
    location: str
    as_of: dt.date | None = None
    raw_json: str | None = None


class FieldError(ValueError):
    """A record whose field has a wrong type or value; the record is skipped and reported."""

    def __init__(self, field: str, reason: str, registry_id: str | None = None):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.registry_id = registry_id


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
_DMY = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_WORDS = re.compile(r"^(?:(\d{1,2})\s+)?([A-Za-z]+)\.?\s+(?:(\d{1,2}),?\s+)?(\d{4})$")


def parse_date(value: Any, field: str) -> dt.date | None:
    """Parse the date spellings registries use; a month-only date becomes its first day.

    ``2015-09``, ``2015-09-17``, ``December 2015``, ``August 1, 2017``, ``17 August 2017``,
    ``20/03/2020`` (day first, as WHO ICTRP writes it) and ``20200320``.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(field, f"expected a date string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    try:
        if m := _ISO.match(text):
            y, mo, d = m.groups()
            return dt.date(int(y), int(mo or 1), int(d or 1))
        if m := _DMY.match(text):
            d, mo, y = m.groups()
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
        raise FieldError(field, f"invalid date {text!r} ({err})") from None
    raise FieldError(field, f"unrecognised date {text[:40]!r}")


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
    text = value.strip()
    if not text:
        return None
    if field.endswith("masking") and "(" in text and not text.lower().startswith("none"):
        text = text.split("(", 1)[0]
    slug = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()
    return _CODE_SPECIAL.get(slug, slug)


_PHASE_ROMAN = {"I": "1", "II": "2", "III": "3", "IV": "4"}


def phases(value: str, field: str) -> list[str]:
    """Legacy/ICTRP phase text -> v2 codes: ``Phase 2/Phase 3`` -> ``['PHASE2', 'PHASE3']``."""
    text = value.strip()
    if not text:
        return []
    low = text.lower()
    if low in {"n/a", "na", "not applicable", "not specified", "0"}:
        return ["NA"]
    if "early" in low:
        return ["EARLY_PHASE1"]
    out: list[str] = []
    for tok in re.findall(r"\b(IV|III|II|I|[0-4])\b", text.upper().replace("PHASE", " ")):
        num = _PHASE_ROMAN.get(tok, tok)
        if num == "0":
            continue
        c = f"PHASE{num}"
        if c not in out:
            out.append(c)
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
    if "&" in value:
        value = html.unescape(value)
    if "<" in value:
        value = _BR.sub("\n", value)
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


def check_sizes(data: dict[str, Any], registry_id: str | None) -> None:
    """Refuse oversize text fields (a corrupt or hostile record), naming the field."""
    for key, value in data.items():
        if isinstance(value, str):
            if len(value) > MAX_FIELD_CHARS:
                raise FieldError(
                    key, f"{len(value):,} characters (limit {MAX_FIELD_CHARS:,})", registry_id
                )
        elif isinstance(value, list):
            total = sum(len(v) for v in value if isinstance(v, str))
            if total > MAX_FIELD_CHARS:
                raise FieldError(
                    key, f"{total:,} characters in all (limit {MAX_FIELD_CHARS:,})", registry_id
                )
