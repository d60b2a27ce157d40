// The trace view: a virtualised waterfall (span tree on a shared time axis), a minimap and a span detail panel;
// the critical path (computed by the server, Jaeger's definition) drawn on the bars, search and filter inside the trace,
// stepping through its errors, and hiding spans shorter than a duration.
import { h, clear, copyButton, setChildren } from "./dom.js";
import { api, link } from "./api.js";
import { fmtDuration, fmtTime, isoMicros, serviceColour } from "./format.js";

const ROW_H = 24;
const OVERSCAN = 12;
const CORE = new Set(["timestamp", "duration_ms", "trace.trace_id", "trace.span_id", "trace.parent_id", "trace.trace_state", "name",
  "service.name", "span.kind", "status_code", "status_message", "error", "library.name", "library.version", "meta.signal_type",
  "meta.annotation_type", "parent_name", "span.num_events", "span.num_links", "meta.dataset", "trace.link.trace_id", "trace.link.span_id"]);
const RESOURCE_PREFIXES = ["service.", "telemetry.", "host.", "process.", "os.", "container.", "k8s.", "cloud.", "deployment.", "faas.",
  "device.", "webengine.", "browser."];

/** Spans -> tree nodes in depth-first order (children by start time); orphans and cycles start their own subtrees. */
export function buildTree(spans) {
  const nodes = spans.map((sp, i) => ({
    sp, i, id: sp["trace.span_id"], parentId: sp["trace.parent_id"], start: isoMicros(sp.timestamp),
    dur: Math.max(0, (sp.duration_ms || 0) * 1000), children: [], parent: null, depth: 0, desc: 0, collapsed: false,
    err: !!sp.error, service: sp["service.name"] || "", name: sp.name || "(unnamed)",
  }));
  const byId = new Map();
  for (const n of nodes) if (n.id && !byId.has(n.id)) byId.set(n.id, n);
  const roots = [];
  for (const n of nodes) {
    const p = n.parentId ? byId.get(n.parentId) : undefined;
    if (p && p !== n) { p.children.push(n); n.parent = p; } else roots.push(n);
  }
  for (const n of nodes) if (n.children.length > 1) n.children.sort((a, b) => a.start - b.start);
  roots.sort((a, b) => a.start - b.start);
  const order = [];
  const seen = new Set();
  const walk = (root, depth) => {
    const stack = [[root, depth]];
    while (stack.length) {
      const [n, d] = stack.pop();
      if (seen.has(n)) continue;
      seen.add(n);
      n.depth = d;
      order.push(n);
      for (let i = n.children.length - 1; i >= 0; i--) stack.push([n.children[i], d + 1]);
    }
  };
  for (const r of roots) walk(r, 0);
  for (const n of nodes) if (!seen.has(n)) { n.parent = null; roots.push(n); walk(n, 0); } // parent cycles
  for (let i = order.length - 1; i >= 0; i--) { const n = order[i]; if (n.parent) n.parent.desc += 1 + n.desc; }
  order.forEach((n, i) => { n.pos = i; });
  return { nodes: order, roots };
}

