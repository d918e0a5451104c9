"""snapshots.bin: a run's parameters at chosen epochs, for the pictures of what it learned.

An append-only record file, because rewriting a growing npz at every snapshot
costs far more than appending one record (docs/performance.md has the figures).
The file starts with a header (magic, then the parameters' names, shapes and
dtype as JSON); each record is a fixed header (magic, epoch, payload size,
CRC-32 of the payload) and the parameters' raw bytes, written with one call
and flushed. A run killed mid-write (SIGKILL, a full disk) leaves at most a
torn last record, which the reader ignores: everything before it is read.

Which epochs: ``train.snapshot_every``. ``auto`` keeps epoch 0, the last epoch
and about AUTO_COUNT epochs between them, spaced quadratically (densely early,
where most change happens), and fewer for a large network so that the file
stays under about MAX_BYTES; an integer N keeps every N-th epoch; 0 none.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .runs import writing

FILE_NAME = "snapshots.bin"
MAGIC = b"NNTRAIN-SNAPSHOTS-1\n"
RECORD = struct.Struct("<4sqQI")  # b"SNAP", epoch, payload bytes, crc32 of the payload
RECORD_MAGIC = b"SNAP"
AUTO_COUNT = 50
MAX_BYTES = 20_000_000


def planned_epochs(every: int | str, epochs: int, bytes_per_snapshot: int) -> set[int] | None:
    """The epochs ``every`` keeps of a run of ``epochs`` (the last is added by the
    SnapshotLog callback wherever the run ends). None: every N-th epoch (an integer), checked on the fly."""
    if every != "auto":
        return None
    room = max(0, MAX_BYTES // max(bytes_per_snapshot, 1) - 2)  # epoch 0 and last always
    count = min(AUTO_COUNT, room)
    inner = {round(epochs * (i / (count + 1)) ** 2) for i in range(1, count + 1)}
    return ({0, epochs} | inner) if count else {0, epochs}


@dataclass
class Snapshot:
    epoch: int
    params: list[np.ndarray]


class SnapshotFile:
    """Appends snapshots of a network's parameters to one file (see the module docstring)."""

    def __init__(self, path: Path, names: list[str], params: list[np.ndarray]):
        self.path = Path(path)
        self.size = self.path.stat().st_size if self.path.is_file() else 0
        if self.size == 0:
            header = json.dumps({"names": names, "shapes": [list(p.shape) for p in params],
                                 "dtype": params[0].dtype.str}).encode()
            self._append(MAGIC + struct.pack("<I", len(header)) + header)

    def _append(self, data: bytes) -> None:
        with writing(self.path):
            try:
                with open(self.path, "ab") as f:
                    f.write(data)
            except BaseException:  # a full disk, or Ctrl-C mid-write: cut the torn record off,
                os.truncate(self.path, self.size)  # so that later records stay readable
                raise
        self.size += len(data)

    def append(self, epoch: int, params: list[np.ndarray]) -> None:
        payload = b"".join(np.ascontiguousarray(p).tobytes() for p in params)
        self._append(RECORD.pack(RECORD_MAGIC, epoch, len(payload), zlib.crc32(payload))
                     + payload)


def _header(data: bytes) -> tuple[dict, int] | None:
    """The file's header and where the records start; None for a torn or foreign header."""
    start = len(MAGIC) + 4
    if not data.startswith(MAGIC) or len(data) < start:
        return None
    size = struct.unpack_from("<I", data, len(MAGIC))[0]
    try:
        return json.loads(data[start:start + size]), start + size
    except (ValueError, UnicodeDecodeError):
        return None


def _records(data: bytes):
    """(epoch, payload, end offset) of each whole record, stopping at the first torn one."""
    found = _header(data)
    if found is None:
        return
    offset = found[1]
    while offset + RECORD.size <= len(data):
        magic, epoch, size, crc = RECORD.unpack_from(data, offset)
        end = offset + RECORD.size + size
        payload = data[offset + RECORD.size:end]
        if magic != RECORD_MAGIC or end > len(data) or zlib.crc32(payload) != crc:
            return
        yield epoch, payload, end
        offset = end


def read_snapshots(path: str | Path) -> list[Snapshot]:
    """Every whole snapshot in the file, in the order written; a torn last record is ignored.
    A missing file has none."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    found = _header(data)
    if found is None:
        return []
    header = found[0]
    dtype = np.dtype(header["dtype"])
    sizes = [math.prod(s) for s in header["shapes"]]
    snaps = []
    for epoch, payload, _ in _records(data):
        flat = np.frombuffer(payload, dtype=dtype)
        if flat.size != sum(sizes):
            break
        bounds = np.cumsum([0, *sizes])
        snaps.append(Snapshot(int(epoch), [flat[a:b].reshape(s).copy() for a, b, s in
                                           zip(bounds[:-1], bounds[1:], header["shapes"])]))
    return snaps


def truncate_snapshots(path: Path, last_epoch: int) -> None:
    """Drop the records after ``last_epoch`` (and a torn last record): a resumed run goes on
    from its checkpoint as metrics.csv does."""
    if not path.is_file():
        return
    data = path.read_bytes()
    found = _header(data)
    keep = found[1] if found else 0
    for epoch, _, end in _records(data):
        if epoch > last_epoch:
            break
        keep = end
    if keep < len(data):
        with writing(path):
            os.truncate(path, keep)


class Snapshots:
    """Which epochs to keep (``due``) and keeping them: what the SnapshotLog callback uses."""

    def __init__(self, path: Path, every: int | str, epochs: int, net):
        params = net.parameters()
        self.every, self.net = every, net
        kept = read_snapshots(path) if every != 0 else []  # a resumed run's, up to its checkpoint
        self.last = kept[-1].epoch if kept else None
        self.planned = planned_epochs(every, epochs, sum(p.nbytes for p in params))
        self.file = SnapshotFile(path, net.parameter_names(), params) if every != 0 else None

    def due(self, epoch: int) -> bool:
        if self.file is None or epoch == self.last:
            return False
        return epoch in self.planned if self.planned is not None else epoch % self.every == 0

    def save(self, epoch: int) -> None:
        """Keep the parameters at ``epoch`` (once per epoch; nothing with snapshot_every 0)."""
        if self.file is not None and epoch != self.last:
            self.file.append(epoch, self.net.parameters())
            self.last = epoch
