"""Fixtures: one headless Chromium per module, and a fed API server per test (``viewer_service``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from viewer_browser import Browser, find_chromium
from viewer_service import FedService, fed_service


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium, or set CROSSPOSE_CHROMIUM)")
    b = Browser(executable)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def service(tmp_path: Path, browser: Browser) -> Iterator[FedService]:
    with fed_service(tmp_path / "store") as svc:
        try:
            yield svc
        finally:  # leave the page before the server stops, so nothing polls a closed port
            browser.call("Page.navigate", url="about:blank")
