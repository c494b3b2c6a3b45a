"""The viewer against the whole service, really started (supervisor, synthetic grabbers, sync, inference
with the simulated backend, solver, API): skeletons drawn, one panel per camera with live previews."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from viewer_browser import Browser

from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.service import make_supervisor
from crosspose.runtime.supervisor import Supervisor

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture
def live(tmp_path: Path, browser: Browser) -> Iterator[tuple[str, list[str]]]:
    config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=3, fps=15.0, frames=90)
    port_file = tmp_path / "port"
    sup: Supervisor = make_supervisor(config, str(port_file))
    thread = threading.Thread(target=sup.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            assert time.monotonic() < deadline, "the API never reported its port"
            time.sleep(0.1)
        base = f"http://127.0.0.1:{int(port_file.read_text())}"
        while (ready := httpx.get(f"{base}/api/v1/ready")).status_code != 200:
            assert time.monotonic() < deadline, f"service not ready: {ready.text}"
            time.sleep(0.5)
        yield base, [c.name for c in config.cameras]
        browser.call("Page.navigate", url="about:blank")
    finally:
        sup.request_stop()
        thread.join(60)


def test_viewer_follows_the_live_service(live: tuple[str, list[str]], browser: Browser) -> None:
    base, cameras = live
    browser.open(base)
    browser.wait_for("window.crosspose.stats.received >= 10", timeout_s=30)
    names = browser.wait_for(
        "(() => { const n = [...document.querySelectorAll('.cam')].map(e => e.dataset.camera);"
        f" return n.length === {len(cameras)} && n; }})()"
    )
    assert names == cameras
    assert browser.evaluate("[...document.querySelectorAll('.cam')].map(e => e.dataset.state)") == [
        "up"
    ] * len(cameras)
    # the inference stage's previews reach every panel, with the reprojected pose once one is solved
    browser.wait_for("[...window.crosspose.panels.panels.values()].every(p => p.seq !== null)", 30)
    meta = httpx.get(f"{base}/api/v1/cameras/{cameras[0]}/preview").json()
    assert meta["width"] > 0
    assert meta["scale"] > 0
    # the skeleton the page holds is drawn on screen: pixels at its projected joints are not background
    browser.evaluate("document.getElementById('pause').click()")  # hold this one skeleton
    browser.frames()
    shot = browser.screenshot()
    points = browser.evaluate(
        "window.crosspose.scene.skeleton.joints.filter(j => j[0] !== null)"
        ".map(j => window.crosspose.scene.projectToPage(j)).filter(p => p !== null)"
    )
    assert len(points) >= 12
    background = shot[int(points[0][1]) - 200 : int(points[0][1]) - 190, 5:15].reshape(-1, 3).astype(int)
    assert background.std(axis=0).max() < 2  # a flat patch of the 3D view's background
    differs = [
        abs(shot[round(y), round(x)].astype(int) - background.mean(axis=0)).max() > 30 for x, y in points
    ]
    assert sum(differs) >= 0.7 * len(points)
    assert browser.evaluate("document.getElementById('st-ready').textContent") == "ready"
