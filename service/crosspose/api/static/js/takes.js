// Takes: record / stop buttons and the takes list (REST /api/v1/recordings, needs the API token).
// The token is the one typed into the calibration upload form (kept in this page only).

import { call, reason, statusLine, token } from "./writes.js";

const $ = (id) => document.getElementById(id);

const say = statusLine("takes-status");

let current = null;

async function refresh() {
  if (!token()) { say("type the API token (calibration form) to record"); return; }
  const res = await call("GET", "/api/v1/recordings");
  if (!res.ok) { say(reason(res), true); return; }
  const rec = res.body.recorder;
  current = rec.state === "recording" || rec.state === "stopping" ? rec.take : null;
  $("take-record").disabled = !!current || !rec.running;
  $("take-stop").disabled = !current;
  if (!rec.running) say("recorder not running", true);
  else if (current) say(`${rec.state} ${current}: ${(rec.counters || {}).framesets_written || 0} frame sets`);
  else say(rec.error ? `last take failed: ${rec.error}` : "idle", !!rec.error);
  const list = $("takes-list");
  list.replaceChildren();
  for (const t of res.body.takes.slice(0, 20)) {
    const li = document.createElement("li");
    li.dataset.take = t.id;
    const frames = Object.values(t.frames).reduce((a, b) => a + b, 0);
    const persons = t.persons || [];  // several: bvh and trc come as a zip of one file per performer
    const who = persons.length > 1 ? ` · performers ${persons.map((id) => `#${id}`).join(" ")}` : "";
    li.textContent = `${t.name} · ${t.state} · ${t.duration_s.toFixed(1)} s · ${frames} frames${who} · `
      + `${(t.size_bytes / 1e6).toFixed(1)} MB${t.error ? " · " + t.error : ""} `;
    if (t.state === "failed") li.classList.add("error");
    for (const fmt of ["jsonl", "bvh", "trc"]) {
      const a = document.createElement("a");
      a.href = "#";
      a.textContent = fmt;
      a.addEventListener("click", (e) => { e.preventDefault(); download(t.id, fmt); });
      li.append(a, " ");
    }
    list.appendChild(li);
  }
}

async function download(id, fmt) {
  const r = await fetch(`/api/v1/recordings/${id}/download?format=${fmt}`,
    { headers: { Authorization: `Bearer ${token()}` } });
  if (!r.ok) { say(`download failed: HTTP ${r.status}`, true); return; }
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  const zipped = (r.headers.get("content-type") || "").startsWith("application/zip") && fmt !== "zip";
  a.download = zipped ? `${id}-${fmt}.zip` : `${id}.${fmt}`;  // one file per performer, zipped
  a.click();
  URL.revokeObjectURL(url);
}

export function initTakes(writes) {
  if (writes && !writes.enabled) {  // no API token on the service: every recording call would be refused
    for (const id of ["take-name", "take-record", "take-stop"]) $(id).disabled = true;
    say(`recording disabled: ${writes.reason}`, true);
    return;
  }
  $("take-record").addEventListener("click", async () => {
    const name = ($("take-name").value || "").trim() || "take";
    const res = await call("POST", "/api/v1/recordings", { name });
    if (!res.ok) say(reason(res), true);
    await refresh();
  });
  $("take-stop").addEventListener("click", async () => {
    if (!current) return;
    const res = await call("POST", `/api/v1/recordings/${current}/stop`);
    if (!res.ok) say(reason(res), true);
    await refresh();
  });
  $("upload-token").addEventListener("change", refresh);
  setInterval(refresh, 2000);
  refresh();
}
