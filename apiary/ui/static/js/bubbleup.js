// BubbleUp: a region dragged on a heatmap against the rest of the query, one small chart per column, most different first.
// The server ranks and counts (POST /api/bubbleup); this draws its answer as text and plain bars.
import { h, setChildren } from "./dom.js";
import { api } from "./api.js";
import { fmtNumber } from "./format.js";

const SHOWN = 12; // columns drawn at once; the rest behind "show all"

const pct = (share) => `${(share * 100).toFixed(share > 0 && share < 0.01 ? 2 : 1)}%`;

function label(entry, column) {
  if ("lower" in entry) return `${fmtNumber(entry.lower)} – ${fmtNumber(entry.upper)}`;
  if ("present" in entry) return "(any value)";
  if (entry.value === null) return "(missing)";
  return String(entry.value);
}

/** The WHERE filter(s) that keep the rows of one entry of a column's distribution. */
function filtersFor(column, entry, last) {
  if ("lower" in entry) return [{ column, op: ">=", value: entry.lower }, { column, op: last ? "<=" : "<", value: entry.upper }];
  if ("present" in entry) return [{ column, op: "exists" }];
  if (entry.value === null) return [{ column, op: "does-not-exist" }];
  return [{ column, op: "=", value: entry.value }];
}

function columnChart(col, { onWhere, onGroupBy }) {
  const rows = col.selection.map((sel, i) => {
    const base = col.baseline[i];
    const isLast = "lower" in sel && i === col.selection.findLastIndex((e) => "lower" in e);
    const where = h("button", { type: "button", class: "small bu-where", title: "Add to WHERE and run" }, "WHERE");
    where.addEventListener("click", () => onWhere(filtersFor(col.column, sel, isLast)));
    return h("tr", { "data-value": label(sel, col.column) },
      h("td", { class: "bu-value", title: label(sel, col.column) }, label(sel, col.column)),
      h("td", { class: "bu-bars" },
        h("div", { class: "bar sel", style: { width: pct(sel.share) }, title: `selection: ${fmtNumber(sel.count)} (${pct(sel.share)})` }),
        h("div", { class: "bar base", style: { width: pct(base.share) }, title: `baseline: ${fmtNumber(base.count)} (${pct(base.share)})` })),
      h("td", { class: "num" }, pct(sel.share)),
      h("td", { class: "num muted" }, pct(base.share)),
      h("td", null, where));
  });
  const group = h("button", { type: "button", class: "small bu-group", title: "Add to GROUP BY and run" }, "GROUP BY");
  group.addEventListener("click", () => onGroupBy(col.column));
  const other = col.other_values && (col.other_values.selection || col.other_values.baseline)
    ? h("div", { class: "muted small-print" }, `other values: ${fmtNumber(col.other_values.selection)} selected, ${fmtNumber(col.other_values.baseline)} baseline`)
    : null;
  return h("div", { class: "bu-column", "data-column": col.column, "data-score": String(col.score) },
    h("div", { class: "bu-head" }, h("span", { class: "bu-name" }, col.column), h("span", { class: "muted" }, ` ${col.kind}`),
      h("span", { class: "grow" }), h("span", { class: "bu-score", title: "total variation distance, 0 (same) to 1 (disjoint)" },
        `score ${col.score.toFixed(2)}`), group),
    h("table", { class: "bu-values" },
      h("thead", null, h("tr", null, h("th", null, "value"), h("th", null, ""), h("th", { class: "num" }, "selected"),
        h("th", { class: "num" }, "baseline"), h("th", null, ""))),
      h("tbody", null, rows)),
    other);
}

/** Ask the server and draw the ranked columns into ``box``. */
export async function bubbleUp(box, { dataset, spec, selection, caption, onWhere, onGroupBy }) {
  setChildren(box, h("h2", null, "BubbleUp"), h("p", { class: "muted" }, "Comparing the selection with the rest of the query…"));
  box.dataset.state = "loading";
  let doc;
  try {
    doc = await api("/ui/api/hc/api/bubbleup", { method: "POST", body: { dataset, query: spec, selection } });
  } catch (err) {
    setChildren(box, h("h2", null, "BubbleUp"), h("p", { class: "error-text" }, err.message));
    box.dataset.state = "error";
    return;
  }
  const summary = h("p", { class: "muted" }, `${caption}: ${fmtNumber(doc.selection_count)} selected events against ${fmtNumber(doc.baseline_count)} `
    + `in the rest of the query (${fmtNumber(doc.elapsed_ms)} ms). `, h("span", { class: "swatch sel" }), "selection ",
    h("span", { class: "swatch base" }), "baseline");
  const grid = h("div", { class: "bu-grid" });
  const draw = (all) => {
    const cols = all ? doc.columns : doc.columns.slice(0, SHOWN);
    grid.replaceChildren(...cols.map((c) => columnChart(c, { onWhere, onGroupBy })));
    if (!all && doc.columns.length > SHOWN) {
      grid.append(h("button", { type: "button", class: "bu-more", onclick: () => draw(true) }, `show all ${doc.columns.length} columns`));
    }
  };
  draw(false);
  const empty = !doc.columns.length ? h("p", { class: "muted" }, doc.selection_count ? "The selection covers every event of the query: nothing to compare it with."
    : "No events in the selection.") : null;
  setChildren(box, h("h2", null, "BubbleUp"), summary, empty, grid);
  box.dataset.state = "done";
}
