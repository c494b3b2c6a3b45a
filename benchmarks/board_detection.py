"""Checkerboard detection time per full-size frame, with and without a board in view, on real frames, against
the detection of an earlier commit in the same process.

Frames (PyPI, BSD-3, fetched and cached by :mod:`crosspose.assets`), all 1088x1920 (portrait) from the
Pose2Sim studio, board ``checkerboard:4x7:0.06``:

* ``board``: the 28 checkerboard images (7 per camera) that ship with pose2sim 0.10.49;
* ``hard``: each of them made harder (``--no-hard`` skips them): blurred (σ 3 and 5 px), shrunk to 35 % and
  22 % on a gray frame (small boards), slanted two ways, turned by 35°, dimmed with noise;
* ``no board``: the 4 extrinsics scene images and every ``--step``-th frame of the 4 videos (a performer,
  no board), what a live calibration session sees between board poses.

Each frame goes through this build's :func:`crosspose.calibration.boards.detect_board` and through the
``detect_board`` of ``--against`` (default ``4503fba``: the full-size classic detector with adaptive
thresholds, then the half-size sector search), one after the other, the order swapped frame by frame. Times
are medians over the frames of a set: wall clock, and the process's CPU time (every OpenCV thread; other work
on a shared host does not count). Corners: the largest distance between the two builds' corners of a board
both found (the target: within 0.05 px; corners in reversed order are compared reversed and the frames
named), and the frames one build found and the other did not. OpenCV's RNG is seeded before each call: the
sector detector draws from it, and unseeded it places one corner of ``cam01_05_int.jpg`` 0.6 px apart from
one call to the next.

Usage: python benchmarks/board_detection.py [--against COMMIT] [--step N] [--no-hard]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from crosspose import assets
from crosspose.calibration.boards import BoardView, detect_board, parse_board
from crosspose.inference.runtimes.auto import host_cpu

ROOT = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson")
BOARD = "checkerboard:4x7:0.06"
BOARDS_PY = "service/crosspose/calibration/boards.py"

Detect = Callable[[np.ndarray, Any], "BoardView | None"]


def reference_module(commit: str) -> ModuleType:
    """``crosspose.calibration.boards`` as it was at ``commit`` (it imports only OpenCV and numpy)."""
    repo = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{commit}:{BOARDS_PY}"], cwd=repo, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "boards_reference.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("boards_reference", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def read_gray(path: Path) -> np.ndarray:
    """``(H, W)`` uint8 gray image; raises when OpenCV cannot read ``path``."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise OSError(f"{path}: OpenCV cannot read this image")
    return np.asarray(image)


def board_frames() -> Iterator[tuple[str, np.ndarray]]:
    """The 28 board images, gray ``(1920, 1088)``."""
    root = assets.extract_tree(ROOT[0], f"{ROOT[1]}/calibration/intrinsics")
    for path in sorted(root.glob("*/*.jpg")):
        yield path.name, read_gray(path)


def hard_copies(name: str, gray: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """``gray`` ``(H, W)`` made harder: blurred, shrunk, slanted, turned, dimmed (same size, gray borders)."""
    h, w = gray.shape
    for sigma in (3.0, 5.0):
        yield f"{name} blur {sigma:g}", cv2.GaussianBlur(gray, (0, 0), sigma)
    for scale, (x, y) in ((0.35, (100, 200)), (0.22, (400, 600))):
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = np.full_like(gray, 128)
        canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
        yield f"{name} small {scale:g}", canvas
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    for label, to in (("slant y", [[0, 0], [w, 0.25 * h], [w, 0.75 * h], [0, h]]),
                      ("slant x", [[0.2 * w, 0], [0.8 * w, 0], [w, h], [0, h]])):
        H = cv2.getPerspectiveTransform(frame, np.array(to, np.float32))
        yield f"{name} {label}", cv2.warpPerspective(gray, H, (w, h), borderValue=128)
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 35, 1.0)
    yield f"{name} turned 35", cv2.warpAffine(gray, turn, (w, h), borderValue=128)
    noise = np.random.default_rng(0).normal(0, 8, gray.shape)
    yield f"{name} dim", np.clip(0.35 * gray + 80 + noise, 0, 255).astype(np.uint8)


