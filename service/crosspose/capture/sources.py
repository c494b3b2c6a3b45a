"""Which source kind a camera's ``source`` string names, and :func:`open_source` that opens it.

Apart from :mod:`crosspose.capture.source` (the interface) so that the kinds import the interface and
only this module imports the kinds.
"""

from __future__ import annotations

import re
from pathlib import Path

from crosspose.capture.source import Source, SourceError
from crosspose.config import CameraConfig

_DEVICE = re.compile(r"^(\d+|/dev/video\d+)$")
_URL = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", re.IGNORECASE)


def source_kind(source: str) -> str:
    """``"synthetic"``, ``"opencv"`` (device index, /dev/videoN, stream URL) or ``"file"``."""
    s = source.strip()
    if s == "synthetic" or s.startswith("synthetic?") or s.startswith("synthetic:"):
        return "synthetic"
    if _DEVICE.match(s) or _URL.match(s):
        return "opencv"
    return "file"


def open_source(
    camera: CameraConfig, *, camera_index: int = 0, num_cameras: int = 1, epoch_ns: int | None = None
) -> Source:
    """The :class:`Source` for a camera config (not opened yet).

    ``camera_index`` / ``num_cameras`` tell a synthetic source which camera of the synthetic rig it
    is (its ``?index=&cameras=`` query overrides them). ``epoch_ns``: the host monotonic time at which
    every video file of the service is at its first frame (:class:`~crosspose.capture.file.FileSource`).

    Raises:
        SourceError: a file source whose path does not exist.
    """
    kind = source_kind(camera.source)
    if kind == "synthetic":
        from crosspose.capture.synthetic import SyntheticSource

        return SyntheticSource.from_config(camera, camera_index=camera_index, num_cameras=num_cameras)
    if kind == "opencv":
        from crosspose.capture.opencv import OpenCVSource

        return OpenCVSource(camera.source, fps=camera.fps, width=camera.width, height=camera.height)
    from crosspose.capture.file import FileSource

    path = Path(camera.source).expanduser()
    if not path.is_file():
        raise SourceError(
            f"camera {camera.name!r}: source {camera.source!r} is not a device index, /dev/videoN, "
            "stream URL, 'synthetic' or an existing video file"
        )
    return FileSource(path, fps=camera.fps, loop=camera.loop, width=camera.width, height=camera.height,
                      preload=camera.preload, epoch_ns=epoch_ns)
