"""Would the thumb steady the hand's roll? The full body's hands on the real Pose2Sim clip (issue 19.3).

The hand bone's roll about its wrist → index line comes from the palm line (pinky → index); on this clip
BlazePose puts those two points 1–3 cm apart, and in the left hand's worst frames their noise turns the
palm by ~80° between frames (the product holds the hand while they are closer than 1 cm). The thumb is a
second line off the same axis, so its roll could be fused with the palm's, each weighted by its squared
length perpendicular to the axis (inverse variance of an angle read from a line of that length under the
same point noise), once the thumb's angle from the palm plane is known. That angle is each performer's
and learning it would take state; here it is the clip's own median (non-causal: an upper bound on what a
learnt one gives).

The clip's four videos go through ``benchmarks/body32.py``'s run (the full body's network and solver,
ONNX Runtime, one thread), then, per hand: the perpendicular lengths of the two lines, the thumb's angle
from the palm line over the clip, and the largest turn between consecutive 60 fps frames of the hand
frame (wrist → index, and the roll reference; no hold, no filter) from the palm line alone, the thumb
alone and the two fused.

Usage: python benchmarks/hand_thumb.py [--frames N]
"""

from __future__ import annotations

import argparse

import numpy as np

from body32 import angles, run
from crosspose import assets
from crosspose.calibration import load_rig
from crosspose.nets.export import ensure_network
from crosspose.reconstruct import default_network
from crosspose.skeleton import BODY32
from crosspose.solver import use_one_thread
from reconstruct import CALIBRATION


def hand_frames(axis: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` frames (columns: the axis, the reference made perpendicular, their cross)."""
    e1 = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    e2 = reference - (reference * e1).sum(-1)[:, None] * e1
    e2 /= np.linalg.norm(e2, axis=-1, keepdims=True)
    return np.stack([e1, e2, np.cross(e1, e2)], -1)


def report(joints: np.ndarray, side: str) -> None:
    """One hand's lines, the thumb's angle and the largest turns, as table rows."""
    wrist, index, pinky, thumb = (joints[:, BODY32.index(f"{side}_{n}")] for n in ("wrist", "index", "pinky",
                                                                                      "thumb"))
    ok = np.isfinite(np.stack([wrist, index, pinky, thumb])).all((0, 2))
    wrist, index, pinky, thumb = wrist[ok], index[ok], pinky[ok], thumb[ok]
    e1 = (index - wrist) / np.linalg.norm(index - wrist, axis=-1, keepdims=True)
    off_axis = lambda v: v - (v * e1).sum(-1)[:, None] * e1  # noqa: E731
    palm, thumb_line = off_axis(index - pinky), off_axis(thumb - wrist)
    lp, lt = np.linalg.norm(palm, axis=-1), np.linalg.norm(thumb_line, axis=-1)
    angle = np.arctan2((np.cross(palm, thumb_line) * e1).sum(-1), (palm * thumb_line).sum(-1))
    offset = float(np.median(angle))
    t = thumb_line / lt[:, None]  # the thumb's line turned back by its median angle onto the palm's
    as_palm = t * np.cos(-offset) + np.cross(e1, t) * np.sin(-offset)
    fused = (lp ** 2)[:, None] * palm / lp[:, None] + (lt ** 2)[:, None] * as_palm
    print(f"| {side} hand: frames with all four points | {ok.sum()} |")
    print(f"| {side} palm line / thumb off the wrist → index axis, median (10th pct), mm | "
          f"{1e3 * np.median(lp):.0f} ({1e3 * np.percentile(lp, 10):.0f}) / "
          f"{1e3 * np.median(lt):.0f} ({1e3 * np.percentile(lt, 10):.0f}) |")
    low, q1, q3, high = np.degrees(np.percentile(angle, [5, 25, 75, 95]))
    print(f"| {side} thumb's angle from the palm line, median; IQR; 5–95 %, deg | {np.degrees(offset):.0f}; "
          f"{q1:.0f}..{q3:.0f}; {low:.0f}..{high:.0f} |")
    for name, reference in (("palm line alone", palm), ("thumb alone", as_palm), ("both, fused", fused)):
        F = hand_frames(index - wrist, reference)
        turns = angles(F[1:], F[:-1])
        print(f"| {side}: largest turn between frames / 99th pct, {name}, deg | {turns.max():.1f} / "
              f"{np.percentile(turns, 99):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames of the clip (max 100)")
    args = parser.parse_args()
    use_one_thread()
    rig = load_rig(assets.extract(*CALIBRATION))
    network = default_network("cpu", len(rig), ensure_network(skeleton=BODY32))
    joints = run(rig, {BODY32.name: network}, args.frames)[BODY32.name]["joints"]
    print(f"Pose2Sim clip, {len(joints)} frames at 60 fps, {BODY32.name}")
    print("| | |")
    print("|---|---:|")
    for side in ("l", "r"):
        report(joints, side)


if __name__ == "__main__":
    main()
