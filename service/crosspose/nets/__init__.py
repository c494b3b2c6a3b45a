"""Torch modules: the 2D backbone (BlazePose rebuilt from its .tflite) and, later, cross-view fusion.

``load_blazepose_landmarks()`` / ``load_blazepose_detector()`` return the ready modules (built from
the mediapipe wheel into the cache on first use, see ``crosspose.nets.build``).
"""

from crosspose.nets.blazepose import BlazePoseDetector, BlazePoseLandmarks, DetectorOutput, LandmarkOutput
from crosspose.nets.build import load_blazepose_detector, load_blazepose_landmarks

__all__ = [
    "BlazePoseDetector",
    "BlazePoseLandmarks",
    "DetectorOutput",
    "LandmarkOutput",
    "load_blazepose_detector",
    "load_blazepose_landmarks",
]
