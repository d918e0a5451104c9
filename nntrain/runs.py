"""Run folders and the files in them: created atomically, written so that a crash loses nothing.

runs/<name>/<YYYYmmdd-HHMMSS>-<6 hex>/
  config.yaml     the resolved config
  data.npz        the preprocessor fitted on the training part
  metrics.csv     one row per epoch, flushed as it is written
  layers.csv      per-layer diagnostics every train.diagnostics_every epochs
  summary.json    status and figures; written at the start, replaced atomically at the end
  checkpoint.npz  the latest state to resume from, replaced atomically
  snapshots.bin   parameter snapshots for pictures (nntrain/snapshots.py)
  model.npz       the parameters (W1, b1, ...), loaded with allow_pickle=False

``RunFolder`` names them and writes them (the training callbacks call it); the readers
below read them back for predict, evaluate, resume, plot and report.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
import os
import re
import shutil
import stat
import time
from pathlib import Path

import numpy as np
import yaml

from .registry import ConfigError, did_you_mean, label, shorten
from .yamlsafe import safe_load


def new_run_dir(root: str | Path, name: str, prefix: str = "") -> Path:
    """A fresh folder runs/<name>/<prefix><time>-<6 hex>; mkdir fails if it exists, so two runs
    never share one."""
    parent = Path(root) / name
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = parent / f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # the same second and the same 24 random bits: draw again
            continue


def check_out_dir(out: str | Path) -> Path:
    """``--out DIR``: DIR may not exist yet or be empty; a non-empty folder is refused."""
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError("exists and is not an empty folder; choose a new one", f"--out {path}")
    return path


CLAIM = ".nntrain-claim"  # created with O_EXCL in an --out folder: its owner's mark


def claim_out_dir(path: Path) -> Path:
    """Take ``--out DIR`` for this process alone, atomically: of several processes claiming the
    same folder at the same moment exactly one succeeds.

    Creating the marker file with O_EXCL is the atomic step, whether this process made the
    folder (mkdir) or found it empty; a folder holding anything but the marker is refused.
    """
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise ConfigError("is being used by another run; choose a new folder",
                          f"--out {path}") from None
    if any(p.name != CLAIM for p in path.iterdir()):
        (path / CLAIM).unlink()
        raise ConfigError("is not empty; choose a new folder", f"--out {path}")
    return path


LOCK = ".nntrain-lock"  # a run folder being written: its writer's host, pid and start time


class Lock:
    """One writer per folder (SQLite's and git's lock files): a file made with O_EXCL holding the
    writer's host, pid and start time. A lock whose process is gone (same host) is stale and
    taken over with a note on stderr; another host's is refused unless ``force``
    (``--break-lock``). Taken again by the process that holds it, it is already held."""

    def __init__(self, folder: Path):
        self.path, self.held = Path(folder) / LOCK, False

    def take(self, force: bool = False) -> None:
        mine = {"host": socket_host(), "pid": os.getpid(), "started": time.time()}
        # the lock appears whole or not at all: written beside it, then linked into place
        # (os.link fails if it exists), so no reader ever sees it empty
        tmp = self.path.with_name(f"{LOCK}.{os.getpid()}.new")
        with new_file(tmp) as f:
            f.write(json.dumps(mine).encode())
        try:
            for _ in range(3):  # a stale lock is taken over, then the link tried again
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    holder = self.holder()
                    if holder.get("host") == mine["host"] and holder.get("pid") == mine["pid"]:
                        return  # this process holds it already (resume, then its training)
                    self.take_over(holder, force)
                    continue
                self.held = True
                return
        finally:
            tmp.unlink(missing_ok=True)
        raise ConfigError("cannot be locked: another process keeps taking it", str(self.path))

    def holder(self) -> dict:
        """Who holds it: {} when nobody does, or when what is there is not a lock nntrain
        wrote (a link is not followed, a pipe not waited on: only a regular file is read)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return {}
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return {}
            holder = json.loads(os.read(fd, 4096))
        except (OSError, ValueError):
            return {}
        finally:
            os.close(fd)
        return holder if isinstance(holder, dict) else {}

    def take_over(self, holder: dict, force: bool) -> None:
        """Remove a stale lock (or, ``force``d, a live one); else refuse naming its writer."""
        pid, host = holder.get("pid"), holder.get("host")
        alive = writer_alive(holder)
        if alive and not force:
            where = f"on {host}" if host != socket_host() else "on this machine"
            raise ConfigError(f"is being written by process {pid} {where} (lock file {LOCK}); "
                              "wait for it to end, or --break-lock if it is gone", str(self.path.parent))
        import sys

        print(f"note: {self.path.parent}: took over the lock of process {pid} on {host} "
              f"({'forced' if alive else 'it is gone'})", file=sys.stderr)
        stale = self.path.with_name(f"{LOCK}.{os.getpid()}.stale")
        try:
            os.replace(self.path, stale)  # one taker wins; the others find it gone and retry
            stale.unlink()
        except FileNotFoundError:
            pass

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def writer_alive(holder: dict) -> bool:
    """A lock's writer (``Lock.holder()``) may still write: a live process on this machine, or
    one on another (which cannot be looked up from here). No holder: none."""
    host = holder.get("host")
    return process_alive(holder.get("pid")) if host == socket_host() else host is not None


