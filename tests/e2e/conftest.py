"""The Cruddur stack for end-to-end tests: `apiary serve`, backend-flask, the front end, headless Chromium.

Every receiver a part depends on is probed at run time: a part whose receiver is not built yet is
switched off in the app and its assertions are skipped with the reason; the app must work either way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from tests.server import ApiaryProcess, create_key, free_port

REPO = Path(__file__).resolve().parents[2]
CRUDDUR = REPO / "examples" / "cruddur"
DIST = CRUDDUR / "frontend" / "dist"
CHROMIUM = "/usr/bin/chromium"  # Debian's package; never `playwright install`
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
INSTRUMENTATION_PREFIXES = ("OTEL_", "AWS_", "CRUDDUR_", "ROLLBAR_", "HONEYCOMB_")

sys.path.insert(0, str(CRUDDUR))
import check_app  # noqa: E402  examples/cruddur/check_app.py: start_backend, run_checks, stop_process


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.25, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {what or check} (last: {last!r})")
        time.sleep(interval)


def serve_supports_xray() -> bool:
    out = subprocess.run([sys.executable, "-m", "apiary", "serve", "--help"], capture_output=True, text=True, timeout=60)
    return "--xray-port" in out.stdout


def has_cloudwatch(url: str) -> bool:
    r = httpx.post(url + "/", content=b"{}", headers={"X-Amz-Target": "Logs_20140328.DescribeLogGroups",
                                                      "Content-Type": "application/x-amz-json-1.1"}, timeout=5)
    return r.status_code not in (404, 405)


def has_rollbar(url: str) -> bool:
    return httpx.post(url + "/api/1/item/", json={}, timeout=5).status_code not in (404, 405)


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


@dataclass
class Stack:
    apiary: ApiaryProcess
    backend: str
    frontend: str
    xray_port: int
    parts: dict[str, bool]
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.apiary.key

    def skip_unless(self, part: str, reason: str) -> None:
        if not self.parts[part]:
            pytest.skip(reason)

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.apiary.url}/api/traces/{trace_id}", headers={"x-honeycomb-team": self.key}, timeout=10)
        return r.json()["spans"] if r.status_code == 200 else []


def start_frontend(port: int, backend: str, apiary_url: str, key: str, log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    proc = subprocess.Popen([sys.executable, str(CRUDDUR / "serve_frontend.py"), "--port", str(port), "--backend-url", backend,
                             "--otlp-url", f"{apiary_url}/v1/traces", "--api-key", key],
                            stdout=out, stderr=subprocess.STDOUT, env=clean_env())
    out.close()
    try:
        check_app.wait_http(f"http://127.0.0.1:{port}/config.js", timeout=15, proc=proc)
    except Exception:
        check_app.stop_process(proc)
        raise
    return proc


def backend_env(apiary: ApiaryProcess, backend_port: int, frontend: str, parts: dict[str, bool], xray_port: int) -> dict[str, str]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": apiary.url, "OTEL_EXPORTER_OTLP_HEADERS": f"x-honeycomb-team={apiary.key}",
           "OTEL_SERVICE_NAME": "backend-flask", "OTEL_BSP_SCHEDULE_DELAY": "200",
           "FRONTEND_URL": frontend, "BACKEND_URL": f"http://127.0.0.1:{backend_port}"}
    if parts["xray"]:
        env.update(AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{xray_port}", CRUDDUR_XRAY_SAMPLING="0")
    if parts["cloudwatch"]:
        env.update(CRUDDUR_CLOUDWATCH="1", CRUDDUR_CLOUDWATCH_SEND_INTERVAL="0.5", AWS_ENDPOINT_URL=apiary.url,
                   AWS_ACCESS_KEY_ID=apiary.key, AWS_SECRET_ACCESS_KEY=apiary.key, AWS_DEFAULT_REGION="us-east-1")
    if parts["rollbar"]:
        env.update(ROLLBAR_ACCESS_TOKEN=apiary.key, ROLLBAR_ENDPOINT=f"{apiary.url}/api/1/")
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Apiary + backend-flask (every instrumentation Apiary can receive) + the front end, all on free ports."""
    require_frontend()
    tmp = tmp_path_factory.mktemp("cruddur")
    data_dir = tmp / "data"
    key = create_key(data_dir, "dev")
    frontend_port, backend_port = free_port(), free_port()
    frontend = f"http://127.0.0.1:{frontend_port}"
    xray = serve_supports_xray()
    xray_port = free_port() if xray else 0
    extra = ["--cors-origin", frontend, "--decode-workers", "0"] + (["--xray-port", str(xray_port)] if xray else [])
    apiary = ApiaryProcess(data_dir, key=key, extra_args=extra)
    apiary.start()
    procs: list[subprocess.Popen] = []
    try:
        parts = {"xray": xray, "cloudwatch": has_cloudwatch(apiary.url), "rollbar": has_rollbar(apiary.url)}
        proc, backend = check_app.start_backend(backend_port, backend_env(apiary, backend_port, frontend, parts, xray_port),
                                                str(tmp / "backend-flask.log"))
        procs.append(proc)
        procs.append(start_frontend(frontend_port, backend, apiary.url, key, tmp / "frontend.log"))
        yield Stack(apiary, backend, frontend, xray_port, parts, procs)
    finally:
        for p in reversed(procs):
            check_app.stop_process(p)
        apiary.stop()


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


def spans_named(spans: list[dict[str, Any]], **where: Any) -> list[dict[str, Any]]:
    return [s for s in spans if all(s.get(k) == v for k, v in where.items())]


def dumps(spans: list[dict[str, Any]]) -> str:
    keep = ("name", "service.name", "trace.span_id", "trace.parent_id", "xray.type")
    return json.dumps([{k: s.get(k) for k in keep} for s in spans], indent=1)
