"""Failure messages that say what differed, as pytest does for a failed ``==``.

When nothing matched, the records that came nearest (the most filters held, then by label) are shown
with each filter they failed and the value they had instead. No id or time appears in these messages
unless the test asked for it, so they read the same on every run.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from apiary.testing.filters import Filter, describe, failed

NEAREST = 3


def _value(record: Mapping[str, Any], column: str) -> str:
    if record.get(column) is None:
        return "missing"
    value = record[column]
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def differences(filters: Sequence[Filter], record: Mapping[str, Any], indent: str = "    ") -> list[str]:
    lines = []
    for f in failed(filters, record):
        wanted = describe(f)[len(f["column"]) + 1:]
        lines.append(f"{indent}{f['column']}: {_value(record, f['column'])}, expected {wanted}")
    return lines


def nearest(records: Sequence[Mapping[str, Any]], filters: Sequence[Filter],
            name_of: Callable[[Mapping[str, Any]], str], limit: int = NEAREST) -> list[str]:
    """The ``limit`` records that held the most filters, each with what it failed."""
    ranked = sorted(records, key=lambda r: (len(failed(filters, r)), name_of(r)))
    lines = []
    for record in ranked[:limit]:
        lines.append(f"  {name_of(record)}")
        lines += differences(filters, record)
    return lines


def no_match(what: str, filters: Sequence[Filter], timeout: float, got: int, wanted: int,
             records: Sequence[Mapping[str, Any]], name_of: Callable[[Mapping[str, Any]], str]) -> str:
    asked = " and ".join(describe(f) for f in filters) or "anything"
    head = (f"no {what} matched within {timeout:g} s: {asked}" if got == 0
            else f"{got} {what}s matched within {timeout:g} s, expected at least {wanted}: {asked}")
    if not records:
        return f"{head}\nnothing of that kind arrived at all in this test's environment"
    return "\n".join([head, f"nearest {what}s of {len(records)} that arrived:", *nearest(records, filters, name_of)])