def remove(path: Path) -> None:
    """Whatever is at ``path`` gone: a folder with everything in it, or a file or a symbolic
    link (never followed: a planted link's target is left alone). Nothing there is fine."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def socket_host() -> str:
    import socket

    return socket.gethostname()


def process_alive(pid) -> bool:
    """Whether a process with this pid exists here (a pid that is not a positive int: no)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        pass
    return True


class RunFolder:
    """One run's folder: the names of its files, the claim on it, atomic writes, reading it back.

    Training writes it through the callbacks (nntrain/callbacks.py); predict, evaluate,
    resume, plot and report read it through here.
    """

    CONFIG, DATA, SUMMARY, MODEL = "config.yaml", "data.npz", "summary.json", "model.npz"
    METRICS, LAYERS, CHECKPOINT, SNAPSHOTS = ("metrics.csv", "layers.csv", "checkpoint.npz",
                                              "snapshots.bin")
    FILES = (CONFIG, DATA, SUMMARY, MODEL, METRICS, LAYERS, CHECKPOINT, SNAPSHOTS)

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self.writer: Lock | None = None

    def open(self, out: str | Path | None, root: str | Path, config: dict,
             data_info: dict[str, np.ndarray], resumed: bool = False) -> None:
        """A new run's folder with config.yaml and data.npz: ``out`` (``--out DIR``: new or
        empty, claimed atomically), else runs/<name>/<time>-<id>. A resumed run's folder,
        ``out``, is used as it is (its callbacks drop the rows after the checkpoint)."""
        if resumed:
            self.path = Path(out)
            self.lock()
            return
        self.path = (claim_out_dir(check_out_dir(out)) if out is not None
                     else new_run_dir(root, config["name"]))
        self.lock()
        try:
            write_yaml(self.path / self.CONFIG, config)
            save_arrays(self.path / self.DATA, data_info)
        except BaseException:  # a full disk: no lock is left on a folder nobody writes
            self.release()
            raise

    def lock(self, force: bool = False) -> None:
        """Hold the folder for this process alone (see ``Lock``) until ``release``."""
        if self.writer is None:
            self.writer = Lock(self.path)
        self.writer.take(force)

    def release(self) -> None:
        if self.writer is not None:
            self.writer.release()

    def file(self, name: str) -> Path:
        """One of the folder's files, refused if it is not a regular file (see ``regular``)."""
        return regular(self.path / name)

    @property
    def snapshots_path(self) -> Path:
        return self.path / self.SNAPSHOTS

    def csv_log(self, name: str, columns: list[str], resumed_at: int | None = None) -> CsvLog:
        """A per-epoch CSV log: new, or a resumed run's with the rows after ``resumed_at``
        dropped."""
        if resumed_at is not None:
            truncate_csv(self.path / name, resumed_at)
        return CsvLog(self.path / name, columns, append=resumed_at is not None)

    SUMMARY_SLOT = 16384  # bytes summary.json takes from the start (padded with spaces)

    def write_summary(self, data: dict) -> None:
        """summary.json, replaced atomically; on a full disk, where a new file cannot be made,
        overwritten in place within the space its first version took (padded to SUMMARY_SLOT
        bytes), so that how the run ended is recorded even then."""
        path = self.path / self.SUMMARY
        text = (to_json(data) + "\n").ljust(self.SUMMARY_SLOT)
        try:
            write_atomic(path, text)
        except WriteError:
            if not overwrite_in_place(path, text.rstrip() + "\n"):
                raise

    def read_summary(self) -> dict | None:
        return read_summary(self.path)

    def read_metrics(self) -> list[dict]:
        return read_metrics(self.path)

    def save_model(self, names: list[str], arrays: list[np.ndarray]) -> None:
        save_model(self.path / self.MODEL, names, arrays)

    def write_checkpoint(self, params: dict[str, np.ndarray], state: dict, optimizer: dict,
                         best: dict[str, np.ndarray] | None) -> None:
        write_checkpoint(self.path / self.CHECKPOINT, params, state, optimizer, best)

    def read_checkpoint(self, shapes: dict[str, tuple] | None = None) -> dict:
        return read_checkpoint(self.file(self.CHECKPOINT), shapes)


