"""Rule tables for :mod:`neuromodmap.trials.classify` (private).

The modality, indication, subtype and target *terms* all come from
:mod:`neuromodmap.vocabulary`; this module only holds the context rules that decide
whether a matched term means what it seems to mean: which abbreviations are ambiguous
and what their other expansions are, which sentences describe the trial's own
intervention, which describe a measurement, and which are background.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from neuromodmap import vocabulary

_I = re.IGNORECASE


@dataclass(frozen=True)
class Lexeme:
    """One modality pattern and how much it can be trusted on its own."""

    code: str
    pattern: re.Pattern[str]
    #: "name" (a spelled-out name), "abbrev" (an abbreviation or short variant),
    #: "device" (a brand name) or "ambiguous" (an abbreviation with other common meanings)
    kind: str


def _kind(pattern: str, default: str) -> str:
    # a spelled-out name ("spinal cord stimulation", "electroacupuncture") or a mixed-case
    # acronym ("rTMS", "tDCS", "MRgFUS") is trusted alone; upper-case acronyms need context
    if default != "name":
        return default
    if pattern in WEAK_VARIANTS:
        return "weak"
    words = re.sub(r"\(\?:|[()?\[\]|\\]", " ", pattern).split()
    if (len(words) >= 2 and len(pattern) >= 12) or re.fullmatch(r"[a-z]{9,}", pattern):
        return "name"
    if re.search(r"[a-z]", pattern) and re.search(r"[A-Z]", pattern):
        return "name"
    return "abbrev"


#: short variants with other common meanings ("SNT" is also a typo for STN, "10 kHz" a
#: frequency, "TBS" total body surface); they never establish a modality on their own
WEAK_VARIANTS = {r"SAINT", r"SNT", r"TBS", r"DTM", r"ECAP", r"10 ?kHz", r"TPS", r"HIFU", r"tES", r"GVS",
                 r"tonic (?:SCS|stimulation)", r"burst (?:SCS|spinal cord stimulation|stimulation)", r"LIFU"}


def _lexemes() -> list[Lexeme]:
    out: list[Lexeme] = []
    for code, m in vocabulary.MODALITIES.items():
        for kind, patterns in (("name", m.synonyms + m.variants), ("device", m.devices),
                               ("ambiguous", m.ambiguous)):
            for p in patterns:
                k = _kind(p, kind)
                out.append(Lexeme(code, re.compile(p, _I), k))
    # longest pattern first, so "deep TMS" is tried before "TMS"
    out.sort(key=lambda lx: len(lx.pattern.pattern), reverse=True)
    return out


LEXEMES: list[Lexeme] = _lexemes()

#: deletes lower-case letters and blanks everything else but capitals: "rTMS, tDCS-EEG" ->
#: "TMS  DCS EEG". Acronyms survive as runs of capitals, ten times shorter to scan.
_CAPITALS_ONLY = str.maketrans(
    {**{chr(c): None for c in range(ord("a"), ord("z") + 1)},
     **{chr(c): " " for c in range(128) if not chr(c).isupper()} | {chr(c): None for c in range(97, 123)}}
)
_RUN = re.compile(r"[A-Z]{2,}")


#: every TermFinder made; :func:`anchors_in` looks for all their lower-case anchors at once
_FINDERS: list[TermFinder] = []
_SECOND = operator.itemgetter(1)
_AUTOMATON = None
_INDEXED: frozenset[str] = frozenset()


def anchors_in(low: str) -> frozenset[str]:
    """The lower-case anchors of every :class:`TermFinder` that occur in ``low``, found in one
    Aho-Corasick pass (pyahocorasick) instead of a substring search per anchor and finder."""
    global _AUTOMATON, _INDEXED
    if _AUTOMATON is None or not all(f.indexed for f in _FINDERS[-1:]):  # first use, or a finder made since
        import ahocorasick

        keys = frozenset().union(*(f.lower_set for f in _FINDERS))
        automaton = ahocorasick.Automaton()
        for key in keys:
            automaton.add_word(key, key)
        automaton.make_automaton()
        _AUTOMATON, _INDEXED = automaton, keys
        for finder in _FINDERS:
            finder.indexed = True
    return frozenset(map(_SECOND, _AUTOMATON.iter(low))) if low else frozenset()


def capital_runs(text: str) -> frozenset[str]:
    """The runs of capitals in ``text`` once lower-case letters are dropped (one pass)."""
    return frozenset(text.translate(_CAPITALS_ONLY).split())


class Hit:
    """A match found on lower-cased text, reported with the original text's spelling."""

    __slots__ = ("_start", "_end", "_text")

    def __init__(self, start: int, end: int, text: str):
        self._start, self._end, self._text = start, end, text

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end

    def group(self, index: int = 0) -> str:
        return self._text


