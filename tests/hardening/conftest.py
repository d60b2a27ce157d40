"""Servers for the hardening stories, on either store, with keys for several environments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess, create_key


@dataclass
class Served:
    proc: ApiaryProcess
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return self.proc.url


@pytest.fixture(params=["duckdb", "chdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """``--store`` for the server under test: the embedded DuckDB file, or ClickHouse in-process (chdb)."""
    if request.param == "duckdb":
        yield "duckdb"
        return
    url = clickhouse_url(tmp_path)
    yield url
    drop_database(url)


Start = Callable[..., Served]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """``start(store, {"env": ingest_only, ...}, *flags)``: keys first (chdb allows one process at a time), then the server."""
    running: list[ApiaryProcess] = []

    def go(store: str, envs: dict[str, bool], *flags: str) -> Served:
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        keys = {env: create_key(data, env, ingest_only, store) for env, ingest_only in envs.items()}
        proc = ApiaryProcess(data, key=next(iter(keys.values())), extra_args=["--store", store, *flags])
        running.append(proc)
        proc.start(timeout=90)
        return Served(proc, keys)

    yield go
    for proc in running:
        proc.stop()


def export_spans(url: str, key: str, service: str, make: Callable[[Any], None],
                 max_attributes: int = 128) -> tuple[SpanExportResult, list[Any]]:
    """Spans made by the OTel SDK (``make(tracer)``), sent by its OTLP/HTTP exporter; the export's result and the spans."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}),
                              span_limits=SpanLimits(max_span_attributes=max_attributes, max_attribute_length=None))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    make(provider.get_tracer("hardening"))
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers={"x-honeycomb-team": key}, timeout=120)
    try:
        return exporter.export(spans), spans
    finally:
        exporter.shutdown()


def trace_of(url: str, key: str, trace_id: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/api/traces/{trace_id}", headers={"x-honeycomb-team": key}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def counts(url: str, key: str) -> dict[str, int]:
    r = httpx.get(f"{url}/api/datasets", headers={"x-honeycomb-team": key}, timeout=120)
    assert r.status_code == 200, r.text
    return {d["name"]: d["count"] for d in r.json()["datasets"]}
