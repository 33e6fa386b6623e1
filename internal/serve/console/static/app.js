// The console's entry point: load what the server says about itself, warn
// when no model is configured, and switch between the chat and operator views.
import { api, el } from "./api.js";
import { initChat, chatHash, openFromHash } from "./chat.js";
import { initOps, showOps } from "./ops.js";

const $ = (id) => document.getElementById(id);

async function boot() {
  let info;
  try {
    info = await api("GET", "/api/console/info");
  } catch (e) {
    const n = $("notice");
    n.textContent = "Cannot load the console's settings from the server: " + e.message;
    n.hidden = false;
    return;
  }
  document.body.dataset.auth = info.auth_enabled ? "on" : "off";
  modelNotice(info.llm);
  initChat(info);
  initOps();
  window.addEventListener("hashchange", route);
  // The skip link moves focus without touching the hash (the hash is the route).
  document.querySelector(".skip").addEventListener("click", (e) => {
    e.preventDefault();
    const target = $(location.hash === "#/ops" ? "ops-main" : "main");
    target.focus();
  });
  route();
  document.body.dataset.ready = "true";
  performance.mark("console-ready"); // time to usable, for the benchmark and DevTools
}

function modelNotice(llm) {
  const n = $("notice");
  if (llm.provider === "echo") {
    n.className = "notice info";
    n.setAttribute("role", "status");
    n.replaceChildren("Offline echo provider: replies are canned, not from a model. Set ",
      el("code", { text: "LLM_PROVIDER=openai" }), " with a key to use a real model.");
    n.hidden = false;
    return;
  }
  if (llm.configured) return;
  n.className = "notice warn";
  n.replaceChildren(
    el("strong", { text: "No model is configured" }), ", so agents cannot reply (runs fail with LLM_NOT_CONFIGURED). Set ",
    el("code", { text: "OPENAI_API_KEY" }), " (and ", el("code", { text: "OPENAI_BASE_URL" }),
    " for an OpenAI-compatible server such as Ollama, vLLM or LiteLLM; ", el("code", { text: "DEFAULT_LLM_MODEL" }),
    " to pick the model), or run offline with ", el("code", { text: "LLM_PROVIDER=echo" }),
    ", then restart ", el("code", { text: "mozaiks serve" }), ".");
  n.hidden = false;
}

function route() {
  const ops = location.hash === "#/ops";
  if (location.hash.startsWith("#/chat/")) openFromHash();
  else if (!ops && chatHash()) history.replaceState(null, "", chatHash());
  $("view-chat").hidden = ops;
  $("view-ops").hidden = !ops;
  $("nav-chat").toggleAttribute("aria-current", !ops);
  $("nav-ops").toggleAttribute("aria-current", ops);
  if (ops) $("nav-ops").setAttribute("aria-current", "page");
  else $("nav-chat").setAttribute("aria-current", "page");
  showOps(ops);
}

boot();
