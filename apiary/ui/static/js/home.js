// Home: every environment's datasets (spans, errors, last seen) and the newest traces of the current one.
import { h, clear, setChildren } from "./dom.js";
import { api, session, link } from "./api.js";
import { fmtDuration, fmtAgo, fmtTime, fmtNumber, serviceColour } from "./format.js";

function datasetsPanel(env) {
  const rows = env.datasets.map((d) => h("tr", { "data-dataset": d.name },
    h("td", null, h("span", { class: "swatch", style: { background: serviceColour(d.name) } }),
      h("a", { href: link("/query", { env: env.name, dataset: d.name }) }, d.name)),
    h("td", { class: "num spans" }, fmtNumber(d.spans)),
    h("td", { class: "num" }, d.errors ? h("span", { class: "badge err" }, fmtNumber(d.errors)) : "0"),
    h("td", { title: d.last_seen || "" }, fmtAgo(d.last_seen))));
  return h("div", { class: "panel env-panel", "data-env": env.name },
    h("h2", null, env.name, env.name === session.env ? h("span", { class: "muted" }, "  (current)") : null),
    env.datasets.length
      ? h("table", { class: "grid datasets" },
        h("thead", null, h("tr", null, h("th", null, "Dataset"), h("th", { class: "num" }, "Spans"), h("th", { class: "num" }, "Errors"),
          h("th", null, "Last seen"))),
        h("tbody", null, rows))
      : h("p", { class: "muted" }, "No data yet. Point an OpenTelemetry SDK here — see ", h("a", { href: link("/settings") }, "Settings"), "."));
}

function tracesTable(traces) {
  if (!traces.length) return h("p", { class: "muted" }, "No traces yet in this environment.");
  return h("table", { class: "grid recent-traces" },
    h("thead", null, h("tr", null, h("th", null, "Time"), h("th", null, "Root span"), h("th", null, "Service"),
      h("th", { class: "num" }, "Duration"), h("th", { class: "num" }, "Spans"), h("th", null, "Status"))),
    h("tbody", null, traces.map((t) => {
      const href = link(`/trace/${t.trace_id}`);
      const tr = h("tr", { class: "clickable", "data-trace-id": t.trace_id },
        h("td", { title: t.timestamp }, fmtTime(t.timestamp)),
        h("td", null, h("a", { href }, t.name || "(unnamed)")),
        h("td", null, h("span", { class: "swatch", style: { background: serviceColour(t.service) } }), t.service || ""),
        h("td", { class: "num duration" }, fmtDuration(t.duration_ms)),
        h("td", { class: "num" }, fmtNumber(t.spans)),
        h("td", null, t.error || t.errors
          ? h("span", { class: "badge err" }, t.error ? "error" : `${t.errors} error${t.errors > 1 ? "s" : ""}`)
          : h("span", { class: "badge ok" }, "ok")));
      tr.addEventListener("click", (ev) => { if (ev.target.tagName !== "A") location.href = href; });
      return tr;
    })));
}

export async function render(main, { query }) {
  const doc = await api("/ui/api/home", { query: { dataset: query.get("dataset") } });
  setChildren(main,
    h("h1", null, "Environments and datasets"),
    h("div", { class: "cards" }, doc.environments.map(datasetsPanel)),
    h("h2", null, `Recent traces in ${doc.environment}`),
    tracesTable(doc.recent));
}
