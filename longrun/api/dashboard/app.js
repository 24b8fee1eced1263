// longrun dashboard: a list and a detail page, kept live by the server-sent events of /v1/events.
"use strict";

const TERMINAL = new Set(["SUCCEEDED", "SUCCEEDED_WITH_WARNINGS", "FAILED", "CANCELED", "MISSED"]);
const ops = new Map(); // id -> operation, the newest version seen
const samples = new Map(); // id -> {t, done, rate}: for the rate of bytes or items
const transitions = new Map(); // id -> [{status, time}] seen while this page was open
let listed = []; // ids shown in the list, newest first
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function notice(message) {
  $("#notice").textContent = message;
  if (message) setTimeout(() => { if ($("#notice").textContent === message) notice(""); }, 8000);
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || {};
    throw new Error(error.message || `${response.status} ${response.statusText}`);
  }
  return body;
}

// formatting ----------------------------------------------------------------------------------
function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function percentOf(op) {
  const p = op.progress || {};
  let pct = op.percentComplete || 0;
  if (!pct && p.bytesTotal) pct = (100 * (p.bytesDone || 0)) / p.bytesTotal;
  if (!pct && p.itemsTotal) pct = (100 * (p.itemsDone || 0)) / p.itemsTotal;
  if (op.status === "SUCCEEDED" || op.status === "SUCCEEDED_WITH_WARNINGS") pct = 100;
  return Math.min(100, Math.max(0, pct));
}

function sample(op) {
  const p = op.progress || {};
  const done = p.bytesDone ?? p.itemsDone;
  if (done === null || done === undefined) return;
  const t = Date.parse(op.lastActionTime);
  const last = samples.get(op.id);
  let rate = last ? last.rate : null;
  if (last && t > last.t && done >= last.done) {
    const now = ((done - last.done) * 1000) / (t - last.t);
    rate = rate === null ? now : 0.7 * rate + 0.3 * now;
  }
  samples.set(op.id, { t, done, rate });
}

function progressText(op) {
  const p = op.progress || {};
  const parts = [`${percentOf(op).toFixed(0)}%`];
  if (p.bytesTotal) parts.push(`${bytes(p.bytesDone || 0)} of ${bytes(p.bytesTotal)}`);
  else if (p.itemsTotal) parts.push(`${p.itemsDone || 0} of ${p.itemsTotal} items`);
  const s = samples.get(op.id);
  if (s && s.rate && !TERMINAL.has(op.status)) {
    parts.push(p.bytesTotal ? `${bytes(s.rate)}/s` : `${s.rate.toFixed(1)} items/s`);
  }
  if (op.estimatedCompletionTime && !TERMINAL.has(op.status)) {
    parts.push(`ETA ${duration((Date.parse(op.estimatedCompletionTime) - Date.now()) / 1000)}`);
  }
  return parts.join(" · ");
}

function progressBar(op) {
  const pct = percentOf(op);
  const fill = el("span", { class: "fill" });
  fill.style.width = `${pct}%`; // through the CSSOM: the page's CSP forbids style attributes
  const bar = el("div", {
    class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-valuenow": pct.toFixed(1), "aria-label": `Progress of ${op.id}`,
  }, fill);
  return el("div", { class: "progress" }, bar, el("span", { class: "ptext", text: progressText(op) }));
}

function statusBadge(op) {
  return el("span", { class: `status s-${op.status}`, text: op.status });
}

// actions -------------------------------------------------------------------------------------
function actions(op) {
  const buttons = [];
  const add = (verb, label) => buttons.push(el("button", {
    type: "button", class: `act act-${verb}`, "aria-label": `${label} ${op.id}`, text: label,
    onclick: (e) => act(op.id, verb, e.currentTarget),
  }));
  if (["ACCEPTED", "ON_HOLD", "IN_PROGRESS"].includes(op.status)) add("cancel", "Cancel");
  if (op.status === "ACCEPTED") add("hold", "Hold");
  if (op.status === "ON_HOLD") add("release", "Release");
  return el("div", { class: "actions" }, buttons);
}

async function act(id, verb, button) {
  button.disabled = true;
  try {
    update(await api(`/v1/operations/${encodeURIComponent(id)}:${verb}`, { method: "POST" }));
    notice("");
  } catch (err) {
    notice(`Could not ${verb} ${id}: ${err.message}`);
    button.disabled = false;
  }
}

// the list ------------------------------------------------------------------------------------
function filters() {
  return {
    status: $("#f-status").value, operationType: $("#f-type").value,
    compartmentId: $("#f-compartment").value.trim(), id: $("#f-id").value.trim().toLowerCase(),
  };
}

