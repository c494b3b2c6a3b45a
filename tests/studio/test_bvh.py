"""Our BVH reader against bvhtoolbox on real clips, exact FK on hand-written files, H36M-17 conversion."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from crosspose import assets
from crosspose.skeleton import H36M17
from crosspose.studio.bvh import BvhError, detect_unit, load_bvh_motion, map_bvh_joints, read_bvh

H = {name: i for i, name in enumerate(H36M17.joints)}
CLIPS = {"test_mocapbank.bvh": 455, "test_freebvh.bvh": 69}


def _clip(name: str) -> Path:
    return assets.extract("bvhtoolbox-0.1.3", f"tests/example_files/{name}")


def _subsample(path: Path, tmp_path: Path, step: int) -> Path:
    """A copy of the BVH with every ``step``-th frame (bvhtoolbox takes ~20 ms per frame)."""
    head, _, body = path.read_text().partition("MOTION")
    lines = [ln for ln in body.splitlines() if ln.strip()]
    frames = lines[2::step]
    out = tmp_path / path.name
    out.write_text(f"{head}MOTION\nFrames: {len(frames)}\n{lines[1]}\n" + "\n".join(frames) + "\n")
    return out


def _bvhtoolbox_positions(path: Path) -> tuple[list[str], np.ndarray]:
    """World positions of every joint computed by bvhtoolbox's own reader and transforms."""
    import bvhtoolbox  # a dev dependency: an independent reader (needs setuptools<81, see pyproject)

    # The package re-exports a function of the same name, so take the module itself.
    bvh2csv = importlib.import_module("bvhtoolbox.convert.bvh2csv")

    tree = bvhtoolbox.BvhTree(path.read_text())
    csv = path.with_suffix(".csv")
    assert bvh2csv.write_joint_positions(tree, str(csv))
    header = csv.read_text().splitlines()[0].split(",")
    data = np.loadtxt(csv, delimiter=",", skiprows=1, ndmin=2)
    names = [h[:-2] for h in header[1::3]]
    return names, data[:, 1:].reshape(len(data), -1, 3)


@pytest.mark.network
@pytest.mark.parametrize(("name", "step"), [("test_mocapbank.bvh", 15), ("test_freebvh.bvh", 7)])
def test_forward_kinematics_matches_bvhtoolbox(name: str, step: int, tmp_path: Path) -> None:
    clip = read_bvh(_clip(name))
    assert clip.num_frames == CLIPS[name]
    assert clip.fps == pytest.approx(30.0, rel=1e-3)
    names, reference = _bvhtoolbox_positions(_subsample(_clip(name), tmp_path, step))
    ours = clip.positions()[::step][:, [clip.names.index(n) for n in names]]
    assert reference.shape == ours.shape
    assert len(names) == len(clip.joints)
    np.testing.assert_allclose(ours, reference, atol=2e-5)  # the CSV keeps 5 decimals (file units)
    assert np.ptp(ours, axis=0).max() > 10  # the clip moves: a frame-order mix-up would fail


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "clip.bvh"
    p.write_text(text)
    return p


TWO_JOINTS = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
  JOINT Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 0 2 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
