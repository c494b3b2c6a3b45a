"""``inference.decode``: JPEG frames decoded at 1/2 or 1/4 size (libjpeg's scaled IDCT, real OpenCV), the rule
that picks the reduction from the crops the next set will take, and the pipeline taking a set at its reduced
scale without losing the performer."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
from tests.inference.test_pipeline import TruthNetwork, _pose, _worst_error, detection_from_crop

from crosspose.bus import MessageError
from crosspose.capture.frames import decode_frame, encode_frame, reduced_shape
from crosspose.config import ConfigError, config_from_dict
from crosspose.core import HeatmapStep, ImageSet, Track, frameset_images
from crosspose.core.backends import NetworkBackend
from crosspose.core.decode import DecodeRule, smallest_crop_px
from crosspose.geometry import CameraRig
from crosspose.inference import crops_from_pose, heatmap_projections
from crosspose.inference.detector import Detection
from crosspose.inference.pipeline import FramePipeline, rescaled_only
from crosspose.solver import Solver
from crosspose.studio import make_scene, random_rig


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    """test_pipeline's scene: 4 cameras of assorted image sizes around a walking performer."""
    return make_scene(3, 3, 4, rig=random_rig(3, 4, distortion=0.0))


def _textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A BGR uint8 image with smooth gradients and some detail (what a camera sends, roughly)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    base = np.stack([x / width * 200, y / height * 200, (x + y) / (width + height) * 255], -1)
    detail = 25 * np.sin(x / 7.0)[..., None] * np.cos(y / 5.0)[..., None]
    return np.clip(base + detail + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def _jpeg_header(camera: str, shape: tuple[int, ...]) -> dict[str, object]:
    return {"camera": camera, "seq": 0, "encoding": "jpeg", "shape": list(shape)}


# -- the rule -----------------------------------------------------------------------------------------


def test_the_rule_takes_the_largest_reduction_that_keeps_every_crop_at_least_the_network_input() -> None:
    rule = DecodeRule(256)  # reductions 1, 2, 4; 15 % margin to move to a larger one
    assert rule.choose(None) == 1  # not known before decoding: full size
    assert rule.choose(float("nan")) == 1
    assert rule.choose(500.0) == 1  # 250 px at 1/2: the crop would upsample
    assert rule.choose(600.0) == 2  # 300 px at 1/2 >= 256 x 1.15; 150 at 1/4
    assert rule.choose(1200.0) == 4  # 300 px at 1/4
    assert rule.changes == 2


def test_the_rule_has_hysteresis_up_and_gives_detail_back_at_once() -> None:
    rule = DecodeRule(256)
    assert rule.choose(560.0) == 1  # 280 px at 1/2: enough to stay there, not to go there
    assert rule.choose(600.0) == 2
    assert rule.choose(560.0) == 2  # staying needs only 256 px at 1/2
    assert rule.choose(530.0) == 2
    assert rule.choose(510.0) == 1  # 255 px at 1/2: back to full at once
    assert rule.choose(600.0) == 2
    assert rule.choose(None) == 1  # the detector's turn: full size
    assert rule.changes == 4


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"input_size": 0}, "input_size"),
    ({"input_size": 256, "reductions": (2, 4)}, "ascend from 1"),
    ({"input_size": 256, "reductions": (1, 4, 2)}, "ascend from 1"),
    ({"input_size": 256, "margin": 1.5}, "margin"),
])
def test_a_bad_rule_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DecodeRule(**kwargs)  # type: ignore[arg-type]


