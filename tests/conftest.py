"""Suite-wide settings: CPU by default; `gpu` tests skip themselves where CUDA is absent; joint layouts
other than Human3.6M-17 for the tests that pin the layout flowing as data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from crosspose.skeleton import H36M17, SKELETONS, Skeleton


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA (no GPU on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


# -- joint layouts other than Human3.6M-17 (issue 16.3: the layout flows as data) ---------------------


@pytest.fixture
def toes_skeleton(monkeypatch: pytest.MonkeyPatch) -> Skeleton:
    """Human3.6M-17 plus three leaves (``l_toe``, ``r_toe``, ``nose``): 20 joints, the 17 first, registered
    under its name for this test (as a layout the solver publishes would be)."""
    h = H36M17
    skeleton = Skeleton(
        name="test-h36m17-toes",
        joints=(*h.joints, "l_toe", "r_toe", "nose"),
        parents=(*h.parents, h.index("l_ankle"), h.index("r_ankle"), h.index("head")),
        template_lengths=(*h.template_lengths, 0.15, 0.15, 0.10),
    )
    monkeypatch.setitem(SKELETONS, skeleton.name, skeleton)
    return skeleton


@pytest.fixture
def stick_skeleton(monkeypatch: pytest.MonkeyPatch) -> Skeleton:
    """A 5-joint layout with no humanoid mapping (no limbs), registered under its name for this test."""
    skeleton = Skeleton(
        name="test-stick5",
        joints=("pelvis", "spine", "head", "l_hand", "r_hand"),
        parents=(-1, 0, 1, 1, 1),
        template_lengths=(0.0, 0.5, 0.25, 0.6, 0.6),
    )
    monkeypatch.setitem(SKELETONS, skeleton.name, skeleton)
    return skeleton


# -- several performers (issue 21): synthetic messages of known ids and joints --------------------------


class PersonsScene:
    """Three performers with known ids and joints over ``N`` frames at 30 fps (studio motion, each
    shifted 1.5 m apart along x): id 1 throughout, id 2 in frames 0–29 only (its track ends), id 5 from
    frame 20 on (a new id starts; ids are never reused, so the numbers have gaps)."""

    FPS = 30.0
    IDS = (1, 2, 5)

    def __init__(self, frames: int = 60) -> None:
        from crosspose.studio.motion import generate_motion

        self.frames = frames
        self.joints = {pid: generate_motion(seed=pid, num_frames=frames, fps=self.FPS).joints
                       + np.array([1.5 * k - 1.5, 0.0, 0.0]) for k, pid in enumerate(self.IDS)}
        self.spans = {1: range(0, frames), 2: range(0, 30), 5: range(20, frames)}
        self.t0_ns = 1_000_000_000

    def ids_at(self, frame: int) -> list[int]:
        return [pid for pid in self.IDS if frame in self.spans[pid]]

    def pose(self, pid: int, frame: int) -> Any:
        from crosspose.solver.pose import Pose3D

        j = H36M17.num_joints
        confidence = np.full(j, 0.9)
        confidence[H36M17.index("l_wrist")] = 0.05 + 0.01 * pid  # per person, so mix-ups show
        return Pose3D(joints=self.joints[pid][frame], confidence=confidence, views=np.full(j, 2 + pid % 3),
                      support=np.ones((4, j), bool), skeleton=H36M17.name, mode="tracked")

    def persons(self, frame: int) -> list[tuple[int, Any]]:
        return [(pid, self.pose(pid, frame)) for pid in self.ids_at(frame)]

    def t_capture_ns(self, frame: int) -> int:
        return self.t0_ns + round(frame / self.FPS * 1e9)

    def message(self, frame: int, persons: list[tuple[int, Any]] | None = None) -> dict[str, Any]:
        from crosspose.bus.schema import skeleton_message

        t = self.t_capture_ns(frame)
        return skeleton_message(persons=self.persons(frame) if persons is None else persons,
                                skeleton=H36M17.name, seq=frame, t_capture_ns=t,
                                cameras=["cam01", "cam02", "cam03", "cam04"],
                                latency_ms={"solve": 2.0}, t_publish_ns=t + 5_000_000, calibration_version=1)

    def messages(self) -> list[dict[str, Any]]:
        return [self.message(i) for i in range(self.frames)]


@pytest.fixture(scope="session")
def persons_scene() -> PersonsScene:
    return PersonsScene()
