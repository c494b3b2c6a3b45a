"""``kill -9`` of a process writing a take: the take stays readable and loses at most the last flush
interval (``recording.flush_s``, ≤ 1 s)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from crosspose.recording import Take, TakeStore

WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {helpers!r})
    from recording_helpers import CAMERAS, frameset, skeleton
    from crosspose.recording import TakeWriter

    w = TakeWriter({folder!r}, take_id="killed", name="killed", metadata=None, cameras=CAMERAS,
                   frames="jpeg", flush_s={flush_s})
    seq = 0
    while True:  # 60 frame sets a second until killed
        w.add_frameset(*frameset(seq, fps=60.0))
        w.add_skeleton(skeleton(seq, fps=60.0))
        w.maybe_flush()
        seq += 1
        time.sleep(1 / 60)
    """
)


def test_sigkill_mid_take_loses_at_most_the_flush_interval(tmp_path: Path) -> None:
    folder = tmp_path / "store" / "killed"
    flush_s = 0.5
    script = WRITER.format(helpers=str(Path(__file__).parent), folder=str(folder), flush_s=flush_s)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while True:  # until the writer has flushed a few times
            assert proc.poll() is None, "the writer died on its own"
            assert time.monotonic() < deadline, "the writer never flushed"
            try:
                written = json.loads((folder / "manifest.json").read_text())["framesets"]["written"]
            except (FileNotFoundError, ValueError, KeyError):
                written = 0
            if written >= 60:
                break
            time.sleep(0.05)
        time.sleep(0.3)  # mid-interval
        killed_at = time.time_ns()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    take = Take(folder)
    assert take.manifest["state"] == "recording"  # as the kill left it
    sets = list(take.framesets())
    assert len(sets) >= take.manifest["framesets"]["written"] >= 60
    assert [s.header["seq"] for s in sets] == list(range(len(sets)))  # nothing lost before the tail
    assert all(img is not None for img in sets[-1].images())
    lost_s = (killed_at - sets[-1].header["t_recorded_wall_ns"]) / 1e9
    assert lost_s <= 1.0, f"the last readable frame set is {lost_s:.2f} s older than the kill"
    skeletons = take.skeleton_messages()  # flushed with the frame sets: the same guarantee
    assert [m["seq"] for m in skeletons] == list(range(len(skeletons)))
    assert len(skeletons) >= take.manifest["skeletons"]["written"]
    lost_sk = (killed_at - sets[len(skeletons) - 1].header["t_recorded_wall_ns"]) / 1e9
    assert lost_sk <= 1.0, f"the last readable skeleton is {lost_sk:.2f} s older than the kill"
    # The next recorder repairs it: counts from the data, state 'interrupted', still readable.
    assert TakeStore(tmp_path / "store").repair_interrupted() == ["killed"]
    repaired = Take(folder)
    assert repaired.manifest["state"] == "interrupted"
    assert repaired.manifest["framesets"]["written"] == len(sets)
    print(f"kill -9 lost {lost_s:.3f} s (flush every {flush_s} s); {len(sets)} frame sets readable")
