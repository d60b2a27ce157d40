"""The array-based critical path against Jaeger's walk written out step by step, on random span trees."""

from __future__ import annotations

import random

import pytest

from apiary.model.critical_path import critical_path


def jaeger_walk(ids: list[str], parents: list[str | None], starts: list[int], durations: list[float]) -> list[tuple[str, int, int]]:
    """The walk as Jaeger's UI does it, one span at a time: children are clipped to their parent first (a child
    running past its parent's end counts as ending there), then the last-finishing child is taken each time."""
    n = len(ids)
    index = {sid: i for i, sid in reversed(list(enumerate(ids)))}
    parent = [index.get(p, -1) if p else -1 for p in parents]
    parent = [-1 if p == i else p for i, p in enumerate(parent)]
    end = [s + round(d * 1000) for s, d in zip(starts, durations)]
    children: list[list[int]] = [[] for _ in range(n)]
    for i, p in enumerate(parent):
        if p >= 0:
            children[p].append(i)
    roots = [i for i in range(n) if parent[i] < 0]
    root = min(roots, key=lambda i: (-end[i], starts[i], roots.index(i)))
    cs, ce = list(starts), list(end)
    todo = [root]
    while todo:
        p = todo.pop()
        kept = []
        for c in children[p]:
            ce[c] = min(ce[c], ce[p])
            cs[c] = max(cs[c], cs[p])
            if cs[c] <= ce[c]:  # wholly outside its parent's time: left out, with all below it
                kept.append(c)
                todo.append(c)
        children[p] = kept
    for kids in children:
        kids.sort(key=lambda c: (-end[c], c))
    segments: list[tuple[int, int, int]] = []
    cursor = [0] * n
    cur, limit = root, ce[root]
    while True:
        kids = children[cur]
        while cursor[cur] < len(kids) and ce[kids[cursor[cur]]] > limit:  # clipped: an overflowing child still counts
            cursor[cur] += 1
        if cursor[cur] < len(kids):
            child = kids[cursor[cur]]
            cursor[cur] += 1
            if ce[child] < limit:
                segments.append((cur, ce[child], limit))
            cur, limit = child, ce[child]
            continue
        if cs[cur] < limit:
            segments.append((cur, cs[cur], limit))
        if cur == root:
            break
        cur, limit = parent[cur], cs[cur]
    if not segments:
        segments = [(root, cs[root], ce[root])]
    return [(ids[i], lo, hi) for i, lo, hi in reversed(segments)]


@pytest.mark.parametrize("seed", range(40))
def test_random_trees_give_the_walks_path(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([1, 2, 5, 30, 200])
    ids = [f"{i:016x}" for i in range(n)]
    parents: list[str | None] = [None]
    starts, durations = [0], [float(rng.choice([0, 50, 100, 1000]))]
    for i in range(1, n):
        p = rng.randrange(i)
        parents.append(ids[p] if rng.random() > 0.05 else (None if rng.random() < 0.5 else "ffffffffffffffff"))
        grid = rng.choice([1, 1000])  # a coarse grid makes ties: equal starts and ends
        starts.append(starts[p] + rng.randrange(-20, 200) * grid // 10 * 10)
        durations.append(float(rng.randrange(0, 120) * grid // 1000))
    got = critical_path(ids, parents, starts, durations)
    assert list(zip(got["span_ids"], got["start_us"], got["end_us"])) == jaeger_walk(ids, parents, starts, durations)
