"""A real OSC server (python-osc's ``BlockingOSCUDPServer`` + dispatcher, in a thread) that records every VMC
bundle it decodes, for the streaming tests and the benchmark."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer


@dataclass
class Received:
    """Messages as decoded by python-osc, grouped per datagram (one VMC bundle each)."""

    bundles: list[list[tuple[str, tuple[Any, ...]]]] = field(default_factory=list)
    times_ns: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, n: int, timeout_s: float = 30.0) -> list[list[tuple[str, tuple[Any, ...]]]]:
        deadline = time.monotonic() + timeout_s
        while True:
            with self.lock:
                if len(self.bundles) >= n or time.monotonic() > deadline:
                    return list(self.bundles)
            time.sleep(0.01)


class _Server(BlockingOSCUDPServer):
    """Groups the messages of each datagram (python-osc dispatches a bundle's messages one by one)."""

    received: Received
    local: threading.local

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.local.messages = []
        t = time.monotonic_ns()
        super().finish_request(request, client_address)
        with self.received.lock:
            self.received.bundles.append(self.local.messages)
            self.received.times_ns.append(t)


@contextlib.contextmanager
def osc_receiver(host: str = "127.0.0.1") -> Iterator[tuple[int, Received]]:
    """A running OSC server on a free UDP port of ``host``: yields ``(port, received)``."""
    received = Received()
    local = threading.local()
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: local.messages.append((address, args)))
    server = _Server((host, 0), dispatcher)
    server.received = received
    server.local = local
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
