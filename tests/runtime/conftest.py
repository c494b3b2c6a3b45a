"""The default live service shared by consecutive tests of several modules (``live_service.SHARED``): the
tests ask for ``default_service``; it is stopped as soon as the next test does not."""

from __future__ import annotations

import pytest
from live_service import SHARED, Running


@pytest.fixture
def default_service(tmp_path_factory: pytest.TempPathFactory) -> Running:
    """The service with :func:`live_service.start_service`'s defaults (3 synthetic cameras), ready; started
    here unless the test before used it too (each test leaves it ready)."""
    return SHARED.get(lambda: tmp_path_factory.mktemp("service"))


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None or "default_service" not in nextitem.fixturenames:
        SHARED.stop()


def pytest_sessionfinish() -> None:
    SHARED.stop()
