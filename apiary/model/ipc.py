"""Arrow tables across the process boundary, as one Arrow IPC stream.

The decode workers hand every batch back to the server through a pipe.
Pickled column by column, a 512-span batch took ~780 us to pickle and
~475 us to unpickle -- in the server's GIL, at every request. As one IPC
stream it takes ~110 us to write and ~70 us to read, zero-copy over the
received bytes.

A batch rebuilt from a worker keeps the stream it arrived in, so the intake
log writes those bytes rather than encoding the same table again (~0.44 us
per span of the server's CPU).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


class PickledAsIPC:
    """For batches of ``(table, rejected, errors)``: pickled with their table as one IPC stream."""

    table: pa.Table
    rejected: int
    errors: list[str]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _rebuild, (type(self), self.ipc_stream(), self.rejected, self.errors)

    def ipc_stream(self) -> bytes:
        """The table as one IPC stream: the bytes it arrived in, while it is still that table."""
        arrived = getattr(self, "_arrived", None)
        if arrived is not None and arrived[0] is self.table:
            return arrived[1]
        return to_ipc(self.table)


def _rebuild(cls: type, data: bytes, rejected: int, errors: list[str]) -> Any:
    obj = cls(from_ipc(data), rejected, errors)
    obj._arrived = (obj.table, data)  # the table's buffers are views of ``data``: no extra memory
    return obj
