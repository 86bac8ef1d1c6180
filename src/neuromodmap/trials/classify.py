"""Rule-based, evidence-carrying classification of registered trials.

Each :class:`~neuromodmap.trials.models.Trial` gets the labels of the CLI contract
(``neuromod``, ``modalities``, ``modality_group``, ``indication``, ``pain_subtype``,
``depression_subtype``, ``chronic_pain``, ``targets``, ``invasive``), and every decided
label carries its evidence: the field and the matched text.

How it decides
--------------
1. **Prefilter.** One compiled alternation of every modality term in
   :mod:`neuromodmap.vocabulary`. The ~97 % of records with no stimulation term skip
   steps 2-3 and cost two or three regex scans.
2. **Mentions.** Each matched term is mapped to its modality code. Spelled-out names
   ("spinal cord stimulation") count alone; abbreviations ("SCS", "DBS", "VNS", "TENS")
   count only when written as acronyms, when the record does not spell out another sense
   ("systemic corticosteroids", "dried blood spot", "verbal numeric scale") and when the
   record spells out the stimulation sense or the sentence talks about stimulation.
3. **Tested or merely mentioned.** A modality is the trial's own intervention when it is
   named in the title or in a structured DEVICE/PROCEDURE intervention, or in sentences
   that describe the study (aims, arms, sessions, sham, doses). Sentences that use
   stimulation to *measure* (motor evoked potentials, cortical excitability, nerve
   locators, intra-operative mapping) or that are *background* (other studies, approved
   options, exclusion criteria) do not count.
4. **Indication** from conditions and title first, then the summary, then the description,
   weighted in that order; **subtypes**, **chronic pain** and **targets** from the
   vocabulary patterns (targets only in the sentences that describe the stimulation).

Decisions on the traps named in issue 2 are documented in ``docs/trials_classify.md``.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from neuromodmap import vocabulary
from neuromodmap._utils import defuse_formula
from neuromodmap.trials import _classify_rules as R
from neuromodmap.trials.models import Classification, Label, Trial

__all__ = ["CLASSIFIER_VERSION", "classify", "classify_many", "classification_row"]

#: bump when a rule changes; stored beside every label so old and new runs can be told apart
CLASSIFIER_VERSION = "rules-1.1"

_TITLE_FIELDS = ("title", "official_title", "acronym")
_KEYWORD_FIELDS = ("conditions", "keywords", "condition_mesh")
_BRAIN_GROUPS = {"noninvasive_cortical", "deep_brain", "motor_cortex", "convulsive", "ultrasound"}
_SNIPPET = 80


@dataclass(frozen=True)
class _Mention:
    code: str
    kind: str
    field: str
    text: str
    start: int
    end: int


_label = Label


class _Record:
    """A trial's text fields with their lower-cased text and capital runs, computed once."""

    __slots__ = ("fields", "texts", "_low", "_runs", "found")

    def __init__(self, fields: list[tuple[str, str]]):
        self.fields = fields
        self.texts = dict(fields)
        self._low: dict[str, str] = {}
        self._runs: dict[str, frozenset[str]] = {}
        #: the finders' anchors in the whole record (R.anchors_in), when known
        self.found: frozenset[str] | None = None

    def low(self, field: str) -> str:
        if field not in self._low:
            self._low[field] = self.texts[field].lower()
        return self._low[field]

    def runs(self, field: str) -> frozenset[str]:
        if field not in self._runs:
            self._runs[field] = R.capital_runs(self.texts[field])
        return self._runs[field]

    def find(self, finder: R.TermFinder, field: str, exact: bool = False):
        text = self.texts.get(field)
        if not text:
            return iter(())
        low = self.low(field)
        runs = self.runs(field) if finder.upper else frozenset()
        if not finder.present(low, runs, self.found):
            return iter(())
        return finder.finditer(text, low, runs, exact=exact)


#: intervention types that can be a stimulation arm (a DRUG, BEHAVIORAL or DIAGNOSTIC_TEST cannot)
_STIMULATION_TYPES = ("DEVICE", "PROCEDURE", "OTHER", "RADIATION", "")


