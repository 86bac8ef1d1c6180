"""`neuromodmap trials ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Trials stage.", no_args_is_help=True)
