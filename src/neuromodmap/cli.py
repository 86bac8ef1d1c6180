"""The ``neuromodmap`` command line: one sub-command per pipeline stage."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from neuromodmap import __version__
from neuromodmap.connectome.cli import app as connectome_app
from neuromodmap.evidence.cli import app as evidence_app
from neuromodmap.literature.cli import app as literature_app
from neuromodmap.report.cli import app as report_app
from neuromodmap.trials.cli import app as trials_app


class _Root(TyperGroup):
    """The root command: every sub-command runs inside the one error handler of :mod:`neuromodmap.errors`."""

    def parse_args(self, ctx, args):
        stack = [self]
        while stack:  # every command's flags (its --help too), before any of them is parsed
            command = stack.pop()
            _plain_bool_coercion(command.get_params(ctx))
            stack.extend(getattr(command, "commands", {}).values())
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        import click

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                typer.Exit, typer.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the one place every error is reported
            from rich.console import Console
            from rich.markup import escape

            from neuromodmap.errors import handle

            console = Console(stderr=True)
            status = handle(exc, lambda line: console.print(
                f"[bold red]{escape(line[:6])}[/]{escape(line[6:])}" if line.startswith("error:") else escape(line),
                soft_wrap=True, highlight=False))
            raise typer.Exit(status) from None


def _plain_bool_coercion(params) -> None:
    """Let the root's flags (--version, --install-completion, --show-completion) skip pydantic.

    typer coerces a flag left unset (None) through a pydantic TypeAdapter, which imports pydantic
    (~0.1 s of CPU) on every `neuromodmap STAGE ... --help`; a bool flag needs no adapter. Uses
    typer's private coercion classes, so any change there leaves typer's own path in place.
    """
    try:
        from typer._coercion import PassThroughRuntimeParam
    except ImportError:
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if getattr(param, "_runtime_param", False) is None and getattr(descriptor, "annotation", None) is bool:
            try:
                param._runtime_param = PassThroughRuntimeParam(annotation=bool,
                                                               parameter_info=descriptor.parameter_info)
            except TypeError:
                return


app = typer.Typer(
    name="neuromodmap",
    cls=_Root,
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
    out: Path = typer.Option(Path("neuromodmap-demo"), "-o", "--out", help="Output directory."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Local data directory (default: $NEUROMODMAP_DATA or ../shared/data)."),
    sample: int = typer.Option(None, "--sample", min=100, help="Import only the first N records of the 101k corpus "
                                                              "(a quick run)."),
    quick: bool = typer.Option(False, "--quick", help="Skip the AllPublicXML records and the screening simulation."),
) -> None:
    """Run every stage on the shipped real data, offline, and print where the one-file report is."""
    from rich.console import Console
    from rich.markup import escape

    from neuromodmap.config import DataNotFoundError
    from neuromodmap.demo import run_demo

    console = Console(stderr=True)
    try:
        result = run_demo(out, data_dir, trials_sample=sample, allpublicxml=not quick, simulation=not quick,
                          console=console)
    except (DataNotFoundError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    typer.echo(f"Report: {result.report.resolve()}")


@app.command()
def serve(
    db: Path = typer.Option(..., "--db", help="The trials store (a DuckDB file written by `trials import`)."),
    review: Path = typer.Option(None, "--review", help="The literature/review store for the screening pages."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default loopback only)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port)."),
    token: str = typer.Option(None, "--token", envvar="NEUROMODMAP_TOKEN",
                              help="Access token every request must carry; generated when --host is not loopback."),
) -> None:
    """Serve the local web app (trials explorer and corrections, screening, evidence, connectome)."""
    import ipaddress
    import secrets
    import socket

    from neuromodmap.errors import UserError

    if not db.is_file():
        raise UserError("does not exist", path=db, hint="build it with `neuromodmap trials import`")
    if review is not None and review.exists() and not review.is_file():
        raise UserError("--review is not a file", path=review)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
        typer.echo("--host is not a loopback address: every request needs the access token "
                   "(generated; pass --token to choose one)", err=True)

    import uvicorn

    from neuromodmap.webapp import create_app

    web = create_app(db, review, token, host=host)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc}", hint="choose another --port or --host") from None
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    config = uvicorn.Config(web, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    typer.echo(f"Serving on {url}", nl=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    typer.echo("Stopped.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
