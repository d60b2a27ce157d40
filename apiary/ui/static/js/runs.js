// Runs (telemetry tagged with apiary.run): the runs seen lately, and run B against run A per service and span name,
// the most changed first (the ranking and every figure come from /api/runs/compare; this page only lays them out).
import { h, setChildren } from "./dom.js";
import { api, link } from "./api.js";
import { fmtDuration, fmtNumber, fmtTime } from "./format.js";

const PERCENTILES = ["p50", "p90", "p99"];

function picker(id, runs, value) {
  const sel = h("select", { id, "aria-label": id === "run-a" ? "run A" : "run B" },
    runs.map((r) => h("option", { value: r.name }, r.name)));
  if (value) sel.value = value;
  return sel;
}

function runsTable(runs) {
  return h("table", { class: "grid runs-list" },
    h("thead", null, h("tr", null, h("th", null, "Run"), h("th", null, "First seen"), h("th", null, "Last seen"),
      h("th", { class: "num" }, "Spans"), h("th", null, "Services"))),
    h("tbody", null, runs.map((r) => h("tr", { "data-run": r.name },
      h("td", { class: "mono" }, r.name), h("td", null, fmtTime(r.first_seen)), h("td", null, fmtTime(r.last_seen)),
      h("td", { class: "num" }, fmtNumber(r.spans)), h("td", null, r.services.join(", "))))));
}

function changeCells(row, p) {
  if (row.in !== "both") {
    return [h("td", { class: "num change only", colspan: 2 }, row.in === "a" ? "gone from B" : "new in B")];
  }
  const ms = row.change[`${p}_ms`];
  const pct = row.change[`${p}_pct`];
  // Colour only what is more than noise: a change under 0.1 ms or 5 % reads as "same".
  const moved = ms !== null && Math.abs(ms) >= 0.1 && (pct === null || Math.abs(pct) >= 5);
  const cls = !moved ? "same" : ms > 0 ? "slower" : "faster";
  const sign = ms > 0 ? "+" : ms < 0 ? "−" : "±";
  return [h("td", { class: `num change ${cls}` }, ms === null ? "" : `${sign}${fmtDuration(Math.abs(ms))}`),
    h("td", { class: `num change ${cls}` }, pct === null ? "" : `${pct > 0 ? "+" : ""}${fmtNumber(pct, 1)}%`)];
}

function countCell(a, b, key) {
  const x = a ? a[key] : 0;
  const y = b ? b[key] : 0;
  const cls = key === "errors" && y > x ? "num change slower" : key === "errors" && y < x ? "num change faster" : "num";
  return h("td", { class: cls }, `${fmtNumber(x)} → ${fmtNumber(y)}`);
}

function spansTable(doc) {
  const p = doc.percentile;
  return h("table", { class: "grid runs-compare" },
    h("thead", null, h("tr", null, h("th", null, "Service: span"), h("th", { class: "num" }, "Count A → B"),
      h("th", { class: "num" }, "Errors A → B"), h("th", { class: "num" }, `${p} A`), h("th", { class: "num" }, `${p} B`),
      h("th", { class: "num" }, "Change"), h("th", { class: "num" }, "%"), h("th", { class: "num", title: "what changed most: 0 to 1" }, "Score"))),
    h("tbody", null, doc.spans.map((r) => h("tr", { class: `in-${r.in}`, "data-span": `${r.service}: ${r.name}` },
      h("td", null, `${r.service}: ${r.name}`, r.in !== "both" ? h("span", { class: `badge only-${r.in}` }, r.in === "a" ? "A only" : "B only") : null),
      countCell(r.a, r.b, "count"), countCell(r.a, r.b, "errors"),
      h("td", { class: "num" }, r.a ? fmtDuration(r.a[p]) : "—"), h("td", { class: "num" }, r.b ? fmtDuration(r.b[p]) : "—"),
      ...changeCells(r, p),
      h("td", { class: "num", title: `largest change: ${r.why}` }, fmtNumber(r.score, 3))))));
}

function listLine(label, items, cls) {
  if (!items.length) return null;
  return h("p", { class: cls }, h("strong", null, `${label}: `), items.join(", "));
}

