"""Seeded procedural human motion in the solver's H36M-17 layout, and the :class:`Motion` clip type.

The generator is kinematic: a root trajectory (second-order steering inside the capture volume),
per-action pose parameters (body-frame targets and angles) blended with smooth weights, then
forward kinematics with two-link IK for legs and arms, so every bone has exactly the performer's
length in every frame. World frame: metres, Z up, floor at z = 0 (DESIGN §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from crosspose.skeleton import H36M17, Skeleton

ACTIONS: tuple[str, ...] = ("walk", "reach", "crouch", "turn")

#: Height of the ankle joint above the floor when the foot is flat (m), for the template stature.
ANKLE_HEIGHT = 0.08
#: Stature of the template: ankle height + leg chain + pelvis→head chain (the H36M "head" joint sits
#: near the crown, so this is close to standing height). 1.702 m for the H36M template.
TEMPLATE_STATURE = ANKLE_HEIGHT + sum(
    H36M17.template_lengths[H36M17.index(j)] for j in ("r_knee", "r_ankle")
) + sum(H36M17.template_lengths[H36M17.index(j)] for j in ("spine", "thorax", "neck", "head"))

# The studio generates Human3.6M-17 motion; its joints by name.
_PELVIS, _RHIP, _RKNEE, _RANKLE, _LHIP, _LKNEE, _LANKLE = map(
    H36M17.index, ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle"))
_SPINE, _THORAX, _NECK, _HEAD = map(H36M17.index, ("spine", "thorax", "neck", "head"))
_LSHO, _LELB, _LWRI, _RSHO, _RELB, _RWRI = map(
    H36M17.index, ("l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist"))

# Limits the generator keeps (and the tests check).
MAX_KNEE_FLEXION = np.deg2rad(150.0)
MAX_ELBOW_FLEXION = np.deg2rad(150.0)


@dataclass(frozen=True)
class Performer:
    """Body proportions of one synthetic performer.

    Attributes:
        height: stature (m): ankle height + leg + pelvis→head chain of the H36M-17 tree.
        scale_factors: ``(J,)`` per-bone factor around the uniformly scaled template (1 = template
            proportions; entry ``j`` is the bone from ``parents[j]`` to ``j``; the root's is unused).
    """

    height: float = TEMPLATE_STATURE
    scale_factors: tuple[float, ...] = field(default_factory=lambda: (1.0,) * H36M17.num_joints)

    def __post_init__(self) -> None:
        if not 0.5 < self.height < 2.6:
            raise ValueError(f"performer height must be a plausible stature in metres, got {self.height}")
        if len(self.scale_factors) != H36M17.num_joints:
            raise ValueError(
                f"scale_factors must have {H36M17.num_joints} entries, got {len(self.scale_factors)}"
            )
        if min(self.scale_factors) <= 0:
            raise ValueError("scale_factors must be positive")

    @property
    def scale(self) -> float:
        """Uniform scale of the template that gives this stature (before per-bone factors)."""
        return self.height / TEMPLATE_STATURE

    @property
    def limb_lengths(self) -> np.ndarray:
        """``(J,)`` bone length from each joint's parent to the joint (m; 0 for the root)."""
        return np.asarray(H36M17.template_lengths) * self.scale * np.asarray(self.scale_factors)

    @property
    def ankle_height(self) -> float:
        """Height of the ankle joint over the floor when the foot is flat (m)."""
        return ANKLE_HEIGHT * self.scale

    @classmethod
    def random(cls, rng: np.random.Generator | int | None = None, height: float | None = None) -> Performer:
        """A seeded performer: stature ~ N(1.72, 0.08) m clipped to [1.50, 1.95], per-bone factors
        ~ N(1, 0.04) clipped to [0.9, 1.1], left/right equal up to a 1 % asymmetry."""
        rng = np.random.default_rng(rng)
        h = float(np.clip(rng.normal(1.72, 0.08), 1.50, 1.95)) if height is None else float(height)
        factors = np.ones(H36M17.num_joints)
        for j in range(H36M17.num_joints):
            m = H36M17.mirror[j]
            if j == H36M17.root:
                continue
            if m < j:  # right/left counterpart already drawn: copy it with a small asymmetry
                factors[j] = factors[m] * (1.0 + rng.uniform(-0.01, 0.01))
            else:
                factors[j] = np.clip(rng.normal(1.0, 0.04), 0.9, 1.1)
        return cls(height=h, scale_factors=tuple(float(f) for f in factors))


@dataclass(frozen=True)
class Motion:
    """A clip of 3D joint positions.

    Attributes:
        joints: ``(N, J, 3)`` world positions, metres, float64, Z up, floor at z = 0.
        fps: frames per second.
        performer: the body that produced it (for BVH clips: the measured proportions).
        skeleton: the joint layout (:data:`crosspose.skeleton.H36M17`).
        actions: ``(N,)`` label of the action at each frame (``walk``, ``reach``, … or ``bvh``).
    """

    joints: np.ndarray
    fps: float
    performer: Performer
    skeleton: Skeleton
    actions: np.ndarray

    def __post_init__(self) -> None:
        j = self.joints
        if j.ndim != 3 or j.shape[1:] != (self.skeleton.num_joints, 3):
            raise ValueError(f"joints must have shape (N, {self.skeleton.num_joints}, 3), got {j.shape}")
        if self.actions.shape != (j.shape[0],):
            raise ValueError(f"actions must have shape ({j.shape[0]},), got {self.actions.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def duration(self) -> float:
        """Seconds spanned by the clip."""
        return self.num_frames / self.fps

    @property
    def times(self) -> np.ndarray:
        """``(N,)`` frame times in seconds from the first frame."""
        return np.arange(self.num_frames) / self.fps

    def __len__(self) -> int:
        return self.num_frames


# ---------------------------------------------------------------------------------------------------
# small vector maths (vectorised over frames)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _apply(R: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(N,3,3) @ (N,3)`` or ``(N,3,3) @ (3,)``."""
    return np.einsum("nij,nj->ni", R, np.broadcast_to(v, R.shape[:-1]))


def two_link_ik(
    root: np.ndarray, target: np.ndarray, upper: float, lower: float, pole: np.ndarray, max_flexion: float
) -> tuple[np.ndarray, np.ndarray]:
    """Middle and end joint of a two-bone chain reaching for ``target``.

    Args:
        root: ``(N, 3)`` fixed first joint (hip, shoulder).
        target: ``(N, 3)`` wanted end position; moved along the root→target ray when out of reach
            (beyond 99.9 % of full extension, or closer than the ``max_flexion`` limit allows).
        upper, lower: bone lengths.
        pole: ``(N, 3)`` direction the middle joint bends towards (knee: forward).
        max_flexion: largest flexion angle at the middle joint (rad; 0 = straight).

    The reach limits are soft (softplus, a few millimetres wide) so that a target passing a limit
    bends the path instead of putting a kink (an acceleration spike) into it.

    Returns:
        ``(middle (N, 3), end (N, 3))`` with ``|middle - root| = upper`` and ``|end - middle| = lower``.
    """
    axis = target - root
    dist = np.linalg.norm(axis, axis=-1, keepdims=True)
    u = axis / np.maximum(dist, 1e-12)
    d_min = np.sqrt(upper**2 + lower**2 - 2 * upper * lower * np.cos(np.pi - max_flexion))
    d_max = 0.999 * (upper + lower)
    d = d_min + _softplus(dist - d_min, 0.01)
    d = d_max - _softplus(d_max - d, 0.004)
    a = (upper**2 - lower**2 + d**2) / (2 * d)
    r = np.sqrt(np.maximum(upper**2 - a**2, 0.0))
    side = pole - np.sum(pole * u, axis=-1, keepdims=True) * u
    side = _unit(side)
    middle = root + a * u + r * side
    end = root + d * u
    return middle, end


def _softplus(x: np.ndarray, width: float) -> np.ndarray:
    """Smooth ``max(x, 0)`` with a transition ``width`` wide."""
    return width * np.logaddexp(0.0, x / width)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, C1-smooth between."""
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def flexion_angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Flexion at ``b`` of the chain ``a→b→c`` (rad; 0 = straight), for ``(..., 3)`` points."""
    u = _unit(b - a)
    v = _unit(c - b)
    return np.arccos(np.clip(np.sum(u * v, axis=-1), -1.0, 1.0))


# ---------------------------------------------------------------------------------------------------
# schedule and smoothing


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Hann-window low-pass along axis 0 with edge padding (keeps partitions of unity)."""
    if width < 3:
        return x
    k = np.hanning(width + 2)[1:-1]
    k = k / k.sum()
    pad = width // 2
    xp = np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], width - 1 - pad, 0)], 0)
    out = np.empty_like(x, dtype=np.float64)
    flat = xp.reshape(xp.shape[0], -1)
    res = np.stack([np.convolve(flat[:, i], k, mode="valid") for i in range(flat.shape[1])], -1)
    out[...] = res.reshape(x.shape)
    return out


_DURATIONS = {"walk": (3.0, 6.0), "reach": (2.0, 3.5), "crouch": (2.0, 3.5), "turn": (1.5, 2.5)}


def _schedule(
    rng: np.random.Generator, actions: Sequence[str], n: int, fps: float
) -> list[tuple[str, int, int]]:
    """Segments ``(action, start, stop)`` covering ``n`` frames; every action appears once early on
    (in a random order), then random choices without immediate repeats."""
    segments: list[tuple[str, int, int]] = []
    order = [actions[i] for i in rng.permutation(len(actions))]
    t = 0
    # Shrink durations for short clips so every action still appears.
    total_nominal = sum(np.mean(_DURATIONS[a]) for a in order) * fps
    shrink = min(1.0, n / total_nominal) if total_nominal > 0 else 1.0
    while t < n:
        if order:
            a = order.pop(0)
        else:
            choices = [x for x in actions if not segments or x != segments[-1][0]] or list(actions)
            a = choices[int(rng.integers(len(choices)))]
        lo, hi = _DURATIONS[a]
        length = max(1, round(rng.uniform(lo, hi) * fps * shrink))
        segments.append((a, t, min(n, t + length)))
        t += length
    return segments


# ---------------------------------------------------------------------------------------------------
# root trajectory


def _ray_box_distance(p: np.ndarray, d: np.ndarray, half: np.ndarray) -> float:
    """Distance from ``p`` (inside the box) along unit ``d`` to the box ``|x| <= half``; 0 outside."""
    if np.any(np.abs(p) > half):
        return 0.0
    ts = [((half[i] if d[i] > 0 else -half[i]) - p[i]) / d[i] for i in range(2) if abs(d[i]) > 1e-9]
    return float(min(ts)) if ts else np.inf


def _root_trajectory(
    rng: np.random.Generator,
    segments: list[tuple[str, int, int]],
    walk_weight: np.ndarray,
    n: int,
    fps: float,
    inner: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pelvis ground position ``(N, 2)``, heading ``(N,)`` (rad, 0 = +X) and speed ``(N,)``.

    Second-order (critically damped) tracking of a desired speed and heading: velocity and heading
    rate are continuous. Walking steers to random waypoints in ``inner``; near its border the desired
    speed falls to zero, so the root stays inside while it turns back.
    """
    dt = 1.0 / fps
    w_v, w_h = 3.0, 2.2
    v_pref = rng.uniform(1.0, 1.35)
    pos = rng.uniform(-0.5, 0.5, 2) * inner
    heading = rng.uniform(-np.pi, np.pi)
    heading_rate = 0.0
    v, a_v = 0.0, 0.0

    def new_waypoint(p: np.ndarray) -> np.ndarray:
        best = rng.uniform(-inner, inner)
        for _ in range(8):
            if np.linalg.norm(best - p) > 1.2:
                break
            best = rng.uniform(-inner, inner)
        return best

    waypoint = new_waypoint(pos)
    seg_at = np.empty(n, dtype=int)
    for k, (_, s, e) in enumerate(segments):
        seg_at[s:e] = k
    turn_goal: dict[int, float] = {}
    desired = heading

    out_pos = np.empty((n, 2))
    out_heading = np.empty(n)
    out_speed = np.empty(n)
    for i in range(n):
        k = seg_at[i]
        action = segments[k][0]
        direction = np.array([np.cos(heading), np.sin(heading)])
        if action == "walk":
            if np.linalg.norm(waypoint - pos) < 0.6:
                waypoint = new_waypoint(pos)
            to = waypoint - pos
            desired = float(np.arctan2(to[1], to[0]))
        elif action == "turn":
            if k not in turn_goal:
                turn_goal[k] = heading + rng.choice([-1.0, 1.0]) * rng.uniform(np.pi / 2, np.pi)
            desired = turn_goal[k]
        err = (desired - heading + np.pi) % (2 * np.pi) - np.pi if action != "turn" else desired - heading
        wall = np.clip((_ray_box_distance(pos, direction, inner) - 0.15) / 0.9, 0.0, 1.0)
        align = np.clip(np.cos(err), 0.15, 1.0)
        v_goal = walk_weight[i] * v_pref * wall * align
        # critically damped second-order updates (semi-implicit Euler)
        a_v += dt * (w_v**2 * (v_goal - v) - 2 * w_v * a_v)
        v = max(0.0, v + dt * a_v)
        heading_acc = w_h**2 * err - 2 * w_h * heading_rate
        heading_rate += dt * heading_acc
        heading += dt * heading_rate
        pos = pos + dt * v * np.array([np.cos(heading), np.sin(heading)])
        out_pos[i], out_heading[i], out_speed[i] = pos, heading, v
    return out_pos, out_heading, out_speed


# ---------------------------------------------------------------------------------------------------
# the generator


def _smoothed_triangle(phase: np.ndarray) -> np.ndarray:
    """Triangle wave of period 1 with peaks +1 at 0.25 and -1 at 0.75, low-passed (3 harmonics)."""
    x = 2 * np.pi * phase
    s = np.sin(x) - np.sin(3 * x) / 9 + np.sin(5 * x) / 25
    return s / (1 + 1 / 9 + 1 / 25)


def generate_motion(
    seed: int,
    num_frames: int,
    fps: float = 30.0,
    performer: Performer | None = None,
    actions: Sequence[str] = ACTIONS,
    volume: tuple[float, float] = (2.0, 2.0),
) -> Motion:
    """A seeded clip of plausible, smooth human motion in H36M-17.

    Args:
        seed: everything (performer if not given, schedule, targets, trajectory) follows from it.
        num_frames: ``N``.
        fps: frame rate.
        performer: body proportions; a seeded random one when ``None``.
        actions: the actions to draw from (``walk``, ``reach``, ``crouch``, ``turn``); each appears
            at least once when the clip is long enough (about 2.5 s per action).
        volume: ``(half-size x, half-size y)`` of the capture volume around the origin (m); the whole
            body stays inside it when both half-sizes are at least ~1 m (the pelvis keeps ~0.9 m from
            the walls; in smaller volumes it stays within 0.25 m of the centre and a reach may leave).

    Returns:
        :class:`Motion` with ``joints (N, 17, 3)`` metres float64, Z up, floor at z = 0.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown or not actions:
        raise ValueError(f"unknown or no actions {list(actions)}; choose from {', '.join(ACTIONS)}")
    half = np.asarray(volume, dtype=float)
    if half.shape != (2,) or np.any(half < 0.9):
        raise ValueError(f"volume must be (half-size x, half-size y) with each >= 0.9 m, got {volume}")

    rng = np.random.default_rng(seed)
    performer = Performer.random(rng) if performer is None else performer
    L = performer.limb_lengths
    n = int(num_frames)
    dt = 1.0 / fps
    blend = max(3, round(0.8 * fps) | 1)

    segments = _schedule(rng, list(dict.fromkeys(actions)), n, fps)
    onehot = np.zeros((n, len(ACTIONS)))
    labels = np.empty(n, dtype="<U8")
    for a, s, e in segments:
        onehot[s:e, ACTIONS.index(a)] = 1.0
        labels[s:e] = a
    w = _smooth(onehot, blend)
    w_walk, w_reach, w_crouch, w_turn = (w[:, i] for i in range(4))

    inner = np.maximum(half - 0.9 * performer.scale, 0.25)
    root_xy, heading, speed = _root_trajectory(rng, segments, w_walk, n, fps, inner)

    # ---- gait: phase, stride amplitude, foot lift ----
    period = 1.05 * np.sqrt(performer.scale)
    phase = rng.uniform() + np.arange(n) * dt / period
    leg = L[_RKNEE] + L[_RANKLE]
    stride = np.minimum(speed * period / 4, 0.45 * leg)  # half stride (m): stance covers 2·stride
    stride = stride + 0.05 * leg * w_turn  # stepping in place while turning
    lift = np.clip(speed / 0.6, 0, 1) * 0.09 * performer.scale + w_turn * 0.05 * performer.scale
    tri_r = _smoothed_triangle(phase)
    tri_l = _smoothed_triangle(phase + 0.5)
    lift_r = lift * np.maximum(0.0, np.cos(2 * np.pi * phase)) ** 2
    lift_l = lift * np.maximum(0.0, np.cos(2 * np.pi * (phase + 0.5))) ** 2

    # ---- per-segment random parameters, held piecewise-constant then smoothed ----
    crouch_depth = np.zeros(n)
    reach_az = np.zeros(n)  # azimuth towards the reaching side (rad)
    reach_el = np.zeros(n)
    reach_dist = np.full(n, 0.9)
    reach_right = np.zeros(n)  # 1 right arm, 0 left arm
    for a, s, e in segments:
        if a == "crouch":
            crouch_depth[s:e] = rng.uniform(0.45, 0.6)
        elif a == "reach":
            reach_az[s:e] = rng.uniform(-0.4, 1.3)
            reach_el[s:e] = rng.uniform(-1.1, 1.0)
            reach_dist[s:e] = rng.uniform(0.82, 0.97)
            reach_right[s:e] = float(rng.integers(2))
    # Hold the last value of a parameter outside its action so a weight ramp never meets a jump.
    for arr, mask_action in ((crouch_depth, "crouch"), (reach_az, "reach"), (reach_el, "reach"),
                             (reach_dist, "reach"), (reach_right, "reach")):
        arr[:] = _hold(arr, labels == mask_action)
    crouch_depth, reach_az, reach_el, reach_dist, reach_right = (
        _smooth(x, 2 * blend + 1) for x in (crouch_depth, reach_az, reach_el, reach_dist, reach_right)
    )

    # ---- blended pose parameters ----
    stand_z = performer.ankle_height + 0.985 * leg
    walk_z = performer.ankle_height + np.sqrt((0.975 * leg) ** 2 - stride**2)
    # the pelvis rises a little at mid-stance (twice per gait cycle)
    bob = 0.5 - 0.5 * np.cos(4 * np.pi * (phase - 0.25))
    walk_z = walk_z + 0.012 * performer.scale * (stride / (0.3 * leg)) * bob
    low_reach = _smoothstep((-reach_el - 0.35) / 0.75)
    reach_z = stand_z - 0.25 * leg * low_reach
    crouch_z = performer.ankle_height + crouch_depth * leg
    pelvis_z = w_walk * walk_z + w_turn * stand_z + w_reach * reach_z + w_crouch * crouch_z

    lean = w_walk * (0.06 + 0.05 * speed) + w_reach * (0.15 + 0.9 * low_reach) * 1.0 + w_crouch * 0.55
    lean = lean + w_turn * 0.03
    gait_yaw = 0.25 * stride * tri_r
    twist = -0.5 * gait_yaw + w_reach * 0.35 * reach_az * (2 * reach_right - 1) * -1.0
    roll = w_reach * 0.1 * reach_az * (2 * reach_right - 1) * low_reach
    head_pitch = w_reach * (-0.5 * reach_el) + w_crouch * 0.15 - 0.1 * lean

    foot_forward = w_crouch * 0.12 * performer.scale + w_reach * 0.05 * low_reach
    foot_spread = w_crouch * 0.06 * performer.scale + w_reach * 0.02

    # ---- horizontal layout first: the hips' ground positions do not depend on the pelvis height ----
    yaw_pelvis = heading + gait_yaw
    R_head = _rot_z(heading)
    R_pel = _rot_z(yaw_pelvis)
    forward = _apply(R_head, np.array([1.0, 0.0, 0.0]))
    left = _apply(R_head, np.array([0.0, 1.0, 0.0]))
    pelvis_ground = np.concatenate([root_xy, np.zeros((n, 1))], -1)
    legs = []
    for hip, knee, ankle, tri, lift_f, side in (
        (_RHIP, _RKNEE, _RANKLE, tri_r, lift_r, -1.0),
        (_LHIP, _LKNEE, _LANKLE, tri_l, lift_l, 1.0),
    ):
        hip_offset = L[hip] * _apply(R_pel, np.array([0.0, side, 0.0]))
        target = pelvis_ground + hip_offset
        target += forward * (stride * tri + foot_forward)[:, None]
        target += left * (side * foot_spread)[:, None]
        target[:, 2] = performer.ankle_height + lift_f
        reach = 0.985 * (L[knee] + L[ankle])
        horizontal = np.linalg.norm((target - pelvis_ground - hip_offset)[:, :2], axis=-1)
        highest = target[:, 2] + np.sqrt(np.maximum(reach**2 - horizontal**2, 0.0))
        legs.append((hip, knee, ankle, hip_offset, target, highest))
    # The pelvis never rises above what both feet can reach at 98.5 % extension: a soft minimum keeps
    # it smooth, so the IK clamp (a kink) is not what grounds the feet.
    tau = 0.008
    stacked = np.stack([pelvis_z, legs[0][5], legs[1][5]], -1)
    low = stacked.min(-1)
    pelvis_z = low - tau * np.log(np.exp(-(stacked - low[:, None]) / tau).sum(-1))

    # ---- torso and head (forward kinematics) ----
    R_low = R_pel @ _rot_y(0.35 * lean) @ _rot_x(0.4 * roll)
    R_th = _rot_z(yaw_pelvis + twist) @ _rot_y(lean) @ _rot_x(roll)
    up = np.array([0.0, 0.0, 1.0])

    J = np.empty((n, H36M17.num_joints, 3))
    J[:, _PELVIS, :2] = root_xy
    J[:, _PELVIS, 2] = pelvis_z
    J[:, _SPINE] = J[:, _PELVIS] + L[_SPINE] * _apply(R_low, up)
    J[:, _THORAX] = J[:, _SPINE] + L[_THORAX] * _apply(R_th, up)
    neck_dir = _apply(R_th @ _rot_y(0.08 + 0.3 * head_pitch), up)
    J[:, _NECK] = J[:, _THORAX] + L[_NECK] * neck_dir
    head_dir = _apply(R_th @ _rot_y(0.12 + head_pitch), up)
    J[:, _HEAD] = J[:, _NECK] + L[_HEAD] * head_dir
    drop = np.deg2rad(12.0)
    J[:, _RSHO] = J[:, _THORAX] + L[_RSHO] * _apply(R_th, np.array([0.0, -np.cos(drop), -np.sin(drop)]))
    J[:, _LSHO] = J[:, _THORAX] + L[_LSHO] * _apply(R_th, np.array([0.0, np.cos(drop), -np.sin(drop)]))

    # ---- legs (IK to the foot targets; knees bend towards the heading) ----
    for hip, knee, ankle, hip_offset, target, _ in legs:
        J[:, hip] = J[:, _PELVIS] + hip_offset
        J[:, knee], J[:, ankle] = two_link_ik(J[:, hip], target, L[knee], L[ankle], forward, MAX_KNEE_FLEXION)

    # ---- arms (IK to wrist targets in the thorax frame, relative to the shoulder) ----
    # Each arm target is (pitch, azimuth, distance) in the thorax frame: pitch 0 hangs down, pi/2
    # points forward/sideways, pi overhead; azimuth turns the swing plane outwards. Blending these
    # numbers (not wrist points) keeps the wrist away from the shoulder between poses.
    arm_swing = 0.45 * np.clip(speed / 1.2, 0, 1) + 0.1 * w_turn
    for sho, elb, wri, tri, side in (
        (_RSHO, _RELB, _RWRI, tri_l, -1.0),
        (_LSHO, _LELB, _LWRI, tri_r, 1.0),
    ):
        arm = L[elb] + L[wri]
        alpha = arm_swing * tri  # forward swing with the opposite leg
        hang = (alpha, np.zeros(n), arm * (0.94 - 0.08 * np.clip(alpha, 0, None)))
        crouch_arm = (np.full(n, 1.05), np.full(n, 0.15), np.full(n, 0.8 * arm))
        reacher = reach_right if side < 0 else 1.0 - reach_right
        reach_pose = (reach_el + np.pi / 2, reach_az, reach_dist * arm)
        reach_arm = tuple(reacher * r + (1 - reacher) * h for r, h in zip(reach_pose, hang, strict=True))
        parts = [(w_walk + w_turn, hang), (w_crouch, crouch_arm), (w_reach, reach_arm)]
        pitch, azimuth, distance = (sum(w * p[k] for w, p in parts) for k in range(3))
        sp, cp, sa, ca = np.sin(pitch), np.cos(pitch), np.sin(azimuth), np.cos(azimuth)
        out = np.stack([np.zeros(n), np.full(n, side * 0.12), np.zeros(n)], -1)
        direction = _unit(np.stack([sp * ca, side * sp * sa, -cp], -1) + out)
        # the elbow points away from the direction the arm is rising in (back when hanging,
        # down when reaching forward), and a little outwards
        pole = -np.stack([cp * ca, side * cp * sa, sp], -1) + 1.5 * out
        target = J[:, sho] + _apply(R_th, direction * distance[:, None])
        J[:, elb], J[:, wri] = two_link_ik(
            J[:, sho], target, L[elb], L[wri], _apply(R_th, pole), MAX_ELBOW_FLEXION
        )

    return Motion(joints=J, fps=float(fps), performer=performer, skeleton=H36M17, actions=labels)


def _hold(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill frames outside ``mask`` with the nearest earlier masked value (the first masked value
    before any), so parameters do not jump where their action's weight is ramping."""
    if not mask.any():
        return values
    idx = np.where(mask, np.arange(len(values)), -1)
    idx = np.maximum.accumulate(idx)
    first = int(np.argmax(mask))
    idx[idx < 0] = first
    return values[idx]
