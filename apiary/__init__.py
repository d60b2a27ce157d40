"""Apiary: a self-hosted observability backend for OpenTelemetry, X-Ray, CloudWatch Logs and Rollbar clients."""

__version__ = "0.1.0"
