// The metrics view: a service's OTLP instruments (type, unit, description) and a chart per instrument, drawn from
// the Query Data API like any query: RATE for counters, HISTOGRAM_P50/P90/P99 for histograms, AVG for gauges and
// up-down counters, split by an attribute. Exemplar dots open the trace they came from.
import { h, setChildren } from "./dom.js";
import { api, link } from "./api.js";
import { fmtNumber, isoMicros, seriesColour } from "./format.js";
import { lineChart } from "./charts.js";

const RANGES = [["900", "Last 15 minutes"], ["3600", "Last hour"], ["21600", "Last 6 hours"], ["86400", "Last 24 hours"], ["604800", "Last 7 days"]];
const IS = (column, value) => ({ column, op: "=", value });
const PERCENTILES = ["HISTOGRAM_P50", "HISTOGRAM_P90", "HISTOGRAM_P99"];
const EXEMPLARS = 50;

async function run(dataset, spec) {
  const ds = encodeURIComponent(dataset);
  const created = await api(`/ui/api/hc/1/queries/${ds}`, { method: "POST", body: spec });
  const result = await api(`/ui/api/hc/1/query_results/${ds}`, { method: "POST", body: { query_id: created.id } });
  return result.data;
}

/** What a chart shows for an instrument: the spec's calculations and filters, and a caption. */
function chartSpec(inst, split) {
  const name = inst["meta.metric"];
  const type = inst["meta.metric.type"];
  if (type === "histogram" || type === "exponential_histogram") {
    const ops = split ? ["HISTOGRAM_P90"] : PERCENTILES;
    return { caption: split ? "P90 from merged buckets" : "P50 / P90 / P99 from merged buckets",
      calculations: ops.map((op) => ({ op, column: name })),
      filters: [{ column: `${name}.buckets`, op: "exists" }] };
  }
  if (type === "sum" && inst["meta.monotonic"]) {
    return { caption: "rate per second", calculations: [{ op: "RATE", column: name }], filters: [{ column: name, op: "exists" }] };
  }
  if (type === "summary") {
    const col = `${name}.sum`;
    return { caption: "average sum per point", calculations: [{ op: "AVG", column: col }], filters: [{ column: col, op: "exists" }] };
  }
  return { caption: "value", calculations: [{ op: "AVG", column: name }], filters: [{ column: name, op: "exists" }] };
}

function linesOf(data, spec, split) {
  const keyOf = (d) => (split ? String(d[split] ?? "(none)") : "all");
  const labels = spec.calculations.map((c) => `${c.op}(${c.column})`);
  const groups = data.results.map((r) => keyOf(r.data)).slice(0, 20);
  const lines = [];
  for (const g of groups) {
    for (const label of labels) {
      lines.push({ label: split ? `${g}${labels.length > 1 ? " " + label : ""}` : label, points: [] });
    }
  }
  const index = new Map(lines.map((l, i) => [l.label, i]));
  for (const p of data.series) {
    const g = keyOf(p.data);
    const t = isoMicros(p.time) / 1000;
    for (const label of labels) {
      const i = index.get(split ? `${g}${labels.length > 1 ? " " + label : ""}` : label);
      if (i !== undefined) lines[i].points.push([t, p.data[label] ?? null]);
    }
  }
  lines.forEach((l, i) => { l.colour = seriesColour(i); });
  return lines;
}

async function exemplarDots(dataset, name, range) {
  const data = await run(dataset, {
    time_range: range, breakdowns: ["exemplar.trace_id"], calculations: [{ op: "MAX", column: "exemplar.value" }],
    filters: [IS("meta.annotation_type", "exemplar"), IS("meta.metric", name), { column: "exemplar.trace_id", op: "exists" }],
    limit: EXEMPLARS,
  });
  const dots = [];
  for (const p of data.series) {
    const v = p.data["MAX(exemplar.value)"];
    const trace = p.data["exemplar.trace_id"];
    if (v === null || v === undefined || !trace) continue;
    dots.push({ t: isoMicros(p.time) / 1000, v, title: `exemplar ${fmtNumber(v)} — trace ${trace}`,
      onClick: () => { location.href = link(`/trace/${trace}`); } });
  }
  return dots;
}

