"""Live calibration on the whole service, really started: the session samples the running synthetic cameras
through sync's frame-set tap while the skeleton stream keeps flowing; a discard leaves the calibration."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from live_service import TOKEN, receive, start_service

pytestmark = pytest.mark.timeout(300)

SESSION = "/api/v1/calibration/session"


def test_a_session_samples_the_running_cameras_and_the_stream_keeps_flowing(tmp_path: Path) -> None:
    running = start_service(tmp_path, cameras=2)
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=running.base, headers=auth, timeout=30) as c:
            before = c.get("/api/v1/calibration").json()
            r = c.post(SESSION, json={"method": "board", "board": "checkerboard:4x7:0.06", "rate_hz": 5})
            assert r.status_code == 201, r.text
            deadline = time.monotonic() + 60
            while (status := c.get(SESSION).json())["sampled"] < 3:
                assert time.monotonic() < deadline, status
                time.sleep(0.2)
            # The synthetic studio shows no board: frame sets arrive, no sighting is kept.
            assert status["error"] is None
            assert status["frame_sets"] == 0
            assert len(receive(running.base, 5, timeout=30)) == 5  # skeletons keep coming meanwhile
            assert c.delete(SESSION).status_code == 200
            after = c.get("/api/v1/calibration").json()
            assert (after["version"], after["sha256"]) == (before["version"], before["sha256"])
    finally:
        running.stop()
