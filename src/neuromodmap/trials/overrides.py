"""Reviewer corrections of trial labels, with an audit trail.

A correction is a row of ``trial_label_overrides``: who, when, the label field, the value it
replaced, the new value and a note. The classifier's own labels (``trial_labels``) are never
changed, so a re-classification keeps every correction on top. Reverting a correction marks it
reverted (who, when, why) and keeps it in the history; the label falls back to the latest
correction still standing, or to the classifier's value.

:func:`effective_labels_sql` is the one place where corrections are applied: the survey and the
report (through :meth:`TrialStore.labels_df`) and the web app's pages and API all read labels
through it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb

from neuromodmap import vocabulary as vocab

__all__ = ["OVERRIDES_DDL", "FIELDS", "LabelField", "OverrideError", "validate_value", "effective_labels_sql",
           "add_override", "revert_override", "history", "has_overrides_table"]

OVERRIDES_DDL = """CREATE TABLE IF NOT EXISTS trial_label_overrides (
    override_id VARCHAR PRIMARY KEY, seq BIGINT, registry_id VARCHAR, field VARCHAR, old_value JSON,
    new_value JSON, reviewer VARCHAR, note VARCHAR, created_at TIMESTAMP, reverted_at TIMESTAMP,
    reverted_by VARCHAR, revert_note VARCHAR)"""


class OverrideError(ValueError):
    """A correction that cannot be stored (unknown trial, field or value); nothing was changed."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LabelField:
    name: str
    #: "bool" (true/false), "bool3" (true/false/null = unclear), "code" (one code), "codes" (a list)
    kind: str
    codes: tuple[str, ...] = ()
    sql_type: str = "VARCHAR"


FIELDS: dict[str, LabelField] = {f.name: f for f in [
    LabelField("neuromod", "bool", sql_type="BOOLEAN"),
    LabelField("modalities", "codes", tuple(vocab.MODALITIES), "VARCHAR[]"),
    LabelField("modality_group", "codes", tuple(vocab.MODALITY_GROUPS), "VARCHAR[]"),
    LabelField("indication", "code", tuple(vocab.INDICATIONS), "VARCHAR"),
    LabelField("pain_subtype", "codes", tuple(vocab.PAIN_SUBTYPES), "VARCHAR[]"),
    LabelField("depression_subtype", "codes", tuple(vocab.DEPRESSION_SUBTYPES), "VARCHAR[]"),
    LabelField("chronic_pain", "bool3", sql_type="BOOLEAN"),
    LabelField("targets", "codes", tuple(vocab.TARGETS), "VARCHAR[]"),
    LabelField("invasive", "bool3", sql_type="BOOLEAN"),
]}

_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
_NULL = {"", "null", "none", "unclear", "unknown"}


def _allowed(field: LabelField) -> str:
    codes = list(field.codes)
    return ", ".join(codes[:40]) + (f" ... ({len(codes)} codes)" if len(codes) > 40 else "")


def validate_value(field: str, value: Any) -> Any:
    """The correction's value in its stored form, or :class:`OverrideError` saying what is allowed.

    Lists may be given as a JSON list or a comma-separated string; booleans as true/false (and,
    for ``chronic_pain`` and ``invasive``, null/"unclear").
    """
    spec = FIELDS.get(field)
    if spec is None:
        raise OverrideError(f"unknown label field {field!r}; correctable fields: {', '.join(FIELDS)}")
    if spec.kind in ("bool", "bool3"):
        if isinstance(value, bool):
            return value
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULL):
            if spec.kind == "bool3":
                return None
            raise OverrideError(f"{field} must be true or false")
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        allowed = "true, false or null (unclear)" if spec.kind == "bool3" else "true or false"
        raise OverrideError(f"{field} must be {allowed}, not {value!r}")
    if spec.kind == "code":
        if not isinstance(value, str) or value.strip() not in spec.codes:
            raise OverrideError(f"unknown {field} value {value!r}; allowed: {_allowed(spec)}")
        return value.strip()
    # a list of codes
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value if v.strip()]
    else:
        raise OverrideError(f"{field} takes a list of codes (or a comma-separated string), not {value!r}")
    bad = [v for v in items if v not in spec.codes]
    if bad:
        raise OverrideError(f"unknown {field} value(s) {', '.join(map(repr, bad))}; allowed: {_allowed(spec)}")
    return list(dict.fromkeys(items))


def has_overrides_table(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'trial_label_overrides'"
        " AND database_name = current_database() AND schema_name = current_schema()").fetchone()[0])


_STANDING = ("SELECT * FROM trial_label_overrides WHERE reverted_at IS NULL"
             " QUALIFY row_number() OVER (PARTITION BY registry_id, field ORDER BY seq DESC) = 1")


