"""Camera maths in torch (numpy accepted): cameras, rigs, projection, undistortion, triangulation.

Knows nothing of zmq, FastAPI or pydantic.
"""

from crosspose.geometry.camera import Camera, CameraRig
from crosspose.geometry.projection import distort_normalized, project_points, projection_matrices

__all__ = ["Camera", "CameraRig", "distort_normalized", "project_points", "projection_matrices"]
