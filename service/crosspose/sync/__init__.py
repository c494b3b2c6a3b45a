"""Frame-set assembly by capture time, the plausibility of capture times, and sync health (skew,
drops by reason, age per camera)."""

from crosspose.sync.assembler import CameraSyncStats, FrameSet, FrameSetAssembler
from crosspose.sync.clock import CameraClock
from crosspose.sync.process import SyncStage, run_sync

__all__ = ["CameraClock", "CameraSyncStats", "FrameSet", "FrameSetAssembler", "SyncStage", "run_sync"]
