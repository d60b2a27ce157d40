// One table for every list of traces in the UI (Traces page, query builder rows and heatmap selections):
// root span (or the earliest span, flagged, when the root is missing), service, start, duration, spans, errors.
import { h } from "./dom.js";
import { api, link } from "./api.js";
import { fmtDuration, fmtNumber, fmtTime, serviceColour } from "./format.js";

/** POST /api/traces/search (through the UI's pass-through, acting for the current environment). */
export function searchTraces(body) {
  return api("/ui/api/hc/api/traces/search", { method: "POST", body });
}

/** The rows for known trace ids, in the order given (ids not stored are left out). */
export async function rowsFor(ids) {
  if (!ids.length) return [];
  const doc = await searchTraces({ trace_ids: ids, limit: Math.min(ids.length, 1000) });
  const byId = new Map(doc.traces.map((t) => [t.trace_id, t]));
  return ids.map((id) => byId.get(id)).filter(Boolean);
}

export function matchedCaption(doc) {
  return `${fmtNumber(doc.returned)} of ${fmtNumber(doc.matched)} traces matched`;
}

/** ``onPick(trace, checked)``: adds a checkbox per row (the Traces page picks two to compare). */
export function traceTable(traces, { onPick = null } = {}) {
  return h("table", { class: "grid traces" },
    h("thead", null, h("tr", null, onPick ? h("th", null, "") : null, h("th", null, "Trace"), h("th", null, "Root span"),
      h("th", null, "Service"), h("th", null, "Start"), h("th", { class: "num" }, "Duration"), h("th", { class: "num" }, "Spans"),
      h("th", { class: "num" }, "Errors"))),
    h("tbody", null, traces.map((t) => {
      const pick = onPick ? h("input", { type: "checkbox", class: "pick", "aria-label": `pick ${t.trace_id}` }) : null;
      if (pick) pick.addEventListener("change", () => onPick(t, pick.checked));
      return h("tr", { "data-trace-id": t.trace_id },
        pick ? h("td", null, pick) : null,
        h("td", null, h("a", { href: link(`/trace/${t.trace_id}`), class: "mono trace-link" }, t.trace_id)),
        h("td", { class: "root-name" }, t.root_name || "(unnamed)",
          t.root_missing ? h("span", { class: "badge warn root-missing", title: "The root span is missing: this is the earliest span" }, "no root") : null),
        h("td", { class: "root-service" }, h("span", { class: "swatch", style: { background: serviceColour(t.root_service) } }), t.root_service || ""),
        h("td", { class: "start", title: t.start }, fmtTime(t.start)),
        h("td", { class: "num duration" }, fmtDuration(t.duration_ms)),
        h("td", { class: "num spans" }, fmtNumber(t.spans)),
        h("td", { class: "num errors" }, t.errors ? h("span", { class: "badge err" }, fmtNumber(t.errors)) : "0"));
    })));
}
