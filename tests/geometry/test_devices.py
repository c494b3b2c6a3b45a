"""The same geometry code on a CUDA tensor gives the CPU answer (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crosspose.geometry import look_at, matrix_to_rotvec, rotvec_to_matrix, triangulate

pytestmark = pytest.mark.gpu


def test_cuda_tensors_stay_on_cuda_and_match_cpu(make_rig, rng, make_points):
    rig = make_rig(rng, n_cameras=4, distortion="strong_monotonic")
    X = torch.from_numpy(make_points(rng, 8, 17))
    pixels_cpu = rig.project(X)
    pixels = rig.project(X.cuda())
    assert pixels.device.type == "cuda"
    torch.testing.assert_close(pixels.cpu(), pixels_cpu, rtol=0, atol=1e-9)
    undist = rig.undistort(pixels)
    assert undist.device.type == "cuda"
    torch.testing.assert_close(undist.cpu(), rig.undistort(pixels_cpu), rtol=0, atol=1e-9, equal_nan=True)
    pts, ok = rig.triangulate(pixels.float(), torch.ones(4, device="cuda"))
    assert pts.device.type == "cuda"
    assert ok.device.type == "cuda"
    assert bool(ok.all())
    np.testing.assert_allclose(pts.cpu().numpy(), X.numpy(), atol=2e-3)
    P = torch.from_numpy(rig.projection_matrices()).cuda()
    pts2, _ = triangulate(rig.undistort(pixels), P)
    np.testing.assert_allclose(pts2.cpu().numpy(), X.numpy(), atol=1e-8)
    rv = torch.tensor([[0.1, -0.4, 2.0]], device="cuda")
    torch.testing.assert_close(matrix_to_rotvec(rotvec_to_matrix(rv)), rv, atol=1e-6, rtol=0)
    R, t = look_at(torch.tensor([3.0, 0.0, 1.5], device="cuda"), torch.tensor([0.0, 0.0, 1.0], device="cuda"))
    assert R.device.type == "cuda"
    assert t.device.type == "cuda"
