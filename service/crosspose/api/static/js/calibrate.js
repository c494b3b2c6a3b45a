// Live calibration: start a session on the running cameras, watch coverage per camera and shared
// sightings per pair fill up, solve, compare with the rig in force, apply or discard
// (REST /api/v1/calibration/session, needs the API token typed into the calibration upload form).

import { call, reason, statusLine, token } from "./writes.js";

const $ = (id) => document.getElementById(id);
const URL_ = "/api/v1/calibration/session";
const BUTTONS = ["calib-begin", "calib-stop", "calib-solve", "calib-apply", "calib-discard"];

const say = statusLine("calib-status");

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  return td;
}

// The buttons that make sense in a phase (null: no session).
function enable(phase) {
  const on = {
    null: ["calib-begin"],
    collecting: ["calib-stop", "calib-solve", "calib-discard"],
    stopped: ["calib-solve", "calib-discard"],
    solving: ["calib-discard"],
    solved: ["calib-solve", "calib-apply", "calib-discard"],
    failed: ["calib-solve", "calib-discard"],
  }[phase] || [];
  for (const id of BUTTONS) $(id).disabled = !on.includes(id);
}

function show(s) {
  document.body.dataset.calibPhase = s ? s.phase : "none";
  enable(s ? s.phase : null);
  const rows = $("calib-table").tBodies[0];
  rows.replaceChildren();
  $("calib-pairs").replaceChildren();
  if (!s) return;
  const result = s.result ? s.result.cameras : {};
  for (const [name, c] of Object.entries(s.cameras)) {
    const r = result[name] || {};
    const tr = document.createElement("tr");
    tr.dataset.camera = name;
    tr.append(cell(name), cell(c.sightings), cell(`${Math.round(100 * c.coverage)} %`),
      cell(r.rotation_deg), cell(r.centre_mm), cell(r.median_px));
    rows.appendChild(tr);
  }
  for (const [pair, n] of Object.entries(s.pairs)) {
    const li = document.createElement("li");
    li.textContent = `${pair}: ${n} shared`;
    $("calib-pairs").appendChild(li);
  }
  const what = `${s.method}${s.refine ? ", refine " + s.refine : ""} from v${s.base_version}`;
  const warn = s.result && s.result.warnings.length ? ` · ${s.result.warnings.join("; ")}` : "";
  say(`${s.phase} (${what}): ${s.frame_sets} of ${s.sampled} frame sets used${s.error ? " · " + s.error : ""}${warn}`,
    !!s.error);
}

async function refresh() {
  const res = await call("GET", URL_);
  if (res.status === 404) { show(null); return; }
  if (!res.ok) { say(reason(res), true); return; }
  show(res.body);
}

async function act(method, path, body, done) {
  if (!token()) { say("type the API token (calibration form) first", true); return; }
  const res = await call(method, URL_ + path, body);
  if (!res.ok) { say(reason(res), true); return; }
  if (done) done(res.body);
  await refresh();
}

export function initCalibrate(writes) {
  if (writes && !writes.enabled) {  // no API token on the service: every session call would be refused
    for (const el of $("calib-start").elements) el.disabled = true;
    say(`live calibration disabled: ${writes.reason}`, true);
    return;
  }
  $("calib-start").addEventListener("submit", (e) => {
    e.preventDefault();
    const body = { method: $("calib-method").value };
    const board = $("calib-board").value.trim();
    const refine = $("calib-refine").value.trim();
    if (body.method === "board") body.board = board;
    if (refine) body.refine = refine;
    act("POST", "", body);
  });
  $("calib-stop").addEventListener("click", () => act("POST", "/stop"));
  $("calib-solve").addEventListener("click", () => act("POST", "/solve"));
  $("calib-discard").addEventListener("click", () => act("DELETE", "", null, () => say("discarded")));
  $("calib-apply").addEventListener("click", () => act("POST", "/apply", null, (b) => {
    say(`applied as calibration v${b.version} (previous v${b.previous})`);
    document.dispatchEvent(new CustomEvent("calibration-changed"));
  }));
  setInterval(refresh, 1000);
  refresh();
}
