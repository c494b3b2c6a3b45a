"""``crosspose calibration …``: show, validate and convert calibration files (``crosspose.calibration``); the
commands that solve a calibration (intrinsics, extrinsics, board) come from ``crosspose.cli.calibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crosspose.cli import calibrate
from crosspose.cli.choices import CALIBRATION_FORMATS

if TYPE_CHECKING:
    from crosspose.geometry import CameraRig

app = typer.Typer(help="Calibrate a studio; inspect, validate and convert camera calibration files.",
                  no_args_is_help=True)
app.command("intrinsics")(calibrate.intrinsics_command)
app.command("extrinsics")(calibrate.extrinsics_command)
app.command("board")(calibrate.board_command)

_FORMATS_HELP = f"{', '.join(CALIBRATION_FORMATS)} (detected when omitted)"
CalibrationPath = Annotated[Path, typer.Argument(help="Calibration file (or EasyMocap folder).")]
FormatOption = Annotated[str | None, typer.Option("--format", "-f", help=_FORMATS_HELP)]


def _load(file: Path, fmt: str | None) -> tuple[CameraRig, list[str]]:
    from crosspose.calibration import CalibrationError, load_rig_with_report

    try:
        rig, report = load_rig_with_report(file, fmt)
    except CalibrationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    return rig, [str(w) for w in report.warnings]


def _print_warnings(warnings: list[str]) -> None:
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)


@app.command("show")
def show_command(
    file: CalibrationPath,
    fmt: FormatOption = None,
    plot: Annotated[Path | None, typer.Option(help="Write a top-down plot of the rig to this PNG.")] = None,
) -> None:
    """Print the cameras of a calibration: image size, focal length, position, distance, height.

    Example: crosspose calibration show calibration/pose2sim_demo.json --plot rig.png
    """
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    rig, warnings = _load(file, fmt)
    table = Table(title=f"{file} ({rig.metadata.get('format', '?')}, {len(rig)} cameras, metres)")
    for col in (
        "camera",
        "image (w x h)",
        "fx, fy (px)",
        "position x, y, z (m)",
        "distance (m)",
        "height (m)",
    ):
        table.add_column(col, justify="left" if col == "camera" else "right")
    for cam, c in zip(rig, rig.centers, strict=True):
        table.add_row(
            cam.name,
            f"{cam.image_size[0]} x {cam.image_size[1]}",
            f"{cam.K[0, 0]:.1f}, {cam.K[1, 1]:.1f}",
            f"{c[0]:.3f}, {c[1]:.3f}, {c[2]:.3f}",
            f"{np.linalg.norm(c):.3f}",
            f"{c[2]:.3f}",
        )
    Console(width=140).print(table)
    _print_warnings(warnings)
    if plot is not None:
        _plot_top_down(rig, plot, title=str(file.name))
        typer.echo(f"plot written to {plot}")


def _plot_top_down(rig: CameraRig, out: Path, title: str) -> None:
    try:
        import matplotlib
    except ModuleNotFoundError:
        typer.echo("--plot needs matplotlib: pip install 'crosspose[plot]'", err=True)
        raise typer.Exit(1) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    centers = rig.centers
    axes = rig.R[:, 2, :]  # optical axis (camera z) in world coordinates
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.add_patch(plt.Rectangle((-1, -1), 2, 2, fill=False, ls="--", color="grey", label="2 m capture area"))
    ax.scatter(centers[:, 0], centers[:, 1], color="tab:blue", zorder=3)
    span = float(np.max(np.abs(centers[:, :2]))) if len(rig) else 1.0
    arrow = 0.25 * max(span, 1.0)
    for cam, c, a in zip(rig, centers, axes, strict=True):
        d = a[:2] / max(float(np.linalg.norm(a[:2])), 1e-9)
        ax.annotate(
            "",
            xy=(c[0] + arrow * d[0], c[1] + arrow * d[1]),
            xytext=(c[0], c[1]),
            arrowprops={"arrowstyle": "->", "color": "tab:blue"},
        )
        ax.annotate(f"{cam.name}\n{c[2]:.2f} m high", (c[0], c[1]), textcoords="offset points", xytext=(6, 6))
    ax.plot([0], [0], "k+", markersize=12, label="world origin")
    ax.set_aspect("equal")
    lim = 1.3 * max(span, 1.0)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"{title}: top view (Z up)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)


@app.command("validate")
def validate_command(
    file: CalibrationPath,
    fmt: FormatOption = None,
) -> None:
    """Check a calibration; exit code 0 when it can be used, 1 with the reasons when not.

    Example: crosspose calibration validate studio.toml
    """
    rig, warnings = _load(file, fmt)
    _print_warnings(warnings)
    fmt_name = rig.metadata.get("format", "")
    typer.echo(f"{file}: valid {fmt_name} calibration, {len(rig)} cameras: {', '.join(rig.names)}")


@app.command("convert")
def convert_command(
    src: Annotated[Path, typer.Argument(help="Input calibration file (or EasyMocap folder).")],
    dst: Annotated[Path, typer.Argument(help="Output file (EasyMocap: a folder).")],
    to: Annotated[
        str | None, typer.Option("--to", help="Output format; from OUT's name when omitted.")
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", help=f"Input format: {_FORMATS_HELP}.")] = None,
) -> None:
    """Convert a calibration between formats (the result is in metres).

    Example: crosspose calibration convert Calib.qca.txt studio.json
    (or: crosspose calibration convert studio.json easymocap_dir --to easymocap)
    """
    from crosspose.calibration import CalibrationError, save_rig

    rig, warnings = _load(src, from_)
    _print_warnings(warnings)
    try:
        written = save_rig(rig, dst, to)
    except CalibrationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {', '.join(str(p) for p in written)} ({len(rig)} cameras)")
