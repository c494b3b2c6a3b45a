"""Replay a take through the pipeline's own path: frame sets in order → the core's inference half →
the heatmaps message (float16, as on the bus) → the core's solver half → the skeleton message.

It uses the take's recorded config and calibration (or ones given) and the same core as the live
stages (:mod:`crosspose.core`: ``network``, the ONNX fusion network with the performer's track
placing the crops; ``simulated``, heatmaps from the synthetic studio's ground truth).
Differences from the recorded stream, and why:

* the live pipeline skips frame sets while inference is busy (latest wins); a replay solves every
  recorded set (``only_solved=True`` restricts it to the sets the live stream solved);
* tracking state: the live solver and crops start from whatever came before the take; the replay
  starts cold at its first set, and feeds each track back at once (live: when it arrives);
* the ``simulated`` backend draws its heatmap errors from one random stream per process: a replay
  draws fresh (seeded) errors, so it matches the recorded stream only within the simulated error;
* frames stored as JPEG from raw cameras are not bit-identical to what the live network saw.

On CPU a replay is deterministic: two replays of a take give identical skeletons.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crosspose.config import Config
from crosspose.recording.take import Take, TakeError, skeleton_stream


@dataclass
class ReplayComparison:
    """Replayed vs recorded skeletons on the frame sets both hold (distances in metres).

    Attributes:
        common: frame sets in both; median_m / p95_m / max_m: per-joint 3D distance over joints
        finite in both; identical: every common frame equal to 0.1 mm.
    """

    common: int
    median_m: float
    p95_m: float
    max_m: float
    identical: bool

    def text(self) -> str:
        return (
            f"{self.common} frame sets in both: joint distance median {self.median_m * 1000:.1f} mm, "
            f"p95 {self.p95_m * 1000:.1f} mm, max {self.max_m * 1000:.1f} mm"
            + (" (identical)" if self.identical else "")
        )


def compare(replayed: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> ReplayComparison:
    """Per-joint distances between two skeleton streams on their common frame set numbers."""
    rec = {int(m["seq"]): m for m in recorded}
    pairs = [(m, rec[int(m["seq"])]) for m in replayed if int(m["seq"]) in rec]
    if not pairs:
        return ReplayComparison(0, float("nan"), float("nan"), float("nan"), False)
    replayed_stream = skeleton_stream([p[0] for p in pairs])
    recorded_stream = skeleton_stream([p[1] for p in pairs])
    if replayed_stream.skeleton != recorded_stream.skeleton:
        raise TakeError(f"the replay solved layout {replayed_stream.skeleton}, the take holds "
                        f"{recorded_stream.skeleton}: replay with the take's solver layout to compare")
    a, b = replayed_stream.joints, recorded_stream.joints
    d = np.linalg.norm(a - b, axis=-1)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return ReplayComparison(len(pairs), float("nan"), float("nan"), float("nan"), False)
    return ReplayComparison(
        len(pairs), float(np.median(d)), float(np.percentile(d, 95)), float(d.max()), bool(d.max() < 1e-4)
    )


def take_config(take: Take) -> Config:
    """The service config recorded with ``take``."""
    data = take.config()
    if data is None:
        raise TakeError(f"take {take.id} holds no config.json; pass a config to replay it")
    return Config.model_validate(data)


def replay(
    take: Take,
    config: Config | None = None,
    *,
    calibration: str | Path | None = None,
    realtime: bool = False,
    only_solved: bool = False,
    seed: int = 0,
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """The take's frame sets through inference + solver; returns the skeleton messages (DESIGN §5).

    Args:
        config: service config (default: the take's own); its ``inference`` and ``solver`` apply.
        calibration: a rig file to use instead of the take's recorded calibrations.
        realtime: pace at the recorded rate (frame sets' ``t_ref_ns``), else as fast as possible.
        only_solved: replay only the frame sets the live stream solved.
        seed: seed of the simulated backend's heatmap errors.
        on_message: called with each skeleton message as it is produced.
    """
    import torch

    from crosspose.bus.schema import heatmaps_message, parse_heatmaps, skeleton_message
    from crosspose.calibration import load_rig
    from crosspose.core import HeatmapStep, ImageSet, PoseStep, backend_from_config, capture_time_ns
    from crosspose.solver import Solver

    torch.manual_seed(seed)
    cfg = config or take_config(take)
    versions: list[tuple[int | None, int | None, Path]] = []  # (from_seq, version, file)
    if calibration is not None:
        versions.append((None, None, Path(calibration)))
    else:
        for c in take.manifest.get("calibrations", []):
            versions.append((c.get("from_seq"), c.get("version"), take.folder / c["file"]))
    if not versions:
        raise TakeError(f"take {take.id} holds no calibration; pass one to replay it")
    names = take.cameras

    def rig_at(i: int) -> Any:
        rig = load_rig(versions[i][2])
        return rig if list(rig.names) == names else rig.subset(names)

    current = 0
    rig = rig_at(0)
    heatmap_step = HeatmapStep(backend_from_config(cfg, rig, seed=seed), rig)
    pose_step = PoseStep(Solver(cfg.solver.skeleton, options=cfg.solver.options))
    solved = {int(m["seq"]) for m in take.skeleton_messages()} if only_solved else None
    out: list[dict[str, Any]] = []
    t0_wall = time.monotonic_ns()
    t0_ref: int | None = None
    for fs in take.framesets():
        h = fs.header
        seq = int(h["seq"])
        while current + 1 < len(versions) and (versions[current + 1][0] or 0) <= seq:
            current += 1
            heatmap_step.set_rig(rig_at(current))
        if solved is not None and seq not in solved:
            continue
        if realtime:
            t0_ref = int(h["t_ref_ns"]) if t0_ref is None else t0_ref
            wait = (int(h["t_ref_ns"]) - t0_ref) - (time.monotonic_ns() - t0_wall)
            if wait > 0:
                time.sleep(wait / 1e9)
        t_capture = capture_time_ns(h)
        images = ImageSet(seq, t_capture, fs.images(),
                          [f if p else None for f, p in zip(h["frames"], h["present"], strict=True)])
        result = heatmap_step.run(images)
        hdr, bufs = heatmaps_message(
            seq=seq,
            t_capture_ns=t_capture,
            cameras=names,
            present=h["present"],
            heatmaps=result.heatmaps,
            projections=result.projections,
            latency_ms={},
            calibration_version=versions[current][1],
            backend=heatmap_step.backend.name,
        )
        received = parse_heatmaps(hdr, bufs)  # float16 on the bus: the same rounding
        pose, track = pose_step.run(received.heatmaps, received.projections, seq=seq, t_capture_ns=t_capture)
        msg = skeleton_message(
            pose,
            seq=seq,
            t_capture_ns=t_capture,
            cameras=names,
            latency_ms={},
            t_publish_ns=t_capture,
            calibration_version=versions[current][1],
        )
        msg["replay"] = True
        heatmap_step.feedback(track)
        out.append(msg)
        if on_message is not None:
            on_message(msg)
    return out

