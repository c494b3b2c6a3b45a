"""Several VMC targets at once through real UDP sockets to real OSC servers: a refusing or unresolvable
target is counted and never stops the others."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from osc_receiver import osc_receiver

from crosspose.streaming import BONE_ADDRESS, ROOT_ADDRESS, VmcSender, parse_target

BONES = ("Hips", "Spine", "Chest", "Neck", "Head")


def closed_udp_port() -> int:
    """A UDP port nothing listens on (the kernel answers with ICMP port unreachable)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def frame(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rot = np.tile([1.0, 0.0, 0.0, 0.0], (len(BONES), 1))
    return np.array([0.01 * i, 0.9, 0.0]), rot, np.full((len(BONES), 3), 0.1)


def test_parse_target() -> None:
    assert parse_target("10.0.0.5", 39539) == ("10.0.0.5", 39539)
    assert parse_target("studio-pc:39540", 39539) == ("studio-pc", 39540)
    assert parse_target("[::1]:9000", 39539) == ("::1", 9000)
    for bad, match in (("host:0", "outside"), ("host:abc", "not a number"), (":9", "no host")):
        with pytest.raises(ValueError, match=match):
            parse_target(bad, 39539)


def test_every_reachable_target_gets_every_bundle_despite_a_refusing_and_an_unknown_one() -> None:
    n = 40
    refusing = closed_udp_port()
    with osc_receiver() as (port_a, got_a), osc_receiver() as (port_b, got_b):
        targets = [f"127.0.0.1:{port_a}", f"127.0.0.1:{refusing}", "no-such-host.invalid:39539"]
        sender = VmcSender([*targets, f"127.0.0.1:{port_b}"], BONES)
        try:
            for i in range(n):
                root, rot, off = frame(i)
                assert sender.send_frame(i, 0, root, rot, off) >= 2
            a, b = got_a.wait_for(n), got_b.wait_for(n)
        finally:
            sender.close()
    assert len(a) == len(b) == n
    for bundle in a:
        assert [addr for addr, _ in bundle].count(BONE_ADDRESS) == len(BONES)
    roots = [next(args for addr, args in bundle if addr == ROOT_ADDRESS) for bundle in a]
    np.testing.assert_allclose([r[1] for r in roots], [-0.01 * i for i in range(n)], atol=1e-6)  # in order
    stats = {t["target"]: t for t in sender.stats()["targets"]}
    assert stats[f"127.0.0.1:{port_a}"]["sent"] == stats[f"127.0.0.1:{port_b}"]["sent"] == n
    dead = stats[f"127.0.0.1:{refusing}"]
    assert dead["refused"] >= 1  # the ICMP refusals surface as ECONNREFUSED on the following sends
    assert dead["sent"] + dead["refused"] + dead["errors"] == n
    assert "refused" in (dead["last_error"] or "")
    unknown = stats["no-such-host.invalid:39539"]
    assert unknown["sent"] == 0
    assert unknown["unresolved"] == n
    assert sender.stats()["bundles"] == n


def test_rate_limit_skips_and_counts() -> None:
    with osc_receiver() as (port, got):
        sender = VmcSender([f"127.0.0.1:{port}"], BONES, rate_hz=0.5)  # at most one bundle per 2 s
        try:
            for i in range(10):
                sender.send_frame(i, 0, *frame(i))
            assert got.wait_for(1)
        finally:
            sender.close()
    s = sender.stats()
    assert s["frames"] == 10
    assert s["bundles"] == 1
    assert s["skipped_rate"] == 9


def test_status_only_bundles_before_the_rest_pose_is_known() -> None:
    with osc_receiver() as (port, got):
        sender = VmcSender([f"127.0.0.1:{port}"], BONES)
        try:
            sender.send_frame(0, 0, None, None, None)
            bundles = got.wait_for(1)
        finally:
            sender.close()
    assert [addr for addr, _ in bundles[0]] == ["/VMC/Ext/OK", "/VMC/Ext/T"]
    assert bundles[0][0][1][0] == 0  # not loaded: no bones yet
