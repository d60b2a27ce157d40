"""The critical path of a trace, as Jaeger defines it, in time linear in the spans (after one sort of each span's children).

Walk back from the end of the root: at each span take the child that finished
last before the current point, descend into it, and when a span has no child
left before that point, the span's own time up to there is on the path and
the walk returns to its parent at the span's start. Children are first
clipped to their parent's time (a child running past its parent cannot hold
the parent up beyond its end), and each span keeps a cursor into its
children sorted by end, so every child is looked at once.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def critical_path_of_table(table: pa.Table) -> list[dict[str, Any]]:
    """Segments of the critical path of one trace's rows (``Store.trace``): events and links are skipped."""
    if table.num_rows == 0 or "trace.span_id" not in table.column_names:
        return []
    if "meta.annotation_type" in table.column_names:
        table = table.filter(pc.is_null(table.column("meta.annotation_type")))
    n = table.num_rows
    starts = pc.cast(pc.cast(table.column("timestamp"), pa.timestamp("us")), pa.int64())
    durations = table.column("duration_ms") if "duration_ms" in table.column_names else pa.nulls(n, pa.float64())
    parents = table.column("trace.parent_id") if "trace.parent_id" in table.column_names else pa.nulls(n, pa.string())
    return critical_path(table.column("trace.span_id"), parents, starts, durations)


def critical_path(span_ids: Sequence[str | None] | pa.ChunkedArray, parent_ids: Sequence[str | None] | pa.ChunkedArray,
                  starts_us: Sequence[int] | pa.ChunkedArray, durations_ms: Sequence[float | None] | pa.ChunkedArray,
                  ) -> list[dict[str, Any]]:
    """``[{"span_id", "start_us", "end_us"}]`` in time order: which span held the trace up, and when.

    The per-span work (parent lookup, children grouped and sorted by end) is done by Arrow and numpy; only
    the walk itself is Python, and it visits the spans on the path and the children it steps over. On this
    machine's loaded cores a Python loop over every span cost ~4 s per 100,000 spans, this ~100 ms.
    """
    n = len(span_ids)
    if n == 0:
        return []
    ids = _arrow(span_ids, pa.string())
    start = _arrow(starts_us, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
    dur = _arrow(durations_ms, pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
    end = start + np.rint(dur * 1000).astype(np.int64)
    # A parent is the first span with that id; a missing parent (or a span its own parent) makes a root.
    found = pc.index_in(_arrow(parent_ids, pa.string()), value_set=ids)
    parent = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    parent[parent == np.arange(n)] = -1
    roots = np.nonzero(parent < 0)[0]
    # Children of each span, contiguous in ``order``, latest end first.
    order = np.lexsort((-end, parent))
    sorted_parent = parent[order]
    first = np.searchsorted(sorted_parent, np.arange(n), "left")
    last = np.searchsorted(sorted_parent, np.arange(n), "right")
    root = int(roots[np.lexsort((start[roots], -end[roots]))[0]]) if len(roots) else 0
    # The walk reads plain lists: indexing numpy arrays from Python costs several times more per step.
    end_l, order_l, parent_l = end.tolist(), order.tolist(), parent.tolist()
    cursor, stop_at = first.tolist(), last.tolist()
    clip_start, clip_end = start.tolist(), end.tolist()
    segments: list[tuple[int, int, int]] = []
    cur, limit = root, clip_end[root]
    for _ in range(2 * n + 1):  # each span is entered once and left once
        k, stop = cursor[cur], stop_at[cur]
        while k < stop and end_l[order_l[k]] > limit:
            k += 1
        cursor[cur] = k
        if k < stop:
            child = order_l[k]
            cursor[cur] = k + 1
            # Clipped to its parent: a child cannot hold its parent up outside the parent's own time.
            c_end = end_l[child] if end_l[child] < clip_end[cur] else clip_end[cur]
            clip_end[child] = c_end
            c_start = clip_start[child] if clip_start[child] > clip_start[cur] else clip_start[cur]
            clip_start[child] = c_start if c_start < c_end else c_end
            if c_end < limit:
                segments.append((cur, c_end, limit))
            cur, limit = child, c_end
            continue
        if clip_start[cur] < limit or not segments:
            segments.append((cur, clip_start[cur], limit))
        if cur == root or parent_l[cur] < 0:
            break
        cur, limit = parent_l[cur], clip_start[cur]
    segments.reverse()
    rows, lo, hi = zip(*segments)
    # Arrow builds the segment dicts (a Python comprehension took ~2x as long for 200,000 of them).
    return pa.StructArray.from_arrays([ids.take(pa.array(rows, pa.int64())), pa.array(lo, pa.int64()), pa.array(hi, pa.int64())],
                                      names=["span_id", "start_us", "end_us"]).to_pylist()


def _arrow(values: Any, typ: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().cast(typ)
    if isinstance(values, pa.Array):
        return values.cast(typ)
    return pa.array(values, typ)
