"""Files other tools read and write: OpenSim marker trajectories (TRC) and OpenPose keypoint JSON."""

from crosspose.io.openpose import (
    KeypointSequence,
    KeypointsError,
    MultiViewKeypoints,
    match_cameras,
    read_multiview,
    read_openpose_folder,
)
from crosspose.io.trc import ZUP_TO_YUP, Trc, TrcError, read_trc, write_trc

__all__ = [
    "ZUP_TO_YUP",
    "KeypointSequence",
    "KeypointsError",
    "MultiViewKeypoints",
    "Trc",
    "TrcError",
    "match_cameras",
    "read_multiview",
    "read_openpose_folder",
    "read_trc",
    "write_trc",
]
