"""``crosspose reconstruct --lengths take``: the take solved again with each performer's lengths known from
its first frame (:mod:`crosspose.solver.take`).

For videos the network is the cost (~75-300 ms a frame set on a CPU against ~10-20 ms for the solve), so
the first pass keeps what the solver got: each frame set's heatmaps and projections, in a
:class:`HeatmapStore` (float16, in a temporary file: ~1 MB a frame set and performer for the full body's 32
joints on four 64x64 views), and :func:`resolve_frames` solves them again. The second pass sees exactly
the first pass's crops: it changes the solve, not what the network saw.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from crosspose.reconstruct import ReconstructError
from crosspose.solver import Pose3D
from crosspose.solver.take import TakeLengths, fixed_lengths_solver

#: What ``--lengths`` accepts: ``online`` (the live service's: learnt as the take goes) or ``take``.
LENGTH_MODES = ("online", "take")


def default_lengths(persons: int) -> str:
    """The ``--lengths`` mode ``crosspose reconstruct`` uses when none is given, for up to ``persons``
    performers: ``take`` for any number (each performer id's own lengths; with several performers it was
    ``online`` until the take's spread saw bursts of wrong readings, README issue 21)."""
    del persons  # the same rule for one performer and several
    return "take"


def check_lengths_mode(mode: str) -> str:
    """``mode`` when it is one of :data:`LENGTH_MODES` (ValueError naming them otherwise)."""
    if mode not in LENGTH_MODES:
        raise ValueError(f"lengths {mode!r}: use one of {', '.join(LENGTH_MODES)}")
    return mode


@dataclass(frozen=True)
class StoredSet:
    """Where one frame set's solver input lies in a :class:`HeatmapStore`."""

    offset: int
    shape: tuple[int, ...]
    projections: np.ndarray  # (C, 3, 4)


class HeatmapStore:
    """Frame sets' ``(C, J, h, w)`` heatmaps kept as float16 in an anonymous temporary file (gone when
    closed), with their projections in memory.

    Args:
        expected_sets: how many frame sets will be added (all performers'): with the first set's size it
            says whether the take fits the folder's free space, before the long first pass fills it.
        folder: where the file lies (default: the temporary folder, ``TMPDIR``).
    Raises (from :meth:`add`):
        ReconstructError: the take would not fit, or a write failed (the disk filled up), naming the
            folder, the size and what to do.
    """

    #: Free space left over when the take is stored: the rest of the machine needs some too.
    SPARE_BYTES = 512 * 2**20

    def __init__(self, expected_sets: int | None = None, folder: str | None = None) -> None:
        self._folder = folder or tempfile.gettempdir()
        self._file = tempfile.TemporaryFile(dir=self._folder)  # noqa: SIM115  # closed by close() / with
        self._size = 0
        self._expected = expected_sets

    def _check_space(self, set_bytes: int) -> None:
        assert self._expected is not None
        need = set_bytes * self._expected
        free = shutil.disk_usage(self._folder).free
        if need + self.SPARE_BYTES > free:
            raise ReconstructError(
                f"--lengths take keeps every frame set's heatmaps for its second pass: about "
                f"{need / 1e9:.1f} GB for {self._expected} frame sets in {self._folder}, which has "
                f"{free / 1e9:.1f} GB free; point TMPDIR at a larger disk, or use --lengths online (one "
                "pass, nothing kept)")

    @property
    def nbytes(self) -> int:
        """Bytes written."""
        return self._size

    def add(self, heatmaps: np.ndarray, projections: np.ndarray) -> StoredSet:
        data = np.ascontiguousarray(heatmaps, dtype=np.float16)
        if self._size == 0 and self._expected:
            self._check_space(data.nbytes)
        try:
            self._file.seek(self._size)
            self._file.write(data.tobytes())
            self._file.flush()
        except OSError as e:
            raise ReconstructError(
                f"keeping the heatmaps for the second pass (--lengths take) failed after "
                f"{self._size / 1e9:.2f} GB in {self._folder}: {e.strerror or e}; point TMPDIR at a larger "
                "disk, or use --lengths online (one pass, nothing kept)") from None
        entry = StoredSet(self._size, data.shape, np.array(projections, dtype=np.float64))
        self._size += data.nbytes
        return entry

    def get(self, entry: StoredSet) -> np.ndarray:
        """``(C, J, h, w)`` float32."""
        self._file.seek(entry.offset)
        count = int(np.prod(entry.shape))
        data = np.frombuffer(self._file.read(2 * count), dtype=np.float16, count=count)
        return data.reshape(entry.shape).astype(np.float32)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> HeatmapStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, eq=False)
class Resolved:
    """One performer's frame set solved in the second pass (pose None: not solved, or outside the
    volume)."""

    pose: Pose3D | None
    solve_ms: float
    outside_volume: bool


def resolve_frames(frames: list[StoredSet | None], store: HeatmapStore, solver: Any, lengths: TakeLengths,
                   inside: Callable[[np.ndarray], bool] | None = None, min_views: int = 2,
                   forget_outside: bool = True, progress: bool = False) -> Iterator[Resolved]:
    """Solve one performer's recorded frame sets again, in order, with ``lengths`` seeded into a fresh
    track of a solver as ``solver`` that keeps them (:func:`.solver.take.fixed_lengths_solver`), as the
    first pass did (:class:`crosspose.core.Core`): a set fewer than ``min_views`` views hold is not
    solved, and a pose whose root is outside the capture volume (``inside`` False) is not reported (and,
    with ``forget_outside``, as :meth:`~crosspose.core.Core.run` does, its track searches cold next).

    Args:
        frames: per frame set the stored input, None where the performer had none.
        progress: a progress bar over the frame sets (a long take's second pass takes minutes).
    """
    from tqdm import tqdm

    fixed = fixed_lengths_solver(solver)
    track = lengths.seed(fixed.new_track())
    root = fixed.skeleton.root
    for entry in tqdm(frames, desc="second pass", unit="frame", disable=not progress):
        if entry is None or np.isfinite(entry.projections).all(axis=(1, 2)).sum() < min_views:
            yield Resolved(None, math.nan, False)
            continue
        heatmaps = store.get(entry)
        t0 = time.perf_counter()
        pose = fixed.solve(heatmaps, entry.projections, track=track)
        ms = 1e3 * (time.perf_counter() - t0)
        if inside is not None and np.isfinite(pose.joints[root]).all() and not inside(pose.joints[root]):
            if forget_outside:
                track.forget_pose()
            yield Resolved(None, ms, True)
            continue
        yield Resolved(pose, ms, False)


def lengths_stats(learnt: Any, store: HeatmapStore, first_pass_s: float,
                  second_pass_s: float) -> dict[str, Any]:
    """What ``Reconstruction.stats["lengths"]`` reports of a two-pass run (``learnt``: the lengths, as
    :meth:`.solver.take.TakeLengths.to_json` gives them, or those by performer id)."""
    return {"mode": "take", "learnt": learnt, "stored_mb": round(store.nbytes / 2 ** 20, 1),
            "first_pass_s": round(first_pass_s, 3), "second_pass_s": round(second_pass_s, 3)}
