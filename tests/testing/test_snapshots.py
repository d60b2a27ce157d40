"""A trace-shape snapshot as a developer lives with it: written by the first run, matched by the next,
failing with a diff when the instrumentation changes, rewritten with ``--apiary-update-snapshots``."""

from __future__ import annotations

import textwrap

import pytest

from tests.testing.app_process import TRACE_ID

INNER = textwrap.dedent('''
    import os
    from tests.testing.app_process import TRACE_ID, call, running_app

    def test_home_trace(apiary, tmp_path):
        breakage = os.environ.get("INNER_BREAK", "")
        with running_app(apiary.environ("backend-flask"), tmp_path / "app.log", breakage) as base:
            assert call(base, "/api/activities/home").status_code == 200
            trace = apiary.trace(TRACE_ID, spans=3)
            apiary.assert_snapshot(trace, timeout=1)
''')

GOOD = """\
backend-flask: GET /api/activities/home  (its parent span is not in the trace)
  backend-flask: home-activities-mock-data
backend-flask: backend-flask [x-ray segment]  (its parent span is not in the trace)
"""

BROKEN = """\
backend-flask: GET /api/activities/home  (its parent span is not in the trace)
backend-flask: backend-flask [x-ray segment]  (its parent span is not in the trace)
backend-flask: home-activities-mock-data  (its parent span is not in the trace)
"""

DIFF = f"""\
apiary.testing.telemetry.TelemetryNotFound: trace {TRACE_ID} does not match its snapshot test_home_trace.txt (rewrite it with --apiary-update-snapshots if the change is meant):
--- test_home_trace.txt (stored)
+++ this run
@@ -1,3 +1,3 @@
 backend-flask: GET /api/activities/home  (its parent span is not in the trace)
-  backend-flask: home-activities-mock-data
 backend-flask: backend-flask [x-ray segment]  (its parent span is not in the trace)
+backend-flask: home-activities-mock-data  (its parent span is not in the trace)"""


def test_written_once_then_compared_then_updated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_snap=INNER)
    stored = pytester.path / "__snapshots__" / "test_snap" / "test_home_trace.txt"

    first = pytester.runpytest("-p", "no:cacheprovider")
    first.assert_outcomes(passed=1, warnings=1)
    first.stdout.fnmatch_lines(["*SnapshotWritten: trace snapshot written: *test_home_trace.txt"])
    assert stored.read_text() == GOOD

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)

    monkeypatch.setenv("INNER_BREAK", "parent-link")
    broken = pytester.runpytest("-p", "no:cacheprovider")
    broken.assert_outcomes(failed=1)
    shown = [line[1:] for line in broken.outlines if line.startswith("E ")]
    assert textwrap.dedent("\n".join(shown)) == DIFF
    assert stored.read_text() == GOOD

    pytester.runpytest("-p", "no:cacheprovider", "--apiary-update-snapshots").assert_outcomes(passed=1, warnings=1)
    assert stored.read_text() == BROKEN
