"""``crosspose take list|export`` and ``crosspose replay`` on a folder of takes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from crosspose.cli.choices import TAKE_EXPORT_FORMATS, spoken

app = typer.Typer(help="Recorded takes: list them, export their skeletons.", no_args_is_help=True)
STORE = Path("takes")
StoreOpt = Annotated[Path, typer.Option("--store", help="Folder of takes (recording.store).")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command("list")
def list_command(
    store: StoreOpt = STORE,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per take.")] = False,
) -> None:
    """List the takes of a store with state, duration, frame counts and size.

    Example: crosspose take list --store takes
    """
    from crosspose.recording import TakeStore

    takes = TakeStore(store).takes()
    if not takes:
        typer.echo(f"no takes in {store}")
        return
    for take in takes:
        s = take.summary()
        if as_json:
            typer.echo(json.dumps(s))
            continue
        frames = sum(s["frames"].values())
        typer.echo(
            f"{s['id']}  {s['state']:<11} {s['duration_s']:8.2f} s  {s['framesets']:6d} sets  "
            f"{frames:7d} frames  {s['skeletons']:6d} skeletons  {s['framesets_lost']} lost  "
            f"{s['size_bytes'] / 1e6:9.1f} MB" + (f"  error: {s['error']}" if s["error"] else "")
        )


@app.command("export")
def export_command(
    take: Annotated[str, typer.Argument(help="Take id (in --store) or the take's folder.")],
    fmt: Annotated[str, typer.Option("--format", help=f"{spoken(TAKE_EXPORT_FORMATS)}.")] = "jsonl",
    out: Annotated[
        Path | None, typer.Option("--out", help="Output file (default: <take id>.<format>).")
    ] = None,
    store: StoreOpt = STORE,
) -> None:
    """Export a take's skeleton stream (or the whole take as zip). A take of several performers: bvh and
    trc write one file per performer (<out>_p<id>.<format>), c3d one file labelled p<id>_<joint>.

    Example: crosspose take export 20261126-101500-walk --format bvh --out walk.bvh --store takes
    """
    from crosspose.recording import TakeError, TakeStore
    from crosspose.recording.export import export_files

    try:
        t = TakeStore(store).resolve(take)
        paths = export_files(t, fmt, out or Path(f"{t.id}.{fmt}"))
    except (TakeError, ImportError) as err:
        raise _fail(str(err)) from None
    for path in paths:
        typer.echo(f"wrote {path}")


def replay_command(
    take: Annotated[str, typer.Argument(help="Take id (in --store) or the take's folder.")],
    store: StoreOpt = STORE,
    realtime: Annotated[bool, typer.Option("--realtime", help="Pace at the recorded rate.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Service config (default: the take's).")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option("--calibration", help="Rig file (default: the take's calibrations).")
    ] = None,
    only_solved: Annotated[
        bool, typer.Option("--only-solved", help="Only the frame sets the live stream solved.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the replayed skeletons as JSON lines.")
    ] = None,
) -> None:
    """Feed a take back through the pipeline (same inference + solver logic) and compare the result
    with the recorded skeletons.

    Example: crosspose replay 20261126-101500-walk --store takes --out replayed.jsonl
    """
    from crosspose.config import load_config
    from crosspose.recording import TakeError, TakeStore
    from crosspose.recording.replay import compare, replay

    try:
        t = TakeStore(store).resolve(take)
        cfg = load_config(config) if config is not None else None
        messages = replay(t, cfg, calibration=calibration, realtime=realtime, only_solved=only_solved)
    except (TakeError, FileNotFoundError, ValueError) as err:
        raise _fail(str(err)) from None
    if out is not None:
        with open(out, "w", encoding="utf-8") as f:
            for m in messages:
                f.write(json.dumps(m, separators=(",", ":")) + "\n")
        typer.echo(f"wrote {out}")
    typer.echo(f"replayed {len(messages)} frame sets of take {t.id}")
    typer.echo("vs recorded: " + compare(messages, t.skeleton_messages()).text())
