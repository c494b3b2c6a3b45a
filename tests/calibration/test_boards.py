"""Board specs, detection in rendered and warped images, and the printable board at true scale."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from crosspose.calibration.boards import (
    ADAPTIVE_FLAGS,
    BoardError,
    BoardSpec,
    board_pdf,
    detect_board,
    parse_board,
    render_board,
    save_board,
)

DPI = 150.0


def test_parse_board_specs() -> None:
    assert parse_board("checkerboard:4x7:0.06") == BoardSpec("checkerboard", 4, 7, 0.06)
    b = parse_board("charuco:7x5:0.04:0.03:dict_4x4_50")
    assert (b.kind, b.cols, b.rows, b.marker, b.dictionary) == ("charuco", 7, 5, 0.03, "DICT_4X4_50")
    assert parse_board("charuco:7x5:0.04:0.03").dictionary == "DICT_5X5_100"
    assert parse_board(str(b)) == b


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("chess:4x7:0.06", "unknown kind"),
        ("checkerboard:4by7:0.06", "COLSxROWS"),
        ("checkerboard:4x7:60", "metres"),
        ("charuco:7x5:0.04:0.05", "smaller than the square"),
        ("charuco:7x5:0.04:0.03:DICT_NOPE", "unknown aruco dictionary"),
        ("charuco:20x20:0.04:0.03:DICT_4X4_50", "do not fit"),
        ("checkerboard:4x7", "expected"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(BoardError, match=says):
        parse_board(spec)


def _page(board: BoardSpec) -> np.ndarray:
    return cv2.copyMakeBorder(render_board(board, DPI), 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)


def _expected(board: BoardSpec) -> np.ndarray:
    """Corner pixels in :func:`_page`: the board frame's origin sits one square in (checkerboard) from the
    10 mm margin; pixel edges are at half-integers."""
    px = DPI / 0.0254
    offset = 0.01 + (board.square if board.kind == "checkerboard" else 0.0)
    return (board.object_points()[:, :2] + offset) * px + 40 - 0.5


@pytest.mark.parametrize("spec", ["checkerboard:4x7:0.03", "charuco:7x5:0.03:0.022"])
def test_rendered_board_is_detected_where_it_was_drawn(spec: str) -> None:
    board = parse_board(spec)
    view = detect_board(_page(board), board)
    assert view is not None
    assert len(view.ids) == board.num_corners
    np.testing.assert_allclose(view.pixels, _expected(board)[view.ids], atol=0.6)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_checkerboard_corner_zero_is_the_black_corner_whichever_way_it_is_seen(turns: int) -> None:
    board = parse_board("checkerboard:4x7:0.03")
    page = _page(board)
    view = detect_board(np.ascontiguousarray(np.rot90(page, turns)), board)
    assert view is not None
    h, w = page.shape
    x, y = _expected(board)[0]
    # np.rot90 turns counter-clockwise: a pixel (x, y) goes to (y, w-1-x) once, (w-1-x, h-1-y) twice ...
    where = {1: (y, w - 1 - x), 2: (w - 1 - x, h - 1 - y), 3: (h - 1 - y, x)}[turns]
    np.testing.assert_allclose(view.pixels[0], where, atol=0.6)


def test_board_seen_in_perspective_is_found_to_a_fraction_of_a_pixel() -> None:
    board = parse_board("charuco:7x5:0.04:0.03")
    page = render_board(board, DPI)
    px = DPI / 0.0254
    K = np.array([[900.0, 0, 640], [0, 900, 360], [0, 0, 1]])
    R = cv2.Rodrigues(np.array([0.4, -0.3, 0.1]))[0]
    t = np.array([-0.15, -0.1, 0.8])
    # page pixel → board metres (board frame = page minus margin) → image
    A = np.array([[1 / px, 0, -0.01 + 0.5 / px], [0, 1 / px, -0.01 + 0.5 / px], [0, 0, 1]])
    H = K @ np.column_stack([R[:, 0], R[:, 1], t]) @ A
    blurred = cv2.GaussianBlur(page, (0, 0), 2.0)  # the page is ~4x finer than the image: no aliasing
    image = cv2.warpPerspective(blurred, H, (1280, 720), flags=cv2.INTER_LINEAR, borderValue=255)
    view = detect_board(image, board)
    assert view is not None
    assert len(view.ids) >= 20
    truth, _ = cv2.projectPoints(board.object_points()[view.ids], cv2.Rodrigues(R)[0], t, K, None)
    err = np.linalg.norm(view.pixels - truth.reshape(-1, 2), axis=1)
    assert np.median(err) < 0.3


def test_no_board_no_detection() -> None:
    board = parse_board("checkerboard:4x7:0.03")
    assert detect_board(np.full((480, 640), 128, np.uint8), board) is None


def test_pdf_is_true_scale_and_png_carries_its_dpi(tmp_path: Path) -> None:
    board = parse_board("checkerboard:4x7:0.06")
    pdf = board_pdf(board)
    assert pdf.startswith(b"%PDF-1.4")
    assert pdf.rstrip().endswith(b"%%EOF")
    box = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    assert box is not None
    w_mm, h_mm = (float(v) / 72 * 25.4 for v in box.groups())
    assert (w_mm, h_mm) == pytest.approx((300 + 20, 480 + 20), abs=0.01)  # 5 x 8 squares + 10 mm margins
    stream = zlib.decompress(pdf.split(b"stream\n", 1)[1].split(b"\nendstream", 1)[0]).decode()
    squares = [line for line in stream.splitlines() if line.endswith("re f")]
    assert len(squares) == 20  # half of 5 x 8
    side = float(squares[0].split()[2]) / 72 * 25.4
    assert side == pytest.approx(60.0, abs=1e-3)

    png = save_board(board, tmp_path / "board.png", dpi=100).read_bytes()
    i = png.index(b"pHYs")
    ppm_x, ppm_y, unit = struct.unpack(">IIB", png[i + 4:i + 13])
    assert (ppm_x, ppm_y, unit) == (round(100 / 0.0254),) * 2 + (1,)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (round(0.5 * 100 / 0.0254), round(0.32 * 100 / 0.0254))
    with pytest.raises(BoardError, match=r"\.pdf"):
        save_board(board, tmp_path / "board.svg")


def _checkerboard_in_perspective(size: tuple[int, int]) -> tuple[BoardSpec, np.ndarray, np.ndarray]:
    """A 4x7 checkerboard seen slanted in a ``size`` (w, h) frame: (board, image, true corner pixels)."""
    board = parse_board("checkerboard:4x7:0.03")
    page = render_board(board, DPI)
    px = DPI / 0.0254
    w, h = size
    K = np.array([[1.4 * w, 0, w / 2], [0, 1.4 * w, h / 2], [0, 0, 1]])
    R = cv2.Rodrigues(np.array([0.3, -0.25, 0.05]))[0]
    t = np.array([-0.1, -0.08, 1.2])
    A = np.array([[1 / px, 0, -0.01 - board.square + 0.5 / px], [0, 1 / px, -0.01 - board.square + 0.5 / px],
                  [0, 0, 1]])
    H = K @ np.column_stack([R[:, 0], R[:, 1], t]) @ A
    blurred = cv2.GaussianBlur(page, (0, 0), 2.0)
    image = cv2.warpPerspective(blurred, H, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    truth, _ = cv2.projectPoints(board.object_points(), cv2.Rodrigues(R)[0], t, K, None)
    return board, image, truth.reshape(-1, 2)


def test_a_board_only_the_sector_detector_finds_in_a_full_hd_frame_is_placed_at_full_size(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A large frame where the classic detector finds nothing (made so: it is what blur or glare does to it)
    is searched by the sector detector at half size, and the board it locates there is placed again at
    full size: the corners are as accurate as the classic path's."""
    import crosspose.calibration.boards as boards

    board, image, truth = _checkerboard_in_perspective((1920, 1080))
    classic = cv2.findChessboardCorners
    monkeypatch.setattr(boards.cv2, "findChessboardCorners", lambda *a, **k: (False, None))
    searched: list[tuple[int, ...]] = []
    sector = boards._sector_detector
    monkeypatch.setattr(boards, "_sector_detector", lambda g, b: searched.append(g.shape) or sector(g, b))
    view = detect_board(image, board)
    assert view is not None
    assert searched[0] == (540, 960)  # the whole frame searched at half size, then only the board's box
    assert len(searched) == 2
    assert searched[1][0] * searched[1][1] < 1080 * 1920 / 4  # then the board's box at full size
    err = np.linalg.norm(view.pixels - truth[view.ids], axis=1)
    assert np.median(err) < 0.3, err
    monkeypatch.setattr(boards.cv2, "findChessboardCorners", classic)
    assert detect_board(np.full((1080, 1920), 128, np.uint8), board) is None


