"""``crosspose calibration …`` commands."""

import typer

app = typer.Typer(help="Inspect, validate and convert camera calibration files.", no_args_is_help=True)