class WriteError(Exception):
    """A run's file could not be written (a full disk, a folder that went away): one line."""


@contextlib.contextmanager
def writing(path: Path):
    """OSError while writing ``path`` -> WriteError("no space left on device while writing
    <path>"), and a half-written temporary file is removed."""
    try:
        yield
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
        raise WriteError(f"{reason} while writing {path}") from err


def new_file(path: Path):
    """A file object for a new file at ``path``, made with O_EXCL | O_NOFOLLOW: nothing that
    was there (a planted symlink) is written through."""
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644),
                     "wb")


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename over it: readers never see half,
    and a full disk leaves the previous file as it was. A symlink at ``path`` is replaced, not
    written through."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path):
        try:
            with new_file(tmp) as f:
                f.write(text.encode())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def overwrite_in_place(path: Path, text: str) -> bool:
    """Write ``text`` over the regular file at ``path`` without making it larger (no new disk
    space is needed), padded with spaces; False if it does not fit or cannot be written."""
    data = text.encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    with os.fdopen(fd, "wb") as f:
        size = os.fstat(f.fileno()).st_size
        if len(data) > size or not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return False
        try:
            f.write(data + b" " * (size - len(data)))
        except OSError:
            return False
    return True


def to_json(data: dict) -> str:
    """Strict JSON (what jq and browsers read): inf and NaN of a diverged run become null."""
    return json.dumps(strict(data), indent=2, allow_nan=False)


def strict(value):
    """``value`` (dicts, lists, numbers, NumPy scalars) with every non-finite number as None:
    what strict JSON can hold."""
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, to_json(data) + "\n")


def write_yaml(path: Path, data: dict) -> None:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An npz of plain arrays (no pickle needed to load), replaced atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path):
        try:
            with new_file(tmp) as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def save_model(path: Path, names: list[str], arrays: list[np.ndarray]) -> None:
    """model.npz with one array per parameter name."""
    save_arrays(path, dict(zip(names, arrays)))


MAX_NPZ_BYTES = 1 << 30  # what the arrays of one npz may hold once loaded: a sane model's


