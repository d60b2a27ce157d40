"""A Flask service instrumented as the Cruddur guides show, run as its own process by the tests.

The exporter is configured only by the standard OTEL_* environment variables;
``OTLP_PROTOCOL=json`` swaps in the OTLP/JSON exporter.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import requests
from flask import Flask, jsonify, request
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

if os.environ.get("OTLP_PROTOCOL") == "json":
    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
else:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer(__name__)

app = Flask(__name__)
FlaskInstrumentor().instrument_app(app)
RequestsInstrumentor().instrument()


@app.route("/api/activities/home")
def home():
    with tracer.start_as_current_span("home-activities-mock-data") as span:
        now = datetime.now(timezone.utc)
        span.set_attribute("app.now", now.isoformat())
        results = [{"handle": "andrewbrown", "message": "Cloud is very fun!"}, {"handle": "worf"}, {"handle": "garek"}]
        span.set_attribute("app.result_length", len(results))
        span.set_attribute("app.user_id", request.args.get("user", "anonymous"))
        span.add_event("mock data loaded", {"app.rows": len(results)})
    return jsonify(results)


@app.route("/api/chain")
def chain():
    port = os.environ["PORT"]
    r = requests.get(f"http://127.0.0.1:{port}/api/activities/home", params={"user": "chain"}, timeout=10)
    return jsonify({"downstream": r.status_code})


@app.route("/flush")
def flush():
    provider.force_flush()
    return "flushed"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
