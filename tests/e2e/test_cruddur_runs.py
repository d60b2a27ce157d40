"""The real Cruddur backend started under ``apiary run`` twice: its own OTel set-up (the guides' OTLP/HTTP exporter,
switched on by the endpoint ``apiary run`` provides) tags every span with the run, and the two runs compare. The
second run's home-feed requests carry a planted 40 ms delay (Cruddur's ``?slow=0.04``, slept inside the request):
`apiary runs compare` names the request's span first and fails a 20 ms threshold."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from apiary.testing.telemetry import Telemetry
from tests.e2e.conftest import check_app
from tests.server import free_port

HOME = "/api/activities/home"
REQUESTS = 8


def runs(apiary: Telemetry) -> dict[str, dict]:
    r = httpx.get(apiary.url + "/api/runs", headers={"X-Honeycomb-Team": apiary.key}, timeout=60)
    assert r.status_code == 200, r.text
    return {run["name"]: run for run in r.json()["runs"]}


def cruddur_run(apiary: Telemetry, name: str, log: Path, delay_s: float = 0.0) -> int:
    """Start the backend as ``apiary run --name NAME -- python app.py``, send the home feed (``delay_s`` slower),
    stop it; its exit status."""
    launcher = [sys.executable, "-m", "apiary", "run", "--name", name, "--url", apiary.url, "--key", apiary.key, "--"]
    proc, base = check_app.start_backend(free_port(), {"OTEL_SERVICE_NAME": "backend-flask", "OTEL_BSP_SCHEDULE_DELAY": "200"},
                                         str(log), launcher=launcher)
    try:
        params = {"slow": str(delay_s)} if delay_s else {}
        for _ in range(REQUESTS):
            assert httpx.get(base + HOME, params=params, headers={"X-Cruddur-User": "worf"}, timeout=10).status_code == 200
        deadline = time.monotonic() + 30
        while runs(apiary).get(name, {}).get("spans", 0) < (3 if delay_s else 2) * REQUESTS:
            assert time.monotonic() < deadline, f"run {name}'s spans not all in after 30 s: {runs(apiary)}"
            time.sleep(0.5)
    finally:
        # SIGTERM to `apiary run`: passed on to the app, which exits 0 on it (flushing its exporters), and so does the wrapper.
        check_app.stop_process(proc)
    return proc.returncode


def compare_cli(apiary: Telemetry, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "apiary", "runs", "compare", "cruddur-1", "cruddur-2", *args,
                           "--url", apiary.url, "--key", apiary.key], capture_output=True, text=True, timeout=120)


def test_cruddur_under_apiary_run_twice_compares(apiary: Telemetry, tmp_path: Path) -> None:
    for name, delay in (("cruddur-1", 0.0), ("cruddur-2", 0.04)):
        assert cruddur_run(apiary, name, tmp_path / f"{name}.log", delay) == 0, (tmp_path / f"{name}.log").read_text()
    found = runs(apiary)
    assert found["cruddur-1"]["services"] == found["cruddur-2"]["services"] == ["backend-flask"]
    r = httpx.get(apiary.url + "/api/runs/compare", params={"a": "cruddur-1", "b": "cruddur-2"},
                  headers={"X-Honeycomb-Team": apiary.key}, timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    first = doc["spans"][0]  # the request's span, which the planted delay slowed
    assert first["in"] == "both" and first["a"]["count"] == first["b"]["count"] == REQUESTS, doc["spans"]
    assert first["name"] not in ("home-activities-mock-data", "simulated-latency"), doc["spans"]
    assert 35 <= first["change"]["p50_ms"] <= 80, first
    rows = {row["name"]: row for row in doc["spans"]}
    mock = rows["home-activities-mock-data"]  # the guides' own span, from HomeActivities.run
    assert mock["in"] == "both" and mock["a"]["count"] == mock["b"]["count"] == REQUESTS
    assert [s["name"] for s in doc["new_spans"]] == ["simulated-latency"] and doc["vanished_spans"] == []

    failed = compare_cli(apiary, "--threshold-ms", "20")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    table = [line for line in failed.stdout.splitlines() if line.startswith(("!", " ", "+", "-"))]
    assert table[1].startswith("!") and f"backend-flask: {first['name']}" in table[1], failed.stdout
    assert f"the worst: backend-flask: {first['name']}" in failed.stderr
    passed = compare_cli(apiary, "--threshold-ms", "1000")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "backend-flask: home-activities-mock-data" in passed.stdout
