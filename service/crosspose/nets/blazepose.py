"""BlazePose-full (mediapipe 0.10.21) as torch modules: the landmark/heatmap network and the person detector.

Both wrap a ``GraphModule`` rebuilt from the wheel's .tflite (``crosspose.nets.tflite_torch``)
and give its outputs names, our axis order and documented units. The first 33 landmark/heatmap
channels follow ``crosspose.skeleton.BLAZEPOSE33``; channels 33–38 are BlazePose's auxiliary
points (2 crop-alignment points, then 4 hand points).
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from crosspose.nets.tflite_torch import GraphModule

CROP_SIZE = 256
HEATMAP_SIZE = 64
NUM_LANDMARKS = 39  # 33 BlazePose landmarks + 2 crop-alignment points + 4 hand points
DETECTOR_SIZE = 224
NUM_ANCHORS = 2254

# Output tensor names in pose_landmark_full.tflite / pose_detection.tflite.
_LANDMARK_OUTPUTS = {
    "landmarks": ("Identity", [1, NUM_LANDMARKS * 5]),
    "pose_flag": ("Identity_1", [1, 1]),
    "segmentation": ("Identity_2", [1, CROP_SIZE, CROP_SIZE, 1]),
    "heatmaps": ("Identity_3", [1, HEATMAP_SIZE, HEATMAP_SIZE, NUM_LANDMARKS]),
    "world_landmarks": ("Identity_4", [1, NUM_LANDMARKS * 3]),
}
_DETECTOR_OUTPUTS = {
    "boxes": ("Identity", [1, NUM_ANCHORS, 12]),
    "scores": ("Identity_1", [1, NUM_ANCHORS, 1]),
}


class LandmarkOutput(NamedTuple):
    """What BlazePose-full says about N crops.

    Attributes:
        heatmaps: (N, 39, 64, 64) heatmap logits (sigmoid → per-pixel probability); heatmap pixel
            (u, v) covers crop pixels 4u … 4u+3.
        landmarks: (N, 39, 5) x, y (crop pixels, 0…256), z (same scale, relative to the hips),
            visibility and presence logits.
        pose_flag: (N,) probability that the crop holds a person.
        segmentation: (N, 256, 256) person-mask logits; None when the module was built without
            the segmentation decoder (``load_blazepose_landmarks(segmentation=False)``).
        world_landmarks: (N, 39, 3) metres, origin between the hips.
    """

    heatmaps: Tensor
    landmarks: Tensor
    pose_flag: Tensor
    segmentation: Tensor | None
    world_landmarks: Tensor


class DetectorOutput(NamedTuple):
    """Raw pose-detector outputs for N images (decoding against the SSD anchors comes later).

    Attributes:
        boxes: (N, 2254, 12) per-anchor regressors in 224-pixel units: box centre offset (x, y)
            and size (w, h), then 4 keypoints as x, y offsets (in mediapipe's pose graph: the hip
            centre and a point fixing the full-body circle's radius and rotation, then the same
            pair for the upper body).
        scores: (N, 2254) per-anchor person logits.
    """

    boxes: Tensor
    scores: Tensor


def _check_outputs(graph: GraphModule, expected: dict[str, tuple[str, list[int]]]) -> dict[str, int]:
    """Position of each expected output in the graph's output tuple (-1: pruned away), checking shapes."""
    shapes = dict(zip(graph.plan["output_names"], graph.plan["output_shapes"], strict=True))
    positions = {}
    for field, (name, shape) in expected.items():
        if list(shapes.get(name, [])) != shape:
            raise ValueError(f"graph has no output {name!r} of shape {shape} for {field}")
        positions[field] = graph.output_names.index(name) if name in graph.output_names else -1
    return positions


def landmark_output_names(segmentation: bool) -> list[str]:
    """Graph outputs a ``BlazePoseLandmarks`` needs (the segmentation decoder is ~⅓ of the cost)."""
    return [name for field, (name, _) in _LANDMARK_OUTPUTS.items() if segmentation or field != "segmentation"]


class BlazePoseLandmarks(nn.Module):
    """BlazePose-full landmark network: 256×256 RGB crops → heatmaps, landmarks and more.

    ``forward(crops)`` takes ``crops`` (N, 256, 256, 3) float RGB in [0, 1] — a rotated square
    crop around the person (hips centred, hips→shoulders up, scale 1.25) as mediapipe feeds it —
    and returns a ``LandmarkOutput``. Any N; no data-dependent control flow (ONNX-exportable).
    """

    def __init__(self, graph: GraphModule) -> None:
        super().__init__()
        self.graph = graph
        self.positions = _check_outputs(graph, _LANDMARK_OUTPUTS)
        for field, at in self.positions.items():
            if at < 0 and field != "segmentation":
                raise ValueError(f"the graph was pruned of {field}, which BlazePoseLandmarks needs")

    def forward(self, crops: Tensor) -> LandmarkOutput:
        if crops.ndim != 4 or tuple(crops.shape[1:]) != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"crops must be (N, {CROP_SIZE}, {CROP_SIZE}, 3), got {tuple(crops.shape)}")
        outs = self.graph(crops.permute(0, 3, 1, 2))
        at = self.positions
        segmentation = outs[at["segmentation"]] if at["segmentation"] >= 0 else None
        return LandmarkOutput(
            heatmaps=outs[at["heatmaps"]],
            landmarks=outs[at["landmarks"]].reshape(-1, NUM_LANDMARKS, 5),
            pose_flag=outs[at["pose_flag"]].reshape(-1),
            segmentation=None if segmentation is None else segmentation.reshape(-1, CROP_SIZE, CROP_SIZE),
            world_landmarks=outs[at["world_landmarks"]].reshape(-1, NUM_LANDMARKS, 3),
        )


class BlazePoseDetector(nn.Module):
    """BlazePose person detector: 224×224 RGB images → per-anchor boxes and scores.

    ``forward(images)`` takes ``images`` (N, 224, 224, 3) float RGB in [-1, 1] (mediapipe
    letterboxes the frame into the square) and returns a ``DetectorOutput``.
    """

    def __init__(self, graph: GraphModule) -> None:
        super().__init__()
        self.graph = graph
        self.positions = _check_outputs(graph, _DETECTOR_OUTPUTS)

    def forward(self, images: Tensor) -> DetectorOutput:
        if images.ndim != 4 or tuple(images.shape[1:]) != (DETECTOR_SIZE, DETECTOR_SIZE, 3):
            size = DETECTOR_SIZE
            raise ValueError(f"images must be (N, {size}, {size}, 3), got {tuple(images.shape)}")
        outs = self.graph(images.permute(0, 3, 1, 2))
        boxes, scores = outs[self.positions["boxes"]], outs[self.positions["scores"]]
        return DetectorOutput(boxes=boxes, scores=scores.reshape(-1, NUM_ANCHORS))
