"""Which instrumentation is switched on, read from the environment once.

Every part is optional; the app works the same with all of them off.
"""
import os


def _truthy(name: str) -> bool:
    return os.getenv(name, "").strip().lower() in ("1", "true", "yes", "on")


# OpenTelemetry: on when the standard OTLP endpoint variable is set.
OTEL_ENABLED = bool(os.getenv("OTEL_EXPORTER_OTLP_ENDPOINT") or os.getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
# OTLP metrics (Flask's http.server.*), beside the spans: on when the endpoint they go to is set.
OTEL_METRICS_ENABLED = bool(os.getenv("OTEL_EXPORTER_OTLP_ENDPOINT") or os.getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
# Print spans on stdout too (the guides' ConsoleSpanExporter step).
OTEL_CONSOLE = _truthy("CRUDDUR_OTEL_CONSOLE")
# AWS X-Ray: on when the daemon address is set, or explicitly.
XRAY_ENABLED = bool(os.getenv("AWS_XRAY_DAEMON_ADDRESS")) or _truthy("CRUDDUR_XRAY")
# CloudWatch Logs through watchtower: explicit switch only.
CLOUDWATCH_ENABLED = _truthy("CRUDDUR_CLOUDWATCH")
# Rollbar: on when a token is set.
ROLLBAR_ENABLED = bool(os.getenv("ROLLBAR_ACCESS_TOKEN"))


def summary() -> dict:
    return {
        "otel": OTEL_ENABLED,
        "otel_console": OTEL_CONSOLE,
        "xray": XRAY_ENABLED,
        "cloudwatch": CLOUDWATCH_ENABLED,
        "rollbar": ROLLBAR_ENABLED,
    }
