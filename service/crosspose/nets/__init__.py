"""Torch modules: the 2D backbone (BlazePose rebuilt from its .tflite) and cross-view fusion (its epipolar
geometry and sampling in ``epipolar``, the layer in ``fusion``).

``load_blazepose_landmarks()`` / ``load_blazepose_detector()`` return the ready modules (built from
the mediapipe wheel into the cache on first use, see ``crosspose.nets.build``).
"""

from crosspose.nets.blazepose import BlazePoseDetector, BlazePoseLandmarks, DetectorOutput, LandmarkOutput
from crosspose.nets.build import load_blazepose_detector, load_blazepose_landmarks
from crosspose.nets.epipolar import epipolar_sampling_grid
from crosspose.nets.fusion import CrossViewFusion

__all__ = [
    "BlazePoseDetector",
    "BlazePoseLandmarks",
    "CrossViewFusion",
    "DetectorOutput",
    "LandmarkOutput",
    "epipolar_sampling_grid",
    "load_blazepose_detector",
    "load_blazepose_landmarks",
]
