// stepgraph dev UI: vanilla JS, no build step. Talks to /ui/api/* (JSON) and follows
// /ui/api/events (server-sent events, read with fetch so the API key header can be sent).
import { $, api, el, headers, newSession, showModel, state } from "./util.js";
import { forgetCheckpoint, initDebugger, renderTree } from "./debugger.js";
import { chatRecord, chatSession, initChat } from "./chat.js";
import { forgetHistory, loadHistory } from "./history.js";

// -- graph -------------------------------------------------------------------------------

function drawGraph(wf) {
  const { layout } = wf;
  const svg = $("#graph");
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${layout.width} ${layout.height}`);
  state.size = { width: layout.width, height: layout.height };
  zoom(1);
  const defs = el("svg:defs", {}, el("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, el("svg:path", { d: "M0,0 L10,5 L0,10 z", fill: "#8a93a8" })));
  svg.append(defs);
  const byId = new Map(layout.nodes.map((n) => [n.id, n]));
  for (const e of layout.edges) {
    const a = byId.get(e.from), b = byId.get(e.to);
    let d;
    if (b.y > a.y) {
      const x1 = a.x + a.w / 2, y1 = a.y + a.h, x2 = b.x + b.w / 2, y2 = b.y, my = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`;
    } else { // back edge or same rank: loop around the right side
      const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x + b.w, y2 = b.y + b.h / 2;
      const bend = Math.max(x1, x2) + 40;
      d = `M${x1},${y1} C${bend},${y1} ${bend},${y2} ${x2},${y2}`;
    }
    svg.append(el("svg:path", { class: `edge ${e.style}`, d, "marker-end": "url(#arrow)",
      "data-edge": `${e.from}->${e.to}` }));
    if (e.label) {
      const lx = (a.x + a.w / 2 + b.x + b.w / 2) / 2 + 4, ly = (a.y + a.h + b.y) / 2;
      svg.append(el("svg:text", { class: "edge-label", x: lx, y: ly, text: e.label }));
    }
  }
  state.nodes.clear();
  for (const n of layout.nodes) {
    const g = el("svg:g", { class: `node ${n.kind}`, "data-node": n.id, transform: `translate(${n.x},${n.y})` },
      el("svg:rect", { width: n.w, height: n.h, rx: n.kind === "join" ? n.w / 2 : 6 }),
      n.kind === "join" ? null : el("svg:text", { x: n.w / 2, y: n.h / 2, text: n.id }),
      el("svg:title", { text: n.kind === "join" ? "fan-in join" : n.id }));
    svg.append(g);
    state.nodes.set(n.id, g);
  }
}

// Zoom: a scale of the layout's own size; "fit" scales a wide graph to the panel's width.
function zoom(scale) {
  const { width, height } = state.size;
  state.zoom = Math.min(4, Math.max(0.2, scale));
  $("#graph").setAttribute("width", Math.round(width * state.zoom));
  $("#graph").setAttribute("height", Math.round(height * state.zoom));
  $("#graph").dataset.zoom = state.zoom.toFixed(2);
}

function fit() { zoom(($("#graph-wrap").clientWidth - 4) / state.size.width); }

function paintNode(id, cls) {
  const g = state.nodes.get(String(id).split("/")[0]);
  if (!g) return;
  g.classList.remove("running", "done", "failed", "waiting");
  if (cls) g.classList.add(cls);
}

function resetNodes() { for (const id of state.nodes.keys()) paintNode(id, null); }

// -- sessions ------------------------------------------------------------------------------

async function loadSessions() {
  const { data } = await api("/ui/api/sessions");
  const ul = $("#sessions");
  ul.replaceChildren(...data.map((s) => el("li", {
    "data-session": s.id, class: s.id === state.selected ? "selected" : null,
    onclick: () => selectSession(s.id),
  }, el("code", { text: s.id }), el("span", { class: "muted", text: `${s.origin}${s.label ? " · " + s.label : ""}` }))));
  if (!data.length) ul.append(el("li", { class: "muted", text: "no sessions yet" }));
}

