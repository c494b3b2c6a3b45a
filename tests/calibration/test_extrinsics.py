"""Extrinsics from a performer or a board: synthetic rigs with known truth (poses, scale, floor), refusals
that name the camera, and the Pose2Sim take's keypoints against its Qualisys calibration."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from crosspose import assets
from crosspose.calibration import load_rig
from crosspose.calibration.boards import parse_board
from crosspose.calibration.bundle import Observations, bundle_adjust
from crosspose.calibration.extrinsics import ExtrinsicsError, Sightings, solve_relative
from crosspose.calibration.solve import Scale, solve_extrinsics
from crosspose.calibration.world import WorldError, compare_rigs, fit_similarity
from crosspose.geometry import CameraRig

Take = Callable[..., tuple[np.ndarray, tuple[str, ...], np.ndarray]]

NAMES = ["cam_2", "cam_10", "cam_1", "left"]


@pytest.fixture(scope="module")
def truth(rig_factory: Callable[..., CameraRig]) -> CameraRig:
    return rig_factory(NAMES, seed=3)


@pytest.fixture(scope="module")
def take(truth: CameraRig, take_factory: Take) -> Sightings:
    keypoints, joints, _ = take_factory(truth)
    return Sightings.from_keypoints(keypoints, joints)


def _errors(rig: CameraRig, truth: CameraRig) -> tuple[np.ndarray, np.ndarray]:
    report = compare_rigs(rig, truth)["cameras"]
    assert isinstance(report, dict)
    return (np.array([c["rotation_deg"] for c in report.values()]),
            np.array([c["centre_mm_similarity"] for c in report.values()]))


def test_bundle_adjustment_recovers_perturbed_poses(truth: CameraRig) -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform([-1, -1, 0], [1, 1, 2], (300, 3))
    rvecs = np.stack([cv2.Rodrigues(R)[0].ravel() for R in truth.R])
    cam = np.einsum("cij,pj->pci", truth.R, points) + truth.t
    xy = cam[..., :2] / cam[..., 2:]
    pt, c = np.meshgrid(np.arange(300), np.arange(4), indexing="ij")
    obs = Observations(c.ravel(), pt.ravel(), xy.reshape(-1, 2), np.ones(1200))
    start_r = rvecs + np.r_[[0, 0, 0], rng.normal(0, 0.02, 9)].reshape(4, 3)
    start_t = truth.t + np.r_[[0, 0, 0], rng.normal(0, 0.05, 9)].reshape(4, 3)
    res = bundle_adjust(start_r, start_t, points + rng.normal(0, 0.05, points.shape), obs,
                        truth.K[:, 0, 0], fixed_cameras=(0,))
    assert np.median(res.residuals_px) < 1e-3
    np.testing.assert_allclose(res.rvecs, rvecs, atol=1e-6)
    # Camera 0 holds the frame; the scale about its centre is free, so compare the centres up to it.
    centres = np.stack([-cv2.Rodrigues(r)[0].T @ t for r, t in zip(res.rvecs, res.tvecs, strict=True)])
    solved, true = centres - truth.centers[0], truth.centers - truth.centers[0]
    scale = np.linalg.norm(true[1]) / np.linalg.norm(solved[1])
    np.testing.assert_allclose(solved * scale, true, atol=1e-6)


def test_performer_take_recovers_the_rig_up_to_a_similarity(truth: CameraRig, take: Sightings) -> None:
    rel = solve_relative(take, truth)
    assert not rel.warnings
    assert (rel.residuals_px < 1.5).all()
    # 3 % wild detections: the robust solve drops them.
    assert rel.inliers.sum() < take.seen.sum()
    centres = np.einsum("cji,cj->ci", rel.R, -rel.t)
    sim = fit_similarity(centres, truth.centers)
    assert np.linalg.norm(sim.apply(centres) - truth.centers, axis=1).max() < 0.01


def test_length_scale_and_feet_floor_give_the_true_world(truth: CameraRig, take: Sightings) -> None:
    d = np.linalg.norm(truth["cam_2"].center - truth["left"].center)
    result = solve_extrinsics(truth, take, Scale(length=f"cam_2-left={d:.6f}"), "feet", reference=truth)
    rot, centre = _errors(result.rig, truth)
    assert rot.max() < 0.1
    assert centre.max() < 10
    # +Z up with the floor at z = 0: camera heights are true (x, y and the heading are our own choice).
    np.testing.assert_allclose(result.rig.centers[:, 2], truth.centers[:, 2], atol=0.02)
    rigid = fit_similarity(result.rig.centers, truth.centers, with_scale=False)
    assert np.linalg.norm(rigid.apply(result.rig.centers) - truth.centers, axis=1).max() < 0.015
    assert result.report["pairs"]["cam_2-cam_10"] > 0  # type: ignore[index]
    assert result.report["reference"]["points_mm"]["median"] < 5  # type: ignore[index]


def test_height_scale_is_approximate_and_says_so(truth: CameraRig, take: Sightings) -> None:
    result = solve_extrinsics(truth, take, Scale(height=1.72), "feet")
    assert any("approximate" in w for w in result.warnings)
    sim = fit_similarity(result.rig.centers, truth.centers)
    assert sim.s == pytest.approx(1.0, abs=0.05)


def test_a_camera_that_sees_too_little_is_named(truth: CameraRig, take_factory: Take) -> None:
    keypoints, joints, _ = take_factory(truth)
    keypoints[:, 3, :, 2] = 0.0
    keypoints[:1, 3, :, 2] = 0.9  # 'left' sees the performer in one frame only
    with pytest.raises(ExtrinsicsError, match=r"camera left: shares at most \d+ sightings"):
        solve_relative(Sightings.from_keypoints(keypoints, joints), truth)
    keypoints[:, 3, :, 2] = 0.0
    with pytest.raises(ExtrinsicsError, match="camera left: no usable sighting"):
        solve_relative(Sightings.from_keypoints(keypoints, joints), truth)


def test_a_performer_who_stays_put_is_refused(truth: CameraRig, take_factory: Take) -> None:
    keypoints, joints, _ = take_factory(truth, radius=0.0, stops=3)
    with pytest.raises(ExtrinsicsError, match="too little motion"):
        solve_relative(Sightings.from_keypoints(keypoints, joints), truth)


def test_a_bumped_camera_is_refined_alone(truth: CameraRig, take: Sightings) -> None:
    from crosspose.calibration.solve import refine_extrinsics

    bump = cv2.Rodrigues(np.array([0.03, -0.04, 0.02]))[0]  # ~3°
    shift = np.array([0.1, -0.05, 0.08])
    moved = truth["cam_1"].replace(R=bump @ truth["cam_1"].R, t=truth["cam_1"].t + shift)
    bumped = CameraRig([moved if c.name == "cam_1" else c for c in truth])
    result = refine_extrinsics(bumped, take, "cam_1")
    np.testing.assert_allclose(result.rig["cam_1"].center, truth["cam_1"].center, atol=0.005)
    rot = result.rig["cam_1"].R @ truth["cam_1"].R.T
    assert np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))) < 0.05
    for name in ("cam_2", "cam_10", "left"):  # the others and their world are kept exactly
        assert result.rig[name].allclose(truth[name])
    assert result.report["refined"]["rotation_deg"] == pytest.approx(3.1, abs=0.3)  # type: ignore[index]
    with pytest.raises(ExtrinsicsError, match="no camera 'cam_7' to refine"):
        refine_extrinsics(bumped, take, "cam_7")


def test_scale_must_be_given_once(truth: CameraRig, take: Sightings) -> None:
    with pytest.raises(WorldError, match="exactly one scale"):
        solve_extrinsics(truth, take, Scale(), "feet")
    with pytest.raises(WorldError, match="no camera 'cam_99'"):
        solve_extrinsics(truth, take, Scale(length="cam_2-cam_99=3"), "feet")


def board_take(rig: CameraRig, frames: int = 12, seed: int = 0) -> tuple[Sightings, np.ndarray]:
    """ChArUco corners: frame 0 lies on the floor at the origin (board x = world x), the others float
    tilted through the volume."""
    board = parse_board("charuco:7x5:0.08:0.06")
    obj = board.object_points()
    rng = np.random.default_rng(seed)
    to_world = [(np.diag([1.0, -1.0, -1.0]), np.zeros(3))]  # face up: board z (into the board) is down
    for _ in range(frames - 1):
        R = cv2.Rodrigues(rng.normal(0, 0.5, 3))[0] @ np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0.0]])
        to_world.append((R, rng.uniform([-0.8, -0.8, 0.6], [0.8, 0.8, 1.6]) - R @ obj.mean(0)))
    world = np.stack([obj @ R.T + t for R, t in to_world])
    k = len(obj)
    pix = np.asarray(rig.project(world.reshape(-1, 3))).reshape(frames * k, len(rig), 2)
    pix += rng.normal(0, 0.2, pix.shape)
    w, h = rig.image_size[:, 0], rig.image_size[:, 1]
    ok = (pix[..., 0] >= 0) & (pix[..., 0] < w) & (pix[..., 1] >= 0) & (pix[..., 1] < h)
    sightings = Sightings(np.where(ok[..., None], pix, np.nan), ok.astype(float),
                          np.repeat(np.arange(frames), k), np.tile(np.arange(k), frames),
                          tuple(f"corner{i}" for i in range(k)))
    return sightings, world


def test_board_views_give_a_metric_rig_on_the_boards_floor(truth: CameraRig) -> None:
    sightings, _ = board_take(truth)
    board = parse_board("charuco:7x5:0.08:0.06")
    result = solve_extrinsics(truth, sightings, Scale(board=board), "board")
    # No fit at all: the board fixed scale, floor, origin and heading.
    np.testing.assert_allclose(result.rig.centers, truth.centers, atol=0.01)
    for ours, true in zip(result.rig.R, truth.R, strict=True):
        assert np.degrees(np.arccos(np.clip((np.trace(ours @ true.T) - 1) / 2, -1, 1))) < 0.1


QCA = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt")
KEYPOINTS = ("pose2sim-0.4.15", "Pose2Sim/Demo/pose")


@pytest.fixture(scope="module")
def studio() -> CameraRig:
    return load_rig(assets.extract(*QCA))


@pytest.mark.network
@pytest.mark.slow
def test_pose2sim_keypoints_give_the_qualisys_rig(studio: CameraRig) -> None:
    """Issue 20's person-based targets with the reference intrinsics (100 frames)."""
    from crosspose.calibration.sources import keypoint_sightings

    sightings = keypoint_sightings(assets.extract_tree(*KEYPOINTS), studio, "openpose-body25b")
    d = np.linalg.norm(studio["cam01"].center - studio["cam02"].center)
    scale = Scale(length=f"cam01-cam02={d:.4f}")
    result = solve_extrinsics(studio, sightings, scale, "feet", reference=studio)
    cams = result.report["reference"]["cameras"]  # type: ignore[index]
    assert max(c["rotation_deg"] for c in cams.values()) <= 1.0
    assert max(c["centre_mm_similarity"] for c in cams.values()) <= 50
    assert max(c["centre_mm_rigid"] for c in cams.values()) <= 100
    assert result.report["reference"]["points_mm"]["mean"] <= 35  # type: ignore[index]


