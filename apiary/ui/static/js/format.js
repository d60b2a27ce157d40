// Numbers, durations and times, as people read them.

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms === 0) return "0 ms";
  if (ms < 1) return `${(ms * 1000).toFixed(ms < 0.01 ? 2 : 0)} µs`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 3 : 2)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${((ms - m * 60000) / 1000).toFixed(0)} s`;
}

/** A round duration for an axis tick: "500 µs", "2 ms", "1.5 s", with no trailing zeros. */
export function fmtDurationRound(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  const trim = (v) => String(Number(v.toPrecision(3)));
  if (ms === 0) return "0";
  if (ms < 1) return `${trim(ms * 1000)} µs`;
  if (ms < 1000) return `${trim(ms)} ms`;
  if (ms < 60000) return `${trim(ms / 1000)} s`;
  return `${trim(ms / 60000)} min`;
}

export function fmtNumber(v, digits = 2) {
  if (v === null || v === undefined) return "";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  if (a >= 1000) return v.toLocaleString("en-US", { maximumFractionDigits: 1 });
  if (a >= 1) return String(Number(v.toFixed(digits)));
  if (a === 0) return "0";
  return String(Number(v.toPrecision(3)));
}

/** ISO 8601 (up to microseconds, Z) -> microseconds since the epoch. */
export function isoMicros(iso) {
  if (!iso) return 0;
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$/.exec(iso);
  if (!m) return Date.parse(iso) * 1000;
  const base = Date.parse(m[1] + (m[3] || "Z"));
  const frac = (m[2] || "").padEnd(6, "0").slice(0, 6);
  return base * 1000 + Number(frac);
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(isoMicros(iso) / 1000);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function fmtAgo(iso) {
  if (!iso) return "never";
  const s = (Date.now() - isoMicros(iso) / 1000) / 1000;
  if (s < 5) return "just now";
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#af7aa1", "#86bcb6",
  "#e15759", "#bab0ac"];
const STORED = "apiary.serviceColours";

function loadAssigned() {
  try { return new Map(Object.entries(JSON.parse(localStorage.getItem(STORED) || "{}"))); } catch { return new Map(); }
}
const assigned = loadAssigned();

/**
 * A colour per service name, the same on every page and every visit: the first eleven services the browser meets get
 * distinct colours (red is kept for errors), remembered in localStorage, so a service keeps its colour from the
 * service map to the trace view to the query builder.
 */
export function serviceColour(name) {
  const key = name || "";
  let c = assigned.get(key);
  if (!c) {
    const free = PALETTE.filter((p) => p !== "#e15759");
    c = free[assigned.size % free.length];
    assigned.set(key, c);
    try { localStorage.setItem(STORED, JSON.stringify(Object.fromEntries(assigned))); } catch { /* private mode: this page only */ }
  }
  return c;
}

export function seriesColour(i) { return PALETTE[i % PALETTE.length]; }
