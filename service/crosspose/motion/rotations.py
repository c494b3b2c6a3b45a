"""Joint rotations from 3D joint positions of a layout: swing-twist with twists from the body's planes.

Each bone's global orientation maps its rest direction onto its segment (the *swing*); the spin about
the segment (the *twist*) comes from a plane of the body (see :mod:`crosspose.motion.bones`):

- trunk bones (hips, spine, chest, neck) take their twist from the hip line and/or the shoulder line,
  which are never parallel to those segments in a human pose; the head takes it from the face's
  forward direction (the plane of thorax, nose and eyes, see :func:`face_reference`), so a head turn
  with still shoulders is a head yaw; where the head joints carry no facing information (joints on the
  cervical axis, or thorax, nose and eyes nearly in line) it blends into the shoulder line's twist;
- upper arms and thighs take it from the limb's bending plane (elbow / knee flexion), which is
  undefined when the limb is straight: below 15° of flexion the twist (about the segment, relative to
  the plain swing from the parent) of the last clearly bent frame is held, between 15° and 30° it
  blends into the measured one, so it never spins on noise;
- clavicles, forearms and shins are pure swings from their parent (hinges and a sliding clavicle);
- with the full body's extremities, the head takes its twist from the ear line, a foot its frame from the
  sole (heel → big toe) and the ankle above it, a hand from wrist → index and pinky → index (its roll
  blended with the previous frame's where that palm line is short, :data:`~.recipes.ROLL_TRUST`); in
  H36M-17, which has no joint beyond the wrist and ankle, hands and feet keep the identity;
- the toes (full body only) keep the identity relative to the foot: the plane of ankle, heel and big
  toe is the foot's frame already, and one toe point gives no toe flexion
  (:class:`~crosspose.motion.recipes.Attached`). H36M-17 does not carry them.

Which joints drive which bone is data keyed by joint name (:mod:`crosspose.motion.recipes`), resolved
for the layout of the joints (:func:`crosspose.motion.humanoid.humanoid_map`; default Human3.6M-17);
a layout without a mapping is refused with a ``ValueError`` naming the joints it lacks.

Missing joints (NaN, or confidence below ``min_confidence``) hold the bone's previous local rotation;
quaternion signs are chosen nearest the previous frame. :func:`solve_rotations` (a take, vectorised
over frames in numpy) and :class:`LiveRotations` (frame by frame, the same steps on plain floats in
:mod:`crosspose.motion._frame`, ~0.2-0.4 ms) agree to rounding (``tests/motion`` checks 1e-9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from crosspose.motion._frame import solve_frame
from crosspose.motion.bones import RestPose, estimate_rest_pose, yup_to_zup, zup_to_yup
from crosspose.motion.humanoid import BONE_PARENTS, BONES, REST_DIRECTIONS, HumanoidMap, humanoid_map
from crosspose.motion.quaternions import (
    axis_angle_matrix,
    make_continuous,
    matrix_to_quat,
    quat_to_matrix,
    swing_matrix,
)
from crosspose.motion.recipes import (
    BENT_DEG,
    FACE_BEND_DEG,
    FACE_RATIO,
    FACE_TURN_DEG,
    ROLL_TRUST,
    STRAIGHT_DEG,
)
from crosspose.skeleton import H36M17, Skeleton

B = len(BONES)
_X, _Y, _Z = np.eye(3)

@dataclass(frozen=True, eq=False)
class Motion:
    """Rotations of :data:`~crosspose.motion.bones.BONES` over a take.

    Attributes:
        rest: the rest pose the rotations are relative to.
        root: ``(N, 3)`` hips position, metres, Y-up export world.
        rotations: ``(N, B, 4)`` local unit quaternions ``(w, x, y, z)`` of each bone of :data:`BONES`
            relative to its parent, the rest pose being the identity everywhere (bones the layout does not
            carry, ``humanoid_map(skeleton).bones``, keep the identity and are left out of the files).
        fps: frames per second.
        skeleton: the layout of the joints the rotations were solved from (what
            :func:`joints_from_fk` gives back).
    """

    rest: RestPose
    root: np.ndarray
    rotations: np.ndarray
    fps: float
    skeleton: Skeleton = H36M17

    def __post_init__(self) -> None:
        n = self.root.shape[0]
        if self.root.shape != (n, 3) or self.rotations.shape != (n, B, 4):
            raise ValueError(f"root must be (N, 3) and rotations (N, {B}, 4); got {self.root.shape} and "
                             f"{self.rotations.shape}")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.root.shape[0])


# ---------------------------------------------------------------------------------------------------
# vectorised solver (the single-frame twin is crosspose.motion._frame)


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.sqrt((v * v).sum(-1))
    return v / np.maximum(n, 1e-12)[..., None], n


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                     a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], -1)


def _frame(primary: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal frames ``(N, 3, 3)`` (columns: primary, reference ⟂ primary, their cross) and validity."""
    e1, n1 = _unit(primary)
    ref_unit, nr = _unit(reference)
    r = ref_unit - (ref_unit * e1).sum(-1)[..., None] * e1
    e2, n2 = _unit(r)
    ok = (n1 > 1e-6) & (nr > 1e-9) & (n2 > 0.1)  # reference at least ~6° off the primary axis
    return np.stack([e1, e2, _cross(e1, e2)], -1), ok


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


