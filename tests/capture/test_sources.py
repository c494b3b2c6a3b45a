"""Camera sources: a real video file through OpenCV, the synthetic studio, and the source picker."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from crosspose.capture import SourceEnded, SourceError, open_source, source_kind
from crosspose.capture.file import FileSource
from crosspose.capture.opencv import OpenCVSource
from crosspose.capture.synthetic import SyntheticSource
from crosspose.config import CameraConfig

W, H, N = 64, 48, 20  # the conftest video


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("0", "opencv"),
        ("/dev/video3", "opencv"),
        ("rtsp://10.0.0.2:554/s", "opencv"),
        ("https://cam.local/mjpeg", "opencv"),
        ("synthetic", "synthetic"),
        ("synthetic?seed=3&index=1&cameras=4", "synthetic"),
        ("clips/cam1.mp4", "file"),
    ],
)
def test_source_kind(source: str, kind: str) -> None:
    assert source_kind(source) == kind


def test_file_source_reads_every_frame_then_ends(video: Path) -> None:
    src = open_source(CameraConfig(name="c", source=str(video)))
    assert isinstance(src, FileSource)
    with src:
        assert src.fps == pytest.approx(20.0)
        assert src.paced
        levels, stamps = [], []
        for _ in range(N):
            frame, ts = src.read()
            assert frame.shape == (H, W, 3)
            assert frame.dtype == np.uint8
            levels.append(float(frame.mean()))
            stamps.append(ts)
        with pytest.raises(SourceEnded, match="ended"):
            src.read()
    np.testing.assert_allclose(levels, [10 * i for i in range(N)], atol=5)  # each frame in order
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert stamps[1] - stamps[0] == pytest.approx(50_000_000, abs=1_000_000)  # 20 fps file


def test_file_source_loops_with_growing_timestamps_and_resizes(video: Path) -> None:
    cam = CameraConfig(name="c", source=str(video), loop=True, fps=50, width=32)
    with open_source(cam) as src:
        assert src.fps == 50  # the configured rate wins over the file's
        out = [src.read() for _ in range(2 * N + 3)]
    assert all(f.shape == (24, 32, 3) for f, _ in out)  # width alone keeps the aspect ratio
    stamps = [t for _, t in out]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert abs(float(out[N][0].mean()) - float(out[0][0].mean())) < 5  # frame N is frame 0 again


@pytest.mark.parametrize("loop", [False, True])
def test_preloaded_file_replays_the_same_frames_and_timestamps(video: Path, loop: bool) -> None:
    """``preload`` decodes once into memory; what comes out is what the live decoder gives."""
    n = 2 * N + 3 if loop else N
    live_cam = CameraConfig(name="c", source=str(video), loop=loop, width=32)
    pre_cam = CameraConfig(name="c", source=str(video), loop=loop, width=32, preload=True)
    with open_source(live_cam) as live, open_source(pre_cam) as pre:
        assert isinstance(pre, FileSource)
        assert pre._cap is None  # the file is closed once decoded
        for _ in range(n):
            (a, ta), (b, tb) = live.read(), pre.read()
            np.testing.assert_array_equal(a, b)
            assert ta == tb
        if not loop:
            with pytest.raises(SourceEnded):
                pre.read()


def test_preload_refuses_a_file_beyond_its_memory_limit(video: Path) -> None:
    src = FileSource(video, preload=True, max_preload_bytes=W * H * 3 * 5)
    with pytest.raises(SourceError, match="preload limit"):
        src.open()


def test_missing_file_and_bad_device_are_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"'nope\.mp4' is not a device index"):
        open_source(CameraConfig(name="c", source="nope.mp4"))
    not_video = tmp_path / "notes.txt"
    not_video.write_text("not a video")
    with pytest.raises(SourceError, match="cannot decode"):
        open_source(CameraConfig(name="c", source=str(not_video))).open()
    src = open_source(CameraConfig(name="c", source="/dev/video99"))
    assert isinstance(src, OpenCVSource)
    with pytest.raises(SourceError, match="/dev/video99"):
        src.open()


def test_synthetic_source_is_deterministic_per_seed_and_camera() -> None:
    def frames(source: str, n: int = 2) -> list[np.ndarray]:
        with open_source(CameraConfig(name="s", source=source, width=160)) as src:
            return [src.read()[0] for _ in range(n)]

    a = frames("synthetic?seed=5&index=1&cameras=3&frames=4")
    b = frames("synthetic?seed=5&index=1&cameras=3&frames=4")
    c = frames("synthetic?seed=5&index=2&cameras=3&frames=4")
    assert a[0].shape[1] == 160
    assert a[0].dtype == np.uint8
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[1])  # the performer moves
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])  # another viewpoint


def test_synthetic_source_index_from_rig_position_and_bad_parameters() -> None:
    src = open_source(CameraConfig(name="s", source="synthetic"), camera_index=2, num_cameras=4)
    assert isinstance(src, SyntheticSource)
    assert (src.index, src.cameras) == (2, 4)
    with pytest.raises(SourceError, match="unknown parameter 'colour'"):
        open_source(CameraConfig(name="s", source="synthetic?colour=red"))
    with pytest.raises(SourceError, match="index=5"):
        open_source(CameraConfig(name="s", source="synthetic?index=5&cameras=2"))
    with pytest.raises(SourceError, match="not an integer"):
        open_source(CameraConfig(name="s", source="synthetic?seed=x"))


def test_live_synthetic_cameras_show_the_same_instant_and_placeholders_skip_rendering() -> None:
    """``live=1``: cameras of one studio read at the same moment show the same take frame (the host
    clock's tick), like real cameras watching one performer; ``render=0`` sends placeholders."""
    base = "synthetic?seed=2&cameras=3&frames=50&live=1&render=0"
    a = open_source(CameraConfig(name="a", source=f"{base}&index=0", fps=20))
    b = open_source(CameraConfig(name="b", source=f"{base}&index=2", fps=20))
    with a, b:
        (fa, ta), (_, tb) = a.read(), b.read()
        assert fa.shape == (48, 64, 3)
        assert int(fa.mean()) == 128
        assert abs(ta - tb) <= 50_000_000  # the same 20 fps tick (or the next one)
        assert a.due_ns == ta  # the grabber sends the frame at its tick
        (_, ta2) = a.read()
        assert ta2 > ta  # never the same tick twice
        assert a.due_ns == ta2
    assert isinstance(a, SyntheticSource)


def _timeline_source(video: Path, *, at_frame: float, preload: bool, loop: bool = True) -> FileSource:
    """A 2-fps replay (500 ms a frame: timing noise cannot move it) whose timeline is at ``at_frame``."""
    return FileSource(video, fps=2, loop=loop, preload=preload,
                      epoch_ns=time.monotonic_ns() - round(at_frame * 500e6))


@pytest.mark.parametrize("preload", [True, False])
def test_files_on_one_timeline_show_the_same_frame_whenever_they_start(video: Path, preload: bool) -> None:
    epoch = time.monotonic_ns() - round(7.5 * 500e6)  # the service started 7.5 frames ago
    early = FileSource(video, fps=2, loop=True, preload=True, epoch_ns=epoch)
    late = FileSource(video, fps=2, loop=True, preload=preload, epoch_ns=epoch)
    with early, late:
        for k in range(7, 7 + 2 * N + 3):  # past two wraps of the 20-frame file
            (a, ta), (b, tb) = early.read(), late.read()
            assert ta == tb == round(k * 500e6)  # device time: the position on the timeline
            assert early.due_ns == late.due_ns == epoch + round(k * 500e6)
            assert float(b.mean()) == pytest.approx(10 * (k % N), abs=5)  # frame k of the file
            np.testing.assert_array_equal(a, b)
        assert early.skipped == late.skipped == 0  # the frames before they started are not drops


@pytest.mark.parametrize("preload", [True, False])
def test_a_replay_that_falls_behind_its_timeline_passes_over_the_missed_frames(
    video: Path, preload: bool
) -> None:
    with _timeline_source(video, at_frame=3.5, preload=preload) as src:
        assert float(src.read()[0].mean()) == pytest.approx(30, abs=5)
        assert src.epoch_ns is not None
        src.epoch_ns -= round(5 * 500e6)  # the same as the grabber waking 5 frames late
        frame, t = src.read()
        assert float(frame.mean()) == pytest.approx(80, abs=5)  # frame 8, not 4
        assert t == round(8 * 500e6)
        assert src.skipped == 4  # frames 4..7 passed over


@pytest.mark.parametrize("preload", [True, False])
def test_a_replay_that_plays_once_ends_with_its_timeline(video: Path, preload: bool) -> None:
    with _timeline_source(video, at_frame=N - 1.5, preload=preload, loop=False) as src:
        assert float(src.read()[0].mean()) == pytest.approx(10 * (N - 2), abs=5)
        assert float(src.read()[0].mean()) == pytest.approx(10 * (N - 1), abs=5)
        with pytest.raises(SourceEnded, match="ended"):
            src.read()
