"""Real-data benchmark of calibrating the Pose2Sim studio with crosspose itself (issue 20's targets).

Data (PyPI, BSD-3, fetched and cached by :mod:`crosspose.assets`): pose2sim 0.10.49 ships the studio's
checkerboard images (7 per camera, 4x7 inner corners, 60 mm squares), the 4 synchronized videos and the
Qualisys calibration used as the reference; pose2sim 0.4.15 ships OpenPose BODY_25B keypoints of 100
frames of the same take.

Rows, in one run:

* intrinsics — ``calibrate_intrinsics`` per camera: RMS, focal length and principal point against Qualisys
  (target: RMS ≤ 0.30 px, focal within 0.6 %).
* person extrinsics with the reference intrinsics — ``solve_extrinsics`` on the keypoints (confidence ≥
  0.5), scale from the measured cam01–cam02 distance (taken from the reference, as a tape would give
  it), floor from the feet (targets: rotations ≤ 1.0° after the best common rotation, centres ≤ 50 mm
  after a similarity fit and ≤ 100 mm after a rigid fit with our scale, joints triangulated with it
  ≤ 35 mm from those triangulated with the reference, 4 cameras × 100 frames in ≤ 20 s).
* board intrinsics + person extrinsics (targets: rotations ≤ 2.5°, joints ≤ 35 mm).
* the first 20 frames (little motion): refused or warned about.
* with ``--person``, the same from the videos through crosspose's own detector and 2D network (minutes
  on CPU).

The time reference measured in the same run: weighted DLT triangulation of the same 100 frames with
the reference rig (what reconstructing costs, against what calibrating costs).

Usage: python benchmarks/calibration.py [--person] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from crosspose import assets
from crosspose.calibration import load_rig
from crosspose.calibration.boards import parse_board
from crosspose.calibration.extrinsics import ExtrinsicsError, Sightings
from crosspose.calibration.intrinsics import calibrate_intrinsics, find_views
from crosspose.calibration.solve import Scale, solve_extrinsics
from crosspose.calibration.sources import keypoint_sightings, person_sightings
from crosspose.geometry import Camera, CameraRig

QCA = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt")
IMAGES = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/intrinsics")
VIDEOS = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/videos")
KEYPOINTS = ("pose2sim-0.4.15", "Pose2Sim/Demo/pose")
BOARD = "checkerboard:4x7:0.06"


def intrinsics_rows(reference: CameraRig) -> CameraRig:
    board = parse_board(BOARD)
    root = assets.extract_tree(*IMAGES)
    print(f"\nintrinsics from {BOARD} (7 images per camera)")
    print("| camera | views used | RMS (px) | fx, fy vs Qualisys (%) | cx, cy vs Qualisys (px) | pp σ (px) "
          "| coverage | time (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    cams = []
    for cam in reference:
        t0 = time.perf_counter()
        views = find_views(cam.name, root / f"int_{cam.name}_img", board)
        r = calibrate_intrinsics(views, board)
        dt = time.perf_counter() - t0
        df = 100 * (r.K[[0, 1], [0, 1]] / cam.K[[0, 1], [0, 1]] - 1)
        dc = r.K[:2, 2] - cam.K[:2, 2]
        sd = r.principal_point_std
        print(f"| {cam.name} | {int(r.used.sum())} of {r.used.size} | {r.rms:.3f} "
              f"| {df[0]:+.2f}, {df[1]:+.2f} | {dc[0]:+.0f}, {dc[1]:+.0f} | {sd[0]:.1f}, {sd[1]:.1f} "
              f"| {100 * r.coverage:.0f} % | {dt:.1f} |")
        cams.append(Camera(cam.name, r.K, r.dist, np.eye(3), np.zeros(3), r.image_size, {}))
    return CameraRig(cams)


def extrinsics_row(label: str, intrinsics: CameraRig, sightings: Sightings, reference: CameraRig) -> None:
    d = np.linalg.norm(reference["cam01"].center - reference["cam02"].center)
    t0 = time.perf_counter()
    try:
        result = solve_extrinsics(intrinsics, sightings, Scale(length=f"cam01-cam02={d:.4f}"), "feet",
                                  reference=reference)
    except ExtrinsicsError as e:
        print(f"| {label} | refused: {e} |")
        return
    dt = time.perf_counter() - t0
    ref: Any = result.report["reference"]
    cams = ref["cameras"].values()
    rot = [c["rotation_deg"] for c in cams]
    sim = [c["centre_mm_similarity"] for c in cams]
    rigid = [c["centre_mm_rigid"] for c in cams]
    rms = [c["rms_px"] for c in result.report["cameras"].values()]  # type: ignore[attr-defined]
    warned = "; ".join(w.split(":")[0] for w in result.warnings) or "—"
    points = ref["points_mm"]
    print(f"| {label} | {min(rot):.2f}–{max(rot):.2f} | {min(sim):.0f}–{max(sim):.0f} | "
          f"{min(rigid):.0f}–{max(rigid):.0f} | {points['mean']:.0f} ({points['median']:.0f}) "
          f"| {min(rms):.1f}–{max(rms):.1f} | {dt:.1f} | {warned} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--person", action="store_true", help="also run the videos through our network")
    parser.add_argument("--device", default="cpu", help="where the network runs with --person")
    args = parser.parse_args()

    reference = load_rig(assets.extract(*QCA))
    board_intrinsics = intrinsics_rows(reference)

    keypoints = keypoint_sightings(assets.extract_tree(*KEYPOINTS), reference, "openpose-body25b")
    t0 = time.perf_counter()
    reference.triangulate(keypoints.pixels, keypoints.weight)
    dlt = time.perf_counter() - t0
    print(f"\nextrinsics (scale from the cam01–cam02 distance; reference timing in this run: DLT of the same "
          f"sightings with the reference rig {1000 * dlt:.0f} ms)")
    print("| sightings, intrinsics | rotation (°) | centre, similarity (mm) | centre, rigid (mm) "
          "| joints mean (median) (mm) | RMS (px) | solve (s) | warnings |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    extrinsics_row("keypoints, 100 frames, Qualisys intrinsics", reference, keypoints, reference)
    extrinsics_row("keypoints, 100 frames, board intrinsics", board_intrinsics, keypoints, reference)
    pose = assets.extract_tree(*KEYPOINTS)
    first20 = keypoint_sightings(pose, reference, "openpose-body25b", max_frames=20)
    extrinsics_row("keypoints, first 20 frames, Qualisys intrinsics", reference, first20, reference)
    if args.person:
        for c in range(1, len(reference) + 1):
            assets.extract(VIDEOS[0], f"{VIDEOS[1]}/cam{c:02d}.mp4")
        t0 = time.perf_counter()
        person = person_sightings(assets.extract_tree(*VIDEOS), reference, device=args.device)
        print(f"(our network on the 4 x 100 frames: {time.perf_counter() - t0:.0f} s)")
        extrinsics_row("our network, 100 frames, Qualisys intrinsics", reference, person, reference)
        extrinsics_row("our network, 100 frames, board intrinsics", board_intrinsics, person, reference)


if __name__ == "__main__":
    main()
