"""The service's calibration store as every stage opens it: the configured store, seeded once from
``calibration.file`` when it holds no version yet."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from crosspose.config import Config

if TYPE_CHECKING:
    from crosspose.calibration.store import CalibrationStore

log = logging.getLogger(__name__)


def open_calibration_store(config: Config) -> CalibrationStore:
    """The store at ``calibration.store`` for the configured cameras, opened; when no version is in force
    and ``calibration.file`` is set, that file is imported (whichever stage comes first does it; the
    store's lock keeps it to one version). A file that cannot be used is logged, not raised: a service
    running without a calibration (and saying why) beats a crash loop."""
    from crosspose.calibration.store import CalibrationStore

    store = CalibrationStore(config.calibration.store, expected_names=config.camera_names)
    store.open()
    if store.active() is None and config.calibration.file is not None:
        for problem in store.try_seed(config.calibration.file):
            log.error("%s; upload one (PUT /api/v1/calibration) or fix calibration.file", problem)
    return store
