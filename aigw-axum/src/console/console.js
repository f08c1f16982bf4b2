// The aigw console: plain JavaScript over the admin API, no framework, no build step.
// Every call sends the admin token (kept in sessionStorage: this tab only) as a bearer
// token; the API refuses without it.
"use strict";

const TOKEN_KEY = "aigw-admin-token";
// `from`/`to` of GET /admin/usage are RFC 3339 instants.
const BUCKETS = 12;
const COLORS = ["#3558e6", "#1f8a4c", "#c8372d", "#b7791f", "#7b3fe4", "#0f8b8d", "#d6457a", "#5b6b8c"];

const $ = (id) => document.getElementById(id);
const state = { keys: [], tab: "usage" };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "style") {
      // Through the CSSOM: the page's content security policy forbids inline style attributes.
      for (const decl of String(v).split(";")) {
        const i = decl.indexOf(":");
        if (i > 0) e.style.setProperty(decl.slice(0, i).trim(), decl.slice(i + 1).trim());
      }
    }
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { authorization: "Bearer " + token() };
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  if (!r.ok) {
    const msg = (data && data.error && (data.error.message || data.error)) || r.statusText;
    if (r.status === 401 && path !== "/admin/status") signOut("The admin token was refused.");
    throw new ApiError(r.status, String(msg));
  }
  return data;
}

// ---------- sign-in ----------

async function signIn(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
  try {
    const s = await api("GET", "/admin/status");
    $("gw-info").textContent = "aigw " + s.version;
    $("keys-store").textContent = s.virtual_keys ? "stored in " + s.virtual_keys : "";
    $("login").hidden = true;
    $("nav").hidden = false;
    $("logout").hidden = false;
    show(location.hash.slice(1) || "usage");
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("login-error").textContent = e.status === 401 ? "The admin token was refused." : "The gateway did not answer: " + e.message;
    $("login-error").hidden = false;
  }
}

function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  for (const t of document.querySelectorAll(".tab")) t.hidden = true;
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("gw-info").textContent = "";
  $("login-error").textContent = why || "";
  $("login-error").hidden = !why;
}

function show(tab) {
  if (!["usage", "keys", "routes"].includes(tab)) tab = "usage";
  state.tab = tab;
  for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== "tab-" + tab;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.tab === tab);
  if (tab === "usage") loadUsage();
  if (tab === "keys") loadKeys();
  if (tab === "routes") loadRoutes();
}

// ---------- formatting ----------

const fmtInt = (n) => Number(n || 0).toLocaleString("en-US");
const fmtUsd = (n) => "$" + Number(n || 0).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: n && n < 1 ? 6 : 2 });
const micros = (m) => Number(m || 0) / 1e6;
function fmtTime(secs) { return secs ? new Date(secs * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "never"; }

// ---------- usage ----------

async function usage(from, to) {
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), group_by: "model" });
  const data = await api("GET", "/admin/usage?" + q);
  return (data && data.rows) || [];
}

function rowKey(row, dim) { return (row[dim] === undefined || row[dim] === null || row[dim] === "") ? "(none)" : String(row[dim]); }
function rowValue(row, metric) {
  if (metric === "cost") return Number(row.cost_usd || 0);
  if (metric === "tokens") return Number(row.input_tokens || 0) + Number(row.output_tokens || 0);
  return Number(row.requests || 0);
}

