"""The critical path of a trace, as Jaeger defines it.

Walk back from the end of the root: at each span take the child that finished
last before the current point, descend into it, and when a span has no child
left before that point, the span's own time up to there is on the path and
the walk returns to its parent at the span's start. Children are first
clipped to their parent's time (a child running past its parent cannot hold
the parent up beyond its end; one wholly outside it is left out). The walk is computed with array operations
(``_walk``): 100,000 spans in ~0.2 s of array work on this machine's loaded
cores, where a Python loop per span took ~1 s.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def critical_path_of_table(table: pa.Table) -> dict[str, list[Any]]:
    """Segments of the critical path of one trace's rows (``Store.trace``): events and links are skipped."""
    if table.num_rows == 0 or "trace.span_id" not in table.column_names:
        return {"span_ids": [], "start_us": [], "end_us": []}
    table = table.select([c for c in ("trace.span_id", "trace.parent_id", "timestamp", "duration_ms", "meta.annotation_type")
                          if c in table.column_names])  # filter the five columns used, not every attribute
    if "meta.annotation_type" in table.column_names:
        table = table.filter(pc.is_null(table.column("meta.annotation_type")))
    n = table.num_rows
    starts = pc.cast(pc.cast(table.column("timestamp"), pa.timestamp("us")), pa.int64())
    durations = table.column("duration_ms") if "duration_ms" in table.column_names else pa.nulls(n, pa.float64())
    parents = table.column("trace.parent_id") if "trace.parent_id" in table.column_names else pa.nulls(n, pa.string())
    return critical_path(table.column("trace.span_id"), parents, starts, durations)


