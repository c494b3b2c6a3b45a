"""Joint layouts the solver solves in, and the mappings of detector layouts into them.

H36M-17 order (DESIGN §4; left/right are the subject's):
pelvis, r_hip, r_knee, r_ankle, l_hip, l_knee, l_ankle, spine, thorax, neck, head,
l_shoulder, l_elbow, l_wrist, r_shoulder, r_elbow, r_wrist.

``crosspose-body32`` (the full body: what an engine animates) keeps these 17 first, then
l_heel, l_big_toe, r_heel, r_big_toe, l_index, l_pinky, l_thumb, r_index, r_pinky, r_thumb,
nose, l_eye, r_eye, l_ear, r_ear — leaves of the tree on the ankles, wrists, neck (the nose) and head.
"""

from __future__ import annotations

import itertools
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
        extremities: how many joints at the end of the order are extremities: leaves a few centimetres
            from a parent among the other joints (the body), which the solver places around their solved
            parents instead of searching them with the body (0: none).
    """

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    template_lengths: tuple[float, ...]
    extremities: int = 0

    def __post_init__(self) -> None:
        if not (len(self.joints) == len(self.parents) == len(self.template_lengths)):
            raise ValueError(f"skeleton {self.name}: joints, parents and lengths differ in length")
        if self.parents.count(-1) != 1:
            raise ValueError(f"skeleton {self.name}: exactly one root joint (parent -1) is required")
        for i, p in enumerate(self.parents):
            if p >= i:
                raise ValueError(
                    f"skeleton {self.name}: parents must precede children (joint {self.joints[i]})"
                )
        body = len(self.joints) - self.extremities
        if not 0 <= self.extremities < len(self.joints) or any(p >= body for p in self.parents[body:]):
            raise ValueError(f"skeleton {self.name}: the last {self.extremities} joints must be leaves whose "
                             "parents are among the joints before them")

    @property
    def body(self) -> Skeleton:
        """The layout without its extremities (itself when it has none): its first joints, their tree."""
        if not self.extremities:
            return self
        k = self.num_joints - self.extremities
        return Skeleton(f"{self.name}/body", self.joints[:k], self.parents[:k], self.template_lengths[:k])

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

#: The extremities of the full-body layout: joint, parent, adult template length (m) from the parent.
#: The hand points are BlazePose's (index and pinky knuckles, thumb tip region), not finger tips. The nose
#: hangs off ``neck`` and the eyes and ears off ``head``: the detector layouts give those as the nose and
#: the mid-eyes point (BlazePose, COCO) or as the top of the neck and the head top (OpenPose BODY_25B), and
#: the limb prior's tolerance (0.15 m) covers both readings from these parents: the nose's 0.10 m sits
#: between BlazePose's 0 (its neck is the nose) and BODY_25B's 0.13-0.22 m on the Pose2Sim clip (its head
#: top is ~0.2 m from the nose, too far for a leaf of the head). The online lengths settle on the
#: performer's where the reading is within half the template.
_EXTREMITIES: tuple[tuple[str, str, float], ...] = (
    ("l_heel", "l_ankle", 0.070), ("l_big_toe", "l_ankle", 0.150),
    ("r_heel", "r_ankle", 0.070), ("r_big_toe", "r_ankle", 0.150),
    ("l_index", "l_wrist", 0.090), ("l_pinky", "l_wrist", 0.080), ("l_thumb", "l_wrist", 0.060),
    ("r_index", "r_wrist", 0.090), ("r_pinky", "r_wrist", 0.080), ("r_thumb", "r_wrist", 0.060),
    ("nose", "neck", 0.100), ("l_eye", "head", 0.045), ("r_eye", "head", 0.045),
    ("l_ear", "head", 0.080), ("r_ear", "head", 0.080),
)

#: The full body (DESIGN §4): Human3.6M-17 first, in its order, then the extremities as leaves.
BODY32 = Skeleton(
    name="crosspose-body32",
    joints=(*H36M17.joints, *(name for name, _, _ in _EXTREMITIES)),
    parents=(*H36M17.parents, *(H36M17.index(parent) for _, parent, _ in _EXTREMITIES)),
    template_lengths=(*H36M17.template_lengths, *(length for _, _, length in _EXTREMITIES)),
    extremities=len(_EXTREMITIES),
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (H36M17, BODY32)}
#: The layout of the live service, ``reconstruct``, recordings and the exported network when none is
#: asked for.
DEFAULT_SKELETON: Skeleton = BODY32


def get_skeleton(name: str) -> Skeleton:
    """The skeleton called ``name`` (``h36m17``, ``crosspose-body32``)."""
    try:
        return SKELETONS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton {name!r}; known: {', '.join(SKELETONS)}") from None


# ---------------------------------------------------------------------------------------------------
# 2D/3D detector layouts and their mapping into H36M-17


@dataclass(frozen=True)
class Layout:
    """A keypoint layout of a 2D/3D detector (not necessarily a tree).

    Attributes:
        name: identifier (``coco17``, ``body25``, ``body25b``, ``blazepose33``, ``h36m17``).
        joints: keypoint names in the detector's official output order.
        bone_names: ``(a, b)`` name pairs to draw as segments.
    """

    name: str
    joints: tuple[str, ...]
    bone_names: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        if len(set(self.joints)) != len(self.joints):
            raise ValueError(f"layout {self.name}: duplicate joint names")
        for a, b in self.bone_names:
            if a not in self.joints or b not in self.joints:
                raise ValueError(f"layout {self.name}: bone {a}-{b} names an unknown joint")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(f"{self.name} has no joint {joint!r} (joints: {', '.join(self.joints)})") from None

    @property
    def bones(self) -> list[tuple[int, int]]:
        """``(a, b)`` index pairs to draw."""
        return [(self.index(a), self.index(b)) for a, b in self.bone_names]


def _limbs(prefix_l: str, prefix_r: str, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Consecutive pairs of ``names`` for both sides (``names`` without the side prefix)."""
    out = []
    for p in (prefix_l, prefix_r):
        out += [(p + a, p + b) for a, b in itertools.pairwise(names)]
    return tuple(out)


