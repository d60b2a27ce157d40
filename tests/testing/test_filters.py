"""Honeycomb filters as the plugin reads them (three spellings) and applies them to log lines and errors."""

from __future__ import annotations

import pytest

from apiary.testing.filters import describe, holds, parse

LINE = {"group": "app", "message": "GET /api/activities/home 200", "status": 200, "ratio": 0.5, "ok": True, "trace_id": None}


def test_three_spellings_and_keywords_give_the_query_specs_filters() -> None:
    assert parse(["status >= 200", ("group", "=", "app"), {"column": "trace_id", "op": "does-not-exist"}],
                 {"service.name": "api"}) == [
        {"column": "status", "op": ">=", "value": 200}, {"column": "group", "op": "=", "value": "app"},
        {"column": "trace_id", "op": "does-not-exist"}, {"column": "service.name", "op": "=", "value": "api"}]
    with pytest.raises(ValueError, match="cannot read the filter"):
        parse([42])


@pytest.mark.parametrize("text, expected", [
    ("status = 200", True), ("status != 200", False), ("status > 199", True), ("status < 200", False),
    ("ratio <= 0.5", True), ("message starts-with GET /api", True), ("message does-not-start-with GET", False),
    ("message ends-with 200", True), ("message contains activities", True), ("message does-not-contain home", False),
    ("trace_id exists", False), ("trace_id does-not-exist", True), ("missing = 1", False), ("missing != 1", True),
    ("group in app,web", True), ("group not-in app,web", False), ("ok = true", True), ("status = 200.0", True),
])
def test_each_operator_as_honeycomb_applies_it(text: str, expected: bool) -> None:
    [f] = parse([text])
    assert holds(f, LINE) is expected, describe(f)
