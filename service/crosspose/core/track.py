"""``Track``: one performer as the pipeline follows them from one frame set to the next.

The solver makes a track from each solved pose; the inference side reads it to place the next crops
and the fusion's prior. In the live service it travels from the solver stage to the inference stage as
the private ``track.`` message at full precision (never through the public skeleton message, which is
rounded and turns NaN into null). Each side keeps its own per-performer state keyed by the track's
``id``: the crops and detector retries (:class:`crosspose.inference.pipeline.PerformerCrops`) and the
solver's tracking state (previous pose, velocity, limb lengths).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from crosspose.bus.schema import TrackMessage
    from crosspose.solver.pose import Pose3D


@dataclass(frozen=True, eq=False)
class Track:
    """One performer's last solved pose (``J`` joints of the solver's layout).

    Attributes:
        id: the performer's id (0 for the one performer followed today).
        seq: the frame set the pose was solved from.
        t_capture_ns: that frame set's capture time (host monotonic clock), or None when unknown.
        joints: ``(J, 3)`` metres, world frame; NaN where unknown.
        views: ``(J,)`` number of views supporting each joint.
        confidence: ``(J,)`` in ``[0, 1]``.
        skeleton: the joint layout's name.
    """

    id: int
    seq: int
    t_capture_ns: int | None
    joints: np.ndarray
    views: np.ndarray
    confidence: np.ndarray
    skeleton: str

    def __post_init__(self) -> None:
        j = self.joints.shape[0] if self.joints.ndim == 2 else -1
        if self.joints.shape != (j, 3) or self.views.shape != (j,) or self.confidence.shape != (j,):
            raise ValueError(f"track {self.id}: joints (J, 3), views (J,) and confidence (J,) expected, got "
                             f"{self.joints.shape}, {self.views.shape}, {self.confidence.shape}")

    @property
    def num_joints(self) -> int:
        return int(self.joints.shape[0])

    def supported(self, min_views: int = 2) -> np.ndarray:
        """``(J,)`` bool: at least ``min_views`` views support the joint."""
        return self.views >= min_views

    @classmethod
    def from_pose(cls, pose: Pose3D, *, id: int = 0, seq: int = 0, t_capture_ns: int | None = None) -> Track:
        """The track a solved ``pose`` leaves (arrays copied as float64 / int64)."""
        return cls(id=int(id), seq=int(seq), t_capture_ns=None if t_capture_ns is None else int(t_capture_ns),
                   joints=np.array(pose.joints, dtype=np.float64), views=np.array(pose.views, dtype=np.int64),
                   confidence=np.array(pose.confidence, dtype=np.float64), skeleton=pose.skeleton)

    @classmethod
    def from_message(cls, message: TrackMessage) -> Track:
        """The track a checked ``track.`` message carries (:func:`crosspose.bus.schema.parse_track`)."""
        return cls(id=message.id, seq=message.seq, t_capture_ns=message.t_capture_ns, joints=message.joints,
                   views=message.views, confidence=message.confidence, skeleton=message.skeleton)

    def message(self) -> tuple[dict[str, Any], list[Any]]:
        """This track as a ``track.`` message: header and buffers (``bus.schema.track_message``)."""
        from crosspose.bus.schema import track_message

        return track_message(id=self.id, seq=self.seq, t_capture_ns=self.t_capture_ns, skeleton=self.skeleton,
                             joints=self.joints, views=self.views, confidence=self.confidence)
