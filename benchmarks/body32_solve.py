"""The full body's solve time on the real Pose2Sim clip against the 17-joint solve as it was before issue 19
(issue 19's "solve time per set ≤ 1.3× today's").

"Today's" is the Human3.6M-17 solve without the long bones' length hold (``hold_lengths=False``, the
solver before issue 21) and without extremities. The clip's four videos go once through ``crosspose
reconstruct --videos``'s path (crops → BlazePose + fusion, ONNX Runtime, 1 thread), with each layout's own
network and tracked crops, as benchmarks/body32.py runs them; the solver's inputs (heatmaps, projections) of
every frame set are kept. Then, in one process with one torch thread, the solvers below take turns frame by
frame over the clip, ``--rounds`` times (each round a fresh solver: the first frame cold, the rest tracked as
in the service), and once more with tracking off (every frame cold):

* ``h36m17, no hold``: ``Solver(H36M17, hold_lengths=False)`` — the reference;
* ``h36m17``: ``Solver(H36M17)`` (the long bones' hold, the default since issue 21);
* ``crosspose-body32, no hold``: ``Solver(BODY32, hold_lengths=False)`` (the feet still held: what the long
  bones' hold costs the full body);
* ``crosspose-body32``: ``Solver(BODY32)``, everything on (the default).

Times are the process's CPU time around ``solve`` (other work on the host is not counted, which matters on a
shared machine), medians over every tracked (or cold) solve; the ratio is the full body's over the
reference. ``--save PATH`` writes the full body's poses (``.npz``) and ``--compare PATH`` prints the largest
difference to poses saved so by another build: a change meant for speed must leave them equal.

``--against COMMIT`` (needs ``--inputs``) also times the 17-joint solver as it was at that commit (e.g.
``8ee542b``, the last before issue 19: the solve the issue's "today's" meant when it was filed), with that
commit's own defaults, on the same inputs: ``git archive`` unpacks its ``service/`` into a temporary folder.
Child processes of ``solve_rounds.py``, one solver each, run after each of this process's rounds
(:data:`CHILDREN`): that commit's 17 joints; this build's full body and 17 joints, each with and without the
long bones' hold (issue 21, which came after issue 19 was filed and serves both layouts). They share the
host's conditions round by round and each runs alone in its process, as the service runs one solver (a solver
alone keeps its caches warm: it runs ~7 % faster than in this process's turn-taking, so those rows are
compared only with each other). The summary gives the full body against the commit's 17 joints (the issue's
literal "today's"), and against this build's 17 joints with the same options (what the extremities cost now),
with the long bones' hold and without it (the full body without it holds only what issue 19 brought: its
feet).

Usage: python benchmarks/body32_solve.py [--frames N] [--rounds R] [--inputs PATH] [--save PATH]
       [--compare PATH] [--against COMMIT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crosspose import assets
from crosspose import evaluation as evaluate
from crosspose.calibration import load_rig
from crosspose.core.imageset import ImageSet
from crosspose.core.videos import video_core
from crosspose.io.videos import SyncedVideos, video_files
from crosspose.nets.export import ensure_network
from crosspose.reconstruct import default_network
from crosspose.skeleton import BODY32, H36M17, Skeleton
from crosspose.solver import Solver, use_one_thread
from reconstruct import CALIBRATION

#: The solvers timed, by label: (layout, options).
SOLVERS: dict[str, tuple[Skeleton, dict[str, Any]]] = {
    "h36m17, no hold": (H36M17, {"hold_lengths": False}),
    "h36m17": (H36M17, {}),
    f"{BODY32.name}, no hold": (BODY32, {"hold_lengths": False}),
    BODY32.name: (BODY32, {}),
}
REFERENCE = "h36m17, no hold"


class _Recording(Solver):
    """A solver that keeps every frame set's inputs."""

    def __init__(self, skeleton: Skeleton) -> None:
        super().__init__(skeleton)
        self.inputs: list[tuple[np.ndarray, np.ndarray]] = []

    def solve(self, heatmaps: Any, projections: Any, t_ns: int | None = None, track: Any = None) -> Any:
        self.inputs.append((np.array(heatmaps, dtype=np.float32), np.array(projections, dtype=np.float32)))
        return super().solve(heatmaps, projections, t_ns=t_ns, track=track)


