"""The API's live-calibration inputs from the running pipeline: frame sets from sync's frame-set tap (the
recorder's: every set on a queue of its own, so a slow reader loses only its own sets and never holds up
inference or a take) and the person method's 2D detector (the service's network, opened on demand)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from crosspose.bus import FRAMESET, MessageError, Subscriber
from crosspose.bus.schema import parse_frameset
from crosspose.capture.frames import decode_frame
from crosspose.config import Config

log = logging.getLogger(__name__)


class TapFeed:
    """:class:`crosspose.calibration.session.FrameFeed` on ``endpoint``: the newest frame set, decoded, one
    image per camera of ``cameras`` (the rig's order; None where missing). Subscribed while open only."""

    def __init__(self, endpoint: str, cameras: Sequence[str]) -> None:
        self.cameras = list(cameras)
        self._sub: Subscriber | None = Subscriber(endpoint, [FRAMESET], bind=False, hwm=2, conflate=True)

    def next(self, timeout_s: float) -> list[np.ndarray | None] | None:
        if self._sub is None:
            return None
        msg = self._sub.recv(int(timeout_s * 1000))
        if msg is None:
            return None
        try:
            fs = parse_frameset(msg.header, msg.buffers)
            buffers = iter(msg.buffers)
            images = {cam: decode_frame(msg.header["frames"][i], next(buffers))
                      for i, (cam, frame) in enumerate(zip(fs.cameras, fs.frames, strict=True))
                      if frame is not None}
            return [images.get(name) for name in self.cameras]
        except MessageError as err:
            log.debug("live calibration: frame set dropped: %s", err)
            return None

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None


def install(state: Any, config: Config) -> None:
    """Give ``state`` its live-calibration inputs: the frame-set tap when recording (which runs it) is
    enabled, and the 2D detector when the inference backend is the network."""
    if config.recording.enabled:
        endpoint = config.recording.tap_endpoint(config.bus)
        state.calibration_feed = lambda names: TapFeed(endpoint, names)
    if config.inference.backend == "network":
        state.keypoint_detector = lambda rig: _network_detector(config, rig)


def _network_detector(config: Config, rig: Any) -> tuple[Any, tuple[str, ...]]:
    from crosspose.calibration.sources import person_detector
    from crosspose.inference.runtimes import open_network

    return person_detector(rig, open_network(config.inference, num_cameras=len(rig)))
