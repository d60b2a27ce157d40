"""Each receiver's narrow view of the server, built from the server's context.

A receiver is handed one of these on ``app.state`` (`apiary.server.app`), never
the context itself: it can append what its protocol carries, read the stores
its own read API answers from, check a key, and read the few settings it
needs, and nothing more (``tests/test_layering.py`` keeps receivers from
importing ``apiary.server``). OTLP's view, `ContextSink`, lives beside the
gRPC port in `apiary.server.otlp_grpc`.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from apiary.model.span import SpanBatch
from apiary.receivers.body_budget import BodyBudget
from apiary.query.history import QueryBook
from apiary.receivers.cloudwatch.insights import Registry
from apiary.server.context import Apiary
from apiary.store.base import EnvironmentOverloaded, ErrorStore, LogStore, Store
from apiary.receivers.xray.sink import XRayMeta
from apiary.store.meta import ApiKey

T = TypeVar("T")


async def append_spans(store: Store, budget: BodyBudget, env: str, batch: SpanBatch) -> None:
    """``store.append``; an environment the store refuses for its share of the loader is held off for the
    Retry-After it was given, so its next requests are refused before their bodies are read and decoded."""
    try:
        await store.append(env, batch)
    except EnvironmentOverloaded as exc:
        budget.hold_off(env, exc.retry_after)
        raise


class _Keyed:
    def __init__(self, ctx: Apiary) -> None:
        self._authenticate = ctx.authenticate

    def authenticate(self, key: str | None) -> ApiKey | None:
        return self._authenticate(key)


class HoneycombContextSink:
    """`apiary.receivers.honeycomb.sink.HoneycombSink`: events to the span store, its columns back."""

    def __init__(self, ctx: Apiary, budget: BodyBudget) -> None:
        self._pool = ctx.pool
        self._budget = budget
        self.store: Store = ctx.store
        self.max_body_bytes = ctx.settings.max_body_bytes
        self.span_limits = ctx.settings.span_limits

    async def decode(self, size: int, decoder: Callable[..., T], *args: Any) -> T:
        return await self._pool.run(size, decoder, *args)

    async def append_spans(self, env: str, batch: SpanBatch) -> None:
        await append_spans(self.store, self._budget, env, batch)


class RollbarContextSink(_Keyed):
    """`apiary.receivers.rollbar.sink.RollbarSink`: the error store."""

    def __init__(self, ctx: Apiary) -> None:
        super().__init__(ctx)
        self.errors: ErrorStore | None = ctx.errors


class LogsContextSink(_Keyed):
    """`apiary.receivers.cloudwatch.sink.LogsSink`: the log store and the Logs Insights registry."""

    def __init__(self, ctx: Apiary) -> None:
        super().__init__(ctx)
        self.logs: LogStore | None = ctx.logs
        self.insights: Registry = ctx.insights


class XRayContextSink(_Keyed):
    """`apiary.receivers.xray.sink.XRaySink`: segments to the span store; groups and rules in the metadata store."""

    def __init__(self, ctx: Apiary) -> None:
        super().__init__(ctx)
        self.store: Store = ctx.store
        self.meta: XRayMeta = ctx.meta
        self.span_limits = ctx.settings.span_limits
        self.xray_env = ctx.settings.xray_env

    async def append_spans(self, env: str, batch: SpanBatch) -> None:
        await self.store.append(env, batch)


class QueryContextSource:
    """`apiary.query.http.QuerySource`: the span store and the query book."""

    def __init__(self, ctx: Apiary) -> None:
        self.store: Store = ctx.store
        self.book = QueryBook(ctx.meta.queries)
