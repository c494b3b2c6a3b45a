"""Small adapters that let every geometry function take numpy arrays or torch tensors.

Maths is written once in torch; numpy inputs come back as numpy (float64 unless given float32).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


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


def check_shape(x: ArrayLike, trailing: Sequence[int | None], name: str) -> None:
    """Raise ``ValueError`` unless ``x`` ends with the axes ``trailing`` (``None`` = any length)."""
    shape = tuple(x.shape)
    ok = len(shape) >= len(trailing) and all(
        want is None or got == want for got, want in zip(shape[len(shape) - len(trailing) :], trailing, strict=True)
    )
    if not ok:
        spec = ",".join("*" if w is None else str(w) for w in trailing)
        raise ValueError(f"{name} must have shape (..., {spec}), got {shape}")
