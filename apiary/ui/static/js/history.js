// Query history (every run) and saved queries, from the query engine's /api/queries endpoints.
import { h, clear, setChildren } from "./dom.js";
import { api } from "./api.js";
import { describeSpec, queryLink } from "./query.js";
import { fmtNumber } from "./format.js";

const when = (unixS) => new Date(unixS * 1000).toLocaleString();

export async function render(main) {
  const [hist, saved] = await Promise.all([api("/ui/api/hc/api/queries/history", { query: { limit: 100 } }), api("/ui/api/hc/api/queries/saved")]);
  const savedTable = saved.saved.length
    ? h("table", { class: "grid saved" },
      h("thead", null, h("tr", null, h("th", null, "Name"), h("th", null, "Dataset"), h("th", null, "Query"), h("th", null, "Saved"), h("th", null, ""))),
      h("tbody", null, saved.saved.map((q) => {
        const del = h("button", { type: "button", class: "small" }, "Delete");
        const tr = h("tr", { "data-name": q.name },
          h("td", null, h("a", { href: queryLink(q.dataset, q.query), class: "saved-link" }, q.name)),
          h("td", null, q.dataset), h("td", { class: "mono" }, describeSpec(q.query)), h("td", null, when(q.updated_at)), h("td", null, del));
        del.addEventListener("click", async () => {
          await api(`/ui/api/hc/api/queries/saved/${encodeURIComponent(q.name)}`, { method: "DELETE" });
          tr.remove();
        });
        return tr;
      })))
    : h("p", { class: "muted" }, "No saved queries yet: use “Save query” on the query page.");
  const histTable = hist.history.length
    ? h("table", { class: "grid history" },
      h("thead", null, h("tr", null, h("th", null, "Ran"), h("th", null, "Dataset"), h("th", null, "Query"), h("th", { class: "num" }, "Rows"),
        h("th", { class: "num" }, "Time"))),
      h("tbody", null, hist.history.map((r) => h("tr", null,
        h("td", null, h("a", { href: queryLink(r.dataset, r.query) }, when(r.ran_at))),
        h("td", null, r.dataset), h("td", { class: "mono" }, describeSpec(r.query), r.error ? h("div", { class: "error-text" }, r.error) : null),
        h("td", { class: "num" }, r.result_rows === null ? "" : fmtNumber(r.result_rows)), h("td", { class: "num" }, `${fmtNumber(r.elapsed_ms)} ms`)))))
    : h("p", { class: "muted" }, "No queries run yet.");
  setChildren(main, h("h1", null, "Saved queries"), savedTable, h("h1", { style: { marginTop: "24px" } }, "History"), histTable);
}
