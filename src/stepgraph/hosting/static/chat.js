// The chat view of agent workflows (`chat: true` from /ui/api/workflow): the selected
// session's conversation as bubbles, a message box that starts runs, agents' tokens live.
//
// What the page shows is the conversation the server reads from the session's head
// checkpoint (GET .../chat), followed by the live turns: runs this page saw that the
// conversation does not hold yet (the user's message at once, the agents' replies token by
// token). A run that has ended is folded into the conversation once a reload of it holds
// the run's texts; a failed run stays, with its error, since the session did not keep it.
import { $, api, el, newSession, sessionPath } from "./util.js";

const chat = { on: false, session: null, history: [], live: new Map(), loads: 0, pending: 0, hooks: null };

// -- live turns --------------------------------------------------------------------------

function liveRun(id) {
  let run = chat.live.get(id);
  if (!run) chat.live.set(id, run = { user: null, replies: [], done: false, error: null });
  return run;
}

function closeReplies(run) { for (const r of run.replies) r.open = false; }

function grow(runId, upd) {
  const run = liveRun(runId);
  const key = `${upd.path}|${upd.agent}`;
  let reply = run.replies.findLast((r) => r.open && r.key === key);
  if (upd.text) {
    if (!reply) {
      run.replies.push({ key, agent: upd.agent, name: upd.agent, text: upd.text, open: true, body: null });
      render();
    } else {
      reply.text += upd.text;
      if (reply.body) reply.body.textContent = reply.text; else render();
      scroll();
    }
  }
  if (upd.function_calls && upd.function_calls.length) closeReplies(run); // its model call ended in tools
}

// Whether the conversation holds a finished run: its texts, in order.
function covered(run, history) {
  const texts = [...(run.user === null ? [] : [run.user]), ...run.replies.map((r) => r.text)];
  let i = 0;
  for (const text of texts) {
    while (i < history.length && history[i].text !== text) i++;
    if (i++ >= history.length) return false;
  }
  return true;
}

// -- rendering ---------------------------------------------------------------------------

function bubble(role, name, text, attrs = {}) {
  const body = el("div", { class: "text", text });
  const who = role === "user" ? "you" : name || "assistant";
  const li = el("li", { class: `msg ${role}`, "data-role": role, "data-testid": `chat-${role}`,
    "aria-label": `${who} says`, ...attrs }, el("div", { class: "who", text: who }), body);
  return { li, body };
}

function scroll() { const log = $("#chat-log"); log.scrollTop = log.scrollHeight; }

function render() {
  const items = chat.history.map((m) => bubble(m.role, m.name, m.text).li);
  for (const [runId, run] of chat.live) {
    const attrs = { "data-run": runId, "data-live": "true" };
    if (run.user !== null) items.push(bubble("user", null, run.user, attrs).li);
    for (const r of run.replies) {
      const made = bubble("assistant", r.name, r.text, { ...attrs, "data-agent": r.agent });
      r.body = made.body;
      items.push(made.li);
    }
    if (run.error) items.push(el("li", { class: "msg failed", "data-run": runId, role: "alert", text: run.error }));
  }
  if (!items.length) items.push(el("li", { class: "muted empty", text: "no messages yet: say something below" }));
  $("#chat-log").replaceChildren(...items);
  scroll();
}

async function load() {
  const id = chat.session;
  if (!id) return;
  const turn = ++chat.loads; // only the newest load renders
  let data;
  try { data = await api(`${sessionPath(id)}/chat`); }
  catch (e) { if (turn === chat.loads) $("#chat-error").textContent = e.message; return; }
  if (id !== chat.session || turn !== chat.loads) return;
  chat.history = data.messages;
  for (const [runId, run] of chat.live) if (run.done && !run.error && covered(run, chat.history)) chat.live.delete(runId);
  render();
}

// -- sending -----------------------------------------------------------------------------

async function send() {
  const input = $("#chat-input");
  const text = input.value;
  $("#chat-error").textContent = "";
  if (!text.trim()) return;
  input.value = "";
  const temp = `sending-${++chat.pending}`; // the user's bubble shows before the run has an id
  liveRun(temp).user = text;
  render();
  try {
    const fresh = !chat.session;
    const { session_id, run_id } = fresh ? await newSession(text)
      : await api(`${sessionPath(chat.session)}/runs`, { input: text });
    if (fresh) chat.session = session_id; // selecting it below keeps these live turns
    liveRun(run_id).user = text;
    chat.live.delete(temp);
    render();
    if (fresh) { await chat.hooks.loadSessions(); await chat.hooks.selectSession(session_id); }
  } catch (e) {
    chat.live.delete(temp);
    render();
    input.value = text;
    $("#chat-error").textContent = e.message;
  }
}

// -- hooks for app.js --------------------------------------------------------------------

/** Show the chat panel when the workflow is a chat; `hooks`: {loadSessions, selectSession}. */
export function initChat(wf, hooks) {
  chat.on = Boolean(wf.chat);
  chat.hooks = hooks;
  $("#chat").hidden = !chat.on;
  $("#replies-panel").hidden = chat.on; // the chat's bubbles show the agents' tokens
  if (!chat.on) return;
  $("#chat-form").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("#chat-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
  });
  render();
}

/** A session was selected: show its conversation (live turns of another session go). */
export function chatSession(id) {
  if (!chat.on) return;
  if (id !== chat.session) {
    chat.session = id;
    chat.history = [];
    chat.live.clear();
    $("#chat-error").textContent = "";
    render();
  }
  load();
}

/** A record of the selected session; true when the chat took it (agents' tokens). */
export function chatRecord(rec, upd) {
  if (!chat.on || rec.session_id !== chat.session) return false;
  if (upd) { grow(rec.run_id, upd); return true; }
  const run = chat.live.get(rec.run_id);
  if (rec.type === "superstep_completed" && run) closeReplies(run); // every agent's turn ends here
  else if (rec.type === "executor_failed") {
    liveRun(rec.run_id).error = `${rec.executor_id} failed: ${rec.error}`;
    render();
  }
  else if (rec.type === "run_completed") {
    liveRun(rec.run_id).done = true;
    closeReplies(chat.live.get(rec.run_id));
    load(); // the head checkpoint now holds what the run kept
  }
  return false;
}
