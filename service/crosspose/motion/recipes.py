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
# of both unit lines, "up" pelvis → spine, "face" the face's forward direction (below). The joints of
# REF_JOINTS must be usable for the bone to be solved ("face" also uses the thorax when it is usable).
TRUNK: dict[str, tuple[tuple[int, int], np.ndarray, str, np.ndarray]] = {
    "hips": ((R_HIP, L_HIP), _X, "up", _Y),
    "spine": ((PELVIS, SPINE), _Y, "both", _X),
    "chest": ((SPINE, THORAX), _Y, "shoulders", _X),
    "neck": ((THORAX, NECK), _Y, "shoulders", _X),
    "head": ((NECK, HEAD), _Y, "face", _Z),
}
REF_JOINTS = {"up": (PELVIS, SPINE), "hips": (R_HIP, L_HIP), "shoulders": (R_SHOULDER, L_SHOULDER),
               "both": (R_HIP, L_HIP, R_SHOULDER, L_SHOULDER), "face": (R_SHOULDER, L_SHOULDER)}

# The head's twist ("face" reference, rest direction +Z = forward). From the detector layouts (coco17,
# blazepose33, body25: crosspose.skeleton) H36M's neck is the nose and its head the mid-eyes point: face
# points ~4-5 cm apart, in front of the cervical axis. The thorax (mid-shoulders) sits behind and below
# them, so the plane through thorax, nose and eyes contains the head segment (nose → eyes) and the face's
# forward direction: the component of thorax → nose perpendicular to the head segment (the thorax's
# offset from the head segment's line, reversed). That is the same plane as "the nose's offset from the
# thorax → head axis", but measured with the ~20 cm thorax lever instead of the nose's ~4 cm offset, so
# it is the better conditioned of the two; and it turns with the head while the shoulders stay.
# It is trusted with a weight w = w_ratio · w_bend · w_turn (each a smoothstep of the ramps below), the
# reference being w · face + (1 - w) · shoulder forward (l_shoulder - r_shoulder) × head segment, which
# is exactly the shoulder-line twist the other trunk bones use. Blending, not switching, keeps the
# rotation continuous when the face direction fades in or out:
# - w_ratio: |neck → head| / |thorax → neck| below FACE_RATIO[0] counts fully, above FACE_RATIO[1] not
#   at all. Face points give ~0.2; joints on the cervical axis (body25b's UpperNeck / HeadTop, mocap
#   and H36M ground truth's neck / crown, ratio ≥ 0.9) carry no facing information: their offsets come
#   from bending (a sideways head tilt would read as a 90° turn), so they keep the shoulder twist.
# - w_bend: the angle between thorax → neck and neck → head (~50° for face points) below
#   FACE_BEND_DEG[0] is degenerate (thorax, nose and eyes on a line, e.g. looking far down), full
#   above FACE_BEND_DEG[1].
# - w_turn: the face turned more than FACE_TURN_DEG[0] from the shoulders' forward starts to fade, and
#   beyond FACE_TURN_DEG[1] (not a human neck; a mislabelled or noisy face) the shoulders take over.
# Missing or non-finite thorax / face points: w = 0.
FACE_RATIO = (0.4, 0.7)
FACE_BEND_DEG = (10.0, 20.0)
FACE_TURN_DEG = (100.0, 130.0)
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
