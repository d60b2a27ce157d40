"""One small client interface over ClickHouse, served by a real server or by the engine in-process.

``clickhouse://[user[:password]@]host[:port]/database[?secure=1]`` speaks HTTP to
a server through ``clickhouse-connect``. ``chdb://<path>[?database=name]`` runs
the same ClickHouse engine inside this process through ``chdb`` (CI has no
server); the store code above cannot tell them apart. Parameters are bound
the same way on both: ``{name:Type}`` placeholders in the SQL, values
formatted by clickhouse-connect's binder and sent apart from the SQL text.

Failures are sorted in two: `StoreUnavailable` when the database cannot be
reached (ingest answers 503 with Retry-After), `ClickHouseError` when it
answered with an error.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa

from apiary.store.base import StoreUnavailable

DEFAULT_DATABASE = "apiary"


class ClickHouseError(Exception):
    """ClickHouse refused a statement (bad SQL, unknown column, ...)."""


class Client(Protocol):
    database: str
    description: str

    def command(self, sql: str, params: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None) -> None: ...

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None,
                    settings: Mapping[str, Any] | None = None) -> pa.Table: ...

    def insert_arrow(self, table: str, data: pa.Table, settings: Mapping[str, Any] | None = None) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Target:
    kind: str  # "http" | "chdb"
    database: str
    host: str = ""
    port: int = 8123
    username: str = "default"
    password: str = ""
    secure: bool = False
    path: str = ""


def parse_url(url: str) -> Target:
    """``clickhouse://host:8123/db`` or ``chdb://path``; anything else is a ValueError naming the forms."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme in ("clickhouse", "clickhouses"):
        if not parts.hostname:
            raise ValueError(f"{url!r} names no host: use clickhouse://host:8123/database")
        secure = parts.scheme == "clickhouses" or query.get("secure", "").lower() in ("1", "true", "yes")
        database = parts.path.strip("/") or DEFAULT_DATABASE
        return Target("http", database, parts.hostname, parts.port or (8443 if secure else 8123),
                      unquote(parts.username or "default"), unquote(parts.password or ""), secure)
    if parts.scheme == "chdb":
        path = url[len("chdb://"):].split("?", 1)[0]
        if not path:
            raise ValueError(f"{url!r} names no directory: use chdb:///path/to/dir")
        return Target("chdb", query.get("database", DEFAULT_DATABASE), path=str(Path(path).resolve()))
    raise ValueError(f"unknown store {url!r}: use duckdb, clickhouse://host:8123/database or chdb:///path")


def connect(url: str) -> Client:
    """A client for ``url``, its database created if missing; `StoreUnavailable` if it cannot be reached."""
    target = parse_url(url)
    if target.kind == "chdb":
        return ChdbClient(target.path, target.database)
    return HttpClient(target)


def _bind(sql: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, str]]:
    """The SQL and its parameters as ClickHouse's HTTP interface takes them (``param_<name>`` -> text)."""
    if not params:
        return sql, {}
    from clickhouse_connect.driver.binding import bind_query

    bound_sql, bound = bind_query(sql, dict(params), timezone.utc)
    return str(bound_sql), {k[len("param_"):]: v for k, v in bound.items()}


class HttpClient:
    """A ClickHouse server over HTTP (clickhouse-connect)."""

    def __init__(self, target: Target) -> None:
        import clickhouse_connect
        from clickhouse_connect.driver import exceptions

        self._errors = exceptions
        self.database = target.database
        self.description = f"{'https' if target.secure else 'http'}://{target.host}:{target.port}/{target.database}"
        try:
            admin = clickhouse_connect.get_client(host=target.host, port=target.port, username=target.username,
                                                  password=target.password, secure=target.secure, connect_timeout=5)
            admin.command(f"CREATE DATABASE IF NOT EXISTS {quote(target.database)}")
            admin.close()
            # Many threads share one client: the pool makes that safe; autogenerate_session_id=False allows it.
            self._client = clickhouse_connect.get_client(
                host=target.host, port=target.port, username=target.username, password=target.password,
                secure=target.secure, database=target.database, connect_timeout=5, send_receive_timeout=300,
                autogenerate_session_id=False, compress="lz4")
        except exceptions.OperationalError as exc:
            raise StoreUnavailable(f"cannot reach ClickHouse at {self.description}: {_first_line(exc)}") from None
        except exceptions.DatabaseError as exc:
            raise ClickHouseError(f"ClickHouse at {self.description} refused: {_first_line(exc)}") from None

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors.OperationalError as exc:
            raise StoreUnavailable(f"ClickHouse at {self.description} is unreachable: {_first_line(exc)}") from None
        except self._errors.DatabaseError as exc:
            raise ClickHouseError(str(exc)) from None

    def command(self, sql: str, params: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None) -> None:
        self._call(self._client.command, sql, parameters=dict(params) if params else None, settings=dict(settings or {}))

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None,
                    settings: Mapping[str, Any] | None = None) -> pa.Table:
        return self._call(self._client.query_arrow, sql, parameters=dict(params) if params else None,
                          settings=dict(settings or {}), use_strings=True)

    def insert_arrow(self, table: str, data: pa.Table, settings: Mapping[str, Any] | None = None) -> None:
        self._call(self._client.insert_arrow, table, data, settings=dict(settings or {}))

    def close(self) -> None:
        self._client.close()