10 20 30 0 0 90 0 0 0
0 0 0 90 0 0 90 0 90
"""


def test_exact_fk_with_two_rotation_orders(tmp_path: Path) -> None:
    clip = read_bvh(_write(tmp_path, TWO_JOINTS))
    assert clip.fps == pytest.approx(25.0)
    pos = clip.positions()
    ends = clip.end_site_positions()[1]
    # frame 0: root at (10,20,30) turned 90° about Z: the arm offset (1,0,0) → (0,1,0)
    np.testing.assert_allclose(pos[0, 1], [10, 21, 30], atol=1e-12)
    np.testing.assert_allclose(ends[0], [10 - 2, 21, 30], atol=1e-12)
    # frame 1: root Rx(90); arm Rz(90)·Ry(0)·Rx(90) applied to (0,2,0): Rx → (0,0,2), Rz → (0,0,2);
    # then the root's Rx(90) maps (0,0,2) → (0,-2,0), added to the arm at Rx(90)(1,0,0) = (1,0,0)
    np.testing.assert_allclose(pos[1, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(ends[1], [1, -2, 0], atol=1e-12)


def test_parse_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(BvhError, match="expected 2 frames x 9 channels"):
        read_bvh(_write(tmp_path, TWO_JOINTS.replace("0 0 0 90 0 0 90 0 90\n", "0 0 0\n")))
    with pytest.raises(BvhError, match="MOTION"):
        read_bvh(_write(tmp_path, TWO_JOINTS.split("MOTION")[0]))
    with pytest.raises(BvhError, match="no joint for"):
        map_bvh_joints(read_bvh(_write(tmp_path, TWO_JOINTS)))


def _humanoid(scale: float) -> str:
    """A CMU-named Y-up humanoid in T-pose facing +Z (its left is +X), lengths in metres × ``scale``."""

    def off(x: float, y: float, z: float) -> str:
        return f"OFFSET {x * scale:.6f} {y * scale:.6f} {z * scale:.6f}"

    def chain(side: str, sign: float) -> str:
        return f"""
  JOINT {side[0]}HipJoint
  {{
    {off(0, 0, 0)}
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT {side}UpLeg
    {{
      {off(sign * 0.1, -0.05, 0)}
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT {side}Leg
      {{
        {off(0, -0.44, 0)}
        CHANNELS 3 Zrotation Xrotation Yrotation
        JOINT {side}Foot
        {{
          {off(0, -0.44, 0)}
          CHANNELS 3 Zrotation Xrotation Yrotation
          End Site
          {{
            {off(0, -0.08, 0.12)}
          }}
        }}
      }}
    }}
  }}"""

    def arm(side: str, sign: float) -> str:
        return f"""
        JOINT {side}Shoulder
        {{
          {off(sign * 0.03, 0, 0)}
          CHANNELS 3 Zrotation Xrotation Yrotation
          JOINT {side}Arm
          {{
            {off(sign * 0.15, 0, 0)}
            CHANNELS 3 Zrotation Xrotation Yrotation
            JOINT {side}ForeArm
            {{
              {off(sign * 0.28, 0, 0)}
              CHANNELS 3 Zrotation Xrotation Yrotation
              JOINT {side}Hand
              {{
                {off(sign * 0.25, 0, 0)}
                CHANNELS 3 Zrotation Xrotation Yrotation
              }}
            }}
          }}
        }}"""

    legs = chain("Left", 1.0) + chain("Right", -1.0)
    frames = []
    for i in range(10):
        root = [0.3 * i * 0.1 * scale, 0.97 * scale, 0.0]
        rot = [0.0] * 3 * 20  # 20 non-root joints
        rot[3 * 2 + 2] = 20.0 * np.sin(i / 3)  # LeftLeg twists about the vertical: the toe keeps its height
        frames.append(" ".join(f"{v:.6f}" for v in [*root, 0.0, 0.0, 0.0, *rot]))
    return (
        f"""HIERARCHY
