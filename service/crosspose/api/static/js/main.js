// The live viewer: skeletons from WS /ws/skeletons, cameras and previews polled over REST, the status
// bar, and the calibration upload form. Plain ES modules, no external library; works offline.

import { Scene, performers, personColour } from "./scene.js";
import { CameraPanels } from "./panels.js";
import { initTakes } from "./takes.js";
import { initCalibrate } from "./calibrate.js";

const $ = (id) => document.getElementById(id);
const STAGES = ["sync", "inference", "solve", "total"];

const scene = new Scene($("scene"));
const panels = new CameraPanels($("cameras"));
// openedAt: when the stream (re)connected; the rate divides by the part of its 2 s window since then.
const stats = { received: 0, arrivals: [], latency: [], connected: false, openedAt: null, calibrationVersion: null };
window.crosspose = { scene, panels, stats };

function message(text) {
  const el = $("scene-msg");
  el.textContent = text || "";
  el.classList.toggle("hidden", !text);
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  let body = null;
  try { body = await r.json(); } catch { body = null; }
  return { ok: r.ok, status: r.status, body };
}

// --- skeleton stream -------------------------------------------------------------------------------
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws/skeletons?format=json`);
  ws.onopen = () => { stats.connected = true; stats.openedAt = performance.now(); setBadge($("conn"), "live", "on"); };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.type !== "skeleton") return;
    const now = performance.now();
    stats.received += 1;
    stats.arrivals.push(now);
    if (msg.latency_ms) stats.latency.push([now, msg.latency_ms]);
    scene.setSkeleton(msg);
    showPersons(msg);
    message("");
  };
  ws.onclose = () => {
    stats.connected = false;
    stats.openedAt = null;
    setBadge($("conn"), "disconnected", "off");
    setTimeout(connect, 1000);
  };
}

/** The status bar's performer count, each id in its colour (only redrawn when the ids change). */
function showPersons(msg) {
  const ids = Array.isArray(msg.persons) ? performers(msg).map((p) => p.id) : null;
  const key = ids === null ? "" : ids.join(",");
  const el = $("st-persons");
  if (el.dataset.ids === key) return;
  el.dataset.ids = key;
  el.replaceChildren(ids === null ? "–" : String(ids.length));
  const several = ids !== null && (ids.length > 1 || ids.some((id) => id !== 0));  // as the scene draws
  for (const id of several ? ids : []) {
    const tag = document.createElement("span");
    tag.className = "person-id";
    tag.style.color = personColour(id);
    tag.textContent = ` #${id}`;
    el.appendChild(tag);
  }
}

function setBadge(el, text, cls) { el.textContent = text; el.className = `badge ${cls}`; }

function updateRates() {
  const now = performance.now();
  while (stats.arrivals.length && stats.arrivals[0] < now - 2000) stats.arrivals.shift();
  while (stats.latency.length && stats.latency[0][0] < now - 1000) stats.latency.shift();
  // Over the last 2 s, or over the time since the stream opened when that is shorter (at least 0.5 s:
  // the first messages alone say little about a rate).
  const span = stats.openedAt === null ? 2 : Math.min(2, Math.max(0.5, (now - stats.openedAt) / 1000));
  $("st-fps").textContent = (stats.arrivals.length / span).toFixed(1);
  for (const stage of STAGES) {
    const values = stats.latency.map(([, l]) => l[stage]).filter((v) => typeof v === "number");
    $(`lat-${stage}`).textContent = values.length ? (values.reduce((a, b) => a + b, 0) / values.length).toFixed(1) : "–";
  }
}

// --- service status --------------------------------------------------------------------------------
async function loadCalibration() {
  const { ok, body } = await getJSON("/api/v1/calibration");
  if (ok && body) {
    scene.setRig(body.rig);
    stats.calibrationVersion = body.version;
  } else {
    message("no calibration yet: upload one (below right)");
  }
}

