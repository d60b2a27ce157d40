// The service map: services as nodes, calls between them as edges (count, error rate, P90), laid out in layers.
import { h, s, clear, setChildren } from "./dom.js";
import { api, link } from "./api.js";
import { fmtDuration, fmtNumber, serviceColour } from "./format.js";
import { queryLink } from "./query.js";

const RANGES = [["900", "Last 15 minutes"], ["3600", "Last hour"], ["21600", "Last 6 hours"], ["86400", "Last 24 hours"], ["604800", "Last 7 days"]];

function layers(nodes, edges) {
  const depth = new Map(nodes.map((n) => [n.service, 0]));
  for (let pass = 0; pass < nodes.length; pass++) {
    let changed = false;
    for (const e of edges) {
      if (e.parent === e.child) continue;
      const d = (depth.get(e.parent) ?? 0) + 1;
      if (d > (depth.get(e.child) ?? 0) && d < nodes.length) { depth.set(e.child, d); changed = true; }
    }
    if (!changed) break;
  }
  return depth;
}

const LABEL_W = 150, LABEL_H = 34;  // two 11px lines 13 apart, with their white halo

/** The y of an edge's two-line label at (x, y), moved down past the labels already placed so none overlap. */
function placeLabel(placed, x, y) {
  let top = y;
  for (let moved = true; moved;) {
    moved = false;
    for (const p of placed) {
      if (Math.abs(p.x - x) < LABEL_W && top < p.y + LABEL_H && top + LABEL_H > p.y) { top = p.y + LABEL_H; moved = true; }
    }
  }
  placed.push({ x, y: top });
  return top;
}

export async function render(main, { query }) {
  const range = query.get("time_range") || "3600";
  const doc = await api("/ui/api/services", { query: { time_range: range } });
  const picker = h("select", { name: "time_range" }, RANGES.map(([v, l]) => h("option", { value: v }, l)));
  picker.value = range;
  picker.addEventListener("change", () => { location.href = link("/services", { time_range: picker.value }); });
  const nodes = doc.nodes.filter((n) => n.service !== null);
  const edges = doc.edges.filter((e) => e.parent !== null && e.child !== null);
  setChildren(main, h("h1", null, "Service map"), h("div", { class: "toolbar" }, picker,
    h("span", { class: "muted" }, "Edges: calls from a span in one service to a child span in another. Click a service to query its spans.")));
  if (!nodes.length) { main.append(h("p", { class: "muted" }, "No spans in this time range.")); return; }

  const depth = layers(nodes, edges);
  const cols = new Map();
  for (const n of nodes) { const d = depth.get(n.service) || 0; if (!cols.has(d)) cols.set(d, []); cols.get(d).push(n); }
  const W = 200, H = 64, GX = 150, GY = 40;
  const pos = new Map();
  let maxRows = 0;
  for (const [d, list] of cols) { list.forEach((n, i) => pos.set(n.service, { x: 30 + d * (W + GX), y: 30 + i * (H + GY) })); maxRows = Math.max(maxRows, list.length); }
  const width = 60 + cols.size * (W + GX), height = 60 + maxRows * (H + GY);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, height: Math.min(height, 700), class: "map" },
    s("defs", null, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9aa1ad" }))));
  const placed = [];
  for (const e of edges) {
    const a = pos.get(e.parent), b = pos.get(e.child);
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const back = x2 <= x1;
    const d = back ? `M${a.x + W / 2},${a.y + H} C${a.x + W / 2},${a.y + H + 60} ${b.x + W / 2},${b.y + H + 60} ${b.x + W / 2},${b.y + H}`
      : `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`;
    const mx = back ? (a.x + b.x + W) / 2 : (x1 + x2) / 2;
    const my = placeLabel(placed, mx, back ? Math.max(a.y, b.y) + H + 50 : (y1 + y2) / 2 - 6);
    svg.append(s("g", { class: e.errors ? "edge err" : "edge", "data-parent": e.parent, "data-child": e.child },
      s("path", { d, "marker-end": "url(#arrow)" }),
      s("text", { x: mx, y: my, "text-anchor": "middle" }, `${fmtNumber(e.count)} req · ${(e.error_rate * 100).toFixed(1)}% err`),
      s("text", { x: mx, y: my + 13, "text-anchor": "middle" }, `P90 ${fmtDuration(e.p90)}`)));
  }
  const bottom = Math.max(height, ...placed.map((p) => p.y + LABEL_H + 10));  // labels moved down stay in view
  svg.setAttribute("viewBox", `0 0 ${width} ${bottom}`);
  svg.setAttribute("height", Math.min(bottom, 700));
  for (const n of nodes) {
    const p = pos.get(n.service);
    const g = s("g", { class: "node", transform: `translate(${p.x},${p.y})`, "data-service": n.service, tabindex: 0 },
      s("rect", { class: "box", width: W, height: H, rx: 8 }),
      s("rect", { width: 6, height: H, rx: 3, fill: serviceColour(n.service), stroke: "none" }),
      s("text", { x: 14, y: 20, "font-weight": 600 }, n.service),
      s("text", { x: 14, y: 38 }, `${fmtNumber(n.count)} spans · ${(n.error_rate * 100).toFixed(1)}% err`),
      s("text", { x: 14, y: 54 }, `P90 ${fmtDuration(n.p90)}`));
    const go = () => {
      location.href = queryLink(n.service, { calculations: [{ op: "COUNT" }, { op: "HEATMAP", column: "duration_ms" }, { op: "P90", column: "duration_ms" }],
        breakdowns: ["name"], orders: [{ op: "COUNT", order: "descending" }], time_range: Number(range) });
    };
    g.addEventListener("click", go);
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") go(); });
    svg.append(g);
  }
  main.append(h("div", { class: "svcmap" }, svg),
    h("h2", null, "Calls"),
    h("table", { class: "grid edges" },
      h("thead", null, h("tr", null, h("th", null, "From"), h("th", null, "To"), h("th", { class: "num" }, "Requests"),
        h("th", { class: "num" }, "Error rate"), h("th", { class: "num" }, "P90"))),
      h("tbody", null, edges.map((e) => h("tr", null, h("td", null, e.parent), h("td", null, e.child), h("td", { class: "num" }, fmtNumber(e.count)),
        h("td", { class: "num" }, `${(e.error_rate * 100).toFixed(1)}%`), h("td", { class: "num" }, fmtDuration(e.p90)))))));
}
