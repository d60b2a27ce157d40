// The Traces page: Jaeger's search with Honeycomb's columns. Named span conditions, each matched by any span of a
// trace, combined by a match expression (and, or, not, "a under b"); the request lives in the URL (?q=...).
import { h, setChildren } from "./dom.js";
import { link, session } from "./api.js";
import { matchedCaption, searchTraces, traceTable } from "./tracelist.js";

const RANGES = [["15 minutes", 900], ["1 hour", 3600], ["2 hours", 7200], ["24 hours", 86400], ["7 days", 604800]];
const OPS = ["=", "!=", ">", ">=", "<", "<=", "contains", "does-not-contain", "starts-with", "exists", "does-not-exist"];
const LETTERS = "abcdefghijklmnop";

function num(v) { return v === "" || v === null || v === undefined ? undefined : Number(v); }

function scalar(text) {
  const t = text.trim();
  if (t === "true" || t === "false") return t === "true";
  if (t !== "" && !Number.isNaN(Number(t))) return Number(t);
  return t;
}

function conditionRow(name, cond = {}) {
  const where = (cond.where || [])[0] || {};
  const err = cond.error === true ? "yes" : cond.error === false ? "no" : "";
  const row = h("div", { class: "condition", "data-name": name },
    h("span", { class: "cond-name mono" }, name),
    h("input", { name: "service", placeholder: "service", value: cond.service || "" }),
    h("input", { name: "span-name", placeholder: "span name", value: cond.name || "" }),
    h("input", { name: "column", placeholder: "attribute", value: where.column || "" }),
    h("select", { name: "op" }, OPS.map((o) => h("option", { value: o, selected: o === (where.op || "=") }, o))),
    h("input", { name: "value", placeholder: "value", value: where.value === undefined ? "" : String(where.value) }),
    h("input", { name: "min-ms", type: "number", min: "0", step: "any", placeholder: "span ≥ ms", value: cond.min_duration_ms ?? "" }),
    h("input", { name: "max-ms", type: "number", min: "0", step: "any", placeholder: "span ≤ ms", value: cond.max_duration_ms ?? "" }),
    h("select", { name: "error", title: "span status" },
      h("option", { value: "", selected: err === "" }, "any status"), h("option", { value: "yes", selected: err === "yes" }, "error"),
      h("option", { value: "no", selected: err === "no" }, "no error")),
    h("button", { type: "button", class: "small remove", title: "Remove this condition", onclick: () => row.remove() }, "×"));
  return row;
}

function readCondition(row) {
  const v = (n) => row.querySelector(`[name=${n}]`).value;
  const cond = {};
  if (v("service").trim()) cond.service = v("service").trim();
  if (v("span-name").trim()) cond.name = v("span-name").trim();
  if (v("column").trim()) {
    const f = { column: v("column").trim(), op: v("op") };
    if (!["exists", "does-not-exist"].includes(f.op)) f.value = scalar(v("value"));
    cond.where = [f];
  }
  if (num(v("min-ms")) !== undefined) cond.min_duration_ms = num(v("min-ms"));
  if (num(v("max-ms")) !== undefined) cond.max_duration_ms = num(v("max-ms"));
  if (v("error")) cond.error = v("error") === "yes";
  return cond;
}

