"""Fixtures: a running API service per test (see ``api_service``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_service import Service, running_service


@pytest.fixture(autouse=True)
def no_leaked_servers() -> Iterator[None]:
    """Every uvicorn thread a test started has stopped when it ends."""
    yield
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("uvicorn:")]
    assert not leaked, f"server threads still running: {leaked}"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with running_service(tmp_path / "calibration") as svc:
        yield svc
