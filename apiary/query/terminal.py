"""`apiary query` on a terminal: flags -> a query spec, a result -> a table or a heatmap."""

from __future__ import annotations

import json
import re
import shutil
from typing import Any, Sequence

from apiary.query.spec import FILTER_OPS, LIST_FILTER_OPS, VALUELESS_FILTER_OPS, SpecError

_OPS = sorted(FILTER_OPS, key=len, reverse=True)
_WHERE = re.compile(r"^\s*(?P<col>\S+?)\s*(?P<op>" + "|".join(re.escape(o) for o in _OPS) + r")(?:\s+|$|(?<=[=<>])\s*)(?P<value>.*)$")
_CALC = re.compile(r"^\s*(?P<op>[A-Za-z0-9_]+)\s*(?:\(\s*(?P<col>[^)]*?)\s*\))?\s*$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SHADES = " .:-=+*#%@"


def parse_duration(text: str) -> int:
    m = _DURATION.match(text)
    if not m:
        raise SpecError(f"--last: {text!r} is not a duration like 90s, 30m, 2h or 1d")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _value(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_where(text: str) -> dict[str, Any]:
    """``http.status_code != 200``, ``app.user_id exists``, ``http.route in /a,/b``, ``name starts-with "GET "``."""
    m = _WHERE.match(text)
    if not m:
        raise SpecError(f"--where: cannot read {text!r}; write COLUMN OP VALUE with OP one of {', '.join(FILTER_OPS)}")
    col, op, raw = m.group("col"), m.group("op"), m.group("value")
    if op in VALUELESS_FILTER_OPS:
        if raw.strip():
            raise SpecError(f"--where: {op} takes no value")
        return {"column": col, "op": op}
    if op in LIST_FILTER_OPS:
        parsed = _value(raw)
        values = parsed if isinstance(parsed, list) else [_value(v) for v in raw.split(",")]
        return {"column": col, "op": op, "value": values}
    if not raw.strip():
        raise SpecError(f"--where: {op} needs a value")
    return {"column": col, "op": op, "value": _value(raw)}


def parse_calc(text: str) -> dict[str, Any]:
    m = _CALC.match(text)
    if not m:
        raise SpecError(f"--calc: cannot read {text!r}; write COUNT or OP(column), e.g. P90(duration_ms)")
    calc: dict[str, Any] = {"op": m.group("op").upper()}
    if m.group("col"):
        calc["column"] = m.group("col")
    return calc


def parse_order(text: str, breakdowns: Sequence[str]) -> dict[str, Any]:
    parts = text.rsplit(None, 1)
    direction = "ascending"
    if len(parts) == 2 and parts[1].lower() in ("asc", "ascending", "desc", "descending"):
        text, direction = parts[0], "descending" if parts[1].lower().startswith("desc") else "ascending"
    if text in breakdowns:
        return {"column": text, "order": direction}
    calc = parse_calc(text)
    return {**calc, "order": direction}


def parse_having(text: str) -> dict[str, Any]:
    m = re.match(r"^\s*(?P<calc>.+?)\s*(?P<op>!=|>=|<=|=|>|<)\s*(?P<value>\S+)\s*$", text)
    if not m:
        raise SpecError(f"--having: cannot read {text!r}; write e.g. 'COUNT > 10'")
    calc = parse_calc(m.group("calc"))
    value = _value(m.group("value"))
    return {"calculate_op": calc["op"], **({"column": calc["column"]} if "column" in calc else {}), "op": m.group("op"),
            "value": value}


def build_spec(*, calcs: Sequence[str] = (), wheres: Sequence[str] = (), group_by: Sequence[str] = (),
               orders: Sequence[str] = (), havings: Sequence[str] = (), limit: int | None = None, last: str | None = None,
               granularity: int | None = None, any_filter: bool = False, heatmap: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"calculations": [parse_calc(c) for c in calcs]}
    if heatmap:
        spec["calculations"].append({"op": "HEATMAP", "column": heatmap})
    if wheres:
        spec["filters"] = [parse_where(w) for w in wheres]
        spec["filter_combination"] = "OR" if any_filter else "AND"
    if group_by:
        spec["breakdowns"] = list(group_by)
    if orders:
        spec["orders"] = [parse_order(o, group_by) for o in orders]
    if havings:
        spec["havings"] = [parse_having(h) for h in havings]
    if limit is not None:
        spec["limit"] = limit
    if last:
        spec["time_range"] = parse_duration(last)
    if granularity:
        spec["granularity"] = granularity
    return spec


# -- output ----------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "(null)"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e12 else f"{value:.4g}"
    if isinstance(value, list):
        return f"[{sum(value)} in {len(value)} buckets]"
    return str(value)


def table(spec: dict[str, Any], data: dict[str, Any]) -> str:
    labels = list(spec.get("breakdowns", []))
    for c in spec.get("calculations") or [{"op": "COUNT"}]:
        label = c["op"] if not c.get("column") else f"{c['op']}({c['column']})"
        if c["op"] != "HEATMAP":
            labels.append(label)
    rows = [[_cell(r["data"].get(lbl)) for lbl in labels] for r in data["results"]]
    if not rows:
        return "(no matching spans)"
    widths = [max(len(lbl), *(len(r[i]) for r in rows)) for i, lbl in enumerate(labels)]
    numeric = [all(_is_number(r[i]) for r in rows) for i in range(len(labels))]
    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric)).rstrip()
    out = [line(labels), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return text == "(null)"


def heatmap(label: str, data: dict[str, Any], width: int | None = None, height: int = 20) -> str:
    """Time across, value up; darker is more spans."""
    hm = data.get("heatmaps", {}).get(label)
    if not hm or not hm["buckets"]:
        return f"{label}: (no values)"
    width = width or max(20, min(120, shutil.get_terminal_size((100, 24)).columns - 14))
    n_values = len(hm["buckets"])
    start, gran = data["start_time"], data["granularity"]
    n_times = max(1, -(-(data["end_time"] - start) // gran))
    cols = min(width, n_times)
    rows = min(height, n_values)
    grid = [[0] * cols for _ in range(rows)]
    from datetime import datetime
    for c in hm["cells"]:
        t = datetime.fromisoformat(c["time"].replace("Z", "+00:00")).timestamp()
        x = min(cols - 1, int((t - start) // gran) * cols // n_times)
        y = min(rows - 1, c["bucket"] * rows // n_values)
        grid[y][x] += c["count"]
    peak = max(max(r) for r in grid) or 1
    lo, hi = hm["buckets"][0]["lower"], hm["buckets"][-1]["upper"]
    step = (hi - lo) / rows
    out = [label]
    for y in range(rows - 1, -1, -1):
        shades = "".join(_SHADES[0 if v == 0 else 1 + (len(_SHADES) - 2) * v // peak] for v in grid[y])
        out.append(f"{lo + (y + 1) * step:>11.2f} |{shades}")
    out.append(" " * 12 + "+" + "-" * cols)
    first = datetime.utcfromtimestamp(start).strftime("%H:%M")
    last = datetime.utcfromtimestamp(data["end_time"]).strftime("%H:%M")
    out.append(" " * 13 + first + " " * max(1, cols - len(first) - len(last)) + last + " UTC")
    total = sum(sum(r) for r in grid)
    out.append(f"{total} values; darkest cell {peak}; scale '{_SHADES}'")
    return "\n".join(out)
