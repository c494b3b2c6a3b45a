"""The live session's person path with an injected 2D detector (the synthetic performer's joints): frame
sets sampled from a feed, joints accumulated, the rig solved in the world of the rig in force or from the
feet; frames smaller than the calibration are scaled; a failing feed is reported, not raised."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from crosspose.calibration.session import LiveSession, SessionSpec
from crosspose.geometry import CameraRig


class Feed:
    """Blank frames of ``shape`` per camera, one set per detection the test prepared."""

    def __init__(self, rig: CameraRig, count: int, shrink: int = 1, fail_after: int | None = None) -> None:
        self.shapes = [(int(h) // shrink, int(w) // shrink, 3) for w, h in rig.image_size]
        self.left, self.fail_after, self.closed = count, fail_after, False

    def next(self, timeout_s: float) -> list[np.ndarray | None] | None:
        if self.fail_after is not None and self.left <= self.fail_after:
            raise OSError("camera link lost")
        if self.left == 0:
            time.sleep(timeout_s)
            return None
        self.left -= 1
        return [np.broadcast_to(np.zeros((1, 1, 3), np.uint8), s) for s in self.shapes]

    def close(self) -> None:
        self.closed = True


Detect = Callable[[Sequence[np.ndarray | None]], np.ndarray]


def detector_of(keypoints: np.ndarray, joints: tuple[str, ...], shrink: int = 1
                ) -> Callable[[CameraRig], tuple[Detect, tuple[str, ...]]]:
    """A detector factory answering frame set ``i`` with ``keypoints[i]`` (pixels of frames ``shrink``
    times smaller than the calibration's)."""
    frames = iter(keypoints)

    def factory(rig: CameraRig) -> tuple[Detect, tuple[str, ...]]:
        def detect(images: Sequence[np.ndarray | None]) -> np.ndarray:
            kp = next(frames).copy()
            kp[..., :2] /= shrink
            return kp

        return detect, joints

    return factory


def run(session: LiveSession, timeout: float = 60.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while session.status()["phase"] == "collecting" and time.monotonic() < end:
        time.sleep(0.02)
    session.solve()
    while session.status()["phase"] == "solving" and time.monotonic() < end:
        time.sleep(0.05)
    return session.status()


@pytest.mark.parametrize(("world", "shrink"), [("rig", 2), ("feet", 1)])
def test_person_session_recovers_the_rig(rig: CameraRig, take_factory: Callable[..., Any], world: str,
                                         shrink: int) -> None:
    keypoints, joints, _ = take_factory(rig, stops=10, hold=6)
    n = keypoints.shape[0]
    spec = SessionSpec("person", world=world, rate_hz=1000, max_sets=n)  # type: ignore[arg-type]
    feed = Feed(rig, n, shrink)
    session = LiveSession(spec, rig, 7, feed, detector_of(keypoints, joints, shrink))
    status = run(session)
    assert status["phase"] == "solved", status["error"]
    assert status["sampled"] == n
    assert status["frame_sets"] == n
    assert feed.closed
    cams = status["result"]["cameras"]
    assert set(cams) == set(rig.names)
    if world == "rig":  # the same world: nothing moved
        for cam in cams.values():
            assert cam["rotation_deg"] < 0.5
            assert cam["centre_mm"] < 30
    else:  # the feet's world: the cameras stand above the floor the performer stood on
        solved = session.result
        assert solved is not None
        assert (solved.rig.centers[:, 2] > 1.5).all()
    assert all(c["median_px"] < 3 for c in cams.values())


def test_a_failing_feed_is_reported_and_what_was_collected_stays(rig: CameraRig,
                                                                 take_factory: Callable[..., Any]) -> None:
    keypoints, joints, _ = take_factory(rig, stops=2, hold=2)
    feed = Feed(rig, 4, fail_after=2)
    session = LiveSession(SessionSpec("person", rate_hz=1000), rig, 1, feed, detector_of(keypoints, joints))
    end = time.monotonic() + 30
    while session.status()["phase"] == "collecting" and time.monotonic() < end:
        time.sleep(0.02)
    status = session.status()
    assert status["phase"] == "stopped"
    assert status["sampled"] == 2
    assert "camera link lost" in status["error"]
    session.solve()  # too little to solve: failed, with the camera named
    while session.status()["phase"] == "solving":
        time.sleep(0.02)
    status = session.status()
    assert status["phase"] == "failed"
    assert "camera" in status["error"]


def test_a_spec_the_rig_cannot_take_is_refused(rig: CameraRig) -> None:
    with pytest.raises(ValueError, match="no camera 'nope'"):
        LiveSession(SessionSpec("person", refine="nope"), rig, 1, Feed(rig, 0), detector_of(np.zeros(0), ()))
    with pytest.raises(ValueError, match="2D network"):
        LiveSession(SessionSpec("person"), rig, 1, Feed(rig, 0))
