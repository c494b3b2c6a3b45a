"""TRC files: round trip, OpenSim layout, Y-up as Pose2Sim writes it, and Pose2Sim's own demo output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crosspose.io.trc import ZUP_TO_YUP, Trc, TrcError, read_trc, write_trc


def _trc(units: str = "m") -> Trc:
    rng = np.random.default_rng(0)
    frames = rng.uniform(-2, 2, (7, 3, 3))
    frames[2, 1] = np.nan  # a missing marker
    return Trc(("a", "b", "c"), frames, 60.0, units)


@pytest.mark.parametrize("units", ["m", "mm"])
def test_round_trip(tmp_path: Path, units: str) -> None:
    trc = _trc(units)
    back = read_trc(write_trc(trc, tmp_path / "x.trc"))
    assert back.markers == trc.markers
    assert back.rate == 60.0
    assert back.units == units
    np.testing.assert_allclose(back.frames, trc.frames, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(back.times, trc.times)
    np.testing.assert_array_equal(back.frame_numbers, np.arange(1, 8))


def test_file_layout_is_opensim_and_y_up(tmp_path: Path) -> None:
    up = np.array([[[0.1, 0.2, 1.5]]])  # x, y, z (z up)
    path = write_trc(Trc(("head",), up, 30.0, "mm"), tmp_path / "up.trc")
    lines = path.read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["PathFileType", "4", "(X/Y/Z)"]
    assert lines[1].split("\t")[:5] == ["DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units"]
    assert lines[2].split("\t")[:5] == ["30", "30", "1", "1", "mm"]
    assert lines[3].split("\t") == ["Frame#", "Time", "head", "", ""]
    assert lines[4].split("\t") == ["", "", "X1", "Y1", "Z1"]
    x, y, z = (float(v) for v in lines[5].split("\t")[2:5])
    assert (x, y, z) == pytest.approx((200.0, 1500.0, 100.0))  # Y is up, millimetres
    assert np.linalg.det(ZUP_TO_YUP) == pytest.approx(1.0)  # a rotation, not a mirror


def test_missing_values_are_empty_cells(tmp_path: Path) -> None:
    path = write_trc(_trc(), tmp_path / "m.trc")
    row = path.read_text().splitlines()[5 + 2].split("\t")
    assert row[5:8] == ["", "", ""]


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.trc"
    bad.write_text("hello\n")
    with pytest.raises(TrcError, match="not a TRC file"):
        read_trc(bad)
    with pytest.raises(TrcError, match="cannot read"):
        read_trc(tmp_path / "absent.trc")
    lines = write_trc(_trc(), tmp_path / "u.trc").read_text().splitlines()
    lines[2] = lines[2].replace("\tm\t", "\tinches\t")
    bad.write_text("\n".join(lines))
    with pytest.raises(TrcError, match="units"):
        read_trc(bad)


@pytest.mark.network
def test_reads_pose2sim_demo_output() -> None:
    from crosspose import assets

    trc = read_trc(assets.extract("pose2sim-0.4.15", "Pose2Sim/Demo/opensim/Balancing_for_IK.trc"))
    assert trc.num_frames == 100
    assert len(trc.markers) == 21
    assert trc.units == "m"
    assert trc.rate == 60
    assert trc.markers[:3] == ("RHip", "RKnee", "RAnkle")
    assert "Neck" in trc.markers
    assert np.isfinite(trc.frames).all()
    # In our Z-up world the performer stands on the floor: head ~1.6-1.8 m above the ankles.
    height = np.median(trc.marker("Head")[:, 2] - trc.marker("RAnkle")[:, 2])
    assert 1.3 < height < 1.9
    # Balancing on one foot: the lower ankle stays near the floor.
    lower_ankle = np.minimum(trc.marker("RAnkle")[:, 2], trc.marker("LAnkle")[:, 2])
    assert 0.0 < np.median(lower_ankle) < 0.2
