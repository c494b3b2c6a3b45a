"""``crosspose grab``: one grabber on a camera host, connecting to the fusion host's sync."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer


def grab_command(
    camera: Annotated[
        str, typer.Option(help="Camera name (as in the fusion host's config and calibration).")
    ],
    source: Annotated[
        str,
        typer.Option(help="Device index, /dev/videoN, rtsp:// or http(s):// URL, video file, or synthetic."),
    ],
    connect: Annotated[
        str, typer.Option(help="Sync's frames endpoint on the fusion host, e.g. tcp://fusion:5555.")
    ],
    fps: Annotated[
        float | None, typer.Option(min=0.1, help="Pace at this rate (default: the source's).")
    ] = None,
    loop: Annotated[bool, typer.Option(help="Loop a video file.")] = False,
    jpeg_quality: Annotated[
        int | None, typer.Option(min=1, max=100, help="JPEG-encode frames (saves bandwidth); default raw.")
    ] = None,
    width: Annotated[int | None, typer.Option(min=1, help="Resize frames to this width.")] = None,
    height: Annotated[int | None, typer.Option(min=1, help="Resize frames to this height.")] = None,
    hwm: Annotated[
        int, typer.Option(min=1, help="Send high-water mark (frames queued before dropping).")
    ] = 4,
    curve_server_key: Annotated[
        Path | None, typer.Option(help="The fusion host's public CURVE certificate (server.key).")
    ] = None,
    curve_client_keys: Annotated[
        Path | None,
        typer.Option(
            "--curve-client-keys",
            "--curve-client-key",
            help="This grabber's secret certificate (NAME.key_secret) or a folder with <camera>.key_secret.",
        ),
    ] = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after this many frames.")] = None,
) -> None:
    """Run one camera grabber that connects to a (remote) fusion host.

    Example: crosspose grab --camera cam1 --source rtsp://10.0.0.11/s --connect tcp://fusion:5555
    """
    from crosspose.bus import CurveClient, shutdown, tcp_beyond_host
    from crosspose.capture.grabber import Grabber
    from crosspose.config import BusConfig, CameraConfig, format_validation_error

    try:
        cam = CameraConfig(
            name=camera,
            source=source,
            fps=fps,
            loop=loop,
            width=width,
            height=height,
            jpeg_quality=jpeg_quality,
            remote=True,
        )
        bus = BusConfig(frames_endpoint=connect, hwm=hwm)
    except Exception as err:
        from pydantic import ValidationError

        if isinstance(err, ValidationError):
            raise typer.BadParameter("; ".join(format_validation_error(err))) from None
        raise
    curve = None
    if (curve_server_key is None) != (curve_client_keys is None):
        raise typer.BadParameter("give both --curve-server-key and --curve-client-keys, or neither")
    if curve_server_key is not None and curve_client_keys is not None:
        secret = (
            curve_client_keys / f"{camera}.key_secret" if curve_client_keys.is_dir() else curve_client_keys
        )
        curve = CurveClient(server_public_key_file=curve_server_key, client_secret_key_file=secret)
        try:
            curve.keys()
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    elif tcp_beyond_host(connect):
        typer.echo(f"warning: frames go to {connect} without CURVE (no --curve-server-key): a fusion host "
                   "accepts them only with bus.allow_insecure_tcp, and anyone on the way can read them",
                   err=True)

    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    grabber = Grabber(cam, bus, curve=curve, max_frames=max_frames)
    state = grabber.run(stop)
    shutdown()
    s = grabber.stats
    typer.echo(f"camera {camera}: {state}; {s.frames} frames published, {s.dropped} dropped")
