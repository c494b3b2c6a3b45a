"""Joint layouts. Human3.6M-17 is the solver's; other layouts map into it.

H36M-17 order (DESIGN §4; left/right are the subject's):
pelvis, r_hip, r_knee, r_ankle, l_hip, l_knee, l_ankle, spine, thorax, neck, head,
l_shoulder, l_elbow, l_wrist, r_shoulder, r_elbow, r_wrist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A kinematic tree of named joints.

    Attributes:
        name: layout identifier (``h36m17``).
        joints: joint names in array order.
        parents: index of each joint's parent (-1 for the root).
        template_lengths: ``(J,)`` adult bone length from the parent to each joint, metres (0 for the root).
    """

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    template_lengths: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.joints) == len(self.parents) == len(self.template_lengths)):
            raise ValueError(f"skeleton {self.name}: joints, parents and lengths differ in length")
        if self.parents.count(-1) != 1:
            raise ValueError(f"skeleton {self.name}: exactly one root joint (parent -1) is required")
        for i, p in enumerate(self.parents):
            if p >= i:
                raise ValueError(f"skeleton {self.name}: parents must precede children (joint {self.joints[i]})")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def root(self) -> int:
        return self.parents.index(-1)

    @property
    def bones(self) -> list[tuple[int, int]]:
        """``(parent, child)`` index pairs, in topological order (parents first)."""
        return [(p, c) for c, p in enumerate(self.parents) if p >= 0]

    @property
    def bone_names(self) -> list[str]:
        return [f"{self.joints[p]}-{self.joints[c]}" for p, c in self.bones]

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(f"{self.name} has no joint {joint!r} (joints: {', '.join(self.joints)})") from None

    def children(self, joint: int) -> list[int]:
        return [c for c, p in enumerate(self.parents) if p == joint]

    @property
    def mirror(self) -> tuple[int, ...]:
        """Index of each joint's left/right counterpart (itself for midline joints)."""
        out = []
        for name in self.joints:
            if name.startswith("l_"):
                out.append(self.index("r_" + name[2:]))
            elif name.startswith("r_"):
                out.append(self.index("l_" + name[2:]))
            else:
                out.append(self.index(name))
        return tuple(out)

    @property
    def left_right_pairs(self) -> list[tuple[int, int]]:
        """``(left, right)`` index pairs."""
        return [(i, m) for i, m in enumerate(self.mirror) if self.joints[i].startswith("l_")]

    def bone_lengths(self, joints3d: np.ndarray) -> np.ndarray:
        """``(..., J, 3)`` joints → ``(..., B)`` bone lengths in the order of :attr:`bones`."""
        if joints3d.shape[-2:] != (self.num_joints, 3):
            raise ValueError(f"joints3d must have shape (..., {self.num_joints}, 3), got {joints3d.shape}")
        p = [b[0] for b in self.bones]
        c = [b[1] for b in self.bones]
        return np.linalg.norm(joints3d[..., c, :] - joints3d[..., p, :], axis=-1)

    def template_bone_lengths(self, scale: float = 1.0) -> np.ndarray:
        """``(B,)`` template lengths (m) in the order of :attr:`bones`, times ``scale``."""
        return scale * np.array([self.template_lengths[c] for _, c in self.bones])


# Mean adult bone lengths measured on Human3.6M training subjects (metres), rounded to millimetres.
H36M17 = Skeleton(
    name="h36m17",
    joints=(
        "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax",
        "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    template_lengths=(
        0.0, 0.133, 0.442, 0.454, 0.133, 0.442, 0.454, 0.233, 0.257,
        0.121, 0.115, 0.151, 0.279, 0.252, 0.151, 0.279, 0.252,
    ),
)

SKELETONS: dict[str, Skeleton] = {H36M17.name: H36M17}


def get_skeleton(name: str) -> Skeleton:
    """The skeleton called ``name`` (``h36m17``)."""
    try:
        return SKELETONS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton {name!r}; known: {', '.join(SKELETONS)}") from None
