// Shared helpers of the dev UI modules: DOM building, the API client and the page's state.
export const $ = (sel) => document.querySelector(sel);
export const SVG = "http://www.w3.org/2000/svg";
export const state = { selected: null, lastSeq: null, nodes: new Map(), recent: [], checkpoint: null,
  executors: [], model: null, models: [] };

export function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function headers(extra = {}) {
  const key = localStorage.getItem("stepgraph-key");
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

export async function api(path, body) {
  const opts = body === undefined ? { headers: headers() }
    : { method: "POST", headers: headers({ "content-type": "application/json" }), body: JSON.stringify(body) };
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data?.error?.message || `${res.status} ${res.statusText}`);
  return data;
}

export const sessionPath = (id) => `/ui/api/sessions/${encodeURIComponent(id)}`;

/** A new session of the workflow shown (`state.model`), with its first run. */
export const newSession = (input) => api("/ui/api/sessions", state.model ? { input, model: state.model } : { input });

/** The page for another workflow served (a model name), optionally opening a session. */
export function showModel(model, session) {
  const q = new URLSearchParams({ model });
  if (session) q.set("session", session);
  location.search = q.toString();
}
