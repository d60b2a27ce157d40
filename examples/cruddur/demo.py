"""One-command Cruddur demo against a local Apiary.

    python examples/cruddur/demo.py --data ./apiary-data --port 4318 [--duration 120]

Starts `python -m apiary serve`, the Cruddur backend (OTel spans and metrics pointed at Apiary, and X-Ray,
CloudWatch Logs and Rollbar too when this Apiary serves them; CRUDDUR_ALL=0 keeps only
OTel), the front end (built first if
frontend/dist is missing), and a bounded burst of traffic; waits until Apiary has the
backend-flask dataset, prints the URLs and a first query, and stops everything it started
on Ctrl-C / SIGTERM or after --duration seconds.

Talks to Apiary only over the wire and through its command line, like any user.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BACKEND_DIR = HERE / "backend-flask"
FRONTEND_DIR = HERE / "frontend"

# Inherited variables that would switch instrumentation on or send data elsewhere.
_STRIP_PREFIXES = ("OTEL_", "AWS_", "ROLLBAR_", "CRUDDUR_", "HONEYCOMB_")


def _port_free(port: int, udp: bool = False) -> bool:
    if udp:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_port(preferred: int, taken: set[int] = frozenset(), udp: bool = False) -> int:
    if preferred not in taken and _port_free(preferred, udp):
        return preferred
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken and _port_free(port, udp):
            return port


def _http(url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 3.0):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


def serve_supports_xray(env: dict[str, str]) -> bool:
    """`apiary serve --help` mentions --xray-port once the X-Ray daemon is built in."""
    out = subprocess.run([sys.executable, "-m", "apiary", "serve", "--help"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    return "--xray-port" in out.stdout


def receivers(apiary: str) -> dict[str, bool]:
    """Which of the CloudWatch Logs and Rollbar receivers this Apiary serves (404 = not there)."""
    logs = _http(apiary + "/", b"{}", {"X-Amz-Target": "Logs_20140328.DescribeLogGroups",
                                        "Content-Type": "application/x-amz-json-1.1"})
    rollbar = _http(apiary + "/api/1/item/", b"{}", {"Content-Type": "application/json"})
    return {"cloudwatch": logs not in (None, 404, 405), "rollbar": rollbar not in (None, 404, 405)}


def _http_get(url: str, headers: dict | None = None, timeout: float = 3.0):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return None, b""


def _wait(pred, timeout: float, stop: threading.Event, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if pred():
            return True
        stop.wait(interval)
    return False


class _Procs:
    """Processes started by the demo, stopped in reverse order."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.items: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        log.close()
        self.items.append((name, proc))
        return proc

    def dead(self) -> list[str]:
        return [f"{n} (exit {p.returncode})" for n, p in self.items if n != "traffic" and p.poll() is not None]

    def stop_all(self, timeout: float = 15.0) -> None:
        for name, proc in reversed(self.items):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIP_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    return env


def create_key(data_dir: str, env: dict[str, str]) -> str:
    """`apiary keys create dev --data DIR` prints the key alone on stdout."""
    out = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "dev", "--data", str(data_dir)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"apiary keys create failed ({out.returncode}): {out.stderr.strip()}")
    lines = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError("apiary keys create printed no key")
    return lines[-1].split()[-1]


def create_guide_xray_config(apiary: str, key: str) -> str:
    """What the guides create with the AWS CLI, through boto3 against Apiary: the "Cruddur" group
    (`aws xray create-group --filter-expression 'service("backend-flask")'`) and the sampling rule of
    aws/json/xray.json (`aws xray create-sampling-rule --cli-input-json file://aws/json/xray.json`).
    Returns a line for the summary."""
    try:
        import boto3

        xray = boto3.client("xray", endpoint_url=apiary, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key=key)
        xray.create_group(GroupName="Cruddur", FilterExpression='service("backend-flask")')
        rule = json.loads((HERE / "aws" / "json" / "xray.json").read_text())
        xray.create_sampling_rule(**rule)
    except Exception as e:  # noqa: BLE001 - the demo goes on without them, and says so
        return f"  X-Ray group and sampling rule not created: {e}"
    return ('  X-Ray: group Cruddur (service("backend-flask")) and sampling rule Cruddur (aws/json/xray.json) '
            "created as the guides do")


def _newest(paths) -> float:
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


