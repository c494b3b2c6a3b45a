"""Camera and CameraRig: order as given, validation messages, immutability, subsets."""

from __future__ import annotations

import numpy as np
import pytest

from crosspose.geometry import Camera, CameraRig

K = np.array([[1000.0, 0.0, 640.0], [0.0, 1000.0, 360.0], [0.0, 0.0, 1.0]])


def _camera(name: str = "a", **changes) -> Camera:
    fields = {"name": name, "K": K, "dist": [0.1, -0.01], "R": np.eye(3), "t": [0.0, 0.0, 3.0],
              "image_size": (1280, 720)}
    fields.update(changes)
    return Camera(**fields)


def test_camera_order_is_the_order_given_not_sorted(make_rig, rng):
    names = ["cam_10", "cam_2", "cam_1", "Cam_0"]
    rig = make_rig(rng, names=names)
    assert rig.names == names
    assert [c.name for c in rig] == names
    assert rig.index("cam_2") == 1
    assert rig["cam_1"] is rig[2]
    X = np.array([0.1, 0.2, 1.0])
    np.testing.assert_allclose(rig.project(X)[1], rig["cam_2"].project(X), atol=1e-12)
    sub = rig.subset(["cam_1", "cam_10"])
    assert sub.names == ["cam_1", "cam_10"]
    np.testing.assert_array_equal(sub.K, rig.K[[2, 0]])
    assert "cam_10" in rig
    assert "cam_3" not in rig
    assert rig[0] in rig
    with pytest.raises(KeyError, match="no camera named 'cam_3'"):
        rig["cam_3"]


def test_camera_pads_distortion_and_freezes_arrays():
    cam = _camera("a")
    np.testing.assert_array_equal(cam.dist, [0.1, -0.01, 0.0, 0.0, 0.0])
    assert cam.image_size == (1280, 720)
    with pytest.raises(ValueError, match="read-only"):
        cam.K[0, 0] = 1.0
    np.testing.assert_allclose(cam.center, [0.0, 0.0, -3.0])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"K": np.eye(4)}, r"camera 'a' K must have shape \(3, 3\), got \(4, 4\)"),
        ({"R": np.eye(3)[:2]}, r"camera 'a' R must have shape \(3, 3\), got \(2, 3\)"),
        ({"t": [0.0, 1.0]}, r"camera 'a' t must have shape \(3,\), got \(2,\)"),
        ({"dist": np.zeros(8)}, r"distortion has 8 coefficients"),
        ({"image_size": (1280, 720, 3)}, r"image_size must be \(width, height\)"),
        ({"image_size": (0, 720)}, r"image_size must be \(width, height\)"),
        ({"name": ""}, r"camera name must be a non-empty string"),
    ],
)
def test_camera_validation_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        _camera(**changes)


def test_rig_validation_errors():
    with pytest.raises(ValueError, match="at least one camera"):
        CameraRig([])
    with pytest.raises(ValueError, match="duplicate camera names in rig: a"):
        CameraRig([_camera("a"), _camera("b"), _camera("a")])
    with pytest.raises(ValueError, match=r"t must have one row per camera name \(2\)"):
        CameraRig.from_arrays(["a", "b"], np.stack([K, K]), np.zeros((2, 5)), np.stack([np.eye(3)] * 2),
                              np.zeros((3, 3)), [[640, 480], [640, 480]])
    with pytest.raises(ValueError, match=r"image_size must have shape \(2, 2\)"):
        CameraRig.from_arrays(["a", "b"], np.stack([K, K]), np.zeros((2, 5)), np.stack([np.eye(3)] * 2),
                              np.zeros((2, 3)), [[640, 480, 3], [640, 480, 3]])


def test_from_arrays_round_trip_and_allclose(make_rig, rng):
    rig = make_rig(rng, n_cameras=3)
    again = CameraRig.from_arrays(rig.names, rig.K, rig.dist, rig.R, rig.t, rig.image_size + 0.2)
    assert again.allclose(rig)
    assert not again.allclose(rig.subset(rig.names[::-1]))
    moved = CameraRig([c.replace(t=c.t + 1e-6) if i == 1 else c for i, c in enumerate(rig)])
    assert not moved.allclose(rig)
    assert moved.allclose(rig, atol=1e-5)
    np.testing.assert_allclose(rig.centers, [c.center for c in rig])
    np.testing.assert_allclose(rig.projection_matrices()[2], rig[2].projection_matrix())


def test_resized_rig_projects_onto_the_resized_image() -> None:
    """A point's pixel in a half-size (cv2.resize) image is the resized camera's projection of it."""
    import cv2

    from crosspose.studio import random_rig

    rig = random_rig(5, 3, distortion=0.05)
    points = np.array([[0.1, -0.2, 1.0], [0.3, 0.2, 1.6], [-0.2, 0.1, 0.4]])
    for scale in (0.5, 0.25, 2.0):
        small = rig.resized(scale)
        assert small.names == rig.names
        uv, uv_small = np.asarray(rig.project(points)), np.asarray(small.project(points))
        np.testing.assert_allclose(uv_small, scale * (uv + 0.5) - 0.5, atol=1e-9)
        w, h = rig[0].image_size
        assert small[0].image_size == (round(w * scale), round(h * scale))
    # Check the pixel-centre convention against OpenCV's resize of a one-pixel dot.
    image = np.zeros((64, 64), np.float32)
    image[20, 36] = 1.0
    half = cv2.resize(image, (32, 32), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(half)
    centroid = np.array([np.average(xs, weights=half[ys, xs]), np.average(ys, weights=half[ys, xs])])
    np.testing.assert_allclose(centroid, 0.5 * (np.array([36, 20]) + 0.5) - 0.5, atol=0.3)
