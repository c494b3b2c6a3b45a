"""Live calibration over REST against a running API: a session on a synthetic board studio whose frame sets
the test releases, progress, the background solve, apply (a new version, the pipeline told) or discard
(nothing changes), rollback, and every refusal."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from api_service import DEMO_NAMES, TOKEN, Service, running_service, tree_digest
from board_studio import BOARD, ReleasedFeed, board_photos, bumped, true_rig

from crosspose.calibration import dumps_rig, load_rig
from crosspose.geometry import CameraRig

SESSION = "/api/v1/calibration/session"


@pytest.fixture(scope="module")
def truth() -> CameraRig:
    return true_rig(DEMO_NAMES)


@pytest.fixture(scope="module")
def photos(truth: CameraRig) -> list[list[np.ndarray]]:
    return board_photos(truth, 12)


@pytest.fixture
def studio(tmp_path: Path, truth: CameraRig) -> Iterator[tuple[Service, ReleasedFeed]]:
    """The API with the rig in force = ``truth`` with cam03 bumped by 2°, and a feed the test releases."""
    with running_service(tmp_path / "store") as svc:
        with svc.client(TOKEN) as c:
            r = c.put("/api/v1/calibration", content=dumps_rig(bumped(truth, "cam03", 2.0), "crosspose"))
            assert r.status_code == 200, r.text
        svc.changes.clear()
        feed = ReleasedFeed()
        svc.state.calibration_feed = lambda names: feed
        yield svc, feed
        session = svc.state.calibration_session
        if session is not None:
            session.close()


def wait(client: httpx.Client, done: Any, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the session until ``done(status)``."""
    end = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.get(SESSION).json()
        if done(status) or time.monotonic() > end:
            return status
        time.sleep(0.05)


def start_body(**extra: Any) -> dict[str, Any]:
    return {"method": "board", "board": BOARD, "rate_hz": 30, "max_sets": 12, **extra}


def collect(c: httpx.Client, feed: ReleasedFeed, photos: list[list[np.ndarray]]) -> dict[str, Any]:
    """Release the photos in two halves: the coverage and shared counts grow; then sampling ends."""
    feed.release(photos[:4])
    first = wait(c, lambda s: s["sampled"] >= 4)
    assert first["sampled"] == 4
    assert first["phase"] == "collecting"
    feed.release(photos[4:])
    last = wait(c, lambda s: s["phase"] == "stopped")
    assert last["sampled"] == 12
    assert last["error"] is None
    for name in DEMO_NAMES:
        assert last["cameras"][name]["sightings"] > first["cameras"][name]["sightings"]
        assert last["cameras"][name]["coverage"] >= first["cameras"][name]["coverage"] > 0
    assert all(last["pairs"][p] > first["pairs"][p] > 0 for p in first["pairs"])
    return last


def solve(c: httpx.Client) -> dict[str, Any]:
    r = c.post(f"{SESSION}/solve")
    assert r.status_code == 202, r.text
    status = wait(c, lambda s: s["phase"] in ("solved", "failed"))
    assert status["phase"] == "solved", status["error"]
    return status


@pytest.mark.parametrize("refine", [None, "cam03"])
def test_session_solves_and_applies_as_a_new_version(
    studio: tuple[Service, ReleasedFeed], photos: list[list[np.ndarray]], truth: CameraRig, refine: str | None
) -> None:
    svc, feed = studio
    with svc.client(TOKEN) as c:
        r = c.post(SESSION, json=start_body(refine=refine))
        assert r.status_code == 201, r.text
        assert r.json()["phase"] == "collecting"
        assert r.json()["base_version"] == 1
        assert c.post(SESSION, json=start_body()).status_code == 409  # one session at a time
        collect(c, feed, photos)
        result = solve(c)["result"]["cameras"]
        # The bumped camera is found turned back by 2°; the others stay where they are.
        assert result["cam03"]["rotation_deg"] == pytest.approx(2.0, abs=0.1)
        for name in ("cam01", "cam02", "cam04"):
            assert result[name]["rotation_deg"] < 0.1
            assert result[name]["centre_mm"] < 5
        assert all(cam["median_px"] < 1.0 for cam in result.values())
        # While solved, nothing is stored yet.
        assert c.get("/api/v1/calibration").json()["version"] == 1
        assert not svc.changes
        r = c.post(f"{SESSION}/apply")
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2
        assert r.json()["previous"] == 1
        assert r.json()["new"]
        assert [a.version for a in svc.changes] == [2]  # the pipeline was told (hot swap)
        applied = load_rig(json.dumps(c.get("/api/v1/calibration").json()["rig"]).encode(), "crosspose")
        k = applied.names.index("cam03")
        assert np.degrees(np.arccos(np.clip((np.trace(applied.R[k] @ truth.R[k].T) - 1) / 2, -1, 1))) < 0.1
        assert c.get(SESSION).status_code == 404  # the session ended
        # Rollback: the version before is stored again and swapped in.
        r = c.post("/api/v1/calibration/rollback")
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 3
        assert [a.version for a in svc.changes] == [2, 3]
        assert c.get("/api/v1/calibration").json()["rig"]["cameras"] == json.loads(
            svc.state.calibration.canonical_bytes(1))["cameras"]


