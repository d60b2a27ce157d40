"""Column-wise assembly of a `SpanBatch`.

Receivers decode thousands of spans per request; building one dict per row
and converting at the end costs about twice as much as filling per-column
lists, so the builder keeps one Python list per column, sized up front.

An attribute column takes the type of the first value seen. Integers and
floats mixed in one column become floats; any other clash (a string where an
integer column already exists) sends that one value to the row's ``_attrs``
JSON object instead of losing it or retyping the column.

Values no column can hold are defined here, once for every receiver: NaN and
+-Infinity are dropped (the attribute is null for that row), an integer past
64 bits becomes a float (past a double's range, its decimal text), NaN/Infinity inside an array or object value become
JSON ``null``, and ``duration_ms`` is never negative (an end before the start
gives 0, as Honeycomb shows such a span) nor non-finite (null).

Limits (``apiary.model.limits``) apply here, in the decoder, so their cost
falls on the request that sent the outsized span: past ``max_attributes`` on
one row the remaining attributes are dropped, and strings longer than
``max_value_bytes`` are cut there, as Honeycomb does. The batch's ``errors``
then say so, and OTLP answers with a ``partial_success`` warning.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from apiary.model.limits import DEFAULT, SpanLimits, truncate_utf8
from apiary.model.span import (
    CORE_FIELDS,
    CORE_NAMES,
    DATASET_COLUMN,
    INTERNAL_NAMES,
    OVERFLOW_COLUMN,
    SpanBatch,
)

_KIND_STRING, _KIND_INT, _KIND_FLOAT, _KIND_BOOL = 0, 1, 2, 3
_ARROW_OF_KIND = {_KIND_STRING: pa.string(), _KIND_INT: pa.int64(), _KIND_FLOAT: pa.float64(), _KIND_BOOL: pa.bool_()}


def value_kind(value: Any) -> int:
    if value.__class__ is bool:
        return _KIND_BOOL
    if value.__class__ is int:
        return _KIND_INT
    if value.__class__ is float:
        return _KIND_FLOAT
    return _KIND_STRING


class BatchBuilder:
    """Collects ``rows`` rows; core and attribute values are set by row index."""

    def __init__(self, rows: int, limits: SpanLimits = DEFAULT) -> None:
        self.rows = rows
        self.limits = limits
        self.counts = [0] * rows  # attributes kept per row
        self.dropped = 0  # attributes past the per-span cap
        self.truncated = 0  # values cut to max_value_bytes
        self.core: dict[str, list[Any]] = {f.name: [None] * rows for f in CORE_FIELDS}
        self.dataset: list[str | None] = [None] * rows
        self.attrs: dict[str, list[Any]] = {}
        self.kinds: dict[str, int] = {}
        self.overflow: dict[int, dict[str, Any]] = {}

    def set_attr(self, row: int, key: str, value: Any) -> None:
        """Store one attribute value, keeping its type where the column allows it."""
        if value is None:
            return
        value = _storable(value)
        if value is None:
            return
        kept = self.counts[row]
        if kept >= self.limits.max_attributes:
            self.dropped += 1
            return
        self.counts[row] = kept + 1
        if value.__class__ is str and len(value) * 4 > self.limits.max_value_bytes:
            value = self._cut(value)
        if key in CORE_NAMES or key in INTERNAL_NAMES:
            self.overflow.setdefault(row, {})[key] = value
            return
        col = self.attrs.get(key)
        kind = value_kind(value)
        if col is None:
            col = self.attrs[key] = [None] * self.rows
            self.kinds[key] = kind
        else:
            have = self.kinds[key]
            if have != kind:
                if have == _KIND_FLOAT and kind == _KIND_INT:
                    value = float(value)
                elif have == _KIND_INT and kind == _KIND_FLOAT:
                    self.kinds[key] = _KIND_FLOAT
                    col[:] = [None if v is None else float(v) for v in col]
                else:
                    self.overflow.setdefault(row, {})[key] = value
                    return
        col[row] = value

    def set_raw(self, row: int, key: str, value: str) -> None:
        """A value kept whole and outside the attribute count (the X-Ray segment document, which
        X-Ray's own read API returns verbatim and which X-Ray already caps at 64 KB)."""
        kept = self.counts[row]
        limits, self.limits = self.limits, SpanLimits(kept + 1, 1 << 62)
        try:
            self.set_attr(row, key, value)
        finally:
            self.limits = limits
            self.counts[row] = kept

    def _cut(self, value: str) -> str:
        cut = truncate_utf8(value, self.limits.max_value_bytes)
        if cut is None:
            return value
        self.truncated += 1
        return cut

    def fill_attr(self, start: int, stop: int, key: str, value: Any) -> None:
        """The same value for rows ``start..stop`` (resource attributes), where not already set."""
        if start >= stop or value is None:
            return
        value = _storable(value)
        if value is None:
            return
        counts, cap = self.counts, self.limits.max_attributes
        col = self.attrs.get(key)
        if key in CORE_NAMES or key in INTERNAL_NAMES or any(counts[row] >= cap for row in range(start, stop)):
            for row in range(start, stop):  # row by row, each against its own count
                if col is None or col[row] is None:
                    self.set_attr(row, key, value)
            return
        if col is None:
            if value.__class__ is str and len(value) * 4 > self.limits.max_value_bytes:
                value = self._cut(value)
            for row in range(start, stop):
                counts[row] += 1
            self.attrs[key] = col = [None] * self.rows
            self.kinds[key] = value_kind(value)
            col[start:stop] = [value] * (stop - start)
            return
        for row in range(start, stop):
            if col[row] is None:
                self.set_attr(row, key, value)

    def grow(self, extra: int) -> None:
        """Room for ``extra`` more rows: for a receiver that cannot count its rows cheaply beforehand."""
        for col in (*self.core.values(), self.dataset, *self.attrs.values()):
            col.extend([None] * extra)
        self.counts.extend([0] * extra)
        self.rows += extra

    def truncate(self, rows: int) -> None:
        """Keep only the first ``rows`` rows: for a receiver that sized the builder by an upper bound."""
        if rows >= self.rows:
            return
        for col in (*self.core.values(), self.dataset, *self.attrs.values()):
            del col[rows:]
        del self.counts[rows:]
        self.overflow = {r: v for r, v in self.overflow.items() if r < rows}
        self.rows = rows

    def build(self, rejected: int = 0, errors: list[str] | None = None, keep: list[int] | None = None) -> SpanBatch:
        """The finished batch; ``keep`` lists the row indexes to keep when some were rejected."""
        arrays: list[pa.Array] = []
        names: list[str] = []
        durations = self.core["duration_ms"]
        for i, d in enumerate(durations):
            if d is not None and not 0 <= d < math.inf:
                durations[i] = None if d != d or d in (math.inf, -math.inf) else 0.0
        for f in CORE_FIELDS:
            array = pa.array(_take(self.core[f.name], keep), type=f.type)
            if pa.types.is_string(f.type) and len(array):
                longest = pc.max(pc.binary_length(array)).as_py()  # vectorised: no per-row Python work
                if longest is not None and longest > self.limits.max_value_bytes:
                    array = pa.array([None if v is None else self._cut(v) for v in array.to_pylist()], f.type)
            arrays.append(array)
            names.append(f.name)
        arrays.append(pa.array(_take(self.dataset, keep), type=pa.string()))
        names.append(DATASET_COLUMN)
        overflow: list[str | None] = [None] * self.rows
        for row, extra in self.overflow.items():
            overflow[row] = json.dumps(extra, default=str, separators=(",", ":"))
        arrays.append(pa.array(_take(overflow, keep), type=pa.string()))
        names.append(OVERFLOW_COLUMN)
        for key, col in self.attrs.items():
            values = _take(col, keep)
            if keep is not None and all(v is None for v in values):
                continue
            arrays.append(pa.array(values, type=_ARROW_OF_KIND[self.kinds[key]]))
            names.append(key)
        return SpanBatch(pa.Table.from_arrays(arrays, names=names), rejected, [*(errors or []), *self.warnings()])

    def warnings(self) -> list[str]:
        """What the limits changed, for the protocol's partial-success answer."""
        out = []
        if self.dropped:
            out.append(f"{self.dropped} attributes dropped: a span keeps at most {self.limits.max_attributes} "
                       f"(APIARY_MAX_SPAN_ATTRIBUTES)")
        if self.truncated:
            out.append(f"{self.truncated} values truncated to {self.limits.max_value_bytes} bytes (APIARY_MAX_VALUE_BYTES)")
        return out


def _storable(value: Any) -> Any:
    """The value as a column can hold it (see the module docstring); None when it cannot be kept."""
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return value
        return float(value) if abs(value) < 2**1023 else str(value)
    return json_text(value)


def json_text(value: Any) -> str:
    """Compact JSON for an array or object value, NaN and Infinity inside it written as ``null``."""
    try:
        return json.dumps(value, default=str, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN or Infinity somewhere inside
        return json.dumps(_finite_json(value), default=str, separators=(",", ":"))


def _finite_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def _take(values: list[Any], keep: list[int] | None) -> list[Any]:
    return values if keep is None else [values[i] for i in keep]
