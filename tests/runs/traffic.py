"""Cruddur-like traffic through the OTel SDK's own OTLP/HTTP exporter, configured by environment variables only.

Run under ``apiary run --name NAME -- python traffic.py``: the exporter finds Apiary's endpoint and key in the
environment ``apiary run`` gives it, and the resource takes ``apiary.run`` from ``OTEL_RESOURCE_ATTRIBUTES``.
``TRAFFIC_DELAY_MS`` plants a delay in the ``db-query`` span; ``TRAFFIC_VARIANT=b`` makes the other changes a
second run of a branch would: a new span (``cache-lookup``), a vanished one (``legacy-audit``), a new attribute
(``cache.hit``) and a few errors in ``render``. A log line (through the SDK's ``logging`` bridge) and a request
counter go out too, over the same exporters' OTLP/HTTP logs and metrics: the run is on every signal.
"""

from __future__ import annotations

import logging
import os
import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

REQUESTS = int(os.environ.get("TRAFFIC_REQUESTS", "20"))


def main() -> None:
    provider = TracerProvider()  # the resource: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("cruddur.traffic")
    logs = LoggerProvider()
    logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    log = logging.getLogger("cruddur.traffic")
    log.addHandler(LoggingHandler(logger_provider=logs))
    log.setLevel(logging.INFO)
    meters = MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=60_000)])
    served = meters.get_meter("cruddur.traffic").create_counter("app.requests")
    delay = float(os.environ.get("TRAFFIC_DELAY_MS", "0")) / 1000
    variant_b = os.environ.get("TRAFFIC_VARIANT") == "b"
    for i in range(REQUESTS):
        with tracer.start_as_current_span("GET /api/activities/home", kind=trace.SpanKind.SERVER) as root:
            root.set_attribute("http.route", "/api/activities/home")
            if variant_b:
                with tracer.start_as_current_span("cache-lookup") as cache:
                    cache.set_attribute("cache.hit", i % 2 == 0)
            else:
                with tracer.start_as_current_span("legacy-audit"):
                    pass
            with tracer.start_as_current_span("db-query") as db:
                db.set_attribute("db.system", "postgresql")
                time.sleep(0.002 + delay)
            with tracer.start_as_current_span("render") as render:
                time.sleep(0.004)
                if variant_b and i % 10 == 0:
                    render.set_status(Status(StatusCode.ERROR, "template missing"))
        served.add(1)
    log.info("traffic sent %d requests", REQUESTS)
    meters.shutdown()  # each shutdown exports what is left; the export returns once Apiary committed it
    logs.shutdown()
    provider.shutdown()  # flushes every span: the export is acknowledged once Apiary committed it


if __name__ == "__main__":
    main()
