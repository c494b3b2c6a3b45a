"""The take writer's disk syncs run on a thread of its own: the recorder's receiving thread (which calls
``add_frameset``, ``add_skeleton`` and ``maybe_flush``) never waits for an ``fsync``, a ``kill -9`` still
keeps everything up to the last flush, the manifest on disk never counts more than the data on disk, and a
sync that fails still fails the take. The recorder also runs at the live stages' priority by default.

A slow or failing disk is made by wrapping ``os.fsync`` (every fsync of the writer, its record file and its
atomic manifest writes goes through it); the files are real."""

from __future__ import annotations

import errno
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from recording_helpers import CAMERAS, frameset, skeleton

from crosspose.config import Config
from crosspose.recording import Take, TakeWriter
from crosspose.recording.log import read_records
from crosspose.recording.take import FRAMESETS, MANIFEST, TakeWriteError
from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.workers import worker_nice
from polling import wait_until

pytestmark = pytest.mark.timeout(120)
LATER = 10**18  # a monotonic time (ns) at which every flush is due


class Disk:
    """``os.fsync`` as a disk that, once ``armed``, holds every fsync until ``release`` (or fails it with
    ``fail``); an armed fsync on the thread that calls the writer (the test's, as the recorder's receiving
    thread) is an AssertionError at once."""

    def __init__(self, real: Callable[[int], None]) -> None:
        self.real = real
        self.armed = False
        self.fail: OSError | None = None
        self.entered = threading.Event()  # a sync is inside fsync
        self.release = threading.Event()

    def fsync(self, fd: int) -> None:
        if self.armed:
            assert threading.current_thread() is not threading.main_thread(), "fsync on the receiving thread"
            self.entered.set()
            if self.fail is not None:
                raise self.fail
            assert self.release.wait(60), "the test never released the disk"
        self.real(fd)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    d = Disk(os.fsync)
    monkeypatch.setattr(os, "fsync", d.fsync)
    yield d
    d.release.set()  # never leave a sync thread waiting


def add(w: TakeWriter, seqs: range) -> None:
    for seq in seqs:
        w.add_frameset(*frameset(seq, jpeg=True))
        w.add_skeleton(skeleton(seq))


def on_disk_manifest(folder: Path) -> dict:
    return dict(json.loads((folder / MANIFEST).read_text()))


def test_flushing_never_waits_for_the_disk_and_a_kill_keeps_every_flushed_set(
    tmp_path: Path, disk: Disk
) -> None:
    folder = tmp_path / "t"
    w = TakeWriter(folder, take_id="t", name="t", metadata=None, cameras=CAMERAS, flush_s=0.5)
    disk.armed = True  # from here every fsync hangs until released
    add(w, range(10))
    assert w.maybe_flush(now_ns=LATER)
    assert disk.entered.wait(30), "the flush started no sync"
    # The sync thread is stuck in fsync; the receiving thread goes on writing and flushing.
    add(w, range(10, 30))
    assert w.maybe_flush(now_ns=LATER + 1)
    assert w.syncs_late == 1
    assert w.maybe_flush(now_ns=0) is False  # not due; the sync still hangs
    # What a kill -9 now keeps: every flushed set (in the kernel), though none is fsynced yet; and the
    # manifest on disk still counts none of them, never more than the data it describes.
    assert [h["seq"] for h, _ in read_records(folder / FRAMESETS)] == list(range(30))
    assert on_disk_manifest(folder)["framesets"]["written"] == 0
    disk.release.set()
    w.flush()  # waits for the disk: both syncs done
    assert on_disk_manifest(folder)["framesets"]["written"] == 30
    disk.armed = False  # closing the take (after its last set) waits for the disk on the calling thread
    m = w.close()
    assert (m["state"], m["error"]) == ("stopped", None)
    take = Take(folder)
    assert take.manifest["framesets"]["written"] == 30
    assert [s.header["seq"] for s in take.framesets()] == list(range(30))
    assert [s["seq"] for s in take.skeleton_messages()] == list(range(30))


def _five_sets_then_a_failing_sync(folder: Path, disk: Disk) -> TakeWriter:
    """A writer of five frame sets whose next sync (started by a flush, on the sync thread) fails with EIO."""
    w = TakeWriter(folder, take_id="t", name="t", metadata=None, cameras=CAMERAS, flush_s=0.5)
    add(w, range(5))
    disk.fail = OSError(errno.EIO, "Input/output error (simulated)")
    disk.armed = True
    assert w.maybe_flush(now_ns=LATER)
    return w


def test_a_sync_that_fails_on_its_thread_fails_the_take(tmp_path: Path, disk: Disk) -> None:
    folder = tmp_path / "t"
    w = _five_sets_then_a_failing_sync(folder, disk)  # returns; the sync thread meets the error

    def raised() -> TakeWriteError | None:
        try:
            w.maybe_flush(now_ns=0)
        except TakeWriteError as err:
            return err
        return None

    err = wait_until(raised, 30, "the sync thread's error at the next maybe_flush")
    assert err.errno == errno.EIO
    assert "syncing take t to disk failed" in str(err)
    assert "simulated" in str(err)
    disk.armed = False
    w.close("failed", str(err))  # as the recorder does
    assert Take(folder).manifest["state"] == "failed"
    assert len(list(Take(folder).framesets())) == 5


def test_closing_reports_a_failed_last_sync_instead_of_stopped(tmp_path: Path, disk: Disk) -> None:
    folder = tmp_path / "t"
    w = _five_sets_then_a_failing_sync(folder, disk)
    assert disk.entered.wait(30)
    disk.armed = False  # the disk is back for the final writes
    m = w.close()  # stop asked while that sync failed
    assert m["state"] == "failed"
    assert "syncing take t to disk failed" in m["error"]
    assert on_disk_manifest(folder)["state"] == "failed"


def test_the_recorder_is_not_niced_below_the_live_stages_or_the_workers(tmp_path: Path) -> None:
    """A niced recorder got less than its (bounded) share of a core while other processes kept both cores
    busy, fell more than its queue behind and lost frame sets from the take for good."""
    config: Config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=3, frames=5, render=False)
    several = config.model_copy(update={"inference": config.inference.model_copy(update={"workers": 2})})
    assert config.recording.nice == 0
    assert config.recording.nice < worker_nice(several)
