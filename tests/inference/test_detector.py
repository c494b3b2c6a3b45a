"""Cold-start detector: SSD anchors, decoding, weighted NMS, letterbox; then BlazePose's detector on
real Pose2Sim frames (against that frame's OpenPose keypoints) and on a rendered studio frame."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from crosspose.inference import Crop, PersonDetector, decode_detections, detect_person, ssd_anchors
from crosspose.inference.detector import Letterbox, weighted_nms
from crosspose.skeleton import BODY25B, H36M17
from crosspose.studio.heatmaps import apply_affine


def test_anchors_follow_the_ssd_options() -> None:
    a = ssd_anchors()
    assert a.shape == (2254, 2)
    # stride 8: 28x28 cells, 2 anchors each, row-major; then 14x14x2; then 7x7 cells x 3 layers x 2.
    np.testing.assert_allclose(a[:2], [[0.5 / 28, 0.5 / 28]] * 2)
    np.testing.assert_allclose(a[2], [1.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[56], [0.5 / 28, 1.5 / 28])
    np.testing.assert_allclose(a[1568], [0.5 / 14, 0.5 / 14])
    np.testing.assert_allclose(a[1568 + 392: 1568 + 392 + 6], [[0.5 / 7, 0.5 / 7]] * 6)
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])


def test_decoding_and_weighted_nms() -> None:
    anchors = ssd_anchors()
    boxes = np.zeros((2254, 12))
    scores = np.full(2254, -10.0)
    i = 300
    boxes[i] = [22.4, -11.2, 44.8, 89.6, 0, 0, 11.2, -44.8, 0, 0, 0, 0]  # 224-px units
    scores[i] = 3.0
    boxes[i + 1] = boxes[i] + [0, 0, 0, 0, 2.24, 0, 0, 0, 0, 0, 0, 0]  # same cell, overlapping
    scores[i + 1] = 1.0
    found = decode_detections(boxes, scores, anchors)
    assert len(found) == 1  # merged
    d = found[0]
    np.testing.assert_allclose(d.score, 1 / (1 + np.exp(-3.0)))
    centre = anchors[i] + [0.1, -0.05]
    half = np.array([0.1, 0.2])
    np.testing.assert_allclose(d.box, np.concatenate([centre - half, centre + half]), atol=1e-12)
    w = np.array([1 / (1 + np.exp(-3.0)), 1 / (1 + np.exp(-1.0))])
    np.testing.assert_allclose(d.keypoints[0], anchors[i] + [0.01 * w[1] / w.sum(), 0], atol=1e-12)
    np.testing.assert_allclose(d.keypoints[1], anchors[i] + [0.05, -0.2], atol=1e-12)
    assert decode_detections(boxes, np.full(2254, -10.0), anchors) == []
    # Disjoint boxes survive separately, best first.
    disjoint = np.array([[0, 0, 1, 1], [2, 2, 3, 3]], float)
    kept = weighted_nms(np.array([0.6, 0.9]), disjoint, np.zeros((2, 4, 2)))
    assert [k.score for k in kept] == [0.9, 0.6]
    with pytest.raises(ValueError, match="12"):
        decode_detections(boxes[:, :4], scores, anchors)


def test_letterbox_maps_back_to_image_pixels() -> None:
    lb = Letterbox.fit((1080, 1920))
    assert (lb.width, lb.height, lb.left, lb.top) == (126, 224, 49, 0)
    # The content's outer edges are the image's outer pixel edges.
    corners = np.array([[49 / 224, 0.0], [(49 + 126) / 224, 1.0]])
    np.testing.assert_allclose(lb.to_image(corners), [[-0.5, -0.5], [1079.5, 1919.5]])
    image = np.full((1920, 1080, 3), 255, np.uint8)
    x = lb.apply(image)
    assert x.shape == (224, 224, 3)
    assert x.dtype == np.float32
    assert x[:, :49].max() == -1
    assert x[:, 49:175].min() == 1
    assert x[:, 175:].max() == -1


# ---------------------------------------------------------------------------------------------
# The network on real and rendered frames


@pytest.fixture(scope="module")
def detector() -> PersonDetector:
    return PersonDetector()


@functools.cache
def _frame(camera: int, index: int) -> np.ndarray:
    from crosspose import assets

    video = assets.extract("pose2sim-0.10.49", f"Pose2Sim/Demo_SinglePerson/videos/cam{camera:02d}.mp4")
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = cap.read()
    cap.release()
    assert ok
    return image


def _openpose_performer(camera: int, index: int) -> np.ndarray:
    """``(25, 3)`` BODY_25B keypoints of the largest person OpenPose found in that frame."""
    from crosspose import assets
    from crosspose.io.openpose import read_people

    people = read_people(assets.extract(
        "pose2sim-0.4.15", f"Pose2Sim/Demo/pose/cam{camera}_json/cam{camera:02d}.{index:04d}.json"))
    return max(people, key=lambda p: np.nanmax(p[:, 1]) - np.nanmin(p[:, 1]))


@pytest.mark.network
@pytest.mark.parametrize("index", [0, 50])
def test_detector_crops_hold_the_real_performer(detector: PersonDetector, index: int) -> None:
    images = [_frame(c, index) for c in range(1, 5)]
    t = time.perf_counter()
    crops = detector.crops(images)
    print(f"detector, 4 frames of 1080x1920: {(time.perf_counter() - t) * 1e3:.0f} ms")
    for c, crop in enumerate(crops, start=1):
        assert crop is not None
        kp = _openpose_performer(c, index)
        sure = kp[kp[:, 2] > 0.3, :2]
        assert crop.contains(sure).all(), f"cam{c}: OpenPose keypoints outside the crop"
        height = np.ptp(sure[:, 1])
        assert 0.8 * height < crop.size < 3 * height
        # Hip-centred and hips→shoulders up in the crop, as the landmark model expects.
        hips = kp[[BODY25B.index("LHip"), BODY25B.index("RHip")], :2].mean(0)
        shoulders = kp[[BODY25B.index("LShoulder"), BODY25B.index("RShoulder")], :2].mean(0)
        hip, sho = apply_affine(crop.affine(), np.stack([hips, shoulders]))
        assert np.hypot(*(hip - 127.5)) < 256 * 0.1
        up = sho - hip
        assert np.degrees(np.arctan2(abs(up[0]), -up[1])) < 35


def _pose2sim_3d(index: int) -> np.ndarray:
    """``(17, 3)`` H36M joints of Pose2Sim's own 3D result for that frame (metres, our Z-up world)."""
    from crosspose import assets
    from crosspose.io.trc import read_trc

    trc = read_trc(assets.extract("pose2sim-0.4.15", "Pose2Sim/Demo/opensim/Balancing_for_IK.trc"))
    derived = {"pelvis": ("RHip", "LHip"), "spine": ("RHip", "LHip", "RShoulder", "LShoulder"),
               "thorax": ("RShoulder", "LShoulder"), "neck": ("Neck",), "head": ("Head",)}
    joints = []
    for name in H36M17.joints:
        side, _, part = name.partition("_")
        markers = derived.get(name, (side.upper() + part.capitalize(),))
        joints.append(np.mean([trc.marker(m)[index] for m in markers], axis=0))
    return np.array(joints)


