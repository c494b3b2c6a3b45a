"""Real-data benchmark of ``crosspose reconstruct``: the Pose2Sim demo clip, against Pose2Sim's own result.

Data (PyPI, BSD-3, fetched and cached by :mod:`crosspose.assets`): pose2sim 0.4.15 ships the clip's
OpenPose BODY_25B JSON (4 portrait cameras, 100 frames, 60 fps; identical to 0.8.4's copy) and
Pose2Sim's 3D result of those same frames (``Balancing_for_IK.trc``, 21 markers, Y-up); the
calibration is the Qualisys export of pose2sim 0.10.49 (the same rig; Pose2Sim's own TOML of it
divides the distortion by 64, see crosspose.calibration.formats.qualisys).

Compared on the same frames, in one run:

* Pose2Sim — its TRC. Its config (0.4.15 ``Demo/User/Config.toml``) triangulates views with a
  likelihood ≥ 0.3 and reprojection error ≤ 15 px, interpolates gaps and then applies a 4th-order
  6 Hz Butterworth filter over the whole take (zero-phase, offline); its jitter column shows it.
* ours — ``crosspose.reconstruct`` (Solver.solve_keypoints frame by frame, causal, no filter), the lengths
  learnt online (``--lengths online``).
* ours, --lengths take — the same twice (``crosspose.reconstruct.solve_take``): the performer's lengths
  learnt over the whole take by the first pass, known from the first frame in the second.
* DLT — confidence-weighted linear triangulation of the same H36M-mapped keypoints after undistortion.
* ours + BW — ours through the same 4th-order 6 Hz zero-phase Butterworth as Pose2Sim (written here
  from the textbook design, for comparison only: the product output is unfiltered).

Pose2Sim's markers become H36M-like joints the way our BODY_25B mapping builds them: pelvis = mid
hips, thorax = mid shoulders, spine = mean of both, neck = Neck (UpperNeck), head = Head (HeadTop).

Usage: python benchmarks/reconstruct.py [--frames N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from crosspose import assets
from crosspose.calibration import load_rig
from crosspose.evaluation import TRC, bone_std, pose2sim_as_h36m
from crosspose.io import read_multiview, read_trc
from crosspose.reconstruct import solve_sequence, solve_take
from crosspose.skeleton import H36M17, get_layout, map_keypoints

POSE = ("pose2sim-0.4.15", "Pose2Sim/Demo/pose")
CALIBRATION = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt")

FPS = 60.0


def butterworth_lowpass(order: int, cutoff: float, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Digital Butterworth low-pass ``(b, a)`` by the bilinear transform with pre-warping."""
    warped = 2 * fs * np.tan(np.pi * cutoff / fs)
    k = np.arange(1, order + 1)
    analog = warped * np.exp(1j * np.pi * (2 * k + order - 1) / (2 * order))
    poles = (2 * fs + analog) / (2 * fs - analog)
    a = np.real(np.poly(poles))
    b = np.poly(-np.ones(order)).real
    return b * a.sum() / b.sum(), a  # unit gain at DC