#: MS COCO keypoints (17), the order of the COCO annotation files and of most 2D detectors.
COCO17 = Layout(
    name="coco17",
    joints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    bone_names=(
        ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
        ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
        ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
        *_limbs("left_", "right_", ("shoulder", "elbow", "wrist")),
        *_limbs("left_", "right_", ("hip", "knee", "ankle")),
    ),
)

#: OpenPose BODY_25 (``pose_iter_584000``), OpenPose's output order (``POSE_BODY_25_BODY_PARTS``).
BODY25 = Layout(
    name="body25",
    joints=(
        "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
        "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
        "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
    ),
    bone_names=(
        ("Neck", "Nose"), ("Nose", "REye"), ("Nose", "LEye"), ("REye", "REar"), ("LEye", "LEar"),
        ("Neck", "RShoulder"), ("Neck", "LShoulder"), ("Neck", "MidHip"),
        ("MidHip", "RHip"), ("MidHip", "LHip"),
        *_limbs("L", "R", ("Shoulder", "Elbow", "Wrist")),
        *_limbs("L", "R", ("Hip", "Knee", "Ankle", "BigToe", "SmallToe")),
        ("LAnkle", "LHeel"), ("RAnkle", "RHeel"),
    ),
)

#: OpenPose BODY_25B (experimental ``pose_iter_XXXXXX`` of openpose_train; what Pose2Sim's demo ships):
#: the COCO-17 order first, then UpperNeck, HeadTop and the six foot points. It is NOT BODY_25 with
#: extra points: there is no Neck/MidHip, and the left/right order follows COCO (left first).
BODY25B = Layout(
    name="body25b",
    joints=(
        "Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist",
        "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle", "UpperNeck", "HeadTop",
        "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
    ),
    bone_names=(
        ("HeadTop", "UpperNeck"), ("UpperNeck", "Nose"), ("Nose", "LEye"), ("Nose", "REye"),
        ("LEye", "LEar"), ("REye", "REar"), ("UpperNeck", "LShoulder"), ("UpperNeck", "RShoulder"),
        ("LShoulder", "LHip"), ("RShoulder", "RHip"), ("LHip", "RHip"),
        *_limbs("L", "R", ("Shoulder", "Elbow", "Wrist")),
        *_limbs("L", "R", ("Hip", "Knee", "Ankle", "BigToe", "SmallToe")),
        ("LAnkle", "LHeel"), ("RAnkle", "RHeel"),
    ),
)

