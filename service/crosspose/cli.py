"""The ``crosspose`` command line: one entry point, sub-commands grouped as DESIGN §5 lists.

Each group lives next to the code it drives (``crosspose.calibration.commands`` …); heavy imports
happen inside the commands so ``crosspose --help`` stays fast.
"""

from __future__ import annotations

import logging

import typer

from crosspose import __version__
from crosspose.calibration.commands import app as calibration_app
from crosspose.studio.commands import demo_command

app = typer.Typer(
    name="crosspose",
    help="Real-time multi-camera markerless motion capture (cross-view fusion + recursive PSM).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(calibration_app, name="calibration")
app.command("demo")(demo_command)


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
