// herald's dashboard: plain JavaScript over the management API. Every value from the API is
// put on the page with textContent, never as HTML.
"use strict";

const state = { token: null, tenant: null, admin: false, types: [], endpoint: null, tested: "", revealed: new Set(), urls: new Map() };

// Live: the open view is fetched again every few seconds, unless paused, hidden or behind a dialog.
const live = { paused: false, updated: 0, every: 1000 };

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

// Requests answer out of order (a live refresh beside a click): each drawing asks for a number
// first, `latest(what)`, and draws only if no later one was asked for, `latest(what, number)`.
const asked = {};
function latest(what, number) {
  if (number === undefined) return (asked[what] = (asked[what] || 0) + 1);
  return asked[what] === number;
}

const OPERATOR = "_operator";
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

function confirmDialog(text, action, verb = "Delete") {
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = verb;
  $("confirm-ok").className = verb === "Delete" ? "danger" : "primary";
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
    // `_operator` is herald's: its endpoints hear operational webhooks for every tenant.
    switcher.replaceChildren(...tenants.data.map((t) => el("option", { value: t.id },
      t.id === OPERATOR ? `${t.id} (operational webhooks of every tenant)` : t.id)));
    $("switcher-label").hidden = tenants.data.length === 0;
    const first = tenants.data.find((t) => t.id !== OPERATOR) || tenants.data[0];
    state.tenant = sessionStorage.getItem("herald.tenant") || (first && first.id);
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

// An endpoint's state, from what the API knows of its recent attempts: the badge's class and text.
function health(endpoint) {
  if (!endpoint.enabled) return { rank: 1, key: "disabled", text: "Disabled" };
  if (endpoint.circuit_open_until) return { rank: 0, key: "failing", text: `Circuit open until ${when(endpoint.circuit_open_until)}` };
  if (endpoint.failing_since) return { rank: 0, key: "failing", text: `Failing since ${when(endpoint.failing_since)}` };
  return { rank: 2, key: "healthy", text: "Healthy" };
}

// The last figures of each endpoint, so a live refresh (every second) asks for them only
// every FIGURES_EVERY ms, not once per endpoint per second.
const figures = new Map();
const FIGURES_EVERY = 15000;

// "24 h: 97% of 120 attempts succeeded · 45 ms mean", from the endpoint's hourly figures.
async function recentFigures(node, id) {
  const known = figures.get(`${state.tenant}/${id}`);
  if (known) node.textContent = known.text;
  if (known && Date.now() - known.at < FIGURES_EVERY) return;
  const stats = await api("GET", tenantPath(`/stats?hours=24&endpoint=${encodeURIComponent(id)}`));
  const ok = stats.hours.reduce((n, h) => n + h.succeeded, 0);
  const failed = stats.hours.reduce((n, h) => n + h.failed, 0);
  const total = ok + failed;
  const mean = total ? stats.hours.reduce((n, h) => n + h.mean_ms * (h.succeeded + h.failed), 0) / total : 0;
  const text = total
    ? `24 h: ${Math.round((ok / total) * 100)}% of ${attempts(total)} succeeded · ${Math.round(mean)} ms mean`
    : "24 h: no attempts";
  figures.set(`${state.tenant}/${id}`, { text, at: Date.now() });
  node.textContent = text;
}

// The endpoint list, failing ones first, each with its health; opens the selected one unless
// told not to (a live refresh keeps the open endpoint as the user left it).
async function loadEndpoints(open = true) {
  const list = $("endpoint-list");
  const path = tenantPath("/endpoints?limit=100");
  const asked = latest("endpoints");
  const page = await api("GET", path);
  if (!latest("endpoints", asked)) return;
  for (const e of page.data) state.urls.set(e.id, e.url);
  if (page.data.length === 0) {
    list.replaceChildren(el("p", { class: "empty" }, "No endpoints yet. Add the URL where you want to receive webhooks."));
    $("endpoint-detail").hidden = true;
    return;
  }
  page.data.sort((a, b) => health(a).rank - health(b).rank);
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.endpoint : null;
  list.replaceChildren();
  paged(list, page, path, (endpoint) => {
    const state_ = health(endpoint);
    const shown = el("div", { class: "sub figures" }, "24 h: …");
    recentFigures(shown, endpoint.id).catch(() => { shown.textContent = ""; });
    return el("button", {
      type: "button", class: `row${state.endpoint === endpoint.id ? " selected" : ""}`,
      "data-endpoint": endpoint.id, "data-health": state_.key, onclick: () => openEndpoint(endpoint.id),
    },
    el("span", { class: "main" },
      el("div", { class: "title" }, endpoint.url),
      el("div", { class: "sub" }, endpoint.event_types.length ? endpoint.event_types.join(", ") : "All event types",
        endpoint.rate_limit ? ` · at most ${endpoint.rate_limit}/s` : "",
        endpoint.description ? ` · ${endpoint.description}` : "",
        !endpoint.enabled && endpoint.disabled_reason ? ` · ${endpoint.disabled_reason}` : ""),
      shown),
    el("span", { class: `badge ${state_.key}` }, state_.text));
  });
  if (focused) list.querySelector(`[data-endpoint="${CSS.escape(focused)}"]`)?.focus();
  if (!open) return;
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

// ---- payload filters: written as JSON, previewed on the tenant's latest events ------------

// The filter in `text`, or null when it is empty; a message the user can act on when it is
// not JSON (the server says what is wrong with JSON that is not a filter).
function parseFilter(text) {
  if (!text.trim()) return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`The filter is not JSON: ${error.message}`);
  }
}