export async function render(main, { query }) {
  const { datasets } = await api("/ui/api/datasets");
  const dataset = query.get("dataset") || datasets[0] || "";
  const range = Number(query.get("time_range") || "3600");
  const split = query.get("split") || "";
  const go = (params) => { location.href = link("/metrics", { dataset, time_range: range, split, ...params }); };
  const dsSelect = h("select", { name: "dataset", "aria-label": "dataset" }, datasets.map((d) => h("option", { value: d }, d)));
  dsSelect.value = dataset;
  dsSelect.addEventListener("change", () => go({ dataset: dsSelect.value, split: "" }));
  const rangeSelect = h("select", { name: "time_range", "aria-label": "time range" }, RANGES.map(([v, l]) => h("option", { value: v }, l)));
  rangeSelect.value = String(range);
  rangeSelect.addEventListener("change", () => go({ time_range: rangeSelect.value }));
  const splitSelect = h("select", { name: "split", "aria-label": "split by" }, h("option", { value: "" }, "no split"));
  splitSelect.addEventListener("change", () => go({ split: splitSelect.value }));
  const body = h("div", { class: "metrics" });
  setChildren(main, h("h1", null, "Metrics"), h("div", { class: "toolbar" }, dsSelect, rangeSelect,
    h("label", null, "Split by ", splitSelect)), body);
  if (!dataset) { body.append(h("p", { class: "muted" }, "No datasets yet.")); return; }

  const [cols, listed] = await Promise.all([
    api(`/ui/api/hc/1/columns/${encodeURIComponent(dataset)}`),
    run(dataset, { time_range: range, limit: 1000,
      breakdowns: ["meta.metric", "meta.metric.type", "meta.metric.unit", "meta.metric.description", "meta.temporality", "meta.monotonic"],
      filters: [IS("meta.annotation_type", "instrument")], orders: [{ column: "meta.metric" }] }).catch(() => null),
  ]);
  for (const c of cols) {
    const name = c.key_name;
    if (!name || name.startsWith("meta.") || name.startsWith("exemplar.") || c.type !== "string") continue;
    splitSelect.append(h("option", { value: name }, name));
  }
  splitSelect.value = split;
  const seen = new Set();
  const instruments = (listed?.results || []).map((r) => r.data).filter((d) => d["meta.metric"] && !seen.has(d["meta.metric"]) && seen.add(d["meta.metric"]));
  if (!instruments.length) {
    body.append(h("p", { class: "muted" }, "No OTLP metrics in this dataset and time range. Point an OTel SDK's metric exporter at /v1/metrics."));
    document.body.dataset.rendered = "metrics";
    return;
  }
  body.append(h("table", { class: "grid instruments" },
    h("thead", null, h("tr", null, ["Instrument", "Type", "Unit", "Temporality", "Description"].map((t) => h("th", null, t)))),
    h("tbody", null, instruments.map((d) => h("tr", { "data-metric": d["meta.metric"] },
      h("td", null, h("a", { href: `#chart-${encodeURIComponent(d["meta.metric"])}` }, d["meta.metric"])),
      h("td", null, d["meta.metric.type"] === "sum" ? (d["meta.monotonic"] ? "counter" : "up-down counter") : d["meta.metric.type"]),
      h("td", null, d["meta.metric.unit"] || ""),
      h("td", null, d["meta.temporality"] || ""),
      h("td", { class: "desc" }, d["meta.metric.description"] || ""))))));

  const charts = h("div", { class: "metric-charts" });
  body.append(charts);
  await Promise.all(instruments.map(async (inst) => {
    const name = inst["meta.metric"];
    const spec = chartSpec(inst, split);
    const slot = h("div", { id: `chart-${encodeURIComponent(name)}`, class: "metric-chart", "data-metric": name });
    charts.append(slot);
    try {
      const [data, dots] = await Promise.all([
        run(dataset, { time_range: range, calculations: spec.calculations, filters: spec.filters,
          breakdowns: split ? [split] : [], limit: 20 }),
        exemplarDots(dataset, name, range).catch(() => []),
      ]);
      const unit = inst["meta.metric.unit"] ? ` (${inst["meta.metric.unit"]})` : "";
      slot.append(lineChart({ title: `${name}${unit} — ${spec.caption}`, lines: linesOf(data, spec, split),
        start: data.start_time * 1000, end: data.end_time * 1000, dots }));
    } catch (err) {
      slot.append(h("p", { class: "error-text" }, `${name}: ${err.message}`));
    }
  }));
  document.body.dataset.rendered = "metrics";
}
