"""Images → heatmaps: per-view person crops, the cold-start person detector, the inference runtimes that
run the network and the detector (:mod:`crosspose.inference.runtimes`: :func:`open_network`,
:func:`open_detector`) and the per-frame pipeline that ties them together (:class:`FramePipeline`).

Each name loads with its module on first use (PEP 562), so that what needs no torch (the runtime choice
that ``crosspose config validate`` reports, the ONNX Runtime probe) imports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crosspose._lazy import lazy_getattr

if TYPE_CHECKING:
    from crosspose.inference.crops import (
        Crop,
        crop_from_alignment,
        crops_from_pose,
        distortion_error,
        extract_crops,
        heatmap_projections,
        heatmap_transforms,
    )
    from crosspose.inference.detector import (
        Detection,
        PersonDetector,
        decode_detections,
        detect_person,
        ssd_anchors,
    )
    from crosspose.inference.network import DeviceUnavailableError, HeatmapNetwork, RuntimeInfo
    from crosspose.inference.pipeline import FramePipeline, InferenceResult
    from crosspose.inference.runtimes import open_detector, open_network
    from crosspose.inference.runtimes.onnxruntime import (
        OnnxDetectorModel,
        OnnxRunner,
        ProviderUnavailableError,
    )
    from crosspose.inference.runtimes.torch import TorchDetectorModel, TorchRunner

# Each name that loads on first use, with the module that defines it.
_LAZY = {
    name: module
    for module, names in (
        ("crosspose.inference.crops", ("Crop", "crop_from_alignment", "crops_from_pose", "distortion_error",
                                       "extract_crops", "heatmap_projections", "heatmap_transforms")),
        ("crosspose.inference.detector", ("Detection", "PersonDetector", "decode_detections",
                                          "detect_person", "ssd_anchors")),
        ("crosspose.inference.network", ("DeviceUnavailableError", "HeatmapNetwork", "RuntimeInfo")),
        ("crosspose.inference.pipeline", ("FramePipeline", "InferenceResult")),
        ("crosspose.inference.runtimes", ("open_detector", "open_network")),
        ("crosspose.inference.runtimes.onnxruntime", ("OnnxDetectorModel", "OnnxRunner",
                                                      "ProviderUnavailableError")),
        ("crosspose.inference.runtimes.torch", ("TorchDetectorModel", "TorchRunner")),
    )
    for name in names
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


__all__ = [
    "Crop",
    "Detection",
    "DeviceUnavailableError",
    "FramePipeline",
    "HeatmapNetwork",
    "InferenceResult",
    "OnnxDetectorModel",
    "OnnxRunner",
    "PersonDetector",
    "ProviderUnavailableError",
    "RuntimeInfo",
    "TorchDetectorModel",
    "TorchRunner",
    "crop_from_alignment",
    "crops_from_pose",
    "decode_detections",
    "detect_person",
    "distortion_error",
    "extract_crops",
    "heatmap_projections",
    "heatmap_transforms",
    "open_detector",
    "open_network",
    "ssd_anchors",
]
