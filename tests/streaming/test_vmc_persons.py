"""Several performers over VMC: ``streaming.vmc.targets`` maps performer ids to receivers, each receiver
(a real OSC server on a real UDP socket) gets only its performer's bones, status-only bundles while that
performer is not tracked, and :class:`LiveMotion` keeps rotations per performer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from osc_receiver import osc_receiver
from pydantic import ValidationError

from crosspose.config import ConfigError, load_config
from crosspose.config.settings import VmcConfig
from crosspose.motion import UNITY_BONES, LiveRotations, humanoid_map
from crosspose.skeleton import H36M17
from crosspose.streaming import BONE_ADDRESS, OK_ADDRESS, ROOT_ADDRESS, VmcSender
from crosspose.streaming.live import LiveMotion
from crosspose.streaming.sender import VmcFrame
from crosspose.studio import make_scene

SPINE = ("Hips", "Spine", "Chest", "Neck", "Head")
H36M = humanoid_map(H36M17)
UNITY = [UNITY_BONES[b] for b in H36M.bones]  # what LiveMotion sends of Human3.6M-17 (no toes)


@dataclass(frozen=True)
class Pose:
    """The fields of a solved pose the live outputs read."""

    joints: np.ndarray
    confidence: np.ndarray


def vmc_frame(x: float) -> VmcFrame:
    """A frame whose root x (Y-up, metres) tells the performers apart."""
    rot = np.tile([1.0, 0.0, 0.0, 0.0], (len(SPINE), 1))
    return VmcFrame(np.array([x, 0.9, 0.0]), rot, np.full((len(SPINE), 3), 0.1))


def root_x(bundle: list[tuple[str, tuple]]) -> float | None:
    """The root's x as the receiver reads it (VMC is left-handed: x negated), None for a status bundle."""
    root = root_of(bundle)
    return None if root is None else float(root[0])


def root_of(bundle: list[tuple[str, tuple]]) -> np.ndarray | None:
    """The root position in our right-handed Y-up frame, None for a status bundle."""
    args = next((a for addr, a in bundle if addr == ROOT_ADDRESS), None)
    return None if args is None else np.array(args[1:4]) * [-1.0, 1.0, 1.0]


def loaded(bundle: list[tuple[str, tuple]]) -> int:
    return int(next(a for addr, a in bundle if addr == OK_ADDRESS)[0])


def test_the_config_maps_performer_ids_to_receivers(tmp_path: Path) -> None:
    text = (
        "cameras: [{name: cam1, source: '0'}]\n"
        "streaming: {vmc: {enabled: true, targets: {1: ['studio-pc:39540', '10.0.0.3'], 0: '10.0.0.2'}}}\n"
    )
    (tmp_path / "c.yaml").write_text(text)
    vmc = load_config(tmp_path / "c.yaml").streaming.vmc
    assert vmc.targets == {0: ["10.0.0.2"], 1: ["studio-pc:39540", "10.0.0.3"]}
    assert vmc.routes() == (["10.0.0.2", "studio-pc:39540", "10.0.0.3"], [0, 1, 1])
    assert VmcConfig(targets=["a", "b:9"]).routes() == (["a", "b:9"], [None, None])  # the lowest live id

    (tmp_path / "twice.yaml").write_text(text.replace("'10.0.0.3'", "'10.0.0.2:39539'"))
    twice = r"receiver '10.0.0.2:39539' is listed twice \(performers 0 and 1\)"
    with pytest.raises(ConfigError, match=twice):
        load_config(tmp_path / "twice.yaml")
    with pytest.raises(ValidationError, match="performer id -1 is negative"):
        VmcConfig(targets={-1: ["a"]})
    with pytest.raises(ValidationError, match="performer 2 has no receiver"):
        VmcConfig(targets={2: []})
    with pytest.raises(ValidationError, match="outside 1-65535"):
        VmcConfig(targets={0: ["studio:70000"]})
    with pytest.raises(ValidationError, match="listed twice: a receiver follows one performer"):
        VmcConfig(targets=["studio:9000", "studio:9000"])
    with pytest.raises(ValidationError, match="valid integer"):
        VmcConfig.model_validate({"targets": {"first": ["a"]}})


