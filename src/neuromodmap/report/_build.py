"""Assemble the stages' sections into one self-contained HTML document.

Each stage writes a ``section.json`` into its output folder (see :mod:`._section`). The report
reads every section it finds in the folders it is given, inlines the figures (as data URIs) and
tables (HTML, or JSON rendered by a small embedded script for the searchable ones) they name,
and renders, in a fixed order with stable anchors: ``#overview``, ``#trials``,
``#literature``, ``#evidence``, ``#connectome`` and ``#methods``.

Safety: every text goes through Jinja2's autoescaping; JSON is embedded with ``<``, ``>`` and
``&`` written as ``\\u003c`` escapes, so no string can close the ``<script>`` element; a file
is inlined only if it lies inside the folder of the section (or page) that names it, after
symbolic links are resolved; the page carries a Content-Security-Policy that forbids every
network request. Folders without a ``section.json`` still contribute their HTML pages, with
scripts and remote resources removed, under "Other pages".
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import jinja2

from neuromodmap import __version__
from neuromodmap._utils import atomic_write, restore_formula
from neuromodmap.report._section import (
    SECTION_FILE,
    STAGE_TITLES,
    STAGES,
    Block,
    Section,
    Table,
    is_url,
    read_section,
    software_versions,
)

__all__ = ["build_report", "ReportWarning", "json_for_script"]

_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".gif": "image/gif", ".webp": "image/webp"}
#: largest file inlined (images and CSV tables)
MAX_FILE_BYTES = 20 * 1024 * 1024
_SHORT = {"trials": "Trials", "literature": "Literature", "evidence": "Evidence", "connectome": "Connectome"}
_MISSING = {
    "trials": "No trials section among the inputs: run `neuromodmap trials survey -o DIR` and pass DIR to "
              "`neuromodmap report build`.",
    "literature": "No literature section among the inputs: run `neuromodmap literature prisma -o DIR` and pass "
                  "DIR to `neuromodmap report build`.",
    "evidence": "No meta-analysis section among the inputs: run `neuromodmap evidence meta SHEET -o DIR` and pass "
                "DIR to `neuromodmap report build`.",
    "connectome": "No connectome section among the inputs: run `neuromodmap connectome map -o DIR` and pass DIR "
                  "to `neuromodmap report build`.",
}


class ReportWarning(UserWarning):
    """Something named by a section was left out of the report (the report says what and why)."""


def json_for_script(data) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _inside(folder: Path, ref: str) -> Path:
    """The file ``ref`` names inside ``folder``; ValueError if it is absolute or escapes the folder."""
    if not ref or os.path.isabs(ref) or ref.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", ref):
        raise ValueError(f"{ref!r} is not a path relative to the section folder")
    root = folder.resolve()
    target = (root / ref).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"{ref!r} lies outside the section folder {folder}")
    if not target.is_file():
        raise ValueError(f"{ref!r}: no such file in {folder}")
    if target.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{ref!r} is larger than {MAX_FILE_BYTES // 2**20} MB")
    return target


def _data_uri(path: Path) -> str:
    mime = _IMAGE_TYPES.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path.name}: not an image type the report inlines ({', '.join(_IMAGE_TYPES)})")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """A section's table as written by its stage; the apostrophe each stage put before text
    that a spreadsheet would run as a formula is taken off again (HTML escapes the text)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = [[restore_formula(v) for v in row] for row in csv.reader(fh)]
    if not rows:
        return [], []
    return rows[0], rows[1:]


_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


def _fmt_cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        if value != 0 and not 1e-3 <= abs(value) < 1e6:
            return f"{value:.4g}"
        return f"{round(value, 4):g}"
    return "" if value is None else str(value)


