"""Assert on an app's telemetry over the real wire: a real Apiary, the app's real clients, waiting reads.

In pytest, the ``apiary`` fixture (`apiary.testing.plugin`). Outside pytest, `serve`::

    with serve() as telemetry:
        subprocess.run(["python", "app.py"], env={**os.environ, **telemetry.environ("backend-flask")})
        telemetry.span("name = home-activities-mock-data", **{"app.result_length": 3})

Only this module's names are imported at start-up; the server comes with the first `serve`.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from apiary.testing.telemetry import Telemetry


@contextlib.contextmanager
def serve(store: str = "duckdb", run: str | None = None, name: str = "default") -> Iterator["Telemetry"]:
    """A server on free loopback ports in a temporary directory, and one environment on it."""
    from apiary.testing.server import EmbeddedApiary
    from apiary.testing.telemetry import Telemetry

    with EmbeddedApiary(store=store) as server:
        tenant = server.tenant(name)
        telemetry = Telemetry(server.url, server.grpc_endpoint, tenant.key, tenant.environment, tenant.xray_port,
                              run or time.strftime("run-%Y%m%dT%H%M%SZ", time.gmtime()))
        try:
            yield telemetry
        finally:
            telemetry.close()


def __getattr__(name: str) -> Any:
    if name in ("Telemetry", "TelemetryNotFound"):
        from apiary.testing import telemetry

        return getattr(telemetry, name)
    if name == "Trace":
        from apiary.testing.traces import Trace

        return Trace
    raise AttributeError(name)
