"""The ``apiary`` command: thin; each subcommand calls into the library."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from typing import Sequence

from apiary.ports import DEFAULT_PORT
from apiary.server import settings as server_settings
from apiary.store.meta import MetaStore


def _store_args(p: argparse.ArgumentParser) -> None:
    """``--data`` and ``--store``, read as ``apiary serve`` reads them (flag, then APIARY_* variable, then default)."""
    server_settings.add_flags(p, server_settings.StoreLocation)
    p.set_defaults(resolve=_resolve_store_args)


def _resolve_store_args(args: argparse.Namespace) -> None:
    found = server_settings.from_flags(args, server_settings.StoreLocation)
    args.data, args.store = found.data_dir, found.store


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from apiary.receivers.otlp.grpc import address as otlp_grpc_address
    from apiary.server.app import create_app, open_context

    try:
        settings = server_settings.from_flags(args)
    except server_settings.BadSetting as exc:
        print(f"apiary serve: {exc}", file=sys.stderr)
        return 2
    try:  # the port first: a busy one is said before anything else is opened or printed
        sock = _listen(settings.host, settings.port)
    except OSError as exc:
        print(f"apiary serve: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} (another Apiary "
              f"or OTLP collector?); choose another port with --port", file=sys.stderr)
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        ctx = open_context(settings)
    except Exception as exc:  # noqa: BLE001 - a clear line beats a traceback here
        where = f"the data directory {settings.data_dir}" if settings.store == "duckdb" else f"the store {settings.store}"
        print(f"apiary: cannot open {where}: {exc}", file=sys.stderr)
        return 1
    meta = ctx.meta
    first_key = None
    if not meta.environments():
        first_key = meta.create_key("dev")
    base = f"http://{settings.host}:{settings.port}"
    stored = settings.data_dir if settings.store == "duckdb" else settings.store
    lines = [f"Apiary listening on {base} (data in {stored})"]
    grpc_base = f"http://{otlp_grpc_address(settings.host, settings.otlp_grpc_port)}" if settings.otlp_grpc_port else ""
    if grpc_base:
        lines.append(f"OTLP/gRPC on {grpc_base}")
    if first_key:
        lines += ["", "Created environment 'dev'. Its API key (shown only this once, stored hashed):", f"    {first_key}"]
    key_hint = first_key or "<your key: apiary keys create dev>"
    lines += ["", "Point the OpenTelemetry SDK at it, over OTLP/HTTP:",
              "    export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
              f"    export OTEL_EXPORTER_OTLP_ENDPOINT={base}",
              f"    export OTEL_EXPORTER_OTLP_HEADERS=x-honeycomb-team={key_hint}",
              "    export OTEL_SERVICE_NAME=backend-flask"]
    if grpc_base:
        lines += ["or over OTLP/gRPC:",
                  "    export OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
                  f"    export OTEL_EXPORTER_OTLP_ENDPOINT={grpc_base}",
                  f"    export OTEL_EXPORTER_OTLP_HEADERS=x-honeycomb-team={key_hint}"]
    lines.append("")
    print("\n".join(lines), flush=True)
    from apiary.server.guard import protocol_with_header_timeout

    config = uvicorn.Config(create_app(settings, ctx), host=settings.host, port=settings.port, log_level=args.log_level,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=10,
                            http=protocol_with_header_timeout(settings.header_timeout_s))
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def _listen(host: str, port: int) -> socket.socket:
    """The HTTP port, bound and listening, as uvicorn would bind it (it is handed this socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _clickhouse_meta(args: argparse.Namespace):  # noqa: ANN202
    """Keys live in ClickHouse when the store is ClickHouse, so every node sharing it sees them."""
    from apiary.store.clickhouse import ClickHouseMeta, connect

    return ClickHouseMeta(connect(args.store))


def cmd_keys_create(args: argparse.Namespace) -> int:
    if args.store != "duckdb":
        meta = _clickhouse_meta(args)
        print(meta.create_key(args.environment, can_read=not args.ingest_only))
        meta.client.close()
        return 0
    args.data.mkdir(parents=True, exist_ok=True)
    meta = MetaStore(args.data / "meta.sqlite")
    print(meta.create_key(args.environment, can_read=not args.ingest_only))
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    path = args.data / "meta.sqlite"
    if args.store == "duckdb" and not path.exists():
        from apiary.demo import DEFAULT_DATA

        hint = "start `apiary serve` once to create it, or pass --data DIR (env APIARY_DATA)"
        if args.data != DEFAULT_DATA and (DEFAULT_DATA / "meta.sqlite").exists():
            hint = f"the demo's data is in ./{DEFAULT_DATA}: apiary keys list --data {DEFAULT_DATA}"
        print(f"apiary keys list: no Apiary data in {args.data} ({hint})", file=sys.stderr)
        return 1
    meta = MetaStore(path) if args.store == "duckdb" else _clickhouse_meta(args)
    for env in meta.environments():
        print(env)
        for k in meta.keys(env):
            access = "write+read" if k.can_read else "write only"
            print(f"    {k.masked}  {access}  created {k.created_at:%Y-%m-%d %H:%M}")
    return 0


def _key(args: argparse.Namespace) -> str | None:
    return args.key or os.environ.get("APIARY_KEY") or os.environ.get("HONEYCOMB_API_KEY")


def cmd_trace(args: argparse.Namespace) -> int:
    from apiary.model.trace import span_tree

    key = _key(args)
    if not key:
        print("apiary trace: give a read key with --key or APIARY_KEY", file=sys.stderr)
        return 2
    req = urllib.request.Request(f"{args.url.rstrip('/')}/api/traces/{args.trace_id}", headers={"x-honeycomb-team": key})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            doc = json.load(resp)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        print(f"apiary trace: {message}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"apiary trace: cannot reach {args.url}: {exc.reason} (is `apiary serve` running?)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"trace {doc['trace_id']}  ({len(doc['spans'])} spans)")
    for depth, span in span_tree(doc["spans"]):
        mark = " !" if span.get("error") else ""
        dur = span.get("duration_ms")
        dur_text = f"{dur:10.3f} ms" if isinstance(dur, (int, float)) else " " * 13
        print(f"{dur_text}  {'  ' * depth}{span.get('name', '?')}  [{span.get('service.name', '?')}]{mark}")
        for ev in span.get("events", []):
            print(f"{'':13}  {'  ' * (depth + 1)}* {ev.get('name')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apiary", description="A self-hosted backend for traces, logs and errors.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server on the embedded store",
                           description="Every setting is a flag, else its APIARY_* environment variable, else its default.")
    server_settings.add_flags(serve)
    serve.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="environments and API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (and its environment if new); prints the key alone")
    create.add_argument("environment")
    create.add_argument("--ingest-only", action="store_true", help="the key can send data but not query it")
    _store_args(create)
    create.set_defaults(func=cmd_keys_create)
    lst = keys_sub.add_parser("list", help="environments and their (masked) keys")
    _store_args(lst)
    lst.set_defaults(func=cmd_keys_list)

    trace = sub.add_parser("trace", help="print one trace as a tree")
    trace.add_argument("trace_id")
    trace.add_argument("--url", default=os.environ.get("APIARY_URL", f"http://127.0.0.1:{DEFAULT_PORT}"))
    trace.add_argument("--key", default=None, help="a read key (env APIARY_KEY)")
    trace.add_argument("--json", action="store_true", help="print the raw JSON")
    trace.set_defaults(func=cmd_trace)

    from apiary.query import commands as query_commands

    query_commands.add_parsers(sub)

    from apiary.query import trace_commands

    trace_commands.add_parser(sub)

    from apiary import run_env
    from apiary.query import run_commands

    run_env.add_parser(sub)
    run_commands.add_parser(sub)

    from apiary import demo

    demo.add_parser(sub)

    from apiary.mcp import command as mcp_command

    mcp_command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "resolve"):
        try:
            args.resolve(args)
        except server_settings.BadSetting as exc:
            print(f"apiary {args.command}: {exc}", file=sys.stderr)
            return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