export async function render(main, { query }) {
  let initial = {};
  try { initial = JSON.parse(query.get("q") || "{}"); } catch { initial = {}; }
  const conditions = h("div", { class: "conditions" });
  for (const [name, cond] of Object.entries(initial.spans || {})) conditions.append(conditionRow(name, cond));
  const addCondition = () => {
    const used = new Set([...conditions.querySelectorAll(".condition")].map((r) => r.dataset.name));
    const name = [...LETTERS].find((l) => !used.has(l));
    if (name) conditions.append(conditionRow(name));
  };
  if (!conditions.children.length) addCondition();
  const range = h("select", { name: "time-range" }, RANGES.map(([label, s]) =>
    h("option", { value: String(s), selected: s === (initial.time_range || 3600) }, label)));
  const traceId = h("input", { name: "trace-id", placeholder: "trace id (any time)", value: (initial.trace_ids || [])[0] || "" });
  const match = h("input", { name: "match", placeholder: "match: all conditions (or e.g. a and not b, a under b)", value: initial.match || "" });
  const minTrace = h("input", { name: "min-trace-ms", type: "number", min: "0", step: "any", placeholder: "trace ≥ ms", value: initial.min_trace_duration_ms ?? "" });
  const maxTrace = h("input", { name: "max-trace-ms", type: "number", min: "0", step: "any", placeholder: "trace ≤ ms", value: initial.max_trace_duration_ms ?? "" });
  const order = h("select", { name: "order" }, [["newest", "newest first"], ["slowest", "slowest first"]].map(([v, l]) =>
    h("option", { value: v, selected: v === (initial.order || "newest") }, l)));
  const limit = h("input", { name: "limit", type: "number", min: "1", max: "1000", value: String(initial.limit || 20) });
  const status = h("p", { class: "muted search-status" });
  const results = h("div", { class: "trace-results" });
  const picked = [];
  const compare = h("button", { type: "button", id: "compare-traces", disabled: true,
    onclick: () => { location.href = link(`/compare/${picked[0]}/${picked[1]}`); } }, "Compare the two picked");

  const form = h("form", { class: "panel trace-search" },
    h("div", { class: "toolbar" }, h("label", null, "Time range ", range), traceId, h("span", { class: "grow" })),
    h("h3", null, "Spans — each condition is matched by any span of a trace"),
    conditions,
    h("div", { class: "toolbar" }, h("button", { type: "button", id: "add-condition", onclick: addCondition }, "Add condition"), match),
    h("div", { class: "toolbar" }, h("span", null, "Trace duration (first start to last end)"), minTrace, maxTrace, order,
      h("label", null, "Limit ", limit), h("button", { class: "primary", type: "submit", id: "search-traces" }, "Search")));

  function readForm() {
    const body = { order: order.value, limit: Number(limit.value) || 20 };
    if (traceId.value.trim()) body.trace_ids = [traceId.value.trim()];
    else body.time_range = Number(range.value);
    const spans = {};
    for (const row of conditions.querySelectorAll(".condition")) {
      const cond = readCondition(row);
      if (Object.keys(cond).length) spans[row.dataset.name] = cond;
    }
    if (Object.keys(spans).length) body.spans = spans;
    if (match.value.trim()) body.match = match.value.trim();
    if (num(minTrace.value) !== undefined) body.min_trace_duration_ms = num(minTrace.value);
    if (num(maxTrace.value) !== undefined) body.max_trace_duration_ms = num(maxTrace.value);
    return body;
  }

  async function run() {
    const body = readForm();
    const url = new URL(location.href);
    url.searchParams.set("q", JSON.stringify(body));
    if (session.env) url.searchParams.set("env", session.env);
    history.replaceState(null, "", url);
    status.textContent = "Searching…";
    status.classList.remove("error-text");
    picked.length = 0;
    compare.disabled = true;
    try {
      const doc = await searchTraces(body);
      status.textContent = `${matchedCaption(doc)} in ${Math.round(doc.elapsed_ms)} ms`;
      status.dataset.matched = String(doc.matched);
      setChildren(results, doc.traces.length ? traceTable(doc.traces, { onPick: (t, on) => {
        const i = picked.indexOf(t.trace_id);
        if (on && i < 0) picked.push(t.trace_id);
        if (!on && i >= 0) picked.splice(i, 1);
        compare.disabled = picked.length !== 2;
      } }) : h("p", { class: "muted" }, "No traces match."));
      document.body.dataset.rendered = "traces";
    } catch (err) {
      status.textContent = err.message;
      status.classList.add("error-text");
      setChildren(results);
    }
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
  setChildren(main, h("h1", null, "Traces"), form, h("div", { class: "toolbar" }, status, h("span", { class: "grow" }), compare), results);
  if (query.get("q")) await run();
  else document.body.dataset.rendered = "traces";
}
