"""Cruddur backend-flask, instrumented as the week-2 "distributed tracing" guides describe.

Each instrumentation is switched on by environment variables only (see ../README.md):

  OpenTelemetry  OTEL_EXPORTER_OTLP_ENDPOINT (+ OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME): spans
                 and Flask's http.server.* metrics over OTLP/HTTP; CRUDDUR_OTEL_CONSOLE=1 also prints
                 spans on stdout. Under `opentelemetry-instrument` its providers are used instead.
  AWS X-Ray      AWS_XRAY_DAEMON_ADDRESS (or CRUDDUR_XRAY=1); AWS_XRAY_URL for dynamic naming;
                 CRUDDUR_XRAY_SAMPLING=0 records every request
  CloudWatch     CRUDDUR_CLOUDWATCH=1; boto3 reads AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
                 AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION
  Rollbar        ROLLBAR_ACCESS_TOKEN (+ ROLLBAR_ENDPOINT)

The app answers the same with every part off, and a telemetry endpoint that is down never
breaks a request (all exporters send from background threads).

Run:  python app.py            (PORT, default 4567; HOST, default 127.0.0.1)
"""
import argparse
import logging
import os
import signal
import sys
import time
from time import strftime

from flask import Flask, g, got_request_exception, has_request_context, request
from flask_cors import CORS

from services import flags
from services.home_activities import *
from services.user_activities import *
from services.create_activity import *
from services.create_reply import *
from services.search_activities import *
from services.message_groups import *
from services.messages import *
from services.create_message import *
from services.mock_data import normalise_handle

# HoneyComb ---------
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
# Metrics: Flask's http.server.* instruments, exported beside the spans (not in the guides).
from opentelemetry import metrics
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

# X-RAY ----------
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.ext.flask.middleware import XRayMiddleware

# Rollbar ------
import rollbar
import rollbar.contrib.flask

# CloudWatch Logs ----
class TraceContextFilter(logging.Filter):
  """Adds the request's trace to each record as `trace_context`, so a CloudWatch line links to its trace.

  OTel's trace as a W3C traceparent when OTel is on, else the X-Ray trace id; empty outside a request.
  """
  def filter(self, record):
    record.trace_context = ""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
      record.trace_context = f" traceparent=00-{span_context.trace_id:032x}-{span_context.span_id:016x}-01"
    elif flags.XRAY_ENABLED and has_request_context():
      entity = xray_recorder.context.get_trace_entity()
      if entity is not None and getattr(entity, "trace_id", None):
        record.trace_context = f" xray_trace_id={entity.trace_id}"
    return True


# Configuring Logger to Use CloudWatch (the guides use logging.getLogger(__name__))
LOGGER = logging.getLogger("cruddur")
LOGGER.setLevel(logging.DEBUG)
console_handler = logging.StreamHandler()
LOGGER.addHandler(console_handler)
if flags.CLOUDWATCH_ENABLED:
  try:
    import boto3
    import watchtower
    from botocore.config import Config

    # Endpoint, credentials and region come from the standard AWS_* variables; short
    # timeouts so a missing endpoint costs seconds in the sender thread, never a request.
    logs_client = boto3.client(
      "logs",
      config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}),
    )
    send_interval = float(os.getenv("CRUDDUR_CLOUDWATCH_SEND_INTERVAL", "5"))
    # The guides write log_group='cruddur' (watchtower's deprecated alias of log_group_name).
    try:
      cw_handler = watchtower.CloudWatchLogHandler(
        log_group_name="cruddur", boto3_client=logs_client, send_interval=send_interval)
    except Exception as e:  # endpoint down at start-up: keep logging, create nothing now
      print(f"cruddur: could not create the 'cruddur' log group ({e}); sending anyway", file=sys.stderr)
      cw_handler = watchtower.CloudWatchLogHandler(
        log_group_name="cruddur", boto3_client=logs_client, send_interval=send_interval,
        create_log_group=False)
    # The guides' lines, plus the trace they belong to (see TraceContextFilter).
    cw_handler.setFormatter(logging.Formatter("%(message)s%(trace_context)s"))
    cw_handler.addFilter(TraceContextFilter())
    LOGGER.addHandler(cw_handler)
  except Exception as e:
    print(f"cruddur: CloudWatch logging disabled: {e}", file=sys.stderr)
