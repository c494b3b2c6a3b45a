"""Calibration boards: the ``--board`` spec, their corners in the board's own frame, detection in images,
and the printable board (PNG at a given DPI, PDF at true scale).

Two kinds: ``checkerboard:COLSxROWS:SQUARE`` (inner corners, square side in metres) and
``charuco:COLSxROWS:SQUARE:MARKER[:DICT]`` (squares, square and marker sides in metres, an OpenCV aruco
dictionary such as ``DICT_5X5_100``, the default). The board frame: corner 0 at the origin, x along a
row (COLS), y along a column (ROWS), z = 0 on the board, metres.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEFAULT_DICTIONARY = "DICT_5X5_100"
#: Corners further than this (× the corner spacing, RMS) from a flat grid are not a detection.
MAX_GRID_RESIDUAL = 0.1
_SIZE = re.compile(r"^(\d+)[xX](\d+)$")


class BoardError(ValueError):
    """A board spec that cannot be used (the message says which part and why)."""


@dataclass(frozen=True)
class BoardSpec:
    """A calibration board.

    Attributes:
        kind: ``checkerboard`` or ``charuco``.
        cols: inner corners along a row (checkerboard) or squares along a row (ChArUco).
        rows: inner corners along a column (checkerboard) or squares along a column (ChArUco).
        square: square side, metres.
        marker: ChArUco marker side, metres (0 for a checkerboard).
        dictionary: OpenCV aruco dictionary name (ChArUco only).
    """

    kind: str
    cols: int
    rows: int
    square: float
    marker: float = 0.0
    dictionary: str = DEFAULT_DICTIONARY

    def __str__(self) -> str:
        if self.kind == "checkerboard":
            return f"checkerboard:{self.cols}x{self.rows}:{self.square:g}"
        return f"charuco:{self.cols}x{self.rows}:{self.square:g}:{self.marker:g}:{self.dictionary}"

    @property
    def corner_grid(self) -> tuple[int, int]:
        """``(cols, rows)`` of inner corners."""
        if self.kind == "checkerboard":
            return self.cols, self.rows
        return self.cols - 1, self.rows - 1

    @property
    def num_corners(self) -> int:
        c, r = self.corner_grid
        return c * r

    def object_points(self) -> np.ndarray:
        """``(K, 3)`` metres: every inner corner in the board frame, row-major (corner id order)."""
        c, r = self.corner_grid
        xs, ys = np.meshgrid(np.arange(c), np.arange(r))
        if self.kind == "charuco":
            return np.asarray(_charuco(self).getChessboardCorners(), float).reshape(-1, 3)
        return np.stack([xs.ravel(), ys.ravel(), np.zeros(c * r)], -1) * self.square

    @property
    def outer_size(self) -> tuple[float, float]:
        """``(width, height)`` metres of the printed squares."""
        if self.kind == "checkerboard":
            return (self.cols + 1) * self.square, (self.rows + 1) * self.square
        return self.cols * self.square, self.rows * self.square


def parse_board(spec: str) -> BoardSpec:
    """``checkerboard:4x7:0.06`` or ``charuco:7x5:0.04:0.03[:DICT_5X5_100]`` → :class:`BoardSpec`.

    Raises:
        BoardError: naming the part that is wrong and the expected form.
    """
    parts = spec.strip().split(":")
    kind = parts[0].lower()
    forms = {
        "checkerboard": "checkerboard:COLSxROWS:SQUARE_M (inner corners)",
        "charuco": "charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICT] (squares)",
    }
    if kind not in forms:
        raise BoardError(f"board {spec!r}: unknown kind {parts[0]!r}; use {' or '.join(forms.values())}")
    want = (3,) if kind == "checkerboard" else (4, 5)
    if len(parts) not in want:
        raise BoardError(f"board {spec!r}: expected {forms[kind]}")
    size = _SIZE.match(parts[1])
    if size is None:
        raise BoardError(f"board {spec!r}: size {parts[1]!r} is not COLSxROWS (e.g. 4x7)")
    cols, rows = int(size[1]), int(size[2])
    try:
        lengths = [float(p) for p in parts[2:4]]
    except ValueError:
        raise BoardError(f"board {spec!r}: square and marker sides must be numbers in metres") from None
    if any(not np.isfinite(v) or v <= 0 or v > 1.0 for v in lengths):
        raise BoardError(f"board {spec!r}: sides must be in metres, in (0, 1] (e.g. 0.06 for 60 mm)")
    least = 2 if kind == "checkerboard" else 3
    if min(cols, rows) < least:
        raise BoardError(
            f"board {spec!r}: needs at least {least}x{least} "
            f"{'inner corners' if kind == 'checkerboard' else 'squares'}"
        )
    if kind == "checkerboard":
        return BoardSpec(kind, cols, rows, lengths[0])
    if lengths[1] >= lengths[0]:
        raise BoardError(f"board {spec!r}: the marker ({lengths[1]:g} m) must be smaller than the square")
    dictionary = parts[4].upper() if len(parts) == 5 else DEFAULT_DICTIONARY
    board = BoardSpec(kind, cols, rows, lengths[0], lengths[1], dictionary)
    _charuco(board)  # checks the dictionary and its size
    return board


def _charuco(board: BoardSpec) -> cv2.aruco.CharucoBoard:
    code = getattr(cv2.aruco, board.dictionary, None)
    if not board.dictionary.startswith("DICT_") or code is None:
        known = ", ".join(n for n in dir(cv2.aruco) if n.startswith("DICT_") and "APRILTAG" not in n)
        raise BoardError(f"board {board}: unknown aruco dictionary {board.dictionary!r}; known: {known}")
    dictionary = cv2.aruco.getPredefinedDictionary(code)
    needed = (board.cols * board.rows) // 2
    if needed > dictionary.bytesList.shape[0]:
        raise BoardError(
            f"board {board}: {needed} markers do not fit {board.dictionary} "
            f"({dictionary.bytesList.shape[0]} markers)"
        )
    return cv2.aruco.CharucoBoard((board.cols, board.rows), board.square, board.marker, dictionary)


# -- detection -----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BoardView:
    """The board's corners found in one image.

    Attributes:
        ids: ``(K,)`` corner ids (rows of :meth:`BoardSpec.object_points`).
        pixels: ``(K, 2)`` sub-pixel image coordinates.
        sharpness: variance of the Laplacian inside the board's bounding box (higher: sharper).
    """

    ids: np.ndarray
    pixels: np.ndarray
    sharpness: float


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _sharpness(gray: np.ndarray, pixels: np.ndarray) -> float:
    x0, y0 = np.floor(pixels.min(0)).astype(int)
    x1, y1 = np.ceil(pixels.max(0)).astype(int) + 1
    roi = gray[max(y0, 0) : y1, max(x0, 0) : x1]
    return float(cv2.Laplacian(roi, cv2.CV_64F).var()) if roi.size else 0.0


def _grid_residual(pixels: np.ndarray, board: BoardSpec) -> float:
    """RMS distance of the corners from the best homography of the flat grid, in units of the median
    corner spacing: a few hundredths for a real board (lens distortion), tenths for a mislabelled lattice."""
    grid = board.object_points()[:, :2].astype(np.float32)
    H, _ = cv2.findHomography(grid, pixels.astype(np.float32), 0)
    if H is None:
        return float("inf")
    fitted = cv2.perspectiveTransform(grid[None], H)[0]
    cols, rows = board.corner_grid
    spacing = np.median(np.linalg.norm(np.diff(pixels.reshape(rows, cols, 2), axis=1), axis=-1))
    return float(np.sqrt(((fitted - pixels) ** 2).sum(1).mean()) / max(spacing, 1e-9))


def _sector_detector(gray: np.ndarray, board: BoardSpec) -> np.ndarray | None:
    found, corners = cv2.findChessboardCornersSB(
        gray,
        board.corner_grid,
        flags=cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY,
    )
    if not found or _grid_residual(corners.reshape(-1, 2), board) >= MAX_GRID_RESIDUAL:
        return None
    return corners.reshape(-1, 2).astype(float)


#: Frames larger than this (pixels, longer side) are first looked at for a board cheaply, at half size
#: (:func:`_find_checkerboard`).
SECTOR_SEARCH_MAX_SIDE = 1280
#: The classic detector with adaptive thresholds: when its histogram threshold finds nothing it tries 6
#: adaptive ones × 8 dilations (~0.3 s on a full HD frame without a board, ~0.1 s at half size).
ADAPTIVE_FLAGS = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
#: The classic detector with its histogram threshold and one global threshold only (~0.05 s, full HD).
GLOBAL_FLAGS = 0


def _classic_detector(gray: np.ndarray, board: BoardSpec, flags: int) -> np.ndarray | None:
    """``(K, 2)`` rough corners (pixels of ``gray``, the detector's order) from ``cv2.findChessboardCorners``
    with ``flags``, or None. ``CALIB_CB_FAST_CHECK`` is not used: on the Pose2Sim studio's frames it turns
    away slanted and dim boards that the detector finds, and on full HD frames without a board it saves
    nothing (it lets them all through)."""
    found, corners = cv2.findChessboardCorners(gray, board.corner_grid, flags=flags)
    return corners.reshape(-1, 2).astype(float) if found else None


def _to_full_size(half: np.ndarray | None) -> np.ndarray | None:
    """Half-size pixels → full-size pixels (pixel centres at integers: ``x_full = 2 x_half + 0.5``)."""
    return None if half is None else 2.0 * half + 0.5


def _find_checkerboard(gray: np.ndarray, board: BoardSpec) -> np.ndarray | None:
    """``(K, 2)`` corners in ``gray`` ``(H, W)``, pixels, or None.

    The classic detector (adaptive thresholds) finds the board quickly; OpenCV's sector-based detector then
    places the corners (it is the more accurate: ~0.15 px calibration RMS against ~0.2 px with
    ``cornerSubPix`` on the Pose2Sim studio images) inside the board's box only, as on the whole frame it
    takes seconds (:func:`_place_corners`). When the classic detector finds nothing, the sector detector
    searches the frame.

    A frame larger than :data:`SECTOR_SEARCH_MAX_SIDE` (a live calibration session samples many without a
    board in view, and must not spend a second on each) is first looked at cheaply: the classic detector
    with adaptive thresholds at half size (most boards; ~0.1 s without one), else with its global thresholds
    only at full size (small boards, whose squares are too small at half size; ~0.05 s). Only where one of
    them sees a board does the classic detector with adaptive thresholds run at full size (~0.3 s without a
    board, tens of milliseconds with one), so that the board's box, and so the corners, are those it has
    always given. Then, as before, the sector detector searches the frame at half size and a board it
    finds is placed at full size; last, the rough corners of the cheap look, where it saw a board. On the
    Pose2Sim studio's board images and their blurred, shrunk, slanted, turned and dimmed copies, this finds
    every board that the full-size classic detector then the half-size sector search found
    (``benchmarks/board_detection.py``).
    """
    if max(gray.shape) <= SECTOR_SEARCH_MAX_SIDE:
        rough = _classic_detector(gray, board, ADAPTIVE_FLAGS)
        return _sector_detector(gray, board) if rough is None else _place_corners(gray, rough, board)
    small = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    seen = _to_full_size(_classic_detector(small, board, ADAPTIVE_FLAGS))
    if seen is None:
        seen = _classic_detector(gray, board, GLOBAL_FLAGS)
    searches: list[Callable[[], np.ndarray | None]] = [lambda: _to_full_size(_sector_detector(small, board))]
    if seen is not None:
        searches = [lambda: _classic_detector(gray, board, ADAPTIVE_FLAGS), *searches, lambda: seen]
    for search in searches:
        rough = search()
        placed = None if rough is None else _place_corners(gray, rough, board)
        if placed is not None:
            return placed
    return None


def _place_corners(gray: np.ndarray, rough: np.ndarray, board: BoardSpec) -> np.ndarray | None:
    """Accurate corners from ``rough`` ones (``(K, 2)`` pixels, in the detector's order): the sector
    detector inside the board's box, else ``cornerSubPix``; None when neither gives a flat grid."""
    cols, rows = board.corner_grid
    spacing = float(np.median(np.linalg.norm(np.diff(rough.reshape(rows, cols, 2), axis=1), axis=-1)))
    x0, y0 = np.maximum(np.floor(rough.min(0) - 2 * spacing), 0).astype(int)
    x1, y1 = np.ceil(rough.max(0) + 2 * spacing).astype(int)
    sector = _sector_detector(gray[y0:y1, x0:x1], board)
    if sector is not None:
        sector += (x0, y0)
        # Either detector may start from another corner: put the sector corners in the rough ones' order.
        nearest = np.linalg.norm(sector[:, None] - rough[None], axis=-1).argmin(0)
        if len(set(nearest.tolist())) == len(rough):
            return sector[nearest]
    half = int(np.clip(spacing / 10, 3, 15))
    refined = cv2.cornerSubPix(
        gray,
        rough.astype(np.float32).reshape(-1, 1, 2),
        (half, half),
        (-1, -1),
        (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3),
    )
    pixels = refined.reshape(-1, 2).astype(float)
    return pixels if _grid_residual(pixels, board) < MAX_GRID_RESIDUAL else None


def _outer_square_is_dark(
    gray: np.ndarray, corner: np.ndarray, along: np.ndarray, across: np.ndarray
) -> bool | None:
    """Whether the outer square diagonally beyond an end ``corner`` of the grid is darker than the outer
    square beside it; None when either is not inside ``gray``. ``along``, ``across``: ``(2,)`` pixels from
    ``corner`` to its neighbours in its row and in its column."""

    def value(point: np.ndarray) -> float | None:
        x, y = np.round(point).astype(int)
        r = max(2, int(0.15 * min(np.linalg.norm(along), np.linalg.norm(across))))
        if not (r <= x < gray.shape[1] - r and r <= y < gray.shape[0] - r):
            return None
        return float(gray[y - r : y + r + 1, x - r : x + r + 1].mean())

    outside = value(corner - 0.5 * along - 0.5 * across)
    beside = value(corner + 0.5 * along - 0.5 * across)
    return None if outside is None or beside is None else outside < beside


def _black_corner_first(gray: np.ndarray, pixels: np.ndarray, cols: int) -> np.ndarray:
    """Corners ordered so that corner 0 touches the black outer corner square (as printed by
    :func:`board_rectangles`): OpenCV may return a checkerboard either way round, and cameras that see the
    same board together must agree on which corner is which. When the square beyond corner 0 is cut off by
    the frame's edge, the one beyond the last corner decides (where the two differ in colour). A board whose
    outer corners have the same colour (both inner-corner counts even or both odd), or whose ends are both
    cut off, stays as OpenCV returned it."""
    first = _outer_square_is_dark(gray, pixels[0], pixels[1] - pixels[0], pixels[cols] - pixels[0])
    if first is not None:
        return pixels if first else pixels[::-1].copy()
    rows = len(pixels) // cols
    if (cols + rows) % 2 == 1:
        end = pixels[-1]
        if _outer_square_is_dark(gray, end, pixels[-2] - end, pixels[-1 - cols] - end):
            return pixels[::-1].copy()
    return pixels


def detect_board(image: np.ndarray, board: BoardSpec, min_corners: int = 6) -> BoardView | None:
    """The board in one BGR or gray ``(H, W[, 3])`` uint8 image, or None when it is not found.

    A checkerboard must be seen whole (OpenCV's sector-based detector, then ``cornerSubPix``); a
    ChArUco board may be partly hidden (at least ``min_corners`` corners).
    """
    gray = _gray(image)
    if board.kind == "checkerboard":
        pixels = _find_checkerboard(gray, board)
        if pixels is None:
            return None
        pixels = _black_corner_first(gray, pixels, board.cols)
        return BoardView(np.arange(board.num_corners), pixels, _sharpness(gray, pixels))
    detector = cv2.aruco.CharucoDetector(_charuco(board))
    corners, ids, _, _ = detector.detectBoard(gray)
    if ids is None or len(ids) < min_corners:
        return None
    pixels = corners.reshape(-1, 2).astype(float)
    return BoardView(ids.ravel().astype(int), pixels, _sharpness(gray, pixels))


# -- printing ------------------------------------------------------------------------------------------


def board_rectangles(board: BoardSpec, margin: float = 0.01) -> tuple[np.ndarray, tuple[float, float]]:
    """The board's black areas as ``(M, 4)`` rectangles ``[x, y, w, h]`` in metres from the page's top-left,
    and the page ``(width, height)`` in metres (squares plus ``margin`` on every side).

    The top-left square is black; ChArUco markers sit in the white squares (OpenCV's current pattern).
    """
    rects: list[tuple[float, float, float, float]] = []
    s = board.square
    ncols, nrows = (
        (board.cols + 1, board.rows + 1) if board.kind == "checkerboard" else (board.cols, board.rows)
    )
    for r in range(nrows):
        for c in range(ncols):
            if (r + c) % 2 == 0:
                rects.append((c * s, r * s, s, s))
    if board.kind == "charuco":
        cb = _charuco(board)
        bits = cb.getDictionary().markerSize
        for marker_id, corners in zip(np.asarray(cb.getIds()).ravel(), cb.getObjPoints(), strict=True):
            cells = cb.getDictionary().generateImageMarker(int(marker_id), bits + 2)  # border cells included
            x0, y0 = np.asarray(corners)[0, :2]
            cell = board.marker / (bits + 2)
            for i, j in zip(*np.nonzero(cells == 0), strict=True):
                rects.append((x0 + j * cell, y0 + i * cell, cell, cell))
    out = np.asarray(rects, float)
    out[:, :2] += margin
    w, h = board.outer_size
    return out, (w + 2 * margin, h + 2 * margin)


def render_board(board: BoardSpec, dpi: float = 300.0, margin: float = 0.01) -> np.ndarray:
    """``(H, W)`` uint8 image of the board at ``dpi`` (white page, black squares and marker cells)."""
    rects, (w, h) = board_rectangles(board, margin)
    px = dpi / 0.0254
    image = np.full((round(h * px), round(w * px)), 255, np.uint8)
    for x, y, rw, rh in rects * px:
        image[round(y) : round(y + rh), round(x) : round(x + rw)] = 0
    return image


def board_pdf(board: BoardSpec, margin: float = 0.01) -> bytes:
    """A one-page vector PDF of the board at true scale (1 pt = 1/72 inch; print at 100 %, no fitting)."""
    rects, (w, h) = board_rectangles(board, margin)
    pt = 72 / 0.0254
    ops = ["0 g"] + [
        f"{x * pt:.3f} {(h - y - rh) * pt:.3f} {rw * pt:.3f} {rh * pt:.3f} re f" for x, y, rw, rh in rects
    ]
    content = zlib.compress("\n".join(ops).encode())
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w * pt:.3f} {h * pt:.3f}] /Contents 4 0 R "
        f"/Resources << >> >>".encode(),
        f"<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode() + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def save_board(board: BoardSpec, path: str | Path, dpi: float = 300.0) -> Path:
    """Write the printable board: ``.pdf`` (vector, true scale) or ``.png`` (``dpi``, stored in the file)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".pdf":
        p.write_bytes(board_pdf(board))
    elif suffix == ".png":
        ok, data = cv2.imencode(".png", render_board(board, dpi))
        if not ok:
            raise BoardError(f"{p}: OpenCV could not encode the board as PNG")
        p.write_bytes(_png_with_dpi(data.tobytes(), dpi))
    else:
        raise BoardError(f"{p.name}: write the board as .pdf (true scale) or .png")
    return p


def _png_with_dpi(png: bytes, dpi: float) -> bytes:
    """Insert a pHYs chunk (pixels per metre) after IHDR so that viewers print at the right size."""
    import struct

    ppm = round(dpi / 0.0254)
    body = b"pHYs" + struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body))
    end_ihdr = 8 + 4 + 4 + 13 + 4
    return png[:end_ihdr] + chunk + png[end_ihdr:]