class TermFinder:
    """Find vocabulary terms fast: anchors first, the full regex only near them.

    Python's ``re`` tries every branch of a 200-term alternation at every character, which
    costs milliseconds per record. Every term, however, contains a literal that must occur
    for it to match ("stimul", "electroconvuls", the "DBS" of "STN-DBS"). The finder derives
    such anchors from the patterns with the regex parser: lower-case stems, looked for with
    ``str.find`` in the lower-cased text, and acronyms, looked up in the record's
    :func:`capital_runs`. Around each anchor it runs only the patterns that anchor there,
    in a window as wide as the longest possible match, so every match of
    ``regex.finditer`` on the whole text that contains an anchor is found (acronyms count in
    their usual spellings: "DBS", "rTMS", "RTMS", not "Dbs" or "TACs").
    """

    def __init__(self, patterns: tuple[str, ...], exact: tuple[str, ...] = (), stems: tuple[str, ...] = (),
                 lowercase_only: bool = False, secondary: tuple[str, ...] = ()):
        """``exact`` patterns (brand names) are searched in the whole text of a record that
        has another anchor; ``stems`` are short lower-case anchors that stand in for every
        key containing them ("stimul" for "spinal cord stimulator"); with ``lowercase_only``
        acronyms are found as lower-case substrings too (no capital-run scan needed);
        ``secondary`` anchors are looked for only in records that hold another anchor (each
        costs a pass over the text, and their terms come with "stimulation" or an acronym)."""
        from re import _parser

        # brand names start with a capital; without a leading look-behind the regex engine
        # can skip to capitals, so the whole-text scan is cheap (the boundary is checked after)
        caps = tuple(p for p in exact if p[:1].isupper())
        patterns = tuple(patterns) + tuple(p for p in exact if not p[:1].isupper())
        self.regex = vocabulary.compile_synonyms(patterns)
        alts = "|".join(sorted(caps, key=len, reverse=True))
        self.exact = re.compile(rf"(?:{alts})(?![\w])") if caps else None
        self.width = max(min(_parser.parse(p, 0).getwidth()[1], 200) for p in patterns)

        lower: dict[str, set[str]] = {}
        upper: dict[str, set[str]] = {}
        for p in patterns:
            for key in _required_literals(p):
                # an acronym is a word that is one block of capitals, perhaps after a lower-case
                # prefix ("DBS", "rTMS", "taVNS", "tES", the "TMS" of "deep TMS"); "MRgFUS" or
                # "HD-tDCS" are not: capital_runs turns them into "MRFUS", "HD DCS"
                words = [w for w in key.split() if re.fullmatch(r"[a-z]{0,2}-?[A-Z]{2,}s?", w)]
                run = max((_RUN.search(w).group(0) for w in words), key=len) if words else ""
                if not lowercase_only and run and (len(run) >= 3 or len(key) <= 3):
                    upper.setdefault(run, set()).add(p)
                    for w in words:  # "TDCS", "RTMS": the prefix written in capitals too
                        if w[:1].islower() and "-" not in w:
                            upper.setdefault(w.upper().rstrip("S") if w.endswith("s") else w.upper(),
                                             set()).add(p)
                else:
                    key = key.lower()  # a word, or a mixed token such as "HF10"
                    key = next((st for st in stems if st in key), key)
                    lower.setdefault(key, set()).add(p)
        # a key that contains a shorter key adds nothing: its patterns move to the shorter one
        for key in sorted(lower, key=len, reverse=True):
            shorter = [o for o in lower if o != key and o in key]
            if shorter:
                lower[min(shorter, key=len)] |= lower.pop(key)
        self.lower = tuple(sorted(lower))
        self.primary = tuple(k for k in self.lower if k not in secondary)
        self.lower_set, self.primary_set = frozenset(self.lower), frozenset(self.primary)
        _FINDERS.append(self)
        self.upper = frozenset(upper)
        self._regex_of = {k: vocabulary.compile_synonyms(tuple(ps)) for k, ps in (lower | upper).items()}
        # the same patterns for lower-cased text: no IGNORECASE and no leading look-behind, so
        # the engine rejects most branches on their first character (boundary checked after)
        self._fast_of = {
            k: re.compile("(?:" + "|".join(sorted((p.lower() for p in ps), key=len, reverse=True)) + r")(?![\w])")
            for k, ps in (lower | upper).items()
        }

    def present(self, low: str, runs: frozenset[str], found: frozenset[str] | None = None) -> bool:
        """Cheap test: could the text (lower-cased ``low``, capital ``runs``) hold a term?

        ``found``: :func:`anchors_in` of a text that contains ``low`` (the whole record): only
        the anchors found there are looked for in ``low`` (one pass for every finder instead of
        one per anchor)."""
        if not self.upper.isdisjoint(runs):
            return True
        if found is None or not self.indexed:
            return any(map(low.__contains__, self.primary))
        return any(map(low.__contains__, self.primary_set & found))

    def keys_in(self, low: str, runs: frozenset[str],
                found: frozenset[str] | None = None) -> tuple[tuple[str, ...], frozenset[str]]:
        """The anchors present in a text (lower-cased ``low``, capital ``runs``); ``found``:
        :func:`anchors_in` of a text that contains ``low``."""
        if found is None or not self.indexed:
            return tuple([k for k in self.lower if k in low]), self.upper & runs
        return tuple([k for k in self.lower if k in found and k in low]), self.upper & runs

    #: whether :func:`anchors_in` looks for this finder's anchors (set when it is built)
    indexed = False

    def finditer(self, text: str, low: str | None = None, runs: frozenset[str] | None = None,
                 exact: bool = False, keys: tuple[tuple[str, ...], frozenset[str]] | None = None):
        """The regex matches of every term in ``text``, in order, leftmost-longest.

        With ``exact``, brand names are searched in the whole text too (callers pass it for
        records that already have an anchor somewhere). ``keys`` (from :meth:`keys_in` on the
        whole record) limits the anchors looked for."""
        low = text.lower() if low is None else low
        lower_keys, upper_keys = keys if keys is not None else (self.lower, self.upper)
        found = []
        for key in lower_keys:
            if key in low:
                found += self._around(text, low, key, low)
        if upper_keys:
            if runs is None:
                runs = capital_runs(text)
            for key in upper_keys & runs:
                found += self._around(text, text, key, low)
        if exact and self.exact is not None and found:
            found += [m for m in self.exact.finditer(text)
                      if m.start() == 0 or not (text[m.start() - 1].isalnum() or text[m.start() - 1] in "-_")]
        last = -1
        for m in sorted(found, key=lambda m: (m.start(), -m.end())):
            if m.start() >= last:
                last = m.end()
                yield m

    def _around(self, text: str, haystack: str, key: str, low: str | None = None) -> list:
        n, w = len(text), self.width
        windows: list[list[int]] = []
        i = haystack.find(key)
        while i >= 0:
            a, b = max(0, i - w), min(n, i + len(key) + w)
            if windows and a <= windows[-1][1]:
                windows[-1][1] = b
            else:
                windows.append([a, b])
            i = haystack.find(key, i + 1)
        fast = low is not None and len(low) == n  # lower() kept every offset (no İ-like letters)
        regex = self._fast_of[key] if fast else self._regex_of[key]
        out = []
        for a, b in windows:
            while b < n and (text[b].isalnum() or text[b] == "_"):
                b += 1  # end on a word boundary so the trailing (?!\w) is honest
            if not fast:
                out += regex.finditer(text, a, b)
                continue
            pos = a
            while (m := regex.search(low, pos, b)) is not None:
                j = m.start()
                if j and (low[j - 1].isalnum() or low[j - 1] in "_-"):
                    pos = j + 1  # starts inside a word ("ect" of "effect"): try one further on
                    continue
                out.append(Hit(j, m.end(), text[j:m.end()]))
                pos = max(m.end(), j + 1)
        return out

    def search(self, text: str):
        return next(self.finditer(text), None)


