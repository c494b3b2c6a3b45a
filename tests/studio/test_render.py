"""Rendered frames: sizes, the body where the joints project, determinism, video files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from crosspose.geometry import Camera, CameraRig, look_at
from crosspose.skeleton import H36M17
from crosspose.studio import Renderer, random_rig, render_to_video, render_views, scene_from_joints


@pytest.fixture(scope="module")
def small_rig() -> CameraRig:
    return random_rig(2, 3, image_sizes=[(320, 240), (240, 320), (400, 300)])


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).sum(-1)


def test_images_have_each_cameras_size_and_the_body_covers_its_joints(
    small_rig: CameraRig, make_pose: Callable[..., np.ndarray]
) -> None:
    pose = make_pose()
    uv = np.swapaxes(np.asarray(small_rig.project(pose)), 0, 1)  # (C, J, 2)
    magenta = np.zeros((8, 8, 3), np.uint8)
    magenta[..., 0] = magenta[..., 2] = 255  # no cloth or skin is magenta
    for background in ("studio", magenta):
        renderer = Renderer(small_rig, background, seed=1)
        images = renderer.render(pose)
        assert len(images) == 3
        for c, (image, (w, h)) in enumerate(zip(images, small_rig.image_size, strict=True)):
            assert image.shape == (h, w, 3)
            assert image.dtype == np.uint8
            changed = _diff(image, renderer.backgrounds[c]) > 30
            x, y = np.round(uv[c]).astype(int).T
            if background is magenta:
                assert changed[y, x].all(), f"camera {c}: background shows at a joint"
            else:  # dark trousers on a dark floor tile may match the background
                assert changed[y, x].mean() > 0.75
            assert 0.005 < changed.mean() < 0.3  # a person, not the whole frame
            assert not changed[:5, :5].any()  # far from the body nothing is drawn


def test_backgrounds_are_textured_and_seeded(
    small_rig: CameraRig, make_pose: Callable[..., np.ndarray]
) -> None:
    a = Renderer(small_rig, seed=3)
    b = Renderer(small_rig, seed=3)
    c = Renderer(small_rig, seed=4)
    pose = make_pose()
    for x, y in zip(a.render(pose), b.render(pose), strict=True):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.backgrounds[0], c.backgrounds[0])
    gray = cv2.cvtColor(a.backgrounds[0], cv2.COLOR_BGR2GRAY)
    assert gray.std() > 10
    assert cv2.Laplacian(gray, cv2.CV_64F).var() > 5


def test_plain_and_custom_backgrounds(small_rig: CameraRig, make_pose: Callable[..., np.ndarray]) -> None:
    pose = make_pose()
    plain = render_views(small_rig, pose, "plain")
    assert (plain[0][:5, :5] == 128).all()
    custom = np.zeros((10, 10, 3), np.uint8)
    custom[..., 1] = 200
    images = render_views(small_rig, pose, custom)
    w, h = small_rig.image_size[1]
    assert (images[1][:5, :5] == (0, 200, 0)).all()
    assert images[1].shape == (h, w, 3)
    with pytest.raises(ValueError, match="one background per camera"):
        Renderer(small_rig, [custom])


def test_nearer_body_parts_are_drawn_over_farther_ones(make_pose: Callable[..., np.ndarray]) -> None:
    # Camera behind the performer; the right hand is in front of the belly, so the back hides it.
    R, t = (np.asarray(a) for a in look_at(np.array([0.0, -4.0, 1.0]), np.array([0.0, 0.0, 1.0])))
    K = np.array([[600.0, 0, 159.5], [0, 600.0, 119.5], [0, 0, 1]])
    rig = CameraRig([Camera("back", K, np.zeros(5), R, t, (320, 240))])
    pose = make_pose()
    wrist = H36M17.index("r_wrist")
    pose[H36M17.index("r_elbow")] = (0.25, 0.12, 1.05)
    pose[wrist] = (0.0, 0.2, 1.0)
    renderer = Renderer(rig, "plain")
    image = renderer.render(pose)[0]
    without_arm = renderer.render(
        np.where(np.arange(17)[:, None] == wrist, pose[H36M17.index("r_elbow")], pose)
    )[0]
    x, y = np.round(np.asarray(rig.project(pose[wrist]))[0]).astype(int)
    assert _diff(image, without_arm)[y, x] == 0  # the hand behind the back leaves no trace


def test_render_timing_four_views_640x480(make_pose: Callable[..., np.ndarray]) -> None:
    rig = random_rig(0, 4, image_sizes=[(640, 480)])
    renderer = Renderer(rig)
    pose = make_pose()
    renderer.render(pose)
    start = time.perf_counter()
    for i in range(30):
        pose_i = pose + np.array([0.01 * i, 0.0, 0.0])
        renderer.render(pose_i)
    ms = (time.perf_counter() - start) / 30 * 1e3
    print(f"render 4 views 640x480: {ms:.1f} ms per frame set (budget 33 ms)")


def test_render_to_video_writes_one_readable_file_per_camera(tmp_path: Path, walk: np.ndarray) -> None:
    rig = random_rig(5, 2, image_sizes=[(320, 240)])
    scene = scene_from_joints(rig, walk[:6], fps=25.0)
    files = render_to_video(scene, tmp_path / "videos")
    assert [f.name for f in files] == ["cam1.mp4", "cam2.mp4"]
    for f in files:
        cap = cv2.VideoCapture(str(f))
        assert abs(cap.get(cv2.CAP_PROP_FPS) - 25.0) < 0.01
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        cap.release()
        assert len(frames) == 6
        assert frames[0].shape == (240, 320, 3)
        assert np.mean(_diff(frames[0], frames[-1])) > 0.1  # the performer moved
