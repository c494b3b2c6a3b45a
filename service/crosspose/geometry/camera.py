"""``Camera`` and ``CameraRig``: an ordered, immutable set of calibrated OpenCV pinhole cameras.

Conventions (DESIGN §4): metres; world→camera ``x_cam = R X + t``; distortion ``k1 k2 p1 p2 k3``;
``image_size`` is ``(width, height)`` in pixels. Camera order is the order given, never sorted.
World frame: Z up, floor at ``z = 0`` (our choice; converters from Y-up formats rotate into it).

Building, comparing and validating cameras is numpy only; the methods that do torch maths (projecting,
undistorting, triangulating) import it when called, so that a stage that only loads and stores rigs
(the API, the recorder) never loads torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from crosspose.geometry._shapes import check_shape

if TYPE_CHECKING:
    from crosspose.geometry._tensor import ArrayLike


def _array(x: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    a = np.array(x, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera.

    Attributes:
        name: unique name within a rig (``cam1``, ``left``, a serial number …).
        K: ``(3, 3)`` intrinsic matrix, pixels.
        dist: ``(5,)`` distortion ``k1 k2 p1 p2 k3`` (shorter inputs are zero-padded).
        R: ``(3, 3)`` world→camera rotation.
        t: ``(3,)`` world→camera translation, metres.
        image_size: ``(width, height)`` pixels.
        metadata: free-form extras carried through formats that can hold them (serial, model …).
    """

    name: str
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray
    image_size: tuple[int, int]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"camera name must be a non-empty string, got {self.name!r}")
        d = np.zeros(5)
        given = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        if given.size > 5:
            raise ValueError(
                f"camera {self.name!r}: distortion has {given.size} coefficients; "
                "crosspose supports k1 k2 p1 p2 k3 (5)"
            )
        d[: given.size] = given
        object.__setattr__(self, "K", _array(self.K, (3, 3), f"camera {self.name!r} K"))
        object.__setattr__(self, "dist", _array(d, (5,), f"camera {self.name!r} dist"))
        object.__setattr__(self, "R", _array(self.R, (3, 3), f"camera {self.name!r} R"))
        object.__setattr__(self, "t", _array(np.asarray(self.t).reshape(-1), (3,), f"camera {self.name!r} t"))
        size = np.asarray(self.image_size, dtype=np.float64).reshape(-1)
        if size.shape != (2,) or not np.all(np.isfinite(size)) or np.any(size < 1):
            raise ValueError(
                f"camera {self.name!r} image_size must be (width, height) in pixels, got {self.image_size!r}"
            )
        object.__setattr__(self, "image_size", (round(float(size[0])), round(float(size[1]))))
        object.__setattr__(self, "metadata", dict(self.metadata))

    @property
    def center(self) -> np.ndarray:
        """``(3,)`` camera centre in world coordinates, metres."""
        return -self.R.T @ self.t

    def projection_matrix(self) -> np.ndarray:
        """``(3, 4)`` ``K [R | t]`` (distortion not included)."""
        return self.K @ np.concatenate([self.R, self.t[:, None]], axis=1)

    def project(self, points: ArrayLike) -> ArrayLike:
        """``(..., 3)`` world points → ``(..., 2)`` pixels (NaN behind the camera)."""
        from crosspose.geometry.projection import project_points

        uv = project_points(points, self.K[None], self.dist[None], self.R[None], self.t[None])
        return uv[..., 0, :]

    def undistort(self, pixels: ArrayLike, output: Literal["pixels", "normalized"] = "pixels") -> ArrayLike:
        """``(..., 2)`` observed pixels → ``(..., 2)`` undistorted pixels (or normalized coordinates).

        See :func:`~crosspose.geometry.undistort.undistort_points`; NaN where the lens model has no
        unique inverse.
        """
        from crosspose.geometry.undistort import undistort_points

        check_shape(pixels, (2,), "pixels")
        xy = undistort_points(pixels[..., None, :], self.K[None], self.dist[None], output=output)
        return xy[..., 0, :]

    def replace(self, **changes: Any) -> Camera:
        """A copy with some fields changed (the camera itself is immutable)."""
        fields: dict[str, Any] = {
            "name": self.name, "K": self.K, "dist": self.dist, "R": self.R, "t": self.t,
            "image_size": self.image_size, "metadata": self.metadata,
        }
        fields.update(changes)
        return Camera(**fields)

    def resized(self, scale: float) -> Camera:
        """The same camera seeing its images resized by ``scale`` (e.g. 0.5 for half-size frames).

        Pixel centres stay at integer coordinates: ``u' = scale (u + 0.5) - 0.5``; distortion acts on
        normalized coordinates and does not change.
        """
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        S = np.array([[scale, 0.0, 0.5 * scale - 0.5], [0.0, scale, 0.5 * scale - 0.5], [0.0, 0.0, 1.0]])
        w, h = self.image_size
        return self.replace(K=S @ self.K, image_size=(max(1, round(w * scale)), max(1, round(h * scale))))

    def allclose(self, other: Camera, atol: float = 1e-9) -> bool:
        """Same name, image size and parameters within ``atol``."""
        return (
            self.name == other.name
            and self.image_size == other.image_size
            and all(
                np.allclose(getattr(self, f), getattr(other, f), atol=atol, rtol=0)
                for f in ("K", "dist", "R", "t")
            )
        )


