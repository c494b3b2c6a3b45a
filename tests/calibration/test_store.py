"""The calibration store: versions on disk, validation before any write, crash safety, restart, seeding."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import threading
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crosspose.calibration import CalibrationError, dumps_rig, load_rig, rig_files
from crosspose.calibration.store import CalibrationStore, CameraSetError
from crosspose.geometry import CameraRig

ROOT = Path(__file__).resolve().parents[2]
DEMO_JSON = ROOT / "calibration" / "pose2sim_demo.json"
DEMO_TOML = ROOT / "calibration" / "pose2sim_demo.toml"
STUDIO_JSON = ROOT / "calibration" / "synthetic_studio_4cam.json"
DEMO_NAMES = ["cam01", "cam02", "cam03", "cam04"]


def tree_digest(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (the store, byte for byte)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def easymocap_zip(rig: CameraRig) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in rig_files(rig, "easymocap").items():
            zf.writestr(f"calib/{name}", data)
    return buf.getvalue()


@pytest.fixture
def demo_rig() -> CameraRig:
    return load_rig(DEMO_JSON)


def test_put_stores_a_version_and_makes_it_active(tmp_path: Path, demo_rig: CameraRig) -> None:
    store = CalibrationStore(tmp_path, DEMO_NAMES)
    assert store.active() is None
    assert store.history() == []
    upload = DEMO_TOML.read_bytes()
    active = store.put(upload, None, source="test")
    assert (active.version, active.format, active.source) == (1, "anipose", "test")
    assert active.rig.names == DEMO_NAMES
    assert active.rig.allclose(demo_rig, atol=1e-9)
    canonical = (tmp_path / "v000001.json").read_bytes()
    assert active.sha256 == hashlib.sha256(canonical).hexdigest() == store.history()[0].sha256
    assert store.canonical_bytes(1) == canonical
    assert store.upload_bytes(1) == upload
    assert json.loads((tmp_path / "current").read_text()) == {"version": 1}
    meta = json.loads((tmp_path / "v000001.meta.json").read_text())
    assert meta["cameras"] == DEMO_NAMES
    assert meta["format"] == "anipose"
    # the stored JSON is a crosspose calibration of the same rig
    assert load_rig(canonical).allclose(demo_rig, atol=1e-9)

    second = store.put(dumps_rig(demo_rig, "qualisys"), "qualisys")
    assert second.version == 2
    assert [v.version for v in store.history()] == [1, 2]
    assert store.active() == second


def test_an_upload_identical_to_the_active_rig_adds_no_version(tmp_path: Path, demo_rig: CameraRig) -> None:
    store = CalibrationStore(tmp_path, DEMO_NAMES)
    first = store.put(DEMO_JSON.read_bytes(), source="first")
    before = tree_digest(tmp_path)
    again = store.put(DEMO_JSON.read_bytes(), source="again")
    assert again.record == first.record
    assert tree_digest(tmp_path) == before
    assert [v.version for v in store.history()] == [1]
    reopened = CalibrationStore(tmp_path, DEMO_NAMES).active()
    assert reopened is not None
    assert (reopened.version, reopened.sha256, reopened.source) == (1, first.sha256, "first")
    moved = CameraRig([c.replace(t=c.t + 1e-6) for c in demo_rig], demo_rig.metadata)
    assert store.put(dumps_rig(moved, "crosspose")).version == 2  # a micrometre is a new calibration


def test_restart_loads_the_last_accepted_version(tmp_path: Path, demo_rig: CameraRig) -> None:
    store = CalibrationStore(tmp_path, DEMO_NAMES)
    store.put(DEMO_JSON.read_bytes())
    moved = CameraRig([c.replace(t=c.t + 0.01) for c in demo_rig], demo_rig.metadata)
    last = store.put(dumps_rig(moved, "opencv"))
    with pytest.raises(CalibrationError):
        store.put(b"not a calibration")
    reopened = CalibrationStore(tmp_path, DEMO_NAMES)
    active = reopened.active()
    assert active is not None
    assert (active.version, active.sha256, active.format) == (2, last.sha256, "opencv")
    assert active.rig.allclose(moved, atol=1e-9)
    assert reopened.history() == store.history()


def _non_finite(rig: CameraRig) -> bytes:
    doc = json.loads(dumps_rig(rig, "crosspose"))
    doc["cameras"][1]["t"][0] = float("nan")
    return json.dumps(doc).encode()


def _not_orthonormal(rig: CameraRig) -> bytes:
    doc = json.loads(dumps_rig(rig, "crosspose"))
    doc["cameras"][0]["R"][0] = [2.0, 0.0, 0.0]
    return json.dumps(doc).encode()


def _negative_focal(rig: CameraRig) -> bytes:
    doc = json.loads(dumps_rig(rig, "crosspose"))
    doc["cameras"][2]["K"][0][0] = -1000.0
    return json.dumps(doc).encode()


def _millimetres_declared_metres(rig: CameraRig) -> bytes:
    doc = json.loads(dumps_rig(rig, "crosspose"))
    for cam in doc["cameras"]:
        cam["t"] = [v * 1000 for v in cam["t"]]
    return json.dumps(doc).encode()


BAD_UPLOADS: dict[str, tuple[Callable[[CameraRig], bytes], str | None, str]] = {
    "malformed bytes": (lambda rig: b"\x00\xff garbage {", None, "could not recognise"),
    "empty": (lambda rig: b"  \n", None, "empty"),
    "truncated json": (lambda rig: dumps_rig(rig, "crosspose")[:200], None, "could not recognise|JSON"),
    "wrong format flag": (lambda rig: dumps_rig(rig, "crosspose"), "anipose", "TOML|toml"),
    "unknown format flag": (lambda rig: dumps_rig(rig, "crosspose"), "bvh", "unknown calibration format"),
    "non-finite value": (_non_finite, None, "NaN or infinite"),
    "rotation not orthonormal": (_not_orthonormal, None, "orthonormal"),
    "negative focal length": (_negative_focal, None, "must be positive"),
    "millimetres said to be metres": (_millimetres_declared_metres, None, "millimetres"),
    "zip without extri": (
        lambda rig: _zip({"intri.yml": rig_files(rig, "easymocap")["intri.yml"]}),
        None,
        "extri.yml",
    ),
    "zip for another format": (lambda rig: easymocap_zip(rig), "opencv", "only valid for the easymocap"),
    "corrupt zip": (lambda rig: b"PK\x03\x04" + b"\x00" * 64, None, "zip"),
}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("kind", list(BAD_UPLOADS))
def test_a_rejected_upload_leaves_the_store_byte_for_byte_unchanged(
    tmp_path: Path, demo_rig: CameraRig, kind: str
) -> None:
    store = CalibrationStore(tmp_path, DEMO_NAMES)
    first = store.put(DEMO_JSON.read_bytes())
    before = tree_digest(tmp_path)
    make, fmt, reason = BAD_UPLOADS[kind]
    with pytest.raises(CalibrationError, match=reason) as info:
        store.put(make(demo_rig), fmt)
    assert info.value.problems
    assert tree_digest(tmp_path) == before
    assert store.active() == first
    assert len(store.history()) == 1


def test_a_wrong_camera_set_names_missing_and_extra_cameras(tmp_path: Path, demo_rig: CameraRig) -> None:
    store = CalibrationStore(tmp_path, DEMO_NAMES)
    before = tree_digest(tmp_path)
    with pytest.raises(CameraSetError) as info:
        store.put(STUDIO_JSON.read_bytes())
    assert info.value.missing == DEMO_NAMES
    assert info.value.extra == ["studio1", "studio2", "studio3", "studio4"]
    assert "studio1" in str(info.value)
    assert "cam01" in str(info.value)
    three = CameraRig(list(demo_rig)[:3], demo_rig.metadata)
    with pytest.raises(CameraSetError) as info:
        store.put(dumps_rig(three, "anipose"))
    assert (info.value.missing, info.value.extra) == (["cam04"], [])
    assert tree_digest(tmp_path) == before
    assert store.active() is None


def test_easymocap_zip_upload_round_trips(tmp_path: Path, demo_rig: CameraRig) -> None:
    store = CalibrationStore(tmp_path, DEMO_NAMES)
    active = store.put(easymocap_zip(demo_rig))
    assert active.format == "easymocap"
    assert active.rig.allclose(demo_rig, atol=1e-9)


def _crash_in_child(root: Path, data: bytes, fail_at: int, which: str) -> int:
    """Fork; in the child, die (``os._exit``, no cleanup) at the ``fail_at``-th ``which`` call of a put."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a multi-threaded test process
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            store = CalibrationStore(root, DEMO_NAMES)
            real = getattr(os, which)
            calls = [0]

            def dying(*args: Any) -> Any:
                calls[0] += 1
                if calls[0] == fail_at:
                    os._exit(17)
                return real(*args)

            setattr(os, which, dying)
            store.put(data, None)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# A put makes 4 files: each is written, fsynced (file, then folder) and renamed.
