// herald's dashboard: plain JavaScript over the management API. Every value from the API is
// put on the page with textContent, never as HTML.
"use strict";

const state = { token: null, tenant: null, admin: false, types: [], endpoint: null, tested: "" };

// ---- helpers -------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value != null) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`api/v1${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401) signOut("Your link or token has expired or been revoked.");
    throw new ApiError(response.status, data || {});
  }
  return data;
}

const tenantPath = (rest = "") => `/tenants/${encodeURIComponent(state.tenant)}${rest}`;

function when(text) {
  if (!text) return "—";
  const date = new Date(text);
  return date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function toast(message) {
  const node = $("toast");
  node.textContent = message;
  node.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => node.classList.remove("show"), 2600);
}

function problemText(error) {
  const violations = (error.problem && error.problem.errors) || [];
  return [error.message, ...violations.map((v) => `${v.path}: ${v.message}`)].join(" — ");
}

function confirmDialog(text, action) {
  $("confirm-text").textContent = text;
  const dialog = $("confirm-dialog");
  dialog.returnValue = "";
  dialog.onclose = () => { if (dialog.returnValue === "ok") action(); };
  dialog.showModal();
}

// ---- signing in ----------------------------------------------------------------------------

async function start() {
  const link = new URLSearchParams(location.hash.slice(1)).get("link");
  if (link) {
    sessionStorage.setItem("herald.token", link);
    history.replaceState(null, "", location.pathname); // the token leaves the address bar
  }
  state.token = sessionStorage.getItem("herald.token");
  if (!state.token) return showLogin();
  try {
    await identify();
  } catch (error) {
    showLogin(error instanceof ApiError ? problemText(error) : String(error));
  }
}

// A dashboard link names its tenant; the admin token lists them all.
async function identify() {
  if (state.token.startsWith("hrdl_")) {
    const encoded = state.token.slice(5).split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    state.tenant = atob(encoded);
    state.admin = false;
    await api("GET", tenantPath("/endpoints?limit=1"));
  } else {
    const tenants = await api("GET", "/tenants?limit=100");
    state.admin = true;
    const switcher = $("switcher");
    switcher.replaceChildren(...tenants.data.map((t) => el("option", { value: t.id }, t.id)));
    $("switcher-label").hidden = tenants.data.length === 0;
    state.tenant = sessionStorage.getItem("herald.tenant") || (tenants.data[0] && tenants.data[0].id);
    if (!state.tenant) throw new Error("There are no tenants yet: create one through the API first.");
    switcher.value = state.tenant;
  }
  const types = await api("GET", "/event-types");
  state.types = types.data;
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("sign-out").hidden = false;
  $("tenant-name").textContent = state.admin ? "" : state.tenant;
  fillTypeFilters();
  show(location.hash.slice(1) || "endpoints");
}

function showLogin(message = "") {
  for (const view of document.querySelectorAll(".view")) view.hidden = true;
  $("tabs").hidden = true;
  $("sign-out").hidden = true;
  $("switcher-label").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("admin-token").focus();
}

function signOut(message) {
  sessionStorage.removeItem("herald.token");
  sessionStorage.removeItem("herald.tenant");
  state.token = null;
  showLogin(message || "");
}

// ---- navigation ----------------------------------------------------------------------------

