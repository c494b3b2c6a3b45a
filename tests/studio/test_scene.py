"""Scene ground truth: projections match the rig, visibility reasons are right."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from crosspose.geometry import Camera, CameraRig, look_at
from crosspose.skeleton import H36M17
from crosspose.studio import Visibility, make_scene, random_rig, scene_from_joints

R_WRIST = H36M17.index("r_wrist")


def _camera(name: str, eye: tuple[float, float, float], target: tuple[float, float, float]) -> Camera:
    R, t = (np.asarray(a) for a in look_at(np.array(eye), np.array(target)))
    K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    return Camera(name, K, np.zeros(5), R, t, (640, 480))


def _front_back_rig() -> CameraRig:
    """The standing pose faces +Y: one camera in front, one directly behind, both at belly height."""
    return CameraRig([_camera("front", (0, 4, 1.0), (0, 0, 1.0)), _camera("back", (0, -4, 1.0), (0, 0, 1.0))])


def _hand_on_belly(pose: np.ndarray) -> np.ndarray:
    pose[H36M17.index("r_elbow")] = (0.25, 0.12, 1.05)
    pose[R_WRIST] = (0.0, 0.2, 1.0)  # just in front of the belly
    return pose


def test_joints2d_match_rig_projection_and_opencv(walk: np.ndarray) -> None:
    rig = random_rig(5, 4)
    scene = scene_from_joints(rig, walk)
    assert scene.joints2d.shape == (20, 4, 17, 2)
    assert scene.visibility.shape == scene.visibility_reason.shape == (20, 4, 17)
    for c, cam in enumerate(rig):
        np.testing.assert_allclose(scene.joints2d[:, c], np.asarray(cam.project(walk)), atol=1e-9)
        rvec, _ = cv2.Rodrigues(cam.R)
        uv, _ = cv2.projectPoints(walk.reshape(-1, 3), rvec, cam.t, cam.K, cam.dist)
        np.testing.assert_allclose(scene.joints2d[:, c].reshape(-1, 2), uv.reshape(-1, 2), atol=1e-6)


def test_wrist_behind_the_torso_is_occluded_from_behind_only(make_pose: Callable[..., np.ndarray]) -> None:
    scene = scene_from_joints(_front_back_rig(), _hand_on_belly(make_pose()))
    reason = scene.visibility_reason[0]
    assert reason[0, R_WRIST] == Visibility.VISIBLE
    assert reason[1, R_WRIST] == Visibility.OCCLUDED
    assert not scene.visibility[0, 1, R_WRIST]
    # Seen from the front a relaxed standing person hides nothing; from behind the head hides nothing.
    front = scene_from_joints(_front_back_rig(), make_pose()).visibility_reason[0, 0]
    assert (front == Visibility.VISIBLE).all(), front


def test_side_view_hides_the_far_knee(make_pose: Callable[..., np.ndarray]) -> None:
    rig = CameraRig([_camera("left", (-4, 0, 0.5), (0, 0, 0.5))])
    reason = scene_from_joints(rig, make_pose()).visibility_reason[0, 0]
    assert reason[H36M17.index("r_knee")] == Visibility.OCCLUDED
    assert reason[H36M17.index("l_knee")] == Visibility.VISIBLE


def test_occlusion_can_be_switched_off(make_pose: Callable[..., np.ndarray]) -> None:
    scene = scene_from_joints(_front_back_rig(), _hand_on_belly(make_pose()), capsules=())
    assert scene.visibility.all()


def test_out_of_frame_and_behind_camera_are_flagged(make_pose: Callable[..., np.ndarray]) -> None:
    pose = make_pose()
    rig = CameraRig(
        [
            _camera("looks_away", (0, 4, 1.0), (0, 8, 1.0)),  # the person is behind it
            _camera("low", (0, 2, 0.2), (0, 0, 0.2)),  # head above the top of the frame
        ]
    )
    reason = scene_from_joints(rig, pose).visibility_reason[0]
    assert (reason[0] == Visibility.BEHIND_CAMERA).all()
    assert np.isnan(scene_from_joints(rig, pose).joints2d[0, 0]).all()
    assert reason[1, H36M17.index("head")] == Visibility.OUT_OF_FRAME
    assert reason[1, H36M17.index("r_ankle")] == Visibility.VISIBLE


def test_far_point_folded_in_by_distortion_is_out_of_frame(make_pose: Callable[..., np.ndarray]) -> None:
    cam = _camera("wide", (0, 4, 1.0), (0, 0, 1.0)).replace(dist=np.array([-0.4, 0, 0, 0, 0]))
    pose = make_pose()
    pose[R_WRIST] = (-3.4, 2.0, 1.0)  # far off to the side: k1 < 0 folds it back into the image
    scene = scene_from_joints(CameraRig([cam]), pose, capsules=())
    uv = scene.joints2d[0, 0, R_WRIST]
    inside = (uv >= 0).all() and (uv < [640, 480]).all()
    assert inside, "the fold this test relies on did not happen"
    assert scene.visibility_reason[0, 0, R_WRIST] == Visibility.OUT_OF_FRAME


def test_make_scene_is_seeded_and_keeps_the_performer_in_view() -> None:
    a = make_scene(3, num_frames=60, num_cameras=4)
    b = make_scene(3, num_frames=60, num_cameras=4)
    c = make_scene(4, num_frames=60, num_cameras=4)
    assert a.rig.allclose(b.rig)
    assert np.array_equal(a.joints2d, b.joints2d)
    assert not np.allclose(a.joints3d, c.joints3d)
    assert a.joints3d.shape == (60, 17, 3)
    assert a.joints2d.shape == (60, 4, 17, 2)
    assert a.motion is not None
    assert a.fps == a.motion.fps
    assert not (a.visibility_reason == Visibility.OUT_OF_FRAME).any()
    assert not (a.visibility_reason == Visibility.BEHIND_CAMERA).any()
    assert 0.5 < a.visibility.mean() < 1.0  # some self-occlusion, mostly visible
    np.testing.assert_array_equal(a.visibility, a.visibility_reason == Visibility.VISIBLE)


def test_frames_and_shape_guard(make_pose: Callable[..., np.ndarray]) -> None:
    scene = scene_from_joints(random_rig(0, 2), make_pose(), fps=25.0)
    frame = scene.frame(-1)
    assert len(scene) == 1
    assert frame.index == 0
    assert frame.time == 0.0
    assert frame.joints2d.shape == (2, 17, 2)
    assert frame.visibility.shape == (2, 17)
    assert [f.index for f in scene] == [0]
    with pytest.raises(IndexError):
        scene.frame(1)
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        scene_from_joints(random_rig(0, 2), np.zeros((4, 16, 3)))
