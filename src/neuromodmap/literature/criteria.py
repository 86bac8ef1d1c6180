"""Explicit, configurable eligibility criteria (YAML profiles) applied to records.

The default profile is the first seed review's: 2000 to April 2025, English, peer-reviewed;
conference abstracts, case reports and non-peer-reviewed items excluded. ``pain`` and
``depression`` profiles add the review question, which decides the topic terms (from the
shared vocabulary) that the screener highlights and, with ``require_topic``, checks.
Every excluded record carries its reason.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neuromodmap import vocabulary
from neuromodmap.literature.records import Record

__all__ = ["CriteriaProfile", "ExclusionRule", "CriteriaResult", "load_profile", "apply_criteria", "PROFILES",
           "CriteriaError", "topic_pattern"]

PROFILES = ("default", "pain", "depression")

_LANGUAGE_CODES = {"en": "english", "eng": "english", "english": "english", "ger": "german", "de": "german",
                   "deu": "german", "fre": "french", "fra": "french", "fr": "french", "spa": "spanish",
                   "es": "spanish", "ita": "italian", "it": "italian", "chi": "chinese", "zho": "chinese",
                   "zh": "chinese", "jpn": "japanese", "ja": "japanese", "por": "portuguese", "pt": "portuguese",
                   "rus": "russian", "ru": "russian", "dut": "dutch", "nld": "dutch", "nl": "dutch",
                   "pol": "polish", "pl": "polish", "kor": "korean", "ko": "korean", "tur": "turkish"}


class CriteriaError(ValueError):
    """A profile that cannot be read or is not valid."""


class ExclusionRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str
    publication_types: list[str] = Field(default_factory=list)
    record_types: list[str] = Field(default_factory=list)
    title_patterns: list[str] = Field(default_factory=list)
    doi_prefixes: list[str] = Field(default_factory=list)
    journal_patterns: list[str] = Field(default_factory=list)


class YearRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: dt.date | None = None
    end: dt.date | None = None


class Stopping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    irrelevant_in_a_row: int | None = Field(default=100, ge=1)
    target_share: float | None = Field(default=None, gt=0, le=1)
    #: the recall the reviewers aim for with this rule, reported with it (PRISMA, methods); the
    #: heuristic rules above do not estimate recall, so this is a declared target, not a measure
    recall_target: float | None = Field(default=None, gt=0, le=1)


class CriteriaProfile(BaseModel):
    """A screening profile: review question, eligibility rules and stopping rule."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    question: str = Field(default="both", pattern="^(pain|depression|both)$")
    years: YearRange = Field(default_factory=YearRange)
    languages: list[str] = Field(default_factory=list)
    include_study_types: list[str] = Field(default_factory=list)
    exclude: dict[str, ExclusionRule] = Field(default_factory=dict)
    require_topic: bool = False
    stopping: Stopping = Field(default_factory=Stopping)
    source: str = ""

    def topic_terms(self) -> list[str]:
        """Regex fragments of the modality and indication terms of this question."""
        terms = [p for m in vocabulary.MODALITIES.values() for p in m.synonyms + m.variants]
        indications = ("pain", "depression") if self.question == "both" else (self.question,)
        for code in indications:
            terms.extend(vocabulary.INDICATIONS[code].synonyms)
        return terms

    def methods_sentence(self) -> str:
        years = ""
        if self.years.start or self.years.end:
            years = f"published {self.years.start or '...'} to {self.years.end or '...'}, "
        langs = f"in {', '.join(self.languages)}, " if self.languages else ""
        reasons = "; ".join(rule.reason for rule in self.exclude.values())
        return (f"Records were eligible if {years}{langs}and of these types: "
                f"{', '.join(self.include_study_types) or 'any'}. Excluded: {reasons or 'none'} "
                f"(profile {self.name}).")


def topic_pattern(profile: CriteriaProfile) -> re.Pattern[str]:
    return vocabulary.compile_synonyms(tuple(profile.topic_terms()))


def _read_yaml(path: Path, label: str) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CriteriaError(f"{label}: cannot read criteria profile ({exc})") from exc
    if not isinstance(data, dict):
        raise CriteriaError(f"{label}: a criteria profile must be a YAML mapping")
    return data


def _builtin(name: str) -> tuple[dict, str]:
    resource = resources.files("neuromodmap.literature") / "profiles" / f"{name}.yaml"
    with resources.as_file(resource) as path:
        return _read_yaml(Path(path), f"profile {name}"), f"neuromodmap profile {name}"


def load_profile(name_or_path: str | os.PathLike = "default", *, question: str | None = None) -> CriteriaProfile:
    """Load a built-in profile (``default``, ``pain``, ``depression``) or a YAML file.

    A profile may say ``extends: default`` (or another built-in) and override keys.
    ``question`` overrides the profile's review question.
    """
    text = str(name_or_path)
    if text in PROFILES:
        data, source = _builtin(text)
    else:
        path = Path(text)
        if not path.is_file():
            raise CriteriaError(f"{path}: no such criteria profile (built-in profiles: {', '.join(PROFILES)})")
        data, source = _read_yaml(path, str(path)), str(path)
    seen = {text}
    while base_name := data.pop("extends", None):  # a chain: my.yaml -> pain -> default
        if base_name not in PROFILES:
            raise CriteriaError(f"{source}: extends unknown profile {base_name!r}")
        if base_name in seen:
            raise CriteriaError(f"{source}: profiles extend each other in a loop ({base_name})")
        seen.add(base_name)
        base, _ = _builtin(base_name)
        base.update(data)
        data = base
    if question:
        data["question"] = question
    data.setdefault("source", source)
    try:
        return CriteriaProfile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CriteriaError(f"{source}: invalid criteria profile ({problems})") from exc


