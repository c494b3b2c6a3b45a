"""The viewer's live-calibration panel in headless Chromium against a real server: start a board session,
the per-camera table and the pairs fill up, the buttons follow the phase, discard leaves the calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest
from viewer_browser import Browser
from viewer_service import CAMERAS, TOKEN, FedService

from board_photos import photograph_board
from crosspose.calibration.boards import parse_board

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

BOARD = "checkerboard:5x7:0.04"


class SameBoardFeed:
    """Every camera sees the same photo of a board, ``count`` frame sets long."""

    def __init__(self, count: int) -> None:
        board = parse_board(BOARD)
        K = np.array([[800.0, 0, 320], [0, 800.0, 240], [0, 0, 1]])
        gray = photograph_board(board, K, np.eye(3), np.array([-0.12, -0.1, 1.0]), (640, 480))
        self.image = np.repeat(gray[..., None], 3, axis=-1)
        self.left = count

    def next(self, timeout_s: float) -> list[np.ndarray | None] | None:
        if self.left == 0:
            return None
        self.left -= 1
        return [self.image] * len(CAMERAS)

    def close(self) -> None:
        self.left = 0


def _buttons(browser: Browser) -> dict[str, bool]:
    ids = ["calib-begin", "calib-stop", "calib-solve", "calib-apply", "calib-discard"]
    enabled = browser.evaluate(f"{json.dumps(ids)}.map(i => !document.getElementById(i).disabled)")
    return dict(zip(ids, enabled, strict=True))


def test_panel_starts_shows_progress_and_discards(service: FedService, browser: Browser) -> None:
    service.state.calibration_feed = lambda names: SameBoardFeed(3)
    before = service.state.calibration.active()
    browser.open(service.base_url)
    browser.wait_for("document.body.dataset.calibPhase === 'none'")
    assert _buttons(browser) == {"calib-begin": True, "calib-stop": False, "calib-solve": False,
                                 "calib-apply": False, "calib-discard": False}
    browser.evaluate(
        f"(() => {{ document.getElementById('upload-token').value = {json.dumps(TOKEN)};"
        f" document.getElementById('calib-board').value = {json.dumps(BOARD)};"
        " document.getElementById('calib-begin').click(); return 1; })()"
    )
    full = f"{3 * 35}"
    browser.wait_for("[...document.querySelectorAll('#calib-table tbody tr')]"
                     f".some(r => r.cells[1].textContent === '{full}')", timeout_s=30)
    assert browser.evaluate("document.body.dataset.calibPhase") == "collecting"
    assert _buttons(browser) == {"calib-begin": False, "calib-stop": True, "calib-solve": True,
                                 "calib-apply": False, "calib-discard": True}
    browser.evaluate("document.getElementById('calib-stop').click()")
    browser.wait_for("document.body.dataset.calibPhase === 'stopped'")
    rows = browser.evaluate(
        "[...document.querySelectorAll('#calib-table tbody tr')].map(r => [r.dataset.camera,"
        " r.cells[1].textContent, r.cells[2].textContent])"
    )
    assert [r[0] for r in rows] == CAMERAS
    assert all(r[1] == full and r[2] != "0 %" for r in rows), rows
    pairs = browser.evaluate("[...document.querySelectorAll('#calib-pairs li')].map(l => l.textContent)")
    assert len(pairs) == 6
    assert all(p.endswith(f"{full} shared") for p in pairs)
    assert _buttons(browser) == {"calib-begin": False, "calib-stop": False, "calib-solve": True,
                                 "calib-apply": False, "calib-discard": True}
    browser.evaluate("document.getElementById('calib-discard').click()")
    browser.wait_for("document.body.dataset.calibPhase === 'none'")
    assert "discarded" in browser.evaluate("document.getElementById('calib-status').textContent")
    assert service.state.calibration_session is None
    after = service.state.calibration.active()
    assert before is not None
    assert after is not None
    assert (after.version, after.sha256) == (before.version, before.sha256)
