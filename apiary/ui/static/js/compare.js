// Two traces side by side: spans aligned by their (service, span name) path from the root, latency differences
// coloured (slower in red, faster in green), paths present in one trace only marked.
import { h, setChildren } from "./dom.js";
import { api, link } from "./api.js";
import { fmtDuration, serviceColour } from "./format.js";

function side(label, t) {
  return h("div", { class: "compare-side" }, h("strong", null, `${label}: `),
    h("a", { class: "mono trace-link", href: link(`/trace/${t.trace_id}`) }, t.trace_id),
    ` ${t.root_service || ""}: ${t.root_name || ""} — ${fmtDuration(t.duration_ms)}, ${t.spans} spans`);
}

function diffCell(row) {
  if (row.in !== "both") return h("td", { class: "num diff only" }, row.in === "a" ? "only in A" : "only in B");
  const d = row.diff_ms;
  const base = row.a.duration_ms || 1;
  const cls = Math.abs(d) < 0.0005 ? "same" : d > 0 ? "slower" : "faster";
  const pct = `${d > 0 ? "+" : ""}${Math.round((d / base) * 100)}%`;
  return h("td", { class: `num diff ${cls}`, title: pct }, `${d > 0 ? "+" : d < 0 ? "−" : "±"}${fmtDuration(Math.abs(d))}`);
}

function cell(x) {
  if (!x) return h("td", { class: "num missing" }, "—");
  return h("td", { class: "num" }, fmtDuration(x.duration_ms), x.count > 1 ? h("span", { class: "muted" }, ` ×${x.count}`) : null);
}

export async function render(main, { params }) {
  const [a, b] = params;
  setChildren(main, h("p", { class: "muted" }, "Comparing…"));
  const doc = await api(`/ui/api/hc/api/traces/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`);
  const table = h("table", { class: "grid compare" },
    h("thead", null, h("tr", null, h("th", null, "Span path (service: name)"), h("th", { class: "num" }, "A"), h("th", { class: "num" }, "B"),
      h("th", { class: "num" }, "B − A"))),
    h("tbody", null, doc.rows.map((r) => h("tr", { class: `in-${r.in}`, "data-path": r.path.map((p) => `${p.service}: ${p.name}`).join(" > ") },
      h("td", { class: "path", style: { paddingLeft: `${8 + r.depth * 16}px` } },
        h("span", { class: "swatch", style: { background: serviceColour(r.service) } }), `${r.service}: ${r.name}`,
        r.in !== "both" ? h("span", { class: `badge only-${r.in}` }, r.in === "a" ? "A only" : "B only") : null),
      cell(r.a), cell(r.b), diffCell(r)))));
  setChildren(main, h("h1", null, "Compare traces"), side("A", doc.a), side("B", doc.b),
    h("p", { class: "muted" }, "Spans are matched by their path of service and span name from the root; several spans on one path are added up."),
    table);
  document.body.dataset.rendered = "compare";
}