def critical_path(span_ids: Sequence[str | None] | pa.ChunkedArray, parent_ids: Sequence[str | None] | pa.ChunkedArray,
                  starts_us: Sequence[int] | pa.ChunkedArray, durations_ms: Sequence[float | None] | pa.ChunkedArray,
                  ) -> dict[str, list[Any]]:
    """The path's segments in time order, as columns: ``span_ids[i]`` held the trace up from ``start_us[i]``
    to ``end_us[i]``. Columns, not a dict per segment: for 100,000 segments the dicts alone took ~400 ms here."""
    n = len(span_ids)
    if n == 0:
        return {"span_ids": [], "start_us": [], "end_us": []}
    ids = _arrow(span_ids, pa.string())
    start = _arrow(starts_us, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
    dur = _arrow(durations_ms, pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
    end = start + np.rint(np.maximum(dur, 0.0) * 1000).astype(np.int64)
    # A parent is the first span with that id; a missing parent (or a span its own parent) makes a root.
    found = pc.index_in(_arrow(parent_ids, pa.string()), value_set=ids, skip_nulls=True)
    parent = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    parent[parent == np.arange(n)] = -1
    roots = np.nonzero(parent < 0)[0]
    root = int(roots[np.lexsort((start[roots], -end[roots]))[0]]) if len(roots) else 0
    rows, lo, hi = _walk(root, parent, start, end)
    return {"span_ids": ids.take(pa.array(rows, pa.int64())).to_pylist(), "start_us": lo.tolist(), "end_us": hi.tolist()}


def _walk(root: int, parent: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Jaeger's walk, done with array operations: (span row, start, end) of each segment, in time order.

    The walk is a chain of steps "enter a span": from a span to its last-finishing child, or, when it has
    none, back up to the nearest ancestor-or-self that has an earlier-finishing sibling, and on to that
    sibling. That next step is known per span in advance, so which spans the walk enters is a list-ranking
    problem, solved by pointer jumping in O(n log n) array work rather than a Python loop per span (which
    took ~1 s per 100,000 spans on this machine's loaded cores).
    """
    n = len(parent)
    steps = max(1, int(np.ceil(np.log2(n + 1))) + 1)
    # Clip each span to its ancestors' time: end is the least end on the chain above, start the greatest start.
    clip_end, clip_start, up = end.copy(), start.copy(), parent.copy()
    for _ in range(steps):
        live = up >= 0
        if not live.any():
            break
        at = np.where(live, up, 0)
        clip_end = np.where(live, np.minimum(clip_end, clip_end[at]), clip_end)
        clip_start = np.where(live, np.maximum(clip_start, clip_start[at]), clip_start)
        up = np.where(live, up[at], -1)
    # A span wholly outside an ancestor's time (and so everything under it) plays no part, as in Jaeger.
    parent = np.where(clip_start > clip_end, -2, parent)
    # Children of each span, contiguous in ``order``, latest end first: one sort of (parent, -end) keys
    # packed in an int64, relative to the trace's start (a lexsort of the two columns took 2-3x as long).
    base, top = int(min(clip_start.min(), start.min())), (1 << 41) - 1  # 2^41 us: 25 days from the first start
    group = (parent + 2) << 41
    order = np.argsort(group | (top - np.clip(end - base, 0, top)), kind="stable")
    pos = np.empty(n, np.int64)
    pos[order] = np.arange(n)
    group_parent = parent[order]
    first = np.searchsorted(group_parent, np.arange(n), "left")
    last = np.searchsorted(group_parent, np.arange(n), "right")
    first_child = np.where(first < last, order[np.minimum(first, n - 1)], -1)
    # After a child returns (the walk is then at its start), the next child is the first later sibling
    # that finished by then: one search over the same keys, with ends clipped to the parent.
    key = group | (top - np.clip(clip_end - base, 0, top))
    wanted = group | (top - np.clip(clip_start - base, 0, top))
    k = np.maximum(np.searchsorted(key[order], wanted, "left"), pos + 1)
    has_next = (parent >= 0) & (k < last[np.maximum(parent, 0)])
    next_sibling = np.where(has_next, order[np.minimum(k, n - 1)], -1)
    # Where the walk goes after a span without children: the nearest ancestor-or-self below the root
    # with a next sibling (pointer jumping up the tree), then that sibling.
    stay = has_next | (parent < 0) | (np.arange(n) == root)
    anchor = np.where(stay, np.arange(n), parent)
    for _ in range(steps):
        nxt = anchor[anchor]
        if np.array_equal(nxt, anchor):
            break
        anchor = nxt
    resume = np.where((anchor != root) & has_next[anchor], next_sibling[anchor], -1)
    succ = np.where(first_child >= 0, first_child, resume)
    # Every span the walk enters from the root: doubling tables of the next-step function (step 2^j), then
    # the root's chain read off them, doubling the known prefix each time; -1 past the walk's end.
    jump, tables = succ, [succ]
    for _ in range(steps):
        live = jump >= 0
        if not live.any():
            break
        jump = np.where(live, jump[np.where(live, jump, 0)], -1)
        tables.append(jump)
    chain = np.array([root], np.int64)
    for table in tables:
        more = table[chain]
        more = more[:np.argmax(more < 0)] if (more < 0).any() else more
        chain = np.concatenate([chain, more])
        if len(more) < len(chain) - len(more):
            break
    on = np.zeros(n, bool)
    on[chain] = True
    # Segments: before each entered child, its parent from the child's end to where the walk stood;
    # after a span's last entered child (or with none), the span itself from its start.
    stood = np.full(n, -1, np.int64)
    entered_first = chain[(chain != root) & (first_child[parent[chain]] == chain)]
    stood[entered_first] = clip_end[parent[entered_first]]
    follows = chain[has_next[chain]]
    stood[next_sibling[follows]] = clip_start[follows]
    kids = chain[chain != root]
    tail_from = np.where(first_child[chain] >= 0, -1, clip_end[chain])
    tail = np.full(n, -1, np.int64)
    tail[chain] = tail_from
    ends_chain = kids[~has_next[kids]]
    tail[parent[ends_chain]] = clip_start[ends_chain]
    rows = np.concatenate([parent[kids], chain])
    lo = np.concatenate([clip_end[kids], clip_start[chain]])
    hi = np.concatenate([stood[kids], tail[chain]])
    keep = lo < hi
    if not keep.any():
        return np.array([root]), np.array([clip_start[root]]), np.array([clip_end[root]])
    rows, lo, hi = rows[keep], lo[keep], hi[keep]
    by_time = np.argsort(lo, kind="stable")
    return rows[by_time], lo[by_time], hi[by_time]


def _arrow(values: Any, typ: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().cast(typ)
    if isinstance(values, pa.Array):
        return values.cast(typ)
    return pa.array(values, typ)
