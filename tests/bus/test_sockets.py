"""Publisher / Subscriber over real ZeroMQ sockets: delivery, HWM drops counted, malformed dropped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq

from crosspose.bus import Publisher, Subscriber, connect_address, drain_latest

pytestmark = pytest.mark.timeout(60)


def _settle(pub: Publisher, sub: Subscriber, topic: bytes) -> None:
    """Send probes until the subscription has propagated (PUB/SUB's slow joiner)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pub.send(topic, {"type": "probe"})
        if sub.recv(20) is not None:
            while sub.recv(20) is not None:
                pass
            return
    raise AssertionError("subscription never arrived")


def test_connect_address() -> None:
    assert connect_address("tcp://0.0.0.0:5555") == "tcp://127.0.0.1:5555"
    assert connect_address("tcp://*:7") == "tcp://127.0.0.1:7"
    assert connect_address("ipc:///tmp/x") == "ipc:///tmp/x"


def test_bound_sub_receives_from_connecting_pubs(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/frames"
    with (
        Subscriber(endpoint, [b"frame."], bind=True, hwm=100) as sub,
        Publisher(endpoint, bind=False, hwm=100) as a,
        Publisher(endpoint, bind=False, hwm=100) as b,
    ):
        _settle(a, sub, b"frame.a.")
        _settle(b, sub, b"frame.b.")
        for i in range(5):
            assert a.send(b"frame.a.", {"type": "frame", "seq": i}, [b"A" * 10])
            assert b.send(b"frame.b.", {"type": "frame", "seq": i}, [b"B" * 10])
        a.send(b"other.", {"type": "x"})  # not subscribed: never arrives
        got = []
        while (m := sub.recv(200)) is not None:
            got.append((m.topic, m.header["seq"], bytes(m.buffers[0])))
        assert sorted(got) == sorted(
            [(b"frame.a.", i, b"A" * 10) for i in range(5)] + [(b"frame.b.", i, b"B" * 10) for i in range(5)]
        )
        assert sub.received >= 10
        assert a.sent >= 5


def test_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/hwm"
    with Publisher(endpoint, bind=True, hwm=2) as pub, Subscriber(endpoint, [b""], bind=False, hwm=2) as sub:
        assert pub.wait_for_subscriber()
        payload = b"\0" * 1_000_000  # large: the kernel buffers fill after a few
        results = [pub.send(b"frame.a.", {"type": "frame", "seq": i}, [payload]) for i in range(200)]
        assert pub.dropped_hwm > 0
        assert pub.sent + pub.dropped_hwm == 200
        assert results.count(False) == pub.dropped_hwm
        # The subscriber still gets well-formed messages (the oldest ones that fit).
        first = sub.recv(2000)
        assert first is not None
        assert first.header["seq"] == 0


def test_malformed_and_foreign_messages_are_dropped_and_counted(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/mixed"
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    try:
        with Subscriber(endpoint, [b""], bind=True) as sub:
            raw.connect(endpoint)
            valid = [b"frame.a.", b"\x83\xa1v\x01\xa4type\xa5frame\xa9n_buffers\x00"]
            deadline = time.monotonic() + 10
            while sub.recv(20) is None and time.monotonic() < deadline:
                raw.send_multipart(valid)  # until the connection is up
            while sub.recv(50) is not None:
                pass
            n0 = sub.dropped_malformed
            received0 = sub.received
            for bad in (
                [b"frame.a.", b"not msgpack \xc1"],
                [b"frame.a."],
                [b"frame.a.", b"\x81\xa1v\x01"],  # {"v": 1}: no type
                [b"frame.a.", b"\x83\xa1v\x02\xa4type\xa1x\xa9n_buffers\x00"],  # version 2
            ):
                raw.send_multipart(bad)
            raw.send_multipart([b"probe.", b"\x92\x01\x02"])  # a msgpack list, not a map
            raw.send_multipart(valid)
            msg = sub.recv(2000)
            assert msg is not None
            assert msg.type == "frame"
            assert sub.dropped_malformed - n0 == 5
            assert sub.drops == {"malformed": 4, "foreign": 1}  # by reason: version 2 is another schema
            assert sub.received == received0 + 1
            assert sub.last_error is not None
    finally:
        raw.close(linger=0)


def test_drain_latest_and_conflate(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/latest"
    with (
        Publisher(endpoint, bind=True, hwm=100) as pub,
        Subscriber(endpoint, [b"x."], bind=False, hwm=100) as sub,
    ):
        assert pub.wait_for_subscriber()
        for i in range(10):
            pub.send(b"x.", {"type": "x", "seq": i})
        time.sleep(0.2)  # let them all arrive: drain_latest only looks at what is queued
        latest, skipped = drain_latest(sub, timeout_ms=1000)
        assert latest is not None
        assert latest.header["seq"] == 9
        assert skipped == 9
        assert drain_latest(sub) == (None, 0)
        sub.conflate = True
        for i in range(10, 15):
            pub.send(b"x.", {"type": "x", "seq": i})
        time.sleep(0.2)
        msg = sub.recv(1000)
        assert msg is not None
        assert msg.header["seq"] == 14
        assert sub.skipped == 9 + 4


def test_recv_timeout_returns_none(tmp_path: Path) -> None:
    with Subscriber(f"ipc://{tmp_path}/quiet", [b""], bind=True) as sub:
        assert sub.recv(30) is None
        assert sub.recv(0) is None


def test_without_drop_counting_a_slow_subscriber_does_not_starve_a_fast_one(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/fanout"
    with (
        Publisher(endpoint, bind=True, hwm=2, count_drops=False) as pub,
        Subscriber(endpoint, [b""], bind=False, hwm=2) as slow,
        Subscriber(endpoint, [b""], bind=False, hwm=2) as fast,
    ):
        _settle(pub, fast, b"x.")
        _settle(pub, slow, b"x.")
        while fast.recv(100) is not None:  # the probes that settled the slow one
            pass
        payload = b"\0" * 1_000_000
        got = []
        for i in range(50):  # paced by the fast reader; the slow one never reads and fills up
            assert pub.send(b"x.", {"type": "x", "seq": i}, [payload])  # never refused
            msg = fast.recv(2000)
            assert msg is not None
            got.append(msg.header["seq"])
        assert got == list(range(50))
        assert pub.dropped_hwm == 0
