"""Motion files read back with independent readers: BVH (bvhtoolbox + hand-written FK), C3D (ezc3d and
c3d), TRC (crosspose.io.trc, as Pose2Sim/OpenSim read it), JSON lines."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crosspose.io.trc import read_trc
from crosspose.motion import (
    BONES,
    BVH_NAMES,
    FilterSettings,
    RestPose,
    estimate_rest_pose,
    filter_joints,
    solve_rotations,
    write_motion,
)
from crosspose.skeleton import H36M17
from crosspose.studio.motion import Motion as Clip

Bound = Callable[[np.ndarray, RestPose], np.ndarray]
J = {name: i for i, name in enumerate(H36M17.joints)}
# BVH joint (head) → H36M-17 joint, the documented mapping; "Head_End" is the head's End Site.
BVH_TO_H36M = {
    "Hips": "pelvis", "Chest": "spine", "Neck": "thorax", "Head": "neck", "Head_End": "head",
    "RightUpLeg": "r_hip", "RightLeg": "r_knee", "RightFoot": "r_ankle",
    "LeftUpLeg": "l_hip", "LeftLeg": "l_knee", "LeftFoot": "l_ankle",
    "LeftArm": "l_shoulder", "LeftForeArm": "l_elbow", "LeftHand": "l_wrist",
    "RightArm": "r_shoulder", "RightForeArm": "r_elbow", "RightHand": "r_wrist",
}


#: The bones Human3.6M-17 carries: every one but the toes (the last two of BONES).
H36M_BONES = 19

def _rot(axis: str, degrees: np.ndarray) -> np.ndarray:
    a = np.radians(degrees)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    rows = {"X": [[o, z, z], [z, c, -s], [z, s, c]], "Y": [[c, z, s], [z, o, z], [-s, z, c]],
            "Z": [[c, -s, z], [s, c, z], [z, z, o]]}[axis]
    return np.moveaxis(np.array(rows), (0, 1), (-2, -1))


def bvh_positions(path: Path) -> tuple[dict[str, np.ndarray], float, int, list[str]]:
    """World positions (file units, file axes) of every joint and End Site, by hand from bvhtoolbox's
    parse: position = parent position + parent world rotation · OFFSET, world rotation = parent's ·
    the product of the joint's rotation channels in file order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bvhtoolbox imports pkg_resources (deprecated)
        from bvhtoolbox import BvhTree
    tree = BvhTree(path.read_text())
    names = tree.get_joints_names()
    pos: dict[str, np.ndarray] = {}
    rot: dict[str, np.ndarray] = {}
    n = tree.nframes
    ends = {}
    for name in names:
        for child in tree.get_joint(name).children:
            if child.value[0] == "End":
                ends[child.name] = (name, np.array(child["OFFSET"], dtype=float))
    for name in names + list(ends):
        if name in ends:
            parent_name, offset = ends[name]
            channels, values = [], np.zeros((n, 0))
        else:
            parent = tree.joint_parent(name)
            parent_name = None if parent is None else parent.name
            offset = np.array(tree.joint_offset(name), dtype=float)
            channels = tree.joint_channels(name)
            values = np.array(tree.frames_joint_channels(name, channels), dtype=float).reshape(n, -1)
        R = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
        translation = np.zeros((n, 3))
        for k, ch in enumerate(channels):
            if ch.endswith("rotation"):
                R = R @ _rot(ch[0], values[:, k])
            else:
                translation[:, "XYZ".index(ch[0])] = values[:, k]
        if parent_name is None:
            pos[name] = offset + translation
            rot[name] = R
        else:
            pos[name] = pos[parent_name] + np.einsum("nij,j->ni", rot[parent_name], offset)
            rot[name] = rot[parent_name] @ R
    return pos, float(tree.frame_time), n, names


def _yup_to_zup(p: np.ndarray) -> np.ndarray:
    """Y-up file axes (X ← y, Y ← z, Z ← x of our world) back to our Z-up world."""
    return np.stack([p[..., 2], p[..., 0], p[..., 1]], -1)


