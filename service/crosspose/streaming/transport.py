"""UDP datagrams to several targets at once, none of which can block or break the others.

Each target has its own non-blocking, connected UDP socket. Connecting lets the kernel report an ICMP
"port unreachable" from a refusing target as ``ECONNREFUSED`` on a later send (counted as ``refused``);
a full socket buffer drops the datagram (``dropped``); any other error is counted (``errors``) with its
text. Host names are resolved in a background thread (retried every ``resolve_retry_s``), so a slow or
failing DNS never stalls the sender; datagrams for a target that is not resolved yet are counted as
``unresolved``. Numeric addresses are used at once.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
RECOVERED_AFTER_S = 5.0
"""A failing target is logged as reachable again after this long without errors (seconds)."""


def parse_target(text: str, default_port: int) -> tuple[str, int]:
    """``"host"``, ``"host:port"`` or ``"[v6addr]:port"`` → ``(host, port)``.

    Raises:
        ValueError: empty host or a port outside 1–65535.
    """
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"target {text!r}: unclosed '[' (write IPv6 as [addr]:port)")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"target {text!r}: expected ':port' after ']'")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, text)
    if not host:
        raise ValueError(f"target {text!r} has no host (write host:port, e.g. 127.0.0.1:39539)")
    return host, port


def _port(text: str, target: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"target {target!r}: port {text!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"target {target!r}: port {port} is outside 1-65535")
    return port


@dataclass
class TargetStats:
    """Counters of one target (datagrams)."""

    target: str
    resolved: str | None = None
    sent: int = 0
    refused: int = 0
    dropped: int = 0
    errors: int = 0
    unresolved: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class UdpTarget:
    """One destination (see module doc). ``send`` never blocks and never raises for network errors."""

    def __init__(self, host: str, port: int, resolve_retry_s: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.stats = TargetStats(f"{host}:{port}")
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._failing = False
        self._last_error_ns = 0
        self.resolve_retry_s = resolve_retry_s
        numeric = self._resolve(numeric_only=True)
        if numeric is None:
            threading.Thread(target=self._resolve_loop, name=f"vmc-resolve:{host}", daemon=True).start()

    def _resolve(self, numeric_only: bool) -> socket.socket | None:
        flags = socket.AI_NUMERICHOST if numeric_only else 0
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM, flags=flags)
        except (socket.gaierror, UnicodeError) as err:
            if not numeric_only:
                self._note_error(f"cannot resolve {self.host!r}: {err}")
            return None
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            sock.connect(address)
        except OSError as err:
            sock.close()
            self._note_error(f"cannot connect a UDP socket to {address}: {err}")
            return None
        with self._lock:
            if self._closed.is_set():
                sock.close()
                return None
            self._sock = sock
            host = address[0] if isinstance(address[0], str) else repr(address[0])
            self.stats.resolved = f"{host}:{self.port}"
        return sock

    def _resolve_loop(self) -> None:
        while not self._closed.is_set():
            if self._resolve(numeric_only=False) is not None:
                log.info("VMC target %s resolved to %s", self.stats.target, self.stats.resolved)
                return
            self._closed.wait(self.resolve_retry_s)

    def _note_error(self, text: str) -> None:
        with self._lock:
            self.stats.last_error = text
            first = not self._failing
            self._failing = True
            self._last_error_ns = time.monotonic_ns()
        if first:
            log.warning("VMC target %s: %s (counted; other targets unaffected)", self.stats.target, text)

    def send(self, datagram: bytes) -> bool:
        """Send one datagram; False (and counted) when it did not leave."""
        sock = self._sock
        if sock is None:
            with self._lock:
                self.stats.unresolved += 1
            return False
        try:
            sock.send(datagram)
        except BlockingIOError:
            with self._lock:
                self.stats.dropped += 1
            return False
        except ConnectionRefusedError:
            with self._lock:
                self.stats.refused += 1
            self._note_error("refused (ICMP port unreachable: nothing listens there)")
            return False
        except OSError as err:
            with self._lock:
                self.stats.errors += 1
            self._note_error(f"{errno.errorcode.get(err.errno or 0, 'error')}: {err}")
            return False
        with self._lock:
            self.stats.sent += 1
            # A refusing target alternates (a send succeeds, the next one reports the ICMP): call it
            # reachable again only after RECOVERED_AFTER_S without errors.
            recovered = self._failing and time.monotonic_ns() - self._last_error_ns > RECOVERED_AFTER_S * 1e9
            if recovered:
                self._failing = False
        if recovered:
            log.info("VMC target %s is reachable again", self.stats.target)
        return True

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self.stats.as_dict()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class UdpFanout:
    """The same datagram to every target; one target's failure never affects another."""

    def __init__(self, targets: list[tuple[str, int]], resolve_retry_s: float = 5.0) -> None:
        self.targets = [UdpTarget(h, p, resolve_retry_s) for h, p in targets]

    def send(self, datagram: bytes) -> int:
        """Number of targets the datagram left for."""
        return sum(t.send(datagram) for t in self.targets)

    def snapshot(self) -> list[dict[str, Any]]:
        return [t.snapshot() for t in self.targets]

    def close(self) -> None:
        for t in self.targets:
            t.close()