class ChdbClient:
    """The ClickHouse engine in this process (chdb), for tests and CI.

    A process hosts one chdb engine, bound to one path. Clients of that path
    share it (reference-counted) through a small pool of sessions: chdb runs
    statements of different sessions in parallel, as a server runs those of
    different connections, so a read need not wait for another tenant's
    insert. A session keeps its own ``USE``, so a statement and its ``USE``
    run on one borrowed session.
    """

    _engines: dict[str, "_Engine"] = {}
    _global = threading.Lock()

    def __init__(self, path: str, database: str = DEFAULT_DATABASE) -> None:
        self.path, self.database = path, database
        self.description = f"chdb://{path}"
        with ChdbClient._global:
            engine = ChdbClient._engines.get(path)
            if engine is None:
                for other, old in list(ChdbClient._engines.items()):
                    old.close()  # one engine per process: a new path ends the old one
                    del ChdbClient._engines[other]
                Path(path).mkdir(parents=True, exist_ok=True)
                engine = _Engine(path)
                engine.give_back(engine.borrow())  # opens the engine now, so a bad path fails here
                ChdbClient._engines[path] = engine
            engine.users += 1
        self._engine = engine
        self._closed = False
        self._run(f"CREATE DATABASE IF NOT EXISTS {quote(database)}", "CSV", None, None, use=False)

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """A session of the path, lent for one statement; what chdb raises in it becomes `ClickHouseError`."""
        if self._closed:
            raise StoreUnavailable(f"{self.description} is closed")
        session = self._engine.borrow()
        try:
            yield session
        except Exception as exc:  # noqa: BLE001 - chdb raises ChdbError/RuntimeError for every refusal
            raise ClickHouseError(str(exc)) from None
        finally:
            self._engine.give_back(session)

    def _run(self, sql: str, fmt: str, params: Mapping[str, Any] | None, settings: Mapping[str, Any] | None,
             use: bool = True) -> Any:
        bound_sql, bound = _bind(sql, params)
        if settings:
            bound_sql += " SETTINGS " + ", ".join(f"{k} = {_setting(v)}" for k, v in settings.items())
        with self._session() as session:
            if use:
                session.query(f"USE {quote(self.database)}")
            return session.query(bound_sql, fmt, params=bound or None)

    def command(self, sql: str, params: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None) -> None:
        self._run(sql, "CSV", params, settings)

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None,
                    settings: Mapping[str, Any] | None = None) -> pa.Table:
        # The Arrow file chdb writes, read here: chdb's own "ArrowTable" reader imports pandas first (a second or
        # more of a chdb server's start-up, and of every process that opens chdb), only to check that it is there.
        result = self._run(sql, "Arrow", params, settings)
        if len(result) == 0:
            return pa.Table.from_batches([], schema=pa.schema([]))
        return pa.RecordBatchFileReader(result.get_memview().view()).read_all()

    def insert_arrow(self, table: str, data: pa.Table, settings: Mapping[str, Any] | None = None) -> None:
        cols = ", ".join(quote(n) for n in data.column_names)
        sql = f"INSERT INTO {quote(self.database)}.{quote(table)} ({cols}) SELECT * FROM Python(apiary_incoming)"
        if settings:
            sql += " SETTINGS " + ", ".join(f"{k} = {_setting(v)}" for k, v in settings.items())
        apiary_incoming = data  # noqa: F841 - chdb's Python() table function finds it by name in this frame
        with self._session() as session:
            session.query(sql, "CSV")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with ChdbClient._global:
            engine = ChdbClient._engines.get(self.path)
            if engine is self._engine:
                engine.users -= 1
                if engine.users <= 0:
                    engine.close()
                    del ChdbClient._engines[self.path]


class _Engine:
    """The sessions open on one chdb path: at most `SESSIONS`, each lent to one statement at a time."""

    SESSIONS = 4  # reads from the server's threads beside the writer's commit; more wait for one

    def __init__(self, path: str) -> None:
        self.path = path
        self.users = 0
        self._idle: list[Any] = []
        self._open = 0
        self._closed = False
        self._cond = threading.Condition()

    def borrow(self) -> Any:
        with self._cond:
            while not self._idle and self._open >= self.SESSIONS and not self._closed:
                self._cond.wait()
            if self._closed:
                raise StoreUnavailable(f"chdb://{self.path} is closed")
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            from chdb import session as chdb_session

            return chdb_session.Session(self.path)
        except Exception as exc:  # noqa: BLE001 - chdb raises plain errors for a locked/unreadable path
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise StoreUnavailable(f"cannot open chdb at {self.path}: {_first_line(exc)}") from None

    def give_back(self, session: Any) -> None:
        with self._cond:
            if self._closed:
                self._open -= 1
                session.close()
            else:
                self._idle.append(session)
            self._cond.notify()

    def close(self) -> None:
        """Closes the idle sessions now and each lent one when it comes back; the engine stops with the last."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for session in idle:
            session.close()


def quote(identifier: str) -> str:
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _setting(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