@pytest.mark.parametrize(
    ("which", "fail_at"), [("replace", n) for n in range(1, 5)] + [("fsync", n) for n in (1, 4, 7)]
)
def test_a_process_killed_mid_write_leaves_the_last_accepted_version_active(
    tmp_path: Path, demo_rig: CameraRig, which: str, fail_at: int
) -> None:
    store = CalibrationStore(tmp_path, DEMO_NAMES)
    first = store.put(DEMO_JSON.read_bytes())
    moved = CameraRig([c.replace(t=c.t + 0.02) for c in demo_rig], demo_rig.metadata)
    assert _crash_in_child(tmp_path, dumps_rig(moved, "anipose"), fail_at, which) == 17

    reopened = CalibrationStore(tmp_path, DEMO_NAMES)
    active = reopened.active()
    assert active is not None
    assert (active.version, active.sha256) == (1, first.sha256)
    assert [v.version for v in reopened.history()] == [1]
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == [".lock", "current", "v000001.json", "v000001.meta.json", "v000001.upload"]
    again = reopened.put(dumps_rig(moved, "anipose"))
    assert again.version == 2
    assert again.rig.allclose(moved, atol=1e-9)


def test_a_process_killed_after_the_pointer_moved_keeps_the_new_version(
    tmp_path: Path, demo_rig: CameraRig
) -> None:
    store = CalibrationStore(tmp_path, DEMO_NAMES)
    store.put(DEMO_JSON.read_bytes())
    # the 5th replace never happens: the 4th (current) already made version 2 the accepted one
    assert _crash_in_child(tmp_path, DEMO_TOML.read_bytes(), 5, "replace") == 0
    active = CalibrationStore(tmp_path, DEMO_NAMES).active()
    assert active is not None
    assert active.version == 2


