// The chat view: start or reopen a chat, stream replies over the WebSocket
// protocol, answer input requests and UI tools, show usage, and reconnect
// with resume (?after_seq=) after the connection drops.
import { api, settings, el, newID, validID, fmtTime, claim } from "./api.js";
import { toolCard } from "./toolform.js";

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  chat: null, // {chatId, workflow, appId, userId}
  ws: null,
  gen: 0, // bumps on every (re)connect and chat switch; stale sockets are ignored
  lastSeq: 0,
  seen: new Set(), // seqs already shown: a resume never shows one twice
  messages: new Map(), // message_id -> {li, body, text, done}
  cards: new Map(), // UI tool event id -> card
  pendingInput: null, // input request id the next message answers
  attempt: 0,
  timer: null,
  usageTimer: null,
  running: false, // a run is in progress: Stop is offered
  focusOnOpen: false,
};

export function initChat(info) {
  state.info = info;
  const userInput = $("user-id");
  const appInput = $("app-id");
  userInput.value = settings.userId || (info.auth_enabled ? "" : "console-user");
  appInput.value = settings.appId || info.default_app_id;
  userInput.addEventListener("change", () => { settings.userId = userInput.value.trim(); loadChats(); });
  appInput.addEventListener("change", () => { settings.appId = appInput.value.trim(); loadChats(); });
  if (info.auth_enabled) {
    $("token-row").hidden = false;
    const tok = $("token");
    tok.value = settings.token;
    tok.addEventListener("change", () => {
      settings.token = tok.value.trim();
      const sub = claim(settings.token, info.user_id_claim || "sub");
      if (sub) { userInput.value = sub; settings.userId = sub; }
      loadChats();
    });
  }

  const sel = $("workflow");
  for (const wf of info.workflows) sel.append(el("option", { value: wf.name, text: wf.name }));
  sel.value = info.default_workflow;
  const describe = () => {
    const wf = info.workflows.find((w) => w.name === sel.value);
    $("workflow-desc").textContent = wf ? (wf.description || "No description.") : "";
  };
  sel.addEventListener("change", describe);
  describe();

  const tr = $("transcript");
  tr.addEventListener("scroll", () => { stickToBottom = tr.scrollHeight - tr.scrollTop - tr.clientHeight < 80; }, { passive: true });
  $("start").addEventListener("click", startChat);
  $("refresh-chats").addEventListener("click", loadChats);
  $("stop").addEventListener("click", () => {
    if (state.chat && sendFrame({ type: "chat.cancel", chat_id: state.chat.chatId })) setActivity("Stopping the run…");
  });
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  window.addEventListener("online", () => { if (state.chat && !state.ws) connectNow(); });

  settings.userId = userInput.value.trim();
  settings.appId = appInput.value.trim();
  loadChats();
  openFromHash();
}

