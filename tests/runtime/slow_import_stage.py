"""A stage module that takes 3 s to import (the supervisor's Ctrl-C test): a spawned child spends that
time before ``_child_main`` can ignore SIGINT."""

from __future__ import annotations

import time
from multiprocessing.synchronize import Event

from crosspose.runtime.testing import idle_stage

time.sleep(3.0)


def stage(stop: Event, pid_file: str) -> None:
    """:func:`idle_stage`, defined here so that the child imports this module."""
    idle_stage(stop, pid_file)
