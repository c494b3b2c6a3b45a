"""Where the extrinsics' sightings come from: OpenPose JSON keypoints, a board seen by several cameras at
once (synchronized videos or image folders), or the performer in synchronized videos through crosspose's
own 2D network (each view on its own: there is no calibration to fuse views with yet)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crosspose.calibration.boards import BoardSpec, detect_board
from crosspose.calibration.extrinsics import ExtrinsicsError, Sightings
from crosspose.calibration.intrinsics import IMAGE_SUFFIXES, natural_key
from crosspose.geometry import CameraRig

log = logging.getLogger(__name__)


def keypoint_sightings(
    root: str | Path,
    intrinsics: CameraRig,
    layout: str,
    max_frames: int | None = None,
    min_confidence: float = 0.5,
) -> Sightings:
    """From ``root``'s per-camera OpenPose JSON folders (matched to the cameras as ``reconstruct`` does)."""
    from crosspose.io import read_multiview
    from crosspose.skeleton import get_layout

    lay = get_layout(layout)
    views = read_multiview(root, intrinsics.names, lay.num_joints)
    missing = [n for n, f in zip(intrinsics.names, views.folders, strict=True) if f is None]
    if missing:
        raise ExtrinsicsError(f"camera(s) {', '.join(missing)}: no keypoint folder in {root}")
    keypoints = views.keypoints if max_frames is None else views.keypoints[:max_frames]
    return Sightings.from_keypoints(keypoints, lay.joints, min_confidence)


def _frames(path: Path, step: int) -> list[np.ndarray | None]:
    """Grayscale frames of a video (every ``step``-th) or of an image folder (natural order)."""
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
        return [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files[::step]]
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ExtrinsicsError(f"{path}: OpenCV cannot open it as a video or it is not a folder")
    out: list[np.ndarray | None] = []
    try:
        i = 0
        while cap.grab():
            if i % step == 0:
                ok, frame = cap.retrieve()
                out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if ok else None)
            i += 1
    finally:
        cap.release()
    return out


def board_sightings(
    sources: dict[str, Path], intrinsics: CameraRig, board: BoardSpec, step: int = 1
) -> Sightings:
    """Board corners from synchronized videos or image folders, one per camera (``sources`` by camera name;
    frame ``i`` of every source is the same instant). A point is one corner in one frame."""
    missing = [n for n in intrinsics.names if n not in sources]
    if missing:
        raise ExtrinsicsError(f"camera(s) {', '.join(missing)}: no board video or folder given")
    frames = {name: _frames(sources[name], step) for name in intrinsics.names}
    n = min(len(f) for f in frames.values())
    if n == 0:
        empty = [k for k, f in frames.items() if not f]
        raise ExtrinsicsError(f"camera(s) {', '.join(empty)}: no frame could be read")
    k = board.num_corners
    pixels = np.full((n * k, len(intrinsics), 2), np.nan)
    weight = np.zeros((n * k, len(intrinsics)))
    for c, name in enumerate(intrinsics.names):
        for i, image in enumerate(frames[name][:n]):
            view = None if image is None else detect_board(image, board)
            if view is not None:
                pixels[i * k + view.ids, c] = view.pixels
                weight[i * k + view.ids, c] = 1.0
    labels = tuple(f"corner{j}" for j in range(k))
    return Sightings(pixels, weight, np.repeat(np.arange(n), k), np.tile(np.arange(k), n), labels)


def person_detector(intrinsics: CameraRig, network: Any) -> tuple[Any, tuple[str, ...]]:
    """``(detect, joints)``: ``detect(images)`` gives the performer's joints in each view, ``(C, J, 3)``
    ``[x, y, confidence]``, through crosspose's detector and 2D network view by view.

    The crops come from the person detector on every frame (no calibration yet, so no 3D pose to place
    them); a joint's confidence is its heatmap peak times the view's presence.
    """
    from crosspose.inference.heatmaps import heatmap_maxima
    from crosspose.inference.pipeline import FramePipeline

    pipeline = FramePipeline(intrinsics, network, associate_views=False)  # the extrinsics are being solved

    def detect(images: Any) -> np.ndarray:
        pipeline.reset()  # every frame from the detector: views are not tied together yet
        result = pipeline.process(images)
        xy = result.argmax_pixels(fused=False)
        _, peak = heatmap_maxima(result.heatmaps)
        conf = np.where(result.valid[:, None], peak * result.presence[:, None], 0.0)
        return np.concatenate([xy, conf[..., None]], -1)

    return detect, tuple(network.skeleton.joints)


def person_sightings(
    videos_dir: str | Path,
    intrinsics: CameraRig,
    network: Any = None,
    max_frames: int | None = None,
    min_confidence: float = 0.5,
    device: str = "auto",
    progress: bool = False,
) -> Sightings:
    """The performer's joints in synchronized videos (one per camera, named as ``reconstruct --videos``
    expects), by :func:`person_detector`."""
    from crosspose.io.videos import SyncedVideos, video_files
    from crosspose.reconstruct import default_network

    network = default_network(device, len(intrinsics)) if network is None else network
    detect, joints = person_detector(intrinsics, network)
    files = video_files(videos_dir, intrinsics.names)
    missing = [n for n, f in zip(intrinsics.names, files, strict=True) if f is None]
    if missing:
        raise ExtrinsicsError(f"camera(s) {', '.join(missing)}: no video in {videos_dir}")
    rows = []
    with SyncedVideos(files, max_frames) as videos:
        for i, images in enumerate(videos):
            rows.append(detect(images))
            if progress and i % 20 == 0:
                log.info("frame %d", i)
    if not rows:
        raise ExtrinsicsError(f"{videos_dir}: no frame could be read")
    return Sightings.from_keypoints(np.stack(rows), joints, min_confidence)