def test_discard_leaves_everything_as_it_was(
    studio: tuple[Service, ReleasedFeed], photos: list[list[np.ndarray]]
) -> None:
    svc, feed = studio
    before = tree_digest(svc.store_dir)
    with svc.client(TOKEN) as c:
        assert c.post(SESSION, json=start_body()).status_code == 201
        collect(c, feed, photos)
        solve(c)
        assert c.delete(SESSION).status_code == 200
        assert c.get(SESSION).status_code == 404
        assert c.post(f"{SESSION}/apply").status_code == 404
        assert c.get("/api/v1/calibration").json()["version"] == 1
    assert tree_digest(svc.store_dir) == before
    assert not svc.changes
    assert feed.closed


def test_writes_need_the_token(studio: tuple[Service, ReleasedFeed]) -> None:
    svc, _ = studio
    with svc.client() as anonymous, svc.client("wrong") as wrong:
        for client in (anonymous, wrong):
            assert client.post(SESSION, json=start_body()).status_code == 401
            for path in ("/stop", "/solve", "/apply"):
                assert client.post(SESSION + path).status_code == 401
            assert client.delete(SESSION).status_code == 401
            assert client.post("/api/v1/calibration/rollback").status_code == 401
    assert svc.state.calibration_session is None


def test_no_token_configured_refuses_with_403(tmp_path: Path) -> None:
    with running_service(tmp_path / "store", token=None) as svc, svc.client("anything") as c:
        r = c.post(SESSION, json=start_body())
        assert r.status_code == 403
        assert "no API token" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"method": "wand"}, "method"),
        ({"method": "board"}, "needs a board"),
        ({"method": "board", "board": "checkerboard:4x7"}, "board"),
        ({"method": "board", "board": BOARD, "refine": "cam99"}, "no camera 'cam99'"),
        ({"method": "board", "board": BOARD, "world": "feet"}, "world 'feet' needs method 'person'"),
        ({"method": "board", "board": BOARD, "rate_hz": -1}, "rate_hz"),
        ({"method": "board", "board": BOARD, "colour": "blue"}, "colour"),
        ({"method": "person"}, "2D network"),
    ],
)
def test_bad_requests_are_refused_naming_the_problem(
    studio: tuple[Service, ReleasedFeed], body: dict[str, Any], words: str
) -> None:
    svc, _ = studio
    with svc.client(TOKEN) as c:
        r = c.post(SESSION, json=body)
        assert r.status_code == 422, r.text
        assert words in json.dumps(r.json())
        garbage = c.post(SESSION, content=b"\x00not json", headers={"content-type": "application/json"})
        assert garbage.status_code == 400
        assert garbage.json()["detail"]
    assert svc.state.calibration_session is None


def test_phase_and_setup_conflicts(studio: tuple[Service, ReleasedFeed], tmp_path: Path) -> None:
    svc, _ = studio
    with svc.client(TOKEN) as c:
        assert c.get(SESSION).status_code == 404
        assert c.post(f"{SESSION}/solve").status_code == 404
        r = c.post("/api/v1/calibration/rollback")  # one version only: nothing to return to
        assert r.status_code == 404
        assert "no earlier" in r.json()["detail"]
        assert c.post(SESSION, json=start_body()).status_code == 201
        r = c.post(f"{SESSION}/apply")  # nothing solved yet
        assert r.status_code == 409
        assert "not solved" in r.json()["detail"]
        assert c.delete(SESSION).status_code == 200
        svc.state.calibration_feed = None
        r = c.post(SESSION, json=start_body())
        assert r.status_code == 409
        assert "live frames" in r.json()["detail"]
    with running_service(tmp_path / "empty") as empty, empty.client(TOKEN) as c:
        empty.state.calibration_feed = lambda names: ReleasedFeed()
        r = c.post(SESSION, json=start_body())
        assert r.status_code == 409
        assert "no calibration" in r.json()["detail"]
