"""The real Cruddur backend started under ``apiary run`` twice: its own OTel set-up (the guides' OTLP/HTTP exporter,
switched on by the endpoint ``apiary run`` provides) tags every span with the run, and the two runs compare."""

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


def cruddur_run(apiary: Telemetry, name: str, log: Path) -> int:
    """Start the backend as ``apiary run --name NAME -- python app.py``, send the home feed, stop it; its exit status."""
    launcher = [sys.executable, "-m", "apiary", "run", "--name", name, "--url", apiary.url, "--key", apiary.key, "--"]
    proc, base = check_app.start_backend(free_port(), {"OTEL_SERVICE_NAME": "backend-flask", "OTEL_BSP_SCHEDULE_DELAY": "200"},
                                         str(log), launcher=launcher)
    try:
        for _ in range(REQUESTS):
            assert httpx.get(base + HOME, headers={"X-Cruddur-User": "worf"}, timeout=10).status_code == 200
        deadline = time.monotonic() + 30
        while runs(apiary).get(name, {}).get("spans", 0) < 2 * REQUESTS:
            assert time.monotonic() < deadline, f"run {name}'s spans not all in after 30 s: {runs(apiary)}"
            time.sleep(0.5)
    finally:
        # SIGTERM to `apiary run`: passed on to the app, which exits 0 on it (flushing its exporters), and so does the wrapper.
        check_app.stop_process(proc)
    return proc.returncode


def test_cruddur_under_apiary_run_twice_compares(apiary: Telemetry, tmp_path: Path) -> None:
    for name in ("cruddur-1", "cruddur-2"):
        assert cruddur_run(apiary, name, tmp_path / f"{name}.log") == 0, (tmp_path / f"{name}.log").read_text()
    found = runs(apiary)
    assert found["cruddur-1"]["services"] == found["cruddur-2"]["services"] == ["backend-flask"]
    r = httpx.get(apiary.url + "/api/runs/compare", params={"a": "cruddur-1", "b": "cruddur-2"},
                  headers={"X-Honeycomb-Team": apiary.key}, timeout=60)
    assert r.status_code == 200, r.text
    rows = {row["name"]: row for row in r.json()["spans"]}
    mock = rows["home-activities-mock-data"]  # the guides' own span, from HomeActivities.run
    assert mock["in"] == "both" and mock["a"]["count"] == mock["b"]["count"] == REQUESTS
    assert r.json()["new_spans"] == r.json()["vanished_spans"] == []
    done = subprocess.run([sys.executable, "-m", "apiary", "runs", "compare", "cruddur-1", "cruddur-2", "--threshold-ms", "1000",
                           "--url", apiary.url, "--key", apiary.key], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "backend-flask: home-activities-mock-data" in done.stdout
