"""The API's recording control against a scripted recorder (its status reports), without a service."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from crosspose.recording import TakeStore, TakeWriter
from crosspose.recording.control import (
    RecorderUnavailableError,
    RecordingConflictError,
    RecordingControl,
    RecordingFailedError,
)


class FakeRecorder:
    """Answers commands the way the recorder stage reports (``status.recorder.``), from another thread."""

    def __init__(self, store: TakeStore, refuse: str | None = None) -> None:
        self.store, self.refuse = store, refuse
        self.control: RecordingControl | None = None
        self.writer: TakeWriter | None = None
        self.commands: list[dict[str, Any]] = []

    def report(self, **status: Any) -> None:
        assert self.control is not None
        self.control.on_status({"stage": "recorder", "state": "idle", "take": None, "last": None, **status})

    def send(self, command: dict[str, Any]) -> None:
        self.commands.append(command)
        threading.Timer(0.05, self.handle, (command,)).start()

    def handle(self, c: dict[str, Any]) -> None:
        if c["action"] == "start" and self.refuse:
            self.report(last={"id": c["id"], "state": "failed", "error": self.refuse}, error=self.refuse)
        elif c["action"] == "start":
            self.writer = TakeWriter(
                self.store.path(c["id"]),
                take_id=c["id"],
                name=c["name"],
                metadata=c["metadata"],
                cameras=["a"],
            )
            self.report(state="recording", take=c["id"])
        elif c["action"] == "stop" and self.writer is not None:
            self.report(state="stopping", take=c["id"])
            self.writer.close()
            self.report(last={"id": c["id"], "state": "stopped", "error": None})


def make(tmp_path: Path, refuse: str | None = None) -> tuple[RecordingControl, FakeRecorder]:
    store = TakeStore(tmp_path)
    rec = FakeRecorder(store, refuse)
    control = RecordingControl(store, rec.send, confirm_s=2.0)
    rec.control = control
    return control, rec


def test_start_conflict_stop(tmp_path: Path) -> None:
    control, rec = make(tmp_path)
    with pytest.raises(RecorderUnavailableError, match="not running"):
        control.start("a")  # no report from a recorder yet
    rec.report()
    take = control.start("walk", {"k": 1})
    assert take.manifest["state"] == "recording"
    assert take.manifest["metadata"] == {"k": 1}
    assert control.recorder()["take"] == take.id
    with pytest.raises(RecordingConflictError, match="is recording"):
        control.start("second")
    stopped = control.stop(take.id)
    assert stopped.manifest["state"] == "stopped"
    with pytest.raises(RecordingConflictError, match="not recording"):
        control.stop(take.id)
    assert [c["action"] for c in rec.commands] == ["start", "stop"]


def test_a_refused_start_says_why(tmp_path: Path) -> None:
    control, rec = make(tmp_path, refuse="disk almost full")
    rec.report()
    with pytest.raises(RecordingFailedError, match="disk almost full"):
        control.start("x")
    assert control.recorder()["error"] == "disk almost full"


def test_no_confirmation_is_reported(tmp_path: Path) -> None:
    store = TakeStore(tmp_path)
    control = RecordingControl(store, lambda c: None, confirm_s=0.3)
    control.on_status({"stage": "recorder", "state": "idle", "take": None})
    with pytest.raises(RecorderUnavailableError, match="did not confirm"):
        control.start("x")