async function selectSession(id) {
  if (state.selected !== id) { forgetCheckpoint(); forgetHistory(); }
  state.selected = id;
  $("#run-here").disabled = false;
  for (const li of document.querySelectorAll("#sessions li")) li.classList.toggle("selected", li.dataset.session === id);
  $("#session").hidden = false;
  $("#session-id").textContent = id;
  resetNodes();
  $("#events").replaceChildren();
  $("#replies").replaceChildren();
  chatSession(id); // before the replay: the chat takes this session's records from here on
  for (const rec of state.recent) if (rec.session_id === id) show(rec); // what arrived before
  await refreshSession();
}

async function refreshSession() {
  const id = state.selected;
  if (!id) return;
  const turn = state.refreshes = (state.refreshes || 0) + 1; // only the newest refresh renders
  const [detail, cps] = await Promise.all([api(`/ui/api/sessions/${encodeURIComponent(id)}`),
    api(`/ui/api/sessions/${encodeURIComponent(id)}/debug/tree`)]);
  if (id !== state.selected || turn !== state.refreshes) return;
  if (detail.model && detail.model !== state.model) { showModel(detail.model, id); return; } // its graph
  $("#session-status").textContent = detail.busy ? "running" : detail.status;
  $("#session-status").dataset.status = detail.busy ? "running" : detail.status;
  $("#cancel").disabled = !detail.busy;
  renderPending(detail.pending_requests);
  $("#runs").replaceChildren(...detail.runs.map((r) => el("li", { "data-run": r.id },
    el("code", { text: r.kind }), ` ${r.origin} · ${r.status}${r.error ? " · " + r.error : ""}`)));
  await Promise.all([renderTree(cps, id), loadHistory(id)]);
}

// -- pending requests: forms from the JSON schema of the expected answer --------------------

function resolve(schema, root) {
  if (schema && schema.$ref && root.$defs) return root.$defs[schema.$ref.split("/").pop()] || {};
  return schema || {};
}

function field(name, schema, root) {
  const s = resolve(schema, root);
  const wrap = (input) => el("label", {}, `${name} `, input);
  if (s.enum) return wrap(el("select", { name, "data-kind": "enum" }, ...s.enum.map((v) => el("option", { value: JSON.stringify(v), text: String(v) }))));
  if (s.type === "boolean") return el("label", {}, el("input", { type: "checkbox", name, "data-kind": "boolean" }), ` ${name}`);
  if (s.type === "integer" || s.type === "number") return wrap(el("input", { type: "number", name, step: s.type === "integer" ? "1" : "any", "data-kind": "number" }));
  if (s.type === "string") return wrap(el("input", { type: "text", name, "data-kind": "string" }));
  return wrap(el("textarea", { name, rows: "2", "data-kind": "json", placeholder: "JSON" }));
}

function readField(input) {
  const kind = input.dataset.kind;
  if (kind === "boolean") return input.checked;
  if (kind === "number") return input.value === "" ? null : Number(input.value);
  if (kind === "enum") return JSON.parse(input.value);
  if (kind === "json") return input.value.trim() === "" ? null : JSON.parse(input.value);
  return input.value;
}

function requestForm(req) {
  const root = req.schema || {};
  const schema = resolve(root, root);
  const fields = el("fieldset");
  const isObject = schema.type === "object" && schema.properties;
  if (isObject) for (const [k, v] of Object.entries(schema.properties)) fields.append(field(k, v, root));
  else fields.append(field("answer", schema, root));
  const error = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "request", "data-request": req.id },
    el("div", {}, el("strong", { text: req.executor_id }), " asks ", el("code", { text: JSON.stringify(req.payload) }),
      el("span", { class: "muted", text: ` → ${req.response_type}` })),
    fields, el("button", { type: "submit", "data-testid": "answer" }, "Answer"), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      let value;
      if (isObject) {
        value = {};
        for (const input of fields.querySelectorAll("[name]")) {
          const v = readField(input);
          if (v !== null && !(input.dataset.kind === "string" && v === "" && !(schema.required || []).includes(input.name))) value[input.name] = v;
        }
      } else value = readField(fields.querySelector("[name]"));
      await api(`/ui/api/sessions/${encodeURIComponent(state.selected)}/respond`, { answers: { [req.id]: value } });
      form.remove();
    } catch (e) { error.textContent = e.message; }
  });
  return form;
}

