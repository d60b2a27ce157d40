"""Server configuration, in one place: ``apiary serve`` flags, then ``APIARY_*`` environment variables, then defaults.

`Settings` is a pydantic-settings model: it reads and validates the
``APIARY_*`` variables itself, and every field is also a ``serve`` flag, built
from the field by `add_flags` (the flag name, the variable and the default
appear in ``apiary serve --help``). `from_flags` passes on only the flags given,
so a flag beats its variable, which beats the default.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from apiary.model.limits import MAX_ATTRIBUTES, MAX_VALUE_BYTES, SpanLimits
from apiary.permissions import LOOPBACK, NETWORK
from apiary.permissions import exposure as exposure_of
from apiary.ports import DEFAULT_PORT
from apiary.store.catalogue_cap import MAX_DATASET_COLUMNS

ENV_PREFIX = "APIARY_"
DEFAULT_MAX_BODY = 20 * 1024 * 1024  # compressed or not; OTLP batches are far smaller
#: The OpenTelemetry Collector's own default for its gRPC receiver. gRPC's C core holds a whole message before
#: a handler can refuse it, so every concurrent call may hold this much: 40 calls of 19 MiB took the server tree to
#: 2,277 MiB at the HTTP limit, 475-549 MiB at this one (``bench/overload.py --only "otlp/grpc traces"``).
DEFAULT_MAX_GRPC_MESSAGE = 4 * 1024 * 1024
#: Three bodies at the size limit (a 512-span OTLP batch is ~100 KB). ``bench/overload.py`` (40 senders
#: of 19 MiB bodies on every receiver, 1,200 slowloris connections): peak RSS of the server tree 802 MiB
#: at 64 MiB, 965-1,039 MiB at 128 MiB.
DEFAULT_INFLIGHT = 64 * 1024 * 1024


def setting(default: Any = None, *, help: str, flag: str | None = None, env: str | None = None,  # noqa: A002
            group: str = "", **kwargs: Any) -> Any:
    """A field that is also a ``serve`` flag. ``flag`` and ``env`` only where their names differ from the field's."""
    extra: dict[str, Any] = {"flag": flag, "group": group}
    if env is not None:
        kwargs["validation_alias"] = AliasChoices(ENV_PREFIX + env)
    if "default_factory" not in kwargs:
        kwargs["default"] = default
    return Field(description=help, json_schema_extra=extra, **kwargs)


LIMITS = "limits (per environment, and for the server as a whole)"