LOGGER.info("test log")

# HoneyComb ---------
# Initialize tracing and an exporter that can send data to Honeycomb.
# OTLPSpanExporter() takes its endpoint and headers from OTEL_EXPORTER_OTLP_ENDPOINT /
# OTEL_EXPORTER_OTLP_HEADERS; the resource takes service.name from OTEL_SERVICE_NAME.
#
# Under `opentelemetry-instrument` the distro has already installed SDK providers (exporting over
# OTLP/gRPC by default) before this file runs: the API refuses a second TracerProvider ("Overriding
# of current TracerProvider is not allowed") and ours would only hold an idle OTLP/HTTP exporter
# aimed at the gRPC port. So the guides' set-up below runs only when no SDK provider is in place.
ZERO_CODE = isinstance(trace.get_tracer_provider(), TracerProvider)
if (flags.OTEL_ENABLED or flags.OTEL_CONSOLE) and not ZERO_CODE:
  provider = TracerProvider()
  if flags.OTEL_ENABLED:
    processor = BatchSpanProcessor(OTLPSpanExporter())
    provider.add_span_processor(processor)
  if flags.OTEL_CONSOLE:
    # Show this in the logs within the backend-flask app (STDOUT)
    simple_processor = SimpleSpanProcessor(ConsoleSpanExporter())
    provider.add_span_processor(simple_processor)
  trace.set_tracer_provider(provider)
elif flags.OTEL_CONSOLE:
  # opentelemetry-instrument's provider: print its spans too.
  trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
tracer = trace.get_tracer(__name__)

# Metrics, set up like the spans: OTLPMetricExporter() reads OTEL_EXPORTER_OTLP_ENDPOINT / _HEADERS
# and posts to /v1/metrics every OTEL_METRIC_EXPORT_INTERVAL ms (default 60000) and at exit. It must
# be the global provider before FlaskInstrumentor creates its instruments below.
if flags.OTEL_METRICS_ENABLED and not isinstance(metrics.get_meter_provider(), MeterProvider):
  metrics.set_meter_provider(MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]))

# X-RAY ----------
# LOG_ERROR: a subsegment without a segment is logged, never raised.
if flags.XRAY_ENABLED:
  xray_url = os.getenv("AWS_XRAY_URL")
  xray_recorder.configure(service='backend-flask', dynamic_naming=xray_url, context_missing='LOG_ERROR')
  if os.getenv("CRUDDUR_XRAY_SAMPLING", "1").strip().lower() in ("0", "false", "no", "off"):
    # Record every request instead of the SDK's sampling rules (1/s + 5%, or the
    # centralised rules polled from the daemon's TCP address).
    xray_recorder.configure(sampling=False)
else:
  xray_recorder.configure(context_missing='LOG_ERROR')


def xray_capture(name):
  """@xray_recorder.capture(name) when X-Ray is on, a no-op otherwise."""
  if flags.XRAY_ENABLED:
    return xray_recorder.capture(name)
  return lambda f: f


app = Flask(__name__)

# HoneyComb ---------
# Initialize automatic instrumentation with Flask
# (opentelemetry-instrument has already swapped in an instrumented Flask class and patched requests;
# instrumenting again only logs "already instrumented".)
if (flags.OTEL_ENABLED or flags.OTEL_CONSOLE) and not ZERO_CODE:
  FlaskInstrumentor().instrument_app(app)
  RequestsInstrumentor().instrument()

