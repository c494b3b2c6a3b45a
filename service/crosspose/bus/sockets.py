"""Publisher / Subscriber wrappers: non-blocking, bounded, counted (DESIGN §2 "latency beats completeness").

A :class:`Publisher` never blocks its caller: when a subscriber's queue is at the high-water mark
the message is dropped and ``dropped_hwm`` counts it. A :class:`Subscriber` returns decoded
:class:`~crosspose.bus.codec.Message` objects and drops (and counts, by reason) malformed ones instead
of raising.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import zmq

from crosspose.bus.codec import MAX_BUFFER_BYTES, Buffer, Message, MessageError, decode, encode
from crosspose.bus.curve import CurveClient, CurveServer, apply_client, apply_server, start_authenticator

log = logging.getLogger(__name__)


class BusSecurityError(RuntimeError):
    """The bus would be open to others: a socket folder that others can enter or that another user owns."""


def ipc_dir(endpoint: str) -> Path | None:
    """The folder an ``ipc://`` endpoint's socket lives in (None for other transports)."""
    return Path(endpoint[len("ipc://") :]).parent if endpoint.startswith("ipc://") else None


def secure_ipc_dir(directory: Path) -> None:
    """Make ``directory`` a folder only this user can open (0700), creating it if needed.

    Whoever can enter the folder of a bus socket can connect to it (whatever the socket file's own mode,
    which follows the umask) and forge heartbeats or control messages. A folder this user owns is made
    0700 (logged when it was open); one another user owns is refused: its owner could replace the
    sockets (a folder planted in /tmp under the service's name).

    Raises:
        BusSecurityError: ``directory`` belongs to another user, or is not a folder.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    uid = os.getuid()
    if not stat.S_ISDIR(info.st_mode):
        raise BusSecurityError(f"{directory} (the folder of ipc:// bus sockets) is not a folder")
    if info.st_uid != uid:
        raise BusSecurityError(
            f"{directory} (the folder of ipc:// bus sockets) belongs to uid {info.st_uid}, not to this user "
            f"(uid {uid}), who could replace the service's sockets: remove it, or point the bus endpoints "
            "into a folder of this user's"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(directory, 0o700)
        log.warning("bus: %s (ipc sockets) was open to other users (mode %o); made it 0700",
                    directory, stat.S_IMODE(info.st_mode))


def _prepare_ipc(endpoint: str) -> None:
    directory = ipc_dir(endpoint)
    if directory is not None:
        secure_ipc_dir(directory)


def tcp_beyond_host(endpoint: str) -> bool:
    """True for a ``tcp://`` endpoint that other hosts can reach: a wildcard (``*``, ``0.0.0.0``, ``::``)
    or any address or name but a loopback one (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    m = re.match(r"^tcp://(\[[^\]]*\]|[^:/]*)(?::|$)", endpoint)
    if m is None:
        return False
    host = m.group(1).strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # "*", an interface or a host name: reachable from elsewhere
        return True


def connect_address(endpoint: str) -> str:
    """Where to connect for an endpoint a local socket binds: ``tcp://0.0.0.0:P`` / ``tcp://*:P`` →
    ``tcp://127.0.0.1:P``; anything else unchanged."""
    for wildcard in ("tcp://0.0.0.0:", "tcp://*:"):
        if endpoint.startswith(wildcard):
            return "tcp://127.0.0.1:" + endpoint[len(wildcard) :]
    return endpoint


def _attach(sock: zmq.Socket, endpoint: str, bind: bool) -> str:
    """Bind (returning the endpoint actually bound, e.g. the port chosen for ``:0``) or connect."""
    if bind:
        _prepare_ipc(endpoint)
        sock.bind(endpoint)
        return str(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    sock.connect(connect_address(endpoint))
    return endpoint


class Publisher:
    """A PUB-like socket (XPUB with no-drop so a full queue is seen and counted, never blocking).

    Args:
        endpoint: ``tcp://…`` / ``ipc://…`` / ``inproc://…``.
        bind: bind (a stage's output) or connect (a grabber into sync).
        hwm: send high-water mark in messages per subscriber.
        curve: CURVE client keys when connecting to an authenticated server.
        context: ZeroMQ context (default: the process-wide one).
        count_drops: True: a full subscriber queue makes :meth:`send` return False and count the
            drop — but then NO subscriber gets that message (ZeroMQ's XPUB_NODROP). Right for one
            consumer per socket; with several independent subscribers pass False (plain PUB: each
            slow subscriber silently loses its own messages, the others are unaffected).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        bind: bool,
        hwm: int = 4,
        curve: CurveClient | None = None,
        context: zmq.Context | None = None,
        count_drops: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.sent = 0
        self.dropped_hwm = 0
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.RCVHWM, 1000)
        self._sock.setsockopt(zmq.XPUB_NODROP, 1 if count_drops else 0)
        self._topics: set[bytes] = set()
        # Subscription changes in arrival order, for subscription_events (bounded: nobody may read them).
        self._events: deque[tuple[bool, bytes]] = deque(maxlen=1024)
        if curve is not None:
            apply_client(self._sock, curve)
        self.endpoint = _attach(self._sock, endpoint, bind)

    def send(self, topic: bytes, header: Mapping[str, Any], buffers: Sequence[Buffer] = ()) -> bool:
        """Publish one message; False (and ``dropped_hwm`` + 1) when a subscriber's queue is full."""
        self._drain_subscriptions()
        parts = encode(topic, header, buffers)
        try:
            self._sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self.dropped_hwm += 1
            return False
        self.sent += 1
        return True

    def send_first(self, topics: Sequence[bytes], header: Mapping[str, Any], buffers: Sequence[Buffer] = ()
                   ) -> bytes | None:
        """Publish one message (encoded once) on the first of ``topics`` whose subscribers all have room;
        the topic it went on, or None (and ``dropped_hwm`` + 1) when every one was full."""
        self._drain_subscriptions()
        if not topics:
            raise ValueError("send_first needs at least one topic")
        parts = encode(topics[0], header, buffers)
        for topic in topics:
            parts[0] = topic
            try:
                self._sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                continue
            self.sent += 1
            return topic
        self.dropped_hwm += 1
        return None

    @property
    def subscriptions(self) -> frozenset[bytes]:
        """The topic prefixes some connected subscriber holds now. ZeroMQ tells of a prefix's first
        subscriber and of its last one leaving — also when that one's process dies and its connection
        drops (an ipc or tcp connection, not inproc)."""
        self._drain_subscriptions()
        return frozenset(self._topics)

    def subscription_events(self) -> list[tuple[bool, bytes]]:
        """The subscription changes since the last call, oldest first: ``(True, prefix)`` when a prefix got
        its first subscriber, ``(False, prefix)`` when its last one left (also by its connection dropping).
        A subscriber that leaves and comes back between two calls shows as both: what ``subscriptions``
        cannot tell (the 1024 latest are kept)."""
        self._drain_subscriptions()
        events = list(self._events)
        self._events.clear()
        return events

    def poll_socket(self) -> Any:
        """The underlying socket (readable when a subscription change is queued), for a poller."""
        return self._sock

    def _drain_subscriptions(self) -> None:
        try:
            while True:
                self._note(self._sock.recv(zmq.NOBLOCK))
        except zmq.Again:
            pass

    def _note(self, event: bytes) -> None:
        """Keep track of one subscription message of XPUB (``\\x01`` + prefix: subscribed; ``\\x00``
        + prefix: its last subscriber left)."""
        if event[:1] == b"\x01":
            self._topics.add(event[1:])
            self._events.append((True, event[1:]))
        elif event[:1] == b"\x00":
            self._topics.discard(event[1:])
            self._events.append((False, event[1:]))

    def wait_for_subscriber(self, timeout_s: float = 5.0) -> bool:
        """Block until at least one subscription arrives (tests, one-shot tools). True if one did."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._sock.poll(50, zmq.POLLIN):
                self._note(self._sock.recv())
                return True
        return False

    @property
    def counters(self) -> dict[str, int]:
        """``{"sent", "dropped_hwm"}``."""
        return {"sent": self.sent, "dropped_hwm": self.dropped_hwm}

    def close(self, linger_ms: int = 0) -> None:
        """Close the socket; unsent messages are discarded (default) or get ``linger_ms`` to leave
        (a stage's final status on a clean stop)."""
        self._sock.close(linger=linger_ms)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Subscriber:
    """A SUB socket returning decoded messages; malformed ones are dropped and counted.

    Args:
        endpoint: where to bind or connect.
        topics: topic prefixes to receive (``b""`` = all).
        bind: bind (sync's frames input, so grabbers can connect in) or connect.
        hwm: receive high-water mark (messages).
        conflate: :meth:`recv` returns only the newest queued message (skipped ones counted in
            ``skipped``); ZeroMQ's own CONFLATE cannot carry multipart messages, so this drains.
        curve: CURVE server keys and client allow-list (binding side only).
        max_buffer_bytes: larger buffers make a message malformed.
    """

    def __init__(
        self,
        endpoint: str,
        topics: Iterable[bytes] = (b"",),
        *,
        bind: bool,
        hwm: int = 4,
        conflate: bool = False,
        curve: CurveServer | None = None,
        max_buffer_bytes: int = MAX_BUFFER_BYTES,
        context: zmq.Context | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.conflate = conflate
        self.max_buffer_bytes = max_buffer_bytes
        self.received = 0
        self.dropped_malformed = 0  # every message decode refused, whatever the reason
        self.drops: dict[str, int] = {}  # the same by DropReason (malformed, oversize, foreign)
        self.skipped = 0
        self.last_error: str | None = None
        self._auth = None
        self._own_ctx = False
        if curve is not None:
            # One ZAP handler per context: an authenticated socket gets its own context.
            self._ctx = zmq.Context()
            self._own_ctx = True
            self._auth = start_authenticator(self._ctx, curve)
        else:
            self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RCVHWM, hwm)
        self._sock.setsockopt(zmq.MAXMSGSIZE, max_buffer_bytes + (1 << 20))
        for t in topics:
            self._sock.setsockopt(zmq.SUBSCRIBE, t)
        try:
            if curve is not None:
                apply_server(self._sock, curve)
            self.endpoint = _attach(self._sock, endpoint, bind)
        except Exception:
            self.close()
            raise

    def _recv_one(self) -> Message | None:
        """One queued message, or None when the queue is empty (malformed ones counted, skipped)."""
        while True:
            try:
                parts = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            try:
                msg = decode(parts, max_buffer_bytes=self.max_buffer_bytes)
            except MessageError as err:
                self.dropped_malformed += 1
                self.drops[err.reason] = self.drops.get(err.reason, 0) + 1
                self.last_error = str(err)
                log.debug("dropped malformed message on %s: %s", self.endpoint, err)
                continue
            self.received += 1
            return msg

    def recv(self, timeout_ms: int | None = 100) -> Message | None:
        """The next (``conflate``: the newest) well-formed message, or None after ``timeout_ms``.

        ``timeout_ms=None`` waits forever; 0 only looks at what is queued.
        """
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            msg = self._recv_one()
            if msg is not None:
                if self.conflate:
                    newer, skipped = self._drain(msg)
                    self.skipped += skipped
                    return newer
                return msg
            wait = -1 if deadline is None else int(max(0.0, deadline - time.monotonic()) * 1000)
            if not self._sock.poll(wait, zmq.POLLIN):
                return None
            if deadline is not None and time.monotonic() >= deadline and not self._sock.poll(0, zmq.POLLIN):
                return None

    def poll_socket(self) -> Any:
        """The underlying socket, for :func:`recv_any` only."""
        return self._sock

    def subscribe(self, topic: bytes) -> None:
        """Receive ``topic`` (a prefix) too; the publisher sees it (its first subscriber)."""
        self._sock.setsockopt(zmq.SUBSCRIBE, topic)

    def unsubscribe(self, topic: bytes) -> None:
        """Stop receiving ``topic``; queued messages of it are discarded, and the publisher sees it (its last
        subscriber left)."""
        self._sock.setsockopt(zmq.UNSUBSCRIBE, topic)

    def _drain(self, first: Message) -> tuple[Message, int]:
        latest, skipped = first, 0
        while (msg := self._recv_one()) is not None:
            latest, skipped = msg, skipped + 1
        return latest, skipped

    @property
    def counters(self) -> dict[str, int]:
        """``{"received", "dropped_malformed", "skipped"}``."""
        return {
            "received": self.received,
            "dropped_malformed": self.dropped_malformed,
            "skipped": self.skipped,
        }

    def close(self) -> None:
        """Close the socket (and its authenticator and own context, if any)."""
        self._sock.close(linger=0) if hasattr(self, "_sock") else None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._own_ctx:
            self._ctx.term()
            self._own_ctx = False

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def drain_latest(sub: Subscriber, timeout_ms: int | None = 0) -> tuple[Message | None, int]:
    """Latest-wins: the newest queued message (waiting up to ``timeout_ms`` for a first one) and how
    many older ones were skipped (also added to ``sub.skipped``)."""
    first = sub._recv_one()
    if first is None:
        if timeout_ms == 0:
            return None, 0
        conflate, sub.conflate = sub.conflate, False
        try:
            first = sub.recv(timeout_ms)
        finally:
            sub.conflate = conflate
        if first is None:
            return None, 0
    latest, skipped = sub._drain(first)
    sub.skipped += skipped
    return latest, skipped


def drain_newest(
    sub: Subscriber, key: Callable[[Message], int], timeout_ms: int | None = 100
) -> Message | None:
    """Of the queued messages (waiting up to ``timeout_ms`` for a first one), the one with the largest
    ``key``; the others are skipped (added to ``sub.skipped``). With several producers on one subscriber
    the last to arrive is not always the newest (a worker that took longer)."""
    conflate, sub.conflate = sub.conflate, False
    try:
        best = sub.recv(timeout_ms)
    finally:
        sub.conflate = conflate
    if best is None:
        return None
    while (msg := sub._recv_one()) is not None:
        sub.skipped += 1
        if key(msg) > key(best):
            best = msg
    return best


def shutdown(linger_ms: int = 500) -> None:
    """End of a process: close any socket left on the process-wide context and terminate it.

    Frames are sent zero-copy; a process that exits while ZeroMQ's I/O thread still reads a frame's
    memory can abort (EFAULT). Call this last in a process entry point, from its main thread,
    once no other thread uses the bus.
    """
    zmq.Context.instance().destroy(linger=linger_ms)


def recv_any(subscribers: Sequence[Subscriber], timeout_ms: int = 100) -> tuple[int, Message] | None:
    """The next well-formed message from any of ``subscribers`` as ``(index, message)``, taking them in
    turn so none starves; None after ``timeout_ms``. (Not for ``conflate`` subscribers.)"""
    deadline = time.monotonic() + timeout_ms / 1000
    poller = zmq.Poller()
    for sub in subscribers:
        poller.register(sub.poll_socket(), zmq.POLLIN)
    while True:
        for i, sub in enumerate(subscribers):
            msg = sub._recv_one()
            if msg is not None:
                return i, msg
        wait = int(max(0.0, deadline - time.monotonic()) * 1000)
        if not poller.poll(wait) and time.monotonic() >= deadline:
            return None
