"""Several performers between the inference and solver stages (``capture.max_persons`` > 1).

One ``heatmaps.`` message per frame set, as with one performer: its arrays are the lowest id's (all-zero
heatmaps and NaN projections when nobody is followed), and its header adds

* ``person``: that performer's id (None: nobody followed);
* ``persons``: the other performers, each ``{"id", "heatmaps", "projections"}`` with the arrays' metadata;
  their arrays are the message's buffers after its own two, two per performer in that order (float16 /
  float32, as the message's own: a header stays small, under the bus's 1 MiB header limit);
* ``volume``: ``[[x, y, z], [x, y, z]]`` the capture volume's corners (metres) the solver checks every
  solved root against (None: no volume). A single-performer message (``capture.max_persons`` 1) carries
  this field too, without the two above: its one performer's root is checked the same way.

The solver reads every performer's arrays back through the schema's own parser
(:func:`crosspose.bus.schema.parse_heatmaps`), so they are checked as strictly as the message's own. It
answers with one ``track.`` message per performer of the set (a lost one: all-NaN joints, no views), which
the inference stage gathers by frame set (:func:`newest_tracks`).

Both sides are functions without sockets (:func:`persons_output`, :func:`solve_persons`,
:func:`solve_one`), so that a replay (:mod:`crosspose.recording.replay`) runs the stages' own code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from crosspose.bus.codec import pack_array
from crosspose.bus.schema import HeatmapsMessage, parse_heatmaps
from crosspose.core import BackendOutput, PoseStep, Track
from crosspose.inference.association import Volume
from crosspose.inference.crops import HEATMAP_SIZE
from crosspose.skeleton import Skeleton
from crosspose.solver import Pose3D


def persons_extra(others: Sequence[tuple[int, BackendOutput]], primary: int | None,
                  volume: Volume | None) -> tuple[dict[str, Any], list[Any]]:
    """The header fields above for the performers after the primary one (``[(id, output)]``), and the
    buffers to send after the message's own two."""
    entries, buffers = [], []
    for id, out in others:
        hm_meta, hm = pack_array(np.asarray(out.heatmaps, np.float16))
        p_meta, p = pack_array(np.asarray(out.projections, np.float32))
        entries.append({"id": int(id), "heatmaps": hm_meta, "projections": p_meta})
        buffers += [hm, p]
    return {"person": primary, "persons": entries, "volume": volume_field(volume)}, buffers


def volume_field(volume: Volume | None) -> list[list[float]] | None:
    """The header's ``volume`` field: the capture volume's two corners (metres), or None."""
    return None if volume is None else [volume.lo.tolist(), volume.hi.tolist()]


def persons_output(outputs: Sequence[tuple[int, BackendOutput]], volume: Volume | None, *, cameras: int,
                   joints: int) -> tuple[BackendOutput, list[Any]]:
    """One heatmaps message's content for every performer's heatmaps ``[(id, output)]`` (ascending ids): the
    lowest id's output as the message's own, with the other performers and the capture volume in its
    ``extra`` (the header fields above), and the buffers to send after the message's own two. Nobody
    followed: every view empty (zero heatmaps, NaN projections), as one performer's lost frame set."""
    if outputs:
        primary_id, primary = outputs[0]
    else:
        heatmaps = np.zeros((cameras, joints, HEATMAP_SIZE, HEATMAP_SIZE), np.float32)
        empty = np.full((cameras, 3, 4), np.nan)
        primary_id, primary = None, BackendOutput(heatmaps, empty, {}, [None] * cameras)
    fields, buffers = persons_extra(outputs[1:], primary_id, volume)
    return dataclasses.replace(primary, extra={**primary.extra, **fields}), buffers


def read_persons(header: dict[str, Any], buffers: Sequence[Any], main: HeatmapsMessage, *,
                 cameras: Sequence[str], joints: int) -> list[tuple[int, HeatmapsMessage]]:
    """Every performer's checked heatmaps of one message, ``[(id, heatmaps)]`` ascending by id (empty when
    nobody is followed).

    Raises:
        MessageError: a performer's arrays fail the schema's checks; ValueError/TypeError/KeyError: the
            ``persons`` fields are not as :func:`persons_extra` writes them.
    """
    primary = header.get("person")
    out: list[tuple[int, HeatmapsMessage]] = []
    if primary is not None:
        out.append((_id(primary), main))
    entries = header.get("persons") or []
    if not isinstance(entries, list) or len(buffers) != 2 + 2 * len(entries):
        raise ValueError(f"{len(buffers)} buffers for the message's own 2 and 2 per other performer "
                         f"({len(entries) if isinstance(entries, list) else entries!r})")
    for k, entry in enumerate(entries):
        sub = dict(header, heatmaps=entry["heatmaps"], projections=entry["projections"])
        data = buffers[2 + 2 * k: 4 + 2 * k]
        out.append((_id(entry["id"]), parse_heatmaps(sub, data, cameras=cameras, joints=joints)))
    ids = [id for id, _ in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"performer ids repeat in one message: {ids}")
    return sorted(out, key=lambda x: x[0])


def _id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"a performer id must be an integer >= 0, got {value!r}")
    return value