@pytest.mark.network
@pytest.mark.parametrize("index", [0, 50, 99])
def test_pose_crops_agree_with_the_detector_on_real_frames(detector: PersonDetector, index: int) -> None:
    from crosspose import assets
    from crosspose.calibration import load_rig
    from crosspose.inference import crops_from_pose

    rig = load_rig(assets.extract("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt"))
    from_pose = crops_from_pose(_pose2sim_3d(index), rig)
    from_images = detector.crops([_frame(c, index) for c in range(1, 5)])
    for c, (a, b) in enumerate(zip(from_pose, from_images, strict=True), start=1):
        assert a is not None
        assert b is not None
        kp = _openpose_performer(c, index)
        assert a.contains(kp[kp[:, 2] > 0.3, :2]).all()
        assert np.hypot(*np.subtract(a.center, b.center)) < 0.1 * b.size
        assert 0.75 < a.size / b.size < 1.33
        assert abs(np.angle(np.exp(1j * (a.rotation - b.rotation)))) < 0.35  # detector: ±20°


@pytest.mark.network
def test_detector_on_a_rendered_studio_frame(detector: PersonDetector) -> None:
    from crosspose.studio import Renderer, make_scene

    # BlazePose's detector keys on faces; our capsule people have none, so it is weak on them:
    # views often miss, and low-score hits (~0.6) can sit on the legs of a small crouching figure.
    # Seed 1 is a scene where every view fires; the confident hits must hold the performer.
    scene = make_scene(1, num_frames=2, num_cameras=4)
    images = Renderer(scene.rig).render(scene.joints3d[0])
    hips = scene.joints2d[0][:, [H36M17.index("l_hip"), H36M17.index("r_hip")]].mean(1)
    found = detector.detect(images)
    assert all(found)
    confident = [c for c in range(4) if found[c][0].score > 0.65]
    assert len(confident) >= 2
    for c in confident:
        crop = found[c][0].crop()
        assert np.hypot(*(np.asarray(crop.center) - hips[c])) < 0.25 * crop.size
        assert crop.contains(scene.joints2d[0, c]).all()
    assert isinstance(detect_person(images[confident[0]], detector), Crop)


