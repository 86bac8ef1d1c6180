"""`neuromodmap literature ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Literature stage.", no_args_is_help=True)
