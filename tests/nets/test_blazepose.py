"""BlazePose rebuilt in torch equals Google's TFLite runtime on the same crops (fixtures made once).

The reference outputs come from ``ai-edge-litert`` (``tests/fixtures/make_blazepose_reference.py``
says how). For scale: TFLite's own kernels disagree with each other (XNNPACK vs built-in) by
~1.6e-4 on heatmap logits, ~5e-3 px on landmarks and up to ~1.2 on the ±1500 segmentation logits.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from crosspose.nets import (
    BlazePoseDetector,
    BlazePoseLandmarks,
    load_blazepose_detector,
    load_blazepose_landmarks,
)
from crosspose.nets.blazepose import NUM_ANCHORS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def landmarks_net() -> BlazePoseLandmarks:
    return load_blazepose_landmarks(segmentation=True)


@pytest.fixture(scope="module")
def backbone() -> BlazePoseLandmarks:
    """The module later code uses: heatmaps and landmarks, no segmentation decoder."""
    return load_blazepose_landmarks()


@pytest.fixture(scope="module")
def detector_net() -> BlazePoseDetector:
    return load_blazepose_detector()


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "blazepose_landmark_reference.npz") as data:
        return dict(data)


def _crops(reference: dict[str, np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(reference["crops"].astype(np.float32) / 255.0)


def test_heatmaps_and_landmarks_match_tflite(
    landmarks_net: BlazePoseLandmarks, reference: dict[str, np.ndarray]
) -> None:
    with torch.no_grad():
        out = landmarks_net(_crops(reference))
    heatmaps = out.heatmaps[:, reference["heatmap_channels"]].numpy()
    heatmap_err = np.abs(heatmaps - reference["heatmaps"]).max()
    landmarks = out.landmarks.reshape(len(heatmaps), -1).numpy()
    landmark_err = np.abs(landmarks - reference["landmarks"]).max()
    print(f"\nmax |Δ| heatmap logits {heatmap_err:.2e}, landmarks {landmark_err:.2e} (crop px / logits)")
    assert heatmap_err <= 1e-3
    # Landmark x/y/z are in crop pixels (0–256, z to ±300): 1e-2 px is far below a heatmap pixel (4 px).
    np.testing.assert_allclose(landmarks, reference["landmarks"], atol=1e-2)
    np.testing.assert_allclose(out.pose_flag.numpy(), reference["pose_flag"][:, 0], atol=1e-4)
    np.testing.assert_allclose(
        out.world_landmarks.reshape(len(heatmaps), -1).numpy(), reference["world_landmarks"], atol=1e-3
    )
    # Segmentation logits reach ±1500 through a deep ReLU6 decoder: compare relative to their size.
    assert out.segmentation is not None
    segmentation = out.segmentation[:, ::4, ::4].numpy()
    np.testing.assert_allclose(segmentation, reference["segmentation"], rtol=1e-2, atol=5e-2)


def test_detector_matches_tflite(detector_net: BlazePoseDetector) -> None:
    with np.load(FIXTURES / "blazepose_detector_reference.npz") as ref:
        images = torch.from_numpy(ref["images"].astype(np.float32) / 127.5 - 1.0)
        with torch.no_grad():
            out = detector_net(images)
        score_err = np.abs(out.scores.numpy() - ref["scores"]).max()
        boxes = out.boxes[0, ref["best_anchors"][0]].numpy()
        box_err = np.abs(boxes - ref["boxes"][0]).max()
        print(f"\nmax |Δ| detector score logits {score_err:.2e}, box regressors {box_err:.2e} (224-px units)")
        assert score_err <= 1e-3
        assert box_err <= 5e-3
        # The real frame holds one person: both runtimes rank the same anchor first.
        assert int(out.scores[0].argmax()) == int(ref["best_anchors"][0, 0])


def test_output_shapes_and_batch_independence(
    landmarks_net: BlazePoseLandmarks, detector_net: BlazePoseDetector, reference: dict[str, np.ndarray]
) -> None:
    crops = _crops(reference)
    with torch.no_grad():
        batch = landmarks_net(crops)
        single = landmarks_net(crops[1:2])
    n = len(crops)
    assert batch.heatmaps.shape == (n, 39, 64, 64)
    assert batch.landmarks.shape == (n, 39, 5)
    assert batch.pose_flag.shape == (n,)
    assert batch.segmentation is not None
    assert batch.segmentation.shape == (n, 256, 256)
    assert batch.world_landmarks.shape == (n, 39, 3)
    torch.testing.assert_close(single.heatmaps[0], batch.heatmaps[1], atol=1e-4, rtol=0)
    with torch.no_grad():
        det = detector_net(torch.zeros(2, 224, 224, 3))
    assert det.boxes.shape == (2, NUM_ANCHORS, 12)
    assert det.scores.shape == (2, NUM_ANCHORS)
    with pytest.raises(ValueError, match=r"\(N, 256, 256, 3\)"):
        landmarks_net(torch.zeros(1, 3, 256, 256))


def test_backbone_without_segmentation_gives_the_same_heatmaps(
    backbone: BlazePoseLandmarks, landmarks_net: BlazePoseLandmarks, reference: dict[str, np.ndarray]
) -> None:
    crops = _crops(reference)
    with torch.no_grad():
        lean, full = backbone(crops), landmarks_net(crops)
    assert lean.segmentation is None
    assert len(backbone.graph.ops) < len(landmarks_net.graph.ops)
    torch.testing.assert_close(lean.heatmaps, full.heatmaps, atol=0, rtol=0)
    torch.testing.assert_close(lean.landmarks, full.landmarks, atol=0, rtol=0)


def test_speed_of_four_crops_is_reported(backbone: BlazePoseLandmarks) -> None:
    """Prints the CPU time of one batch of 4 crops (no timed assert: machines here are shared)."""
    landmarks_net = backbone
    crops = torch.rand(4, 256, 256, 3, generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    lines = []
    try:
        for n_threads in (1, threads):
            torch.set_num_threads(n_threads)
            with torch.inference_mode():
                landmarks_net(crops)  # warm-up
                times = []
                for _ in range(5):
                    start = time.perf_counter()
                    landmarks_net(crops)
                    times.append(time.perf_counter() - start)
            best, median = 1e3 * min(times), 1e3 * sorted(times)[2]
            lines.append(f"{n_threads} thread(s): {best:.1f} ms (median {median:.1f})")
    finally:
        torch.set_num_threads(threads)
    print("\nBlazePose-full, batch of 4 crops on CPU: " + "; ".join(lines))
