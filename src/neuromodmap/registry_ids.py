"""Trial registry ids in free text: find them, normalise them, name their registry.

Papers quote the registration of the trial they report (PubMed ``SI`` and ``DataBankList``,
abstracts, RIS notes), and registry records list each other's ids as secondary ids. This
module finds those ids, whatever the spelling (``NCT 0123 4567``, ``nct01234567``,
``ISRCTN: 12345678``, ``ChiCTR-TRC-12001234``, ``EudraCT No. 2015-001894-41``), and writes
each in one normalised form, the form WHO ICTRP uses for its TrialID where the registry has
one (``JPRN-UMIN000012345``), so that ids quoted in papers and ids stored from registries
compare equal.

Registries covered (primary registries of the WHO ICTRP network and the id formats they
document): ClinicalTrials.gov (``NCT`` + 8 digits), ISRCTN (8 digits), EudraCT
(``YYYY-NNNNNN-CC``, 2004-2023) and CTIS (``YYYY-5NNNNN-CC-NN``), ANZCTR (``ACTRN`` + 14
digits), ChiCTR, DRKS (8 digits), CTRI (``CTRI/YYYY/MM/NNNNNN``), the Japanese registries
(UMIN-CTR, jRCT, JapicCTI, JMACCT, as ``JPRN-...``), IRCT (``IRCT...N1``), CRiS (``KCT`` +
7 digits), the Netherlands Trial Register (``NTR`` + 3-5 digits; ``NL`` + digits only next
to the register's name; ``NL-OMON...``), PACTR (15-16 digits), TCTR (11 digits), ReBEC
(``RBR-xxxxxx``), SLCTR (``SLCTR/YYYY/NNN``), LBCTR, RPCEC and the WHO Universal Trial
Number (``U1111-NNNN-NNNN``). PROSPERO (``CRD42...``) registers reviews, not trials, and is
not matched.

An id is matched only as a whole token: ``NCT`` inside a word (``distinct01234567``), a
nine-digit "NCT" number or a neurotensin receptor (``NTR1``) is not an id. Text of any
length is scanned in linear time.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

__all__ = ["RegistryId", "REGISTRIES", "check_registry_id", "find_registry_ids", "normalise_registry_id",
           "registry_code", "registry_url"]

#: display name of each registry code
REGISTRIES: dict[str, str] = {
    "ctgov": "ClinicalTrials.gov",
    "isrctn": "ISRCTN",
    "eudract": "EudraCT (EU Clinical Trials Register)",
    "ctis": "CTIS (EU Clinical Trials Information System)",
    "anzctr": "ANZCTR",
    "chictr": "ChiCTR",
    "drks": "DRKS",
    "ctri": "CTRI",
    "jprn": "JPRN (UMIN-CTR, jRCT, JapicCTI, JMACCT)",
    "irct": "IRCT",
    "cris": "CRiS (Korea)",
    "ntr": "Netherlands Trial Register",
    "pactr": "PACTR",
    "tctr": "TCTR",
    "rebec": "ReBEC",
    "slctr": "SLCTR",
    "lbctr": "LBCTR",
    "rpcec": "RPCEC",
    "utn": "WHO Universal Trial Number",
}


class RegistryId(NamedTuple):
    """One registry id found in a text."""

    registry: str
    """registry code, a key of :data:`REGISTRIES`"""
    id: str
    """normalised id, e.g. ``NCT01234567``, ``JPRN-UMIN000012345``, ``2015-001894-41``"""
    raw: str
    """the text as it was written"""


# Separator allowed between a prefix and its number: "NCT 0123...", "ISRCTN: 1234...", "NCT#..."
_SEP = r"[ \t:#-]{0,3}"
# an id starts where no letter or digit precedes it ("distinct01234567" holds no NCT id)
_START = r"(?<![A-Za-z0-9])"

_PATTERNS: list[tuple[str, str]] = [
    ("ctgov", rf"{_START}NCT{_SEP}(?P<ctgov>\d{{4}}[ -]?\d{{4}})(?!\d)"),
    ("isrctn", rf"{_START}ISRCTN{_SEP}(?P<isrctn>\d{{8}})(?!\d)"),
    ("anzctr", rf"{_START}(?:ACTRN|ANZCTR){_SEP}(?P<anzctr>\d{{14}})(?!\d)"),
    ("chictr", rf"{_START}ChiCTR{_SEP}(?P<chictr>(?:[A-Z]{{2,4}}-)?\d{{8,11}})(?!\d)"),
    ("drks", rf"{_START}DRKS{_SEP}(?P<drks>\d{{8}})(?!\d)"),
    ("ctri", rf"{_START}CTRI{_SEP}/?(?P<ctri>\d{{4}}/\d{{2,3}}/\d{{6}})(?!\d)"),
    ("jprn", rf"{_START}(?:JPRN-)?(?P<jprn>UMIN{_SEP}(?:CTR{_SEP})?\d{{9}}|jRCTs?{_SEP}\d{{9,10}}"
             rf"|JapicCTI{_SEP}\d{{6}}|JMA-IIA\d{{5}})(?!\d)"),
    ("irct", rf"{_START}IRCT{_SEP}(?P<irct>\d{{8,16}}N\d{{1,3}})(?![A-Za-z0-9])"),
    ("cris", rf"{_START}KCT{_SEP}(?P<cris>\d{{7}})(?!\d)"),
    ("ntr", rf"{_START}(?P<ntr>NTR{_SEP}\d{{3,5}}|NL-OMON\d{{1,7}})(?!\d)"),
    ("ntr_nl", r"(?:Netherlands|Dutch|Nederlands)[ \t]+(?:National[ \t]+)?Trial[ \t]+Regist(?:er|ry)\b"
               rf"[^.;\n]{{0,60}}?{_START}NL[ :#-]?(?P<ntr_nl>\d{{4,5}})(?!\d)"),
    ("pactr", rf"{_START}PACTR{_SEP}(?P<pactr>\d{{15,16}})(?!\d)"),
    ("tctr", rf"{_START}TCTR{_SEP}(?P<tctr>\d{{11}})(?!\d)"),
    ("rebec", rf"{_START}RBR-(?P<rebec>[0-9a-z]{{6,8}})(?![A-Za-z0-9])"),
    ("slctr", rf"{_START}SLCTR{_SEP}/?(?P<slctr>\d{{4}}/\d{{3}})(?!\d)"),
    ("lbctr", rf"{_START}LBCTR{_SEP}(?P<lbctr>\d{{10}})(?!\d)"),
    ("rpcec", rf"{_START}RPCEC{_SEP}(?P<rpcec>\d{{8}})(?!\d)"),
    ("utn", rf"{_START}U1111[ -](?P<utn>\d{{4}}[ -]\d{{4}})(?!\d)"),
    # CTIS before EudraCT: "2022-500014-26-00" must not be read as EudraCT 2022-500014-26
    ("ctis", r"(?<![A-Za-z0-9/.-])(?P<ctis>20[2-9]\d-5\d{5}-\d{2}-\d{2})(?![\d-])"),
    ("eudract", r"(?:(?<![A-Za-z0-9])EUCTR|(?<![A-Za-z0-9/.-]))"
                r"(?P<eudract>200[4-9]-\d{6}-\d{2}|201\d-\d{6}-\d{2}|202[0-3]-\d{6}-\d{2})(?!\d)(?!-\d)"),
]
_REGEX = re.compile("|".join(f"(?:{p})" for _, p in _PATTERNS), re.IGNORECASE)
# A quick test on the lower-cased text before the full pattern runs: a registry prefix right
# before a digit, or an EU-style number. Each pattern starts with a literal, which Python's
# regex engine finds fast; the full alternation is slow to try at every position.
_QUICK = [(prefix, re.compile(re.escape(prefix) + tail)) for prefix, tail in (
    *((p, r"[ \t:#/-]{0,4}\d") for p in ("nct", "isrctn", "actrn", "anzctr", "drks", "ctri", "irct", "kct", "ntr",
                                       "nl", "pactr", "tctr", "slctr", "lbctr", "rpcec", "u1111", "japiccti",
                                       "jma-iia", "nl-omon")),
    ("chictr", r"[ \t:#-]{0,4}(?:[a-z]{2,4}-)?\d"),
    ("umin", r"[ \t:#-]{0,4}(?:ctr[ \t:#-]{0,3})?\d"),
    ("jrct", r"s?[ \t:#-]{0,3}\d"),
)]
_EU_HINT = re.compile(r"-\d{6}-\d\d")


def _may_hold_an_id(text: str) -> bool:
    low = text.lower()
    if "rbr-" in low or _EU_HINT.search(low):
        return True
    return any(prefix in low and pattern.search(low) for prefix, pattern in _QUICK)


_HINT = re.compile(r"\d{3,}|RBR-", re.IGNORECASE)
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"), "-")
_SPACES = re.compile(r"[ \t:#-]+")
_MAX_CHARS = 2_000_000


def _normalise(code: str, value: str) -> tuple[str, str]:
    """(registry code, normalised id) of a matched group."""
    bare = _SPACES.sub("", value)
    if code == "ctgov":
        return code, f"NCT{bare}"
    if code == "isrctn":
        return code, f"ISRCTN{bare}"
    if code == "anzctr":
        return code, f"ACTRN{bare}"
    if code == "chictr":
        letters, _, digits = value.upper().rpartition("-")
        return code, f"ChiCTR-{letters}-{digits}" if letters else f"ChiCTR{digits}"
    if code == "drks":
        return code, f"DRKS{bare}"
    if code == "ctri":
        return code, f"CTRI/{value}"
    if code == "jprn":
        upper = bare.upper()
        if upper.startswith("UMIN"):
            return code, "JPRN-UMIN" + upper.removeprefix("UMIN").removeprefix("CTR")
        if upper.startswith("JRCT"):
            return code, "JPRN-jRCT" + bare[4:].lower()
        if upper.startswith("JAPICCTI"):
            return code, "JPRN-JapicCTI-" + bare[8:]
        return code, "JPRN-" + upper
    if code == "irct":
        return code, f"IRCT{bare.upper()}"
    if code == "cris":
        return code, f"KCT{bare}"
    if code == "ntr":
        return code, value.upper() if value.upper().startswith("NL-OMON") else bare.upper()
    if code == "ntr_nl":
        return "ntr", f"NL{bare}"
    if code == "pactr":
        return code, f"PACTR{bare}"
    if code == "tctr":
        return code, f"TCTR{bare}"
    if code == "rebec":
        return code, f"RBR-{value.lower()}"
    if code == "slctr":
        return code, f"SLCTR/{value}"
    if code == "lbctr":
        return code, f"LBCTR{bare}"
    if code == "rpcec":
        return code, f"RPCEC{bare}"
    if code == "utn":
        return code, "U1111-" + re.sub(r"[ -]", "-", value)
    return code, value  # eudract, ctis: the number itself


def find_registry_ids(text: str | None) -> list[RegistryId]:
    """Every trial registry id in ``text``, normalised, in order of first appearance.

    Each id appears once, however often it is quoted. ``None``, empty or non-text input gives
    an empty list; text beyond the first 2,000,000 characters is not read.

    >>> [r.id for r in find_registry_ids("Registered at ClinicalTrials.gov (nct 0123 4567) and ISRCTN: 12345678.")]
    ['NCT01234567', 'ISRCTN12345678']
    """
    if not text or not isinstance(text, str):
        return []
    text = text[:_MAX_CHARS]
    if not text.isascii():
        # full-width letters and digits, non-breaking spaces, typographic dashes
        text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    found: dict[str, tuple[int, RegistryId]] = {}
    if not _may_hold_an_id(text):
        return []
    for start, end in _spans(text):
        for match in _REGEX.finditer(text, start, end):
            name = match.lastgroup  # each alternative has one named group
            if name is None:
                continue
            code, value = _normalise(name, match.group(name))
            if value not in found:
                found[value] = (match.start(), RegistryId(code, value, match.group(0).strip()))
    return [rid for _, rid in sorted(found.values(), key=lambda item: item[0])]


def _spans(text: str) -> list[tuple[int, int]]:
    """Stretches of ``text`` that can hold an id: around each run of 3+ digits (and "RBR-").

    Every id has such a run (or is a ReBEC id), so the full pattern, which is slow to try at
    every position, only runs near them: 110 characters before (room for "Netherlands Trial
    Register ... NL1234") and 20 after ("...N1", "-41"). Lookbehinds still see the characters
    before a stretch, so no id is cut at its start.
    """
    spans: list[tuple[int, int]] = []
    for hint in _HINT.finditer(text):
        start, end = max(0, hint.start() - 110), min(len(text), hint.end() + 20)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def normalise_registry_id(value: str | None) -> str | None:
    """The normalised form of one id (``"nct 0123 4567"`` → ``"NCT01234567"``), or None.

    ``value`` is a field meant to hold one id (a registry's TrialID or secondary id, a PubMed
    ``SI`` entry such as ``ClinicalTrials.gov/NCT01234567``, ``EUCTR2015-001894-41-DE``); the
    first id found in it is returned.
    """
    found = find_registry_ids(value)
    return found[0].id if found else None


_URLS = {
    "ctgov": "https://clinicaltrials.gov/study/{id}",
    "isrctn": "https://www.isrctn.com/{id}",
    "eudract": "https://www.clinicaltrialsregister.eu/ctr-search/search?query={id}",
    "ctis": "https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&EUCT={id}",
    "anzctr": "https://www.anzctr.org.au/ACTRN{digits}.aspx",
    "drks": "https://drks.de/search/en/trial/{id}",
}


def registry_url(registry_id: RegistryId) -> str:
    """A web address for the id: the registry's own page where it has a stable one, else ICTRP's."""
    template = _URLS.get(registry_id.registry)
    if template:
        return template.format(id=registry_id.id, digits=registry_id.id.removeprefix("ACTRN"))
    return "https://trialsearch.who.int/Trial2.aspx?TrialID=" + registry_id.id.replace("/", "%2F")


# ---------------------------------------------------------------------- validating a record's own id
#: registry names as registries and exports spell them (lower case) -> registry code
_REGISTRY_NAMES = {
    "ctgov": "ctgov", "clinicaltrials.gov": "ctgov", "isrctn": "isrctn", "euctr": "eudract", "eudract": "eudract",
    "eu clinical trials register": "eudract", "ctis": "ctis", "clinical trials information system": "ctis",
    "anzctr": "anzctr", "chictr": "chictr", "drks": "drks", "german clinical trials register": "drks",
    "ctri": "ctri", "jprn": "jprn", "irct": "irct", "cris": "cris", "ntr": "ntr", "nl-omon": "ntr",
    "netherlands trial register": "ntr", "pactr": "pactr", "tctr": "tctr", "rebec": "rebec", "slctr": "slctr",
    "lbctr": "lbctr", "rpcec": "rpcec",
}
#: how each registry writes its ids, for the message about an id that is not one
_ID_FORMS = {
    "ctgov": "NCT + 8 digits", "isrctn": "ISRCTN + 8 digits", "eudract": "EUCTR + YYYY-NNNNNN-CC[-country]",
    "ctis": "YYYY-5NNNNN-CC-NN", "anzctr": "ACTRN + 14 digits", "chictr": "ChiCTR + digits or ChiCTR-XXX-digits",
    "drks": "DRKS + 8 digits", "ctri": "CTRI/YYYY/MM/NNNNNN", "jprn": "JPRN-UMIN/jRCT/JapicCTI...",
    "irct": "IRCT + digits + N + digits", "cris": "KCT + 7 digits", "ntr": "NTR/NL + digits or NL-OMON + digits",
    "pactr": "PACTR + 15-16 digits", "tctr": "TCTR + 11 digits", "rebec": "RBR-xxxxxx", "slctr": "SLCTR/YYYY/NNN",
    "lbctr": "LBCTR + digits", "rpcec": "RPCEC + digits",
}
# the Netherlands register's own ids are matched in free text only next to its name
_NTR_OWN = re.compile(r"(?:NTR\d{1,5}|NL\d{1,6}|NL-OMON\d{1,7})", re.IGNORECASE)
_ID_CHARS = re.compile(r"[A-Za-z0-9][A-Za-z0-9/_.:()-]{0,79}")
# the usual forms, checked first (a record's id is checked at every import: keep it cheap)
_FAST = {"ctgov": re.compile(r"NCT\d{8}"), "isrctn": re.compile(r"ISRCTN\d{8}"), "drks": re.compile(r"DRKS\d{8}"),
         "anzctr": re.compile(r"ACTRN\d{14}"), "tctr": re.compile(r"TCTR\d{11}"),
         "eudract": re.compile(r"(?:EUCTR)?\d{4}-\d{6}-\d\d(?:-[A-Z]{2,5})?"),
         "ctis": re.compile(r"(?:CTIS)?\d{4}-5\d{5}-\d\d-\d\d")}


def registry_code(registry: str | None) -> str | None:
    """The code of :data:`REGISTRIES` for a registry as records name it (``"ISRCTN"``,
    ``"EU Clinical Trials Register"``, ``"ctgov"``), or None when it is not one we know."""
    return _REGISTRY_NAMES.get((registry or "").strip().lower())


def check_registry_id(registry_id: str | None, registry: str | None = None) -> str | None:
    """Why ``registry_id`` is not a valid id of ``registry`` (one sentence), or None when it is.

    The id must be one token of letters, digits and ``/ _ . : ( ) -`` starting with a letter or
    digit (so no spreadsheet formula, no spaces or control characters), and, for a registry
    this module knows, hold an id in that registry's form. Ids of registries it does not know
    are only checked for their characters.
    """
    value = (registry_id or "").strip()
    if not value:
        return "the record has no registry id"
    code = registry_code(registry)
    if code in _FAST and _FAST[code].fullmatch(value):
        return None
    name = REGISTRIES.get(code, registry or "its registry")
    if not _ID_CHARS.fullmatch(value):
        return (f"{value[:60]!r} is not a registry id (an id is one token of letters, digits and / _ . : ( ) -"
                + (f"; {name} ids are {_ID_FORMS[code]})" if code else ")"))
    if code is None:
        return None
    if code == "ntr" and _NTR_OWN.fullmatch(value):
        return None
    found = find_registry_ids(value)
    if not found:
        return f"{value!r} is not a {name} id ({_ID_FORMS[code]})"
    if code not in {f.registry for f in found} and not (code in ("eudract", "ctis") and
                                                         {f.registry for f in found} & {"eudract", "ctis"}):
        other = REGISTRIES[found[0].registry]
        return f"{value!r} is a {other} id, in a record of {name} ({_ID_FORMS[code]})"
    return None
