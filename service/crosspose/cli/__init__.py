"""The ``crosspose`` command line: one entry point, one module per command group as DESIGN §5 lists them.

The command modules are the CLI layer: they parse options and print, the domain packages they drive know
nothing of typer. Importing this package (``crosspose --help``) loads typer and these modules only; torch,
numpy, OpenCV, ZeroMQ, pydantic and the domain packages are imported inside the command that runs
(``tests/test_cli.py`` holds that line).
"""

from __future__ import annotations

import logging

import typer

from crosspose import __version__
from crosspose.cli import bench, calibration, config, grab, keys, model, reconstruct, service, take

app = typer.Typer(
    name="crosspose",
    help="Real-time multi-camera markerless motion capture (cross-view fusion + recursive PSM).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(calibration.app, name="calibration")
app.add_typer(model.app, name="model")
app.command("reconstruct")(reconstruct.reconstruct_command)
app.add_typer(config.app, name="config")
app.add_typer(keys.app, name="keys")
app.command("grab")(grab.grab_command)
app.add_typer(bench.app, name="bench")
app.command("serve")(service.serve_command)
app.command("demo")(service.demo_command)
app.add_typer(take.app, name="take")
app.command("replay")(take.replay_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crosspose {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
