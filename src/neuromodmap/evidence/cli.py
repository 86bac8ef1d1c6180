"""`neuromodmap evidence ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Evidence stage.", no_args_is_help=True)