class StoreLocation(BaseSettings):
    """Where the data is: all that ``apiary keys`` reads, so a bad value of another setting cannot stop it."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, populate_by_name=True, extra="ignore")

    data_dir: Path = setting(Path("./apiary-data"), flag="--data", env="DATA", help="data directory")
    #: Span store: ``duckdb`` (embedded, in the data directory), ``clickhouse://host:8123/db``, or ``chdb:///path`` (tests).
    store: str = setting("duckdb", help="span store: duckdb (embedded, in --data), clickhouse://host:8123/database, "
                                        "or chdb:///path (ClickHouse in-process, for tests)")


class Settings(StoreLocation):
    host: str = setting("127.0.0.1", help="address to bind")
    port: int = setting(DEFAULT_PORT, help="HTTP port for OTLP, the APIs and the UI")
    #: Processes decoding request bodies; 0 decodes in the server process.
    decode_workers: int = setting(default_factory=lambda: os.cpu_count() or 1,
                                  help="processes decoding request bodies (default: one per core; 0 = inline)")
    #: Delete spans, log events and error occurrences older than this many days (0 keeps everything).
    retention_days: float = setting(0.0, help="delete spans, log events and error occurrences older than this many "
                                              "days (0 = keep everything)")
    #: Seconds between retention passes (server-wide and log groups' own retention).
    retention_interval_s: float = setting(3600.0, flag="--retention-interval",
                                          help="seconds between retention passes (server-wide and log groups' own)")
    #: Browser origins allowed to send OTLP (CORS), e.g. a front end on http://127.0.0.1:3000.
    cors_origins: Annotated[list[str], NoDecode] = setting(
        default_factory=list, flag="--cors-origin",
        help="browser origin allowed to send OTLP; repeat the flag, or comma-separate the variable")
    #: UDP (segments) and TCP (sampling) port of the built-in X-Ray daemon; 0 turns it off.
    xray_port: int = setting(2000, help="X-Ray daemon port: UDP segments and TCP sampling (0 = off)")
    #: Environment the daemon's segments go to; empty means the first environment created.
    xray_env: str = setting("", help="environment for the daemon's segments (empty: the first one created)")
    #: OTLP/gRPC port (TraceService, LogsService) on ``host``; 0 turns it off.
    otlp_grpc_port: int = setting(4317, help="OTLP/gRPC port, on the same --host (0 = off)")
    #: ``network`` makes every listener ask for a key even on a loopback address; empty follows ``host``.
    exposure_asked: str = setting("", flag="--exposure", env="EXPOSURE",
                                  help="network: every listener asks for a key (the UI too) or is off, even on a "
                                       "loopback address (empty: loopback for a loopback --host, else network)")
    #: Where the X-Ray daemon listens; empty means ``host``. Under network exposure the daemon, which
    #: cannot ask for a key, stays off unless this is given (and ``xray_env``): an explicit opt-in.
    xray_daemon_host: str = setting("", help="address of the X-Ray daemon, which takes no key; under network exposure "
                                             "it is off unless this and --xray-env are given (empty: --host)")
    max_body_bytes: int = setting(DEFAULT_MAX_BODY, group=LIMITS,
                                  help="largest request body, after decompression; past it 413")
    max_grpc_message_bytes: int = setting(DEFAULT_MAX_GRPC_MESSAGE, group=LIMITS, ge=1,
                                          help="largest OTLP/gRPC message (and no more than --max-body-bytes); past it "
                                               "RESOURCE_EXHAUSTED, before the message is held")
    #: Each open connection costs gRPC's core about 0.2 MiB under load, so their number bounds the server's memory too.
    max_grpc_connections: int = setting(500, group=LIMITS, ge=1,
                                        help="OTLP/gRPC connections open at once; past it a new connection is closed "
                                             "at once (clients see UNAVAILABLE and retry)")
    #: Rows waiting for commit before ingest answers 429.
    max_pending_rows: int = setting(400_000, group=LIMITS, help="rows waiting for commit before ingest answers 429")
    #: Typed attribute columns a span table holds before new keys go to the overflow JSON column: on DuckDB
    #: each environment's tables (each has its own), on ClickHouse the one table of every environment.
    max_columns: int = setting(1000, group=LIMITS,
                               help="typed attribute columns of a span table (DuckDB: each environment's; ClickHouse: "
                                    "the shared one); past it new keys go to the overflow JSON column")
    #: Typed attribute columns one environment may take; past it its new keys go to the overflow column.
    max_env_columns: int = setting(250, group=LIMITS, help="typed attribute columns per environment; past it new keys "
                                                           "go to the overflow JSON column")
    #: Columns a dataset's catalogue lists; past it new keys are stored but not listed (`apiary.store.catalogue_cap`).
    max_dataset_columns: int = setting(MAX_DATASET_COLUMNS, group=LIMITS, ge=1,
                                       help="columns listed per dataset; past it new keys are kept with their spans but "
                                            "not listed, and cannot be queried by name")
    #: Attributes kept per span; the rest are dropped and the answer says so (OTLP partial_success).
    max_span_attributes: int = setting(MAX_ATTRIBUTES, group=LIMITS,
                                       help="attributes kept per span, the rest dropped with a partial_success warning")
    #: String values are cut to this many bytes, as Honeycomb does.
    max_value_bytes: int = setting(MAX_VALUE_BYTES, group=LIMITS, help="string values cut to this many bytes")
    #: Request body bytes held at once across every receiver; past it, 429 with Retry-After.
    max_inflight_bytes: int = setting(DEFAULT_INFLIGHT, group=LIMITS,
                                      help="request body bytes held at once by all receivers; past it 429 + Retry-After")
    #: Of those, the bytes one environment's requests may hold; past it that environment alone gets 429.
    max_env_inflight_bytes: int = setting(0, group=LIMITS,
                                          help="request body bytes one environment's requests may hold at once; past "
                                               "it 429 + Retry-After for that environment alone (0: half of "
                                               "--max-inflight-bytes)")
    #: Seconds a client may take to send a request's headers, and then to send its body.
    header_timeout_s: float = setting(10.0, group=LIMITS, flag="--header-timeout", env="HEADER_TIMEOUT",
                                      help="seconds to receive a request's headers before the connection is closed")
    body_timeout_s: float = setting(60.0, group=LIMITS, flag="--body-timeout", env="BODY_TIMEOUT",
                                    help="seconds to receive a request's body before it is answered 408")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return [o.strip() for o in value.split(",") if o.strip()] if isinstance(value, str) else value

    @field_validator("exposure_asked")
    @classmethod
    def _known_exposure(cls, value: str) -> str:
        exposure_of("127.0.0.1", value)  # raises for anything but "", loopback, network
        return value

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


# -- the same fields as `apiary serve` flags -----------------------------------------------------


def flag_of(name: str, field: FieldInfo) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return str(extra.get("flag") or "--" + name.replace("_", "-"))


def env_of(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return ENV_PREFIX + name.upper()


def _default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return ""
    value = field.default
    if isinstance(value, float):
        value = f"{value:g}"
    return f", default {value}" if value not in ("", None) else ""


def add_flags(parser: argparse.ArgumentParser, model: type[StoreLocation] = Settings) -> None:
    """A flag per field of ``model``, each defaulting to None: "not given"."""
    groups: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        group_title = str(extra.get("group") or "")
        target: Any = parser
        if group_title:
            target = groups.get(group_title) or groups.setdefault(group_title, parser.add_argument_group(group_title))
        flag = flag_of(name, field)
        kwargs: dict[str, Any] = {"dest": name, "default": None, "metavar": flag[2:].replace("-", "_").upper(),
                                  "help": f"{field.description} (env {env_of(name, field)}{_default_text(field)})"}
        if field.annotation in (int, float, Path):
            kwargs["type"] = field.annotation
        if name == "cors_origins":
            kwargs["action"] = "append"
        if name == "exposure_asked":
            kwargs["choices"] = [LOOPBACK, NETWORK]
            del kwargs["metavar"]
        target.add_argument(flag, **kwargs)


class BadSetting(ValueError):
    """A flag or ``APIARY_*`` variable whose value is not valid; the message names both, and the value."""


S = TypeVar("S", bound=StoreLocation)


def from_flags(args: argparse.Namespace, model: type[S] = Settings) -> S:  # type: ignore[assignment]
    """``model`` from the flags given in ``args``, then ``APIARY_*`` variables, then defaults; `BadSetting` if invalid."""
    given = {name: getattr(args, name) for name in model.model_fields if getattr(args, name, None) is not None}
    try:
        return model(**given)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = str(error["loc"][0]) if error["loc"] else ""  # a field's name, or its variable's (an alias)
            name = next((n for n, f in Settings.model_fields.items() if loc in (n, env_of(n, f))), None)
            where = f"{flag_of(name, Settings.model_fields[name])} / {env_of(name, Settings.model_fields[name])}" \
                if name else loc
            lines.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
        raise BadSetting("; ".join(lines)) from None
