"""FrameSetAssembler: exact cases, then properties over random arrivals (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosspose.sync import FrameSet, FrameSetAssembler

MS = 1_000_000
CAMS = ["a", "b", "c"]


def frame(cam: str, t: int, seq: int = 0) -> dict[str, Any]:
    return {"v": 1, "type": "frame", "camera": cam, "seq": seq, "t_capture_ns": t}


def test_complete_set_is_emitted_as_soon_as_every_camera_has_a_frame() -> None:
    asm = FrameSetAssembler(CAMS, tolerance_ns=8 * MS)
    assert asm.add(frame("a", 100 * MS), b"A", now_ns=101 * MS) == []
    assert asm.add(frame("c", 103 * MS), b"C", now_ns=104 * MS) == []
    (fs,) = asm.add(frame("b", 98 * MS + 1), b"B", now_ns=105 * MS)
    assert fs.present == [True, True, True]
    assert fs.buffers == [b"A", b"B", b"C"]
    assert fs.t_ref_ns == (98 * MS + 1 + 103 * MS) // 2
    assert fs.skew_ns == [100 * MS - fs.t_ref_ns, 98 * MS + 1 - fs.t_ref_ns, 103 * MS - fs.t_ref_ns]
    h = fs.header()
    assert h["type"] == "frameset"
    assert h["cameras"] == CAMS
    assert [f["camera"] for f in h["frames"]] == CAMS
    assert fs.present_buffers() == [b"A", b"B", b"C"]


def test_dead_camera_is_marked_missing_after_the_wait_never_later() -> None:
    asm = FrameSetAssembler(CAMS, tolerance_ns=8 * MS, max_wait_ns=4 * MS)
    asm.add(frame("a", 100 * MS), b"A", now_ns=100 * MS)
    assert asm.add(frame("b", 101 * MS), b"B", now_ns=101 * MS) == []
    assert asm.poll(now_ns=100 * MS + 16 * MS + 4 * MS - 1) == []  # window (2·tol) + max_wait not over
    (fs,) = asm.poll(now_ns=120 * MS)
    assert fs.present == [True, True, False]
    assert fs.frames[2] is None
    assert fs.skew_ns[2] is None
    assert fs.present_buffers() == [b"A", b"B"]
    assert asm.stats["c"].missing == 1


def test_the_wait_counts_from_arrival_so_transport_delay_does_not_split_sets() -> None:
    asm = FrameSetAssembler(["a", "b"], tolerance_ns=8 * MS, max_wait_ns=4 * MS)
    asm.add(frame("a", 100 * MS), b"A", now_ns=150 * MS)  # 50 ms on the way (big frames, busy host)
    assert asm.poll(now_ns=169 * MS) == []  # arrival + 2·tol + max_wait = 170 ms
    (fs,) = asm.add(frame("b", 101 * MS), b"B", now_ns=169 * MS)
    assert fs.present == [True, True]


def test_camera_known_to_be_later_does_not_hold_the_set() -> None:
    asm = FrameSetAssembler(["a", "b"], tolerance_ns=5 * MS)
    asm.add(frame("b", 120 * MS), b"B", now_ns=121 * MS)  # b's first frame is far later
    (fs,) = asm.add(frame("a", 100 * MS), b"A", now_ns=122 * MS)  # a's window [100, 110] excludes it
    assert fs.present == [True, False]
    assert asm.pending == 1


def test_stale_out_of_order_lost_and_foreign_frames_are_counted() -> None:
    asm = FrameSetAssembler(["a", "b"], tolerance_ns=5 * MS)
    asm.add(frame("a", 100 * MS, seq=0), b"", now_ns=100 * MS)
    (fs,) = asm.add(frame("b", 102 * MS, seq=0), b"", now_ns=102 * MS)
    assert fs.t_ref_ns == 101 * MS
    asm.add(frame("a", 99 * MS, seq=1), b"", now_ns=103 * MS)  # older than a's last frame
    assert asm.stats["a"].dropped_out_of_order == 1
    asm.add(frame("b", 100 * MS + 500, seq=3), b"", now_ns=104 * MS)  # b never sent this one in time
    assert asm.stats["b"].dropped_out_of_order == 1
    assert asm.stats["b"].lost == 2  # seq 1 and 2 never arrived
    asm.add(frame("zz", 110 * MS), b"", now_ns=110 * MS)
    asm.add({"camera": "a", "t_capture_ns": "soon"}, b"", now_ns=110 * MS)
    assert asm.dropped_foreign == 2
    status = asm.status(now_ns=110 * MS)
    assert status["cameras"]["a"]["age_ms"] == pytest.approx(10.0)
    assert status["sets"] == 1


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FrameSetAssembler([], 1)
    with pytest.raises(ValueError, match="unique"):
        FrameSetAssembler(["a", "a"], 1)
    with pytest.raises(ValueError, match="tolerance"):
        FrameSetAssembler(["a"], 0)


# -- properties ----------------------------------------------------------------------------------
arrivals = st.lists(
    st.tuples(
        st.integers(0, 3),  # camera
        st.integers(0, 200 * MS),  # capture time
        st.integers(0, 30 * MS),  # transport delay
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(arrivals, st.integers(1 * MS, 20 * MS), st.integers(0, 20 * MS))
def test_properties(events: list[tuple[int, int, int]], tol: int, max_wait: int) -> None:
    cams = ["c0", "c1", "c2", "c3"]
    asm = FrameSetAssembler(cams, tolerance_ns=tol, max_wait_ns=max_wait)
    order = sorted(((t + d, i, cams[c], t) for i, (c, t, d) in enumerate(events)))
    sets: list[FrameSet] = []
    for arrive, i, cam, t in order:
        sets += asm.add(frame(cam, t, seq=i), i, now_ns=arrive)
    sets += asm.poll(now_ns=10**12)  # long after: everything that can be emitted is
    used: list[int] = []
    last_ref = -1
    for fs in sets:
        assert len(fs.present) == len(fs.frames) == len(fs.skew_ns) == len(cams)  # never a shorter list
        assert any(fs.present)
        assert fs.t_ref_ns >= last_ref  # sets move forward in time
        last_ref = fs.t_ref_ns
        for p, f, b, s in zip(fs.present, fs.frames, fs.buffers, fs.skew_ns, strict=True):
            assert p == (f is not None) == (b is not None) == (s is not None)
            if f is not None:
                assert abs(f["t_capture_ns"] - fs.t_ref_ns) <= tol  # within tolerance of the reference
                assert s == f["t_capture_ns"] - fs.t_ref_ns
                used.append(b)
    assert len(used) == len(set(used))  # no frame in two sets
    for cam in cams:
        s = asm.stats[cam]
        assert s.received == s.in_sets + s.dropped + len(asm._pending[cam])  # every frame accounted for
    assert sum(s.received for s in asm.stats.values()) == len(events)
    assert asm.pending == 0  # the final poll emptied every queue
