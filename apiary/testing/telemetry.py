"""What the ``apiary`` fixture hands a test: the variables for the app, and reads that wait.

Every read polls Apiary's read APIs until what was asked for has arrived, then returns it at once; only
when the timeout passes does it fail, with what came nearest and what differed. A test therefore never
sleeps for an exporter's batch delay: with the 100 ms batch delay `environ` sets, a span is usually
readable well under a second after the app handled the request (``bench/testing_startup.py``).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence, TypeVar
from urllib.parse import quote

import httpx

from apiary.testing import explain
from apiary.testing.filters import Filter, FilterLike, describe, matches, parse
from apiary.testing.reads import Reader, ReadError
from apiary.testing.snapshots import SnapshotBook, diff
from apiary.testing.traces import Label, Shape, Trace, label

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 10.0
POLL_S = 0.05
RUN_ATTRIBUTE = "apiary.run"


class TelemetryNotFound(AssertionError):
    """What a test waited for did not arrive; the message says what came nearest."""


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float) -> tuple[T, bool]:
    """Poll ``read`` until ``done`` holds of its answer or ``timeout`` passes: (last answer, done)."""
    deadline = time.monotonic() + timeout
    delay = POLL_S
    while True:
        try:
            got = read()
        except (ReadError, httpx.TransportError) as exc:  # asked again until the deadline, then said as it is
            if (isinstance(exc, ReadError) and not exc.transient) or time.monotonic() >= deadline:
                raise
        else:
            if done(got):
                return got, True
            if time.monotonic() >= deadline:
                return got, False
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)


def _log_name(event: Mapping[str, Any]) -> str:
    return f"{event.get('group')}: {event.get('message')!r}"


def _error_name(occurrence: Mapping[str, Any]) -> str:
    return f"{occurrence.get('level')}: {occurrence.get('title')!r}"


class Telemetry:
    """One test's environment on the test server: ``env`` for the app, waiting reads and assertions."""

    def __init__(self, url: str, grpc_endpoint: str, key: str, environment: str, xray_port: int, run: str,
                 since: float | None = None) -> None:
        self.url, self.grpc_endpoint, self.key, self.environment = url, grpc_endpoint, key, environment
        self.xray_daemon_address = f"127.0.0.1:{xray_port}"
        self.run = run
        self.timeout = DEFAULT_TIMEOUT_S
        self.reader = Reader(url, key, environment, since or time.time())
        #: Where `assert_snapshot` keeps this test's snapshots (the pytest plugin sets it).
        self.snapshots: SnapshotBook | None = None
        #: How to look at this test's telemetry after the session (the plugin shows it when the test fails).
        self.inspect: str | None = None

    def close(self) -> None:
        self.reader.close()

    # -- the app's environment ----------------------------------------------------------------------

    def environ(self, service_name: str | None = None, protocol: str = "http/protobuf") -> dict[str, str]:
        """Every variable an app instrumented as the guides do needs to report here.

        OTLP over ``http/protobuf`` (this server's HTTP port) or ``grpc`` (its gRPC port), the key as
        Honeycomb's header, the run as the resource attribute ``apiary.run``; boto3/awscli/watchtower's
        endpoint with the key as both credentials; the X-Ray daemon of this test; Rollbar's endpoint and
        token (``ROLLBAR_ENDPOINT``/``ROLLBAR_ACCESS_TOKEN``, for ``rollbar.init``). The batch delays are
        cut to 100 ms so that a test waits for its telemetry a tenth of a second, not the SDK's 5 s.
        """
        if protocol not in ("http/protobuf", "http/json", "grpc"):
            raise ValueError(f"protocol must be http/protobuf, http/json or grpc, not {protocol!r}")
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.grpc_endpoint if protocol == "grpc" else self.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_HEADERS": f"x-honeycomb-team={self.key}",
            "OTEL_RESOURCE_ATTRIBUTES": f"{RUN_ATTRIBUTE}={quote(self.run, safe='')}",
            "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BLRP_SCHEDULE_DELAY": "100",
            "AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.key,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
            "AWS_XRAY_DAEMON_ADDRESS": self.xray_daemon_address,
            "ROLLBAR_ENDPOINT": f"{self.url}/api/1/", "ROLLBAR_ACCESS_TOKEN": self.key,
        }
        if service_name:
            env["OTEL_SERVICE_NAME"] = service_name
        return env

    @property
    def env(self) -> dict[str, str]:
        return self.environ()

    # -- waiting reads ------------------------------------------------------------------------------

    def spans(self, *filters: FilterLike, count: int = 1, timeout: float | None = None, **equals: Any) -> list[dict[str, Any]]:
        """The spans matching every filter, once at least ``count`` of them have arrived."""
        wanted = parse(filters, equals)
        timeout = self.timeout if timeout is None else timeout
        found, ok = wait_for(lambda: self.reader.spans(wanted), lambda got: len(got) >= count, timeout)
        if not ok:
            raise TelemetryNotFound(explain.no_match("span", wanted, timeout, len(found), count,
                                                     self.reader.recent_spans(), label))
        return found

    def span(self, *filters: FilterLike, timeout: float | None = None, **equals: Any) -> dict[str, Any]:
        """The first span matching every filter: "a span exists with these attributes"."""
        return self.spans(*filters, timeout=timeout, **equals)[0]

    def trace(self, trace_id: str, shape: Shape | None = None, *, spans: int = 1, having: Sequence[FilterLike] = (),
              timeout: float | None = None) -> Trace:
        """The trace once it holds ``spans`` spans, a span matching each of ``having``, and ``shape``."""
        wanted = parse(having)
        timeout = self.timeout if timeout is None else timeout

        def complete(t: Trace) -> bool:
            return (len(t) >= spans and all(any(matches([f], s) for s in t) for f in wanted)
                    and not (shape and t.shape_problems(shape)))
        found, ok = wait_for(lambda: Trace(trace_id, self.reader.trace(trace_id)), complete, timeout)
        if not ok:
            raise TelemetryNotFound(self._trace_failure(found, shape, spans, wanted, timeout))
        return found

    def _trace_failure(self, trace: Trace, shape: Shape | None, spans: int, wanted: list[Filter], timeout: float) -> str:
        if not len(trace):
            return f"trace {trace.trace_id} did not arrive within {timeout:g} s"
        lines = []
        if len(trace) < spans:
            lines.append(f"trace {trace.trace_id} has {len(trace)} spans after {timeout:g} s, expected at least {spans}")
        for f in wanted:
            if not any(matches([f], s) for s in trace):
                lines.append(f"no span of trace {trace.trace_id} has {describe(f)} after {timeout:g} s")
        for problem in trace.shape_problems(shape or {}):
            lines.append(f"trace {trace.trace_id} does not have the expected shape after {timeout:g} s: {problem}")
            lines += self._elsewhere(trace, problem, shape or {})
        return "\n".join(lines + ["the trace as it arrived:", trace.render(indent="  ")])

    def _elsewhere(self, trace: Trace, problem: str, shape: Shape) -> list[str]:
        """For a label missing from the trace: the same span found in other traces of this test."""
        out = []
        for text in _labels(shape):
            if not problem.startswith(f"no span {text!r} "):
                continue
            wanted = Label.parse(text)
            others = [s for s in self.reader.spans(wanted.filters()) if s.get("trace.trace_id") != trace.trace_id]
            for other in others[:3]:
                where = "as its root" if not other.get("trace.parent_id") else "under a parent of its own"
                line = (f"  a span {label(other)!r} arrived in another trace, {where}: the trace context "
                        f"did not reach it (a trace header lost on the way?)")
                if line not in out:
                    out.append(line)
        return out

    def logs(self, *filters: FilterLike, count: int = 1, timeout: float | None = None, **equals: Any) -> list[dict[str, Any]]:
        """Log events (columns ``group``, ``stream``, ``message``, ``trace_id`` …) matching every filter."""
        return self._records("log line", self.reader.logs, _log_name, filters, equals, count, timeout)

    def errors(self, *filters: FilterLike, count: int = 1, timeout: float | None = None, **equals: Any) -> list[dict[str, Any]]:
        """Rollbar occurrences (columns ``title``, ``level``, ``trace_id``, ``exception.class`` …) matching every filter."""
        return self._records("error", self.reader.errors, _error_name, filters, equals, count, timeout)

    def _records(self, what: str, read: Callable[[], list[dict[str, Any]]], name_of: Callable[[Mapping[str, Any]], str],
                 filters: Sequence[FilterLike], equals: Mapping[str, Any], count: int, timeout: float | None) -> list[dict[str, Any]]:
        wanted = parse(filters, equals)
        timeout = self.timeout if timeout is None else timeout
        everything, ok = wait_for(read, lambda got: sum(matches(wanted, r) for r in got) >= count, timeout)
        found = [r for r in everything if matches(wanted, r)]
        if not ok:
            raise TelemetryNotFound(explain.no_match(what, wanted, timeout, len(found), count, everything, name_of))
        return found

    # -- assertions on what has arrived -------------------------------------------------------------

    def assert_no_errors(self, *filters: FilterLike, **equals: Any) -> None:
        """No span (among those matching the filters) has an error; checked on what has arrived by now."""
        wanted = parse(filters, equals)
        bad = self.reader.spans([*wanted, {"column": "error", "op": "=", "value": True}])
        if bad:
            lines = [f"{len(bad)} span{'s' if len(bad) > 1 else ''} with an error:"]
            for s in sorted(bad, key=label):
                message = s.get("status_message") or s.get("exception.message") or ""
                lines.append(f"  {label(s)}" + (f": {message}" if message else ""))
            raise AssertionError("\n".join(lines))

    def assert_duration(self, *filters: FilterLike, max_ms: float, count: int = 1, timeout: float | None = None,
                        **equals: Any) -> list[dict[str, Any]]:
        """Wait for the spans, then check each took at most ``max_ms``: a budget for one operation."""
        found = self.spans(*filters, count=count, timeout=timeout, **equals)
        slow = [s for s in found if (s.get("duration_ms") or 0) > max_ms]
        if slow:
            lines = [f"{len(slow)} of {len(found)} spans over the {max_ms:g} ms bound:"]
            lines += [f"  {label(s)} took {s['duration_ms']:.1f} ms" for s in sorted(slow, key=label)]
            raise AssertionError("\n".join(lines))
        return found

    def assert_snapshot(self, trace: Trace | str, name: str | None = None, timeout: float | None = None) -> Trace:
        """The trace's shape equals its stored snapshot (written on the first run, ids and timings left out).

        Spans may still be arriving, so a trace that differs is read again until it matches or the timeout
        passes; the failure shows a diff of the two trees.
        """
        if self.snapshots is None:
            raise RuntimeError("no snapshot directory: set telemetry.snapshots = SnapshotBook(...) outside pytest")
        trace_id = trace if isinstance(trace, str) else trace.trace_id
        current = trace if isinstance(trace, Trace) else Trace(trace_id, self.reader.trace(trace_id))
        stored = self.snapshots.stored(name)
        if stored is None:
            if not len(current):
                current = self.trace(trace_id, timeout=timeout)
            self.snapshots.write(current.render(), name)
            return current
        timeout = self.timeout if timeout is None else timeout
        if current.render() != stored:
            current, _ = wait_for(lambda: Trace(trace_id, self.reader.trace(trace_id)), lambda t: t.render() == stored,
                                  timeout)
        if current.render() != stored:
            path = self.snapshots.path(name)
            raise TelemetryNotFound(f"trace {trace_id} does not match its snapshot {path.name} "
                                 f"(rewrite it with --apiary-update-snapshots if the change is meant):\n"
                                 f"{diff(stored, current.render(), path)}")
        return current


def _labels(shape: Shape) -> list[str]:
    out = []
    for text, sub in shape.items():
        out.append(text)
        out += _labels(sub or {})
    return out