// Shows in `out` which of the latest events `text` would have let through for `types`.
async function previewFilter(text, types, out) {
  out.classList.remove("error");
  try {
    const preview = await api("POST", tenantPath("/filter-preview"), { event_types: types, filter: parseFilter(text) });
    const ids = preview.matched.slice(0, 5).map((e) => `${e.id} (${e.event_type})`);
    out.textContent = `Would have matched ${preview.matched.length} of the last ${preview.checked} events`
      + (ids.length ? `: ${ids.join(", ")}${preview.matched.length > ids.length ? ", …" : ""}` : ".");
  } catch (problem) {
    out.classList.add("error");
    out.textContent = problemText(problem);
  }
}

// The filter dialog of an endpoint: edit, preview, save or remove.
function editFilter(path, endpoint) {
  const dialog = $("filter-dialog");
  $("filter-text").value = endpoint.filter ? JSON.stringify(endpoint.filter, null, 2) : "";
  $("filter-dialog-preview").textContent = "";
  $("filter-dialog-error").textContent = "";
  $("filter-dialog-preview-button").onclick = () =>
    previewFilter($("filter-text").value, endpoint.event_types, $("filter-dialog-preview"));
  $("filter-save").onclick = async () => {
    try {
      const filter = parseFilter($("filter-text").value);
      await api("PATCH", path, { filter });
      dialog.close();
      toast(filter ? "Filter saved" : "Filter removed");
      await openEndpoint(state.endpoint);
    } catch (problem) {
      $("filter-dialog-error").textContent = problemText(problem);
    }
  };
  dialog.showModal();
}

function openForm() {
  $("endpoint-types").replaceChildren(...state.types.map((type) => el("label", {},
    el("input", { type: "checkbox", value: type.name }), type.name,
    type.operational ? el("span", { class: "muted" }, " (operational)") : "")));
  const versions = allVersions();
  $("endpoint-version-field").hidden = versions.length === 0;
  $("endpoint-version").replaceChildren(...versions.map((v, i) =>
    el("option", { value: v, selected: i === versions.length - 1 }, i === versions.length - 1 ? `${v} (newest)` : v)));
  $("endpoint-error").textContent = "";
  $("filter-preview").textContent = "";
  $("endpoint-form").hidden = false;
  $("endpoint-url").focus();
}

