// Small DOM helpers: no framework, no innerHTML with data.

/** h("div.card#x", {attrs}, ...children): an element. */
export function h(tag, attrs, ...children) {
  const [, name, rest] = tag.match(/^([a-z0-9]+)(.*)$/i);
  const el = document.createElement(name);
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k in el && k !== "list" && k !== "form" && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function toast(message, kind = "info", ms = 4000) {
  const box = document.getElementById("toasts");
  const t = h("div.toast." + kind, message);
  box.append(t);
  setTimeout(() => t.remove(), ms);
}

export const fmt = {
  int: (n) => (n ?? 0).toLocaleString("en"),
  pct: (x, d = 0) => (x === null || x === undefined ? "—" : (x * 100).toFixed(d) + " %"),
  num: (x, d = 2) => (x === null || x === undefined ? "—" : Number(x).toFixed(d)),
  secs: (ms) => (ms === null || ms === undefined ? "—" : (ms / 1000).toFixed(1) + " s"),
  date: (s) => (s ? new Date(s).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" }) : "—"),
};

/** True when a key event happens while typing into a field. */
export function typing(e) {
  const t = e.target;
  return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
}

/**
 * The hotkey of each label: 1–9 by position; but when every label is a single
 * digit (e.g. "0"…"9"), each label is its own key, so all ten get one.
 */
export function hotkeys(labels) {
  const own = labels.every((l) => /^[0-9]$/.test(l)) && new Set(labels).size === labels.length;
  return labels.map((l, i) => (own ? l : i < 9 ? String(i + 1) : null));
}

export function errorBox(err) {
  return h("div.notice.error", { role: "alert" }, err.message || String(err));
}