def _intervention_lines(trial: Trial) -> list[tuple[int, str]]:
    """(index in ``trial.interventions``, text) of each intervention that can be a stimulation arm."""
    out = []
    for i, iv in enumerate(trial.interventions):
        if (iv.type or "").upper() in _STIMULATION_TYPES:
            line = " ".join([iv.name, *iv.other_names, iv.description]).strip()
            if line:
                out.append((i, line))
    return out


def _fields(trial: Trial, lines: list[tuple[int, str]] | None = None) -> list[tuple[str, str]]:
    """The record's text by field name, structured fields first when present."""
    out = [("title", trial.title), ("official_title", trial.official_title), ("acronym", trial.acronym)]
    for name, values in (("conditions", trial.conditions), ("keywords", trial.keywords),
                         ("condition_mesh", trial.condition_mesh)):
        if values:
            out.append((name, "; ".join(values)))
    # only an intervention that is itself a device or procedure can be a stimulation arm;
    # one line per intervention, so each is its own "sentence"
    lines = _intervention_lines(trial) if lines is None else lines
    if lines:
        out.append(("interventions", "\n".join(line for _, line in lines)))
    if trial.intervention_mesh:
        out.append(("intervention_mesh", "; ".join(trial.intervention_mesh)))
    out += [("brief_summary", trial.brief_summary), ("detailed_description", trial.detailed_description)]
    return [(f, t) for f, t in out if t]


# --------------------------------------------------------------------------- arms
#: arm roles that say "this arm is the control": an intervention given only there is not tested
_COMPARATOR_ARMS = frozenset({"ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR", "SHAM_COMPARATOR", "NO_INTERVENTION"})
_NAME_NOISE = re.compile(r"\b(?:group|arm|the|and|with|plus)\b|\([^)]*\)")
#: intervention names that say "control" and so never mark the experimental arm, even when
#: the title says "randomised control study"
_CONTROL_NAME = re.compile(r"\b(?:control|sham|placebo|usual|standard|conventional|waitlist|wait list|no treatment"
                           r"|routine|comparator)\b")
#: a comparator intervention that imitates the stimulation: "sham rTMS", "placebo TENS (device off)"
_SHAM = re.compile(r"\bsham\b|\bplacebo\b|\binactive\b|\bswitched off\b|\bturned off\b|\bdetuned\b", re.I)
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _words(text: str) -> str:
    return " " + " ".join(_NOT_WORD.sub(" ", text.lower()).split()) + " "


class _Design:
    """The trial's arms, which arm each intervention is given in, and which arms are the
    experimental ones: those the registry types EXPERIMENTAL or, when no arm is typed so
    (all "active comparators", or no types at all), those whose intervention the title names."""

    __slots__ = ("trial", "arms", "arms_of", "experimental", "by")

    def __init__(self, trial: Trial):
        self.trial = trial
        self.arms = {a.label.strip().lower(): a for a in trial.arm_groups if a.label.strip()}
        self.arms_of: list[set[str]] = []
        for iv in trial.interventions:
            keys = {label.strip().lower() for label in iv.arm_group_labels} & self.arms.keys()
            if not keys:  # API v2 arms name their interventions too: "Device: TENS"
                name = f"{(iv.type or '').replace('_', ' ')}: {iv.name}".lower()
                keys = {k for k, a in self.arms.items()
                        if name in {n.strip().lower() for n in a.intervention_names}}
            self.arms_of.append(keys)
        self.experimental = {k for k, a in self.arms.items() if a.type == "EXPERIMENTAL"}
        self.by = "arm type"
        if not self.experimental and self.arms:
            title = _words(f"{trial.title} {trial.official_title}")
            for iv, keys in zip(trial.interventions, self.arms_of, strict=True):
                name = _words(_NAME_NOISE.sub(" ", iv.name.lower())).strip()
                if len(name) >= 3 and f" {name} " in title and not _CONTROL_NAME.search(name):
                    self.experimental |= keys
            self.by = "title"

    def _where(self, keys: set[str]) -> str:
        return ", ".join(f"'{self.arms[k].label}' ({self.arms[k].type or 'no type'})" for k in sorted(keys))

    def role(self, index: int, names_modality) -> tuple[str, str] | None:
        """``("experimental" | "comparator" | "co-intervention", where)`` for intervention
        ``index``, or None when the registry's arms do not say. ``names_modality(j)`` is True
        when intervention ``j`` names a modality itself."""
        keys = self.arms_of[index]
        if not keys or not self.experimental:
            return None
        tested = keys & self.experimental
        if not tested:
            if self.by == "arm type" and any(self.arms[k].type not in _COMPARATOR_ARMS for k in keys):
                return None  # an arm typed OTHER (or untyped) beside EXPERIMENTAL ones: role unclear
            return "comparator", self._where(keys)
        controls = keys - self.experimental
        if controls:
            # given in the control arms too, while another intervention is given only in the
            # experimental arms: that other one is what the trial tests ("PEMF + TENS vs sham
            # PEMF + TENS"); a stimulation intervention shared by active and sham arms is not
            for j, other in enumerate(self.arms_of):
                if j != index and other & tested and not other & controls and not names_modality(j):
                    iv = self.trial.interventions[j]
                    return "co-intervention", (f"{self._where(keys)}; tested: {(iv.type or '').lower()} "
                                               f"'{iv.name}'")
        return "experimental", self._where(tested)


