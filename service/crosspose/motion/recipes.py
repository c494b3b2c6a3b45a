"""How each bone's rotation is found (shared by the vectorised and the single-frame solvers).

See :mod:`crosspose.motion.rotations` for the method; rest directions are in the Y-up rest frame.
"""

from __future__ import annotations

import numpy as np

from crosspose.motion.bones import (
    HEAD,
    L_ANKLE,
    L_ELBOW,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    NECK,
    PELVIS,
    R_ANKLE,
    R_ELBOW,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    SPINE,
    THORAX,
)

_X, _Y, _Z = np.eye(3)

#: Flexion (degrees) below which a limb counts as straight (its twist is held) and above which its
#: bending plane sets the twist fully.
STRAIGHT_DEG, BENT_DEG = 15.0, 30.0

# trunk bones: (primary joints (a, b) → vector b - a, its rest direction, reference vector, its rest
# direction). The reference "shoulders" is l_shoulder - r_shoulder, "hips" l_hip - r_hip, "both" the sum
# of both unit lines, "up" pelvis → spine.
TRUNK: dict[str, tuple[tuple[int, int], np.ndarray, str, np.ndarray]] = {
    "hips": ((R_HIP, L_HIP), _X, "up", _Y),
    "spine": ((PELVIS, SPINE), _Y, "both", _X),
    "chest": ((SPINE, THORAX), _Y, "shoulders", _X),
    "neck": ((THORAX, NECK), _Y, "shoulders", _X),
    "head": ((NECK, HEAD), _Y, "shoulders", _X),
}
REF_JOINTS = {"up": (PELVIS, SPINE), "hips": (R_HIP, L_HIP), "shoulders": (R_SHOULDER, L_SHOULDER),
               "both": (R_HIP, L_HIP, R_SHOULDER, L_SHOULDER)}
# limbs whose twist follows the bending plane: (head, tail, bend tip, rest bend direction of the tip)
LIMBS: dict[str, tuple[int, int, int, np.ndarray]] = {
    "right_upper_leg": (R_HIP, R_KNEE, R_ANKLE, -_Z),
    "left_upper_leg": (L_HIP, L_KNEE, L_ANKLE, -_Z),
    "left_upper_arm": (L_SHOULDER, L_ELBOW, L_WRIST, _Z),
    "right_upper_arm": (R_SHOULDER, R_ELBOW, R_WRIST, _Z),
}
LIMB_INDEX = {name: i for i, name in enumerate(LIMBS)}
# pure swings from the parent: (head, tail)
SWINGS: dict[str, tuple[int, int]] = {
    "right_lower_leg": (R_KNEE, R_ANKLE), "left_lower_leg": (L_KNEE, L_ANKLE),
    "left_shoulder": (THORAX, L_SHOULDER), "right_shoulder": (THORAX, R_SHOULDER),
    "left_lower_arm": (L_ELBOW, L_WRIST), "right_lower_arm": (R_ELBOW, R_WRIST),
}
FIXED = ("right_foot", "left_foot", "left_hand", "right_hand")
