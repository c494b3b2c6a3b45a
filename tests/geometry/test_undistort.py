"""Undistortion: exact round trips, OpenCV's undistortPoints run to convergence as the reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from crosspose.geometry import distort_normalized, undistort_points

TIGHT = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 1000, 1e-15)
K = np.array([[1000.0, 0.0, 960.0], [0.0, 1010.0, 540.0], [0.0, 0.0, 1.0]])
STRONG = np.array([-0.4, 0.2, 0.001, -0.002, -0.05])  # folds at normalized radius ~0.92
STRONG_MONOTONIC = np.array([-0.4, 0.2, 0.0008, -0.0006, 0.0])
PINCUSHION = np.array([0.3, 0.1, 0.002, 0.001, 0.02])
MILD = np.array([-0.25, 0.08, 0.0005, 0.0002, -0.01])


def _image_pixels(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform pixels over a 1920x1080 image plus its four corners and edge midpoints."""
    corners = [[0, 0], [1919, 0], [0, 1079], [1919, 1079]]
    border = np.array([*corners, [960, 0], [0, 540], [1919, 540], [960, 1079]])
    return np.concatenate([np.stack([rng.uniform(0, 1919, n), rng.uniform(0, 1079, n)], -1), border])


def _distort_residual(xy: np.ndarray, pixels: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """How far (normalized) ``xy`` re-distorted lands from the observed ``pixels``."""
    xd = distort_normalized(torch.from_numpy(xy[:, None]), torch.from_numpy(dist[None]))[:, 0].numpy()
    observed = (pixels - K[:2, 2]) / np.diag(K)[:2]
    return np.abs(xd - observed).max(-1)


@pytest.mark.parametrize(
    "dist",
    [MILD, PINCUSHION, STRONG_MONOTONIC, STRONG],
    ids=["mild", "pincushion", "strong_monotonic", "strong"],
)
def test_matches_converged_opencv(rng, dist):
    pixels = _image_pixels(rng, 5000)
    ours = undistort_points(pixels[:, None], K[None], dist[None], output="normalized")[:, 0]
    ref = cv2.undistortPoints(pixels[:, None], K, dist, criteria=TIGHT)[:, 0]
    # compare only where OpenCV's fixed-point iteration actually converged
    converged = _distort_residual(ref, pixels, dist) < 1e-12
    ok = np.isfinite(ours).all(-1)
    assert converged.mean() > 0.75
    assert ok[converged].all(), "we refused a point OpenCV could undistort"
    np.testing.assert_allclose(ours[converged], ref[converged], rtol=0, atol=1e-10)
    # and our answers solve the equation wherever we give one, OpenCV-converged or not
    assert _distort_residual(ours[ok], pixels[ok], dist).max() < 1e-12
    if dist is not STRONG:
        assert ok.all()


def test_pixels_output_matches_opencv_with_P(rng):
    pixels = _image_pixels(rng, 1000)
    ours = undistort_points(pixels[:, None], K[None], STRONG_MONOTONIC[None])[:, 0]
    ref = cv2.undistortPoints(pixels[:, None], K, STRONG_MONOTONIC, P=K, criteria=TIGHT)[:, 0]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-7)


def test_better_than_opencv_default_iterations(rng):
    """OpenCV's default (5 fixed-point steps) misses by pixels at the border under strong distortion."""
    pixels = _image_pixels(rng, 1000)
    ours = undistort_points(pixels[:, None], K[None], STRONG_MONOTONIC[None], output="normalized")[:, 0]
    default = cv2.undistortPoints(pixels[:, None], K, STRONG_MONOTONIC)[:, 0]
    assert _distort_residual(default, pixels, STRONG_MONOTONIC).max() > 1e-3  # ~1 px
    assert _distort_residual(ours, pixels, STRONG_MONOTONIC).max() < 1e-12


def test_round_trip_recovers_normalized_coordinates(rng):
    """project (distort) → undistort gives back the normalized coordinates, per camera, batched."""
    dists = np.stack([MILD, PINCUSHION, STRONG_MONOTONIC, STRONG])
    Ks = np.stack([K] * 4)
    # inside the valid region of every model (STRONG folds at r ~1.3 undistorted)
    r = np.sqrt(rng.uniform(0, 1.2**2, (7, 300, 1)))
    phi = rng.uniform(0, 2 * np.pi, (7, 300, 1))
    xy = np.concatenate([r * np.cos(phi), r * np.sin(phi)], axis=-1)
    xy = np.repeat(xy[..., None, :], 4, axis=-2)  # (7, 300, C, 2): the same points in every camera
    xd = distort_normalized(torch.from_numpy(xy), torch.from_numpy(dists)).numpy()
    focal, centre = np.diagonal(Ks, axis1=1, axis2=2)[:, :2], Ks[:, :2, 2]
    pixels = xd * focal + centre
    back = undistort_points(pixels, Ks, dists, output="normalized")
    assert back.shape == (7, 300, 4, 2)
    np.testing.assert_allclose(back, xy, rtol=0, atol=1e-9)
    np.testing.assert_allclose(undistort_points(pixels, Ks, dists), xy * focal + centre, rtol=0, atol=1e-6)


