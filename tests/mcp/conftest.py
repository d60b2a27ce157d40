"""One server per store with three environments: ``dev`` holds data planted through the real clients (the OTel
SDK's OTLP/HTTP exporters for spans and for log lines inside a span, watchtower over boto3 for log lines,
pyrollbar for errors linked to a trace), ``other`` holds a little of its own, ``deep`` one very deep trace; the tests read them through the
`mcp` SDK's own client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, AsyncIterator, Iterator

import boto3
import httpx2
import pytest
import rollbar
import watchtower
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context, use_span

from tests.stores import STORES, running
from tests.traces.planted import PlantedTrace, planted_traces, send_planted

#: The planted traces the tests read (shapes from tests/traces/planted.py).
TRACES = ("fanout", "checkout_error", "db_under_checkout", "two_errors")
LOG_GROUP = "checkout-logs"
DEEP = 1500


@dataclass
class World:
    store: str
    url: str
    key: str  # a read key of ``dev``
    ingest_key: str  # ``dev``'s ingest-only key
    other_key: str  # a read key of ``other``
    traces: dict[str, PlantedTrace]
    base: int
    deep_key: str  # a read key of ``deep``, which holds one trace of `DEEP` spans, each the parent of the next
    deep_trace_id: str
    runs_key: str  # a read key of ``runs``: two runs of the same traffic, "db-query" 40 ms slower in the second

    @property
    def window(self) -> dict[str, int]:
        return {"start_time": self.base, "end_time": self.base + 900}


def send_logs(url: str, key: str, group: str, lines: list[str]) -> None:
    client = boto3.session.Session().client("logs", endpoint_url=url, aws_access_key_id=key, aws_secret_access_key=key,
                                            region_name="us-east-1")
    logger = logging.getLogger(f"tests.mcp.{group}.{key[:6]}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = watchtower.CloudWatchLogHandler(log_group_name=group, log_stream_name="web", boto3_client=client,
                                              use_queues=False)
    logger.addHandler(handler)
    try:
        for line in lines:
            logger.info(line)
    finally:
        logger.removeHandler(handler)
        handler.close()
        client.close()


def send_span_logs(url: str, key: str, service: str, trace_id: str, span_id: str, lines: list[str]) -> None:
    """Log lines inside a span, through the OTel SDK's LoggingHandler and OTLP/HTTP log exporter: they carry its ids."""
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(
        endpoint=f"{url}/v1/logs", headers={"x-honeycomb-team": key})))
    logger = logging.getLogger(f"tests.mcp.otlp.{key[:6]}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    span = NonRecordingSpan(SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(1)))
    try:
        with use_span(span):
            for line in lines:
                logger.error(line)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()


def report_error(url: str, key: str, message: str, trace_id: str) -> None:
    rollbar._initialized = False  # pyrollbar keeps its first init per process; each environment has its own key
    rollbar.init(key, "production", endpoint=url + "/api/1/", handler="blocking", allow_logging_basic_config=False)
    rollbar.report_message(message, "error", extra_data={"trace_id": trace_id})


def plant_chain(url: str, key: str, depth: int) -> str:
    """One trace of ``depth`` spans, each the child of the one before, through the SDK's OTLP/HTTP exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": "deep"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces",
                                                                    headers={"x-honeycomb-team": key})))
    tracer = provider.get_tracer("tests.mcp")
    spans = []
    for i in range(depth):
        parent = set_span_in_context(spans[-1]) if spans else None
        spans.append(tracer.start_span(f"level-{i}", context=parent))
    trace_id = f"{spans[0].get_span_context().trace_id:032x}"
    for span in reversed(spans):
        span.end()
    provider.force_flush()
    provider.shutdown()
    return trace_id


def plant_runs(url: str, key: str) -> None:
    """Two runs of one small workload through the SDK's exporter, tagged as `apiary run` tags them (the resource
    attribute apiary.run); in "slow" every db-query span takes 40 ms longer."""
    for run, extra_ms in (("fast", 0), ("slow", 40)):
        provider = TracerProvider(resource=Resource.create({"service.name": "shop", "apiary.run": run}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces",
                                                                        headers={"x-honeycomb-team": key})))
        tracer = provider.get_tracer("tests.mcp.runs")
        start = time.time_ns() - 120 * 10**9
        for i in range(12):
            t0 = start + i * 10**9
            root = tracer.start_span("GET /cart", start_time=t0)
            ctx = set_span_in_context(root)
            tracer.start_span("render", context=ctx, start_time=t0).end(end_time=t0 + 5 * 10**6)
            tracer.start_span("db-query", context=ctx, start_time=t0).end(end_time=t0 + (10 + extra_ms) * 10**6)
            root.end(end_time=t0 + (20 + extra_ms) * 10**6)
        provider.force_flush()
        provider.shutdown()


def plant(url: str, key: str, base: int) -> dict[str, PlantedTrace]:
    traces = {name: t for name, t in planted_traces().items() if name in TRACES}
    send_planted(SimpleNamespace(url=url, key=key), traces, base)  # type: ignore[arg-type]
    failed = traces["checkout_error"].trace_id
    send_logs(url, key, LOG_GROUP, ["GET /items 200", f"checkout failed: card declined trace={failed}",
                                    '{"level": "error", "msg": "payment timeout"}', "GET /health 200"])
    send_span_logs(url, key, "api", failed, traces["checkout_error"].ids["checkout"],
                   ["charging card", "card declined by issuer"])
    report_error(url, key, "card declined at checkout", failed)
    return traces


@pytest.fixture(scope="module", params=STORES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running(request.param, tmp_path_factory.mktemp(f"mcp-{request.param}"), tenants=4) as server:
        dev, other, deep, runs = server.take(), server.take(), server.take(), server.take()
        base = int(time.time()) - 1800
        traces = plant(dev.url, dev.key, base)
        other_traces = {"one_long_span": planted_traces()["one_long_span"]}
        send_planted(SimpleNamespace(url=other.url, key=other.key), other_traces, base)  # type: ignore[arg-type]
        send_logs(other.url, other.key, "other-logs", ["other environment line"])
        deep_trace_id = plant_chain(deep.url, deep.key, DEEP)
        plant_runs(runs.url, runs.key)
        yield World(request.param, dev.url, dev.key, dev.ingest_key, other.key, traces, base, deep.key, deep_trace_id,
                    runs.key)


@contextlib.asynccontextmanager
async def connect(transport: str, url: str, key: str, header: str = "authorization") -> AsyncIterator[Client]:
    """The SDK's client over HTTP (the key as a bearer token, or in X-Honeycomb-Team), or over stdio by
    launching ``apiary mcp`` as an agent would."""
    if transport == "stdio":
        params = StdioServerParameters(command=sys.executable, args=["-m", "apiary", "mcp", "--url", url],
                                       env={**os.environ, "APIARY_KEY": key})
        async with Client(params) as client:
            yield client
        return
    headers = {"Authorization": f"Bearer {key}"} if header == "authorization" else {"X-Honeycomb-Team": key}
    http = httpx2.AsyncClient(timeout=120, headers=headers)
    async with http, Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
        yield client


def call(transport: str, url: str, key: str, calls: list[tuple[str, dict[str, Any]]],
         header: str = "authorization") -> list[CallToolResult]:
    async def go() -> list[CallToolResult]:
        async with connect(transport, url, key, header) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    return asyncio.run(go())


def list_tools(transport: str, url: str, key: str) -> list[Any]:
    async def go() -> list[Any]:
        async with connect(transport, url, key) as client:
            return (await client.list_tools()).tools

    return asyncio.run(go())
