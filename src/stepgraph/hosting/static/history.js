// A session's history as the store keeps it: every run replayed from its checkpoints'
// traces (events with their data, and a per-superstep timeline of handler durations),
// for runs whose live stream is gone. Talks to /ui/api/sessions/{id}/debug/runs
// (see hosting/_history.py).
import { $, api, el, sessionPath, state } from "./util.js";

let runs = [];
let shown = null; // the run id (or first checkpoint id) in the replay panel

const keyOf = (run) => run.run || run.checkpoints[0].checkpoint_id;
const fmt = (us) => (us === null || us === undefined ? "?" : us < 1000 ? `${us} µs` : `${(us / 1000).toFixed(1)} ms`);
const clip = (v) => { const s = JSON.stringify(v); return s.length > 300 ? `${s.slice(0, 300)}…` : s; };

function describe(ev) {
  if (ev.type === "subworkflow_event") return `${ev.executor_id} › ${describe(ev.event)}`;
  if (ev.type === "output") return `output of ${ev.executor_id}: ${typeof ev.value === "string" ? ev.value : clip(ev.value)}`;
  if (ev.type === "request_issued") return `request ${ev.request.id} from ${ev.request.executor_id}: ${clip(ev.request.payload)}`;
  const { type, ...data } = ev;
  return `${type} ${clip(data)}`;
}

export async function loadHistory(id) {
  let data;
  try { data = await api(`${sessionPath(id)}/debug/runs`); } catch (e) { $("#history").replaceChildren(el("li", { class: "error", text: e.message })); return; }
  if (id !== state.selected) return;
  runs = data.data;
  const list = $("#history");
  list.replaceChildren(...runs.map((run) => {
    const steps = run.checkpoints.filter((c) => c.kind === "superstep").length;
    const key = keyOf(run);
    return el("li", { "data-run": key, "data-status": run.status, class: key === shown ? "selected" : null,
      onclick: () => showRun(key) },
    el("code", { text: run.run ? run.run.slice(0, 8) : run.kind }),
    ` ${run.started_at.slice(11, 19)} · ${steps} superstep${steps === 1 ? "" : "s"} · ${run.events.length} event${run.events.length === 1 ? "" : "s"} · `,
    el("span", { class: `st st-${run.status}`, text: run.status }));
  }));
  if (!runs.length) list.append(el("li", { class: "muted", text: "no checkpoints yet" }));
  if (data.truncated) list.append(el("li", { class: "muted", text: "older checkpoints not shown" }));
  if (shown !== null) showRun(shown);
}

export function forgetHistory() {
  runs = []; shown = null;
  $("#history").replaceChildren();
  $("#replay").hidden = true;
}

function timeline(run) {
  const rows = run.checkpoints.filter((c) => c.kind === "superstep");
  if (!rows.length) return [el("p", { class: "muted", text: "no superstep in this run" })];
  const scale = Math.max(...rows.map((c) => c.us || 0), 1);
  return rows.map((c) => el("div", { class: "tl-row", "data-testid": "timeline-step", "data-superstep": c.superstep },
    el("span", { class: "tl-label", text: `step ${c.superstep} · ${fmt(c.us)}` }),
    el("div", { class: "tl-track" }, ...c.handlers.map((h) => el("div", {
      class: "tl-bar", "data-executor": h.executor_id, "data-us": h.us,
      title: `${h.executor_id}${h.item === null ? "" : ` [item ${h.item}]`}: ${fmt(h.us)} (from ${fmt(h.start_us)})`,
      style: `left:${(100 * h.start_us) / scale}%;width:${Math.max((100 * h.us) / scale, 0.5)}%`,
    }, el("span", { text: h.executor_id }))))));
}

function showRun(key) {
  const run = runs.find((r) => keyOf(r) === key);
  if (!run) { $("#replay").hidden = true; shown = null; return; }
  shown = key;
  for (const li of document.querySelectorAll("#history li")) li.classList.toggle("selected", li.dataset.run === key);
  $("#replay").hidden = false;
  $("#replay-run").textContent = run.run || run.kind;
  $("#replay-status").textContent = run.status;
  $("#replay-status").dataset.status = run.status;
  $("#timeline").replaceChildren(...timeline(run));
  const items = run.checkpoints.flatMap((c) => [
    el("li", { class: "cp-mark", "data-type": `checkpoint_${c.kind}`, text: `checkpoint ${c.checkpoint_id.slice(0, 8)} · ${c.kind}${c.kind === "superstep" ? ` ${c.superstep}` : ""} · ${c.status}` }),
    ...c.events.map((ev) => el("li", { class: ev.type, "data-type": ev.type, text: describe(ev) })),
  ]);
  $("#replayed").replaceChildren(...items);
}
