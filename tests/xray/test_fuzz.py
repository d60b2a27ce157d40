"""Random bytes and random expressions: the decoder and the parser answer their own error or a value, never crash."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiary.receivers.xray.filter import FilterError, parse
from apiary.receivers.xray.segments import SegmentError, parse_datagram, to_batch

HEADER = b'{"format": "json", "version": 1}\n'
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | st.builds(lambda b: HEADER + b, st.binary(max_size=400)))
def test_datagram_decoder_takes_any_bytes(data: bytes) -> None:
    try:
        doc, text = parse_datagram(data)
    except SegmentError:
        return
    assert to_batch([(doc, text)]).num_rows >= 1


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["http", "aws", "sql", "annotations", "metadata", "cause", "error", "fault",
                                        "user", "subsegments", "origin", "in_progress", "end_time"]), json_values))
def test_decoder_maps_any_fields_of_a_valid_segment(extra: dict) -> None:
    doc = {"trace_id": "1-5759e988-bd862e3fe1be46a994272793", "id": "70de5b6f19ff9a0a", "name": "fuzz",
           "start_time": 1478293361.271, "end_time": 1478293361.449, **extra}
    try:
        doc2, text = parse_datagram(HEADER + json.dumps(doc).encode())
    except SegmentError:
        return
    batch = to_batch([(doc2, text)])
    assert batch.table.column("service.name")[0].as_py() == "fuzz"


tokens = st.sampled_from(['service("a")', 'edge("a","b")', "fault", "ok", "AND", "OR", "NOT", "(", ")", "{", "}",
                          "http.status", "=", ">=", "500", '"x"', "CONTAINS", "annotation.k", "responsetime", "!",
                          "id(name: \"n\")", "true", "1.5", ",", "user", "rootcause.fault.service.name",
                          "rootcause.fault.entity", "first", "last", "index", "rootcause.json", "#", "[", "]",
                          '"Services"', '"EntityPath"', '"Name"', ":", "null"])


@settings(max_examples=400, deadline=None)
@given(st.lists(tokens, max_size=12).map(" ".join) | st.text(max_size=60))
def test_filter_parser_takes_any_text(expression: str) -> None:
    try:
        parse(expression)
    except FilterError as exc:
        assert "Invalid filter expression" in str(exc)