def _lfilter(b: np.ndarray, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    y = np.zeros_like(x)
    for n in range(x.shape[0]):
        acc = sum(b[k] * x[n - k] for k in range(len(b)) if n - k >= 0)
        acc = acc - sum(a[k] * y[n - k] for k in range(1, len(a)) if n - k >= 0)
        y[n] = acc / a[0]
    return y


def filtfilt(b: np.ndarray, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Zero-phase filtering along axis 0, odd-reflection padded (like the usual ``filtfilt``)."""
    pad = 3 * max(len(a), len(b))
    ext = np.concatenate([2 * x[:1] - x[pad:0:-1], x, 2 * x[-1:] - x[-2:-pad - 2:-1]])
    offset = ext[:1]
    y = _lfilter(b, a, ext - offset)
    y = _lfilter(b, a, (y[::-1]) - y[-1:]) + y[-1:]
    return y[::-1][pad:-pad] + offset


def jitter(joints: np.ndarray) -> float:
    """Median norm of the frame-to-frame second difference (m per frame²): high-frequency noise."""
    return float(np.nanmedian(np.linalg.norm(np.diff(joints, n=2, axis=0), axis=-1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames of the clip to use (max 100)")
    args = parser.parse_args()

    rig = load_rig(assets.extract(*CALIBRATION))
    pose_dir = assets.extract_tree(*POSE)
    trc = read_trc(assets.extract(*TRC))
    layout = get_layout("openpose-body25b")
    views = read_multiview(pose_dir, rig.names, layout.num_joints)
    n = min(args.frames, views.frame_numbers.size, trc.num_frames)
    keypoints = map_keypoints(views.keypoints[:n], layout)  # (N, C, 17, 3)
    reference = pose2sim_as_h36m(trc.markers, trc.frames[:n])

    t0 = time.perf_counter()
    ours, _, support, solve_ms = solve_sequence(keypoints, rig, progress=False)
    ours_wall = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    take, *_ = solve_take(keypoints, rig, progress=False)
    take_wall = (time.perf_counter() - t0) / n

    pixels = np.swapaxes(keypoints[..., :2], 1, 2)  # (N, 17, C, 2)
    weights = np.swapaxes(keypoints[..., 2], 1, 2)
    t0 = time.perf_counter()
    dlt, _ = rig.triangulate(pixels, weights)
    dlt_ms = 1e3 * (time.perf_counter() - t0) / n
    assert isinstance(dlt, np.ndarray)

    b, a = butterworth_lowpass(4, 6.0, FPS)
    filtered = filtfilt(b, a, ours.reshape(n, -1)).reshape(ours.shape)

    def dist_mm(x: np.ndarray, j: int) -> float:
        return 1e3 * float(np.nanmedian(np.linalg.norm(x[:, j] - reference[:, j], axis=-1)))

    methods = {"Pose2Sim": reference, "ours": ours, "ours, --lengths take": take, "DLT": dlt,
               "ours + BW": filtered}
    stds = {k: 1e3 * bone_std(v) for k, v in methods.items()}
    compared = ("ours", "ours, --lengths take", "DLT", "ours + BW")
    rows: list[tuple[str, list[str]]] = []
    for j, name in enumerate(H36M17.joints):
        rows.append((f"dist {name}", ["—", *(f"{dist_mm(methods[k], j):.1f}" for k in compared)]))
    all_d = {k: 1e3 * np.nanmedian(np.linalg.norm(methods[k] - reference, axis=-1)) for k in methods}
    rows.append(("dist median, all joints", ["—", *(f"{all_d[k]:.1f}" for k in compared)]))
    for i, bone in enumerate(H36M17.bone_names):
        rows.append((f"bone std {bone}", [f"{stds[k][i]:.1f}" for k in methods]))
    rows.append(("bone std mean", [f"{stds[k].mean():.1f}" for k in methods]))
    rows.append(("bone std median", [f"{np.median(stds[k]):.1f}" for k in methods]))
    rows.append(("bone std worst", [f"{stds[k].max():.1f}" for k in methods]))
    rows.append(("jitter (mm/frame²)", [f"{1e3 * jitter(v):.2f}" for v in methods.values()]))
    solved = np.isfinite(solve_ms)
    ours_ms = f"{np.median(solve_ms[solved]):.1f} (wall {1e3 * ours_wall:.1f})"
    rows.append(("time per frame (ms)", ["—", ours_ms, f"both passes: wall {1e3 * take_wall:.1f}",
                                         f"{dlt_ms:.2f}", "offline"]))
    rows.append(("joints with ≥ 2 views (%)", ["—", f"{100 * (support >= 2).mean():.1f}", "—", "—", "—"]))

    print(f"Pose2Sim demo clip: {n} frames, cameras {', '.join(rig.names)}; distances to Pose2Sim's TRC and "
          "bone-length std over the frames, mm")
    header = ["", *methods]
    width = max(len(r[0]) for r in rows) + 2
    print(f"{header[0]:<{width}}" + "".join(f"{h:>22}" for h in header[1:]))
    for label, cells in rows:
        print(f"{label:<{width}}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
