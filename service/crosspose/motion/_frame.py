"""The single-frame path of :mod:`crosspose.motion.rotations` in plain Python floats.

Numpy's per-call overhead makes the vectorised solver cost ~6 ms for one frame; this is the same
algorithm, step for step, on tuples (well under 1 ms). ``tests/motion`` checks that both agree.
Vectors are 3-tuples, matrices row-major 9-tuples.
"""

from __future__ import annotations

import math

from crosspose.motion.humanoid import BONE_PARENTS, BONES, REST_DIRECTIONS, HumanoidMap
from crosspose.motion.recipes import (
    BENT_DEG,
    FACE_BEND_DEG,
    FACE_RATIO,
    FACE_TURN_DEG,
    ROLL_TRUST,
    STRAIGHT_DEG,
)

Vec = tuple[float, float, float]
Mat = tuple[float, float, float, float, float, float, float, float, float]
Quat = tuple[float, float, float, float]

_I: Mat = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
_REST_DIR: list[Vec] = [tuple(float(x) for x in d) for d in REST_DIRECTIONS]  # type: ignore[misc]


def _sub(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _unit(v: Vec) -> tuple[Vec, float]:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    s = 1.0 / max(n, 1e-12)
    return (v[0] * s, v[1] * s, v[2] * s), n


def _mv(m: Mat, v: Vec) -> Vec:
    return (m[0] * v[0] + m[1] * v[1] + m[2] * v[2], m[3] * v[0] + m[4] * v[1] + m[5] * v[2],
            m[6] * v[0] + m[7] * v[1] + m[8] * v[2])


def _mtv(m: Mat, v: Vec) -> Vec:
    """``mᵀ v``."""
    return (m[0] * v[0] + m[3] * v[1] + m[6] * v[2], m[1] * v[0] + m[4] * v[1] + m[7] * v[2],
            m[2] * v[0] + m[5] * v[1] + m[8] * v[2])


def _mm(a: Mat, b: Mat) -> Mat:
    return (
        a[0] * b[0] + a[1] * b[3] + a[2] * b[6], a[0] * b[1] + a[1] * b[4] + a[2] * b[7],
        a[0] * b[2] + a[1] * b[5] + a[2] * b[8],
        a[3] * b[0] + a[4] * b[3] + a[5] * b[6], a[3] * b[1] + a[4] * b[4] + a[5] * b[7],
        a[3] * b[2] + a[4] * b[5] + a[5] * b[8],
        a[6] * b[0] + a[7] * b[3] + a[8] * b[6], a[6] * b[1] + a[7] * b[4] + a[8] * b[7],
        a[6] * b[2] + a[7] * b[5] + a[8] * b[8],
    )


def _mtm(a: Mat, b: Mat) -> Mat:
    """``aᵀ b``."""
    at: Mat = (a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8])
    return _mm(at, b)


def _outer_sum(cols: tuple[Vec, Vec, Vec], rows: tuple[Vec, Vec, Vec]) -> Mat:
    """``Σ_k cols[k] rows[k]ᵀ``."""
    (a, b, c), (d, e, f) = cols, rows
    return tuple(a[i] * d[j] + b[i] * e[j] + c[i] * f[j] for i in range(3) for j in range(3))  # type: ignore[return-value]


def _swing(d: Vec, u: Vec) -> tuple[Mat, bool]:
    v = _cross(d, u)
    c = _dot(d, u)
    k = 1.0 / max(1.0 + c, 1e-3)
    x, y, z = v
    vv = x * x + y * y + z * z
    return (
        1.0 + k * (x * x - vv), -z + k * x * y, y + k * x * z,
        z + k * x * y, 1.0 + k * (y * y - vv), -x + k * y * z,
        -y + k * x * z, x + k * y * z, 1.0 + k * (z * z - vv),
    ), c > -0.999


