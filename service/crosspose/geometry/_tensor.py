"""Small adapters that let every geometry function take numpy arrays or torch tensors.

Maths is written once in torch; numpy inputs come back as numpy (float64 unless given float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from crosspose.geometry._shapes import check_shape

ArrayLike = np.ndarray | torch.Tensor

__all__ = ["ArrayLike", "as_tensor", "check_shape", "result_dtype", "to_like"]


def as_tensor(x: Any, like: torch.Tensor | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Return ``x`` as a floating torch tensor (on ``like``'s device/dtype when given)."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        a = np.asarray(x)
        # torch refuses to share read-only buffers (our rigs freeze theirs): copy those.
        t = torch.from_numpy(a if a.flags.writeable else a.copy())
    if dtype is None:
        dtype = like.dtype if like is not None else (t.dtype if t.is_floating_point() else torch.float64)
    device = like.device if like is not None else t.device
    return t.to(device=device, dtype=dtype)


def to_like(t: torch.Tensor, original: Any) -> ArrayLike:
    """Convert a result back to the container type of ``original`` (numpy in, numpy out)."""
    if isinstance(original, torch.Tensor):
        return t
    return t.detach().cpu().numpy()


def result_dtype(x: Any) -> torch.dtype:
    """The floating dtype results should have for input ``x``: float32 stays float32, else float64."""
    if isinstance(x, torch.Tensor):
        dtype = x.dtype
    else:
        dtype = torch.from_numpy(np.zeros(0, np.asarray(x).dtype)).dtype
    return dtype if dtype in (torch.float16, torch.bfloat16, torch.float32) else torch.float64