@dataclass
class _Ctx:
    figure_no: int = 0
    table_no: int = 0
    data_blocks: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _render_table(table: Table, folder: Path, anchor: str, ctx: _Ctx) -> dict:
    if table.csv:
        columns, rows = _read_csv(_inside(folder, table.csv))
    else:
        columns, rows = list(table.columns), [list(r) for r in table.rows]
    width = len(columns)
    rows = [(r + [""] * width)[:width] for r in rows]
    position = {c: i for i, c in enumerate(columns)}
    hidden = {c for c in table.hidden if c in position} | {u for c, u in table.links.items() if c in position}
    ctx.table_no += 1
    out = {"anchor": anchor, "number": ctx.table_no, "title": table.title, "caption": table.caption,
           "searchable": table.searchable, "n_rows": len(rows)}
    if table.searchable:
        spec_columns = []
        for c in columns:
            link = table.links.get(c)
            spec_columns.append({"label": table.labels.get(c, c), "hidden": c in hidden,
                                 "link": position[link] if link in position else -1})
        data_rows = []
        url_cols = {position[u] for c, u in table.links.items() if u in position}
        for r in rows:
            data_rows.append([(v if is_url(str(v)) else "") if i in url_cols else _fmt_cell(v)
                              for i, v in enumerate(r)])
        facets = [position[f] for f in table.facets if f in position]
        ctx.data_blocks.append({"id": f"{anchor}-data", "json": json_for_script(
            {"columns": spec_columns, "rows": data_rows, "facets": facets, "pageSize": table.page_size})})
        return out
    shown = [i for i, c in enumerate(columns) if c not in hidden]
    out["header"] = [table.labels.get(columns[i], columns[i]) for i in shown]
    limit = table.max_rows or len(rows)
    body = []
    for r in rows[:limit]:
        cells = []
        for i in shown:
            text = _fmt_cell(r[i])
            link = table.links.get(columns[i])
            url = str(r[position[link]]) if link in position else ""
            cells.append({"text": text, "url": url if is_url(url) else "",
                          "num": bool(_NUMBER.match(text))})
        body.append(cells)
    out["body"] = body
    out["truncated"] = limit < len(rows)
    return out


def _paragraphs(text: str) -> list[dict]:
    """Methods text: blank lines separate paragraphs; lines starting with '- ' form a list."""
    out = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        items = [line[2:] for line in lines if line.startswith("- ")]
        plain = [line for line in lines if not line.startswith("- ")]
        if plain:
            out.append({"text": " ".join(plain), "entries": []})
        if items:
            out.append({"text": "", "entries": items})
    return out


def _software_line(versions: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def _render_section(section: Section, folder: Path, ctx: _Ctx) -> dict:
    anchor = section.id if section.id not in (*STAGES, "overview", "methods", "other") else f"{section.id}-section"
    local_warnings: list[str] = []

    def note(message: str) -> None:
        local_warnings.append(message)
        ctx.warnings.append(f"{section.id}: {message}")
        warnings.warn(f"{folder / SECTION_FILE}: {message}", ReportWarning, stacklevel=3)

    figures = {f.id: f for f in section.figures}
    tables = {t.id: t for t in section.tables}
    # figures and tables that no block places follow the blocks, in their own order
    named = {(b.kind, b.ref) for b in section.blocks if b.kind in ("figure", "table")}
    order = list(section.blocks)
    order += [Block(kind="figure", ref=f) for f in figures if ("figure", f) not in named]
    order += [Block(kind="table", ref=t) for t in tables if ("table", t) not in named]
    body = []
    table_anchor: dict[str, tuple[str, int, str]] = {}
    for block in order:
        if block.kind == "figure":
            fig = figures.get(block.ref)
            if fig is None:
                note(f"figure {block.ref!r} is named but not described")
                continue
            try:
                uri = _data_uri(_inside(folder, fig.src))
            except (ValueError, OSError) as exc:
                note(f"figure {fig.id} not inlined: {exc}")
                continue
            ctx.figure_no += 1
            body.append({"kind": "figure", "figure": {"anchor": f"{anchor}-fig-{fig.id}", "number": ctx.figure_no,
                                                      "caption": fig.caption, "alt": fig.alt, "data_uri": uri}})
        elif block.kind == "table":
            tab = tables.get(block.ref)
            if tab is None:
                note(f"table {block.ref!r} is named but not described")
                continue
            try:
                rendered = _render_table(tab, folder, f"{anchor}-{tab.id}", ctx)
            except (ValueError, OSError, csv.Error, UnicodeDecodeError) as exc:
                note(f"table {tab.id} not inlined: {exc}")
                continue
            table_anchor[tab.id] = (rendered["anchor"], rendered["number"], tab.title)
            body.append({"kind": "table", "table": rendered})
        else:
            body.append({"kind": block.kind, "text": block.text, "entries": block.items})
    headlines = []
    for h in section.headlines:
        target = table_anchor.get(h.table)
        if h.table and target is None:
            note(f"headline {h.label!r} names table {h.table!r}, which is not in the report")
        headlines.append({"label": h.label, "value": h.value, "detail": h.detail,
                          "anchor": target[0] if target else "",
                          "table_name": f"Table {target[1]}: {target[2]}" if target else ""})
    versions = dict(section.software)
    return {"anchor": anchor, "title": section.title, "summary": section.summary, "body": body,
            "headlines": headlines, "warnings": local_warnings, "methods_paragraphs": _paragraphs(section.methods),
            "sources": [s.model_dump() for s in section.sources], "software_line": _software_line(versions),
            "created": section.created[:10]}


# --------------------------------------------------------------------------- legacy HTML pages
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S | re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.S | re.I)
_SCRIPT = re.compile(r"<script\b.*?</script\s*>|<script\b[^>]*/?>", re.S | re.I)
_LINK_TAG = re.compile(r"<(link|meta|base|iframe|object|embed)\b[^>]*>", re.I)
_SRC = re.compile(r"""\b(src|href)\s*=\s*(["'])([^"']*)\2""", re.I)
_EVENT = re.compile(r"""\son[a-z]+\s*=\s*(["']).*?\1""", re.I | re.S)


