"""What the input limits cost: the bounded JSON loader against ``json.loads``, and OTLP decoding.

    python bench/input_limits.py [--runs 15]

Prints, for bodies shaped like real clients' (a libhoney batch, an OTLP/JSON export, a PutLogEvents
call), the median time of ``json.loads`` (the baseline) and of ``apiary.input_limits.load_json``
timed in turn in the same rounds, and their ratio; what the bounded loader adds is then set against
the whole decode of that body (the receiver's own work after parsing), since that is what a request
pays. Last, the OTLP protobuf decoder, whose per-span checks (time range, duplicate ids, finite
doubles) run on every span.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from apiary.input_limits import load_json  # noqa: E402
from apiary.receivers.honeycomb.events import batch_events  # noqa: E402
from apiary.receivers.otlp.traces import decode  # noqa: E402
from bench.timing import interleaved_medians_ms, median_ms  # noqa: E402


def honeycomb_batch(events: int) -> bytes:
    return json.dumps([{"data": {"name": f"GET /api/{i % 20}", "duration_ms": random.random() * 100,
                                 "trace.trace_id": f"{random.getrandbits(128):032x}", "app.user_id": f"user{i % 50}",
                                 "http.status_code": 200, "error": False}, "time": "2026-12-06T12:00:00Z",
                        "samplerate": 1} for i in range(events)]).encode()


def otlp_json(spans: int) -> bytes:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "backend-flask"}}]}, "scopeSpans": [{"spans": [
            {"traceId": f"{random.getrandbits(128):032x}", "spanId": f"{random.getrandbits(64):016x}",
             "name": "GET /api/activities/home", "startTimeUnixNano": "1700000000000000000",
             "endTimeUnixNano": "1700000000100000000", "attributes": [
                 {"key": "http.status_code", "value": {"intValue": "200"}},
                 {"key": "app.ratio", "value": {"doubleValue": 0.5}},
                 {"key": "app.tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}]}
            for _ in range(spans)]}]}]}).encode()


def put_log_events(events: int) -> bytes:
    return json.dumps({"logGroupName": "cruddur", "logStreamName": "s", "logEvents": [
        {"timestamp": 1700000000000 + i, "message": json.dumps({"level": "INFO", "msg": f"request {i}", "user": i})}
        for i in range(events)]}).encode()


def otlp_protobuf(spans: int) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "backend-flask"
    ss = rs.scope_spans.add()
    for _ in range(spans):
        s = ss.spans.add()
        s.trace_id, s.span_id = random.randbytes(16), random.randbytes(8)
        s.name, s.start_time_unix_nano, s.end_time_unix_nano = "GET /", 1_700_000_000_000_000_000, 1_700_000_000_100_000_000
        for key, value in (("http.status_code", 200), ("app.ratio", 0.5), ("app.user_id", "user7")):
            a = s.attributes.add()
            a.key = key
            if isinstance(value, float):
                a.value.double_value = value
            elif isinstance(value, int):
                a.value.int_value = value
            else:
                a.value.string_value = value
    return req.SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    random.seed(1)
    print(f"{'body':<30} {'bytes':>9} {'json.loads ms':>14} {'load_json ms':>13} {'ratio':>6} {'whole decode ms':>16} "
          f"{'added':>6}")
    hny, otlp, logs = honeycomb_batch(500), otlp_json(512), put_log_events(10_000)
    for label, body, whole in [("libhoney batch, 500 events", hny, lambda: batch_events("bench", hny)),
                               ("OTLP/JSON, 512 spans", otlp, lambda: decode(otlp, True)),
                               ("PutLogEvents, 10,000 events", logs, None)]:
        fns = [lambda: json.loads(body), lambda: load_json(body)] + ([whole] if whole else [])
        times = interleaved_medians_ms(fns, args.runs)
        base, bounded = times[0], times[1]
        tail = f"{times[2]:>16.2f} {(bounded - base) / times[2]:>6.1%}" if whole else f"{'':>16} {'':>6}"
        print(f"{label:<30} {len(body):>9,} {base:>14.2f} {bounded:>13.2f} {bounded / base:>6.2f} {tail}")
    body = otlp_protobuf(512)
    ms = median_ms(lambda: decode(body, False), args.runs)
    print(f"OTLP protobuf decode, 512 spans: {ms:.2f} ms, {ms * 1000 / 512:.1f} us per span "
          "(compare with the same line printed by the commit before, on the same machine)")


if __name__ == "__main__":
    main()
