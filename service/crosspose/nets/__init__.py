"""Torch modules: the 2D backbone (BlazePose rebuilt from its .tflite) and cross-view fusion (its epipolar
geometry and sampling in ``epipolar``, the layer in ``fusion``).

``load_blazepose_landmarks()`` / ``load_blazepose_detector()`` return the ready modules (built from
the mediapipe wheel into the cache on first use, see ``crosspose.nets.build``).

Each name loads with its module, and torch, on first use (PEP 562), so that :mod:`crosspose.nets.files`
(the exported files in the cache, checked by the supervisor before the service starts) imports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crosspose._lazy import lazy_getattr

if TYPE_CHECKING:
    from crosspose.nets.blazepose import BlazePoseDetector, BlazePoseLandmarks, DetectorOutput, LandmarkOutput
    from crosspose.nets.build import load_blazepose_detector, load_blazepose_landmarks
    from crosspose.nets.epipolar import epipolar_sampling_grid
    from crosspose.nets.fusion import CrossViewFusion

# Each name that loads on first use, with the module that defines it.
_LAZY = {name: f"crosspose.nets.{module}" for module, names in (
    ("blazepose", ("BlazePoseDetector", "BlazePoseLandmarks", "DetectorOutput", "LandmarkOutput")),
    ("build", ("load_blazepose_detector", "load_blazepose_landmarks")),
    ("epipolar", ("epipolar_sampling_grid",)),
    ("fusion", ("CrossViewFusion",)),
) for name in names}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())

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
