"""``crosspose config …``: check a configuration file without starting anything."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from crosspose.config import AutoInference

app = typer.Typer(help="Service configuration files.", no_args_is_help=True)


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="YAML configuration file.")],
) -> None:
    """Check a config (YAML + environment overrides); print a summary, or each error with its location.

    Example: crosspose config validate deploy/config.example.yaml
    """
    from crosspose.config import ConfigError, load_config

    try:
        cfg = load_config(file)
    except ConfigError as err:
        typer.echo(f"{file}: {len(err.errors)} error(s)", err=True)
        for line in err.errors:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(1) from None
    from crosspose.runtime.bus_check import exposed_endpoints

    exposed = exposed_endpoints(cfg)
    if exposed and not cfg.bus.allow_insecure_tcp:  # `serve` would refuse to start
        typer.echo(f"{file}: {len(exposed)} error(s): the bus would be open to other hosts", err=True)
        for line in exposed:
            typer.echo(f"  {line}; or set bus.allow_insecure_tcp: true to accept this", err=True)
        raise typer.Exit(1)
    typer.echo(f"{file}: OK")
    typer.echo(f"cameras ({len(cfg.cameras)}):")
    for cam in cfg.cameras:
        extra = []
        if cam.fps:
            extra.append(f"{cam.fps:g} fps")
        if cam.remote:
            extra.append("remote")
        if cam.jpeg_quality:
            extra.append(f"jpeg q{cam.jpeg_quality}")
        typer.echo(f"  {cam.name}: {cam.source}" + (f" ({', '.join(extra)})" if extra else ""))
    typer.echo(
        f"sync tolerance {cfg.sync_tolerance_ns() / 1e6:.1f} ms; frames {cfg.bus.frames_endpoint}"
        f"{' (CURVE)' if cfg.bus.curve else ''}"
    )
    for line in exposed:
        typer.echo(f"  warning (bus.allow_insecure_tcp): {line}", err=True)
    inference = cfg.inference
    typer.echo(
        f"inference {inference.backend} ({inference.runtime} on {inference.device}, precision "
        f"{inference.precision}); api {cfg.api.host}:{cfg.api.port}"
        f" (token {'set' if cfg.api.token else 'not set: writes refused'})"
    )
    options = cfg.solver.changed_options()
    typer.echo(f"solver {cfg.solver.skeleton}; options: "
               + (", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"))
    if inference.runtime == "auto" and inference.backend == "network":
        typer.echo(f"  runtime auto on this host: {_auto_here(inference)}")


def _auto_here(inference: AutoInference) -> str:
    """What ``runtime: auto`` becomes on this host, and why (or why its precision cannot run here)."""
    from crosspose.inference.network import DeviceUnavailableError
    from crosspose.inference.runtimes.auto import choose

    try:
        choice = choose(inference)
    except DeviceUnavailableError as err:
        return f"would not start: {err}"
    return f"{choice.settings.runtime} ({choice.reason})"
