"""One request traced by OTel (X-Ray id generator and propagator) and by the X-Ray SDK is one trace."""

from __future__ import annotations

import json
import time
from typing import Any

import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.server import ApiaryProcess
from tests.xray.conftest import eventually
from tests.xray.flask_app import ServedApp, create_app


def test_otel_client_and_xray_server_share_one_trace(xray_apiary: ApiaryProcess, xray: Any) -> None:
    provider = TracerProvider(id_generator=AwsXRayIdGenerator(), resource=Resource.create({"service.name": "frontend-react-js"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{xray_apiary.url}/v1/traces", headers={"x-honeycomb-team": xray_apiary.key})))
    tracer = provider.get_tracer("test")
    app = create_app(f"127.0.0.1:{xray_apiary.xray_port}")  # type: ignore[attr-defined]
    with ServedApp(app) as served:
        with tracer.start_as_current_span("GET /api/activities/home", kind=SpanKind.CLIENT) as span:
            headers: dict[str, str] = {}
            AwsXRayPropagator().inject(headers)
            assert requests.get(f"{served.url}/api/activities/home", headers=headers, timeout=5).status_code == 200
            trace_hex = f"{span.get_span_context().trace_id:032x}"
    provider.shutdown()
    xray_id = f"1-{trace_hex[:8]}-{trace_hex[8:]}"

    def both() -> Any:
        traces = xray.batch_get_traces(TraceIds=[xray_id])["Traces"]
        return traces if traces and len(traces[0]["Segments"]) == 2 else None
    [trace] = eventually(both)
    docs = {json.loads(s["Document"])["name"]: json.loads(s["Document"]) for s in trace["Segments"]}
    assert set(docs) == {"frontend-react-js", "backend-flask"}
    assert docs["backend-flask"]["parent_id"] == docs["frontend-react-js"]["id"]

    now = time.time()
    graph = xray.get_service_graph(StartTime=now - 600, EndTime=now + 60)["Services"]
    by_name = {s["Name"]: s for s in graph}
    edges = [e for e in by_name["frontend-react-js"]["Edges"] if e["ReferenceId"] == by_name["backend-flask"]["ReferenceId"]]
    assert edges and edges[0]["SummaryStatistics"]["TotalCount"] >= 1
    found = xray.get_trace_summaries(StartTime=now - 600, EndTime=now + 60,
                                     FilterExpression='edge("frontend-react-js", "backend-flask")')["TraceSummaries"]
    assert [s["Id"] for s in found] == [xray_id]
