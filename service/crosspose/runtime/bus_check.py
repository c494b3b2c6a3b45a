"""What the service checks of its bus before anything starts (DESIGN §2: closed beyond the host by
default): no endpoint that other hosts can reach without authentication, CURVE keys that can be used,
ipc socket folders that only this user can open. Light to import (no torch): ``config validate`` uses it.
"""

from __future__ import annotations

import logging

from crosspose.bus import (
    BusSecurityError,
    CurveKeyError,
    CurveServer,
    ipc_dir,
    secure_ipc_dir,
    tcp_beyond_host,
)
from crosspose.config import Config

log = logging.getLogger(__name__)


class BusNotClosedError(RuntimeError):
    """The bus would be open to others (:func:`open_bus`); the message names each endpoint and the fix."""


def bus_endpoints(config: Config) -> dict[str, str]:
    """Every endpoint the service binds or connects, by the setting that names it."""
    bus = config.bus
    names = ["frames", "framesets", "heatmaps", "skeletons", "control", "status"]
    if bus.curve is not None:
        names.append("local_frames")
    endpoints = {f"bus.{n}_endpoint": getattr(bus, f"{n}_endpoint") for n in names}
    if config.recording.enabled:
        endpoints["recording.endpoint (the recording tap)"] = config.recording.tap_endpoint(bus)
    return endpoints


def exposed_endpoints(config: Config) -> list[str]:
    """The bus endpoints other hosts could reach with nothing to authenticate them, in words (empty: the
    bus is closed beyond this host). CURVE covers the frames endpoint only (remote grabbers); every other
    link stays on this host (ipc://, the default, or a loopback address)."""
    out = []
    for what, endpoint in bus_endpoints(config).items():
        if not tcp_beyond_host(endpoint):
            continue
        if what == "bus.frames_endpoint":
            if config.bus.curve is None:
                out.append(f"{what} {endpoint} is reachable from other hosts without CURVE: set bus.curve "
                           "(keys from `crosspose keys generate`, deploy/README.md 3.1)")
        else:
            out.append(f"{what} {endpoint} is reachable from other hosts, and CURVE covers only the frames "
                       "endpoint: use ipc:// (the default) or 127.0.0.1")
    return out


def open_bus(config: Config) -> list[str]:
    """What would leave the bus open to others, in words: :func:`exposed_endpoints` unless
    ``bus.allow_insecure_tcp``, CURVE keys that cannot be used, ipc folders another user owns. Makes the
    ipc folders 0700 as it checks them (:func:`crosspose.bus.secure_ipc_dir`)."""
    problems = []
    exposed = exposed_endpoints(config)
    if exposed and not config.bus.allow_insecure_tcp:
        problems += [f"{e}; or set bus.allow_insecure_tcp: true to accept this" for e in exposed]
    elif exposed:
        log.warning("bus.allow_insecure_tcp: anyone who reaches these can speak on the bus: %s",
                    "; ".join(exposed))
    if config.bus.curve is not None:
        try:
            CurveServer(config.bus.curve.server_secret_key, config.bus.curve.client_public_keys).check()
        except CurveKeyError as err:
            problems.append(f"bus.curve: {err} (make the keys with `crosspose keys generate`, "
                            "deploy/README.md 3.1)")
    for directory in sorted({d for e in bus_endpoints(config).values() if (d := ipc_dir(e)) is not None}):
        try:
            secure_ipc_dir(directory)
        except (BusSecurityError, OSError) as err:
            problems.append(str(err))
    return problems