def capture(frames: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Each layout's solver inputs ``[(heatmaps (C, J, h, w), projections (C, 3, 4))]`` over the clip."""
    rig = load_rig(assets.extract(*CALIBRATION))
    videos_dir = assets.extract(evaluate.VIDEOS[0], f"{evaluate.VIDEOS[1]}/cam01.mp4").parent
    solvers = {sk.name: _Recording(sk) for sk in (H36M17, BODY32)}
    cores = {name: video_core(rig, default_network("cpu", len(rig), ensure_network(skeleton=s.skeleton)), s)
             for name, s in solvers.items()}
    with SyncedVideos(video_files(videos_dir, rig.names), frames) as videos:
        for i, images in enumerate(videos):
            for core in cores.values():
                core.run(ImageSet(i, None, images))
    return {name: s.inputs for name, s in solvers.items()}


def load_or_capture(frames: int, path: Path | None) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    if path is not None and path.exists():
        data = np.load(path)
        return {sk.name: list(zip(data[f"{sk.name}/heatmaps"], data[f"{sk.name}/projections"], strict=True))
                for sk in (H36M17, BODY32)}
    inputs = capture(frames)
    if path is not None:
        keys = ("heatmaps", "projections")
        np.savez(path, **{f"{name}/{key}": np.stack([f[k] for f in rows])
                          for name, rows in inputs.items() for k, key in enumerate(keys)})
    return inputs


def time_solves(inputs: dict[str, list[tuple[np.ndarray, np.ndarray]]], rounds: int,
                after_round: Callable[[bool], None] | None = None
                ) -> tuple[dict[tuple[str, str], list[float]], list[np.ndarray]]:
    """CPU ms of every solve by (label, mode), the solvers in turn frame by frame; the full body's poses of
    the last tracked round. ``after_round(tracking)`` runs after each round (``--against``'s)."""
    cpu: dict[tuple[str, str], list[float]] = {}
    poses: list[np.ndarray] = []
    n = min(len(rows) for rows in inputs.values())
    for r in range(rounds + 1):
        tracking = r < rounds  # the last pass: every frame cold
        solvers = {label: Solver(sk, tracking=tracking, **options)
                   for label, (sk, options) in SOLVERS.items()}
        poses = [] if tracking else poses
        for i in range(n):
            for label, solver in solvers.items():
                heatmaps, projections = inputs[solver.skeleton.name][i]
                start = time.process_time()
                pose = solver.solve(heatmaps, projections)
                mode = pose.mode if tracking else "cold only"  # a tracked round's cold first frame: "cold"
                cpu.setdefault((label, mode), []).append(1e3 * (time.process_time() - start))
                if tracking and label == BODY32.name:
                    poses.append(pose.joints)
        if after_round is not None:
            after_round(tracking)
    return cpu, poses


def unpack_build(commit: str, folder: Path) -> Path:
    """``service/`` of the repository's ``commit`` unpacked under ``folder``; its path."""
    root = Path(__file__).resolve().parent.parent
    archive = folder / "build.tar"
    subprocess.run(["git", "-C", str(root), "archive", "--format=tar", "-o", str(archive), commit, "service"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder / "service"


#: ``--against``'s child processes: (label, layout, build: "commit" or "here", solve_rounds.py flags).
CHILDREN = (("h36m17 at {commit}", H36M17.name, "commit", ()),
            (f"{BODY32.name} alone", BODY32.name, "here", ()),
            ("h36m17 alone", H36M17.name, "here", ()),
            (f"{BODY32.name}, no hold alone", BODY32.name, "here", ("--no-hold",)),
            ("h36m17, no hold alone", H36M17.name, "here", ("--no-hold",)))


def build_round(commit: str, service: Path, inputs: Path, cpu: dict[tuple[str, str], list[float]]
                ) -> Callable[[bool], None]:
    """An ``after_round`` that runs :data:`CHILDREN` once each (``service``: the commit's build) and adds
    their times to ``cpu`` under their labels."""
    here = Path(__file__).resolve().parent.parent / "service"

    def run(tracking: bool) -> None:
        for label, layout, build, flags in CHILDREN:
            command = [sys.executable, str(Path(__file__).with_name("solve_rounds.py")), str(inputs),
                       "--layout", layout, *flags, *([] if tracking else ["--cold"])]
            env = {**os.environ, "PYTHONPATH": str(service if build == "commit" else here)}
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            for mode, times in json.loads(out.strip().splitlines()[-1]).items():
                cpu.setdefault((label.format(commit=commit), mode), []).extend(times)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames of the clip (max 100)")
    parser.add_argument("--rounds", type=int, default=5, help="tracked passes over the clip (then one cold)")
    parser.add_argument("--inputs", type=Path, help="an .npz of the solver inputs: read if it exists, else "
                        "written after the network pass (skips the network on later runs)")
    parser.add_argument("--save", type=Path, help="write the full body's tracked poses here (.npz)")
    parser.add_argument("--compare", type=Path, help="poses saved by --save: print the largest difference")
    parser.add_argument("--against", metavar="COMMIT", help="also time the 17-joint solver of this commit "
                        "(e.g. 8ee542b, before issue 19) on the same inputs, round by round (needs --inputs)")
    args = parser.parse_args()
    if args.against and args.inputs is None:
        parser.error("--against needs --inputs (its child processes read the solver inputs from there)")
    use_one_thread()
    inputs = load_or_capture(args.frames, args.inputs)
    built: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        after = (build_round(args.against, unpack_build(args.against, Path(folder)), args.inputs, built)
                 if args.against else None)
        cpu, poses = time_solves(inputs, args.rounds, after)
    cpu.update(built)
    load = os.getloadavg()
    print(f"Pose2Sim clip, {len(poses)} frame sets x {args.rounds} tracked rounds + 1 cold, solvers in turn, "
          f"1 torch thread, CPU time per solve (load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f})")
    print("| solver | tracked ms (median of n) | ratio | cold ms (median of n) | ratio |")
    print("|---|---:|---:|---:|---:|")
    ref = {mode: statistics.median(cpu[(REFERENCE, mode)]) for mode in ("tracked", "cold only")}
    children = [label.format(commit=args.against) for label, *_ in CHILDREN] if built else []
    for label in [*SOLVERS, *children]:
        cells = []
        for mode in ("tracked", "cold only"):
            times = cpu.get((label, mode), [])
            if not times:
                cells += ["—", "—"]
                continue
            m = statistics.median(times)
            cells += [f"{m:.2f} ({len(times)})", f"{m / ref[mode]:.2f}x"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if built:
        then, body, seventeen, body_free, seventeen_free = children
        for mode in ("tracked", "cold only"):
            median = {label: statistics.median(built[(label, mode)]) for label in children}
            print(f"{mode}, alone in a process each: {body} {median[body]:.2f} ms = "
                  f"{median[body] / median[then]:.2f}x the 17-joint solve at {args.against} "
                  f"({median[then]:.2f} ms) and {median[body] / median[seventeen]:.2f}x this build's "
                  f"17 joints ({median[seventeen]:.2f} ms); without the long bones' hold "
                  f"{median[body_free]:.2f} ms = "
                  f"{median[body_free] / median[then]:.2f}x the solve at {args.against} and "
                  f"{median[body_free] / median[seventeen_free]:.2f}x this build's 17 joints without it "
                  f"({median[seventeen_free]:.2f} ms)")
    joints = np.stack(poses)
    if args.save is not None:
        np.savez(args.save, joints=joints)
    if args.compare is not None:
        other = np.load(args.compare)["joints"]
        same_nan = bool((np.isnan(other) == np.isnan(joints)).all())
        print(f"full body poses against {args.compare}: largest difference "
              f"{1e3 * np.nanmax(np.abs(joints - other)):.6f} mm, missing joints the same: {same_nan}")


if __name__ == "__main__":
    main()
