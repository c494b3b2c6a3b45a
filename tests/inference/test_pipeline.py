"""``FramePipeline``: crops from the fed-back pose, the detector only on cold start or loss, missing views,
the projections handed to the solver, calibration hot-swap; and the midpoint heatmaps.

A stand-in network draws each joint's heatmap where the *given* projections put the scene's true 3D
joints, so a wrong crop fold, camera order or view mask shows up as a wrong 3D answer of the real
solver. The real network on real footage is tested in ``tests/test_reconstruct_videos.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from crosspose.core import Track
from crosspose.geometry import CameraRig
from crosspose.inference import Crop, crops_from_pose, heatmap_projections
from crosspose.inference.association import Volume
from crosspose.inference.crops import CROP_SCALE
from crosspose.inference.detector import Detection
from crosspose.inference.heatmaps import MIDPOINT_SOURCES, heatmap_maxima, midpoint_heatmaps
from crosspose.inference.pipeline import FramePipeline, InferenceResult
from crosspose.skeleton import H36M17
from crosspose.solver import Pose3D, Solver
from crosspose.studio import make_scene, random_rig

SIZE = 64


class TruthNetwork:
    """Heatmaps of the true joints through the projections it is given (sigma 1.5 px), fused = raw."""

    provider = "stand-in"
    skeleton = H36M17

    def __init__(self, joints3d: np.ndarray) -> None:
        self.joints3d = joints3d
        self.presence = np.ones(8, np.float32)
        self.calls: list[dict[str, np.ndarray]] = []
        self.prepared: list[int] = []

    def prepare(self, num_cameras: int) -> None:
        self.prepared.append(num_cameras)

    def run(self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray,
            prior: np.ndarray, window_scale: float = 1.0) -> dict[str, np.ndarray]:
        self.calls.append({"crops": crops, "projections": projections, "valid": valid, "prior": prior,
                           "root": prior[H36M17.root], "window_scale": window_scale})
        c = crops.shape[0]
        hom = np.einsum("cij,pj->cpi", projections.astype(np.float64),
                        np.c_[self.joints3d, np.ones(len(self.joints3d))])
        uv = hom[..., :2] / hom[..., 2:]
        gy, gx = np.mgrid[0:SIZE, 0:SIZE]
        d2 = (gx - uv[..., 0, None, None]) ** 2 + (gy - uv[..., 1, None, None]) ** 2
        heatmaps = np.exp(-0.5 * d2 / 1.5**2).astype(np.float32)
        heatmaps *= np.asarray(valid, bool)[:, None, None, None]
        return {"heatmaps": heatmaps, "fused": heatmaps.copy(), "presence": self.presence[:c].copy()}


class TruthDetector:
    """Crops around the true joints, as the real detector would find them; counts its calls."""

    def __init__(self, rig: CameraRig, joints3d: np.ndarray, blind: tuple[int, ...] = ()) -> None:
        self.crops_true = crops_from_pose(joints3d, rig)
        self.blind = blind
        self.calls: list[int] = []
        self.prepared: list[int] = []

    def prepare(self, num_views: int) -> None:
        self.prepared.append(num_views)

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        self.calls.append(len(images))
        # Which views were asked for: match by image identity with the frame set in hand.
        out = []
        for image in images:
            view = int(image[0, 0, 0])  # the test writes the view index into the first pixel
            crop = self.crops_true[view]
            out.append([] if view in self.blind or crop is None else [detection_from_crop(crop)])
        return out


def detection_from_crop(crop: Crop, score: float = 0.9) -> Detection:
    """The detection whose BlazePose crop (:meth:`Detection.crop`) is ``crop``."""
    radius = crop.size / (2 * CROP_SCALE)
    angle = 0.5 * np.pi - crop.rotation
    centre = np.asarray(crop.center, np.float64)
    alignment = centre + radius * np.array([np.cos(angle), -np.sin(angle)])
    box = np.r_[centre - radius, centre + radius]
    return Detection(score, box, np.stack([centre, alignment, centre, alignment]))


def _images(rig: CameraRig) -> list[np.ndarray | None]:
    images: list[np.ndarray | None] = []
    for c, (w, h) in enumerate(rig.image_size):
        image = np.zeros((int(h), int(w), 3), np.uint8)
        image[0, 0, 0] = c
        images.append(image)
    return images


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    rig = random_rig(3, 4, distortion=0.0)
    return make_scene(3, 3, 4, rig=rig)


def _worst_error(pose: Pose3D, truth: np.ndarray) -> float:
    """Metres; the midpoint joints are left out (the pipeline redraws them at their sources' mean,
    which the synthetic skeleton's pelvis, spine and thorax are not exactly)."""
    keep = [j for j, name in enumerate(H36M17.joints) if name not in MIDPOINT_SOURCES]
    return float(np.max(np.linalg.norm(pose.joints[keep] - truth[keep], axis=-1)))


def _pose(joints: np.ndarray, views: int = 4) -> Pose3D:
    j = joints.shape[0]
    return Pose3D(joints, np.ones(j), np.full(j, views), np.ones((4, j), bool))


def test_cold_start_detects_once_then_follows_the_pose(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    network, detector = TruthNetwork(truth), TruthDetector(scene.rig, truth)
    pipeline = FramePipeline(scene.rig, network, detector)  # type: ignore[arg-type]
    first = pipeline.process(_images(scene.rig))
    assert first.sources == ("detector",) * 4
    assert pipeline.detector_runs == 1
    assert detector.calls == [4]
    # No ground truth: the cold-start root is the detector's hip centres (crop centres) triangulated.
    assert first.root is not None
    hips = truth[[H36M17.index("l_hip"), H36M17.index("r_hip")]].mean(0)
    np.testing.assert_allclose(first.root, hips, atol=1e-6)
    np.testing.assert_allclose(network.calls[0]["root"], hips, atol=1e-5)
    assert np.isnan(network.calls[0]["prior"][1:]).all()  # a cold start knows the root only
    np.testing.assert_allclose(first.projections, heatmap_projections(first.crops, scene.rig))
    assert first.heatmaps.shape == first.fused.shape == (4, 17, SIZE, SIZE)
    assert set(first.timings_ms) == {"detect", "crop", "network", "total"}

    # The real solver on these heatmaps and projections lands on the truth.
    pose = Solver().solve(*first.solver_inputs())
    assert _worst_error(pose, truth) < 0.005
    # Heatmap maxima mapped back through the crops are the true image points.
    image_points = np.swapaxes(np.asarray(scene.rig.project(truth)), 0, 1)
    keep = [j for j, name in enumerate(H36M17.joints) if name not in MIDPOINT_SOURCES]
    error_px = np.linalg.norm(first.argmax_pixels() - image_points, axis=-1)[:, keep]
    sizes = np.array([crop.size for crop in first.crops])
    assert np.max(error_px / sizes[:, None] * SIZE) < 0.2  # heatmap pixels

    # Next frame: crops from the fed-back pose, no detector; the root is the pose's pelvis.
    moved = scene.joints3d[1]
    pipeline.feedback(Track.from_pose(_pose(moved)))
    second = pipeline.process(_images(scene.rig))
    assert second.sources == ("pose",) * 4
    assert pipeline.detector_runs == 1
    assert second.crops == tuple(crops_from_pose(moved, scene.rig))
    np.testing.assert_allclose(second.root, moved[H36M17.root])
    # The fusion's prior is the fed-back pose: each joint is looked for where it was.
    np.testing.assert_allclose(network.calls[1]["prior"], moved, atol=1e-5)
    assert network.calls[1]["window_scale"] == 1.0  # no capture times given: the prior counts as fresh
    # No pose since: the last crops are reused, still no detector.
    third = pipeline.process(_images(scene.rig))
    assert third.sources == ("previous",) * 4
    assert pipeline.detector_runs == 1
    assert pipeline.frames == 3


class CrowdDetector:
    """Several people: per view, the detections of the people that view sees, best score first."""

    def __init__(self, rig: CameraRig, people: list[tuple[np.ndarray, tuple[int, ...], float]]) -> None:
        self.people = [(crops_from_pose(joints, rig), views, score) for joints, views, score in people]

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        out = []
        for image in images:
            view = int(image[0, 0, 0])
            found = []
            for crops, views, score in self.people:
                crop = crops[view]
                if view in views and crop is not None:
                    found.append(detection_from_crop(crop, score))
            out.append(sorted(found, key=lambda d: -d.score))
        return out


def test_cold_start_takes_the_person_most_views_agree_on(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    other = truth + np.array([0.8, 0.5, 0.0])  # a second person, more confident in the three views it is in
    detector = CrowdDetector(scene.rig, [(truth, (0, 1, 2, 3), 0.6), (other, (0, 1, 2), 0.95)])
    assert all(crop is not None for crop in detector.people[1][0][:3])
    pipeline = FramePipeline(scene.rig, TruthNetwork(truth), detector)  # type: ignore[arg-type]
    first = pipeline.process(_images(scene.rig))
    hips = truth[[H36M17.index("l_hip"), H36M17.index("r_hip")]].mean(0)
    assert first.root is not None
    assert np.linalg.norm(first.root - hips) < 1e-3
    for crop, true in zip(first.crops, crops_from_pose(truth, scene.rig), strict=True):
        assert crop is not None
        assert true is not None
        np.testing.assert_allclose(crop.center, true.center, atol=1e-6)


def test_a_cold_start_nothing_agrees_on_takes_no_best_boxes_outside_the_volume(scene, caplog) -> None:  # type: ignore[no-untyped-def]
    """Nobody is seen by two views inside the volume: each view's best box is taken only if the root they
    triangulate to is inside it. Here the best boxes are the far person's in three views (and the performer's
    in one): their root is outside, so nobody is started (issue 21: a person outside never starts a track)."""
    truth = scene.joints3d[0]
    far = truth + np.array([40.0, 0.0, 0.0])  # outside the volume: never a person
    detector = CrowdDetector(scene.rig, [(truth, (0,), 0.9), (far, (0, 1, 2, 3), 0.5)])
    pipeline = FramePipeline(scene.rig, TruthNetwork(truth), detector)  # type: ignore[arg-type]
    assert pipeline.volume is not None
    assert not pipeline.volume.contains(far[H36M17.root])
    with caplog.at_level("WARNING", logger="crosspose.inference.pipeline"):
        first = pipeline.process(_images(scene.rig))
        pipeline.reset()
        pipeline.process(_images(scene.rig))
    assert [r.message.count("no person is seen by two views") for r in caplog.records] == [1]
    assert first.crops == (None,) * 4
    assert not first.valid.any()
    assert pipeline.ids_started == 0
    assert pipeline.detector_runs == 2


def test_a_lost_view_goes_back_to_the_detector_alone(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    network, detector = TruthNetwork(truth), TruthDetector(scene.rig, truth)
    pipeline = FramePipeline(scene.rig, network, detector)  # type: ignore[arg-type]
    pipeline.process(_images(scene.rig))
    pipeline.feedback(Track.from_pose(_pose(truth)))
    network.presence[2] = 0.1  # view 2's crop no longer holds the performer
    result = pipeline.process(_images(scene.rig))
    assert not result.seen()[2]
    heatmaps, projections = result.solver_inputs()
    assert not heatmaps[2].any()
    assert np.isnan(projections[2]).all()
    network.presence[2] = 1.0
    again = pipeline.process(_images(scene.rig))
    assert detector.calls == [4, 1]  # only the lost view
    assert again.sources == ("previous", "previous", "detector", "previous")
    # No usable pose (none, or too few supported joints): every view goes back to the detector.
    pipeline.feedback(None)
    pipeline.process(_images(scene.rig))
    pipeline.feedback(Track.from_pose(_pose(truth, views=1)))
    pipeline.process(_images(scene.rig))
    assert detector.calls == [4, 1, 4, 4]
    assert pipeline.detector_runs == 4
    assert pipeline.detector_views == 13


def test_missing_images_are_invalid_views(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    network, detector = TruthNetwork(truth), TruthDetector(scene.rig, truth)
    pipeline = FramePipeline(scene.rig, network, detector)  # type: ignore[arg-type]
    images = _images(scene.rig)
    images[1] = None
    result = pipeline.process(images)
    np.testing.assert_array_equal(result.valid, [True, False, True, True])
    assert result.crops[1] is None
    assert result.sources[1] == "none"
    assert np.isnan(result.projections[1]).all()
    assert not result.heatmaps[1].any()
    assert not result.fused[1].any()
    assert result.presence[1] == 0
    # The network got a finite stand-in projection and valid=False for that view.
    assert np.isfinite(network.calls[0]["projections"]).all()
    np.testing.assert_array_equal(network.calls[0]["valid"], result.valid)
    pose = Solver().solve(*result.solver_inputs())
    assert _worst_error(pose, truth) < 0.005
    assert np.isnan(result.argmax_pixels()[1]).all()
    # The view comes back: only it needs the detector.
    pipeline.feedback(Track.from_pose(pose))
    back = pipeline.process(_images(scene.rig))
    assert back.sources == ("pose",) * 4  # the pose places a crop in the view that came back


def test_detector_misses_are_retried_after_an_interval(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    detector = TruthDetector(scene.rig, truth, blind=(3,))
    pipeline = FramePipeline(scene.rig, TruthNetwork(truth), detector,  # type: ignore[arg-type]
                             redetect_interval=3)
    for _ in range(5):
        result = pipeline.process(_images(scene.rig))
    assert detector.calls == [4, 1]  # frame 0 (all), frame 3 (the blind view again)
    assert not result.valid[3]
    assert result.valid[:3].all()


def test_at_a_low_rate_retries_are_not_put_off_for_seconds(scene) -> None:  # type: ignore[no-untyped-def]
    """Intervals counted in frames last at most that many frames at 30 fps: at 3 frame sets per second a
    3-frame retry interval is 0.1 s, so the blind view is tried again on every frame set (not every 1 s)."""
    truth = scene.joints3d[0]
    detector = TruthDetector(scene.rig, truth, blind=(3,))
    pipeline = FramePipeline(scene.rig, TruthNetwork(truth), detector,  # type: ignore[arg-type]
                             redetect_interval=3)
    for i in range(5):
        pipeline.process(_images(scene.rig), t_ns=int(i * 1e9 / 3))
    assert detector.calls == [4, 1, 1, 1, 1]


def test_a_pose_too_thin_to_place_crops_keeps_the_crops_that_hold_the_performer(scene) -> None:  # type: ignore[no-untyped-def]
    """A solve whose shoulders only one view supports (a cold solve from two views can leave that) places no
    crop: the crops that hold the performer stay and their id with them — never an unfollowed performer
    ended on the next frame set."""
    truth = scene.joints3d[0]
    detector = TruthDetector(scene.rig, truth)
    pipeline = FramePipeline(scene.rig, TruthNetwork(truth), detector)  # type: ignore[arg-type]
    first = pipeline.process(_images(scene.rig))
    pose = _pose(truth)
    for name in ("l_shoulder", "r_shoulder"):
        pose.views[H36M17.index(name)] = 1
    assert all(crop is None for crop in crops_from_pose(np.where(pose.views[:, None] >= 2, truth, np.nan),
                                                        scene.rig))
    pipeline.feedback(Track.from_pose(pose))
    assert pipeline.ids == [0]
    second = pipeline.process(_images(scene.rig))
    assert second.sources == ("previous",) * 4
    assert second.crops == first.crops
    assert pipeline.ids == [0]
    assert pipeline.ids_ended == 0
    assert detector.calls == [4]
    # No crop held them either (every view lost them): lost, kept to be found again — not ended.
    performer = pipeline.performer(0)
    assert performer is not None
    performer.crops = [None] * 4
    pipeline.feedback(Track.from_pose(pose))
    assert performer.lost_s is not None
    assert performer.last_root is not None
    pipeline.process(_images(scene.rig))
    assert pipeline.ids == [0]
    assert pipeline.ids_started == 1
    assert pipeline.ids_ended == 0


def test_no_root_means_no_fusion() -> None:
    rig = random_rig(5, 3, distortion=0.0)
    truth = make_scene(5, 1, 3, rig=rig).joints3d[0]

    class Shifting(TruthNetwork):
        def run(self, crops, projections, valid, prior, window_scale=1.0):  # type: ignore[no-untyped-def]
            out = super().run(crops, projections, valid, prior, window_scale)
            out["fused"] = np.zeros_like(out["fused"])
            return out

    # Only one view finds the performer: no triangulated root, so fused is the raw heatmaps. (Without
    # association and a volume, as while calibrating: each view's best box is taken, whatever its root.)
    pipeline = FramePipeline(rig, Shifting(truth), TruthDetector(rig, truth, blind=(1, 2)),  # type: ignore[arg-type]
                             associate_views=False)
    result = pipeline.process(_images(rig))
    assert result.root is None
    np.testing.assert_array_equal(result.fused, result.heatmaps)
    assert result.heatmaps[0].any()


def test_set_rig_keeps_crops_and_rederives_the_root(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    network, detector = TruthNetwork(truth), TruthDetector(scene.rig, truth)
    pipeline = FramePipeline(scene.rig, network, detector)  # type: ignore[arg-type]
    pipeline.process(_images(scene.rig))
    pipeline.feedback(Track.from_pose(_pose(truth)))
    # The same cameras in a world shifted by 1 m along x: image-space crops still hold; the root moves.
    shift = np.array([1.0, 0.0, 0.0])
    t = scene.rig.t - np.einsum("cij,j->ci", scene.rig.R, shift)
    moved = CameraRig.from_arrays(scene.rig.names, scene.rig.K, scene.rig.dist, scene.rig.R, t,
                                  scene.rig.image_size)
    pipeline.set_rig(moved)
    assert pipeline.root is not None
    # The crop centres are the projected mid-hips, so the root comes back as the mid-hips.
    hips = truth[[H36M17.index("l_hip"), H36M17.index("r_hip")]].mean(0)
    np.testing.assert_allclose(pipeline.root, hips + shift, atol=1e-6)
    result = pipeline.process(_images(moved))
    assert result.sources == ("pose",) * 4
    np.testing.assert_allclose(result.projections, heatmap_projections(result.crops, moved))
    assert network.prepared == detector.prepared == []  # the same cameras: nothing to prepare
    # Another camera count starts cold, the network and detector made ready for it first (a static-shape
    # runtime compiles for it).
    pipeline.set_rig(random_rig(9, 3, distortion=0.0))
    assert pipeline.root is None
    assert network.prepared == detector.prepared == [3]
    with pytest.raises(ValueError, match="at least 2 cameras"):
        pipeline.set_rig(CameraRig([moved[0]]))


def test_bad_inputs(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    pipeline = FramePipeline(scene.rig, TruthNetwork(truth), TruthDetector(scene.rig, truth))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="got 3 images for a rig of 4 cameras"):
        pipeline.process(_images(scene.rig)[:3])
    assert pipeline.frames == 0
    with pytest.raises(ValueError, match="at least 2 cameras"):
        FramePipeline(CameraRig([scene.rig[0]]), TruthNetwork(truth))  # type: ignore[arg-type]


def test_all_views_missing_gives_empty_result(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    network, detector = TruthNetwork(truth), TruthDetector(scene.rig, truth)
    pipeline = FramePipeline(scene.rig, network, detector)  # type: ignore[arg-type]
    result = pipeline.process([None] * 4)
    assert isinstance(result, InferenceResult)
    assert not result.valid.any()
    assert not result.heatmaps.any()
    assert network.calls == []  # nothing to run


def test_midpoint_heatmaps_put_one_peak_between_the_sources() -> None:
    gy, gx = np.mgrid[0:SIZE, 0:SIZE]

    def blob(x: float, y: float, height: float = 1.0) -> np.ndarray:
        return height * np.exp(-0.5 * ((gx - x) ** 2 + (gy - y) ** 2) / 1.5**2)

    maps = np.zeros((1, 17, SIZE, SIZE))
    points = {"l_hip": (20.3, 40.0, 0.9), "r_hip": (30.0, 41.6, 0.7), "l_shoulder": (22.0, 20.0, 0.8),
              "r_shoulder": (31.0, 19.4, 0.95)}
    for name, (x, y, h) in points.items():
        maps[0, H36M17.index(name)] = blob(x, y, h)
    # The linear channel map's pelvis: two half peaks at the hips, its maximum on one of them.
    maps[0, H36M17.index("pelvis")] = 0.5 * (maps[0, H36M17.index("l_hip")] + maps[0, H36M17.index("r_hip")])
    xy, value = heatmap_maxima(maps)
    np.testing.assert_allclose(xy[0, H36M17.index("l_hip")], [20.3, 40.0], atol=0.1)
    np.testing.assert_allclose(value[0, H36M17.index("r_shoulder")], 0.95, atol=0.05)
    out = midpoint_heatmaps(maps)
    after, height = heatmap_maxima(out)
    np.testing.assert_allclose(after[0, H36M17.index("pelvis")], [25.15, 40.8], atol=0.15)
    np.testing.assert_allclose(after[0, H36M17.index("thorax")], [26.5, 19.7], atol=0.15)
    np.testing.assert_allclose(after[0, H36M17.index("spine")], [25.825, 30.25], atol=0.15)
    assert height[0, H36M17.index("pelvis")] == pytest.approx(0.7, abs=0.05)  # the weaker source
    np.testing.assert_array_equal(out[0, H36M17.index("l_hip")], maps[0, H36M17.index("l_hip")])
    with pytest.raises(ValueError, match="17"):
        midpoint_heatmaps(maps[:, :5])


def test_torch_runner_has_the_onnx_runner_interface() -> None:
    import torch

    from crosspose.inference.runtimes.torch import TorchRunner

    class Tiny(torch.nn.Module):
        """FusionNetwork's signature, a person axis first: (crops, projections, valid, prior, window_scale)
        → (heatmaps, fused, presence), and its joint layout."""

        skeleton = H36M17

        def forward(self, crops, projections, valid, prior, window_scale):  # type: ignore[no-untyped-def]
            views = crops.flatten(0, 1)
            grey = torch.nn.functional.avg_pool2d(views.permute(0, 3, 1, 2).mean(1, keepdim=True), 4)
            heatmaps = grey.expand(-1, 17, -1, -1).unflatten(0, crops.shape[:2])
            presence = crops.mean((2, 3, 4)) + 0 * torch.nan_to_num(prior).sum()
            return heatmaps, heatmaps * valid[:, :, None, None, None], presence

    runner = TorchRunner(Tiny())
    crops = np.random.default_rng(0).uniform(0, 1, (3, 256, 256, 3)).astype(np.float32)
    valid = np.array([True, False, True])
    out = runner.run(crops, np.tile(np.eye(3, 4), (3, 1, 1)), valid, np.zeros(3))
    assert out["heatmaps"].shape == (3, 17, 64, 64)
    assert out["heatmaps"].dtype == np.float32
    assert not out["fused"][1].any()
    np.testing.assert_allclose(out["presence"], crops.mean((1, 2, 3)), rtol=1e-5)
    with pytest.raises(ValueError, match="expected crops"):
        runner.run(crops[:, :128], np.tile(np.eye(3, 4), (3, 1, 1)), valid, np.zeros(3))


def test_an_older_prior_widens_the_fusion_windows(scene) -> None:  # type: ignore[no-untyped-def]
    """The fusion looks for each joint around the last pose; the older that pose, the wider it looks."""
    from crosspose.inference.pipeline import MAX_WINDOW_SCALE, PRIOR_REACH_S

    truth = scene.joints3d[0]
    network, detector = TruthNetwork(truth), TruthDetector(scene.rig, truth)
    pipeline = FramePipeline(scene.rig, network, detector)  # type: ignore[arg-type]
    pipeline.process(_images(scene.rig), t_ns=0)
    assert network.calls[-1]["window_scale"] == 1.0  # cold start: no prior at all
    pipeline.feedback(Track.from_pose(_pose(truth), t_capture_ns=1_000_000_000))
    expected = {1_000_000_000 + 30_000_000: 1.0,  # a frame later at 33 fps
                1_000_000_000 + int(2 * PRIOR_REACH_S * 1e9): 2.0,
                1_000_000_000 + 2_000_000_000: MAX_WINDOW_SCALE}
    for t_ns, scale in expected.items():
        result = pipeline.process(_images(scene.rig), t_ns=t_ns)
        assert network.calls[-1]["window_scale"] == pytest.approx(scale)
        assert result.window_scale == pytest.approx(scale)
    pipeline.feedback(None)  # lost: no prior, no age
    pipeline.process(_images(scene.rig), t_ns=5_000_000_000)
    assert network.calls[-1]["window_scale"] == 1.0


def test_a_track_of_another_layout_is_an_error_not_a_silent_loss_of_tracking(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    pipeline = FramePipeline(scene.rig, TruthNetwork(truth), TruthDetector(scene.rig, truth))  # type: ignore[arg-type]
    pipeline.process(_images(scene.rig))
    pipeline.feedback(Track.from_pose(_pose(truth)))
    wider = np.concatenate([truth, truth[:15]])  # a 32-joint pose
    with pytest.raises(ValueError, match="32 joints"):
        pipeline.feedback(Track.from_pose(_pose(wider)))
    assert pipeline.process(_images(scene.rig)).sources == ("pose",) * 4  # the last good track still holds


def test_a_lost_view_takes_the_candidate_on_the_performers_ray_not_the_best_box(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    other = truth + np.array([0.8, 0.5, 0.0])
    detector = CrowdDetector(scene.rig, [(truth, (0, 1, 2, 3), 0.6), (other, (0, 1, 2), 0.95)])
    network = TruthNetwork(truth)
    pipeline = FramePipeline(scene.rig, network, detector)  # type: ignore[arg-type]
    pipeline.process(_images(scene.rig))
    pipeline.feedback(Track.from_pose(_pose(truth)))
    network.presence[2] = 0.1
    pipeline.process(_images(scene.rig))
    network.presence[2] = 1.0
    again = pipeline.process(_images(scene.rig))
    assert again.sources[2] == "detector"
    true_crop = crops_from_pose(truth, scene.rig)[2]
    assert again.crops[2] is not None
    assert true_crop is not None
    np.testing.assert_allclose(again.crops[2].center, true_crop.center, atol=1e-6)


def test_the_default_volume_follows_the_rig_a_configured_one_stays(scene) -> None:  # type: ignore[no-untyped-def]
    truth = scene.joints3d[0]
    pipeline = FramePipeline(scene.rig, TruthNetwork(truth), TruthDetector(scene.rig, truth))  # type: ignore[arg-type]
    before = pipeline.volume
    assert before is not None
    assert before.contains(truth[H36M17.root])
    shift = np.array([1.0, 0.0, 0.0])
    t = scene.rig.t - np.einsum("cij,j->ci", scene.rig.R, shift)
    moved = CameraRig.from_arrays(scene.rig.names, scene.rig.K, scene.rig.dist, scene.rig.R, t,
                                  scene.rig.image_size)
    pipeline.set_rig(moved)
    assert pipeline.volume is not None
    np.testing.assert_allclose(pipeline.volume.lo, before.lo + shift, atol=0.06)  # one floor grid step
    np.testing.assert_allclose(pipeline.volume.hi, before.hi + shift, atol=0.06)
    box = Volume(np.array([-1.0, -1, 0]), np.array([1.0, 1, 2]))
    configured = FramePipeline(scene.rig, TruthNetwork(truth), TruthDetector(scene.rig, truth),  # type: ignore[arg-type]
                               volume=box)
    configured.set_rig(moved)
    assert configured.volume is box


def test_without_association_each_view_takes_its_best_box(scene) -> None:  # type: ignore[no-untyped-def]
    # For a rig whose extrinsics are being solved (calibration from a performer): views are independent.
    truth = scene.joints3d[0]
    other = truth + np.array([0.8, 0.5, 0.0])
    detector = CrowdDetector(scene.rig, [(truth, (0, 1, 2, 3), 0.6), (other, (0, 1, 2), 0.95)])
    pipeline = FramePipeline(scene.rig, TruthNetwork(truth), detector,  # type: ignore[arg-type]
                             associate_views=False)
    assert pipeline.volume is None
    first = pipeline.process(_images(scene.rig))
    best = [crops_from_pose(other, scene.rig)[c] for c in range(3)] + [crops_from_pose(truth, scene.rig)[3]]
    for crop, expected in zip(first.crops, best, strict=True):
        assert crop is not None
        assert expected is not None
        np.testing.assert_allclose(crop.center, expected.center, atol=1e-6)