#: words too common to anchor on; a pattern that has a rarer literal uses that instead
_COMMON = {"frequency", "intensity", "closed", "loop", "burst", "tonic", "theta", "subcutaneous", "accelerated",
           "navigated", "modulation", "electromagnetic", "subthalamic", "ultrasound", "high", "low", "deep",
           "cortical", "motor", "nerve", "field", "peripheral", "posterior", "surgery"}


def _required_literals(pattern: str) -> list[str]:
    """Literal substrings one of which every match of ``pattern`` contains (the rarest set)."""
    from re import _parser  # the stdlib regex parser; stable enough for literal extraction

    def candidates(items) -> list[list[str]]:
        out: list[list[str]] = []
        run = ""
        for op, av in list(items) + [(None, None)]:
            if op is _parser.LITERAL:
                run += chr(av)
                continue
            if len(run.strip()) >= 3:
                out.append([run.strip()])
            run = ""
            if op is _parser.SUBPATTERN:
                out += candidates(av[3])
            elif op is _parser.BRANCH:
                alts = [best(candidates(alt)) for alt in av[1]]
                if all(alts):
                    out.append([k for alt in alts for k in alt])
        return out

    def badness(keys: list[str]) -> tuple:
        common = sum(any(w in _COMMON for w in k.lower().split()) and len(k.split()) == 1 for k in keys)
        return (common, len(keys), -min(len(k) for k in keys))

    def best(options: list[list[str]]) -> list[str]:
        return min(options, key=badness) if options else []

    parsed = _parser.parse(pattern, 0)
    keys = best(candidates(parsed))
    if badness(keys)[0]:
        # a common word is the best anchor: try each way of taking the first optional group
        # ("low-intensity (focused )?ultrasound" -> "intensity focused ultrasound",
        # "intensity ultrasound")
        items = list(parsed)
        for i, (op, av) in enumerate(items):
            if op is _parser.MAX_REPEAT and av[0] == 0 and av[1] == 1:
                with_it = items[:i] + list(av[2]) + items[i + 1:]
                without = items[:i] + items[i + 1:]
                split = best(candidates(with_it)) + best(candidates(without))
                if split and badness(split)[0] < badness(keys)[0]:
                    keys = split
                break
    if not keys:
        raise ValueError(f"vocabulary pattern {pattern!r} has no literal of 3+ characters to anchor on")
    return keys


