"""The real Pose2Sim demo rig: Qualisys .qca.txt (pose2sim 0.10.49) against Pose2Sim's TOML (0.4.15)."""

from __future__ import annotations

import numpy as np
import pytest

from crosspose import assets
from crosspose.calibration import load_rig
from crosspose.geometry import CameraRig, project_points

pytestmark = pytest.mark.network

QCA = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt")
TOML = ("pose2sim-0.4.15", "Pose2Sim/Demo/calibration/Calib_qualisys.toml")


@pytest.fixture(scope="module")
def rigs() -> tuple[CameraRig, CameraRig]:
    return load_rig(assets.extract(*QCA)), load_rig(assets.extract(*TOML))


def _volume() -> np.ndarray:
    """A 2 m cube around the origin, 0-2 m high, every 20 cm."""
    g = np.linspace(-1.0, 1.0, 11)
    return np.stack(np.meshgrid(g, g, g + 1.0, indexing="ij"), -1).reshape(-1, 3)


def _in_image(rig: CameraRig, uv: np.ndarray) -> np.ndarray:
    w, h = rig.image_size[:, 0], rig.image_size[:, 1]
    return (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)


def test_qualisys_cameras_are_named_by_serial_and_sized_portrait(rigs: tuple[CameraRig, CameraRig]) -> None:
    qca, toml = rigs
    assert qca.names == ["cam01", "cam02", "cam03", "cam04"]
    assert toml.names == ["cam_01", "cam_02", "cam_03", "cam_04"]
    assert qca.image_size.tolist() == [[1088, 1920]] * 4


def test_same_cameras_without_distortion(rigs: tuple[CameraRig, CameraRig]) -> None:
    qca, toml = rigs
    np.testing.assert_allclose(qca.centers, toml.centers, atol=1e-9)
    np.testing.assert_allclose(qca.K, toml.K, atol=1e-6)
    pts = _volume()
    a = project_points(pts, qca.K, np.zeros((4, 5)), qca.R, qca.t)
    b = project_points(pts, toml.K, np.zeros((4, 5)), toml.R, toml.t)
    assert np.nanmax(np.abs(a - b)) < 1e-6  # pixels


def test_cameras_look_at_the_volume_upright(rigs: tuple[CameraRig, CameraRig]) -> None:
    qca, _ = rigs
    uv = qca.project(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.7], [0.0, 0.0, 0.0]]))
    assert _in_image(qca, uv[0]).all()  # the volume centre is seen by every camera
    assert np.all(uv[1, :, 1] < uv[2, :, 1])  # head height above the floor in every image (y down)
    to_origin = -qca.centers / np.linalg.norm(qca.centers, axis=1, keepdims=True)
    assert np.all(np.einsum("ci,ci->c", qca.R[:, 2], to_origin) > 0.9)


def test_distortion_differs_by_exactly_pose2sims_factor_64(rigs: tuple[CameraRig, CameraRig]) -> None:
    qca, toml = rigs
    np.testing.assert_allclose(qca.dist / 64, toml.dist, atol=1e-12)
    pts = _volume()
    a, b = qca.project(pts), toml.project(pts)
    seen = _in_image(qca, a) & _in_image(toml, b)
    d = np.linalg.norm(a - b, axis=-1)[seen]
    # Unscaled (physical) distortion against Pose2Sim's /64: ~1.5 px typical, a few px at the edges.
    assert 0.5 < np.median(d) < 3.0
    assert np.max(d) < 10.0
    # Scaling ours by 1/64 makes them agree to numerical precision: the only difference is that factor.
    c = project_points(pts, qca.K, qca.dist / 64, qca.R, qca.t)
    assert np.nanmax(np.abs(c - b)) < 1e-6


def test_qualisys_round_trip_keeps_the_file(rigs: tuple[CameraRig, CameraRig]) -> None:
    from crosspose.calibration import dumps_rig

    qca, _ = rigs
    assert load_rig(dumps_rig(qca, "qualisys")).allclose(qca, atol=1e-9)


def test_example_rig_matches_the_real_file(rigs: tuple[CameraRig, CameraRig]) -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "calibration"
    qca, _ = rigs
    for name in ("pose2sim_demo.json", "pose2sim_demo.toml"):
        assert load_rig(root / name).allclose(qca, atol=1e-9), name