def build_frontend(log_dir: Path) -> bool:
    """`npm ci` when node_modules is missing or older than package-lock.json, `npm run build` when dist is stale."""
    built = FRONTEND_DIR / "dist" / "app.js"
    lock = FRONTEND_DIR / "package-lock.json"
    installed = FRONTEND_DIR / "node_modules" / ".package-lock.json"
    sources = [lock, FRONTEND_DIR / "build.mjs", *(FRONTEND_DIR / "src").rglob("*"), *(FRONTEND_DIR / "public").rglob("*")]
    need_ci = not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime
    stale = not (FRONTEND_DIR / "dist" / "index.html").exists() or not built.exists() \
        or built.stat().st_mtime < _newest(sources)
    if not stale:
        return True
    npm = shutil.which("npm")
    if not npm:
        if (FRONTEND_DIR / "dist" / "index.html").exists():
            return True  # an older build still works
        print("demo: npm not found; skipping the front end", file=sys.stderr)
        return False
    steps = ([[npm, "ci", "--no-audit", "--no-fund"]] if need_ci else []) + [[npm, "run", "build"]]
    print("demo: building the front end (" + ("npm ci && " if need_ci else "") + "npm run build) ...", flush=True)
    with open(log_dir / "frontend-build.log", "ab") as log:
        for cmd in steps:
            if subprocess.run(cmd, cwd=FRONTEND_DIR, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                print(f"demo: `{' '.join(cmd[1:])}` failed, see {log_dir / 'frontend-build.log'}; "
                      "skipping the front end", file=sys.stderr)
                return False
    return True


def run_demo(data_dir: str, port: int, duration: float | None, backend_port: int | None = None,
             frontend_port: int | None = None, xray_port: int | None = None) -> int:
    """Run the demo; returns 0 when Apiary received Cruddur's data, non-zero otherwise.

    Ports left as None are 4567 (backend), 3000 (front end) and 2000 (X-Ray daemon), or free ones
    when those are taken; xray_port=0 leaves X-Ray off.
    """
    stop = threading.Event()
    installed = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            installed[sig] = signal.signal(sig, lambda *_: stop.set())

    log_dir = Path(tempfile.mkdtemp(prefix="cruddur-demo-"))
    procs = _Procs(log_dir)
    all_on = os.getenv("CRUDDUR_ALL", "1").strip().lower() not in ("0", "false", "no", "off")
    try:
        if not _port_free(port):
            print(f"demo: port {port} is busy; choose another with --port", file=sys.stderr)
            return 2
        backend_port = backend_port or pick_port(4567, {port})
        frontend_port = frontend_port or pick_port(3000, {port, backend_port})
        apiary = f"http://127.0.0.1:{port}"
        backend = f"http://127.0.0.1:{backend_port}"
        frontend = f"http://127.0.0.1:{frontend_port}"

        env = _base_env()
        key = create_key(data_dir, env)

        serve = [sys.executable, "-m", "apiary", "serve", "--data", str(data_dir), "--port", str(port),
                 "--host", "127.0.0.1", "--cors-origin", frontend, "--cors-origin", f"http://localhost:{frontend_port}"]
        if all_on and xray_port != 0 and serve_supports_xray(env):
            xray_port = xray_port or pick_port(2000, {port, backend_port, frontend_port}, udp=True)
            serve += ["--xray-port", str(xray_port)]
        else:
            xray_port = 0
            serve += ["--xray-port", "0"] if serve_supports_xray(env) else []
        procs.start("apiary", serve, REPO, env)
        if not _wait(lambda: _http_get(apiary + "/api/health")[0] == 200 or bool(procs.dead()), 60, stop) \
                or procs.dead():
            print(f"demo: Apiary did not start ({', '.join(procs.dead()) or 'timeout'}); "
                  f"see {log_dir / 'apiary.log'}", file=sys.stderr)
            return 1
        have = receivers(apiary) if all_on else {"cloudwatch": False, "rollbar": False}
        switched = {"X-Ray": bool(xray_port), "CloudWatch Logs": have["cloudwatch"], "Rollbar": have["rollbar"]}

        backend_env = dict(env, PORT=str(backend_port), HOST="127.0.0.1",
                           FRONTEND_URL=f"{frontend},http://localhost:{frontend_port}", BACKEND_URL=backend,
                           OTEL_EXPORTER_OTLP_ENDPOINT=apiary,
                           OTEL_EXPORTER_OTLP_HEADERS=f"x-honeycomb-team={key}",
                           OTEL_SERVICE_NAME="backend-flask",
                           OTEL_BSP_SCHEDULE_DELAY="1000",
                           # Flask's http.server.* metrics go to /v1/metrics beside the spans; every 5 s
                           # rather than the SDK's 60 s, so the Metrics page fills while the demo runs.
                           OTEL_METRIC_EXPORT_INTERVAL="5000")
        if switched["X-Ray"]:
            # No AWS_XRAY_URL: segments keep the recorder's service name, backend-flask, which the guide's
            # sampling rule (aws/json/xray.json) and group match.
            backend_env.update(AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{xray_port}")
        # Created while backend-flask imports, and done before its first request (the health check below),
        # which is when the X-Ray SDK first fetches the sampling rules.
        xray_setup: list[str] = []
        xray_thread = threading.Thread(target=lambda: xray_setup.append(create_guide_xray_config(apiary, key)),
                                       daemon=True)
        if switched["X-Ray"]:
            xray_thread.start()
        if switched["CloudWatch Logs"]:
            backend_env.update(CRUDDUR_CLOUDWATCH="1", CRUDDUR_CLOUDWATCH_SEND_INTERVAL="2",
                               AWS_ENDPOINT_URL=apiary, AWS_ACCESS_KEY_ID=key,
                               AWS_SECRET_ACCESS_KEY=key, AWS_DEFAULT_REGION="us-east-1")
        if switched["Rollbar"]:
            backend_env.update(ROLLBAR_ACCESS_TOKEN=key, ROLLBAR_ENDPOINT=f"{apiary}/api/1/")
        procs.start("backend-flask", [sys.executable, "app.py"], BACKEND_DIR, backend_env)
        if switched["X-Ray"]:
            xray_thread.join(30)
        if not _wait(lambda: _http_get(backend + "/api/health")[0] == 200 or bool(procs.dead()), 30, stop) \
                or procs.dead():
            print(f"demo: backend-flask did not start; see {log_dir / 'backend-flask.log'}", file=sys.stderr)
            return 1

        frontend_ok = build_frontend(log_dir)
        if frontend_ok:
            procs.start("frontend", [sys.executable, str(HERE / "serve_frontend.py"), "--port", str(frontend_port),
                                     "--backend-url", backend, "--otlp-url", f"{apiary}/v1/traces",
                                     "--api-key", key], HERE, env)
            frontend_ok = _wait(lambda: _http_get(frontend + "/config.js")[0] == 200, 15, stop)

        traffic_args = ["--duration", str(min(duration, 60.0))] if duration else ["--requests", "300"]
        procs.start("traffic", [sys.executable, str(HERE / "traffic.py"), backend, "--rate", "5", "--seed", "1",
                                *traffic_args], HERE, env)

        def has_columns() -> bool:
            status, body = _http_get(f"{apiary}/1/columns/backend-flask", {"x-honeycomb-team": key})
            if status != 200:
                return False
            try:
                return bool(json.loads(body))
            except ValueError:
                return False

        started = time.monotonic()
        if not _wait(has_columns, 60, stop, interval=0.5):
            if stop.is_set():
                return 0
            print(f"demo: Apiary has no backend-flask data after 60 s; logs in {log_dir}", file=sys.stderr)
            return 1

        on = [k for k, v in switched.items() if v]
        off = [k for k, v in switched.items() if not v]
        heatmap = json.dumps({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}],
                              "filters": [{"column": "trace.parent_id", "op": "does-not-exist"}],
                              "breakdowns": ["app.user_id"], "time_range": 900}, separators=(",", ":"))
        query_url = f"{apiary}/query?" + urllib.parse.urlencode({"env": "dev", "dataset": "backend-flask", "q": heatmap})
        print("\n".join([
            "",
            "Cruddur is sending to Apiary.",
            f"  Apiary UI         {apiary}/",
            f"  Cruddur front end {frontend}/" + ("" if frontend_ok else "   (not running: see the log)"),
            f"  backend-flask     {backend}/api/activities/home",
            f"  API key           {key}",
            f"  logs              {log_dir}",
            "  OpenTelemetry: on" + (f"; {', '.join(on)}: on" if on else "")
            + (f"; {', '.join(off)}: off" if off else ""),
            *([*xray_setup, f"  X-Ray traces and sampling  {apiary}/xray?env=dev"] if switched["X-Ray"] else []),
            *([f"  Rollbar errors, each linked to its trace  {apiary}/errors?env=dev"] if switched["Rollbar"] else []),
            ("  Browser spans (frontend-react-js): open the Cruddur front end in a browser; its page loads and "
             "fetches join backend-flask's traces" if frontend_ok else ""),
            "",
            "A first query to try (dataset backend-flask):",
            "  VISUALIZE HEATMAP(duration_ms)  WHERE trace.parent_id does-not-exist  GROUP BY app.user_id",
            f"  {query_url}",
            "  then COUNT WHERE http.status_code >= 500, and open a trace with app.result_length = 3",
            "",
            "Metrics (Flask's http.server.duration and http.server.active_requests, exported every 5 s):",
            f"  {apiary}/metrics?" + urllib.parse.urlencode({"env": "dev", "dataset": "backend-flask", "time_range": 900}),
            "",
            "Ctrl-C stops everything." if not duration else f"Stopping in {duration:g} s (Ctrl-C stops sooner).",
            "",
        ]), flush=True)

        if duration:
            stop.wait(max(0.0, duration - (time.monotonic() - started)))
        else:
            while not stop.is_set():
                stop.wait(1.0)
                if procs.dead():
                    print(f"demo: stopped: {', '.join(procs.dead())}; logs in {log_dir}", file=sys.stderr)
                    return 1
        return 0
    except RuntimeError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        for sig, handler in installed.items():
            signal.signal(sig, handler)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("APIARY_DATA", "./apiary-data"))
    ap.add_argument("--port", type=int, default=4318)
    ap.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--backend-port", type=int, default=None)
    ap.add_argument("--frontend-port", type=int, default=None)
    ap.add_argument("--xray-port", type=int, default=None, help="0 = X-Ray off")
    args = ap.parse_args(argv)
    return run_demo(args.data, args.port, args.duration, args.backend_port, args.frontend_port, args.xray_port)


if __name__ == "__main__":
    sys.exit(main())
