"""Frame-set assembly by capture time: pure logic (no sockets), driven by ``add`` and ``poll``.

Rule (all times in ns on one monotonic clock):

* The earliest pending frame of any camera, at ``t0``, anchors the next set; its window is
  ``[t0, t0 + 2·tolerance]`` (one frame period with the default half-period tolerance, so every
  camera's free-running phase fits).
* A camera is *present* with its earliest pending frame in the window, *missing* when its earliest
  pending frame is already past the window, and *unknown* while it has nothing pending.
* A set is emitted as soon as no camera is unknown, or ``2·tolerance + max_wait`` after the anchor
  frame *arrived* (the ``now_ns`` of its ``add``) — a dead camera never holds the pipeline longer than
  that, and transport delay or a backlog in this process does not eat into the wait.
* The set's reference ``t_ref`` is the midrange of its present frames, so every present frame lies
  within ``tolerance`` of it; ``skew_ns[c] = t_c − t_ref``.
* A frame older than the last emitted ``t_ref`` is *stale*, one not newer than its camera's
  previous frame is *out of order*; both are dropped and counted. Sequence gaps count as *lost*.

Times must be plausible before they get here (:mod:`crosspose.sync.clock`): a frame stamped far in
the future would anchor a set on itself and make every real frame after it stale.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crosspose.bus.schema import frameset_message

Buffer = Any  # bytes | memoryview: whatever the transport handed over


@dataclass
class PendingFrame:
    """A received frame waiting for its set."""

    t_ns: int
    header: dict[str, Any]
    buffer: Buffer
    arrival_ns: int


@dataclass
class FrameSet:
    """One frame per camera (``None`` where missing), in camera order.

    Attributes:
        seq: set number (0, 1, …).
        t_ref_ns: reference capture time; every present frame is within the tolerance of it.
        cameras: ``C`` names; present: ``C`` flags; frames: ``C`` headers or None;
        buffers: ``C`` buffers or None; skew_ns: ``C`` ``t_capture − t_ref`` or None.
        t_emit_ns: clock value when it was emitted.
    """

    seq: int
    t_ref_ns: int
    cameras: list[str]
    present: list[bool]
    frames: list[dict[str, Any] | None]
    buffers: list[Buffer | None]
    skew_ns: list[int | None]
    t_emit_ns: int

    def header(self) -> dict[str, Any]:
        """The ``frameset`` message header (buffers follow for PRESENT cameras, in camera order)."""
        return frameset_message(
            seq=self.seq,
            t_ref_ns=self.t_ref_ns,
            t_emit_ns=self.t_emit_ns,
            cameras=self.cameras,
            present=self.present,
            frames=self.frames,
            skew_ns=self.skew_ns,
        )

    def present_buffers(self) -> list[Buffer]:
        """Buffers of the present cameras, in camera order."""
        return [b for b, p in zip(self.buffers, self.present, strict=True) if p]


@dataclass
class CameraSyncStats:
    """Per-camera counters and the latest measurements."""

    received: int = 0
    in_sets: int = 0
    missing: int = 0
    dropped_stale: int = 0
    dropped_out_of_order: int = 0
    dropped_overflow: int = 0
    lost: int = 0
    last_skew_ns: int | None = None
    last_t_ns: int | None = None
    last_seq: int | None = None
    last_arrival_ns: int | None = None
    fps: float = 0.0

    @property
    def dropped(self) -> int:
        """Frames received but never put in a set."""
        return self.dropped_stale + self.dropped_out_of_order + self.dropped_overflow

    def as_dict(self, now_ns: int | None = None) -> dict[str, Any]:
        """Plain dict for ``status.sync.``; with ``now_ns``: ``age_ms``, the newest frame's age by its
        capture time, and ``arrival_age_ms``, the time since a frame of this camera last arrived here
        (this process's clock: what a camera's state is judged by, whatever its frames or heartbeats say)."""
        age = arrival_age = None
        if now_ns is not None and self.last_t_ns is not None:
            age = (now_ns - self.last_t_ns) / 1e6
        if now_ns is not None and self.last_arrival_ns is not None:
            arrival_age = (now_ns - self.last_arrival_ns) / 1e6
        return {
            "received": self.received,
            "in_sets": self.in_sets,
            "missing": self.missing,
            "dropped_stale": self.dropped_stale,
            "dropped_out_of_order": self.dropped_out_of_order,
            "dropped_overflow": self.dropped_overflow,
            "lost": self.lost,
            "skew_ms": None if self.last_skew_ns is None else self.last_skew_ns / 1e6,
            "age_ms": age,
            "arrival_age_ms": arrival_age,
            "fps": round(self.fps, 2),
        }


class FrameSetAssembler:
    """Groups frames of ``cameras`` into :class:`FrameSet` s (see the module docstring for the rule).

    Args:
        cameras: camera names in rig order (``C``).
        tolerance_ns: max distance of a present frame from the set's reference time.
        max_wait_ns: extra wait after the window closes for a camera that has sent nothing
            (default: ``tolerance_ns``).
        max_pending: frames kept per camera; older ones are dropped (counted as overflow).
    """

    def __init__(
        self,
        cameras: Sequence[str],
        tolerance_ns: int,
        max_wait_ns: int | None = None,
        *,
        max_pending: int = 8,
    ) -> None:
        if not cameras:
            raise ValueError("FrameSetAssembler needs at least one camera")
        if len(set(cameras)) != len(cameras):
            raise ValueError(f"camera names must be unique, got {list(cameras)}")
        if tolerance_ns <= 0:
            raise ValueError(f"tolerance_ns must be > 0, got {tolerance_ns}")
        self.cameras = list(cameras)
        self.tolerance_ns = int(tolerance_ns)
        self.max_wait_ns = int(tolerance_ns if max_wait_ns is None else max_wait_ns)
        self.max_pending = max_pending
        self.stats = {c: CameraSyncStats() for c in self.cameras}
        self.dropped_foreign = 0
        self.sets_emitted = 0
        self.last_t_ref_ns: int | None = None
        self._pending: dict[str, deque[PendingFrame]] = {c: deque() for c in self.cameras}

    # -- input -----------------------------------------------------------------------------------
    def add(
        self, header: Mapping[str, Any], buffer: Buffer, now_ns: int, *, t_ns: int | None = None
    ) -> list[FrameSet]:
        """Take one frame (``header["camera"]``, ``header["t_capture_ns"]`` or ``t_ns`` when the
        caller maps clocks); returns the sets that became ready."""
        cam = header.get("camera")
        t = header.get("t_capture_ns") if t_ns is None else t_ns
        if cam not in self._pending or not isinstance(t, int) or isinstance(t, bool):
            self.dropped_foreign += 1
            return self.poll(now_ns)
        st = self.stats[cam]
        st.received += 1
        st.last_arrival_ns = now_ns
        seq = header.get("seq")
        if isinstance(seq, int) and st.last_seq is not None and seq > st.last_seq + 1:
            st.lost += seq - st.last_seq - 1
        if isinstance(seq, int):
            st.last_seq = seq if st.last_seq is None else max(seq, st.last_seq)
        if st.last_t_ns is not None and t <= st.last_t_ns:
            st.dropped_out_of_order += 1
            return self.poll(now_ns)
        if st.last_t_ns is not None:
            dt = (t - st.last_t_ns) / 1e9
            if dt > 0:
                st.fps = 1 / dt if st.fps == 0 else 0.9 * st.fps + 0.1 / dt
        st.last_t_ns = t
        if self.last_t_ref_ns is not None and t < self.last_t_ref_ns:
            st.dropped_stale += 1
            return self.poll(now_ns)
        q = self._pending[cam]
        q.append(PendingFrame(t, dict(header), buffer, now_ns))
        while len(q) > self.max_pending:
            q.popleft()
            st.dropped_overflow += 1
        return self.poll(now_ns)

    # -- output ----------------------------------------------------------------------------------
    def poll(self, now_ns: int) -> list[FrameSet]:
        """Emit every set that is complete or whose wait ran out at ``now_ns``."""
        out = []
        while (fs := self._try_emit(now_ns)) is not None:
            out.append(fs)
        return out

    def _try_emit(self, now_ns: int) -> FrameSet | None:
        heads = [q[0] for q in self._pending.values() if q]
        if not heads:
            return None
        anchor = min(heads, key=lambda f: f.t_ns)
        t0 = anchor.t_ns
        window_end = t0 + 2 * self.tolerance_ns
        unknown = any(not q for q in self._pending.values())
        if unknown and now_ns < anchor.arrival_ns + 2 * self.tolerance_ns + self.max_wait_ns:
            return None
        chosen: list[PendingFrame | None] = []
        for cam in self.cameras:
            q = self._pending[cam]
            chosen.append(q.popleft() if q and q[0].t_ns <= window_end else None)
        times = [f.t_ns for f in chosen if f is not None]
        t_ref = (min(times) + max(times)) // 2
        frames: list[dict[str, Any] | None] = []
        buffers: list[Buffer | None] = []
        skews: list[int | None] = []
        for cam, f in zip(self.cameras, chosen, strict=True):
            st = self.stats[cam]
            if f is None:
                st.missing += 1
                frames.append(None)
                buffers.append(None)
                skews.append(None)
                continue
            st.in_sets += 1
            st.last_skew_ns = f.t_ns - t_ref
            frames.append(f.header)
            buffers.append(f.buffer)
            skews.append(f.t_ns - t_ref)
        # Pending frames now older than the reference can never join a later set.
        for cam, q in self._pending.items():
            while q and q[0].t_ns < t_ref:
                q.popleft()
                self.stats[cam].dropped_stale += 1
        fs = FrameSet(
            seq=self.sets_emitted,
            t_ref_ns=t_ref,
            cameras=list(self.cameras),
            present=[f is not None for f in chosen],
            frames=frames,
            buffers=buffers,
            skew_ns=skews,
            t_emit_ns=now_ns,
        )
        self.sets_emitted += 1
        self.last_t_ref_ns = t_ref
        return fs

    @property
    def pending(self) -> int:
        """Frames waiting for a set (all cameras)."""
        return sum(len(q) for q in self._pending.values())

    def status(self, now_ns: int) -> dict[str, Any]:
        """Per-camera counters plus totals, for ``status.sync.``."""
        return {
            "sets": self.sets_emitted,
            "pending": self.pending,
            "dropped_foreign": self.dropped_foreign,
            "tolerance_ms": self.tolerance_ns / 1e6,
            "cameras": {c: s.as_dict(now_ns) for c, s in self.stats.items()},
        }