#: MediaPipe BlazePose (33 landmarks), ``PoseLandmark`` order.
BLAZEPOSE33 = Layout(
    name="blazepose33",
    joints=(
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
        "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
        "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
        "left_foot_index", "right_foot_index",
    ),
    bone_names=(
        ("nose", "left_eye_inner"), ("left_eye_inner", "left_eye"), ("left_eye", "left_eye_outer"),
        ("left_eye_outer", "left_ear"), ("nose", "right_eye_inner"), ("right_eye_inner", "right_eye"),
        ("right_eye", "right_eye_outer"), ("right_eye_outer", "right_ear"), ("mouth_left", "mouth_right"),
        ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
        ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
        *_limbs("left_", "right_", ("shoulder", "elbow", "wrist", "pinky", "index")),
        ("left_wrist", "left_index"), ("right_wrist", "right_index"),  # drawn as MediaPipe does
        ("left_wrist", "left_thumb"), ("right_wrist", "right_thumb"),
        *_limbs("left_", "right_", ("hip", "knee", "ankle", "heel", "foot_index")),
        ("left_ankle", "left_foot_index"), ("right_ankle", "right_foot_index"),
    ),
)

def skeleton_layout(skeleton: Skeleton) -> Layout:
    """A solver layout as a :class:`Layout` (bones = the kinematic tree)."""
    return Layout(name=skeleton.name, joints=skeleton.joints,
                  bone_names=tuple((skeleton.joints[p], skeleton.joints[c]) for p, c in skeleton.bones))


#: The solver layouts as :class:`Layout` s.
H36M17_LAYOUT = skeleton_layout(H36M17)
BODY32_LAYOUT = skeleton_layout(BODY32)

LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in (H36M17_LAYOUT, BODY32_LAYOUT, COCO17, BODY25, BODY25B,
                                                        BLAZEPOSE33)}

_LAYOUT_ALIASES = {
    "coco": "coco17", "coco17": "coco17", "mscoco": "coco17",
    "body25": "body25", "openposebody25": "body25",
    "body25b": "body25b", "openposebody25b": "body25b",
    "blazepose": "blazepose33", "blazepose33": "blazepose33", "mediapipe": "blazepose33",
    "mediapipepose": "blazepose33",
    "h36m": "h36m17", "h36m17": "h36m17", "human36m": "h36m17",
    "crossposebody32": "crosspose-body32", "body32": "crosspose-body32",
}


def get_layout(layout: str | Layout) -> Layout:
    """The layout called ``layout`` (case, ``-`` and ``_`` ignored: ``openpose-body25b``, ``COCO_17`` …)."""
    if isinstance(layout, Layout):
        return layout
    key = _LAYOUT_ALIASES.get(layout.lower().replace("-", "").replace("_", "").replace(" ", ""))
    if key is None:
        raise KeyError(
            f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)} (aliases: {', '.join(_LAYOUT_ALIASES)})"
        )
    return LAYOUTS[key]


# How each H36M-17 joint is obtained from a source layout: a weighted mean of source joints (weights
# sum to one), or None when the layout cannot give it. ``proxy`` marks joints whose source is a
# different anatomical point with a known bias (dropped when ``allow_proxies=False``).
@dataclass(frozen=True)
class JointRecipe:
    """One target joint as a convex combination of source joints.

    Attributes:
        sources: source joint names.
        weights: one weight per source, summing to one.
        proxy: the combination is a different anatomical point than the target (known bias).
        note: how it is derived and its bias.
    """

    sources: tuple[str, ...]
    weights: tuple[float, ...]
    proxy: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.weights) or not self.sources:
            raise ValueError("a joint recipe needs one weight per source")
        if abs(sum(self.weights) - 1.0) > 1e-9:
            raise ValueError(f"recipe weights must sum to one, got {self.weights}")


def _direct(name: str, note: str = "same point") -> JointRecipe:
    return JointRecipe((name,), (1.0,), note=note)


def _mid(a: str, b: str, note: str, proxy: bool = False) -> JointRecipe:
    return JointRecipe((a, b), (0.5, 0.5), proxy=proxy, note=note)


