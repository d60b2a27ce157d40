"""The Cruddur stack for end-to-end tests, on the ``apiary.testing`` plugin: its session server (the
store ``--apiary-store`` / ``APIARY_TEST_STORE`` names, DuckDB by default), backend-flask with every
instrumentation pointed at it by ``apiary.env``, the front end, headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from apiary.testing.plugin import apiary, telemetry_for  # noqa: F401 - the plugin's fixture over tests/conftest.py's
from apiary.testing.server import EmbeddedApiary, free_port
from apiary.testing.telemetry import Telemetry

REPO = Path(__file__).resolve().parents[2]
CRUDDUR = REPO / "examples" / "cruddur"
DIST = CRUDDUR / "frontend" / "dist"
CHROMIUM = "/usr/bin/chromium"  # Debian's package; never `playwright install`
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
INSTRUMENTATION_PREFIXES = ("OTEL_", "AWS_", "CRUDDUR_", "ROLLBAR_", "HONEYCOMB_")
PARTS = {"xray": "AWS_XRAY_DAEMON_ADDRESS", "cloudwatch": "CRUDDUR_CLOUDWATCH", "rollbar": "ROLLBAR_ACCESS_TOKEN"}

sys.path.insert(0, str(CRUDDUR))
import check_app  # noqa: E402  examples/cruddur/check_app.py: start_backend, run_checks, stop_process


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(INSTRUMENTATION_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def require_frontend() -> None:
    if not (DIST / "index.html").exists():
        why = "npm is not installed" if shutil.which("npm") is None else "it was not built"
        pytest.skip(f"examples/cruddur/frontend/dist is missing ({why}): run "
                    "`npm ci && npm run build` in examples/cruddur/frontend (scripts/test does)")


def backend_env(telemetry: Telemetry, backend: str, frontend: str, off: str = "") -> dict[str, str]:
    """``apiary.env`` plus Cruddur's own switches: X-Ray records every request, watchtower sends twice a second."""
    env = {**telemetry.environ("backend-flask"), "CRUDDUR_XRAY_SAMPLING": "0", "CRUDDUR_CLOUDWATCH": "1",
           "CRUDDUR_CLOUDWATCH_SEND_INTERVAL": "0.5", "FRONTEND_URL": frontend, "BACKEND_URL": backend}
    env.pop(PARTS.get(off, ""), None)
    return env


@dataclass
class Stack:
    apiary: Telemetry
    backend: str
    frontend: str
    procs: list[subprocess.Popen] = field(default_factory=list)


def start_frontend(port: int, backend: str, telemetry: Telemetry, log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    proc = subprocess.Popen([sys.executable, str(CRUDDUR / "serve_frontend.py"), "--port", str(port), "--backend-url", backend,
                             "--otlp-url", f"{telemetry.url}/v1/traces", "--api-key", telemetry.key],
                            stdout=out, stderr=subprocess.STDOUT, env=clean_env())
    out.close()
    try:
        check_app.wait_http(f"http://127.0.0.1:{port}/config.js", timeout=15, proc=proc)
    except Exception:
        check_app.stop_process(proc)
        raise
    return proc


@pytest.fixture(scope="module")
def stack(apiary_server: EmbeddedApiary, request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """backend-flask (every instrumentation) + the front end on free ports, reporting to one environment."""
    require_frontend()
    tmp = tmp_path_factory.mktemp("cruddur")
    frontend_port, backend_port = free_port(), free_port()
    frontend, backend = f"http://127.0.0.1:{frontend_port}", f"http://127.0.0.1:{backend_port}"
    for telemetry in telemetry_for(apiary_server, request):
        proc, backend = check_app.start_backend(backend_port, backend_env(telemetry, backend, frontend),
                                                str(tmp / "backend-flask.log"))
        procs = [proc]
        try:
            procs.append(start_frontend(frontend_port, backend, telemetry, tmp / "frontend.log"))
            yield Stack(telemetry, backend, frontend, procs)
        finally:
            for p in reversed(procs):
                check_app.stop_process(p)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    try:
        yield pg
    finally:
        context.close()