# X-RAY ----------
if flags.XRAY_ENABLED:
  XRayMiddleware(app, xray_recorder)

# CORS ----------
def _origins():
  origins = []
  for var in ("FRONTEND_URL", "BACKEND_URL"):
    for o in (os.getenv(var) or "").split(","):
      if o.strip():
        origins.append(o.strip().rstrip("/"))
  return origins or "*"

cors = CORS(
  app,
  resources={r"/api/*": {"origins": _origins()}},
  expose_headers="location,link",
  # traceparent/tracestate and X-Amzn-Trace-Id: the browser's fetch instrumentation propagates
  # trace context to OTel and to the X-Ray SDK.
  allow_headers=["content-type", "if-modified-since", "traceparent", "tracestate", "x-amzn-trace-id",
                 "x-cruddur-user"],
  methods=["OPTIONS", "GET", "HEAD", "POST"],
)

# Rollbar ----------
# Flask 3 has no before_first_request: initialise at app creation.
rollbar_access_token = os.getenv('ROLLBAR_ACCESS_TOKEN')
def init_rollbar():
  """init rollbar module"""
  rollbar.init(
    # access token
    rollbar_access_token,
    # environment name
    environment='production',
    # server root directory, makes tracebacks prettier
    root=os.path.dirname(os.path.realpath(__file__)),
    # flask already sets up logging
    allow_logging_basic_config=False,
    endpoint=os.getenv('ROLLBAR_ENDPOINT', 'https://api.rollbar.com/api/1/'))

  # send exceptions from `app` to rollbar, using flask's signal system.
  got_request_exception.connect(rollbar.contrib.flask.report_exception, app)
  # each item carries its request's trace id (custom.trace_id), so the error links to its trace
  rollbar.events.add_payload_handler(add_trace_id)


def add_trace_id(payload, **kw):
  """Rollbar payload handler: the current OTel trace id as custom data, for the trace an error happened in."""
  span_context = trace.get_current_span().get_span_context()
  if span_context.is_valid:
    payload['data'].setdefault('custom', {})['trace_id'] = f"{span_context.trace_id:032x}"
  return payload

if flags.ROLLBAR_ENABLED:
  with app.app_context():
    init_rollbar()


class SimulatedFailure(RuntimeError):
  """Raised on ?fail=1 so error views have data."""


def _slow_seconds(value):
  if not value:
    return 0.0
  if value.lower() in ("true", "yes", "on"):
    return 1.0
  try:
    return max(0.0, min(float(value), 10.0))
  except ValueError:
    return 0.0


@app.before_request
def cruddur_request_context():
  # A user handle from a header or ?user= (the traffic generator simulates several users).
  handle = normalise_handle(request.headers.get("X-Cruddur-User") or request.args.get("user"))
  g.user_handle = handle or None
  if handle:
    # Challenge: custom attribute with the user id, on the request's span.
    trace.get_current_span().set_attribute("app.user_id", handle)
    if flags.XRAY_ENABLED:
      segment = xray_recorder.current_segment()
      if segment is not None:
        segment.put_annotation("user_id", handle)
  if request.method == "OPTIONS":  # CORS preflight: never slowed or failed
    g.fail = False
    return None
  g.fail = request.args.get("fail", "").lower() in ("1", "true", "yes", "on")
  seconds = _slow_seconds(request.args.get("slow"))
  if seconds > 0:
    with tracer.start_as_current_span("simulated-latency") as span:
      span.set_attribute("app.sleep_seconds", seconds)
      time.sleep(seconds)


def check_fail(where):
  if g.get("fail"):
    raise SimulatedFailure(f"{where}: simulated failure (?fail=1)")


@app.after_request
def after_request(response):
  timestamp = strftime('[%Y-%b-%d %H:%M]')
  # The guides log this line at ERROR level; kept as written.
  LOGGER.error('%s %s %s %s %s %s', timestamp, request.remote_addr, request.method, request.scheme, request.full_path, response.status)
  return response