/** The value (or bucket) whose share moved most between the runs, with both shares. */
function movedMost(c) {
  const key = (e) => ("value" in e ? `v:${JSON.stringify(e.value)}` : "lower" in e ? `b:${e.lower}` : "present");
  const label = (e) => ("value" in e ? (e.value === null ? "(missing)" : String(e.value))
    : "lower" in e ? `${fmtNumber(e.lower)}–${fmtNumber(e.upper)}` : "(present)");
  const shares = new Map();
  for (const [side, list] of [["a", c.a], ["b", c.b]]) {
    for (const e of list) {
      const k = key(e);
      if (!shares.has(k)) shares.set(k, { label: label(e), a: 0, b: 0 });
      shares.get(k)[side] = e.share;
    }
  }
  return [...shares.values()].sort((x, y) => Math.abs(y.b - y.a) - Math.abs(x.b - x.a))[0];
}

function columnsTable(cols) {
  if (!cols.length) return h("p", { class: "muted" }, "No attribute column differs between the two runs.");
  const pct = (share) => `${fmtNumber(share * 100, 1)}%`;
  return h("table", { class: "grid runs-columns" },
    h("thead", null, h("tr", null, h("th", null, "Column"), h("th", { class: "num" }, "Score"), h("th", null, "Value that moved most"),
      h("th", { class: "num" }, "Share in A"), h("th", { class: "num" }, "Share in B"))),
    h("tbody", null, cols.map((c) => {
      const m = movedMost(c);
      return h("tr", { "data-column": c.column },
        h("td", { class: "mono" }, c.column), h("td", { class: "num" }, fmtNumber(c.score, 3)),
        h("td", { class: "mono" }, m ? m.label : ""), h("td", { class: "num" }, m ? pct(m.a) : ""), h("td", { class: "num" }, m ? pct(m.b) : ""));
    })));
}

async function showComparison(out, a, b, p) {
  setChildren(out, h("p", { class: "muted" }, "Comparing…"));
  const doc = await api("/ui/api/hc/api/runs/compare", { query: { a, b, percentile: p } });
  setChildren(out,
    h("h2", null, `B = ${doc.b.name} against A = ${doc.a.name}`),
    h("p", { class: "muted" }, `A: ${fmtNumber(doc.a.spans)} spans from ${fmtTime(doc.a.first_seen)}; `
      + `B: ${fmtNumber(doc.b.spans)} spans from ${fmtTime(doc.b.first_seen)}. Rows are ranked by score, the largest of the `
      + `${p} latency change, the change in error share and the change in share of spans (0: same, 1: most).`),
    spansTable(doc),
    listLine("Span names new in B", doc.new_spans.map((s) => `${s.service}: ${s.name}`), "runs-new"),
    listLine("Span names gone from B", doc.vanished_spans.map((s) => `${s.service}: ${s.name}`), "runs-vanished"),
    listLine("Attributes in A only", doc.only_in_a, "runs-only-a"),
    listLine("Attributes in B only", doc.only_in_b, "runs-only-b"),
    h("h2", null, "Columns that changed most (BubbleUp, B against A)"),
    columnsTable(doc.changed_columns));
  document.body.dataset.rendered = "runs-compare";
}

export async function render(main, { query }) {
  const doc = await api("/ui/api/hc/api/runs");
  const runs = doc.runs;
  if (runs.length < 1) {
    setChildren(main, h("h1", null, "Runs"),
      h("p", { class: "muted" }, "No runs yet. Tag telemetry with the resource attribute apiary.run: "
        + "apiary run --name NAME -- COMMAND, or OTEL_RESOURCE_ATTRIBUTES=apiary.run=NAME."));
    document.body.dataset.rendered = "runs";
    return;
  }
  const a = picker("run-a", runs, query.get("a") || (runs[1] || runs[0]).name);
  const b = picker("run-b", runs, query.get("b") || runs[0].name);
  const p = h("select", { id: "run-percentile", "aria-label": "percentile" }, PERCENTILES.map((x) => h("option", { value: x }, x)));
  p.value = PERCENTILES.includes(query.get("percentile")) ? query.get("percentile") : "p50";
  const go = h("button", { class: "primary", type: "submit" }, "Compare");
  const out = h("div", { id: "runs-result" });
  const form = h("form", { class: "panel runs-form" }, h("label", null, "A ", a), " ", h("label", null, "B ", b), " ",
    h("label", null, "Percentile ", p), " ", go);
  const compare = async () => {
    history.replaceState(null, "", link("/runs", { a: a.value, b: b.value, percentile: p.value }));
    try {
      await showComparison(out, a.value, b.value, p.value);
    } catch (err) {
      setChildren(out, h("p", { class: "error-text" }, String(err.message || err)));
      document.body.dataset.rendered = "runs-error";
    }
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); compare(); });
  setChildren(main, h("h1", null, "Runs"), runsTable(runs), form, out);
  document.body.dataset.rendered = "runs";
  if (runs.length > 1 && a.value !== b.value) await compare();
}
