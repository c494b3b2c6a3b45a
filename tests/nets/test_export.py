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
    EXPORT_FORMAT,
    INPUT_NAMES,
    OUTPUT_NAMES,
    FusionNetwork,
    blazepose_channel_map,
    build_fusion_network,
    example_inputs,
)
from crosspose.skeleton import BLAZEPOSE33, BODY32, DEFAULT_SKELETON, H36M17

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOLERANCE = 1e-4  # measured ~5e-6; heatmaps are probabilities in [0, 1]


def test_channel_map_follows_skeleton_recipes() -> None:
    W = blazepose_channel_map(H36M17).numpy()
    assert W.shape == (17, 39)
    np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-6)
    assert not W[:, 33:].any()  # crop and hand points unused
    blaze = BLAZEPOSE33.joints
    assert W[H36M17.joints.index("l_wrist"), blaze.index("left_wrist")] == 1.0
    pelvis = W[H36M17.joints.index("pelvis")]
    assert pelvis[blaze.index("left_hip")] == pelvis[blaze.index("right_hip")] == 0.5


def test_full_body_channels_are_h36m17s_then_blazepose_extremities() -> None:
    W = blazepose_channel_map(BODY32).numpy()
    assert W.shape == (32, 39)
    np.testing.assert_array_equal(W[:17], blazepose_channel_map(H36M17).numpy())
    blaze = BLAZEPOSE33.joints
    for ours, theirs in (("l_heel", "left_heel"), ("r_big_toe", "right_foot_index"),
                         ("l_thumb", "left_thumb"),
                         ("r_pinky", "right_pinky"), ("nose", "nose"), ("l_ear", "left_ear")):
        row = W[BODY32.index(ours)]
        assert row[blaze.index(theirs)] == 1.0
        assert row.sum() == 1.0


def test_fusion_parameters_trained_on_h36m17_extend_to_the_full_body_by_ancestor() -> None:
    from crosspose.nets.export import fusion_state_for
    from crosspose.nets.fusion import CrossViewFusion

    trained = CrossViewFusion(num_joints=17).state_dict()
    trained["own"] = torch.arange(17, dtype=torch.float32)
    extended = fusion_state_for(trained, BODY32)
    CrossViewFusion(num_joints=32).load_state_dict(extended)
    own = extended["own"].tolist()
    assert own[:17] == list(range(17))
    for leaf, parent in (("l_heel", "l_ankle"), ("r_big_toe", "r_ankle"), ("l_thumb", "l_wrist"),
                         ("r_index", "r_wrist"), ("r_ear", "head"), ("nose", "neck")):
        assert own[BODY32.index(leaf)] == H36M17.index(parent)
    assert extended["log_temperature"] is trained["log_temperature"]
    assert fusion_state_for(extended, BODY32)["own"] is extended["own"]
    with pytest.raises(ValueError, match="has 32 joints"):
        fusion_state_for(extended, H36M17)


def _onnx_with_inputs(path: Path, names: tuple[str, ...], export_format: str | None = EXPORT_FORMAT,
                      skeleton=DEFAULT_SKELETON) -> Path:
    inputs = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1]) for n in names]
    path.parent.mkdir(parents=True, exist_ok=True)
    model = onnx.helper.make_model(onnx.helper.make_graph([], "net", inputs, []))
    if export_format is not None:
        onnx.helper.set_model_props(model, {"crosspose_export": export_format, "skeleton": skeleton.name,
                                            "joints": ",".join(skeleton.joints)})
    onnx.save(model, str(path))
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

    monkeypatch.setattr(export, "build_fusion_network", lambda build=True, skeleton=None: None)
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
    assert "older export (other inputs or layout): re-exporting" in caplog.text
    # The same input names without the person axis and the declared layout: exported again too.
    _onnx_with_inputs(path, INPUT_NAMES, export_format=None)
    export.ensure_network(lines.append)
    assert len(exports) == 3
    # A current export in another layout is re-exported, and another layout has its own file.
    other = BODY32 if DEFAULT_SKELETON is H36M17 else H36M17
    _onnx_with_inputs(path, INPUT_NAMES, skeleton=other)
    export.ensure_network(lines.append)
    assert len(exports) == 4
    own = export.ensure_network(lines.append, skeleton=other.name)
    assert own == tmp_path / "models" / f"crosspose_fusion_{other.name}.onnx"
    assert exports[-1] == own
    assert len(exports) == 5
    assert export.ensure_network(lines.append) == path
    assert len(exports) == 5


@pytest.fixture(scope="module")
def network() -> FusionNetwork:
    return build_fusion_network(skeleton=DEFAULT_SKELETON)  # what the CLI exports


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
    axes = {i.name: i.type.tensor_type.shape.dim for i in model.graph.input}
    for name in ("crops", "projections", "valid", "prior", "window_scale"):
        assert axes[name][0].dim_param, f"{name}'s person axis is not dynamic"
    for name in ("crops", "projections", "valid"):
        assert axes[name][1].dim_param, f"{name}'s camera axis is not dynamic"
    # The file declares the joint layout of its heatmaps (the runner reads it).
    declared = {p.key: p.value for p in model.metadata_props}
    assert declared == {"skeleton": DEFAULT_SKELETON.name, "joints": ",".join(DEFAULT_SKELETON.joints),
                        "crosspose_export": EXPORT_FORMAT}
    assert onnx_path.stat().st_size > 10e6  # the backbone's weights are inside
    assert not any(node.metadata_props for node in model.graph.node)  # no source traces: reproducible


