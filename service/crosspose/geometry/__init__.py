"""Camera maths in torch (numpy accepted): cameras, rigs, projection, undistortion, triangulation.

Every function takes numpy arrays or torch tensors (any device) and answers in the same container;
shapes are ``(..., C, 2)`` pixels, ``(..., 3)`` world metres (Z up, floor at ``z = 0``), ``(C, 3, 3)``
intrinsics/rotations. Knows nothing of zmq, FastAPI or pydantic.
"""

from crosspose.geometry.camera import Camera, CameraRig
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
