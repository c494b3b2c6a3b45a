"""The exported network: BlazePose backbone + channel mapping into the solver's joint layout + cross-view
fusion, one ONNX file.

``FusionNetwork`` is the torch module that ``crosspose model export`` writes as a single ONNX graph
(weights inside, no external data) with a dynamic person axis ``P`` (every performer of a frame set in one
call) and camera axis ``C``, declaring its joint layout in the file's metadata (``skeleton``, ``joints``);
``export_onnx`` writes it and ``model_card`` describes it (inputs, outputs, joint order, preprocessing,
provenance, sha256).
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from crosspose import assets
from crosspose.nets.blazepose import (
    CROP_SIZE,
    DETECTOR_SIZE,
    HEATMAP_SIZE,
    NUM_ANCHORS,
    NUM_LANDMARKS,
    BlazePoseDetector,
    BlazePoseLandmarks,
)
from crosspose.nets.files import DETECTOR_NAME as DETECTOR_NAME
from crosspose.nets.files import (
    EXPORT_FORMAT,
    INPUT_NAMES,
    MODEL_NAME,
    default_onnx_path,
    detector_onnx_path,
    is_current_export,
)
from crosspose.nets.files import export_metadata as export_metadata
from crosspose.nets.files import exported_inputs as exported_inputs
from crosspose.nets.fusion import CrossViewFusion
from crosspose.skeleton import DEFAULT_SKELETON, H36M17, LayoutMapping, Skeleton, get_skeleton

log = logging.getLogger(__name__)

ONNX_OPSET = 18
DETECTOR_INPUT_NAMES = ("images",)
DETECTOR_OUTPUT_NAMES = ("boxes", "scores")
OUTPUT_NAMES = ("heatmaps", "fused", "presence")
DEFAULT_RADIUS = 1.2  # metres around the root that hold the whole body (CrossViewFusion's default)
#: The exported fusion's layout: evidence only in a 16-pixel window around each joint's prior position,
#: rays from every 2nd pixel (``CrossViewFusion(window=0)`` is the whole-map layout; see README).
DEFAULT_WINDOW: dict[str, Any] = {"window": 16, "window_stride": 2, "window_radius": 0.4, "window_samples": 8}


def blazepose_channel_map(skeleton: Skeleton = H36M17) -> Tensor:
    """``(J, 39)`` weights: heatmap channel ``j`` of ``skeleton`` = Σ_k W[j, k] · BlazePose channel ``k``.

    The weights are ``crosspose.skeleton``'s BlazePose-33 recipes for the layout's joints (for H36M-17
    proxies included: neck = nose, head = mid-eyes), applied to heatmap *probabilities*: a derived joint's
    heatmap is the weighted mean of its sources' heatmaps (pelvis = ½ l_hip + ½ r_hip, …). Chosen over the
    max because it is linear (one matrix product, exact in ONNX), keeps values in [0, 1] and is what the
    keypoint path computes for coordinates; its cost is that a midpoint's heatmap has its mass
    at the sources (two half-height peaks that merge only where the sources are within ~2σ), not a
    peak at the midpoint. The full body's extremities (heels, foot tips, hand points, face points) are
    BlazePose channels as they are. Channels 33–38 (crop and the auxiliary hand points) are unused.

    Raises:
        ValueError: a joint of ``skeleton`` that BlazePose-33 gives no recipe for.
    """
    mapping = LayoutMapping("blazepose33", dst=skeleton)
    weights = np.zeros((skeleton.num_joints, NUM_LANDMARKS), dtype=np.float32)
    for j, name in enumerate(skeleton.joints):
        recipe = mapping.recipes.get(name)
        if recipe is None:
            raise ValueError(f"BlazePose-33 gives no {name} (layout {skeleton.name})")
        for source, weight in zip(recipe.sources, recipe.weights, strict=True):
            weights[j, mapping.src.index(source)] += weight
    return torch.from_numpy(weights)


class FusionNetwork(nn.Module):
    """Every performer's crops of one frame set → raw and fused heatmaps in ``skeleton``'s layout and a
    per-view presence.

    ``forward(crops (P, C, 256, 256, 3) float RGB in [0, 1], projections (P, C, 3, 4), valid (P, C) bool,
    prior (P, J, 3), window_scale (P,))`` returns ``(heatmaps, fused, presence)``, ``P`` performers (the
    batch axis; all their crops go through the backbone together), ``C`` views, ``J`` joints:

    * ``heatmaps (P, C, J, 64, 64)`` in [0, 1]: ``sigmoid`` of BlazePose's heatmap logits mapped to the
      layout by :func:`blazepose_channel_map`;
    * ``fused (P, C, J, 64, 64)`` in [0, 1]: :class:`CrossViewFusion` of each performer's heatmaps;
    * ``presence (P, C)``: BlazePose's pose flag (probability that the crop holds a person).

    ``projections`` map world metres to *heatmap* pixels of each view (the crop transform folded
    in, pixel centres at integer coordinates: heatmap pixel ``u`` covers crop pixels ``4u … 4u+3``).
    ``prior`` is each performer's previous pose in metres (the layout's order), NaN for joints not known.
    A windowed fusion (``fusion.window > 0``, the default export) looks for joint ``j`` only around
    ``prior[j]`` and keeps a view's own map for joints with no prior; a whole-map fusion samples
    a sphere of ``radius`` metres around the prior's root row (give at least that row, e.g. the
    detector crops' centres triangulated). ``window_scale ≥ 1`` widens the windows for an older prior
    (1: the trained window, for a prior one frame old at ≥ 15 fps). A view with ``valid=False``
    contributes nothing to the others.
    No data-dependent control flow: exports with dynamic ``P`` and ``C``; the exported graph needs ``C ≥ 2``.
    """

    def __init__(
        self,
        backbone: BlazePoseLandmarks,
        fusion: CrossViewFusion | None = None,
        radius: float = DEFAULT_RADIUS,
        skeleton: Skeleton = H36M17,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.skeleton = skeleton
        self.fusion = fusion if fusion is not None else CrossViewFusion(num_joints=skeleton.num_joints)
        if self.fusion.num_joints != skeleton.num_joints or self.fusion.from_logits:
            raise ValueError(f"the fusion layer must take {skeleton.num_joints} heatmaps ({skeleton.name}) "
                             "in [0, 1] (from_logits=False)")
        self.radius = float(radius)
        self.register_buffer("channel_map", blazepose_channel_map(skeleton), persistent=False)
        self.channel_map: Tensor
        #: The file the fusion parameters came from (None: the initialisation); set by build_fusion_network.
        self.fusion_weights: Path | None = None

    def forward(
        self, crops: Tensor, projections: Tensor, valid: Tensor, prior: Tensor, window_scale: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        if crops.ndim != 5 or tuple(crops.shape[2:]) != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"crops must be (P, C, {CROP_SIZE}, {CROP_SIZE}, 3), got {tuple(crops.shape)}")
        p, c = crops.shape[0], crops.shape[1]
        out = self.backbone(crops.flatten(0, 1))  # every performer's views in one batch
        probabilities = torch.sigmoid(out.heatmaps)  # (P·C, 39, 64, 64)
        # (J, 39) @ (P·C, 39, h·w): a MatMul (ONNX Runtime's Einsum took 1.6 ms of the network on the CPU).
        heatmaps = (self.channel_map @ probabilities.flatten(2)).unflatten(2, probabilities.shape[2:])
        heatmaps = heatmaps.unflatten(0, (p, c))  # (P, C, J, h, w)
        root = prior[:, self.skeleton.root]
        root = torch.where(torch.isfinite(root), root, torch.zeros_like(root))
        fused = self.fusion(heatmaps, projections, valid.to(torch.bool), root, self.radius, joints=prior,
                            window_scale=window_scale)
        return heatmaps, fused, out.pose_flag.reshape(p, c)


def default_fusion_weights() -> Path | None:
    """``models/fusion_weights.pt`` (``crosspose model train-fusion``'s output) when the tree has it."""
    from crosspose.nets.train import default_weights_path

    path = default_weights_path()
    return path if path.is_file() else None


def fusion_state_for(state: dict[str, Tensor], skeleton: Skeleton) -> dict[str, Tensor]:
    """A fusion layer's parameters for ``skeleton``'s joints from parameters trained for its first joints.

    The per-joint parameters (``(J',)`` vectors) of weights trained on a layout whose joints are the first
    ``J'`` of ``skeleton`` (Human3.6M-17's for the full body) extend to the other joints by copying each
    one's nearest trained ancestor (heel, foot tip ← ankle; hand points ← wrist; nose ← neck, BlazePose's
    nose channel; eyes and ears ← head, its mid-eyes): those joints are fused as their parents are, not
    trained for themselves.
    Parameters already of ``skeleton``'s size, and the shared ones, are returned as they are.
    """
    out = {}
    for name, value in state.items():
        trained = value.shape[0] if value.ndim == 1 else None
        if trained is None or trained == skeleton.num_joints:
            out[name] = value
            continue
        if trained > skeleton.num_joints:
            raise ValueError(f"fusion parameter {name} has {trained} joints; {skeleton.name} has "
                             f"{skeleton.num_joints}")
        source = []
        for j in range(skeleton.num_joints):
            k = j
            while k >= trained:
                k = skeleton.parents[k]
            source.append(k)
        out[name] = value[source].clone()
    return out


def build_fusion_network(fusion_weights: Path | None = None, build: bool = True,
                         untrained: bool = False, window: dict[str, Any] | None = None,
                         skeleton: Skeleton = H36M17) -> FusionNetwork:
    """The network with the cached BlazePose backbone and trained fusion parameters.

    ``fusion_weights`` is a ``torch.save``d ``CrossViewFusion`` state dict; by default
    ``models/fusion_weights.pt`` when it exists (:func:`default_fusion_weights`; trained on Human3.6M-17's
    joints, extended to the layout's others by :func:`fusion_state_for`), else (or with
    ``untrained=True``) the fusion layer keeps its documented initialisation. ``window``: the
    ``CrossViewFusion`` window options (default :data:`DEFAULT_WINDOW`; ``{"window": 0}`` for the
    whole-map layout). ``skeleton``: the joint layout of the heatmaps. ``build=False`` raises instead of
    building BlazePose.
    """
    from crosspose.nets.build import load_blazepose_landmarks

    if untrained and fusion_weights is not None:
        raise ValueError("give fusion_weights or untrained=True, not both")
    fusion = CrossViewFusion(num_joints=skeleton.num_joints, **(DEFAULT_WINDOW if window is None else window))
    path = None if untrained else (fusion_weights if fusion_weights is not None else default_fusion_weights())
    if path is not None:
        trained = torch.load(path, map_location="cpu", weights_only=True)
        fusion.load_state_dict(fusion_state_for(trained, skeleton))
    network = FusionNetwork(load_blazepose_landmarks(build=build), fusion, skeleton=skeleton).eval()
    network.fusion_weights = path
    return network


def example_inputs(num_cameras: int = 4, seed: int = 0, num_persons: int = 1,
                   skeleton: Skeleton = H36M17) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Plausible inputs for ``num_persons`` performers: random crops, ``C`` cameras on a 4 m circle looking at
    a root at 1 m height, and per performer a prior of the layout's joints scattered around that root
    (window scale 1).

    The projections map world metres to heatmap pixels of a 64×64 heatmap whose view spans ~2.5 m
    at the root, so every view's epipolar segments cross the others' heatmaps.
    """
    generator = torch.Generator().manual_seed(seed)
    crops = torch.rand(num_persons, num_cameras, CROP_SIZE, CROP_SIZE, 3, generator=generator)
    root = torch.tensor([0.0, 0.0, 1.0])
    focal = HEATMAP_SIZE / 2.5 * 4.0  # 64 px span 2.5 m at 4 m
    middle = (HEATMAP_SIZE - 1) / 2
    K = torch.tensor([[focal, 0.0, middle], [0.0, focal, middle], [0.0, 0.0, 1.0]])
    projections = []
    for c in range(num_cameras):
        angle = 2 * math.pi * c / num_cameras
        centre = torch.tensor([4 * math.cos(angle), 4 * math.sin(angle), 1.0])
        forward = (root - centre) / (root - centre).norm()
        down = torch.tensor([0.0, 0.0, -1.0])
        right = torch.linalg.cross(down, forward)
        right = right / right.norm()
        down = torch.linalg.cross(forward, right)
        R = torch.stack([right, down, forward])
        t = -R @ centre
        projections.append(K @ torch.cat([R, t[:, None]], dim=1))
    valid = torch.ones(num_persons, num_cameras, dtype=torch.bool)
    prior = root + 0.3 * torch.randn(num_persons, skeleton.num_joints, 3, generator=generator)
    prior[:, skeleton.root] = root
    rig = torch.stack(projections).expand(num_persons, -1, -1, -1).contiguous()
    return crops, rig, valid, prior, torch.ones(num_persons)


def export_onnx(network: FusionNetwork, out: Path, num_cameras: int = 4) -> Path:
    """Write ``network`` as ONE ONNX file (weights embedded) with dynamic person and camera axes ``P``, ``C``,
    its joint layout declared in the file's metadata (``skeleton``, ``joints``, ``crosspose_export``)."""
    persons = torch.export.Dim("P", min=1, max=16)
    cameras = torch.export.Dim("C", min=2, max=64)
    pc = {0: persons, 1: cameras}
    dynamic_shapes = {"crops": pc, "projections": pc, "valid": pc, "prior": {0: persons},
                      "window_scale": {0: persons}}
    # Two example performers: an example of one would let the exporter specialise P to 1.
    example = example_inputs(num_cameras, num_persons=2, skeleton=network.skeleton)
    metadata = {"skeleton": network.skeleton.name, "joints": ",".join(network.skeleton.joints),
                "crosspose_export": EXPORT_FORMAT}
    return _export(network, example, out, INPUT_NAMES, OUTPUT_NAMES, dynamic_shapes, metadata)


class DetectorGraph(nn.Module):
    """:class:`~crosspose.nets.blazepose.BlazePoseDetector` with plain tensor outputs, for export:
    ``images (N, 224, 224, 3)`` RGB in [-1, 1] (letterboxed) → ``boxes (N, 2254, 12)``, ``scores
    (N, 2254)`` raw per-anchor regressors and logits (decoded by ``crosspose.inference.detector``)."""

    def __init__(self, detector: BlazePoseDetector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        out = self.detector(images)
        return out.boxes, out.scores


def export_detector_onnx(detector: BlazePoseDetector, out: Path) -> Path:
    """Write the person detector as one ONNX file with a dynamic image axis ``N``.

    The live pipeline runs it in ONNX Runtime on a cold start or a lost view (~2-2.5x faster than eager
    torch on the CPU: ``python benchmarks/detector.py``)."""
    images = torch.export.Dim("N", min=1, max=64)
    example = (torch.zeros(2, DETECTOR_SIZE, DETECTOR_SIZE, 3),)
    return _export(DetectorGraph(detector), example, out, DETECTOR_INPUT_NAMES, DETECTOR_OUTPUT_NAMES,
                   {"images": {0: images}})


def _export(module: nn.Module, args: tuple[Tensor, ...], out: Path, input_names: tuple[str, ...],
            output_names: tuple[str, ...], dynamic_shapes: dict[str, Any],
            metadata: dict[str, str] | None = None) -> Path:
    """``torch.onnx.export`` (dynamo, weights embedded) into ``out`` atomically (``.part``, then renamed),
    with ``metadata`` in the model's metadata properties."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    # The exporter's optimizer logs every folded initializer at INFO, which drowns the CLI's output.
    quiet = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript")]
    levels = [logger.level for logger in quiet]
    try:
        for logger in quiet:
            logger.setLevel(logging.WARNING)
        with torch.no_grad():
            torch.onnx.export(
                module.eval(), args, str(tmp), dynamo=True, external_data=False,
                input_names=list(input_names), output_names=list(output_names), dynamic_shapes=dynamic_shapes,
                opset_version=ONNX_OPSET, optimize=True, verbose=False,
            )
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    _strip_trace_metadata(tmp, metadata or {})
    tmp.replace(out)
    return out


def ensure_network(progress: Callable[[str], None] | None = None,
                   skeleton: Skeleton | str = DEFAULT_SKELETON) -> Path:
    """The exported network in ``skeleton``'s layout at :func:`default_onnx_path`, built and exported on
    first use (BlazePose from PyPI) or when the cached file has other inputs or another layout (an export
    made before the full body was the default declares Human3.6M-17), with the person detector's file
    beside it (also written for a cache exported before the detector was).

    ``progress`` receives a line before and after each step, which can take minutes (default: logged at
    INFO); nothing is reported when both files are already there."""
    from crosspose.nets.build import load_blazepose_detector

    report = log.info if progress is None else progress
    layout = get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton
    path = default_onnx_path(layout)
    if not is_current_export(path, layout):
        what = ("older export (other inputs or layout): re-exporting" if path.is_file()
                else "first run: building")
        report(f"{what} the network in {layout.name} (mediapipe wheel from PyPI → torch → ONNX) "
               f"into {path} …")
        start = time.perf_counter()
        export_onnx(build_fusion_network(build=True, skeleton=layout), path)
        report(f"  done in {time.perf_counter() - start:.0f} s")
    detector = detector_onnx_path(path)
    if not detector.is_file():
        report(f"exporting the person detector into {detector} …")
        export_detector_onnx(load_blazepose_detector(build=True), detector)
    return path


def _strip_trace_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Drop the exporter's per-node metadata (source stack traces, FX node text) from the file and set the
    model's own ``metadata``.

    They name source lines, so any edit anywhere changed the file's bytes; without them the same
    graph and weights give the same sha256.
    """
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, metadata)
    for graph in [model.graph, *(f for f in model.functions)]:
        for node in graph.node:
            del node.metadata_props[:]
    for value in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        del value.metadata_props[:]
    onnx.save(model, str(path))


def _git_commit() -> str | None:
    """The source tree's commit (with ``-dirty`` when it has local changes), None outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def model_card(onnx_path: Path, network: FusionNetwork, fusion_weights: Path | None = None) -> dict[str, Any]:
    """The JSON model card of an exported file: what goes in and out, joint order, provenance."""
    from crosspose.nets.build import LANDMARKS, WHEEL

    wheel = assets.ASSETS[WHEEL]
    size = HEATMAP_SIZE
    j = network.skeleton.num_joints
    mapping = LayoutMapping("blazepose33", dst=network.skeleton)
    return {
        "name": MODEL_NAME,
        "file": onnx_path.name,
        "sha256": assets.sha256_file(onnx_path),
        "bytes": onnx_path.stat().st_size,
        "format": {"onnx_opset": ONNX_OPSET, "external_data": False, "export": EXPORT_FORMAT,
                   "dynamic_axes": {"P": "performers, 1…16 (the batch axis)", "C": "cameras, 2…64"},
                   "metadata": ["skeleton", "joints", "crosspose_export"]},
        "skeleton": network.skeleton.name,
        "inputs": [
            {"name": "crops", "shape": ["P", "C", CROP_SIZE, CROP_SIZE, 3], "dtype": "float32",
             "description": "RGB in [0, 1], per performer one rotated square person crop per view"},
            {"name": "projections", "shape": ["P", "C", 3, 4], "dtype": "float32",
             "description": "world metres → heatmap pixels of each performer's crops (crop transform folded "
                            "in; pixel centres at integer coordinates; heatmap pixel u covers crop pixels "
                            "4u…4u+3)"},
            {"name": "valid", "shape": ["P", "C"], "dtype": "bool",
             "description": "False for a missing view"},
            {"name": "prior", "shape": ["P", j, 3], "dtype": "float32",
             "description": "each performer's previous pose, metres, joint order as joint_order, NaN where "
                            "unknown; "
                            + (f"the fusion looks for each joint within {network.fusion.window_radius} m of "
                               "its prior (a joint with none keeps the view's own heatmap)"
                               if network.fusion.window else
                               f"the fusion samples {network.radius} m around the root row")},
            {"name": "window_scale", "shape": ["P"], "dtype": "float32",
             "description": "≥ 1 per performer: how much wider than trained each joint's window and sphere "
                            "are (for an older prior; the same rays, spaced further apart); unused by a "
                            "whole-map fusion"},
        ],
        "outputs": [
            {"name": "heatmaps", "shape": ["P", "C", j, size, size], "dtype": "float32",
             "description": f"per-view heatmaps in [0, 1] (sigmoid of BlazePose logits mapped to "
                            f"{network.skeleton.name})"},
            {"name": "fused", "shape": ["P", "C", j, size, size], "dtype": "float32",
             "description": "cross-view fused heatmaps in [0, 1]"},
            {"name": "presence", "shape": ["P", "C"], "dtype": "float32",
             "description": "probability that the crop holds a person (BlazePose pose flag)"},
        ],
        "joint_order": list(network.skeleton.joints),
        "joint_sources": {
            "rule": "derived channel = weighted mean of its BlazePose-33 source channels' probabilities",
            "fusion_parameters": "trained for the Human3.6M-17 joints; each other joint uses its nearest "
                                 "trained ancestor's (crosspose.nets.export.fusion_state_for)",
            "recipes": {name: {"sources": list(r.sources), "weights": list(r.weights), "proxy": r.proxy}
                        for name, r in mapping.recipes.items() if name in network.skeleton.joints},
        },
        "preprocessing": {
            "crop": "rotated square around the person: hip-centred, hips→shoulders pointing up, scale 1.25 "
                    "(as mediapipe feeds BlazePose)",
            "size": [CROP_SIZE, CROP_SIZE], "colour": "RGB", "range": [0.0, 1.0],
            "layout": "(P, C, H, W, 3) channels last",
        },
        "fusion": {
            "layer": "crosspose.nets.fusion.CrossViewFusion",
            "samples": network.fusion.samples, "reduction": network.fusion.reduction,
            "query_stride": network.fusion.query_stride, "dilation": network.fusion.dilation,
            "radius_m": network.radius, "interpolation": network.fusion.interpolation,
            "window_px": network.fusion.window, "window_stride": network.fusion.window_stride,
            "window_radius_m": network.fusion.window_radius, "window_samples": network.fusion.window_samples,
            "parameters": _weights_provenance(fusion_weights if fusion_weights is not None
                                              else network.fusion_weights),
        },
        "provenance": {
            "backbone": {"project": wheel.project, "version": wheel.version, "wheel": wheel.filename,
                         "wheel_sha256": wheel.sha256, "member": LANDMARKS.member},
            "source_commit": _git_commit(),
            "torch": torch.__version__,
            "command": "crosspose model export",
        },
        "licence": {"weights": wheel.licence, "note": "BlazePose weights from the mediapipe wheel"},
    }


def detector_card(path: Path) -> dict[str, Any]:
    """The model card's entry for the exported person detector (file, sha256, inputs, outputs, source)."""
    from crosspose.nets.build import DETECTOR, WHEEL

    return {
        "file": path.name,
        "sha256": assets.sha256_file(path),
        "bytes": path.stat().st_size,
        "inputs": [{"name": "images", "shape": ["N", DETECTOR_SIZE, DETECTOR_SIZE, 3], "dtype": "float32",
                    "description": "RGB in [-1, 1], each frame letterboxed (aspect kept, centred)"}],
        "outputs": [{"name": "boxes", "shape": ["N", NUM_ANCHORS, 12], "dtype": "float32",
                     "description": "per SSD anchor: box centre, size and 4 keypoints, 224-px units"},
                    {"name": "scores", "shape": ["N", NUM_ANCHORS], "dtype": "float32",
                     "description": "logits"}],
        "decoding": "crosspose.inference.detector (anchors, weighted NMS, crop from keypoints 0 and 1)",
        "source": {"wheel": assets.ASSETS[WHEEL].filename, "member": DETECTOR.member},
        "when": "cold start or a view that lost the performer",
    }


def _weights_provenance(path: Path | None) -> Any:
    """The card's record of the fusion parameters: file, sha256 and the training run's commit."""
    if path is None:
        return "default initialisation (untrained)"
    out: dict[str, Any] = {"file": path.name, "sha256": assets.sha256_file(path)}
    log = path.with_name("fusion_training.json")
    if log.is_file():
        try:
            run = json.loads(log.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            run = {}
        if run.get("weights_sha256") == out["sha256"]:
            out.update({"training_commit": run.get("git_commit"), "training_log": log.name,
                        "training_seed": run.get("config", {}).get("seed"),
                        "training_steps": run.get("config", {}).get("steps")})
    return out


def write_model_card(card: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
