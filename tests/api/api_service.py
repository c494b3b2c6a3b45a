"""Test helpers: a real crosspose API on a real uvicorn server (127.0.0.1, free port) over a store in tmp."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from crosspose.api import ApiSettings, ServiceState, create_app
from crosspose.api.testing import serve_in_thread
from crosspose.calibration.store import ActiveCalibration, CalibrationStore
from crosspose.skeleton import Skeleton

ROOT = Path(__file__).resolve().parents[2]
CALIBRATION = ROOT / "calibration"
DEMO_NAMES = ["cam01", "cam02", "cam03", "cam04"]
TOKEN = "s3cret-token"


@dataclass
class Service:
    """A running API: its base URL, the state the runtime would feed, and what it told the runtime."""

    base_url: str
    state: ServiceState
    store_dir: Path
    changes: list[ActiveCalibration] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws/skeletons"

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10)


def tree_digest(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@contextlib.contextmanager
def running_service(store_dir: Path, skeleton: Skeleton | None = None, **settings: Any) -> Iterator[Service]:
    """Start an API over ``store_dir`` (configured cameras: the Pose2Sim demo's) publishing ``skeleton``
    (default: the service's default layout)."""
    changes: list[ActiveCalibration] = []
    state = ServiceState(
        CalibrationStore(store_dir, DEMO_NAMES),
        ApiSettings(**{"token": TOKEN, **settings}),
        on_calibration_change=changes.append,
        **({} if skeleton is None else {"skeleton": skeleton}),
    )
    with serve_in_thread(create_app(state)) as base_url:
        yield Service(base_url, state, store_dir, changes)
