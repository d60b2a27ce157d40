// The query builder: Honeycomb's six clauses, a time picker and granularity; results as charts, a heatmap and a table.
// The query lives in the URL (?dataset=...&q=<spec JSON>), so a query is a shareable link.
import { h, clear, copyButton, setChildren } from "./dom.js";
import { api, link, session } from "./api.js";
import { lineChart, heatmap } from "./charts.js";
import { bubbleUp } from "./bubbleup.js";
import { fmtNumber, fmtDuration, isoMicros, seriesColour, serviceColour } from "./format.js";
import { rowsFor, traceTable } from "./tracelist.js";

const OPS = ["COUNT", "CONCURRENCY", "COUNT_DISTINCT", "SUM", "AVG", "MAX", "MIN", "HEATMAP", "P001", "P01", "P05", "P10", "P20",
  "P25", "P50", "P75", "P80", "P90", "P95", "P99", "P999", "RATE_AVG", "RATE_SUM", "RATE_MAX"];
const NO_COLUMN = new Set(["COUNT", "CONCURRENCY"]);
const FILTER_OPS = ["=", "!=", ">", ">=", "<", "<=", "starts-with", "does-not-start-with", "ends-with", "does-not-end-with",
  "contains", "does-not-contain", "exists", "does-not-exist", "in", "not-in"];
const HAVING_OPS = ["=", "!=", ">", ">=", "<", "<="];
const RANGES = [["600", "Last 10 minutes"], ["1800", "Last 30 minutes"], ["3600", "Last hour"], ["7200", "Last 2 hours"],
  ["21600", "Last 6 hours"], ["86400", "Last 24 hours"], ["172800", "Last 2 days"], ["604800", "Last 7 days"], ["custom", "Custom range"]];
const GRANULARITIES = [["", "auto"], ["1", "1 s"], ["10", "10 s"], ["30", "30 s"], ["60", "1 min"], ["300", "5 min"], ["900", "15 min"],
  ["3600", "1 hour"], ["21600", "6 hours"], ["86400", "1 day"]];

export const calcLabel = (c) => (c.column ? `${c.op}(${c.column})` : c.op);

function select(options, value, attrs = {}) {
  const el = h("select", attrs, options.map(([v, label]) => h("option", { value: v }, label)));
  el.value = value ?? options[0][0];
  return el;
}

function parseValue(text) {
  const t = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if (t === "true" || t === "false") return t === "true";
  return t;
}

