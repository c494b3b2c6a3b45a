// The 3D view, drawn with Canvas 2D: an orbiting perspective camera over a Z-up world in metres.
// Floor grid (1 m), world axes, camera frusta from the calibration, the skeleton and its trail.
// Several performers (the message's `persons`): each one's bones in its own colour (personColour(id)) and
// its id above the head; one performer of id 0 (a single-person service) is drawn as before, bones
// coloured by side. Joints are shaded by confidence either way.

const LEFT = "#4f9dff";
const RIGHT = "#ff6b5b";
const CENTER = "#e5e7eb";
const SIDE_COLOUR = { left: LEFT, right: RIGHT, center: CENTER };

const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const add = (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const mul = (a, s) => [a[0] * s, a[1] * s, a[2] * s];
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const norm = (a) => { const n = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / n, a[1] / n, a[2] / n]; };
const finite = (p) => Array.isArray(p) && p.length >= 3 && p.slice(0, 3).every((v) => typeof v === "number" && Number.isFinite(v));

/** Confidence 0..1 → colour from dim red (low) through amber to bright green (high). */
export function confidenceColour(c) {
  const k = Math.max(0, Math.min(1, Number.isFinite(c) ? c : 0));
  return `hsl(${Math.round(120 * k)}, 85%, ${Math.round(35 + 20 * k)}%)`;
}

/** A performer's colour: hues a golden angle apart by id, so neighbouring ids never look alike. */
export function personColour(id) {
  const hue = Math.round((((Number(id) || 0) * 137.508) + 45) % 360);
  return `hsl(${hue}, 90%, 62%)`;
}

/** The performers of a skeleton message: its `persons` ([{id, joints}]), or its top level as id 0 (a
 *  producer before persons). */
export function performers(msg) {
  if (Array.isArray(msg.persons)) return msg.persons.filter((p) => p && Array.isArray(p.joints));
  return Array.isArray(msg.joints) ? [{ id: 0, joints: msg.joints }] : [];
}

/** World point of pixel (u, v) at depth d in front of a camera (x_cam = R X + t). */
function backProject(cam, u, v, d) {
  const K = cam.K, R = cam.R, t = cam.t;
  const xc = [((u - K[0][2]) / K[0][0]) * d, ((v - K[1][2]) / K[1][1]) * d, d];
  const q = sub(xc, t);
  return [R[0][0] * q[0] + R[1][0] * q[1] + R[2][0] * q[2],
          R[0][1] * q[0] + R[1][1] * q[1] + R[2][1] * q[2],
          R[0][2] * q[0] + R[1][2] * q[1] + R[2][2] * q[2]];
}

export class Scene {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.layout = null; // {joints, bones, sides}
    this.cameras = []; // [{name, centre, corners:[4]}]
    this.skeleton = null; // latest message
    this.labels = []; // [{id, text, colour, x, y}] the performer labels of the last draw (CSS px, for tests)
    this.trail = []; // recent joint arrays
    this.trailLength = 30;
    this.showTrail = false;
    this.showFrusta = true;
    this.paused = false; // hold the current skeleton (the stream keeps counting)
    this.fov = (50 * Math.PI) / 180;
    this.resetView();
    this.dirty = true;
    this._bindInput();
    new ResizeObserver(() => { this.dirty = true; }).observe(canvas);
    const loop = () => { if (this.dirty) this.draw(); requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
  }

  resetView() {
    let target = [0, 0, 0.9], dist = 6;
    if (this.cameras.length) {
      const c = this.cameras.reduce((s, cam) => add(s, cam.centre), [0, 0, 0]).map((v) => v / this.cameras.length);
      target = [c[0], c[1], 0.9];
      const r = Math.max(...this.cameras.map((cam) => Math.hypot(cam.centre[0] - c[0], cam.centre[1] - c[1], cam.centre[2] - 0.9)));
      dist = Math.max(3, 1.7 * r);
    }
    this.view = { target, yaw: -Math.PI / 2 + 0.6, pitch: 0.45, dist };
    this.dirty = true;
  }

  setLayout(layout) { this.layout = layout; this.dirty = true; }

  /** Calibration rig JSON (crosspose format): frusta 0.35 m deep at each camera. */
  setRig(rig) {
    this.cameras = (rig && rig.cameras ? rig.cameras : []).map((cam) => {
      const [w, h] = cam.image_size;
      const depth = 0.35;
      return {
        name: cam.name,
        centre: backProject(cam, cam.K[0][2], cam.K[1][2], 0),
        corners: [[0, 0], [w, 0], [w, h], [0, h]].map(([u, v]) => backProject(cam, u, v, depth)),
        up: backProject(cam, w / 2, -0.15 * h, depth),
      };
    });
    this.resetView();
  }

