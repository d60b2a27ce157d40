"""The API key an OTLP exporter sends, in an HTTP header or gRPC metadata of the same name.

Honeycomb's OTLP endpoints take the key in ``x-honeycomb-team``; Apiary keeps
that name so the exporter configuration written for Honeycomb works
unchanged. Apiary has no classic (environment-less) keys, so the
``x-honeycomb-dataset`` header those need is not read: a span's dataset is
its ``service.name``.
"""

from __future__ import annotations

from apiary.receivers.refusals import Refusal, unauthenticated

KEY_HEADER = "x-honeycomb-team"


def missing_key() -> Refusal:
    return unauthenticated(f"missing API key: set the {KEY_HEADER} header "
                           f"(OTEL_EXPORTER_OTLP_HEADERS={KEY_HEADER}=<your Apiary key>)")


def unknown_key() -> Refusal:
    return unauthenticated(f"unknown API key in the {KEY_HEADER} header: check OTEL_EXPORTER_OTLP_HEADERS "
                           f"(`apiary keys list` shows the keys of each environment)")
