"""Images → heatmaps: per-view person crops, the cold-start person detector and the network runner."""

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
from crosspose.inference.runner import OnnxRunner, ProviderUnavailableError

__all__ = [
    "Crop",
    "Detection",
    "OnnxRunner",
    "PersonDetector",
    "ProviderUnavailableError",
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
