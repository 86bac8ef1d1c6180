"""`neuromodmap report ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Report stage.", no_args_is_help=True)
