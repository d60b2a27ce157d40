"""An agent's story: the `mcp` SDK's own client, over HTTP (``/mcp``) and over stdio (``apiary mcp``), reads
traces, logs and errors planted through the real clients, on DuckDB and on ClickHouse (chdb)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from tests.mcp.conftest import DEEP, LOG_GROUP, World, call, list_tools

TRANSPORTS = ["http", "stdio"]
TOOLS = {"list_environments", "list_datasets", "list_columns", "run_query", "search_traces", "get_trace",
         "get_trace_spans", "critical_path", "list_log_groups", "search_logs", "list_errors", "list_runs", "compare_runs"}


def answer(r: CallToolResult) -> dict[str, Any]:
    assert not r.is_error, r.content[0].text
    return json.loads(r.content[0].text)


def tool_error(r: CallToolResult) -> str:
    text = r.content[0].text
    assert r.is_error, text
    assert "Traceback" not in text and "File \"" not in text, text
    return text


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_tool_answers_on_planted_data(world: World, transport: str) -> None:
    tools = list_tools(transport, world.url, world.key)
    assert {t.name for t in tools} == TOOLS
    for t in tools:  # each says what it returns and its limits
        assert t.description and len(t.description) > 100, t.name
        assert t.annotations and t.annotations.read_only_hint, t.name
    fan, failed = world.traces["fanout"], world.traces["checkout_error"]
    window = world.window
    (env, datasets, columns, query, search, summary, spans, path, groups, terms, as_json, insights, of_trace,
     errors) = [answer(r) for r in call(transport, world.url, world.key, [
        ("list_environments", {}),
        ("list_datasets", {}),
        ("list_columns", {"dataset": "api", "name_contains": "db."}),
        ("run_query", {"dataset": "api", "query": {"calculations": [{"op": "COUNT"}], "breakdowns": ["name"],
                                                    "orders": [{"op": "COUNT", "order": "descending"}], **window}}),
        ("search_traces", {"search": {**window, "spans": {"c": {"name": "checkout"}, "d": {"name": "db-query"}},
                                      "match": "d under c"}}),
        ("get_trace", {"trace_id": failed.trace_id}),
        ("get_trace_spans", {"trace_id": fan.trace_id}),
        ("critical_path", {"trace_id": fan.trace_id}),
        ("list_log_groups", {}),
        ("search_logs", {"filter_pattern": '"card declined"'}),
        ("search_logs", {"filter_pattern": '{ $.level = "error" }', "log_groups": [LOG_GROUP]}),
        ("search_logs", {"insights_query": "filter @message like /GET/ | stats count(*) as n"}),
        ("search_logs", {"insights_query": f'filter @traceId = "{failed.trace_id}" | fields @message, @spanId '
                                           "| sort @timestamp asc"}),
        ("list_errors", {}),
    ])]
    assert env["total"] == 1 and env["environments"][0]["datasets"] == 2
    assert env["environments"][0]["log_groups"] == 2 and env["environments"][0]["error_items"] == 1
    assert {d["name"]: d["rows"] for d in datasets["datasets"]} == {"web": 4, "api": 10}
    assert columns["columns"] == [{"name": "db.rows", "type": "integer"}] and columns["total"] == 1
    counts = {r["name"]: r["COUNT"] for r in query["results"]}
    assert counts == {"a": 1, "b": 1, "b1": 1, "c": 1, "checkout": 2, "db-query": 1, "retry": 2, "fetch": 1}
    assert all(len(r["example_trace_id"]) == 32 for r in query["results"])
    assert search["matched"] == 1 and [t["trace_id"] for t in search["traces"]] == [
        world.traces["db_under_checkout"].trace_id]

    assert summary["spans"] == 2 and summary["services"] == {"web": 1, "api": 1}
    assert summary["root"]["name"] == "POST /checkout" and summary["duration_ms"] == pytest.approx(150, abs=1)
    assert summary["error_spans"] == 1 and summary["first_errors"][0]["name"] == "checkout"
    assert summary["first_errors"][0]["status_message"] == "card declined"
    assert summary["error_occurrences"] == 1  # the Rollbar report names this trace
    assert summary["log_lines"] == 2  # the OTLP log lines written inside its checkout span
    assert [s["name"] for s in spans["spans"]] == ["GET /fanout", "a", "b", "b1", "c"]
    assert [s["depth"] for s in spans["spans"]] == [0, 1, 1, 2, 1] and spans["total"] == 5
    assert {s["name"] for s in path["by_span"]} == {"GET /fanout", "b", "b1", "c"}  # "a" ends early: off the path
    assert sum(s["duration_ms"] for s in path["segments"]) == pytest.approx(300, abs=1)

    assert sorted(g["name"] for g in groups["log_groups"]) == ["api", LOG_GROUP]  # OTLP logs: a group per service
    by_message = {e["message"]: e for e in terms["events"]}
    assert set(by_message) == {f"checkout failed: card declined trace={failed.trace_id}", "card declined by issuer"}
    assert by_message["card declined by issuer"]["trace_id"] == failed.trace_id
    assert [e["message"] for e in as_json["events"]] == ['{"level": "error", "msg": "payment timeout"}']
    assert insights["rows"] == [{"n": 2}] and insights["records_scanned"] == 6
    assert [(r["@message"], r["@spanId"]) for r in of_trace["rows"]] == [
        ("charging card", failed.ids["checkout"]), ("card declined by issuer", failed.ids["checkout"])]
    [item] = errors["items"]
    assert item["title"] == "card declined at checkout" and item["level"] == "error" and item["occurrences"] == 1
    assert item["trace_ids"] == [failed.trace_id]


def test_a_trace_is_read_progressively(world: World) -> None:
    fan, db = world.traces["fanout"], world.traces["db_under_checkout"]
    pages = [answer(r) for r in call("http", world.url, world.key, [
        ("get_trace", {"trace_id": fan.trace_id}),
        ("get_trace_spans", {"trace_id": fan.trace_id, "limit": 2}),
        ("get_trace_spans", {"trace_id": fan.trace_id, "limit": 2, "offset": 2}),
        ("get_trace_spans", {"trace_id": fan.trace_id, "limit": 2, "offset": 4}),
        ("get_trace_spans", {"trace_id": fan.trace_id, "under_span_id": fan.ids["b"]}),
        ("get_trace_spans", {"trace_id": fan.trace_id, "max_depth": 0}),
        ("get_trace_spans", {"trace_id": fan.trace_id, "under_span_id": fan.ids["b"], "max_depth": 0}),
        ("get_trace_spans", {"trace_id": db.trace_id, "under_span_id": db.ids["db"], "attributes": True}),
        ("critical_path", {"trace_id": fan.trace_id, "limit": 1}),
    ])]
    summary, first, second, last, subtree, top, one, with_attrs, path = pages
    assert "spans" in summary and not isinstance(summary["spans"], list)  # a summary: counts, not the spans
    assert [(s["name"], s["descendants"]) for s in summary["top_level"]] == [("a", 0), ("b", 1), ("c", 0)]
    assert [s["name"] for s in first["spans"]] == ["GET /fanout", "a"]
    assert (first["returned"], first["total"], first["next_offset"]) == (2, 5, 2) and "2 of 5" in first["more"]
    assert [s["name"] for s in second["spans"]] == ["b", "b1"] and second["next_offset"] == 4
    assert [s["name"] for s in last["spans"]] == ["c"] and "next_offset" not in last
    assert [s["name"] for s in subtree["spans"]] == ["b", "b1"] and subtree["total"] == 2
    assert [s["name"] for s in top["spans"]] == ["GET /fanout"] and top["spans"][0]["children"] == 3
    assert [s["span_id"] for s in one["spans"]] == [fan.ids["b"]]
    assert with_attrs["spans"][0]["attributes"]["db.rows"] == 12
    assert "attributes" not in first["spans"][0]
    # root 0-20, b 20-30, b1 30-240, b 240-250, root 250-260, c 260-290, root 290-300: b1 holds the most
    assert [s["name"] for s in path["by_span"]] == ["b1"] and path["by_span"][0]["on_path_ms"] == pytest.approx(210)
    assert path["by_span_total"] == 4 and (path["total"], path["next_offset"]) == (7, 1)


def test_a_trace_deeper_than_pythons_recursion_limit_reads_in_pages(world: World) -> None:
    tid = world.deep_trace_id
    summary, first, last = [answer(r) for r in call("http", world.url, world.deep_key, [
        ("get_trace", {"trace_id": tid}),
        ("get_trace_spans", {"trace_id": tid}),
        ("get_trace_spans", {"trace_id": tid, "offset": DEEP - 2}),
    ])]
    assert summary["spans"] == DEEP and summary["max_depth"] == DEEP - 1 and summary["root"]["name"] == "level-0"
    assert [s["name"] for s in summary["top_level"]] == ["level-1"] and summary["top_level"][0]["descendants"] == DEEP - 2
    assert first["returned"] == 50 and first["total"] == DEEP and first["next_offset"] == 50
    assert [s["depth"] for s in first["spans"]] == list(range(50))
    assert [s["name"] for s in last["spans"]] == [f"level-{DEEP - 2}", f"level-{DEEP - 1}"] and "next_offset" not in last
    [below] = [answer(r) for r in call("http", world.url, world.deep_key, [
        ("get_trace_spans", {"trace_id": tid, "under_span_id": first["spans"][10]["span_id"], "max_depth": 2}),
    ])]
    assert [s["name"] for s in below["spans"]] == ["level-10", "level-11", "level-12"] and below["total"] == 3


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_arguments_get_clear_tool_errors(world: World, transport: str) -> None:
    fan = world.traces["fanout"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("run_query", {"dataset": "api", "query": {"calculations": [{"op": "NOPE"}]}}, "unknown op 'NOPE'"),
        ("run_query", {"dataset": "nope", "query": {}}, "dataset 'nope' not found"),
        ("list_columns", {"dataset": "nope"}, "dataset 'nope' not found"),
        ("get_trace", {"trace_id": "zz"}, "trace_id: not a trace id"),
        ("get_trace", {"trace_id": "0" * 31 + "1"}, "not found"),
        ("get_trace_spans", {"trace_id": fan.trace_id, "under_span_id": "ffffffffffffffff"}, "is not in trace"),
        ("search_traces", {"search": {"spans": {"a": {"name": "x"}}, "match": "a under b"}}, "search:"),
        ("search_logs", {}, "exactly one of filter_pattern and insights_query"),
        ("search_logs", {"filter_pattern": '{ $.level = '}, "filter_pattern:"),
        ("search_logs", {"insights_query": "stats count("}, "insights_query:"),
        ("search_logs", {"filter_pattern": "x", "log_groups": ["nope"]}, "log group 'nope' not found"),
        ("search_logs", {"filter_pattern": "x", "start_time": 100}, "give both start_time and end_time"),
        ("list_datasets", {"limit": 0}, "limit"),
        ("list_errors", {"status": "bogus"}, "status: one of active, resolved, muted"),
    ]
    results = call(transport, world.url, world.key, [(name, args) for name, args, _ in cases])
    for (name, args, expected), r in zip(cases, results):
        assert expected in tool_error(r), (name, args, r.content[0].text)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_key_of_another_environment_sees_nothing(world: World, transport: str) -> None:
    failed = world.traces["checkout_error"]
    dev_ids = [t.trace_id for t in world.traces.values()]
    env, datasets, query, search, trace, groups, logs, errors = call(transport, world.url, world.other_key, [
        ("list_environments", {}),
        ("list_datasets", {}),
        ("run_query", {"dataset": "web", "query": {"calculations": [{"op": "COUNT"}], **world.window}}),
        ("search_traces", {"search": {"trace_ids": dev_ids}}),
        ("get_trace", {"trace_id": failed.trace_id}),
        ("list_log_groups", {}),
        ("search_logs", {"filter_pattern": "card"}),
        ("list_errors", {}),
    ])
    assert answer(env)["environments"][0]["error_items"] == 0
    assert {d["name"]: d["rows"] for d in answer(datasets)["datasets"]} == {"web": 1}  # its own one span
    assert answer(query)["results"][0]["COUNT"] == 1
    assert answer(search)["matched"] == 0
    assert "not found" in tool_error(trace)
    assert [g["name"] for g in answer(groups)["log_groups"]] == ["other-logs"]
    assert answer(logs)["events"] == []
    assert answer(errors)["items"] == []


def test_http_asks_for_a_read_key(world: World) -> None:
    with pytest.raises(BaseException) as ingest:
        call("http", world.url, world.ingest_key, [("list_environments", {})])
    assert "ingest-only" in str(_innermost(ingest.value)) and isinstance(_innermost(ingest.value), MCPError)
    with pytest.raises(BaseException) as unknown:
        call("http", world.url, "not-a-key", [("list_environments", {})])
    assert "unknown API key" in str(_innermost(unknown.value))
    r = httpx.post(world.url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=30,
                   headers={"Accept": "application/json, text/event-stream"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert "missing API key" in r.json()["error"]["message"]
    [env] = call("http", world.url, world.key, [("list_environments", {})], header="x-honeycomb-team")
    assert answer(env)["environments"][0]["datasets"] == 2


def test_malformed_messages_get_json_rpc_errors(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.key}", "Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}

    def post(body: bytes) -> httpx.Response:
        return httpx.post(world.url + "/mcp", content=body, headers=headers, timeout=60)

    cut = post(b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert cut.status_code == 400 and cut.json()["error"]["code"] == -32700  # JSON-RPC's parse error
    unknown = post(b'{"jsonrpc": "2.0", "id": 7, "method": "traces/delete"}')
    assert unknown.json()["id"] == 7 and unknown.json()["error"]["code"] == -32601  # method not found
    assert post(b"x" * (2 << 20)).status_code == 413  # past the 1 MiB a tool call may be
    [env] = call("http", world.url, world.key, [("list_environments", {})])
    assert answer(env)["environments"][0]["datasets"] == 2


def test_stdio_refuses_an_ingest_only_key_before_serving(world: World) -> None:
    r = subprocess.run([sys.executable, "-m", "apiary", "mcp", "--url", world.url, "--key", world.ingest_key],
                       capture_output=True, text=True, timeout=120, input="")
    assert r.returncode == 1 and "ingest-only" in r.stderr and "Traceback" not in r.stderr


def _innermost(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_runs_are_listed_and_compared(world: World, transport: str) -> None:
    """Two runs of the same workload, db-query 40 ms slower in "slow": compare_runs names that span first."""
    listed, compared, limited, unknown, same = call(transport, world.url, world.runs_key, [
        ("list_runs", {}),
        ("compare_runs", {"a": "fast", "b": "slow"}),
        ("compare_runs", {"a": "fast", "b": "slow", "limit": 1}),
        ("compare_runs", {"a": "fast", "b": "nightly"}),
        ("compare_runs", {"a": "fast", "b": "fast"}),
    ])
    runs = answer(listed)
    assert sorted(r["name"] for r in runs["runs"]) == ["fast", "slow"] and runs["total"] == 2
    doc = answer(compared)
    first = doc["spans"][0]
    assert (first["service"], first["name"]) == ("shop", "db-query"), doc["spans"]
    assert first["b"]["p50"] - first["a"]["p50"] == pytest.approx(40, abs=1)
    assert doc["total"] == 3 and doc["new_spans"] == [] and doc["vanished_spans"] == []
    cut = answer(limited)
    assert cut["returned"] == 1 and cut["total"] == 3 and "1 of 3 span rows" in cut["more"]
    assert "run 'nightly' not found" in tool_error(unknown)
    assert "two different runs" in tool_error(same)
    other = answer(call(transport, world.url, world.key, [("list_runs", {})])[0])
    assert other["runs"] == [] and other["total"] == 0  # another environment's key sees none of them
