"""Choices of command options that domain modules define, copied here as literals so that ``--help`` imports
none of those modules; ``tests/test_cli.py`` checks each one against its source, so they cannot drift."""

from __future__ import annotations

#: Where the network runs in ONNX Runtime: ``crosspose.inference.runtimes.onnxruntime.Device``.
DEVICES = ("auto", "cpu", "cuda", "tensorrt")

#: The inference runtimes a command may name: ``auto`` and ``crosspose.inference.runtimes.RUNTIMES``.
RUNTIMES = ("auto", "onnxruntime", "openvino", "torch")

#: ``crosspose.config.settings.Precision``.
PRECISIONS = ("auto", "f32", "bf16")

#: Detector layouts that ``crosspose reconstruct --layout`` names in its help: one name for each of
#: ``crosspose.skeleton.LAYOUTS`` but the solver's own (``crosspose.skeleton.SKELETONS``).
DETECTOR_LAYOUTS = ("openpose-body25b", "body25", "coco17", "blazepose33")

#: ``crosspose.calibration.FORMATS``.
CALIBRATION_FORMATS = ("crosspose", "anipose", "easymocap", "opencv", "qualisys")

#: ``crosspose.recording.export.FORMATS``.
TAKE_EXPORT_FORMATS = ("jsonl", "trc", "bvh", "c3d", "zip")

#: The models ``crosspose model build`` builds: ``crosspose.nets.build.MODELS``.
BUILT_MODELS = ("blazepose_full", "blazepose_detector")


def spoken(choices: tuple[str, ...], conjunction: str = "or") -> str:
    """``a, b, c or d``."""
    return f"{', '.join(choices[:-1])} {conjunction} {choices[-1]}" if len(choices) > 1 else "".join(choices)
