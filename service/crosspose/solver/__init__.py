"""The 3D solver: multi-view heatmaps (or 2D keypoints) + calibration → 3D skeleton.

The paper's recursive pictorial structure model (Qiu et al., ICCV 2019) with the root found by 3D
voting, limb lengths estimated per performer, sparse exact messages, sub-pixel refinement and a
tracking mode. :mod:`crosspose.solver.reference` holds the paper's methods for comparison.
"""

import torch

from crosspose.solver.limbs import LimbLengthEstimate
from crosspose.solver.pose import Pose3D
from crosspose.solver.refine import RefineOptions
from crosspose.solver.root import RootSearchOptions
from crosspose.solver.solver import Solver, SolverOptions, SolverTrack


def use_one_thread() -> None:
    """Run torch's CPU kernels on one thread, as a solver process should.

    A frame is many small tensor operations; with intra-op threads their hand-offs dominate on a busy
    machine (measured here: ~600 ms a frame with 2 threads against 14–20 ms with one). Processes that
    host a solver call this once at start; libraries never do it behind the caller's back.
    """
    torch.set_num_threads(1)


__all__ = [
    "LimbLengthEstimate",
    "Pose3D",
    "RefineOptions",
    "RootSearchOptions",
    "Solver",
    "SolverOptions",
    "SolverTrack",
    "use_one_thread",
]
