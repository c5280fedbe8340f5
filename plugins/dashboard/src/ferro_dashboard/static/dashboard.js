// Ferro AI Gateway dashboard: a single page over the gateway's /admin API.
//
// The API key is kept in sessionStorage (this tab only) and sent as a Bearer header; it is
// never put in a URL. Every value from the API reaches the page as text (textContent or
// text nodes), never as HTML, so a key named "<img onerror=...>" shows as those characters.

const KEY_STORAGE = "ferro-dashboard-key";
const LOG_PAGE = 50;
const HISTORY_PAGE = 20;
const READ_ONLY_MESSAGE =
  "This key is read-only: creating and revoking keys and rolling back the config need a key with the admin scope.";

const state = {
  key: null, // the API key in use, or null when signed out
  canWrite: true, // false once the key is known to lack the admin scope
  logsOffset: 0,
};

const $ = (id) => document.getElementById(id);

// --- the API ---------------------------------------------------------------------------------

/** An error answer of the API (status 0: the gateway could not be reached). */
class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A reply to a key that is no longer the one in use (the user signed out meanwhile). */
class StaleReply extends Error {}

/** Call an /admin route with the key; resolve to its JSON (null for 204), or throw ApiError. */
async function api(path, method = "GET", body = undefined) {
  if (!path.startsWith("/admin/")) throw new Error(`not an /admin route: ${path}`);
  const key = state.key;
  const headers = { Authorization: `Bearer ${key}`, Accept: "application/json" };
  const init = { method, headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `cannot reach the gateway (${err.message}); check that it is running and refresh`);
  }
  if (state.key !== key) throw new StaleReply();
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const error = data && typeof data.error === "object" && data.error ? data.error : {};
    throw new ApiError(resp.status, String(error.message || `HTTP ${resp.status}`), error.code);
  }
  return data;
}

/**
 * Run a section's work, showing its failure in the section's notice (`noticeId`). A 401
 * signs out and asks for a key again; a 403 on a read means the key cannot read the
 * dashboard at all; a 403 on a write means the key is read-only. `known` maps other
 * statuses to messages of their own (such as 501: nothing stored).
 */
async function guard(noticeId, work, { write = false, known = {} } = {}) {
  try {
    notice(noticeId, "");
    await work();
  } catch (err) {
    if (err instanceof StaleReply) return;
    if (!(err instanceof ApiError)) throw err;
    if (err.status === 401) {
      signOut(`Invalid key: ${err.message}. Enter a valid key.`);
    } else if (err.status === 403 && !write) {
      signOut(`This key cannot read the dashboard (${err.message}): use a key with the read_only or admin scope.`);
    } else if (err.status === 403) {
      markReadOnly();
      notice(noticeId, READ_ONLY_MESSAGE, "warning");
    } else {
      notice(noticeId, known[err.status] || err.message, known[err.status] ? "" : "error");
    }
  }
}

// --- building the page -----------------------------------------------------------------------

