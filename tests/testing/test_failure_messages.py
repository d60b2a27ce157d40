"""Broken instrumentation, as a developer would break it, caught by the plugin: an inner pytest session
(``pytester``) runs the app with the breakage and its tests fail; the messages are checked word for word.

The inner sessions use the plugin as installed (its ``pytest11`` entry point), on the default store.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.testing.app_process import CALLER_SPAN, TRACE_ID

INNER = textwrap.dedent('''
    import os
    from tests.testing.app_process import TRACE_ID, call, running_app

    HOME = "/api/activities/home"
    SHAPE = {"backend-flask: GET /api/activities/home": {"backend-flask: home-activities-mock-data": {}},
             "backend-flask: backend-flask [x-ray segment]": {}}

    def home(apiary, tmp_path, breakage):
        with running_app(apiary.environ("backend-flask"), tmp_path / "app.log", breakage) as base:
            assert call(base, HOME).status_code == 200
            apiary.spans(name="home-activities-mock-data")  # the OTel batch is in
            apiary.spans("xray.type = segment")  # and the X-Ray segment, whichever trace it went to

    def test_result_length(apiary, tmp_path):
        home(apiary, tmp_path, os.environ.get("INNER_BREAK", "missing-attribute"))
        apiary.span("name = home-activities-mock-data", **{"app.result_length": 3}, timeout=1)

    def test_parent_link(apiary, tmp_path):
        home(apiary, tmp_path, os.environ.get("INNER_BREAK", "parent-link"))
        apiary.trace(TRACE_ID, SHAPE, timeout=1)

    def test_xray_header(apiary, tmp_path):
        home(apiary, tmp_path, os.environ.get("INNER_BREAK", "xray-header"))
        apiary.trace(TRACE_ID, SHAPE, timeout=1)
''')


def failure(result: pytest.RunResult, test: str) -> str:
    """The ``E`` lines pytest printed for ``test``'s failure, without the ``E`` and the indent after it."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.strip("_ ") == test)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("____", "====="))), len(lines))
    return textwrap.dedent("\n".join(line[1:] for line in lines[start:end] if line.startswith("E ") or line == "E"))


def test_each_breakage_fails_with_a_message_that_says_what_differed(pytester: pytest.Pytester) -> None:
    """One inner session for the three breakages: an app start costs seconds on this machine."""
    pytester.makepyfile(test_home=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    assert failure(result, "test_result_length") == MISSING_ATTRIBUTE
    assert failure(result, "test_parent_link") == BROKEN_PARENT_LINK
    assert failure(result, "test_xray_header") == LOST_XRAY_HEADER
    result.stdout.fnmatch_lines(["*- apiary -*", "this test's telemetry is in environment '3-test_xray_header'; after the "
                                 "session, see it with", "  apiary serve --data *", "  http://127.0.0.1:4318/traces?env=3-test_xray_header"])


MISSING_ATTRIBUTE = textwrap.dedent("""\
    apiary.testing.telemetry.TelemetryNotFound: no span matched within 1 s: name = 'home-activities-mock-data' and app.result_length = 3
    nearest spans of 3 that arrived:
      backend-flask: home-activities-mock-data
        app.result_length: missing, expected = 3
      backend-flask: GET /api/activities/home
        name: 'GET /api/activities/home', expected = 'home-activities-mock-data'
        app.result_length: missing, expected = 3
      backend-flask: backend-flask [x-ray segment]
        name: 'backend-flask', expected = 'home-activities-mock-data'
        app.result_length: missing, expected = 3""")

BROKEN_PARENT_LINK = textwrap.dedent(f"""\
    apiary.testing.telemetry.TelemetryNotFound: trace {TRACE_ID} does not have the expected shape after 1 s: 'backend-flask: home-activities-mock-data' is not under 'backend-flask: GET /api/activities/home': its parent span {CALLER_SPAN} is not in the trace
    the trace as it arrived:
      backend-flask: GET /api/activities/home  (its parent span is not in the trace)
      backend-flask: backend-flask [x-ray segment]  (its parent span is not in the trace)
      backend-flask: home-activities-mock-data  (its parent span is not in the trace)""")

LOST_XRAY_HEADER = textwrap.dedent(f"""\
    apiary.testing.telemetry.TelemetryNotFound: trace {TRACE_ID} does not have the expected shape after 1 s: no span 'backend-flask: backend-flask [x-ray segment]' in the trace
      a span 'backend-flask: backend-flask [x-ray segment]' arrived in another trace, as its root: the trace context did not reach it (a trace header lost on the way?)
    the trace as it arrived:
      backend-flask: GET /api/activities/home  (its parent span is not in the trace)
        backend-flask: home-activities-mock-data""")