@pytest.mark.parametrize("clip", ["take", "mocap", "pose2sim"])
def test_bvh_forward_kinematics_reproduces_the_joints(clip: str, request: pytest.FixtureRequest,
                                                      tmp_path: Path, bound: Bound) -> None:
    if clip != "take":
        request.applymarker(pytest.mark.network)
    source: Clip = request.getfixturevalue(clip)
    joints = source.joints[::3]  # bvhtoolbox parses slowly: every third frame is plenty
    n = len(joints)
    times = np.arange(n) / 20.0
    path = write_motion(tmp_path / "take.bvh", joints, np.ones((n, 17)), times)
    pos, frame_time, frames, names = bvh_positions(path)
    assert frames == n
    assert frame_time == pytest.approx(1 / 20.0)
    assert names == ["Hips", "Spine", "Chest", "Neck", "Head", "LeftShoulder", "LeftArm", "LeftForeArm",
                     "LeftHand", "RightShoulder", "RightArm", "RightForeArm", "RightHand",
                     "RightUpLeg", "RightLeg", "RightFoot", "LeftUpLeg", "LeftLeg", "LeftFoot"]
    assert set(names) == {BVH_NAMES[b] for b in BONES[:19]}  # no toes: Human3.6M-17 has no toe point
    rest = estimate_rest_pose(joints)
    limit = 1e-3 + bound(joints, rest)
    for bvh_name, joint in BVH_TO_H36M.items():
        error = np.linalg.norm(_yup_to_zup(pos[bvh_name]) - joints[:, J[joint]], axis=-1)
        assert (error <= limit[:, J[joint]]).all(), (bvh_name, float(error.max()))
    # Y is up in the file: the head is above the feet
    assert (pos["Head_End"][:, 1] > pos["LeftFoot"][:, 1] + 0.5).all()


def test_the_studio_reads_our_bvh(take: Clip, tmp_path: Path) -> None:
    """crosspose.studio's BVH loader (its own name mapping, units, axes, grounding) turns our file back
    into the same joints, up to one rigid motion of the whole take."""
    from crosspose.studio.bvh import load_bvh_motion

    joints = take.joints[::4]
    path = write_motion(tmp_path / "t.bvh", joints, np.ones((len(joints), 17)), np.arange(len(joints)) / 15.0)
    back = load_bvh_motion(path).joints
    used = [J[n] for n in H36M17.joints if n != "spine"]  # the studio puts its spine on the spine's arc
    a, b = joints[:, used].reshape(-1, 3), back[:, used].reshape(-1, 3)
    ca, cb = a.mean(0), b.mean(0)
    u, _, vt = np.linalg.svd((b - cb).T @ (a - ca))
    d = np.sign(np.linalg.det(u @ vt))
    R = u @ np.diag([1.0, 1.0, d]) @ vt  # b ≈ R a + t
    assert d > 0  # a proper rotation: no mirrored performer
    residual = np.linalg.norm((a - ca) @ R.T + cb - b, axis=-1)
    assert np.median(residual) < 0.01  # rest-pose length differences only
    assert residual.max() < 0.03


def test_bvh_header_and_continuous_channels(take: Clip, tmp_path: Path) -> None:
    path = write_motion(tmp_path / "t.bvh", take.joints, np.ones((len(take.joints), 17)), take.times)
    text = path.read_text()
    assert text.startswith("HIERARCHY\nROOT Hips\n")
    assert "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in text
    assert text.count("CHANNELS 3 Zrotation Xrotation Yrotation") == H36M_BONES - 1
    assert text.count("End Site") == 5  # head, hands, feet
    motion_part = text.split("MOTION\n")[1].splitlines()
    assert motion_part[0] == f"Frames: {len(take.joints)}"
    values = np.array([[float(v) for v in line.split()] for line in motion_part[2:]])
    assert values.shape == (len(take.joints), 3 + 3 * H36M_BONES)
    # Euler angles continuous over time (no ±360° wraps, no branch jumps at 90° of the middle axis)
    assert np.abs(np.diff(values[:, 3:], axis=0)).max() < 30