function niceStep(totalUs, ticks) {
  const raw = totalUs / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

function fieldValue(v) {
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function fieldsTable(entries) {
  return h("table", null, h("tbody", null, entries.map(([k, v]) => h("tr", { "data-field": k },
    h("td", { class: "k" }, k), h("td", { class: "v" }, fieldValue(v)), h("td", { class: "c" }, copyButton(() => fieldValue(v)))))));
}

function logsHref(l) {
  return link("/logs", { group: l.group, stream: l.stream, at: String(Math.floor(isoMicros(l.timestamp) / 1000)) });
}

function errorHref(e) {
  return link(`/errors/${e.item_id}`, { occurrence: String(e.id) });
}

/** The trace's log lines (from the log store), each linking to its place on the logs page. */
function logsTable(logs, t0, spanName) {
  if (!logs.length) return h("p", { class: "muted" }, "No log lines carry this trace's id.");
  return h("table", { class: "grid trace-logs" },
    h("thead", null, h("tr", null, h("th", null, "Time"), h("th", null, "Level"), h("th", null, "Message"), h("th", null, "Span"),
      h("th", null, "Log group / stream"))),
    h("tbody", null, logs.map((l) => h("tr", { "data-span-id": l.span_id || "" },
      h("td", { class: "nowrap", title: l.timestamp }, t0 !== null ? `+${fmtDuration((isoMicros(l.timestamp) - t0) / 1000)}` : fmtTime(l.timestamp)),
      h("td", null, l.level ? h("span", { class: `badge lvl lvl-${String(l.level).toLowerCase()}` }, l.level) : ""),
      h("td", { class: "msg mono" }, l.message),
      h("td", { class: "mono" }, l.span_id ? (spanName(l.span_id) || l.span_id) : ""),
      h("td", null, h("a", { class: "log-link", href: logsHref(l) }, `${l.group} / ${l.stream}`))))));
}

/** The trace's error occurrences (from the error store), each linking to its item. */
function errorsTable(errors, spanName) {
  if (!errors.length) return h("p", { class: "muted" }, "No error occurrences carry this trace's id.");
  return h("table", { class: "grid trace-errors" },
    h("thead", null, h("tr", null, h("th", null, "Time"), h("th", null, "Level"), h("th", null, "Error"), h("th", null, "Span"),
      h("th", null, "Status"))),
    h("tbody", null, errors.map((e) => h("tr", { "data-span-id": e.span_id || "", "data-item-id": String(e.item_id) },
      h("td", { class: "nowrap", title: e.timestamp }, fmtTime(e.timestamp)),
      h("td", null, h("span", { class: `badge lvl lvl-${e.level}` }, e.level)),
      h("td", null, h("a", { class: "error-link", href: errorHref(e) }, e.title || `item ${e.item_id}`)),
      h("td", { class: "mono" }, e.span_id ? (spanName(e.span_id) || e.span_id) : ""),
      h("td", null, e.item_status || "")))));
}

export async function render(main, { params, query }) {
  const traceId = params[0];
  setChildren(main, h("p", { class: "muted" }, "Loading trace…"));
  const doc = await api(`/ui/api/trace/${encodeURIComponent(traceId)}`, { env: query.get("env") || null });
  const traceLogs = doc.logs || [];
  const traceErrors = doc.errors || [];
  const logsBySpan = new Map();
  const errorsBySpan = new Map();
  for (const l of traceLogs) if (l.span_id) logsBySpan.set(l.span_id, [...(logsBySpan.get(l.span_id) || []), l]);
  for (const e of traceErrors) if (e.span_id) errorsBySpan.set(e.span_id, [...(errorsBySpan.get(e.span_id) || []), e]);
  if (!doc.spans.length) { // logs or errors of a trace whose spans never arrived here
    setChildren(main,
      h("div", { class: "trace-head" }, h("h1", null, "Trace"), h("span", { class: "muted mono trace-id" }, doc.trace_id),
        h("span", { class: "muted" }, "no spans stored for this trace")),
      h("h2", null, `Logs (${traceLogs.length})`), logsTable(traceLogs, null, () => null),
      h("h2", null, `Errors (${traceErrors.length})`), errorsTable(traceErrors, () => null));
    document.body.dataset.rendered = "trace";
    return;
  }
  const { nodes, roots } = buildTree(doc.spans);
  const t0 = Math.min(...nodes.map((n) => n.start));
  const t1 = Math.max(...nodes.map((n) => n.start + n.dur));
  const total = Math.max(t1 - t0, 1);
  const services = new Map();
  for (const n of nodes) services.set(n.service, (services.get(n.service) || 0) + 1);
  const colour = new Map([...services.keys()].map((s) => [s, serviceColour(s)]));
  const errors = nodes.filter((n) => n.err).length;
  const errorNodes = nodes.filter((n) => n.err); // depth-first order: stepping follows the tree
  const root = roots[0];
  // Critical path segments per span (absolute microseconds from the server).
  const critical = new Map();
  const cp = doc.critical_path || { span_ids: [], start_us: [], end_us: [] };
  for (let i = 0; i < cp.span_ids.length; i++) {
    const id = cp.span_ids[i];
    if (!critical.has(id)) critical.set(id, []);
    critical.get(id).push({ start_us: cp.start_us[i], end_us: cp.end_us[i] });
  }
  let showCritical = true;
  let minDurUs = 0; // spans shorter than this are hidden with their subtrees
  let searchText = "";
  let onlyMatches = false;
  let matches = []; // nodes matching searchText, depth-first order
  let matchSet = new Set();
  let matchAt = -1;
  let errorAt = -1;
  const haystacks = new Map();
  const haystack = (n) => {
    let t = haystacks.get(n);
    if (t === undefined) {
      const parts = [n.name, n.service];
      for (const [k, v] of Object.entries(n.sp)) if (k !== "events" && k !== "links" && v !== null && typeof v !== "object") parts.push(`${k}=${v}`);
      t = parts.join("\n").toLowerCase();
      haystacks.set(n, t);
    }
    return t;
  };

  let visible = [];
  let selected = null;
  let lastDraw = null;

  // -- layout ------------------------------------------------------------------------------------
  const minimapCanvas = h("canvas");
  const minimapView = h("div", { class: "viewport" });
  const minimap = h("div", { class: "minimap", title: "Minimap: click or drag to scroll" }, minimapCanvas, minimapView);
  const ticks = h("div", { class: "ticks" });
  const axis = h("div", { class: "wf-axis" }, h("div", { class: "names" }, "Span"), ticks);
  const rowsEl = h("div", { class: "wf-rows" });
  const spacer = h("div", { class: "wf-spacer" }, rowsEl);
  const scroller = h("div", { class: "wf-scroll", tabindex: "0" }, spacer);
  const detail = h("aside", { class: "detail" }, h("p", { class: "muted" }, "Select a span to see all its fields."));
  const head = h("div", { class: "trace-head" },
    h("h1", null, root ? root.name : "Trace"),
    h("span", { class: "muted mono trace-id" }, doc.trace_id),
    h("span", null, fmtDuration(total / 1000)),
    h("span", { class: "span-count" }, `${nodes.length} spans`),
    errors ? h("span", { class: "badge err" }, `${errors} error${errors > 1 ? "s" : ""}`) : null,
    h("span", { class: "muted" }, fmtTime(root && root.sp.timestamp)),
    critical.size ? h("span", { class: "cp-legend", title: "Spans on the critical path: what held the trace up" },
      h("span", { class: "cp-swatch" }), `critical path: ${critical.size} span${critical.size > 1 ? "s" : ""}`) : null,
    h("span", { class: "legend" }, [...services].map(([s, c]) =>
      h("span", { class: "legend-item" }, h("span", { class: "swatch", style: { background: colour.get(s) } }), `${s} (${c})`))));
  const cpBox = h("input", { type: "checkbox", id: "show-critical", checked: true });
  cpBox.addEventListener("change", () => { showCritical = cpBox.checked; lastDraw = null; draw(); });
  const searchBox = h("input", { type: "search", id: "trace-search", placeholder: "Find spans: name, service or attribute text" });
  const onlyBox = h("input", { type: "checkbox", id: "only-matches" });
  const minDurBox = h("input", { type: "number", id: "min-duration", min: "0", step: "any", placeholder: "0", class: "narrow" });
  const toolbar = h("div", { class: "toolbar" },
    h("button", { type: "button", id: "jump-root", onclick: () => jumpTo(root) }, "Jump to root"),
    h("button", { type: "button", id: "first-span", onclick: () => jumpTo(nodes.reduce((a, b) => (b.start < a.start ? b : a))) }, "First span"),
    h("button", { type: "button", id: "last-span", onclick: () => jumpTo(nodes.reduce((a, b) => (b.start + b.dur > a.start + a.dur ? b : a))) }, "Last span"),
    h("button", { type: "button", id: "expand-all", onclick: () => { for (const n of nodes) n.collapsed = false; refresh(); } }, "Expand all"),
    h("button", { type: "button", id: "collapse-all", onclick: () => { for (const n of nodes) n.collapsed = n.children.length > 0 && n.depth >= 0; refresh(); } }, "Collapse all"),
    h("label", { class: "cp-toggle" }, cpBox, " critical path"),
    h("span", { class: "grow" }),
    h("span", { class: "muted" }, doc.environment),
    copyButton(() => location.href, "copy link"));
  const finder = h("div", { class: "toolbar trace-finder" },
    searchBox, h("span", { class: "match-count muted" }),
    h("button", { type: "button", id: "prev-match", class: "small", onclick: () => stepMatch(-1) }, "◀"),
    h("button", { type: "button", id: "next-match", class: "small", onclick: () => stepMatch(1) }, "▶"),
    h("label", null, onlyBox, " only matches"),
    h("span", { class: "sep" }),
    h("span", { class: "error-step muted" }, errors ? `${errors} error${errors > 1 ? "s" : ""}` : "no errors"),
    h("button", { type: "button", id: "prev-error", class: "small", disabled: !errors, onclick: () => stepError(-1) }, "◀ error"),
    h("button", { type: "button", id: "next-error", class: "small", disabled: !errors, onclick: () => stepError(1) }, "error ▶"),
    h("span", { class: "sep" }),
    h("label", { title: "Hide spans shorter than this (and what is under them)" }, "hide spans under ", minDurBox, " ms"));
  const waterfall = h("section", { class: "waterfall" }, minimap, axis, scroller);
  const spanName = (id) => { const n = nodes.find((x) => x.id === id); return n ? n.name : null; };
  const layout = h("div", { class: "trace-layout" }, waterfall, detail);
  const logsPanel = h("section", { class: "panel trace-logs-panel", hidden: true }, logsTable(traceLogs, t0, spanName));
  const errorsPanel = h("section", { class: "panel trace-errors-panel", hidden: true }, errorsTable(traceErrors, spanName));
  const tabs = { spans: layout, logs: logsPanel, errors: errorsPanel };
  const tabButtons = {
    spans: h("button", { type: "button", id: "tab-spans", class: "tab" }, `Spans (${nodes.length})`),
    logs: h("button", { type: "button", id: "tab-logs", class: "tab" }, `Logs (${traceLogs.length})`),
    errors: h("button", { type: "button", id: "tab-errors", class: "tab" }, `Errors (${traceErrors.length})`),
  };
  function showTab(name) {
    for (const [k, el] of Object.entries(tabs)) el.hidden = k !== name;
    toolbar.hidden = finder.hidden = name !== "spans";  // they act on the waterfall only
    for (const [k, b] of Object.entries(tabButtons)) b.classList.toggle("active", k === name);
    const url = new URL(location.href);
    if (name === "spans") url.searchParams.delete("tab"); else url.searchParams.set("tab", name);
    history.replaceState(null, "", url);
    if (name === "spans") refresh();
  }
  for (const [k, b] of Object.entries(tabButtons)) b.addEventListener("click", () => showTab(k));
  setChildren(main, head, h("div", { class: "tabs" }, Object.values(tabButtons)), toolbar, finder, layout, logsPanel, errorsPanel);

  // -- axis ----------------------------------------------------------------------------------------
  const step = niceStep(total, 6);
  for (let t = 0; t <= total + 1; t += step) {
    ticks.append(h("span", { class: "tick", style: { left: `${(t / total) * 100}%` } }, fmtDuration(t / 1000)));
  }

  // -- rows ----------------------------------------------------------------------------------------
  /** With "only matches", the matching spans and their ancestors; otherwise null (every span). */
  function keptByFilter() {
    if (!onlyMatches || !searchText) return null;
    const keep = new Set();
    for (const m of matches) for (let p = m; p && !keep.has(p); p = p.parent) keep.add(p);
    return keep;
  }

  function computeVisible() {
    visible = [];
    const keep = keptByFilter();
    const stack = roots.slice().reverse();
    while (stack.length) {
      const n = stack.pop();
      if (keep && !keep.has(n)) continue;
      visible.push(n);
      n.shortHidden = 0;
      if (n.collapsed) continue;
      for (let i = n.children.length - 1; i >= 0; i--) {
        const c = n.children[i];
        if (minDurUs > 0 && c.dur < minDurUs && !(keep && matchSet.has(c))) { n.shortHidden += 1 + c.desc; continue; }
        stack.push(c);
      }
    }
    visible.forEach((n, i) => { n.row = i; });
    for (const n of nodes) if (!visible[n.row] || visible[n.row] !== n) n.row = -1;
    spacer.style.height = `${visible.length * ROW_H}px`;
  }

  function rowEl(n) {
    const left = ((n.start - t0) / total) * 100;
    const width = (n.dur / total) * 100;
    const c = colour.get(n.service);
    const toggle = n.children.length
      ? h("button", { class: "toggle", type: "button", title: n.collapsed ? "Expand" : "Collapse", "aria-expanded": String(!n.collapsed) },
        n.collapsed ? "▶" : "▼")
      : h("span", { class: "toggle" });
    if (n.children.length) toggle.addEventListener("click", (ev) => { ev.stopPropagation(); n.collapsed = !n.collapsed; refresh(); });
    const lane = h("div", { class: "lane" },
      h("div", { class: n.err ? "bar error" : "bar", style: { left: `${left}%`, width: `${width}%`, background: c } }),
      h("span", { class: "dur", style: { left: `calc(${left + width}% + 4px)` } }, fmtDuration(n.dur / 1000)));
    const segs = showCritical ? critical.get(n.id) : null;
    if (segs) for (const seg of segs) {
      lane.append(h("div", { class: "cp-seg", title: `critical path: ${fmtDuration((seg.end_us - seg.start_us) / 1000)}`,
        style: { left: `${((seg.start_us - t0) / total) * 100}%`, width: `${Math.max(((seg.end_us - seg.start_us) / total) * 100, 0.15)}%` } }));
    }
    const events = n.sp.events || [];
    for (let i = 0; i < Math.min(events.length, 20); i++) {
      const at = ((isoMicros(events[i].timestamp) - t0) / total) * 100;
      lane.append(h("span", { class: "event", title: events[i].name || "event", style: { left: `${at}%` } }));
    }
    const row = h("div", {
      class: ["wf-row", n === selected ? "selected" : "", segs ? "critical" : "", matchSet.has(n) ? "match" : ""].filter(Boolean).join(" "),
      style: { top: `${n.row * ROW_H}px` },
      "data-span-id": n.id || "", "data-depth": String(n.depth),
    },
    h("div", { class: "names", style: { paddingLeft: `${4 + n.depth * 14}px` } }, toggle,
      h("span", { class: "swatch", style: { background: c } }),
      h("span", { class: "span-name" }, n.name),
      n.collapsed && n.desc ? h("span", { class: "kids" }, `+${n.desc}`) : null,
      !n.collapsed && n.shortHidden ? h("span", { class: "kids short", title: "spans hidden: shorter than the threshold" }, `+${n.shortHidden} short`) : null,
      n.err ? h("span", { class: "err-mark", title: "error" }, "!") : null,
      logsBySpan.has(n.id) ? h("span", { class: "log-mark", title: `${logsBySpan.get(n.id).length} log line(s)` }, `L${logsBySpan.get(n.id).length}`) : null,
      errorsBySpan.has(n.id) ? h("span", { class: "error-mark", title: `${errorsBySpan.get(n.id).length} error occurrence(s)` },
        `E${errorsBySpan.get(n.id).length}`) : null,
      h("span", { class: "svc" }, n.service)),
    lane);
    row.addEventListener("click", () => select(n));
    return row;
  }

  function draw() {
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(visible.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const key = `${first}:${last}:${visible.length}`;
    if (key !== lastDraw) {
      lastDraw = key;
      const frag = document.createDocumentFragment();
      for (let i = first; i < last; i++) {
        const el = rowEl(visible[i]);
        el.style.position = "absolute";
        el.style.left = "0";
        el.style.right = "0";
        frag.append(el);
      }
      rowsEl.replaceChildren(frag);
    }
    const n = visible.length || 1;
    minimapView.style.top = `${(top / ROW_H / n) * 100}%`;
    minimapView.style.height = `${Math.max(2, Math.min(100, (height / ROW_H / n) * 100))}%`;
  }

  function drawMinimap() {
    const w = minimap.clientWidth || 800;
    const hgt = minimap.clientHeight || 46;
    const dpr = window.devicePixelRatio || 1;
    minimapCanvas.width = w * dpr;
    minimapCanvas.height = hgt * dpr;
    const ctx = minimapCanvas.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, w, hgt);
    const n = visible.length || 1;
    const rowH = Math.max(hgt / n, 0.5);
    for (let i = 0; i < visible.length; i++) {
      const s = visible[i];
      ctx.fillStyle = s.err ? "#d92d20" : colour.get(s.service);
      ctx.fillRect(((s.start - t0) / total) * w, (i / n) * hgt, Math.max((s.dur / total) * w, 1), Math.max(rowH - (rowH > 3 ? 1 : 0), 0.5));
    }
  }

  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  function refresh() {
    computeVisible();
    lastDraw = null;
    draw();
    drawMinimap();
  }

  function scrollToRow(row) {
    const height = scroller.clientHeight || 600;
    const top = row * ROW_H;
    if (top < scroller.scrollTop || top + ROW_H > scroller.scrollTop + height) scroller.scrollTop = Math.max(0, top - height / 3);
  }

  function jumpTo(n) {
    if (!n) return;
    let changed = false;
    for (let p = n.parent; p; p = p.parent) if (p.collapsed) { p.collapsed = false; changed = true; }
    if (changed) refresh();
    if (n.row < 0 && minDurUs > 0) { minDurUs = 0; minDurBox.value = ""; refresh(); } // hidden as short: show everything again
    if (n.row < 0 && onlyMatches) { onlyMatches = false; onlyBox.checked = false; refresh(); }
    scrollToRow(n.row);
    select(n);
  }

  function select(n) {
    selected = n;
    lastDraw = null;
    draw();
    renderDetail(n);
    const url = new URL(location.href);
    if (n.id) url.searchParams.set("span", n.id); else url.searchParams.delete("span");
    history.replaceState(null, "", url);
  }

  function renderDetail(n) {
    const sp = n.sp;
    const core = [], attrs = [], resource = [];
    for (const [k, v] of Object.entries(sp)) {
      if (k === "events" || k === "links") continue;
      if (CORE.has(k)) core.push([k, v]);
      else if (RESOURCE_PREFIXES.some((p) => k.startsWith(p))) resource.push([k, v]);
      else attrs.push([k, v]);
    }
    attrs.sort((a, b) => a[0].localeCompare(b[0]));
    resource.sort((a, b) => a[0].localeCompare(b[0]));
    const events = sp.events || [];
    const links = sp.links || [];
    const parent = n.parent;
    const spanLogs = logsBySpan.get(n.id) || [];
    const spanErrors = errorsBySpan.get(n.id) || [];
    setChildren(detail,
      h("h2", { class: "detail-name" }, n.name),
      h("div", { class: "toolbar" },
        h("span", null, h("span", { class: "swatch", style: { background: colour.get(n.service) } }), n.service),
        h("span", { class: "detail-duration" }, fmtDuration(n.dur / 1000)),
        h("span", { class: "muted" }, `starts at +${fmtDuration((n.start - t0) / 1000)}`),
        n.err ? h("span", { class: "badge err" }, "error") : null),
      h("div", { class: "toolbar" },
        parent ? h("button", { type: "button", class: "small", onclick: () => jumpTo(parent) }, "Parent") : null,
        copyButton(() => JSON.stringify(sp, null, 2), "copy span as JSON")),
      spanLogs.length || spanErrors.length ? h("div", { class: "span-signals" },
        spanErrors.length ? [h("h3", null, `Errors (${spanErrors.length})`), spanErrors.map((e) => h("div", { class: "event-block" },
          h("a", { class: "error-link", href: errorHref(e) }, e.title || `item ${e.item_id}`)))] : null,
        spanLogs.length ? [h("h3", null, `Logs (${spanLogs.length})`), spanLogs.slice(0, 50).map((l) => h("div", { class: "event-block" },
          h("a", { class: "log-link mono", href: logsHref(l) }, l.message)))] : null) : null,
      h("h3", null, "Span"), fieldsTable(core),
      h("h3", null, `Attributes (${attrs.length})`), attrs.length ? fieldsTable(attrs) : h("p", { class: "muted" }, "none"),
      h("h3", null, `Resource (${resource.length})`), resource.length ? fieldsTable(resource) : h("p", { class: "muted" }, "none"),
      h("h3", null, `Events (${events.length})`),
      h("div", { class: "events" }, events.map((ev) => h("div", { class: "event-block" },
        h("div", null, h("strong", null, ev.name || "event"), h("span", { class: "muted" },
          `  +${fmtDuration((isoMicros(ev.timestamp) - t0) / 1000)}`)),
        fieldsTable(Object.entries(ev).filter(([k]) => !["events", "links", "trace.trace_id", "trace.parent_id", "meta.annotation_type",
          "meta.signal_type", "duration_ms", "service.name", "meta.dataset"].includes(k)))))),
      h("h3", null, `Links (${links.length})`),
      h("div", { class: "links" }, links.map((l) => h("div", { class: "event-block" },
        l["trace.link.trace_id"] ? h("a", { href: link(`/trace/${l["trace.link.trace_id"]}`) }, `trace ${l["trace.link.trace_id"]}`) : null,
        fieldsTable(Object.entries(l).filter(([k]) => !["events", "links", "meta.annotation_type", "meta.signal_type"].includes(k)))))));
  }

  // -- search, errors, short spans ---------------------------------------------------------------------
  const matchCount = finder.querySelector(".match-count");
  const errorStep = finder.querySelector(".error-step");

  function applySearch() {
    searchText = searchBox.value.trim().toLowerCase();
    matches = searchText ? nodes.filter((n) => haystack(n).includes(searchText)) : [];
    matchSet = new Set(matches);
    matchAt = -1;
    matchCount.textContent = searchText ? `${matches.length} of ${nodes.length} spans match` : "";
    refresh();
    if (matches.length) stepMatch(1);
  }

  function stepMatch(dir) {
    if (!matches.length) return;
    matchAt = (matchAt + dir + matches.length) % matches.length;
    matchCount.textContent = `${matchAt + 1} of ${matches.length} matching spans (of ${nodes.length})`;
    jumpTo(matches[matchAt]);
  }

  function stepError(dir) {
    if (!errorNodes.length) return;
    errorAt = (errorAt + dir + errorNodes.length) % errorNodes.length;
    errorStep.textContent = `error ${errorAt + 1} of ${errorNodes.length}`;
    jumpTo(errorNodes[errorAt]);
  }

  let searchTimer = null;
  searchBox.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(applySearch, 150); });
  searchBox.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); clearTimeout(searchTimer); if (searchBox.value.trim().toLowerCase() !== searchText) applySearch(); else stepMatch(ev.shiftKey ? -1 : 1); }
  });
  onlyBox.addEventListener("change", () => { onlyMatches = onlyBox.checked; refresh(); });
  minDurBox.addEventListener("input", () => { minDurUs = Math.max(0, Number(minDurBox.value) || 0) * 1000; refresh(); });

  // -- interaction ---------------------------------------------------------------------------------
  scroller.addEventListener("scroll", schedule, { passive: true });
  let dragging = false;
  const minimapScroll = (ev) => {
    const r = minimap.getBoundingClientRect();
    const frac = Math.min(Math.max((ev.clientY - r.top) / r.height, 0), 1);
    scroller.scrollTop = frac * visible.length * ROW_H - scroller.clientHeight / 2;
  };
  minimap.addEventListener("mousedown", (ev) => { dragging = true; minimapScroll(ev); });
  window.addEventListener("mousemove", (ev) => { if (dragging) minimapScroll(ev); });
  window.addEventListener("mouseup", () => { dragging = false; });
  scroller.addEventListener("keydown", (ev) => {
    if (!selected) return;
    let target = null;
    if (ev.key === "ArrowDown") target = visible[selected.row + 1];
    else if (ev.key === "ArrowUp") target = visible[selected.row - 1];
    else if (ev.key === "ArrowLeft" && selected.children.length && !selected.collapsed) { selected.collapsed = true; refresh(); }
    else if (ev.key === "ArrowRight" && selected.collapsed) { selected.collapsed = false; refresh(); }
    else return;
    ev.preventDefault();
    if (target) { scrollToRow(target.row); select(target); }
  });
  window.addEventListener("resize", () => { lastDraw = null; draw(); drawMinimap(); });

  showTab(tabs[query.get("tab")] ? query.get("tab") : "spans");
  const wanted = query.get("span");
  const initial = wanted && nodes.find((n) => n.id === wanted);
  if (initial) jumpTo(initial);
  else if (root) select(root);
  document.body.dataset.rendered = "trace";
  window.apiaryRenderedAt = performance.now(); // bench/ui.py reads it: milliseconds since navigation started
}