def no_board_frames(step: int) -> Iterator[tuple[str, np.ndarray]]:
    """The 4 extrinsics scene images and every ``step``-th video frame, gray ``(1920, 1088)``."""
    scenes = assets.extract_tree(ROOT[0], f"{ROOT[1]}/calibration/extrinsics")
    for path in sorted(scenes.glob("*.png")):
        yield path.name, read_gray(path)
    for c in range(1, 5):
        video = assets.extract(ROOT[0], f"{ROOT[1]}/videos/cam{c:02d}.mp4")
        capture = cv2.VideoCapture(str(video))
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                yield f"{video.name} #{index}", cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            index += 1
        capture.release()


def timed(detect: Detect, gray: np.ndarray, board: Any) -> tuple[BoardView | None, float, float]:
    """(view, wall s, CPU s)."""
    wall, cpu = time.perf_counter(), time.process_time()
    view = detect(gray, board)
    return view, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="4503fba", help="the commit whose detection is the reference")
    parser.add_argument("--step", type=int, default=25, help="every N-th video frame (no board)")
    parser.add_argument("--no-hard", dest="hard", action="store_false", help="skip the harder copies")
    args = parser.parse_args()

    reference = reference_module(args.against)
    ours_board, their_board = parse_board(BOARD), reference.parse_board(BOARD)
    boards = list(board_frames())
    sets: dict[str, list[tuple[str, np.ndarray]]] = {
        "board": boards,
        "hard": [copy for name, gray in boards for copy in hard_copies(name, gray)] if args.hard else [],
        "no board": list(no_board_frames(args.step)),
    }
    print(f"CPU: {host_cpu().describe()}, OpenCV {cv2.__version__}, "
          f"{cv2.getNumThreads()} OpenCV threads; reference: {args.against}")
    print("| frames | n | found (ref → this) | lost | gained | wall ref (s) | wall this (s) | ratio "
          "| CPU ref (s) | CPU this (s) | largest corner difference (px) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    turn = 0
    for label, frames in sets.items():
        if not frames:
            continue
        wall: dict[str, list[float]] = {"ref": [], "this": []}
        cpu: dict[str, list[float]] = {"ref": [], "this": []}
        found = {"ref": 0, "this": 0}
        lost: list[str] = []
        gained: list[str] = []
        reversed_order: list[str] = []
        differences: list[float] = []
        for name, gray in frames:
            runs: dict[str, BoardView | None] = {}
            order = ("ref", "this") if turn % 2 == 0 else ("this", "ref")
            turn += 1
            for who in order:
                detect, board = (reference.detect_board, their_board) if who == "ref" else (detect_board,
                                                                                             ours_board)
                cv2.setRNGSeed(0)  # the sector detector draws from OpenCV's RNG: same draws for both
                runs[who], dt, dc = timed(detect, gray, board)
                wall[who].append(dt)
                cpu[who].append(dc)
                found[who] += runs[who] is not None
            theirs, ours = runs["ref"], runs["this"]
            if theirs is not None and ours is None:
                lost.append(name)
            elif theirs is None and ours is not None:
                gained.append(name)
            elif theirs is not None and ours is not None:
                apart = float(np.linalg.norm(theirs.pixels - ours.pixels, axis=1).max())
                reversed_apart = float(np.linalg.norm(theirs.pixels - ours.pixels[::-1], axis=1).max())
                if reversed_apart < apart:
                    reversed_order.append(name)
                differences.append(min(apart, reversed_apart))
        w = {k: statistics.median(v) for k, v in wall.items()}
        c = {k: statistics.median(v) for k, v in cpu.items()}
        same = sum(d == 0 for d in differences)
        worst = f"{max(differences):.4f} ({same} of {len(differences)} identical)" if differences else "—"
        print(f"| {label} | {len(frames)} | {found['ref']} → {found['this']} | {len(lost)} | {len(gained)} "
              f"| {w['ref']:.3f} | {w['this']:.3f} | {w['this'] / w['ref']:.2f} | {c['ref']:.3f} "
              f"| {c['this']:.3f} | {worst} |", flush=True)
        for what, names in (("lost", lost), ("gained", gained), ("corner order reversed", reversed_order)):
            if names:
                print(f"  {label}, {what}: {', '.join(names)}")


if __name__ == "__main__":
    main()
