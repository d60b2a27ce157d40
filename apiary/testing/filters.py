"""Filters in Honeycomb's terms (``column op value``, as the Query spec's ``filters``), written three ways.

``"app.result_length = 3"`` (the CLI's ``--where``, parsed by the CLI's own parser), ``("name", "=", "x")``
or ``{"column": "name", "op": "=", "value": "x"}``; keyword arguments are equalities
(``**{"service.name": "api"}``). Spans are filtered by the server (the Query Data API); log lines and
error occurrences, which Apiary reads through other APIs, by `matches` here, which also says, for the
failure messages, which filters a near-miss failed.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

Filter = dict[str, Any]
FilterLike = str | Sequence[Any] | Mapping[str, Any]


def parse(filters: Iterable[FilterLike], equals: Mapping[str, Any] | None = None) -> list[Filter]:
    out: list[Filter] = []
    for f in filters:
        if isinstance(f, str):
            from apiary.query.terminal import parse_where

            out.append(parse_where(f))
        elif isinstance(f, Mapping):
            if "column" not in f or "op" not in f:
                raise ValueError(f"a filter needs 'column' and 'op': {dict(f)!r}")
            out.append(dict(f))
        elif isinstance(f, Sequence) and len(f) in (2, 3):
            out.append({"column": f[0], "op": f[1], **({"value": f[2]} if len(f) == 3 else {})})
        else:
            raise ValueError(f"cannot read the filter {f!r}: write 'COLUMN OP VALUE', (column, op, value) or a dict")
    out += [{"column": k, "op": "=", "value": v} for k, v in (equals or {}).items()]
    return out


def describe(f: Filter) -> str:
    """The filter as the CLI's ``--where`` writes it."""
    if "value" not in f:
        return f"{f['column']} {f['op']}"
    value = f["value"]
    shown = ",".join(_show(v) for v in value) if isinstance(value, list) else _show(value)
    return f"{f['column']} {f['op']} {shown}"


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _comparable(actual: Any, wanted: Any) -> tuple[Any, Any]:
    """Honeycomb compares a number column with a number and anything else as text."""
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return str(actual).lower(), str(wanted).lower()
    if isinstance(actual, (int, float)) and isinstance(wanted, (int, float)):
        return actual, wanted
    if isinstance(actual, (int, float)) and isinstance(wanted, str):
        try:
            return actual, float(wanted)
        except ValueError:
            pass
    return ("" if actual is None else str(actual)), str(wanted)


def holds(f: Filter, record: Mapping[str, Any]) -> bool:
    op, present = f["op"], record.get(f["column"]) is not None
    actual = record.get(f["column"])
    if op == "exists":
        return present
    if op == "does-not-exist":
        return not present
    if op in ("in", "not-in"):
        found = present and any(_equal(actual, v) for v in f["value"])
        return found if op == "in" else not found
    if op.startswith("does-not-") or op == "!=":
        positive = {"!=": "=", "does-not-start-with": "starts-with", "does-not-end-with": "ends-with",
                    "does-not-contain": "contains"}[op]
        return not holds({**f, "op": positive}, record)
    if not present:
        return False
    if op == "=":
        return _equal(actual, f["value"])
    a, w = _comparable(actual, f["value"])
    if op in (">", ">=", "<", "<="):
        if type(a) is not type(w) and not (isinstance(a, (int, float)) and isinstance(w, (int, float))):
            return False
        return {">": a > w, ">=": a >= w, "<": a < w, "<=": a <= w}[op]
    a, w = str(actual), str(f["value"])
    return {"starts-with": a.startswith(w), "ends-with": a.endswith(w), "contains": w in a}[op]


def _equal(actual: Any, wanted: Any) -> bool:
    a, w = _comparable(actual, wanted)
    return a == w


def failed(filters: Sequence[Filter], record: Mapping[str, Any]) -> list[Filter]:
    return [f for f in filters if not holds(f, record)]


def matches(filters: Sequence[Filter], record: Mapping[str, Any]) -> bool:
    return not failed(filters, record)