#: every modality term: the prefilter that lets the ~97 % of records with no stimulation
#: term skip every other modality rule
MODALITY_TERMS = TermFinder(
    tuple(p for m in vocabulary.MODALITIES.values() for p in m.synonyms + m.variants + m.ambiguous),
    exact=tuple(p for m in vocabulary.MODALITIES.values() for p in m.devices),
    stems=("stimul", "convuls", "acupunct", "auricular"),
    # spelled beside "stimulation", an acronym or a device; HF10, BurstDR, eCoin, gammaCore
    # and Calmare are brand names, searched like the other devices
    secondary=("auricular", "burstdr", "calmare", "cervical vagus", "coil", "differential target multiplexed",
               "ecoin", "external trigeminal", "gammacore", "hd-tdcs", "hf10", "implanted vagus", "khz",
               "sacral", "supraorbital", "theta", "transcutaneous electric", "brain pacemaker"),
)
PREFILTER: re.Pattern[str] = MODALITY_TERMS.regex

#: abbreviations that count only when written as an acronym (upper case): "TENS" but not
#: "tens of thousands", "ONS" but not "ons"
ACRONYM_ONLY = re.compile(r"^[A-Za-z0-9-]{2,7}$")

#: other expansions of ambiguous abbreviations; if the record spells one out (and not the
#: stimulation sense), the abbreviation is not counted anywhere in that record
OTHER_SENSES: dict[str, re.Pattern[str]] = {
    "DBS": re.compile(r"dried blood spots?", _I),
    "SCS": re.compile(r"systemic (?:cortico)?steroids?|spinal cord society|stem[- ]cell support", _I),
    "VNS": re.compile(r"verbal numeric(?:al)? (?:rating |pain )?scale|\bVNRS\b", _I),
    "MCS": re.compile(r"mental component (?:summary|score)|minimally conscious|multiple chemical sensitiv", _I),
    "PNS": re.compile(r"(?:peripheral|parasympathetic) nervous system", _I),
    "SNS": re.compile(r"sympathetic nervous system", _I),
    "ONS": re.compile(r"oral nutrition(?:al)? supplement", _I),
    "MST": re.compile(r"multisystemic therapy|mean survival time", _I),
    "CES": re.compile(r"Center for Epidemiologic(?:al)? Studies|CES-?D\b", _I),
    "TBS": re.compile(r"total body surface|tracheobronchial", _I),
    "ECT": re.compile(r"emission computed tomography", _I),
    "TPS": re.compile(r"total proctocolectomy|tibial plateau", _I),
}