function show(view) {
  if (!["endpoints", "activity", "types"].includes(view)) view = "endpoints";
  for (const button of document.querySelectorAll("#tabs button")) {
    if (button.dataset.view === view) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  history.replaceState(null, "", `#${view}`);
  ({ endpoints: loadEndpoints, activity: loadActivity, types: loadTypes })[view]();
}

// ---- endpoints -----------------------------------------------------------------------------

async function loadEndpoints() {
  const list = $("endpoint-list");
  const path = tenantPath("/endpoints?limit=100");
  const page = await api("GET", path);
  if (page.data.length === 0) {
    list.replaceChildren(el("p", { class: "empty" }, "No endpoints yet. Add the URL where you want to receive webhooks."));
    $("endpoint-detail").hidden = true;
    return;
  }
  list.replaceChildren();
  paged(list, page, path, (endpoint) => el("button", {
    type: "button", class: `row${state.endpoint === endpoint.id ? " selected" : ""}`,
    "data-endpoint": endpoint.id, onclick: () => openEndpoint(endpoint.id),
  },
  el("span", { class: "main" },
    el("div", { class: "title" }, endpoint.url),
    el("div", { class: "sub" }, endpoint.event_types.length ? endpoint.event_types.join(", ") : "All event types",
      endpoint.description ? ` · ${endpoint.description}` : "")),
  el("span", { class: `badge ${endpoint.enabled ? "enabled" : "disabled"}` }, endpoint.enabled ? "Enabled" : "Disabled")));
  if (state.endpoint && page.data.some((e) => e.id === state.endpoint)) await openEndpoint(state.endpoint);
  else $("endpoint-detail").hidden = true;
}

// Rows for one page of a list, then, while there is more, a button that fetches the next page
// (the API's `next` cursor) and puts its rows after these.
function paged(container, page, path, row) {
  container.append(...page.data.map(row));
  if (!page.next) return;
  const more = el("button", { type: "button", class: "more", onclick: async () => {
    more.disabled = true;
    const next = await api("GET", `${path}&after=${encodeURIComponent(page.next)}`);
    more.remove();
    paged(container, next, path, row);
  } }, "Load more");
  container.append(more);
}

function openForm() {
  $("endpoint-types").replaceChildren(...state.types.map((type) => el("label", {},
    el("input", { type: "checkbox", value: type.name }), type.name)));
  $("endpoint-error").textContent = "";
  $("endpoint-form").hidden = false;
  $("endpoint-url").focus();
}

async function createEndpoint(event) {
  event.preventDefault();
  const types = [...document.querySelectorAll("#endpoint-types input:checked")].map((i) => i.value);
  try {
    const rate = $("endpoint-rate").value.trim();
    const endpoint = await api("POST", tenantPath("/endpoints"), {
      url: $("endpoint-url").value.trim(), description: $("endpoint-description").value.trim(), event_types: types,
      signature: $("endpoint-signature").value,
      ...(rate ? { rate_limit: Number(rate) } : {}),
    });
    $("endpoint-form").reset();
    $("endpoint-form").hidden = true;
    state.endpoint = endpoint.id;
    toast("Endpoint created");
    await loadEndpoints();
  } catch (error) {
    $("endpoint-error").textContent = problemText(error);
  }
}

async function openEndpoint(id) {
  if (state.endpoint !== id) state.tested = "";
  state.endpoint = id;
  for (const row of document.querySelectorAll("#endpoint-list .row")) row.classList.toggle("selected", row.dataset.endpoint === id);
  const e = tenantPath(`/endpoints/${id}`);
  const log = tenantPath(`/deliveries?endpoint=${id}&limit=50`);
  const [endpoint, deliveries] = await Promise.all([api("GET", e), api("GET", log)]);
  const detail = $("endpoint-detail");
  const secret = el("code", { id: "secret-value" }, "whsec_••••••••••••••••••••••••");
  const hmac = endpoint.signature !== "ed25519";
  const ed25519 = endpoint.signature !== "hmac";
  const keys = el("div", { id: "public-keys" });
  if (ed25519) api("GET", `${e}/keys`).then((listed) => showKeys(keys, listed), (problem) => toast(problemText(problem)));
  const result = el("p", { id: "test-result", role: "status", class: "muted" }, state.tested);
  detail.replaceChildren(
    el("div", { class: "heading" }, el("h2", {}, endpoint.url),
      el("span", { class: `badge ${endpoint.enabled ? "enabled" : "disabled"}` }, endpoint.enabled ? "Enabled" : "Disabled")),
    el("dl", { class: "facts" },
      el("dt", {}, "Id"), el("dd", { class: "mono" }, endpoint.id),
      el("dt", {}, "Receives"), el("dd", {}, endpoint.event_types.length ? endpoint.event_types.join(", ") : "All event types"),
      el("dt", {}, "Rate limit"), el("dd", {}, rateLimitEditor(e, endpoint.rate_limit)),
      el("dt", {}, "Signature"), el("dd", {}, signatureEditor(e, endpoint.signature)),
      endpoint.disabled_reason && [el("dt", {}, "Disabled because"), el("dd", {}, endpoint.disabled_reason)],
      endpoint.failing_since && [el("dt", {}, "Failing since"), el("dd", {}, when(endpoint.failing_since))]),
    ...(hmac ? [el("h3", {}, "Signing secret"),
      el("div", { class: "secret" }, secret,
        el("button", { type: "button", id: "reveal-secret", onclick: () => revealSecret(e, secret) }, "Reveal"),
        el("button", { type: "button", id: "rotate-secret", onclick: () => rotateSecret(e, secret) }, "Rotate"))] : []),
    ...(ed25519 ? [el("h3", {}, "Public keys"), keys] : []),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "primary", id: "send-test", disabled: !endpoint.enabled,
        onclick: (ev) => sendTest(e, ev.target, result) }, "Send test event"),
      el("button", { type: "button", id: "toggle-endpoint", onclick: () => toggle(e, endpoint.enabled) },
        endpoint.enabled ? "Disable" : "Enable"),
      el("button", { type: "button", class: "danger", id: "delete-endpoint",
        onclick: () => confirmDialog(`Delete ${endpoint.url}? Its delivery log goes with it.`, () => remove(e)) }, "Delete")),
    result,
    el("h3", {}, "Deliveries"),
    deliveryLog(deliveries, log));
  detail.hidden = false;
}

