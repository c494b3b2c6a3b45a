"""VMC bundles carry the full body's foot and hand rotations (issue 19.4)."""

from __future__ import annotations

import numpy as np
from osc_receiver import osc_receiver

from crosspose.motion import BONES, UNITY_BONES
from crosspose.skeleton import BODY32
from crosspose.streaming import BONE_ADDRESS, VmcSender
from crosspose.streaming.live import LiveMotion
from crosspose.studio import extremities as ex
from crosspose.studio.motion import generate_motion

FPS = 30.0


def test_vmc_bundles_carry_the_feet_and_hands() -> None:
    motion = generate_motion(seed=5, num_frames=20, fps=FPS)
    wave = np.sin(2 * np.pi * 0.5 * np.arange(20)[:, None] / FPS + np.array([0.0, 1.2]))
    joints = ex.full_body(motion.joints, ex.ExtremityPoses(foot_pitch=0.5 * wave, foot_roll=0.25 * wave,
                                                           hand_roll=wave, head_yaw=0.6 * wave[:, 0]))
    conf = np.ones(32)
    unity = [UNITY_BONES[b] for b in BONES]
    with osc_receiver() as (port, got):
        live = LiveMotion(vmc=VmcSender([f"127.0.0.1:{port}"], unity), warmup_frames=5, skeleton=BODY32)
        try:
            for i, frame in enumerate(joints):
                live.update(i / FPS, frame, conf)
                live.send_vmc(i, 0)
            bundles = got.wait_for(len(joints))
        finally:
            live.close()
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
