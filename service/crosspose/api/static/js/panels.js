// Per-camera panels: the latest preview JPEG with the reprojected 2D joints and the crop box drawn over
// it, the camera's state (a dead camera is DOWN), fps, frame age and drops.

import { confidenceColour } from "./scene.js";

const SIDE_COLOUR = { left: "#4f9dff", right: "#ff6b5b", center: "#e5e7eb" };

const fmt = (v, digits = 1) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–");

export class CameraPanels {
  constructor(root) {
    this.root = root;
    this.panels = new Map();
    this.layout = null;
  }

  setLayout(layout) { this.layout = layout; }

  _panel(name) {
    let p = this.panels.get(name);
    if (p) return p;
    const el = document.createElement("article");
    el.className = "cam";
    el.dataset.camera = name;
    el.innerHTML = `
      <header><span class="name"></span><span class="badge state">?</span></header>
      <div class="view"><canvas width="320" height="180"></canvas><div class="down-label">DOWN</div></div>
      <div class="stats"></div>`;
    el.querySelector(".name").textContent = name;
    this.root.appendChild(el);
    p = { name, el, canvas: el.querySelector("canvas"), badge: el.querySelector(".state"),
          stats: el.querySelector(".stats"), seq: null, busy: false, state: null };
    this.panels.set(name, p);
    return p;
  }

  /** ``GET /api/v1/cameras`` body → panels (created in rig order, state and numbers refreshed). */
  updateStatus(body) {
    const names = new Set();
    for (const cam of body.cameras || []) {
      names.add(cam.name);
      const p = this._panel(cam.name);
      p.state = cam.state;
      p.el.dataset.state = cam.state;
      p.el.classList.toggle("down", cam.state === "down");
      p.el.classList.toggle("reconnecting", cam.state === "reconnecting");
      p.el.classList.toggle("stale", cam.state === "stale");  // its grabber heartbeats, no frame reaches sync
      p.badge.textContent = cam.state;
      p.badge.className = `badge state ${cam.state === "up" ? "on" : cam.state === "down" ? "off" : "warn"}`;
      const age = cam.last_frame_age_s == null ? "–" : fmt(cam.last_frame_age_s * 1000, 0);
      p.stats.textContent = `${fmt(cam.fps)} fps · frame age ${age} ms · drops ${cam.drops} (sync ${cam.sync_drops})`;
    }
    for (const [name, p] of this.panels) {
      if (!names.has(name)) { p.el.remove(); this.panels.delete(name); }
    }
  }

  /** Fetch each live camera's preview metadata; load its JPEG when the frame set changed. */
  async refreshPreviews() {
    await Promise.all([...this.panels.values()].map((p) => this._refresh(p)));
  }

  async _refresh(p) {
    if (p.busy) return;
    p.busy = true;
    try {
      const r = await fetch(`/api/v1/cameras/${encodeURIComponent(p.name)}/preview`, { cache: "no-store" });
      if (!r.ok) return;
      const meta = await r.json();
      if (meta.seq === p.seq && meta.seq !== null) return;
      const img = new Image();
      img.decoding = "async";
      img.src = meta.image;
      await img.decode();
      p.seq = meta.seq;
      this._draw(p, img, meta);
    } catch (e) {
      // a preview that went away between the two requests: try again next round
    } finally {
      p.busy = false;
    }
  }

  _draw(p, img, meta) {
    const c = p.canvas;
    const w = meta.width || img.naturalWidth, h = meta.height || img.naturalHeight;
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0, w, h);
    if (meta.crop) {
      ctx.strokeStyle = "#facc15";
      ctx.lineWidth = 1.5;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      meta.crop.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath();
      ctx.stroke();
      ctx.setLineDash([]);
    }
    const j2 = meta.joints2d;
    if (!j2) return;
    const ok = (q) => q && Number.isFinite(q[0]) && Number.isFinite(q[1]);
    if (this.layout) {
      ctx.lineWidth = 2;
      for (const [a, b] of this.layout.bones) {
        if (!ok(j2[a]) || !ok(j2[b])) continue;
        ctx.strokeStyle = SIDE_COLOUR[this.layout.sides[b]];
        ctx.beginPath();
        ctx.moveTo(j2[a][0], j2[a][1]);
        ctx.lineTo(j2[b][0], j2[b][1]);
        ctx.stroke();
      }
    }
    for (const q of j2) {
      if (!ok(q)) continue;
      ctx.fillStyle = confidenceColour(q[2]);
      ctx.beginPath();
      ctx.arc(q[0], q[1], 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}
