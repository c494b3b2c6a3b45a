"""One solver's CPU time per solve over kept solver inputs, for ``body32_solve.py --against COMMIT``.

It runs under another build of crosspose (``PYTHONPATH=<that build>/service``), so it imports only what every
build since the 17-joint solver has had: ``crosspose.solver.Solver`` and ``crosspose.skeleton.get_skeleton``.
It reads the ``.npz`` that ``body32_solve.py --inputs`` writes, solves the layout's frame sets once in order
(a fresh solver: the first frame cold, the rest tracked; ``--cold``: tracking off), one torch thread, and
prints one JSON object: ``{"tracked": [ms, ...], "cold": [...], "cold only": [...]}`` (process CPU time
around each ``solve``).

``--no-hold`` builds the solver with ``hold_lengths=False`` (builds since issue 21 only).

Usage: python benchmarks/solve_rounds.py INPUTS.npz [--layout h36m17] [--cold] [--no-hold]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from crosspose.skeleton import get_skeleton
from crosspose.solver import Solver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", help="solver inputs written by body32_solve.py --inputs")
    parser.add_argument("--layout", default="h36m17")
    parser.add_argument("--cold", action="store_true", help="tracking off: every frame searched cold")
    parser.add_argument("--no-hold", action="store_true", help="without the long bones' length hold")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = np.load(args.inputs)
    heatmaps, projections = data[f"{args.layout}/heatmaps"], data[f"{args.layout}/projections"]
    options = {"hold_lengths": False} if args.no_hold else {}
    solver = Solver(get_skeleton(args.layout), tracking=not args.cold, **options)
    times: dict[str, list[float]] = {}
    for frame_heatmaps, frame_projections in zip(heatmaps, projections, strict=True):
        start = time.process_time()
        pose = solver.solve(frame_heatmaps, frame_projections)
        mode = "cold only" if args.cold else pose.mode
        times.setdefault(mode, []).append(1e3 * (time.process_time() - start))
    print(json.dumps(times))


if __name__ == "__main__":
    main()