def effective_labels_sql(con: duckdb.DuckDBPyConnection, *, corrected_column: bool = False) -> str:
    """A subquery (in parentheses) giving ``trial_labels`` with every standing correction applied.

    Same columns as ``trial_labels``; with ``corrected_column`` also ``corrected`` (the list of
    corrected fields, empty when none). Without an overrides table: ``trial_labels`` itself.
    """
    if not has_overrides_table(con):
        extra = ", CAST([] AS VARCHAR[]) AS corrected" if corrected_column else ""
        return f"(SELECT *{extra} FROM trial_labels)"  # noqa: S608 (fixed SQL)
    aggs, replaces = [], []
    for name, spec in FIELDS.items():
        aggs.append(f"bool_or(field = '{name}') AS f_{name}, any_value(new_value) FILTER (WHERE field = '{name}') AS v_{name}")
        value = f"o.v_{name} ->> '$'" if spec.kind == "code" else f"CAST(o.v_{name} AS {spec.sql_type})"
        replaces.append(f"CASE WHEN o.f_{name} THEN {value} ELSE l.{name} END AS {name}")
    extra = ", coalesce(o.fields, CAST([] AS VARCHAR[])) AS corrected" if corrected_column else ""
    return (
        f"(SELECT l.* REPLACE ({', '.join(replaces)}){extra} FROM trial_labels l LEFT JOIN "  # noqa: S608 (fixed names)
        f"(SELECT registry_id, {', '.join(aggs)}, list(field ORDER BY field) AS fields FROM ({_STANDING}) "
        "GROUP BY registry_id) o ON o.registry_id = l.registry_id)"
    )


def _label_row(con: duckdb.DuckDBPyConnection, registry_id: str) -> dict | None:
    sql = effective_labels_sql(con)
    cur = con.execute(f"SELECT * FROM {sql} WHERE registry_id = ?", [registry_id])  # noqa: S608
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list) else value


def add_override(con: duckdb.DuckDBPyConnection, registry_id: str, field: str, value: Any, *, reviewer: str,
                 note: str = "") -> dict:
    """Store a correction (``con`` writable, inside the caller's transaction); return its history row.

    :class:`OverrideError` (nothing written) for an unknown trial, field or value, or no reviewer.
    """
    con.execute(OVERRIDES_DDL)
    new = validate_value(field, value)
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise OverrideError("a correction needs the reviewer's name ('reviewer')")
    if len(reviewer) > 200 or len(note or "") > 5000:
        raise OverrideError("reviewer (200 characters) or note (5,000 characters) too long")
    current = _label_row(con, registry_id)
    if current is None:
        known = con.execute("SELECT count(*) FROM trials WHERE registry_id = ?", [registry_id]).fetchone()[0]
        raise OverrideError(f"no trial {registry_id!r} in the store" if not known else
                            f"trial {registry_id} has no labels yet; run 'neuromodmap trials classify --db ...' first",
                            status=404 if not known else 409)
    old = _plain(current[field])
    seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM trial_label_overrides").fetchone()[0]
    row = {"override_id": uuid.uuid4().hex[:16], "seq": seq, "registry_id": registry_id, "field": field,
           "old_value": json.dumps(old), "new_value": json.dumps(new), "reviewer": reviewer, "note": note or "",
           "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)}
    con.execute(
        "INSERT INTO trial_label_overrides (override_id, seq, registry_id, field, old_value, new_value, reviewer,"
        " note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [row["override_id"], seq, registry_id, field, row["old_value"], row["new_value"], reviewer, row["note"],
         row["created_at"]],
    )
    return _history_row(row)


def revert_override(con: duckdb.DuckDBPyConnection, registry_id: str, override_id: str, *, reviewer: str,
                    note: str = "") -> dict:
    """Mark a standing correction reverted (kept in the history); return its history row."""
    con.execute(OVERRIDES_DDL)
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise OverrideError("a revert needs the reviewer's name ('reviewer')")
    found = con.execute("SELECT reverted_at FROM trial_label_overrides WHERE override_id = ? AND registry_id = ?",
                        [override_id, registry_id]).fetchone()
    if found is None:
        raise OverrideError(f"no correction {override_id!r} of trial {registry_id!r}", status=404)
    if found[0] is not None:
        raise OverrideError(f"correction {override_id} was already reverted", status=409)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    con.execute("UPDATE trial_label_overrides SET reverted_at = ?, reverted_by = ?, revert_note = ? WHERE override_id = ?",
                [now, reviewer, note or "", override_id])
    return next(h for h in history(con, registry_id) if h["override_id"] == override_id)


def _history_row(row: dict) -> dict:
    def value(v):
        return json.loads(v) if isinstance(v, str) else v

    created, reverted = row.get("created_at"), row.get("reverted_at")
    return {
        "override_id": row["override_id"], "registry_id": row["registry_id"], "field": row["field"],
        "old_value": value(row["old_value"]), "new_value": value(row["new_value"]), "reviewer": row["reviewer"],
        "note": row["note"], "created_at": created.isoformat() + "Z" if created else None,
        "reverted_at": reverted.isoformat() + "Z" if reverted else None,
        "reverted_by": row.get("reverted_by"), "revert_note": row.get("revert_note"),
    }


def history(con: duckdb.DuckDBPyConnection, registry_id: str) -> list[dict]:
    """Every correction of a trial, newest first (reverted ones included, marked)."""
    if not has_overrides_table(con):
        return []
    cur = con.execute("SELECT * FROM trial_label_overrides WHERE registry_id = ? ORDER BY seq DESC", [registry_id])
    cols = [d[0] for d in cur.description]
    return [_history_row(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]
