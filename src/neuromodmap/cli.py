"""The ``neuromodmap`` command line: one sub-command per pipeline stage."""

from __future__ import annotations

import typer

from neuromodmap import __version__
from neuromodmap.connectome.cli import app as connectome_app
from neuromodmap.evidence.cli import app as evidence_app
from neuromodmap.literature.cli import app as literature_app
from neuromodmap.report.cli import app as report_app
from neuromodmap.trials.cli import app as trials_app

app = typer.Typer(
    name="neuromodmap",
    help="Neuromodulation for chronic pain and depression: trials, literature, evidence, connectome, report.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(trials_app, name="trials")
app.add_typer(literature_app, name="literature")
app.add_typer(evidence_app, name="evidence")
app.add_typer(connectome_app, name="connectome")
app.add_typer(report_app, name="report")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"neuromodmap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """neuromodmap: one reproducible pipeline, import → store → analyse → report."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
