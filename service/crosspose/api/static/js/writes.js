// The token-guarded REST calls the viewer's panels share (takes, live calibration): the token is the one
// typed into the calibration upload form, kept in this page only.

export function token() { return (document.getElementById("upload-token").value || "").trim(); }

export async function call(method, url, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body) headers["Content-Type"] = "application/json";
  const r = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
  let json = null;
  try { json = await r.json(); } catch { json = null; }
  return { ok: r.ok, status: r.status, body: json };
}

// A status line: `say(text, error)` writes into the element with id `id`, red when `error`.
export function statusLine(id) {
  return (text, error) => {
    const el = document.getElementById(id);
    el.textContent = text;
    el.classList.toggle("error", !!error);
  };
}

// Why a call failed, in the API's words (its detail and problems), else the HTTP status.
export function reason(res) {
  const b = res.body || {};
  return [b.detail, ...(b.problems || [])].filter(Boolean).join(": ") || `HTTP ${res.status}`;
}