def _legacy_page(page: Path, root: Path, ctx: _Ctx) -> dict:
    text = page.read_text(encoding="utf-8", errors="replace")
    match = _BODY.search(text)
    body = match.group(1) if match else text
    title_match = _TITLE.search(text)
    title = html.unescape(title_match.group(1)).strip() if title_match else page.stem
    body = _SCRIPT.sub("", body)
    body = _LINK_TAG.sub("", body)
    body = _EVENT.sub("", body)

    def repl(m: re.Match) -> str:
        attr, quote, ref = m.group(1).lower(), m.group(2), html.unescape(m.group(3))
        if ref.startswith(("#", "data:image/")) or (attr == "href" and is_url(ref)):
            return m.group(0)
        if attr == "href" and ref.startswith("mailto:"):
            return m.group(0)
        if re.match(r"^[a-z][a-z0-9+.-]*:", ref, re.I):  # remote or script resources: dropped
            return f'{attr}=""'
        try:
            target = _inside(page.parent, ref)
            if not target.is_relative_to(root.resolve()):
                raise ValueError(f"{ref!r} lies outside {root}")
            return f"{attr}={quote}{_data_uri(target)}{quote}"
        except (ValueError, OSError) as exc:
            ctx.warnings.append(f"{page.name}: {ref!r} not inlined ({exc})")
            warnings.warn(f"{page}: {ref!r} not inlined ({exc})", ReportWarning, stacklevel=2)
            return f'{attr}=""'

    body = _SRC.sub(repl, body)
    return {"title": title, "body": body}


_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip file"))