async function createEndpoint(event) {
  event.preventDefault();
  const types = [...document.querySelectorAll("#endpoint-types input:checked")].map((i) => i.value);
  try {
    const rate = $("endpoint-rate").value.trim();
    const filter = parseFilter($("endpoint-filter").value);
    const channels = $("endpoint-channels").value.split(",").map((c) => c.trim()).filter(Boolean);
    const endpoint = await api("POST", tenantPath("/endpoints"), {
      ...(filter ? { filter } : {}), ...(channels.length ? { channels } : {}),
      url: $("endpoint-url").value.trim(), description: $("endpoint-description").value.trim(), event_types: types,
      signature: $("endpoint-signature").value,
      ...(rate ? { rate_limit: Number(rate) } : {}),
      ...($("endpoint-version").value ? { version: $("endpoint-version").value } : {}),
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
  const asked = latest("endpoint");
  const [endpoint, deliveries] = await Promise.all([api("GET", e), api("GET", log)]);
  if (!latest("endpoint", asked)) return; // a later call draws it, with fresher answers
  // Drawn again (a dialog closed, an action ended): what the user was choosing stays chosen.
  const changed = (input) => (input && input.value !== input.dataset.drawn ? input.value : undefined);
  const unsaved = $("endpoint-detail").dataset.endpoint === id
    ? { version: changed($("version")), rate: changed($("rate-limit")) } : {};
  const detail = $("endpoint-detail");
  const secret = el("div", { id: "secret" });
  const hmac = endpoint.signature !== "ed25519";
  const ed25519 = endpoint.signature !== "hmac";
  const keys = el("div", { id: "public-keys" });
  if (ed25519) api("GET", `${e}/keys`).then((listed) => showKeys(keys, listed), (problem) => toast(problemText(problem)));
  const result = el("p", { id: "test-result", role: "status", class: "muted" }, state.tested);
  const skipped = el("div", { id: "skipped-choice" });
  if (!endpoint.enabled) {
    api("GET", tenantPath(`/deliveries?endpoint=${id}&state=skipped&limit=100`))
      .then((page) => skippedChoice(skipped, page), (problem) => toast(problemText(problem)));
  }
  detail.replaceChildren(
    el("div", { class: "heading" }, el("h2", {}, endpoint.url),
      el("span", { class: `badge ${health(endpoint).key}`, id: "endpoint-health" }, health(endpoint).text)),
    el("dl", { class: "facts" },
      el("dt", {}, "Id"), el("dd", { class: "mono" }, endpoint.id),
      el("dt", {}, "Receives"), el("dd", {}, endpoint.event_types.length ? endpoint.event_types.join(", ") : "All event types"),
      el("dt", {}, "Channels"), el("dd", {}, endpoint.channels.length ? endpoint.channels.join(", ") : "All channels"),
      el("dt", {}, "Filter"), el("dd", {},
        el("code", { id: "endpoint-filter-shown" }, endpoint.filter ? JSON.stringify(endpoint.filter) : "None"), " ",
        el("button", { type: "button", id: "edit-filter", onclick: () => editFilter(e, endpoint) }, "Change")),
      el("dt", {}, "Rate limit"), el("dd", {}, rateLimitEditor(e, endpoint.rate_limit)),
      el("dt", {}, "Signature"), el("dd", {}, signatureEditor(e, endpoint.signature)),
      allVersions().length > 0 && [el("dt", {}, "Version"), el("dd", {}, versionEditor(e, endpoint))],
      endpoint.disabled_reason && [el("dt", {}, "Disabled because"), el("dd", {}, endpoint.disabled_reason)],
      endpoint.failing_since && [el("dt", {}, "Failing since"), el("dd", {}, when(endpoint.failing_since))]),
    ...(hmac ? [el("h3", {}, "Signing secret"), secret] : []),
    ...(ed25519 ? [el("h3", {}, "Public keys"), keys] : []),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "primary", id: "send-test", disabled: !endpoint.enabled,
        onclick: (ev) => sendTest(e, ev.target, result) }, "Send test event"),
      el("button", { type: "button", id: "toggle-endpoint", onclick: () => toggle(e, endpoint.enabled) },
        endpoint.enabled ? "Disable" : "Enable"),
      el("button", { type: "button", class: "danger", id: "delete-endpoint",
        onclick: () => confirmDialog(`Delete ${endpoint.url}? Its delivery log goes with it.`, () => remove(e)) }, "Delete")),
    skipped,
    result,
    el("div", { class: "heading" }, el("h3", {}, "Deliveries"),
      el("div", { class: "inline" },
        el("select", { id: "retry-since", "aria-label": "Failed since" },
          ...[[1, "last hour"], [24, "last 24 hours"], [168, "last 7 days"]].map(([hours, label]) =>
            el("option", { value: hours, selected: hours === 24 }, label))),
        el("button", { type: "button", id: "retry-failed",
          onclick: () => retryFailed(endpoint, Number($("retry-since").value), $("retry-since").selectedOptions[0].textContent) },
        "Retry failed"))),
    el("div", { id: "endpoint-deliveries" }, deliveryLog(deliveries, log)));
  detail.dataset.endpoint = id;
  const version = $("version");
  if (version && unsaved.version !== undefined
      && [...version.options].some((o) => o.value === unsaved.version)) {
    version.value = unsaved.version;
    version.dispatchEvent(new Event("change"));
  }
  if (unsaved.rate !== undefined && $("rate-limit")) $("rate-limit").value = unsaved.rate;
  if (hmac) showSecret(e, secret);
  detail.hidden = false;
}