// The endpoint's rate limit, with a small form to change or remove it.
function rateLimitEditor(path, limit) {
  const input = el("input", { id: "rate-limit", type: "number", min: "1", max: "100000", step: "1",
    inputmode: "numeric", placeholder: "No limit", "aria-label": "Rate limit, deliveries per second" });
  input.value = limit ?? "";
  const error = el("span", { id: "rate-limit-error", class: "error", role: "alert" });
  const save = async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    try {
      await api("PATCH", path, { rate_limit: value ? Number(value) : null });
      toast(value ? `Rate limit set: ${value} per second` : "Rate limit removed");
      await openEndpoint(state.endpoint);
    } catch (problem) {
      error.textContent = problemText(problem);
    }
  };
  return el("form", { class: "inline", id: "rate-limit-form", onsubmit: save },
    input, el("span", { class: "muted" }, "per second"),
    el("button", { type: "submit", id: "save-rate-limit" }, "Save"), error);
}

// How deliveries are signed, changed by choosing another way.
function signatureEditor(path, signature) {
  const select = el("select", { id: "signature", "aria-label": "How deliveries are signed" },
    ...[["hmac", "HMAC (v1)"], ["ed25519", "Ed25519 (v1a)"], ["both", "Both"]].map(([value, label]) =>
      el("option", { value, selected: value === signature }, label)));
  select.addEventListener("change", async () => {
    try {
      await api("PATCH", path, { signature: select.value });
      toast(`Deliveries are now signed with ${select.selectedOptions[0].textContent}`);
    } catch (problem) {
      toast(problemText(problem));
    }
    await openEndpoint(state.endpoint);
  });
  return select;
}

// The endpoint's Ed25519 public keys (its private keys never leave herald), with where the
// tenant's keys are published for receivers, and a button to rotate.
function showKeys(node, listed) {
  node.replaceChildren(
    ...listed.keys.map((key) => el("div", { class: "key" },
      el("code", { class: "public-key" }, key.public_key),
      el("small", { class: "muted" }, `kid ${key.kid} · `,
        key.expires_at ? `rotated out, signs until ${when(key.expires_at)}` : "current"))),
    el("p", { class: "muted" }, "Receivers fetch these, with no credential, from ",
      el("a", { href: listed.jwks, id: "jwks-link" }, listed.jwks), "."),
    el("div", { class: "actions" },
      el("button", { type: "button", id: "rotate-key", onclick: async () => {
        showKeys(node, await api("POST", tenantPath(`/endpoints/${state.endpoint}/keys/rotate`)));
        toast("Key rotated: the old one keeps signing for 24 hours");
      } }, "Rotate key")));
}

async function revealSecret(path, node) {
  const secret = await api("GET", `${path}/secret`);
  node.textContent = secret.secret;
}

async function rotateSecret(path, node) {
  const rotated = await api("POST", `${path}/secret/rotate`);
  node.textContent = rotated.secret;
  toast("Secret rotated: the old one keeps signing for 24 hours");
}

