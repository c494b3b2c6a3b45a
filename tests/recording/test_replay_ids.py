"""A replay's performer ids and its comparison per performer (issue 21), on a scene of known performers:
the replay's own ids (from 0, in its own order) become the take's, matched by where each performer first
appears; someone the take does not hold gets an id above all of the take's."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from crosspose.recording.replay import RecordedIds, compare
from crosspose.skeleton import H36M17


def test_replayed_ids_take_the_recorded_ids_of_the_nearest_performers(persons_scene: Any) -> None:
    scene = persons_scene
    recorded = [m for m in scene.messages() if m["seq"] != 20]  # the live stream skipped set 20
    ids = RecordedIds(recorded, H36M17.root)
    # The replay's own ids: 0 is the take's 2, 1 the take's 1, 2 the take's 5 (from set 20, where the take
    # holds no message: matched against the nearest set in time), 3 someone the take never held.
    own = {0: 2, 1: 1, 2: 5}
    base = scene.pose(1, 0)
    stranger = dataclasses.replace(base, joints=base.joints + np.array([0.0, 10.0, 0.0]))
    out = []
    for frame in range(scene.frames):
        persons = [(mine, scene.pose(theirs, frame)) for mine, theirs in own.items()
                   if frame in scene.spans[theirs]]
        if frame >= 40:
            persons.append((3, stranger))
        relabelled = ids.relabel(persons, frame, scene.t_capture_ns(frame))
        assert [id for id, _ in relabelled] == sorted(id for id, _ in relabelled)
        out.append(scene.message(frame, relabelled))
    assert ids.map == {0: 2, 1: 1, 2: 5, 3: 6}
    for frame in (0, 25, 59):
        assert [p["id"] for p in out[frame]["persons"]] == scene.ids_at(frame) + ([6] if frame >= 40 else [])

    cmp = compare(out, recorded)
    assert cmp.common == scene.frames - 1
    assert cmp.identical  # every performer of the take where it is: 0 mm
    assert cmp.same_ids == 40 - 1  # from set 40 on, the replay holds someone the take does not
    by_id = {p.id: p for p in cmp.persons}
    assert sorted(by_id) == [1, 2, 5, 6]
    assert (by_id[2].recorded, by_id[2].replayed, by_id[2].both) == (29, 29, 29)  # set 20 not in both
    assert (by_id[5].recorded, by_id[5].both) == (39, 39)
    assert (by_id[6].recorded, by_id[6].replayed, by_id[6].both) == (0, 20, 0)
    assert "person 6: in 0 recorded and 20 replayed sets" in cmp.text()


def test_the_comparison_is_per_performer_not_per_top_level(persons_scene: Any) -> None:
    """Performer 2 replayed 1 cm off, performer 1 exact: the distances are each performer's own."""
    scene = persons_scene
    recorded = scene.messages()[:20]  # ids 1 and 2 (5 starts at set 20)
    replayed = []
    for frame in range(20):
        pose = scene.pose(2, frame)
        moved = dataclasses.replace(pose, joints=pose.joints + np.array([0.01, 0.0, 0.0]))
        replayed.append(scene.message(frame, [(1, scene.pose(1, frame)), (2, moved)]))
    cmp = compare(replayed, recorded)
    by_id = {p.id: p for p in cmp.persons}
    assert by_id[1].max_m < 1e-4
    assert abs(by_id[2].median_m - 0.01) < 1e-3
    assert not cmp.identical
    assert cmp.same_ids == 20
    # A take of one performer (id 0) compares and reads as before: one line.
    single = [scene.message(frame, [(0, scene.pose(1, frame))]) for frame in range(5)]
    one = compare(single, single)
    assert one.identical
    assert [p.id for p in one.persons] == [0]
    assert "\n" not in one.text()
