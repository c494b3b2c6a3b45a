"""The 3D solver: multi-view heatmaps (or 2D keypoints) + calibration → 3D skeleton.

The paper's recursive pictorial structure model (Qiu et al., ICCV 2019) with the root found by 3D
voting, limb lengths estimated per performer, sparse exact messages, sub-pixel refinement and a
tracking mode. :mod:`crosspose.solver.reference` holds the paper's methods for comparison.

The options (:mod:`crosspose.solver.options`) load with the package; the solver itself, which needs
torch, loads on first use of its names (``from crosspose.solver import Solver``), so that the config
can check ``solver.options`` without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crosspose._lazy import lazy_getattr
from crosspose.solver.options import RefineOptions, RelabelOptions, RootSearchOptions, SolverOptions

if TYPE_CHECKING:
    from crosspose.solver.limbs import LimbLengthEstimate
    from crosspose.solver.pose import Pose3D
    from crosspose.solver.solver import Solver, SolverTrack

# Each name that loads on first use, with the module that defines it.
_LAZY = {name: module for module, names in (("crosspose.solver.limbs", ("LimbLengthEstimate",)),
                                            ("crosspose.solver.pose", ("Pose3D",)),
                                            ("crosspose.solver.solver", ("Solver", "SolverTrack")))
         for name in names}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def use_one_thread() -> None:
    """Run torch's CPU kernels on one thread, as a solver process should.

    A frame is many small tensor operations; with intra-op threads their hand-offs dominate on a busy
    machine (measured here: ~600 ms a frame with 2 threads against 14–20 ms with one). Processes that
    host a solver call this once at start; libraries never do it behind the caller's back.
    """
    import torch

    torch.set_num_threads(1)


__all__ = [
    "LimbLengthEstimate",
    "Pose3D",
    "RefineOptions",
    "RelabelOptions",
    "RootSearchOptions",
    "Solver",
    "SolverOptions",
    "SolverTrack",
    "use_one_thread",
]
