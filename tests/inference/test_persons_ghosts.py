"""Two performers started from one cold search whose candidates could pair the other way (the real
multi-person clip's start-up live: in one view a detection between the two performers, and each
candidate pair meeting as well as the true one): two tracks followed one person and the newer one was ended
as a duplicate, its id spent. A synthetic scene built so: the true pair of views 0 and 1 meets 4 cm apart,
two ghost pairs (views 0 + 3, views 1 + 2) meet exactly."""

from __future__ import annotations

import numpy as np
from tests.inference.test_persons import VOLUME, PeopleDetector, PeopleNetwork, World, _owner, studio  # noqa: F401
from tests.inference.test_pipeline import _images, detection_from_crop

from crosspose.core import Core, HeatmapStep, ImageSet, NetworkBackend, PoseStep
from crosspose.geometry import CameraRig
from crosspose.inference import crops_from_pose
from crosspose.inference.association import associate
from crosspose.inference.detector import Detection
from crosspose.inference.pipeline import FramePipeline
from crosspose.skeleton import H36M17
from crosspose.solver import Solver

ROOT = H36M17.root


def _unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.linalg.norm(v)
    return out


def ghost_scene(rig: CameraRig, pose: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(A, B, A1, X3)`` roots for ``pose (J, 3)``: performer A; performer B at A's height on the plane of
    camera 2 and the ray of camera 1 through ``A1`` (A moved 8 cm across, where view 1's candidate is), so
    that ray and B's ray from camera 2 meet; ``X3`` on camera 0's ray through A, where view 3's candidate (a
    detection between the two) is. Chosen so that the views' candidates associate as the two ghosts."""
    centres = rig.centers
    a = np.array([0.2, 0.1, pose[ROOT, 2]])
    ray0, ray1 = _unit(a - centres[0]), _unit(a - centres[1])
    a1 = a + 0.08 * _unit(np.cross(ray1, [0.0, 0.0, 1.0]))
    ray1 = _unit(a1 - centres[1])
    normal = np.cross(ray1, a1 - centres[2])
    along = _unit(np.cross(normal, [0.0, 0.0, 1.0]))
    for w in (1.2, -1.2, 1.5, -1.5, 1.0, -1.0):
        b = a1 + w * along
        for u in (0.6, -0.6, 0.8, -0.8, 1.0, -1.0):
            x3 = a + u * ray0
            if not (VOLUME.contains(b) and VOLUME.contains(x3)):
                continue
            found = first_look(rig, pose, (a, a1, b, x3))
            pixels = [np.array([d[0].keypoints[0]]) for d in found]
            people = associate(rig, pixels, [np.array([d[0].score]) for d in found], VOLUME)
            if sorted(p.members.tolist() for p in people) == [[-1, 0, 0, -1], [0, -1, -1, 0]]:
                return a, b, a1, x3
    raise AssertionError("no ghost geometry in this rig")


def first_look(rig: CameraRig, pose: np.ndarray, roots: tuple[np.ndarray, ...]) -> list[list[Detection]]:
    """Per view one detection: ``pose`` moved to that view's root in ``roots``."""
    local = pose - pose[ROOT]
    return [[detection_from_crop(crops_from_pose(local + root, rig)[v], 0.9)]  # type: ignore[arg-type]
            for v, root in enumerate(roots)]


class GhostDetector(PeopleDetector):
    """The first look: the ghost scene's detections (:func:`first_look`); then every person each view sees."""

    def __init__(self, rig: CameraRig, world: World, first: list[list[Detection]]) -> None:
        super().__init__(rig, world)
        self.first = first

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        if self.calls:
            return super().detect(images)
        self.calls += 1
        return [self.first[int(image[0, 0, 0])] for image in images]


def test_a_first_look_whose_pairs_could_be_two_ghosts_starts_one_performer_then_finds_the_two(
        studio) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    rig, base = studio
    base = base[:12]
    a, b, a1, x3 = ghost_scene(rig, base[0])
    people = np.stack([base - base[:, ROOT:ROOT + 1] + root for root in (a, b)])
    world = World(people)
    detector = GhostDetector(rig, world, first_look(rig, base[0], (a, a1, b, x3)))
    pipeline = FramePipeline(rig, PeopleNetwork(world), detector=detector,  # type: ignore[arg-type]
                             volume=VOLUME, max_persons=2)
    core = Core(HeatmapStep(NetworkBackend(pipeline), rig), PoseStep(Solver(H36M17)), min_views=2)
    out, started = [], []
    for i in range(len(base)):
        world.frame = i
        solved = core.run_persons(ImageSet(i, int(i * 1e9 / 30), _images(rig)))
        out.append({id: _owner(pose.joints, world.people[:, i])[0] for id, pose in solved.persons})
        started.append(pipeline.ids_started)
    # the first look starts one of the two ghosts, not both (two tracks that could both be one person)
    assert started[0] == 1, started
    # then the two performers, each under one id from the next frame sets on, both reported
    reported = sorted({id for o in out for id in o})
    assert len(reported) == 2, out
    owners = {id: {o[id] for o in out if id in o} for id in reported}
    assert sorted(p for who in owners.values() for p in who) == [0, 1], owners
    assert all(len(o) == 2 for o in out[2:]), out
