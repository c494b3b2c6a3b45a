"""OpenSim marker files (``.trc``), read and written the way Pose2Sim writes them.

A TRC file is tab-separated text: a ``PathFileType`` line, the ``DataRate … OrigNumFrames`` header
and its values, a row of marker names (each followed by two empty cells), a row of ``X1 Y1 Z1 …``
component labels, then one row per frame: frame number, time, then x y z per marker (empty cells
for a missing marker). OpenSim's world is Y-up; ours is Z-up (DESIGN §4).

Pose2Sim converts its Z-up triangulation to Y-up with the cyclic axis permutation
``(X, Y, Z)_trc = (y, z, x)_ours`` — a proper rotation (determinant +1), so no handedness flips.
We found it by triangulating Pose2Sim's demo keypoints with its calibration and comparing with its
own ``Balancing_for_IK.trc``: of the 48 signed axis permutations this one gives an 11 mm median
distance, every other one metres. :data:`ZUP_TO_YUP` is that matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: ``yup = ZUP_TO_YUP @ zup``: our Z-up world → OpenSim/Pose2Sim Y-up (X ← y, Y ← z, Z ← x).
ZUP_TO_YUP = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])

_UNITS_TO_METRES = {"m": 1.0, "mm": 1e-3, "cm": 1e-2}
_HEADER_KEYS = ("DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units", "OrigDataRate",
                "OrigDataStartFrame", "OrigNumFrames")


class TrcError(ValueError):
    """A TRC file that cannot be read (the message names the file and what is wrong)."""


@dataclass(frozen=True, eq=False)
class Trc:
    """Marker trajectories.

    Attributes:
        markers: ``M`` marker names.
        frames: ``(N, M, 3)`` positions in metres in OUR Z-up world (NaN = missing).
        rate: frames per second (``DataRate``).
        units: units written to the file (``m`` or ``mm``; reading converts to metres whatever the file says).
        times: ``(N,)`` seconds of each frame; default ``arange(N) / rate``.
        frame_numbers: ``(N,)`` the ``Frame#`` column; default ``1 … N``.
    """

    markers: tuple[str, ...]
    frames: np.ndarray
    rate: float
    units: str = "m"
    times: np.ndarray = field(default_factory=lambda: np.empty(0))
    frame_numbers: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __post_init__(self) -> None:
        object.__setattr__(self, "markers", tuple(self.markers))
        frames = np.asarray(self.frames, dtype=np.float64)
        if frames.ndim != 3 or frames.shape[1:] != (len(self.markers), 3):
            raise ValueError(f"frames must have shape (N, {len(self.markers)}, 3), got {frames.shape}")
        object.__setattr__(self, "frames", frames)
        if self.units not in _UNITS_TO_METRES:
            raise ValueError(f"units must be one of {', '.join(_UNITS_TO_METRES)}, got {self.units!r}")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be a positive number of frames per second, got {self.rate}")
        n = frames.shape[0]
        times = np.asarray(self.times, dtype=np.float64)
        object.__setattr__(self, "times", np.arange(n) / self.rate if times.size == 0 else times)
        numbers = np.asarray(self.frame_numbers, dtype=np.int64)
        object.__setattr__(self, "frame_numbers", np.arange(1, n + 1) if numbers.size == 0 else numbers)
        if self.times.shape != (n,) or self.frame_numbers.shape != (n,):
            raise ValueError(f"times and frame_numbers must have shape ({n},)")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def marker(self, name: str) -> np.ndarray:
        """``(N, 3)`` trajectory of one marker (metres, Z-up)."""
        try:
            return self.frames[:, self.markers.index(name)]
        except ValueError:
            raise KeyError(f"no marker {name!r}; markers: {', '.join(self.markers)}") from None


def _format(value: float) -> str:
    return "" if not math.isfinite(value) else repr(float(value))


def write_trc(trc: Trc, path: str | Path) -> Path:
    """Write ``trc`` as an OpenSim TRC file (Y-up, in ``trc.units``); missing values are empty cells."""
    path = Path(path)
    scale = 1.0 / _UNITS_TO_METRES[trc.units]
    yup = np.einsum("ij,nmj->nmi", ZUP_TO_YUP, trc.frames) * scale
    n, m = trc.num_frames, len(trc.markers)
    rate = f"{trc.rate:g}"
    first = int(trc.frame_numbers[0]) if n else 1
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "\t".join(_HEADER_KEYS),
        "\t".join([rate, rate, str(n), str(m), trc.units, rate, str(first), str(n)]),
        "\t".join(["Frame#", "Time", *(f"{name}\t\t" for name in trc.markers)]),
        "\t".join(["", "", *(f"X{k}\tY{k}\tZ{k}" for k in range(1, m + 1))]),
    ]
    for i in range(n):
        cells = [str(int(trc.frame_numbers[i])), repr(float(trc.times[i]))]
        cells += [_format(v) for v in yup[i].reshape(-1)]
        lines.append("\t".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_trc(path: str | Path) -> Trc:
    """Read an OpenSim TRC file (Pose2Sim's, OpenSim's or ours) into metres in our Z-up world."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise TrcError(f"{path}: cannot read ({e.strerror or e})") from None
    lines = text.splitlines()
    if len(lines) < 5 or not lines[0].startswith("PathFileType"):
        raise TrcError(f"{path}: not a TRC file (the first line must start with 'PathFileType')")
    keys = lines[1].split("\t")
    values = lines[2].split("\t")
    header = {k.strip(): v.strip() for k, v in zip(keys, values, strict=False)}
    try:
        rate = float(header["DataRate"])
        num_markers = int(header["NumMarkers"])
        units = header.get("Units", "m")
    except (KeyError, ValueError):
        raise TrcError(f"{path}: header needs DataRate and NumMarkers (line 2-3), got {header}") from None
    if units not in _UNITS_TO_METRES:
        raise TrcError(f"{path}: unknown units {units!r} (expected one of {', '.join(_UNITS_TO_METRES)})")
    names_row = lines[3].split("\t")
    if names_row[:2] != ["Frame#", "Time"]:
        raise TrcError(f"{path}: line 4 must start with 'Frame#<TAB>Time', got {lines[3][:40]!r}")
    markers = [name.strip() for name in names_row[2:] if name.strip()]
    if len(markers) != num_markers:
        raise TrcError(f"{path}: NumMarkers says {num_markers} but line 4 names {len(markers)} markers")
    numbers, times, rows = [], [], []
    for lineno, line in enumerate(lines[5:], start=6):
        if not line.strip():
            continue
        cells = line.split("\t")
        row = np.full(3 * num_markers, np.nan)
        try:
            numbers.append(int(float(cells[0])))
            times.append(float(cells[1]))
            for k, cell in enumerate(cells[2:2 + 3 * num_markers]):
                if cell.strip():
                    row[k] = float(cell)
        except (ValueError, IndexError):
            raise TrcError(f"{path}:{lineno}: not a row of numbers: {line[:60]!r}") from None
        rows.append(row)
    yup = np.asarray(rows, dtype=np.float64).reshape(-1, num_markers, 3) * _UNITS_TO_METRES[units]
    zup = np.einsum("ji,nmj->nmi", ZUP_TO_YUP, yup)  # ZUP_TO_YUP is orthonormal: inverse = transpose
    return Trc(tuple(markers), zup, rate, units, np.asarray(times), np.asarray(numbers, dtype=np.int64))
