"""Capture times checked against this host's clock and the camera's recent frames (``CameraClock``):
what is refused (future, stale), what one bad stamp may not move, when a remote camera re-synchronises."""

from __future__ import annotations

import pytest

from crosspose.sync import CameraClock

MS = 1_000_000
PERIOD = 16 * MS  # ~60 fps
HOUR = 3600 * 10**9


def clock(remote: bool) -> CameraClock:
    return CameraClock(remote=remote, future_ns=8 * MS, max_age_ns=1000 * MS, agree_ns=32 * MS)


def test_a_local_camera_is_on_this_clock_and_never_ahead_of_it() -> None:
    c = clock(remote=False)
    now = 50 * 10**9
    assert c.place(now - 3 * MS, now) == now - 3 * MS  # a transport delay: placed as stamped
    assert c.place(now + HOUR, now) == "future"
    assert c.place(now + 9 * MS, now) == "future"
    assert c.place(now - 2 * 10**9, now) == "stale"  # two seconds on the way
    for k in range(20):  # a steady stream of future stamps never moves a local camera's clock
        assert c.place(now + HOUR + k * PERIOD, now + k * PERIOD) == "future"
    assert c.place(now + 20 * PERIOD - MS, now + 20 * PERIOD) == now + 20 * PERIOD - MS
    assert c.resyncs == 0


def remote_stream(c: CameraClock, host_offset: int, start: int, frames: int, delay: int = 2 * MS) -> list:
    """``frames`` frames of a remote camera whose clock reads ``host_offset`` more than ours."""
    out = []
    for k in range(frames):
        now = start + k * PERIOD
        out.append(c.place(now - delay + host_offset, now))
    return out


def test_a_remote_camera_is_mapped_onto_this_clock() -> None:
    c = clock(remote=True)
    start = 10 * 10**9
    placed = remote_stream(c, host_offset=-7 * 10**9, start=start, frames=10)
    # The first frame's delay (2 ms) is the offset's: every frame lands at its arrival on this clock.
    assert placed == [start + k * PERIOD for k in range(10)]
    assert c.offset_ns == 7 * 10**9 + 2 * MS


def test_one_frame_stamped_an_hour_ahead_moves_nothing() -> None:
    c = clock(remote=True)
    start = 10 * 10**9
    remote_stream(c, 0, start, 10)
    offset = c.offset_ns
    now = start + 10 * PERIOD
    assert c.place(now + HOUR, now) == "future"
    assert c.offset_ns == offset
    after = remote_stream(c, 0, now + PERIOD, 10)
    assert all(isinstance(t, int) for t in after)  # the real frames after it are placed as before
    assert c.resyncs == 0


def test_single_forged_frames_between_real_ones_never_resynchronise() -> None:
    c = clock(remote=True)
    start = 10 * 10**9
    remote_stream(c, 0, start, 5)
    for k in range(5, 50):
        now = start + k * PERIOD
        assert isinstance(c.place(now - 2 * MS, now), int)
        assert c.place(now + HOUR, now + MS) == "future"
    assert c.resyncs == 0


@pytest.mark.parametrize(
    "step", [-30 * 10**9, -2 * 10**9, 200 * MS, HOUR], ids=["-30 s", "-2 s", "+200 ms", "+1 h"]
)
def test_a_remote_clock_that_steps_is_resynchronised_within_five_frames(step: int) -> None:
    c = clock(remote=True)
    start = 10 * 10**9
    remote_stream(c, 0, start, 20)
    after = remote_stream(c, step, start + 20 * PERIOD, 10)
    assert after[:4] == ["stale" if step < 0 else "future"] * 4
    # The fifth agrees with the four before it: the camera's clock stepped; it is placed on ours again.
    assert after[4:] == [start + (20 + k) * PERIOD for k in range(4, 10)]
    assert c.resyncs == 1


def test_a_remote_clock_that_drifts_is_followed() -> None:
    c = clock(remote=True)
    start = 10 * 10**9
    drift = 0.001  # 1 ms per second, far beyond a crystal's
    placed = []
    for k in range(3000):  # 48 s
        now = start + k * PERIOD
        placed.append(c.place(now - 2 * MS - int(k * PERIOD * drift), now))
    assert all(isinstance(t, int) for t in placed)
    # Behind by at most the drift over the offset's window (300 frames, 4.8 s: 4.8 ms), never more.
    assert 0 <= (start + 2999 * PERIOD) - placed[-1] <= 5 * MS
    assert c.resyncs == 0
