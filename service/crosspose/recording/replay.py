"""Replay a take through the pipeline's own path: frame sets in order → the core's inference half →
the heatmaps message (float16, as on the bus) → the core's solver half → the skeleton message.

It uses the take's recorded config and calibration (or ones given) and the same core as the live
stages (:mod:`crosspose.core`: ``network``, the ONNX fusion network with the performer's track
placing the crops; ``simulated``, heatmaps from the synthetic studio's ground truth).
Differences from the recorded stream, and why:

* the live pipeline skips frame sets while inference is busy (latest wins); a replay solves every
  recorded set (``only_solved=True`` restricts it to the sets the live stream solved);
* tracking state: the live solver and crops start from whatever came before the take; the replay
  starts cold at its first set, and feeds each track back at once (live: when it arrives);
* the ``simulated`` backend draws its heatmap errors from one random stream per process: a replay
  draws fresh (seeded) errors, so it matches the recorded stream only within the simulated error;
* frames stored as JPEG from raw cameras are not bit-identical to what the live network saw.

Several performers (the take's ``capture.max_persons`` > 1): as live, every performer followed gets their own
crops and all go through the network in one call; the heatmaps message carries the others in its header
(:mod:`crosspose.runtime.persons_bus`, the stages' own functions) and each performer is solved with their own
solver state, the capture volume enforced as live. The replay hands out its own ids from 0; each is given the
id of the recorded performer nearest them when they first appear (:class:`RecordedIds`), so the replayed
stream carries the take's ids, and :func:`compare` compares per performer.

On CPU a replay is deterministic: two replays of a take give identical skeletons.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crosspose.config import Config
from crosspose.recording.take import Take, TakeError, person_ids, skeleton_stream

if TYPE_CHECKING:
    from crosspose.core.backends import HeatmapBackend


#: Metres a replayed performer's root may be from a recorded one's to take their id (first appearance).
MATCH_M = 0.5
#: Seconds of capture time between a replayed frame set and the recorded message it is matched against
#: when the recording has no message of that set (the live stream skipped it).
MATCH_WINDOW_S = 0.25


@dataclass(frozen=True)
class PersonComparison:
    """One performer (by the take's id) in the replayed and recorded streams, on the common frame sets.

    Attributes:
        id: the performer's id; recorded / replayed: common frame sets where each stream holds them;
        both: where both do; median_m / p95_m / max_m: per-joint 3D distance there (joints finite in both).
    """

    id: int
    recorded: int
    replayed: int
    both: int
    median_m: float
    p95_m: float
    max_m: float

    def text(self) -> str:
        return (f"person {self.id}: in {self.recorded} recorded and {self.replayed} replayed sets, "
                f"{self.both} both: median {self.median_m * 1000:.1f} mm, p95 {self.p95_m * 1000:.1f} mm, "
                f"max {self.max_m * 1000:.1f} mm")


@dataclass
class ReplayComparison:
    """Replayed vs recorded skeletons on the frame sets both hold (distances in metres).

    Attributes:
        common: frame sets in both; median_m / p95_m / max_m: per-joint 3D distance over joints
        finite in both (every performer's, matched by id); identical: every common frame equal to 0.1 mm.
        persons: per performer id of either stream (:class:`PersonComparison`), ascending; empty for streams
            without ``persons`` lists (takes recorded before them).
        same_ids: common frame sets whose performer ids are the same in both (None: no ``persons`` lists).
    """

    common: int
    median_m: float
    p95_m: float
    max_m: float
    identical: bool
    persons: tuple[PersonComparison, ...] = ()
    same_ids: int | None = None

    def text(self) -> str:
        """One line; with several performers (or another id than 0) a line per performer after it."""
        line = (f"{self.common} frame sets in both: joint distance median {self.median_m * 1000:.1f} mm, "
                f"p95 {self.p95_m * 1000:.1f} mm, max {self.max_m * 1000:.1f} mm"
                + (" (identical)" if self.identical else ""))
        if [p.id for p in self.persons] in ([], [0]):
            return line
        return "\n".join([f"{line}; the same performer ids in {self.same_ids} of them",
                          *(f"  {p.text()}" for p in self.persons)])


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(a - b, axis=-1)
    return d[np.isfinite(d)]


def _stats(d: np.ndarray) -> tuple[float, float, float]:
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    return float(np.median(d)), float(np.percentile(d, 95)), float(d.max())


def compare(replayed: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> ReplayComparison:
    """Per-joint distances between two skeleton streams on their common frame set numbers, per performer id
    (the top level for streams without ``persons`` lists)."""
    rec = {int(m["seq"]): m for m in recorded}
    pairs = [(m, rec[int(m["seq"])]) for m in replayed if int(m["seq"]) in rec]
    if not pairs:
        return ReplayComparison(0, float("nan"), float("nan"), float("nan"), False)
    mine, theirs = [p[0] for p in pairs], [p[1] for p in pairs]
    replayed_stream = skeleton_stream(mine)
    recorded_stream = skeleton_stream(theirs)
    if replayed_stream.skeleton != recorded_stream.skeleton:
        raise TakeError(f"the replay solved layout {replayed_stream.skeleton}, the take holds "
                        f"{recorded_stream.skeleton}: replay with the take's solver layout to compare")
    ids = sorted(set(person_ids(mine)) | set(person_ids(theirs)))
    if not ids and not any(isinstance(m.get("persons"), list) for m in mine + theirs):
        d = _distances(replayed_stream.joints, recorded_stream.joints)
        if d.size == 0:
            return ReplayComparison(len(pairs), float("nan"), float("nan"), float("nan"), False)
        return ReplayComparison(len(pairs), *_stats(d), bool(d.max() < 1e-4))
    persons, every = [], []
    for id in ids:
        a, b = skeleton_stream(mine, person=id).joints, skeleton_stream(theirs, person=id).joints
        held_a, held_b = np.isfinite(a).all(-1).any(-1), np.isfinite(b).all(-1).any(-1)
        d = _distances(a, b)
        every.append(d)
        both = int((held_a & held_b).sum())
        persons.append(PersonComparison(id, int(held_b.sum()), int(held_a.sum()), both, *_stats(d)))
    d = np.concatenate(every) if every else np.zeros(0)
    same = sum(person_ids([x]) == person_ids([y]) for x, y in pairs)
    return ReplayComparison(len(pairs), *_stats(d), bool(d.size and d.max() < 1e-4), tuple(persons), same)


class RecordedIds:
    """Replayed performer ids → the take's own ids.

    A replay starts cold and hands out ids from 0; the live run that recorded the take may have started
    earlier (its ids higher) or found the performers in another order. When a replayed id first appears it
    takes the id of the recorded performer nearest it (roots within :data:`MATCH_M`) in the recorded message
    of the same frame set (else the one nearest in capture time, within :data:`MATCH_WINDOW_S`) that no
    other replayed id took; one nobody matches gets an id above every recorded one. The map never changes
    afterwards (ids are never reused).

    Args:
        recorded: the take's skeleton messages.
        root: the root joint's index in their layout.
    """

    def __init__(self, recorded: list[dict[str, Any]], root: int) -> None:
        self._by_seq = {int(m["seq"]): m for m in recorded}
        self._times = sorted((int(m["t_capture_ns"]), int(m["seq"])) for m in recorded)
        self._root = root
        self.map: dict[int, int] = {}
        self._next = max(person_ids(recorded), default=-1) + 1

    def _recorded_at(self, seq: int, t_capture_ns: int) -> dict[str, Any] | None:
        if seq in self._by_seq:
            return self._by_seq[seq]
        near = min(self._times, key=lambda x: abs(x[0] - t_capture_ns), default=None)
        if near is None or abs(near[0] - t_capture_ns) > MATCH_WINDOW_S * 1e9:
            return None
        return self._by_seq[near[1]]

    def relabel(self, persons: list[tuple[int, Any]], seq: int, t_capture_ns: int) -> list[tuple[int, Any]]:
        """``[(replayed id, pose)]`` of one frame set → ``[(take id, pose)]``, ascending by id."""
        new = [(id, pose) for id, pose in persons if id not in self.map]
        if new:
            message = self._recorded_at(seq, t_capture_ns) or {}
            taken = set(self.map.values())
            roots = {}
            for entry in message.get("persons") or ():
                row = entry["joints"][self._root]
                if entry["id"] not in taken and None not in row[:3]:
                    roots[int(entry["id"])] = np.array(row[:3], np.float64)
            pairs = sorted((float(np.linalg.norm(pose.joints[self._root] - root)), id, rec)
                           for id, pose in new for rec, root in roots.items())
            for d, id, rec in pairs:
                if d <= MATCH_M and id not in self.map and rec not in taken:
                    self.map[id] = rec
                    taken.add(rec)
            for id, _ in new:
                if id not in self.map:  # someone the recording does not hold there: an id above all of its
                    self.map[id] = self._next
                    self._next += 1
        return sorted(((self.map[id], pose) for id, pose in persons), key=lambda x: x[0])


def take_config(take: Take) -> Config:
    """The service config recorded with ``take``."""
    data = take.config()
    if data is None:
        raise TakeError(f"take {take.id} holds no config.json; pass a config to replay it")
    return Config.model_validate(data)


def replay(
    take: Take,
    config: Config | None = None,
    *,
    calibration: str | Path | None = None,
    realtime: bool = False,
    only_solved: bool = False,
    seed: int = 0,
    on_message: Callable[[dict[str, Any]], None] | None = None,
    backend: HeatmapBackend | None = None,
) -> list[dict[str, Any]]:
    """The take's frame sets through inference + solver; returns the skeleton messages (DESIGN §5).

    Args:
        config: service config (default: the take's own); its ``inference``, ``solver`` and
            ``capture.max_persons`` apply.
        calibration: a rig file to use instead of the take's recorded calibrations.
        realtime: pace at the recorded rate (frame sets' ``t_ref_ns``), else as fast as possible.
        only_solved: replay only the frame sets the live stream solved.
        seed: seed of the simulated backend's heatmap errors.
        on_message: called with each skeleton message as it is produced.
        backend: the heatmap backend to run (default: the one the config names, for the take's first rig).
    """
    import torch

    from crosspose.bus.schema import heatmaps_message, parse_heatmaps, skeleton_message
    from crosspose.calibration import load_rig
    from crosspose.core import HeatmapStep, ImageSet, PoseStep, backend_from_config, capture_time_ns
    from crosspose.runtime.persons_bus import (
        newest_tracks,
        persons_output,
        read_persons,
        solve_one,
        solve_persons,
        volume_field,
        volume_of,
    )
    from crosspose.solver import Solver

    torch.manual_seed(seed)
    cfg = config or take_config(take)
    versions: list[tuple[int | None, int | None, Path]] = []  # (from_seq, version, file)
    if calibration is not None:
        versions.append((None, None, Path(calibration)))
    else:
        for c in take.manifest.get("calibrations", []):
            versions.append((c.get("from_seq"), c.get("version"), take.folder / c["file"]))
    if not versions:
        raise TakeError(f"take {take.id} holds no calibration; pass one to replay it")
    names = take.cameras

    def rig_at(i: int) -> Any:
        rig = load_rig(versions[i][2])
        return rig if list(rig.names) == names else rig.subset(names)

    current = 0
    rig = rig_at(0)
    heatmap_step = HeatmapStep(backend_from_config(cfg, rig, seed=seed) if backend is None else backend, rig)
    solver = Solver(cfg.solver.skeleton, options=cfg.solver.options)
    skeleton = solver.skeleton
    pose_step = PoseStep(solver)
    several = cfg.capture.max_persons > 1  # as the live stages: one inference worker follows them all
    recorded = take.skeleton_messages()
    ids = RecordedIds(recorded, skeleton.root) if several else None
    solved_seqs = {int(m["seq"]) for m in recorded} if only_solved else None
    out: list[dict[str, Any]] = []
    t0_wall = time.monotonic_ns()
    t0_ref: int | None = None
    for fs in take.framesets():
        h = fs.header
        seq = int(h["seq"])
        while current + 1 < len(versions) and (versions[current + 1][0] or 0) <= seq:
            current += 1
            heatmap_step.set_rig(rig_at(current))
        if solved_seqs is not None and seq not in solved_seqs:
            continue
        if realtime:
            t0_ref = int(h["t_ref_ns"]) if t0_ref is None else t0_ref
            wait = (int(h["t_ref_ns"]) - t0_ref) - (time.monotonic_ns() - t0_wall)
            if wait > 0:
                time.sleep(wait / 1e9)
        t_capture = capture_time_ns(h)
        images = ImageSet(seq, t_capture, fs.images(),
                          [f if p else None for f, p in zip(h["frames"], h["present"], strict=True)])
        # The inference stage's message (runtime.inference_stage): the volume, and the other performers.
        volume = getattr(getattr(heatmap_step.backend, "pipeline", None), "volume", None)
        more: list[Any] = []
        if several:
            result, more = persons_output(heatmap_step.run_persons(images), volume, cameras=len(names),
                                          joints=skeleton.num_joints)
            extra = {k: result.extra[k] for k in ("person", "persons", "volume")}
        else:
            result, extra = heatmap_step.run(images), {"volume": volume_field(volume)}
        hdr, bufs = heatmaps_message(
            seq=seq,
            t_capture_ns=t_capture,
            cameras=names,
            present=h["present"],
            heatmaps=result.heatmaps,
            projections=result.projections,
            latency_ms={},
            calibration_version=versions[current][1],
            backend=heatmap_step.backend.name,
            extra=extra,
        )
        # The solver stage's side: float16 on the bus (the same rounding), the same checks and solving.
        received = parse_heatmaps(hdr, bufs)
        if several:
            entries = read_persons(hdr, [*bufs, *more], received, cameras=names, joints=skeleton.num_joints)
            solved = solve_persons(pose_step, entries, volume_of(hdr), seq=seq, t_capture_ns=t_capture,
                                   skeleton=skeleton)
            persons = ids.relabel(solved.persons, seq, t_capture) if ids is not None else solved.persons
        else:
            solved = solve_one(pose_step, received, volume_of(hdr), skeleton=skeleton)
            persons = solved.persons
        msg = skeleton_message(
            persons=persons,
            skeleton=skeleton.name,
            seq=seq,
            t_capture_ns=t_capture,
            cameras=names,
            latency_ms={},
            t_publish_ns=t_capture,
            calibration_version=versions[current][1],
        )
        msg["replay"] = True
        # The tracks back to inference, as the inference stage takes them from the bus.
        if several:
            tracks = newest_tracks(solved.tracks)
            if tracks:
                heatmap_step.feedback_persons(tracks)
        else:
            heatmap_step.feedback(solved.tracks[0])
        out.append(msg)
        if on_message is not None:
            on_message(msg)
    return out
