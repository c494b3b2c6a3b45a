"""The ``crosspose`` command line: one entry point, sub-commands grouped as DESIGN §5 lists.

Each group lives next to the code it drives (``crosspose.calibration.commands`` …); heavy imports
happen inside the commands (importing the package itself costs about 2 s of torch).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from crosspose import __version__
from crosspose.bus.commands import app as keys_app
from crosspose.calibration.commands import app as calibration_app
from crosspose.capture.commands import grab_command
from crosspose.config.commands import app as config_app
from crosspose.nets.build import app as model_app
from crosspose.reconstruct import reconstruct_command
from crosspose.recording.commands import app as take_app
from crosspose.recording.commands import replay_command
from crosspose.runtime.commands import demo_command, serve_command

app = typer.Typer(
    name="crosspose",
    help="Real-time multi-camera markerless motion capture (cross-view fusion + recursive PSM).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(calibration_app, name="calibration")
app.add_typer(model_app, name="model")
app.command("reconstruct")(reconstruct_command)
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")
app.command("grab")(grab_command)


bench_app = typer.Typer(help="Offline runs that measure the pipeline's parts.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.command("serve")(serve_command)
app.command("demo")(demo_command)
app.add_typer(take_app, name="take")
app.command("replay")(replay_command)

BENCH_OUT = Path("out/bench-synthetic")


@bench_app.command("synthetic")
def bench_synthetic(
    frames: Annotated[int, typer.Option(min=1, help="Frames to run.")] = 90,
    cameras: Annotated[int, typer.Option(min=2, max=12, help="Cameras in the synthetic rig.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic scene (rig, motion, heatmap errors).")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for the videos and the skeleton stream.")] = BENCH_OUT,
    video: Annotated[bool, typer.Option(help="Render one video file per camera.")] = True,
    clean: Annotated[bool, typer.Option(help="Perfect heatmaps (no simulated network errors).")] = False,
) -> None:
    """A synthetic studio take through the 3D solver offline, with its error against the ground truth.

    Example: crosspose bench synthetic --frames 60 --cameras 6 --out /tmp/take
    """
    from crosspose.demo import report, run_synthetic
    from crosspose.solver import use_one_thread

    use_one_thread()
    typer.echo(f"synthetic studio: seed {seed}, {cameras} cameras, {frames} frames → {out}")
    result = run_synthetic(
        out, seed=seed, num_frames=frames, num_cameras=cameras, realistic_errors=not clean, video=video
    )
    typer.echo(report(result))
    for f in result.files:
        typer.echo(f"wrote {f}")


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
