// The time-travel debugger: the checkpoint tree, a checkpoint's state and diff,
// edit-and-fork, and resume / cancel / reset with breakpoints. Talks to
// /ui/api/sessions/{id}/debug/* (see hosting/_debugger.py).
import { $, api, el, sessionPath, state } from "./util.js";

let hooks = { refreshSession: async () => {}, resetNodes: () => {} };
let loaded = null; // the checkpoint shown in the inspector: {id, state}

const LABELS = { idle: "done", "mid-run": "mid-run", failed: "failed", waiting: "waiting",
  paused: "paused", cancelled: "cancelled" };

function fail(where, e) { $(where).textContent = e.message; }

// -- breakpoints and the session's controls ----------------------------------------------

function checkboxes(box, name, ids) {
  box.replaceChildren(...ids.map((id) => el("label", { class: "bp" },
    el("input", { type: "checkbox", name, value: id, "data-executor": id }), ` ${id}`)));
}

function breakpoints() {
  const picked = (name) => [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
  const out = {};
  const before = picked("bp-before"), after = picked("bp-after");
  if (before.length) out.interrupt_before = before;
  if (after.length) out.interrupt_after = after;
  return out;
}

export async function resumeFrom(checkpointId) {
  $("#control-error").textContent = "";
  try {
    hooks.resetNodes();
    const body = breakpoints();
    if (checkpointId) body.checkpoint_id = checkpointId;
    await api(`${sessionPath(state.selected)}/debug/resume`, body);
  } catch (e) { fail("#control-error", e); }
}

async function post(what) {
  $("#control-error").textContent = "";
  try {
    await api(`${sessionPath(state.selected)}/debug/${what}`, {});
    await hooks.refreshSession();
  } catch (e) { fail("#control-error", e); }
}

export function initDebugger(wf, given) {
  hooks = given;
  const ids = wf.layout.nodes.filter((n) => n.kind !== "join").map((n) => n.id);
  checkboxes($("#bp-before"), "bp-before", ids);
  checkboxes($("#bp-after"), "bp-after", ids);
  $("#resume").addEventListener("click", () => resumeFrom(null));
  $("#cancel").addEventListener("click", () => post("cancel"));
  $("#reset").addEventListener("click", () => post("reset"));
  $("#cp-fork").addEventListener("click", fork);
  $("#cp-resume").addEventListener("click", () => loaded && resumeFrom(loaded.id));
}

// -- the checkpoint tree: one line per checkpoint, a fork indents its branches -------------

function line(node, head) {
  const id = node.id;
  const label = el("span", { class: "cp", "data-testid": "checkpoint", onclick: () => showCheckpoint(id) },
    el("code", { text: id.slice(0, 8) }), ` step ${node.superstep} `,
    el("span", { class: `st st-${node.status}`, "data-status": node.status, text: LABELS[node.status] || node.status }),
    id === head ? el("span", { class: "badge", text: "head" }) : null,
    el("button", { type: "button", class: "resume", title: "restore this checkpoint and run on (with the breakpoints)",
      onclick: (ev) => { ev.stopPropagation(); resumeFrom(id); } }, "resume from here"));
  return el("li", { "data-checkpoint": id, "data-status": node.status,
    class: [id === head ? "head" : "", id === state.checkpoint ? "selected" : ""].join(" ").trim() || null }, label);
}

export async function renderTree(tree, sessionId) {
  const infos = tree.data, head = tree.head;
  const kids = new Map();
  const ids = new Set(infos.map((i) => i.id));
  for (const i of [...infos].reverse()) { // oldest first: branches in the order they were made
    const parent = ids.has(i.parent_id) ? i.parent_id : null;
    if (!kids.has(parent)) kids.set(parent, []);
    kids.get(parent).push(i);
  }
  const build = (parent) => {
    const ul = el("ul", { class: parent === null ? "tree" : "fork" });
    for (const start of kids.get(parent) || []) {
      // Follow single-child chains iteratively so long histories do not nest deeply.
      for (let node = start; node;) {
        const li = line(node, head);
        if (node === start && parent !== null) li.classList.add("branch"); // where a branch begins
        ul.append(li);
        const children = kids.get(node.id) || [];
        if (children.length > 1) li.append(build(node.id));
        node = children.length === 1 ? children[0] : null;
      }
    }
    return ul;
  };
  const box = $("#checkpoints");
  box.replaceChildren(infos.length ? build(null) : el("p", { class: "muted", text: "none" }));
  if (tree.truncated) box.append(el("p", { class: "muted", text: `the newest ${infos.length} checkpoints` }));
  if (state.checkpoint && !ids.has(state.checkpoint)) closeInspector();
  else if (state.checkpoint && sessionId === state.selected) await showCheckpoint(state.checkpoint, { keepEdits: true });
}

// -- the inspector: state, diff against the parent, edit-and-fork -----------------------------

function closeInspector() {
  state.checkpoint = null; loaded = null;
  $("#inspector").hidden = true;
}

export function forgetCheckpoint() { closeInspector(); }

const short = (v) => JSON.stringify(v);

function renderDiff(diff) {
  const list = $("#cp-diff");
  if (diff === null) { list.replaceChildren(el("li", { class: "muted", text: "its parent is gone (pruned)" })); return; }
  const rows = [
    ...Object.entries(diff.added).map(([k, v]) => el("li", { class: "added", "data-key": k }, `+ ${k}: `, el("code", { text: short(v) }))),
    ...Object.entries(diff.removed).map(([k, v]) => el("li", { class: "removed", "data-key": k }, `− ${k}: `, el("code", { text: short(v) }))),
    ...Object.entries(diff.changed).map(([k, v]) => el("li", { class: "changed", "data-key": k }, `~ ${k}: `,
      el("code", { text: short(v.before) }), " → ", el("code", { text: short(v.after) }))),
  ];
  list.replaceChildren(...(rows.length ? rows : [el("li", { class: "muted", text: "no state changes" })]));
}

async function showCheckpoint(id, { keepEdits = false } = {}) {
  const sid = state.selected;
  let cp;
  try { cp = await api(`${sessionPath(sid)}/debug/checkpoints/${encodeURIComponent(id)}`); }
  catch (e) { fail("#cp-error", e); return; }
  if (sid !== state.selected) return;
  const edited = keepEdits && loaded?.id === id && $("#cp-state").value !== JSON.stringify(loaded.state, null, 2);
  state.checkpoint = id;
  loaded = { id, state: cp.state };
  for (const li of document.querySelectorAll("#checkpoints li")) li.classList.toggle("selected", li.dataset.checkpoint === id);
  $("#inspector").hidden = false;
  $("#cp-id").textContent = id;
  $("#cp-status").textContent = LABELS[cp.status] || cp.status;
  $("#cp-status").dataset.status = cp.status;
  $("#cp-meta").textContent = `superstep ${cp.superstep} · ${cp.created_at}` +
    (cp.parent_id ? ` · parent ${cp.parent_id.slice(0, 8)}` : " · a root") + (cp.head ? " · head" : "");
  renderDiff(cp.diff);
  if (!edited) $("#cp-state").value = JSON.stringify(cp.state, null, 2);
  $("#cp-error").textContent = "";
}

function edits(before, text) {
  let after;
  try { after = JSON.parse(text); } catch (e) { throw new Error(`the state is not valid JSON: ${e.message}`); }
  if (after === null || typeof after !== "object" || Array.isArray(after)) throw new Error("the state must be a JSON object");
  const values = {};
  for (const [k, v] of Object.entries(after)) if (!(k in before) || short(before[k]) !== short(v)) values[k] = v;
  const deleted = Object.keys(before).filter((k) => !(k in after));
  if (!Object.keys(values).length && !deleted.length) throw new Error("nothing changed: edit a value first");
  return { values, delete: deleted };
}

async function fork() {
  $("#cp-error").textContent = "";
  if (!loaded) return;
  try {
    const body = edits(loaded.state, $("#cp-state").value);
    const made = await api(`${sessionPath(state.selected)}/debug/checkpoints/${encodeURIComponent(loaded.id)}/fork`, body);
    state.checkpoint = made.checkpoint_id;
    loaded = null;
    await hooks.refreshSession();
  } catch (e) { fail("#cp-error", e); }
}
