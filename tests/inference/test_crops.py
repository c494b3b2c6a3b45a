"""Crops: exact transforms, projection folding (with the measured distortion error), BlazePose's
orientation convention, missing views and crop extraction on rendered studio frames."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from crosspose.geometry import CameraRig
from crosspose.inference import (
    Crop,
    crop_from_alignment,
    crops_from_pose,
    distortion_error,
    extract_crops,
    heatmap_projections,
    heatmap_transforms,
)
from crosspose.skeleton import H36M17
from crosspose.studio import Renderer, make_scene
from crosspose.studio.heatmaps import apply_affine

QCA = "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt"
RNG = np.random.default_rng(0)
CROPS = [Crop((float(x), float(y)), float(s), float(r))
         for x, y, s, r in zip(RNG.uniform(0, 1900, 8), RNG.uniform(0, 1000, 8), RNG.uniform(50, 1500, 8),
                               RNG.uniform(-np.pi, np.pi, 8), strict=True)]


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    return make_scene(5, num_frames=3, num_cameras=4)


def _h(A: np.ndarray) -> np.ndarray:
    return np.vstack([A, [0.0, 0.0, 1.0]])


def _pinhole(rig: CameraRig) -> CameraRig:
    return CameraRig([cam.replace(dist=np.zeros(5)) for cam in rig])


@pytest.mark.parametrize("crop", CROPS)
def test_affine_round_trips_are_exact(crop: Crop) -> None:
    for size in (256, 64, 1):
        forward, back = _h(crop.affine(size)), _h(crop.inverse_affine(size))
        np.testing.assert_allclose(forward @ back, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(_h(crop.to_heatmap()) @ _h(crop.from_heatmap()), np.eye(3), atol=1e-12)
    pts = RNG.uniform(-500, 2500, (20, 2))
    back = apply_affine(crop.inverse_affine(), apply_affine(crop.affine(), pts))
    np.testing.assert_allclose(back, pts, atol=1e-9)


def test_pixel_centre_conventions() -> None:
    crop = Crop((500.0, 300.0), 256.0)  # axis-aligned, one image px per crop px
    np.testing.assert_allclose(crop.affine(), [[1, 0, 127.5 - 500], [0, 1, 127.5 - 300]])
    # The square's outer edge is the crop's outer pixel edge; heatmap px u covers crop px 4u…4u+3.
    np.testing.assert_allclose(apply_affine(crop.affine(), crop.corners()[:1]), [[-0.5, -0.5]])
    first_block = np.array([[500.0 - 128 + 2, 300.0 - 128 + 2]])  # image px of crop px 1.5, centre of 0…3
    np.testing.assert_allclose(apply_affine(crop.affine(), first_block), [[1.5, 1.5]])
    np.testing.assert_allclose(apply_affine(crop.to_heatmap(), first_block), [[0.0, 0.0]])
    # A bright image pixel lands in the crop pixel the affine names.
    image = np.zeros((600, 1000, 3), np.uint8)
    image[310, 520] = (0, 0, 255)  # red in BGR
    rotated = Crop((500.0, 300.0), 128.0, 0.3)
    out = extract_crops([image], [rotated])[0]
    u, v = apply_affine(rotated.affine(), np.array([[520.0, 310.0]]))[0]
    peak = np.unravel_index(np.argmax(out[..., 0]), out.shape[:2])
    assert abs(peak[1] - u) < 1
    assert abs(peak[0] - v) < 1
    assert out[..., 1:].max() == 0  # RGB order: only the red channel lit


def test_rotation_puts_hips_to_shoulders_up(scene) -> None:  # type: ignore[no-untyped-def]
    hips = [H36M17.index("l_hip"), H36M17.index("r_hip")]
    shoulders = [H36M17.index("l_shoulder"), H36M17.index("r_shoulder")]
    for frame in range(scene.num_frames):
        joints = scene.joints3d[frame]
        crops = crops_from_pose(joints, scene.rig)
        assert all(c is not None for c in crops)
        uv = np.swapaxes(scene.rig.project(np.stack([joints[hips].mean(0), joints[shoulders].mean(0)])), 0, 1)
        for c, crop in enumerate(crops):
            assert crop is not None
            hip, sho = apply_affine(crop.affine(), uv[c])
            np.testing.assert_allclose(hip, [127.5, 127.5], atol=1e-9)  # hip-centred
            up = sho - hip
            assert abs(up[0]) < 1e-9 * np.abs(up).max()
            assert up[1] < 0
            inside = apply_affine(crop.affine(), scene.joints2d[frame, c])
            assert np.all((inside > -0.5) & (inside < 255.5))  # the whole body fits
            # scale 1.25: the farthest joint sits at 1/1.25 of the half side from the centre
            far = np.max(np.hypot(*(inside - 127.5).T))
            np.testing.assert_allclose(far, 128 / 1.25, rtol=1e-9)


def test_crop_from_alignment_matches_mediapipe_rule() -> None:
    for angle in np.linspace(-np.pi, np.pi, 13):
        v = 100 * np.array([np.cos(angle), -np.sin(angle)])  # math angle, image y down
        crop = crop_from_alignment((400.0, 300.0), np.array([400.0, 300.0]) + v)
        assert -np.pi <= crop.rotation < np.pi
        np.testing.assert_allclose(crop.size, 250.0)
        tip = apply_affine(crop.affine(), (np.array([400.0, 300.0]) + v)[None])[0]
        np.testing.assert_allclose(tip, [127.5, 127.5 - 128 / 1.25], atol=1e-9)
    assert crop_from_alignment((0, 0), (0, -1)).rotation == 0.0  # upright person: no rotation


def test_heatmap_projection_matches_affine_of_projection(scene) -> None:  # type: ignore[no-untyped-def]
    joints = scene.joints3d[0]
    for rig in (_pinhole(scene.rig), scene.rig):
        crops = crops_from_pose(joints, rig)
        P = heatmap_projections(crops, rig)
        hom = np.einsum("cij,kj->cki", P, np.c_[joints, np.ones(len(joints))])
        from_matrix = hom[..., :2] / hom[..., 2:]
        from_affine = apply_affine(heatmap_transforms(crops), np.swapaxes(rig.project(joints), 0, 1))
        err = np.hypot(*(from_matrix - from_affine).T).T  # (C, J) heatmap px
        if rig is scene.rig:
            sizes = np.array([c.size for c in crops if c is not None])
            bound = distortion_error(rig) * 64 / sizes
            assert np.all(err.max(1) <= bound + 1e-9)
        else:
            assert err.max() < 1e-9


@pytest.mark.network
def test_distortion_error_on_the_real_rig(pose2sim_rig: CameraRig) -> None:
    err = distortion_error(pose2sim_rig)
    assert err.shape == (4,)
    # Qualisys calibration of the Pose2Sim clip: a few px at the border of a 1088x1920 image.
    assert np.all((err > 1) & (err < 15))
    assert np.all(distortion_error(_pinhole(pose2sim_rig)) < 1e-6)


@pytest.fixture(scope="module")
def pose2sim_rig() -> CameraRig:
    from crosspose import assets
    from crosspose.calibration import load_rig

    return load_rig(assets.extract("pose2sim-0.10.49", QCA))


def test_missing_views_are_none(scene) -> None:  # type: ignore[no-untyped-def]
    joints = scene.joints3d[0]
    assert crops_from_pose(joints + np.array([0, 0, 50.0]), scene.rig) == [None] * 4  # far above every frame
    # Behind camera 0: mirror the pose through its centre along its optical axis.
    cam = scene.rig[0]
    depth = (joints @ cam.R.T + cam.t)[:, 2]
    behind = joints - 2 * depth[:, None] * cam.R[2]
    crops = crops_from_pose(behind, scene.rig)
    assert crops[0] is None
    nan = joints.copy()
    nan[H36M17.index("l_hip")] = np.nan
    assert crops_from_pose(nan, scene.rig) == [None] * 4
    with pytest.raises(ValueError, match="joints3d"):
        crops_from_pose(joints[:5], scene.rig)
    assert np.isnan(heatmap_transforms([None])).all()


def test_extract_crops_on_rendered_frames(scene) -> None:  # type: ignore[no-untyped-def]
    joints = scene.joints3d[0]
    images = Renderer(scene.rig, seed=1).render(joints)
    crops: list[Crop | None] = list(crops_from_pose(joints, scene.rig))
    crops[2] = None
    out = extract_crops(images, crops)
    assert out.shape == (4, 256, 256, 3)
    assert out.dtype == np.float32
    assert out.min() >= 0
    assert out.max() <= 1
    assert not out[2].any()
    for c in (0, 1, 3):
        crop = crops[c]
        assert crop is not None
        # The crop's pixel at the hip centre is the image's pixel there (RGB vs BGR).
        hip = np.asarray(crop.center)
        x, y = np.round(hip).astype(int)
        u, v = np.round(apply_affine(crop.affine(), np.array([[x, y]], float))[0]).astype(int)
        np.testing.assert_allclose(out[c, v, u], images[c][y, x, ::-1] / 255, atol=0.08)
    with pytest.raises(ValueError, match="crops"):
        extract_crops(images, crops[:2])
    with pytest.raises(ValueError, match="uint8"):
        extract_crops([images[0].astype(np.float32)], crops[:1])


def test_extract_crops_speed_is_reported(scene) -> None:  # type: ignore[no-untyped-def]
    images = Renderer(scene.rig, seed=1).render(scene.joints3d[0])
    crops = crops_from_pose(scene.joints3d[0], scene.rig)
    extract_crops(images, crops)
    t = time.perf_counter()
    for _ in range(20):
        extract_crops(images, crops)
    ms = (time.perf_counter() - t) / 20 * 1e3
    print(f"extract_crops, 4 views of 256x256: {ms:.2f} ms")  # no timed assertion (DESIGN §7)


def test_undistorted_crops_make_the_projection_exact(scene) -> None:  # type: ignore[no-untyped-def]
    rig = scene.rig
    joints = scene.joints3d[0]
    crops = crops_from_pose(joints, rig, undistorted=True)
    P = rig.projection_matrices()
    raw = np.swapaxes(rig.project(joints), 0, 1)  # (C, J, 2) distorted pixels, where the image has them
    for j in (H36M17.index("head"), H36M17.index("r_ankle"), H36M17.index("l_wrist")):
        images = []
        for c, cam in enumerate(rig):
            image = np.zeros((cam.image_size[1], cam.image_size[0], 3), np.uint8)
            x, y = raw[c, j]
            cv2.circle(image, (round(x * 16), round(y * 16)), 3 * 16, (255, 255, 255), -1, shift=4)
            images.append(image)
        out = extract_crops(images, crops, rig=rig)
        for c, crop in enumerate(crops):
            assert crop is not None
            hom = crop.heatmap_projection(P[c]) @ [*joints[j], 1.0]
            expected = apply_affine(np.linalg.inv(_h(crop.to_heatmap()) @ _h(crop.inverse_affine()))[:2],
                                    (hom[:2] / hom[2])[None])[0]  # heatmap px → crop px
            weight = out[c, ..., 0]
            ys, xs = np.mgrid[0:256, 0:256]
            centroid = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
            np.testing.assert_allclose(centroid, expected, atol=0.3)
    lens = distortion_error(rig)
    assert lens.max() > 1  # the studio rig has real distortion, so the default mode would be off


def test_lens_crops_black_outside_the_image(scene) -> None:  # type: ignore[no-untyped-def]
    rig = scene.rig
    images = [np.full((cam.image_size[1], cam.image_size[0], 3), 200, np.uint8) for cam in rig]
    big = [Crop((0.0, 0.0), 4000.0, 0.5) for _ in rig]  # mostly outside every image
    out = extract_crops(images, big, rig=rig)
    assert out[:, 0, 0].max() == 0
    assert np.isclose(out.max(), 200 / 255)


def test_full_body_crops_are_the_body_s() -> None:
    """The full body's toes and fingers do not widen the crops: the network sees what it sees for
    Human3.6M-17 (so the 17 body joints' heatmaps are the same)."""
    from crosspose.skeleton import BODY32
    from crosspose.studio.extremities import full_body, moving_poses

    scene = make_scene(3, 5, 4)
    joints = full_body(scene.joints3d, moving_poses(5, 30.0))
    for pose in joints:
        full = crops_from_pose(pose, scene.rig, skeleton=BODY32)
        body = crops_from_pose(pose[:17], scene.rig, skeleton=H36M17)
        assert full == body
        wide = crops_from_pose(np.where(np.arange(32)[:, None] >= 17, pose + 0.5, pose), scene.rig,
                               skeleton=BODY32)
        assert wide == body  # even extremities far outside the body's circle
