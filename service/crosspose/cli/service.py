"""``crosspose serve`` (the service from a config file) and ``crosspose demo`` (the service on
replayed footage, no hardware); ``crosspose.runtime`` runs them."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from crosspose.config import Config

DEMO_DIR = Path("out/demo-service")


def serve_command(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            exists=True,
            dir_okay=False,
            help="Service config (YAML); check it with `crosspose config validate`.",
        ),
    ],
) -> None:
    """Run the live service: grabbers, sync, inference, solver and the API, supervised.

    Stops cleanly on Ctrl-C / SIGTERM. Example: crosspose serve --config deploy/config.example.yaml
    """
    from crosspose.config import ConfigError, load_config
    from crosspose.runtime.service import serve

    try:
        cfg = load_config(config)
    except ConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None
    refuse_busy_ports(cfg, "change the port in the config, or stop the program that holds it")
    refuse_open_bus(cfg)
    network_for(cfg)
    serve(cfg)


def network_for(config: Config) -> None:
    """Make sure the network the service will run gives the solver's layout, before anything starts: the
    default cached export is (re-)exported in ``solver.skeleton``'s layout as ``demo`` does (an export
    made before the full body was the default declares Human3.6M-17: the service would run but drop every
    frame set); a configured ``inference.model`` of another layout exits with code 1 naming both."""
    if config.inference.backend != "network" or config.inference.runtime == "torch":
        return  # (the torch runtime builds the network in the solver's layout itself)
    from crosspose.inference.network import declared_skeleton
    from crosspose.nets.files import ensure_exported, export_metadata

    if config.inference.model is None:
        ensure_exported(progress=typer.echo, skeleton=config.solver.skeleton)
        return
    model = Path(config.inference.model)
    declared = declared_skeleton(model, export_metadata(model)).name
    if declared != config.solver.skeleton:
        typer.echo(f"crosspose cannot start: inference.model {config.inference.model} gives {declared} "
                   f"heatmaps but solver.skeleton is {config.solver.skeleton}; export one with `crosspose "
                   f"model export --skeleton {config.solver.skeleton}` or set solver.skeleton: {declared}",
                   err=True)
        raise typer.Exit(1)


def refuse_busy_ports(config: Config, hint: str) -> None:
    """Exit with code 1 and a message naming each port the service could not bind (see
    :func:`crosspose.runtime.service.busy_ports`), before anything starts."""
    from crosspose.runtime.service import busy_ports

    busy = busy_ports(config)
    if busy:
        typer.echo("crosspose cannot start: " + "; ".join(busy) + f" ({hint}).", err=True)
        raise typer.Exit(1)


def refuse_open_bus(config: Config) -> None:
    """Exit with code 1 and a message naming each way the bus would be open to others (see
    :func:`crosspose.runtime.bus_check.open_bus`), before anything starts."""
    from crosspose.runtime.bus_check import open_bus

    problems = open_bus(config)
    if problems:
        typer.echo("crosspose cannot start: the bus would be open to others:\n"
                   + "\n".join(f"  - {p}" for p in problems), err=True)
        raise typer.Exit(1)


def writes_banner(config: Config) -> str:
    """One line saying whether calibration uploads and recordings are enabled, and how to enable them."""
    if config.api.token is not None:
        return ("Writes enabled: calibration uploads and recordings take the header "
                "'Authorization: Bearer <the API token>' (the viewer's token field).")
    return ("Writes disabled: no API token, so calibration uploads and recordings are refused. "
            "To enable them, start with CROSSPOSE_API_TOKEN=<a secret> crosspose demo.")


def demo_command(
    studio: Annotated[str, typer.Option(help="pose2sim (real 4-camera footage), pose2sim-multi (its "
                                              "two-performer clip) or synthetic.")] = "pose2sim",
    host: Annotated[str, typer.Option(help="Interface the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="API port (0 = any free port).")] = 8000,
    cameras: Annotated[int, typer.Option(min=2, max=12, help="Cameras of the synthetic studio.")] = 4,
    duration: Annotated[
        float, typer.Option(min=0, help="Stop after this many seconds (0 = until Ctrl-C).")
    ] = 0,
    workdir: Annotated[Path, typer.Option(help="Folder for sockets and the calibration store.")] = DEMO_DIR,
) -> None:
    """The main job with no hardware: replayed cameras through the whole live pipeline.

    pose2sim: the real 4-camera Pose2Sim clip (1080x1920, 60 fps; fetched from PyPI on first use) looped
    as live cameras, through the real network. pose2sim-multi: the same studio's clip of two performers
    (and a bystander outside the volume), both tracked with their own ids. synthetic: a rendered studio
    with simulated heatmaps (network bypassed). Prints the URL to open. Example: crosspose demo --studio
    synthetic --port 8080
    """
    from crosspose.config import ConfigError
    from crosspose.nets.files import ensure_exported
    from crosspose.runtime.demo import pose2sim_config, synthetic_config
    from crosspose.runtime.service import make_supervisor
    from crosspose.runtime.supervisor import configure_logging

    if studio not in ("pose2sim", "pose2sim-multi", "synthetic"):
        raise typer.BadParameter(
            f"unknown studio {studio!r}; use pose2sim, pose2sim-multi or synthetic", param_hint="--studio"
        )
    configure_logging(logging.INFO)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if studio in ("pose2sim", "pose2sim-multi"):
            typer.echo("fetching the Pose2Sim demo clip (PyPI, cached) …")
            multi = studio == "pose2sim-multi"
            config = pose2sim_config(workdir, host, port, environ=os.environ, multi=multi)
            ensure_exported(progress=typer.echo, skeleton=config.solver.skeleton)
        else:
            config = synthetic_config(workdir, host, port, cameras=cameras, environ=os.environ)
    except ConfigError as err:  # a CROSSPOSE__… override that is not a setting, or a bad value
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None
    refuse_busy_ports(config, "choose another --port, or stop the program that holds it")
    refuse_open_bus(config)
    port_file = workdir / "api.port"
    port_file.unlink(missing_ok=True)
    supervisor = make_supervisor(config, str(port_file))

    def announce() -> None:
        deadline = time.monotonic() + 300
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if port_file.exists():
            url = f"http://{host}:{port_file.read_text().strip()}"
            typer.echo(
                f"\ncrosspose demo ({studio}) is live: open {url}/  (API docs {url}/docs, "
                f"skeletons on ws://{url.removeprefix('http://')}/ws/skeletons). Ctrl-C stops.\n"
                f"{writes_banner(config)}\n"
            )

    threading.Thread(target=announce, daemon=True).start()
    timer = threading.Timer(duration, supervisor.request_stop) if duration > 0 else None
    if timer is not None:
        timer.start()
    try:
        supervisor.run()
    finally:  # a Ctrl-C before --duration ran out: the pending timer must not hold the process
        if timer is not None:
            timer.cancel()