async function loadUsage() {
  const range = Number($("range").value) * 1000;
  const dim = $("dimension").value;
  const metric = $("metric").value;
  const to = new Date();
  const from = new Date(to.getTime() - range);
  let rows;
  try {
    rows = await usage(from, to);
  } catch (e) {
    $("usage-body").hidden = true;
    $("usage-empty").hidden = false;
    $("usage-empty-why").textContent = e.status === 404
      ? "This gateway does not record spend (GET /admin/usage is not served)."
      : "GET /admin/usage failed: " + e.message;
    await loadBudgets(null);
    return;
  }
  $("usage-empty").hidden = true;
  $("usage-body").hidden = false;
  const totals = { cost: 0, requests: 0, input: 0, output: 0 };
  const groups = new Map();
  for (const r of rows) {
    totals.cost += Number(r.cost_usd || 0);
    totals.requests += Number(r.requests || 0);
    totals.input += Number(r.input_tokens || 0);
    totals.output += Number(r.output_tokens || 0);
    const k = rowKey(r, dim);
    const g = groups.get(k) || { requests: 0, input: 0, output: 0, cost: 0 };
    g.requests += Number(r.requests || 0);
    g.input += Number(r.input_tokens || 0);
    g.output += Number(r.output_tokens || 0);
    g.cost += Number(r.cost_usd || 0);
    groups.set(k, g);
  }
  $("stat-cost").textContent = fmtUsd(totals.cost);
  $("stat-requests").textContent = fmtInt(totals.requests);
  $("stat-input").textContent = fmtInt(totals.input);
  $("stat-output").textContent = fmtInt(totals.output);
  $("usage-dim").textContent = dim[0].toUpperCase() + dim.slice(1);
  const tbody = $("usage-table").tBodies[0];
  tbody.replaceChildren(...[...groups.entries()].sort((a, b) => b[1].cost - a[1].cost || b[1].requests - a[1].requests)
    .map(([k, g]) => el("tr", { "data-group": k }, el("td", {}, k), el("td", { class: "num" }, fmtInt(g.requests)),
      el("td", { class: "num" }, fmtInt(g.input)), el("td", { class: "num" }, fmtInt(g.output)), el("td", { class: "num" }, fmtUsd(g.cost)))));
  if (groups.size === 0) tbody.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No requests in this range.")));
  await Promise.all([loadChart(from, to, dim, metric), loadBudgets(true)]);
}

async function loadChart(from, to, dim, metric) {
  const step = (to - from) / BUCKETS;
  const windows = [...Array(BUCKETS).keys()].map((i) => [new Date(from.getTime() + i * step), new Date(from.getTime() + (i + 1) * step)]);
  const results = await Promise.all(windows.map(([a, b]) => usage(a, b).catch(() => [])));
  const series = new Map();
  results.forEach((rows, i) => {
    for (const r of rows) {
      const k = rowKey(r, dim);
      if (!series.has(k)) series.set(k, new Array(BUCKETS).fill(0));
      series.get(k)[i] += rowValue(r, metric);
    }
  });
  drawChart(windows, series, metric);
}

function drawChart(windows, series, metric) {
  const W = 1000, H = 260, L = 64, B = 28, T = 10;
  const names = [...series.keys()].sort();
  const totals = windows.map((_, i) => names.reduce((s, n) => s + series.get(n)[i], 0));
  const max = Math.max(...totals, metric === "cost" ? 0.000001 : 1);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  const fmt = metric === "cost" ? fmtUsd : fmtInt;
  const axis = (v) => (metric === "cost" ? "$" + Number(v.toPrecision(3)) : fmtInt(Math.round(v)));
  for (let g = 0; g <= 4; g++) {
    const y = T + (H - B - T) * (1 - g / 4);
    add("line", { x1: L, x2: W, y1: y, y2: y, class: "axis" });
    add("text", { x: L - 6, y: y + 4, "text-anchor": "end" }, axis(max * g / 4));
  }
  const bw = (W - L) / windows.length;
  windows.forEach(([a], i) => {
    let y = H - B;
    names.forEach((n, j) => {
      const v = series.get(n)[i];
      if (!v) return;
      const h = (H - B - T) * v / max;
      y -= h;
      const r = add("rect", { x: L + i * bw + bw * 0.15, y, width: bw * 0.7, height: h, fill: COLORS[j % COLORS.length] });
      const t = document.createElementNS(ns, "title");
      t.textContent = `${n}: ${fmt(v)}`;
      r.append(t);
    });
    if (i % 2 === 0) {
      const label = (windows[windows.length - 1][1] - windows[0][0]) > 2 * 86400000
        ? a.toISOString().slice(5, 10) : a.toISOString().slice(11, 16);
      add("text", { x: L + i * bw + bw / 2, y: H - 8, "text-anchor": "middle" }, label);
    }
  });
  $("chart").replaceChildren(svg);
  $("legend").replaceChildren(...names.map((n, j) => el("span", { style: `--c:${COLORS[j % COLORS.length]}` }, n)));
}

function periodStart(period, now) {
  if (period === "day") return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  if (period === "month") return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  return new Date(0);
}