def _quad_mid(l_sho: str, r_sho: str, l_hip: str, r_hip: str) -> JointRecipe:
    return JointRecipe(
        (l_hip, r_hip, l_sho, r_sho), (0.25, 0.25, 0.25, 0.25),
        note="spine = midpoint of pelvis (mid-hips) and thorax (mid-shoulders); H36M's spine joint "
             "sits ~47 % of the way up and ahead of this straight line when the back bends",
    )


def _limb_recipes(left: str, right: str, names: dict[str, str]) -> dict[str, JointRecipe]:
    """Direct recipes for the limb joints: ``names`` maps H36M suffix → source suffix."""
    out = {}
    for h36m, src in names.items():
        out["l_" + h36m] = _direct(left + src)
        out["r_" + h36m] = _direct(right + src)
    return out


_COCO_LIMBS = {"hip": "hip", "knee": "knee", "ankle": "ankle", "shoulder": "shoulder", "elbow": "elbow",
               "wrist": "wrist"}
_OP_LIMBS = {"hip": "Hip", "knee": "Knee", "ankle": "Ankle", "shoulder": "Shoulder", "elbow": "Elbow",
             "wrist": "Wrist"}
_HIP_NOTE = ("pelvis = mid-hips; detector hips sit ~2-5 cm higher and closer together than H36M's "
             "mocap hip joint centres")
_THORAX_NOTE = "thorax = mid-shoulders; H36M's thorax is ~2-4 cm lower and behind it"
_NOSE_NECK_NOTE = ("neck = nose: H36M joint 9 is 'Neck/Nose' (lower face level); the nose is ~3-6 cm "
                   "in front of it")
_EYES_HEAD_NOTE = ("head = mid-eyes: no head-top point in this layout; H36M 'head' is near the crown, "
                   "so this sits ~8-12 cm low and a few cm forward")


def _coco_like_recipes(
    left: str, right: str, limbs: dict[str, str], nose: str, l_eye: str, r_eye: str
) -> dict[str, JointRecipe]:
    lh, rh = left + limbs["hip"], right + limbs["hip"]
    ls, rs = left + limbs["shoulder"], right + limbs["shoulder"]
    rec = _limb_recipes(left, right, limbs)
    rec["pelvis"] = _mid(lh, rh, _HIP_NOTE)
    rec["thorax"] = _mid(ls, rs, _THORAX_NOTE)
    rec["spine"] = _quad_mid(ls, rs, lh, rh)
    rec["neck"] = JointRecipe((nose,), (1.0,), proxy=True, note=_NOSE_NECK_NOTE)
    rec["head"] = _mid(l_eye, r_eye, _EYES_HEAD_NOTE, proxy=True)
    return rec


def _face_recipes(left: str, right: str, nose: str, eye: str, ear: str) -> dict[str, JointRecipe]:
    """The full body's face points, same points in every layout that has them."""
    return {"nose": _direct(nose), "l_eye": _direct(left + eye), "r_eye": _direct(right + eye),
            "l_ear": _direct(left + ear), "r_ear": _direct(right + ear)}


def _feet_recipes(left: str, right: str, heel: str, toe: str, note: str) -> dict[str, JointRecipe]:
    return {f"{side}_{ours}": _direct(prefix + theirs, note)
            for side, prefix in (("l", left), ("r", right))
            for ours, theirs in (("heel", heel), ("big_toe", toe))}


_BLAZEPOSE_TOE_NOTE = ("BlazePose's foot_index: the tip of the foot, where the big toe ends (OpenPose's "
                       "BigToe is the same point)")
_BLAZEPOSE_HAND_NOTE = "BlazePose's hand point (index/pinky: the finger's knuckle region, not its tip)"

