// Logs: log groups and streams, the newest events with a live tail, a CloudWatch filter pattern box, and Logs Insights.
import { h, clear, setChildren } from "./dom.js";
import { api, link } from "./api.js";
import { fmtAgo, fmtNumber, fmtTime, isoMicros } from "./format.js";
import { lineChart } from "./charts.js";

const POLL_MS = 2000;
const MAX_ROWS = 2000;
const RANGES = [["15m", 900], ["1h", 3600], ["6h", 21600], ["24h", 86400], ["7d", 604800]];
const DEFAULT_QUERY = "fields @timestamp, @message, @logStream\n| sort @timestamp desc\n| limit 20";

function isoOfMs(ms) { return ms ? new Date(ms).toISOString() : null; }

function levelBadge(level) {
  return level ? h("span", { class: `badge lvl lvl-${String(level).toLowerCase()}` }, level) : "";
}

export async function render(main, { query }) {
  const doc = await api("/ui/api/logs/groups");
  const groups = doc.groups;
  const state = {
    group: query.get("group") || (groups[0] ? groups[0].name : ""),
    stream: query.get("stream") || "",
    pattern: query.get("pattern") || "",
    at: query.get("at") ? Number(query.get("at")) : null, // a line's time (ms): show up to it, tail off
    cursor: null,
  };
  if (!groups.length) {
    setChildren(main, h("h1", null, "Logs"), h("div", { class: "panel" }, h("p", { class: "muted" },
      "No log groups yet. Send logs with boto3 or watchtower (AWS_ENDPOINT_URL pointing here, an Apiary key as both AWS keys), ",
      "or OTLP logs to /v1/logs.")));
    document.body.dataset.rendered = "logs";
    return;
  }

  // -- layout ------------------------------------------------------------------------------------
  const groupsBody = h("tbody");
  const streamsBody = h("tbody");
  const side = h("aside", { class: "logs-side" },
    h("div", { class: "panel" }, h("h2", { style: { marginTop: 0 } }, "Log groups"),
      h("table", { class: "grid log-groups" }, h("thead", null, h("tr", null, h("th", null, "Group"), h("th", { class: "num" }, "Events"),
        h("th", null, "Last event"))), groupsBody)),
    h("div", { class: "panel" }, h("h2", { style: { marginTop: 0 } }, "Streams"),
      h("table", { class: "grid log-streams" }, h("thead", null, h("tr", null, h("th", null, "Stream"), h("th", { class: "num" }, "Events"),
        h("th", null, "Last event"))), streamsBody)));

  const patternInput = h("input", { class: "pattern", id: "filter-pattern", type: "text", value: state.pattern, spellcheck: "false",
    placeholder: "Filter pattern: ERROR   ?WARN ?ERROR   \"exact phrase\" -health   { $.level = \"ERROR\" }   [ip, user, ...]",
    "aria-label": "filter pattern" });
  const filterError = h("p", { class: "error-text", id: "filter-error", hidden: true });
  const tailBox = h("input", { type: "checkbox", id: "live-tail", checked: state.at === null });
  const tailStatus = h("span", { class: "muted", id: "tail-status" });
  const latestButton = h("button", { type: "button", id: "show-latest", hidden: state.at === null }, "Show latest");
  const filterForm = h("form", { class: "toolbar", id: "filter-form" }, patternInput,
    h("button", { class: "primary", type: "submit" }, "Filter"),
    h("button", { type: "button", id: "clear-filter" }, "Clear"),
    h("label", null, tailBox, " Live tail"), tailStatus, latestButton);
  const eventsBody = h("tbody");
  const eventsTable = h("table", { class: "grid log-events" }, h("thead", null, h("tr", null, h("th", null, "Time"), h("th", null, "Stream"),
    h("th", null, "Level"), h("th", null, "Message"), h("th", null, "Trace"))), eventsBody);
  const scroller = h("div", { class: "log-scroll" }, eventsTable);
  const eventsInfo = h("p", { class: "muted", id: "events-info" });
  const title = h("h2", { id: "events-title", style: { marginTop: 0 } });

  const queryBox = h("textarea", { class: "insights", id: "insights-query", spellcheck: "false", "aria-label": "Logs Insights query" });
  queryBox.value = query.get("insights") || DEFAULT_QUERY;
  const rangeSelect = h("select", { id: "insights-range", "aria-label": "time range" },
    RANGES.map(([label, s]) => h("option", { value: String(s) }, `Last ${label}`)));
  rangeSelect.value = "3600";
  const insightsOut = h("div", { id: "insights-out" });
  const insightsPanel = h("section", { class: "panel insights-panel" },
    h("h2", { style: { marginTop: 0 } }, "Logs Insights"),
    h("p", { class: "muted" }, "fields, filter, parse, stats count(*) / avg() / pct() … by bin(5m), sort, limit — over the selected log group."),
    queryBox,
    h("div", { class: "toolbar" }, rangeSelect, h("button", { class: "primary", type: "button", id: "insights-run" }, "Run query"),
      h("span", { class: "muted", id: "insights-status" })),
    insightsOut);

  setChildren(main, h("h1", null, "Logs"), h("div", { class: "logs-layout" }, side,
    h("div", { class: "logs-main" }, h("section", { class: "panel" }, title, filterForm, filterError, scroller, eventsInfo), insightsPanel)));

  // -- groups and streams --------------------------------------------------------------------------
  function syncUrl() {
    const url = new URL(location.href);
    for (const [k, v] of [["group", state.group], ["stream", state.stream], ["pattern", state.pattern], ["at", state.at]]) {
      if (v === null || v === "") url.searchParams.delete(k); else url.searchParams.set(k, String(v));
    }
    history.replaceState(null, "", url);
  }

  function drawCatalogue() {
    setChildren(groupsBody, ...groups.map((g) => {
      const tr = h("tr", { class: g.name === state.group ? "clickable selected" : "clickable", "data-group": g.name },
        h("td", null, g.name), h("td", { class: "num" }, fmtNumber(g.events)),
        h("td", { title: isoOfMs(g.last_event_ms) || "" }, fmtAgo(isoOfMs(g.last_event_ms))));
      tr.addEventListener("click", () => { state.group = g.name; state.stream = ""; state.at = null; reload(); });
      return tr;
    }));
    const g = groups.find((x) => x.name === state.group);
    const all = h("tr", { class: state.stream ? "clickable" : "clickable selected", "data-stream": "" },
      h("td", null, h("em", null, "All streams")), h("td", { class: "num" }, g ? fmtNumber(g.events) : ""), h("td", null, ""));
    all.addEventListener("click", () => { state.stream = ""; reload(); });
    setChildren(streamsBody, all, ...(g ? g.streams : []).map((st) => {
      const tr = h("tr", { class: st.name === state.stream ? "clickable selected" : "clickable", "data-stream": st.name },
        h("td", { class: "mono" }, st.name), h("td", { class: "num" }, fmtNumber(st.events)),
        h("td", { title: isoOfMs(st.last_event_ms) || "" }, fmtAgo(isoOfMs(st.last_event_ms))));
      tr.addEventListener("click", () => { state.stream = st.name; reload(); });
      return tr;
    }));
  }

  // -- events --------------------------------------------------------------------------------------
  function eventRow(e, fresh) {
    const highlight = state.at !== null && e.timestamp_ms === state.at;
    return h("tr", { class: [highlight ? "highlight" : "", fresh ? "fresh" : ""].join(" ").trim() || null, "data-seq": String(e.seq),
      "data-trace-id": e.trace_id || "" },
    h("td", { class: "nowrap", title: e.timestamp }, fmtTime(e.timestamp)),
    h("td", { class: "mono" }, e.stream),
    h("td", null, levelBadge(e.level)),
    h("td", { class: "msg mono" }, e.message),
    h("td", null, e.trace_id
      ? h("a", { class: "trace-link mono", href: link(`/trace/${e.trace_id}`, { span: e.span_id }), title: e.trace_id }, e.trace_id.slice(0, 12) + "…")
      : ""));
  }

  function params(extra) {
    return { group: state.group, stream: state.stream, pattern: state.pattern, ...extra };
  }

  const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;

  async function reload() {
    syncUrl();
    drawCatalogue();
    title.textContent = state.stream ? `${state.group} / ${state.stream}` : `${state.group} (all streams)`;
    latestButton.hidden = state.at === null;
    filterError.hidden = true;
    state.cursor = null;
    clear(eventsBody);
    eventsInfo.textContent = "Loading…";
    let res;
    try {
      res = await api("/ui/api/logs/events", { query: params({ limit: 200, end_ms: state.at !== null ? state.at + 1 : null }) });
    } catch (err) {
      filterError.textContent = err.message;
      filterError.hidden = false;
      eventsInfo.textContent = "";
      return;
    }
    state.cursor = res.cursor;
    eventsBody.append(...res.events.map((e) => eventRow(e, false)));
    eventsInfo.textContent = `${res.events.length} newest matching event${res.events.length === 1 ? "" : "s"}` +
      (state.at !== null ? " up to the linked line" : "") + (res.truncated ? " (scan stopped early: narrow the pattern)" : "");
    const hl = eventsBody.querySelector("tr.highlight");
    if (hl) hl.scrollIntoView({ block: "center" }); else scroller.scrollTop = scroller.scrollHeight;
    document.body.dataset.rendered = "logs";
  }

  let polling = false;
  async function tick() {
    if (!tailBox.checked || document.hidden || polling || state.cursor === null) return;
    polling = true;
    try {
      const stick = nearBottom();
      const res = await api("/ui/api/logs/events", { query: params({ cursor: state.cursor }) });
      state.cursor = res.cursor;
      if (res.events.length) {
        eventsBody.append(...res.events.map((e) => eventRow(e, true)));
        while (eventsBody.children.length > MAX_ROWS) eventsBody.firstChild.remove();
        if (stick) scroller.scrollTop = scroller.scrollHeight;
        eventsInfo.textContent = `${eventsBody.children.length} events shown; live`;
      }
      tailStatus.textContent = `tailing · checked ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      tailStatus.textContent = `tail paused: ${err.message}`;
    } finally {
      polling = false;
    }
  }
  setInterval(tick, POLL_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  tailBox.addEventListener("change", () => {
    tailStatus.textContent = tailBox.checked ? "tailing" : "";
    if (tailBox.checked && state.at !== null) { state.at = null; reload(); }
  });
  latestButton.addEventListener("click", () => { state.at = null; tailBox.checked = true; reload(); });

  filterForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.pattern = patternInput.value.trim();
    reload();
  });
  document.getElementById("clear-filter").addEventListener("click", () => { patternInput.value = ""; state.pattern = ""; reload(); });

  // -- Insights ------------------------------------------------------------------------------------
  const insightsStatus = insightsPanel.querySelector("#insights-status");

  function chartFor(res, start, end) {
    const binCol = res.columns.findIndex((c) => /^bin\(/i.test(c));
    if (!res.is_stats || binCol < 0 || !res.rows.length) return null;
    const numeric = res.columns.map((c, i) => i !== binCol && res.rows.every((r) => r[i] === null || typeof r[i] === "number"));
    const keys = res.columns.map((c, i) => i !== binCol && !numeric[i]);
    const series = new Map();
    for (const r of res.rows) {
      const t = isoMicros(r[binCol]) / 1000;
      const group = res.columns.filter((c, i) => keys[i]).map((c) => String(r[res.columns.indexOf(c)])).join(", ");
      res.columns.forEach((c, i) => {
        if (!numeric[i]) return;
        const label = group ? `${c} · ${group}` : c;
        if (!series.has(label)) series.set(label, []);
        series.get(label).push([t, r[i]]);
      });
    }
    const lines = [...series].slice(0, 30).map(([label, points]) => ({ label, points: points.sort((a, b) => a[0] - b[0]) }));
    const times = lines.flatMap((l) => l.points.map((p) => p[0]));
    const box = lineChart({ title: `${res.columns.filter((c, i) => numeric[i]).join(", ")} by ${res.columns[binCol]}`, lines,
      // the data's extent (Insights leaves empty bins out), the query's range when there is one point only
      start: times.length > 1 ? Math.min(...times) : start * 1000, end: times.length > 1 ? Math.max(...times) : end * 1000 });
    box.classList.add("insights-chart");
    box.dataset.points = String(times.length);
    return box;
  }

  async function runInsights() {
    const text = queryBox.value.trim();
    if (!text) return;
    const end = Math.floor(Date.now() / 1000);
    const start = end - Number(rangeSelect.value);
    insightsStatus.textContent = "Running…";
    clear(insightsOut);
    let res;
    try {
      res = await api("/ui/api/logs/insights", { method: "POST", body: { query: text, groups: [state.group], start, end } });
    } catch (err) {
      insightsStatus.textContent = "";
      insightsOut.append(h("p", { class: "error-text", id: "insights-error" }, err.message));
      return;
    }
    insightsStatus.textContent = `${fmtNumber(res.rows.length)} rows · ${fmtNumber(res.statistics.matched)} records matched of ` +
      `${fmtNumber(res.statistics.scanned)} scanned`;
    const chart = chartFor(res, start, end);
    const traceCol = res.columns.indexOf("@traceId");
    insightsOut.append(chart || "", h("div", { class: "log-scroll" }, h("table", { class: "grid insights-results" },
      h("thead", null, h("tr", null, res.columns.map((c) => h("th", null, c)))),
      h("tbody", null, res.rows.map((r) => h("tr", null, r.map((v, i) => {
        if (i === traceCol && v) return h("td", null, h("a", { class: "trace-link mono", href: link(`/trace/${v}`) }, v));
        return h("td", { class: typeof v === "number" ? "num" : "mono msg" }, v === null ? "" : typeof v === "number" ? fmtNumber(v) : v);
      })))))));
  }
  document.getElementById("insights-run").addEventListener("click", runInsights);
  queryBox.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); runInsights(); } });

  await reload();
}
