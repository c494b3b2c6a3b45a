"""Inference runtimes as a registry: one module per runtime, chosen by ``inference.runtime``.

Every caller opens the fusion network with :func:`open_network` and the cold-start person detector with
:func:`open_detector` from its ``inference`` settings (:data:`crosspose.config.InferenceConfig`, one
section discriminated by ``runtime``). A runtime module provides ``open_network(settings, path,
num_cameras)`` → :class:`~crosspose.inference.network.HeatmapNetwork` and ``open_detector(settings,
network_path, num_cameras)`` → :class:`~crosspose.inference.network.DetectorModel`, both ready for the rig's
camera count (and told of another one with ``prepare``); what it opens reports the runtime, device and
precision that really run (:class:`~crosspose.inference.network.RuntimeInfo`). Adding a runtime is one
module, one line here and its settings model in :mod:`crosspose.config.settings`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from crosspose.inference.network import DetectorModel, HeatmapNetwork

if TYPE_CHECKING:
    from crosspose.config.settings import InferenceConfig
    from crosspose.inference.detector import PersonDetector

#: Runtime name (the config's ``inference.runtime``) → its module, imported when first chosen, so that
#: a runtime's own package (onnxruntime, openvino, …) loads only where it is used.
RUNTIMES: dict[str, str] = {
    "onnxruntime": "crosspose.inference.runtimes.onnxruntime",
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


def open_network(
    settings: InferenceConfig, *, path: Path | None = None, num_cameras: int = 4
) -> HeatmapNetwork:
    """The fusion network on ``settings.runtime``, warmed up for ``num_cameras`` views (0: no warm-up).

    Args:
        settings: the ``inference`` section (runtime, device, threads, model).
        path: the exported network file (default: ``settings.model``, else the runtime's default — for
            ONNX Runtime ``crosspose model export``'s cached file).
    Raises:
        FileNotFoundError: the runtime needs a file that is not there (the message says how to write it).
        DeviceUnavailableError: the requested device cannot run here.
    """
    return runtime(settings.runtime).open_network(settings, path or settings.model, num_cameras)


def open_detector(settings: InferenceConfig, *, network_path: Path | None = None,
                  num_cameras: int = 0) -> PersonDetector:
    """The cold-start :class:`~crosspose.inference.detector.PersonDetector` on ``settings.runtime``, ready
    for a batch of ``num_cameras`` images (a cold start's; 0: one); a runtime that reads files takes the
    detector's from beside ``network_path`` (default as :func:`open_network`'s ``path``). Raises as
    :func:`open_network`."""
    from crosspose.inference.detector import PersonDetector

    model = runtime(settings.runtime).open_detector(settings, network_path or settings.model, num_cameras)
    return PersonDetector(model)


__all__ = ["RUNTIMES", "Runtime", "open_detector", "open_network", "runtime"]
