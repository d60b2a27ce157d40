"""Coverage-guided fuzzing of Apiary's own decoders and parsers with atheris (libFuzzer for Python).

Not part of the test suite: the Hypothesis tests under ``tests/faults/`` go through real sockets
and clients on every run; this script runs for a fixed time and lets libFuzzer's coverage feedback
find inputs no strategy thought of. Each input's first byte picks a target, the rest is its input.
A target may refuse an input only with its protocol's error (the exception a receiver turns into
a 400); any other exception is a finding: libFuzzer stops, prints it and writes the input under
``--artifacts``. A batch a decoder accepts must also keep the bad-value rules of docs/faults.md:
no NaN or Infinity in a float column, no negative duration, every timestamp within 1970..2262,
and it must serialise to the Arrow IPC the intake log writes.

    pip install atheris        # the `fuzz` extra: pip install -e '.[fuzz]'
    python bench/fuzz_atheris.py --seconds 60

What it found is in docs/faults.md ("Fuzzing").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Callable

import atheris
import pyarrow as pa
import pyarrow.compute as pc

with atheris.instrument_imports():
    from apiary.input_limits import InputError, load_json
    from apiary.model.timestamps import MAX_TIMESTAMP_US
    from apiary.query.spec import SpecError, parse_spec
    from apiary.receivers.cloudwatch.filter_pattern import PatternError
    from apiary.receivers.cloudwatch.filter_pattern import parse as parse_pattern
    from apiary.query.insights import QueryError, compile_query
    from apiary.receivers.encoding import BadEncoding, BodyTooLarge
    from apiary.receivers.honeycomb.events import EventError, batch_events, single_event
    from apiary.receivers.otlp import logs as otlp_logs
    from apiary.receivers.otlp import traces as otlp_traces
    from apiary.receivers.otlp.traces import PayloadError
    from apiary.receivers.rollbar.items import PayloadError as RollbarPayloadError
    from apiary.receivers.rollbar.items import decode as decode_rollbar
    from apiary.receivers.xray.filter import FilterError
    from apiary.receivers.xray.filter import parse as parse_filter
    from apiary.receivers.xray.segments import SegmentError, parse_datagram, to_batch

#: What each protocol answers with 400; anything else escaping a target is a bug.
REFUSALS = (PayloadError, EventError, SegmentError, FilterError, PatternError, QueryError, SpecError, InputError,
            BadEncoding, BodyTooLarge, RollbarPayloadError)
LIMIT = 1 << 20


def _storable(batch: object) -> None:
    """The bad-value rules, checked on what a decoder hands the store."""
    table = batch.table  # type: ignore[attr-defined]
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_floating(column.type):
            bad = pc.sum(pc.or_(pc.is_nan(column), pc.is_inf(column))).as_py()
            assert not bad, f"{bad} NaN/Infinity values reached column {name!r}"
        if name == "duration_ms":
            assert (pc.min(column).as_py() or 0) >= 0, "a negative duration reached the store"
        if pa.types.is_timestamp(column.type) and column.null_count < len(column):
            lo, hi = pc.min(column.cast(pa.int64())).as_py(), pc.max(column.cast(pa.int64())).as_py()
            assert 0 <= lo and hi <= MAX_TIMESTAMP_US, f"timestamp {lo}..{hi} us is outside 1970..2262"
    batch.ipc_stream()  # type: ignore[attr-defined]


def _checked(decode: Callable[[bytes], object]) -> Callable[[bytes], None]:
    return lambda data: _storable(decode(data))


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass") if data else ""


def _spec(data: bytes) -> None:
    try:
        doc = load_json(data)
    except ValueError:
        return
    spec = parse_spec(doc)
    spec.window(now=time.time())


def _rollbar(data: bytes) -> None:
    try:
        doc = load_json(data)
    except ValueError:
        return
    decode_rollbar(doc)


def _xray(data: bytes) -> None:
    doc, text = parse_datagram(b'{"format": "json", "version": 1}\n' + data)
    _storable(to_batch([(doc, text)]))


TARGETS: list[Callable[[bytes], object]] = [
    _checked(lambda d: otlp_traces.decode_request(d, None, False, LIMIT)),
    _checked(lambda d: otlp_traces.decode_request(d, None, True, LIMIT)),
    _checked(lambda d: otlp_logs.decode_request(d, None, False, LIMIT)),
    _checked(lambda d: otlp_logs.decode_request(d, None, True, LIMIT)),
    _checked(lambda d: batch_events("fuzz", d)[0]),
    _checked(lambda d: single_event("fuzz", d, None, None)),
    _xray,
    lambda d: parse_filter(_text(d)),
    lambda d: parse_pattern.__wrapped__(_text(d)),  # past the lru_cache, so every input is parsed
    lambda d: compile_query(_text(d)),
    _spec,
    _rollbar,
]


def one_input(data: bytes) -> None:
    if not data:
        return
    target = TARGETS[data[0] % len(TARGETS)]
    try:
        target(data[1:])
    except REFUSALS:
        pass
    except UnicodeDecodeError:  # _text's own: the HTTP layer decodes query text the same way first
        pass


SEEDS = [
    b"\x00" + bytes.fromhex("0a2a0a0a0a08736572766963651200120a"),
    b'\x01{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5759e988bd862e3fe1be46a994272793",'
    b'"spanId":"53995c3f42cd8ad8","name":"n","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}',
    b'\x03{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}',
    b'\x04[{"data":{"name":"a","duration_ms":1.5},"time":"2024-01-01T00:00:00Z"}]',
    b'\x06{"trace_id":"1-5759e988-bd862e3fe1be46a994272793","id":"53995c3f42cd8ad8","name":"s","start_time":1,"end_time":2}',
    b'\x07service("a") AND (http.status >= 500 OR fault)',
    b"\x08{ ($.a = 1) && ($.b != \"x\") }",
    b"\x09fields @message | filter @message like /x/ | stats count(*) by bin(5m)",
    b'\x0a{"calculations":[{"op":"P90","column":"duration_ms"}],"time_range":3600}',
    b'\x0b{"data":{"environment":"p","body":{"message":{"body":"m"}}}}',
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="how long libFuzzer runs (default 60)")
    parser.add_argument("--artifacts", default=None, help="where a crashing input is written (default: a temp dir)")
    args = parser.parse_args()
    artifacts = args.artifacts or tempfile.mkdtemp(prefix="apiary-atheris-")
    os.makedirs(artifacts, exist_ok=True)
    corpus = tempfile.mkdtemp(prefix="apiary-atheris-corpus-")
    for i, seed in enumerate(SEEDS):
        with open(f"{corpus}/seed{i}", "wb") as f:
            f.write(seed)
    print(f"fuzzing {len(TARGETS)} targets for {args.seconds} s; crashing inputs go to {artifacts}", flush=True)
    sys.setrecursionlimit(1000)
    atheris.Setup([sys.argv[0], f"-max_total_time={args.seconds}", f"-artifact_prefix={artifacts}/",
                   "-max_len=4096", "-len_control=0", "-rss_limit_mb=2048", corpus], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
