"""The skeleton message of several performers (issue 21.5): ``persons`` sorted by id, the top level the
lowest id's (a one-performer client unchanged), nobody tracked in today's shape, the parser's checks and
a smaller layout trimming every person."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from crosspose.bus import MessageError
from crosspose.bus import schema as s
from crosspose.bus.codec import decode, encode
from crosspose.skeleton import BODY32, H36M17
from crosspose.solver.pose import Pose3D

TODAY_KEYS = {"type", "seq", "t_capture_ns", "t_publish_ns", "skeleton", "units", "joints", "views",
              "latency_ms", "mode", "cameras", "calibration_version"}


def wire(message: dict[str, Any]) -> dict[str, Any]:
    return decode(encode(s.SKELETON, message)).header


def rows(pose: Pose3D) -> list[list[float | None]]:
    return [[round(float(x), 4) for x in p] + [round(float(c), 3)]
            for p, c in zip(pose.joints, pose.confidence, strict=True)]


def test_each_person_carries_its_own_joints_views_and_mode_sorted_by_id(persons_scene: Any) -> None:
    frame = 25  # ids 1, 2 and 5
    people = persons_scene.persons(frame)
    message = persons_scene.message(frame, persons=people[::-1])  # given in any order
    got = s.parse_skeleton(wire(message))
    assert [p["id"] for p in got["persons"]] == [1, 2, 5]
    for entry, (pid, pose) in zip(got["persons"], people, strict=True):
        assert entry["id"] == pid
        assert entry["joints"] == rows(pose)
        assert entry["views"] == pose.views.tolist()
        assert entry["mode"] == "tracked"
    # the top level is the lowest id's: a client reading today's keys gets person 1
    assert got["joints"] == got["persons"][0]["joints"] == rows(people[0][1])
    assert got["views"] == got["persons"][0]["views"]
    assert set(got) == TODAY_KEYS | {"persons", "v", "n_buffers"}
    # the persons differ (not one pose repeated)
    assert got["persons"][1]["joints"] != got["persons"][0]["joints"]


def test_one_pose_is_person_0_and_the_rest_of_the_message_is_today_s(persons_scene: Any) -> None:
    pose = persons_scene.pose(1, 3)
    message = s.skeleton_message(pose, seq=3, t_capture_ns=10, cameras=["a", "b"], latency_ms={},
                                 t_publish_ns=20)
    assert set(message) == TODAY_KEYS | {"persons"}
    assert message["persons"] == [{"id": 0, "joints": message["joints"], "views": message["views"],
                                   "mode": "tracked"}]
    assert message["joints"] == rows(pose)
    assert s.parse_skeleton(wire(message))["persons"][0]["id"] == 0


def test_nobody_tracked_keeps_today_s_shape() -> None:
    message = s.skeleton_message(persons=[], skeleton=BODY32.name, seq=9, t_capture_ns=10, cameras=["a"],
                                 latency_ms={}, t_publish_ns=20)
    got = s.parse_skeleton(wire(message))
    assert got["persons"] == []
    assert got["joints"] == [[None, None, None, 0.0]] * BODY32.num_joints
    assert got["views"] == [0] * BODY32.num_joints
    assert got["mode"] == "lost"
    assert got["skeleton"] == BODY32.name
    with pytest.raises(ValueError, match="name its layout"):
        s.skeleton_message(persons=[], seq=9, t_capture_ns=10, cameras=["a"], latency_ms={})


def test_the_builder_refuses_what_is_not_a_list_of_persons(persons_scene: Any) -> None:
    pose = persons_scene.pose(1, 0)
    common: dict[str, Any] = {"seq": 1, "t_capture_ns": 1, "cameras": ["a"], "latency_ms": {}}
    with pytest.raises(ValueError, match="exactly one"):
        s.skeleton_message(pose, persons=[(1, pose)], **common)
    with pytest.raises(ValueError, match="distinct integers"):
        s.skeleton_message(persons=[(1, pose), (1, pose)], **common)
    with pytest.raises(ValueError, match="distinct integers"):
        s.skeleton_message(persons=[(-1, pose)], **common)
    with pytest.raises(ValueError, match="one layout"):
        s.skeleton_message(persons=[(1, pose)], skeleton=BODY32.name, **common)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda m: m["persons"][1].update(id=1), "persons[1].id", "above the previous"),
        (lambda m: m["persons"][0].update(id=-3), "persons[0].id", ">= 0"),
        (lambda m: m["persons"][2].update(joints=m["persons"][2]["joints"][:16]), "persons[2].joints", "17"),
        (lambda m: m["persons"][1].update(views=[2] * 16), "persons[1].views", "a list of 17"),
        (lambda m: m["persons"][1].pop("joints"), "persons[1].joints", "missing"),
        (lambda m: m.update(persons={"id": 1}), "persons", "a list"),
        (lambda m: m["persons"].__setitem__(0, [1, 2]), "persons[0]", "a map"),
        (lambda m: m.update(joints=m["persons"][1]["joints"]), "joints", "first person"),
        (lambda m: m["persons"][0].update(rotations={"frame": "z_up"}), "persons[0].rotations.frame",
         "y_up_rh"),
    ],
)
def test_the_parser_refuses_persons_that_break_the_contract(persons_scene: Any, change: Any, field: str,
                                                            words: str) -> None:
    message = wire(persons_scene.message(25))
    change(message)
    with pytest.raises(MessageError, match=words) as err:
        s.parse_skeleton(message)
    assert (err.value.field, err.value.reason) == (field, "malformed")


def test_nobody_tracked_with_joint_positions_at_the_top_is_refused(persons_scene: Any) -> None:
    message = wire(persons_scene.message(0, persons=[]))
    message["joints"][0] = [0.0, 0.0, 1.0, 0.9]
    with pytest.raises(MessageError, match="nobody is tracked"):
        s.parse_skeleton(message)


def test_a_message_before_persons_still_parses(persons_scene: Any) -> None:
    message = wire(persons_scene.message(0))
    del message["persons"]
    assert "persons" not in s.parse_skeleton(message)


def _body32(pid: int) -> Pose3D:
    rng = np.random.default_rng(pid)
    j = BODY32.num_joints
    return Pose3D(joints=rng.uniform(-1, 2, (j, 3)), confidence=rng.uniform(0.2, 1, j),
                  views=rng.integers(0, 5, j), support=np.ones((2, j), bool), skeleton=BODY32.name,
                  mode="tracked")


def test_a_smaller_layout_trims_every_person() -> None:
    people = [(3, _body32(3)), (7, _body32(7))]
    full = s.skeleton_message(persons=people, seq=1, t_capture_ns=1, cameras=["a"], latency_ms={},
                              t_publish_ns=2)
    small = s.skeleton_in_layout(full, H36M17.name)
    s.parse_skeleton({**small})
    assert small["skeleton"] == H36M17.name
    for entry, whole in zip(small["persons"], full["persons"], strict=True):
        assert entry["joints"] == whole["joints"][:17]
        assert entry["views"] == whole["views"][:17]
        assert entry["id"] == whole["id"]
    assert small["joints"] == small["persons"][0]["joints"]
    assert full["persons"][0]["joints"] != small["persons"][0]["joints"]  # the published one is untouched


def test_one_performer_in_h36m17_is_today_s_message_plus_persons() -> None:
    """``?skeleton=h36m17`` on a single-person full-body message: exactly today's keys and values, plus
    ``persons`` (also trimmed)."""
    pose = _body32(1)
    full = s.skeleton_message(pose, seq=1, t_capture_ns=1, cameras=["a"], latency_ms={}, t_publish_ns=2)
    small = s.skeleton_in_layout(full, H36M17.name)
    assert set(small) == TODAY_KEYS | {"persons"}
    h36 = Pose3D(joints=pose.joints[:17], confidence=pose.confidence[:17], views=pose.views[:17],
                 support=pose.support[:, :17], skeleton=H36M17.name, mode="tracked")
    today = s.skeleton_message(h36, seq=1, t_capture_ns=1, cameras=["a"], latency_ms={}, t_publish_ns=2)
    assert small == today


def test_a_smaller_layout_gets_only_its_own_bones_rotations() -> None:
    """The full body's rotations carry 21 bones (the toes last); a Human3.6M-17 client gets the 19 bones a
    Human3.6M-17 service sends, in their order and hierarchy, at the top level and in every person."""
    from crosspose.motion import BONE_PARENTS, BONES, UNITY_BONES, humanoid_map

    rng = np.random.default_rng(0)
    b = len(BONES)
    payload = s.rotations_payload(BONES, [UNITY_BONES[n] for n in BONES], BONE_PARENTS,
                                  rng.normal(size=(b, 3)), np.zeros(3), rng.normal(size=(b, 4)))
    full = s.skeleton_message(persons=[(0, _body32(0))], seq=1, t_capture_ns=1, cameras=["a"],
                              latency_ms={}, t_publish_ns=2)
    s.attach_rotations(full, {0: payload})
    small = s.skeleton_in_layout(full, H36M17.name)
    h36m_bones = humanoid_map(H36M17).bones
    assert len(h36m_bones) == 19
    assert "left_toes" not in h36m_bones
    for rotations in (small["rotations"], small["persons"][0]["rotations"]):
        s.parse_rotations(rotations)
        assert rotations["bones"] == list(h36m_bones) == list(BONES[:19])
        assert rotations["parents"] == list(BONE_PARENTS[:19])
        assert rotations["local"] == payload["local"][:19]
        assert rotations["rest_offsets"] == payload["rest_offsets"][:19]
    assert len(full["rotations"]["bones"]) == b  # the published message keeps the toes
