"""OTLP/gRPC: the ``Export`` methods of the collector services, on their own port (4317 by default).

The OTel SDKs' default exporter, the Collector and the Go, Java and .NET
SDKs speak OTLP over gRPC. The server is ``grpc.aio`` on the HTTP server's
event loop, and every method is a generic handler with no request
deserializer: it is handed the message's bytes, which go to the same decode
workers as an OTLP/HTTP body (parsing there, not on the loop, is what keeps
the loop free) and then to the same store. gRPC's own framing handles
``grpc-encoding: gzip`` and the size limit (``max_message_bytes``): a longer
message, compressed or once inflated, is refused by gRPC with
RESOURCE_EXHAUSTED before a handler sees it.

The key is checked before the message is read, and so is the environment's
share of the one server-wide bound on bodies in memory
(``APIARY_MAX_INFLIGHT_BYTES``, shared with every HTTP receiver): a held-off
environment's message is refused unread. The message is then read once the
call holds one of the `receive_slots` (which bound the bytes gRPC holds
before a handler can count them), and from then until the answer its bytes
count against that bound; past it the call is refused with
RESOURCE_EXHAUSTED and RetryInfo, as an HTTP body gets 429 and Retry-After.

A request is answered OK only once its records are committed. Refusals come
from `apiary.receivers.refusals`, as for OTLP/HTTP; the retryable ones
(RESOURCE_EXHAUSTED when overloaded, UNAVAILABLE) carry a
``google.rpc.RetryInfo`` both inside the ``grpc-status-details-bin`` status,
where the Go and Java exporters read it, and as ``google.rpc.retryinfo-bin``,
where the Python exporter reads it.

Each service is one row of `EXPORTS`.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from apiary.receivers.otlp import logs as otlp_logs
from apiary.receivers.otlp import metrics as otlp_metrics
from apiary.receivers.otlp import traces as otlp_traces
from apiary.receivers.body_budget import HELD_OFF_ANSWER_DELAY_S, BodyTimeout, EnvironmentOverShare
from apiary.receivers.otlp.auth import KEY_HEADER, missing_key, unknown_key
from apiary.receivers.otlp.receive_slots import ReceiveSlots
from apiary.receivers.otlp.sink import OtlpSink
from apiary.receivers.refusals import MalformedPayload, Refusal, refusal_for

_CODES = {code.value[0]: code for code in grpc.StatusCode}
#: HTTP/2 streams a client may open at once on one connection. Each call costs the core a stream's window even
#: while it waits for its turn: without this, 1,000 concurrent calls took the server process to 679 MiB, with it
#: 564 MiB. An SDK exports one call at a time, a Collector as many as its sending queue's consumers (10).
MAX_CALLS_PER_CONNECTION = 100
READ_BUFFER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Export:
    """One collector service's ``Export`` method: where its bytes are decoded and where the batch goes."""

    service: str
    #: Pure ``(body, content_encoding, json_body, limit) -> batch``, run on the decode workers.
    decoder: Callable[[bytes, str | None, bool, int], Any]
    append: Callable[[OtlpSink, str, Any], Awaitable[None]]
    response: Callable[[Any], Message]
    #: What the records are called in an overload message.
    noun: str


def _service(module: Any, name: str) -> str:
    return module.DESCRIPTOR.services_by_name[name].full_name


EXPORTS: tuple[Export, ...] = (
    Export(_service(trace_service_pb2, "TraceService"), otlp_traces.decode_request,
           lambda sink, env, batch: sink.append_spans(env, batch), otlp_traces.export_response, "spans"),
    Export(_service(logs_service_pb2, "LogsService"), otlp_logs.decode_request,
           lambda sink, env, batch: sink.append_logs(env, batch), otlp_logs.export_response, "log records"),
    Export(_service(metrics_service_pb2, "MetricsService"), otlp_metrics.decode_request,
           lambda sink, env, batch: sink.append_metrics(env, batch), otlp_metrics.export_response, "data points"),
)


def trailing_metadata(refusal: Refusal) -> tuple[tuple[str, bytes], ...]:
    """The ``google.rpc.Status`` (with RetryInfo when retrying helps) that rich-error clients decode."""
    status = status_pb2.Status(code=refusal.grpc_code, message=refusal.message)
    if not refusal.retry_after:
        return (("grpc-status-details-bin", status.SerializeToString()),)
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=refusal.retry_after))
    detail = any_pb2.Any()
    detail.Pack(info)
    status.details.append(detail)
    return (("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", info.SerializeToString()))


async def _abort(context: grpc.aio.ServicerContext, refusal: Refusal) -> NoReturn:
    await context.abort(_CODES[refusal.grpc_code], refusal.message, trailing_metadata(refusal))
    raise AssertionError("ServicerContext.abort returned")  # it always raises; this tells type checkers


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for item in context.invocation_metadata() or ():
        if item.key == key:
            return item.value if isinstance(item.value, str) else None
    return None


async def _one_message(context: grpc.aio.ServicerContext, timeout_s: float) -> bytes:
    """The call's request message, read now (not before: see `receive_slots`)."""
    try:
        async with asyncio.timeout(timeout_s):
            message = await context.read()
    except TimeoutError:
        raise BodyTimeout(f"request message not received within {timeout_s:g} s") from None
    if not isinstance(message, bytes):  # grpc.aio.EOF: the client closed its side without sending one
        raise MalformedPayload("an Export call carries one request message; the client sent none")
    return message


