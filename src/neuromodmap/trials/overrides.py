"""Reviewer corrections of trial labels, with an audit trail.

A correction is a row of ``trial_label_overrides``: who, when, the label field, the value it
replaced, the new value and a note. The classifier's own labels (``trial_labels``) are never
changed, so a re-classification keeps every correction on top. Reverting a correction marks it
reverted (who, when, why) and keeps it in the history; the label falls back to the latest
correction still standing, or to the classifier's value.

:func:`effective_labels_sql` is the one place where corrections are applied: the survey and the
report (through :meth:`TrialStore.labels_df`) and the web app's pages and API all read labels
through it.

Derived labels follow their source: a correction of ``modalities`` also stores, for each label
that follows from the modality codes (``neuromod``, ``modality_group``, ``invasive``; see
:func:`neuromodmap.vocabulary.labels_from_modalities`, the function the classifier uses), a
*derived* correction (``derived_from`` = the source's id) with the value that function gives.
An explicit correction of a derived label wins over any derived one, older or newer. Reverting
the source reverts its derived corrections too; a derived correction cannot be reverted alone
(revert its source, or correct the label explicitly).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb

from neuromodmap import vocabulary as vocab

__all__ = ["OVERRIDES_DDL", "OVERRIDES_MIGRATE", "DERIVED", "FIELDS", "LabelField", "OverrideError", "validate_value", "effective_labels_sql",
           "add_override", "revert_override", "history", "has_overrides_table"]

OVERRIDES_DDL = """CREATE TABLE IF NOT EXISTS trial_label_overrides (
    override_id VARCHAR PRIMARY KEY, seq BIGINT, registry_id VARCHAR, field VARCHAR, old_value JSON,
    new_value JSON, reviewer VARCHAR, note VARCHAR, created_at TIMESTAMP, reverted_at TIMESTAMP,
    reverted_by VARCHAR, revert_note VARCHAR, derived_from VARCHAR)"""
# tables made before derived corrections had no derived_from column
OVERRIDES_MIGRATE = "ALTER TABLE trial_label_overrides ADD COLUMN IF NOT EXISTS derived_from VARCHAR"
#: label field -> the labels derived from it when it is corrected
DERIVED: dict[str, tuple[str, ...]] = {"modalities": vocab.DERIVED_FROM_MODALITIES}


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


def _has_derived_column(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'trial_label_overrides' AND column_name = 'derived_from'"
        " AND database_name = current_database() AND schema_name = current_schema()").fetchone()[0])


def _standing(con: duckdb.DuckDBPyConnection) -> str:
    # per trial and field the correction in force: an explicit one before any derived one, then the newest
    order = "(derived_from IS NULL) DESC, seq DESC" if _has_derived_column(con) else "seq DESC"
    return ("SELECT * FROM trial_label_overrides WHERE reverted_at IS NULL"  # noqa: S608 (fixed SQL)
            f" QUALIFY row_number() OVER (PARTITION BY registry_id, field ORDER BY {order}) = 1")


def _init(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(OVERRIDES_DDL)
    con.execute(OVERRIDES_MIGRATE)


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
        f"(SELECT registry_id, {', '.join(aggs)}, list(field ORDER BY field) AS fields FROM ({_standing(con)}) "
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
    A correction of ``modalities`` also stores the labels derived from it (:data:`DERIVED`), listed
    under the returned row's ``derived``.
    """
    _init(con)
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
    seq = con.execute("SELECT coalesce(max(seq), 0) FROM trial_label_overrides").fetchone()[0]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)

    def insert(name: str, value: Any, row_note: str, derived_from: str | None) -> dict:
        nonlocal seq
        seq += 1
        row = {"override_id": uuid.uuid4().hex[:16], "seq": seq, "registry_id": registry_id, "field": name,
               "old_value": json.dumps(_plain(current[name])), "new_value": json.dumps(value), "reviewer": reviewer,
               "note": row_note, "created_at": now, "derived_from": derived_from}
        con.execute(
            "INSERT INTO trial_label_overrides (override_id, seq, registry_id, field, old_value, new_value, reviewer,"
            " note, created_at, derived_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [row["override_id"], seq, registry_id, name, row["old_value"], row["new_value"], reviewer, row_note,
             now, derived_from],
        )
        return row

    source = insert(field, new, note or "", None)
    derived = []
    if field in DERIVED:
        values = vocab.labels_from_modalities(new)
        explicit = _explicit_fields(con, registry_id)
        for name in DERIVED[field]:
            why = f"derived from the correction of {field} ({source['override_id']})"
            if name in explicit:
                why += f"; an explicit correction of {name} stands and wins"
            derived.append(_history_row(insert(name, values[name], why, source["override_id"])))
    out = _history_row(source)
    out["derived"] = derived
    return out


