"""ClickHouse unreachable mid-stream: gRPC exports get UNAVAILABLE with RetryInfo, and nothing acknowledged is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.clickhouse.test_serve import FlakyClient
from tests.grpc.conftest import TRACE_EXPORT
from tests.grpc.test_bad_input import retry_delay
from tests.ingest.otlp_requests import request
from tests.server import free_port


def test_store_unreachable_answers_unavailable_with_retry_info(tmp_path: Path) -> None:
    import uvicorn

    from apiary.server.app import create_app
    from apiary.server.context import Apiary
    from apiary.server.decoding import DecodePool
    from apiary.server.settings import Settings
    from apiary.store.clickhouse import ClickHouseMeta, ClickHouseStore, connect
    from apiary.store.meta import MetaStore

    url = clickhouse_url(tmp_path)
    flaky = FlakyClient(connect(url))
    (tmp_path / "data").mkdir()
    meta = ClickHouseMeta(flaky, MetaStore(tmp_path / "data" / "meta.sqlite"))
    key = meta.create_key("dev")
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), xray_port=0, otlp_grpc_port=free_port(),
                        decode_workers=0, store=url)
    app = create_app(settings, Apiary(settings, meta, ClickHouseStore(flaky), DecodePool(0)))  # type: ignore[arg-type]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)

    try:
        with grpc.insecure_channel(f"127.0.0.1:{settings.otlp_grpc_port}") as channel:
            export = channel.unary_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)

            def send(trace_id: bytes) -> None:
                export(request(trace_id).SerializeToString(), metadata=[("x-honeycomb-team", key)], timeout=30)

            send(b"\x01" * 16)
            flaky.down = True
            try:
                send(b"\x02" * 16)
                raise AssertionError("an export while ClickHouse is unreachable must not be acknowledged")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert "unreachable" in error.details()
                plain, rich = retry_delay(error)
                assert plain == rich and plain > 0
            flaky.down = False
            send(b"\x03" * 16)
    finally:
        server.should_exit = True
        thread.join(30)
    again = ClickHouseStore(url)
    try:
        assert again.trace("dev", "01" * 16).num_rows == 3  # acknowledged before the outage: kept
        assert again.trace("dev", "02" * 16).num_rows == 0  # refused: the exporter retries it
        assert again.trace("dev", "03" * 16).num_rows == 3
    finally:
        again.close_sync()
        drop_database(url)
