"""Server configuration: CLI flags, then APIARY_* environment variables, then these defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from apiary.model.limits import MAX_ATTRIBUTES, MAX_VALUE_BYTES, SpanLimits
from apiary.permissions import exposure as exposure_of

DEFAULT_PORT = 4318
DEFAULT_MAX_BODY = 20 * 1024 * 1024  # compressed or not; OTLP batches are far smaller
#: Three bodies at the size limit (a 512-span OTLP batch is ~100 KB). ``bench/overload.py`` (40 senders
#: of 19 MiB bodies on every receiver, 1,200 slowloris connections): peak RSS of the server tree 802 MiB
#: at 64 MiB, 965-1,039 MiB at 128 MiB.
DEFAULT_INFLIGHT = 64 * 1024 * 1024


def _env(name: str, default: str) -> str:
    return os.environ.get(f"APIARY_{name}", default)


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(_env("DATA", "./apiary-data")))
    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("PORT", str(DEFAULT_PORT))))
    max_body_bytes: int = field(default_factory=lambda: int(_env("MAX_BODY_BYTES", str(DEFAULT_MAX_BODY))))
    #: Processes decoding request bodies; 0 decodes in the server process.
    decode_workers: int = field(default_factory=lambda: int(_env("DECODE_WORKERS", str(os.cpu_count() or 1))))
    #: Rows waiting for commit before ingest answers 429.
    max_pending_rows: int = field(default_factory=lambda: int(_env("MAX_PENDING_ROWS", "400000")))
    #: Typed attribute columns before new keys go to the overflow JSON column.
    max_columns: int = field(default_factory=lambda: int(_env("MAX_COLUMNS", "1000")))
    #: Typed attribute columns one environment may take; past it its new keys go to the overflow column.
    max_env_columns: int = field(default_factory=lambda: int(_env("MAX_ENV_COLUMNS", "250")))
    #: Attributes kept per span; the rest are dropped and the answer says so (OTLP partial_success).
    max_span_attributes: int = field(default_factory=lambda: int(_env("MAX_SPAN_ATTRIBUTES", str(MAX_ATTRIBUTES))))
    #: String values are cut to this many bytes, as Honeycomb does.
    max_value_bytes: int = field(default_factory=lambda: int(_env("MAX_VALUE_BYTES", str(MAX_VALUE_BYTES))))
    #: Request body bytes held at once across every receiver; past it, 429 with Retry-After.
    max_inflight_bytes: int = field(default_factory=lambda: int(_env("MAX_INFLIGHT_BYTES", str(DEFAULT_INFLIGHT))))
    #: Seconds a client may take to send a request's headers, and then to send its body.
    header_timeout_s: float = field(default_factory=lambda: float(_env("HEADER_TIMEOUT", "10")))
    body_timeout_s: float = field(default_factory=lambda: float(_env("BODY_TIMEOUT", "60")))
    #: Delete spans, log events and error occurrences older than this many days (0 keeps everything).
    retention_days: float = field(default_factory=lambda: float(_env("RETENTION_DAYS", "0")))
    #: Seconds between retention passes (server-wide and log groups' own retention).
    retention_interval_s: float = field(default_factory=lambda: float(_env("RETENTION_INTERVAL_S", "3600")))
    #: Browser origins allowed to send OTLP (CORS), e.g. a front end on http://127.0.0.1:3000.
    cors_origins: list[str] = field(default_factory=lambda: [o for o in _env("CORS_ORIGINS", "").split(",") if o])
    #: UDP (segments) and TCP (sampling) port of the built-in X-Ray daemon; 0 turns it off.
    xray_port: int = field(default_factory=lambda: int(_env("XRAY_PORT", "2000")))
    #: Environment the daemon's segments go to; empty means the first environment created.
    xray_env: str = field(default_factory=lambda: _env("XRAY_ENV", ""))
    #: OTLP/gRPC port (TraceService, LogsService) on ``host``; 0 turns it off.
    otlp_grpc_port: int = field(default_factory=lambda: int(_env("OTLP_GRPC_PORT", "4317")))
    #: Span store: ``duckdb`` (embedded, in the data directory), ``clickhouse://host:8123/db``, or ``chdb:///path`` (tests).
    store: str = field(default_factory=lambda: _env("STORE", "duckdb"))
    #: ``network`` makes every listener ask for a key even on a loopback address; empty follows ``host``.
    exposure_asked: str = field(default_factory=lambda: _env("EXPOSURE", ""))
    #: Where the X-Ray daemon listens; empty means ``host``. Under network exposure the daemon, which
    #: cannot ask for a key, stays off unless this is given (and ``xray_env``): an explicit opt-in.
    xray_daemon_host: str = field(default_factory=lambda: _env("XRAY_DAEMON_HOST", ""))

    @property
    def exposure(self) -> str:
        """``loopback`` or ``network``: see `apiary.permissions.exposure`."""
        return exposure_of(self.host, self.exposure_asked)

    @property
    def span_limits(self) -> SpanLimits:
        return SpanLimits(self.max_span_attributes, self.max_value_bytes)

    @property
    def spans_path(self) -> Path:
        return self.data_dir / "spans.duckdb"

    @property
    def meta_path(self) -> Path:
        return self.data_dir / "meta.sqlite"