def test_each_receiver_gets_its_performer_and_status_while_that_one_is_not_tracked() -> None:
    with osc_receiver() as (p0, got0), osc_receiver() as (p1, got1), osc_receiver() as (pl, got_low):
        sender = VmcSender([f"127.0.0.1:{p0}", f"127.0.0.1:{p1}", f"127.0.0.1:{pl}"], SPINE,
                           persons=[0, 1, None])
        try:
            sets = [
                {0: vmc_frame(0.5), 1: vmc_frame(-1.5)},
                {1: vmc_frame(-1.4)},  # performer 0 lost: its receiver gets a status bundle
                {0: None, 1: vmc_frame(-1.3)},  # 0 back, rest pose not known yet
                {},  # nobody tracked
            ]
            for i, frames in enumerate(sets):
                assert sender.send_persons(i, 0, frames) == 3
            b0, b1, bl = got0.wait_for(4), got1.wait_for(4), got_low.wait_for(4)
        finally:
            sender.close()
    assert [root_x(b) for b in b0] == pytest.approx([0.5, None, None, None])
    assert [root_x(b) for b in b1] == pytest.approx([-1.5, -1.4, -1.3, None])
    assert [root_x(b) for b in bl] == pytest.approx([0.5, -1.4, None, None])  # the lowest live id
    assert [loaded(b) for b in b0] == [1, 0, 0, 0]
    assert all(a != BONE_ADDRESS for b in b0[1:] for a, _ in b)
    assert [t["person"] for t in sender.stats()["targets"]] == [0, 1, None]
    with pytest.raises(ValueError, match="3 targets but 2 persons"):
        VmcSender(["a", "b", "c"], SPINE, persons=[0, 1])


def test_live_motion_keeps_rotations_per_performer_and_routes_them() -> None:
    a = make_scene(1, 30, 2, fps=30.0).joints3d
    b = make_scene(2, 30, 2, fps=30.0).joints3d + np.array([1.5, 0.0, 0.0])  # another performer, beside
    conf = np.ones(17)
    ref = {0: LiveRotations(warmup_frames=4), 7: LiveRotations(warmup_frames=4)}
    roots: dict[int, list[np.ndarray]] = {0: [], 7: []}  # the reference's roots, frame by frame
    with osc_receiver() as (p0, got0), osc_receiver() as (p7, got7):
        sender = VmcSender([f"127.0.0.1:{p0}", f"127.0.0.1:{p7}"], UNITY, persons=[0, 7])
        live = LiveMotion(vmc=sender, warmup_frames=4, lost_reset_s=1.0)
        try:
            for i in range(20):
                persons = [(0, Pose(a[i], conf))] + ([(7, Pose(b[i], conf))] if i >= 5 else [])
                frames = live.update_persons(i / 30, persons)
                for pid, pose in persons:
                    expected = ref[pid].update(pose.joints, pose.confidence)
                    got = frames[pid]
                    assert (got is None) == (expected is None), (i, pid)
                    if got is not None and expected is not None:
                        np.testing.assert_allclose(got.rotations, expected[1][list(H36M.bone_index)])
                        np.testing.assert_allclose(got.root, expected[0])
                        roots[pid].append(expected[0])
                live.send_vmc_persons(i, 0, persons)
            b0, b7 = got0.wait_for(20), got7.wait_for(20)
        finally:
            live.close()
    assert live.latest is live.latest_of(0)
    assert live.persons == [0, 7]
    # receiver 0 has bones from the 4th frame; receiver 7 status only until 7 appears and warms up
    assert [root_x(x) is not None for x in b0] == [i >= 3 for i in range(20)]
    assert [root_x(x) is not None for x in b7] == [i >= 8 for i in range(20)]
    np.testing.assert_allclose([root_of(x) for x in b0[3:]], roots[0], atol=1e-5)
    np.testing.assert_allclose([root_of(x) for x in b7[8:]], roots[7], atol=1e-5)
    # performer 7 leaves: forgotten once absent for longer than lost_reset_s, never mixed with 0
    live.update_persons(1.0, [(0, Pose(a[20], conf))])
    assert live.persons == [0, 7]
    live.update_persons(20 / 30 + 1.5, [(0, Pose(a[21], conf))])
    assert live.persons == [0]
    assert live.forgotten == 1
    assert live.stats()["persons"] == 1
