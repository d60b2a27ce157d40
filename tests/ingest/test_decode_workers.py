"""Decode workers: a worker that dies is replaced, and the SDK's retry of what it held lands."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apiary.server.decoding import INLINE_BELOW_BYTES
from tests.ingest.test_otlp_sdk import fetch_trace
from tests.server import ApiaryProcess


def _decode_workers(server_pid: int) -> list[int]:
    """The server's spawned children, whichever of its threads started them."""
    children = [c for task in Path(f"/proc/{server_pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _one_trace(spans: int) -> tuple[str, list[ReadableSpan]]:
    """A trace of ``spans`` spans, big enough that the server decodes it in a worker process."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "worker-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("root") as root:
        for i in range(spans - 1):
            with tracer.start_as_current_span(f"child {i}") as span:
                span.set_attribute("app.payload", "x" * 100)
    finished = list(memory.get_finished_spans())
    assert len(encode_spans(finished).SerializeToString()) > INLINE_BELOW_BYTES
    return format(root.get_span_context().trace_id, "032x"), finished


def test_a_killed_decode_worker_is_replaced_and_the_retried_export_lands(apiary: ApiaryProcess) -> None:
    assert apiary.proc is not None
    exporter = OTLPSpanExporter(endpoint=f"{apiary.url}/v1/traces", headers={"x-honeycomb-team": apiary.key},
                                timeout=60)
    before, before_spans = _one_trace(200)
    assert exporter.export(before_spans) is SpanExportResult.SUCCESS

    killed = _decode_workers(apiary.proc.pid)
    assert killed, "the server should have started its decode workers"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)

    # Until a replacement is up the server answers 503 with Retry-After, and the exporter retries.
    after, after_spans = _one_trace(200)
    assert exporter.export(after_spans) is SpanExportResult.SUCCESS
    deadline = time.monotonic() + 30
    while len(_decode_workers(apiary.proc.pid)) < len(killed) and time.monotonic() < deadline:
        time.sleep(0.2)
    replacements = _decode_workers(apiary.proc.pid)
    assert len(replacements) == len(killed) and not set(replacements) & set(killed)

    assert len(fetch_trace(apiary, before, 200)["spans"]) == 200
    assert len(fetch_trace(apiary, after, 200)["spans"]) == 200
    assert apiary.proc.poll() is None, apiary.output()