function matches(op, f = filters()) {
  return (!f.status || op.status === f.status)
    && (!f.operationType || op.operationType === f.operationType)
    && (!f.compartmentId || op.compartmentId === f.compartmentId)
    && (!f.id || op.id.toLowerCase().includes(f.id));
}

function row(op) {
  const link = el("a", { href: `#/operations/${op.id}`, class: "opid", text: op.id });
  const meta = el("div", { class: "meta", text: `${op.operationType} · ${op.compartmentId} · ${when(op.timeAccepted)}` });
  return el("tr", { "data-id": op.id },
    el("td", { "data-label": "Operation" }, link, meta),
    el("td", { "data-label": "Status" }, statusBadge(op)),
    el("td", { "data-label": "Progress" }, progressBar(op)),
    el("td", { "data-label": "Actions" }, actions(op)));
}

function renderList() {
  const body = $("#ops tbody");
  const rows = listed.map((id) => ops.get(id)).filter(Boolean).map(row);
  body.replaceChildren(...rows);
  $("#empty").hidden = rows.length > 0;
}

function renderRow(op) {
  const old = document.querySelector(`#ops tr[data-id="${CSS.escape(op.id)}"]`);
  if (old) old.replaceWith(row(op));
}

async function loadList() {
  const f = filters();
  const params = new URLSearchParams({ limit: "100" });
  for (const key of ["status", "operationType", "compartmentId"]) if (f[key]) params.set(key, f[key]);
  try {
    const page = await api(`/v1/operations?${params}`);
    for (const op of page.items) remember(op);
    listed = page.items.map((op) => ops.get(op.id)).filter((op) => matches(op, f)).map((op) => op.id);
    renderList();
  } catch (err) {
    notice(`Could not list operations: ${err.message}`);
  }
}

async function loadTypes() {
  try {
    const types = await api("/v1/operation-types");
    const select = $("#f-type");
    for (const t of types.items) select.append(el("option", { value: t.name, text: t.name }));
  } catch (err) { /* the list still works without the type names */ }
}

// the live model ------------------------------------------------------------------------------
function remember(op) {
  const old = ops.get(op.id);
  if (old && old.version > op.version) return old;
  if (!old || old.status !== op.status) {
    const seen = transitions.get(op.id) || [];
    seen.push({ status: op.status, time: op.lastActionTime });
    transitions.set(op.id, seen);
  }
  sample(op);
  ops.set(op.id, op);
  return op;
}

function update(op) {
  if (!op) return;
  const old = ops.get(op.id);
  if (old && old.version >= op.version) return;
  remember(op);
  const shown = listed.includes(op.id);
  if (shown && !matches(op)) {
    listed = listed.filter((id) => id !== op.id);
    renderList();
  } else if (shown) {
    renderRow(op);
  } else if (matches(op)) {
    listed.push(op.id);
    listed.sort().reverse(); // ids are time-ordered: newest first
    renderList();
  }
  const current = route();
  if (current && (current === op.id || op.parentId === current || isDescendant(op, current))) {
    renderDetail(current);
  }
}

function isDescendant(op, ancestor) {
  for (let p = op.parentId, depth = 0; p && depth < 8; p = (ops.get(p) || {}).parentId, depth++) {
    if (p === ancestor) return true;
  }
  return false;
}

function connect() {
  const source = new EventSource("/v1/events");
  source.addEventListener("ready", () => {
    $("#live").textContent = "live";
    $("#live").dataset.state = "live";
    loadList();
    const current = route();
    if (current) loadDetail(current);
  });
  source.addEventListener("operation", (e) => update(JSON.parse(e.data)));
  source.addEventListener("error", () => {
    $("#live").textContent = "reconnecting…";
    $("#live").dataset.state = "down";
  });
}