@functools.lru_cache(maxsize=4096)
def _lexeme_of(matched: str) -> R.Lexeme | None:
    for lx in R.LEXEMES:
        if lx.pattern.fullmatch(matched):
            return lx
    return None


def _sentence(text: str, start: int, end: int, reach: int = 300) -> str:
    """The sentence around a match, at most ``reach`` characters either side."""
    lo, hi = max(0, start - reach), min(len(text), end + reach)
    a = max(text.rfind(c, lo, start) for c in ".!?;\n") + 1
    a = max(a, lo)
    ends = [i for i in (text.find(c, end, hi) for c in ".!?;\n") if i >= 0]
    return text[a:min(ends) if ends else hi]


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


def _is_acronym_form(matched: str) -> bool:
    if " " in matched or len(matched) > 6:
        return True
    return sum(c.isupper() for c in matched) >= 2 or matched.lower() in ("h-coil", "h coil")


# --------------------------------------------------------------------------- modalities
def _mentions(record: _Record, keys) -> list[_Mention]:
    out = []
    for field, text in record.fields:
        for m in R.MODALITY_TERMS.finditer(text, record.low(field), exact=True, keys=keys):
            lx = _lexeme_of(m.group(0))
            if lx is None:
                continue
            if lx.kind == "device" and not m.group(0)[0].isupper():
                continue  # brand names are capitalised: "Percept" the device, not "percept"
            if lx.kind in ("abbrev", "ambiguous", "weak") and not _is_acronym_form(m.group(0)):
                continue
            kind = lx.kind
            if kind == "name" and " " not in m.group(0) and m.group(0).isupper():
                kind = "abbrev"  # "TACS", "ITBS" in capitals: an acronym like any other, not "tACS"
            out.append(_Mention(lx.code, kind, field, m.group(0), m.start(), m.end()))
    return out


_PARENTHESISED = re.compile(r"\(\s*([A-Za-z][A-Za-z0-9-]{1,9})\b")


def _defined_acronyms(record: _Record) -> dict[str, str]:
    """Acronyms the record defines as "long form (ACRONYM)" (Schwartz & Hearst 2003, PSB)."""
    out: dict[str, str] = {}
    for _, text in record.fields:
        for m in _PARENTHESISED.finditer(text):
            acronym = m.group(1)
            if sum(c.isupper() for c in acronym) < 2 or acronym.upper() in out:
                continue
            long_form = _long_form(acronym, text[max(0, m.start() - 90): m.start()].rstrip())
            if long_form:
                out[acronym.upper()] = long_form
    return out


