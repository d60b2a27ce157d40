"""X-Ray Insights from the stored spans: the fault anomalies of a group's services, found at read time.

X-Ray opens an insight when a service's fault rate rises above what it expects and names the service whose own
faults explain the rise. Apiary judges the same thing from what it holds, on either store, with a detector small
enough to state in a paragraph (docs/compatibility/xray.md says it to users):

* the group's traces are cut into `WINDOW_S` windows of span start time; per window and graph node, the requests
  entering the node and how many traces had their *fault root cause* in it (the span ``rootcause.fault`` names:
  a faulting span none of whose children faulted) -- so a caller that faults only because its callee did is not
  blamed, and the insight names the callee;
* a window is anomalous for a node when it had at least `MIN_REQUESTS` requests, the node's preceding
  `BASELINE_S` (its anomalous windows left out) had at least `MIN_BASELINE` requests, and the window's root-cause
  count is both at least `MIN_RATIO` times the expected count (the baseline's rate, add-one smoothed, so a calm
  baseline still expects a little) and improbable were the two rates equal: given the root causes of window and
  baseline together, the window's share of them is a binomial with the window's share of the requests (the
  conditional test of two Poisson rates, which weighs how little a short baseline knows), and its upper tail
  must be below `SIGNIFICANCE`;
* consecutive anomalous windows of a node form one insight; it is ACTIVE until the window after its last
  anomalous one has ended, CLOSED from then on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from apiary.query.plan import NodeFaultSeries, TraceGraph
from apiary.query.xray import Compiler, _naive, catalogue_of
from apiary.query.xray_filter import Node
from apiary.store.base import Store

#: The detector's window: X-Ray's own insights are reported in minutes; five of them hold enough requests to judge.
WINDOW_S = 300
#: The history a window is compared with.
BASELINE_S = 6 * 3600
#: Fewer requests than this in a window, or in its baseline, are not judged: too few to tell a rise from chance.
MIN_REQUESTS = 10
MIN_BASELINE = 50
#: A window's root-cause faults must be at least this many times the expected count ...
MIN_RATIO = 2.0
#: ... and at least this improbable were its rate the baseline's (one-sided conditional binomial test).
SIGNIFICANCE = 1e-4


@dataclass(frozen=True)
class Counts:
    """RequestImpactStatistics: requests, how many faulted, how many were ok (no fault, error or throttle)."""

    total: int = 0
    faults: int = 0
    ok: int = 0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.total + other.total, self.faults + other.faults, self.ok + other.ok)


@dataclass(frozen=True)
class Window:
    """One anomalous window of an insight: the node's requests, its root-cause faults and what was expected, and
    the group's client requests (its traces' roots) in the same window."""

    start_s: int
    service: Counts
    root_causes: int
    expected: float
    client: Counts


@dataclass
class Anomaly:
    """Consecutive anomalous windows of one node: an insight before it has an id and a group."""

    node: str
    node_type: str
    windows: list[Window] = field(default_factory=list)
    closed: bool = False

    @property
    def start_s(self) -> int:
        return self.windows[0].start_s

    @property
    def end_s(self) -> int:
        """The end of its last anomalous window."""
        return self.windows[-1].start_s + WINDOW_S

    def service(self) -> Counts:
        return sum((w.service for w in self.windows), Counts())

    def client(self) -> Counts:
        return sum((w.client for w in self.windows), Counts())


@dataclass(frozen=True)
class WindowRows:
    """What the detector reads: per (bucket, node) the `NodeFaultSeries` row; per bucket the client requests
    (the traces' roots, whichever node took them)."""

    nodes: list[dict[str, Any]]
    clients: dict[int, Counts]


def window_rows(store: Store, env: str, start: datetime, end: datetime, traces: Node | None) -> WindowRows:
    """One statement on the store: the nodes' requests, root-cause faults and roots per window of the traces
    ``traces`` (a group's expression) selects."""
    from apiary.query.dialects.xray import xray_dialect_for

    c = Compiler(catalogue_of(store, env))
    rows = c.rows(env, start, end)
    counted = c.trace(traces)
    plan = NodeFaultSeries(TraceGraph(c.finish(rows), counted), _naive(start), _naive(end), WINDOW_S * 1_000_000)
    compiled = xray_dialect_for(store.dialect).node_fault_series(plan)
    nodes = store.query(compiled.sql, compiled.params).to_pylist()
    clients: dict[int, Counts] = {}
    for r in nodes:
        bucket = int(r["bucket_us"]) // 1_000_000
        clients[bucket] = clients.get(bucket, Counts()) + Counts(int(r["roots"]), int(r["root_faults"]),
                                                                 int(r["root_ok"]))
    return WindowRows(nodes, clients)


def tail_probability(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space from k up (terms past the mode only shrink)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):
        term = math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p
                        + (n - i) * log_q)
        total += term
        if i > n * p and term < total * 1e-12:
            break
    return min(total, 1.0)


def expected_rate(baseline_total: int, baseline_causes: int) -> float:
    """The baseline's root-cause rate, add-one smoothed: a baseline without faults still expects a few."""
    return (baseline_causes + 1) / (baseline_total + 2)


def is_anomalous(total: int, causes: int, baseline_total: int, baseline_causes: int) -> bool:
    """The window's root causes are at least `MIN_RATIO` times those expected and, were the window's rate the
    baseline's, no more than `SIGNIFICANCE` likely to take so large a share of the two's root causes."""
    if total < MIN_REQUESTS or baseline_total < MIN_BASELINE:
        return False
    if causes < MIN_RATIO * total * expected_rate(baseline_total, baseline_causes):
        return False
    share = total / (total + baseline_total)
    return tail_probability(causes, causes + baseline_causes, share) < SIGNIFICANCE


def detect(found: WindowRows, now: datetime) -> list[Anomaly]:
    """The anomalies of every node, oldest first (then by node): each node's windows judged in time order
    against its own preceding `BASELINE_S`, anomalous windows kept out of later baselines."""
    per_node: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in found.nodes:
        per_node.setdefault((r["node"], r["node_type"]), []).append(r)
    now_s = (now if now.tzinfo else now.replace(tzinfo=timezone.utc)).timestamp()
    out: list[Anomaly] = []
    for (node, node_type), rows in sorted(per_node.items()):
        calm: list[tuple[int, int, int]] = []  # (bucket, requests, root causes) of the windows judged normal
        current: Anomaly | None = None
        for r in sorted(rows, key=lambda r: r["bucket_us"]):
            bucket = int(r["bucket_us"]) // 1_000_000
            total, causes = int(r["total"]), int(r["root_causes"])
            history = [(t, c) for b, t, c in calm if bucket - BASELINE_S <= b < bucket]
            b_total, b_causes = sum(t for t, _ in history), sum(c for _, c in history)
            if not is_anomalous(total, causes, b_total, b_causes):
                calm.append((bucket, total, causes))
                continue
            window = Window(bucket, Counts(total, int(r["faults"]), int(r["ok"])), causes,
                            total * expected_rate(b_total, b_causes), found.clients.get(bucket, Counts()))
            if current is not None and current.end_s == bucket:
                current.windows.append(window)
            else:
                current = Anomaly(node, node_type, [window])
                out.append(current)
    for anomaly in out:
        anomaly.closed = now_s >= anomaly.end_s + WINDOW_S
    return sorted(out, key=lambda a: (a.start_s, a.node, a.node_type))
