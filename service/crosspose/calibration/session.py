"""A live calibration session on the running cameras: sample frame sets at a low rate, find the board's
corners (or the performer's joints) in every view, accumulate them as :class:`Sightings`, then solve in the
background against the rig in force, without touching it: the caller applies the result or drops it.

Frames come from a :class:`FrameFeed` (the runtime's is the sync stage's frame-set tap); the collecting
and solving each run in one thread of their own, so the caller (the API) only reads :meth:`status`.
Board detection is imported here; the solve (OpenCV, the geometry) is imported when it runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from crosspose.calibration.boards import BoardSpec, detect_board

if TYPE_CHECKING:
    from crosspose.calibration.extrinsics import Sightings
    from crosspose.calibration.solve import ExtrinsicsResult
    from crosspose.geometry import CameraRig

Method = Literal["board", "person"]
World = Literal["rig", "board", "feet"]
Phase = Literal["collecting", "stopped", "solving", "solved", "failed"]

#: Image cells per side of the grid that a camera's coverage counts (``GRID x GRID`` cells).
GRID = 8


class FrameFeed(Protocol):
    """The running cameras' frame sets, latest first (a slow reader loses old sets, never stalls them)."""

    def next(self, timeout_s: float) -> list[np.ndarray | None] | None:
        """The newest frame set: one ``(H, W, 3)`` uint8 BGR image per rig camera (None: missing), or
        None when none arrived within ``timeout_s``."""

    def close(self) -> None:
        """Release the feed (idempotent)."""


#: Per frame set, ``(C, J, 3)`` ``[x, y, confidence]`` for each view (the person method's detector).
KeypointDetector = Callable[[Sequence[np.ndarray | None]], np.ndarray]
#: Builds the detector for a rig's cameras and names its ``J`` joints (it may load a network: called in the
#: collecting thread).
DetectorFactory = Callable[["CameraRig"], tuple[KeypointDetector, tuple[str, ...]]]


@dataclass(frozen=True)
class SessionSpec:
    """What to collect and how to solve.

    Attributes:
        method: ``board`` (a board shown to several cameras at once) or ``person`` (the performer's joints).
        board: the board (needed by ``method="board"``).
        refine: a camera to re-solve alone against the others (kept); None re-solves every camera.
        world: the solved rig's frame: ``rig`` (fitted onto the rig in force: its scale, floor and origin
            stay), ``board`` (the board of the first shared frame lies on the floor; its squares give the
            scale), ``feet`` (the performer's feet on the floor; scale from the rig in force's first two
            cameras' distance).
        rate_hz: frame sets sampled per second.
        max_sets: collecting stops by itself after this many sampled frame sets.
        min_confidence: the person method's joint confidence threshold.
    """

    method: Method
    board: BoardSpec | None = None
    refine: str | None = None
    world: World = "rig"
    rate_hz: float = 3.0
    max_sets: int = 300
    min_confidence: float = 0.5

    def problems(self, cameras: Sequence[str]) -> list[str]:
        """What is wrong with this spec for a rig of ``cameras`` (empty: nothing)."""
        out = []
        if self.method == "board" and self.board is None:
            out.append("method 'board' needs a board, e.g. \"board\": \"checkerboard:4x7:0.06\"")
        if self.world == "board" and self.method != "board":
            out.append("world 'board' needs method 'board'")
        if self.world == "feet" and self.method != "person":
            out.append("world 'feet' needs method 'person'")
        if self.refine is not None and self.refine not in cameras:
            out.append(f"refine: no camera {self.refine!r} (cameras: {', '.join(cameras)})")
        if self.refine is not None and self.world != "rig":
            out.append("refine keeps the rig's world: leave world at 'rig'")
        if len(cameras) < 2:
            out.append(f"a rig needs at least 2 cameras to calibrate, the service has {len(cameras)}")
        return out