// openFromHash opens the chat the address names (#/chat/<workflow>/<chat_id>)
// unless it is open already: on load, and on back/forward or a pasted link.
export function openFromHash() {
  const m = location.hash.match(/^#\/chat\/([^/]+)\/([^/]+)$/);
  if (!m || !validID(settings.userId)) return;
  const workflow = decodeURIComponent(m[1]), chatId = decodeURIComponent(m[2]);
  if (state.chat && state.chat.chatId === chatId && state.chat.workflow === workflow) return;
  openChat({ workflow, chatId, appId: settings.appId, userId: settings.userId });
}

// chatHash is the route of the open chat ("" when none), so a reload reopens it.
export function chatHash() {
  const c = state.chat;
  return c ? "#/chat/" + encodeURIComponent(c.workflow) + "/" + encodeURIComponent(c.chatId) : "";
}

function identity() {
  const userId = $("user-id").value.trim();
  const appId = $("app-id").value.trim();
  if (!validID(userId)) { notify("Enter a user id: 1-128 characters of A-Z a-z 0-9 . _ : @ -", $("user-id")); return null; }
  if (!validID(appId)) { notify("Enter an app id: 1-128 characters of A-Z a-z 0-9 . _ : @ -", $("app-id")); return null; }
  settings.userId = userId;
  settings.appId = appId;
  return { userId, appId };
}

function notify(msg, focus) {
  system(msg, "err");
  if (focus) focus.focus();
}

async function startChat() {
  const id = identity();
  if (!id) return;
  const btn = $("start");
  btn.disabled = true;
  try {
    const s = await api("POST", "/api/sessions", {
      workflow: $("workflow").value, user_id: id.userId, app_id: id.appId, client_request_id: newID("console-"),
    });
    openChat({ chatId: s.chat_id, workflow: s.workflow, appId: s.app_id, userId: s.user_id });
    state.focusOnOpen = true;
    loadChats();
  } catch (e) {
    notify("Could not start a chat: " + e.message + (e.code ? " (" + e.code + ")" : ""));
  } finally {
    btn.disabled = false;
  }
}

export async function loadChats() {
  const list = $("chats");
  const userId = $("user-id").value.trim();
  const appId = $("app-id").value.trim();
  if (!validID(userId) || !validID(appId)) { list.replaceChildren(el("li", { class: "empty", text: "Enter a user id to see your chats." })); return; }
  try {
    const q = new URLSearchParams({ app_id: appId, user_id: userId, limit: "20" });
    const res = await api("GET", "/api/sessions?" + q);
    const items = (res.sessions || []).map((s) => {
      const current = state.chat && state.chat.chatId === s.chat_id;
      return el("li", {},
        el("button", {
          type: "button", class: "chat-item", "aria-current": current ? "true" : false, "data-chat-id": s.chat_id,
          onclick: () => openChat({ chatId: s.chat_id, workflow: s.workflow, appId: s.app_id, userId: s.user_id }),
        },
        el("span", { class: "ci-wf", text: s.workflow }),
        el("span", { class: "ci-status", "data-status": s.status, text: s.status.replace("_", " ") }),
        el("span", { class: "ci-time", text: fmtTime(s.updated_at) })));
    });
    list.replaceChildren(...(items.length ? items : [el("li", { class: "empty", text: "No chats yet." })]));
  } catch (e) {
    list.replaceChildren(el("li", { class: "empty err", text: "Could not list chats: " + e.message }));
  }
}

export function openChat(c) {
  closeSocket();
  state.chat = c;
  state.lastSeq = 0;
  state.seen = new Set();
  state.messages = new Map();
  state.cards = new Map();
  state.pendingInput = null;
  state.attempt = 0;
  $("transcript").replaceChildren();
  $("chat-title").textContent = c.workflow + " · " + c.chatId;
  $("usage").textContent = "";
  setActivity("");
  setStatus("");
  setComposer(false);
  if (location.hash !== chatHash()) history.replaceState(null, "", chatHash());
  for (const b of document.querySelectorAll(".chat-item")) {
    if (b.dataset.chatId === c.chatId) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
  connectNow();
  refreshUsage();
  // On a phone the conversation is below the setup: bring it into view.
  if (window.matchMedia("(max-width: 760px)").matches) $("main").scrollIntoView({ block: "start" });
}

function closeSocket() {
  state.gen++;
  clearTimeout(state.timer);
  if (state.ws) {
    state.ws.close(1000, "switching chat");
    state.ws = null;
  }
}

function connectNow() {
  clearTimeout(state.timer);
  const c = state.chat;
  const gen = ++state.gen;
  const enc = encodeURIComponent;
  let url = location.origin.replace(/^http/, "ws") + "/ws/" + [c.workflow, c.appId, c.chatId, c.userId].map(enc).join("/");
  if (state.lastSeq > 0) url += "?after_seq=" + state.lastSeq;
  setConn("connecting", state.attempt ? "Reconnecting…" : "Connecting…");
  let ws;
  try {
    ws = settings.token ? new WebSocket(url, ["bearer", settings.token]) : new WebSocket(url);
  } catch (e) {
    setConn("closed", "Cannot connect: " + e.message);
    return;
  }
  state.ws = ws;
  ws.addEventListener("open", () => {
    if (gen !== state.gen) return;
    state.attempt = 0;
    setConn("open", "Connected");
    setComposer(true);
    if (state.focusOnOpen) {
      state.focusOnOpen = false;
      $("message").focus();
    }
  });
  ws.addEventListener("message", (ev) => {
    if (gen !== state.gen) return;
    let f;
    try { f = JSON.parse(ev.data); } catch { return; }
    handle(f);
  });
  ws.addEventListener("close", (ev) => {
    if (gen !== state.gen) return;
    state.ws = null;
    setComposer(false);
    interruptStreaming();
    if (ev.code === 1008) {
      setConn("closed", "Closed");
      system("The server closed this chat: " + (ev.reason || "chat not found") + ".", "err");
      return;
    }
    scheduleReconnect();
  });
}

// interruptStreaming marks replies cut off (connection lost, run stopped);
// the complete message replaces them if the server delivers it later.
function interruptStreaming() {
  for (const m of state.messages.values()) {
    if (m.done || !m.li.classList.contains("streaming")) continue;
    m.li.classList.remove("streaming");
    m.li.classList.add("interrupted");
    m.li.removeAttribute("aria-busy");
  }
}

function scheduleReconnect() {
  // A refused upgrade looks like any dropped connection to the page: after
  // a few failures, ask over HTTP whether the token is the problem.
  if (state.attempt === 2) probeAuth(state.gen);
  const delay = Math.min(5000, 400 * 2 ** state.attempt) + Math.floor(Math.random() * 200);
  state.attempt++;
  setConn("reconnecting", "Disconnected; reconnecting in " + Math.ceil(delay / 1000) + " s (attempt " + state.attempt + ")");
  state.timer = setTimeout(() => { if (state.chat) connectNow(); }, delay);
}

async function probeAuth(gen) {
  const c = state.chat;
  try {
    const q = new URLSearchParams({ app_id: c.appId, user_id: c.userId, limit: "1" });
    await api("GET", "/api/sessions/" + encodeURIComponent(c.chatId) + "?" + q);
  } catch (e) {
    if (gen !== state.gen || (e.status !== 401 && e.status !== 403)) return;
    state.gen++; // stop retrying this chat
    clearTimeout(state.timer);
    setConn("closed", "Not authorised");
    system("The server refused the access token (" + e.message + "). Paste a valid token, then reopen the chat.", "err");
  }
}

function setConn(s, text) {
  const c = $("conn");
  c.dataset.state = s;
  c.textContent = text;
}

function setStatus(s) {
  state.running = s.startsWith("in_progress");
  $("stop").disabled = !(state.running && state.ws);
  const p = $("chat-status");
  p.dataset.status = s;
  p.textContent = s ? "Status: " + s.replace("_", " ") : "";
}

function setComposer(on) {
  $("message").disabled = !on;
  $("send").disabled = !on;
  $("stop").disabled = !(on && state.running);
  $("message").placeholder = on ? "Write a message" : (state.chat ? "Waiting for the connection…" : "Start or open a chat first");
}

const clearsActivity = new Set(["chat.print", "chat.text", "chat.tool_call", "chat.error", "chat.run_complete", "chat.input_request"]);

// handle applies one server frame. Frames with a seq are shown once, even
// when a resume replays them.
function handle(f) {
  const d = f.data || {};
  if (typeof f.seq === "number" && f.seq > 0) {
    if (state.seen.has(f.seq)) return;
    state.seen.add(f.seq);
    if (f.seq > state.lastSeq) state.lastSeq = f.seq;
  }
  // The model answered (or the turn ended): the waiting/retrying line is
  // over. Stored frames (run_start, the echo of the user's message) may
  // reach the page after a status frame, so they do not clear it.
  if (clearsActivity.has(f.type) && !(f.type === "chat.text" && (d.agent || f.agent) === "user")) setActivity("");
  switch (f.type) {
    case "chat.status":
      onModelStatus(d, f.agent);
      break;
    case "chat_meta":
      setStatus(d.status);
      break;
    case "chat.print":
      onPrint(f, d);
      break;
    case "chat.text":
      onText(f, d);
      break;
    case "chat.input_request":
      onInputRequest(d);
      refreshUsage(); // a turn ended
      break;
    case "chat.input_ack":
      if (d.request_id && d.request_id === state.pendingInput) clearPendingInput();
      break;
    case "chat.tool_call":
      onToolCall(d);
      break;
    case "chat.tool_response": {
      const ok = d.status ? d.status === "ok" : d.success !== false;
      system((d.agent ? d.agent + ": " : "") + "tool " + (d.name || d.tool_name || "") + (ok ? " returned" : " failed") +
        summarize(d.result ?? d.content), ok ? "tool" : "err");
      break;
    }
    case "chat.ui_tool_complete":
    case "chat.ui_tool_dismiss": {
      const card = state.cards.get(d.eventId || d.event_id);
      if (card) card.answered();
      break;
    }
    case "chat.usage_delta":
      refreshUsage();
      break;
    case "chat.run_start":
      setStatus("in_progress");
      break;
    case "chat.select_speaker":
      if (d.agent) setStatus("in_progress (" + d.agent + ")");
      break;
    case "chat.run_complete":
      interruptStreaming(); // a reply still streaming when the run ended was cut off
      system(d.status === "completed" ? "Run finished" + (d.reason ? " (" + d.reason + ")." : ".")
        : d.status === "failed" ? "Run failed" + (d.reason ? " (" + d.reason + ")." : ".")
          : "Run stopped" + (d.reason ? " (" + d.reason + ")" : "") + "; the chat waits for your next message.", "run");
      setStatus(d.status === "completed" || d.status === "failed" ? d.status : "awaiting_input");
      refreshUsage();
      break;
    case "chat.error":
      system("Error" + (d.error_code ? " " + d.error_code : "") + ": " + (d.message || "unknown") +
        (d.retryable ? " (you can retry)" : ""), "err");
      break;
    default:
      break;
  }
}

// onModelStatus shows why nothing streams yet: the model is slow to answer,
// or a failed call is being retried. It is never stored, so never replayed.
function onModelStatus(d, agent) {
  const who = d.agent || agent || "The agent";
  const secs = (ms) => (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + " s";
  if (d.state === "retrying") {
    setActivity(who + ": the model call failed" + (d.cause ? ": " + d.cause : "") + "; retrying" +
      (d.retry_in_ms ? " in " + secs(d.retry_in_ms) : "") + (d.attempt ? " (attempt " + d.attempt + ")" : "") + "…");
  } else if (d.state === "waiting") {
    setActivity(who + ": waiting for the model" + (d.waited_ms ? " (" + secs(d.waited_ms) + " so far)" : "") + "…");
  }
}

function setActivity(text) {
  const a = $("activity");
  if (a.textContent !== text) a.textContent = text;
}

function summarize(v) {
  if (v === undefined || v === null || v === "") return "";
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return ": " + (s.length > 200 ? s.slice(0, 200) + "…" : s);
}

// Scrolling reads layout; doing it once per frame, not once per streamed
// chunk, keeps a long transcript from re-laying out on every chunk.
let scrollPending = false;
let stickToBottom = true;
function scrollLater() {
  if (scrollPending) return;
  scrollPending = true;
  requestAnimationFrame(() => {
    scrollPending = false;
    const t = $("transcript");
    if (stickToBottom) t.scrollTop = t.scrollHeight;
  });
}

function transcriptAppend(li) {
  $("transcript").append(li);
  scrollLater();
}

function message(id, agent, isUser) {
  let m = id ? state.messages.get(id) : null;
  if (m) return m;
  const body = el("div", { class: "body" });
  const li = el("div", { class: "msg " + (isUser ? "msg-user" : "msg-agent"), "data-message-id": id || false },
    el("div", { class: "who", text: isUser ? "You" : (agent || "agent") }), body);
  m = { li, body, text: "", done: false };
  if (id) state.messages.set(id, m);
  // Streamed chunks are sent at once, stored messages through the chat's
  // writer: the echo of the user's message can arrive after the reply began.
  const streaming = isUser && $("transcript").querySelector(".msg.streaming");
  if (streaming) streaming.before(li);
  else transcriptAppend(li);
  return m;
}

function onPrint(f, d) {
  const m = message(d.message_id, d.agent || f.agent, false);
  if (m.done) return;
  const restart = f.replace === true || d.replace === true || d.restart === true;
  if (restart) {
    m.text = d.content || "";
    m.body.textContent = m.text;
  } else if (d.content) {
    m.text += d.content;
    m.body.append(d.content); // a new text node: no re-render of what is shown
  }
  if (!m.li.classList.contains("streaming")) {
    m.li.classList.remove("interrupted");
    m.li.classList.add("streaming");
    m.li.setAttribute("aria-busy", "true");
  }
  scrollLater();
}

function onText(f, d) {
  const agent = d.agent || f.agent;
  const isUser = agent === "user" || d.role === "user";
  const m = message(d.message_id, agent, isUser);
  if (m.text !== (d.content ?? "") || m.body.childNodes.length !== 1) {
    m.text = d.content ?? "";
    m.body.textContent = m.text;
  }
  m.done = true;
  m.li.classList.remove("streaming", "interrupted");
  m.li.removeAttribute("aria-busy");
}

function onInputRequest(d) {
  if (!d.request_id || state.pendingInput === d.request_id) return;
  state.pendingInput = d.request_id;
  // The prompt is often the agent's last message, already shown above.
  const last = Array.from(state.messages.values()).pop();
  const prompt = d.prompt && !(last && last.text.trim() === d.prompt.trim()) ? ": " + d.prompt : ".";
  system((d.agent ? d.agent + " is" : "The workflow is") + " waiting for your answer" + prompt, "input");
  $("message-label").textContent = "Your answer" + (d.agent ? " to " + d.agent : "");
  setStatus("awaiting_input");
  const msg = $("message");
  if (!msg.disabled && (document.activeElement === document.body || document.activeElement === msg)) msg.focus();
}

function clearPendingInput() {
  state.pendingInput = null;
  $("message-label").textContent = "Message";
}

function onToolCall(d) {
  if (!d.awaiting_response) {
    system((d.agent ? d.agent + " " : "") + "called " + (d.name || d.tool_name) + summarize(d.arguments), "tool");
    return;
  }
  const eventId = d.eventId || d.corr || d.call_id;
  if (!eventId || state.cards.has(eventId)) return;
  const wf = state.info.workflows.find((w) => w.name === state.chat.workflow);
  const name = d.tool_name || d.name;
  const spec = wf && wf.ui_tools.find((t) => t.name === name);
  const card = toolCard(d, spec, eventId, (response) => sendFrame({ type: "ui_tool_response", eventId, ui_tool_id: name, response }));
  state.cards.set(eventId, card);
  transcriptAppend(card.li);
}

function system(text, kind) {
  transcriptAppend(el("div", { class: "sys sys-" + (kind || "info"), text }));
}

function sendFrame(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    system("Not connected: nothing was sent. Wait for the connection and try again.", "err");
    return false;
  }
  state.ws.send(JSON.stringify(frame));
  return true;
}

function send() {
  const box = $("message");
  const text = box.value.trim();
  if (!text || !state.chat) return;
  const frame = { type: "user.input.submit", chat_id: state.chat.chatId, text };
  if (state.pendingInput) frame.input_request_id = state.pendingInput;
  if (sendFrame(frame)) {
    box.value = "";
    box.focus();
  }
}

function refreshUsage() {
  clearTimeout(state.usageTimer);
  state.usageTimer = setTimeout(async () => {
    const c = state.chat;
    if (!c) return;
    try {
      const q = new URLSearchParams({ app_id: c.appId, user_id: c.userId, limit: "1" });
      const s = await api("GET", "/api/sessions/" + encodeURIComponent(c.chatId) + "?" + q);
      if (state.chat !== c) return;
      const u = s.usage || {};
      $("usage").textContent = "Tokens: " + (u.total_tokens || 0) + " (prompt " + (u.prompt_tokens || 0) +
        ", completion " + (u.completion_tokens || 0) + ")" + (u.cost_usd ? " · $" + u.cost_usd.toFixed(4) : "");
      $("usage").dataset.total = String(u.total_tokens || 0);
    } catch {
      /* a new chat has no session row until the socket creates it; usage follows */
    }
  }, 100);
}