// Every budget the gateway enforces — per key, team and route, from GET /admin/budgets
// (the store's counters, shared by every replica) — and the virtual keys' own budgets
// this replica has not applied yet, whose spend comes from the usage rows.
async function loadBudgets(haveUsage) {
  try { state.keys = (await api("GET", "/admin/keys")).keys || []; } catch (_) { state.keys = []; }
  let enforced = [];
  try { enforced = (await api("GET", "/admin/budgets")).budgets || []; } catch (_) { enforced = []; }
  const rows = enforced.map((b) => ({
    name: b.name, scope: b.scope, subject: b.subject, period: b.period,
    limit: Number(b.limit_usd), spent: Number(b.spent_usd), cutoff: b.cutoff,
  }));
  const seen = new Set(rows.filter((b) => b.scope === "key").map((b) => b.subject));
  const keys = state.keys.filter((k) => k.budget && k.status === "active" && !seen.has(k.id));
  const now = new Date();
  const spentByPeriod = {};
  if (haveUsage) {
    for (const p of new Set(keys.map((k) => k.budget.period))) {
      const usageRows = await usage(periodStart(p, now), now).catch(() => []);
      const byKey = {};
      for (const r of usageRows) byKey[r.key] = (byKey[r.key] || 0) + Number(r.cost_usd || 0);
      spentByPeriod[p] = byKey;
    }
  }
  for (const k of keys) {
    rows.push({
      name: "key:" + k.id, scope: "key", subject: k.id, period: k.budget.period,
      limit: micros(k.budget.limit_micros),
      spent: haveUsage ? ((spentByPeriod[k.budget.period] || {})[k.id] || 0) : null,
    });
  }
  const order = { team: 0, route: 1, key: 2 };
  rows.sort((a, b) => (order[a.scope] - order[b.scope]) || a.name.localeCompare(b.name));
  $("budget-empty").hidden = rows.length > 0;
  const team = (id) => (state.keys.find((k) => k.id === id) || {}).team;
  $("budget-table").tBodies[0].replaceChildren(...rows.map((b) => {
    const pct = b.spent === null || b.limit === 0 ? 0 : Math.min(100, 100 * b.spent / b.limit);
    const who = b.scope === "key"
      ? [el("code", {}, b.subject), team(b.subject) ? el("div", { class: "sub" }, "team " + team(b.subject)) : null]
      : [b.subject];
    return el("tr", { "data-budget": b.name, "data-scope": b.scope, "data-subject": b.subject },
      el("td", {}, b.name, b.cutoff ? el("div", { class: "sub" }, "cuts streams off") : null),
      el("td", {}, b.scope), el("td", {}, ...who), el("td", {}, b.period),
      el("td", { class: "num" }, fmtUsd(b.limit)),
      el("td", { class: "num" }, b.spent === null ? "–" : fmtUsd(b.spent)),
      el("td", { class: "num", "data-left": "" }, b.spent === null ? "–" : fmtUsd(Math.max(0, b.limit - b.spent))),
      el("td", {}, el("div", { class: "bar" }, el("div", { class: pct >= 100 ? "over" : pct >= 80 ? "warn" : "", style: `width:${pct}%` }))));
  }));
}

// ---------- keys ----------

async function loadKeys() {
  let data;
  try { data = await api("GET", "/admin/keys"); } catch (e) {
    $("keys-table").tBodies[0].replaceChildren();
    $("keys-empty").textContent = e.message;
    $("keys-empty").hidden = false;
    $("create-form").hidden = e.status === 404;
    return;
  }
  state.keys = data.keys || [];
  $("create-form").hidden = false;
  $("keys-empty").textContent = "No virtual key yet.";
  $("keys-empty").hidden = state.keys.length > 0;
  $("keys-table").tBodies[0].replaceChildren(...state.keys.slice().reverse().map(keyRow));
}