class _Accumulator:
    """Sightings of ``C`` cameras, one block of ``K`` points per sampled frame set, and their coverage."""

    def __init__(self, rig: CameraRig, labels: tuple[str, ...]) -> None:
        self.sizes = np.asarray(rig.image_size, dtype=float)  # (C, 2) width, height
        self.labels = labels
        c = len(rig.names)
        self.pixels: list[np.ndarray] = []  # each (K, C, 2)
        self.weight: list[np.ndarray] = []  # each (K, C)
        self.cells = np.zeros((c, GRID, GRID), dtype=bool)
        self.views = np.zeros(c, dtype=np.int64)  # frame sets in which each camera saw something

    def add(self, pixels: np.ndarray, weight: np.ndarray) -> None:
        """One frame set: ``pixels (K, C, 2)`` in rig pixels (NaN: unseen), ``weight (K, C)``."""
        seen = weight > 0
        if seen.sum(axis=1).max(initial=0) < 2:
            return  # nothing two cameras share: no use to the extrinsics
        self.pixels.append(pixels)
        self.weight.append(weight)
        self.views += seen.any(axis=0)
        for c in range(pixels.shape[1]):
            xy = pixels[seen[:, c], c] / self.sizes[c]
            cell = np.clip((xy * GRID).astype(int), 0, GRID - 1)
            self.cells[c, cell[:, 1], cell[:, 0]] = True

    @property
    def sets(self) -> int:
        return len(self.pixels)

    def sightings(self) -> Sightings:
        from crosspose.calibration.extrinsics import Sightings

        k, c = len(self.labels), len(self.sizes)
        n = self.sets
        pixels = np.concatenate(self.pixels) if n else np.zeros((0, c, 2))
        weight = np.concatenate(self.weight) if n else np.zeros((0, c))
        return Sightings(pixels, weight, np.repeat(np.arange(n), k), np.tile(np.arange(k), n), self.labels)

    def shared(self) -> np.ndarray:
        """``(C, C)`` points each pair of cameras saw together (diagonal: each camera's own)."""
        if not self.weight:
            return np.zeros((len(self.sizes),) * 2, dtype=np.int64)
        s = (np.concatenate(self.weight) > 0).astype(np.int64)
        return s.T @ s


