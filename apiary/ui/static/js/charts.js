// Charts drawn here: SVG line charts (one line per group) and a canvas heatmap with region selection.
import { h, s, clear } from "./dom.js";
import { fmtNumber, isoMicros, seriesColour, fmtDuration, fmtDurationRound } from "./format.js";

const PAD = { left: 56, right: 14, top: 10, bottom: 24 };

function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  if (spanMs > 2 * 86400e3) return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: spanMs < 600e3 ? "2-digit" : undefined });
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const pow = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * pow >= v) return m * pow;
  return 10 * pow;
}

/**
 * lines: [{label, colour, points: [[ms, value|null], ...]}]; start/end in ms.
 * dots (optional): [{t: ms, v: value, title, onClick}] drawn over the lines (a metric's exemplars).
 * Returns an element; hovering shows every line's value at the nearest time.
 */
export function lineChart({ title, lines, start, end, height = 190, dots = [], stepMs = 0, onSelect = null }) {
  const box = h("div", { class: "chart line-chart", "data-title": title }, h("div", { class: "title" }, title));
  const width = Math.max(400, (document.getElementById("main")?.clientWidth || 1000) - 60);
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  let maxV = 0;
  for (const l of lines) for (const [, v] of l.points) if (v !== null && v > maxV) maxV = v;
  for (const d of dots) if (d.v > maxV) maxV = d.v;
  const yMax = niceMax(maxV);
  const x = (t) => PAD.left + ((t - start) / Math.max(end - start, 1)) * plotW;
  const y = (v) => PAD.top + plotH - (v / yMax) * plotH;
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}` });
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg.append(s("line", { x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v), stroke: "#eceef2" }),
      s("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7280" }, fmtNumber(v)));
  }
  for (let i = 0; i <= 5; i++) {
    const t = start + ((end - start) * i) / 5;
    svg.append(s("text", { x: x(t), y: height - 6, "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle", "font-size": 11, fill: "#6b7280" },
      timeLabel(t, end - start)));
  }
  lines.forEach((l, i) => {
    const colour = l.colour || seriesColour(i);
    let d = "";
    let pen = false;
    const lone = [];  // a value with no neighbour draws no line: mark it, or a sparse series looks empty
    l.points.forEach(([t, v], k) => {
      if (v === null || v === undefined) { pen = false; return; }
      const next = l.points[k + 1];
      if (!pen && (next === undefined || next[1] === null || next[1] === undefined)) lone.push([t, v]);
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    svg.append(s("path", { d, fill: "none", stroke: colour, "stroke-width": 1.6, class: "series", "data-label": l.label }));
    for (const [t, v] of lone) svg.append(s("circle", { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2.5, fill: colour, class: "lone" }));
  });
  const cursor = s("line", { y1: PAD.top, y2: PAD.top + plotH, stroke: "#9aa1ad", visibility: "hidden" });
  svg.append(cursor);
  for (const d of dots) {
    const dot = s("circle", { cx: x(d.t).toFixed(1), cy: y(Math.max(d.v || 0, 0)).toFixed(1), r: 4.5, class: "exemplar" },
      s("title", null, d.title || ""));
    if (d.onClick) dot.addEventListener("click", d.onClick);
    svg.append(dot);
  }
  const tip = h("div", { class: "hover-tip", hidden: true });
  box.append(svg, tip);
  if (lines.length > 1) {
    box.append(h("div", { class: "legend" }, lines.slice(0, 30).map((l, i) =>
      h("span", null, h("span", { class: "swatch", style: { background: l.colour || seriesColour(i) } }), l.label))));
  }
  svg.addEventListener("mousemove", (ev) => {
    const r = svg.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * width;
    const t = start + ((px - PAD.left) / plotW) * (end - start);
    const pts = lines[0]?.points || [];
    if (!pts.length) return;
    let best = 0;
    for (let i = 1; i < pts.length; i++) if (Math.abs(pts[i][0] - t) < Math.abs(pts[best][0] - t)) best = i;
    const bt = pts[best][0];
    cursor.setAttribute("x1", x(bt)); cursor.setAttribute("x2", x(bt)); cursor.setAttribute("visibility", "visible");
    const rows = lines.slice(0, 12).map((l) => `${l.label}: ${fmtNumber(l.points[best]?.[1] ?? null) || "–"}`);
    tip.textContent = [new Date(bt).toLocaleString(), ...rows].join("\n");
    tip.hidden = false;
    tip.style.left = `${Math.min(ev.clientX - r.left + 12, r.width - 220)}px`;
    tip.style.top = "28px";
  });
  svg.addEventListener("mouseleave", () => { tip.hidden = true; cursor.setAttribute("visibility", "hidden"); });
  Object.assign(svg.dataset, { plotLeft: PAD.left, plotTop: PAD.top, plotWidth: plotW, plotHeight: plotH, start, end, yMax });
  if (onSelect) selectPoints({ svg, box, lines, x, y, start, end, stepMs, plotW, plotH, width, onSelect });
  return box;
}

/**
 * Chart points chosen by dragging across a line chart: the line nearest to where the drag starts (its group), and every
 * time bucket the drag covers. ``onSelect({startMs, endMs, line, points})`` fires on release; a click picks one point.
 */
function selectPoints({ svg, box, lines, x, y, start, end, stepMs, plotW, plotH, width, onSelect }) {
  const band = s("rect", { class: "point-selection", y: PAD.top, height: plotH, visibility: "hidden" });
  svg.append(band);
  const at = (ev) => {
    const r = svg.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * width;
    const py = ((ev.clientY - r.top) / r.height) * (svg.viewBox.baseVal.height || r.height);
    return { t: start + ((px - PAD.left) / plotW) * (end - start), py };
  };
  const nearestLine = (t, py) => {
    let best = null, bestD = Infinity;
    for (const l of lines) {
      let p = null;
      for (const q of l.points) if (q[1] !== null && (!p || Math.abs(q[0] - t) < Math.abs(p[0] - t))) p = q;
      if (p && Math.abs(y(p[1]) - py) < bestD) { bestD = Math.abs(y(p[1]) - py); best = l; }
    }
    return best;
  };
  const covered = (t0, t1) => {
    const step = stepMs || 1;
    const lo = Math.max(start, Math.floor((Math.min(t0, t1) - start) / step) * step + start);
    const hi = Math.min(end, Math.floor((Math.max(t0, t1) - start) / step) * step + start + step);
    return [lo, hi];
  };
  let anchor = null;
  svg.addEventListener("mousedown", (ev) => {
    const a = at(ev);
    anchor = { t: a.t, line: nearestLine(a.t, a.py) };
    ev.preventDefault();
  });
  svg.addEventListener("mousemove", (ev) => {
    if (!anchor) return;
    const [lo, hi] = covered(anchor.t, at(ev).t);
    band.setAttribute("x", x(lo)); band.setAttribute("width", Math.max(x(hi) - x(lo), 1)); band.setAttribute("visibility", "visible");
  });
  window.addEventListener("mouseup", (ev) => {
    if (!anchor) return;
    const [lo, hi] = covered(anchor.t, at(ev).t);
    const line = anchor.line;
    anchor = null;
    band.setAttribute("x", x(lo)); band.setAttribute("width", Math.max(x(hi) - x(lo), 1)); band.setAttribute("visibility", "visible");
    const points = line ? line.points.filter(([t, v]) => t >= lo && t < hi && v !== null).length : 0;
    box.dataset.selected = `${lo},${hi}`;
    onSelect({ startMs: lo, endMs: hi, line, points });
  });
}

/** Where ``v`` sits between the bottom (0) and top (1) of the heatmap: by its bucket, then within it (in log if the scale is). */
function valueOffset(buckets, v, log) {
  const nb = buckets.length;
  let b = buckets.findIndex((k) => v <= k.upper);
  if (b < 0) b = nb - 1;
  const { lower, upper } = buckets[b];
  let frac = 0.5;
  if (upper > lower) {
    frac = log && lower > 0 ? Math.log(v / lower) / Math.log(upper / lower) : (v - lower) / (upper - lower);
  }
  return (b + Math.min(Math.max(frac, 0), 1)) / nb;
}

/** Tick values at round numbers inside [lo, hi]: 1-2-5 steps on a linear axis, powers of ten (and 2, 5 between) on a log one. */
export function roundTicks(lo, hi, log = false, wanted = 5) {
  if (!(hi > lo)) return Number.isFinite(lo) ? [lo] : [];
  if (log && hi > 0) {
    const from = Math.floor(Math.log10(Math.max(lo, hi / 1e6))), to = Math.ceil(Math.log10(hi));
    const all = [];
    for (let e = from; e <= to; e++) for (const m of [1, 2, 5]) all.push(Number((m * 10 ** e).toPrecision(1)));
    const inside = all.filter((v) => v >= lo && v <= hi);
    const decades = inside.filter((v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9);
    return inside.length <= wanted + 2 ? inside : decades;
  }
  const raw = (hi - lo) / wanted;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw) || 10 * pow;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The heatmap's colour key: the lightest cell holds one event, the darkest the most. */
function colourLegend(maxC) {
  const stops = [0, 0.25, 0.5, 0.75, 1].map((f) => heatColour(0.15 + 0.85 * f));
  return h("div", { class: "heat-legend", "data-max": String(maxC) },
    h("span", { class: "muted" }, "events per cell: 1"),
    h("span", { class: "heat-ramp", style: { background: `linear-gradient(to right, ${stops.join(", ")})` } }),
    h("span", { class: "muted" }, `${fmtNumber(maxC)} (colour on a log scale)`));
}

function heatColour(frac) {
  // light yellow -> orange -> deep purple
  const stops = [[255, 244, 196], [253, 174, 97], [215, 48, 39], [84, 39, 136]];
  const f = Math.min(Math.max(frac, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(f), stops.length - 2);
  const t = f - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/**
 * A heatmap: x = time buckets, y = value buckets, colour = count. ``onSelect({startMs, endMs, lower, upper, count})``
 * fires for a click (one cell) or a dragged region.
 */
export function heatmap({ title, heat, start, end, granularityS, onSelect, height = 260, isDuration = false,
  log = false, onScale = null }) {
  const scaleBox = h("input", { type: "checkbox", class: "log-scale", checked: log });
  if (onScale) scaleBox.addEventListener("change", () => onScale(scaleBox.checked));
  const head = h("div", { class: "title heatmap-head" }, h("span", null, title),
    onScale ? h("label", { class: "muted", title: "Value buckets evenly spaced in log(value): the fast bulk and the slow tail both get rows" },
      scaleBox, " log scale") : null);
  const box = h("div", { class: "chart heatmap", "data-title": title, "data-scale": log ? "log" : "linear" }, head);
  const width = Math.max(400, (document.getElementById("main")?.clientWidth || 1000) - 60);
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const buckets = heat.buckets || [];
  const nb = Math.max(buckets.length, 1);
  const nt = Math.max(1, Math.round((end - start) / (granularityS * 1000)));
  const grid = new Map();
  let maxC = 0;
  for (const c of heat.cells || []) {
    const ti = Math.round((isoMicros(c.time) / 1000 - start) / (granularityS * 1000));
    const k = ti * nb + c.bucket;
    const v = (grid.get(k) || 0) + c.count;
    grid.set(k, v);
    if (v > maxC) maxC = v;
  }
  const canvas = h("canvas", { width: width * (window.devicePixelRatio || 1), height: height * (window.devicePixelRatio || 1),
    style: { width: `${width}px`, height: `${height}px` } });
  const ctx = canvas.getContext("2d");
  ctx.scale(window.devicePixelRatio || 1, window.devicePixelRatio || 1);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  const cw = plotW / nt;
  const ch = plotH / nb;
  const logMax = Math.log1p(maxC);
  for (const [k, v] of grid) {
    const ti = Math.floor(k / nb), b = k % nb;
    ctx.fillStyle = heatColour(0.15 + 0.85 * (Math.log1p(v) / (logMax || 1)));
    ctx.fillRect(PAD.left + ti * cw, PAD.top + plotH - (b + 1) * ch, Math.max(cw, 1), Math.max(ch, 1));
  }
  ctx.fillStyle = "#6b7280";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "right";
  const fmtV = (v) => (isDuration ? fmtDuration(v) : fmtNumber(v));
  const fmtTick = (v) => (isDuration ? fmtDurationRound(v) : fmtNumber(v));
  const ticks = buckets.length ? roundTicks(buckets[0].lower, buckets[nb - 1].upper, log) : [];
  for (const v of ticks) {
    const py = PAD.top + plotH - valueOffset(buckets, v, log) * plotH;
    ctx.fillText(fmtTick(v), PAD.left - 6, py + 4);
    ctx.fillRect(PAD.left - 3, py, 3, 1);
  }
  for (let i = 0; i <= 5; i++) {
    const t = start + ((end - start) * i) / 5;
    ctx.textAlign = i === 0 ? "left" : i === 5 ? "right" : "center";
    ctx.fillText(timeLabel(t, end - start), PAD.left + (plotW * i) / 5, height - 6);
  }
  ctx.strokeStyle = "#e3e5ea";
  ctx.strokeRect(PAD.left, PAD.top, plotW, plotH);
  const sel = h("div", { class: "selection", hidden: true });
  const tip = h("div", { class: "hover-tip", hidden: true });
  box.append(canvas, sel, tip, colourLegend(maxC));

  const cellAt = (ev) => {
    const r = canvas.getBoundingClientRect();
    const px = ev.clientX - r.left, py = ev.clientY - r.top;
    const ti = Math.min(nt - 1, Math.max(0, Math.floor((px - PAD.left) / cw)));
    const b = Math.min(nb - 1, Math.max(0, Math.floor((PAD.top + plotH - py) / ch)));
    return { ti, b };
  };
  const region = (a, z) => {
    const t0 = Math.min(a.ti, z.ti), t1 = Math.max(a.ti, z.ti), b0 = Math.min(a.b, z.b), b1 = Math.max(a.b, z.b);
    let count = 0;
    for (let t = t0; t <= t1; t++) for (let b = b0; b <= b1; b++) count += grid.get(t * nb + b) || 0;
    return { t0, t1, b0, b1, count, startMs: start + t0 * granularityS * 1000, endMs: start + (t1 + 1) * granularityS * 1000,
      lower: buckets[b0]?.lower, upper: buckets[b1]?.upper, lastBucket: b1 === nb - 1 };
  };
  const showSel = (rg) => {
    const offX = canvas.offsetLeft, offY = canvas.offsetTop;
    Object.assign(sel.style, { left: `${offX + PAD.left + rg.t0 * cw}px`, width: `${(rg.t1 - rg.t0 + 1) * cw}px`,
      top: `${offY + PAD.top + plotH - (rg.b1 + 1) * ch}px`, height: `${(rg.b1 - rg.b0 + 1) * ch}px` });
    sel.hidden = false;
  };
  let anchor = null;
  canvas.addEventListener("mousedown", (ev) => { anchor = cellAt(ev); showSel(region(anchor, anchor)); ev.preventDefault(); });
  canvas.addEventListener("mousemove", (ev) => {
    const c = cellAt(ev);
    if (anchor) showSel(region(anchor, c));
    const rg = region(c, c);
    tip.textContent = `${new Date(rg.startMs).toLocaleTimeString()}  ${fmtV(rg.lower)} – ${fmtV(rg.upper)}\ncount: ${rg.count}`;
    tip.hidden = false;
    tip.style.left = `${Math.min(ev.clientX - canvas.getBoundingClientRect().left + 14, width - 200)}px`;
    tip.style.top = "24px";
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
  window.addEventListener("mouseup", (ev) => {
    if (!anchor) return;
    const rg = region(anchor, cellAt(ev));
    anchor = null;
    if (onSelect) onSelect(rg);
  });
  Object.assign(canvas.dataset, { plotLeft: PAD.left, plotTop: PAD.top, plotWidth: plotW, plotHeight: plotH, times: nt, buckets: nb });
  canvas.dataset.yTicks = ticks.join(",");
  box.dataset.cells = String(grid.size);
  box.dataset.max = String(maxC);
  return box;
}

/** A tiny bar chart of counts (one bar per bucket); the title says the total. */
export function sparkline(values, { width = 120, height = 24, title = "" } = {}) {
  const max = Math.max(1, ...values);
  const bw = width / Math.max(values.length, 1);
  const svg = s("svg", { class: "sparkline", width, height, viewBox: `0 0 ${width} ${height}`, "data-values": values.join(",") },
    s("title", null, title));
  svg.append(s("line", { x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5, stroke: "#e3e5ea" }));
  values.forEach((v, i) => {
    if (!v) return;
    const bh = Math.max(2, (v / max) * (height - 2));
    svg.append(s("rect", { x: (i * bw + 0.5).toFixed(1), y: (height - bh).toFixed(1), width: Math.max(bw - 1, 1).toFixed(1), height: bh.toFixed(1) }));
  });
  return svg;
}
