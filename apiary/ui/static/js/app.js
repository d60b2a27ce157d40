// Boot: learn the auth mode, ask for a key when one is needed, pick the environment, render the page for this path.
import { h, clear, setChildren } from "./dom.js";
import { api, session, storedKey, storeKey, currentEnv, rememberEnv, link, ApiError } from "./api.js";

const PAGES = [
  [/^\/$/, "home", () => import("./home.js")],
  [/^\/trace\/([^/]+)$/, "trace", () => import("./trace.js")],
  [/^\/traces$/, "traces", () => import("./traces.js")],
  [/^\/compare\/([^/]+)\/([^/]+)$/, "traces", () => import("./compare.js")],
  [/^\/query$/, "query", () => import("./query.js")],
  [/^\/services$/, "services", () => import("./services.js")],
  [/^\/history$/, "history", () => import("./history.js")],
  [/^\/settings$/, "settings", () => import("./settings.js")],
  [/^\/logs$/, "logs", () => import("./logs.js")],
  [/^\/errors$/, "errors", () => import("./errors.js")],
  [/^\/errors\/(\d+)$/, "errors", () => import("./errors.js")],
  [/^\/xray$/, "xray", () => import("./xray.js")],
  [/^\/metrics$/, "metrics", () => import("./metrics.js")],
  [/^\/runs$/, "runs", () => import("./runs.js")],
];

const main = document.getElementById("main");

function loginForm(message) {
  const input = h("input", { type: "password", placeholder: "API key (X-Honeycomb-Team)", autocomplete: "off", id: "key-input" });
  const form = h("form", { class: "panel login" },
    h("h1", null, "Sign in to Apiary"),
    h("p", { class: "muted" }, "This server listens beyond this machine, so the UI needs a read key. " +
      "It is kept in this browser only and sent as X-Honeycomb-Team."),
    message ? h("p", { class: "error-text" }, message) : null,
    input,
    h("button", { class: "primary", type: "submit" }, "Continue"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    storeKey(input.value.trim());
    location.reload();
  });
  setChildren(main, form);
  input.focus();
}

function setupChrome(pageName) {
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.page === pageName);
    a.href = link(new URL(a.href).pathname);
  }
  document.querySelector(".brand").href = link("/");
  const picker = document.getElementById("env-picker");
  clear(picker);
  for (const e of session.environments) picker.append(h("option", { value: e }, e));
  picker.value = session.env || "";
  picker.disabled = session.environments.length < 2;
  picker.addEventListener("change", () => {
    rememberEnv(picker.value);
    const url = new URL(location.href);
    url.searchParams.set("env", picker.value);
    location.href = url.pathname.startsWith("/trace/") ? link("/", { env: picker.value }) : url.toString();
  });
  const logout = document.getElementById("logout");
  if (session.auth === "key") {
    logout.hidden = false;
    logout.addEventListener("click", () => { storeKey(""); location.reload(); });
  }
}

export function showError(err) {
  const msg = err instanceof ApiError ? err.message : String(err && err.message || err);
  setChildren(main, h("div", { class: "panel" }, h("h1", null, "Something went wrong"), h("p", { class: "error-text" }, msg)));
}

async function boot() {
  let config;
  try {
    config = await api("/ui/api/config", { env: null });
  } catch (err) { showError(err); return; }
  session.auth = config.auth;
  session.environments = config.environments || [];
  if (config.auth === "key" && (!storedKey() || config.key_error || !session.environments.length)) {
    loginForm(storedKey() ? "That key is not a read key for this server." : null);
    return;
  }
  session.env = currentEnv();
  if (session.env) rememberEnv(session.env);
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const match = PAGES.map(([re, name, load]) => [re.exec(path), name, load]).find(([m]) => m);
  if (!match) { showError(new Error(`no page at ${path}`)); return; }
  const [m, name, load] = match;
  setupChrome(name);
  try {
    const mod = await load();
    await mod.render(main, { params: m.slice(1).map(decodeURIComponent), query: new URLSearchParams(location.search) });
  } catch (err) {
    console.error(err);
    showError(err);
  }
}

boot();