function toLocalInput(unixS) {
  const d = new Date(unixS * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A readable one-line summary of a spec, for history and saved lists. */
export function describeSpec(spec) {
  const parts = [`VISUALIZE ${(spec.calculations || [{ op: "COUNT" }]).map(calcLabel).join(", ") || "COUNT"}`];
  if (spec.filters?.length) parts.push(`WHERE ${spec.filters.map((f) => `${f.column} ${f.op}${f.value === undefined ? "" : ` ${JSON.stringify(f.value)}`}`).join(` ${spec.filter_combination || "AND"} `)}`);
  if (spec.breakdowns?.length) parts.push(`GROUP BY ${spec.breakdowns.join(", ")}`);
  if (spec.orders?.length) parts.push(`ORDER BY ${spec.orders.map((o) => `${o.op ? calcLabel(o) : o.column} ${o.order === "descending" ? "desc" : "asc"}`).join(", ")}`);
  if (spec.havings?.length) parts.push(`HAVING ${spec.havings.map((x) => `${calcLabel({ op: x.calculate_op, column: x.column })} ${x.op} ${x.value}`).join(", ")}`);
  if (spec.limit) parts.push(`LIMIT ${spec.limit}`);
  return parts.join("  ");
}

export function queryLink(dataset, spec, env = session.env) {
  return link("/query", { env, dataset, q: JSON.stringify(spec) });
}

export async function render(main, { query }) {
  const dsDoc = await api("/ui/api/datasets");
  const datasets = ["__all__", ...dsDoc.datasets];
  let dataset = query.get("dataset") || dsDoc.datasets[0] || "__all__";
  let spec = { calculations: [{ op: "COUNT" }], time_range: 7200 };
  if (query.get("q")) {
    try { spec = JSON.parse(query.get("q")); } catch { /* a mangled link: start from the default query */ }
  }
  let heatScale = spec.heatmap_scale === "log" ? "log" : "linear";
  const columnsList = h("datalist", { id: "columns-list" });
  async function loadColumns() {
    try {
      const cols = await api(`/ui/api/hc/1/columns/${encodeURIComponent(dataset)}`);
      const names = [...new Set(cols.map((c) => c.key_name))].sort();
      columnsList.replaceChildren(...names.map((n) => h("option", { value: n })));
    } catch { columnsList.replaceChildren(); }
  }

  // -- clause editors ----------------------------------------------------------------------------
  const calcs = h("div", { class: "items" });
  const filters = h("div", { class: "items" });
  const groups = h("div", { class: "items" });
  const orders = h("div", { class: "items" });
  const havings = h("div", { class: "items" });
  const combination = select([["AND", "AND"], ["OR", "OR"]], spec.filter_combination || "AND", { name: "filter_combination" });
  const limitInput = h("input", { type: "number", min: 1, max: 10000, name: "limit", placeholder: "100" });
  const rangeSelect = select(RANGES, "7200", { name: "time_range" });
  const startInput = h("input", { type: "datetime-local", name: "start_time" });
  const endInput = h("input", { type: "datetime-local", name: "end_time" });
  const customBox = h("span", { class: "custom-range", hidden: true }, startInput, " – ", endInput);
  const granSelect = select(GRANULARITIES, "", { name: "granularity" });
  const dsSelect = select(datasets.map((d) => [d, d === "__all__" ? "All datasets" : d]), dataset, { name: "dataset" });

  const colInput = (value, name) => h("input", { list: "columns-list", value: value || "", placeholder: "column", name, autocomplete: "off" });
  const removeBtn = (row) => h("button", { type: "button", class: "small remove", title: "Remove", onclick: () => { row.remove(); refreshChoices(); } }, "×");

  function addCalc(c = { op: "COUNT" }) {
    const op = select(OPS.map((o) => [o, o]), c.op, { name: "calc-op" });
    const col = colInput(c.column, "calc-column");
    const sync = () => { col.hidden = NO_COLUMN.has(op.value); refreshChoices(); };
    op.addEventListener("change", sync);
    col.addEventListener("change", refreshChoices);
    const row = h("div", { class: "item calc" }, op, col);
    row.append(removeBtn(row));
    calcs.append(row);
    sync();
  }
  function addFilter(f = { op: "=" }) {
    const col = colInput(f.column, "filter-column");
    const op = select(FILTER_OPS.map((o) => [o, o]), f.op, { name: "filter-op" });
    const val = h("input", { name: "filter-value", placeholder: "value", value: f.value === undefined || f.value === null ? "" : Array.isArray(f.value) ? f.value.join(", ") : String(f.value) });
    const sync = () => { val.hidden = op.value === "exists" || op.value === "does-not-exist"; };
    op.addEventListener("change", sync);
    const row = h("div", { class: "item filter" }, col, op, val);
    row.append(removeBtn(row));
    filters.append(row);
    sync();
  }
  function addGroup(name = "") {
    const col = colInput(name, "group-column");
    col.addEventListener("change", refreshChoices);
    const row = h("div", { class: "item group" }, col);
    row.append(removeBtn(row));
    groups.append(row);
  }
  function addOrder(o = null) {
    const which = h("select", { name: "order-by" });
    which.dataset.want = o ? JSON.stringify(o.op ? { op: o.op, column: o.column || null } : { column: o.column }) : "";
    const dir = select([["descending", "desc"], ["ascending", "asc"]], o?.order || "descending", { name: "order-dir" });
    const row = h("div", { class: "item order" }, which, dir);
    row.append(removeBtn(row));
    orders.append(row);
    refreshChoices();
  }
  function addHaving(x = null) {
    const which = h("select", { name: "having-calc" });
    which.dataset.want = x ? JSON.stringify({ op: x.calculate_op, column: x.column || null }) : "";
    const op = select(HAVING_OPS.map((o) => [o, o]), x?.op || ">", { name: "having-op" });
    const val = h("input", { type: "number", step: "any", name: "having-value", value: x?.value ?? "" });
    const row = h("div", { class: "item having" }, which, op, val);
    row.append(removeBtn(row));
    havings.append(row);
    refreshChoices();
  }
  function currentCalcs() {
    return [...calcs.querySelectorAll(".calc")].map((r) => {
      const op = r.querySelector("[name=calc-op]").value;
      const column = r.querySelector("[name=calc-column]").value.trim();
      return NO_COLUMN.has(op) ? { op } : { op, column };
    });
  }
  function currentGroups() {
    return [...groups.querySelectorAll("[name=group-column]")].map((i) => i.value.trim()).filter(Boolean);
  }
  function refreshChoices() {
    const cs = currentCalcs();
    const calcChoices = (cs.length ? cs : [{ op: "COUNT" }]).filter((c) => c.op !== "HEATMAP")
      .map((c) => [JSON.stringify({ op: c.op, column: c.column || null }), calcLabel(c)]);
    const orderChoices = [...calcChoices, ...currentGroups().map((g) => [JSON.stringify({ column: g }), g])];
    for (const sel of orders.querySelectorAll("[name=order-by]")) fillChoices(sel, orderChoices);
    for (const sel of havings.querySelectorAll("[name=having-calc]")) fillChoices(sel, calcChoices);
  }
  function fillChoices(sel, choices) {
    const keep = sel.value || sel.dataset.want;
    sel.replaceChildren(...choices.map(([v, l]) => h("option", { value: v }, l)));
    if (choices.some(([v]) => v === keep)) sel.value = keep;
    sel.dataset.want = "";
  }

  function fill(sp) {
    calcs.replaceChildren(); filters.replaceChildren(); groups.replaceChildren(); orders.replaceChildren(); havings.replaceChildren();
    for (const c of sp.calculations?.length ? sp.calculations : [{ op: "COUNT" }]) addCalc(c);
    for (const f of sp.filters || []) addFilter(f);
    for (const g of sp.breakdowns || []) addGroup(g);
    for (const o of sp.orders || []) addOrder(o);
    for (const x of sp.havings || []) addHaving(x);
    combination.value = sp.filter_combination || "AND";
    limitInput.value = sp.limit ?? "";
    granSelect.value = sp.granularity ? String(sp.granularity) : "";
    if (sp.start_time && sp.end_time) {
      rangeSelect.value = "custom";
      startInput.value = toLocalInput(sp.start_time);
      endInput.value = toLocalInput(sp.end_time);
    } else {
      const r = String(sp.time_range || 7200);
      if (![...rangeSelect.options].some((o) => o.value === r)) rangeSelect.append(h("option", { value: r }, `Last ${r} s`));
      rangeSelect.value = r;
    }
    customBox.hidden = rangeSelect.value !== "custom";
    refreshChoices();
  }

  function readForm() {
    const sp = {};
    const cs = currentCalcs();
    sp.calculations = cs.length ? cs : [{ op: "COUNT" }];
    const fs = [...filters.querySelectorAll(".filter")].map((r) => {
      const column = r.querySelector("[name=filter-column]").value.trim();
      const op = r.querySelector("[name=filter-op]").value;
      const raw = r.querySelector("[name=filter-value]").value;
      if (!column) return null;
      if (op === "exists" || op === "does-not-exist") return { column, op };
      if (op === "in" || op === "not-in") return { column, op, value: raw.split(",").map((v) => parseValue(v)).filter((v) => v !== "") };
      return { column, op, value: parseValue(raw) };
    }).filter(Boolean);
    if (fs.length) { sp.filters = fs; if (combination.value === "OR") sp.filter_combination = "OR"; }
    const gs = currentGroups();
    if (gs.length) sp.breakdowns = gs;
    const os = [...orders.querySelectorAll(".order")].map((r) => {
      const v = r.querySelector("[name=order-by]").value;
      if (!v) return null;
      const o = JSON.parse(v);
      const out = o.op ? (o.column ? { op: o.op, column: o.column } : { op: o.op }) : { column: o.column };
      out.order = r.querySelector("[name=order-dir]").value;
      return out;
    }).filter(Boolean);
    if (os.length) sp.orders = os;
    const hs = [...havings.querySelectorAll(".having")].map((r) => {
      const v = r.querySelector("[name=having-calc]").value;
      const value = r.querySelector("[name=having-value]").value;
      if (!v || value === "") return null;
      const c = JSON.parse(v);
      const out = { calculate_op: c.op, op: r.querySelector("[name=having-op]").value, value: Number(value) };
      if (c.column) out.column = c.column;
      return out;
    }).filter(Boolean);
    if (hs.length) sp.havings = hs;
    if (limitInput.value) sp.limit = Number(limitInput.value);
    if (rangeSelect.value === "custom" && startInput.value && endInput.value) {
      sp.start_time = Math.floor(new Date(startInput.value).getTime() / 1000);
      sp.end_time = Math.floor(new Date(endInput.value).getTime() / 1000);
    } else {
      sp.time_range = Number(rangeSelect.value === "custom" ? 7200 : rangeSelect.value);
    }
    if (granSelect.value) sp.granularity = Number(granSelect.value);
    if (heatScale === "log") sp.heatmap_scale = "log";
    return sp;
  }

  rangeSelect.addEventListener("change", () => {
    customBox.hidden = rangeSelect.value !== "custom";
    if (rangeSelect.value === "custom" && !startInput.value) {
      const now = Math.floor(Date.now() / 1000);
      startInput.value = toLocalInput(now - 3600);
      endInput.value = toLocalInput(now + 60);
    }
  });
  dsSelect.addEventListener("change", () => { dataset = dsSelect.value; loadColumns(); });

  const clause = (label, body, onAdd) => h("div", { class: "clause", "data-clause": label },
    h("div", { class: "label" }, label, onAdd ? h("button", { type: "button", class: "small add", title: `Add to ${label}`, onclick: onAdd }, "+") : null),
    body);
  const status = h("span", { class: "muted status" });
  const saveName = h("input", { name: "save-name", placeholder: "name to save as" });
  const results = h("div", { class: "results" });
  const tracesBox = h("div", { class: "traces-list" });
  const bubbleBox = h("div", { class: "bubbleup" });
  const form = h("form", { class: "query-form" },
    h("div", { class: "toolbar" }, h("label", null, "Dataset ", dsSelect), h("label", null, "Time ", rangeSelect), customBox,
      h("label", null, "Granularity ", granSelect), h("span", { class: "grow" }),
      h("button", { type: "submit", class: "primary", id: "run-query" }, "Run query")),
    h("div", { class: "qb" },
      clause("VISUALIZE", calcs, () => { addCalc({ op: "COUNT" }); }),
      clause("WHERE", h("div", null, h("div", { class: "muted" }, "combine with ", combination), filters), () => addFilter()),
      clause("GROUP BY", groups, () => addGroup()),
      clause("ORDER BY", orders, () => addOrder()),
      clause("LIMIT", limitInput),
      clause("HAVING", havings, () => addHaving())),
    h("div", { class: "toolbar", style: { marginTop: "8px" } }, status, h("span", { class: "grow" }), saveName,
      h("button", { type: "button", id: "save-query", onclick: save }, "Save query"),
      copyButton(() => location.href, "copy link")),
    columnsList);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
  form.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); } });
  setChildren(main, h("h1", null, "Query"), form, results, bubbleBox, tracesBox);
  fill(spec);
  loadColumns();

  async function save() {
    const name = saveName.value.trim();
    if (!name) { status.textContent = "Give the query a name to save it."; saveName.focus(); return; }
    try {
      await api("/ui/api/hc/api/queries/saved", { method: "POST", body: { name, dataset: dsSelect.value, query: readForm() } });
      status.textContent = `Saved as “${name}”.`;
    } catch (err) { status.textContent = `Not saved: ${err.message}`; }
  }

  async function run() {
    spec = readForm();
    dataset = dsSelect.value;
    const url = new URL(location.href);
    url.searchParams.set("dataset", dataset);
    url.searchParams.set("q", JSON.stringify(spec));
    if (session.env) url.searchParams.set("env", session.env);
    history.replaceState(null, "", url);
    status.textContent = "Running…";
    status.classList.remove("error-text");
    clear(tracesBox);
    clear(bubbleBox);
    const ds = encodeURIComponent(dataset);
    try {
      const created = await api(`/ui/api/hc/1/queries/${ds}`, { method: "POST", body: spec });
      const result = await api(`/ui/api/hc/1/query_results/${ds}`, { method: "POST", body: { query_id: created.id } });
      status.textContent = `${result.data.results.length} result rows in ${fmtNumber(result.elapsed_ms ?? 0)} ms`;
      showResults(spec, result.data);
      document.body.dataset.rendered = "query";
      window.apiaryRenderedAt = performance.now();
    } catch (err) {
      status.textContent = err.message;
      status.classList.add("error-text");
      clear(results);
    }
  }

  // -- results ------------------------------------------------------------------------------------
  function showResults(sp, data) {
    clear(results);
    const breakdowns = sp.breakdowns || [];
    const cs = sp.calculations?.length ? sp.calculations : [{ op: "COUNT" }];
    const startMs = data.start_time * 1000, endMs = data.end_time * 1000;
    const keyOf = (d) => JSON.stringify(breakdowns.map((b) => d[b] ?? null));
    const byService = breakdowns.length === 1 && breakdowns[0] === "service.name";  // lines in each service's own colour
    const groupName = (d) => (breakdowns.length ? breakdowns.map((b) => (d[b] === null || d[b] === undefined ? "(none)" : String(d[b]))).join(", ") : "all");
    const order = data.results.map((r) => keyOf(r.data));
    const byGroup = new Map(order.map((k) => [k, []]));
    const names = new Map(data.results.map((r) => [keyOf(r.data), groupName(r.data)]));
    for (const p of data.series) {
      const k = keyOf(p.data);
      if (byGroup.has(k)) byGroup.get(k).push(p);
    }
    for (const c of cs) {
      const label = calcLabel(c);
      if (c.op === "HEATMAP") {
        const heat = data.heatmaps?.[label] || { buckets: [], cells: [] };
        results.append(heatmap({ title: label, heat, start: startMs, end: endMs, granularityS: data.granularity,
          isDuration: c.column === "duration_ms", log: sp.heatmap_scale === "log",
          onScale: (on) => { heatScale = on ? "log" : "linear"; run(); },
          onSelect: (rg) => {
            listTraces(sp, data, {}, rg, c.column, `${fmtNumber(rg.count)} events in the selected region`);
            explain(sp, rg, c.column);
          } }));
        continue;
      }
      const lines = [...byGroup].slice(0, 30).map(([k, pts], i) => ({
        label: names.get(k), colour: byService ? serviceColour(JSON.parse(k)[0] ?? "") : seriesColour(i), group: k,
        points: pts.map((p) => [isoMicros(p.time) / 1000, p.data[label] ?? null]),
      }));
      results.append(lineChart({ title: label, lines, start: startMs, end: endMs, stepMs: data.granularity * 1000,
        onSelect: (rg) => explainPoints(sp, data, label, rg) }));
    }
    const shown = cs.map((c) => [calcLabel(c), c.op === "HEATMAP"]);
    const table = h("table", { class: "grid summary" },
      h("thead", null, h("tr", null, breakdowns.map((b) => h("th", null, b)), shown.map(([l]) => h("th", { class: "num" }, l)))),
      h("tbody", null, data.results.map((r, i) => {
        const tr = h("tr", { class: "clickable", title: "List the traces behind this row" },
          breakdowns.map((b, j) => h("td", null, j === 0 && breakdowns.length
            ? h("span", { class: "swatch", style: { background: byService ? serviceColour(r.data[b] ?? "") : seriesColour(i) } }) : null, r.data[b] === null || r.data[b] === undefined ? "(none)" : String(r.data[b]))),
          shown.map(([l, isHeat]) => h("td", { class: "num", "data-calc": l },
            isHeat ? fmtNumber((r.data[l] || []).reduce((a, b) => a + b, 0)) : fmtNumber(r.data[l]))));
        tr.addEventListener("click", () => {
          for (const x of table.querySelectorAll("tr.selected")) x.classList.remove("selected");
          tr.classList.add("selected");
          listTraces(sp, data, Object.fromEntries(breakdowns.map((b) => [b, r.data[b]])), null, null, `Traces for ${groupName(r.data)}`);
        });
        return tr;
      })));
    results.append(h("h2", null, "Results"), data.results.length ? table : h("p", { class: "muted" }, "No results in this time range."));
  }

  // A dragged region against the rest of the query; a value's WHERE or GROUP BY button refines the query and reruns it.
  const refine = {
    onWhere: (fs) => { for (const f of fs) addFilter(f); run(); },
    onGroupBy: (col) => { if (!currentGroups().includes(col)) addGroup(col); refreshChoices(); run(); },
  };
  function explain(sp, rg, column) {
    if (rg.lower === undefined || rg.upper === undefined) return;
    const selection = { start_time: rg.startMs / 1000, end_time: rg.endMs / 1000, column, min: rg.lower, max: rg.upper };
    bubbleUp(bubbleBox, { dataset, spec: sp, selection, caption: `${column} ${fmtNumber(rg.lower)} – ${fmtNumber(rg.upper)}`, ...refine });
  }

  // Points dragged across on a line chart: their time buckets, and their line's group as filters.
  function explainPoints(sp, data, label, rg) {
    const breakdowns = sp.breakdowns || [];
    const values = rg.line && breakdowns.length ? JSON.parse(rg.line.group) : [];
    const groupValues = Object.fromEntries(breakdowns.map((b, i) => [b, values[i]]).filter(() => values.length));
    const filters = Object.entries(groupValues).map(([column, v]) => (v === null || v === undefined
      ? { column, op: "does-not-exist" } : { column, op: "=", value: v }));
    const selection = { start_time: rg.startMs / 1000, end_time: rg.endMs / 1000 };
    if (filters.length) selection.filters = filters;
    const when = `${new Date(rg.startMs).toLocaleTimeString()} – ${new Date(rg.endMs).toLocaleTimeString()}`;
    const caption = `${label} points ${when}${filters.length ? ` of ${rg.line.label}` : ""}`;
    listTraces(sp, data, groupValues, { startMs: rg.startMs, endMs: rg.endMs }, null, `Traces behind ${caption}`);
    bubbleUp(bubbleBox, { dataset, spec: sp, selection, caption, ...refine });
  }

  async function listTraces(sp, data, groupValues, region, column, caption) {
    const narrowed = { calculations: [{ op: "MAX", column: "duration_ms" }, { op: "COUNT" }], breakdowns: ["trace.trace_id"],
      orders: [{ op: "MAX", column: "duration_ms", order: "descending" }], limit: 20 };
    const fs = sp.filter_combination === "OR" ? [] : [...(sp.filters || [])];
    for (const [col, v] of Object.entries(groupValues)) fs.push(v === null || v === undefined ? { column: col, op: "does-not-exist" } : { column: col, op: "=", value: v });
    let start = data.start_time, end = data.end_time;
    if (region) {
      start = Math.max(start, Math.floor(region.startMs / 1000));
      end = Math.min(end, Math.ceil(region.endMs / 1000));
      if (region.lower !== undefined) fs.push({ column, op: ">=", value: region.lower });
      if (region.upper !== undefined) fs.push({ column, op: region.lastBucket ? "<=" : "<", value: region.upper });
    }
    fs.push({ column: "trace.trace_id", op: "exists" });
    narrowed.filters = fs;
    narrowed.start_time = start;
    narrowed.end_time = Math.max(end, start + 1);
    setChildren(tracesBox, h("h2", null, caption), h("p", { class: "muted" }, "Loading traces…"));
    try {
      const doc = await api("/ui/api/traces_for", { method: "POST", body: { dataset, query: narrowed } });
      const ids = doc.results.map((r) => r.data["trace.trace_id"]).filter(Boolean);
      const rows = await rowsFor(ids); // the same rows as every trace list: root, service, start, duration, spans, errors
      setChildren(tracesBox, h("h2", null, caption),
        rows.length ? traceTable(rows) : h("p", { class: "muted" }, "No traces match."));
    } catch (err) {
      setChildren(tracesBox, h("h2", null, caption), h("p", { class: "error-text" }, err.message));
    }
  }

  if (query.get("q")) run();
}
