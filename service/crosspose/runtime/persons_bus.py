"""Several performers between the inference and solver stages (``capture.max_persons`` > 1).

One ``heatmaps.`` message per frame set, as with one performer: its arrays are the lowest id's (all-zero
heatmaps and NaN projections when nobody is followed), and its header adds

* ``person``: that performer's id (None: nobody followed);
* ``persons``: the other performers, each ``{"id", "heatmaps", "projections"}`` with the arrays' metadata;
  their arrays are the message's buffers after its own two, two per performer in that order (float16 /
  float32, as the message's own: a header stays small, under the bus's 1 MiB header limit);
* ``volume``: ``[[x, y, z], [x, y, z]]`` the capture volume's corners (metres) the solver checks every
  solved root against (None: no volume).

The solver reads every performer's arrays back through the schema's own parser
(:func:`crosspose.bus.schema.parse_heatmaps`), so they are checked as strictly as the message's own. It
answers with one ``track.`` message per performer of the set (a lost one: all-NaN joints, no views), which
the inference stage gathers by frame set (:func:`newest_tracks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crosspose.bus.codec import pack_array
from crosspose.bus.schema import HeatmapsMessage, parse_heatmaps
from crosspose.core import BackendOutput, Track
from crosspose.inference.association import Volume


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
    box = None if volume is None else [volume.lo.tolist(), volume.hi.tolist()]
    return {"person": primary, "persons": entries, "volume": box}, buffers


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