def volume_of(header: dict[str, Any]) -> Volume | None:
    """The capture volume a heatmaps header names (None: none)."""
    box = header.get("volume")
    if box is None:
        return None
    return Volume(np.asarray(box[0], np.float64), np.asarray(box[1], np.float64))


def lost_track(id: int, seq: int, t_capture_ns: int | None, skeleton: str, num_joints: int) -> Track:
    """The track that tells inference performer ``id`` was not solved from set ``seq`` (no joint known)."""
    return Track(id=id, seq=seq, t_capture_ns=t_capture_ns, joints=np.full((num_joints, 3), np.nan),
                 views=np.zeros(num_joints, np.int64), confidence=np.zeros(num_joints), skeleton=skeleton)


def newest_tracks(tracks: Sequence[Track]) -> dict[int, Track | None]:
    """Of tracks gathered from the bus, those of the newest frame set, by id (a lost one: None)."""
    if not tracks:
        return {}
    seq = max(t.seq for t in tracks)
    return {t.id: (t if t.supported().any() else None) for t in tracks if t.seq == seq}


#: Frame sets after which :func:`fresh_tracks` forgets an id it has not been given a track of (ended: a late
#: track is never that late).
FORGET_FED_SETS = 300


def fresh_tracks(tracks: Sequence[Track], fed_seq: dict[int, int]) -> dict[int, Track | None]:
    """:func:`newest_tracks` of ``tracks`` less those no newer than the track each id was last given
    (``fed_seq``: id → seq, updated with what is returned). The solver sends one message per performer, so a
    performer's track can arrive after the next set's tracks of the others were used: alone in a later
    gathering it would otherwise be the newest there, and its performer cropped from a pose older than the
    one they already have."""
    kept = [t for t in tracks if t.seq > fed_seq.get(t.id, -1)]
    newest = newest_tracks(kept)
    if newest:
        seq = max(t.seq for t in kept)
        fed_seq.update(dict.fromkeys(newest, seq))
        # ids are never reused: an id not heard of for FORGET_FED_SETS sets has ended, its entry goes
        for id in [id for id, last in fed_seq.items() if last < seq - FORGET_FED_SETS]:
            del fed_seq[id]
    return newest


def root_outside(pose: Pose3D, volume: Volume | None, skeleton: Skeleton) -> bool:
    """Whether ``pose``'s root is known and outside ``volume`` (None: no volume, never outside)."""
    root = np.asarray(pose.joints[skeleton.root], np.float64)
    return volume is not None and bool(np.isfinite(root).all()) and not bool(volume.contains(root))


@dataclasses.dataclass(frozen=True, eq=False)
class SolvedSet:
    """One frame set through the solver stage's solving (:func:`solve_persons`, :func:`solve_one`).

    Attributes:
        persons: ``[(id, pose)]`` the performers reported, ascending by id (possibly empty).
        tracks: one track per performer of the message, back to inference (a lost one: no joint known).
        outside: performers solved with their root outside the capture volume (not reported, lost).
    """

    persons: list[tuple[int, Pose3D]]
    tracks: list[Track]
    outside: int


def solve_persons(pose_step: PoseStep, entries: Sequence[tuple[int, HeatmapsMessage]], volume: Volume | None,
                  *, seq: int, t_capture_ns: int | None, skeleton: Skeleton) -> SolvedSet:
    """Each performer of a message with their own solver state (:meth:`PoseStep.run_person`): one track per
    performer (a lost one — no view, or a root outside the capture volume — with no joint), those reported
    ascending by id; the performers not solved for long are forgotten."""
    persons, tracks, outside = [], [], 0
    for id, received in entries:
        track = None
        if np.isfinite(received.projections).all(axis=(1, 2)).any():
            pose, solved = pose_step.run_person(id, received.heatmaps, received.projections, seq=seq,
                                                t_capture_ns=t_capture_ns)
            if volume is None or bool(volume.contains(pose.joints[skeleton.root])):
                track = solved
                persons.append((id, pose))
            else:  # not reported (an unknown root neither); counted when known to be outside
                outside += int(root_outside(pose, volume, skeleton))
        tracks.append(track if track is not None else
                      lost_track(id, seq, t_capture_ns, skeleton.name, skeleton.num_joints))
    pose_step.forget(seq, t_capture_ns)
    return SolvedSet(sorted(persons, key=lambda x: x[0]), tracks, outside)


def solve_one(pose_step: PoseStep, received: HeatmapsMessage, volume: Volume | None, *,
              skeleton: Skeleton) -> SolvedSet:
    """The one performer of a single-performer message (:meth:`PoseStep.run`, id 0, published whatever
    its mode, as always), unless its solved root is outside ``volume``: then nobody is reported, the track
    goes back lost (inference searches again, taking only someone inside) and the solver's next search is
    cold (its previous pose forgotten, the limb lengths kept)."""
    seq, t = received.seq, received.t_capture_ns
    pose, track = pose_step.run(received.heatmaps, received.projections, seq=seq, t_capture_ns=t)
    if root_outside(pose, volume, skeleton):
        pose_step.solver.track.forget_pose()
        return SolvedSet([], [lost_track(pose_step.track_id, seq, t, skeleton.name, skeleton.num_joints)], 1)
    return SolvedSet([(pose_step.track_id, pose)], [track], 0)