#: acronyms that are confirmed by stimulation context anywhere in the record; the others
#: (MCS, PNS, CES, ...) need it in their own sentence
RECORD_CONTEXT_OK = {"DBS", "SCS", "VNS", "TENS", "ECT", "TMS"}

#: a sentence that names a stimulation device, electrode or dose confirms an abbreviation
STIM_CONTEXT = re.compile(
    r"stimulat|neuromodulat|electrode|implant|\bcoil\b|\bsham\b|\d\s?Hz\b|\bmA\b|\bpulses?\b"
    r"|magnetic|electric|current|seizure|ultrasound|subthalamic|\bSTN\b|\bGPi\b|pallid|thalam|neurosurg"
    r"|parkinson|tremor|dystonia|\bleads?\b|battery|pacemaker|programming", _I)

#: the trial's own intervention: design words, doses, arms, aims
INTERVENTION_CUES = re.compile(
    r"\brandomi[sz]|\bsham\b|\bsessions?\b|\bwill (?:be )?(?:receive|undergo|treated|randomi[sz]ed|assigned"
    r"|offered|implanted|given|applied|delivered|administered|used)|\bunderw[eo]nt\b|\bundergo(?:ing)?\b"
    r"|\breceiv(?:e|ed|ing)\b|\btreated (?:with|by)|\b(?:efficacy|effect(?:s|iveness)?|safety|feasibility"
    r"|tolerability|benefits?|impact|role|usefulness|value|potential|ability) of\b|\bcompar|\bversus\b|\bvs\b"
    r"|\bcombined with|\bcombination|\bappl(?:y|ied|ying|ication)\b|\bdeliver|\badminist|\bimplant"
    r"|\b\d+\s?Hz\b|\b\d+(?:\.\d+)?\s?mA\b|\bpulses\b|\bintervention|\bpurpose|\baims?\b|\bobjective"
    r"|\bhypothes|\bgoal|\bwe (?:will|propose|plan)|\bthis (?:study|trial|project|protocol)"
    r"|\bthe (?:study|trial) (?:will|is|was)|\bparameters?\b|\bprogramm|\bprotocol\b|\bpilot\b|\bdosing\b"
    r"|\bdoses?\b|\btrain(?:s|ing)?\b|\barms?\b|\bgroups?\b|\bparticipants\b|\bsubjects\b", _I)

