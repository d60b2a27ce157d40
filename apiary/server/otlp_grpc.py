"""The OTLP/gRPC port, started beside the HTTP port on the same event loop, fed through a narrow sink."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator, TypeVar

from apiary.model.log import LogBatch
from apiary.model.span import SpanBatch
from apiary.receivers.otlp import logs as otlp_logs
from apiary.receivers.body_budget import BodyAllowance, BodyBudget
from apiary.receivers.otlp.grpc import OtlpGrpcReceiver
from apiary.receivers.otlp.receive_slots import ReceiveSlots
from apiary.permissions import Permission, check
from apiary.server.context import Apiary
from apiary.server.sinks import append_spans
from apiary.store.base import StoreUnavailable

T = TypeVar("T")


class ContextSink:
    """`OtlpSink` over the server's context: the same key checks, decode pool and stores as OTLP/HTTP."""

    def __init__(self, ctx: Apiary, budget: BodyBudget) -> None:
        self._ctx = ctx
        self.budget = budget
        self.max_body_bytes = ctx.settings.max_body_bytes
        self.span_limits = ctx.settings.span_limits
        self.body_timeout_s = ctx.settings.body_timeout_s

    @contextlib.contextmanager
    def admit(self, env: str) -> Iterator[BodyAllowance]:
        allowance = BodyAllowance(self.budget, math.inf)  # the receiver bounds the message's arrival itself
        allowance.charge_to(env)
        try:
            yield allowance
        finally:
            allowance.release()

    def environment(self, key: str | None) -> str | None:
        """Every key may send data; the one check also notes the environment, whose share the body then counts
        against (HTTP: ``read_body``)."""
        found = self._ctx.authenticate(key)
        return check(found, Permission.INGEST, "OTLP export").environment if found is not None else None

    async def decode(self, size: int, decoder: Callable[..., T], *args: Any) -> T:
        return await self._ctx.pool.run(size, decoder, *args)

    async def append_spans(self, env: str, batch: SpanBatch) -> None:
        await append_spans(self._ctx.store, self.budget, env, batch)

    async def append_metrics(self, env: str, batch: SpanBatch) -> None:
        if batch.num_rows:  # a request of only rejected points commits nothing
            await append_spans(self._ctx.store, self.budget, env, batch)

    async def append_logs(self, env: str, batch: LogBatch) -> None:
        logs = self._ctx.logs
        if logs is None:
            raise StoreUnavailable("the log store is not open", retry_after=5)
        for group, stream in otlp_logs.streams(batch):
            await logs.ensure_stream(env, group, stream)
        await logs.append(env, batch)


async def start(ctx: Apiary, sink: ContextSink) -> OtlpGrpcReceiver | None:
    """The running receiver, or None when it is off (port 0) or its port is taken (said on stdout, not fatal)."""
    settings = ctx.settings
    if not settings.otlp_grpc_port:
        return None
    message_bytes = min(settings.max_grpc_message_bytes, settings.max_body_bytes)
    budget = sink.budget
    receiver = OtlpGrpcReceiver(sink, settings.host, settings.otlp_grpc_port, max_message_bytes=message_bytes,
                                slots=ReceiveSlots.for_bytes(budget.limit, budget.env_limit, message_bytes),
                                max_connections=settings.max_grpc_connections)
    try:
        await receiver.start()
    except OSError as exc:
        print(f"OTLP/gRPC off: {exc.strerror or exc} (another collector or Apiary holds the port?); "
              f"choose another with --otlp-grpc-port", flush=True)
        return None
    return receiver