def _too_slow(exc: Exception) -> Refusal | None:
    """A sender too slow to finish its message; it may retry (HTTP answers it 408)."""
    return Refusal(408, code_pb2.DEADLINE_EXCEEDED, str(exc)) if isinstance(exc, BodyTimeout) else None


def _handler(export: Export, sink: OtlpSink, slots: ReceiveSlots) -> grpc.RpcMethodHandler:
    async def handle(_requests: object, context: grpc.aio.ServicerContext) -> bytes:
        key = _metadata(context, KEY_HEADER)
        refusal: Refusal | None = None
        body = b""
        try:
            env = sink.environment(key)  # a key store that cannot be reached is UNAVAILABLE, not UNKNOWN
            if env is not None:
                # The same byte bounds as every HTTP receiver's bodies: a held-off environment's message is
                # refused unread, and a received one is counted before it is decoded.
                with sink.admit(env) as allowance:
                    async with slots.slot(env):
                        body = await _one_message(context, sink.body_timeout_s)
                    allowance.take(len(body), len(body))
                    batch = await sink.decode(len(body), export.decoder, body, None, False, sink.max_body_bytes)
                    await export.append(sink, env, batch)
        except Exception as exc:
            refusal = _too_slow(exc) or refusal_for(exc, export.noun)
            if refusal is None:
                raise
            if isinstance(exc, EnvironmentOverShare) and exc.held_off_s:  # as HTTP does: slow a sender that ignores it
                await asyncio.sleep(min(exc.held_off_s, HELD_OFF_ANSWER_DELAY_S))
        if refusal is None and env is None:
            refusal = unknown_key() if key else missing_key()
        if refusal is not None:
            # Aborting raises; raised inside the except block, its traceback would hold this frame and the
            # caught exception in a cycle, and the message's bytes with them until a full collection:
            # 6 senders of 19 MiB refused messages took the server to 1.1 GiB that way.
            del body
            await _abort(context, refusal)
        return export.response(batch).SerializeToString()

    # Client-streaming, so the message is read only when the handler asks (the wire is a unary call's), and no
    # (de)serializers: the handler takes and returns the messages' bytes.
    return grpc.stream_unary_rpc_method_handler(handle)


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _probe(host: str, port: int) -> None:
    """Raise the system's own OSError ("Address already in use") for a port gRPC could not bind.

    gRPC says only "Failed to bind" (and logs a line of its own); a plain socket bound the way gRPC
    binds (SO_REUSEADDR, so a port in TIME_WAIT is not mistaken for a busy one) says why.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot bind {address(host, port)}: {exc.strerror}") from None


class OtlpGrpcReceiver:
    """The gRPC server for `EXPORTS`; start and stop it on the running event loop."""

    def __init__(self, sink: OtlpSink, host: str, port: int, exports: tuple[Export, ...] = EXPORTS,
                 *, slots: ReceiveSlots, max_connections: int, max_message_bytes: int | None = None) -> None:
        self.sink, self.host, self.port, self.exports = sink, host, port, exports
        #: gRPC refuses a longer message from its length prefix, before holding it (RESOURCE_EXHAUSTED).
        self.max_message_bytes = sink.max_body_bytes if max_message_bytes is None else max_message_bytes
        self.slots = slots
        #: Past it gRPC closes a new connection at once; each costs its core about 0.2 MiB under load.
        self.max_connections = max_connections
        self._server: grpc.aio.Server | None = None

    async def start(self) -> int:
        """Bind and serve; the port bound (useful with port 0). OSError when the port cannot be bound."""
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", self.max_message_bytes),
            # BDP probing widens every stream's window to the measured bandwidth-delay product, so the core
            # took in whole messages of calls still waiting for a slot (80 waiting calls of 3.9 MiB: 313 MiB in
            # a bare server, 72 MiB without it). A message being read still gets a window of its own size.
            ("grpc.http2.bdp_probe", 0),
            ("grpc.max_concurrent_streams", MAX_CALLS_PER_CONNECTION),
            # The core reads a socket into buffers that grow with what it reads, one set per connection: 300
            # senders each on a connection of its own took a bare server to 706 MiB, 328 MiB with at most 64 KiB
            # (the same throughput on loopback, for 4 MiB messages and for 100 KB ones).
            ("grpc.experimental.tcp_max_read_buffer_size", READ_BUFFER_BYTES),
            ("grpc.max_allowed_incoming_connections", self.max_connections),
            # gRPC sets SO_REUSEPORT by default, so a second server on a busy port would bind silently
            # and share its connections; without it a busy port is an error we can report.
            ("grpc.so_reuseport", 0),
        ])
        server.add_generic_rpc_handlers(tuple(
            grpc.method_handlers_generic_handler(e.service, {"Export": _handler(e, self.sink, self.slots)})
            for e in self.exports))
        where = address(self.host, self.port)
        _probe(self.host, self.port)
        try:
            bound = server.add_insecure_port(where)
        except RuntimeError:
            bound = 0
        if not bound:
            raise OSError(f"cannot bind {where}")
        await server.start()
        self._server, self.port = server, bound
        return bound

    async def stop(self, grace: float = 10.0) -> None:
        """Refuse new calls and let those running finish (each then holds a committed answer)."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