async function sendTest(path, button, result) {
  button.disabled = true;
  result.textContent = "Sending…";
  try {
    const sent = await api("POST", `${path}/test`);
    const a = sent.attempt;
    state.tested = !a ? "Sent; the attempt is still running." : a.succeeded
      ? `Delivered: ${a.status_code} in ${a.duration_ms} ms`
      : `Failed: ${a.status_code ? `HTTP ${a.status_code}` : a.error} (it will be retried)`;
    await openEndpoint(state.endpoint);
  } catch (error) {
    result.textContent = problemText(error);
  } finally {
    button.disabled = false;
  }
}

async function toggle(path, enabled) {
  await api("PATCH", path, { enabled: !enabled });
  toast(enabled ? "Endpoint disabled" : "Endpoint enabled");
  await loadEndpoints();
}

async function remove(path) {
  await api("DELETE", path);
  state.endpoint = null;
  toast("Endpoint deleted");
  await loadEndpoints();
}

// ---- the delivery log ----------------------------------------------------------------------

// One page of deliveries from `path`, newest first, and a button for the older ones.
function deliveryLog(page, path) {
  if (page.data.length === 0) return el("div", { class: "list" }, el("p", { class: "empty" }, "Nothing delivered yet."));
  const list = el("div", { class: "list log" });
  paged(list, page, path, (d) => el("button", {
    type: "button", class: "row", "data-delivery": d.id, "data-state": d.state, onclick: () => openDelivery(d.id),
  },
  el("span", { class: "sub" }, when(d.created_at)),
  el("span", { class: "title" }, d.event_type),
  el("span", { class: "sub hide-small" }, `${d.attempt_count} attempt${d.attempt_count === 1 ? "" : "s"}`),
  el("span", { class: `badge ${d.state}` }, d.state)));
  return list;
}

async function openDelivery(id) {
  const d = await api("GET", tenantPath(`/deliveries/${id}`));
  const body = $("attempt-body");
  $("attempt-title").textContent = `${d.event_type} · ${d.state}`;
  const retry = el("button", { type: "button", class: "primary", id: "retry-delivery", onclick: async () => {
    retry.disabled = true;
    try {
      await api("POST", tenantPath(`/deliveries/${id}/retry`));
      toast("Retrying now");
      setTimeout(() => openDelivery(id).then(refresh), 800);
    } catch (error) {
      toast(problemText(error));
      retry.disabled = false;
    }
  } }, "Retry now");
  body.replaceChildren(
    el("dl", { class: "facts" },
      el("dt", {}, "Delivery"), el("dd", { class: "mono" }, d.id),
      el("dt", {}, "Event (webhook-id)"), el("dd", { class: "mono" }, d.event.id),
      el("dt", {}, "Next attempt"), el("dd", {}, d.next_attempt_at ? when(d.next_attempt_at) : "—")),
    el("div", { class: "actions" }, retry),
    el("h3", {}, "Payload"),
    el("pre", {}, JSON.stringify(d.event.payload, null, 2)),
    ...(d.attempts.length === 0 ? [el("p", { class: "muted" }, "No attempt yet.")] : []),
    ...[...d.attempts].reverse().map((a) => el("section", { class: "attempt", "data-attempt": a.number },
      el("div", { class: "heading" },
        el("strong", {}, `Attempt ${a.number} · ${when(a.started_at)} · ${a.duration_ms} ms`),
        el("span", { class: `badge ${a.succeeded ? "succeeded" : "failed"}` },
          a.status_code ? `HTTP ${a.status_code}` : "No response")),
      a.error ? el("p", { class: "error" }, a.error) : null,
      el("div", { class: "two" },
        el("div", {}, el("h3", {}, "Request headers"), el("pre", {}, headerText(a.request_headers))),
        el("div", {}, el("h3", {}, "Response headers"), el("pre", {}, headerText(a.response_headers) || "—"))),
      el("h3", {}, "Response body"),
      el("pre", {}, a.response_excerpt || "—"))));
  const dialog = $("attempt-dialog");
  if (!dialog.open) dialog.showModal();
}

const headerText = (headers) => Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join("\n");

function refresh() {
  const current = document.querySelector("#tabs [aria-current]");
  if (current && current.dataset.view === "endpoints" && state.endpoint) return openEndpoint(state.endpoint);
  if (current && current.dataset.view === "activity") return loadActivity();
}

// ---- activity: the chart and the tenant's log ----------------------------------------------