_SIN_BEND = tuple(np.sin(np.radians(FACE_BEND_DEG)))
_COS_TURN = tuple(np.cos(np.radians(FACE_TURN_DEG)))


def face_reference(P: np.ndarray, ok: np.ndarray, humanoid: HumanoidMap | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The head bone's twist reference: the face's forward direction, blended with the shoulders'.

    Args:
        P: ``(N, J, 3)`` joints (any right-handed world; Y-up here) of ``humanoid``'s layout.
        ok: ``(N, J)`` usable joints.
        humanoid: the layout's bones (default: Human3.6M-17's).
    Returns:
        ``(N, 3)`` forward reference perpendicular to the head segment (neck → head; rest direction +Z),
        unit where the weight is 0 or 1, and ``(N,)`` the weight ``w`` of the face direction in it
        (0: the shoulder line's twist, as the chest and neck). See :mod:`crosspose.motion.recipes` for
        the method and why; NaN only where the head segment or the shoulders are not finite.
    """
    THORAX, NECK, HEAD, L_SHOULDER, R_SHOULDER = (humanoid or humanoid_map(H36M17)).face
    seg = P[:, HEAD] - P[:, NECK]
    e1, head_len = _unit(seg)
    shoulder_fwd = _unit(_cross(P[:, L_SHOULDER] - P[:, R_SHOULDER], e1))[0]
    v, neck_len = _unit(P[:, NECK] - P[:, THORAX])
    face, sin_bend = _unit(v - (v * e1).sum(-1)[..., None] * e1)
    ratio = head_len / np.maximum(neck_len, 1e-12)
    cos_turn = (face * shoulder_fwd).sum(-1)
    with np.errstate(invalid="ignore"):
        w = (_smooth((FACE_RATIO[1] - ratio) / (FACE_RATIO[1] - FACE_RATIO[0]))
             * _smooth((sin_bend - _SIN_BEND[0]) / (_SIN_BEND[1] - _SIN_BEND[0]))
             * _smooth((cos_turn - _COS_TURN[1]) / (_COS_TURN[0] - _COS_TURN[1])))
    usable = (ok[:, THORAX] & ok[:, NECK] & ok[:, HEAD] & np.isfinite(w)
              & (neck_len > 1e-6) & (head_len > 1e-6))
    w = np.where(usable, w, 0.0)
    blended = w[:, None] * np.where(usable[:, None], face, 0.0) + (1 - w)[:, None] * shoulder_fwd
    return blended, w


def _ffill(values: np.ndarray, valid: np.ndarray, seed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Forward-fill ``values`` ``(N, ...)`` over frames where ``valid`` is False, starting from ``seed``.

    Returns the filled values and ``(N,)`` whether each frame has a value (False only before the first
    valid frame when ``seed`` is None).
    """
    n = values.shape[0]
    idx = np.maximum.accumulate(np.where(valid, np.arange(n), -1)) if n else np.zeros(0, dtype=np.int64)
    out = values[np.maximum(idx, 0)]
    known = idx >= 0
    if seed is not None and not known.all():
        out[~known] = seed
        known[:] = True
    return out, known


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _trusted_roll(L: np.ndarray, valid: np.ndarray, d: np.ndarray, dref: np.ndarray, reference: np.ndarray,
                  e1: np.ndarray, trust: tuple[float, float], previous: float
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """A trunk bone's ``(N, 3, 3)`` measured local rotations ``L`` with their roll about the segment
    blended with the previous frame's where the reference line is short (:data:`~.recipes.ROLL_TRUST`).

    ``L`` is split into the swing of the rest segment ``d`` onto its measured direction ``u = L d`` and the
    roll ``φ`` about ``u`` (the angle from the swung rest reference ``dref`` to the measured one). With the
    reference's length across the segment (``reference (N, 3)``, ``e1 (N, 3)`` the segment's unit vector in
    the same world) giving a weight ``w`` (smoothstep between the two ``trust`` lengths), each valid
    frame's roll is ``θ = θ_prev + w · wrap(φ − θ_prev)``; ``w = 1`` gives ``L`` back. Frames not ``valid``
    keep ``θ_prev`` (the caller holds their rotation); ``previous`` is the roll before the first frame
    (NaN: none, the first valid frame's is taken as measured).

    Returns the rotations, the validity (also False where the swing is undefined) and the last roll.
    """
    u = (L @ d)
    swing, swing_ok = swing_matrix(d, u)
    valid = valid & swing_ok
    a, b = swing @ dref, L @ dref  # (N, 3) both across u
    phi = np.arctan2((_cross(a, b) * u).sum(-1), (a * b).sum(-1))
    across = reference - (reference * e1).sum(-1)[..., None] * e1
    w = _smooth((np.sqrt((across * across).sum(-1)) - trust[0]) / (trust[1] - trust[0]))
    theta = np.zeros(len(L))
    last = previous
    for i in np.flatnonzero(valid).tolist():  # a recursion over the frames: plain floats
        f, wi = float(phi[i]), float(w[i])
        last = f if math.isnan(last) else last + wi * ((f - last + math.pi) % (2 * math.pi) - math.pi)
        theta[i] = last
    return axis_angle_matrix(u, theta) @ swing, valid, last


@dataclass
class _State:
    """What carries from one block of frames to the next."""

    root: np.ndarray | None = None
    local: np.ndarray = field(default_factory=lambda: np.broadcast_to(np.eye(3), (B, 3, 3)).copy())
    quat: np.ndarray | None = None
    twist: np.ndarray = field(default_factory=lambda: np.zeros(0))
    roll: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (m.rolled,) rad, NaN: none yet

    @classmethod
    def start(cls, m: HumanoidMap) -> _State:
        """Nothing known yet about a performer of ``m``'s layout."""
        return cls(twist=np.zeros(len(m.limbs)), roll=np.full(len(m.rolled), np.nan))


def _solve_block(P: np.ndarray, ok: np.ndarray, state: _State, m: HumanoidMap
                 ) -> tuple[np.ndarray, np.ndarray, _State]:
    """``(N, J, 3)`` Y-up joints and ``(N, J)`` usable mask (``m``'s layout) → root ``(N, 3)``, quaternions
    ``(N, B, 4)`` and the new state."""
    n = P.shape[0]
    local = np.empty((n, B, 3, 3))
    glob = np.empty((n, B, 3, 3))
    twist = state.twist.copy()
    roll = state.roll.copy()
    eye = np.broadcast_to(np.eye(3), (n, 3, 3))
    for b, name in enumerate(BONES):
        p = BONE_PARENTS[b]
        Gp = eye if p < 0 else glob[:, p]
        d = REST_DIRECTIONS[b]
        if name in m.fixed:
            L = eye.copy()
            valid = np.ones(n, dtype=bool)
        elif name in m.trunk:
            (a, c), d, ref, dref = m.trunk[name]
            joints = (a, c, *m.references[ref])
            if ref == "both":
                r_hip, l_hip, r_sho, l_sho = m.references[ref]
                reference = (_unit(P[:, l_hip] - P[:, r_hip])[0]
                             + _unit(P[:, l_sho] - P[:, r_sho])[0])
            elif ref == "face":
                reference = face_reference(P, ok, m)[0]
            else:
                i, j = m.references[ref]
                reference = P[:, j] - P[:, i]
            M, valid = _frame(P[:, c] - P[:, a], reference)
            rest = np.stack([d, dref, _cross(d, dref)], -1)
            G = M @ rest.T
            L = G if p < 0 else np.swapaxes(Gp, -1, -2) @ G
            valid &= ok[:, list(joints)].all(-1)
            if name in m.rolled:
                k = m.rolled[name]
                L, valid, roll[k] = _trusted_roll(L, valid, d, dref, reference, M[..., 0], ROLL_TRUST[ref],
                                                  roll[k])
        else:
            head, tail = m.limbs[name][:2] if name in m.limbs else m.swings[name]
            GpT = np.swapaxes(Gp, -1, -2)
            u, length = _unit((GpT @ (P[:, tail] - P[:, head])[..., None])[..., 0])
            L, valid = swing_matrix(d, u)
            valid &= (length > 1e-6) & ok[:, head] & ok[:, tail]
            if name in m.limbs:
                k = m.limb_index[name]
                tip, rest_bend = m.limbs[name][2:]
                c = (GpT @ (P[:, tip] - P[:, tail])[..., None])[..., 0]
                along = (c * u).sum(-1)
                perp = c - along[..., None] * u
                flexion = np.degrees(np.arctan2(np.sqrt((perp * perp).sum(-1)), along))
                w = np.clip((flexion - STRAIGHT_DEG) / (BENT_DEG - STRAIGHT_DEG), 0.0, 1.0)
                w = np.where(ok[:, tip] & valid & np.isfinite(w), w * w * (3 - 2 * w), 0.0)
                base = (L @ rest_bend)
                bend = np.arctan2((_cross(base, perp) * u).sum(-1), (base * perp).sum(-1))
                bend = np.where(w > 0, bend, 0.0)  # as the single-frame path: no tip, no bend (and no NaN)
                full = w >= 1.0
                held, _ = _ffill(np.concatenate([[twist[k]], np.where(full, bend, 0.0)]),
                                 np.concatenate([[True], full]), None)
                before = held[:-1]  # the last fully bent twist strictly before each frame
                theta = before + w * _wrap(bend - before)
                twist[k] = held[-1]
                L = axis_angle_matrix(u, np.where(valid, theta, 0.0)) @ L
        finite = np.asarray(np.isfinite(L).all(axis=(-1, -2)))
        L = np.where(finite[:, None, None], L, np.eye(3))
        local[:, b], _ = _ffill(L, valid, state.local[b])
        glob[:, b] = local[:, b] if p < 0 else Gp @ local[:, b]
    quat = make_continuous(matrix_to_quat(local), state.quat)
    root, known = _ffill(P[:, m.pelvis], ok[:, m.pelvis], state.root)
    if not known.all():
        first = np.flatnonzero(known)
        root[~known] = root[first[0]] if first.size else np.nan
    new = _State(
        root=root[-1].copy() if n and known.any() else state.root,
        local=local[-1].copy() if n else state.local,
        quat=quat[-1].copy() if n else state.quat,
        twist=twist,
        roll=roll,
    )
    return root, quat, new


def _usable(joints: np.ndarray, confidence: np.ndarray | None, min_confidence: float) -> np.ndarray:
    ok = np.isfinite(joints).all(-1)
    if confidence is not None:
        ok &= np.nan_to_num(confidence, nan=0.0) >= min_confidence
    return ok


def _check(joints: np.ndarray, confidence: np.ndarray | None, batch: bool, skeleton: Skeleton
           ) -> tuple[np.ndarray, np.ndarray | None]:
    joints = np.asarray(joints, dtype=np.float64)
    shape = (skeleton.num_joints, 3)
    if (joints.ndim != 3 or joints.shape[1:] != shape) if batch else joints.shape != shape:
        expected = f"({'N, ' if batch else ''}{shape[0]}, 3)"
        raise ValueError(f"joints must have shape {expected} ({skeleton.name}, metres, Z up), got "
                         f"{joints.shape}")
    if confidence is not None:
        confidence = np.asarray(confidence, dtype=np.float64)
        if confidence.shape != joints.shape[:-1]:
            raise ValueError(f"confidence must have shape {joints.shape[:-1]}, got {confidence.shape}")
    return joints, confidence


def solve_rotations(joints: np.ndarray, rest: RestPose | None = None, confidence: np.ndarray | None = None,
                    fps: float = 60.0, min_confidence: float = 0.1, skeleton: Skeleton = H36M17) -> Motion:
    """Local bone rotations of a take.

    Args:
        joints: ``(N, J, 3)`` joints of ``skeleton``, metres, our Z-up world; NaN = missing.
        rest: the rest pose (default: :func:`~crosspose.motion.bones.estimate_rest_pose` of the take).
        confidence: ``(N, J)``; joints below ``min_confidence`` count as missing.
        fps: frame rate recorded in the result.
        skeleton: the joints' layout.
    Returns:
        :class:`Motion` (root and rotations in the Y-up export world).
    Raises:
        ValueError: shapes that do not match ``skeleton``, or a layout without a humanoid mapping.
    """
    joints, confidence = _check(joints, confidence, batch=True, skeleton=skeleton)
    m = humanoid_map(skeleton)
    if rest is None:
        rest = estimate_rest_pose(joints, confidence, skeleton=skeleton)
    ok = _usable(joints, confidence, min_confidence)
    root, quat, _ = _solve_block(zup_to_yup(joints), ok, _State.start(m), m)
    if np.isnan(root).any():
        root = np.nan_to_num(root)  # no pelvis in the whole take: the root stays at the origin
    return Motion(rest, root, quat, float(fps), skeleton)


def forward_kinematics(motion: Motion) -> np.ndarray:
    """``(N, B, 3)`` bone head positions (metres, Y up) of ``motion`` applied to its rest pose."""
    R = quat_to_matrix(motion.rotations)  # (N, B, 3, 3)
    n = motion.num_frames
    pos = np.empty((n, B, 3))
    glob = np.empty((n, B, 3, 3))
    for b in range(B):
        p = BONE_PARENTS[b]
        if p < 0:
            glob[:, b] = R[:, b]
            pos[:, b] = motion.root
        else:
            glob[:, b] = glob[:, p] @ R[:, b]
            pos[:, b] = pos[:, p] + glob[:, p] @ motion.rest.offsets[b]
    return pos


def joints_from_fk(motion: Motion) -> np.ndarray:
    """``(N, J, 3)`` joints of ``motion.skeleton`` (metres, **Z up**) that forward kinematics of ``motion``
    gives: each bone's head joint, and the joint a leaf bone points at from its end site; NaN for joints
    no bone reads."""
    m = humanoid_map(motion.skeleton)
    pos = forward_kinematics(motion)
    out = np.full((motion.num_frames, motion.skeleton.num_joints, 3), np.nan)
    for b, j in enumerate(m.head):
        if j >= 0:
            out[:, j] = pos[:, b]
    R = quat_to_matrix(motion.rotations)
    for h, tail in enumerate(m.tail):
        if tail < 0 or tail in m.head:
            continue
        glob = np.broadcast_to(np.eye(3), (*R.shape[:1], 3, 3)).copy()
        for b in _chain(h):
            glob = glob @ R[:, b]
        out[:, tail] = pos[:, h] + glob @ motion.rest.ends[h]
    return yup_to_zup(out)


def _chain(b: int) -> list[int]:
    out = []
    while b >= 0:
        out.append(b)
        b = BONE_PARENTS[b]
    return out[::-1]


_WARMUP_MAX_MISSING = 5


class LiveRotations:
    """Frame-by-frame :func:`solve_rotations` for streaming (same results on the same frames).

    Without a rest pose, the first ``warmup_frames`` frames whose trunk (pelvis, hips, spine, thorax) and
    all but at most 5 of the joints the bones read (12 of H36M-17's 17) reach ``warmup_confidence``
    estimate one (:func:`~crosspose.motion.bones.estimate_rest_pose`, the less confident joints left out);
    :meth:`update` returns None until then.

    Args:
        skeleton: the layout of the joints it is given (one with a humanoid mapping).
    """

    def __init__(self, rest: RestPose | None = None, warmup_frames: int = 30, min_confidence: float = 0.1,
                 warmup_confidence: float = 0.5, skeleton: Skeleton = H36M17) -> None:
        if warmup_frames < 1:
            raise ValueError(f"warmup_frames must be at least 1, got {warmup_frames}")
        self.skeleton = skeleton
        self._map = humanoid_map(skeleton)
        self._warmup_core = [self._map.pelvis, self._map.l_hip, self._map.r_hip, self._map.spine,
                             self._map.thorax]
        self._warmup_min = len(self._map.joints) - _WARMUP_MAX_MISSING
        self._given = rest
        self.warmup_frames = int(warmup_frames)
        self.min_confidence = float(min_confidence)
        self.warmup_confidence = float(warmup_confidence)
        self.reset()

    @property
    def rest(self) -> RestPose | None:
        """The rest pose in use (None while it is being estimated)."""
        return self._rest

    def reset(self) -> None:
        """Forget the performer: state, and the estimated rest pose (a given one is kept)."""
        self._rest = self._given
        self._state = _State.start(self._map)
        self._warmup: list[np.ndarray] = []

    def update(self, joints: np.ndarray, confidence: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray] | None:
        """One frame: ``(J, 3)`` joints (metres, Z up) and ``(J,)`` confidence → ``(root (3,) Y-up m,
        rotations (B, 4) wxyz local)``, or None while no rest pose (or no pelvis yet) is known."""
        joints, confidence = _check(joints, confidence, batch=False, skeleton=self.skeleton)
        ok = _usable(joints, confidence, self.min_confidence)
        if self._rest is None:
            conf_ok = ok if confidence is None else ok & (confidence >= self.warmup_confidence)
            if conf_ok[self._warmup_core].all() and conf_ok[list(self._map.joints)].sum() >= self._warmup_min:
                self._warmup.append(np.where(conf_ok[:, None], joints, np.nan))
            if len(self._warmup) < self.warmup_frames:
                return None
            self._rest = estimate_rest_pose(np.stack(self._warmup), skeleton=self.skeleton)
            self._warmup = []
        j = joints.tolist()
        P = [(y, z, x) for x, y, z in j]  # zup_to_yup
        okl = ok.tolist()
        state = self._state
        local_prev = [tuple(m) for m in state.local.reshape(B, 9).tolist()]
        quat_prev = None if state.quat is None else [tuple(q) for q in state.quat.tolist()]
        local, quats, twist, roll = solve_frame(
            P, okl, local_prev, quat_prev, state.twist.tolist(), state.roll.tolist(), self._map)
        pelvis = self._map.pelvis
        root = np.array(P[pelvis]) if okl[pelvis] else state.root
        quat = np.array(quats)
        self._state = _State(root=root, local=np.array(local).reshape(B, 3, 3), quat=quat,
                             twist=np.array(twist), roll=np.array(roll, dtype=np.float64))
        if root is None:
            return None
        return root.copy(), quat.copy()