function keyRow(k) {
  const limits = [k.rpm ? fmtInt(k.rpm) + " req/min" : null, k.tpm ? fmtInt(k.tpm) + " tok/min" : null].filter(Boolean).join(", ") || "–";
  const budget = k.budget ? fmtUsd(micros(k.budget.limit_micros)) + " / " + k.budget.period : "–";
  const actions = k.status === "active"
    ? el("button", { class: "danger", "data-revoke": k.id, onclick: (ev) => revoke(ev.currentTarget, k.id) }, "Revoke")
    : null;
  return el("tr", { "data-key": k.id },
    el("td", {}, el("code", {}, "sk-aigw-" + k.id + "-…" + k.hint)),
    el("td", {}, k.name || "–"), el("td", {}, k.team || "–"), el("td", {}, k.owner || "–"),
    el("td", {}, (k.models || []).join(", ") || "any"), el("td", {}, limits), el("td", {}, budget),
    el("td", {}, k.expires_at ? fmtTime(k.expires_at) : "never"),
    el("td", {}, el("span", { class: "pill " + k.status, "data-status": k.status }, k.status)),
    el("td", {}, actions));
}

async function revoke(button, id) {
  if (!button.classList.contains("confirm")) {
    button.classList.add("confirm");
    button.textContent = "Confirm revoke";
    setTimeout(() => { button.classList.remove("confirm"); button.textContent = "Revoke"; }, 5000);
    return;
  }
  button.disabled = true;
  try { await api("DELETE", "/admin/keys/" + encodeURIComponent(id)); } catch (e) { alertError(e); }
  await loadKeys();
}

function alertError(e) { $("create-error").textContent = e.message; $("create-error").hidden = false; }

function specFromForm(form) {
  const f = new FormData(form);
  const list = (v) => String(v || "").split(",").map((s) => s.trim()).filter(Boolean);
  const num = (v) => (v === null || v === "" ? undefined : Number(v));
  const spec = {
    name: f.get("name") || undefined, team: f.get("team") || undefined, owner: f.get("owner") || undefined,
    models: list(f.get("models")), routes: list(f.get("routes")), rpm: num(f.get("rpm")), tpm: num(f.get("tpm")),
  };
  const usd = num(f.get("budget"));
  if (usd !== undefined) spec.budget = { limit_micros: Math.round(usd * 1e6), period: f.get("period") };
  const days = num(f.get("expires"));
  if (days !== undefined) spec.expires_in = Math.round(days * 86400);
  return spec;
}

async function createKey(ev) {
  ev.preventDefault();
  $("create-error").hidden = true;
  try {
    const k = await api("POST", "/admin/keys", specFromForm(ev.target));
    $("new-key").textContent = k.key;
    $("new-key-box").hidden = false;
    ev.target.reset();
  } catch (e) { alertError(e); }
  await loadKeys();
}

// ---------- routes ----------

async function loadRoutes() {
  let routes = [];
  try { routes = (await api("GET", "/admin/routes")).routes || []; } catch (e) { $("routes-empty").textContent = e.message; }
  $("routes-empty").hidden = routes.length > 0;
  const rows = [];
  for (const r of routes) {
    r.rules.forEach((rule, i) => {
      const backends = rule.backends.length ? rule.backends : [{ name: "–" }];
      backends.forEach((b, j) => rows.push(el("tr", { "data-route": r.name },
        el("td", {}, i === 0 && j === 0 ? el("strong", {}, r.name) : ""),
        el("td", {}, j === 0 ? (rule.matches.join(", ") || "any") : ""),
        el("td", {}, el("code", {}, b.name)), el("td", {}, b.schema || "–"), el("td", {}, b.upstream || "–"),
        el("td", { class: "num" }, b.weight ?? "–"), el("td", { class: "num" }, b.priority ?? "–"), el("td", {}, b.model_override || "–"))));
    });
  }
  $("routes-table").tBodies[0].replaceChildren(...rows);
}

// ---------- wiring ----------

$("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("token").value.trim()); $("token").value = ""; });
$("logout").addEventListener("click", () => signOut());
$("create-form").addEventListener("submit", createKey);
$("dismiss-key").addEventListener("click", () => { $("new-key").textContent = ""; $("new-key-box").hidden = true; });
$("copy-key").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("new-key").textContent));
for (const id of ["range", "dimension", "metric"]) $(id).addEventListener("change", loadUsage);
$("refresh").addEventListener("click", loadUsage);
window.addEventListener("hashchange", () => { if (token()) show(location.hash.slice(1)); });
if (token()) signIn(token());
