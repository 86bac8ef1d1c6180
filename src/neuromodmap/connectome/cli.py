"""`neuromodmap connectome ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Connectome stage.", no_args_is_help=True)
