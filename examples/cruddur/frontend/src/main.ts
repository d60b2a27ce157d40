import { SpanStatusCode } from '@opentelemetry/api';
import { loadConfig } from './config';
import { flush, setupTracing } from './tracing';

interface Activity {
  uuid: string;
  handle: string;
  message: string;
  created_at?: string;
  expires_at?: string;
  likes_count?: number;
  replies?: Activity[];
}

const cfg = loadConfig();
const tracer = setupTracing(cfg);

/** Page: home feed, or a user's page at /@handle, ?user=handle or ?handle=handle. */
function route(): { page: 'home' } | { page: 'user'; handle: string } {
  const m = location.pathname.match(/^\/@([^/]+)\/?$/);
  const q = new URLSearchParams(location.search);
  const handle = m ? decodeURIComponent(m[1]) : q.get('user') || q.get('handle');
  return handle ? { page: 'user', handle } : { page: 'home' };
}

/** The signed-in user (simulated): ?as=handle, remembered in localStorage. */
function currentUser(): string | null {
  const as = new URLSearchParams(location.search).get('as');
  if (as) localStorage.setItem('cruddur.user', as);
  return as || localStorage.getItem('cruddur.user');
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function handleSlug(handle: string): string {
  return handle.replace(/\s+/g, '').toLowerCase();
}

function renderActivity(a: Activity, cls = 'activity'): HTMLElement {
  const art = el('article', cls);
  art.dataset.uuid = a.uuid;
  const who = el('a', 'handle', a.handle);
  who.href = `/@${encodeURIComponent(handleSlug(a.handle))}`;
  art.append(who, el('p', 'message', a.message));
  if (a.created_at) art.append(el('time', 'created_at', new Date(a.created_at).toLocaleString()));
  if (a.replies && a.replies.length) {
    const replies = el('div', 'replies');
    for (const r of a.replies) replies.append(renderActivity(r, 'reply'));
    art.append(replies);
  }
  return art;
}

async function load(): Promise<void> {
  const r = route();
  const user = currentUser();
  const feed = document.getElementById('feed')!;
  const status = document.getElementById('status')!;
  const title = document.getElementById('page-title')!;
  title.textContent = r.page === 'home' ? 'Home' : `@${r.handle}`;
  document.body.dataset.page = r.page;
  feed.dataset.state = 'loading';
  status.textContent = 'Loading…';

  const path = r.page === 'home' ? '/api/activities/home' : `/api/activities/@${encodeURIComponent(r.handle)}`;
  const passthrough = new URLSearchParams(location.search);
  const q = new URLSearchParams();
  for (const k of ['slow', 'fail']) {
    const v = passthrough.get(k);
    if (v) q.set(k, v);
  }
  const url = cfg.backendUrl + path + (q.toString() ? `?${q}` : '');

  // One span per page load; the fetch span (and backend-flask's spans) are its children.
  await tracer.startActiveSpan(r.page === 'home' ? 'load-home-feed' : 'load-user-feed', async (span) => {
    span.setAttribute('app.page', r.page);
    if (r.page === 'user') span.setAttribute('app.handle', r.handle);
    if (user) span.setAttribute('app.user_id', user);
    try {
      const headers: Record<string, string> = {};
      if (user) headers['X-Cruddur-User'] = user;
      const res = await fetch(url, { headers });
      const body = await res.json().catch(() => null);
      span.setAttribute('app.status_code', res.status);
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body)}`);
      const items = (body as Activity[]) || [];
      span.setAttribute('app.result_length', items.length);
      feed.replaceChildren(...items.map((a) => renderActivity(a)));
      feed.dataset.state = 'loaded';
      status.textContent = items.length ? '' : 'Nothing here yet.';
    } catch (e) {
      span.recordException(e as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(e) });
      feed.replaceChildren();
      feed.dataset.state = 'error';
      status.textContent = `Could not load: ${String(e)}`;
    } finally {
      span.end();
    }
  });
  await flush();
}

void load();
