"""``crosspose bench …``: offline runs that measure the pipeline's parts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Offline runs that measure the pipeline's parts.", no_args_is_help=True)

BENCH_OUT = Path("out/bench-synthetic")


@app.command("synthetic")
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
