"""The API's side of recording: send start/stop to the recorder stage and wait for it to confirm.

The API never writes takes itself; it reads the store (list, downloads) and commands the recorder
over the control plane. The recorder's ``status.recorder.`` reports arrive through
:meth:`RecordingControl.on_status` (the runtime's bus bridge calls it). Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from crosspose.bus.schema import recording_message
from crosspose.recording.take import Take, TakeStore, check_name


class RecordingConflictError(Exception):
    """A take is already recording (start) or the take is not recording (stop)."""


class RecorderUnavailableError(Exception):
    """The recorder stage is not running or did not answer in time."""


class RecordingFailedError(Exception):
    """The recorder could not start the take (message: its reason, e.g. disk full)."""


class RecordingControl:
    """Commands to the recorder and its latest report.

    Args:
        store: the takes folder (``recording.store``).
        send: publishes one ``control.recording.`` command (dict) on the control plane.
        alive_s: a recorder silent for longer is reported not running.
        confirm_s: how long start/stop wait for the recorder's confirmation.
    """

    def __init__(
        self,
        store: TakeStore,
        send: Callable[[dict[str, Any]], None],
        *,
        alive_s: float = 3.0,
        confirm_s: float = 5.0,
    ) -> None:
        self.store = store
        self.send = send
        self.alive_s = alive_s
        self.confirm_s = confirm_s
        self._status: dict[str, Any] | None = None
        self._status_ns = 0
        self._cond = threading.Condition()
        self._op = threading.Lock()  # one start/stop at a time

    def on_status(self, header: Mapping[str, Any]) -> None:
        """A ``status.recorder.`` report (from the bus bridge thread)."""
        with self._cond:
            self._status = dict(header)
            self._status_ns = time.monotonic_ns()
            self._cond.notify_all()

    def _alive(self) -> bool:
        return self._status is not None and (time.monotonic_ns() - self._status_ns) / 1e9 <= self.alive_s

    def recorder(self) -> dict[str, Any]:
        """The recorder as the API reports it: running, state, current take, last error, counters."""
        with self._cond:
            st = dict(self._status or {})
            alive = self._alive()
        return {
            "running": alive,
            "state": st.get("state", "unknown") if alive else "not running",
            "take": st.get("take") if alive else None,
            "last": st.get("last"),
            "error": st.get("error"),
            "counters": st.get("counters"),
        }

    def _wait(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        deadline = time.monotonic() + self.confirm_s
        with self._cond:
            while True:
                if self._status is not None and done(self._status):
                    return dict(self._status)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def start(
        self, name: str, metadata: Mapping[str, Any] | None = None, max_bytes: int | None = None
    ) -> Take:
        """Start a take; returns it once the recorder confirms.

        Raises:
            TakeError: bad name. RecordingConflictError: a take is recording. RecorderUnavailableError: no
            recorder, or no confirmation within ``confirm_s``. RecordingFailedError: the recorder refused.
        """
        check_name(name)
        with self._op:
            with self._cond:
                alive, st = self._alive(), dict(self._status or {})
            if not alive:
                raise RecorderUnavailableError("the recorder stage is not running (no report from it)")
            if st.get("state") == "recording":
                raise RecordingConflictError(f"take {st.get('take')!r} is recording; stop it first")
            take_id = self.store.new_id(name)
            self.send(recording_message("start", take_id, name=name, metadata=metadata, max_bytes=max_bytes))
            got = self._wait(lambda s: s.get("take") == take_id or (s.get("last") or {}).get("id") == take_id)
            if got is None:
                raise RecorderUnavailableError(
                    f"the recorder did not confirm take {take_id!r} within {self.confirm_s} s"
                )
            if got.get("take") != take_id:
                raise RecordingFailedError(
                    str((got.get("last") or {}).get("error") or "the recorder refused the take")
                )
            return self.store.get(take_id)

    def stop(self, take_id: str) -> Take:
        """Stop take ``take_id``; returns it once the recorder has closed it, or with state
        ``stopping`` when the recorder, behind the live stream, is still writing the sets emitted
        before the stop after ``confirm_s``.

        Raises:
            TakeError: no such take. RecordingConflictError: it is not recording. RecorderUnavailableError.
        """
        take = self.store.get(take_id)
        with self._op:
            with self._cond:
                alive, st = self._alive(), dict(self._status or {})
            if st.get("take") != take_id or st.get("state") != "recording":
                state = "stopping" if st.get("take") == take_id else take.manifest["state"]
                raise RecordingConflictError(f"take {take_id!r} is not recording (state {state})")
            if not alive:
                raise RecorderUnavailableError(
                    f"the recorder recording {take_id!r} has not reported for a while"
                )
            self.send(recording_message("stop", take_id))
            got = self._wait(lambda s: s.get("take") != take_id or s.get("state") == "stopping")
            if got is None:
                raise RecorderUnavailableError(
                    f"the recorder did not confirm the stop of {take_id!r} within {self.confirm_s} s"
                )
            # A recorder behind the live stream first writes the sets emitted before the stop.
            done = self._wait(lambda s: s.get("take") != take_id) is not None
        take = self.store.get(take_id)
        if not done:
            take.manifest["state"] = "stopping"
        return take
