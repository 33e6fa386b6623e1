// The operator view: health and readiness, store and model status, activity,
// workflows with their validation findings, and recent sessions of every
// user (auth off, or a token with the admin scope).
import { api, settings, el, fmtTime } from "./api.js";

const $ = (id) => document.getElementById(id);
let timer = null;

export function initOps() {
  $("ops-refresh").addEventListener("click", refresh);
}

export function showOps(on) {
  clearInterval(timer);
  if (on) {
    refresh();
    timer = setInterval(refresh, 5000);
  }
}

function dl(target, rows) {
  $(target).replaceChildren(...rows.flatMap(([k, v, state]) => [
    el("dt", { text: k }),
    el("dd", { "data-state": state || false, text: v }),
  ]));
}

async function refresh() {
  const errLine = $("ops-error");
  errLine.hidden = true;
  let health;
  try {
    health = await api("GET", "/api/health");
  } catch (e) {
    errLine.textContent = "The server does not answer: " + e.message;
    errLine.hidden = false;
    return;
  }
  let ready = "ready", readyState = "ok";
  try {
    await api("GET", "/api/ready");
  } catch (e) {
    ready = "not ready: " + e.message;
    readyState = "bad";
  }
  dl("ops-health", [
    ["Status", health.status, health.status === "ok" ? "ok" : "bad"],
    ["Readiness", ready, readyState],
    ["Version", health.version],
    ["Uptime", Math.round(health.uptime_s) + " s"],
  ]);
  const m = health.mongodb || {}, l = health.llm || {};
  dl("ops-store", [
    ["Store", (m.backend || "?") + ": " + m.status + (m.status === "ok" ? " (ping " + m.ping_ms + " ms)" : ""), m.status === "ok" ? "ok" : "bad"],
    ["Model", (l.provider || "?") + " " + (l.model || "") + (l.configured ? "" : " (not configured)"), l.configured ? "ok" : "bad"],
    ...(l.note ? [["Note", l.note]] : []),
  ]);
  dl("ops-load", [
    ["Active runs", String(health.active_runs)],
    ["Open sockets", String(health.connections)],
  ]);

  let overview;
  try {
    overview = await api("GET", "/api/admin/overview");
  } catch (e) {
    const why = e.status === 401 || e.status === 403
      ? "Workflows and sessions across users need auth off, or a token with the admin scope" + (settings.token ? "" : " (paste one in the Chat view)") + "."
      : "Could not load the operator overview: " + e.message;
    errLine.textContent = why;
    errLine.hidden = false;
    $("ops-workflows").replaceChildren();
    $("ops-sessions").tBodies[0].replaceChildren();
    return;
  }
  const relay = health.relay || {};
  dl("ops-load", [
    ["Active runs", String(overview.active_runs)],
    ["Open sockets", String(overview.connections)],
    ["Auth", overview.auth_enabled ? "bearer JWT" : "off (identity is the user id)"],
    ...(relay.mode ? [["Replicas", relay.mode === "local" ? "this one only"
      : relay.mode.replace("_", " ") + (relay.other_replicas !== undefined ? ", " + relay.other_replicas + " other(s) seen" : "")]] : []),
  ]);
  const wfs = overview.workflows.map((w) => el("details", { class: "wf", open: w.diagnostics.length ? true : false },
    el("summary", {}, el("strong", { text: w.name }),
      w.diagnostics.length ? el("span", { class: "badge warn", text: w.diagnostics.length + " finding" + (w.diagnostics.length > 1 ? "s" : "") })
        : el("span", { class: "badge ok", text: "valid" })),
    el("p", { class: "desc", text: w.description || "No description." }),
    el("p", { class: "meta", text: w.orchestration_pattern + " · agents: " + w.agents.join(", ") + " · tools: " + w.tools + " · " + w.source }),
    w.diagnostics.length ? el("ul", { class: "diags" }, ...w.diagnostics.map((d) => el("li", { "data-severity": d.severity, text: diagText(d) }))) : null));
  if (overview.problems.length) {
    wfs.push(el("div", { class: "wf broken" }, el("strong", { text: "Not loaded" }),
      el("ul", { class: "diags" }, ...overview.problems.map((d) => el("li", { "data-severity": d.severity, text: diagText(d) })))));
  }
  $("ops-workflows").replaceChildren(...wfs);

  try {
    const res = await api("GET", "/api/admin/sessions?limit=20&app_id=" + encodeURIComponent(settings.appId || overview.default_app_id));
    const rows = res.sessions.map((s) => el("tr", {},
      el("td", { class: "mono", text: s.chat_id }), el("td", { text: s.user_id }), el("td", { text: s.workflow }),
      el("td", { text: s.status.replace("_", " ") }), el("td", { text: String(s.message_count) }),
      el("td", { text: String((s.usage || {}).total_tokens || 0) }), el("td", { text: fmtTime(s.updated_at) })));
    $("ops-sessions").tBodies[0].replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: "7", text: "No sessions yet." }))]));
  } catch (e) {
    errLine.textContent = "Could not list sessions: " + e.message;
    errLine.hidden = false;
  }
}

function diagText(d) {
  return d.severity + ": " + d.file + (d.line ? ":" + d.line : "") + (d.field ? " " + d.field : "") + ": " + d.message;
}