_RECIPES: dict[str, dict[str, JointRecipe]] = {
    "coco17": {**_coco_like_recipes("left_", "right_", _COCO_LIMBS, "nose", "left_eye", "right_eye"),
               **_face_recipes("left_", "right_", "nose", "eye", "ear")},
    "blazepose33": {
        **_coco_like_recipes("left_", "right_", _COCO_LIMBS, "nose", "left_eye", "right_eye"),
        **_face_recipes("left_", "right_", "nose", "eye", "ear"),
        "l_heel": _direct("left_heel"), "r_heel": _direct("right_heel"),
        "l_big_toe": _direct("left_foot_index", _BLAZEPOSE_TOE_NOTE),
        "r_big_toe": _direct("right_foot_index", _BLAZEPOSE_TOE_NOTE),
        **{f"{side}_{finger}": _direct(f"{prefix}{finger}", _BLAZEPOSE_HAND_NOTE)
           for side, prefix in (("l", "left_"), ("r", "right_")) for finger in ("index", "pinky", "thumb")},
    },
    "body25": {
        **_coco_like_recipes("L", "R", _OP_LIMBS, "Nose", "LEye", "REye"),
        **_face_recipes("L", "R", "Nose", "Eye", "Ear"),
        **_feet_recipes("L", "R", "Heel", "BigToe", "same point"),
        # OpenPose's MidHip and Neck are trained on exactly these midpoints, with their own confidence.
        "pelvis": _direct("MidHip", "OpenPose MidHip (trained as mid-hips); " + _HIP_NOTE),
        "thorax": _direct("Neck", "OpenPose Neck (trained as mid-shoulders); " + _THORAX_NOTE),
        "spine": _mid("MidHip", "Neck", "spine = midpoint of MidHip and Neck (see coco17 spine note)"),
    },
    "body25b": {
        **_coco_like_recipes("L", "R", _OP_LIMBS, "Nose", "LEye", "REye"),
        **_face_recipes("L", "R", "Nose", "Eye", "Ear"),
        **_feet_recipes("L", "R", "Heel", "BigToe", "same point"),
        "neck": _direct("UpperNeck", "UpperNeck (top of the neck, under the chin): on the head's axis, "
                                     "~2-4 cm below and behind H36M's neck/nose joint"),
        "head": _direct("HeadTop", "HeadTop: H36M's head joint is near the crown (within ~3 cm)"),
    },
}


class LayoutMapping:
    """Maps keypoints of a detector layout into a solver layout (H36M-17 or the full body).

    Each target joint is a weighted mean of source joints (direct joints, midpoints, interpolations),
    its confidence the minimum confidence of its sources. Joints the layout cannot give, and proxy
    joints when ``allow_proxies`` is False, are unsupported: NaN coordinates and zero confidence.
    Outputs whose confidence is zero (a source missed, e.g. OpenPose's ``0, 0, 0``) get NaN coordinates.

    Args:
        src: the source layout (name or :class:`Layout`).
        recipes: per-target-joint recipe; default: the built-in one for ``src``.
        allow_proxies: keep joints derived from a different anatomical point (nose for neck, mid-eyes
            for head). Set False for evaluation, where a biased head would count as an error.
        dst: the solver layout mapped into (name or :class:`Skeleton`; default ``h36m17``).
    """

    def __init__(
        self,
        src: str | Layout,
        recipes: dict[str, JointRecipe] | None = None,
        allow_proxies: bool = True,
        dst: str | Skeleton = "h36m17",
    ) -> None:
        self.src = get_layout(src)
        target = get_skeleton(dst) if isinstance(dst, str) else dst
        self.dst = skeleton_layout(target)
        if recipes is None:
            if self.src.name in SKELETONS:
                recipes = {j: _direct(j) for j in self.src.joints if j in target.joints}
            elif self.src.name in _RECIPES:
                recipes = {j: r for j, r in _RECIPES[self.src.name].items() if j in target.joints}
            else:
                raise KeyError(f"no built-in mapping from {self.src.name}; pass recipes=")
        unknown = set(recipes) - set(self.dst.joints)
        if unknown:
            raise KeyError(f"recipes name joints that {target.name} lacks: {sorted(unknown)}")
        self.recipes: dict[str, JointRecipe] = {
            j: r for j, r in recipes.items() if allow_proxies or not r.proxy
        }
        width = max((len(r.sources) for r in self.recipes.values()), default=1)
        J = self.dst.num_joints
        self._index = np.zeros((J, width), dtype=np.int64)
        self._weight = np.zeros((J, width))
        self._used = np.zeros((J, width), dtype=bool)
        for j, name in enumerate(self.dst.joints):
            r = self.recipes.get(name)
            if r is None:
                continue
            for k, (s, w) in enumerate(zip(r.sources, r.weights, strict=True)):
                self._index[j, k] = self.src.index(s)
                self._weight[j, k] = w
                self._used[j, k] = True

    @property
    def supported(self) -> np.ndarray:
        """``(J,)`` bool: which target joints this mapping gives."""
        return np.asarray(self._used.any(axis=1), dtype=bool)

    @property
    def unsupported_joints(self) -> list[str]:
        return [n for n, s in zip(self.dst.joints, self.supported, strict=True) if not s]

    def describe(self) -> dict[str, str]:
        """Target joint → how it is obtained (or ``unsupported``)."""
        return {
            n: (self.recipes[n].note if n in self.recipes else "unsupported") for n in self.dst.joints
        }

    def __call__(self, keypoints: np.ndarray) -> np.ndarray:
        """``(..., J_src, D)`` → ``(..., J, D)``; ``D`` = 3 ``[x, y, conf]`` or 4 ``[x, y, z, conf]``."""
        kp = np.asarray(keypoints, dtype=np.float64)
        if kp.ndim < 2 or kp.shape[-2] != self.src.num_joints or kp.shape[-1] not in (3, 4):
            raise ValueError(
                f"keypoints must have shape (..., {self.src.num_joints}, 3 or 4) for {self.src.name}, "
                f"got {kp.shape}"
            )
        gathered = kp[..., self._index, :]  # (..., J, K, D)
        xyz = gathered[..., :-1]
        conf = gathered[..., -1]
        used = self._used
        coords = np.where(used[..., None], xyz * self._weight[..., None], 0.0).sum(axis=-2)
        conf = np.nan_to_num(conf, nan=0.0)
        out_conf = np.where(used, conf, np.inf).min(axis=-1)
        out_conf = np.where(self.supported, np.maximum(out_conf, 0.0), 0.0)
        coords = np.where((out_conf > 0)[..., None], coords, np.nan)
        return np.concatenate([coords, out_conf[..., None]], axis=-1)


