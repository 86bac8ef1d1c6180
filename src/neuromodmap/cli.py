"""The ``neuromodmap`` command line: one sub-command per pipeline stage."""

from __future__ import annotations

from pathlib import Path

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


@app.command()
def demo(
    path: Path = typer.Argument(None, help="Registry file to survey (default: the 101k-record 2018 corpus in the data directory)."),
    out: Path = typer.Option(Path("neuromodmap-demo"), "-o", "--out", help="Output directory."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Local data directory (default: $NEUROMODMAP_DATA or ../shared/data)."),
) -> None:
    """Import, classify and survey real ClinicalTrials.gov records; print where the report is."""
    from rich.console import Console

    from neuromodmap.config import DataNotFoundError
    from neuromodmap.config import data_dir as resolve_data_dir
    from neuromodmap.trials.pipeline import import_and_classify
    from neuromodmap.trials.store import TrialStore
    from neuromodmap.trials.survey import survey

    console = Console(stderr=True)
    if path is None:
        try:
            path = resolve_data_dir(data_dir) / "trials" / "ctgov_text_2018.jsonl.gz"
        except DataNotFoundError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None
    if not path.exists():
        console.print(f"[bold red]error:[/] {path}: no such file")
        raise typer.Exit(2)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "trials.duckdb"
    console.print(f"Importing and classifying {path} into {db}")
    with TrialStore(db) as store:
        stats = import_and_classify(store, [path])
        result = survey(store.trials_df(), store.labels_df(), out / "survey", import_runs=store.import_runs_df())
    rate = stats["n_classified"] / max(stats["seconds"], 1e-9)
    console.print(f"{stats['n_imported']:,} trials imported, {stats['n_neuromod']:,} classified as neuromodulation "
                  f"({rate:,.0f} records/s end to end); {len(stats['problems'])} records skipped")
    typer.echo(f"Report: {result.html_path.resolve()}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
