"""A small Flask app instrumented as the week-2 guides do, the app under test of the plugin's own tests.

OpenTelemetry (SDK, ``FlaskInstrumentor``, OTLP/HTTP exporter in a ``BatchSpanProcessor``), the AWS X-Ray
SDK's ``XRayMiddleware``, ``watchtower`` into log group ``app`` and ``rollbar`` on uncaught exceptions:
every one configured from the environment ``apiary.env`` gives, nothing else.

``BREAK`` breaks the instrumentation the way real apps break it:
``missing-attribute`` (the custom span lost ``app.result_length``), ``parent-link`` (the custom span is
started from the incoming headers' context, so it hangs under the caller instead of the Flask span) and
``xray-header`` (a proxy in front of the app drops ``X-Amzn-Trace-Id``, so X-Ray starts a trace of its own).

Run: python flask_app.py PORT
"""

import logging
import os
import signal
import sys

import boto3
import rollbar
import rollbar.contrib.flask
import watchtower
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.ext.flask.middleware import XRayMiddleware
from flask import Flask, got_request_exception, request
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.propagate import extract
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

BREAK = os.environ.get("BREAK", "")

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer(__name__)

xray_recorder.configure(service="backend-flask", sampling=False, context_missing="LOG_ERROR")

logger = logging.getLogger("app")
logger.setLevel(logging.INFO)
handler = watchtower.CloudWatchLogHandler(log_group_name="app", boto3_client=boto3.client("logs"), send_interval=0.2)


class TraceContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_context = f" traceparent=00-{ctx.trace_id:032x}-{ctx.span_id:016x}-01" if ctx.is_valid else ""
        return True


handler.setFormatter(logging.Formatter("%(message)s%(trace_context)s"))
handler.addFilter(TraceContext())
logger.addHandler(handler)

app = Flask(__name__)
FlaskInstrumentor().instrument_app(app)
XRayMiddleware(app, xray_recorder)
rollbar.init(os.environ["ROLLBAR_ACCESS_TOKEN"], "production", endpoint=os.environ["ROLLBAR_ENDPOINT"],
             allow_logging_basic_config=False)
got_request_exception.connect(rollbar.contrib.flask.report_exception, app)

if BREAK == "xray-header":
    inner = app.wsgi_app

    def header_dropping_proxy(environ, start_response):
        environ.pop("HTTP_X_AMZN_TRACE_ID", None)
        return inner(environ, start_response)

    app.wsgi_app = header_dropping_proxy


@app.route("/health")
def health():
    return {"ok": True}


@app.route("/api/activities/home")
def home():
    context = extract(request.headers) if BREAK == "parent-link" else None
    with tracer.start_as_current_span("home-activities-mock-data", context=context) as span:
        results = [{"handle": "andrewbrown", "message": "Cloud is very fun!"}, {"handle": "worf", "message": "Qapla'"},
                   {"handle": "garek", "message": "Plain, simple"}]
        span.set_attribute("app.now", "2023-03-01T00:00:00Z")
        if BREAK != "missing-attribute":
            span.set_attribute("app.result_length", len(results))
    logger.info("GET %s 200", request.path)
    return results


@app.route("/api/fail")
def fail():
    raise RuntimeError("the mock data is gone")


def stop(*_: object) -> None:
    provider.shutdown()
    handler.close()
    sys.exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