def regular(path: str | Path) -> Path:
    """``path`` if it is a regular file (or absent): a symlink, FIFO or device in a run folder is
    refused before it is opened, so nothing is read or written through it and no read hangs."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    if not stat.S_ISREG(mode):
        what = ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
                else "a pipe, socket or device")
        raise ConfigError(f"is {what}, not a regular file: refused", str(path))
    return path


def npz_members(path: Path, limit: int = MAX_NPZ_BYTES) -> dict[str, tuple]:
    """Each member's (shape, dtype), read from the headers alone, before anything is
    decompressed: no object arrays (pickle), and at most ``limit`` bytes in all once loaded
    (a small file may claim a huge shape, or compress a huge array)."""
    import zipfile

    members, total = {}, 0
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > 10_000:
            raise ValueError(f"{len(infos)} arrays")
        for info in infos:
            with archive.open(info) as f:
                version = np.lib.format.read_magic(f)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _, dtype = header(f)
            if dtype.hasobject:
                raise ValueError(f"{info.filename} holds Python objects")
            total += math.prod(shape) * dtype.itemsize
            if total > limit:
                raise ValueError(f"its arrays would take over {limit >> 20} MiB")
            members[info.filename.removesuffix(".npy")] = (tuple(shape), dtype)
    return members


def load_arrays(path: str | Path, expected: dict[str, tuple] | None = None,
                limit: int = MAX_NPZ_BYTES) -> dict[str, np.ndarray]:
    """An npz's arrays, loaded without pickle, after its members are checked (``npz_members``)
    and, with ``expected`` (name -> shape), found to be exactly those; a missing, corrupt or
    unexpected file is a ConfigError naming it."""
    import zipfile  # np.load has imported it

    path = Path(path)  # a run folder's files are checked to be regular by RunFolder.file
    try:
        members = npz_members(path, limit)
        if expected is not None:
            check_members(members, expected, path)
        with np.load(path, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in arrays.files}
    except FileNotFoundError:
        raise ConfigError("no such file", str(path)) from None
    except ConfigError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ConfigError(f"is not a readable npz file ({type(err).__name__}: "
                          f"{shorten(str(err), 80)})", str(path)) from None


def check_members(members: dict[str, tuple], expected: dict[str, tuple], path: Path) -> None:
    """The members must be exactly the expected names, each of its expected shape."""
    extra = [n for n in members if n not in expected]
    missing = [n for n in expected if n not in members]
    shapes = [n for n in expected if n in members and members[n][0] != tuple(expected[n])]
    if extra or missing or shapes:
        detail = ("missing " + ", ".join(missing[:5]) if missing else
                  "the shapes of " + ", ".join(shapes[:5]) if shapes else
                  "extra arrays " + ", ".join(extra[:5]))
        raise ConfigError(f"does not fit the config's network ({detail}): the model changed; "
                          "nothing was loaded", str(path))


def write_checkpoint(path: Path, params: dict[str, np.ndarray], state: dict,
                     optimizer: dict, best: dict[str, np.ndarray] | None) -> None:
    """checkpoint.npz: the parameters, the optimizer's state, the best parameters (early
    stopping), and the scalar state (epoch, batch-order generator, ...) as JSON text."""
    arrays = {f"params/{k}": v for k, v in params.items()}
    arrays.update({f"best/{k}": v for k, v in (best or {}).items()})
    for key, value in optimizer.items():
        if isinstance(value, list):
            arrays.update({f"optimizer/{key}/{i}": a for i, a in enumerate(value)})
    state = {**state, "optimizer_t": optimizer["t"]}
    arrays["state"] = np.array(json.dumps(state))
    save_arrays(path, arrays)


def read_checkpoint(path: Path, shapes: dict[str, tuple] | None = None) -> dict:
    """The parts of checkpoint.npz: params, best (or None), optimizer (a state_dict), state.
    ``shapes``: the network's parameters (name -> shape), checked before anything is loaded."""
    arrays = load_arrays(path, checkpoint_members(path, shapes) if shapes is not None else None)
    parts: dict = {"params": {}, "best": {}, "optimizer": {}}
    for key, value in arrays.items():
        kind, _, name = key.partition("/")
        if kind in ("params", "best"):
            parts[kind][name] = value
        elif kind == "optimizer":
            list_name, _, index = name.partition("/")
            parts["optimizer"].setdefault(list_name, {})[int(index)] = value
    parts["optimizer"] = {k: [v[i] for i in sorted(v)] for k, v in parts["optimizer"].items()}
    parts["state"] = json.loads(str(arrays["state"]))
    parts["optimizer"]["t"] = parts["state"]["optimizer_t"]
    parts["best"] = parts["best"] or None
    return parts


def checkpoint_members(path: Path, shapes: dict[str, tuple]) -> dict[str, tuple]:
    """The members checkpoint.npz may have for a network of these parameter shapes: params/
    and best/ of each, the optimizer's lists (one array per parameter), and the state."""
    names = list(shapes)
    expected = {f"params/{n}": s for n, s in shapes.items()}
    try:
        found = npz_members(regular(path))  # headers only
    except Exception:  # noqa: BLE001  load_arrays says what is wrong with the file
        return expected
    for member, (shape, _) in found.items():
        kind, _, rest = member.partition("/")
        index = rest.rpartition("/")[2]
        if kind == "best" and rest in shapes:
            expected[member] = shapes[rest]
        elif kind == "optimizer" and index.isdigit() and int(index) < len(names):
            expected[member] = shapes[names[int(index)]]
        elif member == "state" and len(shape) == 0:
            expected[member] = ()
    return expected