def _check_page(path: Path) -> None:
    """ValueError naming ``path`` and what it is when it is not an HTML text page."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise ValueError(f"{path}: not an HTML page but {what}; give a stage's output folder, its "
                             f"{SECTION_FILE} or an HTML page")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the block
            raise ValueError(f"{path}: not an HTML page (byte {exc.start} is not UTF-8 text); give a stage's "
                             f"output folder, its {SECTION_FILE} or an HTML page") from None
    if b"\0" in head:
        raise ValueError(f"{path}: not an HTML page (binary content); give a stage's output folder, its "
                         f"{SECTION_FILE} or an HTML page")


# --------------------------------------------------------------------------- build
def _collect(inputs: list[Path]) -> tuple[list[tuple[Section, Path]], list[tuple[Path, Path]]]:
    sections: list[tuple[Section, Path]] = []
    pages: list[tuple[Path, Path]] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.rglob(SECTION_FILE)
                           if not any(part.startswith(".") for part in p.relative_to(path).parts))
            if found:
                sections.extend((read_section(p), p.parent) for p in found)
                continue
            html_pages = sorted(p for p in path.rglob("*.html")
                                if not any(part.startswith(".") for part in p.relative_to(path).parts))
            for page in html_pages:
                _check_page(page)
            pages.extend((p, path) for p in html_pages)
            if not html_pages:
                raise ValueError(f"{path}: no {SECTION_FILE} and no HTML page in this folder")
        elif path.is_file():
            if path.name == SECTION_FILE or path.suffix == ".json":
                sections.append((read_section(path), path.parent))
            else:
                _check_page(path)
                pages.append((path, path.parent))
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return sections, pages


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        loader=jinja2.FunctionLoader(
            lambda name: (files("neuromodmap.report") / "templates" / name).read_text(encoding="utf-8")))


def build_report(sections: list[str | os.PathLike], output: str | os.PathLike, *,
                 title: str = "neuromodmap report") -> Path:
    """Build one self-contained HTML report from stage output folders (or ``section.json`` files).

    Parameters
    ----------
    sections : list of path
        Folders written by the stages (searched for ``section.json``; a folder without one
        contributes its HTML pages under "Other pages"), or ``section.json`` / HTML files.
    output : path
        The report file, written atomically.
    title : str
        The report's title.

    Returns
    -------
    Path
        The report written. Files a section names are inlined only from inside that section's
        folder; anything left out is listed under "Build notes" in the methods and warned about
        (:class:`ReportWarning`).

    Raises
    ------
    FileNotFoundError
        An input does not exist.
    ValueError
        An input folder holds neither a section nor an HTML page.
    SectionError
        A ``section.json`` is not valid (the message names the file and field).
    """
    inputs = [Path(s) for s in sections]
    if not inputs:
        raise ValueError("no stage outputs given")
    found, pages = _collect(inputs)
    ctx = _Ctx()
    by_stage: dict[str, list[dict]] = {s: [] for s in STAGES}
    seen_ids: set[str] = set()
    for section, folder in sorted(found, key=lambda sf: (STAGES.index(sf[0].stage), sf[0].order, sf[0].id)):
        if section.id in seen_ids:
            ctx.warnings.append(f"section id {section.id!r} appears twice; the copy in {folder} was left out")
            continue
        seen_ids.add(section.id)
        by_stage[section.stage].append(_render_section(section, folder, ctx))
    stages = []
    for stage in STAGES:
        rendered = by_stage[stage]
        stages.append({"id": stage, "title": STAGE_TITLES[stage], "short": _SHORT[stage], "sections": rendered,
                       "missing": _MISSING[stage],
                       "headlines": [h for s in rendered for h in s["headlines"]]})
    others = []
    for i, (page, root) in enumerate(pages, start=1):
        part = _legacy_page(page, root, ctx)
        part["anchor"] = f"other-{i}"
        part["body"] = jinja2.utils.markupsafe.Markup(part["body"])
        others.append(part)
    static = files("neuromodmap.report") / "static"
    cwd = Path.cwd()

    def shown(p: Path) -> str:
        try:
            return str(p.resolve().relative_to(cwd))
        except ValueError:
            return str(p)

    doc = _environment().get_template("report.html.j2").render(
        title=title, version=__version__, today=dt.date.today().isoformat(), stages=stages, others=others,
        n_sections=sum(len(s["sections"]) for s in stages) + len(others),
        css=jinja2.utils.markupsafe.Markup(static.joinpath("report.css").read_text(encoding="utf-8")),
        js=jinja2.utils.markupsafe.Markup(static.joinpath("report.js").read_text(encoding="utf-8")),
        data_blocks=[{"id": d["id"], "json": jinja2.utils.markupsafe.Markup(d["json"])} for d in ctx.data_blocks],
        software_line=_software_line(software_versions()), inputs=[shown(p) for p in inputs],
        build_warnings=ctx.warnings,
    )
    out = Path(output)
    with atomic_write(out, "w", encoding="utf-8") as fh:
        fh.write(doc)
    return out
