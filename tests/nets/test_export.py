"""The exported ONNX file equals the torch ``FusionNetwork`` and says what it is (model card).

One export per module (~25 s on 2 CPU cores) through the ``crosspose model export`` command.
Measured parity, ONNX Runtime CPU vs torch: max abs difference ~5e-6 on heatmaps and fused
heatmaps (values in [0, 1]) and ~2e-8 on presence, for 2, 3 and 4 cameras.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from crosspose import assets
from crosspose.cli.model import app
from crosspose.nets.export import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    FusionNetwork,
    blazepose_to_h36m_matrix,
    build_fusion_network,
    example_inputs,
)
from crosspose.skeleton import BLAZEPOSE33, H36M17

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOLERANCE = 1e-4  # measured ~5e-6; heatmaps are probabilities in [0, 1]


def test_channel_map_follows_skeleton_recipes() -> None:
    W = blazepose_to_h36m_matrix().numpy()
    assert W.shape == (17, 39)
    np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-6)
    assert not W[:, 33:].any()  # crop and hand points unused
    blaze = BLAZEPOSE33.joints
    assert W[H36M17.joints.index("l_wrist"), blaze.index("left_wrist")] == 1.0
    pelvis = W[H36M17.joints.index("pelvis")]
    assert pelvis[blaze.index("left_hip")] == pelvis[blaze.index("right_hip")] == 0.5


def _onnx_with_inputs(path: Path, names: tuple[str, ...]) -> Path:
    inputs = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1]) for n in names]
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], "net", inputs, [])), str(path))
    return path


def test_ensure_network_exports_on_first_use_only_and_reports_through_its_callback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from crosspose.nets import build, export

    monkeypatch.setenv("CROSSPOSE_CACHE", str(tmp_path))
    exports: list[Path] = []

    def export_network(network: object, out: Path) -> Path:  # the real one takes ~25 s
        exports.append(_onnx_with_inputs(out, INPUT_NAMES))
        return out

    def export_detector(detector: object, out: Path) -> Path:
        out.write_bytes(b"onnx")
        return out

    monkeypatch.setattr(export, "build_fusion_network", lambda build=True: None)
    monkeypatch.setattr(export, "export_onnx", export_network)
    monkeypatch.setattr(build, "load_blazepose_detector", lambda build=True: None)
    monkeypatch.setattr(export, "export_detector_onnx", export_detector)

    lines: list[str] = []
    path = export.ensure_network(lines.append)
    assert path == tmp_path / "models" / "crosspose_fusion.onnx"
    assert exports == [path]
    assert lines[0].startswith("first run: building the network")
    assert lines[-1].startswith("exporting the person detector")
    assert (tmp_path / "models" / "crosspose_detector.onnx").is_file()

    lines.clear()
    assert export.ensure_network(lines.append) == path
    assert (exports, lines) == ([path], [])  # both files there: nothing to do, nothing said

    _onnx_with_inputs(path, ("crops", "projections"))  # an export by an older version
    with caplog.at_level("INFO", logger="crosspose.nets.export"):
        export.ensure_network()  # no callback: the steps are logged
    assert len(exports) == 2
    assert "older export (other inputs): re-exporting" in caplog.text


@pytest.fixture(scope="module")
def network() -> FusionNetwork:
    return build_fusion_network()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("export")
    onnx_path, card_path = folder / "net.onnx", folder / "net.json"  # the card goes beside the model
    result = CliRunner().invoke(app, ["export", "--out", str(onnx_path)])
    assert result.exit_code == 0, result.output
    assert card_path.is_file(), result.output
    return onnx_path, card_path


@pytest.fixture(scope="module")
def session(exported: tuple[Path, Path]) -> ort.InferenceSession:
    return ort.InferenceSession(str(exported[0]), providers=["CPUExecutionProvider"])


@pytest.mark.network
def test_one_self_contained_file_with_dynamic_cameras(exported: tuple[Path, Path]) -> None:
    onnx_path, card_path = exported
    # The network, its card and the person detector (its card entry names the file), nothing else.
    detector = onnx_path.with_name("crosspose_detector.onnx")
    assert sorted(p.name for p in onnx_path.parent.iterdir()) == sorted([onnx_path.name, card_path.name,
                                                                         detector.name])
    card = json.loads(card_path.read_text())
    assert card["detector"]["file"] == detector.name
    assert card["detector"]["sha256"] == hashlib.sha256(detector.read_bytes()).hexdigest()
    assert [i.name for i in onnx.load(str(detector)).graph.input] == ["images"]
    model = onnx.load(str(onnx_path), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert [i.name for i in model.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    first_axes = {i.name: i.type.tensor_type.shape.dim[0] for i in model.graph.input}
    for name in ("crops", "projections", "valid"):
        assert first_axes[name].dim_param, f"{name}'s camera axis is not dynamic"
    assert onnx_path.stat().st_size > 10e6  # the backbone's weights are inside
    assert not any(node.metadata_props for node in model.graph.node)  # no source traces: reproducible


@pytest.mark.network
@pytest.mark.parametrize("cameras", [2, 3, 4])
def test_onnx_matches_torch(network: FusionNetwork, session: ort.InferenceSession, cameras: int) -> None:
    crops, projections, valid, prior, scale = example_inputs(cameras, seed=cameras)
    with np.load(FIXTURES / "blazepose_landmark_reference.npz") as data:
        real = torch.from_numpy(data["crops"].astype(np.float32) / 255.0)
    k = min(cameras, len(real))
    crops[:k] = real[:k]  # real people, so the heatmaps have peaks worth fusing
    if cameras == 4:
        valid[2] = False  # a missing view takes the other branch of the fusion
    if cameras == 3:
        prior[[3, 15]] = float("nan")  # joints the last pose did not place: no window for them
    if cameras == 2:
        scale[0] = 1.7  # an older prior: wider windows
    with torch.no_grad():
        expected = [t.numpy() for t in network(crops, projections, valid, prior, scale)]
    feeds = {"crops": crops.numpy(), "projections": projections.numpy(), "valid": valid.numpy(),
             "prior": prior.numpy(), "window_scale": scale.numpy()}
    got = session.run(list(OUTPUT_NAMES), feeds)
    for name, a, b in zip(OUTPUT_NAMES, got, expected, strict=True):
        assert a.shape == b.shape, name
        diff = float(np.abs(a - b).max())
        assert diff < TOLERANCE, f"{name}: max abs diff {diff:.2e} at C={cameras}"
    heatmaps, fused, presence = got
    assert heatmaps.shape == (cameras, 17, 64, 64)
    assert presence.shape == (cameras,)
    assert heatmaps.min() >= 0.0
    assert heatmaps.max() <= 1.0
    assert fused.min() >= 0.0
    assert fused.max() <= 1.0 + 1e-6
    assert heatmaps[0].max() > 0.5  # a real person in the first crop
    assert np.isfinite(fused).all()
    if cameras == 3:  # no prior, no window: those joints keep each view's own heatmap
        np.testing.assert_allclose(fused[:, [3, 15]], heatmaps[:, [3, 15]], atol=1e-6)


@pytest.mark.network
def test_model_card(exported: tuple[Path, Path]) -> None:
    onnx_path, card_path = exported
    card = json.loads(card_path.read_text())
    assert card["sha256"] == assets.sha256_file(onnx_path)
    assert card["joint_order"] == list(H36M17.joints)
    assert [i["name"] for i in card["inputs"]] == list(INPUT_NAMES)
    assert [o["name"] for o in card["outputs"]] == list(OUTPUT_NAMES)
    assert card["inputs"][0]["shape"] == ["C", 256, 256, 3]
    wheel = assets.ASSETS["mediapipe-0.10.21"]
    backbone = card["provenance"]["backbone"]
    assert (backbone["version"], backbone["wheel_sha256"]) == ("0.10.21", wheel.sha256)
    assert card["licence"]["weights"] == "Apache-2.0"
    assert card["preprocessing"]["range"] == [0.0, 1.0]
