"""The whole service, really started for a test: supervisor, synthetic grabbers, sync, inference (simulated
backend: the network bypassed), solver and the API on 127.0.0.1, and a websocket client of its skeletons."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from pydantic import SecretStr

from crosspose.config import Config
from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.service import make_supervisor
from crosspose.runtime.supervisor import Supervisor

TOKEN = "test-token-123"


@dataclass
class Running:
    config: Config
    supervisor: Supervisor
    thread: threading.Thread
    base: str
    workdir: Path
    #: ``start_service``'s keyword arguments, for :func:`restart_service`.
    options: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        self.supervisor.request_stop()
        self.thread.join(60)


def start_service(workdir: Path, cameras: int = 3, bus: dict[str, Any] | None = None,
                  workers: int | None = None, inference: dict[str, Any] | None = None) -> Running:
    """The service, ready; ``workers``: ``inference.workers`` (default: the config's, ``auto``);
    ``inference``: other fields of the inference section."""
    config = synthetic_config(workdir, "127.0.0.1", 0, cameras=cameras, fps=15.0, frames=90)
    config = config.model_copy(update={"api": config.api.model_copy(update={"token": SecretStr(TOKEN)})})
    fields = {**(inference or {}), **({} if workers is None else {"workers": workers})}
    if fields:
        config = config.model_copy(
            update={"inference": config.inference.model_copy(update=fields)})
    if bus:
        config = Config.model_validate({**config.model_dump(mode="json", by_alias=True),
                                        "bus": {**config.bus.model_dump(mode="json"), **bus}})  # fmt: skip
    port_file = workdir / "port"
    port_file.unlink(missing_ok=True)
    sup = make_supervisor(config, str(port_file))
    thread = threading.Thread(target=sup.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    running = Running(config, sup, thread, "", workdir, {"cameras": cameras, "bus": bus, "workers": workers,
                                                          "inference": inference})
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            assert time.monotonic() < deadline, "the API never reported its port"
            time.sleep(0.1)
        running.base = f"http://127.0.0.1:{int(port_file.read_text())}"
        while (ready := httpx.get(f"{running.base}/api/v1/ready")).status_code != 200:
            assert time.monotonic() < deadline, f"service not ready: {ready.text}"
            time.sleep(0.1)
    except BaseException:
        running.stop()
        raise
    return running


def restart_service(running: Running) -> None:
    """Stop ``running`` and start the service again in its workdir with the same options, as a restarted
    host would; ``running`` then refers to the new service (a module's shared service stays usable)."""
    running.stop()
    assert not running.thread.is_alive(), "the service did not stop"
    again = start_service(running.workdir, **running.options)
    running.config, running.supervisor, running.thread, running.base = (
        again.config, again.supervisor, again.thread, again.base)


class SharedService:
    """The default service (:func:`start_service`'s defaults) shared by consecutive tests, across modules:
    started at the first test that asks for it, stopped after the last of a run of such tests
    (``conftest``), so it never runs (~0.8 of a core) under the tests of other modules."""

    def __init__(self) -> None:
        self.running: Running | None = None

    def get(self, workdir: Callable[[], Path]) -> Running:
        """The running service, else one started in ``workdir()``."""
        if self.running is None or not self.running.thread.is_alive():
            self.running = start_service(workdir())
        return self.running

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


SHARED = SharedService()


def receive(base: str, count: int, timeout: float = 60.0, until: Any = None) -> list[dict[str, Any]]:
    """``count`` skeleton messages (or until ``until(message)`` is true) from a websocket client."""

    async def run() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async with websockets.connect(base.replace("http", "ws") + "/ws/skeletons?format=json") as ws:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                try:
                    m = json.loads(await asyncio.wait_for(ws.recv(), end - time.monotonic()))
                except TimeoutError:
                    break
                out.append(m)
                if until is not None and until(m):
                    break
                if until is None and len(out) >= count:
                    break
        return out

    return asyncio.run(run())