/** A DOM element with attributes `props` and `children` (nodes, or values shown as text). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.map((child) => (child instanceof Node ? child : shown(child))));
  return node;
}

/** How a value reads in a cell: "—" for none. */
function shown(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

/** A table cell with an RFC 3339 time in the browser's locale (the exact value as its tooltip). */
function timeCell(value) {
  if (!value) return el("td", {}, null);
  const date = new Date(value);
  return el("td", { title: value }, Number.isNaN(date.getTime()) ? value : date.toLocaleString());
}

function badge(value) {
  return el("span", { class: "badge", "data-state": value }, value);
}

/** Show `message` in the notice element `id` (hidden when empty), styled as `kind`. */
function notice(id, message, kind = "error") {
  const node = $(id);
  node.textContent = message;
  node.hidden = !message;
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("warning", kind === "warning");
  node.classList.toggle("success", kind === "success");
}

function fillTable(id, rows) {
  $(id).tBodies[0].replaceChildren(...rows);
}

/** The key's display form, as the API lists keys: its first 8 and last 4 characters. */
function displayOf(secret) {
  return `${secret.slice(0, 8)}...${secret.slice(-4)}`;
}

function markReadOnly() {
  state.canWrite = false;
  document.body.classList.add("read-only");
  notice("read-only-notice", READ_ONLY_MESSAGE, "warning");
}

// --- signing in and out ----------------------------------------------------------------------

function signIn(key) {
  state.key = key;
  state.canWrite = true;
  state.logsOffset = 0;
  sessionStorage.setItem(KEY_STORAGE, key);
  document.body.classList.remove("read-only");
  notice("read-only-notice", "");
  $("login").hidden = true;
  $("app").hidden = false;
  $("session").hidden = false;
  loadAll();
}

/** Forget the key and everything shown with it, and ask for a key (with `reason`, if any). */
function signOut(reason = "") {
  state.key = null;
  sessionStorage.removeItem(KEY_STORAGE);
  for (const id of ["providers-table", "keys-table", "logs-table", "config-history"]) fillTable(id, []);
  for (const id of ["summary", "config-current", "gateway-status", "signed-in-as", "logs-page"]) {
    $(id).replaceChildren();
  }
  hideNewKey();
  $("app").hidden = true;
  $("session").hidden = true;
  $("login").hidden = false;
  notice("login-error", reason);
  $("api-key").focus();
}

// --- status, providers and the summary -------------------------------------------------------

async function loadStatus() {
  await guard("status-message", async () => {
    const [health, summary] = await Promise.all([api("/admin/health"), api("/admin/dashboard")]);
    $("gateway-status").replaceChildren(badge(health.status));
    fillTable("providers-table", (health.providers || []).map((p) =>
      el("tr", { "data-testid": "provider-row", dataset: { name: p.name } },
        el("td", {}, p.name), el("td", {}, badge(p.status)), el("td", {}, p.models),
        el("td", {}, p.breaker), el("td", {}, p.message))));
    renderSummary(summary);
  });
}

function renderSummary(s) {
  const keys = s.keys || {};
  const logs = s.request_logs || {};
  const config = s.config || {};
  const items = [
    ["providers", "Providers", `${s.providers?.available ?? 0} of ${s.providers?.total ?? 0} available`],
    ["keys", "API keys", `${keys.active ?? 0} active, ${keys.expired ?? 0} expired, ` +
      `${keys.revoked ?? 0} revoked (${keys.total ?? 0} in all)`],
    ["usage", "Key uses", keys.total_usage ?? 0],
    ["logs", "Request logs", logs.enabled
      ? `${logs.total ?? 0} stored${logs.dropped ? `, ${logs.dropped} dropped` : ""}` : "not stored"],
    ["config", "Config", `${config.version ? `version ${config.version}` : "as started"}, ` +
      `strategy ${shown(config.strategy)}`],
  ];
  $("summary").replaceChildren(...items.flatMap(([id, label, value]) =>
    [el("dt", {}, label), el("dd", { "data-testid": `summary-${id}` }, value)]));
}

// --- keys ------------------------------------------------------------------------------------

async function loadKeys() {
  await guard("keys-message", async () => {
    const keys = await api("/admin/keys");
    const mine = keys.filter((k) => k.status === "active" && k.key === displayOf(state.key));
    if (mine.length === 1) {
      $("signed-in-as").textContent = `Signed in as ${mine[0].name} (${mine[0].scopes.join(", ")})`;
      if (!mine[0].scopes.includes("admin")) markReadOnly();
    } else {
      $("signed-in-as").textContent = "Signed in";
    }
    fillTable("keys-table", keys.map(keyRow));
  });
}

/** A US dollar amount, or null for none. */
function dollars(value, digits) {
  return typeof value === "number" ? `$${value.toFixed(digits)}` : null;
}

function keyRow(k) {
  const spent = typeof k.budget === "number"
    ? `${dollars(k.spent ?? 0, 4)} / ${dollars(k.budget, 2)}`
    : (k.spent ? dollars(k.spent, 4) : null);
  const revoke = k.status === "active"
    ? el("button", { type: "button", class: "admin-only danger", "data-testid": "key-revoke",
        onclick: () => revokeKey(k) }, "Revoke")
    : null;
  return el("tr", { "data-testid": "key-row", dataset: { keyId: k.id, status: k.status } },
    el("td", { "data-testid": "key-name" }, k.name),
    el("td", {}, el("code", {}, k.key)),
    el("td", {}, (k.scopes || []).join(", ")),
    el("td", { "data-testid": "key-status" }, badge(k.status)),
    timeCell(k.created_at), timeCell(k.expires_at), timeCell(k.last_used_at),
    el("td", {}, k.usage_count),
    el("td", {}, spent),
    el("td", {}, ...(revoke ? [revoke] : [])));
}

async function createKey(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const name = $("key-name").value.trim();
  const scopes = [...form.querySelectorAll('input[name="scope"]:checked')].map((box) => box.value);
  if (!name) return notice("keys-message", "Give the key a name.");
  if (scopes.length === 0) return notice("keys-message", "Choose at least one scope.");
  const body = { name, scopes };
  if ($("key-expires-in").value) body.expires_in = $("key-expires-in").value;
  await guard("keys-message", async () => {
    const created = await api("/admin/keys", "POST", body);
    showNewKey(created);
    form.reset();
    await Promise.all([loadKeys(), loadStatus()]);
  }, { write: true });
}

/** Show a new key's full secret; it lives only in this panel until "Done" or sign-out. */
function showNewKey(created) {
  $("new-key-name").textContent = created.name;
  $("new-key-secret").textContent = created.key;
  $("new-key-copied").textContent = "";
  $("new-key").hidden = false;
}

function hideNewKey() {
  $("new-key-secret").textContent = "";
  $("new-key-name").textContent = "";
  $("new-key-copied").textContent = "";
  $("new-key").hidden = true;
}

async function copyNewKey() {
  const secret = $("new-key-secret").textContent;
  try {
    await navigator.clipboard.writeText(secret);
    $("new-key-copied").textContent = "Copied.";
  } catch {
    // no clipboard API (a page served over plain HTTP to another host): select it instead
    const range = document.createRange();
    range.selectNodeContents($("new-key-secret"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    $("new-key-copied").textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
}

async function revokeKey(k) {
  if (!window.confirm(`Revoke the key "${k.name}"? Clients using it are refused at once.`)) return;
  await guard("keys-message", async () => {
    await api(`/admin/keys/${encodeURIComponent(k.id)}/revoke`, "POST");
    await Promise.all([loadKeys(), loadStatus()]);
  }, { write: true });
}

// --- request logs ----------------------------------------------------------------------------

async function loadLogs() {
  const query = new URLSearchParams({ limit: LOG_PAGE, offset: state.logsOffset });
  for (const field of ["provider", "model"]) {
    const value = $(`logs-${field}`).value.trim();
    if (value) query.set(field, value);
  }
  $("logs-prev").disabled = true;
  $("logs-next").disabled = true;
  await guard("logs-message", async () => {
    const page = await api(`/admin/logs?${query}`);
    const rows = page.data || [];
    const total = page.summary?.total_entries ?? rows.length;
    fillTable("logs-table", rows.map(logRow));
    $("logs-page").textContent = rows.length
      ? `${state.logsOffset + 1}–${state.logsOffset + rows.length} of ${total}`
      : (state.logsOffset ? "no more entries" : "no entries");
    $("logs-prev").disabled = state.logsOffset === 0;
    $("logs-next").disabled = state.logsOffset + rows.length >= total;
  }, { known: { 501: "Request logs are not stored: configure a request-log store (storage.request_logs) to see them here." } });
}

function logRow(r) {
  const error = [r.error_type, r.error_message].filter(Boolean).join(": ");
  return el("tr", { "data-testid": "log-row", dataset: { stage: r.stage } },
    timeCell(r.created_at), el("td", {}, r.provider), el("td", {}, r.model),
    el("td", {}, r.status), el("td", {}, r.stage), el("td", {}, r.latency_ms),
    el("td", {}, r.total_tokens), el("td", {}, typeof r.cost === "number" ? r.cost.toFixed(6) : null),
    el("td", { class: "error-text" }, ...(error ? [error] : [])));
}

function pageLogs(step) {
  state.logsOffset = Math.max(0, state.logsOffset + step * LOG_PAGE);
  loadLogs();
}

// --- config ----------------------------------------------------------------------------------

async function loadConfig() {
  await Promise.all([
    guard("config-message", async () => {
      const config = await api("/admin/config");
      $("config-current").textContent = JSON.stringify(config, null, 2);
    }),
    guard("config-history-message", async () => {
      const history = await api(`/admin/config/history?limit=${HISTORY_PAGE}`);
      const versions = history.data || [];
      const total = history.summary?.total_versions ?? versions.length;
      fillTable("config-history", versions.map((v, i) => historyRow(v, i === 0)));
      if (versions.length === 0) {
        notice("config-history-message", "No config changes yet: the gateway serves the config it started with.", "");
      } else if (total > versions.length) {
        notice("config-history-message", `The ${versions.length} newest of ${total} versions.`, "");
      }
    }, { known: { 501: "Config history is not stored: configure a config store (storage.config) to keep it." } }),
  ]);
}

function historyRow(v, current) {
  const rollback = current
    ? el("span", { class: "muted" }, "in force")
    : el("button", { type: "button", class: "admin-only", "data-testid": "config-rollback",
        dataset: { version: v.version }, onclick: () => rollBack(v.version) }, "Roll back to this");
  return el("tr", { "data-testid": "config-version", dataset: { version: v.version } },
    el("td", {}, v.version), timeCell(v.created_at), el("td", {}, v.action), el("td", {}, v.actor),
    el("td", {}, v.rolled_back_from), el("td", {}, rollback));
}

async function rollBack(version) {
  if (!window.confirm(`Serve the config of version ${version} again? It applies at once.`)) return;
  await guard("config-history-message", async () => {
    const done = await api(`/admin/config/rollback/${encodeURIComponent(version)}`, "POST");
    await Promise.all([loadConfig(), loadStatus()]);
    notice("config-history-message", `Rolled back to version ${done.rolled_back_to} (now version ${done.version}).`,
      "success");
  }, { write: true });
}

// --- start -----------------------------------------------------------------------------------

function loadAll() {
  return Promise.all([loadStatus(), loadKeys(), loadLogs(), loadConfig()]);
}

function start() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    $("api-key").value = "";
    if (key) signIn(key);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("refresh").addEventListener("click", () => loadAll());
  $("key-create-form").addEventListener("submit", createKey);
  $("new-key-copy").addEventListener("click", copyNewKey);
  $("new-key-dismiss").addEventListener("click", hideNewKey);
  $("logs-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    state.logsOffset = 0;
    loadLogs();
  });
  $("logs-prev").addEventListener("click", () => pageLogs(-1));
  $("logs-next").addEventListener("click", () => pageLogs(1));
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) signIn(saved);
  else signOut();
}

start();
