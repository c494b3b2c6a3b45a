"""``crosspose reconstruct``: the real Pose2Sim clip against Pose2Sim's result, outputs, CLI, errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from crosspose.cli.reconstruct import reconstruct_command
from crosspose.io.trc import Trc, read_trc
from crosspose.reconstruct import (
    ReconstructError,
    Reconstruction,
    read_reconstruction,
    reconstruct_videos,
    solve_sequence,
    write_reconstruction,
)
from crosspose.skeleton import BODY32, H36M17, Skeleton
from crosspose.studio import random_rig

POSE = ("pose2sim-0.4.15", "Pose2Sim/Demo/pose")
TRC = ("pose2sim-0.4.15", "Pose2Sim/Demo/opensim/Balancing_for_IK.trc")
CALIBRATION = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt")
LIMBS = ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "l_shoulder", "l_elbow", "l_wrist",
         "r_shoulder", "r_elbow", "r_wrist")
# Pose2Sim's marker(s) for each H36M joint (the same points our BODY_25B mapping uses).
POSE2SIM = {"pelvis": ("RHip", "LHip"), "spine": ("RHip", "LHip", "RShoulder", "LShoulder"),
            "thorax": ("RShoulder", "LShoulder"), "neck": ("Neck",), "head": ("Head",)}


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("reconstruct")(reconstruct_command)
    app.command("other")(lambda: None)  # two commands, so "reconstruct" is a sub-command as in crosspose
    return app


def _rec(n: int = 3) -> Reconstruction:
    rng = np.random.default_rng(1)
    joints = rng.uniform(-1, 1, (n, 17, 3))
    views = np.full((n, 17), 4)
    views[1, 5] = 1
    joints[2, 3] = np.nan
    return Reconstruction(joints, rng.uniform(0, 1, (n, 17)), views, np.array([5.0, np.nan, 7.0]),
                          np.arange(10, 10 + n), ("a", "b"), 60.0)


def test_outputs_round_trip(tmp_path: Path) -> None:
    rec = _rec()
    back = read_reconstruction(write_reconstruction(rec, tmp_path / "r.json"))
    np.testing.assert_allclose(back.joints, rec.joints, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(back.views, rec.views)
    np.testing.assert_array_equal(back.frame_numbers, rec.frame_numbers)
    assert back.fps == 60.0
    assert back.camera_names == ("a", "b")
    trc = read_trc(write_reconstruction(rec, tmp_path / "r.trc"))
    assert trc.markers == H36M17.joints
    assert trc.rate == 60.0
    np.testing.assert_allclose(trc.times, [0, 1 / 60, 2 / 60])
    assert np.isnan(trc.frames[1, 5]).all()  # one view only: left empty, not guessed
    np.testing.assert_allclose(trc.frames[0], rec.joints[0], atol=1e-12)


def test_motion_outputs(tmp_path: Path) -> None:
    import ezc3d

    from crosspose.studio.motion import generate_motion

    clip = generate_motion(seed=2, num_frames=40, fps=50.0)
    views = np.full((40, 17), 3)
    views[7, H36M17.index("l_wrist")] = 1  # one view: written as missing
    rec = Reconstruction(clip.joints, np.ones((40, 17)), views, np.full(40, 5.0), np.arange(40), ("a", "b"),
                         50.0)
    bvh = write_reconstruction(rec, tmp_path / "r.bvh").read_text()
    assert bvh.startswith("HIERARCHY\nROOT Hips")
    assert "Frames: 40\nFrame Time: 0.02000000" in bvh
    c3d = ezc3d.c3d(str(write_reconstruction(rec, tmp_path / "r.c3d")))
    points = c3d["data"]["points"]
    assert points.shape == (4, 17, 40)
    assert c3d["parameters"]["POINT"]["RATE"]["value"][0] == 50.0
    assert np.isnan(points[:3, H36M17.index("l_wrist"), 7]).all()
    np.testing.assert_allclose(points[:3, :, 0].T / 1000.0, clip.joints[0], atol=1e-6)
    lines = write_reconstruction(rec, tmp_path / "r.jsonl").read_text().splitlines()
    assert len(lines) == 41
    assert json.loads(lines[8])["joints"][H36M17.index("l_wrist")] is None
    assert len(json.loads(lines[1])["rotations"]) == 19


def test_a_reconstruction_carries_its_layout(tmp_path: Path, toes_skeleton: Skeleton,
                                             stick_skeleton: Skeleton) -> None:
    rng = np.random.default_rng(4)
    n, j = 3, toes_skeleton.num_joints
    rec = Reconstruction(rng.uniform(-1, 1, (n, j, 3)), rng.uniform(0, 1, (n, j)), np.full((n, j), 3),
                         np.full(n, 5.0), np.arange(10, 10 + n), ("a", "b"), 60.0, skeleton=toes_skeleton)
    path = write_reconstruction(rec, tmp_path / "r.json")
    doc = json.loads(path.read_text())
    assert (doc["skeleton"], len(doc["joint_names"])) == (toes_skeleton.name, 20)
    assert len(doc["frames"][0]["joints"]) == 20
    back = read_reconstruction(path)
    assert back.skeleton is toes_skeleton
    np.testing.assert_allclose(back.joints, rec.joints, atol=1e-6)
    assert read_trc(write_reconstruction(rec, tmp_path / "r.trc")).markers == toes_skeleton.joints
    # a file whose rows do not fit the layout it names, or naming one unknown here, is refused
    doc["frames"][1]["joints"] = doc["frames"][1]["joints"][:17]
    (tmp_path / "cut.json").write_text(json.dumps(doc))
    with pytest.raises(ReconstructError, match="frame 11 has 17 joints, 20 confidences and 20 view counts; "
                                               "layout test-h36m17-toes has 20 joints"):
        read_reconstruction(tmp_path / "cut.json")
    (tmp_path / "other.json").write_text(json.dumps({**doc, "skeleton": "crosspose-body99"}))
    with pytest.raises(ReconstructError, match="unknown skeleton 'crosspose-body99'"):
        read_reconstruction(tmp_path / "other.json")
    with pytest.raises(ValueError, match=r"layout test-h36m17-toes needs joints \(N, 20, 3\)"):
        Reconstruction(rec.joints[:, :17], rec.confidence[:, :17], rec.views[:, :17], rec.solve_ms,
                       rec.frame_numbers, ("a", "b"), skeleton=toes_skeleton)
    # the solver's layout, not 17, sets the keypoints' shape
    solver = SimpleNamespace(skeleton=toes_skeleton)
    with pytest.raises(ValueError, match=r"\(N, 2, 20, 3\) \(the solver's layout test-h36m17-toes\)"):
        solve_sequence(np.zeros((2, 2, 17, 3)), ["a", "b"], solver=solver)  # type: ignore[arg-type]  # a 2-camera rig
    # videos: a network whose heatmaps are of another layout than the solver's is refused before any frame
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("cam1.mp4", "cam2.mp4"):
        (videos / name).write_bytes(b"")
    with pytest.raises(ReconstructError, match="heatmaps are of layout h36m17 but the solver solves "
                                               "test-h36m17-toes"):
        reconstruct_videos(random_rig(0, 2), videos, network=SimpleNamespace(skeleton=H36M17), solver=solver)
    # rotations need a humanoid mapping: refused by name, markers are not
    j = stick_skeleton.num_joints
    stick = Reconstruction(np.zeros((2, j, 3)), np.ones((2, j)), np.full((2, j), 3), np.zeros(2),
                           np.arange(2), ("a", "b"), skeleton=stick_skeleton)
    with pytest.raises(ReconstructError, match="layout test-stick5 has no humanoid mapping"):
        write_reconstruction(stick, tmp_path / "s.bvh")
    assert read_trc(write_reconstruction(stick, tmp_path / "s.trc")).markers == stick_skeleton.joints


def test_unknown_output_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.trc, \.json"):
        write_reconstruction(_rec(), tmp_path / "r.csv")


def test_cli_user_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["reconstruct", "--calibration", str(tmp_path / "nope.toml"), "--keypoints", str(tmp_path)]
    result = runner.invoke(_app(), [*base, "--out", str(tmp_path / "x.trc")])
    assert result.exit_code == 1
    assert "nope.toml does not exist" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    result = runner.invoke(_app(), [*base, "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert ".trc, .json, .bvh, .c3d or .jsonl" in result.output
    result = runner.invoke(_app(), [*base, "--layout", "body99", "--out", str(tmp_path / "x.trc")])
    assert result.exit_code == 2
    assert "unknown layout" in result.output


@pytest.fixture(scope="module")
def clip() -> tuple[Path, Path, Path]:
    from crosspose import assets

    return assets.extract(*CALIBRATION), assets.extract_tree(*POSE), assets.extract(*TRC)


def _pose2sim_joint(trc: Trc, name: str) -> np.ndarray:
    if name in LIMBS:  # r_knee → RKnee
        side, part = name.split("_")
        markers: tuple[str, ...] = (side.upper() + part.capitalize(),)
    else:
        markers = POSE2SIM[name]
    return np.mean([trc.marker(m) for m in markers], axis=0)


@pytest.mark.network
def test_real_clip_close_to_pose2sim(clip: tuple[Path, Path, Path]) -> None:
    from crosspose.reconstruct import reconstruct

    calibration, pose, trc_path = clip
    n = 20
    rec = reconstruct(calibration, pose, "openpose-body25b", fps=60, max_frames=n, progress=False)
    assert rec.joints.shape == (n, 32, 3)  # the full body by default
    hands = [BODY32.index(f"{s}_{f}") for s in "lr" for f in ("index", "pinky", "thumb")]
    assert np.isnan(rec.joints[:, hands]).all()  # OpenPose BODY_25B has no hand points: missing, not invented
    body_and_feet = list(range(21))  # the 17 and the heels and big toes: every frame
    assert np.isfinite(rec.joints[:, body_and_feet]).all()
    assert (rec.views[:, body_and_feet] >= 2).all()
    # The face points: seen by 2-3 of OpenPose's views, missing (NaN) in the few frames no view agrees on.
    face = [BODY32.index(j) for j in ("nose", "l_eye", "r_eye", "l_ear", "r_ear")]
    assert np.isfinite(rec.joints[:, face]).all(-1).mean() > 0.8
    trc = read_trc(trc_path)
    distance_mm = {
        name: 1e3 * float(np.median(np.linalg.norm(rec.joints[:, j] - _pose2sim_joint(trc, name)[:n],
                                                   axis=-1)))
        for j, name in enumerate(H36M17.joints)
    }
    # Measured (benchmarks/reconstruct.py): 5-42 mm per limb joint on these frames, 25 mm median over
    # the clip; Pose2Sim itself is 14 mm from a plain DLT of the same keypoints. 60 mm leaves room for
    # solver changes yet fails on a wrong axis convention, camera matching or left/right mapping.
    assert max(distance_mm[j] for j in LIMBS) < 60, distance_mm
    assert max(distance_mm.values()) < 80, distance_mm


@pytest.mark.network
def test_cli_end_to_end(clip: tuple[Path, Path, Path], tmp_path: Path) -> None:
    calibration, pose, _ = clip
    runner = CliRunner()
    args = ["reconstruct", "--calibration", str(calibration), "--keypoints", str(pose), "--fps", "60",
            "--max-frames", "5", "--no-progress"]
    done_json = runner.invoke(_app(), [*args, "--out", str(tmp_path / "take.json")])
    assert done_json.exit_code == 0, done_json.output
    done_trc = runner.invoke(_app(), [*args, "--out", str(tmp_path / "take.trc")])
    assert done_trc.exit_code == 0, done_trc.output
    done_bvh = runner.invoke(_app(), [*args, "--out", str(tmp_path / "take.bvh")])
    assert done_bvh.exit_code == 0, done_bvh.output
    assert "Frames: 5\nFrame Time: 0.01666667" in (tmp_path / "take.bvh").read_text()
    assert "wrote" in done_trc.output
    doc = json.loads((tmp_path / "take.json").read_text())
    assert doc["skeleton"] == "crosspose-body32"
    assert doc["units"] == "m"
    assert doc["fps"] == 60
    assert len(doc["frames"]) == 5
    rec = read_reconstruction(tmp_path / "take.json")
    trc = read_trc(tmp_path / "take.trc")
    assert trc.num_frames == 5
    assert trc.markers == BODY32.joints
    # Solved twice from the same inputs: the same skeleton, whichever file it went to.
    np.testing.assert_allclose(trc.frames, rec.joints, atol=1e-5)
    # --skeleton h36m17: today's 17 joints, the same ones.
    done_h36m = runner.invoke(_app(), [*args, "--skeleton", "h36m17", "--out", str(tmp_path / "h36m.trc")])
    assert done_h36m.exit_code == 0, done_h36m.output
    h36m = read_trc(tmp_path / "h36m.trc")
    assert h36m.markers == H36M17.joints
    np.testing.assert_allclose(h36m.frames, rec.joints[:, :17], atol=1e-5)
    # --lengths online: one pass, lengths learnt as the take goes (take, the default, says it solved twice).
    assert "lengths learnt over the take" in done_json.output
    done_online = runner.invoke(_app(), [*args, "--lengths", "online", "--out", str(tmp_path / "online.trc")])
    assert done_online.exit_code == 0, done_online.output
    assert "lengths learnt over the take" not in done_online.output
    assert read_trc(tmp_path / "online.trc").markers == BODY32.joints
    bad = runner.invoke(_app(), [*args, "--lengths", "first", "--out", str(tmp_path / "x.trc")])
    assert bad.exit_code == 2
    assert "use take or online" in bad.output
    # Z is up in both once read back: the head is above the pelvis.
    assert (trc.frames[:, H36M17.joints.index("head"), 2] > trc.frames[:, 0, 2] + 0.4).all()


@pytest.mark.network
def test_cli_camera_mismatch_is_a_clear_error(clip: tuple[Path, Path, Path], tmp_path: Path) -> None:
    calibration, pose, _ = clip
    for name in ("cam1_json", "cam2_json", "cam3_json"):
        (tmp_path / "kp" / name).mkdir(parents=True)
        src = next((pose / name).glob("*.json"))
        (tmp_path / "kp" / name / src.name).write_bytes(src.read_bytes())
    (tmp_path / "kp" / "cam7_json").mkdir()
    (tmp_path / "kp" / "cam7_json" / "f.0000.json").write_text('{"people": []}')
    result = CliRunner().invoke(_app(), ["reconstruct", "--calibration", str(calibration), "--keypoints",
                                         str(tmp_path / "kp"), "--out", str(tmp_path / "x.trc")])
    assert result.exit_code == 1
    assert "cam7_json" in result.output
    assert "cam01" in result.output
