"""The cold-start person detector: BlazePose's pose detector decoded into crops.

Used when a view has no prior pose (start-up, or the view lost the performer). The network, as a
runtime opens it (:func:`crosspose.inference.runtimes.open_detector`), returns raw per-anchor
regressors; this module owns what mediapipe's pose-detection graph documents around it, re-implemented
here, the same for every runtime:

- letterbox: the frame scaled (aspect kept) into 224×224, centred, black padding; RGB in [-1, 1];
- SSD anchors (``ssd_anchors``): 5 layers with strides 8, 16, 32, 32, 32 on the 224 input, anchor
  offset 0.5, aspect ratio 1 plus one interpolated scale per layer (2 anchors per cell and
  layer), fixed anchor size 1 → 28²·2 + 14²·2 + 7²·2·3 = 2254 anchor centres;
- decoding: regressors ``(x, y, w, h, kx0, ky0, …, kx3, ky3)`` in 224-px units; centre and
  keypoints = ``raw / 224 + anchor centre``, size = ``raw / 224`` (normalized input coordinates);
  score = ``sigmoid(clip(logit, ±100))``, kept above 0.5;
- weighted non-max suppression: IoU threshold 0.3; each kept detection's box and keypoints are
  the score-weighted mean of the detections it suppresses, its score the best one's;
- the crop: keypoint 0 is the hip centre, keypoint 1 fixes the full-body circle's radius and
  rotation; :func:`~crosspose.inference.crops.crop_from_alignment` with scale 1.25.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from crosspose.inference.crops import CROP_SCALE, Crop, crop_from_alignment
from crosspose.inference.network import DetectorModel, RuntimeInfo

DETECTOR_SIZE = 224
STRIDES = (8, 16, 32, 32, 32)
MIN_SCORE = 0.5
IOU_THRESHOLD = 0.3
#: Detections kept per image after non-max suppression (the best ones): enough for a few people in view.
MAX_DETECTIONS = 5
_SCORE_CLIP = 100.0
_NUM_KEYPOINTS = 4


def ssd_anchors(input_size: int = DETECTOR_SIZE, strides: Sequence[int] = STRIDES,
                anchors_per_layer: int = 2, offset: float = 0.5) -> np.ndarray:
    """``(A, 2)`` anchor centres (normalized x, y) in the detector's output order.

    Consecutive layers with the same stride share one feature map; each cell holds
    ``anchors_per_layer`` anchors for every layer of its group, row-major over cells.
    """
    centres = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        n = int(np.ceil(input_size / strides[i]))
        y, x = np.mgrid[0:n, 0:n]
        cells = np.stack([(x.ravel() + offset) / n, (y.ravel() + offset) / n], -1)
        centres.append(np.repeat(cells, anchors_per_layer * (j - i), axis=0))
        i = j
    return np.concatenate(centres)


@dataclass(frozen=True)
class Detection:
    """One person found by the detector.

    Attributes:
        score: probability in [0, 1].
        box: ``(4,)`` ``xmin, ymin, xmax, ymax`` (the coordinates given to the decoder: normalized
            detector input, or image pixels after :meth:`PersonDetector.detect`).
        keypoints: ``(4, 2)``: hip centre, full-body alignment point, upper-body centre, upper-body
            alignment point.
    """

    score: float
    box: np.ndarray
    keypoints: np.ndarray

    def crop(self, scale: float = CROP_SCALE) -> Crop:
        """The BlazePose crop from the full-body alignment keypoints (image pixels)."""
        return crop_from_alignment(self.keypoints[0], self.keypoints[1], scale)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float = IOU_THRESHOLD) -> list[Detection]:
    """Weighted non-max suppression of ``(D,)`` scores, ``(D, 4)`` corner boxes, ``(D, K, 2)`` keypoints.

    Best first; each output averages (score-weighted) the box and keypoints of every remaining
    detection overlapping the best one by more than ``iou_threshold``.
    """
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        best = order[0]
        overlap = _iou(boxes[best], boxes[order]) > iou_threshold
        overlap[0] = True
        group = order[overlap]
        w = scores[group] / scores[group].sum()
        merged = np.einsum("d,dkc->kc", w, keypoints[group])
        out.append(Detection(float(scores[best]), w @ boxes[group], merged))
        order = order[~overlap]
    return out


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray | None = None,
                      min_score: float = MIN_SCORE, iou_threshold: float = IOU_THRESHOLD,
                      input_size: int = DETECTOR_SIZE) -> list[Detection]:
    """One image's raw ``(A, 12)`` regressors, ``(A,)`` logits → detections (normalized input coords)."""
    anchors = ssd_anchors(input_size) if anchors is None else anchors
    raw_boxes = np.asarray(raw_boxes, dtype=np.float64)
    raw_scores = np.asarray(raw_scores, dtype=np.float64)
    if raw_boxes.shape != (len(anchors), 4 + 2 * _NUM_KEYPOINTS) or raw_scores.shape != (len(anchors),):
        raise ValueError(f"expected boxes ({len(anchors)}, 12) and scores ({len(anchors)},), "
                         f"got {raw_boxes.shape} and {raw_scores.shape}")
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -_SCORE_CLIP, _SCORE_CLIP)))
    keep = scores >= min_score
    if not keep.any():
        return []
    r, a = raw_boxes[keep] / input_size, anchors[keep]
    centre, size = r[:, :2] + a, r[:, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keypoints = r[:, 4:].reshape(-1, _NUM_KEYPOINTS, 2) + a[:, None]
    return weighted_nms(scores[keep], boxes, keypoints, iou_threshold)


@dataclass(frozen=True)
class Letterbox:
    """Where a ``(W, H)`` image lands in the square detector input: ``(width, height)`` at ``(left, top)``."""

    image_size: tuple[int, int]
    width: int
    height: int
    left: int
    top: int
    input_size: int = DETECTOR_SIZE

    @classmethod
    def fit(cls, image_size: tuple[int, int], input_size: int = DETECTOR_SIZE) -> Letterbox:
        W, H = image_size
        s = input_size / max(W, H)
        w, h = max(1, round(W * s)), max(1, round(H * s))
        return cls((W, H), w, h, (input_size - w) // 2, (input_size - h) // 2, input_size)

    def to_image(self, normalized: np.ndarray) -> np.ndarray:
        """``(..., 2)`` normalized input coordinates → image pixels (pixel centres at integers)."""
        edge = np.asarray(normalized, dtype=np.float64) * self.input_size - [self.left, self.top]
        scale = np.array([self.image_size[0] / self.width, self.image_size[1] / self.height])
        out: np.ndarray = edge * scale - 0.5
        return out

    def apply(self, image: np.ndarray) -> np.ndarray:
        """BGR uint8 image → ``(S, S, 3)`` float32 RGB in [-1, 1]."""
        # INTER_AREA: ~8x downscale aliases badly with INTER_LINEAR, and this runs on cold start only.
        small = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        out = np.full((self.input_size, self.input_size, 3), -1.0, np.float32)
        out[self.top:self.top + self.height, self.left:self.left + self.width] = (
            small[..., ::-1].astype(np.float32) * np.float32(1 / 127.5) - 1.0)
        return out


class PersonDetector:
    """BlazePose's pose detector with decoding: BGR frames → detections and crops in image pixels.

    Args:
        model: the detector network as a runtime opened it (images → raw boxes and scores; see
            :class:`~crosspose.inference.network.DetectorModel` and
            :func:`crosspose.inference.runtimes.open_detector`). Default: the eager torch one
            (:class:`~crosspose.inference.runtimes.torch.TorchDetectorModel`, built from the mediapipe
            wheel on first use).
        min_score: lowest detection score kept, in [0, 1].
        iou_threshold: box overlap above which non-max suppression merges detections.
        max_detections: most detections :meth:`detect` returns per image (the best ones).
    """

    def __init__(self, model: DetectorModel | None = None, min_score: float = MIN_SCORE,
                 iou_threshold: float = IOU_THRESHOLD, max_detections: int = MAX_DETECTIONS) -> None:
        if model is None:
            from crosspose.inference.runtimes.torch import TorchDetectorModel

            model = TorchDetectorModel()
        self.model = model
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        if max_detections < 1:
            raise ValueError(f"max_detections must be at least 1, got {max_detections}")
        self.max_detections = int(max_detections)
        self.anchors = ssd_anchors()

    @property
    def info(self) -> RuntimeInfo:
        """The runtime, device and precision that run the network."""
        return self.model.info

    @property
    def runtime(self) -> str:
        """What runs the network, as the heartbeat's ``provider`` names it: the ONNX Runtime provider, or
        ``"torch"``."""
        return self.model.info.provider

    def prepare(self, num_views: int) -> None:
        """Be ready to look at ``num_views`` views at once, a cold start's (see
        :meth:`~crosspose.inference.network.DetectorModel.prepare`)."""
        self.model.prepare(num_views)

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.model(batch)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """``N`` BGR uint8 ``(H, W, 3)`` images → per image, up to ``max_detections`` detections (image px),
        best first (the candidates of cross-view association, :mod:`crosspose.inference.association`)."""
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"image {i} must be (H, W, 3) uint8 BGR, got {image.shape} {image.dtype}")
        if not images:
            return []
        boxes = [Letterbox.fit((im.shape[1], im.shape[0])) for im in images]
        batch = np.stack([lb.apply(im) for lb, im in zip(boxes, images, strict=True)])
        raw_boxes, raw_scores = self._run(batch)
        results = []
        for lb, b, s in zip(boxes, raw_boxes, raw_scores, strict=True):
            found = decode_detections(b, s, self.anchors, self.min_score, self.iou_threshold)
            results.append([
                Detection(d.score, lb.to_image(d.box.reshape(2, 2)).reshape(4), lb.to_image(d.keypoints))
                for d in found[:self.max_detections]
            ])
        return results

    def crops(self, images: Sequence[np.ndarray], scale: float = CROP_SCALE) -> list[Crop | None]:
        """One crop per image around its best detection (None where nobody was found)."""
        return [found[0].crop(scale) if found else None for found in self.detect(images)]


@functools.cache
def _default_detector() -> PersonDetector:
    return PersonDetector()


def detect_person(image: np.ndarray, detector: PersonDetector | None = None,
                  scale: float = CROP_SCALE) -> Crop | None:
    """The BlazePose crop around the most confident person in one BGR uint8 frame, or None."""
    return (detector or _default_detector()).crops([image], scale)[0]