  setSkeleton(msg) {
    if (this.paused) return;
    this.skeleton = msg;
    if (this.showTrail) {
      this.trail.push(msg.joints);
      if (this.trail.length > this.trailLength) this.trail.shift();
    }
    this.dirty = true;
  }

  setTrail(on) { this.showTrail = on; this.trail = []; this.dirty = true; }

  _basis() {
    const { target, yaw, pitch, dist } = this.view;
    const eye = add(target, mul([Math.cos(pitch) * Math.cos(yaw), Math.cos(pitch) * Math.sin(yaw), Math.sin(pitch)], dist));
    const f = norm(sub(target, eye));
    const r = norm(cross(f, [0, 0, 1]));
    const u = cross(r, f);
    return { eye, f, r, u };
  }

  _size() {
    const dpr = window.devicePixelRatio || 1;
    return { w: this.canvas.clientWidth, h: this.canvas.clientHeight, dpr };
  }

  /** World point → camera space [x, y, z] (z: depth along the view direction). */
  _toCam(p, b) { const d = sub(p, b.eye); return [dot(d, b.r), dot(d, b.u), dot(d, b.f)]; }

  _toScreen(c) {
    const { w, h } = this._size();
    const focal = h / (2 * Math.tan(this.fov / 2));
    return [w / 2 + (focal * c[0]) / c[2], h / 2 - (focal * c[1]) / c[2]];
  }

  /** CSS pixels (relative to the canvas) of a world point, or null behind the viewer. */
  project(p) {
    const c = this._toCam(p, this._basis());
    return c[2] > 0.05 ? this._toScreen(c) : null;
  }

  /** Page coordinates of a world point (for tests and tooltips). */
  projectToPage(p) {
    const s = this.project(p);
    if (!s) return null;
    const rect = this.canvas.getBoundingClientRect();
    return [rect.left + s[0], rect.top + s[1]];
  }

  _line(ctx, b, p, q) {
    let a = this._toCam(p, b), c = this._toCam(q, b);
    const near = 0.05;
    if (a[2] < near && c[2] < near) return;
    if (a[2] < near || c[2] < near) { // clip at the near plane
      const s = (near - a[2]) / (c[2] - a[2]);
      const m = [a[0] + s * (c[0] - a[0]), a[1] + s * (c[1] - a[1]), near];
      if (a[2] < near) a = m; else c = m;
    }
    const s0 = this._toScreen(a), s1 = this._toScreen(c);
    ctx.moveTo(s0[0], s0[1]);
    ctx.lineTo(s1[0], s1[1]);
  }

