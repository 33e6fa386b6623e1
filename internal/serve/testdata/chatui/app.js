// A small stand-in for ChatUI (BlocUnited-LLC/mozaiks-ai ChatUI/src) that does
// what ChatUI does on the wire, so the runtime can be driven the same way in
// a real browser: the workflow is the first key of GET /api/workflows, the
// chat is started for the build default, the socket resumes from the stored
// seq on open, and frames are handled as ChatPage.js handleIncoming does.
"use strict";

const q = new URLSearchParams(location.search);
const API = q.get("api");
const WS = API.replace(/^http/, "ws");
const APP = q.get("app");
const USER = q.get("user");
// REACT_APP_DEFAULT_WORKFLOW: what ChatUI starts chats for.
const BUILD_DEFAULT = q.get("build_default") || "assistant";
// ChatUI's urlWorkflowName (/chat/<app>/<workflow> or ?workflow=).
const URL_WORKFLOW = q.get("workflow");

const state = {
  mode: "workflow",
  chatId: null,
  workflow: null,
  generalId: null,
  messages: [],
  workflowCache: [],
  generalListStatus: 0,
  themeSource: null,
  meta: null,
  frames: [],
};
window.__state = state;
let ws = null;

function render() {
  const box = document.getElementById("messages");
  box.replaceChildren();
  for (const m of state.messages) {
    const div = document.createElement("div");
    div.className = "msg " + m.sender + (m.thinking ? " thinking" : "");
    if (m.card) {
      div.classList.add("card");
      const h = document.createElement("h2");
      h.textContent = m.card.payload.workflow_title || m.card.component;
      const p = document.createElement("p");
      p.textContent = m.card.payload.workflow_description || "";
      const accept = document.createElement("button");
      accept.type = "button";
      accept.className = "accept";
      accept.textContent = "Accept";
      accept.disabled = !!m.card.done;
      accept.addEventListener("click", () => {
        // What ChatUI's ActionPlan answers through ui_tool_response.
        m.card.done = true;
        send({ type: "ui_tool_response", eventId: m.card.eventId,
          response: { status: "success", action: "accept_workflow", data: { action: "accept_workflow" } } });
        render();
      });
      div.append(h, p, accept);
    } else if (!m.thinking) {
      div.textContent = (m.agent ? m.agent + ": " : "") + m.content;
    }
    box.append(div);
  }
  document.body.dataset.mode = state.mode;
  document.getElementById("workflow").textContent = state.workflow || "";
  document.getElementById("chat").textContent = state.mode === "ask" ? state.generalId : state.chatId;
}

function push(m) { state.messages.push(m); render(); }
function system(text) { push({ sender: "system", content: text }); }
function send(obj) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(obj));
  return true;
}

async function boot() {
  // Theme (ChatUI/src/styles/themeProvider.js): data.theme, data.source.
  const th = await (await fetch(`${API}/api/themes/${encodeURIComponent(APP)}`)).json();
  state.themeSource = th.source;
  document.documentElement.style.setProperty("--primary", th.theme.colors.primary.main);
  // Every page load lists the Ask chats (ChatPage.js refreshGeneralSessions).
  state.generalListStatus = (await fetch(`${API}/api/general_chats/list/${APP}/${USER}?limit=50`)).status;
  // The registry is the answer's keys in order (ChatUI/src/workflows/index.js);
  // the socket opens for urlWorkflowName || workflows[0].name (ChatPage.js).
  const workflows = await (await fetch(`${API}/api/workflows`)).json();
  state.workflow = URL_WORKFLOW || Object.keys(workflows)[0];
  const key = "mozaiks.current_chat_id." + (URL_WORKFLOW || "");
  state.chatId = localStorage.getItem(key);
  if (!state.chatId) {
    const res = await fetch(`${API}/api/chats/${APP}/${URL_WORKFLOW || BUILD_DEFAULT}/start`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: USER, client_request_id: crypto.randomUUID() }),
    });
    state.chatId = (await res.json()).chat_id;
    localStorage.setItem(key, state.chatId);
  }
  connect();
}

function connect() {
  const chatId = state.chatId;
  ws = new WebSocket(`${WS}/ws/${state.workflow}/${APP}/${chatId}/${USER}`);
  // ChatUI/src/adapters/api.js: lastSequence from ws_idx_<chat>, resume on open.
  let last = parseInt(localStorage.getItem("ws_idx_" + chatId) || "0", 10);
  let resumePending = false;
  const sendResume = () => {
    if (resumePending) return;
    resumePending = true;
    send({ type: "client.resume", chat_id: chatId, lastClientIndex: last });
  };
  ws.onopen = () => {
    if (last > 0) sendResume();
    render();
    document.getElementById("status").textContent = "open";
  };
  ws.onmessage = (ev) => {
    const data = JSON.parse(ev.data);
    if (typeof data.seq === "number") {
      if (data.seq > last) {
        last = data.seq;
        localStorage.setItem("ws_idx_" + chatId, String(last));
      } else if (data.seq < last - 1 && !resumePending) {
        state.gaps = (state.gaps || 0) + 1; // api.js: a gap; the frame is dropped and a resume sent
        sendResume();
        return;
      }
    }
    if (data.type === "chat.resume_boundary") resumePending = false;
    handle(data);
  };
  ws.onclose = (ev) => { document.getElementById("status").textContent = "closed " + ev.code; };
}