// The endpoint's deliveries alone, fetched again: what a live refresh changes in the open
// endpoint, so a half-typed rate limit or a revealed secret stays as it is.
async function refreshEndpointLog() {
  const node = $("endpoint-deliveries");
  if (!node || !state.endpoint) return;
  const asked = latest("endpoint-log");
  const log = tenantPath(`/deliveries?endpoint=${state.endpoint}&limit=50`);
  const page = await api("GET", log);
  // A node an open endpoint has replaced since is detached: drawing there shows nothing.
  if (latest("endpoint-log", asked)) keepingFocus(node, deliveryLog(page, log));
}

// Replaces `node`'s children with `fresh`, putting the focus back on the same row.
function keepingFocus(node, fresh) {
  const row = document.activeElement && node.contains(document.activeElement) ? document.activeElement.dataset.delivery : null;
  node.replaceChildren(fresh);
  if (row) node.querySelector(`[data-delivery="${CSS.escape(row)}"]`)?.focus();
}

// Every delivery of the endpoint from the last `hours` that failed, due again now: the dead
// ones, and the pending ones waiting out a backoff after a failed attempt. One whose attempt is
// in flight at that moment is left to it.
function retryFailed(endpoint, hours, label) {
  confirmDialog(`Retry every failed delivery to ${endpoint.url} from the ${label}?`, async () => {
    const since = encodeURIComponent(new Date(Date.now() - hours * 3600 * 1000).toISOString());
    let retried = 0;
    for (const state_ of ["dead", "pending"]) {
      const path = tenantPath(`/deliveries?endpoint=${endpoint.id}&state=${state_}&since=${since}&limit=100`);
      for (let page = await api("GET", path); ; ) {
        for (const d of page.data.filter((d) => d.attempt_count > 0)) {
          try {
            await api("POST", tenantPath(`/deliveries/${d.id}/retry`));
            retried += 1;
          } catch (error) {
            if (error.status !== 409) throw error;
          }
        }
        if (!page.next) break;
        page = await api("GET", `${path}&after=${encodeURIComponent(page.next)}`);
      }
    }
    toast(retried ? `${retried} failed deliver${retried === 1 ? "y" : "ies"} retried` : `Nothing failed in the ${label}`);
    await refreshEndpointLog();
  }, "Retry");
}

