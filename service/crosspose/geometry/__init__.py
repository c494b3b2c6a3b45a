"""Camera maths in torch (numpy accepted): cameras, rigs, projection, undistortion, triangulation.

Every function takes numpy arrays or torch tensors (any device) and answers in the same container;
shapes are ``(..., C, 2)`` pixels, ``(..., 3)`` world metres (Z up, floor at ``z = 0``), ``(C, 3, 3)``
intrinsics/rotations. Knows nothing of zmq, FastAPI or pydantic.

``Camera`` and ``CameraRig`` load with the package and need no torch (numpy in, numpy kept); every other
name loads its module, and torch, on first use (PEP 562), so that a process that only reads, validates or
stores rigs (the API and recorder stages) never loads torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crosspose._lazy import lazy_getattr
from crosspose.geometry.camera import Camera, CameraRig

if TYPE_CHECKING:
    from crosspose.geometry.projection import (
        distort_normalized,
        normalized_to_pixels,
        pixels_to_normalized,
        project_points,
        projection_matrices,
        world_to_camera,
    )
    from crosspose.geometry.rotations import is_rotation, look_at, matrix_to_rotvec, rotvec_to_matrix
    from crosspose.geometry.triangulation import reprojection_error, triangulate
    from crosspose.geometry.undistort import radial_fold_limit, undistort_normalized, undistort_points

# Each name that loads on first use, with the module that defines it.
_LAZY = {name: f"crosspose.geometry.{module}" for module, names in (
    ("projection", ("distort_normalized", "normalized_to_pixels", "pixels_to_normalized", "project_points",
                    "projection_matrices", "world_to_camera")),
    ("rotations", ("is_rotation", "look_at", "matrix_to_rotvec", "rotvec_to_matrix")),
    ("triangulation", ("reprojection_error", "triangulate")),
    ("undistort", ("radial_fold_limit", "undistort_normalized", "undistort_points")),
) for name in names}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())

__all__ = [
    "Camera",
    "CameraRig",
    "distort_normalized",
    "is_rotation",
    "look_at",
    "matrix_to_rotvec",
    "normalized_to_pixels",
    "pixels_to_normalized",
    "project_points",
    "projection_matrices",
    "radial_fold_limit",
    "reprojection_error",
    "rotvec_to_matrix",
    "triangulate",
    "undistort_normalized",
    "undistort_points",
    "world_to_camera",
]
