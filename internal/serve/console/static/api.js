// The runtime's public HTTP API, as the console uses it. The token lives in
// sessionStorage only (this tab); the user id in localStorage (not secret).
const TOKEN_KEY = "mozaiks.token";
const USER_KEY = "mozaiks.user";
const APP_KEY = "mozaiks.app";

export const settings = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ""; },
  set token(v) { v ? sessionStorage.setItem(TOKEN_KEY, v) : sessionStorage.removeItem(TOKEN_KEY); },
  get userId() { return localStorage.getItem(USER_KEY) || ""; },
  set userId(v) { localStorage.setItem(USER_KEY, v); },
  get appId() { return localStorage.getItem(APP_KEY) || ""; },
  set appId(v) { localStorage.setItem(APP_KEY, v); },
};

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// api sends a request and decodes the JSON answer; errors carry the
// runtime's error code and message.
export async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (settings.token) headers["Authorization"] = "Bearer " + settings.token;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new APIError(0, "NETWORK", "cannot reach the server (" + e.message + ")");
  }
  let data = null;
  try { data = await resp.json(); } catch { /* not JSON */ }
  if (!resp.ok) {
    const err = (data && data.error) || {};
    throw new APIError(resp.status, err.code || "HTTP_" + resp.status, err.message || resp.statusText);
  }
  return data;
}

export const validID = (s) => /^[A-Za-z0-9._:@-]{1,128}$/.test(s) && s !== "." && s !== "..";

// claim reads one claim of a JWT without verifying it (the server does), to
// prefill the user id from the token.
export function claim(token, name) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    return typeof json[name] === "string" ? json[name] : "";
  } catch {
    return "";
  }
}

export function newID(prefix) {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return prefix + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// el builds an element: el("p", {class: "x"}, "text", child).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}
