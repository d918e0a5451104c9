"""snapshots.bin: a run's parameters at chosen epochs, for the pictures of what it learned.

An append-only record file, because rewriting a growing npz at every snapshot
costs far more than appending one record (docs/performance.md has the figures).
The file starts with a header (magic, a uint32 length, then JSON: the parameters'
names, shapes and dtype); each record is a fixed header (magic ``SNAP``, epoch,
payload size, CRC-32 of the payload) and the parameters' raw bytes, handed to the
OS as it is appended (no buffer of the process's own holds it).

Reading trusts nothing in the file (it may come from someone else, or a bad disk):
- The header is checked before anything it claims is allocated: a JSON object whose ``names``
  are strings, ``shapes`` one list of non-negative integers per name, ``dtype``
  float32 or float64, and one snapshot under PAYLOAD_LIMIT bytes. Anything else
  makes the file unreadable: a ConfigError naming it. An empty file, or one that
  ends inside its header (a run killed in its first moment), has no snapshots.
- Records are independent. Every record is the same length (the header fixes the
  payload size), and one is intact when its magic, payload size and CRC-32 match
  and its epoch is not negative. A damaged one is skipped with a warning naming its
  byte offset, and the reader resynchronises on the next ``SNAP`` whose record is
  intact, so one flipped byte costs one record. The CRC covers only the payload,
  so a damaged epoch field shows as an epoch out of order: epochs rise along the
  file (a resumed run first cuts the records after its checkpoint), and the records
  off the longest rising run are skipped as damaged too (an epoch field damaged into
  one that still rises cannot be told from a good one).
- Torn, not damaged: the bytes after the last intact record, when they are fewer
  than a whole record and begin as the writer would have (a prefix of ``SNAP``,
  and of the payload size). That is what a run killed mid-write (SIGKILL, a full
  disk) leaves; it is ignored silently and cut when the run is resumed. Anything
  else after the last intact record (a whole record that fails its CRC, bytes
  that are not a record) is damage, and warned about.

Which epochs: ``train.snapshot_every``. ``auto`` keeps epoch 0, the last epoch
and about AUTO_COUNT epochs between them, spaced quadratically (densely early,
where most change happens), and fewer for a large network so that the file
stays under about MAX_BYTES; an integer N keeps every N-th epoch; 0 none.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .registry import ConfigError
from .runs import regular, write_all, writing

FILE_NAME = "snapshots.bin"
MAGIC = b"NNTRAIN-SNAPSHOTS-1\n"
LENGTH = struct.Struct("<I")  # the JSON header's length, after MAGIC
RECORD = struct.Struct("<4sqQI")  # b"SNAP", epoch, payload bytes, crc32 of the payload
RECORD_MAGIC = b"SNAP"
SIZE_FIELD = slice(12, 20)  # where RECORD's payload size lies
AUTO_COUNT = 50
MAX_BYTES = 20_000_000
HEADER_LIMIT = 1 << 20  # bytes of JSON header; a real one is a few hundred
PAYLOAD_LIMIT = 1 << 30  # bytes of one snapshot
RESYNC_WORK = 4  # a search for the next intact record reads at most this many times the file
FLOAT_KINDS = {(np.dtype(t).kind, np.dtype(t).itemsize) for t in ("f4", "f8")}


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
    """Appends snapshots of a network's parameters to one file (see the module docstring).
    The file stays open from the first record to ``close()`` (or the with block's end): one
    open a run, not one a snapshot. Each record goes to the OS in write calls of its own,
    so a killed process loses none already appended."""

    def __init__(self, path: Path, names: list[str], params: list[np.ndarray]):
        self.path = regular(path)  # never written through a symlink
        self.size = self.path.stat().st_size if self.path.is_file() else 0
        self.fd: int | None = None
        if self.size == 0:
            header = json.dumps({"names": names, "shapes": [list(p.shape) for p in params],
                                 "dtype": params[0].dtype.str}).encode()
            try:
                self._append(MAGIC + LENGTH.pack(len(header)) + header)
            except BaseException:
                self.close()
                raise

    def __enter__(self) -> SnapshotFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _append(self, data: bytes) -> None:
        with writing(self.path):
            try:
                if self.fd is None:
                    self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                                      | os.O_NOFOLLOW, 0o644)
                write_all(self.fd, data)
            except BaseException:  # a full disk, or Ctrl-C mid-write: cut the torn record off,
                if self.fd is not None:  # so that later records stay readable
                    os.ftruncate(self.fd, self.size)
                raise
        self.size += len(data)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def append(self, epoch: int, params: list[np.ndarray]) -> None:
        payload = b"".join(np.ascontiguousarray(p).tobytes() for p in params)
        self._append(RECORD.pack(RECORD_MAGIC, epoch, len(payload), zlib.crc32(payload))
                     + payload)


# -- reading: the header, then each record on its own (see the module docstring) ------------


@dataclass(frozen=True)
class Layout:
    """What the header says every record holds, and where the records start."""

    shapes: list[tuple[int, ...]]
    dtype: np.dtype
    start: int

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    @property
    def payload(self) -> int:
        return sum(self.sizes) * self.dtype.itemsize

    @property
    def record(self) -> int:
        return RECORD.size + self.payload

    @property
    def size_field(self) -> bytes:
        """The payload size as a record's header holds it."""
        return RECORD.pack(RECORD_MAGIC, 0, self.payload, 0)[SIZE_FIELD]


def _is_shape(shape) -> bool:
    return isinstance(shape, list) and all(
        type(n) is int and 0 <= n <= PAYLOAD_LIMIT for n in shape)  # bool is not a size


def _layout(header, start: int) -> Layout:
    """The header's layout; a ValueError saying what is wrong with it."""
    if not isinstance(header, dict):
        raise ValueError(f"its header is a JSON {type(header).__name__}, not an object")
    names, shapes, dtype = (header.get(k) for k in ("names", "shapes", "dtype"))
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise ValueError("its header's names are not a list of parameter names")
    if not (isinstance(shapes, list) and len(shapes) == len(names)
            and all(map(_is_shape, shapes))):
        raise ValueError("its header's shapes are not one list of sizes (integers >= 0) "
                         "per parameter name")
    try:
        dt = np.dtype(dtype) if isinstance(dtype, str) else None
    except TypeError:
        dt = None
    if dt is None or (dt.kind, dt.itemsize) not in FLOAT_KINDS or dt.shape or dt.names:
        raise ValueError(f"its header's dtype {str(dtype)[:40]!r} is not float32 or float64")
    layout = Layout([tuple(s) for s in shapes], dt, start)
    if layout.payload > PAYLOAD_LIMIT:
        raise ValueError(f"its header's shapes make {layout.payload} bytes per snapshot, "
                         f"more than {PAYLOAD_LIMIT}")
    return layout


def _header(data: bytes, path: Path) -> Layout | None:
    """The file's layout; None for an empty or torn header (a run killed in its first moment,
    before any record); a ConfigError naming the file for a header that is not one."""
    start = len(MAGIC) + LENGTH.size
    if len(data) < len(MAGIC) and MAGIC.startswith(data):
        return None
    try:
        if not data.startswith(MAGIC):
            raise ValueError(f"it does not start with {MAGIC[:-1].decode()}: not a snapshot file")
        if len(data) < start:
            return None
        size = LENGTH.unpack_from(data, len(MAGIC))[0]
        if start + size > len(data):
            if RECORD_MAGIC not in data[start:]:
                return None  # torn: nothing was written after it
            raise ValueError(f"its header's length ({size} bytes) runs past the end of the file")
        if size > HEADER_LIMIT:
            raise ValueError(f"its header is {size} bytes, more than {HEADER_LIMIT}")
        try:
            header = json.loads(data[start:start + size])
        except (ValueError, RecursionError):
            raise ValueError("its header is not JSON") from None
        return _layout(header, start + size)
    except ValueError as err:
        raise ConfigError(f"unreadable snapshot file: {err}", str(path)) from None


def _problem(data: bytes, offset: int, layout: Layout) -> str | None:
    """Why the record at ``offset`` is not intact; None when it is."""
    if offset + RECORD.size > len(data):
        return "its record header runs past the end of the file"
    magic, epoch, size, crc = RECORD.unpack_from(data, offset)
    if magic != RECORD_MAGIC:
        return "no SNAP magic"
    if size != layout.payload:
        return f"payload size {size}, where the header's shapes make {layout.payload}"
    if offset + layout.record > len(data):
        return "its payload runs past the end of the file"
    if epoch < 0:
        return f"a negative epoch, {epoch}"
    if zlib.crc32(memoryview(data)[offset + RECORD.size:offset + layout.record]) != crc:
        return "its payload fails its CRC-32"
    return None


def _torn(data: bytes, offset: int, layout: Layout) -> bool:
    """Whether the bytes from ``offset`` to the end are a record the writer had begun: fewer
    than a whole one, starting with (a prefix of) the magic and the payload size."""
    tail = data[offset:offset + RECORD.size]
    return (len(data) - offset < layout.record and RECORD_MAGIC.startswith(tail[:4])
            and layout.size_field.startswith(tail[SIZE_FIELD]))


def _next_intact(data: bytes, start: int, layout: Layout, budget: list[int]) -> int | None:
    """The offset of the next intact record from ``start``, if one is found within the budget
    of payload bytes to check (a file full of forged SNAP headers must not take hours)."""
    at = data.find(RECORD_MAGIC, start)
    while at != -1 and budget[0] > 0:
        if _problem(data, at, layout) is None:
            return at
        if data[at + SIZE_FIELD.start:at + SIZE_FIELD.stop] == layout.size_field:  # CRC'd
            budget[0] -= layout.payload
        at = data.find(RECORD_MAGIC, at + 1)
    return None


@dataclass
class Scan:
    """Where the intact records are (offset, epoch), and the damaged bytes (offset, length,
    why)."""

    records: list[tuple[int, int]] = field(default_factory=list)
    damage: list[tuple[int, int, str]] = field(default_factory=list)


def _scan(data: bytes, layout: Layout) -> Scan:
    """Every intact record, each found on its own; damaged bytes skipped, a torn tail ignored."""
    scan, offset, budget = Scan(), layout.start, [RESYNC_WORK * len(data)]
    while offset < len(data):
        problem = _problem(data, offset, layout)
        if problem is None:
            scan.records.append((offset, RECORD.unpack_from(data, offset)[1]))
            offset += layout.record
            continue
        found = _next_intact(data, offset + 1, layout, budget)
        if found is None and _torn(data, offset, layout):
            break
        end = len(data) if found is None else found
        scan.damage.append((offset, end - offset, problem))
        if found is None:
            break
        offset = found
    return _rising(scan, layout.record)


def _rising(scan: Scan, length: int) -> Scan:
    """Keep the longest run of records whose epochs rise along the file (of equal runs, the one
    with the smaller epochs: one damaged epoch field off it costs only its own record)."""
    tails, ends, before = [], [], []  # patience sorting: the smallest end of each run length
    for i, (_, epoch) in enumerate(scan.records):
        k = bisect.bisect_left(tails, epoch)
        tails[k:k + 1], ends[k:k + 1] = [epoch], [i]
        before.append(ends[k - 1] if k else None)
    keep, i = set(), ends[-1] if ends else None
    while i is not None:
        keep.add(i)
        i = before[i]
    damage = scan.damage + [(offset, length, f"epoch {epoch} is out of order: its epoch "
                             "field is damaged") for i, (offset, epoch) in enumerate(scan.records)
                            if i not in keep]
    return Scan([r for i, r in enumerate(scan.records) if i in keep], sorted(damage))


def _read(path: Path, done: str = "skipped") -> tuple[bytes, Layout, Scan] | None:
    """The file's bytes, layout and records, each damaged record warned about (``done``: what
    becomes of it); None when there is no file or no header yet."""
    if not regular(path).is_file():
        return None
    data = path.read_bytes()
    layout = _header(data, path)
    if layout is None:
        return None
    scan = _scan(data, layout)
    for offset, length, why in scan.damage:
        warnings.warn(f"{path}: damaged snapshot record at byte {offset} {done} ({length} "
                      f"bytes): {why}", stacklevel=3)
    return data, layout, scan


@dataclass
class SnapshotRead:
    """What a snapshot file holds: its snapshots in the order written, and whether damaged
    records were skipped after the last of them (so that it may not be the run's last)."""

    snapshots: list[Snapshot]
    damaged_after_last: bool = False


def load_snapshots(path: str | Path) -> SnapshotRead:
    """Every intact snapshot in the file; a damaged record is skipped with a warning naming its
    byte offset, a torn last record silently. A missing file, or a header torn by a run killed
    in its first moment, has none; a header that is not one is a ConfigError naming the file."""
    found = _read(Path(path))
    if found is None:
        return SnapshotRead([])
    data, layout, scan = found
    bounds = np.cumsum([0, *layout.sizes])
    snaps = []
    for offset, epoch in scan.records:
        flat = np.frombuffer(data, layout.dtype, int(bounds[-1]), offset + RECORD.size)
        snaps.append(Snapshot(int(epoch), [flat[a:b].reshape(s).copy() for a, b, s in
                                           zip(bounds[:-1], bounds[1:], layout.shapes)]))
    last = scan.records[-1][0] if scan.records else -1
    return SnapshotRead(snaps, any(offset > last for offset, _, _ in scan.damage))


def read_snapshots(path: str | Path) -> list[Snapshot]:
    """The snapshots of ``load_snapshots``."""
    return load_snapshots(path).snapshots


def truncate_snapshots(path: Path, last_epoch: int) -> None:
    """Keep the intact records up to ``last_epoch``, and drop the later ones, damaged bytes
    and a torn last record: a resumed run goes on from its checkpoint as metrics.csv does. The
    file is replaced (a temporary file beside it, renamed over it) only when that changes it;
    a header torn before any record leaves an empty file, which the run writes anew."""
    path = Path(path)
    if not path.is_file():
        return
    found = _read(path, "dropped from the file")
    if found is None:
        data, kept = path.read_bytes(), b""
    else:
        data, layout, scan = found
        kept = data[:layout.start] + b"".join(
            data[offset:offset + layout.record] for offset, epoch in scan.records
            if epoch <= last_epoch)
    if kept != data:
        _replace(path, kept)


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``: a crash
    leaves the old file or the new one, and a symlink at ``path`` is replaced, not written
    through."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path):
        try:
            tmp.unlink(missing_ok=True)
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


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

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
