"""Intrinsics of one camera from views of a board: views from an image folder or a video (frames picked for
sharpness and coverage), OpenCV's calibration with bad-view rejection, and the per-camera report.

The model is DESIGN's: OpenCV pinhole, ``k1 k2 p1 p2`` with ``k3 = 0`` (a handful of board views cannot
pin a sixth-order term; left free it bends the edges of the frame the board never reached).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from crosspose.calibration.boards import BoardSpec, BoardView, detect_board

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MIN_VIEWS = 4
REJECT_FACTOR = 2.0
COVERAGE_WARNING = 0.5
COVERAGE_GRID = 16
_DIGITS = re.compile(r"(\d+)")


class IntrinsicsError(ValueError):
    """A camera whose board views cannot give intrinsics (the message names the camera and the reason)."""


@dataclass(frozen=True, eq=False)
class CameraViews:
    """One camera's board views.

    Attributes:
        camera: camera name.
        image_size: ``(W, H)`` pixels.
        views: the views where the board was found.
        sources: ``(len(views),)`` image file name or ``frame N`` of each view.
        looked_at: how many images or video frames were searched.
    """

    camera: str
    image_size: tuple[int, int]
    views: tuple[BoardView, ...]
    sources: tuple[str, ...]
    looked_at: int


@dataclass(frozen=True, eq=False)
class IntrinsicsResult:
    """One camera's intrinsics and how much to trust them.

    Attributes:
        camera: camera name.
        image_size: ``(W, H)`` pixels.
        K: ``(3, 3)`` camera matrix, pixels.
        dist: ``(5,)`` ``k1 k2 p1 p2 k3`` (k3 = 0).
        rms: reprojection RMS over the views used, pixels.
        view_errors: ``(V,)`` RMS per view found (NaN for views rejected before the final solve), pixels.
        used: ``(V,)`` bool, the views the final solve used.
        sources: ``(V,)`` where each view came from.
        coverage: fraction of the frame (a 16 × 16 grid) that the used views' boards cover.
        principal_point_std: ``(2,)`` one-sigma uncertainty of ``cx, cy``, pixels.
        focal_std: ``(2,)`` one-sigma uncertainty of ``fx, fy``, pixels.
        warnings: what a user should know (low coverage, few views).
    """

    camera: str
    image_size: tuple[int, int]
    K: np.ndarray
    dist: np.ndarray
    rms: float
    view_errors: np.ndarray
    used: np.ndarray
    sources: tuple[str, ...]
    coverage: float
    principal_point_std: np.ndarray
    focal_std: np.ndarray
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """The report row (JSON-ready)."""
        return {
            "camera": self.camera,
            "image_size": list(self.image_size),
            "rms_px": round(self.rms, 4),
            "views_used": int(self.used.sum()),
            "views_found": int(self.used.size),
            "rejected": [s for s, u in zip(self.sources, self.used, strict=True) if not u],
            "coverage": round(self.coverage, 3),
            "fx": float(self.K[0, 0]),
            "fy": float(self.K[1, 1]),
            "cx": float(self.K[0, 2]),
            "cy": float(self.K[1, 2]),
            "principal_point_std_px": [round(float(v), 2) for v in self.principal_point_std],
            "focal_std_px": [round(float(v), 2) for v in self.focal_std],
            "dist": [float(v) for v in self.dist],
            "warnings": list(self.warnings),
        }


def natural_key(path: Path) -> tuple[object, ...]:
    """Sort key that puts ``view2.png`` before ``view10.png``."""
    return tuple(int(p) if p.isdigit() else p for p in _DIGITS.split(path.name))


def find_views(
    camera: str, source: str | Path, board: BoardSpec, max_views: int = 30, candidates: int = 120
) -> CameraViews:
    """The board views of one camera from a folder of images or a video file.

    A video is searched at ``candidates`` evenly spaced frames; among the views found the sharpest are
    kept (blur below a third of the median sharpness is dropped), then picked greedily for the frame area
    they add, up to ``max_views``. Every image of a folder is searched and kept.

    Raises:
        IntrinsicsError: the source is missing or unreadable, or holds no image.
    """
    path = Path(source)
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
        if not files:
            raise IntrinsicsError(f"camera {camera}: {path} holds no image ({', '.join(IMAGE_SUFFIXES)})")
        views, sources, size = [], [], None
        for f in files:
            image = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise IntrinsicsError(f"camera {camera}: {f} is not an image OpenCV can read")
            if size is not None and size != (image.shape[1], image.shape[0]):
                raise IntrinsicsError(
                    f"camera {camera}: {f.name} is {image.shape[1]}x{image.shape[0]}, the "
                    f"others {size[0]}x{size[1]}; give one camera's images per folder"
                )
            size = (image.shape[1], image.shape[0])
            view = detect_board(image, board)
            if view is not None:
                views.append(view)
                sources.append(f.name)
        assert size is not None
        return CameraViews(camera, size, tuple(views), tuple(sources), len(files))
    if not path.is_file():
        raise IntrinsicsError(f"camera {camera}: {path} is neither an image folder nor a video file")
    return _video_views(camera, path, board, max_views, candidates)


def _video_views(camera: str, path: Path, board: BoardSpec, max_views: int, candidates: int) -> CameraViews:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise IntrinsicsError(f"camera {camera}: OpenCV cannot open {path} as a video")
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        picks = set(np.linspace(0, max(count - 1, 0), min(candidates, max(count, 1))).round().astype(int))
        found: list[tuple[int, BoardView]] = []
        looked = 0
        for i in range(count):
            if not cap.grab():
                break
            if i not in picks:
                continue
            ok, frame = cap.retrieve()
            if not ok:
                continue
            looked += 1
            view = detect_board(frame, board)
            if view is not None:
                found.append((i, view))
    finally:
        cap.release()
    if looked == 0:
        raise IntrinsicsError(f"camera {camera}: no frame could be read from {path}")
    chosen = select_views([v for _, v in found], size, max_views)
    return CameraViews(
        camera,
        size,
        tuple(found[i][1] for i in chosen),
        tuple(f"frame {found[i][0]}" for i in chosen),
        looked,
    )


def _cells(view: BoardView, size: tuple[int, int], grid: int = COVERAGE_GRID) -> np.ndarray:
    """``(grid, grid)`` bool: the cells that the view's board hull covers."""
    mask = np.zeros((grid, grid), np.uint8)
    hull = cv2.convexHull((view.pixels * [grid / size[0], grid / size[1]]).astype(np.float32))
    cv2.fillConvexPoly(mask, np.round(hull * 16).astype(np.int32), 1, shift=4)
    return mask.astype(bool)