function renderPending(requests) {
  const box = $("#pending");
  box.replaceChildren(...requests.map(requestForm));
  if (!requests.length) box.append(el("p", { class: "muted", text: "none" }));
  for (const r of requests) paintNode(r.executor_id, "waiting");
}

// -- starting runs ----------------------------------------------------------------------------

function runInput() {
  const text = $("#run-input").value;
  return $("#run-json").checked ? JSON.parse(text) : text;
}

async function startRun(here) {
  $("#run-error").textContent = "";
  try {
    const input = runInput();
    resetNodes();
    if (here && state.selected) {
      await api(`/ui/api/sessions/${encodeURIComponent(state.selected)}/runs`, { input });
    } else {
      const { session_id } = await newSession(input);
      await loadSessions();
      await selectSession(session_id);
    }
  } catch (e) { $("#run-error").textContent = e.message; }
}

// -- the live event stream ----------------------------------------------------------------------

function describe(rec) {
  switch (rec.type) {
    case "superstep_started": return `superstep ${rec.superstep} started`;
    case "superstep_completed": return `superstep ${rec.superstep} completed`;
    case "executor_invoked": return `${rec.executor_id} invoked`;
    case "executor_completed": return `${rec.executor_id} completed`;
    case "executor_failed": return `${rec.executor_id} failed: ${rec.error}`;
    case "output": return `output from ${rec.executor_id}: ${rec.text}`;
    case "request_issued": return `request ${rec.request.id.slice(0, 8)} from ${rec.request.executor_id}: ${JSON.stringify(rec.request.payload)}`;
    case "checkpoint_saved": return `checkpoint ${rec.checkpoint_id.slice(0, 8)} (superstep ${rec.superstep})`;
    case "run_started": return "run started";
    case "run_completed": return `run completed: ${rec.status}`;
    case "subworkflow_event": return `${rec.executor_id} › ${describe(rec.event)}`;
    default: return rec.type;
  }
}

function onRecord(rec) {
  state.lastSeq = rec.seq;
  if (rec.type === "run_record") {
    if (!document.querySelector(`#sessions li[data-session="${CSS.escape(rec.session_id)}"]`)) loadSessions();
    if (rec.session_id === state.selected) refreshSession(); // a run started or ended
    return;
  }
  state.recent.push(rec);
  if (state.recent.length > 2000) state.recent.shift();
  if (rec.session_id === state.selected) show(rec);
}

// -- live replies: agents' tokens as they stream -------------------------------------------

function agentUpdate(rec, path = "") {
  if (rec.type === "subworkflow_event") return agentUpdate(rec.event, `${path}${rec.executor_id}/`);
  return rec.type === "agent_update" ? { ...rec, path: path + rec.executor_id } : null;
}

function showToken(rec, upd) {
  if (!upd.text) return;
  const box = $("#replies");
  const key = `${rec.run_id}|${upd.path}|${upd.agent}`;
  let text = [...box.children].find((p) => p.dataset.key === key)?.querySelector(".text");
  if (!text) {
    $("#replies-none")?.remove();
    text = el("span", { class: "text" });
    box.append(el("p", { class: "reply", "data-key": key, "data-run": rec.run_id, "data-agent": upd.agent },
      el("strong", { text: `${upd.path}: ` }), text));
  }
  text.textContent += upd.text;
  box.scrollTop = box.scrollHeight;
}