def _explicit_fields(con: duckdb.DuckDBPyConnection, registry_id: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT DISTINCT field FROM trial_label_overrides WHERE registry_id = ? AND reverted_at IS NULL"
        " AND derived_from IS NULL", [registry_id]).fetchall()}


def revert_override(con: duckdb.DuckDBPyConnection, registry_id: str, override_id: str, *, reviewer: str,
                    note: str = "") -> dict:
    """Mark a standing correction reverted (kept in the history); return its history row.

    Reverting a correction reverts the corrections derived from it too (listed under the returned
    row's ``derived``); a derived correction alone cannot be reverted (:class:`OverrideError`, 409).
    """
    _init(con)
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise OverrideError("a revert needs the reviewer's name ('reviewer')")
    found = con.execute("SELECT reverted_at, derived_from, field FROM trial_label_overrides WHERE override_id = ?"
                        " AND registry_id = ?", [override_id, registry_id]).fetchone()
    if found is None:
        raise OverrideError(f"no correction {override_id!r} of trial {registry_id!r}", status=404)
    if found[0] is not None:
        raise OverrideError(f"correction {override_id} was already reverted", status=409)
    if found[1] is not None:
        raise OverrideError(f"correction {override_id} of {found[2]} was derived from correction {found[1]}: revert "
                            f"that one (which reverts this too), or correct {found[2]} explicitly", status=409)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    con.execute("UPDATE trial_label_overrides SET reverted_at = ?, reverted_by = ?, revert_note = ? WHERE override_id = ?",
                [now, reviewer, note or "", override_id])
    con.execute("UPDATE trial_label_overrides SET reverted_at = ?, reverted_by = ?, revert_note = ? WHERE derived_from = ?"
                " AND reverted_at IS NULL", [now, reviewer, f"reverted with its source {override_id}", override_id])
    rows = history(con, registry_id)
    out = next(h for h in rows if h["override_id"] == override_id)
    out["derived"] = [h for h in rows if h["derived_from"] == override_id]
    return out


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
        "derived_from": row.get("derived_from"),
    }


def history(con: duckdb.DuckDBPyConnection, registry_id: str) -> list[dict]:
    """Every correction of a trial, newest first (reverted ones included, marked).

    ``derived_from`` names the correction a derived one follows (None for an explicit one);
    ``in_force`` says whether the row gives the label now (False when reverted, superseded by a
    newer correction, or, for a derived one, overruled by an explicit correction).
    """
    if not has_overrides_table(con):
        return []
    cur = con.execute(f"SELECT * FROM ({_standing(con)}) WHERE registry_id = ?", [registry_id])  # noqa: S608
    in_force = {r[0] for r in cur.fetchall()}
    cur = con.execute("SELECT * FROM trial_label_overrides WHERE registry_id = ? ORDER BY seq DESC", [registry_id])
    cols = [d[0] for d in cur.description]
    out = []
    for r in cur.fetchall():
        row = _history_row(dict(zip(cols, r, strict=True)))
        row["in_force"] = row["override_id"] in in_force
        out.append(row)
    return out