@pytest.mark.network
def test_pose2sim_first_20_frames_are_refused(studio: CameraRig) -> None:
    from crosspose.calibration.sources import keypoint_sightings

    sightings = keypoint_sightings(assets.extract_tree(*KEYPOINTS), studio, "openpose-body25b", max_frames=20)
    with pytest.raises(ExtrinsicsError, match="too little motion"):
        solve_relative(sightings, studio)


@pytest.mark.network
@pytest.mark.slow
def test_our_network_sees_the_performer_where_openpose_does(studio: CameraRig) -> None:
    """``--person``'s sightings: the real videos through the detector and our 2D network, view by view
    (eager torch, 3 frames), land on the OpenPose keypoints of the same joints."""
    from crosspose.calibration.sources import keypoint_sightings, person_sightings
    from crosspose.inference.runtimes.torch import TorchRunner
    from crosspose.nets.export import build_fusion_network

    for c in range(1, 5):
        video = assets.extract("pose2sim-0.10.49", f"Pose2Sim/Demo_SinglePerson/videos/cam{c:02d}.mp4")
    ours = person_sightings(video.parent, studio, network=TorchRunner(build_fusion_network()), max_frames=3)
    openpose = keypoint_sightings(assets.extract_tree(*KEYPOINTS), studio, "openpose-body25b", max_frames=3)
    assert ours.seen.mean() > 0.6
    pairs = (("l_knee", "LKnee"), ("r_hip", "RHip"), ("l_ankle", "LAnkle"), ("r_wrist", "RWrist"))
    for mine, theirs in pairs:
        a = ours.pixels[ours.label == ours.labels.index(mine)]
        b = openpose.pixels[openpose.label == openpose.labels.index(theirs)]
        # pixels, in 1088 x 1920 frames where the performer is ~1000 px tall; the two detectors' joints
        # are not the same points (BlazePose's hips sit higher than OpenPose's: ~24 px here)
        assert np.nanmedian(np.linalg.norm(a - b, axis=-1)) < 35
