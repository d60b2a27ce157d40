"""``apiary run --name NAME -- COMMAND``: run a command whose telemetry is tagged with a run.

The run is the resource attribute ``apiary.run`` (what the pytest plugin sets too), so every OTel SDK
in the command -- and in any process it starts -- puts it on its spans, logs and metrics without a
line of code: the SDKs read ``OTEL_RESOURCE_ATTRIBUTES`` at start. The command also gets the OTLP
endpoint and the Honeycomb key header when it has none, so ``apiary run`` alone points an unconfigured
app at Apiary; settings the user already has win (an endpoint set to a collector stays).

What the other clients carry, and what a user can rely on:

* X-Ray SDKs read no resource attributes: the command gets ``APIARY_RUN=NAME``, and a segment joins
  the run once the app adds the annotation ``apiary_run`` (``segment.put_annotation("apiary_run",
  os.environ["APIARY_RUN"])``; X-Ray annotation keys allow no dots). Only the annotated entity joins: a
  segment annotated in a middleware is in the run, its subsegments are not (they carry no annotation).
* CloudWatch log events (watchtower) and Rollbar items have nowhere to carry it: a run's first and last
  seen (``apiary runs list``) is the time window to read them in, which is only the run's own when no
  other run overlaps it. AWS settings are left as they are: ``AWS_ENDPOINT_URL`` would redirect every
  AWS client of the command, not only the ones meant for Apiary.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import urllib.parse
from typing import Any, Mapping

from apiary.query.runs import RUN_ATTRIBUTE
from apiary.server.settings import DEFAULT_PORT

#: The OTLP/gRPC port ``apiary serve`` listens on unless told otherwise.
DEFAULT_GRPC_PORT = 4317


def merge_resource_attributes(existing: str, name: str) -> str:
    """``existing`` (``k=v,k2=v2``) with ``apiary.run`` set to ``name`` (percent-encoded, as the SDKs decode it)."""
    kept = [p for p in (part.strip() for part in existing.split(",")) if p and p.split("=", 1)[0].strip() != RUN_ATTRIBUTE]
    return ",".join([*kept, f"{RUN_ATTRIBUTE}={urllib.parse.quote(name, safe='')}"])


def run_environment(base: Mapping[str, str], name: str, url: str, key: str | None,
                    grpc_port: int = DEFAULT_GRPC_PORT) -> dict[str, str]:
    """The command's environment: ``base`` plus the run, and Apiary's endpoint and key where ``base`` has none."""
    env = dict(base)
    env["OTEL_RESOURCE_ATTRIBUTES"] = merge_resource_attributes(env.get("OTEL_RESOURCE_ATTRIBUTES", ""), name)
    env["APIARY_RUN"] = name
    if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        if env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip() == "grpc":
            host = urllib.parse.urlsplit(url).hostname or "127.0.0.1"
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{host}:{grpc_port}"
        else:
            env.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = url.rstrip("/")
    if key and not env.get("OTEL_EXPORTER_OTLP_HEADERS"):
        env["OTEL_EXPORTER_OTLP_HEADERS"] = f"x-honeycomb-team={key}"
    return env


def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("apiary run: give the command to run after --, e.g. apiary run --name before -- pytest", file=sys.stderr)
        return 2
    if not args.name.strip():
        print("apiary run: --name must not be empty", file=sys.stderr)
        return 2
    key = args.key or os.environ.get("APIARY_KEY")
    env = run_environment(os.environ, args.name, args.url, key, args.grpc_port)
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        print(f"apiary run: command not found: {command[0]}", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"apiary run: cannot execute {command[0]}", file=sys.stderr)
        return 126
    returncode = _wait_forwarding_signals(child)
    # A command killed by a signal exits as a shell reports it: 128 + the signal's number.
    return returncode if returncode >= 0 else 128 - returncode


def _wait_forwarding_signals(child: subprocess.Popen[bytes]) -> int:
    """Wait for the command; SIGTERM and SIGHUP sent to ``apiary run`` go to it (a supervisor that stops the
    wrapper must stop the app, and let its exporters flush, not orphan it). Ctrl-C already reaches the whole
    foreground process group, the command included, so SIGINT is only waited out here."""
    def forward(signum: int, _frame: Any) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    handled = {signal.SIGTERM: forward, signal.SIGHUP: forward, signal.SIGINT: signal.SIG_IGN}
    previous = {signum: signal.signal(signum, handler) for signum, handler in handled.items()}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a command with its telemetry tagged as one run (apiary.run)",
                       description="Example: apiary run --name after-fix -- pytest tests/  (then: apiary runs compare "
                                   "before-fix after-fix)")
    p.add_argument("--name", required=True, help="the run's name (the resource attribute apiary.run)")
    p.add_argument("--url", default=os.environ.get("APIARY_URL", f"http://127.0.0.1:{DEFAULT_PORT}"),
                   help="Apiary's OTLP/HTTP address, used when OTEL_EXPORTER_OTLP_ENDPOINT is not set (env APIARY_URL)")
    p.add_argument("--key", default=None, help="a key sent as x-honeycomb-team when OTEL_EXPORTER_OTLP_HEADERS is not set "
                                               "(env APIARY_KEY)")
    p.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT,
                   help="Apiary's OTLP/gRPC port, used when OTEL_EXPORTER_OTLP_PROTOCOL=grpc (default 4317)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    p.set_defaults(func=cmd_run)
