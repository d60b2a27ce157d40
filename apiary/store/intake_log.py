"""The intake log: where an ingest request's spans are committed before it is answered.

A DuckDB commit of a few hundred rows costs ~11 ms of CPU whatever its size and
writes every row twice (WAL, then checkpoint); a commit of whole 8,192-row
row groups is written once, straight into the file, at a third of the cost
per span (``bench/commit.py``). Ingest therefore commits a request to this
log -- one append and one fsync for every request that queued meanwhile,
the group commit -- and loads the log into DuckDB in bulk, off the request
path (``bulk_loader.py``). DuckDB records, in the same transaction as each
load, the last entry it holds; after a crash, start-up loads what follows.

Format: segment files ``<first seq>.log``, each a run of entries
``magic | seq | length | crc32 | body``, the body being the environment name,
the time the store accepted the batch (microseconds since the epoch) and the
batch as one Arrow IPC stream. The time rides in the entry rather than in the
batch, so a batch is still written in the bytes it arrived in, and a replay
after a crash loads it with the time it was first accepted. Entries written
before the time was kept (magic ``APIL``) replay without one. An append is acknowledged only once
fsync returns, so a torn entry at a segment's end was never acknowledged:
replay stops there and cuts it off. A segment goes once every entry in it
is in DuckDB.

A failed append (ENOSPC, EIO) is not acknowledged: it is cut back off its
segment when the disk allows, the segment is closed, and the next append
starts a new one, so appends work again, without a restart, as soon as
space is freed (``tests/ingest/test_disk_full.py``).
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import pyarrow as pa

from apiary.model import ipc

log = logging.getLogger(__name__)

_MAGIC_UNTIMED = b"APIL"  #: entries from before the arrival time was kept
_MAGIC = b"APIT"
_HEADER = struct.Struct("<4sQII")  # magic, seq, body length, crc32 of body
_ENV_LEN = struct.Struct("<H")
_ARRIVED = struct.Struct("<q")
#: The arrival time of an entry that has none (written as such, read back as None).
_NO_TIME = -(2**63)
#: A segment is closed and a new one started past this size, so released entries free their disk.
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    seq: int
    env: str
    table: pa.Table
    arrived_us: int | None = None


class IntakeLog:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._segments: list[int] = sorted(int(p.stem) for p in self.dir.glob("*.log"))
        self._file: BinaryIO | None = None
        self._size = 0
        self._lock = threading.Lock()  # appends (writer thread) against releases (loader thread)
        self.last_seq = 0

    # -- start-up -------------------------------------------------------------------------------

    def replay(self, after: int) -> Iterator[Entry]:
        """Every intact entry with a seq above ``after``, in order; a torn tail is cut off.

        Must run (to the end) before the first append: it finds the last seq.
        """
        for i, first in enumerate(self._segments):
            path = self._path(first)
            last_segment = i == len(self._segments) - 1
            with open(path, "rb") as f:
                data = f.read()
            offset = 0
            while offset < len(data):
                entry = _read_entry(data, offset)
                if entry is None:
                    log.warning("intake log %s: %d bytes after offset %d are not a whole entry; %s", path.name,
                                len(data) - offset, offset, "cut off (never acknowledged)" if last_segment else "skipped")
                    if last_segment:
                        with open(path, "r+b") as f:
                            f.truncate(offset)
                            os.fsync(f.fileno())
                    break
                seq, timed, body, offset = entry
                self.last_seq = max(self.last_seq, seq)
                if seq > after:
                    yield _decode_body(seq, timed, body)
        self.last_seq = max(self.last_seq, after)

    # -- writing --------------------------------------------------------------------------------

    def append(self, records: list[tuple[str, int | None, bytes]]) -> int:
        """Write the records (environment, arrival time in microseconds, batch as one Arrow IPC stream) as
        consecutive entries and fsync; returns the seq of the first."""
        with self._lock:
            return self._append(records)

    def _append(self, records: list[tuple[str, int | None, bytes]]) -> int:
        if self._file is None or self._size >= SEGMENT_BYTES:
            self._roll()
        assert self._file is not None
        first = self.last_seq + 1
        parts: list[bytes] = []
        for n, (env, arrived_us, stream) in enumerate(records):
            env_bytes = env.encode()
            prefix = _ENV_LEN.pack(len(env_bytes)) + env_bytes + _ARRIVED.pack(_NO_TIME if arrived_us is None else arrived_us)
            crc = zlib.crc32(stream, zlib.crc32(prefix))
            parts += (_HEADER.pack(_MAGIC, first + n, len(prefix) + len(stream), crc), prefix, stream)
        blob = b"".join(parts)
        try:
            _write_all(self._file, blob)
            os.fsync(self._file.fileno())
        except OSError:
            # Not acknowledged: cut the segment back to its last acknowledged entry if the disk lets
            # us, start a new segment either way, and never reuse these seqs.
            try:
                os.ftruncate(self._file.fileno(), self._size)
            except OSError:
                pass
            self._close_file()
            self.last_seq = first + len(records) - 1
            raise
        self._size += len(blob)
        self.last_seq = first + len(records) - 1
        return first

    def release(self, upto: int) -> None:
        """Delete the closed segments whose every entry has a seq <= ``upto`` (they are in DuckDB)."""
        with self._lock:
            self._release(upto)

    def _release(self, upto: int) -> None:
        current = self._segments[-1] if self._file is not None and self._segments else None
        keep: list[int] = []
        for i, first in enumerate(self._segments):
            following = self._segments[i + 1] if i + 1 < len(self._segments) else None
            if first != current and following is not None and following - 1 <= upto:
                self._path(first).unlink(missing_ok=True)
            else:
                keep.append(first)
        self._segments = keep

    def close(self) -> None:
        with self._lock:
            self._close_file()

    # -- internals ------------------------------------------------------------------------------

    def _roll(self) -> None:
        self._close_file()
        first = self.last_seq + 1
        path = self._path(first)
        # Unbuffered: a write that fails (ENOSPC) leaves nothing in a Python buffer for ``close`` to
        # flush and fail on again, which had left a closed file in place and failed every later append.
        self._file = open(path, "ab", buffering=0)
        self._size = path.stat().st_size
        if first not in self._segments:
            self._segments.append(first)
        _fsync_dir(self.dir)

    def _close_file(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:  # unbuffered: nothing is lost; the descriptor is released either way
                log.warning("intake log: closing a segment failed", exc_info=True)

    def _path(self, first: int) -> Path:
        return self.dir / f"{first:016d}.log"


def _write_all(file: BinaryIO, blob: bytes) -> None:
    """An unbuffered write may take part of the bytes: write the rest until all are written."""
    view = memoryview(blob)
    while view:
        written = file.write(view)
        if not written:
            raise OSError(errno.ENOSPC, "no byte written")
        view = view[written:]


def _read_entry(data: bytes, offset: int) -> tuple[int, bool, bytes, int] | None:
    """(seq, whether the body holds an arrival time, body, next offset), or None for a torn or foreign entry."""
    end = offset + _HEADER.size
    if end > len(data):
        return None
    magic, seq, length, crc = _HEADER.unpack_from(data, offset)
    if magic not in (_MAGIC, _MAGIC_UNTIMED) or end + length > len(data):
        return None
    body = data[end:end + length]
    if zlib.crc32(body) != crc:
        return None
    return seq, magic == _MAGIC, body, end + length


def _decode_body(seq: int, timed: bool, body: bytes) -> Entry:
    (n,) = _ENV_LEN.unpack_from(body, 0)
    start = _ENV_LEN.size
    env = body[start:start + n].decode()
    start += n
    arrived_us = None
    if timed:
        (stamp,) = _ARRIVED.unpack_from(body, start)
        arrived_us = None if stamp == _NO_TIME else stamp
        start += _ARRIVED.size
    return Entry(seq, env, ipc.from_ipc(body[start:]), arrived_us)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
