"""Query results as JSON bytes, the form the Query Data API sends and the history keeps.

orjson writes the document; a result's ``Series`` writes itself from its
columns (see ``apiary.query.series``), and a result read back from the
history goes out as the text it was stored as, not parsed and re-encoded.
"""

from __future__ import annotations

from typing import Any

import orjson

from apiary.query.series import Series

Stored = orjson.Fragment


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Series):
        return orjson.Fragment(value.to_json())
    raise TypeError(f"{type(value).__name__} is not JSON")
