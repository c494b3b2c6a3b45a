"""Camera previews and the skeleton layout, fed to the state directly and read over a real server."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from api_service import DEMO_NAMES, Service

from crosspose.api import create_app
from crosspose.api.previews import PreviewBoard
from crosspose.api.testing import serve_in_thread
from crosspose.runtime.api_stage import build_state
from crosspose.runtime.demo import synthetic_config
from crosspose.skeleton import BODY32, H36M17, Skeleton


def jpeg(width: int = 160, height: int = 90, value: int = 128) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((height, width, 3), value, np.uint8))
    assert ok
    return buf.tobytes()


def meta(seq: int, **extra: object) -> dict[str, object]:
    return {
        "v": 1,
        "type": "preview",
        "camera": "cam01",
        "seq": seq,
        "t_capture_ns": 1_000 + seq,
        "width": 160,
        "height": 90,
        "scale": 0.25,
        "joints2d": [[10.0 + j, 20.0, 0.9] for j in range(H36M17.num_joints)],
        "crop": [[1, 2], [50, 2], [50, 51], [1, 51]],
        **extra,
    }


def test_preview_routes_404_until_the_first_preview_then_serve_the_latest(service: Service) -> None:
    with service.client() as client:
        r = client.get("/api/v1/cameras/cam01/preview.jpg")
        assert r.status_code == 404
        assert r.json()["detail"] == "camera 'cam01' has no preview yet"
        assert client.get("/api/v1/cameras/cam01/preview").status_code == 404

        first, second = jpeg(value=10), jpeg(value=200)
        assert service.state.previews.update("cam01", first, meta(7))
        assert service.state.previews.update("cam01", second, meta(8, joints2d=None, crop=None))

        r = client.get("/api/v1/cameras/cam01/preview.jpg")
        assert r.status_code == 200
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["x-preview-seq"] == "8"
        assert r.content == second
        image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (90, 160, 3)

        # a kept earlier preview by its seq (what the metadata named a moment ago)
        assert client.get("/api/v1/cameras/cam01/preview.jpg", params={"seq": 7}).content == first
        gone = client.get("/api/v1/cameras/cam01/preview.jpg", params={"seq": 3})
        assert gone.status_code == 404
        assert "frame set 3" in gone.json()["detail"]

        body = client.get("/api/v1/cameras/cam01/preview").json()
        assert body["camera"] == "cam01"
        assert (body["seq"], body["width"], body["height"], body["scale"]) == (8, 160, 90, 0.25)
        assert body["joints2d"] is None
        assert body["crop"] is None
        assert body["image"] == "/api/v1/cameras/cam01/preview.jpg?seq=8"
        assert body["age_s"] >= 0
        assert "v" not in body  # only the documented keys
        assert "type" not in body

        service.state.previews.update("cam01", first, meta(9))
        body = client.get("/api/v1/cameras/cam01/preview").json()
        assert len(body["joints2d"]) == H36M17.num_joints
        assert body["joints2d"][3] == [13.0, 20.0, 0.9]
        assert body["crop"] == [[1, 2], [50, 2], [50, 51], [1, 51]]

        # other cameras are independent
        assert client.get("/api/v1/cameras/cam02/preview.jpg").status_code == 404


def test_unknown_camera_is_a_404_naming_the_configured_ones(service: Service) -> None:
    with service.client() as client:
        r = client.get("/api/v1/cameras/nosuch/preview.jpg")
    assert r.status_code == 404
    body = r.json()
    assert body["detail"] == "unknown camera 'nosuch'"
    assert body["problems"] == [f"configured cameras: {', '.join(DEMO_NAMES)}"]


def test_board_ignores_unknown_cameras_and_non_jpeg_data_and_cleans_meta() -> None:
    board = PreviewBoard(["a", "b"], keep=2)
    assert not board.update("zzz", jpeg(), meta(1))
    assert not board.update("a", b"\x89PNG not a jpeg", meta(1))
    assert (board.unknown_updates, board.rejected, board.received) == (1, 1, 0)
    assert board.latest("a") is None
    with pytest.raises(KeyError):
        board.latest("zzz")
    bad = {"seq": "7", "width": float("nan"), "scale": True, "joints2d": [[1, 2]], "crop": [[1, 2]] * 3}
    assert board.update("a", jpeg(), bad)
    got = board.latest("a")
    assert got is not None
    assert got.meta == {
        "seq": None, "t_capture_ns": None, "width": None, "height": None,
        "scale": None, "joints2d": None, "crop": None,
    }  # fmt: skip
    for seq in (1, 2, 3):
        board.update("a", jpeg(), meta(seq, joints2d=[[float("inf"), 1, 0.5]]))
    assert board.latest("a", 1) is None  # only the last 2 are kept
    kept = board.latest("a", 2)
    assert kept is not None
    assert kept.meta["joints2d"] == [[None, 1.0, 0.5]]
    with pytest.raises(ValueError, match="keep"):
        PreviewBoard(["a"], keep=0)


def test_board_is_safe_from_many_threads() -> None:
    board = PreviewBoard(DEMO_NAMES)
    data = jpeg()

    def feed(camera: str) -> None:
        for seq in range(200):
            board.update(camera, data, meta(seq))

    threads = [threading.Thread(target=feed, args=(c,)) for c in DEMO_NAMES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert board.received == 200 * len(DEMO_NAMES)
    for c in DEMO_NAMES:
        latest = board.latest(c)
        assert latest is not None
        assert latest.meta["seq"] == 199


def test_skeleton_layout_is_the_solver_s(service: Service) -> None:
    with service.client() as client:
        body = client.get("/api/v1/skeleton").json()
    assert body["name"] == "crosspose-body32"  # the service's default: the full body
    assert body["joints"] == list(BODY32.joints)
    assert body["parents"] == list(BODY32.parents)
    assert [tuple(b) for b in body["bones"]] == BODY32.bones
    assert body["sides"][BODY32.index("l_wrist")] == "left"
    assert body["sides"][BODY32.index("r_knee")] == "right"
    assert body["sides"][BODY32.index("pelvis")] == "center"
    assert body["sides"][BODY32.index("r_big_toe")] == "right"
    assert body["sides"][BODY32.index("nose")] == "center"


def test_skeleton_layout_is_the_one_the_service_publishes(tmp_path: Path, toes_skeleton: Skeleton) -> None:
    """The route describes the solver's layout (config ``solver.skeleton``), not a constant."""
    config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=2, frames=10)
    solver = config.solver.model_copy(update={"skeleton": toes_skeleton.name})
    state = build_state(config.model_copy(update={"solver": solver}))
    assert state.skeleton is toes_skeleton
    with serve_in_thread(create_app(state)) as base_url:
        body = httpx.get(base_url + "/api/v1/skeleton", timeout=10).json()
    assert body["name"] == "test-h36m17-toes"
    assert body["joints"] == list(toes_skeleton.joints)
    assert body["parents"] == list(toes_skeleton.parents)
    assert body["sides"][toes_skeleton.index("l_toe")] == "left"
    assert body["sides"][toes_skeleton.index("nose")] == "center"
    unknown = config.solver.model_copy(update={"skeleton": "crosspose-body99"})
    with pytest.raises(ValueError, match=r"solver\.skeleton: unknown skeleton 'crosspose-body99'"):
        build_state(config.model_copy(update={"solver": unknown}))