def test_corner_zero_is_the_black_corner_when_the_other_end_is_cut_off_by_the_frame() -> None:
    """The outer square beyond the white end cut off by the frame's edge (as in the Pose2Sim studio's
    ``cam03_05_int.jpg``): corner 0 is still the black corner, whichever way the detector returned them."""
    board = parse_board("checkerboard:4x7:0.03")
    expected = _expected(board)
    spacing = np.linalg.norm(expected[1] - expected[0])
    page = np.ascontiguousarray(_page(board)[:, : int(expected[-1, 0] + 0.2 * spacing)])
    h, w = page.shape
    x, y = expected[0]
    for turns, where in enumerate([(x, y), (y, w - 1 - x), (w - 1 - x, h - 1 - y), (h - 1 - y, x)]):
        view = detect_board(np.ascontiguousarray(np.rot90(page, turns)), board)
        assert view is not None
        np.testing.assert_allclose(view.pixels[0], where, atol=0.6)


STUDIO = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson")
STUDIO_BOARD = "checkerboard:4x7:0.06"


def _studio_board_photo(name: str) -> np.ndarray:
    from crosspose import assets

    camera = name.split("_")[0]
    path = assets.extract(STUDIO[0], f"{STUDIO[1]}/calibration/intrinsics/int_{camera}_img/{name}")
    photo = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert photo is not None, path
    return photo