#: stimulation used to measure, locate or monitor, not to treat
MEASUREMENT_CUES = re.compile(
    r"motor[- ]evoked potential|\bMEPs?\b|cortical excitability|corticospinal (?:excitability|drive)"
    r"|intracortical|motor threshold|paired[- ]pulse|single[- ]pulse|silent period|\bSICI\b|\bICF\b"
    r"|(?:measure[ds]?|assess(?:ed)?|evaluated?|recorded|quantif(?:y|ied)|index(?:ed)?|prob(?:e|ed)|mapp?(?:ed|ing)?)"
    r" (?:\w+ ){0,4}(?:by|with|using|through|via) (?:single[- ]pulse |paired[- ]pulse |navigated )?"
    r"(?:[\w()-]+,? (?:and )?){0,4}(?:TMS|transcranial magnetic)"
    r"|(?:TMS|transcranial magnetic stimulation) (?:[\w()]+ ){0,3}\(?(?:to (?:measure|assess|map|probe|index|evaluate|test)"
    r"|as a (?:probe|tool|measure|marker))"
    r"|\bmapping\b|neuromuscular (?:block|monitor)|train[- ]of[- ]four|nerve (?:block|locat)"
    r"|(?:to|will) (?:locate|identify) the nerve|intra-?operative(?:ly)? (?:\w+ ){0,3}mapping|corticography"
    r"|paired associative stimulation|\bPAS\b|TMS[- ]EEG|EEG[- ]TMS|TMS[- ](?:evoked|induced)|co-?registration"
    r"|evoked (?:potentials?|activity|responses?)|\bLTP\b", _I)

#: design words that on their own say "this is the arm": sham control, dose, delivery
STRONG_INTERVENTION_CUES = re.compile(
    r"\bsham\b|randomi[sz]ed (?:to|into|in)|\bwill be (?:delivered|applied|administered|implanted|stimulated)"
    r"|\bsessions? of\b|\b\d+\s?Hz\b|\b\d+(?:\.\d+)?\s?mA\b|active (?:or|vs\.?|versus) sham", _I)

#: a sentence that states the study's own aim or design
AIM_CUES = re.compile(
    r"\baims?\b|\bpurpose|\bobjective|\bgoal|\bhypothes|\bthis (?:study|trial|project|protocol)|\brandomi[sz]"
    r"|\bsham\b|\bsessions?\b|\bwe (?:will|propose|plan)|\bwill (?:be )?(?:receive|undergo|treated|assigned"
    r"|implanted|applied|delivered|administered)", _I)

#: background: what others did, what exists, who is excluded
BACKGROUND_CUES = re.compile(
    r"\bha(?:s|ve) (?:been|shown|demonstrated|proven|emerged|gained)|\bstudies\b|\breport(?:ed|s)\b|\bprevious"
    r"|\bliterature\b|\bet al\b|\bsuch as\b|\be\.? ?g\b|\bincluding\b|\bapproved\b|\balternative|\boptions?\b"
    r"|\bcurrently\b|\bcurrent (?:treatment|therap|option|standard|practice|guideline)|\bconventional\b|\bstandard (?:treatment|care|therapy|of care)|\bhistory of\b|\bprior\b"
    r"|\bexclu|\bcontraindicat|\balready\b|\bno (?:study|studies|data)|\bknown\b|\bwidely\b|\bestablished\b"
    r"|\bis (?:a|an) (?:\w+ ){0,3}(?:treatment|therapy|technique|procedure|method|form)\b|\brecent\b|for example|\btargeting\b", _I)