function show(rec) {
  const upd = agentUpdate(rec);
  const inChat = chatRecord(rec, upd); // a chat workflow's tokens grow its chat bubbles
  if (upd) { if (!inChat) showToken(rec, upd); return; } // tokens are not listed as events
  if (rec.type === "run_started") $("#replies").replaceChildren();
  if (rec.type === "executor_invoked") paintNode(rec.executor_id, "running");
  else if (rec.type === "executor_completed") paintNode(rec.executor_id, "done");
  else if (rec.type === "executor_failed") paintNode(rec.executor_id, "failed");
  else if (rec.type === "request_issued") paintNode(rec.request.executor_id, "waiting");
  else if (rec.type === "run_started") { resetNodes(); $("#session-status").textContent = "running"; }
  const list = $("#events");
  list.append(el("li", { class: rec.type, "data-type": rec.type, "data-run": rec.run_id }, describe(rec)));
  while (list.children.length > 500) list.firstChild.remove();
  list.parentElement.scrollTop = list.parentElement.scrollHeight;
}

async function follow() {
  for (;;) {
    try {
      const url = state.lastSeq === null ? "/ui/api/events" : `/ui/api/events?after=${state.lastSeq}`;
      const res = await fetch(url, { headers: headers({ accept: "text/event-stream" }) });
      if (!res.ok) throw new Error(`${res.status}`);
      $("#conn").textContent = "live";
      $("#conn").dataset.live = "true";
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, cut); buf = buf.slice(cut + 2);
          const data = chunk.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (data) onRecord(JSON.parse(data));
        }
      }
    } catch (e) { /* reconnect below */ }
    $("#conn").textContent = "reconnecting…";
    $("#conn").dataset.live = "false";
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// Several workflows served: a picker; each workflow's page shows its graph and starts its sessions.
function pickModel(wf) {
  const box = $("#model");
  box.hidden = wf.models.length < 2;
  box.replaceChildren(...wf.models.map((m) => el("option", { value: m, text: m, selected: m === wf.model || null })));
  box.addEventListener("change", () => showModel(box.value));
}

async function init() {
  $("#api-key").value = localStorage.getItem("stepgraph-key") || "";
  $("#api-key").addEventListener("change", (e) => { localStorage.setItem("stepgraph-key", e.target.value); location.reload(); });
  $("#run-form").addEventListener("submit", (e) => { e.preventDefault(); startRun(false); });
  $("#run-here").addEventListener("click", () => startRun(true));
  $("#refresh").addEventListener("click", () => { loadSessions(); refreshSession(); });
  $("#clear-events").addEventListener("click", () => $("#events").replaceChildren());
  $("#zoom-in").addEventListener("click", () => zoom(state.zoom * 1.25));
  $("#zoom-out").addEventListener("click", () => zoom(state.zoom / 1.25));
  $("#zoom-fit").addEventListener("click", fit);
  $("#open-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = $("#open-id").value.trim();
    $("#open-error").textContent = "";
    if (!id) return;
    try { await api(`/ui/api/sessions/${encodeURIComponent(id)}`); await selectSession(id); }
    catch (err) { $("#open-error").textContent = err.message; }
  });
  try {
    const asked = new URLSearchParams(location.search);
    const wf = await api(`/ui/api/workflow${asked.get("model") ? `?model=${encodeURIComponent(asked.get("model"))}` : ""}`);
    state.model = wf.model;
    $("#wf-name").textContent = wf.name;
    pickModel(wf);
    drawGraph(wf);
    initDebugger(wf, { refreshSession, resetNodes });
    initChat(wf, { loadSessions, selectSession });
    document.body.dataset.ready = "true";
    await loadSessions();
    if (asked.get("session")) await selectSession(asked.get("session"));
  } catch (e) { $("#run-error").textContent = e.message; }
  follow();
}

init();