  draw() {
    this.dirty = false;
    this.draws = (this.draws || 0) + 1; // frames drawn (benchmarks/viewer.py compares with skeletons received)
    const { w, h, dpr } = this._size();
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
    }
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const b = this._basis();
    this._drawGrid(ctx, b);
    this._drawAxes(ctx, b);
    if (this.showFrusta) this._drawCameras(ctx, b);
    if (this.showTrail) this._drawTrail(ctx, b);
    this._drawSkeleton(ctx, b);
  }

  _drawGrid(ctx, b) {
    const n = 5;
    const cx = Math.round(this.view.target[0]), cy = Math.round(this.view.target[1]);
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#2b3038";
    ctx.beginPath();
    for (let i = -n; i <= n; i++) {
      this._line(ctx, b, [cx + i, cy - n, 0], [cx + i, cy + n, 0]);
      this._line(ctx, b, [cx - n, cy + i, 0], [cx + n, cy + i, 0]);
    }
    ctx.stroke();
  }

  _drawAxes(ctx, b) {
    const axes = [[[1, 0, 0], "#ef4444", "X"], [[0, 1, 0], "#22c55e", "Y"], [[0, 0, 1], "#3b82f6", "Z"]];
    ctx.lineWidth = 2;
    ctx.font = "11px system-ui, sans-serif";
    for (const [dir, colour, label] of axes) {
      ctx.strokeStyle = colour;
      ctx.beginPath();
      this._line(ctx, b, [0, 0, 0], dir);
      ctx.stroke();
      const s = this.project(mul(dir, 1.08));
      if (s) { ctx.fillStyle = colour; ctx.fillText(label, s[0] - 3, s[1] + 4); }
    }
  }

  _drawCameras(ctx, b) {
    ctx.lineWidth = 1;
    ctx.font = "11px system-ui, sans-serif";
    for (const cam of this.cameras) {
      ctx.strokeStyle = "#a78bfa";
      ctx.beginPath();
      for (let i = 0; i < 4; i++) {
        this._line(ctx, b, cam.centre, cam.corners[i]);
        this._line(ctx, b, cam.corners[i], cam.corners[(i + 1) % 4]);
      }
      this._line(ctx, b, cam.corners[0], cam.up);
      this._line(ctx, b, cam.corners[1], cam.up);
      ctx.stroke();
      const s = this.project(cam.centre);
      if (s) { ctx.fillStyle = "#c4b5fd"; ctx.fillText(cam.name, s[0] + 4, s[1] - 4); }
    }
  }

  _bones() {
    if (!this.layout) return [];
    return this.layout.bones.map(([p, c]) => [p, c, SIDE_COLOUR[this.layout.sides[c]] || CENTER]);
  }

  _drawSkeleton(ctx, b) {
    this.labels = [];
    const msg = this.skeleton;
    if (!msg) return;
    const people = performers(msg);
    const several = people.length > 1 || people.some((p) => p.id !== 0);
    for (const person of people) {
      const colour = several ? personColour(person.id) : null;
      this._drawPerson(ctx, b, person.joints, colour);
      if (several) this._label(ctx, person, colour);
    }
  }

  /** One performer's bones (in `colour`, or by side when null) and confidence-shaded joints. */
  _drawPerson(ctx, b, joints, colour) {
    ctx.lineWidth = 4;
    ctx.lineCap = "round";
    for (const [p, c, side] of this._bones()) {
      if (!finite(joints[p]) || !finite(joints[c])) continue;
      ctx.strokeStyle = colour || side;
      ctx.beginPath();
      this._line(ctx, b, joints[p], joints[c]);
      ctx.stroke();
    }
    for (const j of joints) {
      if (!finite(j)) continue;
      const s = this.project(j);
      if (!s) continue;
      ctx.fillStyle = confidenceColour(j[3]);
      ctx.beginPath();
      ctx.arc(s[0], s[1], 5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  /** The performer's id above their highest joint, in their colour. */
  _label(ctx, person, colour) {
    let top = null;
    for (const j of person.joints) if (finite(j) && (!top || j[2] > top[2])) top = j;
    if (!top) return;
    const s = this.project([top[0], top[1], top[2] + 0.15]);
    if (!s) return;
    const text = `#${person.id}`;
    ctx.font = "bold 15px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.lineWidth = 3;
    ctx.strokeStyle = "#111318";
    ctx.strokeText(text, s[0], s[1]);
    ctx.fillStyle = colour;
    ctx.fillText(text, s[0], s[1]);
    ctx.textAlign = "start";
    ctx.textBaseline = "alphabetic";
    this.labels.push({ id: person.id, text, colour, x: s[0], y: s[1] });
  }

  _drawTrail(ctx, b) {
    const n = this.trail.length;
    if (n < 2 || !this.layout) return;
    ctx.lineWidth = 1.5;
    for (let j = 0; j < this.layout.joints.length; j++) {
      ctx.strokeStyle = SIDE_COLOUR[this.layout.sides[j]] || CENTER;
      for (let k = 1; k < n; k++) {
        const p = this.trail[k - 1][j], q = this.trail[k][j];
        if (!finite(p) || !finite(q)) continue;
        ctx.globalAlpha = (0.6 * k) / n;
        ctx.beginPath();
        this._line(ctx, b, p, q);
        ctx.stroke();
      }
    }
    ctx.globalAlpha = 1;
  }

  _bindInput() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, pan: e.button === 2 || e.shiftKey };
      c.setPointerCapture(e.pointerId);
      c.style.cursor = "grabbing";
    });
    c.addEventListener("pointerup", (e) => { drag = null; c.releasePointerCapture(e.pointerId); c.style.cursor = "grab"; });
    c.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      drag.x = e.clientX; drag.y = e.clientY;
      const v = this.view;
      if (drag.pan) {
        const { r, u } = this._basis();
        const k = (v.dist * 2 * Math.tan(this.fov / 2)) / Math.max(1, c.clientHeight);
        v.target = add(v.target, add(mul(r, -dx * k), mul(u, dy * k)));
      } else {
        v.yaw -= dx * 0.008;
        v.pitch = Math.max(-1.5, Math.min(1.5, v.pitch + dy * 0.008));
      }
      this.dirty = true;
    });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.view.dist = Math.max(0.5, Math.min(100, this.view.dist * Math.exp(e.deltaY * 0.001)));
      this.dirty = true;
    }, { passive: false });
  }
}
