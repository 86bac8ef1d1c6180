"""``neuromodmap report ...`` commands."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="One self-contained HTML report of every stage.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def build(
    sections: list[Path] = typer.Argument(..., help="Stage outputs: HTML files or directories (e.g. survey/, meta/, connectome/)."),
    output: Path = typer.Option(Path("report.html"), "-o", "--output", help="Report file."),
    title: str = typer.Option("neuromodmap report", "--title"),
) -> None:
    """Stitch the stages' HTML sections into one self-contained report."""
    from neuromodmap.report import build_report

    try:
        path = build_report(sections, output, title=title)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    typer.echo(f"Report: {path.resolve()}")


@app.callback()
def _report() -> None:
    """Report stage."""
