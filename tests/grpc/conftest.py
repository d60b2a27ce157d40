"""Servers with their OTLP/gRPC port open, on DuckDB and on ClickHouse (chdb), and what the gRPC tests share."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import grpc
import httpx
import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess, create_key, free_port

STORES = ["duckdb", "chdb"]
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


@dataclass
class GrpcApiary(ApiaryProcess):
    """``apiary serve`` with ``--otlp-grpc-port``; ``keys`` holds one ingest+read key per environment."""

    grpc_port: int = field(default_factory=free_port)
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def grpc_endpoint(self) -> str:
        """What OTEL_EXPORTER_OTLP_ENDPOINT holds for a gRPC exporter: a plaintext URL without a path."""
        return f"http://{self.grpc_target}"

    def get(self, path: str, key: str | None = None, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, headers={"x-honeycomb-team": key or self.key}, timeout=30)

    def counts(self, key: str | None = None) -> dict[str, int]:
        r = self.get("/api/datasets", key)
        assert r.status_code == 200, r.text
        return {d["name"]: d["count"] for d in r.json()["datasets"]}

    def trace(self, trace_id: str, expect: int, key: str | None = None, timeout: float = 20) -> list[dict[str, Any]]:
        """The trace's spans once ``expect`` of them are readable (exporters send in the background)."""
        deadline = time.monotonic() + timeout
        spans: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            r = self.get(f"/api/traces/{trace_id}", key)
            if r.status_code == 200:
                spans = r.json()["spans"]
                if len(spans) >= expect:
                    return spans
            time.sleep(0.2)
        raise AssertionError(f"trace {trace_id} has {len(spans)} spans, expected {expect}")


def start_grpc_apiary(root: Path, store: str, envs: tuple[str, ...] = ("dev", "staging"),
                      extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> tuple[GrpcApiary, str]:
    """Keys first (chdb lets one process at a time open its directory), then the server."""
    url = "duckdb" if store == "duckdb" else clickhouse_url(root)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    keys = {e: create_key(data, e, store=url) for e in envs}
    proc = GrpcApiary(data, key=keys[envs[0]], keys=keys, env=env or {})
    proc.extra_args = ["--otlp-grpc-port", str(proc.grpc_port), "--store", url, *extra_args]
    proc.start(timeout=60)
    return proc, url


def stop_grpc_apiary(proc: GrpcApiary, url: str) -> None:
    proc.stop()
    drop_database(url)


@pytest.fixture(params=STORES)
def grpc_apiary(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GrpcApiary]:
    proc, url = start_grpc_apiary(tmp_path, request.param)
    try:
        yield proc
    finally:
        stop_grpc_apiary(proc, url)


@pytest.fixture
def channel(grpc_apiary: GrpcApiary) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_apiary.grpc_target) as ch:
        yield ch