function fillTypeFilters() {
  $("filter-type").replaceChildren(el("option", { value: "" }, "Any"),
    ...state.types.map((t) => el("option", { value: t.name }, t.name)));
}

async function loadActivity() {
  const params = new URLSearchParams({ limit: "50" });
  if ($("filter-state").value) params.set("state", $("filter-state").value);
  if ($("filter-type").value) params.set("event_type", $("filter-type").value);
  const log = tenantPath(`/deliveries?${params}`);
  const [stats, deliveries] = await Promise.all([api("GET", tenantPath("/stats?hours=24")), api("GET", log)]);
  drawChart(stats.hours);
  $("activity-log").replaceChildren(deliveryLog(deliveries, log));
}

// Bars: successes (green) stacked under failures (red) per hour; the line: mean latency.
function drawChart(hours) {
  const width = 960, height = 200, pad = 28, bar = (width - pad * 2) / hours.length;
  const most = Math.max(1, ...hours.map((h) => h.succeeded + h.failed));
  const slowest = Math.max(1, ...hours.map((h) => h.mean_ms));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", "aria-hidden": "true" });
  chart.append(svg("line", { class: "axis", x1: pad, x2: width - pad, y1: height - pad, y2: height - pad }));
  const scale = (n) => (n / most) * (height - pad * 2);
  const points = [];
  hours.forEach((h, i) => {
    const x = pad + i * bar + 2, w = Math.max(1, bar - 4);
    const ok = scale(h.succeeded), bad = scale(h.failed);
    chart.append(svg("rect", { class: "ok", x, width: w, y: height - pad - ok, height: ok }));
    chart.append(svg("rect", { class: "bad", x, width: w, y: height - pad - ok - bad, height: bad }));
    if (h.succeeded + h.failed > 0) points.push(`${x + w / 2},${height - pad - (h.mean_ms / slowest) * (height - pad * 2)}`);
    if (i % 6 === 0) {
      const label = svg("text", { x, y: height - 8 });
      label.textContent = new Date(h.start).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
      chart.append(label);
    }
  });
  if (points.length > 1) chart.append(svg("polyline", { class: "latency", points: points.join(" ") }));
  const total = (key) => hours.reduce((sum, h) => sum + h[key], 0);
  const node = $("chart");
  node.setAttribute("aria-label", `Last 24 hours: ${total("succeeded")} successful and ${total("failed")} failed attempts`);
  node.replaceChildren(chart);
  $("chart-legend").replaceChildren(
    el("span", {}, el("i", { class: "legend-ok" }), `${total("succeeded")} succeeded`),
    el("span", {}, el("i", { class: "legend-bad" }), `${total("failed")} failed`),
    el("span", {}, el("i", { class: "legend-latency" }), `mean latency (peak ${Math.round(slowest)} ms)`));
}

// ---- event types ---------------------------------------------------------------------------

function loadTypes() {
  $("type-list").replaceChildren(...state.types.map((type) => el("article", { class: "card type" },
    el("h2", {}, type.name),
    el("p", {}, type.description || type.summary),
    el("div", { class: "two" },
      el("div", {}, el("h3", {}, type.example_declared ? "Example" : "Example (from the schema)"),
        el("pre", {}, JSON.stringify(type.example, null, 2))),
      el("div", {}, el("h3", {}, "Schema"), el("pre", {}, JSON.stringify(type.schema, null, 2)))))));
}

// ---- wiring --------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => show(button.dataset.view));
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    state.token = $("admin-token").value.trim();
    sessionStorage.setItem("herald.token", state.token);
    try { await identify(); } catch (error) { signOut(error instanceof ApiError ? problemText(error) : String(error)); }
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("switcher").addEventListener("change", (event) => {
    state.tenant = event.target.value;
    state.endpoint = null;
    sessionStorage.setItem("herald.tenant", state.tenant);
    show("endpoints");
  });
  $("add-endpoint").addEventListener("click", openForm);
  $("cancel-endpoint").addEventListener("click", () => { $("endpoint-form").hidden = true; $("add-endpoint").focus(); });
  $("endpoint-form").addEventListener("submit", createEndpoint);
  $("filter-state").addEventListener("change", loadActivity);
  $("filter-type").addEventListener("change", loadActivity);
  $("attempt-dialog").addEventListener("close", refresh);
  start();
});
