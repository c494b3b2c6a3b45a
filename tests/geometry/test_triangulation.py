"""Triangulation: exact on noise-free synthetic scenes; OpenCV's triangulatePoints as two-view reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from crosspose.geometry import reprojection_error, triangulate


def test_two_views_match_opencv_noise_free(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=2, distortion="none")
    X = make_points(rng, 200)
    uv = rig.project(X)  # (200, 2, 2)
    P = rig.projection_matrices()
    h = cv2.triangulatePoints(P[0], P[1], uv[:, 0].T.copy(), uv[:, 1].T.copy())
    ref = (h[:3] / h[3]).T
    ours, valid = triangulate(uv, P)
    assert valid.all()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours, X, rtol=0, atol=1e-9)


def test_two_views_close_to_opencv_with_noise(make_rig, rng, make_points):
    """With 0.5 px noise both are linear estimates of the same point: millimetres apart, same fit quality."""
    rig = make_rig(rng, n_cameras=4, distortion="none").subset(["cam0", "cam1"])  # ~90° apart
    X = make_points(rng, 500)
    uv = rig.project(X) + rng.normal(0, 0.5, (500, 2, 2))
    P = rig.projection_matrices()
    h = cv2.triangulatePoints(P[0], P[1], uv[:, 0].T.copy(), uv[:, 1].T.copy())
    ref = (h[:3] / h[3]).T
    ours, valid = triangulate(uv, P)
    assert valid.all()
    assert np.abs(ours - ref).max() < 3e-3
    err_ours = reprojection_error(ours, uv, rig).mean()
    err_ref = reprojection_error(ref, uv, rig).mean()
    assert err_ours < 1.05 * err_ref
    assert np.linalg.norm(ours - X, axis=-1).mean() < 5e-3


@pytest.mark.parametrize("n_cameras", [2, 3, 5, 8])
def test_noise_free_n_views_exact_through_distortion(make_rig, rng, make_points, n_cameras):
    rig = make_rig(rng, n_cameras=n_cameras, distortion="mild")
    X = make_points(rng, 4, 17)  # (N, J, 3)
    pixels = rig.project(X)  # distorted observations (N, J, C, 2)
    ours, valid = rig.triangulate(pixels)
    assert ours.shape == (4, 17, 3)
    assert valid.shape == (4, 17)
    assert valid.dtype == np.bool_
    assert valid.all()
    np.testing.assert_allclose(ours, X, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rig.reprojection_error(ours, pixels), 0.0, atol=1e-6)


def test_without_undistortion_distorted_pixels_are_off(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=4, distortion="strong_monotonic")
    X = make_points(rng, 50)
    pixels = rig.project(X)
    wrong, _ = rig.triangulate(pixels, undistort=False)
    assert np.linalg.norm(wrong - X, axis=-1).max() > 1e-2
    ideal = rig.undistort(pixels)
    right, valid = rig.triangulate(ideal, undistort=False)
    assert valid.all()
    np.testing.assert_allclose(right, X, rtol=0, atol=1e-8)


def test_outlier_view_at_zero_weight_is_exact(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=4, distortion="none")
    X = make_points(rng, 30)
    uv = rig.project(X)
    uv[:, 2] += 80.0  # a wrong detection in camera 2
    P = rig.projection_matrices()
    biased, _ = triangulate(uv, P)
    assert np.linalg.norm(biased - X, axis=-1).min() > 1e-3
    w = np.array([1.0, 0.7, 0.0, 2.0])
    ours, valid = triangulate(uv, P, w)
    assert valid.all()
    np.testing.assert_allclose(ours, X, rtol=0, atol=1e-9)
    # per-point weights (N, C) broadcast too; a NaN weight also means "ignore"
    w_pt = np.tile([1.0, 1.0, np.nan, 0.5], (30, 1))
    ours, _ = triangulate(uv, P, w_pt)
    np.testing.assert_allclose(ours, X, rtol=0, atol=1e-9)


def test_weights_pull_towards_the_trusted_view(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=3, distortion="none")
    X = make_points(rng, 1)
    uv = rig.project(X)
    uv[:, 0] += 5.0
    P = rig.projection_matrices()
    err_equal = np.linalg.norm(triangulate(uv, P)[0] - X)
    err_down = np.linalg.norm(triangulate(uv, P, np.array([0.1, 1.0, 1.0]))[0] - X)
    assert err_down < 0.5 * err_equal


def test_nan_views_are_ignored_and_one_view_gives_nan(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=3, distortion="mild")
    X = make_points(rng, 3)
    pixels = rig.project(X)
    pixels[0, 1] = np.nan  # point 0: two views left → exact
    pixels[1, 0, 0] = np.nan  # point 1: one NaN coordinate kills that view only
    pixels[2, :2] = np.nan  # point 2: a single view → NaN and invalid
    ours, valid = rig.triangulate(pixels)
    np.testing.assert_array_equal(valid, [True, True, False])
    np.testing.assert_allclose(ours[:2], X[:2], rtol=0, atol=1e-9)
    assert np.isnan(ours[2]).all()
    # a single-camera rig can never triangulate
    one = rig.subset([rig.names[0]])
    pts, ok = one.triangulate(rig.project(X)[:, :1])
    assert not ok.any()
    assert np.isnan(pts).all()


def test_all_views_on_one_ray_is_invalid():
    """Two cameras with the same centre see the point along one ray: depth is unknown → NaN."""
    P = np.stack([np.hstack([np.eye(3), np.zeros((3, 1))])] * 2)
    pts, ok = triangulate(np.array([[[0.1, 0.2], [0.1, 0.2]]]), P)
    assert not ok[0]
    assert np.isnan(pts[0]).all()


def test_nan_projection_means_uncalibrated_view(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=3, distortion="none")
    X = make_points(rng, 5)
    P = rig.projection_matrices().copy()
    P[1] = np.nan
    ours, valid = triangulate(rig.project(X), P)
    assert valid.all()
    np.testing.assert_allclose(ours, X, rtol=0, atol=1e-9)


def test_torch_float32_batched_and_empty(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=4, distortion="mild")
    X = make_points(rng, 2, 5, 17)
    pixels = rig.project(X)  # (2, 5, 17, 4, 2)
    pts, ok = rig.triangulate(torch.from_numpy(pixels).float(), torch.ones(4))
    assert isinstance(pts, torch.Tensor)
    assert pts.dtype == torch.float32
    assert pts.shape == (2, 5, 17, 3)
    assert isinstance(ok, torch.Tensor)
    assert ok.dtype == torch.bool
    assert bool(ok.all())
    np.testing.assert_allclose(pts.numpy(), X, rtol=0, atol=1e-3)  # float32 pixels: ~1e-4 px input error
    empty, ok_empty = rig.triangulate(np.zeros((0, 4, 2)))
    assert empty.shape == (0, 3)
    assert ok_empty.shape == (0,)


def test_shape_guards(make_rig, rng):
    rig = make_rig(rng, n_cameras=3)
    P = rig.projection_matrices()
    with pytest.raises(ValueError, match=r"projections must have shape \(\.\.\., 2, 3, 4\)"):
        triangulate(np.zeros((5, 2, 2)), P)
    with pytest.raises(ValueError, match=r"points2d must have shape \(\.\.\., C, 2\)"):
        triangulate(np.zeros((5, 3, 3)), P)
    with pytest.raises(ValueError, match=r"weights must have shape \(\.\.\., 3\)"):
        triangulate(np.zeros((5, 3, 2)), P, np.ones(4))
    with pytest.raises(ValueError, match=r"pixels must have shape \(\.\.\., 3, 2\)"):
        rig.triangulate(np.zeros((5, 4, 2)))
    with pytest.raises(ValueError, match=r"pixels must have shape \(\.\.\., 3, 2\)"):
        reprojection_error(np.zeros((5, 3)), np.zeros((5, 2, 2)), rig)


def test_reprojection_error_in_pixels(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=3, distortion="strong_monotonic")
    X = make_points(rng, 10)
    pixels = rig.project(X)
    pixels[:, 1, 0] += 3.0
    pixels[:, 2, :] += [3.0, 4.0]
    pixels[4, 0] = np.nan
    err = reprojection_error(X, pixels, rig)
    assert err.shape == (10, 3)
    np.testing.assert_allclose(err[:, 1:], np.tile([3.0, 5.0], (10, 1)), rtol=0, atol=1e-9)
    assert np.isnan(err[4, 0])
    assert np.allclose(np.delete(err[:, 0], 4), 0.0, atol=1e-9)


def test_per_frame_projections_broadcast(make_rig, rng, make_points):
    """``projections (N, 1, C, 3, 4)`` (e.g. crops folded in per frame) with ``points2d (N, J, C, 2)``."""
    rig = make_rig(rng, n_cameras=3, distortion="none")
    X = make_points(rng, 2, 17)
    P = rig.projection_matrices()
    crop = np.array([[[0.5, 0, -100], [0, 0.5, -40], [0, 0, 1]], [[0.25, 0, -300], [0, 0.25, 10], [0, 0, 1]]])
    P_frames = np.einsum("nij,cjk->ncik", crop, P)[:, None]  # (N=2, 1, C, 3, 4)
    uv = rig.project(X)  # (2, 17, 3, 2) full-image pixels → crop pixels per frame
    uv_crop = uv * crop[:, None, None, [0, 1], [0, 1]] + crop[:, None, None, :2, 2]
    ours, valid = triangulate(uv_crop, P_frames)
    assert ours.shape == (2, 17, 3)
    assert valid.all()
    np.testing.assert_allclose(ours, X, rtol=0, atol=1e-9)