def test_c3d_read_back_with_two_libraries(take: Clip, tmp_path: Path) -> None:
    import c3d
    import ezc3d

    n = 120
    joints = take.joints[:n].copy()
    confidence = np.ones((n, 17))
    joints[10, J["l_wrist"]] = np.nan
    confidence[20, J["r_knee"]] = 0.05  # below min_confidence: written as missing
    path = write_motion(tmp_path / "take.c3d", joints, confidence, np.arange(n) / 60.0)
    f = ezc3d.c3d(str(path))
    point = f["parameters"]["POINT"]
    assert list(point["LABELS"]["value"]) == list(H36M17.joints)
    assert point["RATE"]["value"][0] == pytest.approx(60.0)
    assert point["UNITS"]["value"] == ["mm"]
    assert list(point["Y_SCREEN"]["value"]) == ["+Z"]
    xyz = f["data"]["points"][:3]  # (3, 17, N) millimetres
    assert xyz.shape == (3, 17, n)
    expected = np.where((confidence >= 0.1)[..., None], joints, np.nan)
    np.testing.assert_allclose(np.transpose(xyz, (2, 1, 0)) / 1000.0, expected, atol=1e-6, equal_nan=True)
    # the pure-Python reader: same labels, rate, frame count; missing points have residual -1
    with path.open("rb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no analog data"
        reader = c3d.Reader(handle)
        assert [label.strip() for label in reader.point_labels] == list(H36M17.joints)
        assert reader.point_rate == pytest.approx(60.0)
        assert reader.frame_count == n
        assert reader.get("POINT:UNITS").string_value.strip() == "mm"
        frames = [points for _, points, _ in reader.read_frames()]
    assert frames[10][J["l_wrist"], 3] == -1
    assert frames[20][J["r_knee"], 3] == -1
    assert frames[10][J["r_wrist"], 3] >= 0
    np.testing.assert_allclose(frames[5][:, :3] / 1000.0, joints[5], atol=1e-6)


def test_trc_is_what_pose2sim_writes(take: Clip, tmp_path: Path) -> None:
    n = 60
    confidence = np.ones((n, 17))
    confidence[3, 0] = 0.0
    path = write_motion(tmp_path / "take.trc", take.joints[:n], confidence, 10.0 + np.arange(n) / 60.0)
    trc = read_trc(path)
    assert trc.markers == H36M17.joints
    assert trc.rate == pytest.approx(60.0)
    assert trc.units == "m"
    np.testing.assert_allclose(trc.times, np.arange(n) / 60.0)
    assert np.isnan(trc.frames[3, 0]).all()
    np.testing.assert_allclose(trc.frames[4], take.joints[4], atol=1e-12)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("PathFileType\t4\t(X/Y/Z)")
    y_up = [float(v) for v in lines[5].split("\t")[2:5]]  # the pelvis of frame 1, Y-up in the file
    assert y_up[1] == pytest.approx(take.joints[0, 0, 2])  # file Y = our height


def test_jsonl_frames(take: Clip, tmp_path: Path) -> None:
    n = 30
    joints = take.joints[:n].copy()
    joints[2, 5] = np.nan
    confidence = np.full((n, 17), 0.9)
    path = write_motion(tmp_path / "take.jsonl", joints, confidence, np.arange(n) / 30.0)
    lines = path.read_text().splitlines()
    assert len(lines) == n + 1
    header = json.loads(lines[0])
    assert header["format"] == "crosspose-motion"
    assert header["units"] == "m"
    assert header["bones"] == list(BONES[:H36M_BONES])  # Human3.6M-17 carries no toes
    assert header["joint_names"] == list(H36M17.joints)
    assert header["fps"] == pytest.approx(30.0)
    frames = [json.loads(line) for line in lines[1:]]
    np.testing.assert_allclose([f["t"] for f in frames], np.arange(n) / 30.0, atol=1e-6)
    assert frames[2]["joints"][5] is None
    np.testing.assert_allclose(frames[7]["joints"], joints[7], atol=1e-6)
    assert frames[7]["confidence"] == [0.9] * 17
    motion = solve_rotations(joints, confidence=confidence, fps=30.0)
    np.testing.assert_allclose([f["rotations"] for f in frames], motion.rotations[:, :H36M_BONES], atol=1e-6)
    np.testing.assert_allclose([f["root"] for f in frames], motion.root, atol=1e-6)


def test_filter_applies_before_everything(take: Clip, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 120
    joints = take.joints[:n] + rng.normal(0, 0.01, (n, 17, 3))
    times = np.arange(n) / 60.0
    settings = FilterSettings.default()
    trc = read_trc(write_motion(tmp_path / "f.trc", joints, np.ones((n, 17)), times, filter=settings))
    np.testing.assert_allclose(trc.frames, filter_joints(joints, times, settings), atol=1e-12)
    doc = [json.loads(line) for line in (write_motion(tmp_path / "f.jsonl", joints, np.ones((n, 17)), times,
                                                      filter=settings)).read_text().splitlines()[1:]]
    np.testing.assert_allclose([f["joints"] for f in doc], filter_joints(joints, times, settings), atol=1e-6)


def test_bad_requests_say_what_is_wrong(take: Clip, tmp_path: Path) -> None:
    joints, conf, times = take.joints[:5], np.ones((5, 17)), np.arange(5) / 60.0
    with pytest.raises(ValueError, match=r"\.bvh, \.c3d, \.trc, \.jsonl"):
        write_motion(tmp_path / "x.fbx", joints, conf, times)
    with pytest.raises(ValueError, match="does not exist"):
        write_motion(tmp_path / "nope" / "x.bvh", joints, conf, times)
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        write_motion(tmp_path / "x.bvh", joints[:, :5], conf, times)
    assert write_motion(tmp_path / "x.txt", joints, conf, times, format="jsonl").exists()
