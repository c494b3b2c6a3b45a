"""VMC bundles carry the full body's foot, toes and hand rotations (issue 19.3)."""

from __future__ import annotations

import numpy as np
from osc_receiver import osc_receiver

from crosspose.motion import BONES, UNITY_BONES, humanoid_map
from crosspose.skeleton import BODY32
from crosspose.streaming import BONE_ADDRESS, VmcSender
from crosspose.streaming.live import LiveMotion
from crosspose.streaming.vmc import to_unity_position
from crosspose.studio import extremities as ex
from crosspose.studio.motion import generate_motion

FPS = 30.0


def _moving_extremities(seed: int, frames: int) -> np.ndarray:
    """``(frames, 32, 3)`` a synthetic full body whose feet pitch and roll, hands roll and head turns."""
    motion = generate_motion(seed=seed, num_frames=frames, fps=FPS)
    wave = np.sin(2 * np.pi * 0.5 * np.arange(frames)[:, None] / FPS + np.array([0.0, 1.2]))
    return ex.full_body(motion.joints, ex.ExtremityPoses(foot_pitch=0.5 * wave, foot_roll=0.25 * wave,
                                                         hand_roll=wave, head_yaw=0.6 * wave[:, 0]))


def _bundles(joints: np.ndarray, unity_bones: list[str]) -> tuple[LiveMotion, list]:
    """Each frame of ``joints`` through a full-body :class:`LiveMotion` whose VMC sender sends to a real
    UDP receiver; the live motion and the bundles received."""
    conf = np.ones(32)
    with osc_receiver() as (port, got):
        live = LiveMotion(vmc=VmcSender([f"127.0.0.1:{port}"], unity_bones), warmup_frames=5, skeleton=BODY32)
        try:
            for i, frame in enumerate(joints):
                live.update(i / FPS, frame, conf)
                live.send_vmc(i, 0)
            return live, got.wait_for(len(joints))
        finally:
            live.close()


def test_vmc_bundles_carry_the_feet_and_hands() -> None:
    _, bundles = _bundles(_moving_extremities(5, 20), [UNITY_BONES[b] for b in BONES])
    turns: dict[str, list[np.ndarray]] = {}
    for bundle in bundles:
        for address, args in bundle:
            if address == BONE_ADDRESS and args[0] in ("LeftFoot", "RightFoot", "LeftHand", "RightHand"):
                turns.setdefault(args[0], []).append(np.array(args[4:8]))
    assert set(turns) == {"LeftFoot", "RightFoot", "LeftHand", "RightHand"}
    for name, quats in turns.items():
        q = np.stack(quats)
        assert np.abs(q[:, 3]).min() < 0.999, name  # not the identity (x, y, z, w)
        assert np.ptp(q, axis=0).max() > 0.02, name  # and moving


def test_vmc_bundles_carry_the_toes_at_rest_on_the_feet() -> None:
    """Unity's LeftToes / RightToes in every bundle of the full body: the identity local rotation (one toe
    point gives no toe flexion; the foot's frame is the plane of ankle, heel and big toe already), at the
    performer's measured ankle → big toe offset; also while a toe point is missing (the foot then holds).
    Human3.6M-17 has no toe point and sends no toes bone (test_live_motion)."""
    joints = _moving_extremities(7, 16)
    joints[10:12, BODY32.index("r_big_toe")] = np.nan
    bones = humanoid_map(BODY32).bones
    live, bundles = _bundles(joints, [UNITY_BONES[b] for b in bones])
    assert live.unity_bones[-2:] == ("LeftToes", "RightToes")
    rest = live.latest_of(0)
    assert rest is not None
    sent = [{args[0]: np.array(args[1:8]) for address, args in b if address == BONE_ADDRESS} for b in bundles]
    sent = [s for s in sent if s]
    assert len(sent) == len(joints) - 4  # the rest pose needs 5 frames
    for name, bone in (("LeftToes", "left_toes"), ("RightToes", "right_toes")):
        offset = to_unity_position(rest.offsets[bones.index(bone)])
        assert 0.10 < np.linalg.norm(offset) < 0.25  # ankle → big toe, metres
        for bundle in sent:
            np.testing.assert_allclose(bundle[name][3:], [0.0, 0.0, 0.0, 1.0], atol=1e-6)  # x, y, z, w
            np.testing.assert_allclose(bundle[name][:3], offset, atol=1e-6)
    feet = np.stack([s["RightFoot"][3:] for s in sent])  # frames 4.. sent: the toe missing in 10, 11
    np.testing.assert_allclose(feet[10 - 4], feet[9 - 4], atol=1e-6)
    np.testing.assert_allclose(feet[11 - 4], feet[9 - 4], atol=1e-6)
    assert np.abs(feet[12 - 4] - feet[9 - 4]).max() > 1e-4