def _languages(value: str) -> set[str]:
    parts = re.split(r"[;,/]|\band\b", value.lower())
    return {_LANGUAGE_CODES.get(p.strip(), p.strip()) for p in parts if p.strip()}


@dataclass
class CriteriaResult:
    """Eligibility of each record: ``record_id``, ``eligible``, ``reason_code``, ``reason``, ``detail``.

    ``detail`` says why a record was excluded, and for an eligible record without any title,
    abstract or keywords, that its topic was left to the reviewer.
    """

    profile: CriteriaProfile
    table: pd.DataFrame = field(repr=False)

    @property
    def excluded(self) -> pd.DataFrame:
        return self.table[~self.table["eligible"]].reset_index(drop=True)

    @property
    def eligible_ids(self) -> list[str]:
        return self.table.loc[self.table["eligible"], "record_id"].tolist()

    def counts_by_reason(self) -> pd.Series:
        return self.excluded.groupby("reason").size().sort_values(ascending=False)

    def methods_sentence(self) -> str:
        counts = "; ".join(f"{reason}: {n}" for reason, n in self.counts_by_reason().items())
        return (f"{len(self.excluded)} of {len(self.table)} records were excluded automatically by the "
                f"{self.profile.name} criteria ({counts or 'none'}).")


def apply_criteria(records: list[Record], profile: CriteriaProfile) -> CriteriaResult:
    """Check every record against the profile; an excluded record gets its first failed rule."""
    compiled = {
        code: (rule, [re.compile(p, re.IGNORECASE) for p in rule.title_patterns],
               [re.compile(p, re.IGNORECASE) for p in rule.journal_patterns],
               {t.lower() for t in rule.publication_types}, {t.upper() for t in rule.record_types})
        for code, rule in profile.exclude.items()
    }
    wanted_languages = {_LANGUAGE_CODES.get(x.lower(), x.lower()) for x in profile.languages}
    topic = topic_pattern(profile) if profile.require_topic else None
    start, end = profile.years.start, profile.years.end
    rows = []
    for record in records:
        code, detail = _check(record, compiled, wanted_languages, start, end, topic, profile)
        rows.append({"record_id": record.record_id, "eligible": code is None, "reason_code": code or "",
                     "reason": _REASONS.get(code, profile.exclude[code].reason if code in profile.exclude else "")
                     if code else "", "detail": detail or ""})
    return CriteriaResult(profile=profile, table=pd.DataFrame(
        rows, columns=["record_id", "eligible", "reason_code", "reason", "detail"]))


_REASONS = {"date_range": "outside the date range", "language": "not in an eligible language",
            "off_topic": "off topic (no neuromodulation or indication term)"}


def _check(record: Record, compiled, wanted_languages, start, end, topic, profile):
    if record.year is not None:
        # to the month where the record has one; a record with a year only is judged by the year
        if record.month:
            published, when = (record.year, record.month), f"{record.year}-{record.month:02d}"
            first, last = (start and (start.year, start.month)), (end and (end.year, end.month))
        else:
            published, when = record.year, str(record.year)
            first, last = (start and start.year), (end and end.year)
        if start is not None and published < first:
            return "date_range", f"published {when}, before {start}"
        if end is not None and published > last:
            return "date_range", f"published {when}, after {end}"
    if wanted_languages and record.language:
        languages = _languages(record.language)
        if languages and not languages & wanted_languages:
            return "language", f"language {record.language}"
    types = {t.lower() for t in record.publication_types}
    for code, (rule, title_res, journal_res, rule_types, rule_records) in compiled.items():
        if types & rule_types:
            return code, f"publication type {', '.join(sorted(t for t in record.publication_types if t.lower() in rule_types))}"
        if record.record_type and record.record_type.upper() in rule_records:
            return code, f"record type {record.record_type}"
        if any(p.search(record.title) for p in title_res):
            return code, "title"
        if record.doi and any(record.doi.startswith(prefix.lower()) for prefix in rule.doi_prefixes):
            return code, f"DOI {record.doi}"
        if record.journal and any(p.search(record.journal) for p in journal_res):
            return code, f"journal {record.journal}"
    if topic is not None:
        text = " ".join([record.title, record.abstract, " ".join(record.keywords), " ".join(record.mesh_terms)])
        if not text.strip():
            # a record kept on its DOI or journal and pages has no words to judge: the reviewer decides
            return None, "no title, abstract or keywords: topic left to the reviewer"
        if not topic.search(text):
            return "off_topic", f"no neuromodulation or {profile.question} term in title, abstract or keywords"
    return None, None