ROOT Hips
{{
  {off(0, 0, 0)}
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation{legs}
  JOINT Spine
  {{
    {off(0, 0.12, 0)}
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT Spine1
    {{
      {off(0, 0.25, 0)}
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT Neck
      {{
        {off(0, 0.13, 0)}
        CHANNELS 3 Zrotation Xrotation Yrotation
        JOINT Head
        {{
          {off(0, 0.12, 0.02)}
          CHANNELS 3 Zrotation Xrotation Yrotation
          End Site
          {{
            {off(0, 0.12, 0)}
          }}
        }}
      }}{arm("Left", 1.0)}{arm("Right", -1.0)}
    }}
  }}
}}
MOTION
Frames: 10
Frame Time: 0.0333333
"""
        + "\n".join(frames)
        + "\n"
    )


@pytest.mark.parametrize(("unit", "scale"), [("m", 1.0), ("cm", 100.0), ("mm", 1000.0), ("inch", 1 / 0.0254)])
def test_units_axes_and_grounding_on_a_known_humanoid(tmp_path: Path, unit: str, scale: float) -> None:
    m = load_bvh_motion(_write(tmp_path, _humanoid(scale)), center=False)
    assert m.joints.shape == (10, 17, 3)
    J = m.joints
    # metres, Z up (pelvis = mid of the UpLeg joints, 5 cm below Hips; head = the Head's End Site)
    head_above_pelvis = 0.05 + 0.12 + 0.25 + 0.13 + 0.12 + 0.12
    np.testing.assert_allclose(J[0, H["head"], 2] - J[0, H["pelvis"], 2], head_above_pelvis, atol=1e-6)
    np.testing.assert_allclose(J[0, H["pelvis"], 2], 0.08 + 0.88, atol=1e-6)  # toe End Sites on z = 0
    # facing +Y, so the subject's left is -X; the root moves along BVH +X, i.e. our -X
    assert J[0, H["l_hip"], 0] < J[0, H["r_hip"], 0]
    assert J[0, H["l_wrist"], 0] < -0.7
    np.testing.assert_allclose(J[9, H["pelvis"], 0] - J[0, H["pelvis"], 0], -0.27, atol=1e-6)
    # mapping: hips are UpLeg (not LHipJoint), shoulders are Arm (not the clavicle 'Shoulder')
    np.testing.assert_allclose(np.linalg.norm(J[:, H["l_hip"]] - J[:, H["r_hip"]], axis=-1), 0.2, atol=1e-6)
    np.testing.assert_allclose(
        np.linalg.norm(J[:, H["l_shoulder"]] - J[:, H["r_shoulder"]], axis=-1), 0.36, atol=1e-6
    )
    np.testing.assert_allclose(J[:, H["neck"], 2] - J[:, H["thorax"], 2], 0.12, atol=1e-6)  # Head joint
    assert detect_unit(1.75 * scale) == unit  # toe to crown of the rest pose
    assert 1.6 < m.performer.height < 1.8


def test_detect_unit_rule() -> None:
    assert detect_unit(1.75) == "m"
    assert detect_unit(68.0) == "inch"
    assert detect_unit(172.0) == "cm"
    assert detect_unit(1800.0) == "mm"
    assert detect_unit(0.9) == "m"  # a child: nearest plausible


@pytest.mark.network
def test_real_clip_as_h36m_motion() -> None:
    m = load_bvh_motion(_clip("test_mocapbank.bvh"))
    J = m.joints
    assert J.shape == (455, 17, 3)
    assert J.dtype == np.float64
    assert m.fps == pytest.approx(30.0, rel=1e-3)
    assert m.skeleton is H36M17
    assert 1.4 <= m.performer.height <= 2.1
    assert (J[..., 2] >= 0).all()
    ankles = J[:, [H["l_ankle"], H["r_ankle"]], 2].min(axis=1)
    assert 0.03 < np.median(ankles) < 0.15  # feet on the floor
    above = J[:, H["head"], 2] - J[:, H["pelvis"], 2]
    assert (above > 0.1).all()
    assert np.median(above) > 0.3  # Z up (the clip crouches a lot)
    # a rigid limb keeps its length (the file's bones), the mapping is consistent over time
    lengths = H36M17.bone_lengths(J)
    rigid = [
        i for i, (_, c) in enumerate(H36M17.bones) if H36M17.joints[c] in ("l_knee", "r_ankle", "l_wrist")
    ]
    assert np.ptp(lengths[:, rigid], axis=0).max() < 1e-9
    np.testing.assert_allclose(np.abs(J[:, 0, :2].mean(axis=0)), 0, atol=1e-9)  # centred
    speed = np.linalg.norm(np.diff(J, axis=0), axis=-1) * m.fps
    assert speed.max() < 10.0


@pytest.mark.network
def test_mixamo_clip_maps_head_top_and_arms() -> None:
    m = load_bvh_motion(_clip("test_freebvh.bvh"))
    assert m.joints.shape == (69, 17, 3)
    assert 1.4 <= m.performer.height <= 2.1
    J = m.joints
    assert (J[:, H["head"], 2] > J[:, H["neck"], 2]).all()