// the detail page -----------------------------------------------------------------------------
function route() {
  const m = location.hash.match(/^#\/operations\/([^/?#]+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

async function loadDetail(id) {
  try {
    const op = remember(await api(`/v1/operations/${encodeURIComponent(id)}`));
    await loadChildren(op, 0);
    renderDetail(id);
  } catch (err) {
    $("#detail-view").replaceChildren(el("h1", { id: "detail-title", tabindex: "-1", text: id }),
      el("p", { text: err.message }), el("a", { href: "#/", text: "Back to the list" }));
  }
}

async function loadChildren(op, depth) {
  if (depth > 4) return;
  await Promise.all((op.children || []).map(async (cid) => {
    const child = remember(await api(`/v1/operations/${encodeURIComponent(cid)}`));
    await loadChildren(child, depth + 1);
  }));
}

function field(name, value) {
  if (value === null || value === undefined || value === "") return [];
  return [el("dt", { text: name }), el("dd", { text: String(value) })];
}

function timeline(op) {
  // the record keeps when it was accepted, started and finished; the rest was seen live
  const items = [["ACCEPTED", op.timeAccepted]];
  if (op.timeStarted) items.push(["IN_PROGRESS", op.timeStarted]);
  for (const t of transitions.get(op.id) || []) items.push([t.status, t.time]);
  if (op.timeFinished) items.push([op.status, op.timeFinished]);
  items.sort((a, b) => Date.parse(a[1]) - Date.parse(b[1]));
  const steps = items.filter(([s], i) => i === 0 || items[i - 1][0] !== s);
  return el("ol", { class: "timeline", "aria-label": "States" }, steps.map(([s, t]) =>
    el("li", {}, el("span", { class: `status s-${s}`, text: s }), ` ${when(t)}`)));
}

function table(caption, heads, rows) {
  if (!rows.length) return el("p", { class: "none", text: `No ${caption.toLowerCase()}.` });
  return el("table", { class: "plain" }, el("caption", { class: "sr-only", text: caption }),
    el("thead", {}, el("tr", {}, heads.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", { text: c ?? "" }))))));
}

function tree(op, depth) {
  if (!(op.children || []).length || depth > 4) return null;
  return el("ul", { class: "tree", role: depth ? "group" : "tree", "aria-label": depth ? null : "Sub-operations" },
    op.children.map((cid) => {
      const child = ops.get(cid);
      if (!child) return el("li", { role: "treeitem", text: cid });
      return el("li", { role: "treeitem", "data-id": cid },
        el("a", { href: `#/operations/${cid}`, text: `${child.operationType} ${cid}` }), " ",
        statusBadge(child), progressBar(child), tree(child, depth + 1));
    }));
}

function renderDetail(id) {
  const op = ops.get(id);
  if (!op) return;
  const section = $("#detail-view");
  const active = document.activeElement;
  const focused = active && section.contains(active)
    ? (active.id ? `#${CSS.escape(active.id)}` : active.getAttribute("aria-label")
      && `[aria-label="${CSS.escape(active.getAttribute("aria-label"))}"]`) : null;
  section.replaceChildren(
    el("p", {}, el("a", { href: "#/", text: "← All operations" })),
    el("h1", { id: "detail-title", tabindex: "-1" }, `${op.operationType} `, el("code", { text: op.id })),
    el("div", { class: "summary" }, statusBadge(op), progressBar(op), actions(op)),
    el("dl", { class: "fields" },
      field("Compartment", op.compartmentId), field("Attempt", `${op.attempt} of ${op.maxAttempts}`),
      field("Accepted", when(op.timeAccepted)), field("Started", when(op.timeStarted)),
      field("Last action", when(op.lastActionTime)), field("Finished", when(op.timeFinished)),
      field("Worker", op.workerId), field("Resource location", op.resourceLocation),
      field("Result", op.result === null || op.result === undefined ? null : JSON.stringify(op.result)),
      op.parentId ? [el("dt", { text: "Parent" }),
        el("dd", {}, el("a", { href: `#/operations/${op.parentId}`, text: op.parentId }))] : []),
    el("h2", { text: "Timeline" }), timeline(op),
    el("h2", { text: "Sub-operations" }), tree(op, 0) || el("p", { class: "none", text: "No sub-operations." }),
    el("h2", { text: "Errors" }),
    table("Errors", ["Code", "Message", "Target", "Time"],
      (op.errors || []).map((e) => [e.code, e.message, e.target, when(e.timestamp)])),
    el("h2", { text: "Resources" }),
    table("Resources", ["Type", "Action", "Identifier"],
      (op.resources || []).map((r) => [r.entityType, r.actionType, r.identifier])),
    el("h2", { text: "Logs" }),
    table("Logs", ["Time", "Level", "Message"],
      (op.logs || []).map((l) => [when(l.timestamp), l.level, l.message])));
  if (focused) { // a live re-render keeps the keyboard where it was
    const again = section.querySelector(focused);
    if (again) again.focus();
  }
}

function show() {
  const id = route();
  $("#list-view").hidden = Boolean(id);
  $("#detail-view").hidden = !id;
  if (id) {
    $("#detail-view").replaceChildren(el("p", { text: "Loading…" }));
    loadDetail(id).then(() => { const h = $("#detail-title"); if (h) h.focus(); });
  } else {
    renderList();
    $("#list-title").focus();
  }
}

function start() {
  let timer = null;
  $("#filters").addEventListener("submit", (e) => e.preventDefault());
  $("#filters").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(loadList, 200);
  });
  window.addEventListener("hashchange", show);
  setInterval(() => { for (const id of listed) { const op = ops.get(id); if (op && op.estimatedCompletionTime && !TERMINAL.has(op.status)) renderRow(op); } }, 1000);
  loadTypes();
  show();
  connect();
}

document.addEventListener("DOMContentLoaded", start);