// handle follows ChatUI/src/pages/ChatPage.js handleIncoming.
function handle(data) {
  if (!data.type) return;
  state.frames.push(data.type);
  if (data.type === "chat_meta") {
    // Read at the top level, as ChatPage.js does.
    state.meta = { chat_exists: data.chat_exists, cache_seed: data.cache_seed };
    return;
  }
  if (!data.type.startsWith("chat.")) return;
  const inner = data.data || {};
  for (const k of ["agent", "content", "success", "status", "message", "error_code", "component_type", "payload",
    "request_id", "corr", "tool_name", "prompt"]) {
    if (inner[k] !== undefined && data[k] === undefined) data[k] = inner[k];
  }
  switch (data.type.slice(5)) {
    case "mode_changed":
      if (inner.mode === "general") {
        if (state.mode === "workflow") state.workflowCache = state.messages;
        state.mode = "ask";
        state.generalId = inner.general_chat_id;
        hydrateGeneral();
      }
      return;
    case "context_switched":
      state.mode = "workflow";
      state.chatId = inner.to_chat_id || inner.chat_id;
      state.messages = state.workflowCache;
      render();
      return;
    case "select_speaker":
      state.messages = state.messages.filter((m) => !m.thinking);
      push({ sender: "agent", agent: data.agent, thinking: true });
      return;
    case "print": {
      const s = state.messages.findLast((m) => m.streaming && m.agent === data.agent);
      if (s) s.content += data.content || "";
      else state.messages.push({ sender: "agent", agent: data.agent, content: data.content || "", streaming: true });
      render();
      return;
    }
    case "text": {
      const content = data.content || "";
      // ChatUI drops texts that repeat the last user message (its own echo).
      const lastUser = state.messages.findLast((m) => m.sender === "user");
      if (lastUser && lastUser.content.trim() === content.trim()) return;
      state.messages = state.messages.filter((m) => !m.thinking); // the thinking bubble goes on text
      const lastMsg = state.messages[state.messages.length - 1];
      if (lastMsg && lastMsg.streaming && lastMsg.agent === data.agent) {
        lastMsg.streaming = false;
        lastMsg.content = content;
        render();
        return;
      }
      const isUser = (data.agent || "").toLowerCase() === "user";
      push({ sender: isUser ? "user" : "agent", agent: isUser ? "" : data.agent, content });
      return;
    }
    case "tool_call":
      if (data.component_type) {
        push({ sender: "agent", card: { component: data.component_type, payload: data.payload || {},
          eventId: data.corr || inner.eventId } });
      }
      return;
    case "tool_response":
      system(data.success ? `✅ Tool Response: ${data.content || "Success"}` : `❌ Tool Failed: ${data.content || "Error"}`);
      return;
    case "resume_boundary":
      system("🔄 Session replay complete. Live events resumed.");
      return;
    case "error":
      system(`❌ Error: ${data.message || "Unknown error"}`);
      return;
    case "run_complete":
      system(`✅ Workflow complete (${data.reason || inner.reason || "finished"})`);
      return;
    default:
      return;
  }
}

async function hydrateGeneral() {
  const res = await fetch(`${API}/api/general_chats/transcript/${APP}/${state.generalId}?after_sequence=-1&limit=200`);
  const tr = res.status === 200 ? await res.json() : { messages: [] };
  state.messages = tr.messages.map((m) => ({ sender: m.role === "assistant" ? "agent" : "user",
    agent: m.role === "assistant" ? "Assistant" : "", content: m.content }));
  render();
}

function sendMessage() {
  const input = document.getElementById("input");
  const text = input.value;
  input.value = "";
  state.messages = state.messages.filter((m) => !m.thinking);
  push({ sender: "user", content: text });
  push({ sender: "agent", agent: "Agent", thinking: true });
  if (state.mode === "ask") {
    send({ type: "user.input.submit", chat_id: state.generalId || state.chatId, text,
      context: { source: "chat_interface", conversation_mode: "ask", general_chat_id: state.generalId } });
  } else {
    send({ type: "user.input.submit", chat_id: state.chatId, text,
      context: { source: "chat_interface", conversation_mode: "workflow", workflow_name: state.workflow } });
  }
}

document.getElementById("send").addEventListener("click", sendMessage);
document.getElementById("ask").addEventListener("click", () => {
  if (state.mode !== "ask") send({ type: "chat.enter_general_mode", chat_id: state.chatId });
});
document.getElementById("back").addEventListener("click", () => {
  if (state.mode !== "workflow") send({ type: "chat.switch_workflow", chat_id: state.chatId });
});
boot().catch((e) => { document.getElementById("status").textContent = "boot failed: " + e; });
