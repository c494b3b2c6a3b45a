"""Cross-view association of per-view person candidates, and the default capture volume: known 3D people
projected into a seeded synthetic rig (with lens distortion), so the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from crosspose.geometry import Camera, CameraRig
from crosspose.inference.association import (
    Person,
    Volume,
    associate,
    closest_point,
    default_volume,
    mixed,
    ray_distance,
    root_rays,
)
from crosspose.studio import random_rig

PERFORMER = np.array([0.5, 0.3, 0.9])
OTHER = np.array([-0.6, -0.5, 0.95])
BYSTANDER = np.array([3.5, -3.0, 0.9])  # behind the volume, in the images of views 2 and 3 only


@pytest.fixture(scope="module")
def rig() -> CameraRig:
    return random_rig(5, 4)


def _candidates(rig: CameraRig, people: list[tuple[np.ndarray, list[int], float]], noise_px: float = 2.0,
                seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], list[list[int]]]:
    """Per view the projected roots of the people that view sees, best score first, with pixel noise.

    Returns the pixels, scores and per view which person each candidate is (for checking)."""
    rng = np.random.default_rng(seed)
    pixels, scores, who = [], [], []
    for c in range(len(rig)):
        seen = sorted((p for p in range(len(people)) if c in people[p][1]), key=lambda p: -people[p][2])
        roots = np.stack([people[p][0] for p in seen]) if seen else np.zeros((0, 3))
        projected = np.asarray(rig.project(roots)).reshape(len(seen), len(rig), 2)
        pixels.append(projected[:, c] + rng.normal(0, noise_px, (len(seen), 2)))
        scores.append(np.array([people[p][2] for p in seen]))
        who.append(seen)
    return pixels, scores, who


def test_default_volume_is_the_floor_three_cameras_see(rig: CameraRig) -> None:
    volume = default_volume(rig)
    # random_rig guarantees every camera sees the 1.5 m cylinder around the origin.
    assert (volume.lo[:2] <= -1.5).all()
    assert (volume.hi[:2] >= 1.5).all()
    assert volume.lo[2] == 0.0
    assert volume.hi[2] == 2.5
    assert volume.contains(PERFORMER)
    assert volume.contains(OTHER)
    assert not volume.contains(BYSTANDER)
    # The box is the tight bounds of the floor seen by >= 3 cameras: every such floor point is inside it
    # (to one grid step, <= 0.1 m here), and on each side some come within 0.15 m of its face.
    xy = np.random.default_rng(1).uniform(-12, 12, (40000, 2))
    floor = np.c_[xy, np.zeros(len(xy))]
    pixels = np.asarray(rig.project(floor))
    size = np.asarray(rig.image_size)
    three = (np.isfinite(pixels).all(-1) & (pixels >= 0).all(-1) & (pixels < size).all(-1)).sum(1) >= 3
    seen = xy[three]
    assert (seen >= volume.lo[:2] - 0.1).all()
    assert (seen <= volume.hi[:2] + 0.1).all()
    assert (seen.min(0) < volume.lo[:2] + 0.15).all()
    assert (seen.max(0) > volume.hi[:2] - 0.15).all()


def test_default_volume_refuses_a_rig_that_sees_no_floor() -> None:
    up = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # optical axis +Z: looking at the sky
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    cams = [Camera(f"c{i}", K, np.zeros(5), up, -up @ np.array([i, 0, 1.5]), (640, 480)) for i in range(3)]
    with pytest.raises(ValueError, match="no floor point"):
        default_volume(CameraRig(cams))


def test_volume_checks_its_corners() -> None:
    with pytest.raises(ValueError, match="below max"):
        Volume(np.array([0.0, 0, 0]), np.array([1.0, -1, 2]))
    box = Volume(np.zeros(3), np.ones(3))
    assert box.contains(np.array([[0.5, 0.5, 0.5], [1.5, 0.5, 0.5], [np.nan, 0.5, 0.5]])).tolist() == [
        True, False, False]


def test_rays_of_a_projected_point_meet_at_it(rig: CameraRig) -> None:
    pixels = np.asarray(rig.project(PERFORMER[None]))
    origins, dirs = root_rays(rig, pixels)
    assert np.allclose(closest_point(origins, dirs[0]), PERFORMER, atol=1e-6)
    assert np.allclose(ray_distance(PERFORMER, origins, dirs[0]), 0.0, atol=1e-6)
    # Parallel rays fix no point.
    assert np.isnan(closest_point(origins[:2], np.stack([dirs[0, 0], dirs[0, 0]]))).all()
    # Behind a camera is not on its ray.
    assert np.isinf(ray_distance(2 * origins[0] - PERFORMER, origins[:1], dirs[0, :1])).all()


def test_the_person_most_views_agree_on_wins_never_the_bystander(rig: CameraRig) -> None:
    # The other performer and the bystander score higher in every view that sees them; the performer is
    # the only one all four views see.
    people = [(PERFORMER, [0, 1, 2, 3], 0.7), (OTHER, [1, 2, 3], 0.95), (BYSTANDER, [2, 3], 0.99)]
    pixels, scores, who = _candidates(rig, people)
    found = associate(rig, pixels, scores, default_volume(rig))
    assert len(found) == 2
    first, second = found
    assert first.num_views == 4
    assert np.linalg.norm(first.root - PERFORMER) < 0.05
    assert [who[c][m] for c, m in enumerate(first.members)] == [0, 0, 0, 0]
    assert second.num_views == 3
    assert np.linalg.norm(second.root - OTHER) < 0.05
    assert [who[c][m] if m >= 0 else None for c, m in enumerate(second.members)] == [None, 1, 1, 1]
    # With an unbounded volume the bystander is a person of two views, still ranked last.
    anywhere = Volume(np.full(3, -50.0), np.full(3, 50.0))
    last = associate(rig, pixels, scores, anywhere)[-1]
    assert last.num_views == 2
    assert np.linalg.norm(last.root - BYSTANDER) < 0.3


def test_ties_in_views_go_to_the_higher_summed_score(rig: CameraRig) -> None:
    people = [(PERFORMER, [0, 1, 2], 0.6), (OTHER, [1, 2, 3], 0.8)]
    pixels, scores, _ = _candidates(rig, people)
    first, second = associate(rig, pixels, scores, default_volume(rig))
    assert np.linalg.norm(first.root - OTHER) < 0.05
    assert first.score == pytest.approx(2.4)
    assert np.linalg.norm(second.root - PERFORMER) < 0.05


def test_no_person_without_two_views_agreeing_inside_the_volume(rig: CameraRig) -> None:
    # The bystander's two views agree outside the volume; a performer seen by one view only.
    for alone in ([(BYSTANDER, [2, 3], 0.99)], [(PERFORMER, [0], 0.9)]):
        pixels, scores, _ = _candidates(rig, alone)
        assert associate(rig, pixels, scores, default_volume(rig)) == []



def test_a_candidate_that_misses_the_others_root_does_not_join(rig: CameraRig) -> None:
    shifted = [(PERFORMER, [0, 1, 2], 0.9), (PERFORMER + np.array([0.0, 0.0, 0.6]), [3], 0.9)]
    pixels, scores, _ = _candidates(rig, shifted)
    (person,) = associate(rig, pixels, scores, default_volume(rig))
    assert person.members.tolist() == [0, 0, 0, -1]


def test_a_vast_rig_gets_a_coarser_floor_grid_not_gigabytes(rig: CameraRig) -> None:
    # The same cameras 20x further apart (aimed the same way): the footprint is 400x larger.
    far = CameraRig([cam.replace(t=cam.t - cam.R @ (19 * cam.center * np.array([1, 1, 0]))) for cam in rig])
    assert np.ptp(far.centers[:, 0]) > 100
    volume = default_volume(far, min_views=1)
    assert np.isfinite(volume.lo).all()


def test_two_people_are_mixed_when_a_candidate_of_each_also_meets_inside_the_volume(rig: CameraRig) -> None:
    # P seen by views 0 and 1; Q by views 2 and 3, Q's view-2 candidate on view 0's ray through P (0.6 m
    # further): that pair meets as well as each person's own.
    ray0 = (PERFORMER - rig.centers[0]) / np.linalg.norm(PERFORMER - rig.centers[0])
    ghost = PERFORMER + 0.6 * ray0
    projected = np.asarray(rig.project(np.stack([PERFORMER, OTHER, ghost])))  # (3, C, 2)
    pixels = [projected[0, 0][None], projected[0, 1][None], projected[2, 2][None], projected[1, 3][None]]
    p = Person(PERFORMER, np.array([0, 0, -1, -1]), 1.8, 0.0)
    q = Person(OTHER, np.array([-1, -1, 0, 0]), 1.8, 0.0)
    volume = default_volume(rig)
    assert volume.contains(ghost)
    assert mixed(rig, pixels, p, q, volume)
    assert mixed(rig, pixels, q, p, volume)
    # the same candidates with Q's view-2 one on Q: only a pair meeting outside a volume around the two
    # (or none) — not mixed
    pixels[2] = projected[1, 2][None]
    around = Volume(np.minimum(PERFORMER, OTHER) - 0.05, np.maximum(PERFORMER, OTHER) + 0.05)
    assert not around.contains(ghost)
    assert not mixed(rig, pixels, p, q, around)
