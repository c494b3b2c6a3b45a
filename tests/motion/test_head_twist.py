"""The head bone's twist comes from the face (nose, eyes and thorax), not the shoulders.

Face-layout joints as the detectors give them (crosspose.skeleton: H36M neck = nose, head = mid-eyes):
the nose ~10 cm in front of the thorax's vertical and ~22 cm above it, the eyes 4 cm higher and 2 cm
further back. A head turn is a rotation of both about the vertical through the thorax.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from test_motion_rotations import _globals

from crosspose.motion import BONES, LiveRotations, RestPose, joints_from_fk, solve_rotations
from crosspose.motion.rotations import face_reference
from crosspose.skeleton import H36M17
from crosspose.studio.motion import Motion as Clip
from crosspose.studio.motion import generate_motion

J = {name: i for i, name in enumerate(H36M17.joints)}
HEAD, NECK, CHEST = BONES.index("head"), BONES.index("neck"), BONES.index("chest")
Bound = Callable[[np.ndarray, RestPose], np.ndarray]
UP = np.array([0.0, 0.0, 1.0])


def _rotate(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: ``(N, 3)`` vectors about ``(N, 3)`` unit axes by ``(N,)`` radians."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return v * c + np.cross(axis, v) * s + axis * (axis * v).sum(-1, keepdims=True) * (1 - c)


def face_layout(joints: np.ndarray, yaw_deg: np.ndarray) -> np.ndarray:
    """``(N, 17, 3)`` Z-up joints with neck → nose and head → mid-eyes, the face turned ``yaw_deg``
    (``(N,)``, to the performer's left) from the shoulders' forward about the thorax → neck axis."""
    out = joints.copy()
    thorax = joints[:, J["thorax"]]
    up = joints[:, J["neck"]] - thorax
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    lateral = joints[:, J["l_shoulder"]] - joints[:, J["r_shoulder"]]
    lateral -= (lateral * up).sum(-1, keepdims=True) * up
    lateral /= np.linalg.norm(lateral, axis=-1, keepdims=True)
    forward = _rotate(np.cross(lateral, up), up, np.radians(yaw_deg))
    out[:, J["neck"]] = thorax + 0.10 * forward + 0.22 * up
    out[:, J["head"]] = thorax + 0.08 * forward + 0.26 * up
    return out


def head_turn(yaw_deg: np.ndarray) -> np.ndarray:
    """A standing frame repeated, body still, upright neck, the face turning by ``yaw_deg``."""
    base = generate_motion(seed=1, num_frames=1, fps=60.0, actions=("walk",)).joints[0]
    frames = np.repeat(base[None], len(yaw_deg), 0)
    frames[:, J["neck"]] = frames[:, J["thorax"]] + 0.2 * UP  # neck axis vertical: the turn is a yaw
    return face_layout(frames, yaw_deg)




def heading_deg(G: np.ndarray) -> np.ndarray:
    """Azimuth (degrees, about +Y, left turn positive) of ``(N, 3, 3)`` bone frames' lateral axis."""
    lateral = G[:, :, 0]
    return np.degrees(np.unwrap(np.arctan2(-lateral[:, 2], lateral[:, 0])))


def twist_deg(q: np.ndarray) -> np.ndarray:
    """Twist (degrees) about the bone's own rest axis +Y of ``(N, 4)`` local quaternions (swing-twist)."""
    return np.degrees(np.unwrap(2 * np.arctan2(q[:, 2], q[:, 0])))


YAW = np.concatenate([np.zeros(10), np.linspace(0.0, 60.0, 61), np.full(10, 60.0)])


def test_a_head_turn_is_a_head_yaw(bound: Bound) -> None:
    joints = head_turn(YAW)
    motion = solve_rotations(joints, fps=60.0)
    q = motion.rotations
    G = _globals(q)
    head = heading_deg(G[:, HEAD])
    np.testing.assert_allclose(head - head[0], YAW, atol=1e-6)  # exact geometry: the face's own turn
    # in the local rotation a receiver applies: a twist of the head about its segment
    np.testing.assert_allclose(twist_deg(q[:, HEAD]) - twist_deg(q[:1, HEAD]), YAW, atol=3.0)
    # the chest and neck do not take it: the chest does not move, the neck (thorax → nose, which swings
    # as the nose goes round) keeps the shoulder line as its x axis and turns only a few degrees
    np.testing.assert_allclose(G[:, CHEST], np.repeat(G[:1, CHEST], len(YAW), 0), atol=1e-12)
    P = _yup(joints)[0]
    np.testing.assert_allclose(G[:, NECK, :, 0], _shoulder_lateral(joints, J["thorax"], J["neck"]), atol=1e-9)
    assert np.abs(heading_deg(G[:, NECK]) - heading_deg(G[:1, NECK])).max() < 6.0
    assert np.abs(twist_deg(q[:, NECK]) - twist_deg(q[:1, NECK])).max() < 6.0
    assert np.isfinite(P).all()
    # the weight of the face direction is full all along
    np.testing.assert_allclose(face_reference(*_yup(joints))[1], 1.0)
    # forward kinematics still puts every joint back (nose and eyes included)
    error = np.linalg.norm(joints_from_fk(motion) - joints, axis=-1)
    assert (error - 1e-3 - bound(joints, motion.rest) <= 0).all()


def _yup(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from crosspose.motion import zup_to_yup

    return zup_to_yup(joints), np.isfinite(joints).all(-1)


def test_noisy_face_points_still_give_the_turn() -> None:
    """The face direction rests on nose and eyes 4.5 cm apart: ~2.3° RMS of head yaw per mm of joint
    noise (measured over seeds); the turn itself comes through."""
    rng = np.random.default_rng(5)
    joints = head_turn(YAW)
    joints += rng.normal(0.0, 0.001, joints.shape)
    G = _globals(solve_rotations(joints, fps=60.0).rotations)
    head = heading_deg(G[:, HEAD])
    exact = heading_deg(_globals(solve_rotations(head_turn(YAW), fps=60.0).rotations)[:, HEAD])
    error = head - exact
    assert np.sqrt(np.mean(error**2)) < 4.0, np.sqrt(np.mean(error**2))
    assert head[-10:].mean() - head[:10].mean() == pytest.approx(60.0, abs=3.0)


def test_before_the_fix_the_shoulders_gave_no_head_yaw() -> None:
    """What the issue reported, kept as a contrast: the shoulder line (the fallback) sees no turn."""
    joints = head_turn(YAW)
    P, ok = _yup(joints)
    reference = face_reference(P, ok)[0]
    shoulders = face_reference(P, ok & (np.arange(17) != J["thorax"]))[0]  # no thorax: fallback only
    lateral = np.cross(P[:, J["head"]] - P[:, J["neck"]], shoulders)
    turn = np.degrees(np.arctan2(-lateral[:, 2], lateral[:, 0]))
    assert np.ptp(turn) < 10.0  # the shoulder reference follows only the head segment's swing ...
    lateral = np.cross(P[:, J["head"]] - P[:, J["neck"]], reference)
    turn = np.degrees(np.arctan2(-lateral[:, 2], lateral[:, 0]))
    assert np.ptp(turn) == pytest.approx(60.0, abs=1e-6)  # ... the face reference does


def _shoulder_lateral(joints: np.ndarray, start: int = J["neck"], end: int = J["head"]) -> np.ndarray:
    """``(N, 3)`` Y-up shoulder line made perpendicular to the segment ``start → end`` (default: the
    head's), unit: the x axis of a bone whose twist is the shoulders'."""
    P = _yup(joints)[0]
    e1 = P[:, end] - P[:, start]
    e1 /= np.linalg.norm(e1, axis=-1, keepdims=True)
    s = P[:, J["l_shoulder"]] - P[:, J["r_shoulder"]]
    s -= (s * e1).sum(-1, keepdims=True) * e1
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def test_degenerate_face_points_fall_back_to_the_shoulders(take: Clip) -> None:
    joints = head_turn(YAW)
    thorax = joints[:, J["thorax"]]
    # nose and eyes on the thorax → neck axis: no face direction
    on_axis = joints.copy()
    on_axis[:, J["neck"]] = thorax + 0.22 * UP
    on_axis[:, J["head"]] = thorax + 0.26 * UP
    # the thorax missing: no lever for the face direction
    no_thorax = joints.copy()
    no_thorax[:, J["thorax"]] = np.nan
    for case in (on_axis, no_thorax):
        motion = solve_rotations(case, fps=60.0)
        assert np.isfinite(motion.rotations).all()
        G = _globals(motion.rotations)
        np.testing.assert_allclose(G[:, HEAD, :, 0], _shoulder_lateral(case), atol=1e-9)
        assert np.ptp(heading_deg(G[:, HEAD])) < 10.0  # no 60° turn: that needs the face
    # nose and eyes coincident: the head segment is undefined, the head holds its last rotation
    coincident = joints.copy()
    coincident[40:50, J["head"]] = coincident[40:50, J["neck"]]
    q = solve_rotations(coincident, fps=60.0).rotations
    assert np.isfinite(q).all()
    np.testing.assert_allclose(q[40:50, HEAD], np.repeat(q[39:40, HEAD], 10, 0), atol=1e-12)
    # head joints on the cervical axis (body25b's UpperNeck / HeadTop, mocap): a head tilted 30° sideways
    # is a tilt, not a 90° turn — the shoulders keep the twist
    clip = take.joints[:120]
    P, ok = _yup(clip)
    assert (face_reference(P, ok)[1] == 0).all()
    tilted = clip.copy()
    lateral = tilted[:, J["l_shoulder"]] - tilted[:, J["r_shoulder"]]
    lateral /= np.linalg.norm(lateral, axis=-1, keepdims=True)
    neck, top = tilted[:, J["neck"]], tilted[:, J["head"]]
    forward = np.cross(lateral, UP)
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    tilted[:, J["head"]] = neck + _rotate(top - neck, forward, np.full(len(clip), np.radians(30)))
    P, ok = _yup(tilted)
    assert (face_reference(P, ok)[1] == 0).all()
    G = _globals(solve_rotations(tilted, fps=60.0).rotations)
    np.testing.assert_allclose(G[:, HEAD, :, 0], _shoulder_lateral(tilted), atol=1e-9)


def _face_take(take: Clip, frames: int) -> np.ndarray:
    """The synthetic take in the face layout, the head turning ±70° (period 4 s) on top of the body."""
    t = np.arange(frames) / 60.0
    return face_layout(take.joints[:frames], 70.0 * np.sin(2 * np.pi * t / 4.0))


def test_face_take_live_agrees_with_batch_and_stays_continuous(take: Clip) -> None:
    joints = _face_take(take, 240)
    P, ok = _yup(joints)
    w = face_reference(P, ok)[1]
    assert (w > 0.99).mean() > 0.9  # the face drives the head (looking down fades it a little)
    rng = np.random.default_rng(2)
    joints += rng.normal(0.0, 0.002, joints.shape)
    confidence = rng.uniform(0.3, 1.0, (240, 17))
    confidence[rng.random((240, 17)) < 0.05] = 0.0
    joints[rng.random((240, 17)) < 0.05] = np.nan
    batch = solve_rotations(joints, confidence=confidence)
    live = LiveRotations(batch.rest)
    out = [live.update(joints[i], confidence[i]) for i in range(240)]
    assert all(o is not None for o in out)
    np.testing.assert_allclose(np.stack([o[1] for o in out]), batch.rotations, atol=1e-9)  # type: ignore[index]
    np.testing.assert_allclose(np.stack([o[0] for o in out]), batch.root, atol=1e-12)  # type: ignore[index]


def test_face_take_spinning_has_no_flips(take: Clip) -> None:
    joints = _face_take(take, 300)
    n = joints.shape[0]
    a = np.linspace(0, 2 * np.pi * 5, n)  # five turns in 5 s about the pelvis' vertical
    c, s = np.cos(a), np.sin(a)
    R = np.zeros((n, 3, 3))
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = c, -s, s, c, 1
    centre = joints[:, :1]
    spun = np.einsum("nij,nkj->nki", R, joints - centre) + centre
    q = solve_rotations(spun, fps=60.0).rotations
    dots = (q[1:] * q[:-1]).sum(-1)
    assert dots.min() > np.cos(np.radians(15) / 2)
    # the head's local rotation does not depend on where the performer faces
    np.testing.assert_allclose(q[:, HEAD], solve_rotations(joints, fps=60.0).rotations[:, HEAD], atol=1e-9)