def _axis_angle(axis: Vec, angle: float) -> Mat:
    x, y, z = axis
    c, s = math.cos(angle), math.sin(angle)
    t = 1.0 - c
    return (t * x * x + c, t * x * y - s * z, t * x * z + s * y,
            t * x * y + s * z, t * y * y + c, t * y * z - s * x,
            t * x * z - s * y, t * y * z + s * x, t * z * z + c)


def _quat(m: Mat) -> tuple[float, float, float, float]:
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m
    trace = m00 + m11 + m22
    keys = (trace, m00, m11, m22)
    choice = keys.index(max(keys))
    if choice == 0:
        q = (1.0 + trace, m21 - m12, m02 - m20, m10 - m01)
    elif choice == 1:
        q = (m21 - m12, 1.0 + m00 - m11 - m22, m01 + m10, m02 + m20)
    elif choice == 2:
        q = (m02 - m20, m01 + m10, 1.0 - m00 + m11 - m22, m12 + m21)
    else:
        q = (m10 - m01, m02 + m20, m12 + m21, 1.0 - m00 - m11 + m22)
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    s = -1.0 / n if q[0] < 0 else 1.0 / n
    return (q[0] * s, q[1] * s, q[2] * s, q[3] * s)


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _smooth(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


_SIN_BEND = (math.sin(math.radians(FACE_BEND_DEG[0])), math.sin(math.radians(FACE_BEND_DEG[1])))
_COS_TURN = (math.cos(math.radians(FACE_TURN_DEG[0])), math.cos(math.radians(FACE_TURN_DEG[1])))


def _face_reference(P: list[Vec], ok: list[bool], m: HumanoidMap) -> tuple[Vec, float]:
    """:func:`crosspose.motion.rotations.face_reference` of one frame (neck, head and shoulders usable)."""
    THORAX, NECK, HEAD, L_SHOULDER, R_SHOULDER = m.face
    e1, head_len = _unit(_sub(P[HEAD], P[NECK]))
    fwd = _unit(_cross(_sub(P[L_SHOULDER], P[R_SHOULDER]), e1))[0]
    if not (ok[THORAX] and head_len > 1e-6):
        return fwd, 0.0
    v, neck_len = _unit(_sub(P[NECK], P[THORAX]))
    k = _dot(v, e1)
    face, sin_bend = _unit((v[0] - k * e1[0], v[1] - k * e1[1], v[2] - k * e1[2]))
    if not neck_len > 1e-6:
        return fwd, 0.0
    ratio = head_len / neck_len
    w = (_smooth((FACE_RATIO[1] - ratio) / (FACE_RATIO[1] - FACE_RATIO[0]))
         * _smooth((sin_bend - _SIN_BEND[0]) / (_SIN_BEND[1] - _SIN_BEND[0]))
         * _smooth((_dot(face, fwd) - _COS_TURN[1]) / (_COS_TURN[0] - _COS_TURN[1])))
    u = 1.0 - w
    return (w * face[0] + u * fwd[0], w * face[1] + u * fwd[1], w * face[2] + u * fwd[2]), w


def solve_frame(
    P: list[Vec], ok: list[bool], local_prev: list[Mat], quat_prev: list[Quat] | None, twist: list[float],
    roll: list[float], m: HumanoidMap,
) -> tuple[list[Mat], list[Quat], list[float], list[float]]:
    """One frame: Y-up joints ``P`` (``m``'s layout) and usable flags → local matrices, continuous
    quaternions, new twists and rolls (of ``m.rolled``, NaN: none yet)."""
    n_b = len(BONES)
    local: list[Mat] = [_I] * n_b
    glob: list[Mat] = [_I] * n_b
    twist = list(twist)
    roll = list(roll)
    for b, name in enumerate(BONES):
        p = BONE_PARENTS[b]
        Gp = _I if p < 0 else glob[p]
        L: Mat = _I
        valid = True
        if name in m.fixed:
            pass
        elif name in m.trunk:
            (a, c), d_arr, ref, dref_arr = m.trunk[name]
            joints = (a, c, *m.references[ref])
            valid = all(ok[j] for j in joints)
            if valid:
                if ref == "both":
                    r_hip, l_hip, r_sho, l_sho = m.references[ref]
                    h = _unit(_sub(P[l_hip], P[r_hip]))[0]
                    s = _unit(_sub(P[l_sho], P[r_sho]))[0]
                    reference: Vec = (h[0] + s[0], h[1] + s[1], h[2] + s[2])
                elif ref == "face":
                    reference = _face_reference(P, ok, m)[0]
                else:
                    i, j = m.references[ref]
                    reference = _sub(P[j], P[i])
                e1, n1 = _unit(_sub(P[c], P[a]))
                ru, nr = _unit(reference)
                k = _dot(ru, e1)
                e2, n2 = _unit((ru[0] - k * e1[0], ru[1] - k * e1[1], ru[2] - k * e1[2]))
                valid = n1 > 1e-6 and nr > 1e-9 and n2 > 0.1
                if valid:
                    d: Vec = (float(d_arr[0]), float(d_arr[1]), float(d_arr[2]))
                    dref: Vec = (float(dref_arr[0]), float(dref_arr[1]), float(dref_arr[2]))
                    G = _outer_sum((e1, e2, _cross(e1, e2)), (d, dref, _cross(d, dref)))
                    L = G if p < 0 else _mtm(Gp, G)
                    if name in m.rolled:  # :func:`crosspose.motion.rotations._trusted_roll`
                        ki = m.rolled[name]
                        u = _mv(L, d)
                        swing, valid = _swing(d, u)
                        if valid:
                            swung, measured = _mv(swing, dref), _mv(L, dref)
                            phi = math.atan2(_dot(_cross(swung, measured), u), _dot(swung, measured))
                            lo, hi = ROLL_TRUST[ref]
                            w = _smooth((nr * n2 - lo) / (hi - lo))
                            last = roll[ki]
                            roll[ki] = phi if math.isnan(last) else last + w * _wrap(phi - last)
                            L = _mm(_axis_angle(u, roll[ki]), swing)
        else:
            head, tail = m.limbs[name][:2] if name in m.limbs else m.swings[name]
            d = _REST_DIR[b]
            valid = ok[head] and ok[tail]
            if valid:
                u, length = _unit(_mtv(Gp, _sub(P[tail], P[head])))
                L, swing_ok = _swing(d, u)
                valid = swing_ok and length > 1e-6
                if name in m.limbs:
                    ki = m.limb_index[name]
                    tip, rest_bend = m.limbs[name][2:]
                    w = 0.0
                    bend = 0.0
                    if valid and ok[tip]:
                        cvec = _mtv(Gp, _sub(P[tip], P[tail]))
                        along = _dot(cvec, u)
                        perp = (cvec[0] - along * u[0], cvec[1] - along * u[1], cvec[2] - along * u[2])
                        flexion = math.degrees(math.atan2(math.sqrt(_dot(perp, perp)), along))
                        w = min(max((flexion - STRAIGHT_DEG) / (BENT_DEG - STRAIGHT_DEG), 0.0), 1.0)
                        w = w * w * (3 - 2 * w)
                        base = _mv(L, (float(rest_bend[0]), float(rest_bend[1]), float(rest_bend[2])))
                        bend = math.atan2(_dot(_cross(base, perp), u), _dot(base, perp))
                    before = twist[ki]
                    theta = before + w * _wrap(bend - before)
                    if w >= 1.0:
                        twist[ki] = bend
                    L = _mm(_axis_angle(u, theta if valid else 0.0), L)
        if not valid:
            L = local_prev[b]
        local[b] = L
        glob[b] = L if p < 0 else _mm(Gp, L)
    quats = [_quat(m) for m in local]
    if quat_prev is not None:
        quats = [q if (q[0] * r[0] + q[1] * r[1] + q[2] * r[2] + q[3] * r[3]) >= 0
                 else (-q[0], -q[1], -q[2], -q[3])
                 for q, r in zip(quats, quat_prev, strict=True)]
    return local, quats, twist, roll