class CameraRig(Sequence[Camera]):
    """An ordered, immutable group of cameras; the order is the order given.

    Stacked views: ``K (C,3,3)``, ``dist (C,5)``, ``R (C,3,3)``, ``t (C,3)``, ``image_size (C,2)``.
    """

    def __init__(self, cameras: Iterable[Camera], metadata: Mapping[str, Any] | None = None) -> None:
        cams = tuple(cameras)
        if not cams:
            raise ValueError("a camera rig needs at least one camera")
        names = [c.name for c in cams]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(
                f"duplicate camera names in rig: {', '.join(dupes)}; every camera needs a unique name"
            )
        self._cameras = cams
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.K = np.stack([c.K for c in cams])
        self.dist = np.stack([c.dist for c in cams])
        self.R = np.stack([c.R for c in cams])
        self.t = np.stack([c.t for c in cams])
        self.image_size = np.array([c.image_size for c in cams], dtype=np.int64)
        for a in (self.K, self.dist, self.R, self.t, self.image_size):
            a.setflags(write=False)

    # Sequence protocol -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._cameras)

    def __getitem__(self, key: int | str) -> Camera:  # type: ignore[override]
        if isinstance(key, str):
            return self._cameras[self.index(key)]
        return self._cameras[key]

    def __iter__(self) -> Iterator[Camera]:
        return iter(self._cameras)

    def __contains__(self, item: object) -> bool:
        """``"cam1" in rig`` tests names; ``camera in rig`` tests identity."""
        if isinstance(item, str):
            return item in self.names
        return any(item is c for c in self._cameras)

    def __repr__(self) -> str:
        return f"CameraRig({', '.join(self.names)})"

    def index(self, name: str, *args: Any) -> int:
        """Position of the camera called ``name``."""
        for i, c in enumerate(self._cameras):
            if c.name == name:
                return i
        raise KeyError(f"no camera named {name!r} in rig (cameras: {', '.join(self.names)})")

    # Derived quantities ------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Camera names in rig order."""
        return [c.name for c in self._cameras]

    @property
    def centers(self) -> np.ndarray:
        """``(C, 3)`` camera centres in world coordinates, metres."""
        return np.stack([c.center for c in self._cameras])

    def project(self, points: ArrayLike) -> ArrayLike:
        """``(..., 3)`` world points (m) → ``(..., C, 2)`` pixels; NaN where behind a camera."""
        from crosspose.geometry.projection import project_points

        return project_points(points, self.K, self.dist, self.R, self.t)

    def projection_matrices(self) -> np.ndarray:
        """``(C, 3, 4)`` ``K [R | t]`` mapping world metres to pixels (distortion not included)."""
        from crosspose.geometry.projection import projection_matrices

        P = projection_matrices(self.K, self.R, self.t)
        assert isinstance(P, np.ndarray)
        return P

    def undistort(self, pixels: ArrayLike, output: Literal["pixels", "normalized"] = "pixels") -> ArrayLike:
        """``(..., C, 2)`` observed pixels → ``(..., C, 2)`` ideal pinhole pixels (or normalized coordinates).

        See :func:`~crosspose.geometry.undistort.undistort_points`; NaN in → NaN out, and NaN where the
        lens model has no unique inverse.
        """
        from crosspose.geometry.undistort import undistort_points

        return undistort_points(pixels, self.K, self.dist, output=output)

    def triangulate(
        self, pixels: ArrayLike, weights: ArrayLike | None = None, *, undistort: bool = True
    ) -> tuple[ArrayLike, ArrayLike]:
        """Triangulate observed pixels from all cameras (weighted DLT, see :func:`triangulate`).

        Args:
            pixels: ``(..., C, 2)`` observed pixels in rig order; NaN rows for views that did not see it.
            weights: ``(..., C)`` per-view confidences (0 = ignore the view), or ``None`` for equal weights.
            undistort: remove lens distortion first (so distorted observations triangulate exactly);
                ``False`` treats ``pixels`` as already undistorted.
        Returns:
            ``points3d`` ``(..., 3)`` world metres (NaN where not valid) and ``valid`` ``(...)`` bool.
        """
        from crosspose.geometry.triangulation import triangulate

        check_shape(pixels, (len(self), 2), "pixels")
        if not undistort:
            return triangulate(pixels, self.projection_matrices(), weights)
        normalized = self.undistort(pixels, output="normalized")
        extrinsics = np.concatenate([self.R, self.t[:, :, None]], axis=-1)  # (C, 3, 4): normalized coords
        return triangulate(normalized, extrinsics, weights)

    def reprojection_error(self, points3d: ArrayLike, pixels: ArrayLike) -> ArrayLike:
        """``(..., C)`` pixels between the projections of ``points3d (..., 3)`` and ``pixels (..., C, 2)``."""
        from crosspose.geometry.triangulation import reprojection_error

        return reprojection_error(points3d, pixels, self)

    def resized(self, scale: float) -> CameraRig:
        """Every camera :meth:`Camera.resized` by ``scale``."""
        return CameraRig([c.resized(scale) for c in self], self.metadata)

    def subset(self, names: Sequence[str]) -> CameraRig:
        """A rig of the named cameras, in the order of ``names``."""
        return CameraRig([self[n] for n in names], self.metadata)

    def allclose(self, other: CameraRig, atol: float = 1e-9) -> bool:
        """Same cameras in the same order, parameters within ``atol``."""
        return len(self) == len(other) and all(a.allclose(b, atol) for a, b in zip(self, other, strict=True))

    @classmethod
    def from_arrays(
        cls,
        names: Sequence[str],
        K: ArrayLike,
        dist: ArrayLike,
        R: ArrayLike,
        t: ArrayLike,
        image_size: ArrayLike,
        metadata: Mapping[str, Any] | None = None,
    ) -> CameraRig:
        """Build a rig from stacked arrays (``K (C,3,3)`` … ``image_size (C,2)`` as width, height)."""
        arrays = [np.asarray(a, dtype=np.float64) for a in (K, dist, R, t, image_size)]
        for label, a in zip(("K", "dist", "R", "t", "image_size"), arrays, strict=True):
            if a.ndim == 0 or a.shape[0] != len(names):
                raise ValueError(
                    f"{label} must have one row per camera name ({len(names)}), got shape {a.shape}"
                )
        check_shape(arrays[4], (len(names), 2), "image_size", exact=True)
        return cls(
            [
                Camera(name=n, K=k, dist=d, R=r, t=tt, image_size=(s[0], s[1]))
                for n, k, d, r, tt, s in zip(names, *arrays, strict=True)
            ],
            metadata,
        )