#: the modality names the population or the setting, not the arm ("after STN DBS",
#: "candidates for DBS", "patients already implanted with a stimulator")
POPULATION_BEFORE = re.compile(
    r"(?:\bafter|\bfollowing|\breceiving|\balready|\bpreviously|\bprior|\bpatients (?:with|who have|who had)|\bimplanted with"
    r"|criteria for|candidates? for|eligible for|contraindications? (?:to|for)|\bwith an?)\s+(?:[\w()/-]+\s+){0,3}\(?$", _I)

#: "... in patients treated with STN DBS" names who is studied, not the arm ("patients will
#: be treated with rTMS" is the arm)
TREATED_POPULATION_BEFORE = re.compile(
    r"\b(?:patients|subjects|people|individuals|participants|children|adults)\s+(?:(?!will\b|be\b)[\w'-]+\s+){0,3}"
    r"(?:treated|implanted|stimulated)\s+(?:with|by)\s+(?:[\w()/-]+\s+){0,3}\(?$", _I)

#: focused ultrasound counts as neuromodulation only for a functional brain target
FUS_FUNCTIONAL = re.compile(
    r"tremor|parkinson|thalamotomy|pallidotomy|subthalamotomy|capsulotomy|cingulotomy|neuropathic|depress"
    r"|obsessive|epilep|neuromodulat|thalam|pallid|subthalamic|dystonia|chronic pain", _I)
FUS_ABLATION = re.compile(r"tumou?r|fibroid|cancer|carcinoma|metasta|prostat|thyroid|nodule|wrinkle|skin", _I)

#: generic terms ("neuromodulation", "cortical stimulation", "pulsed radiofrequency") only count
#: when no named modality was found
GENERIC = "other_neuromod"


# ------------------------------------------------------------------------- indication
def _alt(patterns) -> re.Pattern[str]:
    return vocabulary.compile_synonyms(tuple(patterns))


PAIN = TermFinder(vocabulary.INDICATIONS["pain"].synonyms + (
    r"pains", r"aching", r"analgesia", r"hypoalgesi[ac]"), stems=("algesi",), lowercase_only=True)
#: "pain" that is not the condition under study
PAIN_NOT = re.compile(r"pain (?:at|on) (?:the )?injection|injection[- ]site pain|pain on injection"
                      r"|anaesthe|anesthe", _I)
DEPRESSION = TermFinder(vocabulary.INDICATIONS["depression"].synonyms + (
    r"depressed", r"mood disorders?", r"affective disorders?"), lowercase_only=True)
#: "depression" that is not the mood disorder
DEPRESSION_NOT = re.compile(
    r"(?:respiratory|ST[- ]segment|ST|bone marrow|marrow|myocardial|cardiac|CNS|central nervous system|immune"
    r"|spreading|ventilatory|neuromuscular|skull|cortical spreading|fracture|freezing[- ]point)"
    r" (?:\w+ )?depression|depressed (?:skull|fracture|level of consciousness|consciousness)", _I)

PAIN_SUBTYPES = {code: _alt(s.synonyms) for code, s in vocabulary.PAIN_SUBTYPES.items()}
DEPRESSION_SUBTYPES = {code: _alt(s.synonyms) for code, s in vocabulary.DEPRESSION_SUBTYPES.items()}
PAIN_SUBTYPE_TERMS = TermFinder(tuple(p for s in vocabulary.PAIN_SUBTYPES.values() for p in s.synonyms),
                                lowercase_only=True)
DEPRESSION_SUBTYPE_TERMS = TermFinder(tuple(p for s in vocabulary.DEPRESSION_SUBTYPES.values() for p in s.synonyms),
                                      lowercase_only=True)

