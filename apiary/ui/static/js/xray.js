// X-Ray: groups with their filter expressions, and sampling rules with the statistics the SDKs reported.
import { h, clear, setChildren } from "./dom.js";
import { api, link } from "./api.js";
import { fmtAgo, fmtNumber } from "./format.js";

function pct(v) { return `${fmtNumber(Math.round(v * 1000) / 10)}%`; }

export async function render(main) {
  const doc = await api("/ui/api/xray");
  const groups = h("table", { class: "grid xray-groups" },
    h("thead", null, h("tr", null, h("th", null, "Group"), h("th", null, "Filter expression"), h("th", null, "Insights"), h("th", null, "ARN"))),
    h("tbody", null, doc.groups.map((g) => h("tr", { "data-group": g.name },
      h("td", null, g.name),
      h("td", { class: "mono filter-expression" }, g.filter_expression || h("span", { class: "muted" }, "(every trace)")),
      h("td", null, g.insights ? "on" : "off"),
      h("td", { class: "mono muted" }, g.arn)))));
  const rules = h("table", { class: "grid sampling-rules" },
    h("thead", null, h("tr", null, h("th", { class: "num" }, "Priority"), h("th", null, "Rule"), h("th", null, "Matches"),
      h("th", { class: "num" }, "Reservoir"), h("th", { class: "num" }, "Fixed rate"), h("th", { class: "num" }, "Requests"),
      h("th", { class: "num" }, "Sampled"), h("th", { class: "num" }, "Borrowed"), h("th", { class: "num" }, "Sampled %"),
      h("th", null, "Last report"))),
    h("tbody", null, doc.rules.map((r) => {
      const match = [["service", r.service_name], ["type", r.service_type], ["host", r.host], ["method", r.http_method],
        ["path", r.url_path], ["resource", r.resource_arn]].filter(([, v]) => v && v !== "*").map(([k, v]) => `${k}=${v}`);
      for (const [k, v] of Object.entries(r.attributes || {})) match.push(`${k}=${v}`);
      return h("tr", { "data-rule": r.name },
        h("td", { class: "num" }, String(r.priority)),
        h("td", null, r.name),
        h("td", { class: "mono" }, match.length ? match.join(", ") : h("span", { class: "muted" }, "everything")),
        h("td", { class: "num reservoir" }, `${r.reservoir_size}/s`),
        h("td", { class: "num fixed-rate" }, pct(r.fixed_rate)),
        h("td", { class: "num requests" }, fmtNumber(r.requests)),
        h("td", { class: "num sampled" }, fmtNumber(r.sampled)),
        h("td", { class: "num borrowed" }, fmtNumber(r.borrowed)),
        h("td", { class: "num" }, r.requests ? pct(r.sampled / r.requests) : "–"),
        h("td", { title: r.stats_at || "" }, r.stats_at ? fmtAgo(r.stats_at) : h("span", { class: "muted" }, "none yet")));
    })));
  setChildren(main,
    h("h1", null, "X-Ray"),
    h("p", { class: "muted" }, "X-Ray traces appear beside OpenTelemetry spans on the ", h("a", { href: link("/") }, "home page"),
      " and in the ", h("a", { href: link("/services") }, "service map"), "."),
    h("h2", null, `Groups (${doc.groups.length})`), groups,
    h("h2", null, `Sampling rules (${doc.rules.length})`),
    h("p", { class: "muted" }, "Statistics are what the X-Ray SDKs reported (GetSamplingTargets) over the last hour."),
    rules);
  document.body.dataset.rendered = "xray";
}
