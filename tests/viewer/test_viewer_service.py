"""The viewer against the whole service, really started (supervisor, synthetic grabbers, sync, inference
with the simulated backend, solver, API): skeletons drawn, one panel per camera with live previews, and
the status bar's rate and latency and the panels' frame ages as a websocket client measures them."""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from viewer_browser import Browser
from websockets.sync.client import connect

from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.service import make_supervisor
from crosspose.runtime.supervisor import Supervisor

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[tuple[str, list[str]]]:
    """One service for the module's tests (it takes seconds to start): its URL and camera names."""
    tmp_path = tmp_path_factory.mktemp("live")
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
        browser.call("Page.navigate", url="about:blank")  # nothing polls the service while it stops
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


def number(text: str) -> float:
    """A figure the page shows; it must show one (not "–")."""
    assert re.fullmatch(r"\d+(\.\d+)?", text), f"the page shows {text!r} where a number belongs"
    return float(text)


SAMPLE = (
    "[document.getElementById('st-fps').textContent, document.getElementById('lat-total').textContent,"
    " [...document.querySelectorAll('.cam .stats')].map(e => e.textContent)]"
)


def test_status_bar_and_panels_tell_the_real_rate_latency_and_frame_age(
    live: tuple[str, list[str]], browser: Browser
) -> None:
    """Measured before, on the real 4-camera demo in real time: the panels read frame ages of 250-950 ms
    (the age of sync's 1 s heartbeat, a sawtooth) for 60 fps cameras whose frames reached sync within
    3 ms. The page's figures are checked here against a websocket client's own count and clock: a rate
    of 0.5 fps against a 15 fps stream, a missing or stale latency, or a heartbeat's age fails."""
    base, cameras = live
    received: list[tuple[float, float]] = []  # (time.monotonic(), capture -> received here in ms) a skeleton
    stop = threading.Event()

    def count() -> None:
        with connect(base.replace("http", "ws", 1) + "/ws/skeletons?format=json", max_size=None) as ws:
            while not stop.is_set():
                try:
                    raw = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                now_ns = time.monotonic_ns()
                msg = json.loads(raw)
                if msg.get("type") == "skeleton":
                    received.append((now_ns / 1e9, (now_ns - msg["t_capture_ns"]) / 1e6))

    client = threading.Thread(target=count, name="ws-count", daemon=True)
    client.start()
    try:
        browser.open(base)
        browser.wait_for(f"document.querySelectorAll('.cam').length === {len(cameras)}", timeout_s=30)
        time.sleep(2.5)  # a full 2 s rate window behind the page's first figure
        samples = []  # (time read, page fps, page total latency ms, panel frame ages ms)
        end = time.monotonic() + 6.0
        while time.monotonic() < end:
            fps, total, panels = browser.evaluate(SAMPLE)
            ages = [re.search(r"frame age (\S+) ms", text) for text in panels]
            samples.append((time.monotonic(), fps, total, [a.group(1) if a else None for a in ages]))
            time.sleep(0.3)
    finally:
        stop.set()
        client.join(5)

    # The page's rate is what it received in the last 2 s of its 0.5 s updates; the client's count of the
    # same stream over the 2 s ending 0.25 s before each reading is the reference.
    page_fps = [number(fps) for _, fps, _, _ in samples]
    reference = [sum(t - 2.25 < a <= t - 0.25 for a, _ in received) / 2 for t, _, _, _ in samples]
    assert statistics.median(reference) >= 3, f"too slow a stream to compare rates: {reference}"
    errors = [abs(p - r) for p, r in zip(page_fps, reference, strict=True)]
    assert statistics.median(errors) <= max(1.0, 0.15 * statistics.median(reference)), (page_fps, reference)

    # The page's total latency (the service's capture -> published, the mean of its last second) against
    # capture -> received here over the second ending 0.25 s before each reading (it varies under load).
    page_total, measured = [], []
    for t, _, total, _ in samples:
        window = [ms for a, ms in received if t - 1.25 < a <= t - 0.25]
        if window:  # (a second with no skeleton is the rate's failure, above)
            page_total.append(number(total))
            measured.append(statistics.fmean(window))
    errors = [abs(p - m) for p, m in zip(page_total, measured, strict=True)]
    assert len(errors) >= len(samples) // 2, "too few seconds with skeletons to compare latencies"
    assert statistics.median(errors) <= max(30.0, 0.5 * statistics.median(measured)), (page_total, measured)

    # Frame ages: cameras at 15 fps whose frames reach sync at once are tens of ms old, never the
    # heartbeat's 0-1 s (the page polls every 0.5 s, so some reading would be >= 0.5 s).
    ages_ms = [number(a) for _, _, _, ages in samples for a in ages if a is not None]
    assert len(ages_ms) == len(samples) * len(cameras)
    assert max(ages_ms) < 400, sorted(ages_ms)[-10:]
