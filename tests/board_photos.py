"""Photographs of a printed calibration board, rendered exactly (calibration and live-calibration tests)."""

from __future__ import annotations

import cv2
import numpy as np

from crosspose.calibration.boards import BoardSpec


def photograph_board(board: BoardSpec, K: np.ndarray, R: np.ndarray, t: np.ndarray, size: tuple[int, int],
                     dpi: float = 150.0, background: int = 255) -> np.ndarray:
    """A distortion-free gray ``(H, W)`` photo of the printed ``board`` posed ``x_cam = R X_board + t``."""
    from crosspose.calibration.boards import render_board

    page = cv2.GaussianBlur(render_board(board, dpi), (0, 0), 1.5)  # no aliasing when shrunk
    px = dpi / 0.0254
    offset = 0.01 + (board.square if board.kind == "checkerboard" else 0.0)  # board frame origin on the page
    page_to_board = np.array([[1 / px, 0, -offset + 0.5 / px], [0, 1 / px, -offset + 0.5 / px], [0, 0, 1]])
    H = K @ np.column_stack([R[:, 0], R[:, 1], t]) @ page_to_board
    return cv2.warpPerspective(page, H, size, flags=cv2.INTER_LINEAR, borderValue=background)
