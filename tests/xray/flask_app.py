"""backend-flask as the Cruddur guides instrument it with the X-Ray SDK, served on a free port in a thread."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.ext.flask.middleware import XRayMiddleware
from flask import Flask
from werkzeug.serving import make_server


def create_app(daemon_address: str, sampling: bool = False) -> Flask:
    xray_recorder.configure(service="backend-flask", daemon_address=daemon_address, sampling=sampling,
                            context_missing="LOG_ERROR", plugins=())
    app = Flask(__name__)
    XRayMiddleware(app, xray_recorder)

    @app.route("/api/activities/home")
    def home() -> Any:
        subsegment = xray_recorder.begin_subsegment("mock-data")
        now = datetime.now(timezone.utc)
        results = [{"uuid": "68f126b0", "handle": "Andrew Brown", "message": "Cloud is fun!"}]
        subsegment.put_metadata("key", {"now": now.isoformat(), "results-size": len(results)}, "namespace")
        subsegment.put_annotation("results_size", len(results))
        xray_recorder.put_annotation("user_handle", "andrewbrown")
        xray_recorder.end_subsegment()
        return results

    @app.route("/api/fail")
    def fail() -> Any:
        raise RuntimeError("the database is on fire")

    return app


class ServedApp:
    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "ServedApp":
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
