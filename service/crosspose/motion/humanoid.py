"""The humanoid bone hierarchy every layout drives, and a layout's mapping onto it.

The bones (:data:`BONES`, their parents, Unity names and rest directions) are the same for every joint
layout; which joints drive them is :data:`crosspose.motion.recipes.BONE_RECIPES`, keyed by joint name.
:func:`humanoid_map` resolves that table against a :class:`~crosspose.skeleton.Skeleton` into joint
indices, and refuses a layout that lacks the joints some bone needs (a ``ValueError`` naming the
layout, the bone and the joints) — except the optional bones
(:data:`~crosspose.motion.recipes.OPTIONAL_BONES`: the toes), which a layout without their joints
simply does not carry (:attr:`HumanoidMap.bones`).

Every rotation array of :mod:`crosspose.motion` covers all of :data:`BONES` (a bone the layout does not
carry keeps the identity there); what leaves the package (BVH, JSON lines, VMC, the websocket) is the
layout's :attr:`HumanoidMap.bones` only. The optional bones come last in :data:`BONES`, so a layout
without them carries exactly the first 19, in the order they had before the toes were added.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from crosspose.motion.recipes import (
    BONE_RECIPES,
    FACE_JOINTS,
    OPTIONAL_BONES,
    REFERENCES,
    ROLL_TRUST,
    Attached,
    Fixed,
    Limb,
    Recipe,
    Swing,
    Trunk,
)
from crosspose.skeleton import Skeleton

BONES: tuple[str, ...] = (
    "hips", "spine", "chest", "neck", "head",
    "right_upper_leg", "right_lower_leg", "right_foot",
    "left_upper_leg", "left_lower_leg", "left_foot",
    "left_shoulder", "left_upper_arm", "left_lower_arm", "left_hand",
    "right_shoulder", "right_upper_arm", "right_lower_arm", "right_hand",
    "left_toes", "right_toes",
)
BONE_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 0, 5, 6, 0, 8, 9, 2, 11, 12, 13, 2, 15, 16, 17, 10, 7)

#: Our bone → Unity ``HumanBodyBones`` name (what VMC receivers expect).
UNITY_BONES: dict[str, str] = {
    "hips": "Hips", "spine": "Spine", "chest": "Chest", "neck": "Neck", "head": "Head",
    "right_upper_leg": "RightUpperLeg", "right_lower_leg": "RightLowerLeg", "right_foot": "RightFoot",
    "left_upper_leg": "LeftUpperLeg", "left_lower_leg": "LeftLowerLeg", "left_foot": "LeftFoot",
    "left_shoulder": "LeftShoulder", "left_upper_arm": "LeftUpperArm", "left_lower_arm": "LeftLowerArm",
    "left_hand": "LeftHand",
    "right_shoulder": "RightShoulder", "right_upper_arm": "RightUpperArm",
    "right_lower_arm": "RightLowerArm", "right_hand": "RightHand",
    "left_toes": "LeftToes", "right_toes": "RightToes",
}

_X, _Y, _Z = np.eye(3)
#: Rest-pose direction (unit, Y-up) of each bone's segment (zeros: no segment).
REST_DIRECTIONS = np.array([
    _X * 0, _Y, _Y, _Y, _Y,
    -_Y, -_Y, _X * 0, -_Y, -_Y, _X * 0,
    _X, _X, _X, _X * 0, -_X, -_X, -_X, _X * 0,
    _X * 0, _X * 0,
])


@dataclass(frozen=True, eq=False)
class HumanoidMap:
    """:data:`BONES` driven by the joints of one layout (indices into its joint axis).

    Attributes:
        skeleton: the layout.
        recipes: the recipe chosen for each bone (names).
        bones: the bones the layout carries (names, :data:`BONES` order: all but the optional bones it
            lacks the joints for); ``bone_index`` their indices in :data:`BONES`, ``bone_parents`` each
            one's parent as a position in ``bones`` (-1: the root).
        head: ``(B,)`` joint at each bone's head (forward kinematics reproduces it; -1: a bone the layout
            does not carry).
        tail: ``(B,)`` joint each bone points at (-1: none).
        trunk: trunk bone → ``((a, b), rest direction, reference name, reference rest direction)``.
        references: reference name → its joints.
        rolled: the trunk bones whose reference is in :data:`~crosspose.motion.recipes.ROLL_TRUST` (the
            hands: their roll blends with the previous frame's where the palm line is short), numbered.
        limbs: limb bone → ``(head, tail, tip, rest bend direction)``; ``limb_index`` numbers them.
        swings: swing bone → ``(head, tail)``.
        fixed: bones that keep the identity (also the ones the layout does not carry).
        attached: :class:`~crosspose.motion.recipes.Attached` bone → ``(head joint, joints of its
            parent's frame)``.
        face: the joints of :data:`~crosspose.motion.recipes.FACE_JOINTS` (thorax, neck, head, l/r shoulder).
        pelvis, l_hip, r_hip, spine, thorax: the joints the hips frame, the root and the rest-pose warm-up
            read (heads of hips / upper legs, tails of spine / chest).
        joints: every joint some bone reads, sorted.
    """

    skeleton: Skeleton
    recipes: tuple[Recipe | None, ...]
    bones: tuple[str, ...]
    bone_index: tuple[int, ...]
    bone_parents: tuple[int, ...]
    head: tuple[int, ...]
    tail: tuple[int, ...]
    trunk: dict[str, tuple[tuple[int, int], np.ndarray, str, np.ndarray]]
    references: dict[str, tuple[int, ...]]
    rolled: dict[str, int]
    limbs: dict[str, tuple[int, int, int, np.ndarray]]
    limb_index: dict[str, int]
    swings: dict[str, tuple[int, int]]
    fixed: tuple[str, ...]
    attached: dict[str, tuple[int, tuple[int, ...]]]
    face: tuple[int, int, int, int, int]
    pelvis: int
    l_hip: int
    r_hip: int
    spine: int
    thorax: int
    joints: tuple[int, ...]


def _choose(skeleton: Skeleton, bone: str) -> Recipe | None:
    names = set(skeleton.joints)
    for recipe in BONE_RECIPES[bone]:
        if names.issuperset(recipe.joints):
            return recipe
    if bone in OPTIONAL_BONES:
        return None
    needs = " or ".join(", ".join(sorted(set(r.joints) - names)) for r in BONE_RECIPES[bone])
    raise ValueError(f"layout {skeleton.name} has no humanoid mapping: bone {bone} needs the joints {needs} "
                     f"(its joints: {', '.join(skeleton.joints)}); add a recipe for it to "
                     "crosspose.motion.recipes.BONE_RECIPES")


@functools.cache
def humanoid_map(skeleton: Skeleton) -> HumanoidMap:
    """The humanoid bones driven by ``skeleton``'s joints. Raises ValueError (naming the layout, the bone and
    the joints it lacks) for a layout some bone has no recipe for."""
    recipes = tuple(_choose(skeleton, bone) for bone in BONES)
    ix = skeleton.index
    trunk, limbs, swings, fixed, attached = {}, {}, {}, [], {}
    for b, (bone, r) in enumerate(zip(BONES, recipes, strict=True)):
        if r is None or isinstance(r, Fixed):
            fixed.append(bone)
        elif isinstance(r, Attached):
            fixed.append(bone)
            attached[bone] = (ix(r.head), tuple(ix(j) for j in r.frame))
            if not isinstance(recipes[BONE_PARENTS[b]], Trunk):
                raise ValueError(f"layout {skeleton.name}: bone {bone} turns with its parent "
                                 f"{BONES[BONE_PARENTS[b]]}, which has no frame of its own in this layout")
        elif isinstance(r, Trunk):
            trunk[bone] = ((ix(r.segment[0]), ix(r.segment[1])), r.rest, r.reference, r.reference_rest)
        elif isinstance(r, Limb):
            limbs[bone] = (ix(r.head), ix(r.tail), ix(r.tip), r.rest_bend)
        else:
            assert isinstance(r, Swing)
            swings[bone] = (ix(r.head), ix(r.tail))
    if set(FACE_JOINTS) - set(skeleton.joints):  # the head bone's recipe names them all today
        raise ValueError(f"layout {skeleton.name} has no humanoid mapping: the head's twist needs the joints "
                         f"{', '.join(sorted(set(FACE_JOINTS) - set(skeleton.joints)))}")
    head = tuple(-1 if r is None else ix(r.head) for r in recipes)
    tail = tuple(-1 if r is None or r.tail is None else ix(r.tail) for r in recipes)
    face = tuple(ix(n) for n in FACE_JOINTS)
    used = {j for r in recipes if r is not None for j in map(ix, r.joints)} | set(face)
    index = tuple(b for b, r in enumerate(recipes) if r is not None)
    return HumanoidMap(
        skeleton=skeleton, recipes=recipes, bones=tuple(BONES[b] for b in index), bone_index=index,
        bone_parents=tuple(-1 if BONE_PARENTS[b] < 0 else index.index(BONE_PARENTS[b]) for b in index),
        head=head, tail=tail, trunk=trunk,
        references={name: tuple(ix(j) for j in joints) for name, joints in REFERENCES.items()
                    if set(joints) <= set(skeleton.joints)},
        rolled={name: i for i, name in enumerate(n for n, t in trunk.items() if t[2] in ROLL_TRUST)},
        limbs=limbs, limb_index={name: i for i, name in enumerate(limbs)}, swings=swings, fixed=tuple(fixed),
        attached=attached, face=face,  # type: ignore[arg-type]
        pelvis=head[BONES.index("hips")], l_hip=head[BONES.index("left_upper_leg")],
        r_hip=head[BONES.index("right_upper_leg")], spine=tail[BONES.index("spine")],
        thorax=tail[BONES.index("chest")], joints=tuple(sorted(used)),
    )
