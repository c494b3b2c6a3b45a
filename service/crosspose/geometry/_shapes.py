"""Shape checks of geometry inputs that need no torch (numpy arrays, torch tensors or nested lists alike),
so that a rig can be built and validated in a process that never loads torch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def check_shape(x: Any, shape: Sequence[int | str | None], name: str, *, exact: bool = False) -> None:
    """Raise ``ValueError`` unless ``x`` ends with the axes ``shape``.

    Each entry is a required length (``int``) or any length (``None``, or a ``str`` axis name that is
    only used in the message). With ``exact`` the number of axes must match too (no leading axes).
    """
    got = tuple(np.shape(x))
    ok = (len(got) == len(shape) if exact else len(got) >= len(shape)) and all(
        isinstance(want, str) or want is None or have == want
        for have, want in zip(got[len(got) - len(shape) :], shape, strict=True)
    )
    if not ok:
        spec = ", ".join("*" if w is None else str(w) for w in shape)
        prefix = "" if exact else "..., "
        raise ValueError(f"{name} must have shape ({prefix}{spec}), got {got}")