// The endpoint's rate limit, with a small form to change or remove it.
function rateLimitEditor(path, limit) {
  const input = el("input", { id: "rate-limit", type: "number", min: "1", max: "100000", step: "1",
    inputmode: "numeric", placeholder: "No limit", "aria-label": "Rate limit, deliveries per second" });
  input.value = limit ?? "";
  input.dataset.drawn = input.value;
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
      el("div", { class: "secret" }, el("code", { class: "public-key" }, key.public_key),
        el("button", { type: "button", class: "copy-key", "aria-label": `Copy public key ${key.kid}`,
          onclick: () => copy(key.public_key, "Public key copied") }, "Copy")),
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

// The signing secret: hidden until revealed, and kept revealed (across refreshes and tests)
// until hidden again; while rotating, the old secrets too, with when they stop signing.
async function showSecret(path, node, fetched) {
  const shown = state.revealed.has(state.endpoint);
  const secret = fetched || (shown ? await api("GET", `${path}/secret`) : null);
  const value = el("code", { id: "secret-value" }, secret ? secret.secret : "whsec_••••••••••••••••••••••••");
  node.replaceChildren(
    el("div", { class: "secret" }, value,
      el("button", { type: "button", id: "reveal-secret", "aria-pressed": shown ? "true" : "false", onclick: () => {
        if (shown) state.revealed.delete(state.endpoint); else state.revealed.add(state.endpoint);
        showSecret(path, node);
      } }, shown ? "Hide" : "Reveal"),
      el("button", { type: "button", id: "copy-secret", onclick: async () => {
        copy((secret || await api("GET", `${path}/secret`)).secret, "Secret copied");
      } }, "Copy"),
      el("button", { type: "button", id: "rotate-secret", onclick: async () => {
        const rotated = await api("POST", `${path}/secret/rotate`);
        state.revealed.add(state.endpoint);
        showSecret(path, node, rotated);
        toast("Secret rotated: the old one keeps signing for 24 hours");
      } }, "Rotate")),
    ...(secret ? secret.previous : []).map((old) => el("div", { class: "key previous" },
      el("code", {}, old.secret),
      el("small", { class: "muted" }, `previous secret, signs until ${when(old.expires_at)}`))));
}

async function copy(text, done) {
  try {
    await navigator.clipboard.writeText(text);
    toast(done);
  } catch {
    toast("The browser refused the clipboard: select the text and copy it");
  }
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
  const deliver = !enabled && Boolean($("deliver-skipped")?.checked);
  await api("PATCH", path, { enabled: !enabled, ...(deliver ? { deliver_skipped: true } : {}) });
  toast(enabled ? "Endpoint disabled — what it misses is kept as skipped"
    : deliver ? "Endpoint enabled; the skipped deliveries go now, in order" : "Endpoint enabled");
  await loadEndpoints();
}

// For a disabled endpoint: how many deliveries it skipped, and the choice to send them when
// it is enabled (checked: nothing a receiver missed is dropped unless the user says so).
function skippedChoice(node, page) {
  const count = page.data.length;
  if (!count) return;
  const more = page.next ? " or more" : "";
  node.replaceChildren(el("label", { class: "check" },
    el("input", { type: "checkbox", id: "deliver-skipped", checked: true }),
    `On enabling, also send the ${count}${more} deliver${count === 1 && !more ? "y" : "ies"} skipped while disabled, in order`));
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
  el("span", { class: "main" },
    el("span", { class: "title" }, d.event_type, d.test ? el("span", { class: "badge test" }, "test") : null),
    el("span", { class: "sub endpoint" }, `to ${state.urls.get(d.endpoint_id) || d.endpoint_id}`)),
  el("span", { class: "sub hide-small" }, `${d.attempt_count} attempt${d.attempt_count === 1 ? "" : "s"}`),
  el("span", { class: `badge ${d.state}` }, d.state)));
  return list;
}

