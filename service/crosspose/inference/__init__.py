"""Images → heatmaps: per-view person crops, the cold-start person detector, the network runner and the
per-frame pipeline that ties them together (:class:`FramePipeline`)."""

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
from crosspose.inference.pipeline import FramePipeline, InferenceResult
from crosspose.inference.runner import OnnxRunner, ProviderUnavailableError, TorchRunner

__all__ = [
    "Crop",
    "Detection",
    "FramePipeline",
    "InferenceResult",
    "OnnxRunner",
    "PersonDetector",
    "ProviderUnavailableError",
    "TorchRunner",
    "crop_from_alignment",
    "crops_from_pose",
    "decode_detections",
    "detect_person",
    "distortion_error",
    "extract_crops",
    "heatmap_projections",
    "heatmap_transforms",
    "ssd_anchors",
]
