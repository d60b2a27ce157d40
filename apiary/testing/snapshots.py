"""Trace-shape snapshots: the tree of labels (`Trace.render`) stored once, compared on later runs.

A snapshot is a text file under ``__snapshots__/<test module>/`` beside the test, one per test (and
name), holding the indented tree with ids and timings left out, so it changes only when the shape of
the trace changes: a span renamed, gone, added, or under another parent. The first run writes it (and
says so); ``--apiary-update-snapshots`` rewrites it; every other run compares, showing a diff.
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path


class SnapshotWritten(UserWarning):
    """A snapshot was written (first run or ``--apiary-update-snapshots``): review and commit it."""


@dataclass
class SnapshotBook:
    directory: Path
    test_name: str
    update: bool = False

    def path(self, name: str | None = None) -> Path:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.test_name + (f"-{name}" if name else "")).strip("_")
        return self.directory / f"{stem}.txt"

    def stored(self, name: str | None = None) -> str | None:
        path = self.path(name)
        return path.read_text().rstrip("\n") if path.exists() and not self.update else None

    def write(self, text: str, name: str | None = None) -> Path:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        warnings.warn(SnapshotWritten(f"trace snapshot written: {path}"), stacklevel=3)
        return path


def diff(stored: str, actual: str, path: Path) -> str:
    lines = difflib.unified_diff(stored.splitlines(), actual.splitlines(), f"{path.name} (stored)", "this run", lineterm="")
    return "\n".join(lines)