async function openDelivery(id) {
  const d = await api("GET", tenantPath(`/deliveries/${id}`));
  const body = $("attempt-body");
  $("attempt-title").textContent = `${d.event_type}${d.event.test ? " (test)" : ""} · ${d.state}`;
  // A success may be sent again, as a secondary action; a failure's main action is a retry.
  const resend = d.state === "succeeded";
  const sentPayload = d.sent ? d.sent.payload : d.event.payload; // what the receiver was sent
  const retry = el("button", { type: "button", class: resend ? "" : "primary", id: "retry-delivery", onclick: async () => {
    retry.disabled = true;
    try {
      await api("POST", tenantPath(`/deliveries/${id}/retry`));
      toast("Retrying now");
      setTimeout(() => openDelivery(id).then(refresh), 800);
    } catch (error) {
      toast(problemText(error));
      retry.disabled = false;
    }
  } }, resend ? "Resend" : d.state === "skipped" ? "Send now" : "Retry now");
  body.replaceChildren(
    el("dl", { class: "facts" },
      el("dt", {}, "Delivery"), el("dd", { class: "mono" }, d.id),
      el("dt", {}, "Event (webhook-id)"), el("dd", { class: "mono" }, d.event.id),
      el("dt", {}, "Endpoint"), el("dd", {}, state.urls.get(d.endpoint_id) || d.endpoint_id),
      el("dt", {}, "Next attempt"), el("dd", {}, d.next_attempt_at ? when(d.next_attempt_at) : "—")),
    el("div", { class: "actions" }, retry),
    el("div", { class: "heading" }, el("h3", {}, d.sent ? `Payload sent (version ${d.sent.version})` : "Payload"),
      el("button", { type: "button", id: "copy-payload", onclick: () => copy(JSON.stringify(sentPayload, null, 2), "Payload copied") }, "Copy")),
    d.sent && el("p", { class: "muted" }, `The endpoint receives version ${d.sent.version}: the event's payload (version ${d.event.version}) converted.`),
    scrollable("Payload", JSON.stringify(sentPayload, null, 2), { class: "payload" }),
    ...(d.attempts.length === 0 ? [el("p", { class: "muted" }, "No attempt yet.")] : []),
    ...[...d.attempts].reverse().map((a) => el("section", { class: "attempt", "data-attempt": a.number },
      el("div", { class: "heading" },
        el("strong", {}, `Attempt ${a.number} · ${when(a.started_at)} · ${a.duration_ms} ms`),
        el("span", { class: `badge ${a.succeeded ? "succeeded" : "failed"}` },
          a.status_code ? `HTTP ${a.status_code}` : "No response")),
      a.error ? el("p", { class: "error" }, a.error) : null,
      el("div", { class: "two" },
        el("div", {}, el("h3", {}, "Request headers"), scrollable(`Request headers of attempt ${a.number}`, headerText(a.request_headers))),
        el("div", {}, el("h3", {}, "Response headers"), scrollable(`Response headers of attempt ${a.number}`, headerText(a.response_headers) || "—"))),
      el("h3", {}, "Response body"),
      scrollable(`Response body of attempt ${a.number}`, a.response_excerpt || "—"))));
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
  const event = $("filter-event").value.trim();
  if (event) params.set("event", event);
  const log = tenantPath(`/deliveries?${params}`);
  const asked = latest("activity");
  const [stats, deliveries, endpoints] = await Promise.all([
    api("GET", tenantPath("/stats?hours=24")), api("GET", log), api("GET", tenantPath("/endpoints?limit=100"))]);
  if (!latest("activity", asked)) return;
  for (const e of endpoints.data) state.urls.set(e.id, e.url);
  drawChart(stats.hours);
  keepingFocus($("activity-log"), deliveryLog(deliveries, log));
}

const attempts = (n) => `${n} attempt${n === 1 ? "" : "s"}`;

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
    el("span", {}, el("i", { class: "legend-ok" }), `${attempts(total("succeeded"))} succeeded`),
    el("span", {}, el("i", { class: "legend-bad" }), `${attempts(total("failed"))} failed`),
    el("span", {}, el("i", { class: "legend-latency" }), `mean latency (peak ${Math.round(slowest)} ms)`));
}

// ---- live ----------------------------------------------------------------------------------

// Fetches the open view again: Activity whole, the endpoint list and the open endpoint's log.
async function refreshLive() {
  const current = document.querySelector("#tabs [aria-current]");
  const view = current ? current.dataset.view : "";
  if (view === "activity") await loadActivity();
  else if (view === "endpoints") await Promise.all([loadEndpoints(false), refreshEndpointLog()]);
  else return;
  live.updated = Date.now();
  showLiveStatus();
}

function showLiveStatus() {
  const seconds = Math.max(0, Math.round((Date.now() - live.updated) / 1000));
  $("live-status").textContent = live.paused ? "Paused" : live.updated ? `Updated ${seconds} s ago` : "";
}

function startLive() {
  const toggle = $("live-toggle");
  toggle.addEventListener("click", () => {
    live.paused = !live.paused;
    toggle.textContent = live.paused ? "Resume" : "Pause";
    toggle.setAttribute("aria-pressed", String(live.paused));
    showLiveStatus();
  });
  setInterval(() => {
    const busy = live.paused || document.hidden || !state.token || $("attempt-dialog").open || $("confirm-dialog").open
      || $("filter-dialog").open || !$("endpoint-form").hidden;
    if (!busy) refreshLive().catch(() => {});
  }, live.every);
  setInterval(showLiveStatus, 1000);
}

// ---- event types ---------------------------------------------------------------------------