def board_observation(images: Sequence[np.ndarray | None], board: BoardSpec, sizes: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The board's corners in every view: ``pixels (K, C, 2)`` scaled to the rig's ``sizes (C, 2)``
    (a camera that sends smaller frames than its calibration), NaN where unseen; ``weight (K, C)``."""
    k, c = board.num_corners, len(images)
    pixels, weight = np.full((k, c, 2), np.nan), np.zeros((k, c))
    for i, image in enumerate(images):
        if image is None:
            continue
        view = detect_board(image, board)
        if view is not None:
            scale = sizes[i] / np.array([image.shape[1], image.shape[0]], dtype=float)
            pixels[view.ids, i] = view.pixels * scale
            weight[view.ids, i] = 1.0
    return pixels, weight


def keypoint_observation(images: Sequence[np.ndarray | None], detector: KeypointDetector, sizes: np.ndarray,
                         min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The performer's joints in every view (``detector``'s ``(C, J, 3)``), as :func:`board_observation`."""
    kp = np.asarray(detector(images), dtype=float)
    scale = np.ones((len(images), 2))
    for i, image in enumerate(images):
        if image is not None:
            scale[i] = sizes[i] / np.array([image.shape[1], image.shape[0]], dtype=float)
    ok = np.isfinite(kp).all(-1) & (kp[..., 2] >= min_confidence)
    pixels = np.where(ok[..., None], kp[..., :2] * scale[:, None], np.nan).transpose(1, 0, 2)
    return pixels, np.where(ok, kp[..., 2], 0.0).T


class LiveSession:
    """One calibration session against ``rig`` (the rig in force when it started).

    Args:
        spec: what to collect and how to solve (checked with :meth:`SessionSpec.problems` first).
        rig: the calibration in force: its intrinsics are used, its poses compared against (and kept by
            ``refine`` and ``world="rig"``).
        version: that calibration's store version (reported, and checked again at apply time).
        feed: the frame sets; closed when collecting ends.
        detector_factory: the person method's keypoint detector (built in the collecting thread).
    """

    def __init__(self, spec: SessionSpec, rig: CameraRig, version: int, feed: FrameFeed,
                 detector_factory: DetectorFactory | None = None) -> None:
        problems = spec.problems(rig.names)
        if problems:
            raise ValueError("; ".join(problems))
        if spec.method == "person" and detector_factory is None:
            raise ValueError("method 'person' needs the 2D network, which this service does not have")
        self.spec, self.rig, self.version = spec, rig, version
        self.started_ns = time.time_ns()
        self._feed = feed
        self._factory = detector_factory
        self._lock = threading.Lock()
        self._phase: Phase = "collecting"
        self._stop = threading.Event()
        self._error: str | None = None
        self._collect_error: str | None = None
        self._result: ExtrinsicsResult | None = None
        self._sampled = 0
        labels: tuple[str, ...]
        if spec.method == "board":
            assert spec.board is not None
            labels = tuple(f"corner{j}" for j in range(spec.board.num_corners))
        else:
            labels = ()  # the detector's joints, set when it is built
        self._acc = _Accumulator(rig, labels)
        self._collector = threading.Thread(target=self._collect, name="calibration-collect", daemon=True)
        self._solver: threading.Thread | None = None
        self._collector.start()

    # -- collecting --------------------------------------------------------------------------------------

    def _collect(self) -> None:
        try:
            detector = None
            if self.spec.method == "person" and self._factory is not None:
                detector, joints = self._factory(self.rig)
                with self._lock:
                    self._acc.labels = joints
            period = 1.0 / self.spec.rate_hz
            sizes = self._acc.sizes
            while not self._stop.is_set() and self._sampled < self.spec.max_sets:
                t0 = time.monotonic()
                images = self._feed.next(min(1.0, period))
                if images is None:
                    continue
                if len(images) != len(sizes):
                    raise ValueError(f"the feed gave {len(images)} views for {len(sizes)} cameras")
                if detector is None:
                    assert self.spec.board is not None
                    pixels, weight = board_observation(images, self.spec.board, sizes)
                else:
                    pixels, weight = keypoint_observation(images, detector, sizes, self.spec.min_confidence)
                with self._lock:
                    self._acc.add(pixels, weight)
                    self._sampled += 1
                self._stop.wait(max(0.0, period - (time.monotonic() - t0)))
        except Exception as exc:  # reported in the status; the session stays (solve what was collected)
            self._collect_error = f"collecting stopped: {exc}"
        finally:
            self._feed.close()
            with self._lock:
                if self._phase == "collecting":
                    self._phase = "stopped"

    def stop(self) -> None:
        """Stop sampling (what was collected stays); waits for the collecting thread."""
        self._stop.set()
        self._collector.join(10.0)

    # -- solving -----------------------------------------------------------------------------------------

    def solve(self) -> None:
        """Stop collecting and solve in the background (again after a failure or a solve: the same data).

        Raises:
            RuntimeError: a solve is already running.
        """
        with self._lock:  # checked and claimed at once: two requests cannot both start a solve
            if self._phase == "solving":
                raise RuntimeError("a solve is already running")
            self._phase, self._error, self._result = "solving", None, None
        self.stop()
        with self._lock:
            sightings = self._acc.sightings()
        self._solver = threading.Thread(target=self._solve, args=(sightings,), name="calibration-solve",
                                        daemon=True)
        self._solver.start()

    def _solve(self, sightings: Sightings) -> None:
        try:
            result = solve_against(self.rig, sightings, self.spec)
        except Exception as exc:
            with self._lock:
                self._phase, self._error = "failed", str(exc)
            return
        with self._lock:
            self._phase, self._result = "solved", result

    @property
    def result(self) -> ExtrinsicsResult | None:
        with self._lock:
            return self._result

    def close(self) -> None:
        """Stop collecting; a running solve finishes in its thread and is forgotten."""
        self.stop()

    # -- reporting ---------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """JSON-ready: phase, per camera coverage, per pair shared sightings, the result when solved."""
        names = self.rig.names
        with self._lock:
            shared = self._acc.shared()
            cells = self._acc.cells.mean(axis=(1, 2))
            out: dict[str, Any] = {
                "phase": self._phase,
                "method": self.spec.method,
                "board": str(self.spec.board) if self.spec.board is not None else None,
                "refine": self.spec.refine,
                "world": self.spec.world,
                "base_version": self.version,
                "sampled": self._sampled,
                "frame_sets": self._acc.sets,
                "cameras": {
                    n: {"sightings": int(shared[c, c]), "views": int(self._acc.views[c]),
                        "coverage": round(float(cells[c]), 3)}
                    for c, n in enumerate(names)
                },
                "pairs": {
                    f"{names[a]}-{names[b]}": int(shared[a, b])
                    for a in range(len(names)) for b in range(a + 1, len(names))
                },
                "error": self._error or self._collect_error,
                "result": None if self._result is None else result_summary(self._result, self.rig),
            }
        return out


def solve_against(rig: CameraRig, sightings: Sightings, spec: SessionSpec) -> ExtrinsicsResult:
    """Solve ``sightings`` with ``rig``'s intrinsics in the frame ``spec.world`` asks for (or refine one
    camera of ``rig``).

    Raises:
        ExtrinsicsError, WorldError, CalibrationError: what the data cannot give (the message names it).
    """
    from crosspose.calibration.solve import Scale, refine_extrinsics, solve_extrinsics

    source = f"live session ({spec.method})"
    if spec.refine is not None:
        return refine_extrinsics(rig, sightings, spec.refine, reference=rig, source=source)
    names = rig.names
    pair = f"{names[0]}-{names[1]}={float(np.linalg.norm(rig.centers[0] - rig.centers[1])):.6f}"
    if spec.world == "board":
        return solve_extrinsics(rig, sightings, Scale(board=spec.board), "board", rig, source)
    if spec.world == "feet":
        return solve_extrinsics(rig, sightings, Scale(length=pair), "feet", rig, source)
    solved = solve_extrinsics(rig, sightings, Scale(length=pair), "none", rig, source)
    return _onto_rig(solved, rig)


def _onto_rig(solved: ExtrinsicsResult, rig: CameraRig) -> ExtrinsicsResult:
    """``solved`` moved by the similarity that best fits its camera centres onto ``rig``'s (the studio's
    world frame, scale, floor and origin stay those of the rig in force)."""
    from crosspose.calibration.solve import ExtrinsicsResult
    from crosspose.calibration.validation import validate_rig
    from crosspose.calibration.world import compare_rigs, fit_similarity, rig_from_poses, transform_poses

    sim = fit_similarity(solved.rig.centers, rig.centers)
    R, t = transform_poses(solved.rig.R, solved.rig.t, sim)
    meta = {**solved.rig.metadata, "up": rig.metadata.get("up", "+Z")}
    moved = rig_from_poses(solved.rig, R, t, meta)
    validate_rig(moved).raise_for_errors("solved rig")
    report = {**solved.report, "world": "fitted onto the rig in force (similarity of the camera centres)",
              "reference": compare_rigs(moved, rig)}
    return ExtrinsicsResult(moved, report, solved.warnings)


def _angle_deg(R: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0))))


def result_summary(result: ExtrinsicsResult, rig: CameraRig) -> dict[str, Any]:
    """Per camera: the solved rig against ``rig`` in the world they share (rotation degrees, centre mm)
    and the solve's reprojection (median and RMS pixels); the solve's notes and warnings."""
    new = result.rig
    cams = result.report.get("cameras", {})
    assert isinstance(cams, dict)
    per_camera = {}
    for c, name in enumerate(new.names):
        k = rig.names.index(name)
        per_camera[name] = {
            "rotation_deg": round(_angle_deg(new.R[c] @ rig.R[k].T), 3),
            "centre_mm": round(1000 * float(np.linalg.norm(new.centers[c] - rig.centers[k])), 1),
            "median_px": cams.get(name, {}).get("median_px"),
            "rms_px": cams.get(name, {}).get("rms_px"),
            "sightings": cams.get(name, {}).get("sightings"),
        }
    return {
        "cameras": per_camera,
        "pairs": result.report.get("pairs"),
        "scale": result.report.get("scale"),
        "floor": result.report.get("floor"),
        "warnings": list(result.warnings),
    }
