"""Suite-wide settings: CPU by default; `gpu` tests skip themselves where CUDA is absent; joint layouts
other than Human3.6M-17 for the tests that pin the layout flowing as data."""

from __future__ import annotations

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