def _full_size_classic_corners(gray: np.ndarray, board: BoardSpec) -> np.ndarray:
    """The corners as detection always gave them: the classic detector with adaptive thresholds on the whole
    full-size frame, placed in the board's box, corner 0 at the black corner."""
    import crosspose.calibration.boards as boards

    found, rough = cv2.findChessboardCorners(gray, board.corner_grid, flags=ADAPTIVE_FLAGS)
    assert found
    cv2.setRNGSeed(0)
    placed = boards._place_corners(gray, rough.reshape(-1, 2).astype(float), board)
    assert placed is not None
    return boards._black_corner_first(gray, placed, board.cols)


@pytest.mark.network
@pytest.mark.parametrize("shrink", [1.0, 0.22])
def test_a_studio_board_photo_gives_the_corners_of_the_full_size_classic_detector(shrink: float) -> None:
    """A real 1088x1920 photo of the studio's board (``cam02_02_int.jpg``), whole, and shrunk to 22 % on a
    gray frame (a small board: too small for the classic detector at half size, seen by its global
    thresholds at full size): the quick look at the frame changes nothing in the corners."""
    board = parse_board(STUDIO_BOARD)
    photo = _studio_board_photo("cam02_02_int.jpg")
    if shrink != 1.0:
        small = cv2.resize(photo, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        photo = np.full_like(photo, 128)
        photo[600 : 600 + small.shape[0], 400 : 400 + small.shape[1]] = small
        half = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        assert not cv2.findChessboardCorners(half, board.corner_grid, flags=ADAPTIVE_FLAGS)[0]
    cv2.setRNGSeed(0)  # the sector detector draws from OpenCV's RNG
    view = detect_board(photo, board)
    assert view is not None
    np.testing.assert_array_equal(view.pixels, _full_size_classic_corners(photo, board))


@pytest.mark.network
def test_studio_frames_without_a_board_are_rejected() -> None:
    """Real full HD frames of the studio (a scene image, a video frame) with no board in view: no board."""
    from crosspose import assets
    from crosspose.calibration.boards import SECTOR_SEARCH_MAX_SIDE

    board = parse_board(STUDIO_BOARD)
    scene = assets.extract(STUDIO[0], f"{STUDIO[1]}/calibration/extrinsics/cam01_ext.png")
    frames = [cv2.imread(str(scene), cv2.IMREAD_GRAYSCALE)]
    capture = cv2.VideoCapture(str(assets.extract(STUDIO[0], f"{STUDIO[1]}/videos/cam02.mp4")))
    ok, frame = capture.read()
    capture.release()
    assert ok
    frames.append(frame)
    for frame in frames:
        assert max(frame.shape) > SECTOR_SEARCH_MAX_SIDE  # the large frames' quick look
        assert detect_board(frame, board) is None
