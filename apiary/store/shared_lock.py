"""A lock many holders may share, or one may hold alone.

The DuckDB store's loader workers load different environments at once, each in a transaction of its
own (they share the lock); retention drops and rewrites every environment's partitions, so it waits
until no load runs and keeps new ones from starting (it holds the lock alone). Python's ``threading``
has no such lock.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class SharedLock:
    """Shared by any number of holders, or held by one alone; a waiting sole holder goes before new sharers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sharers = 0
        self._alone = False
        self._waiting_alone = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._alone or self._waiting_alone:
                self._cond.wait()
            self._sharers += 1
        try:
            yield
        finally:
            with self._cond:
                self._sharers -= 1
                if not self._sharers:
                    self._cond.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._cond:
            self._waiting_alone += 1
            try:
                while self._alone or self._sharers:
                    self._cond.wait()
            finally:
                self._waiting_alone -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._cond:
                self._alone = False
                self._cond.notify_all()
