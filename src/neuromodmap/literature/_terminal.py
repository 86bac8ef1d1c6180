"""The interactive terminal screener (rich): one record at a time, decisions saved at once."""

from __future__ import annotations

import re
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from neuromodmap.literature.records import Record
from neuromodmap.literature.screening import ScreeningSession

_HELP = "[i]nclude  [e]xclude  e:<reason>  [u]ndo  [q]uit"
_HELP_MARKUP = escape(_HELP)


def highlight(text: str, pattern: re.Pattern[str]) -> Text:
    """``text`` as rich Text with every review-question term highlighted."""
    out = Text(text)
    for match in pattern.finditer(text):
        out.stylize("bold black on yellow", match.start(), match.end())
    return out


def _panel(record: Record, session: ScreeningSession, number: int) -> Panel:
    body = Text()
    body.append_text(highlight(record.title or "(no title)", session.topic))
    body.stylize("bold", 0, len(record.title or "(no title)"))
    body.append("\n")
    place = ":".join(x for x in (record.volume, record.pages) if x)
    ids = " ".join(x for x in (f"doi:{record.doi}" if record.doi else "", f"PMID {record.pmid}" if record.pmid else "")
                   if x)
    # a record without a title is found by its DOI/PMID or its journal, volume and pages
    meta = " · ".join(x for x in (", ".join(record.authors[:3]) + (" et al." if len(record.authors) > 3 else ""),
                                  record.journal, str(record.year or ""), place, ids, record.source_database) if x)
    body.append(meta + "\n\n", style="dim")
    body.append_text(highlight(record.abstract or "(no abstract)", session.topic))
    if record.keywords:
        body.append("\n\nKeywords: ", style="dim")
        body.append_text(highlight("; ".join(record.keywords[:15]), session.topic))
    return Panel(body, title=f"record {number} · {record.record_id}", subtitle=Text(_HELP))


def run_screener(session: ScreeningSession, *, console: Console | None = None,
                 read: Callable[[str], str] = input, ignore_stop: bool = False) -> str:
    """Screen until the stopping rule, the end of the records, or ``q``. Returns why it ended.

    ``read`` supplies each answer (``input`` by default; tests pass answers in).
    """
    console = console or Console()
    number = session.progress().n_screened + 1
    while True:
        progress = session.progress()
        if progress.stop_reason and not ignore_stop:
            if progress.stop_rule is None:  # every eligible record screened
                console.print(f"[bold green]All eligible records screened.[/] {progress.summary()}")
                return progress.stop_reason
            session.record_stop(progress)
            console.print(f"[bold green]Stopping rule met:[/] {progress.stop_reason}. {progress.summary()} "
                          "The records not screened count as excluded by the stopping rule (PRISMA); run with "
                          "--ignore-stop to go on screening.")
            return progress.stop_reason
        record = session.next_record()
        if record is None:
            console.print(f"[bold green]All eligible records screened.[/] {progress.summary()}")
            return "every eligible record has been screened"
        console.print(_panel(record, session, number))
        console.print(f"[dim]{progress.summary()}[/]")
        while True:
            try:
                answer = read("decision> ").strip()
            except EOFError:
                console.print("Input ended; every decision so far is saved.")
                return "input ended"
            key, _, reason = answer.partition(":")
            key = key.strip().lower()
            if key in ("i", "include", "y"):
                session.decide(record.record_id, True)
                number += 1
                break
            if key in ("e", "exclude", "n"):
                session.decide(record.record_id, False, reason=reason.strip())
                number += 1
                break
            if key in ("u", "undo"):
                undone = session.undo()
                console.print(f"Undid the decision on {undone}." if undone else "Nothing to undo.")
                number = max(1, number - 1) if undone else number
                break
            if key in ("q", "quit"):
                console.print(f"Saved. {session.progress().summary()} Run the same command to resume.")
                return "quit"
            console.print(f"[red]Unknown answer {escape(repr(answer))}.[/] {_HELP_MARKUP}")
