"""BlazePose weights from the mediapipe wheel into torch, cached (what ``crosspose model build`` runs).

The mediapipe 0.10.21 wheel is fetched through ``crosspose.assets`` (pinned file, sha256-checked,
never installed); its two .tflite graphs are rebuilt as ``GraphModule``s and saved as
``$CROSSPOSE_CACHE/models/<name>.pt`` = {plan, state_dict, provenance}. Loading a saved model
needs torch only; the loaders build on first use and rebuild when the wheel or format changed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crosspose import assets
from crosspose.nets.blazepose import BlazePoseDetector, BlazePoseLandmarks, landmark_output_names
from crosspose.nets.tflite_graph import read_tflite
from crosspose.nets.tflite_torch import GraphModule, load_pruned, plan_from_graph

WHEEL = "mediapipe-0.10.21"
SAVE_FORMAT = 1


@dataclass(frozen=True)
class BuiltModel:
    """One model the build command produces."""

    name: str
    member: str  # path of the .tflite inside the wheel
    description: str


LANDMARKS = BuiltModel(
    "blazepose_full", "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
    "BlazePose-full landmarks + 39×64×64 heatmaps (256×256 crops)",
)
DETECTOR = BuiltModel(
    "blazepose_detector", "mediapipe/modules/pose_detection/pose_detection.tflite",
    "BlazePose person detector (224×224 images, 2254 anchors)",
)
MODELS = (LANDMARKS, DETECTOR)


def model_path(model: BuiltModel) -> Path:
    """Where the built model lives: ``$CROSSPOSE_CACHE/models/<name>.pt``."""
    return assets.cache_dir() / "models" / f"{model.name}.pt"


def _provenance(model: BuiltModel) -> dict[str, Any]:
    wheel = assets.ASSETS[WHEEL]
    return {
        "format": SAVE_FORMAT, "wheel": wheel.filename, "wheel_sha256": wheel.sha256,
        "member": model.member, "licence": wheel.licence,
    }


def build_model(model: BuiltModel) -> tuple[Path, dict[str, Any]]:
    """Rebuild one .tflite graph as torch, save it to the cache; returns the path and a summary."""
    start = time.perf_counter()
    source = assets.extract(WHEEL, model.member)
    graph = read_tflite(source.read_bytes())
    plan, weights = plan_from_graph(graph)
    module = GraphModule(plan)
    module.load_state_dict(weights, strict=True)
    out = model_path(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    payload = {"provenance": _provenance(model), "plan": plan, "state_dict": module.state_dict()}
    torch.save(payload, tmp)
    os.replace(tmp, out)
    summary = {
        "ops": graph.op_counts(),
        "folded": graph.folded,
        "parameters": sum(p.numel() for p in module.parameters()),
        "bytes": out.stat().st_size,
        "seconds": time.perf_counter() - start,
    }
    return out, summary


def _load_graph(model: BuiltModel, build: bool, outputs: list[str] | None = None) -> GraphModule:
    path = model_path(model)
    payload: dict[str, Any] | None = None
    if path.exists():
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("provenance") != _provenance(model):
            payload = None  # built from another wheel or by an older format: rebuild
    if payload is None:
        if not build:
            raise FileNotFoundError(f"{path} is missing or stale; run `crosspose model build`")
        path, _ = build_model(model)
        payload = torch.load(path, map_location="cpu", weights_only=True)
    module = GraphModule(payload["plan"], outputs=outputs)
    load_pruned(module, payload["state_dict"])
    return module.eval()


def load_blazepose_landmarks(build: bool = True, segmentation: bool = False) -> BlazePoseLandmarks:
    """The BlazePose-full landmark network (eval mode, CPU), built from the wheel on first use.

    ``segmentation=False`` (default) leaves out the person-mask decoder, which the heatmaps and
    landmarks do not use; ``build=False`` raises instead of building a missing model.
    """
    graph = _load_graph(LANDMARKS, build, landmark_output_names(segmentation))
    return BlazePoseLandmarks(graph).eval()


def load_blazepose_detector(build: bool = True) -> BlazePoseDetector:
    """The BlazePose person detector (eval mode, CPU), built from the wheel on first use."""
    return BlazePoseDetector(_load_graph(DETECTOR, build)).eval()
