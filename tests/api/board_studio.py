"""A synthetic studio for live calibration: four cameras (the demo's names) looking down at a ChArUco board
carried through the volume, its photographs served as frame sets by a feed the test releases set by set."""

from __future__ import annotations

import queue

import cv2
import numpy as np

from board_photos import photograph_board
from crosspose.calibration.boards import BoardSpec, parse_board
from crosspose.geometry import Camera, CameraRig
from crosspose.geometry.rotations import look_at

BOARD = "charuco:6x5:0.13:0.1:DICT_4X4_50"
SIZE = (1280, 720)


def true_rig(names: list[str]) -> CameraRig:
    """Cameras 2.5 m up on a 2.6 m circle around the origin, aimed at (0, 0, 0.3); no distortion."""
    K = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    cams = []
    for i, name in enumerate(names):
        a = 0.3 + 2 * np.pi * i / len(names)
        R, t = look_at(np.array([2.6 * np.cos(a), 2.6 * np.sin(a), 2.5]), np.array([0.0, 0.0, 0.3]))
        cams.append(Camera(name, K, np.zeros(5), np.asarray(R), np.asarray(t), SIZE, {}))
    return CameraRig(cams, {"units": "m", "up": "+Z"})


def bumped(rig: CameraRig, name: str, degrees: float) -> CameraRig:
    """``rig`` with camera ``name`` turned by ``degrees`` about its own optical axis plus a tilt."""
    turn = cv2.Rodrigues(np.radians(degrees) * np.array([0.6, 0.0, 0.8]))[0]
    cams = [
        Camera(c.name, c.K, c.dist, turn @ c.R, turn @ c.t, c.image_size, {}) if c.name == name else c
        for c in rig
    ]
    return CameraRig(cams, dict(rig.metadata))


def board_photos(rig: CameraRig, count: int, seed: int = 4) -> list[list[np.ndarray]]:
    """``count`` frame sets: the board face up at varied heights and tilts, one BGR photo per camera."""
    board: BoardSpec = parse_board(BOARD)
    rng = np.random.default_rng(seed)
    centre = board.object_points().mean(0)
    sets = []
    for _ in range(count):
        tilt = cv2.Rodrigues(np.r_[rng.normal(0, 0.25, 2), rng.uniform(-np.pi, np.pi)])[0]
        Rb = tilt @ np.diag([1.0, -1.0, -1.0])
        tb = rng.uniform([-0.5, -0.5, 0.2], [0.5, 0.5, 1.0]) - Rb @ centre
        views = []
        for cam in rig:
            gray = photograph_board(board, cam.K, cam.R @ Rb, cam.R @ tb + cam.t, SIZE, dpi=40.0,
                                    background=128)
            views.append(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        sets.append(views)
    return sets


class ReleasedFeed:
    """A :class:`crosspose.calibration.session.FrameFeed` that gives only the frame sets the test released."""

    def __init__(self) -> None:
        self.sets: queue.Queue[list[np.ndarray]] = queue.Queue()
        self.closed = False

    def release(self, sets: list[list[np.ndarray]]) -> None:
        for s in sets:
            self.sets.put(s)

    def next(self, timeout_s: float) -> list[np.ndarray | None] | None:
        try:
            return list(self.sets.get(timeout=timeout_s))
        except queue.Empty:
            return None

    def close(self) -> None:
        self.closed = True
