"""What ``apiary run`` hands its command: the OTel SDK itself reads the run back from the environment."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import OTELResourceDetector

from apiary.run_env import run_environment


def detected(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", env["OTEL_RESOURCE_ATTRIBUTES"])
    return dict(OTELResourceDetector().detect().attributes)


def test_the_sdk_reads_the_run_and_keeps_what_was_set(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci,apiary.run=stale"}
    env = run_environment(base, "feature/x, take=2 ü", "http://127.0.0.1:4318", "k")
    assert detected(env, monkeypatch) == {"deployment.environment": "ci", "apiary.run": "feature/x, take=2 ü"}
    assert env["APIARY_RUN"] == "feature/x, take=2 ü"


def test_endpoint_and_key_only_where_unset() -> None:
    env = run_environment({}, "r", "http://127.0.0.1:5000/", "k1")
    assert (env["OTEL_EXPORTER_OTLP_ENDPOINT"], env["OTEL_EXPORTER_OTLP_PROTOCOL"]) == ("http://127.0.0.1:5000", "http/protobuf")
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == "x-honeycomb-team=k1"
    grpc = run_environment({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "r", "http://127.0.0.1:5000", None, grpc_port=4999)
    assert grpc["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4999" and "OTEL_EXPORTER_OTLP_HEADERS" not in grpc
    mine = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=mine"}
    kept = run_environment(mine, "r", "http://127.0.0.1:4318", "k1")
    assert {k: kept[k] for k in mine} == mine and "OTEL_EXPORTER_OTLP_PROTOCOL" not in kept
