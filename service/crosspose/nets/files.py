"""The exported network's files in the cache, without torch: where they are, what a file declares, whether
it is this version's export, and :func:`ensure_exported`, which answers at once when both files are current
and loads torch (:func:`crosspose.nets.export.ensure_network`) only to export them.

``crosspose demo`` and ``crosspose serve`` check the cache here, so the supervisor they become never loads
torch on a host whose export is current (``tests/runtime/test_light_stages.py``). The names stay
importable from :mod:`crosspose.nets.export`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from crosspose import assets
from crosspose.skeleton import DEFAULT_SKELETON, Skeleton, get_skeleton

INPUT_NAMES = ("crops", "projections", "valid", "prior", "window_scale")
DETECTOR_NAME = "crosspose_detector"
MODEL_NAME = "crosspose_fusion"
#: What a file this version exports declares in its metadata beside its layout: 2 = person axis + layout;
#: 3 = the same inputs and numbers, the fusion's bilinear reads as four gathers (2.5x faster in OpenVINO):
#: an older cached file is re-exported once.
EXPORT_FORMAT = "3"


def default_onnx_path(skeleton: Skeleton | str = DEFAULT_SKELETON) -> Path:
    """``crosspose model export``'s default output for ``skeleton``:
    ``$CROSSPOSE_CACHE/models/crosspose_fusion.onnx`` for the default layout,
    ``crosspose_fusion_<layout>.onnx``
    for another (each layout its own file, so a service in one does not re-export the other's)."""
    name = (get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton).name
    suffix = "" if name == DEFAULT_SKELETON.name else f"_{name}"
    return assets.cache_dir() / "models" / f"{MODEL_NAME}{suffix}.onnx"


def detector_onnx_path(network_path: Path) -> Path:
    """Where the person detector's ONNX file sits: beside the network's (``crosspose_detector.onnx``)."""
    return network_path.with_name(f"{DETECTOR_NAME}.onnx")


def exported_inputs(path: Path) -> list[str]:
    """The input names of an exported file (``INPUT_NAMES`` for one this version writes)."""
    import onnx

    return [value.name for value in onnx.load(str(path), load_external_data=False).graph.input]


def export_metadata(path: Path) -> dict[str, str]:
    """The metadata an exported file declares (``skeleton``, ``joints``, ``crosspose_export``; empty for a
    file exported before it declared any)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {prop.key: prop.value for prop in model.metadata_props}


def is_current_export(path: Path, skeleton: Skeleton = DEFAULT_SKELETON) -> bool:
    """Whether ``path`` is a network file of this version's export (inputs, person axis) in ``skeleton``'s
    layout (its declared layout and joints)."""
    if not (path.is_file() and exported_inputs(path) == list(INPUT_NAMES)):
        return False
    metadata = export_metadata(path)
    return (metadata.get("crosspose_export") == EXPORT_FORMAT and metadata.get("skeleton") == skeleton.name
            and metadata.get("joints") == ",".join(skeleton.joints))


def ensure_exported(progress: Callable[[str], None] | None = None,
                    skeleton: Skeleton | str = DEFAULT_SKELETON) -> Path:
    """The exported network in ``skeleton``'s layout at :func:`default_onnx_path`, with the person
    detector's file beside it: returned as they are when both are current, else made by
    :func:`crosspose.nets.export.ensure_network` (torch; it reports each step to ``progress``)."""
    layout = get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton
    path = default_onnx_path(layout)
    if is_current_export(path, layout) and detector_onnx_path(path).is_file():
        return path
    from crosspose.nets.export import ensure_network

    return ensure_network(progress, layout)
