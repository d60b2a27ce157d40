"""``apiary serve --store`` on ClickHouse, used as a user would: the real OTel SDK exporter in, the trace API out."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from apiary.store.base import StoreUnavailable
from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess, create_key, free_port


@pytest.fixture
def clickhouse_apiary(tmp_path: Path) -> Iterator[ApiaryProcess]:
    url = clickhouse_url(tmp_path)
    key = create_key(tmp_path / "data", store=url)  # before the server: chdb lets one process at a time open its directory
    proc = ApiaryProcess(tmp_path / "data", key=key, extra_args=["--store", url])
    proc.start(timeout=60)
    try:
        yield proc
    finally:
        proc.stop()
        drop_database(url)


def send_with_sdk(apiary: ApiaryProcess, service: str = "backend-flask") -> str:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{apiary.url}/v1/traces", headers={"x-honeycomb-team": apiary.key})))
    tracer = provider.get_tracer("cruddur")
    with tracer.start_as_current_span("/api/activities/home") as root:
        root.set_attribute("http.status_code", 200)
        root.set_attribute("app.now", "2024-01-01T00:00:00")
        with tracer.start_as_current_span("mock-data") as child:
            child.set_attribute("app.result_length", 5)
            child.add_event("loaded", {"rows": 5})
        trace_id = f"{root.get_span_context().trace_id:032x}"
    provider.shutdown()
    return trace_id


def test_otel_sdk_spans_are_stored_in_clickhouse_and_read_back_as_a_trace(clickhouse_apiary: ApiaryProcess) -> None:
    trace_id = send_with_sdk(clickhouse_apiary)
    headers = {"x-honeycomb-team": clickhouse_apiary.key}
    r = httpx.get(f"{clickhouse_apiary.url}/api/traces/{trace_id}", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    spans = {s["name"]: s for s in r.json()["spans"]}
    assert set(spans) == {"/api/activities/home", "mock-data"}
    assert spans["/api/activities/home"]["http.status_code"] == 200
    assert spans["mock-data"]["app.result_length"] == 5
    assert spans["mock-data"]["trace.parent_id"] == spans["/api/activities/home"]["trace.span_id"]
    assert [e["name"] for e in spans["mock-data"]["events"]] == ["loaded"]
    datasets = httpx.get(f"{clickhouse_apiary.url}/api/datasets", headers=headers, timeout=30).json()["datasets"]
    assert [(d["name"], d["count"]) for d in datasets] == [("backend-flask", 3)]  # two spans and one span event
    assert httpx.get(f"{clickhouse_apiary.url}/api/traces/{trace_id}", headers={"x-honeycomb-team": "nope"},
                     timeout=30).status_code == 401


def test_clickhouse_unreachable_at_start_is_a_clear_error(tmp_path: Path) -> None:
    url = f"clickhouse://127.0.0.1:{free_port()}/apiary"
    done = subprocess.run([sys.executable, "-m", "apiary", "serve", "--store", url, "--data", str(tmp_path / "data"),
                           "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"cannot open the store {url}: cannot reach ClickHouse at http://127.0.0.1" in done.stderr


class FlakyClient:
    """The real client, except that while ``down`` is set every call fails as an unreachable server does."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.down = inner, False
        self.database, self.description = inner.database, inner.description

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable(f"ClickHouse at {self.description} is unreachable: connection refused")

    def command(self, *a: Any, **k: Any) -> Any:
        self._check()
        return self.inner.command(*a, **k)

    def query_arrow(self, *a: Any, **k: Any) -> Any:
        self._check()
        return self.inner.query_arrow(*a, **k)

    def insert_arrow(self, *a: Any, **k: Any) -> Any:
        self._check()
        return self.inner.insert_arrow(*a, **k)

    def close(self) -> None:
        self.inner.close()


def test_unreachable_mid_stream_answers_503_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    import uvicorn

    from apiary.server.app import create_app
    from apiary.server.context import Apiary
    from apiary.server.decoding import DecodePool
    from apiary.server.settings import Settings
    from apiary.store.clickhouse import ClickHouseMeta, ClickHouseStore, connect
    from tests.ingest.otlp_requests import request

    url = clickhouse_url(tmp_path)
    flaky = FlakyClient(connect(url))
    store = ClickHouseStore(flaky)
    from apiary.store.meta import MetaStore

    (tmp_path / "data").mkdir()
    meta = ClickHouseMeta(flaky, MetaStore(tmp_path / "data" / "meta.sqlite"))
    key = meta.create_key("dev")
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), xray_port=0, decode_workers=0, store=url)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, Apiary(settings, meta, store, DecodePool(0))),  # type: ignore[arg-type]
                                           host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{settings.port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)

    def post(trace_id: bytes) -> httpx.Response:
        return httpx.post(f"{base}/v1/traces", content=request(trace_id).SerializeToString(), timeout=30,
                          headers={"content-type": "application/x-protobuf", "x-honeycomb-team": key})

    try:
        assert post(b"\x01" * 16).status_code == 200
        flaky.down = True
        refused = post(b"\x02" * 16)
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
        flaky.down = False
        assert post(b"\x03" * 16).status_code == 200
    finally:
        server.should_exit = True
        thread.join(30)
    again = ClickHouseStore(url)
    try:
        assert again.trace("dev", "01" * 16).num_rows == 3  # acknowledged before the outage: kept
        assert again.trace("dev", "02" * 16).num_rows == 0  # refused with 503: the client retries it
        assert again.trace("dev", "03" * 16).num_rows == 3
    finally:
        again.close_sync()
        drop_database(url)