async function pollReady() {
  try {
    const { body } = await getJSON("/api/v1/ready");
    if (body) {
      const rt = body.runtime;
      $("st-runtime").textContent = rt ? `${rt.runtime} · ${rt.device} · ${rt.precision}` : "–";
      $("st-runtime").title = body.provider ? `provider: ${body.provider}` : "";
      $("st-calib").textContent = body.calibration_version == null ? "none" : `v${body.calibration_version}`;
      setBadge($("st-ready"), body.ready ? "ready" : "not ready", body.ready ? "on" : "off");
      $("st-ready").title = body.reasons.join("\n");
      if (body.calibration_version != null && body.calibration_version !== stats.calibrationVersion) {
        await loadCalibration();
      }
    }
    const metrics = await fetch("/metrics", { cache: "no-store" }).then((r) => r.text());
    const m = metrics.match(/^crosspose_websocket_clients\s+([0-9.eE+-]+)/m);
    $("st-subs").textContent = m ? String(Math.round(Number(m[1]))) : "–";
  } catch {
    setBadge($("st-ready"), "unreachable", "off");
  }
}

async function pollCameras() {
  try {
    const { ok, body } = await getJSON("/api/v1/cameras");
    if (ok) panels.updateStatus(body);
  } catch { /* service restarting: next round */ }
}

function every(ms, fn) {
  let running = false;
  const tick = async () => {
    if (!running) { running = true; try { await fn(); } finally { running = false; } }
  };
  tick();
  return setInterval(tick, ms);
}

// --- calibration upload ----------------------------------------------------------------------------
async function upload(event) {
  event.preventDefault();
  const result = $("upload-result"), list = $("upload-problems");
  list.replaceChildren();
  const file = $("upload-file").files[0];
  if (!file) { result.className = "error"; result.textContent = "choose a calibration file"; return; }
  result.className = "";
  result.textContent = "uploading…";
  const headers = { "Content-Type": "application/octet-stream" };
  const token = $("upload-token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const r = await fetch("/api/v1/calibration", { method: "PUT", headers, body: await file.arrayBuffer() });
    let body = {};
    try { body = await r.json(); } catch { body = { detail: `HTTP ${r.status}` }; }
    if (r.ok) {
      result.className = "ok";
      result.textContent = body.new === false
        ? `accepted: calibration v${body.version} is already in force (identical; nothing stored)`
        : `accepted: calibration v${body.version} (${body.format}, cameras ${body.cameras.join(", ")})`;
      for (const w of body.warnings || []) addItem(list, `warning: ${w}`);
      await loadCalibration();
    } else {
      result.className = "error";
      result.textContent = `refused (HTTP ${r.status}): ${body.detail || "error"}`;
      for (const p of body.problems || []) addItem(list, p);
    }
  } catch (e) {
    result.className = "error";
    result.textContent = `upload failed: ${e}`;
  }
}

function addItem(list, text) {
  const li = document.createElement("li");
  li.textContent = text;
  list.appendChild(li);
}

// --- writes (token-guarded) ------------------------------------------------------------------------
// Without an API token on the service every upload and recording is refused: grey the controls out
// and say why instead of offering them.
async function loadWrites() {
  const { ok, body } = await getJSON("/api/v1/health");
  const writes = ok && body && body.writes ? body.writes : { enabled: true, reason: null };
  document.body.dataset.writes = writes.enabled ? "enabled" : "disabled";
  if (!writes.enabled) {
    for (const el of $("upload").elements) el.disabled = true;
    const note = $("upload-result");
    note.className = "error";
    note.textContent = `writes disabled: ${writes.reason}`;
  }
  return writes;
}

// --- start -----------------------------------------------------------------------------------------
async function start() {
  $("pause").addEventListener("change", (e) => { scene.paused = e.target.checked; });
  $("trail").addEventListener("change", (e) => scene.setTrail(e.target.checked));
  $("frusta").addEventListener("change", (e) => { scene.showFrusta = e.target.checked; scene.dirty = true; });
  $("reset-view").addEventListener("click", () => scene.resetView());
  $("upload").addEventListener("submit", upload);
  const writes = await loadWrites();
  initTakes(writes);
  initCalibrate(writes);
  document.addEventListener("calibration-changed", loadCalibration);
  const layout = await getJSON("/api/v1/skeleton");
  if (layout.ok) { scene.setLayout(layout.body); panels.setLayout(layout.body); }
  await loadCalibration();
  connect();
  every(500, pollCameras);
  every(400, () => panels.refreshPreviews());
  every(2000, pollReady);
  setInterval(updateRates, 500);
  document.body.dataset.ready = "1";
}

start();