def test_seed_imports_only_into_an_empty_store(tmp_path: Path, demo_rig: CameraRig) -> None:
    store = CalibrationStore(tmp_path / "store", DEMO_NAMES)
    seeded = store.seed(DEMO_TOML)
    assert seeded is not None
    assert seeded.version == 1
    assert seeded.source == f"seed: {DEMO_TOML}"
    assert store.seed(DEMO_JSON) is None
    assert len(store.history()) == 1
    folder = tmp_path / "emc"
    folder.mkdir()
    for name, data in rig_files(demo_rig, "easymocap").items():
        (folder / name).write_bytes(data)
    other = CalibrationStore(tmp_path / "other", DEMO_NAMES)
    from_folder = other.seed(folder)
    assert from_folder is not None
    assert from_folder.format == "easymocap"
    assert from_folder.rig.allclose(demo_rig, atol=1e-9)
    with pytest.raises(CalibrationError, match=r"not found|cannot read"):
        CalibrationStore(tmp_path / "third", DEMO_NAMES).seed(tmp_path / "missing.json")


def test_a_stored_version_for_other_cameras_is_not_put_in_force(tmp_path: Path) -> None:
    CalibrationStore(tmp_path, DEMO_NAMES).put(DEMO_JSON.read_bytes())
    reconfigured = CalibrationStore(tmp_path, ["studio1", "studio2", "studio3", "studio4"])
    assert reconfigured.active() is None
    assert reconfigured.stale is not None
    assert "cam01" in reconfigured.stale
    seeded = reconfigured.seed(STUDIO_JSON)
    assert seeded is not None
    assert seeded.version == 2
    assert reconfigured.stale is None


def test_a_hand_edited_store_is_refused_not_repaired(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path, DEMO_NAMES)
    store.put(DEMO_JSON.read_bytes())
    store.put(DEMO_TOML.read_bytes())
    (tmp_path / "current").unlink()  # versions 1 and 2 exist but nothing says which is active
    before = tree_digest(tmp_path)
    with pytest.raises(CalibrationError, match="changed by hand"):
        CalibrationStore(tmp_path, DEMO_NAMES)
    assert tree_digest(tmp_path) == before


def test_two_store_handles_on_one_folder_never_clash(tmp_path: Path, demo_rig: CameraRig) -> None:
    """The API and the inference stage open the same folder; writes through either stay consistent."""
    a = CalibrationStore(tmp_path, DEMO_NAMES)
    b = CalibrationStore(tmp_path, DEMO_NAMES)
    rigs = [CameraRig([c.replace(t=c.t + 0.01 * i) for c in demo_rig], demo_rig.metadata) for i in range(8)]
    errors: list[BaseException] = []

    def upload(store: CalibrationStore, mine: list[CameraRig]) -> None:
        try:
            for rig in mine:
                store.put(dumps_rig(rig, "crosspose"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(s, rigs[i::2])) for i, s in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    final = CalibrationStore(tmp_path, DEMO_NAMES)
    assert [v.version for v in final.history()] == list(range(1, 9))
    assert len({v.sha256 for v in final.history()}) == 8
    active = final.active()
    assert active is not None
    assert active.version == 8
    assert b.seed(DEMO_JSON) is None  # seeding sees the versions the other handle wrote


def test_a_bad_initial_file_is_reported_and_the_store_stays_empty(tmp_path: Path, demo_rig: CameraRig
                                                                  ) -> None:
    """A missing file or one with other cameras: problems named, no version, nothing raised (the service
    then runs without a calibration and says so instead of crash-looping)."""
    store = CalibrationStore(tmp_path / "store", expected_names=demo_rig.names)
    store.open()
    missing = store.try_seed(tmp_path / "nope.toml")
    assert len(missing) == 1
    assert "nope.toml" in missing[0]
    assert "cannot read" in missing[0]
    renamed = CameraRig([dataclasses.replace(c, name=f"x{i}") for i, c in enumerate(demo_rig)])
    other = tmp_path / "other.json"
    other.write_bytes(dumps_rig(renamed, "crosspose"))
    problems = store.try_seed(other)
    assert problems
    assert all("other.json" in p for p in problems)
    assert any("x0" in p for p in problems)
    assert store.active() is None
    good = tmp_path / "good.json"
    good.write_bytes(dumps_rig(demo_rig, "crosspose"))
    assert store.try_seed(good) == []
    active = store.active()
    assert active is not None
    assert active.version == 1
