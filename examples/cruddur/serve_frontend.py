"""Serve the Cruddur front end (frontend/dist) with a /config.js made from the command line.

    python examples/cruddur/serve_frontend.py --port 3000 \
        --backend-url http://127.0.0.1:4567 \
        --otlp-url http://127.0.0.1:4318/v1/traces --api-key KEY

Any path that is not a file (e.g. /@worf) gets index.html, so the user pages work.
Standard library only; binds to 127.0.0.1 unless --host says otherwise.
"""
from __future__ import annotations

import argparse
import functools
import json
import signal
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
DIST = HERE / "frontend" / "dist"


def config_js(backend_url: str, otlp_url: str, api_key: str, service_name: str = "frontend-react-js") -> bytes:
    cfg = {
        "backendUrl": backend_url.rstrip("/"),
        "otlpUrl": otlp_url,
        "apiKey": api_key,
        "serviceName": service_name,
    }
    return ("window.CRUDDUR_CONFIG = " + json.dumps(cfg) + ";\n").encode()


class Handler(SimpleHTTPRequestHandler):
    config_body: bytes = b""

    def log_message(self, fmt, *args):  # quieter: one line per request on stderr
        sys.stderr.write("frontend: " + (fmt % args) + "\n")

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def _path_only(self) -> str:
        return self.path.split("?", 1)[0].split("#", 1)[0]

    def do_GET(self):
        path = self._path_only()
        if path == "/config.js":
            body = self.config_body
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        target = Path(self.translate_path(path))
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if path != "/" and not target.exists() and "." not in last:
            self.path = "/index.html"  # client-side routes such as /@handle (not missing files)
        super().do_GET()

    do_HEAD = do_GET


def make_server(port: int, backend_url: str, otlp_url: str, api_key: str, host: str = "127.0.0.1",
                dist: Path = DIST, service_name: str = "frontend-react-js") -> ThreadingHTTPServer:
    if not (dist / "index.html").exists():
        raise FileNotFoundError(f"{dist}/index.html missing: run `npm ci && npm run build` in {dist.parent}")
    handler = type("CruddurHandler", (Handler,), {
        "config_body": config_js(backend_url, otlp_url, api_key, service_name)})
    return ThreadingHTTPServer((host, port), functools.partial(handler, directory=str(dist)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Serve the Cruddur front end with a generated config.js")
    ap.add_argument("--port", type=int, default=3000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--backend-url", default="http://127.0.0.1:4567")
    ap.add_argument("--otlp-url", default="", help="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces "
                                                   "(empty: browser tracing off)")
    ap.add_argument("--api-key", default="", help="sent as x-honeycomb-team")
    ap.add_argument("--service-name", default="frontend-react-js")
    ap.add_argument("--dist", default=str(DIST))
    args = ap.parse_args(argv)
    server = make_server(args.port, args.backend_url, args.otlp_url, args.api_key, args.host,
                         Path(args.dist), args.service_name)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Cruddur front end on http://{args.host}:{server.server_address[1]}/ "
          f"(backend {args.backend_url})", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