def truncate_csv(path: Path, last_epoch: int) -> None:
    """Drop the rows of a per-epoch CSV after ``last_epoch`` (and a torn last line)."""
    if not regular(path).is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    header, width = lines[:1], len(lines[0].split(",")) if lines else 0
    kept = []
    for line in lines[1:]:  # a torn or damaged row ends the history, as read_metrics reads it
        epoch = line.split(",", 1)[0]
        if not (line.endswith("\n") and len(line.split(",")) == width and epoch.isdigit()):
            break
        if int(epoch) <= last_epoch:
            kept.append(line)
    write_atomic(path, "".join(header + kept))


def format_value(value) -> str:
    """CSV cell: integers and text as they are, floats in their shortest exact form, None empty."""
    if value is None:
        return ""
    if isinstance(value, (int, np.integer, str)):
        return str(value)
    return repr(float(value))


PLAIN_CELLS = {float, int}  # types whose %r is format_value's text: a float's shortest exact one


class CsvLog:
    """A CSV file written one row at a time, each row handed to the OS as it is written
    (no buffer of the process's own holds it), so a killed process keeps every row."""

    def __init__(self, path: Path, columns: list[str], append: bool = False):
        """``append``: go on writing a file that has its header (a resumed run). Never
        through a symlink: opened with O_NOFOLLOW, and only a regular file is written."""
        self.path, self.columns = path, columns
        # a row's cells in the columns' order, and their text when all are floats and ints
        self.cells = (operator.itemgetter(*columns) if len(columns) > 1
                      else lambda row: (row[columns[0]],))
        self.template = ",".join(["%r"] * len(columns)) + "\n"
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
        with writing(path):
            self.fd: int | None = os.open(regular(path), flags, 0o644)
            try:
                if not append:
                    write_all(self.fd, (",".join(columns) + "\n").encode())
            except BaseException:
                self.close()
                raise

    def write(self, row: dict) -> None:
        """One row, in the file before this returns (the loop's next epoch starts after).

        A row is written every epoch, so this is the loop's own cost: a row of floats and
        ints (the usual one) is one %-format, whose %r is format_value's text for them;
        any other cell (blank, text, a NumPy scalar, a bool) goes through format_value."""
        try:
            values = self.cells(row)
        except KeyError:  # a column this row does not have: blank
            values = tuple(map(row.get, self.columns))
        if PLAIN_CELLS.issuperset(map(type, values)):
            line = self.template % values
        else:
            line = ",".join(map(format_value, values)) + "\n"
        try:
            write_all(self.fd, line.encode())
        except OSError:
            with writing(self.path):  # the one-line WriteError every other write raises
                raise

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with writing(self.path):
                os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``data`` handed to the OS in write calls on ``fd`` (no buffer of the process's own
    holds any of it), however few bytes each call takes (a nearly full disk, a signal)."""
    rest = memoryview(data)
    while rest:
        rest = rest[os.write(fd, rest):]


def read_summary(run_dir: Path) -> dict | None:
    """summary.json, or None when it is missing, unreadable or not a JSON object."""
    try:
        summary = json.loads(regular(Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):  # UnicodeDecodeError, JSONDecodeError, ConfigError
        return None
    return summary if isinstance(summary, dict) else None


# -- finding and describing runs (report, plot) -------------------------------------------------


def find_runs(paths) -> list[Path]:
    """Run folders (holding metrics.csv) at or under each path, sorted; a path with none is an error.

    A folder that cannot be read as a run (see ``run_problem``) is skipped with a one-line
    warning naming it, so one damaged folder does not hide a whole tree of runs.
    """
    import warnings

    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError("no such file or folder", str(path))
        runs = [path] if (path / "metrics.csv").is_file() else sorted(
            p.parent for p in path.rglob("metrics.csv") if not _half_written(p.parent, path))
        readable = []
        for run in runs:
            problem = run_problem(run)
            if problem:
                warnings.warn(f"skipped {run}: {problem}", stacklevel=2)
            elif run not in found:
                readable.append(run)
        if not readable and not any(r in found for r in runs):
            what = "no readable run folder" if runs else "no run folder (no metrics.csv under it)"
            raise ConfigError(f"holds {what}", str(path))
        found += readable
    return found


def _half_written(run: Path, root: Path) -> bool:
    """A folder compare is still filling (.NAME.partial) or any hidden folder below ``root``."""
    parts = run.relative_to(root).parts
    return any(p.startswith(".") or p.endswith(".partial") for p in parts)


def run_problem(run_dir: Path) -> str | None:
    """Why a folder cannot be reported or plotted as a run, or None when it can."""
    for name in (RunFolder.CONFIG, RunFolder.SUMMARY, RunFolder.METRICS):
        try:
            regular(run_dir / name)
        except ConfigError:
            return f"{name} is not a regular file (a symlink, pipe or device)"
    config = run_dir / "config.yaml"
    if config.is_file():
        try:
            if not isinstance(safe_load(config.read_bytes().decode("utf-8")) or {}, dict):
                return "config.yaml is not a mapping"
        except UnicodeDecodeError:
            return "config.yaml is not UTF-8 text"
        except yaml.YAMLError:
            return "config.yaml is not valid YAML"
    summary = run_dir / "summary.json"
    if summary.is_file() and read_summary(run_dir) is None:
        return "summary.json is not a JSON object"
    if not read_metrics(run_dir, most=1):  # a torn or damaged row ends the history
        return "metrics.csv has no complete first row"
    return None


def flatten(data, prefix: str = "") -> dict:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}; lists and component mappings
    ({name: elu, alpha: 2} inside a section) as their label, elu(alpha=2)."""
    out = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and (not prefix or "name" not in value):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value if isinstance(value, (int, float, str, bool, type(None))) else (
                label(value))
    return out


