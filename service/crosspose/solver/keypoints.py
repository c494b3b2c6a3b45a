"""2D keypoints from elsewhere (OpenPose, MediaPipe …) as heatmaps the solver can search.

Each camera's keypoints are undistorted to normalized coordinates and drawn as Gaussians (peak =
the keypoint's confidence) into a square heatmap framing that camera's keypoints; the matching
projection maps world metres to that heatmap's pixels. The search then treats them exactly like
network heatmaps (voting across views, limb prior), and the sub-pixel refinement recovers the
keypoint positions exactly because the Gaussians are symmetric.
"""

from __future__ import annotations

import numpy as np
import torch

from crosspose.geometry import CameraRig, undistort_points


def keypoints_to_heatmaps(
    keypoints: np.ndarray | torch.Tensor,
    rig: CameraRig,
    size: int = 64,
    sigma: float = 2.0,
    margin: float = 0.15,
    min_confidence: float = 0.05,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render keypoints as heatmaps.

    Args:
        keypoints: ``(C, J, 3)`` ``[x, y, confidence]`` in image pixels (distorted, as detected);
            NaN or confidence below ``min_confidence`` marks a missing keypoint.
        rig: the ``C`` cameras, in the same order.
        size: heatmap edge (pixels); sigma: Gaussian sigma in heatmap pixels.
        margin: fraction of the keypoints' extent added around them.
    Returns:
        ``heatmaps (C, J, size, size)`` and ``projections (C, 3, 4)`` (world metres → heatmap pixels);
        a camera without keypoints gets all-zero heatmaps and a NaN projection (missing).
    """
    kp = torch.as_tensor(np.asarray(keypoints) if not isinstance(keypoints, torch.Tensor) else keypoints)
    kp = kp.to(device=device, dtype=torch.float64)
    c, j = kp.shape[0], kp.shape[1]
    if kp.shape != (c, j, 3) or c != len(rig):
        raise ValueError(f"keypoints must have shape ({len(rig)}, J, 3) for a rig of {len(rig)} cameras, "
                         f"got {tuple(kp.shape)}")
    conf = torch.nan_to_num(kp[..., 2], nan=0.0)
    present = (conf >= min_confidence) & torch.isfinite(kp[..., :2]).all(-1)
    K = torch.as_tensor(np.array(rig.K), dtype=torch.float64, device=kp.device)
    dist = torch.as_tensor(np.array(rig.dist), dtype=torch.float64, device=kp.device)
    xy = undistort_points(kp[..., :2].transpose(0, 1), K, dist, output="normalized")
    assert isinstance(xy, torch.Tensor)
    xy = xy.transpose(0, 1)  # (C, J, 2)
    present &= torch.isfinite(xy).all(-1)
    big = torch.finfo(torch.float64).max
    lo = torch.where(present[..., None], xy, big).amin(1)  # (C, 2)
    hi = torch.where(present[..., None], xy, -big).amax(1)
    centre = (lo + hi) / 2
    extent = ((hi - lo).amax(-1) * (1 + 2 * margin)).clamp(min=1e-3)  # (C,)
    scale = (size - 1) / extent  # heatmap pixels per normalized unit
    A = torch.zeros(c, 3, 3, dtype=torch.float64, device=kp.device)
    A[:, 0, 0] = scale
    A[:, 1, 1] = scale
    A[:, :2, 2] = (size - 1) / 2 - scale[:, None] * centre
    A[:, 2, 2] = 1.0
    Rt = torch.cat([torch.as_tensor(np.array(rig.R)), torch.as_tensor(np.array(rig.t))[:, :, None]], -1).to(A)
    projections = A @ Rt
    uv = torch.einsum("cij,ckj->cki", A[:, :2, :2], xy) + A[:, None, :2, 2]  # (C, J, 2)
    r = torch.arange(size, dtype=torch.float64, device=kp.device)
    gx = torch.exp(-((r - torch.nan_to_num(uv[..., 0:1])) ** 2) / (2 * sigma**2))  # (C, J, size)
    gy = torch.exp(-((r - torch.nan_to_num(uv[..., 1:2])) ** 2) / (2 * sigma**2))
    peak = torch.where(present, conf.clamp(max=1.0), 0.0)
    heatmaps = peak[..., None, None] * gy[..., :, None] * gx[..., None, :]
    any_present = present.any(1)
    projections = torch.where(any_present[:, None, None], projections, float("nan"))
    return heatmaps.to(dtype), projections.to(dtype)
