"""``crosspose demo``: the main job with no hardware.

Until the live service lands this runs a synthetic studio take end to end, offline: a seeded rig and
performer, rendered to one real video file per camera, simulated 2D heatmaps (with the error modes
of a real network) inside per-view person crops, the 3D solver on every frame, and a report of the
3D error against ground truth next to the plain soft-argmax triangulation baseline.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosspose.skeleton import H36M17, Skeleton


@dataclass(frozen=True)
class DemoResult:
    """What one demo run produced.

    Attributes:
        joints: ``(N, J, 3)`` solved joints, metres.
        truth: ``(N, J, 3)`` ground-truth joints, metres.
        baseline: ``(N, J, 3)`` soft-argmax + DLT joints, metres.
        confidence: ``(N, J)``.
        solve_ms: ``(N,)`` solver time per frame.
        files: what was written.
        skeleton: the joints' layout (the solver's, which is the studio's).
    """

    joints: np.ndarray
    truth: np.ndarray
    baseline: np.ndarray
    confidence: np.ndarray
    solve_ms: np.ndarray
    files: list[Path]
    skeleton: Skeleton = H36M17

    def mpjpe_mm(self, estimate: np.ndarray | None = None) -> float:
        """Mean per-joint position error in millimetres (NaN joints count as missing)."""
        est = self.joints if estimate is None else estimate
        return float(np.nanmean(np.linalg.norm(est - self.truth, axis=-1)) * 1e3)


def run_synthetic(
    out: Path,
    *,
    seed: int = 0,
    num_frames: int = 90,
    num_cameras: int = 4,
    heatmap_size: int = 64,
    realistic_errors: bool = True,
    video: bool = True,
    progress: bool = True,
) -> DemoResult:
    """Run the synthetic take and write its outputs under ``out``.

    Rig distortion is off: the solver takes ``3x4`` projections, and undistorting crops is the
    inference stage's job (a later issue); crops stand in for a person detector (from the scene's
    2D joints), the 3D answer never sees ground truth.
    """
    from tqdm import tqdm

    from crosspose.bus import versioned
    from crosspose.bus.schema import skeleton_message
    from crosspose.solver import Solver
    from crosspose.solver.reference import softargmax_dlt
    from crosspose.studio import (
        HeatmapErrors,
        heatmap_projection_matrices,
        make_scene,
        person_crops,
        random_rig,
        render_to_video,
        simulate_heatmaps,
    )

    out.mkdir(parents=True, exist_ok=True)
    rig = random_rig(seed, num_cameras, distortion=0.0)
    scene = make_scene(seed, num_frames, num_cameras, rig=rig)
    files: list[Path] = []
    if video:
        files += render_to_video(scene, out / "videos", seed=seed)

    size = (heatmap_size, heatmap_size)
    errors = HeatmapErrors.realistic() if realistic_errors else HeatmapErrors()
    P_image = rig.projection_matrices()
    solver = Solver(scene.skeleton)  # the studio's layout: the simulated heatmaps are its joints'
    rng = np.random.default_rng(seed)
    J = scene.joints3d.shape[1]
    joints = np.full((num_frames, J, 3), np.nan)
    baseline = np.full((num_frames, J, 3), np.nan)
    confidence = np.zeros((num_frames, J))
    solve_ms = np.zeros(num_frames)
    stream_path = out / "skeletons.jsonl"
    with stream_path.open("w") as stream:
        frames = tqdm(range(num_frames), desc="solving", unit="frame", disable=not progress)
        for n in frames:
            crops = person_crops(scene.joints2d[n], size)
            heatmaps, _ = simulate_heatmaps(
                scene.joints2d[n], transforms=crops, heatmap_size=size, errors=errors, rng=rng,
                visibility=scene.visibility[n],
            )
            P = heatmap_projection_matrices(P_image, crops)
            t0 = time.perf_counter()
            pose = solver.solve(heatmaps, P)
            solve_ms[n] = 1e3 * (time.perf_counter() - t0)
            joints[n], confidence[n] = pose.joints, pose.confidence
            baseline[n] = softargmax_dlt(heatmaps, P)
            t_capture = int(n * 1e9 / scene.fps)  # the take's own clock: publish = capture + solve
            message = skeleton_message(
                pose, seq=n, t_capture_ns=t_capture, cameras=rig.names, latency_ms={"solve": solve_ms[n]},
                t_publish_ns=t_capture + int(solve_ms[n] * 1e6),
            )
            stream.write(json.dumps(versioned(message), allow_nan=False) + "\n")
    files.append(stream_path)
    return DemoResult(joints, scene.joints3d, baseline, confidence, solve_ms, files, scene.skeleton)


def report(result: DemoResult) -> str:
    """A short plain-text table of the run (joint groups by name, in the result's layout)."""
    sk = result.skeleton
    err = np.linalg.norm(result.joints - result.truth, axis=-1) * 1e3
    base = np.linalg.norm(result.baseline - result.truth, axis=-1) * 1e3
    groups = {
        "all joints": list(range(sk.num_joints)),
        "torso/head": [sk.index(j) for j in ("pelvis", "spine", "thorax", "neck", "head") if j in sk.joints],
        "hips/knees/ankles": [i for i, j in enumerate(sk.joints) if j[2:] in ("hip", "knee", "ankle")],
        "shoulders/elbows": [i for i, j in enumerate(sk.joints) if j[2:] in ("shoulder", "elbow")],
        "wrists": [i for i, j in enumerate(sk.joints) if j[2:] == "wrist"],
    }
    lines = [f"{'joints':<20}{'crosspose MPJPE':>17}{'soft-argmax DLT':>17}   (mm, vs ground truth)"]
    for name, idx in groups.items():
        lines.append(f"{name:<20}{np.nanmean(err[:, idx]):>17.1f}{np.nanmean(base[:, idx]):>17.1f}")
    ms = result.solve_ms
    lines.append(
        f"solver: median {np.median(ms):.1f} ms/frame "
        f"(p90 {np.percentile(ms, 90):.1f} ms) over {len(ms)} frames"
    )
    return "\n".join(lines)