def _long_form(acronym: str, before: str) -> str | None:
    """The words before a parenthesised acronym that spell it: each letter found right to
    left, the first at the start of a word."""
    letters = [c.lower() for c in acronym if c.isalnum()]
    i = len(before) - 1
    for j in range(len(letters) - 1, -1, -1):
        while i >= 0 and (before[i].lower() != letters[j]
                          or (j == 0 and i > 0 and before[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return None
        i -= 1
    long_form = before[i + 1:].strip()
    words = long_form.split()
    return long_form if 0 < len(words) <= len(letters) + 3 else None


def _arm_roles(trial: Trial, lines: list[tuple[int, str]], accepted) -> dict[str, list]:
    """The arm role of each structured intervention that names a modality, by modality code."""
    starts, pos = [], 0
    for _, line in lines:
        starts.append(pos)
        pos += len(line) + 1
    design = _Design(trial)
    named: dict[tuple[int, bool], set[str]] = {}

    def codes_of(j: int, other_names: bool = True) -> set[str]:
        """The modalities intervention ``j`` names (in its name, and its other names)."""
        if (j, other_names) not in named:
            iv = trial.interventions[j]
            text = " ".join([iv.name, *iv.other_names]) if other_names else iv.name
            named[j, other_names] = {lx.code for m in R.MODALITY_TERMS.finditer(text, exact=True)
                                     if (lx := _lexeme_of(m.group(0))) is not None}
        return named[j, other_names]

    def sham(j: int) -> bool:
        iv = trial.interventions[j]
        return (any(design.arms[k].type in ("SHAM_COMPARATOR", "PLACEBO_COMPARATOR") for k in design.arms_of[j])
                or bool(_SHAM.search(" ".join([iv.name, *iv.other_names, iv.description]))))

    found: dict[str, list] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for m, _ in accepted:
        if m.field != "interventions":
            continue
        index = lines[bisect.bisect_right(starts, m.start) - 1][0]
        if (m.code, index) in seen:
            continue
        seen.add((m.code, index))
        found[m.code].append((index, design.role(index, lambda j, code=m.code: code in codes_of(j))))
    roles: dict[str, list] = {}
    for code, items in found.items():
        out = [role for _, role in items]
        tested = [j for j, role in items if role and role[0] == "experimental"]
        controls = [(j, role) for j, role in items if role and role[0] == "comparator"]
        if tested and controls and not any(code in codes_of(j, False) for j in tested) \
                and not any(sham(j) for j, _ in controls):
            # not the name of an experimental intervention, only part of its description or other
            # names ("ELDOA ... along with hot packs, TENS"), and given in a comparator arm too,
            # not as a sham: a co-intervention ("high- vs low-frequency rTMS" names it, and counts)
            out = [("co-intervention", f"{design._where(design.arms_of[tested[0]])} and {controls[0][1][1]}")]
        roles[code] = out
    return roles


def _modalities(record: _Record, keys, evidence: list[Label], trial: Trial | None = None,
                lines: list[tuple[int, str]] = ()) -> tuple[list[str], list[_Mention]]:
    """Return the tested modality codes and the mentions that decided them."""
    texts = record.texts
    mentions = _mentions(record, keys)
    if not mentions:
        return [], []
    blob = "\n".join(texts.values())
    named = {m.code for m in mentions if m.kind == "name"}
    memo: dict[tuple[int, str], re.Match | None] = {}

    def cue(regex: re.Pattern, text: str) -> re.Match | None:
        # many mentions share a sentence: search each sentence for each cue once
        key = (id(regex), text)
        if key not in memo:
            memo[key] = regex.search(text)
        return memo[key]

    rejected: dict[str, str] = {}

    accepted: list[tuple[_Mention, str]] = []
    defined: dict[str, str] | None = None
    for m in mentions:
        text = texts[m.field]
        sentence = _sentence(text, m.start, m.end)
        if m.kind != "name":
            key = m.text.upper()
            other = R.OTHER_SENSES.get(key)
            if other is not None and m.code not in named:
                hit = cue(other, blob)
                if hit:
                    rejected.setdefault(m.code, f"{m.text} = '{hit.group(0)}'")
                    continue
            if key == "CES" and text[m.end:m.end + 2].upper() == "-D":
                continue
            if defined is None:
                defined = _defined_acronyms(record)
            long_form = defined.get(key)
            if long_form and m.code not in named:
                sense = R.MODALITY_TERMS.search(long_form)
                same = sense and (lx := _lexeme_of(sense.group(0))) and lx.code == m.code
                if not same and not R.STIM_CONTEXT.search(long_form):
                    # "Tele Minas Saude (TMS)", "Dry Blood Spot (DBS)": the record says what it means
                    rejected.setdefault(m.code, f"{m.text} = '{_snippet(long_form)}'")
                    continue
            if m.code not in named and not cue(R.STIM_CONTEXT, sentence):
                if not (key in R.RECORD_CONTEXT_OK and cue(R.STIM_CONTEXT, blob)):
                    rejected.setdefault(m.code, f"'{m.text}' without stimulation context")
                    continue
        accepted.append((m, sentence))
    strong = {m.code for m, _ in accepted if m.kind != "weak"}
    accepted = [(m, s) for m, s in accepted if m.code in strong]

    score: dict[str, float] = defaultdict(float)
    measured: dict[str, int] = defaultdict(int)
    best: dict[str, tuple[float, _Mention, str]] = {}
    in_title: set[str] = set()
    title_population: set[str] = set()
    summary_aim: set[str] = set()

    def measuring_here(m: _Mention, sentence: str) -> bool:
        return bool(cue(R.MEASUREMENT_CUES, sentence)) and not _repetitive(m, sentence)

    for m, sentence in accepted:
        if m.field in _TITLE_FIELDS or m.field in _KEYWORD_FIELDS or m.field == "intervention_mesh":
            measuring = cue(R.MEASUREMENT_CUES, sentence) and not _repetitive(m, sentence)
            weight = 0.0 if measuring else 3.0
            if measuring:
                measured[m.code] += 1
        elif m.field == "interventions":
            weight = 4.0
        else:
            summary = m.field == "brief_summary"
            if cue(R.MEASUREMENT_CUES, sentence) and not _repetitive(m, sentence):
                measured[m.code] += 1
                weight = 0.0
            elif cue(R.STRONG_INTERVENTION_CUES, sentence):
                weight = 2.0
            elif cue(R.INTERVENTION_CUES, sentence):
                weight = 0.5 if cue(R.BACKGROUND_CUES, sentence) else (2.0 if summary else 1.5)
            else:
                weight = 0.0 if cue(R.BACKGROUND_CUES, sentence) else (0.5 if summary else 0.25)
        before = texts[m.field][max(0, m.start - 60): m.start]
        population = bool(R.POPULATION_BEFORE.search(before) or R.TREATED_POPULATION_BEFORE.search(before))
        if weight and population:
            weight = 0.25  # "after STN DBS", "candidates for DBS": the population, not the arm
            if m.field in _TITLE_FIELDS:
                title_population.add(m.code)
        elif m.field == "brief_summary" and cue(R.AIM_CUES, sentence) and not measuring_here(m, sentence):
            summary_aim.add(m.code)
        score[m.code] += weight
        if weight >= 3.0:
            in_title.add(m.code)
        if weight > best.get(m.code, (-1.0,))[0]:
            best[m.code] = (weight, m, sentence)

    # the registry's arms overrule the text: a modality given only in comparator arms, or as
    # a co-intervention in every arm beside the tested one, is not the trial's intervention
    tested_in: dict[str, str] = {}
    if trial is not None and trial.arm_groups and lines:
        for code, roles in _arm_roles(trial, lines, accepted).items():
            if code not in score:
                continue
            known = [r for r in roles if r is not None]
            if roles and len(known) == len(roles) and all(r[0] != "experimental" for r in known):
                role, where = known[0]
                rejected[code] = (f"only in comparator arms {where}" if role == "comparator"
                                  else f"co-intervention in every arm: {where}")
                evidence.append(_label(label="arm_role", value=role, field="arm_groups",
                                       text=_snippet(f"{code}: {where}")))
                del score[code]
                in_title.discard(code)
            else:
                tested_in.update((code, r[1]) for r in known if r[0] == "experimental")
    head = " ".join(texts.get(f, "") for f in ("title", "official_title", "brief_summary"))
    codes = []
    top = max(score.values(), default=0.0)
    for code, s in score.items():
        if in_title and code not in in_title and (s < 3.0 or s < 0.5 * top):
            # the title names the trial's modality; another one named only in the text
            # is usually a comparator in the background
            rejected.setdefault(code, "named only in the text beside the title's modality")
            continue
        if code in title_population and code not in in_title and code not in summary_aim:
            # "L-dopa versus agonists after STN DBS": every aim names DBS as the setting
            rejected.setdefault(code, "names the trial's population or setting, not its arm")
            continue
        if code not in in_title and measured.get(code, 0) >= 2 and s < 2.0 * measured[code]:
            rejected.setdefault(code, "used mostly to measure (excitability, evoked potentials)")
            continue
        if s < 2.0:
            if measured.get(code):
                rejected.setdefault(code, "used only to measure or locate")
            elif s > 0:
                rejected.setdefault(code, "mentioned only in background")
            continue
        if code == "fus" and (not R.FUS_FUNCTIONAL.search(head) or R.FUS_ABLATION.search(texts.get("title", ""))):
            rejected.setdefault(code, "focused ultrasound ablation outside the brain's functional targets")
            continue
        codes.append(code)
    if len(codes) > 1 and R.GENERIC in codes:
        codes.remove(R.GENERIC)
    codes.sort(key=lambda c: list(vocabulary.MODALITIES).index(c))

    for code in codes:
        _, m, _ = best[code]
        evidence.append(_label(label="modality", value=code, field=m.field, text=_snippet(m.text)))
        if code in tested_in:
            evidence.append(_label(label="arm_role", value="experimental", field="arm_groups",
                                   text=_snippet(f"{code}: {tested_in[code]}")))
    if not codes:
        for code, why in rejected.items():
            evidence.append(_label(label="neuromod", value="false", field="rule", text=_snippet(f"{code}: {why}")))
    chosen = [best[c][1] for c in codes]
    return codes, [m for m, _ in accepted if m.code in codes] or chosen


def _repetitive(m: _Mention, sentence: str) -> bool:
    """True if a TMS mention is a treatment protocol (rTMS, theta burst), not a probe."""
    if m.code != "tms":
        return m.code not in ("pns", "mcs", "other_neuromod", "tens")
    low = sentence.lower()
    return any(w in low for w in ("rtms", "repetitive", "theta", "itbs", "ctbs", "sham", "sessions", "deep tms"))


# --------------------------------------------------------------------------- indication
def _count(record: _Record, finder: R.TermFinder, negative, field: str, cap: int = 3) -> tuple[int, str | None]:
    n = 0
    first = None
    text = record.texts[field]
    for m in record.find(finder, field):
        if negative is not None and negative.search(text[max(0, m.start() - 40): m.end() + 25]):
            continue
        n += 1
        first = first or m.group(0)
        if n >= cap:
            break
    return n, first


def _indication(record: _Record, evidence: list[Label]) -> str:
    weights = {"title": 3.0, "official_title": 3.0, "conditions": 3.0, "keywords": 2.0, "condition_mesh": 3.0,
               "brief_summary": 1.0, "detailed_description": 0.3}
    pain = dep = 0.0
    threshold = 1.8
    pain_ev: tuple[float, str, str] | None = None
    dep_ev: tuple[float, str, str] | None = None
    for field, weight in weights.items():
        if not record.texts.get(field):
            continue
        if field == "detailed_description":
            if pain == 0 and dep == 0:
                break  # silent title and summary: the description's passing mentions don't decide
            # the description adds at most 0.3 x 3 to each score: read it only if that can
            # change the outcome
            settled = [s >= threshold or s + 0.9 < threshold for s in (pain, dep)]
            if all(settled) and not (pain >= threshold and dep >= threshold):
                break
        n, hit = _count(record, R.PAIN, R.PAIN_NOT, field)
        if n:
            pain += weight * n
            if pain_ev is None or weight > pain_ev[0]:
                pain_ev = (weight, field, hit)
        n, hit = _count(record, R.DEPRESSION, R.DEPRESSION_NOT, field)
        if n:
            dep += weight * n
            if dep_ev is None or weight > dep_ev[0]:
                dep_ev = (weight, field, hit)
    is_pain, is_dep = pain >= threshold, dep >= threshold
    if is_pain and is_dep:
        # both only when neither is a passing mention beside the other
        if dep < 0.5 * pain:
            is_dep = False
        elif pain < 0.5 * dep:
            is_pain = False
    value = "both" if is_pain and is_dep else "pain" if is_pain else "depression" if is_dep else "other"
    for flag, ev in ((is_pain, pain_ev), (is_dep, dep_ev)):
        if flag and ev:
            evidence.append(_label(label="indication", value=value, field=ev[1], text=_snippet(ev[2])))
    return value


@functools.lru_cache(maxsize=2048)
def _subtype_of(matched: str, kind: str) -> str | None:
    table = R.PAIN_SUBTYPES if kind == "pain" else R.DEPRESSION_SUBTYPES
    return next((code for code, pattern in table.items() if pattern.fullmatch(matched)), None)


def _subtypes(record: _Record, kind: str, evidence: list[Label]) -> list[str]:
    finder = R.PAIN_SUBTYPE_TERMS if kind == "pain" else R.DEPRESSION_SUBTYPE_TERMS
    label = f"{kind}_subtype"
    found: dict[str, tuple[str, str]] = {}
    for group in (_TITLE_FIELDS + _KEYWORD_FIELDS + ("brief_summary",), ("detailed_description",)):
        for field in group:
            for m in record.find(finder, field):
                code = _subtype_of(m.group(0), kind)
                if code is None or code in found:
                    continue
                if code == "acute" and field == "detailed_description":
                    continue  # a passing "after surgery" deep in the text does not make pain acute
                found[code] = (field, m.group(0))
        if found:
            break
    if "cluster_headache" in found and "migraine" in found and "migraine" not in found["migraine"][1].lower():
        del found["migraine"]  # "headache" inside "cluster headache"
    table = R.PAIN_SUBTYPES if kind == "pain" else R.DEPRESSION_SUBTYPES
    order = list(table)
    codes = sorted(found, key=order.index)
    for code in codes:
        evidence.append(_label(label=label, value=code, field=found[code][0], text=_snippet(found[code][1])))
    return codes


def _chronic(record: _Record, subtypes: list[str], evidence: list[Label]) -> bool:
    texts = record.texts
    title = " ".join(texts.get(f, "") for f in _TITLE_FIELDS + _KEYWORD_FIELDS)
    summary = texts.get("brief_summary", "")

    def say(value: bool, field: str, text: str) -> bool:
        evidence.append(_label(label="chronic_pain", value=str(value).lower(), field=field, text=_snippet(text)))
        return value

    # explicit words beat implied ones; the title beats the summary
    for field, text in (("title", title), ("brief_summary", summary)):
        chronic, acute = R.CHRONIC_WORDS.search(text), R.ACUTE_PAIN.search(text)
        if chronic:
            return say(True, field, chronic.group(0))
        if acute:
            return say(False, field, acute.group(0))
        if field == "title":
            if "acute" in subtypes:
                return say(False, "pain_subtype", "acute")
            chronic_sub = [s for s in subtypes if s in R.CHRONIC_SUBTYPES]
            if chronic_sub:
                return say(True, "pain_subtype", chronic_sub[0])
    m = R.CHRONIC_PAIN.search(summary)
    if m:
        return say(True, "brief_summary", m.group(0))
    return say(True, "rule", "pain without an acute setting")


# --------------------------------------------------------------------------- targets
def _targets(codes: list[str], mentions: list[_Mention], record: _Record, evidence: list[Label]) -> list[str]:
    texts = record.texts
    groups = {vocabulary.group_of(c) for c in codes}
    allowed = set()
    if groups & _BRAIN_GROUPS or R.GENERIC in codes:
        allowed |= {"superficial", "deep"}
    if groups - _BRAIN_GROUPS or R.GENERIC in codes:
        allowed |= {"spinal", "peripheral"}
    found: dict[str, tuple[str, str]] = {}
    seen = set()
    for m in mentions:
        text = texts[m.field]
        sentence = _sentence(text, m.start, m.end)
        if (m.field, sentence) in seen:
            continue
        seen.add((m.field, sentence))
        for code, pattern in R.TARGETS.items():
            if code in found or vocabulary.TARGETS[code].depth not in allowed:
                continue
            hit = pattern.search(sentence)
            if hit:
                found[code] = (m.field, hit.group(0))
    for code in codes:
        implied = R.IMPLIED_TARGET.get(code)
        if implied and implied not in found:
            found[implied] = ("modality", code)
    for child, parent in R.TARGET_PARENT.items():
        if child in found:
            found.pop(parent, None)
    order = list(vocabulary.TARGETS)
    out = sorted(found, key=order.index)
    for code in out:
        evidence.append(_label(label="target", value=code, field=found[code][0], text=_snippet(found[code][1])))
    return out


# --------------------------------------------------------------------------- public API
def classify(trial: Trial) -> Classification:
    """Classify one trial; every decided label carries its evidence.

    Parameters
    ----------
    trial : Trial
        A normalised registry record. Structured fields (conditions, DEVICE/PROCEDURE
        interventions, MeSH terms) are used when present; text-only records work too.

    Returns
    -------
    Classification
        ``neuromod`` is True when the trial tests a neuromodulation intervention as an arm.
        ``chronic_pain`` is None unless the indication is pain (or both); ``invasive`` is
        None unless ``neuromod``.
    """
    lines = _intervention_lines(trial)
    record = _Record(_fields(trial, lines))
    evidence: list[Label] = []
    codes: list[str] = []
    mentions: list[_Mention] = []
    blob = "\n".join(text for _, text in record.fields)
    low, runs = blob.lower(), R.capital_runs(blob)
    record.found = found = R.anchors_in(low)
    if R.MODALITY_TERMS.present(low, runs, found):  # the prefilter: ~97 % of records stop here
        codes, mentions = _modalities(record, R.MODALITY_TERMS.keys_in(low, runs, found), evidence, trial, lines)
    derived = vocabulary.labels_from_modalities(codes)
    neuromod = derived["neuromod"]
    indication = _indication(record, evidence)
    pain_subtype = depression_subtype = []
    chronic = None
    if indication in ("pain", "both"):
        pain_subtype = _subtypes(record, "pain", evidence)
        chronic = _chronic(record, pain_subtype, evidence)
        setting = evidence[-1].text.lower()
        if chronic is False and "acute" not in pain_subtype and not R.EXPERIMENTAL_PAIN.search(setting):
            # pain in an acute setting (labour, surgery, a procedure) is the "acute" subtype
            pain_subtype = sorted(pain_subtype + ["acute"], key=list(vocabulary.PAIN_SUBTYPES).index)
            evidence.append(_label(label="pain_subtype", value="acute", field=evidence[-1].field,
                                  text=evidence[-1].text))
    if indication in ("depression", "both"):
        depression_subtype = _subtypes(record, "depression", evidence)
    targets = _targets(codes, mentions, record, evidence) if neuromod else []
    invasive = derived["invasive"]
    if neuromod:
        why = next((c for c in codes if vocabulary.modality(c).invasive), codes[0])
        evidence.append(_label(label="invasive", value=str(invasive).lower(), field="modality", text=why))
    return Classification(
        registry_id=trial.registry_id, neuromod=neuromod, modalities=codes, modality_group=derived["modality_group"],
        indication=indication, pain_subtype=pain_subtype, depression_subtype=depression_subtype,
        chronic_pain=chronic, targets=targets, invasive=invasive, evidence=evidence,
    )


def classify_many(trials: Iterable[Trial]) -> Iterator[Classification]:
    """Classify trials lazily, one at a time (constant memory for any corpus size)."""
    for trial in trials:
        yield classify(trial)


def _flag(value: bool | None) -> str:
    return "" if value is None else str(value).lower()


def format_evidence(evidence: Iterable[Label]) -> str:
    """One readable string: ``label=value@field:'text'; ...``."""
    return "; ".join(f"{e.label}={e.value}@{e.field}:'{e.text.replace(chr(39), chr(8217))}'" for e in evidence)


def classification_row(c: Classification) -> dict:
    """The CSV row of the ``trials classify`` contract for one classification.

    Text that comes from the registry record (the id, the evidence quotes) is passed through
    :func:`~neuromodmap._utils.defuse_formula`: no cell can start a spreadsheet formula.
    """
    return {
        "registry_id": defuse_formula(c.registry_id),
        "neuromod": _flag(c.neuromod),
        "modalities": ";".join(c.modalities),
        "modality_group": ";".join(c.modality_group),
        "indication": c.indication,
        "pain_subtype": ";".join(c.pain_subtype),
        "depression_subtype": ";".join(c.depression_subtype),
        "chronic_pain": _flag(c.chronic_pain),
        "targets": ";".join(c.targets),
        "invasive": _flag(c.invasive),
        "evidence": defuse_formula(format_evidence(c.evidence)),
    }