#: pain that is not chronic: surgery, labour, procedures, emergencies, the laboratory
ACUTE_PAIN = re.compile(
    r"acute pain|post-?operative|post-?surgical|peri-?operative|intra-?operative|after (?:\w+ ){0,3}(?:surgery|operation"
    r"|arthroplasty|arthroscopy|section|delivery)|following (?:\w+ ){0,3}surgery|labou?r|childbirth|caesarean|cesarean"
    r"|obstetric|procedur|emergency|pre-?hospital|experimental(?:ly induced)? pain|pain threshold|healthy (?:volunteers"
    r"|subjects|adults|participants)|sub-?acute|injection pain|venipuncture|cannulation|arthroscop|anaesthe|anesthe"
    r"|\bblock\b|incision", _I)
#: laboratory pain: not chronic, but not the "acute" (clinical) subtype either
EXPERIMENTAL_PAIN = re.compile(r"experimental|threshold|healthy|sub-?acute", _I)
#: explicit words only; a chronic subtype ("low back pain") yields to an explicit "subacute"
CHRONIC_WORDS = re.compile(r"chronic|persistent|refractory|intractable|long[- ]standing|longstanding", _I)
CHRONIC_PAIN = re.compile(
    r"chronic|persistent|refractory|intractable|long[- ]standing|neuropath|neuralgia|fibromyalgia|complex regional"
    r"|\bCRPS\b|migraine|headache|phantom|failed back|low[- ]back|osteoarthritis|arthritis|cancer pain|central pain"
    r"|post-?stroke pain|spinal cord injury|months", _I)
CHRONIC_SUBTYPES = {"neuropathic", "fbss", "crps", "fibromyalgia", "migraine", "cluster_headache", "low_back",
                    "phantom", "post_stroke", "cancer"}

# ------------------------------------------------------------------------- targets
TARGETS = {code: _alt(t.synonyms) for code, t in vocabulary.TARGETS.items()}
#: target codes implied by the modality itself, when the record names no other target
IMPLIED_TARGET = {"scs": "spinal_cord", "drg": "drg", "vns": "vagus", "tvns": "vagus",
                  "sacral": "sacral_nerve", "tibial": "peripheral_nerve"}
#: a specific code makes the generic one redundant
TARGET_PARENT = {"dlpfc_left": "dlpfc", "dlpfc_right": "dlpfc", "thalamus_sensory": "thalamus",
                 "thalamus_cm": "thalamus", "itp": "thalamus", "scc": "acc"}


# ------------------------------------------------------------------------- fast cues
def _split_top(pattern: str) -> list[str]:
    """Split a regex at its top-level ``|``."""
    parts, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


class Cue:
    """A case-insensitive cue regex that runs fast: matched on lower-cased text without
    IGNORECASE, with the alternatives' shared ``\\b`` hoisted so that the regex engine can
    reject most branches on their first literal character."""

    def __init__(self, pattern: str):
        alts = _split_top(pattern.lower())
        bounded = [a[2:] for a in alts if a.startswith(r"\b")]
        other = [a for a in alts if not a.startswith(r"\b")]
        parts = ([r"\b(?:" + "|".join(bounded) + ")"] if bounded else []) + other
        self.pattern = pattern
        self.regex = re.compile("|".join(parts))

    def search(self, text: str) -> re.Match | None:
        return self.regex.search(text.lower())


for _name in ("STIM_CONTEXT", "INTERVENTION_CUES", "STRONG_INTERVENTION_CUES", "MEASUREMENT_CUES", "AIM_CUES",
              "BACKGROUND_CUES", "POPULATION_BEFORE", "TREATED_POPULATION_BEFORE", "FUS_FUNCTIONAL", "FUS_ABLATION", "PAIN_NOT", "DEPRESSION_NOT",
              "ACUTE_PAIN", "CHRONIC_WORDS", "CHRONIC_PAIN"):
    globals()[_name] = Cue(globals()[_name].pattern)
OTHER_SENSES = {key: Cue(rx.pattern) for key, rx in OTHER_SENSES.items()}
del _name
