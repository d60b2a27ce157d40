// Errors: items (Rollbar's grouping of occurrences) with counts and sparklines; an item's occurrences, stack trace,
// request and person, its trace, and Resolve / Mute / Reactivate.
import { h, clear, copyButton, setChildren } from "./dom.js";
import { api, link } from "./api.js";
import { fmtAgo, fmtNumber, fmtTime } from "./format.js";
import { sparkline } from "./charts.js";

function levelBadge(level) { return h("span", { class: `badge lvl lvl-${level}` }, level); }
function statusBadge(status) { return h("span", { class: `badge st-${status}`, "data-status": status }, status); }

function traceLink(traceId, spanId, text) {
  return h("a", { class: "trace-link mono", href: link(`/trace/${traceId}`, { span: spanId }), title: traceId }, text || traceId);
}

async function renderList(main, query) {
  const status = query.get("status") || "";
  const doc = await api("/ui/api/errors/items", { query: { status } });
  const filter = h("select", { id: "status-filter", "aria-label": "status" },
    [["", "All statuses"], ["active", "Active"], ["resolved", "Resolved"], ["muted", "Muted"]].map(([v, l]) => h("option", { value: v }, l)));
  filter.value = status;
  filter.addEventListener("change", () => { location.href = link("/errors", { status: filter.value }); });
  const hours = (doc.spark.bucket_s * (doc.items[0]?.sparkline.length || 48)) / 3600;
  const table = doc.items.length
    ? h("table", { class: "grid error-items" },
      h("thead", null, h("tr", null, h("th", null, "Item"), h("th", null, "Level"), h("th", null, "Status"), h("th", { class: "num" }, "Occurrences"),
        h("th", null, `Last ${hours} h`), h("th", null, "First seen"), h("th", null, "Last seen"), h("th", null, "Environment"), h("th", null, "Trace"))),
      h("tbody", null, doc.items.map((it) => {
        const href = link(`/errors/${it.id}`);
        const total = it.sparkline.reduce((a, b) => a + b, 0);
        const tr = h("tr", { class: "clickable", "data-item-id": String(it.id) },
          h("td", null, h("span", { class: "muted" }, `#${it.counter} `), h("a", { class: "item-title", href }, it.title)),
          h("td", null, levelBadge(it.level)),
          h("td", null, statusBadge(it.status)),
          h("td", { class: "num count" }, fmtNumber(it.total_occurrences)),
          h("td", null, sparkline(it.sparkline, { title: `${total} occurrence(s) in the last ${hours} h, per ${doc.spark.bucket_s / 60} min` })),
          h("td", { class: "nowrap", title: it.first_seen }, fmtAgo(it.first_seen)),
          h("td", { class: "nowrap", title: it.last_seen }, fmtAgo(it.last_seen)),
          h("td", null, it.environment),
          h("td", null, it.last_trace_id ? traceLink(it.last_trace_id, null, it.last_trace_id.slice(0, 12) + "…") : ""));
        tr.addEventListener("click", (ev) => { if (ev.target.tagName !== "A") location.href = href; });
        return tr;
      })))
    : h("p", { class: "muted" }, status ? `No ${status} items.` :
      "No errors yet. Point pyrollbar here: rollbar.init(key, endpoint='<this server>/api/1/').");
  setChildren(main, h("h1", null, "Errors"), h("div", { class: "toolbar" }, filter, h("span", { class: "grow" }),
    h("span", { class: "muted" }, `${doc.items.length} item${doc.items.length === 1 ? "" : "s"}`)), table);
  document.body.dataset.rendered = "errors";
}

function kvTable(obj, cls) {
  const rows = Object.entries(obj || {}).map(([k, v]) => h("tr", { "data-key": k }, h("td", { class: "k" }, k),
    h("td", { class: "v" }, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v ?? ""))));
  return rows.length ? h("table", { class: `kv ${cls || ""}` }, h("tbody", null, rows)) : h("p", { class: "muted" }, "none");
}

function stackTrace(occ) {
  if (!occ.exceptions.length) {
    return occ.message !== null && occ.message !== undefined
      ? h("div", { class: "frames message-body" }, occ.message) : h("p", { class: "muted" }, "No stack trace in this occurrence.");
  }
  return h("div", { class: "frames stack-trace" }, occ.exceptions.map((ex, i) => [
    i ? h("div", { class: "muted" }, "During handling of the above exception, another exception occurred:") : null,
    ex.frames.map((f) => h("div", { class: "frame" },
      h("div", null, "File ", h("span", { class: "where" }, `"${f.filename ?? "?"}"`), `, line ${f.lineno ?? "?"}, in `, h("span", { class: "method" }, f.method ?? "?")),
      f.code ? h("div", { class: "code" }, f.code) : null)),
    h("div", { class: "exc" }, `${ex.class}: ${ex.message ?? ""}`)]));
}

