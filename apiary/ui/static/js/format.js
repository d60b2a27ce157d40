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
const assigned = new Map();

/** A colour per service name, distinct for the first eleven services a page meets (red is kept for errors). */
export function serviceColour(name) {
  const key = name || "";
  let c = assigned.get(key);
  if (!c) {
    const free = PALETTE.filter((p) => p !== "#e15759");
    c = free[assigned.size % free.length];
    assigned.set(key, c);
  }
  return c;
}

export function seriesColour(i) { return PALETTE[i % PALETTE.length]; }
