"""``LiveMotion`` (filter → rotations → VMC) on synthetic motion, and its config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osc_receiver import osc_receiver
from pydantic import ValidationError

from crosspose.config import ConfigError, load_config
from crosspose.config.settings import FilterConfig, FilterGroupConfig, StreamingConfig, VmcConfig
from crosspose.motion import BONES, UNITY_BONES, FilterSettings, LiveRotations, humanoid_map
from crosspose.runtime.demo import synthetic_config
from crosspose.skeleton import H36M17, Skeleton
from crosspose.streaming import BONE_ADDRESS, VmcSender
from crosspose.streaming.live import LiveMotion, filter_settings
from crosspose.studio import make_scene

H36M_BONES = humanoid_map(H36M17).bones

def performer(frames: int = 40) -> np.ndarray:
    return make_scene(1, frames, 2, fps=30.0).joints3d


def test_rotations_match_live_rotations_and_go_out_as_vmc() -> None:
    joints = performer()
    conf = np.ones(17)
    with osc_receiver() as (port, got):
        sender = VmcSender([f"127.0.0.1:{port}"], [UNITY_BONES[b] for b in H36M_BONES])
        live = LiveMotion(vmc=sender, warmup_frames=5)
        reference = LiveRotations(warmup_frames=5)
        try:
            for i, frame in enumerate(joints):
                out = live.update(i / 30, frame, conf)
                ref = reference.update(frame, conf)
                assert (out is None) == (ref is None)
                if out is not None and ref is not None:
                    np.testing.assert_allclose(out.root, ref[0])
                    np.testing.assert_allclose(out.rotations, ref[1][:len(H36M_BONES)])
                    assert out.offsets.shape == (len(H36M_BONES), 3)
                live.send_vmc(i, 0)
            bundles = got.wait_for(len(joints))
        finally:
            live.close()
    assert len(bundles) == len(joints)
    with_bones = [b for b in bundles if any(a == BONE_ADDRESS for a, _ in b)]
    assert len(with_bones) == live.rotated == len(joints) - 4  # the rest pose needs 5 frames
    # Human3.6M-17 carries no toes bone (no toe point): its bundles are as before the toes were added
    sent = [args[0] for a, args in with_bones[0] if a == BONE_ADDRESS]
    assert sent == [UNITY_BONES[b] for b in BONES[:19]]
    assert live.bones == H36M_BONES
    assert live.stats()["vmc"]["targets"][0]["sent"] == len(joints)


def test_a_performer_lost_for_long_resets_the_rest_pose() -> None:
    joints = performer(20)
    live = LiveMotion(warmup_frames=3, lost_reset_s=1.0)
    for i in range(5):
        live.update(i / 30, joints[i], np.ones(17))
    assert live.latest is not None
    gone = np.full((17, 3), np.nan)
    live.update(0.5, gone, np.zeros(17))
    assert live.resets == 0
    live.update(1.5, gone, np.zeros(17))  # pelvis last seen at 4/30 s: more than 1 s ago
    assert live.resets == 1
    assert live.update(1.6, joints[6], np.ones(17)) is None  # estimating a rest pose again


def test_filter_errors_are_counted_and_the_stream_goes_on() -> None:
    class Broken:
        def __call__(self, t_s: float, x: np.ndarray) -> np.ndarray:
            raise ValueError("time went backwards")

    live = LiveMotion(rotations=False, make_filter=Broken)
    x = np.ones((17, 3))
    assert live.filter_joints(1.0, x) is x
    assert live.errors == 1


def test_live_motion_follows_the_solver_s_layout(tmp_path: Path, toes_skeleton: Skeleton,
                                                 stick_skeleton: Skeleton) -> None:
    joints17 = performer(12)
    leaves = [H36M17.index(n) for n in ("l_ankle", "r_ankle", "head")]
    joints = np.concatenate([joints17, joints17[:, leaves] + [0.1, 0.0, 0.0]], axis=1)  # 20 joints
    live = LiveMotion(warmup_frames=3, skeleton=toes_skeleton)
    reference = LiveRotations(warmup_frames=3)
    for i in range(len(joints)):
        out, ref = live.update(i / 30, joints[i], np.ones(20)), reference.update(joints17[i], np.ones(17))
        assert (out is None) == (ref is None)
        if out is not None and ref is not None:
            np.testing.assert_array_equal(out.rotations, ref[1][:len(H36M_BONES)])  # its bones: no toes
    assert (live.rotated, live.errors) == (len(joints) - 2, 0)
    # 17 joints reaching a 20-joint solver's live motion: an error (counted), never read as H36M-17
    assert live.update(1.0, joints17[0], np.ones(17)) is None
    assert live.errors == 1
    # a layout without humanoid bones or filter groups is refused when the stage starts, by name
    with pytest.raises(ValueError, match="layout test-stick5 has no humanoid mapping"):
        LiveMotion(skeleton=stick_skeleton)
    config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=2, frames=10)
    on = config.model_copy(update={"filter": FilterConfig(enabled=True)})
    with pytest.raises(ValueError, match="do not name l_toe, r_toe of layout test-h36m17-toes"):
        LiveMotion.from_config(on, toes_skeleton)


def test_filter_config_maps_to_filter_settings(tmp_path: Path) -> None:
    assert filter_settings({}) == FilterSettings.default()
    custom = filter_settings({"arms": FilterGroupConfig(beta=4.0)})
    assert custom.arms.beta == 4.0
    assert custom.arms.min_cutoff == FilterSettings.default().arms.min_cutoff
    assert custom.torso == FilterSettings.default().torso
    with pytest.raises(ValidationError, match="torso"):
        FilterConfig.model_validate({"enabled": True, "groups": {"tail": {"beta": 1.0}}})
    config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=2, frames=10)
    assert config.filter.enabled is False
    assert config.streaming.vmc.enabled is False
    on = config.model_copy(update={"filter": FilterConfig(enabled=True)})
    assert LiveMotion.from_config(on).filtering
    assert not LiveMotion.from_config(config).filtering


def test_streaming_and_filter_sections_load_from_a_config_file(tmp_path: Path) -> None:
    text = (
        "cameras: [{name: cam1, source: '0'}]\n"
        "streaming: {vmc: {enabled: true, targets: ['10.0.0.2', 'studio-pc:39540'],\n"
        "                  send_hz: 30, root: floor}}\n"
        "filter: {enabled: true, groups: {arms: {beta: 3.0}}}\n"
    )
    (tmp_path / "c.yaml").write_text(text)
    config = load_config(tmp_path / "c.yaml")
    assert config.streaming.vmc.targets == ["10.0.0.2", "studio-pc:39540"]
    assert (config.streaming.vmc.send_hz, config.streaming.vmc.root) == (30.0, "floor")
    assert filter_settings(config.filter.groups).arms.beta == 3.0
    (tmp_path / "bad.yaml").write_text(text.replace("send_hz: 30", "sendhz: 30"))
    with pytest.raises(ConfigError, match="sendhz"):
        load_config(tmp_path / "bad.yaml")


def test_vmc_config_checks_targets() -> None:
    assert VmcConfig().targets == ["127.0.0.1:39539"]
    with pytest.raises(ValidationError, match="outside 1-65535"):
        VmcConfig(targets=["studio:70000"])
    assert StreamingConfig().rotations is True