def read_config(run_dir: Path) -> dict:
    """A run's config.yaml flattened to dotted keys; {} when missing or unreadable."""
    try:
        raw = safe_load((run_dir / "config.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):  # UnicodeDecodeError is a ValueError
        return {}
    return flatten(raw) if isinstance(raw, dict) else {}


SLUG_PART = 40  # characters of one setting in the name of a compare's run folder


def slug_part(key: str, value) -> str:
    """One setting as compare names its run folders by it: 'initializer=normal_std=0.01'."""
    return safe_name(f"{key.split('.')[-1]}={label(value)}", SLUG_PART)


def safe_name(text: str, limit: int = 80) -> str:
    """A label as a folder name that needs no quoting in a shell: 'normal(std=0.01)' ->
    'normal_std=0.01', '[2, 8, 1]' -> '2_8_1'."""
    return re.sub(r"[^A-Za-z0-9=._+-]+", "_", text).strip("_")[:limit]


SEED_KEYS = ("seed", "data.seed")


def differing_keys(configs: list[dict], ignore=("plugins",)) -> list[str]:
    """Dotted keys whose values are not the same in every config (in first-seen order)."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in keys if k not in ignore and len({json.dumps(c.get(k)) for c in configs}) > 1]


def variant_label(config: dict, keys: list[str]) -> str:
    return ", ".join(f"{k}={label(config.get(k))}" for k in keys)


def variants(runs: list[tuple[Path, dict]], leave_out: tuple[str, ...] = ()
             ) -> dict[str, list[tuple[Path, dict]]]:
    """Runs that differ only in seed are one variant: its label -> its (folder, config) pairs,
    lowest seed first. The label names the settings that differ among ``runs`` (seeds, the name
    and ``leave_out`` aside), or is the run's name when nothing else differs. Variants come in
    the order of their lowest-seed runs (a compare's: its grid's), the same in loss.png's
    legend, plot's panels and the view's legend, so that each has one colour in all of them."""
    ignored = SEED_KEYS + ("name",) + leave_out
    keys = [k for k in differing_keys([config for _, config in runs]) if k not in ignored]
    groups: dict[str, list[tuple[Path, dict]]] = {}
    for run_dir, config in sorted(runs, key=lambda run: run[1].get("seed") or 0):
        name = variant_label(config, keys) if keys else str(config.get("name") or run_dir.name)
        groups.setdefault(name, []).append((run_dir, config))
    return groups


def one_per_variant(run_dirs: list[Path], seed: int | None) -> dict[str, Path]:
    """Each variant's run with ``seed`` (``--seed``), else its lowest seed's: label -> folder.
    No run with that seed is a ConfigError naming --seed."""
    chosen: dict[str, Path] = {}
    for label, members in variants([(d, read_config(d)) for d in run_dirs]).items():
        picked = [d for d, config in members if seed is None or config.get("seed") == seed]
        if picked:
            chosen[label] = picked[0]
    if not chosen:
        raise ConfigError(f"no run with seed {seed} among {len(run_dirs)} runs", "--seed")
    return chosen


def effective_status(summary: dict | None) -> str:
    """The summary's status, except that a 'running' run whose process is gone is 'incomplete'."""
    if summary is None:
        return "incomplete"
    status = summary.get("status", "incomplete")
    if status != "running" or summary.get("host") not in (None, socket_host()):
        return status  # another machine's run: its process cannot be looked up from here
    # os.kill(0, 0) signals our own process group and always succeeds: without a real pid
    # there is no process to find, so the run is not running
    return status if process_alive(summary.get("pid")) else "incomplete"


def read_metrics(run_dir: Path, most: int | None = None) -> list[dict]:
    """metrics.csv as one dict per epoch (floats; None where blank). A row torn by a killed
    process (too few cells, or a cell that is not a number) ends the history. ``most``: the
    first rows only, at most that many."""
    header, rows = metrics_table(run_dir, most)
    return [dict(zip(header, row)) for row in rows]


def metrics_table(run_dir: Path, most: int | None = None) -> tuple[list[str], list[list]]:
    """metrics.csv's header and its rows as lists, read as ``read_metrics`` reads them."""
    try:
        lines = regular(Path(run_dir) / "metrics.csv").read_text().splitlines()
    except (OSError, ValueError):  # UnicodeDecodeError, ConfigError (a symlink, a FIFO)
        return [], []
    if not lines:
        return [], []
    header = lines[0].split(",")
    if header[0] != "epoch":  # not metrics.csv's header (a file cut or written by something else)
        return [], []
    rows = []
    for line in lines[1:] if most is None else lines[1:most + 1]:
        cells = line.split(",")
        if len(cells) != len(header):
            break
        try:
            row = [float(v) if v else None for v in cells]
        except ValueError:
            break
        if row[0] is None or not math.isfinite(row[0]):  # not an epoch: torn too
            break
        rows.append(row)
    return header, rows


def layers_frame(run_dir: Path):
    """layers.csv as a pandas DataFrame; a run without one (train.diagnostics_every: 0) is a
    ConfigError naming it."""
    import pandas as pd

    path = regular(Path(run_dir) / RunFolder.LAYERS)
    if not path.is_file():
        raise ConfigError("has no layers.csv (train.diagnostics_every: 0?)", str(run_dir))
    return pd.read_csv(path)


def metrics_frame(run_dir: Path):
    """metrics.csv as a pandas DataFrame (pandas imported only here)."""
    import pandas as pd

    header, rows = metrics_table(run_dir)
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows, columns=header, dtype=float)  # blank cells NaN
    frame["epoch"] = frame["epoch"].astype(int)
    return frame


def column_hint(column: str, columns: list[str]) -> str:
    """Did-you-mean for a column, knowing that figures are final_<metric> (val_loss ->
    final_val_loss), apart from settings such as loss."""
    if f"final_{column}" in columns:
        return f"; did you mean 'final_{column}'? (figures are named final_...)"
    return did_you_mean(column, columns)


def select_columns(columns: list[str], wanted: list[str] | None) -> list[str]:
    """``--columns a,b``: those columns in that order, after the run folder."""
    if wanted is None:
        return columns
    for column in wanted:
        if column not in columns:
            raise ConfigError(f"no column {column!r}{column_hint(column, columns)} columns: "
                              f"{', '.join(columns)}", "--columns")
    return ["run"] + [c for c in wanted if c != "run"]


def sort_rows(rows: list[dict], columns: list[str], column: str | None,
              descending: bool = False) -> list[dict]:
    """Rows sorted by ``column``, ascending or ``descending``, blanks (and NaN) last either
    way, as pandas' sort_values; numbers apart from text (``auto`` beside 5); equal values keep
    their order. None keeps the rows' order."""
    if column is None:
        if descending:
            raise ConfigError("sorts only with --sort COLUMN", "--reverse")
        return rows
    if column not in columns:
        raise ConfigError(f"no column {column!r}{column_hint(column, columns)} columns: "
                          f"{', '.join(columns)}", "--sort")
    def is_blank(value) -> bool:
        return value is None or (isinstance(value, float) and math.isnan(value))

    blank = [r for r in rows if is_blank(r.get(column))]
    given = [r for r in rows if not is_blank(r.get(column))]
    return sorted(given, key=lambda r: (isinstance(r[column], str), r[column]),
                  reverse=descending) + blank
