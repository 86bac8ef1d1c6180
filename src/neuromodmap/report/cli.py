"""``neuromodmap report ...`` commands."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(help="One self-contained HTML report of every stage.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def build(
    sections: list[Path] = typer.Argument(..., help="Stage output folders (e.g. survey/ prisma/ meta/ map/), "
                                                    "section.json files or HTML pages."),
    output: Path = typer.Option(Path("report.html"), "-o", "--output", help="Report file."),
    title: str = typer.Option("neuromodmap report", "--title"),
) -> None:
    """Assemble the stages' sections into one self-contained HTML report."""
    from neuromodmap.report import ReportWarning, SectionError, build_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ReportWarning)
        try:
            path = build_report(sections, output, title=title)
        except (FileNotFoundError, ValueError, SectionError) as exc:
            from neuromodmap.errors import UserError

            raise UserError(str(exc)) from None
    for w in caught:
        if issubclass(w.category, ReportWarning):
            console.print(f"[yellow]note:[/] {escape(str(w.message))}")
    size = path.stat().st_size / 2**20
    console.print(f"{size:.1f} MB, self-contained")
    typer.echo(f"Report: {path.resolve()}")


@app.callback()
def _report() -> None:
    """Report stage."""
