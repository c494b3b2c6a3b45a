"""Our TRC files read by OpenSim itself (the `opensim` 4.6 wheel from PyPI, dev extra): markers,
frames, rate, units and values as written, missing values as NaN, the same reading as Pose2Sim's file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crosspose.io.trc import ZUP_TO_YUP, Trc, write_trc
from crosspose.skeleton import H36M17

opensim = pytest.importorskip("opensim", reason="OpenSim's Python wheel (pip install opensim) is missing")


def _table(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, str]]:
    """OpenSim's own reading of a TRC: labels, times (N,), values (N, M, 3), and header metadata."""
    table = opensim.TimeSeriesTableVec3(str(path))
    labels = list(table.getColumnLabels())
    times = np.array(list(table.getIndependentColumn()))
    values = np.array([[[table.getRowAtIndex(i)[k][a] for a in range(3)] for k in range(len(labels))]
                       for i in range(table.getNumRows())])  # fmt: skip
    meta = table.getTableMetaDataKeys()
    info = {key: table.getTableMetaDataAsString(key) for key in meta}
    return labels, times, values, info


@pytest.mark.parametrize("units", ["m", "mm"])
def test_opensim_reads_our_trc(tmp_path: Path, units: str) -> None:
    rng = np.random.default_rng(3)
    frames = rng.normal([0.0, 0.0, 1.0], 0.4, (25, H36M17.num_joints, 3))
    frames[7, 4] = np.nan  # a joint the solver did not report
    trc = Trc(H36M17.joints, frames, rate=60.0, units=units)
    path = write_trc(trc, tmp_path / "take.trc")
    labels, times, values, info = _table(path)
    assert labels == list(H36M17.joints)
    assert values.shape == (25, H36M17.num_joints, 3)
    np.testing.assert_allclose(times, np.arange(25) / 60.0, atol=1e-9)
    assert info["Units"] == units
    assert float(info["DataRate"]) == 60.0
    scale = 1000.0 if units == "mm" else 1.0
    expected = np.einsum("ij,nmj->nmi", ZUP_TO_YUP, frames) * scale  # OpenSim's world is Y-up
    finite = np.isfinite(expected)
    np.testing.assert_allclose(values[finite], expected[finite], rtol=1e-6, atol=1e-6 * scale)
    assert np.isnan(values[7, 4]).all()


def test_opensim_reads_pose2sim_and_ours_alike(tmp_path: Path) -> None:
    """Pose2Sim's own output of the demo clip and the same data rewritten by us read the same in OpenSim."""
    from crosspose import assets
    from crosspose.io.trc import read_trc

    pose2sim_trc = assets.extract("pose2sim-0.4.15", "Pose2Sim/Demo/opensim/Balancing_for_IK.trc")
    theirs = read_trc(pose2sim_trc)
    ours = write_trc(theirs, tmp_path / "ours.trc")
    a, b = _table(Path(pose2sim_trc)), _table(ours)
    assert a[0] == b[0]
    np.testing.assert_allclose(a[1], b[1], atol=1e-6)
    np.testing.assert_allclose(a[2], b[2], atol=1e-6, equal_nan=True)
    assert a[3]["Units"] == b[3]["Units"]
