"""Several performers in the viewer (issue 21.5), in headless Chromium against a real server: each
performer's bones in its own colour with its id above the head, the status bar's count, and a single
performer of id 0 drawn exactly as before."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import numpy as np
import pytest
from viewer_browser import Browser
from viewer_service import STANDING, FedService, skeleton_message

from crosspose.skeleton import H36M17

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

APART = np.array([0.0, 0.9, 0.0])  # performer 7 stands 0.9 m from performer 2 (along y)


def duet(seq: int) -> dict[str, Any]:
    """Performers 2 (at the origin) and 7 (beside), the top level performer 2's."""
    message = skeleton_message(seq)
    second = [[*map(float, p + APART), 1.0] for p in STANDING]
    message["persons"] = [
        {"id": 2, "joints": message["joints"], "views": message["views"], "mode": "tracked"},
        {"id": 7, "joints": second, "views": message["views"], "mode": "tracked"},
    ]
    return message


def hsl_to_bgr(text: str) -> np.ndarray:
    h, s, lum = (float(v) for v in re.findall(r"[\d.]+", text))
    s, lum = s / 100, lum / 100
    a = s * min(lum, 1 - lum)

    def f(n: float) -> float:
        k = (n + h / 30) % 12
        return lum - a * max(-1.0, min(k - 3, 9 - k, 1.0))

    return np.array([f(4), f(8), f(0)]) * 255  # B, G, R


def bone_pixel(browser: Browser, shot: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The screenshot's BGR at the projection of the midpoint of a bone (a thick line: its centre)."""
    x, y = browser.evaluate(f"window.crosspose.scene.projectToPage({json.dumps(((a + b) / 2).tolist())})")
    return shot[round(y), round(x)].astype(float)


def test_each_performer_in_its_colour_with_its_id(service: FedService, browser: Browser) -> None:
    service.message = duet
    browser.open(service.base_url)
    browser.wait_for("window.crosspose.scene.cameras.length === 4")
    browser.frames()
    empty = browser.screenshot()
    service.publish_skeletons.set()
    browser.wait_for("window.crosspose.scene.labels.length === 2")
    browser.frames()
    shot = browser.screenshot()

    colours = browser.evaluate("[2, 7].map(id => "
                               "window.crosspose.scene.labels.find(l => l.id === id).colour)")
    assert colours[0] != colours[1]
    spine, thorax = H36M17.index("spine"), H36M17.index("thorax")
    for offset, colour in zip((np.zeros(3), APART), colours, strict=True):
        got = bone_pixel(browser, shot, STANDING[spine] + offset, STANDING[thorax] + offset)
        assert np.abs(got - hsl_to_bgr(colour)).max() < 40, (colour, got)

    # each id is written above its performer's head, where the empty view had nothing
    labels = browser.evaluate("window.crosspose.scene.labels")
    rect = browser.evaluate("(() => { const r = document.getElementById('scene').getBoundingClientRect();"
                            " return [r.left, r.top]; })()")
    heads = browser.evaluate(f"{json.dumps([(STANDING[10] + o).tolist() for o in (np.zeros(3), APART)])}"
                             ".map(p => window.crosspose.scene.projectToPage(p))")
    for label, head in zip(sorted(labels, key=lambda entry: entry["id"]), heads, strict=True):
        assert label["text"] == f"#{label['id']}"
        x, y = label["x"] + rect[0], label["y"] + rect[1]
        assert y < head[1]  # above the head
        assert abs(x - head[0]) < 10
        box = (slice(round(y) - 14, round(y)), slice(round(x) - 10, round(x) + 10))
        changed = np.abs(shot[box].astype(int) - empty[box].astype(int)).max(axis=2) > 60
        assert changed.mean() > 0.1, label  # text was drawn there

    # the status bar counts them and lists their ids
    browser.wait_for("document.getElementById('st-persons').textContent === '2 #2 #7'")


def test_one_performer_of_id_0_is_drawn_as_before(service: FedService, browser: Browser) -> None:
    def solo(seq: int) -> dict[str, Any]:
        message = skeleton_message(seq)
        message["persons"] = [{"id": 0, "joints": message["joints"], "views": message["views"],
                               "mode": "tracked"}]
        return message

    browser.open(service.base_url)
    browser.wait_for("window.crosspose.scene.cameras.length === 4")
    service.publish_skeletons.set()  # today's message (no persons) first
    browser.wait_for("window.crosspose.stats.received >= 3")
    service.publish_skeletons.clear()
    time.sleep(0.2)
    browser.frames()
    before = browser.screenshot()
    service.message = solo
    service.publish_skeletons.set()
    browser.wait_for("document.getElementById('st-persons').textContent === '1'")
    service.publish_skeletons.clear()
    time.sleep(0.2)
    browser.frames()
    after = browser.screenshot()
    assert browser.evaluate("window.crosspose.scene.labels.length") == 0
    scene = browser.evaluate("(() => { const r = document.getElementById('scene').getBoundingClientRect();"
                             " return [r.left, r.top, r.right, r.bottom]; })()")
    box = (slice(int(scene[1]) + 40, int(scene[3]) - 20), slice(int(scene[0]) + 5, int(scene[2]) - 5))
    diff = np.abs(after[box].astype(int) - before[box].astype(int)).max(axis=2)
    assert (diff > 40).mean() < 1e-3  # the same picture (anti-aliasing aside)
