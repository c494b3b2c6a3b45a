"""Files that survive a crash: atomic replacement through a synced temporary file, and synced folders.

Used by the calibration store and the take recorder, whose promise is that a ``kill -9`` or a power cut
leaves either the old file or the whole new one, never a torn one.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, tmp: Path | None = None) -> None:
    """Write ``data`` to ``path`` so that a reader sees either the old file or the whole new one.

    ``tmp``: the temporary file (default ``<path>.tmp`` beside it); removed when the write fails.
    """
    tmp = path.with_name(path.name + ".tmp") if tmp is None else tmp
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