@app.route('/rollbar/test')
def rollbar_test():
  if flags.ROLLBAR_ENABLED:
    rollbar.report_message('Hello World!', 'warning')
  return "Hello World!"


@app.route("/api/health", methods=['GET'])
def data_health():
  return {"success": True, "service": "backend-flask", "instrumentation": flags.summary()}, 200


@app.route("/api/message_groups", methods=['GET'])
def data_message_groups():
  check_fail("MessageGroups")
  model = MessageGroups.run(user_handle=g.user_handle or 'andrewbrown')
  if model['errors'] is not None:
    return model['errors'], 422
  else:
    return model['data'], 200


@app.route("/api/messages/@<string:handle>", methods=['GET'])
def data_messages(handle):
  check_fail("Messages")
  model = Messages.run(message_group_handle=handle, user_handle=g.user_handle or 'andrewbrown')
  if model['errors'] is not None:
    return model['errors'], (404 if 'message_group_not_found' in model['errors'] else 422)
  else:
    return model['data'], 200


@app.route("/api/messages", methods=['POST'])
def data_create_message():
  check_fail("CreateMessage")
  body = request.get_json(silent=True) or {}
  user_sender_handle = g.user_handle or 'andrewbrown'
  user_receiver_handle = body.get('handle') or body.get('user_receiver_handle')
  message = body.get('message')
  model = CreateMessage.run(message=message, user_sender_handle=user_sender_handle, user_receiver_handle=user_receiver_handle)
  if model['errors'] is not None:
    return model['errors'], 422
  else:
    return model['data'], 200


@app.route("/api/activities/home", methods=['GET'])
def data_home():
  data = HomeActivities.run(logger=LOGGER, user_id=g.user_handle, fail=g.get("fail"))
  return data, 200


@app.route("/api/activities/@<string:handle>", methods=['GET'])
@xray_capture('activities_users')
def data_handle(handle):
  check_fail("UserActivities")
  model = UserActivities.run(handle)
  if model['errors'] is not None:
    return model['errors'], (404 if 'user_not_found' in model['errors'] else 422)
  else:
    return model['data'], 200


@app.route("/api/activities/search", methods=['GET'])
def data_search():
  check_fail("SearchActivities")
  term = request.args.get('term')
  model = SearchActivities.run(term)
  if model['errors'] is not None:
    return model['errors'], 422
  else:
    return model['data'], 200


@app.route("/api/activities", methods=['POST'])
def data_activities():
  check_fail("CreateActivity")
  body = request.get_json(silent=True) or {}
  user_handle = g.user_handle or 'andrewbrown'
  message = body.get('message')
  ttl = body.get('ttl')
  model = CreateActivity.run(message, user_handle, ttl)
  if model['errors'] is not None:
    return model['errors'], 422
  else:
    return model['data'], 200


@app.route("/api/activities/<string:activity_uuid>/reply", methods=['POST'])
def data_activities_reply(activity_uuid):
  check_fail("CreateReply")
  body = request.get_json(silent=True) or {}
  user_handle = g.user_handle or 'andrewbrown'
  message = body.get('message')
  model = CreateReply.run(message, user_handle, activity_uuid)
  if model['errors'] is not None:
    return model['errors'], 422
  else:
    return model['data'], 200


def main(argv=None):
  parser = argparse.ArgumentParser(description="Cruddur backend-flask")
  parser.add_argument("--host", default=os.getenv("HOST", "127.0.0.1"))
  parser.add_argument("--port", type=int, default=int(os.getenv("PORT", "4567")))
  args = parser.parse_args(argv)
  # SIGTERM -> normal exit, so atexit hooks flush pending spans, logs and Rollbar items.
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
  LOGGER.info("backend-flask listening on http://%s:%d (%s)", args.host, args.port, flags.summary())
  app.run(host=args.host, port=args.port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
  main()
