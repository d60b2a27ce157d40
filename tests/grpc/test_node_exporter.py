"""The OpenTelemetry JS SDK's OTLP/gRPC trace exporter, from the npm registry, lands its spans."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.grpc.conftest import GrpcApiary
from tests.node_clients import install_lock

SCRIPT = Path(__file__).with_name("node_export.js")
#: Installed once, under the repository, git-ignored; reused by later runs. One release line: the exporter's 0.3xx
#: line wants @opentelemetry/api 1.10, which the 2.x SDK packages do not accept yet.
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "node-otlp-grpc"
PACKAGES = {
    "@opentelemetry/exporter-trace-otlp-grpc": "0.223.1",
    "@opentelemetry/sdk-trace-node": "2.12.1",
    "@opentelemetry/resources": "2.12.1",
}


@pytest.fixture(scope="session")
def node_packages() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the OpenTelemetry JS exporter")
    with install_lock(CACHE):
        if not all((CACHE / "node_modules" / name / "package.json").exists() for name in PACKAGES):
            (CACHE / "package.json").write_text(json.dumps({"private": True, "dependencies": PACKAGES}, indent=2))
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CACHE, check=True,
                           timeout=300)
        shutil.copy(SCRIPT, CACHE / SCRIPT.name)  # node resolves require() from the script's folder
    return CACHE


def test_node_grpc_exporter_spans_land(grpc_apiary: GrpcApiary, node_packages: Path) -> None:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": grpc_apiary.grpc_endpoint,
           "OTEL_EXPORTER_OTLP_HEADERS": f"x-honeycomb-team={grpc_apiary.key}", "OTEL_SERVICE_NAME": "frontend-node"}
    done = subprocess.run(["node", SCRIPT.name], cwd=node_packages, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.strip().splitlines()[-1]
    spans = {s["name"]: s for s in grpc_apiary.trace(trace_id, 2)}
    assert set(spans) == {"GET /api/activities/home", "render"}
    root, child = spans["GET /api/activities/home"], spans["render"]
    assert root["service.name"] == "frontend-node" and root["meta.dataset"] == "frontend-node"
    assert root["http.status_code"] == 200 and child["app.items"] == 3
    assert child["trace.parent_id"] == root["trace.span_id"]
    assert root["library.name"] == "node-export"

    bad = subprocess.run(["node", SCRIPT.name], cwd=node_packages, capture_output=True, text=True, timeout=60,
                         env={**env, "OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=not-a-key"})
    assert bad.returncode != 0 and "UNAUTHENTICATED" in bad.stderr and "x-honeycomb-team" in bad.stderr
    assert grpc_apiary.counts() == {"frontend-node": 2}