@pytest.mark.network
@pytest.mark.parametrize("cameras", [2, 3, 4])
def test_onnx_matches_torch(network: FusionNetwork, session: ort.InferenceSession, cameras: int) -> None:
    crops, projections, valid, prior, scale = example_inputs(cameras, seed=cameras, skeleton=DEFAULT_SKELETON)
    with np.load(FIXTURES / "blazepose_landmark_reference.npz") as data:
        real = torch.from_numpy(data["crops"].astype(np.float32) / 255.0)
    k = min(cameras, len(real))
    crops[0, :k] = real[:k]  # real people, so the heatmaps have peaks worth fusing
    if cameras == 4:
        valid[0, 2] = False  # a missing view takes the other branch of the fusion
    if cameras == 3:
        prior[0, [3, 15]] = float("nan")  # joints the last pose did not place: no window for them
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
    heatmaps, fused, presence = (out[0] for out in got)  # the one performer
    assert heatmaps.shape == (cameras, DEFAULT_SKELETON.num_joints, 64, 64)
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
def test_every_performer_goes_through_one_call_as_it_would_alone(exported: tuple[Path, Path]) -> None:
    """The exported graph's batch axis is the person axis: three performers in one call give exactly
    what each gives in a call of its own (the runner's ``run`` is ``run_persons`` with P = 1)."""
    from crosspose.inference.runtimes.onnxruntime import OnnxRunner

    runner = OnnxRunner(exported[0], device="cpu", warmup_cameras=0)
    assert runner.skeleton is DEFAULT_SKELETON
    crops, projections, valid, prior, scale = (t.numpy() for t in example_inputs(3, seed=5, num_persons=3,
                                                                                skeleton=DEFAULT_SKELETON))
    valid[1, 0] = False
    prior[2, :4] = np.nan
    scale[0] = 2.0
    together = runner.run_persons(crops, projections, valid, prior, scale)
    assert together["fused"].shape == (3, 3, DEFAULT_SKELETON.num_joints, 64, 64)
    assert together["presence"].shape == (3, 3)
    for p in range(3):
        alone = runner.run(crops[p], projections[p], valid[p], prior[p], float(scale[p]))
        for name in OUTPUT_NAMES:
            np.testing.assert_allclose(together[name][p], alone[name], atol=1e-6,
                                       err_msg=f"{name}, person {p}")


@pytest.mark.network
def test_model_card(exported: tuple[Path, Path]) -> None:
    onnx_path, card_path = exported
    card = json.loads(card_path.read_text())
    assert card["sha256"] == assets.sha256_file(onnx_path)
    assert card["joint_order"] == list(DEFAULT_SKELETON.joints)
    assert [i["name"] for i in card["inputs"]] == list(INPUT_NAMES)
    assert [o["name"] for o in card["outputs"]] == list(OUTPUT_NAMES)
    assert card["inputs"][0]["shape"] == ["P", "C", 256, 256, 3]
    assert card["skeleton"] == DEFAULT_SKELETON.name
    wheel = assets.ASSETS["mediapipe-0.10.21"]
    backbone = card["provenance"]["backbone"]
    assert (backbone["version"], backbone["wheel_sha256"]) == ("0.10.21", wheel.sha256)
    assert card["licence"]["weights"] == "Apache-2.0"
    assert card["preprocessing"]["range"] == [0.0, 1.0]


@pytest.mark.network
def test_full_body_network_fuses_every_joint(network: FusionNetwork) -> None:
    """The full body's network gives Human3.6M-17's heatmaps as its first 17 channels and fuses the
    extremities as the other joints (a windowed fusion changes the maps of joints with a prior)."""
    full = build_fusion_network(skeleton=BODY32)
    assert full.fusion.num_joints == 32
    crops, projections, valid, prior, scale = example_inputs(3, seed=11, skeleton=BODY32)
    with np.load(FIXTURES / "blazepose_landmark_reference.npz") as data:
        crops[0, :2] = torch.from_numpy(data["crops"][:2].astype(np.float32) / 255.0)
    with torch.no_grad():
        heatmaps, fused, _ = full(crops, projections, valid, prior, scale)
        small = FusionNetwork(full.backbone, skeleton=H36M17, fusion=None)
        small.fusion = network.fusion if network.skeleton is H36M17 else small.fusion
        raw17 = small(crops, projections, valid, prior[:, :17], scale)[0]
    assert heatmaps.shape == fused.shape == (1, 3, 32, 64, 64)
    torch.testing.assert_close(heatmaps[:, :, :17], raw17)
    extremities = slice(17, 32)
    # a real person: every point has a peak (the background is ~1e-4)
    assert heatmaps[0, 0, extremities].amax((-1, -2)).min() > 0.15
    assert not torch.allclose(fused[:, :, extremities], heatmaps[:, :, extremities])
