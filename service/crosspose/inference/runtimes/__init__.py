"""Inference runtimes as a registry: one module per runtime, chosen by ``inference.runtime``.

Every caller opens the fusion network with :func:`open_network` and the cold-start person detector with
:func:`open_detector` from its ``inference`` settings (:data:`crosspose.config.InferenceConfig`, one
section discriminated by ``runtime``). A runtime module provides ``open_network(settings, path,
num_cameras)`` → :class:`~crosspose.inference.network.HeatmapNetwork` and ``open_detector(settings,
network_path, num_cameras)`` → :class:`~crosspose.inference.network.DetectorModel`, both ready for the rig's
camera count (and told of another one with ``prepare``); what it opens reports the runtime, device and
precision that really run (:class:`~crosspose.inference.network.RuntimeInfo`). Adding a runtime is one
module, one line here and its settings model in :mod:`crosspose.config.settings`.

``runtime: auto`` (the default) is no module: :func:`crosspose.inference.runtimes.auto.choose` turns it into
one of the others on the host that opens it (ONNX Runtime on a GPU; OpenVINO with a bf16 backbone on a CPU
with native bf16; f32 elsewhere), and the runtime opened reports what really runs.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from crosspose.inference.network import DetectorModel, HeatmapNetwork

if TYPE_CHECKING:
    from crosspose.config.settings import (
        InferenceConfig,
        OnnxRuntimeInference,
        OpenVinoInference,
        TorchInference,
    )
    from crosspose.inference.detector import PersonDetector

log = logging.getLogger(__name__)

#: Runtime name (the config's ``inference.runtime``) → its module, imported when first chosen, so that
#: a runtime's own package (onnxruntime, openvino, …) loads only where it is used.
RUNTIMES: dict[str, str] = {
    "onnxruntime": "crosspose.inference.runtimes.onnxruntime",
    "openvino": "crosspose.inference.runtimes.openvino",
    "torch": "crosspose.inference.runtimes.torch",
}


class Runtime(Protocol):
    """What a runtime module provides."""

    def open_network(self, settings: Any, path: Path | None, num_cameras: int) -> HeatmapNetwork: ...

    def open_detector(self, settings: Any, network_path: Path | None, num_cameras: int) -> DetectorModel: ...


def runtime(name: str) -> Runtime:
    """The module of runtime ``name`` (ValueError naming the known ones otherwise)."""
    if name not in RUNTIMES:
        raise ValueError(f"unknown inference runtime {name!r}; one of: {', '.join(RUNTIMES)}")
    return cast(Runtime, importlib.import_module(RUNTIMES[name]))


def resolve(settings: InferenceConfig) -> OnnxRuntimeInference | OpenVinoInference | TorchInference:
    """``settings`` with ``runtime: auto`` turned into the runtime it runs on here (logged with the reason);
    any other runtime as it is. Raises DeviceUnavailableError for a ``precision`` this host cannot run."""
    from crosspose.inference.runtimes.auto import choose

    choice = choose(settings)
    if settings.runtime == "auto":
        log.info("inference runtime auto: %s (%s)", choice.settings.runtime, choice.reason)
    return choice.settings


def open_network(
    settings: InferenceConfig, *, path: Path | None = None, num_cameras: int = 4
) -> HeatmapNetwork:
    """The fusion network on ``settings.runtime`` (``auto``: :func:`resolve`), compiled or warmed up for
    ``num_cameras`` views (0: neither).

    Args:
        settings: the ``inference`` section (runtime, device, threads, precision, model).
        path: the exported network file (default: ``settings.model``, else the runtime's default — for
            ONNX Runtime and OpenVINO ``crosspose model export``'s cached file).
    Raises:
        FileNotFoundError: the runtime needs a file that is not there (the message says how to write it).
        DeviceUnavailableError: the requested device or precision cannot run here, or the runtime's package
            is not installed (the message names what to install).
    """
    chosen = resolve(settings)
    return runtime(chosen.runtime).open_network(chosen, path or chosen.model, num_cameras)


def open_detector(settings: InferenceConfig, *, network_path: Path | None = None,
                  num_cameras: int = 0) -> PersonDetector:
    """The cold-start :class:`~crosspose.inference.detector.PersonDetector` on ``settings.runtime``
    (``auto``: :func:`resolve`), ready for a batch of ``num_cameras`` images (a cold start's; 0: one); a
    runtime that reads files takes the detector's from beside ``network_path`` (default as
    :func:`open_network`'s ``path``). Raises as :func:`open_network`."""
    from crosspose.inference.detector import PersonDetector

    chosen = resolve(settings)
    model = runtime(chosen.runtime).open_detector(chosen, network_path or chosen.model, num_cameras)
    return PersonDetector(model)


__all__ = ["RUNTIMES", "Runtime", "open_detector", "open_network", "resolve", "runtime"]
