"""``Pose3D``: one solved skeleton with per-joint confidence and support, plus what the solver saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Pose3D:
    """A 3D skeleton (``J`` joints, ``C`` views).

    Attributes:
        joints: ``(J, 3)`` world positions, metres.
        confidence: ``(J,)`` in ``[0, 1]``; below 0.1 for a joint fewer than two views support.
        views: ``(J,)`` number of views that support each joint.
        support: ``(C, J)`` bool, which views support which joint.
        skeleton: joint layout name (``h36m17``).
        mode: ``cold`` (searched the whole volume) or ``tracked`` (searched near the previous pose).
        diagnostics: extras for monitoring and debugging — ``root`` (3,), ``root_votes``,
            ``searched`` (J, 3) the 3D search's answer before refinement, ``residual`` (C, J) pixels,
            ``evidence`` (C, J), ``limb_lengths`` (B,), ``fallback`` (why tracking fell back, or None),
            ``relabelled`` (C, J) the channel of each view read as each joint where a view's left and
            right were swapped back (None when no view was; ``support`` refers to the joints).
    """

    joints: np.ndarray
    confidence: np.ndarray
    views: np.ndarray
    support: np.ndarray
    skeleton: str = "h36m17"
    mode: str = "cold"
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def num_joints(self) -> int:
        return int(self.joints.shape[0])

    def supported(self, min_views: int = 2) -> np.ndarray:
        """``(J,)`` bool: at least ``min_views`` views support the joint."""
        return self.views >= min_views
