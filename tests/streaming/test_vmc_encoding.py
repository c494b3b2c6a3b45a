"""VMC bundles: the coordinate conversion on known rotations, and the bytes as python-osc decodes them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.parsing import osc_types

from crosspose.streaming import (
    BONE_ADDRESS,
    DIAGNOSTICS_ADDRESS,
    OK_ADDRESS,
    ROOT_ADDRESS,
    TIME_ADDRESS,
    VmcEncoder,
    to_unity_position,
    to_unity_quaternion,
)

UNITY = ("Hips", "Spine", "Chest", "Neck", "Head", "LeftUpperArm", "LeftLowerArm", "LeftHand")


def quat_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Rotation matrix of a unit quaternion (x, y, z, w): the same algebra in either handedness."""
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def unity_euler_y(deg: float) -> np.ndarray:
    """Unity's ``Quaternion.Euler(0, deg, 0)`` as (x, y, z, w)."""
    h = math.radians(deg) / 2
    return np.array([0.0, math.sin(h), 0.0, math.cos(h)])


def test_a_known_turn_becomes_the_same_turn_in_unity() -> None:
    # 90° about +Y in our right-handed Y-up frame: the performer (facing +Z, left hand on +X) turns to
    # its left, forward +Z → +X. In Unity (left-handed, right hand on +X) that is a turn towards -X:
    # Quaternion.Euler(0, -90, 0).
    h = math.radians(90) / 2
    ours = np.array([math.cos(h), 0.0, math.sin(h), 0.0])  # (w, x, y, z)
    np.testing.assert_allclose(quat_matrix(*ours[[1, 2, 3, 0]]) @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    unity = to_unity_quaternion(ours)
    np.testing.assert_allclose(unity, unity_euler_y(-90), atol=1e-12)
    np.testing.assert_allclose(quat_matrix(*unity) @ [0, 0, 1], [-1, 0, 0], atol=1e-12)
    # The performer's left hand (+X here) is on Unity's -X, i.e. on the left of a +Z-facing avatar.
    np.testing.assert_allclose(to_unity_position(np.array([0.7, 1.4, 0.0])), [-0.7, 1.4, 0.0])


def test_conversion_is_the_mirror_for_any_rotation() -> None:
    rng = np.random.default_rng(3)
    q = rng.normal(size=(200, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    v = rng.normal(size=(200, 3))
    for qi, vi in zip(q, v, strict=True):
        ours = quat_matrix(*qi[[1, 2, 3, 0]]) @ vi
        theirs = quat_matrix(*to_unity_quaternion(qi)) @ to_unity_position(vi)
        np.testing.assert_allclose(theirs, to_unity_position(ours), atol=1e-12)
    with pytest.raises(ValueError, match="w, x, y, z"):
        to_unity_quaternion(np.zeros(3))


def decode(datagram: bytes) -> list[tuple[str, list[object]]]:
    assert OscBundle.dgram_is_bundle(datagram)
    bundle = OscBundle(datagram)
    assert datagram[8:16] == b"\0" * 7 + b"\1"  # OSC time tag "immediately"
    assert bundle.timestamp == osc_types.IMMEDIATELY
    return [(m.address, list(m.params)) for m in bundle]


def test_frame_bundle_decodes_with_python_osc() -> None:
    enc = VmcEncoder(UNITY)
    rng = np.random.default_rng(0)
    rot = rng.normal(size=(len(UNITY), 4))
    rot /= np.linalg.norm(rot, axis=1, keepdims=True)
    offsets = rng.normal(size=(len(UNITY), 3)) * 0.2
    root = np.array([0.3, 0.95, -1.2])
    data = enc.frame_bundle(root, rot, offsets, time_s=12.5, diagnostics=(42, 10**15, 10**15 + 7))
    msgs = decode(data)
    addresses = [a for a, _ in msgs]
    assert addresses == [OK_ADDRESS, TIME_ADDRESS, ROOT_ADDRESS] + [BONE_ADDRESS] * len(UNITY) + [
        DIAGNOSTICS_ADDRESS
    ]
    assert msgs[0][1] == [1, 3, 0, 1]  # loaded, calibrated, normal mode, tracking OK
    assert msgs[1][1] == [12.5]
    name, *root_args = msgs[2][1]
    assert name == "root"
    np.testing.assert_allclose(root_args[:3], [-0.3, 0.95, -1.2], atol=1e-6)  # float32
    np.testing.assert_allclose(root_args[3:], [0, 0, 0, 1])
    bones = msgs[3 : 3 + len(UNITY)]
    assert [args[0] for _, args in bones] == list(UNITY)
    for i, (_, (_, *vals)) in enumerate(bones):
        assert all(isinstance(v, float) for v in vals)
        np.testing.assert_allclose(vals[3:], to_unity_quaternion(rot[i]), atol=1e-6)
        expected = [0.0, 0.0, 0.0] if i == 0 else to_unity_position(offsets[i])  # pelvis mode: hips at root
        np.testing.assert_allclose(vals[:3], expected, atol=1e-6)
    assert msgs[-1][1] == [42, 10**15, 10**15 + 7]
    # OSC float32 arguments: every bone message carries the ",sfffffff" type tags, all 4-byte aligned.
    assert data.count(b",sfffffff\0\0\0") == len(UNITY) + 1
    assert len(data) % 4 == 0


def test_floor_mode_puts_the_root_on_the_floor_and_the_hips_above_it() -> None:
    enc = VmcEncoder(UNITY, root_mode="floor")
    rot = np.tile([1.0, 0, 0, 0], (len(UNITY), 1))
    msgs = decode(enc.frame_bundle(np.array([0.5, 0.9, 2.0]), rot, np.zeros((len(UNITY), 3)), 0.0))
    root = msgs[2][1][1:4]
    hips = msgs[3][1][1:4]
    np.testing.assert_allclose(root, [-0.5, 0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(hips, [0.0, 0.9, 0.0], atol=1e-6)
    np.testing.assert_allclose(np.add(root, hips), to_unity_position(np.array([0.5, 0.9, 2.0])), atol=1e-6)


def test_status_bundle_says_not_loaded_yet() -> None:
    msgs = decode(VmcEncoder(UNITY).status_bundle(1.0))
    assert msgs == [(OK_ADDRESS, [0, 1, 0, 0]), (TIME_ADDRESS, [1.0])]


def test_bad_shapes_are_named() -> None:
    enc = VmcEncoder(UNITY)
    with pytest.raises(ValueError, match=r"rotations \(8, 4\)"):
        enc.frame_bundle(np.zeros(3), np.zeros((3, 4)), np.zeros((8, 3)), 0.0)
    with pytest.raises(ValueError, match="root_mode"):
        VmcEncoder(UNITY, root_mode="ceiling")  # type: ignore[arg-type]


def _face_turn(yaw_deg: np.ndarray) -> np.ndarray:
    """A still body (Z-up joints) whose face points (neck = nose, head = mid-eyes, as the detectors give
    them) turn ``yaw_deg`` to the performer's left about the vertical through the thorax."""
    from crosspose.studio.motion import generate_motion

    base = generate_motion(seed=1, num_frames=1, fps=60.0, actions=("walk",)).joints[0]
    thorax, up = base[8], np.array([0.0, 0.0, 1.0])
    lateral = base[11] - base[14]  # l_shoulder - r_shoulder
    lateral[2] = 0.0
    forward = np.cross(lateral / np.linalg.norm(lateral), up)
    frames = np.repeat(base[None], len(yaw_deg), 0)
    for i, a in enumerate(np.radians(yaw_deg)):
        f = forward * math.cos(a) + np.cross(up, forward) * math.sin(a)
        frames[i, 9] = thorax + 0.10 * f + 0.22 * up  # nose
        frames[i, 10] = thorax + 0.08 * f + 0.26 * up  # mid-eyes
    return frames


def test_a_head_turn_reaches_unity_as_a_head_yaw() -> None:
    """Shoulders still, face turning 0 → 60° to the left: Unity's Head bone turns (its local twist about
    Unity's Y goes 0 → -60°, a left turn in Unity's mirrored frame) while Chest and Neck do not twist."""
    from crosspose.motion import BONES, UNITY_BONES, LiveRotations, estimate_rest_pose

    yaw = np.linspace(0.0, 60.0, 31)
    joints = _face_turn(yaw)
    live = LiveRotations(estimate_rest_pose(joints))
    unity = [UNITY_BONES[b] for b in BONES]
    enc = VmcEncoder(unity)
    twist: dict[str, list[float]] = {"Head": [], "Neck": [], "Chest": []}
    for frame in joints:
        out = live.update(frame, np.ones(17))
        assert out is not None
        msgs = decode(enc.frame_bundle(out[0], out[1], live.rest.offsets, 0.0))  # type: ignore[union-attr]
        for _, (name, *vals) in msgs[3 : 3 + len(unity)]:
            if name in twist:
                y, w = float(vals[4]), float(vals[6])  # type: ignore[arg-type]  # (x, y, z, w)
                twist[name].append(math.degrees(2 * math.atan2(y, w)))  # swing-twist about Unity's Y
    head = np.unwrap(np.radians(twist["Head"]))
    np.testing.assert_allclose(np.degrees(head - head[0]), -yaw, atol=3.0)
    assert np.ptp(twist["Chest"]) < 1e-3
    assert np.ptp(twist["Neck"]) < 6.0