def coverage(views: list[BoardView] | tuple[BoardView, ...], size: tuple[int, int]) -> float:
    """Fraction of the ``(W, H)`` frame (16 × 16 cells) inside at least one view's board hull."""
    if not views:
        return 0.0
    return float(np.logical_or.reduce([_cells(v, size) for v in views]).mean())


def select_views(views: list[BoardView], size: tuple[int, int], max_views: int) -> list[int]:
    """Indices of up to ``max_views`` views: sharp ones (≥ a third of the median sharpness), picked
    greedily for new frame area, then the sharpest of the rest."""
    if not views:
        return []
    sharp = np.array([v.sharpness for v in views])
    keep = [i for i in np.argsort(-sharp) if sharp[i] >= np.median(sharp) / 3]
    covered = np.zeros((COVERAGE_GRID, COVERAGE_GRID), bool)
    chosen: list[int] = []
    cells = {i: _cells(views[i], size) for i in keep}
    while len(chosen) < max_views and keep:
        gains = [int((cells[i] & ~covered).sum()) for i in keep]
        best = keep[int(np.argmax(gains))] if max(gains) > 0 else keep[0]
        chosen.append(best)
        covered |= cells[best]
        keep.remove(best)
    return sorted(chosen)


def _solve(
    views: list[BoardView], board: BoardSpec, size: tuple[int, int]
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    objects = [board.object_points()[v.ids].astype(np.float32) for v in views]
    images = [v.pixels.astype(np.float32).reshape(-1, 1, 2) for v in views]
    flags = cv2.CALIB_FIX_K3
    rms, K, dist, _, _, std, _, errors = cv2.calibrateCameraExtended(  # type: ignore[call-overload]
        objects,
        images,
        size,
        None,
        None,
        flags=flags,
        criteria=(cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-9),
    )
    return float(rms), K, dist.ravel()[:5], np.asarray(std).ravel(), np.asarray(errors).ravel()


def calibrate_intrinsics(
    views: CameraViews, board: BoardSpec, reject_factor: float = REJECT_FACTOR
) -> IntrinsicsResult:
    """Calibrate one camera, dropping views whose RMS exceeds ``reject_factor`` × the median, repeatedly.

    Raises:
        IntrinsicsError: fewer than 4 views with the board (naming the camera and how many were found).
    """
    n = len(views.views)
    if n < MIN_VIEWS:
        raise IntrinsicsError(
            f"camera {views.camera}: the board {board} was found in {n} of {views.looked_at} images; "
            f"at least {MIN_VIEWS} are needed (check the board spec — inner corners for a checkerboard — "
            "and show the board whole, at several angles)"
        )
    used = np.ones(n, bool)
    while True:
        idx = np.flatnonzero(used)
        rms, K, dist, std, errors = _solve([views.views[i] for i in idx], board, views.image_size)
        bad = errors > reject_factor * np.median(errors)
        if not bad.any() or used.sum() - bad.sum() < MIN_VIEWS:
            break
        used[idx[bad]] = False
        log.info(
            "camera %s: rejected %s (RMS %s px > %.1f × median)",
            views.camera,
            ", ".join(views.sources[i] for i in idx[bad]),
            np.round(errors[bad], 2),
            reject_factor,
        )
    view_errors = np.full(n, np.nan)
    view_errors[idx] = errors
    cover = coverage([views.views[i] for i in idx], views.image_size)
    warnings = []
    if cover < COVERAGE_WARNING:
        warnings.append(
            f"camera {views.camera}: the board covered {100 * cover:.0f} % of the frame (below "
            f"{100 * COVERAGE_WARNING:.0f} %): the principal point and distortion are weakly "
            "constrained; show the board near the edges and corners too"
        )
    if used.sum() < 8:
        warnings.append(
            f"camera {views.camera}: only {int(used.sum())} views used; 10–20 at varied angles "
            "give steadier intrinsics"
        )
    return IntrinsicsResult(
        views.camera,
        views.image_size,
        K,
        dist,
        rms,
        view_errors,
        used,
        views.sources,
        cover,
        std[2:4],
        std[0:2],
        warnings,
    )
