"""Images → heatmaps: per-view person crops, the cold-start person detector, the inference runtimes that
run the network and the detector (:mod:`crosspose.inference.runtimes`: :func:`open_network`,
:func:`open_detector`) and the per-frame pipeline that ties them together (:class:`FramePipeline`)."""

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
from crosspose.inference.runtimes.onnxruntime import OnnxDetectorModel, OnnxRunner, ProviderUnavailableError
from crosspose.inference.runtimes.torch import TorchDetectorModel, TorchRunner

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
