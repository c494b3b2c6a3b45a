"""Headless Chromium driven over the DevTools protocol (a websocket), for the viewer's browser tests."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from websockets.sync.client import ClientConnection, connect

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1280, 800


def find_chromium() -> str | None:
    """``$CROSSPOSE_CHROMIUM`` or the first Chromium on PATH."""
    explicit = os.environ.get("CROSSPOSE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page; ``call`` sends a DevTools command and returns its result."""

    def __init__(self, executable: str, startup_timeout_s: float = 30.0) -> None:
        self.profile = tempfile.mkdtemp(prefix="crosspose-chromium-")
        self.proc = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--force-device-scale-factor=1",
                f"--window-size={WIDTH},{HEIGHT}",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._ids = itertools.count(1)
        self.ws: ClientConnection | None = None
        try:
            port_file = Path(self.profile) / "DevToolsActivePort"
            deadline = time.monotonic() + startup_timeout_s
            while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
                if self.proc.poll() is not None:
                    raise CdpError(f"chromium exited with {self.proc.returncode} at start")
                if time.monotonic() > deadline:
                    raise CdpError("chromium did not open its DevTools port")
                time.sleep(0.05)
            port = int(port_file.read_text().splitlines()[0])
            page = self._page_url(port, deadline)
            self.ws = connect(page, max_size=64 * 1024 * 1024, open_timeout=10).__enter__()
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=WIDTH,
                height=HEIGHT,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _page_url(port: int, deadline: float) -> str:
        import httpx

        while True:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise CdpError("chromium has no page target")
            time.sleep(0.05)

    def call(self, method: str, timeout_s: float = 20.0, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError(f"{method}: no answer within {timeout_s} s")
            reply = json.loads(self.ws.recv(timeout=left))
            if reply.get("id") != msg_id:
                continue  # an event
            if "error" in reply:
                raise CdpError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def evaluate(self, expression: str, timeout_s: float = 20.0) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = self.call(
            "Runtime.evaluate",
            timeout_s=timeout_s,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CdpError(f"JavaScript error in {expression[:80]!r}: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 20.0, interval_s: float = 0.1) -> Any:
        """Poll until ``expression`` is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"still false after {timeout_s} s: {expression}")
            time.sleep(interval_s)

    def open(self, url: str, timeout_s: float = 20.0) -> None:
        """Navigate and wait until the viewer says it started (``document.body.dataset.ready``)."""
        self.call("Page.navigate", url=url)
        self.wait_for(
            "document.readyState === 'complete' && document.body && document.body.dataset.ready === '1'",
            timeout_s,
        )

    def frames(self, n: int = 2) -> None:
        """Let the page render ``n`` animation frames."""
        self.evaluate(
            f"new Promise(r => {{ let k = {n}; const f = () => (--k > 0 ? requestAnimationFrame(f) : r(1));"
            " requestAnimationFrame(f); })"
        )

    def screenshot(self) -> np.ndarray:
        """``(H, W, 3)`` uint8 BGR of the viewport."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        return image

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)