@pytest.mark.network
def test_empty_frame_has_nobody(detector: PersonDetector) -> None:
    assert detect_person(np.zeros((480, 640, 3), np.uint8), detector) is None


# ---------------------------------------------------------------------------------------------
# The exported detector in ONNX Runtime (what the live pipeline runs)


@pytest.fixture(scope="module")
def onnx_detector_path(exported_detector: Path) -> Path:
    """The exported detector (``conftest``: made once, shared with the OpenVINO runtime's tests)."""
    return exported_detector


@pytest.mark.network
@pytest.mark.parametrize("index", [0, 50])
def test_onnx_detector_finds_what_torch_finds(detector: PersonDetector, onnx_detector_path: Path,
                                              index: int) -> None:
    from crosspose.inference import OnnxDetectorModel

    onnx = PersonDetector(OnnxDetectorModel(onnx_detector_path, device="cpu", intra_op_threads=1))
    assert onnx.runtime == "CPUExecutionProvider"
    assert detector.runtime == "torch"
    images = [_frame(camera, index) for camera in (1, 2, 3, 4)]
    # Raw regressors first (224-px units, logits), then what the pipeline uses: detections and crops.
    batch = np.stack([Letterbox.fit((im.shape[1], im.shape[0])).apply(im) for im in images])
    (boxes, scores), (ref_boxes, ref_scores) = onnx._run(batch), detector._run(batch)
    assert boxes.shape == ref_boxes.shape == (4, 2254, 12)
    assert scores.shape == ref_scores.shape == (4, 2254)
    assert np.abs(boxes - ref_boxes).max() < 2e-2
    assert np.abs(scores - ref_scores).max() < 2e-2
    for found, ref in zip(onnx.detect(images), detector.detect(images), strict=True):
        assert len(found) == len(ref) >= 1
        for a, b in zip(found, ref, strict=True):
            assert abs(a.score - b.score) < 1e-3
            np.testing.assert_allclose(a.box, b.box, atol=0.5)
            np.testing.assert_allclose(a.keypoints, b.keypoints, atol=0.5)
    for a, b in zip(onnx.crops(images), detector.crops(images), strict=True):
        assert a is not None
        assert b is not None
        np.testing.assert_allclose(a.corners(), b.corners(), atol=1.0)


def test_onnx_detector_refuses_another_model(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from crosspose.inference import OnnxDetectorModel

    graph = helper.make_graph([helper.make_node("Identity", ["crops"], ["out"])], "other",
                              [helper.make_tensor_value_info("crops", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), str(path))
    with pytest.raises(ValueError, match="not an exported person detector"):
        OnnxDetectorModel(path, device="cpu")
    with pytest.raises(FileNotFoundError, match="crosspose model export"):
        OnnxDetectorModel(tmp_path / "missing.onnx", device="cpu")


def test_live_stage_takes_the_onnx_detector_beside_the_network(onnx_detector_path: Path, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace

    from crosspose.config import OnnxRuntimeInference
    from crosspose.core.backends import person_detector

    config: Any = SimpleNamespace(inference=OnnxRuntimeInference(device="cpu", threads=1))
    found = person_detector(onnx_detector_path.with_name("crosspose_fusion.onnx"), config)
    assert isinstance(found, PersonDetector)
    assert found.runtime == "CPUExecutionProvider"
    # An older export without the detector file: the pipeline's torch detector, and a warning saying why.
    with caplog.at_level("WARNING"):
        assert person_detector(tmp_path / "crosspose_fusion.onnx", config) is None
    assert "crosspose_detector.onnx" in caplog.text
    assert "eager torch" in caplog.text
