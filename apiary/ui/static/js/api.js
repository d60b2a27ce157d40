// Talking to Apiary: the UI's own /ui/api endpoints and the Honeycomb-compatible APIs.

const KEY_STORAGE = "apiary.key";
const ENV_STORAGE = "apiary.env";

export const session = { auth: "none", environments: [], env: null };

export function storedKey() { return localStorage.getItem(KEY_STORAGE) || ""; }
export function storeKey(key) { if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE); }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** fetch JSON; adds the key in key mode and the env parameter for /ui/api calls. */
export async function api(path, { method = "GET", body, env = session.env, query = {} } = {}) {
  const url = new URL(path, location.origin);
  if (env && (path.startsWith("/ui/api/")) && !url.searchParams.has("env")) url.searchParams.set("env", env);
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  const headers = { "X-Apiary-UI": "1" };
  const key = storedKey();
  if (key) headers["X-Honeycomb-Team"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
  if (!resp.ok) throw new ApiError(resp.status, (doc && doc.error) || `${resp.status} ${resp.statusText}`);
  return doc;
}

export function currentEnv() {
  const fromUrl = new URLSearchParams(location.search).get("env");
  const envs = session.environments;
  if (fromUrl && envs.includes(fromUrl)) return fromUrl;
  const remembered = localStorage.getItem(ENV_STORAGE);
  if (remembered && envs.includes(remembered)) return remembered;
  return envs[0] || null;
}

export function rememberEnv(env) { localStorage.setItem(ENV_STORAGE, env); }

/** A same-origin link carrying the current environment. */
export function link(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  if (session.env && !url.searchParams.has("env")) url.searchParams.set("env", session.env);
  return url.pathname + url.search;
}