def map_keypoints(
    keypoints: np.ndarray, src_layout: str | Layout, dst: str = "h36m17", allow_proxies: bool = True
) -> np.ndarray:
    """Keypoints ``(..., J_src, D)`` of ``src_layout`` in the solver layout ``dst`` ``(..., J, D)``.

    ``D`` is 3 (``[x, y, confidence]``) or 4 (``[x, y, z, confidence]``); ``dst`` is ``h36m17`` or
    ``crosspose-body32``. See :class:`LayoutMapping` for the derived and unsupported joints.
    """
    target = get_layout(dst).name
    if target not in SKELETONS:
        raise ValueError(f"dst must be a solver layout ({', '.join(SKELETONS)}), got {dst!r}")
    return LayoutMapping(src_layout, allow_proxies=allow_proxies, dst=target)(keypoints)


def head_size(joints: np.ndarray, skeleton: Skeleton = H36M17) -> np.ndarray:
    """``(..., J, D)`` coordinates (no confidence column) → ``(...,)`` neck→head distance.

    The head-size normaliser of JDR in H36M (Qiu et al. follow MET: a joint is detected when its error
    is below half the head size).
    """
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim < 2 or j.shape[-2] != skeleton.num_joints:
        raise ValueError(f"joints must have shape (..., {skeleton.num_joints}, D), got {j.shape}")
    return np.linalg.norm(j[..., skeleton.index("head"), :] - j[..., skeleton.index("neck"), :], axis=-1)


def joint_detection_rate(
    predicted: np.ndarray, truth: np.ndarray, fraction: float = 0.5, skeleton: Skeleton = H36M17
) -> np.ndarray:
    """Per-joint detection rate ``(J,)``: share of frames whose error is below ``fraction`` × head size.

    Args:
        predicted: ``(N, J, D)`` coordinates; NaN counts as not detected.
        truth: ``(N, J, D)`` ground truth; its head size (neck→head) sets each frame's threshold.
    """
    p = np.asarray(predicted, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 3:
        raise ValueError(f"predicted and truth must both be (N, J, D), got {p.shape} and {t.shape}")
    err = np.linalg.norm(p - t, axis=-1)
    thresh = fraction * head_size(t, skeleton)[:, None]
    hit = np.where(np.isnan(err), False, err <= thresh)
    rate: np.ndarray = hit.mean(axis=0)
    return rate
