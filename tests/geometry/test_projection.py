"""Projection against OpenCV's projectPoints on many random rigs, strong distortion and border points."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from crosspose.geometry import CameraRig, project_points, projection_matrices


def _cv2_project(points: np.ndarray, rig: CameraRig) -> np.ndarray:
    out = []
    for cam in rig:
        rvec, _ = cv2.Rodrigues(cam.R)
        uv, _ = cv2.projectPoints(points.reshape(-1, 1, 3), rvec, cam.t, cam.K, cam.dist)
        out.append(uv.reshape(*points.shape[:-1], 2))
    return np.stack(out, axis=-2)


def _points_filling_views(rig: CameraRig, rng: np.random.Generator, n: int, extent: float) -> np.ndarray:
    """``(C, n, 3)`` world points in front of each camera whose normalized coordinates reach ``extent``
    (the image border of these rigs is at about |x| <= 1.0, |y| <= 0.6)."""
    out = []
    for cam in rig:
        xy = rng.uniform(-extent, extent, (n, 2)) * np.array([1.0, 0.6])
        depth = rng.uniform(0.5, 8.0, (n, 1))
        x_cam = np.concatenate([xy * depth, depth], axis=-1)
        out.append((x_cam - cam.t) @ cam.R)  # R^T (x_cam - t)
    return np.stack(out)


@pytest.mark.parametrize("distortion", ["none", "mild", "strong", "strong_monotonic"])
def test_project_matches_opencv_on_random_rigs(make_rig, rng, distortion):
    for _ in range(10):
        rig = make_rig(rng, n_cameras=int(rng.integers(1, 7)), distortion=distortion)
        points = _points_filling_views(rig, rng, 200, extent=1.05).reshape(-1, 3)
        ours = rig.project(points)
        ref = _cv2_project(points, rig)
        in_front = np.einsum("cij,nj->nci", rig.R, points)[..., 2] + rig.t[:, 2] > 0
        assert ours.shape == (len(points), len(rig), 2)
        # points made for one camera land anywhere (even 1e8 px away) in the others: relative there
        np.testing.assert_allclose(ours[in_front], ref[in_front], rtol=1e-11, atol=1e-7)
        assert np.isnan(ours[~in_front]).all()


def test_border_pixels_are_reached_exactly(make_rig, rng):
    """A point on the ray of a corner pixel projects back onto that pixel (through distortion)."""
    rig = make_rig(rng, n_cameras=3, distortion="strong_monotonic")
    corners = np.array([[0.0, 0.0], [1919.0, 0.0], [0.0, 1079.0], [1919.0, 1079.0], [0.0, 540.0]])
    for c, cam in enumerate(rig):
        xy = cv2.undistortPoints(corners[:, None], cam.K, cam.dist,
                                 criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15))[:, 0]
        x_cam = np.concatenate([xy, np.ones((len(xy), 1))], axis=-1) * 3.0
        world = (x_cam - cam.t) @ cam.R
        np.testing.assert_allclose(rig.project(world)[:, c], corners, rtol=0, atol=1e-6)


def test_projection_matrices_match_undistorted_projection(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=4, distortion="none")
    X = make_points(rng, 50)
    P = rig.projection_matrices()
    assert P.shape == (4, 3, 4)
    h = np.einsum("cij,nj->nci", P, np.concatenate([X, np.ones((50, 1))], axis=-1))
    np.testing.assert_allclose(h[..., :2] / h[..., 2:], rig.project(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(projection_matrices(rig.K, rig.R, rig.t), P)


def test_torch_in_torch_out_and_dtypes(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=3)
    X = make_points(rng, 5, 17)  # (N, J, 3)
    ref = rig.project(X)
    assert ref.shape == (5, 17, 3, 2)
    assert ref.dtype == np.float64
    out = rig.project(torch.from_numpy(X))
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float64
    np.testing.assert_array_equal(out.numpy(), ref)
    out32 = rig.project(X.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ref, rtol=0, atol=0.05)  # float32 pixels: ~1e-4 relative
    t32 = rig.project(torch.from_numpy(X).float())
    assert t32.dtype == torch.float32


def test_projection_is_differentiable(make_rig, rng):
    rig = make_rig(rng, n_cameras=2)
    X = torch.tensor([[0.1, 0.2, 1.0]], dtype=torch.float64, requires_grad=True)
    rig.project(X).sum().backward()
    assert X.grad is not None
    assert torch.isfinite(X.grad).all()
    assert X.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("arg", "bad", "message"),
    [
        ("points", np.zeros((4, 2)), r"points must have shape \(\.\.\., 3\)"),
        ("K", np.zeros((2, 3, 3)), r"dist must have shape \(2, 5\)"),
        ("K", np.zeros((1, 3, 3, 3)), r"K must have shape \(C, 3, 3\)"),
        ("dist", np.zeros((3, 4)), r"dist must have shape \(3, 5\)"),
        ("R", np.zeros((3, 3)), r"R must have shape \(3, 3, 3\)"),
        ("t", np.zeros((3, 3, 1)), r"t must have shape \(3, 3\)"),
    ],
)
def test_project_points_shape_guards(make_rig, rng, arg, bad, message):
    rig = make_rig(rng, n_cameras=3)
    kwargs = {"points": np.zeros((4, 3)), "K": rig.K, "dist": rig.dist, "R": rig.R, "t": rig.t}
    kwargs[arg] = bad
    with pytest.raises(ValueError, match=message):
        project_points(**kwargs)
