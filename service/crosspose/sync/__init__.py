"""Frame-set assembly by capture time and sync health (skew, drops, age per camera)."""

from crosspose.sync.assembler import CameraSyncStats, ClockAligner, FrameSet, FrameSetAssembler
from crosspose.sync.process import SyncStage, run_sync

__all__ = ["CameraSyncStats", "ClockAligner", "FrameSet", "FrameSetAssembler", "SyncStage", "run_sync"]