def test_beyond_the_fold_is_nan_not_garbage():
    """A pixel whose distorted radius exceeds the model's maximum has no inverse: NaN, never a guess."""
    # STRONG's distorted radius peaks at ~0.92; 1.05 (an image corner at f=1000) is unreachable.
    pixels = np.array([[960.0 + 1000 * 0.742, 540.0 + 1010 * 0.742], [960.0 + 300, 540.0]])
    out = undistort_points(pixels[:, None], K[None], STRONG[None])[:, 0]
    assert np.isnan(out[0]).all()
    assert np.isfinite(out[1]).all()


def test_nan_in_nan_out_and_zero_distortion_identity():
    pixels = np.array([[[100.0, 200.0], [np.nan, 5.0]], [[np.nan, np.nan], [960.0, 540.0]]])  # (N=2, C=2, 2)
    Ks, dists = np.stack([K, K]), np.stack([np.zeros(5), STRONG])
    out = undistort_points(pixels, Ks, dists)
    assert np.isnan(out[0, 1]).all()
    assert np.isnan(out[1, 0]).all()
    np.testing.assert_allclose(out[0, 0], [100.0, 200.0], rtol=0, atol=1e-9)  # no distortion: identity
    np.testing.assert_allclose(out[1, 1], [960.0, 540.0], rtol=0, atol=1e-9)  # principal point is fixed


def test_skew_is_inverted_consistently_with_projection(rng):
    Ks = np.array([[[1000.0, 3.0, 960.0], [0.0, 1010.0, 540.0], [0.0, 0.0, 1.0]]])
    xy = rng.uniform(-0.8, 0.8, (50, 1, 2)) * [1.0, 0.5]
    X = np.concatenate([xy, np.ones((50, 1, 1))], -1)[:, 0] * 2.0
    from crosspose.geometry import project_points

    pixels = project_points(X, Ks, MILD[None], np.eye(3)[None], np.zeros((1, 3)))
    np.testing.assert_allclose(undistort_points(pixels, Ks, MILD[None], output="normalized"), xy, atol=1e-10)


def test_torch_float32_and_shape_guards(rng):
    pixels = _image_pixels(rng, 100)[:, None]
    ref = undistort_points(pixels, K[None], MILD[None])
    out32 = undistort_points(pixels.astype(np.float32), K[None], MILD[None])
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ref, rtol=0, atol=1e-3)
    t = undistort_points(torch.from_numpy(pixels).float(), torch.from_numpy(K[None]), MILD[None])
    assert isinstance(t, torch.Tensor)
    assert t.dtype == torch.float32
    with pytest.raises(ValueError, match=r"pixels must have shape \(\.\.\., C, 2\)"):
        undistort_points(np.zeros((3, 3)), K[None], MILD[None])
    with pytest.raises(ValueError, match=r"K must have shape \(2, 3, 3\)"):
        undistort_points(np.zeros((3, 2, 2)), K[None], MILD[None])
    with pytest.raises(ValueError, match=r"dist must have shape \(1, 5\)"):
        undistort_points(pixels, K[None], MILD[None, :4])
    with pytest.raises(ValueError, match="output must be"):
        undistort_points(pixels, K[None], MILD[None], output="metres")  # type: ignore[arg-type]


def test_rig_and_camera_undistort(make_rig, rng):
    rig = make_rig(rng, n_cameras=3, distortion="mild")
    pixels = np.stack([_image_pixels(rng, 20)] * 3, axis=1)  # (28, 3, 2)
    out = rig.undistort(pixels)
    for c, cam in enumerate(rig):
        ref = cv2.undistortPoints(pixels[:, c, None], cam.K, cam.dist, P=cam.K, criteria=TIGHT)[:, 0]
        np.testing.assert_allclose(out[:, c], ref, rtol=0, atol=1e-6)
        np.testing.assert_allclose(cam.undistort(pixels[:, c]), out[:, c], rtol=0, atol=1e-12)


def test_radial_fold_limit():
    from crosspose.geometry import radial_fold_limit

    dists = torch.from_numpy(np.stack([[-0.5, 0, 0, 0, 0], STRONG, np.zeros(5), STRONG_MONOTONIC]))
    limit = radial_fold_limit(dists)
    assert limit[0].item() == pytest.approx(2.0 / 3.0, abs=1e-9)  # d/dr (r - 0.5 r³) = 0 at r² = 2/3
    s = limit[1].item()
    k1, k2, _, _, k3 = STRONG
    assert 1 + 3 * k1 * s + 5 * k2 * s**2 + 7 * k3 * s**3 == pytest.approx(0.0, abs=1e-8)
    assert 1.3 < np.sqrt(s) < 1.4
    assert torch.isinf(limit[2:]).all()
