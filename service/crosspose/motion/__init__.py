"""Motion outputs: joint rotations (swing-twist), the One Euro filter, BVH/C3D/TRC/JSON-lines export.

Layering (DESIGN §3): numpy only — no zmq, FastAPI or pydantic. Axes: input joints are those of a layout
(a :class:`~crosspose.skeleton.Skeleton`, default Human3.6M-17) in our Z-up world (metres); which joints
drive which humanoid bone is data keyed by joint name (:mod:`crosspose.motion.recipes`). Rotations, the
rest pose and BVH/TRC files are Y-up (right-handed, metres), the rest pose facing +Z with the subject's
left along +X.
"""

from __future__ import annotations

from crosspose.motion.bones import (
    BONE_HEAD_JOINTS,
    BONE_TAIL_JOINTS,
    RestPose,
    estimate_rest_pose,
    rest_pose,
    yup_to_zup,
    zup_to_yup,
)
from crosspose.motion.export import (
    BVH_NAMES,
    MOTION_FORMATS,
    person_label,
    write_bvh,
    write_c3d,
    write_c3d_persons,
    write_jsonl,
    write_motion,
)
from crosspose.motion.filter import JOINT_GROUPS, FilterSettings, GroupFilter, OneEuroFilter, filter_joints
from crosspose.motion.humanoid import BONE_PARENTS, BONES, UNITY_BONES, HumanoidMap, humanoid_map
from crosspose.motion.rotations import (
    LiveRotations,
    Motion,
    forward_kinematics,
    joints_from_fk,
    solve_rotations,
)

__all__ = [
    "BONES",
    "BONE_HEAD_JOINTS",
    "BONE_PARENTS",
    "BONE_TAIL_JOINTS",
    "BVH_NAMES",
    "JOINT_GROUPS",
    "MOTION_FORMATS",
    "UNITY_BONES",
    "FilterSettings",
    "GroupFilter",
    "HumanoidMap",
    "LiveRotations",
    "Motion",
    "OneEuroFilter",
    "RestPose",
    "estimate_rest_pose",
    "filter_joints",
    "forward_kinematics",
    "humanoid_map",
    "joints_from_fk",
    "person_label",
    "rest_pose",
    "solve_rotations",
    "write_bvh",
    "write_c3d",
    "write_c3d_persons",
    "write_jsonl",
    "write_motion",
    "yup_to_zup",
    "zup_to_yup",
]
