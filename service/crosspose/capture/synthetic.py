"""Synthetic-studio cameras: rendered frames of a seeded :func:`crosspose.studio.make_scene`.

``synthetic`` or ``synthetic?seed=0&index=1&cameras=4&frames=300``: every grabber of one studio
uses the same seed and camera count, so they render the same performer from their own camera of
the same rig. Deterministic by seed and camera index; the take loops.

``live=1`` makes the cameras of one studio behave like real ones watching one performer: each read
shows the take's frame for the current tick of the host's monotonic clock at the source's rate (the
same instant in every grabber process), instead of each camera's own next frame, and the grabber sends
it at that tick (``due_ns``), so the cameras expose together like genlocked ones and sync completes a
set as soon as its frames arrive. Frame ``n`` is the same image either way; the device timestamp is
``tick / fps``.

``render=0`` skips the renderer and sends a flat grey 64x48 frame with the same timestamps: for
measuring transport, sync and the solver with the simulated inference backend, which reads only the
timestamps (rendering 8 cameras at 60 fps alone needs more than this machine's two cores).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import numpy as np

from crosspose.capture.source import Source, SourceError, resize_to
from crosspose.config import DEFAULT_FPS, CameraConfig

if TYPE_CHECKING:
    from crosspose.studio import Renderer, Scene

_KEYS = {"seed", "index", "cameras", "frames", "live", "render"}


def parse_synthetic(source: str) -> dict[str, int]:
    """Query parameters of a ``synthetic?…`` source string (integers; unknown keys rejected)."""
    _, _, query = source.partition("?")
    out: dict[str, int] = {}
    for key, values in parse_qs(query, keep_blank_values=True, strict_parsing=False).items():
        if key not in _KEYS:
            raise SourceError(f"synthetic source: unknown parameter {key!r} (use {', '.join(sorted(_KEYS))})")
        try:
            out[key] = int(values[-1])
        except ValueError:
            raise SourceError(f"synthetic source: {key}={values[-1]!r} is not an integer") from None
    return out


class SyntheticSource(Source):
    """Camera ``index`` of a ``cameras``-camera synthetic studio (seed ``seed``), ``frames`` long, looped."""

    kind = "synthetic"

    def __init__(
        self,
        *,
        seed: int = 0,
        index: int = 0,
        cameras: int = 1,
        frames: int = 300,
        fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
        live: bool = False,
        render: bool = True,
    ) -> None:
        if not 1 <= cameras <= 12:
            raise SourceError(f"synthetic source: cameras={cameras} must be 1..12")
        if not 0 <= index < cameras:
            raise SourceError(f"synthetic source: index={index} must be in 0..{cameras - 1}")
        if frames < 1:
            raise SourceError(f"synthetic source: frames={frames} must be >= 1")
        self.seed = seed
        self.index = index
        self.cameras = cameras
        self.frames = frames
        self._fps = fps or DEFAULT_FPS
        self.width = width
        self.height = height
        self._scene: Scene | None = None
        self._renderer: Renderer | None = None
        self._i = 0
        self.live = live
        self.render = render
        self._last_tick = -1

    @classmethod
    def from_config(
        cls, camera: CameraConfig, *, camera_index: int = 0, num_cameras: int = 1
    ) -> SyntheticSource:
        """From a camera config; the source's query overrides the given index / camera count."""
        params = parse_synthetic(camera.source)
        return cls(
            seed=params.get("seed", 0),
            index=params.get("index", camera_index),
            cameras=params.get("cameras", max(num_cameras, camera_index + 1)),
            frames=params.get("frames", 300),
            fps=camera.fps,
            width=camera.width,
            height=camera.height,
            live=bool(params.get("live", 0)),
            render=bool(params.get("render", 1)),
        )

    def open(self) -> None:
        from crosspose.studio import Renderer, make_scene

        # The studio's rigs need >= 2 cameras; a single synthetic camera is camera 0 of a pair.
        scene = make_scene(self.seed, self.frames, max(self.cameras, 2), fps=self._fps)
        name = scene.rig.names[self.index]
        self._scene = scene
        self._renderer = Renderer(scene.rig.subset([name]), seed=self.seed) if self.render else None
        self._i = 0

    def read(self) -> tuple[np.ndarray, int | None]:
        if self._scene is None or (self.render and self._renderer is None):
            raise SourceError("synthetic source is not open")
        if self.live:
            tick = max(time.monotonic_ns() * self._fps // 1e9, self._last_tick + 1)
            self._last_tick = int(tick)
            self._i = self._last_tick
            # Sent at its tick (as genlocked cameras expose together), not at the grabber's own phase.
            self.due_ns = int(self._i * 1e9 / self._fps)
        n = self._i % self.frames
        if self._renderer is None:
            frame = np.full((48, 64, 3), 128, np.uint8)
        else:
            frame = self._renderer.render(self._scene.joints3d[n])[0]
        device_ns = int(self._i * 1e9 / self._fps)
        self._i += 1
        return resize_to(frame, self.width, self.height), device_ns

    def close(self) -> None:
        self._scene = None
        self._renderer = None

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def paced(self) -> bool:
        return True
