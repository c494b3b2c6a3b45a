"""GET/PUT /api/v1/calibration over a real server: every format in and out, every refusal, restarts."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from api_service import CALIBRATION, DEMO_NAMES, TOKEN, Service, running_service, tree_digest

from crosspose.calibration import dumps_rig, load_rig, rig_files
from crosspose.calibration import store as store_module
from crosspose.geometry import CameraRig

DEMO = load_rig(CALIBRATION / "pose2sim_demo.json")


def easymocap_zip(rig: CameraRig) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in rig_files(rig, "easymocap").items():
            zf.writestr(name, data)
    return buf.getvalue()


# (upload bytes, format the store should detect) for every input format
UPLOADS: dict[str, Callable[[], bytes]] = {
    "crosspose": lambda: (CALIBRATION / "pose2sim_demo.json").read_bytes(),
    "anipose": lambda: (CALIBRATION / "pose2sim_demo.toml").read_bytes(),
    "opencv": lambda: dumps_rig(DEMO, "opencv"),
    "qualisys": lambda: dumps_rig(DEMO, "qualisys"),
    "easymocap": lambda: easymocap_zip(DEMO),
    "easymocap-one-document": lambda: dumps_rig(DEMO, "easymocap"),
}


@pytest.fixture
def authed(service: Service) -> Iterator[httpx.Client]:
    with service.client(TOKEN) as client:
        yield client


@pytest.mark.parametrize("kind", list(UPLOADS))
@pytest.mark.parametrize("flag", [False, True], ids=["detected", "format-flag"])
def test_put_every_input_format_round_trips(
    service: Service, authed: httpx.Client, kind: str, flag: bool
) -> None:
    fmt = kind.split("-")[0]
    r = authed.put("/api/v1/calibration", content=UPLOADS[kind](), params={"format": fmt} if flag else {})
    assert r.status_code == 200, r.text
    accepted = r.json()
    assert (accepted["version"], accepted["format"], accepted["cameras"]) == (1, fmt, DEMO_NAMES)
    assert accepted["source"].startswith("upload from 127.0.0.1")
    got = authed.get("/api/v1/calibration").json()
    assert accepted["new"] is True
    assert {k: got[k] for k in accepted if k not in ("warnings", "new")} == {
        k: v for k, v in accepted.items() if k not in ("warnings", "new")
    }
    assert load_rig(json.dumps(got["rig"]).encode()).allclose(DEMO, atol=1e-9)
    assert [c.version for c in service.changes] == [1]
    assert service.changes[0].rig.allclose(DEMO, atol=1e-9)


CONTENT_TYPES = {
    "crosspose": "application/json",
    "anipose": "application/toml",
    "opencv": "application/yaml",
    "qualisys": "application/xml",
    "easymocap": "application/zip",
}


def test_get_before_any_calibration_is_404(service: Service) -> None:
    with service.client() as client:
        for params in ({}, {"format": "anipose"}):
            r = client.get("/api/v1/calibration", params=params)
            assert r.status_code == 404
            assert r.json()["detail"] == "no calibration is active"
            assert "PUT /api/v1/calibration" in r.json()["problems"][0]


@pytest.mark.parametrize("fmt", list(CONTENT_TYPES))
def test_get_returns_the_file_in_every_format(service: Service, authed: httpx.Client, fmt: str) -> None:
    accepted = authed.put("/api/v1/calibration", content=UPLOADS["anipose"]()).json()
    with service.client() as reader:  # reads need no token
        r = reader.get("/api/v1/calibration", params={"format": fmt})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(CONTENT_TYPES[fmt])
    assert r.headers["x-calibration-version"] == "1"
    assert "attachment" in r.headers["content-disposition"]
    if fmt == "easymocap":
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            files = {name: zf.read(name) for name in zf.namelist()}
        assert set(files) == {"intri.yml", "extri.yml"}
        rig = load_rig(files)
    else:
        rig = load_rig(r.content, format=fmt)
    assert rig.names == DEMO_NAMES
    assert rig.allclose(DEMO, atol=1e-6)
    if fmt == "crosspose":
        assert hashlib.sha256(r.content).hexdigest() == accepted["sha256"]
    # what GET gives, PUT takes back
    again = authed.put("/api/v1/calibration", content=r.content)
    assert again.status_code == 200, again.text
    if fmt == "crosspose":  # the stored file itself: identical to the active calibration, nothing added
        assert (again.json()["version"], again.json()["new"]) == (1, False)
    else:
        assert again.json()["format"] == fmt


def _with_nan(data: bytes) -> bytes:
    doc = json.loads(data)
    doc["cameras"][0]["K"][0][2] = float("nan")
    return json.dumps(doc).encode()


def _three_cameras() -> bytes:
    return dumps_rig(CameraRig(list(DEMO)[:3], DEMO.metadata), "anipose")


BAD: dict[str, tuple[dict[str, object], int, str]] = {
    # kind: (request, status, a phrase the answer must contain)
    "malformed bytes": ({"content": b"\x89PNG\r\n\x1a\n not a calibration"}, 422, "could not recognise"),
    "empty body": ({"content": b""}, 422, "empty"),
    "wrong format flag": (
        {"content": (CALIBRATION / "pose2sim_demo.json").read_bytes(), "params": {"format": "qualisys"}},
        422,
        "looks like a crosspose calibration, not qualisys",
    ),
    "unknown format flag": ({"content": b"{}", "params": {"format": "bvh"}}, 422, "format"),
    "non-finite value": (
        {"content": _with_nan((CALIBRATION / "pose2sim_demo.json").read_bytes())},
        422,
        "NaN",
    ),
    "other cameras": ({"content": (CALIBRATION / "synthetic_studio_4cam.json").read_bytes()}, 409, "studio1"),
    "a camera missing": ({"content": _three_cameras()}, 409, "cam04"),
    "oversize": ({"content": b"x" * 70_000}, 413, "at most 65536 bytes"),
    "oversize without content-length": ({"content": iter([b"x" * 30_000] * 3)}, 413, "at most 65536 bytes"),
    "no token": ({"content": b"{}", "headers": {"Authorization": ""}}, 401, "Bearer"),
    "wrong token": (
        {"content": b"{}", "headers": {"Authorization": "Bearer guessed"}},
        401,
        "invalid API token",
    ),
    "wrong scheme": ({"content": b"{}", "headers": {"Authorization": f"Basic {TOKEN}"}}, 401, "Bearer"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_every_bad_upload_is_refused_and_changes_nothing(tmp_path: Path, kind: str) -> None:
    request, status, phrase = BAD[kind]
    with running_service(tmp_path / "store", max_upload_bytes=65536) as service:
        with service.client(TOKEN) as client:
            first = client.put("/api/v1/calibration", content=UPLOADS["crosspose"]())
            assert first.status_code == 200
            before = tree_digest(service.store_dir)
            r = client.put("/api/v1/calibration", **request)  # type: ignore[arg-type]
            assert r.status_code == status, r.text
            body = r.json()
            assert body["detail"]
            assert body["problems"]
            assert phrase in json.dumps(body)
            if status == 401:
                assert r.headers["www-authenticate"].startswith("Bearer")
            if status == 409:
                assert body["missing"] or body["extra"]
            assert tree_digest(service.store_dir) == before
            current = client.get("/api/v1/calibration").json()
            assert (current["version"], current["sha256"]) == (1, first.json()["sha256"])
        assert [c.version for c in service.changes] == [1]


def test_a_request_without_authorization_gets_a_bearer_challenge(service: Service) -> None:
    with service.client() as client:
        r = client.put("/api/v1/calibration", content=UPLOADS["crosspose"]())
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="crosspose"'
    assert r.json()["detail"] == "authentication required"
    assert service.state.calibration.active() is None


def test_wrong_camera_set_names_missing_and_extra(service: Service, authed: httpx.Client) -> None:
    r = authed.put("/api/v1/calibration", content=(CALIBRATION / "synthetic_studio_4cam.json").read_bytes())
    assert r.status_code == 409
    body = r.json()
    assert body["missing"] == DEMO_NAMES
    assert body["extra"] == ["studio1", "studio2", "studio3", "studio4"]


def test_writes_are_refused_without_a_configured_token(tmp_path: Path) -> None:
    with running_service(tmp_path / "store", token=None) as service:
        before = tree_digest(service.store_dir)
        with service.client("anything") as client:
            r = client.put("/api/v1/calibration", content=UPLOADS["crosspose"]())
            assert r.status_code == 403
            assert "CROSSPOSE_API_TOKEN" in r.json()["problems"][0]
            assert client.get("/api/v1/calibration/history").json() == {"active": None, "versions": []}
        assert tree_digest(service.store_dir) == before
        assert service.changes == []


def test_history_and_restart_keep_the_last_accepted(tmp_path: Path) -> None:
    store = tmp_path / "store"
    moved = CameraRig([c.replace(t=c.t + 0.05) for c in DEMO], DEMO.metadata)
    with running_service(store) as service, service.client(TOKEN) as client:
        client.put("/api/v1/calibration", content=UPLOADS["crosspose"](), params={"note": "morning"})
        last = client.put("/api/v1/calibration", content=dumps_rig(moved, "anipose")).json()
        refused = client.put("/api/v1/calibration", content=b"garbage")
        assert refused.status_code == 422
        history = client.get("/api/v1/calibration/history").json()
    assert history["active"] == 2
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert history["versions"][0]["source"].endswith(": morning")
    assert [v["format"] for v in history["versions"]] == ["crosspose", "anipose"]

    with running_service(store) as restarted, restarted.client() as client:
        got = client.get("/api/v1/calibration").json()
        assert (got["version"], got["sha256"]) == (2, last["sha256"])
        assert load_rig(json.dumps(got["rig"]).encode()).allclose(moved, atol=1e-9)
        assert client.get("/api/v1/calibration/history").json() == history


def test_an_identical_upload_answers_the_active_version_and_stores_nothing(tmp_path: Path) -> None:
    """Uploading the file in force again (a studio script at every start) used to add a version each
    time and make the pipeline swap to what it already ran."""
    moved = CameraRig([c.replace(t=c.t + 0.05) for c in DEMO], DEMO.metadata)
    with running_service(tmp_path / "store") as service, service.client(TOKEN) as client:
        first = client.put("/api/v1/calibration", content=UPLOADS["anipose"]())
        assert first.status_code == 200, first.text
        before = tree_digest(service.store_dir)
        again = client.put("/api/v1/calibration", content=UPLOADS["anipose"](), params={"note": "again"})
        assert again.status_code == 200, again.text
        assert tree_digest(service.store_dir) == before
        old, new = first.json(), again.json()
        same = ("version", "sha256", "source")  # the active version's record, unchanged
        assert [new[k] for k in same] == [old[k] for k in same]
        assert (old["new"], new["new"]) == (True, False)
        assert [v["version"] for v in client.get("/api/v1/calibration/history").json()["versions"]] == [1]
        assert [c.version for c in service.changes] == [1]  # the pipeline is not sent it again
        changed = client.put("/api/v1/calibration", content=dumps_rig(moved, "anipose"))
        assert (changed.json()["version"], changed.json()["new"]) == (2, True)
        back = client.put("/api/v1/calibration", content=UPLOADS["anipose"]())
        assert (back.json()["version"], back.json()["new"]) == (3, True)  # identical to an old one: new again
    assert [c.version for c in service.changes] == [1, 2, 3]


def test_a_failing_pipeline_notification_is_reported_not_hidden(
    service: Service, authed: httpx.Client
) -> None:
    def broken(_: object) -> None:
        raise RuntimeError("control plane down")

    service.state.on_calibration_change = broken
    r = authed.put("/api/v1/calibration", content=UPLOADS["crosspose"]())
    assert r.status_code == 200
    assert any("control plane down" in w for w in r.json()["warnings"])


def test_a_disk_failure_mid_write_keeps_the_previous_version(
    service: Service, authed: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = authed.put("/api/v1/calibration", content=UPLOADS["crosspose"]()).json()
    real_write = store_module._write_atomic
    written: list[Path] = []

    def disk_full_after_one_file(path: Path, data: bytes) -> None:
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        real_write(path, data)

    monkeypatch.setattr(store_module, "_write_atomic", disk_full_after_one_file)
    r = authed.put("/api/v1/calibration", content=UPLOADS["anipose"]())
    assert r.status_code == 500
    assert "No space left on device" in r.json()["problems"][0]
    assert authed.get("/api/v1/calibration").json()["sha256"] == first["sha256"]
    monkeypatch.setattr(store_module, "_write_atomic", real_write)
    again = authed.put("/api/v1/calibration", content=UPLOADS["anipose"]())
    assert again.status_code == 200
    assert again.json()["version"] == 2
    assert [c.version for c in service.changes] == [1, 2]