function occurrenceDetail(occ) {
  const req = occ.request || {};
  const { headers, GET, POST, body, ...rest } = req;
  return h("div", { class: "occurrence-detail", "data-occurrence-id": String(occ.id) },
    h("div", { class: "toolbar" },
      h("strong", null, fmtTime(occ.timestamp)), levelBadge(occ.level),
      h("span", { class: "muted mono" }, occ.uuid), copyButton(occ.uuid, "copy uuid"),
      h("span", { class: "grow" }),
      occ.trace_id ? traceLink(occ.trace_id, occ.span_id, "View trace →") : h("span", { class: "muted" }, "no trace context")),
    h("h2", null, "Stack trace"), stackTrace(occ),
    h("div", { class: "cards" },
      h("div", { class: "panel request-panel" }, h("h3", null, "Request"),
        req.method || req.url ? h("p", { class: "mono request-line" }, `${req.method || ""} ${req.url || ""}`.trim()) : null,
        kvTable(Object.fromEntries(Object.entries(rest).filter(([k]) => k !== "method" && k !== "url")), "request-fields"),
        headers ? [h("h3", null, "Headers"), kvTable(headers, "request-headers")] : null,
        GET && Object.keys(GET).length ? [h("h3", null, "Query"), kvTable(GET)] : null,
        POST && Object.keys(POST).length ? [h("h3", null, "Form"), kvTable(POST)] : null,
        body ? [h("h3", null, "Body"), h("pre", { class: "mono" }, typeof body === "string" ? body : JSON.stringify(body, null, 2))] : null),
      h("div", { class: "panel person-panel" }, h("h3", null, "Person"), kvTable(occ.person, "person"),
        h("h3", null, "Server"), kvTable(occ.server),
        occ.custom ? [h("h3", null, "Custom"), kvTable(typeof occ.custom === "object" ? occ.custom : { value: occ.custom })] : null)));
}

async function renderItem(main, itemId, query) {
  let doc = await api(`/ui/api/errors/items/${itemId}`, { query: { offset: query.get("offset") } });
  const head = h("div");
  const buttons = h("div", { class: "toolbar item-actions" });
  const occBody = h("tbody");
  const detail = h("section", { class: "panel" });
  let selected = null;

  function drawHead() {
    const it = doc.item;
    setChildren(head,
      h("p", null, h("a", { href: link("/errors") }, "← Errors")),
      h("h1", { class: "item-title" }, it.title),
      h("div", { class: "toolbar" }, h("span", { class: "muted" }, `#${it.counter}`), levelBadge(it.level), h("span", { id: "item-status" }, statusBadge(it.status)),
        h("span", { class: "item-count" }, `${fmtNumber(it.total_occurrences)} occurrence${it.total_occurrences === 1 ? "" : "s"}`),
        h("span", { class: "muted", title: it.first_seen }, `first seen ${fmtAgo(it.first_seen)}`),
        h("span", { class: "muted", title: it.last_seen }, `last seen ${fmtAgo(it.last_seen)}`),
        h("span", { class: "muted" }, it.environment), it.framework ? h("span", { class: "muted" }, it.framework) : null));
    const act = (id, label, status) => {
      const b = h("button", { type: "button", id, class: status === "resolved" ? "primary" : null }, label);
      b.addEventListener("click", async () => {
        b.disabled = true;
        try {
          const res = await api(`/ui/api/errors/items/${it.id}/status`, { method: "POST", body: { status } });
          doc = { ...doc, item: res.item };
          drawHead();
        } catch (err) {
          buttons.append(h("span", { class: "error-text" }, err.message));
          b.disabled = false;
        }
      });
      return b;
    };
    setChildren(buttons, ...(it.status === "active"
      ? [act("resolve", "Resolve", "resolved"), act("mute", "Mute", "muted")]
      : [act("reactivate", "Reactivate", "active"), it.status === "resolved" ? act("mute", "Mute", "muted") : act("resolve", "Resolve", "resolved")]));
  }

  function select(occ) {
    selected = occ;
    for (const tr of occBody.children) tr.classList.toggle("selected", tr.dataset.occurrenceId === String(occ.id));
    setChildren(detail, occurrenceDetail(occ));
    const url = new URL(location.href);
    url.searchParams.set("occurrence", String(occ.id));
    history.replaceState(null, "", url);
  }

  drawHead();
  const occs = doc.occurrences;
  occBody.append(...occs.map((o) => {
    const tr = h("tr", { class: "clickable", "data-occurrence-id": String(o.id) },
      h("td", { class: "nowrap", title: o.timestamp }, fmtTime(o.timestamp)),
      h("td", null, levelBadge(o.level)),
      h("td", null, o.request ? `${o.request.method || ""} ${o.request.url || ""}` : (o.message || "")),
      h("td", null, o.person ? (o.person.username || o.person.email || o.person.id || "") : ""),
      h("td", null, o.trace_id ? traceLink(o.trace_id, o.span_id, o.trace_id.slice(0, 12) + "…") : ""));
    tr.addEventListener("click", (ev) => { if (ev.target.tagName !== "A") select(o); });
    return tr;
  }));
  const offset = doc.offset || 0;
  const pager = h("div", { class: "toolbar" },
    offset > 0 ? h("a", { href: link(`/errors/${itemId}`, { offset: String(Math.max(0, offset - 20)) }) }, "← Newer") : null,
    occs.length === 20 ? h("a", { href: link(`/errors/${itemId}`, { offset: String(offset + 20) }) }, "Older →") : null);
  setChildren(main, head, buttons,
    h("h2", null, "Occurrences"),
    h("table", { class: "grid occurrences" }, h("thead", null, h("tr", null, h("th", null, "Time"), h("th", null, "Level"),
      h("th", null, "Request / message"), h("th", null, "Person"), h("th", null, "Trace"))), occBody),
    pager, detail);
  const wanted = query.get("occurrence");
  const first = occs.find((o) => String(o.id) === wanted) || occs[0];
  if (first) select(first);
  document.body.dataset.rendered = "error-item";
  return selected;
}

export async function render(main, { params, query }) {
  if (params[0]) await renderItem(main, params[0], query);
  else await renderList(main, query);
}