def test_smallest_crop_px_is_in_the_sent_frames_pixels(scene) -> None:  # type: ignore[no-untyped-def]
    rig = scene.rig
    sides = np.array([800.0, 900.0, 700.0, 1000.0])  # the calibration's pixels
    frames = [_jpeg_header(name, (h // 2, w // 2, 3)) for name, (w, h) in zip(rig.names, rig.image_size,
                                                                               strict=True)]
    header = {"present": [True, True, False, True], "frames": frames}
    assert smallest_crop_px(header, rig, sides) == pytest.approx(400.0)  # view 2 missing: not counted
    assert smallest_crop_px(header, rig, None) is None
    assert smallest_crop_px(header, rig, np.array([800.0, np.nan, 700.0, 1000.0])) is None
    raw = {**header, "frames": [{**frames[0], "encoding": "raw"}, *frames[1:]]}
    assert smallest_crop_px(raw, rig, sides) is None  # raw frames are never reduced


# -- the decode ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduce", [2, 4])
def test_a_jpeg_decoded_reduced_is_the_frame_at_that_scale(reduce: int) -> None:
    image = _textured(270, 482)  # 482 = 4 x 120 + 2: libjpeg rounds each side up
    _, jpeg = encode_frame(image, 90)
    header = _jpeg_header("a", image.shape)
    full = decode_frame(header, jpeg)
    small = decode_frame(header, jpeg, reduce)
    expected = [-(-270 // reduce), -(-482 // reduce), 3]
    assert list(small.shape) == reduced_shape(image.shape, reduce) == expected
    # The block means of the whole decode (INTER_AREA), up to JPEG's own error.
    h, w = 270 // reduce * reduce, 482 // reduce * reduce
    area = cv2.resize(full[:h, :w], (w // reduce, h // reduce), interpolation=cv2.INTER_AREA)
    diff = np.abs(small[:h // reduce, :w // reduce].astype(int) - area.astype(int))
    assert diff.mean() < 3.0


def test_a_reduction_libjpeg_has_not_or_a_raw_frame_is_refused() -> None:
    image = _textured(64, 96)
    _, jpeg = encode_frame(image, 90)
    with pytest.raises(ValueError, match="not 1/3"):
        decode_frame(_jpeg_header("a", image.shape), jpeg, 3)
    raw = {"camera": "b", "seq": 0, "encoding": "raw", "dtype": "uint8", "shape": list(image.shape)}
    header = {"present": [True, True], "frames": [_jpeg_header("a", image.shape), raw]}
    buffers = [jpeg, image.tobytes()]
    assert [i.shape for i in frameset_images(header, buffers) if i is not None] == [image.shape] * 2
    with pytest.raises(ValueError, match="raw frames cannot be decoded at 1/2"):
        frameset_images(header, buffers, 2)
    # A header whose shape the JPEG does not hold is still caught at a reduced size.
    wrong = _jpeg_header("a", (66, 96, 3))
    with pytest.raises(MessageError, match="at 1/2 size"):
        decode_frame(wrong, jpeg, 2)


# -- the pipeline at the reduced scale ----------------------------------------------------------------


class OrderDetector:
    """The true crops, by position in the views asked for (the test asks for all of them, cold)."""

    def __init__(self, crops: list) -> None:  # type: ignore[type-arg]
        self.crops = crops
        self.calls = 0

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        self.calls += 1
        return [[detection_from_crop(crop)] if crop is not None else [] for crop in self.crops]


def _jpeg_set(rig, reduce: int) -> ImageSet:  # type: ignore[no-untyped-def]
    """A frame set of real JPEGs, one per camera at its calibrated size, decoded at 1/``reduce``."""
    frames, buffers = [], []
    for c, (name, (w, h)) in enumerate(zip(rig.names, rig.image_size, strict=True)):
        image = _textured(int(h), int(w), seed=c)
        buffers.append(encode_frame(image, 85)[1])
        frames.append(_jpeg_header(name, image.shape))
    header = {"seq": 0, "present": [True] * len(rig), "frames": frames}
    return ImageSet(0, None, frameset_images(header, buffers, reduce))


def test_the_pipeline_takes_a_reduced_set_at_its_scale_and_keeps_tracking(scene) -> None:  # type: ignore[no-untyped-def]
    rig, truth = scene.rig, scene.joints3d[0]
    network, detector = TruthNetwork(truth), OrderDetector(crops_from_pose(truth, rig))
    pipeline = FramePipeline(rig, network, detector)  # type: ignore[arg-type]
    step = HeatmapStep(NetworkBackend(pipeline), rig)
    assert step.planned_crop_sides() is None  # cold: the detector needs the frames whole
    step.run(_jpeg_set(rig, 1))
    assert detector.calls == 1
    step.feedback(Track.from_pose(_pose(truth)))
    planned = step.planned_crop_sides()  # the calibration's pixels
    assert planned is not None
    np.testing.assert_allclose(planned, [c.size for c in crops_from_pose(truth, rig)])

    # Half size: the rig is rescaled, the crops move with the frames, the detector is not needed.
    half = rig.resized(0.5)
    reduced = _jpeg_set(rig, 2)
    assert [i.shape[:2] for i in reduced.images if i is not None] == \
        [(int(h) // 2, int(w) // 2) for w, h in rig.image_size]
    result = step.run(reduced).result
    assert result is not None
    assert detector.calls == 1
    assert pipeline.frames == 2
    assert result.sources == ("pose",) * 4  # still the fed-back pose's crops: tracking went on
    for got, want in zip(result.crops, crops_from_pose(truth, half), strict=True):
        assert got is not None
        assert want is not None
        np.testing.assert_allclose(got.center, want.center, atol=1e-6)
        assert got.size == pytest.approx(want.size)
    np.testing.assert_allclose(result.projections, heatmap_projections(result.crops, half), atol=1e-9)
    pose = Solver().solve(*result.solver_inputs())  # the same heatmap-pixel geometry: the truth again
    assert _worst_error(pose, truth) < 0.005
    # Planned sides stay in the calibration's pixels whatever the frames' scale.
    np.testing.assert_allclose(step.planned_crop_sides(), planned, rtol=1e-9)

    # Back to full size: the crops come back with it, still no detector, the root kept.
    root = pipeline.root
    again = step.run(_jpeg_set(rig, 1)).result
    assert again is not None
    assert again.sources == ("previous",) * 4
    for got, want in zip(again.crops, crops_from_pose(truth, rig), strict=True):
        assert got is not None
        assert want is not None
        np.testing.assert_allclose(got.center, want.center, atol=1e-6)
    assert detector.calls == 1
    np.testing.assert_allclose(pipeline.root, root)


def test_a_lost_view_means_full_size(scene) -> None:  # type: ignore[no-untyped-def]
    rig, truth = scene.rig, scene.joints3d[0]
    network = TruthNetwork(truth)
    network.presence[1] = 0.0  # view 1 loses the performer: the detector's turn there next set
    pipeline = FramePipeline(rig, network, OrderDetector(crops_from_pose(truth, rig)))  # type: ignore[arg-type]
    pipeline.process([i for i in _jpeg_set(rig, 1).images])
    pipeline.feedback(Track.from_pose(_pose(truth)))
    assert pipeline.planned_crop_sides() is not None
    pipeline.process([i for i in _jpeg_set(rig, 1).images])
    assert pipeline.planned_crop_sides() is None


def test_a_free_place_for_a_second_performer_means_full_size(scene) -> None:  # type: ignore[no-untyped-def]
    # With max_persons 2 and one performer followed, the detector looks for someone new now and then.
    rig, truth = scene.rig, scene.joints3d[0]
    pipeline = FramePipeline(rig, TruthNetwork(truth), OrderDetector(crops_from_pose(truth, rig)),  # type: ignore[arg-type]
                             max_persons=2)
    pipeline.process([i for i in _jpeg_set(rig, 1).images])
    pipeline.feedback(Track.from_pose(_pose(truth)))
    assert pipeline.ids == [0]
    assert pipeline.planned_crop_sides() is None


def test_the_same_calibration_at_rounded_sizes_keeps_the_prior_and_moves_the_crops(scene) -> None:  # type: ignore[no-untyped-def]
    # Frames of 1080 rows for a calibration padded to 1088 are at 0.993 of it; decoded at 1/2, at 0.496: the
    # image sizes round, the focal lengths tell the exact scale between the two.
    rig, truth = scene.rig, scene.joints3d[0]
    before, after = rig.resized(0.993), rig.resized(0.496)
    np.testing.assert_allclose(rescaled_only(before, after), 0.496 / 0.993, rtol=1e-9)
    shift = np.array([0.5, 0.0, 0.0])  # another calibration (the world moved): not a resize
    moved = CameraRig.from_arrays(after.names, after.K, after.dist, after.R,
                                  after.t - np.einsum("cij,j->ci", after.R, shift), after.image_size)
    assert rescaled_only(before, moved) is None
    pipeline = FramePipeline(before, TruthNetwork(truth), OrderDetector(crops_from_pose(truth, before)))  # type: ignore[arg-type]
    pipeline.process([np.zeros((int(h), int(w), 3), np.uint8) for w, h in before.image_size])
    pipeline.feedback(Track.from_pose(_pose(truth)))
    primary = pipeline.primary
    assert primary is not None
    assert primary.prior is not None
    prior = primary.prior.copy()
    pipeline.set_rig(after)
    assert primary.prior is not None  # tracking goes on: the fusion keeps looking where the joints were
    np.testing.assert_array_equal(primary.prior, prior)
    for got, want in zip(primary.crops, crops_from_pose(truth, after), strict=True):
        assert got is not None
        assert want is not None
        np.testing.assert_allclose(got.center, want.center, atol=1e-6)
        assert got.size == pytest.approx(want.size, rel=1e-6)
    pipeline.set_rig(moved)  # a new calibration: the crops stay, the prior is dropped as before
    assert primary.prior is None


def test_decode_outside_auto_or_full_is_a_config_error() -> None:
    cameras = [{"name": "a", "source": "0"}]
    assert config_from_dict({"cameras": cameras}).inference.decode == "auto"
    assert config_from_dict({"cameras": cameras, "inference": {"decode": "full"}}).inference.decode == "full"
    with pytest.raises(ConfigError, match=r"inference\.decode.*'auto' or 'full'"):
        config_from_dict({"cameras": cameras, "inference": {"decode": "half"}})


# -- the inference stage ------------------------------------------------------------------------------


def test_the_inference_stage_decodes_reduced_when_the_crops_allow_and_keeps_the_performer(
    tmp_path, standin  # type: ignore[no-untyped-def]
) -> None:
    """A worker with ``decode: auto`` (the stand-in network, real JPEG frames): cold, it decodes whole; with
    the performer followed and crops of at least twice the network input in the frames as sent, at 1/2 — the
    rig rescaled, the performer's crops moved with it, no detector, the heartbeat saying so."""
    from crosspose.bus import Message
    from crosspose.bus.schema import frame_message, frameset_message
    from crosspose.runtime.demo import synthetic_config
    from crosspose.runtime.inference_stage import InferenceStage

    config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=3, render=False)
    section = {"backend": "network", "runtime": "onnxruntime", "device": "cpu", "model": str(standin)}
    config = config.model_copy(update={"inference": config_from_dict(
        {"cameras": [{"name": "a", "source": "0"}], "inference": section}).inference})
    assert config.inference.decode == "auto"  # the default
    stage = InferenceStage(config)
    try:
        rig = stage.rig
        assert rig is not None
        truth = make_scene(5, 1, 3, rig=rig).joints3d[0]
        side = min(c.size for c in crops_from_pose(truth, rig) if c is not None)  # the calibration's px
        # This studio's 640x480 camera sees the performer in a ~110 px crop: a rule for a smaller network
        # input (the real one's threshold is the unit tests'), so that frames of the calibration's size go
        # to 1/2.
        stage.decode_rule = DecodeRule(int(side / 2 / 1.2))

        def frameset(seq: int) -> Message:
            frames, buffers = [], []
            for c, (name, (w, h)) in enumerate(zip(rig.names, rig.image_size, strict=True)):
                # Bright: the stand-in's presence is the crops' grey level, and the performer stays followed.
                image = np.maximum(_textured(int(h), int(w), seed=c), 200)
                buffers.append(memoryview(encode_frame(image, 85)[1]))
                frames.append(frame_message(name, seq, image, t_capture_ns=1000 + seq, t_wall_ns=0,
                                            t_device_ns=None, encoding="jpeg", fps=30.0))
            header = frameset_message(seq=seq, t_ref_ns=1000 + seq, t_emit_ns=1000 + seq, cameras=rig.names,
                                      present=[True] * len(rig), frames=frames, skew_ns=[0] * len(rig))
            return Message(b"frameset.0.", header, buffers)

        assert stage._decode_reduction(frameset(0).header) == 1  # nobody followed: the detector's turn
        assert stage.heatmap_step is not None
        stage.heatmap_step.feedback(Track.from_pose(_pose(truth, views=3)))
        sent = stage._process(frameset(1))
        assert sent is not None, stage.last_error
        payload = stage.payload()
        assert (payload["decode"], payload["decode_reduction"], payload["decode_changes"]) == ("auto", 2, 1)
        pipeline = stage._frame_pipeline
        # The frames reached the network at half the calibration's size, and the pipeline's rig with them.
        np.testing.assert_array_equal(pipeline.rig.image_size, rig.resized(0.5).image_size)
        assert pipeline.detector_runs == 0
        assert pipeline.ids == [0]
        for got, want in zip(pipeline.performers[0].crops, crops_from_pose(truth, rig.resized(0.5)),
                             strict=True):
            assert got is not None
            assert want is not None
            np.testing.assert_allclose(got.center, want.center, atol=1e-6)

        # At 1/4 the 640x480 view reaches the network at 160x120, narrower than a preview: its preview is
        # made from the whole frame, its crop square drawn at the preview's scale of the network's image.
        stage.decode_rule = DecodeRule(int(side / 4 / 1.2), reductions=(1, 2, 4))
        stage.decode_rule.reduction = 2
        previews: list[tuple[bytes, dict[str, Any], list[bytes]]] = []
        stage.status.send = lambda topic, header, buffers=(): previews.append((topic, header, buffers))  # type: ignore[method-assign]
        stage._preview_every_ns, stage._next_preview = 1, 0
        assert stage._process(frameset(2)) is not None
        assert stage.payload()["decode_reduction"] == 4
        small = [tuple(size) for size in rig.image_size.tolist()].index((640, 480))
        (header, (jpeg,)), = [(h, b) for _, h, b in previews if h["camera"] == rig.names[small]]
        preview = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert (header["width"], header["height"]) == (preview.shape[1], preview.shape[0]) == (320, 240)
        assert header["scale"] == pytest.approx(2.0)  # preview px per px of the 160x120 image
        crop = crops_from_pose(truth, rig.resized(0.25))[small]
        assert crop is not None
        np.testing.assert_allclose(header["crop"], crop.corners() * 2.0, atol=0.06)
    finally:
        stage.close()


def test_raw_heatmaps_decode_whole_whatever_decode_says(tmp_path, standin) -> None:  # type: ignore[no-untyped-def]
    """``decode: auto`` reduces only with fused heatmaps (the path its accuracy was measured on: the raw maps
    lost 1.2 points of detection at 1/2): a worker with ``heatmaps: raw`` has no reduction rule."""
    from crosspose.runtime.demo import synthetic_config
    from crosspose.runtime.inference_stage import InferenceStage

    config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=3, render=False)
    stages = {}
    for heatmaps in ("fused", "raw"):
        section = {"backend": "network", "runtime": "onnxruntime", "device": "cpu", "model": str(standin),
                   "heatmaps": heatmaps}
        stage_config = config.model_copy(update={"inference": config_from_dict(
            {"cameras": [{"name": "a", "source": "0"}], "inference": section}).inference})
        stage = InferenceStage(stage_config)
        try:
            payload = stage.payload()
            stages[heatmaps] = (stage.decode_rule is not None, payload["decode"], payload["decode_reduction"])
        finally:
            stage.close()
    assert stages == {"fused": (True, "auto", 1), "raw": (False, "full", 1)}
