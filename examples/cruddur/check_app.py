"""Self-check for the Cruddur backend: start it with every instrumentation off and check each route.

    python examples/cruddur/check_app.py            # exit 0 when every check passes
    python examples/cruddur/check_app.py --url URL  # check an already running backend

Only the standard library is used here; the backend itself needs backend-flask/requirements.txt.
`start_backend()` and `run_checks()` are meant to be reused by a test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BACKEND_DIR = HERE / "backend-flask"

# Variables that switch instrumentation on; removed so the check runs with everything off.
INSTRUMENTATION_PREFIXES = ("OTEL_", "AWS_XRAY", "CRUDDUR_", "ROLLBAR_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(INSTRUMENTATION_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def start_backend(port: int | None = None, env_extra: dict[str, str] | None = None,
                  log_path: str | None = None, instrumentation_off: bool = True, launcher: list[str] | None = None):
    """Start backend-flask; returns (process, base_url). The caller stops it (stop_process).

    `launcher` goes before `python app.py`, e.g. `opentelemetry-instrument`'s script.
    """
    port = port or free_port()
    env = clean_env() if instrumentation_off else dict(os.environ)
    env.update(env_extra or {})
    env["PORT"] = str(port)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([*(launcher or []), sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=BACKEND_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/api/health", proc=proc)
    except Exception:
        stop_process(proc)
        raise
    return proc, base


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def call(base: str, method: str, path: str, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            status, raw, hdrs = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), e.headers
    elapsed = time.monotonic() - t0
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = raw.decode("utf-8", "replace")
    return status, payload, hdrs, elapsed


def run_checks(base: str) -> list[str]:
    """Returns a list of failures (empty when all good)."""
    failures: list[str] = []

    def check(name, cond, detail=""):
        print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  {detail}"))
        if not cond:
            failures.append(f"{name}: {detail}")

    s, p, _, _ = call(base, "GET", "/api/health")
    check("health", s == 200 and p.get("success") is True, (s, p))

    s, p, _, _ = call(base, "GET", "/api/activities/home", headers={"X-Cruddur-User": "worf"})
    check("home: 200 with 3 activities", s == 200 and isinstance(p, list) and len(p) == 3, (s, p))
    if s == 200 and p:
        check("home: Andrew Brown's 'Cloud is very fun!' first",
              p[0].get("handle") == "Andrew Brown" and p[0].get("message") == "Cloud is very fun!", p[0])
        check("home: Worf replies 'This post has no honor!'",
              p[0]["replies"][0]["handle"] == "Worf", p[0].get("replies"))
        check("home: Worf and Garek", [a["handle"] for a in p] == ["Andrew Brown", "Worf", "Garek"], p)

    s, p, _, _ = call(base, "GET", "/api/activities/home?fail=1")
    check("home ?fail=1 -> 500", s == 500, (s, p))

    s, _, _, elapsed = call(base, "GET", "/api/activities/home?slow=0.4&user=garek")
    check("home ?slow=0.4 -> 200, >= 0.4 s", s == 200 and elapsed >= 0.4, (s, elapsed))

    s, p, _, _ = call(base, "GET", "/api/activities/@andrewbrown")
    check("user activities @andrewbrown", s == 200 and p and p[0]["message"] == "Cloud is fun!", (s, p))

    s, p, _, _ = call(base, "GET", "/api/activities/@nobody")
    check("user activities unknown handle -> 404", s == 404 and p == ["user_not_found"], (s, p))

    s, p, _, _ = call(base, "GET", "/api/activities/@worf?fail=1")
    check("user activities ?fail=1 -> 500", s == 500, (s, p))

    s, p, _, _ = call(base, "GET", "/api/activities/search?term=cloud")
    check("search term=cloud", s == 200 and isinstance(p, list) and len(p) >= 1, (s, p))

    s, p, _, _ = call(base, "GET", "/api/activities/search")
    check("search without term -> 422", s == 422 and p == ["search_term_blank"], (s, p))

    s, p, _, _ = call(base, "POST", "/api/activities", {"message": "Hello from check_app", "ttl": "7-days"},
                      headers={"X-Cruddur-User": "garek"})
    check("create activity", s == 200 and p.get("handle") == "garek" and p.get("uuid"), (s, p))

    s, p, _, _ = call(base, "POST", "/api/activities", {"message": "", "ttl": "7-days"})
    check("create activity blank message -> 422", s == 422 and p == ["message_blank"], (s, p))

    s, p, _, _ = call(base, "POST", "/api/activities/68f126b0-1ceb-4a33-88be-d90fa7109eee/reply",
                      {"message": "Agreed"})
    check("reply", s == 200 and p.get("reply_to_activity_uuid") == "68f126b0-1ceb-4a33-88be-d90fa7109eee", (s, p))

    s, p, _, _ = call(base, "GET", "/api/message_groups")
    check("message groups", s == 200 and isinstance(p, list) and len(p) == 2, (s, p))

    s, p, _, _ = call(base, "GET", "/api/messages/@worf")
    check("messages @worf", s == 200 and isinstance(p, list) and p[0]["handle"] == "worf", (s, p))

    s, p, _, _ = call(base, "POST", "/api/messages", {"message": "Qapla'", "handle": "worf"},
                      headers={"X-Cruddur-User": "andrewbrown"})
    check("create message", s == 200 and p.get("message") == "Qapla'", (s, p))

    s, p, _, _ = call(base, "GET", "/rollbar/test")
    check("rollbar test", s == 200 and p == "Hello World!", (s, p))

    s, _, h, _ = call(base, "OPTIONS", "/api/activities/home", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "traceparent,x-cruddur-user"})
    allowed = (h.get("Access-Control-Allow-Headers") or "").lower()
    check("CORS preflight allows traceparent", s == 200 and "traceparent" in allowed, (s, dict(h)))
    return failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="check a running backend instead of starting one")
    args = ap.parse_args(argv)
    if args.url:
        failures = run_checks(args.url.rstrip("/"))
    else:
        proc, base = start_backend()
        try:
            print(f"backend-flask started at {base} (all instrumentation off)")
            failures = run_checks(base)
        finally:
            stop_process(proc)
    print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
