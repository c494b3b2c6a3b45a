"""Rotation vectors against cv2.Rodrigues (including 0 and π), the rotation check, look_at."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from crosspose.geometry import is_rotation, look_at, matrix_to_rotvec, rotvec_to_matrix


def _random_rotvecs(rng: np.random.Generator, n: int) -> np.ndarray:
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(0, np.pi, (n, 1))
    special = np.array([[0.0, 0.0, 0.0], [1e-9, 0, 0], [0, 3e-5, -2e-5], [np.pi, 0, 0],
                        [0, 0, np.pi - 1e-7], [0.0, np.pi / np.sqrt(2), -np.pi / np.sqrt(2)]])
    return np.concatenate([axis * angle, special])


def test_rotvec_to_matrix_matches_rodrigues(rng):
    rv = _random_rotvecs(rng, 300)
    ours = rotvec_to_matrix(rv)
    ref = np.stack([cv2.Rodrigues(r)[0] for r in rv])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    assert is_rotation(ours).all()


def test_matrix_to_rotvec_matches_rodrigues_and_round_trips(rng):
    rv = _random_rotvecs(rng, 300)
    R = np.stack([cv2.Rodrigues(r)[0] for r in rv])
    ours = matrix_to_rotvec(R)
    ref = np.stack([cv2.Rodrigues(m)[0][:, 0] for m in R])
    below_pi = np.linalg.norm(rv, axis=-1) < np.pi - 1e-3  # at π the sign of the axis is arbitrary
    np.testing.assert_allclose(ours[below_pi], ref[below_pi], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours[below_pi], rv[below_pi], rtol=0, atol=1e-9)
    np.testing.assert_allclose(rotvec_to_matrix(ours), R, rtol=0, atol=1e-9)  # every angle, π included
    assert np.linalg.norm(ours, axis=-1).max() <= np.pi + 1e-12


def test_torch_batched_float32_and_gradients():
    rv = torch.tensor([[[0.1, -0.2, 0.3], [0.0, 0.0, 0.0]]], dtype=torch.float32)  # (1, 2, 3)
    R = rotvec_to_matrix(rv)
    assert isinstance(R, torch.Tensor)
    assert R.shape == (1, 2, 3, 3)
    assert R.dtype == torch.float32
    assert bool(is_rotation(R, atol=1e-5).all())
    back = matrix_to_rotvec(R)
    assert back.dtype == torch.float32
    torch.testing.assert_close(back, rv, atol=1e-6, rtol=0)
    leaf = torch.zeros(3, dtype=torch.float64, requires_grad=True)  # gradient at the identity is finite
    rotvec_to_matrix(leaf)[0, 1].backward()
    assert leaf.grad is not None
    assert torch.isfinite(leaf.grad).all()
    np.testing.assert_allclose(leaf.grad.numpy(), [0.0, 0.0, -1.0])  # d R01 / d rz = -1


def test_is_rotation_rejects_reflections_scales_and_nan():
    R = rotvec_to_matrix(np.array([0.3, 0.2, -1.0]))
    candidates = np.stack([R, -R, R * 1.001, np.diag([1.0, 1.0, -1.0]), np.full((3, 3), np.nan), np.eye(3)])
    np.testing.assert_array_equal(is_rotation(candidates), [True, False, False, False, False, True])
    assert bool(is_rotation(R * (1 + 1e-8)))
    assert not bool(is_rotation(R * (1 + 1e-8), atol=1e-10))
    with pytest.raises(ValueError, match=r"R must have shape \(\.\.\., 3, 3\)"):
        is_rotation(np.eye(4))


def test_look_at_gives_an_opencv_camera_with_level_horizon():
    eye, target = np.array([4.0, -3.0, 2.0]), np.array([0.0, 0.0, 1.0])
    R, t = look_at(eye, target)
    assert is_rotation(R, atol=1e-12)
    np.testing.assert_allclose(-R.T @ t, eye, atol=1e-12)  # camera centre
    x_cam = R @ target + t
    np.testing.assert_allclose(x_cam[:2], 0.0, atol=1e-12)  # target on the optical axis ...
    assert x_cam[2] == pytest.approx(np.linalg.norm(target - eye))  # ... in front of the camera
    assert abs(R[0, 2]) < 1e-12  # camera x (right) is horizontal: level horizon
    assert R[1, 2] < 0  # camera y (down) points towards the floor
    # a point to the right of the view direction (seen from the camera) has x_cam > 0
    right = np.cross(target - eye, [0.0, 0.0, 1.0])
    assert (R @ (target + 0.1 * right) + t)[0] > 0


def test_look_at_straight_down_needs_another_up_and_batches():
    with pytest.raises(ValueError, match="parallel to up"):
        look_at(np.array([0.0, 0.0, 3.0]), np.zeros(3))
    with pytest.raises(ValueError, match="coincide"):
        look_at(np.ones(3), np.ones(3))
    R, t = look_at(np.array([0.0, 0.0, 3.0]), np.zeros(3), up=(0.0, 1.0, 0.0))
    np.testing.assert_allclose(R @ np.zeros(3) + t, [0.0, 0.0, 3.0], atol=1e-12)
    eyes = torch.tensor([[3.0, 0.0, 1.5], [0.0, 3.0, 1.5], [-3.0, 0.0, 1.5]], dtype=torch.float32)
    Rb, tb = look_at(eyes, torch.tensor([0.0, 0.0, 1.0]))
    assert isinstance(Rb, torch.Tensor)
    assert Rb.shape == (3, 3, 3)
    assert tb.shape == (3, 3)
    assert Rb.dtype == torch.float32
    for i in range(3):
        Ri, ti = look_at(eyes[i].double().numpy(), np.array([0.0, 0.0, 1.0]))
        np.testing.assert_allclose(Rb[i].numpy(), Ri, atol=1e-6)
        np.testing.assert_allclose(tb[i].numpy(), ti, atol=1e-6)
