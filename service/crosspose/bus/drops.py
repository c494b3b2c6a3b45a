"""Counting a stage's dropped input by source and reason: the ``input_drops`` of its heartbeat.

Every stage reports ``input_drops`` in its ``status.<stage>.`` heartbeat, a map of maps of
non-negative integers ``{source: {reason: count}}`` (counts since the stage started; zero counts are
left out). ``reason`` is a :data:`~crosspose.bus.codec.DropReason`; ``source`` is the input the message
came in on, from a small set the stage names itself — never a value read from a message, so garbage
cannot grow the map:

- ``sync``: a configured camera's name (frames and grabber heartbeats on that camera's topics), or
  ``other`` (anything else on the frames link: unknown cameras and topics, undecodable messages).
- ``inference`` (each worker, ``inference.<k>`` of several): ``frameset``, ``track``, ``control``.
- ``solver``: ``heatmaps`` (``stale``: a worker's set that finished after a newer one was published).
- ``recorder``: ``frameset``, ``skeleton``, ``control``.
- the API's own bus thread (shown as stage ``api``, not a heartbeat): ``skeleton``, ``status``,
  ``preview``.
"""

from __future__ import annotations

from collections.abc import Mapping

from crosspose.bus.codec import DROP_REASONS, DropReason


class DropCounter:
    """Drops of one stage's input per source and reason (module docstring)."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, int]] = {}

    def count(self, source: str, reason: DropReason, n: int = 1) -> None:
        """Add ``n`` drops of ``source`` for ``reason``."""
        if reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason {reason!r}; one of {DROP_REASONS}")
        if n > 0:
            by_reason = self._counts.setdefault(source, {})
            by_reason[reason] = by_reason.get(reason, 0) + int(n)

    def get(self, source: str, reason: DropReason) -> int:
        """Drops counted for ``source`` and ``reason``."""
        return self._counts.get(source, {}).get(reason, 0)

    def total(self, reason: DropReason | None = None) -> int:
        """Drops of every source (for ``reason`` only, when given)."""
        return sum(n for by in self._counts.values() for r, n in by.items() if reason in (None, r))

    def payload(self, *more: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
        """The heartbeat's ``input_drops``: these counts plus ``more`` (counts kept elsewhere, e.g. a
        socket's undecodable messages), summed per source and reason; zero counts left out."""
        out: dict[str, dict[str, int]] = {}
        every: list[Mapping[str, Mapping[str, int]]] = [self._counts, *more]
        for counts in every:
            for source, by_reason in counts.items():
                for reason, n in by_reason.items():
                    if n > 0:
                        into = out.setdefault(source, {})
                        into[reason] = into.get(reason, 0) + int(n)
        return out
