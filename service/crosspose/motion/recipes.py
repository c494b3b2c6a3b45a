"""How each humanoid bone's rotation is found, as data keyed by joint NAME (shared by the vectorised and
the single-frame solvers; :mod:`crosspose.motion.humanoid` resolves it against a layout).

A bone lists its recipes best first; a layout drives the bone with the first recipe whose joints it
names. Every recipe names the joint at the bone's *head* (forward kinematics reproduces it) and, where
the bone points at one, its *tail*. A layout with more joints adds rotations by adding entries: e.g.
a foot recipe from ankle, heel and toe ahead of ``Fixed("l_ankle")`` for ``left_foot``. See
:mod:`crosspose.motion.rotations` for the method; rest directions are in the Y-up rest frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_X, _Y, _Z = np.eye(3)

#: Flexion (degrees) below which a limb counts as straight (its twist is held) and above which its
#: bending plane sets the twist fully.
STRAIGHT_DEG, BENT_DEG = 15.0, 30.0


@dataclass(frozen=True, eq=False)
class Trunk:
    """A trunk bone: the swing onto ``segment`` (joint a → joint b, rest direction ``rest``) and the twist
    from the body line ``reference`` (a key of :data:`REFERENCES`, rest direction ``reference_rest``)."""

    head: str
    tail: str | None
    segment: tuple[str, str]
    rest: np.ndarray
    reference: str
    reference_rest: np.ndarray

    @property
    def joints(self) -> tuple[str, ...]:
        return (self.head, *((self.tail,) if self.tail else ()), *self.segment, *REFERENCES[self.reference])


@dataclass(frozen=True, eq=False)
class Limb:
    """A limb whose twist follows its bending plane: segment ``head → tail``, the bend measured at
    ``tip`` (rest direction of the bend ``rest_bend``)."""

    head: str
    tail: str
    tip: str
    rest_bend: np.ndarray

    @property
    def joints(self) -> tuple[str, ...]:
        return (self.head, self.tail, self.tip)


@dataclass(frozen=True)
class Swing:
    """A pure swing from the parent onto the segment ``head → tail`` (hinges, a sliding clavicle)."""

    head: str
    tail: str

    @property
    def joints(self) -> tuple[str, ...]:
        return (self.head, self.tail)


@dataclass(frozen=True)
class Fixed:
    """No joint beyond ``head`` in the layout: the bone keeps the identity local rotation."""

    head: str
    tail: None = None

    @property
    def joints(self) -> tuple[str, ...]:
        return (self.head,)


@dataclass(frozen=True)
class Attached:
    """A bone that turns with its parent (identity local rotation) and whose head is the layout's joint
    ``head``, placed in the parent's frame, which the joints ``frame`` make (so the rest pose measures the
    head's offset in it, :func:`crosspose.motion.bones.estimate_rest_pose`). A layout without these joints
    does not carry the bone at all (:data:`OPTIONAL_BONES`): nothing is invented for it.

    The toes: the full body has one toe point (``*_big_toe``, BlazePose's foot index, near the toe tips)
    and the foot bone's frame is already the plane of ankle, heel and big toe (the sole's heel → toe
    line and the ankle above it). The toes' orientation from that plane is therefore the foot's: their
    local rotation is the identity, always. One toe point cannot tell toe flexion (the toes bending at
    the ball of the foot) from a foot pitch; measuring it needs a point at the ball of the foot (or a
    second toe point), which no detector here gives. What the toes bone does carry is a real joint: its
    head is the solved big-toe point, so forward kinematics reproduces it.
    """

    head: str
    frame: tuple[str, ...]
    tail: None = None

    @property
    def joints(self) -> tuple[str, ...]:
        return (self.head, *self.frame)


Recipe = Trunk | Limb | Swing | Fixed | Attached

# Trunk references: joints that must be usable for the reference. "shoulders" is l_shoulder - r_shoulder,
# "hips" l_hip - r_hip, "both" the sum of both unit lines, "up" pelvis → spine, "face" the face's forward
# direction (below; it also uses the thorax when it is usable).
# The full body's: "ears" r_ear → l_ear (the head's lateral axis), "l_foot_up" / "r_foot_up" heel → ankle
# (the ankle stands above the sole: the foot's up and its roll), "l_palm" / "r_palm" pinky → index (across
# the palm: the hand's roll about the wrist → index line).
REFERENCES: dict[str, tuple[str, ...]] = {
    "up": ("pelvis", "spine"), "hips": ("r_hip", "l_hip"), "shoulders": ("r_shoulder", "l_shoulder"),
    "both": ("r_hip", "l_hip", "r_shoulder", "l_shoulder"), "face": ("r_shoulder", "l_shoulder"),
    "ears": ("r_ear", "l_ear"),
    "l_foot_up": ("l_heel", "l_ankle"), "r_foot_up": ("r_heel", "r_ankle"),
    "l_palm": ("l_pinky", "l_index"), "r_palm": ("r_pinky", "r_index"),
}
#: The joints :func:`crosspose.motion.rotations.face_reference` reads: thorax, neck, head, left and right
#: shoulder.
FACE_JOINTS = ("thorax", "neck", "head", "l_shoulder", "r_shoulder")

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
#: Reference lines too short to fix a bone's roll on their own (metres): between the two lengths of a line's
#: component across the bone's segment, the bone's roll about its segment moves from its previous frame's
#: towards the measured one by a smoothstep weight (0 at the first length: the previous roll is kept, 1 at
#: the second: the measured roll, as for every other bone); the segment's own direction is always measured.
#: BlazePose's index and pinky points are only 1-3 cm apart on the Pose2Sim clip (4-8 mm in its worst
#: frames) and move by about 2.2 mm per axis from frame to frame beyond their motion (robust spread of
#: their second differences / √6 on that clip), so noise alone turns a line of length L between two frames
#: by more than 30° with probability exp(−(2 sin 15° L / 2σ)² / 2): one frame in two at L = 1.0 cm, one in a
#: hundred at 2.6 cm, the two bounds. A hard hold below a length instead (1 cm, as before) ended each hold
#: in a catch-up turn: 44.5° between two frames of that clip once the forearms were held to their lengths.
ROLL_TRUST = {"l_palm": (0.010, 0.026), "r_palm": (0.010, 0.026)}
FACE_RATIO = (0.4, 0.7)
FACE_BEND_DEG = (10.0, 20.0)
FACE_TURN_DEG = (100.0, 130.0)

#: Bones a layout carries only where it names the joints of one of their recipes (elsewhere they are left
#: out of its BVH hierarchy, VMC bundles and rotation messages, not sent at rest); every other bone needs a
#: recipe in every layout.
OPTIONAL_BONES: tuple[str, ...] = ("left_toes", "right_toes")

#: Each humanoid bone's recipes, best first (the first whose joints a layout names drives the bone).
#: Joint names are the solver's (DESIGN §4): the Human3.6M ones, which the full-body layout keeps, and the
#: full body's extremities, which give the head, feet and hands full rotations of their own:
#: - head: the neck → head segment (pitch) with the ear line (yaw and roll) instead of the face blend;
#: - foot: the sole's heel → big toe line (rest: forward, +Z) for pitch and yaw, the ankle's offset above that
#:   line (heel → ankle, rest: up) for the roll;
#: - hand: the wrist → index line (rest: along the arm, ±X) for its swing, pinky → index across the palm
#:   (rest: forward, +Z, palm down) for the roll. The thumb is not read (it sits off the palm's plane and
#:   moves on its own); fingers stay at rest;
#: - toes (full body only, :class:`Attached`): the identity relative to the foot, at the big-toe point (one
#:   toe point gives no toe flexion; see there).
BONE_RECIPES: dict[str, tuple[Recipe, ...]] = {
    "hips": (Trunk("pelvis", None, ("r_hip", "l_hip"), _X, "up", _Y),),
    "spine": (Trunk("pelvis", "spine", ("pelvis", "spine"), _Y, "both", _X),),
    "chest": (Trunk("spine", "thorax", ("spine", "thorax"), _Y, "shoulders", _X),),
    "neck": (Trunk("thorax", "neck", ("thorax", "neck"), _Y, "shoulders", _X),),
    "head": (Trunk("neck", "head", ("neck", "head"), _Y, "ears", _X),
             Trunk("neck", "head", ("neck", "head"), _Y, "face", _Z)),
    "right_upper_leg": (Limb("r_hip", "r_knee", "r_ankle", -_Z),),
    "right_lower_leg": (Swing("r_knee", "r_ankle"),),
    "right_foot": (Trunk("r_ankle", None, ("r_heel", "r_big_toe"), _Z, "r_foot_up", _Y), Fixed("r_ankle")),
    "left_upper_leg": (Limb("l_hip", "l_knee", "l_ankle", -_Z),),
    "left_lower_leg": (Swing("l_knee", "l_ankle"),),
    "left_foot": (Trunk("l_ankle", None, ("l_heel", "l_big_toe"), _Z, "l_foot_up", _Y), Fixed("l_ankle")),
    "left_shoulder": (Swing("thorax", "l_shoulder"),),
    "left_upper_arm": (Limb("l_shoulder", "l_elbow", "l_wrist", _Z),),
    "left_lower_arm": (Swing("l_elbow", "l_wrist"),),
    "left_hand": (Trunk("l_wrist", None, ("l_wrist", "l_index"), _X, "l_palm", _Z), Fixed("l_wrist")),
    "right_shoulder": (Swing("thorax", "r_shoulder"),),
    "right_upper_arm": (Limb("r_shoulder", "r_elbow", "r_wrist", _Z),),
    "right_lower_arm": (Swing("r_elbow", "r_wrist"),),
    "right_hand": (Trunk("r_wrist", None, ("r_wrist", "r_index"), -_X, "r_palm", _Z), Fixed("r_wrist")),
    "left_toes": (Attached("l_big_toe", ("l_ankle", "l_heel")),),
    "right_toes": (Attached("r_big_toe", ("r_ankle", "r_heel")),),
}
