"""Cost of the solver stage's live outputs per performer: One Euro filter → joint rotations → one VMC
bundle per receiver (``LiveMotion.filter_persons`` / ``update_persons`` / ``send_vmc_persons``), for one
and for several performers, in one process, alternating blocks of frame sets so the machine's load
hits every count alike. Synthetic studio motion (known joints), the service's layout by default, one
local UDP receiver per performer.

Usage: python benchmarks/live_persons.py [--persons 1 2 3] [--frames 400] [--skeleton crosspose-body32]
"""

from __future__ import annotations

import argparse
import socket
import time
from dataclasses import dataclass

import numpy as np

from crosspose.motion import UNITY_BONES, FilterSettings, OneEuroFilter, humanoid_map
from crosspose.skeleton import get_skeleton
from crosspose.streaming import VmcSender
from crosspose.streaming.live import LiveMotion
from crosspose.studio.motion import generate_motion


@dataclass(frozen=True)
class Pose:
    joints: np.ndarray
    confidence: np.ndarray


def performers(count: int, frames: int, skeleton: str) -> list[np.ndarray]:
    """``count`` performers' ``(frames, J, 3)`` joints, 1.5 m apart (the layout's extra joints near their
    parent's, as the studio's motion is Human3.6M-17)."""
    layout = get_skeleton(skeleton)
    out = []
    for k in range(count):
        h36m = generate_motion(seed=k + 1, num_frames=frames, fps=30.0).joints + np.array([1.5 * k, 0.0, 0.0])
        joints = np.repeat(h36m[:, :1], layout.num_joints, axis=1)
        joints[:, :17] = h36m
        for j in range(17, layout.num_joints):  # a few cm from the joint it hangs on
            joints[:, j] = h36m[:, layout.parents[j]] + 0.05
        out.append(joints)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--block", type=int, default=20, help="frame sets per block (counts alternate)")
    parser.add_argument("--skeleton", default="crosspose-body32")
    args = parser.parse_args()
    layout = get_skeleton(args.skeleton)
    most = max(args.persons)
    motion = performers(most, args.frames, args.skeleton)
    sinks = []  # one local receiver per performer
    for _ in range(most):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        sinks.append(sink)
    targets = [f"127.0.0.1:{int(s.getsockname()[1])}" for s in sinks]
    settings = FilterSettings.default()
    lives = {}
    for n in args.persons:
        vmc = VmcSender(targets[:n], [UNITY_BONES[b] for b in humanoid_map(layout).bones],
                         persons=list(range(n)))
        lives[n] = LiveMotion(vmc=vmc, make_filter=lambda: OneEuroFilter(settings, layout), skeleton=layout)
    times: dict[int, list[int]] = {n: [] for n in args.persons}
    conf = np.ones(layout.num_joints)
    blocks = args.frames // args.block
    for b in range(blocks):
        order = args.persons if b % 2 == 0 else args.persons[::-1]
        for n in order:
            live = lives[n]
            for i in range(b * args.block, (b + 1) * args.block):
                persons = [(k, Pose(motion[k][i], conf)) for k in range(n)]
                t0 = time.perf_counter_ns()
                filtered = live.filter_persons(i / 30.0, persons)
                live.update_persons(i / 30.0, filtered)
                live.send_vmc_persons(i, 0, filtered)
                if i >= 40:  # past every rest pose's warm-up (30 frames)
                    times[n].append(time.perf_counter_ns() - t0)
    for sink in sinks:
        sink.close()
    base = float(np.median(times[min(args.persons)]))
    print(f"layout {layout.name}, {args.frames} frame sets, blocks of {args.block} alternated")
    for n in args.persons:
        ms = np.array(times[n]) / 1e6
        print(f"{n} performer(s): median {np.median(ms):.3f} ms, p95 {np.percentile(ms, 95):.3f} ms per "
              f"frame set ({ms.size} sets); x{np.median(times[n]) / base:.2f} the {min(args.persons)}'s; "
              f"rotated {lives[n].rotated}, errors {lives[n].errors}")


if __name__ == "__main__":
    main()
