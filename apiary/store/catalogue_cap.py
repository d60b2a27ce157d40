"""How many columns one dataset's catalogue lists, on either store.

Every key a span sends is listed in its dataset's catalogue (``dataset_columns``, and a copy in the
store's memory), typed column or not: that is how a query finds a key that overflowed into ``_attrs``.
A client that invents keys (an id in an attribute name) grew that list without end: with 200 new
keys a span, ``bench/invented_keys.py`` saw 648,212 columns listed after 60 s, the server at 797 MiB
and growing 70 MiB per 1,000 spans, and ingest slowing to a stop as each load wrote more of the list.
It is also what the garbage collector walks: under the fairness bench's flood its full collections
held the GIL for 40-50 ms while every environment's requests waited.

So a dataset lists at most ``MAX_DATASET_COLUMNS`` (name, type) pairs (``APIARY_MAX_DATASET_COLUMNS``),
as Honeycomb, too, limits the columns of a dataset. Past the cap a new key's values are still stored (in the
span's ``_attrs``, shown with the span), but the key is not listed and so cannot be queried by name;
the keys listed before keep being updated, and the core fields (``duration_ms``, ``name`` ...) are always
listed. The first refusal per dataset is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from apiary.model.span import CORE_NAMES

log = logging.getLogger(__name__)

MAX_DATASET_COLUMNS = 10_000


class CatalogueCap:
    """Says whether a dataset that lists ``listed`` columns may list one more; logs the first no per dataset."""

    def __init__(self, limit: int = MAX_DATASET_COLUMNS) -> None:
        self.limit = limit
        self._full: set[tuple[str, str]] = set()  # bounded by the number of datasets

    def in_order(self, columns: Collection[tuple[str, str]], listed: int) -> Iterable[tuple[str, str]]:
        """A load's (name, type) columns for a dataset that lists ``listed``: when they may not all fit, the
        core fields first and the rest by name, so that which keys are left out does not depend on a set's order."""
        if listed + len(columns) <= self.limit:
            return columns
        return sorted(columns, key=lambda c: (c[0] not in CORE_NAMES, c))

    def admits(self, env: str, dataset: str, name: str, listed: int) -> bool:
        """Whether a new ``name`` may be listed beside ``listed`` others (a core field always may)."""
        if listed < self.limit or name in CORE_NAMES:
            return True
        if (env, dataset) not in self._full:
            self._full.add((env, dataset))
            log.warning("dataset %r of environment %r lists %d columns (APIARY_MAX_DATASET_COLUMNS): its new keys are "
                        "stored with their spans but not listed, and cannot be queried by name", dataset, env, self.limit)
        return False
