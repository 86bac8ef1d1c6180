"""The trials explorer and the label corrections.

Pages: ``/trials`` (filters in the query string, counts and survey figures of the filtered
trials, a paged list) and ``/trials/{registry_id}`` (the record with the words that decided each
label highlighted, the labels with their corrections and history, a link to the registry).
JSON twins: ``/api/trials``, ``/api/trials/{registry_id}``, ``/api/survey``,
``POST /api/trials/{registry_id}/labels``, ``GET /api/trials/{registry_id}/history``,
``POST /api/trials/{registry_id}/labels/{override_id}/revert``.

Labels always come through :func:`neuromodmap.trials.overrides.effective_labels_sql`, so a
correction shows at once in the list, the counts, the figures and the API.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, Field

from neuromodmap import vocabulary as vocab
from neuromodmap.registry_ids import find_registry_ids, registry_url
from neuromodmap.trials import overrides as ov
from neuromodmap.trials.models import Trial
from neuromodmap.trials.store import TRIAL_COLUMNS, trial_from_row
from neuromodmap.webapp.app import render, stores, text_index
from neuromodmap.webapp.search import TextIndex, scan_clause

__all__ = ["router", "TrialFilter", "parse_filter", "highlight"]

router = APIRouter()

# ---------------------------------------------------------------------------- filters
#: query parameters that are not filters
_NOT_FILTERS = {"token", "limit", "offset", "page", "partial"}
_LIST_LABELS: dict[str, tuple[str, dict]] = {
    "modality": ("l.modalities", vocab.MODALITIES),
    "modality_group": ("l.modality_group", vocab.MODALITY_GROUPS),
    "target": ("l.targets", vocab.TARGETS),
    "pain_subtype": ("l.pain_subtype", vocab.PAIN_SUBTYPES),
    "depression_subtype": ("l.depression_subtype", vocab.DEPRESSION_SUBTYPES),
}
_ALIASES = {"modalities": "modality", "group": "modality_group", "targets": "target", "year": "start_year",
            "phases": "phase", "countries": "country", "overall_status": "status", "invasiveness": "invasive"}
_BOOL3 = {
    "invasive": ("l.invasive", {"true": True, "invasive": True, "false": False, "non-invasive": False,
                                "noninvasive": False, "unclear": None}),
    "chronic_pain": ("l.chronic_pain", {"true": True, "chronic": True, "false": False, "acute": False,
                                        "unclear": None}),
}
FILTERS = ("modality", "modality_group", "indication", "subtype", "pain_subtype", "depression_subtype", "target",
           "invasive", "chronic_pain", "neuromod", "phase", "status", "country", "registry", "start_year", "q")
_YEAR = re.compile(r"(\d{4})(?:\s*-\s*(\d{4}))?")
MAX_LIMIT = 500


@dataclass
class TrialFilter:
    """A parsed filter: SQL conditions (parameterised) and the values, by filter name."""

    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)
    neuromod: str = "yes"
    #: a condition reads a registry field (not only labels), or unclassified trials may pass
    needs_trials: bool = False
    #: the words of ``q`` (each must occur); their condition is set by :meth:`bind_text`
    words: list[str] = field(default_factory=list)
    text_where: list[str] = field(default_factory=list)
    text_args: list[Any] = field(default_factory=list)
    #: how ``q`` was answered: "index", "scan" or "" (no q)
    text_search: str = ""

    def sql(self) -> str:
        where = self.where + self.text_where
        return " AND ".join(where) if where else "TRUE"

    def params(self) -> list[Any]:
        return [*self.args, *self.text_args]

    def bind_text(self, con, index: TextIndex | None) -> None:
        """Set the condition of ``q``'s words: the trials the word index gives, or (index off or
        not ready yet) a scan of the text fields. Same results either way."""
        if not self.words:
            return
        ids = index.trials(con, self.words) if index is not None else None
        if ids is None:
            self.text_where, self.text_args = [], []
            for word in self.words:
                clause, args = scan_clause(word)
                self.text_where.append(clause)
                self.text_args += args
            self.text_search = "scan"
        else:
            self.text_where = ["t.registry_id IN (SELECT unnest(?::VARCHAR[]))"]
            self.text_args = [ids.tolist()]
            self.text_search = "index"

    def query(self, **changes) -> str:
        """The query string of this filter with ``changes`` (None removes a filter)."""
        params = {k: ",".join(v) for k, v in self.values.items()}
        if self.neuromod != "yes":
            params["neuromod"] = self.neuromod
        for k, v in changes.items():
            if v is None:
                params.pop(k, None)
            else:
                params[k] = v
        return urlencode(params)


def _bad(message: str) -> HTTPException:
    return HTTPException(400, message)


def _codes(name: str, values: list[str], table: dict) -> list[str]:
    bad = [v for v in values if v not in table]
    if bad:
        raise _bad(f"unknown {name} {', '.join(map(repr, bad))}; allowed: {', '.join(table)}")
    return values


def parse_filter(params) -> TrialFilter:
    """Filters from query parameters (several values comma-separated or repeated; OR within a
    filter, AND between filters). Unknown filters or vocabulary values: HTTP 400."""
    f = TrialFilter()
    raw: dict[str, list[str]] = {}
    for key in params:
        name = _ALIASES.get(key, key)
        if key in _NOT_FILTERS:
            continue
        if name not in FILTERS:
            raise _bad(f"unknown filter {key!r}; filters: {', '.join(FILTERS)} (several values comma-separated)")
        for value in params.getlist(key):
            if name == "q":
                raw.setdefault(name, []).append(value.strip())
            else:
                raw.setdefault(name, []).extend(v.strip() for v in value.split(",") if v.strip())
    for name in raw:
        raw[name] = [v for v in dict.fromkeys(raw[name]) if v]
    raw = {k: v for k, v in raw.items() if v}
    nm = raw.pop("neuromod", ["yes"])
    if len(nm) != 1 or nm[0].lower() not in ("yes", "no", "any", "true", "false", "all"):
        raise _bad("neuromod must be one of yes, no, any")
    f.neuromod = {"true": "yes", "false": "no", "all": "any"}.get(nm[0].lower(), nm[0].lower())
    f.needs_trials = f.neuromod == "any" or bool(set(raw) & {"phase", "status", "country", "registry", "start_year", "q"})
    if f.neuromod == "yes":
        f.where.append("l.neuromod")
    elif f.neuromod == "no":
        f.where.append("l.neuromod = FALSE")
    for name, values in raw.items():
        f.values[name] = values
        if name in _LIST_LABELS:
            column, table = _LIST_LABELS[name]
            f.where.append(f"list_has_any({column}, ?::VARCHAR[])")
            f.args.append(_codes(name, values, table))
        elif name == "indication":
            f.where.append("l.indication IN (SELECT unnest(?::VARCHAR[]))")
            f.args.append(_codes(name, values, vocab.INDICATIONS))
        elif name == "subtype":
            allowed = {**vocab.PAIN_SUBTYPES, **vocab.DEPRESSION_SUBTYPES}
            f.where.append("(list_has_any(l.pain_subtype, ?::VARCHAR[]) OR list_has_any(l.depression_subtype, ?::VARCHAR[]))")
            f.args += [_codes(name, values, allowed)] * 2
        elif name in _BOOL3:
            column, words = _BOOL3[name]
            parts = []
            for v in values:
                if v.lower() not in words:
                    raise _bad(f"unknown {name} {v!r}; allowed: {', '.join(words)}")
                b = words[v.lower()]
                parts.append(f"{column} IS NULL" if b is None else f"{column} = {'TRUE' if b else 'FALSE'}")
            f.where.append("(" + " OR ".join(dict.fromkeys(parts)) + ")")
        elif name == "phase":
            f.where.append("list_has_any(list_transform(coalesce(t.phases, []), lambda x: upper(x)), ?::VARCHAR[])")
            f.args.append([v.upper().replace(" ", "") for v in values])
        elif name == "status":
            f.where.append("upper(t.overall_status) IN (SELECT unnest(?::VARCHAR[]))")
            f.args.append([v.upper().replace(" ", "_") for v in values])
        elif name == "country":
            f.where.append("list_has_any(list_transform(coalesce(t.countries, []), lambda x: lower(x)), ?::VARCHAR[])")
            f.args.append([v.lower() for v in values])
        elif name == "registry":
            f.where.append("lower(t.registry) IN (SELECT unnest(?::VARCHAR[]))")
            f.args.append([v.lower() for v in values])
        elif name == "start_year":
            parts = []
            for v in values:
                m = _YEAR.fullmatch(v)
                if not m:
                    raise _bad(f"start_year {v!r}: give a year (2015) or a range (2010-2015)")
                lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
                parts.append("year(t.start_date) BETWEEN ? AND ?")
                f.args += [min(lo, hi), max(lo, hi)]
            f.where.append("(" + " OR ".join(parts) + ")")
        elif name == "q":  # every word, case-insensitive, literally (see neuromodmap.webapp.search)
            f.words = list(dict.fromkeys(word for text in values for word in text.split()))
    return f


def _page_args(params) -> tuple[int, int]:
    try:
        limit = int(params.get("limit", 50))
        offset = int(params.get("offset", 0))
    except ValueError:
        raise _bad("limit and offset must be whole numbers") from None
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise _bad(f"limit must be 1 to {MAX_LIMIT} and offset 0 or more")
    return limit, offset


def _from(con) -> str:
    # unclassified trials have no labels: they show with neuromod=any only
    return f"trials t LEFT JOIN {ov.effective_labels_sql(con, corrected_column=True)} l ON l.registry_id = t.registry_id"


def _list(value) -> list:
    if value is None:
        return []
    return [v for v in value if v is not None]


def query_trials(con, f: TrialFilter, limit: int, offset: int) -> tuple[int, list[dict]]:
    """(total, one page of items) of the trials that pass ``f``, ordered by registry id.

    Filters on labels alone are answered from the labels (the registry fields are then read for
    the page's trials only), which keeps ``/api/trials`` fast on the 101k-record store.
    """
    labels = ov.effective_labels_sql(con, corrected_column=True)
    cols = "l.modalities, l.modality_group, l.indication, l.neuromod, l.corrected"
    if f.needs_trials:
        sql = (f"SELECT t.registry_id, {cols}, count(*) OVER () FROM trials t LEFT JOIN {labels} l"  # noqa: S608
               f" ON l.registry_id = t.registry_id WHERE {f.sql()} ORDER BY t.registry_id LIMIT ? OFFSET ?")
    else:
        sql = (f"SELECT l.registry_id, {cols}, count(*) OVER () FROM {labels} l"  # noqa: S608
               f" WHERE {f.sql()} ORDER BY l.registry_id LIMIT ? OFFSET ?")
    rows = con.execute(sql, [*f.params(), limit, offset]).fetchall()
    if rows:
        total = rows[0][-1]
    elif offset == 0:
        total = 0
    else:
        src = (f"trials t LEFT JOIN {labels} l ON l.registry_id = t.registry_id" if f.needs_trials
               else f"{labels} l")
        total = con.execute(f"SELECT count(*) FROM {src} WHERE {f.sql()}", f.params()).fetchone()[0]  # noqa: S608
    ids = [r[0] for r in rows]
    fields = {r[0]: r[1:] for r in con.execute(
        "SELECT registry_id, title, phases, overall_status, year(start_date) FROM trials"
        " WHERE registry_id IN (SELECT unnest(?::VARCHAR[]))", [ids]).fetchall()} if ids else {}
    items = []
    for r in rows:
        title, phases, status, year = fields.get(r[0], ("", None, None, None))
        items.append({"registry_id": r[0], "title": title or "", "modalities": _list(r[1]),
                      "modality_group": _list(r[2]), "indication": r[3], "neuromod": r[4],
                      "corrected": _list(r[5]), "phases": _list(phases), "status": status, "start_year": year})
    return total, items


# ---------------------------------------------------------------------------- survey figures
_SURVEY = [
    ("modality_group", "Modality group", "l.modality_group", True),
    ("modality", "Modality", "l.modalities", True),
    ("indication", "Indication", "l.indication", False),
    ("invasive", "Invasiveness", "CASE WHEN l.invasive THEN 'invasive' WHEN NOT l.invasive THEN 'non-invasive' "
                                 "ELSE 'unclear' END", False),
    ("target", "Stimulation target", "l.targets", True),
    ("phase", "Phase", "t.phases", True),
    ("status", "Recruitment status", "t.overall_status", False),
    ("country", "Country (top 15)", "t.countries", True),
    ("start_year", "Start year", "CAST(year(t.start_date) AS VARCHAR)", False),
]
_LABELS = {
    "modality_group": {k: g.label for k, g in vocab.MODALITY_GROUPS.items()},
    "modality": {k: m.label for k, m in vocab.MODALITIES.items()},
    "indication": {k: i.label for k, i in vocab.INDICATIONS.items()},
    "target": {k: t.label for k, t in vocab.TARGETS.items()},
}


def survey_counts(con, f: TrialFilter) -> dict:
    """Counts of the filtered trials by each survey dimension (multi-valued ones count a trial in
    each of its values), as in ``neuromodmap trials survey``."""
    source = _from(con)
    exprs = ", ".join(expr for _, _, expr, _ in _SURVEY)
    rows = con.execute(f"SELECT {exprs} FROM {source} WHERE {f.sql()}", f.params()).fetchall()  # noqa: S608
    out = {"total": len(rows), "figures": []}
    for i, (key, title, _, multi) in enumerate(_SURVEY):
        counter: Counter = Counter()
        for row in rows:
            v = row[i]
            if multi:
                counter.update({x for x in (v or []) if x})
            elif v is not None:
                counter[v] += 1
        if key == "start_year":
            items = sorted(counter.items())
        else:
            items = counter.most_common(15 if key == "country" else None)
        labels = _LABELS.get(key, {})
        out["figures"].append({"key": key, "title": title, "counts": [
            {"value": v, "label": labels.get(v, v), "n": n} for v, n in items]})
    return out


# ---------------------------------------------------------------------------- evidence highlighting
def _pattern(snippet: str) -> re.Pattern | None:
    text = snippet.rstrip("…").strip()
    words = text.split()
    if not words:
        return None
    return re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)


def highlight(text: str, evidence: list[dict]) -> Markup:
    """``text`` escaped, with each evidence snippet found in it wrapped in ``<mark class="nm-ev">``.

    Every piece of ``text`` goes through :func:`markupsafe.escape`; only the marks are ours.
    """
    spans: list[tuple[int, int, list[dict]]] = []
    for ev in evidence:
        pat = _pattern(ev.get("text") or "")
        if pat is None:
            continue
        for m in pat.finditer(text):
            spans.append((m.start(), m.end(), [ev]))
    if not spans:
        return escape(text)
    spans.sort(key=lambda s: (s[0], -s[1]))
    merged: list[tuple[int, int, list[dict]]] = []
    for start, end, evs in spans:
        if merged and start < merged[-1][1]:
            s0, e0, ev0 = merged[-1]
            merged[-1] = (s0, max(e0, end), ev0 + evs)
        else:
            merged.append((start, end, evs))
    out, pos = [], 0
    for start, end, evs in merged:
        out.append(escape(text[pos:start]))
        tags = sorted({f"{e['label']}: {e['value']}" for e in evs})
        labels = " ".join(sorted({e["label"] for e in evs}))
        out.append(Markup('<mark class="nm-ev" data-labels="{}" title="{}">{}</mark>').format(
            labels, "; ".join(tags), text[start:end]))
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def _record_fields(trial: Trial) -> list[tuple[str, str]]:
    from neuromodmap.trials.classify import _fields

    return _fields(trial)


# ---------------------------------------------------------------------------- one trial
def _registry_link(registry_id: str, url: str | None) -> str | None:
    found = find_registry_ids(registry_id)
    if found:
        return registry_url(found[0])
    if url and re.match(r"https?://", url):
        return url
    return None


def load_trial(con, registry_id: str) -> dict:
    # a store written by an older version may lack newer columns (they read as empty)
    have = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'trials'"
                                      " AND database_name = current_database()").fetchall()}
    cols = ", ".join(c if c in have else f"NULL AS {c}" for c in TRIAL_COLUMNS)
    row = con.execute(f"SELECT {cols} FROM trials WHERE registry_id = ?", [registry_id]).fetchone()  # noqa: S608
    if row is None:
        raise HTTPException(404, f"no trial {registry_id!r} in the store")
    trial = trial_from_row(row)
    cur = con.execute(f"SELECT * FROM {ov.effective_labels_sql(con, corrected_column=True)} WHERE registry_id = ?",  # noqa: S608
                      [registry_id])
    lrow = cur.fetchone()
    labels = dict(zip([d[0] for d in cur.description], lrow, strict=True)) if lrow else None
    classifier = None
    if labels is not None:
        cur = con.execute("SELECT * FROM trial_labels WHERE registry_id = ?", [registry_id])
        classifier = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    evidence = json.loads(labels["evidence"]) if labels and labels.get("evidence") else []
    return {"trial": trial, "labels": labels, "classifier": classifier, "evidence": evidence,
            "history": ov.history(con, registry_id), "registry_url": _registry_link(registry_id, trial.url)}


def _json_labels(labels: dict | None) -> dict | None:
    if labels is None:
        return None
    out = {}
    for name in ov.FIELDS:
        v = labels.get(name)
        out[name] = list(v) if isinstance(v, list | tuple) else v
    out["classifier_version"] = labels.get("classifier_version")
    out["corrected"] = _list(labels.get("corrected"))
    return out


# ---------------------------------------------------------------------------- API
@router.get("/api/trials", tags=["trials"])
def api_trials(request: Request) -> dict:
    """The trials that pass the filters (query string: any label column, ``q`` for text; several
    values comma-separated), one page (``limit``, ``offset``) at a time."""
    f = parse_filter(request.query_params)
    limit, offset = _page_args(request.query_params)
    with stores(request).read("trials") as con:
        f.bind_text(con, text_index(request))
        total, items = query_trials(con, f, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "filters": f.values, "neuromod": f.neuromod,
            **({"text_search": f.text_search} if f.text_search else {}),
            "items": [{k: it[k] for k in ("registry_id", "title", "modalities", "modality_group", "indication",
                                          "corrected")} for it in items]}


@router.get("/api/survey", tags=["trials"])
def api_survey(request: Request) -> dict:
    """The survey counts (modality group, modality, indication, ...) of the filtered trials."""
    f = parse_filter(request.query_params)
    with stores(request).read("trials") as con:
        f.bind_text(con, text_index(request))
        counts = survey_counts(con, f)
    return {"filters": f.values, "neuromod": f.neuromod, **counts}


@router.get("/api/trials/{registry_id}", tags=["trials"])
def api_trial(request: Request, registry_id: str) -> dict:
    """The record, its labels (corrections applied; ``classifier_labels`` without them) and evidence."""
    with stores(request).read("trials") as con:
        d = load_trial(con, registry_id)
    return {"registry_id": registry_id, "registry_url": d["registry_url"],
            "record": d["trial"].model_dump(mode="json"), "labels": _json_labels(d["labels"]),
            "classifier_labels": _json_labels(d["classifier"]), "evidence": d["evidence"],
            "history": d["history"]}


class Correction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="a label column: " + ", ".join(ov.FIELDS))
    value: Any = Field(description="a vocabulary code, a list of codes, or true/false/null")
    reviewer: str
    note: str = ""


class Revert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewer: str
    note: str = ""


def _store_correction(request: Request, registry_id: str, body: Correction) -> dict:
    try:
        ov.validate_value(body.field, body.value)  # before taking the write lock
        with stores(request).write("trials") as con:
            row = ov.add_override(con, registry_id, body.field, body.value, reviewer=body.reviewer, note=body.note)
    except ov.OverrideError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return row


@router.post("/api/trials/{registry_id}/labels", tags=["trials"], status_code=201)
def api_correct(request: Request, registry_id: str, body: Correction) -> dict:
    """Correct one label: stored as an override (who, when, old value, new value, note)."""
    row = _store_correction(request, registry_id, body)
    with stores(request).read("trials") as con:
        labels = _json_labels(load_trial(con, registry_id)["labels"])
    return {"override": row, "labels": labels}


@router.get("/api/trials/{registry_id}/history", tags=["trials"])
def api_history(request: Request, registry_id: str) -> dict:
    """Every correction of the trial, newest first (reverted ones marked)."""
    with stores(request).read("trials") as con:
        if con.execute("SELECT count(*) FROM trials WHERE registry_id = ?", [registry_id]).fetchone()[0] == 0:
            raise HTTPException(404, f"no trial {registry_id!r} in the store")
        items = ov.history(con, registry_id)
    return {"registry_id": registry_id, "items": items}


@router.post("/api/trials/{registry_id}/labels/{override_id}/revert", tags=["trials"])
def api_revert(request: Request, registry_id: str, override_id: str, body: Revert) -> dict:
    """Revert a correction: the label falls back to the previous standing value; history kept."""
    try:
        with stores(request).write("trials") as con:
            row = ov.revert_override(con, registry_id, override_id, reviewer=body.reviewer, note=body.note)
    except ov.OverrideError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return {"override": row}


# ---------------------------------------------------------------------------- pages
def _options() -> dict:
    return {
        "modality": [(k, f"{m.label} ({k})") for k, m in vocab.MODALITIES.items()],
        "modality_group": [(k, g.label) for k, g in vocab.MODALITY_GROUPS.items()],
        "indication": [(k, i.label) for k, i in vocab.INDICATIONS.items()],
        "subtype": [(k, f"{s.label} ({s.indication})") for k, s in {**vocab.PAIN_SUBTYPES,
                                                                   **vocab.DEPRESSION_SUBTYPES}.items()],
        "target": [(k, t.label) for k, t in vocab.TARGETS.items()],
        "invasive": [("invasive", "invasive"), ("non-invasive", "non-invasive"), ("unclear", "unclear")],
    }


@router.get("/trials", include_in_schema=False)
def trials_page(request: Request):
    f = parse_filter(request.query_params)
    limit, offset = _page_args(request.query_params)
    with stores(request).read("trials") as con:
        f.bind_text(con, text_index(request))
        total, items = query_trials(con, f, limit, offset)
        survey = survey_counts(con, f)
    ctx = {"f": f, "total": total, "items": items, "limit": limit, "offset": offset, "survey": survey,
           "options": _options(), "labels": _LABELS}
    partial = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "results"
    return render(request, "trials/results.html" if partial else "trials/list.html", ctx, nav="trials")


@router.get("/trials/{registry_id}", include_in_schema=False)
def trial_page(request: Request, registry_id: str):
    return _trial_page(request, registry_id)


def _trial_page(request: Request, registry_id: str, error: str | None = None, status_code: int = 200):
    with stores(request).read("trials") as con:
        d = load_trial(con, registry_id)
    by_field: dict[str, list[dict]] = {}
    for ev in d["evidence"]:
        by_field.setdefault(ev.get("field", ""), []).append(ev)
    texts = [(name, highlight(text, by_field.get(name, []))) for name, text in _record_fields(d["trial"])]
    by_label: dict[str, list[dict]] = {}
    for ev in d["evidence"]:
        key = {"modality": "modalities", "target": "targets"}.get(ev["label"], ev["label"])
        by_label.setdefault(key, []).append(ev)
    fields = [(name, spec) for name, spec in ov.FIELDS.items()]
    return render(request, "trials/detail.html", {
        **d, "texts": texts, "by_label": by_label, "fields": fields, "labels_json": _json_labels(d["labels"]),
        "classifier_json": _json_labels(d["classifier"]), "error": error, "vocab_labels": _LABELS,
    }, nav="trials", status_code=status_code)


@router.post("/trials/{registry_id}/labels", include_in_schema=False)
async def trial_correct_form(request: Request, registry_id: str):
    form = await request.form()
    field_name = str(form.get("field", ""))
    spec = ov.FIELDS.get(field_name)
    if spec is not None and spec.kind == "codes":
        value: Any = [str(v) for v in form.getlist("value") if str(v)]
        if len(value) == 1 and "," in value[0]:
            value = value[0]
    else:
        value = str(form.get("value", ""))
    body = Correction(field=field_name, value=value, reviewer=str(form.get("reviewer", "")),
                      note=str(form.get("note", "")))
    try:
        _store_correction(request, registry_id, body)
    except HTTPException as exc:
        if exc.status_code == 404:
            raise
        return _trial_page(request, registry_id, error=str(exc.detail), status_code=exc.status_code)
    return RedirectResponse(f"/trials/{registry_id}#labels", status_code=303)


@router.post("/trials/{registry_id}/labels/{override_id}/revert", include_in_schema=False)
async def trial_revert_form(request: Request, registry_id: str, override_id: str):
    form = await request.form()
    try:
        with stores(request).write("trials") as con:
            ov.revert_override(con, registry_id, override_id, reviewer=str(form.get("reviewer", "")),
                               note=str(form.get("note", "")))
    except ov.OverrideError as exc:
        if exc.status == 404:
            raise HTTPException(404, str(exc)) from None
        return _trial_page(request, registry_id, error=str(exc), status_code=exc.status)
    return RedirectResponse(f"/trials/{registry_id}#history", status_code=303)