function loadTypes() {
  $("type-list").replaceChildren(...state.types.map((type) => el("article", { class: "card type" },
    el("div", { class: "heading" }, el("h2", {}, type.name),
      type.version && el("span", { class: "badge" }, `Version ${type.version}`),
      type.operational && el("span", { class: "badge" }, "Operational")),
    el("p", {}, type.description || type.summary),
    el("div", { class: "two" },
      el("div", {}, el("h3", {}, type.example_declared ? "Example" : "Example (from the schema)"),
        scrollable(`Example of ${type.name}`, JSON.stringify(type.example, null, 2))),
      el("div", {}, el("h3", {}, "Schema"), scrollable(`Schema of ${type.name}`, JSON.stringify(type.schema, null, 2)))),
    ...olderVersions(type))));
}

// A versioned type's older versions, newest first, each with its example, schema and what it
// is converted from.
function olderVersions(type) {
  const older = type.versions.slice(0, -1).reverse();
  if (!older.length) return [];
  return [el("h3", {}, "Older versions"), ...older.map((v) => el("details", { class: "version", "data-version": v.version },
    el("summary", {}, `${v.version} — ${v.body_schema}`),
    el("div", { class: "two" },
      el("div", {}, el("h3", {}, "Example"), scrollable(`Example of ${type.name} ${v.version}`, JSON.stringify(v.example, null, 2))),
      el("div", {}, el("h3", {}, "Schema"), scrollable(`Schema of ${type.name} ${v.version}`, JSON.stringify(v.schema, null, 2))))))];
}

// Every version any event type declares, oldest first: what an endpoint may pin.
function allVersions() {
  return [...new Set(state.types.flatMap((t) => t.versions.map((v) => v.version)))].sort();
}

// The version of `type` an endpoint pinned to `pin` receives: the newest on or before it (the
// oldest if the pin is before them all; the newest with no pin).
function resolvedVersion(type, pin) {
  const versions = type.versions.map((v) => v.version);
  if (!pin) return versions[versions.length - 1];
  return versions.filter((v) => v <= pin).pop() || versions[0];
}

// The version the endpoint pins, what that means for each versioned type it receives, and a
// way to move it.
function versionEditor(path, endpoint) {
  const versions = allVersions();
  const types = state.types.filter((t) => t.versions.length
    && (!endpoint.event_types.length || endpoint.event_types.includes(t.name)));
  const select = el("select", { id: "version", "aria-label": "Version pinned" },
    ...(endpoint.version ? [] : [el("option", { value: "", selected: true }, "Always the newest")]),
    ...versions.map((v) => el("option", { value: v, selected: v === endpoint.version },
      v === versions[versions.length - 1] ? `${v} (newest)` : v)));
  select.dataset.drawn = select.value;
  const move = el("button", { type: "button", id: "move-version", disabled: true }, "Move");
  select.addEventListener("change", () => { move.disabled = select.value === (endpoint.version || ""); });
  move.addEventListener("click", () => {
    const to = select.value;
    const newer = !endpoint.version || to > endpoint.version;
    confirmDialog(`Move ${endpoint.url} to version ${to}? Events accepted from now on are sent in ${newer ? "the newer" : "the older"} bodies; check the receiver reads them first.`, async () => {
      try {
        await api("PATCH", path, { version: to });
        toast(`Moved to version ${to}`);
      } catch (problem) {
        toast(problemText(problem));
      }
      await openEndpoint(state.endpoint);
    }, "Move");
  });
  const receives = types.map((t) => {
    const got = resolvedVersion(t, endpoint.version);
    const newest = t.versions[t.versions.length - 1].version;
    return el("li", {}, `${t.name}: ${got}`, got === newest ? "" : el("span", { class: "muted" }, ` (newest: ${newest})`));
  });
  return el("div", {}, el("div", { class: "inline" }, select, move),
    receives.length ? el("ul", { class: "plain", id: "version-receives" }, ...receives) : "");
}

// A block of text that may scroll, reachable (and scrollable) by keyboard.
function scrollable(label, text, attrs = {}) {
  return el("pre", { tabindex: "0", "aria-label": label, ...attrs }, text);
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
  $("preview-filter").addEventListener("click", () => previewFilter($("endpoint-filter").value,
    [...document.querySelectorAll("#endpoint-types input:checked")].map((i) => i.value), $("filter-preview")));
  $("filter-state").addEventListener("change", loadActivity);
  $("filter-type").addEventListener("change", loadActivity);
  $("filter-event").addEventListener("change", loadActivity);
  startLive();
  $("attempt-dialog").addEventListener("close", refresh);
  start();
});
