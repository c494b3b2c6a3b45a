"""The viewer in a real browser (headless Chromium) against a real server fed like the runtime feeds it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from viewer_browser import Browser
from viewer_service import (
    CAMERAS,
    LOW_CONFIDENCE_JOINT,
    PREVIEW_GREY,
    STANDING,
    TOKEN,
    FedService,
    fed_service,
)

from crosspose.skeleton import H36M17

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def patch(image: np.ndarray, xy: list[float], r: int = 1) -> np.ndarray:
    x, y = round(xy[0]), round(xy[1])
    return image[y - r : y + r + 1, x - r : x + r + 1].reshape(-1, 3).astype(int)


def test_page_loads_offline_with_only_its_own_files(service: FedService, browser: Browser) -> None:
    browser.open(service.base_url)
    urls = browser.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert any(u.endswith("/static/js/main.js") for u in urls)
    assert all(u.startswith(service.base_url) for u in urls), urls  # nothing from elsewhere (no CDN)
    assert browser.evaluate("document.title").startswith("crosspose")


def test_skeleton_is_drawn_where_its_joints_project(service: FedService, browser: Browser) -> None:
    browser.open(service.base_url)
    browser.wait_for("window.crosspose.scene.cameras.length === 4")  # frusta from the calibration
    browser.frames()
    empty = browser.screenshot()

    service.publish_skeletons.set()
    browser.wait_for("window.crosspose.stats.received >= 3")
    browser.frames()
    drawn = browser.screenshot()
    points = browser.evaluate(
        f"{json.dumps(STANDING.tolist())}.map(p => window.crosspose.scene.projectToPage(p))"
    )
    assert all(p is not None for p in points)
    changed = [np.abs(patch(drawn, p) - patch(empty, p)).max() > 40 for p in points]
    assert all(changed), [H36M17.joints[i] for i, c in enumerate(changed) if not c]

    # joints are shaded by confidence: the confident head green, the zero-confidence ankle red
    head = patch(drawn, points[H36M17.index("head")], 0)[0]  # BGR
    ankle = patch(drawn, points[LOW_CONFIDENCE_JOINT], 0)[0]
    assert head[1] > head[2] + 60, head
    assert ankle[2] > ankle[1] + 60, ankle

    # away from the skeleton the 3D view is as it was: the differences above are the skeleton's
    xs, ys = zip(*points, strict=True)
    rect = browser.evaluate(
        "(() => { const r = document.getElementById('scene').getBoundingClientRect();"
        " return [r.left, r.top, r.right, r.bottom]; })()"
    )
    left, top = int(rect[0]) + 5, int(rect[1]) + 40
    box = (int(min(xs)) - 20, int(min(ys)) - 20, int(max(xs)) + 20, int(max(ys)) + 20)
    region = np.zeros(drawn.shape[:2], bool)
    region[top : int(rect[3]) - 20, left : int(rect[2]) - 5] = True
    region[max(0, box[1]) : box[3], max(0, box[0]) : box[2]] = False
    diff = np.abs(drawn.astype(int) - empty.astype(int)).max(axis=2)[region]
    assert (diff > 40).mean() < 1e-3  # (anti-aliasing of a redraw varies a few pixels)

    # the status bar shows the stream's rate and per-stage latency, what runs the network and the calibration
    browser.wait_for("document.getElementById('st-runtime').textContent === "
                     "'onnxruntime · CPUExecutionProvider · f32'")
    assert browser.evaluate("document.getElementById('lat-inference').textContent") == "20.0"
    assert browser.evaluate("document.getElementById('lat-total').textContent") == "40.0"
    assert browser.evaluate("document.getElementById('st-calib').textContent") == "v1"
    assert browser.wait_for("Number(document.getElementById('st-fps').textContent)") > 0
    assert browser.wait_for("document.getElementById('st-subs').textContent === '1'")


def test_the_solved_rate_is_right_from_the_first_second_after_the_page_opens(
    service: FedService, browser: Browser
) -> None:
    """The status bar's rate counts the last 2 s of messages: in the first 2 s after the stream opened it
    divides by the time since then (it read half the rate 1 s after opening when it divided by 2 s)."""
    service.publish_skeletons.set()  # ~20 messages a second, before the page opens
    browser.open(service.base_url)
    browser.evaluate(
        "(() => { window.fpsLog = []; const el = document.getElementById('st-fps');"
        " const t0 = performance.now();"  # the page has just started: its stream opens about now
        " new MutationObserver(() => window.fpsLog.push([performance.now() - t0, Number(el.textContent)]))"
        ".observe(el, { childList: true, characterData: true, subtree: true }); return true; })()"
    )
    browser.wait_for("window.fpsLog.some(([t]) => t > 3000)", timeout_s=30)
    log = browser.evaluate("window.fpsLog")
    steady = float(np.median([fps for t, fps in log if t > 2100]))
    early = [fps for t, fps in log if 400 < t < 1900]
    assert 12 <= steady <= 28, log
    assert early, log
    assert min(early) >= 0.6 * steady, log


def test_camera_panels_show_previews_and_a_stopped_camera_turns_down(
    service: FedService, browser: Browser
) -> None:
    browser.open(service.base_url)
    names = browser.wait_for(
        "(() => { const n = [...document.querySelectorAll('.cam')].map(e => e.dataset.camera);"
        " return n.length === 4 && n; })()"
    )
    assert names == CAMERAS
    browser.wait_for("[...document.querySelectorAll('.cam')].every(e => e.dataset.state === 'up')")
    assert "20.0 fps" in browser.evaluate("document.querySelector('.cam .stats').textContent")

    # the preview is drawn with the 2D joints over it
    browser.wait_for("[...window.crosspose.panels.panels.values()].every(p => p.seq !== null)")
    pixels = browser.evaluate(
        "(() => { const p = window.crosspose.panels.panels.get('cam01');"
        " const m = window.crosspose.panels; const c = p.canvas.getContext('2d');"
        " return [c.getImageData(2, 2, 1, 1).data[0], p.canvas.width]; })()"
    )
    assert abs(pixels[0] - PREVIEW_GREY) < 8
    assert pixels[1] == 320
    meta = httpx.get(f"{service.base_url}/api/v1/cameras/cam01/preview").json()
    head = meta["joints2d"][H36M17.index("head")]
    rgba = browser.evaluate(
        f"Array.from(window.crosspose.panels.panels.get('cam01').canvas.getContext('2d')"
        f".getImageData({round(head[0])}, {round(head[1])}, 1, 1).data)"
    )
    assert abs(rgba[0] - PREVIEW_GREY) > 40 or abs(rgba[1] - PREVIEW_GREY) > 40, rgba

    service.silent.add("cam03")  # its grabber stops heartbeating
    browser.wait_for("document.querySelector('.cam[data-camera=cam03]').dataset.state === 'down'")
    assert browser.evaluate(
        "(() => { const e = document.querySelector('.cam[data-camera=cam03]');"
        " return [e.querySelector('.state').textContent,"
        " getComputedStyle(e.querySelector('.down-label')).display]; })()"
    ) == ["down", "flex"]
    others = browser.evaluate(
        "[...document.querySelectorAll('.cam')].filter(e => e.dataset.camera !== 'cam03')"
        ".map(e => e.dataset.state)"
    )
    assert others == ["up", "up", "up"]

    service.silent.discard("cam03")  # and back
    browser.wait_for("document.querySelector('.cam[data-camera=cam03]').dataset.state === 'up'")


def _upload(browser: Browser, path: Path, token: str) -> tuple[str, list[str]]:
    doc = browser.call("DOM.getDocument")
    node = browser.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#upload-file")
    browser.call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(path)])
    browser.evaluate(
        f"(() => {{ document.getElementById('upload-box').open = true;"
        f" document.getElementById('upload-result').textContent = '';"
        f" document.getElementById('upload-token').value = {json.dumps(token)};"
        f" document.getElementById('upload').requestSubmit(); return 1; }})()"
    )
    browser.wait_for("/^(refused|accepted)/.test(document.getElementById('upload-result').textContent)")
    return browser.evaluate(
        "[document.getElementById('upload-result').textContent,"
        " [...document.querySelectorAll('#upload-problems li')].map(li => li.textContent)]"
    )


def test_upload_form_shows_the_problems_of_a_bad_file_in_words(
    service: FedService, browser: Browser, tmp_path: Path
) -> None:
    good = httpx.get(f"{service.base_url}/api/v1/calibration", params={"format": "crosspose"}).content
    rig = json.loads(good)
    rig["cameras"][1]["K"][0][0] = -5.0  # a negative focal length
    rig["cameras"][2]["R"][0][0] = 3.0  # not a rotation
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(rig))
    expected = httpx.put(
        f"{service.base_url}/api/v1/calibration",
        content=bad.read_bytes(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    assert len(expected["problems"]) >= 2

    browser.open(service.base_url)
    result, problems = _upload(browser, bad, TOKEN)
    assert result == f"refused (HTTP 422): {expected['detail']}"
    assert problems == expected["problems"]
    assert any("cam02" in p for p in problems)
    assert any("cam03" in p for p in problems)

    result, problems = _upload(browser, bad, "wrong-token")
    assert result == "refused (HTTP 401): invalid API token"
    assert problems
    assert "Bearer" in problems[0]
    assert service.state.calibration.active().version == 1  # type: ignore[union-attr]

    same_file = tmp_path / "same.json"
    same_file.write_bytes(good)
    result, problems = _upload(browser, same_file, TOKEN)
    assert result.startswith("accepted: calibration v1 is already in force"), (result, problems)
    moved = json.loads(good)
    moved["cameras"][0]["t"][0] += 0.001
    good_file = tmp_path / "good.json"
    good_file.write_text(json.dumps(moved))
    result, problems = _upload(browser, good_file, TOKEN)
    assert result.startswith("accepted: calibration v2"), (result, problems)
    browser.wait_for("document.getElementById('st-calib').textContent === 'v2'", timeout_s=10)


def test_takes_box_asks_for_the_token_then_reports_the_recorder(
    service: FedService, browser: Browser
) -> None:
    browser.open(service.base_url)
    browser.wait_for("/API token/.test(document.getElementById('takes-status').textContent)")
    assert browser.evaluate("document.getElementById('take-record').disabled") is True
    browser.evaluate(
        f"(() => {{ const t = document.getElementById('upload-token'); t.value = {json.dumps(TOKEN)};"
        " t.dispatchEvent(new Event('change')); return 1; })()"
    )
    # This fed service has no recorder stage: the box says so in words (the API's 503 reason).
    browser.wait_for("/recording is disabled/.test(document.getElementById('takes-status').textContent)")


def test_without_an_api_token_the_writes_are_shown_disabled_with_the_reason(
    browser: Browser, tmp_path: Path
) -> None:
    """A service without a token refuses every upload and recording: the page must not offer them."""
    with fed_service(tmp_path / "store", token=None) as svc:
        try:
            browser.open(svc.base_url)
            browser.wait_for("document.body.dataset.writes === 'disabled'")
            disabled = browser.evaluate(
                "['upload-file', 'upload-token', 'upload-submit', 'take-name', 'take-record', 'take-stop',"
                " 'calib-method', 'calib-board', 'calib-begin']"
                ".map(id => document.getElementById(id).disabled)"
            )
            assert disabled == [True] * 9
            notes = [browser.evaluate(f"document.getElementById('{box}').textContent")
                     for box in ("upload-result", "takes-status", "calib-status")]
            for note in notes:
                assert "no API token is configured" in note
                assert "CROSSPOSE_API_TOKEN" in note
        finally:
            browser.call("Page.navigate", url="about:blank")


def test_with_an_api_token_the_writes_are_offered(service: FedService, browser: Browser) -> None:
    browser.open(service.base_url)
    browser.wait_for("document.body.dataset.writes === 'enabled'")
    assert browser.evaluate("document.getElementById('upload-submit').disabled") is False
    assert browser.evaluate("document.getElementById('upload-result').textContent") == ""
