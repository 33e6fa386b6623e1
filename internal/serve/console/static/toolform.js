// A generic rendering of a UI tool call: the payload the agent sent, shown
// by the tool's JSON schema, and a form for the answer built from the
// schema of what the workflow reads back (or, when it declares nothing, the
// tool's own schema pre-filled with the payload).
import { el } from "./api.js";

let seq = 0;

export function toolCard(d, spec, eventId, submit) {
  const id = "tool-" + ++seq;
  let payload = d.payload;
  if (typeof payload === "string") {
    try { payload = JSON.parse(payload); } catch { /* keep the string */ }
  }
  const params = (spec && spec.parameters) || { type: "object", properties: {} };
  const response = spec && spec.response && Object.keys(spec.response.properties || {}).length ? spec.response : null;

  // The payload, by the tool's schema: its declared fields in order (the
  // runtime's own additions, such as payload.workflow for ChatUI, are not
  // the agent's content), or every field when the schema names none.
  const shown = el("dl", { class: "payload" });
  if (payload && typeof payload === "object" && !Array.isArray(payload)) {
    const declared = orderedKeys(params);
    const keys = declared.length ? declared.filter((k) => k in payload) : Object.keys(payload);
    for (const k of keys) {
      const ps = (params.properties || {})[k] || {};
      shown.append(el("dt", { text: (ps.title || k).replace(/_/g, " ") }), el("dd", {}, renderValue(payload[k], ps)));
    }
  } else if (payload !== undefined) {
    shown.append(el("dt", { text: "payload" }), el("dd", {}, renderValue(payload)));
  }

  const schema = response || params;
  const initial = response ? {} : (payload && typeof payload === "object" ? payload : {});
  // The workflow reads each answer field on its own (one trigger per
  // field), so none is required, but an empty answer is refused.
  const fields = Object.entries(schema.properties || {}).map(([name, s]) =>
    field(id, name, s || {}, initial[name], !response && (schema.required || []).includes(name)));

  const stateLine = el("p", { class: "tool-state", role: "status" });
  const button = el("button", { type: "submit", class: "primary" }, "Submit");
  const title = el("h3", { id: id + "-title" }, d.component_type || (spec && spec.component) || "UI tool");
  const form = el("form", { class: "tool-card", "aria-labelledby": id + "-title", novalidate: true, "data-event-id": eventId },
    title,
    el("p", { class: "meta", text: (d.tool_name || d.name || "") + (d.agent ? " · asked by " + d.agent : "") }),
    spec && spec.description ? el("p", { class: "desc", text: spec.description }) : null,
    shown,
    fields.length ? el("fieldset", {}, el("legend", {}, response ? "Your answer" : "Edit and send back"), ...fields.map((f) => f.node)) : null,
    el("div", { class: "actions" }, button),
    stateLine);

  let done = false;
  const card = {
    li: el("div", { class: "tool" }, form),
    answered() {
      done = true;
      for (const e of form.elements) e.disabled = true;
      stateLine.textContent = "Answered.";
      form.classList.add("done");
    },
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (done) return;
    const out = {};
    for (const f of fields) {
      const r = f.read();
      if (r.error) {
        stateLine.textContent = r.error;
        f.focus();
        return;
      }
      if (r.value !== undefined) out[f.name] = r.value;
    }
    if (response && fields.length && Object.keys(out).length === 0) {
      stateLine.textContent = "Fill in at least one answer.";
      fields[0].focus();
      return;
    }
    if (submit(out)) {
      for (const e of form.elements) e.disabled = true;
      stateLine.textContent = "Sent; waiting for the workflow…";
    }
  });
  return card;
}

// renderValue shows a JSON value readably: text as text, lists as lists,
// objects as nested term/definition pairs.
function renderValue(v, schema) {
  const s = schema || {};
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return el("ul", {}, ...v.map((x) => el("li", {}, renderValue(x, s.items))));
  if (typeof v === "object") {
    const known = orderedKeys(s).filter((k) => k in v);
    const keys = known.concat(Object.keys(v).filter((k) => !known.includes(k)));
    return el("dl", { class: "nested" }, ...keys.flatMap((k) =>
      [el("dt", { text: k.replace(/_/g, " ") }), el("dd", {}, renderValue(v[k], (s.properties || {})[k]))]));
  }
  return String(v);
}

// orderedKeys is a schema's properties, required ones first in their
// declared order (JSON objects lose the order the YAML had).
function orderedKeys(schema) {
  const props = Object.keys((schema && schema.properties) || {});
  const req = ((schema && schema.required) || []).filter((k) => props.includes(k));
  return req.concat(props.filter((k) => !req.includes(k)));
}

function field(prefix, name, s, value, required) {
  const id = prefix + "-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
  const label = (s.title || name) + (required ? " (required)" : "");
  const help = s.description ? el("span", { class: "hint", id: id + "-help", text: s.description }) : null;
  const described = help ? id + "-help" : false;
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type;

  if (type === "boolean") {
    const yes = el("input", { type: "radio", name: id, id: id + "-yes", value: "true" });
    const no = el("input", { type: "radio", name: id, id: id + "-no", value: "false" });
    if (value === true) yes.checked = true;
    if (value === false) no.checked = true;
    const node = el("fieldset", { class: "field bool", "aria-describedby": described },
      el("legend", { text: label }), help,
      el("span", { class: "choice" }, yes, el("label", { for: id + "-yes", text: "Yes" })),
      el("span", { class: "choice" }, no, el("label", { for: id + "-no", text: "No" })));
    return {
      name, node, focus: () => yes.focus(),
      read: () => (yes.checked ? { value: true } : no.checked ? { value: false }
        : required ? { error: "Choose Yes or No for " + (s.title || name) + "." } : {}),
    };
  }
  let input;
  if (Array.isArray(s.enum)) {
    input = el("select", { id, "aria-describedby": described },
      required ? null : el("option", { value: "", text: "—" }),
      ...s.enum.map((v) => el("option", { value: String(v), text: String(v) })));
    if (value !== undefined) input.value = String(value);
  } else if (type === "integer" || type === "number") {
    input = el("input", { id, type: "number", step: type === "integer" ? "1" : "any", "aria-describedby": described });
    if (value !== undefined) input.value = String(value);
  } else if (type === "object" || type === "array") {
    input = el("textarea", { id, rows: "4", class: "mono", spellcheck: "false", "aria-describedby": described });
    input.value = value !== undefined ? JSON.stringify(value, null, 2) : "";
  } else {
    const long = typeof value === "string" && (value.length > 60 || value.includes("\n"));
    input = el(long ? "textarea" : "input", { id, "aria-describedby": described, rows: long ? "4" : false });
    if (value !== undefined) input.value = String(value);
  }
  const node = el("div", { class: "field" }, el("label", { for: id, text: label }), help, input);
  return {
    name, node, focus: () => input.focus(),
    read() {
      const raw = input.value;
      if (raw === "") return required ? { error: (s.title || name) + " is required." } : {};
      if (Array.isArray(s.enum)) {
        const hit = s.enum.find((v) => String(v) === raw);
        return { value: hit };
      }
      if (type === "integer" || type === "number") {
        const n = Number(raw);
        if (!Number.isFinite(n) || (type === "integer" && !Number.isInteger(n))) return { error: (s.title || name) + " must be a" + (type === "integer" ? "n integer." : " number.") };
        return { value: n };
      }
      if (type === "object" || type === "array") {
        try { return { value: JSON.parse(raw) }; } catch { return { error: (s.title || name) + " must be JSON." }; }
      }
      return { value: raw };
    },
  };
}
