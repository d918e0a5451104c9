"""The training loop: one plain function, read top to bottom.

Epoch semantics follow Keras: an epoch's ``loss`` and ``accuracy`` are the
sample-weighted means over its mini-batches, measured by the forward passes
training already does (before each batch's update); ``val_*`` are measured
on the validation set after the epoch. Row 0 is the untrained network.
"""

from __future__ import annotations

import math
import os
import platform
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .config import Config, EarlyStopping
from .datasets import Data
from .diagnostics import LayerLog, first_nonfinite
from .experiment import Experiment, Split, columns_for, metric_sum, setup
from .network import Network
from .runs import (CsvLog, WriteError, check_out_dir, claim_out_dir, new_run_dir, save_arrays,
                   save_model, truncate_csv, write_checkpoint, write_json, write_yaml)
from .signals import StopRequests, signal_name
from .snapshots import FILE_NAME as SNAPSHOT_FILE, Snapshots, truncate_snapshots
from .threads import blas_threads, limit_threads


@dataclass
class Run:
    path: Path
    summary: dict
    history: list[dict] = field(default_factory=list)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during training; the run folder holds everything finished (status
    interrupted). ``signal`` is "SIGINT" or "SIGTERM"."""

    def __init__(self, run: Run, signal: str = "SIGINT"):
        super().__init__(f"interrupted; saved to {run.path}")
        self.run, self.signal = run, signal


class Batches:
    """An epoch's batches of (X, Y, labels): the whole set, or shuffled mini-batches gathered
    into buffers made once per batch size."""

    def __init__(self, split: Split, size: int, rng: np.random.Generator):
        self.arrays, self.size, self.rng = (split.X, split.Y, split.labels), size, rng
        n = len(split.X)
        self.buffers = {rows: [np.empty((rows, *a.shape[1:]), a.dtype) for a in self.arrays]
                        for rows in {size, n % size or size}}

    def __iter__(self):
        n = len(self.arrays[0])
        if self.size >= n:
            yield self.arrays
            return
        order = self.rng.permutation(n)
        for begin in range(0, n, self.size):
            idx = order[begin:begin + self.size]
            # mode="clip" writes straight into the buffer (the default, "raise", gathers into
            # a temporary first); idx comes from a permutation, so nothing is clipped
            yield [np.take(a, idx, axis=0, out=buf, mode="clip")
                   for a, buf in zip(self.arrays, self.buffers[len(idx)])]


class EarlyStopper:
    """The best epoch of the monitored figure; with early stopping, when to stop and the
    parameters to restore. Without it, the best row is still kept for the summary."""

    def __init__(self, monitor: str, setting: EarlyStopping | None, params: list[np.ndarray]):
        self.monitor, self.setting, self.params = monitor, setting, params
        self.best, self.row, self.saved, self.wait = math.inf, None, None, 0

    def update(self, row: dict) -> None:
        min_delta = self.setting.min_delta if self.setting else 0.0
        if row[self.monitor] < self.best - min_delta:
            self.best, self.row, self.wait = row[self.monitor], row, 0
            if self.setting and self.setting.restore_best:
                self.saved = [p.copy() for p in self.params]
        else:
            self.wait += 1

    def should_stop(self) -> bool:
        return self.setting is not None and self.wait >= self.setting.patience

    def state(self) -> dict:
        """What a checkpoint keeps of it (the saved parameters go beside, as arrays)."""
        return {"best": self.best, "row": self.row, "wait": self.wait}

    def load(self, state: dict, saved: list[np.ndarray] | None) -> None:
        self.best, self.row, self.wait = state["best"], state["row"], state["wait"]
        self.saved = saved

    def restore(self, net: Network) -> int | None:
        """Load the best epoch's parameters (if kept); returns that epoch."""
        if self.saved is None:
            return None
        net.load_parameters(self.saved)
        return self.row["epoch"]


class RunSummary:
    """summary.json: written as "running" when the run starts, replaced atomically when it ends."""

    def __init__(self, path: Path, exp: Experiment, threads: int):
        cfg = exp.cfg
        self.path = path / "summary.json"
        self.data = {
            "status": "running", "name": cfg.name, "path": str(path), "task": exp.data.task,
            "epochs": 0, "epochs_planned": cfg.train.epochs, "monitor": exp.monitor,
            "final": None, "best": None, "restored_epoch": None, "diverged": None,
            "wall_time_s": 0.0, "seed": cfg.seed, "data_seed": cfg.data.seed,
            "n_train": len(exp.train.X), "n_val": len(exp.val.X) if exp.val else 0,
            "n_parameters": int(sum(p.size for p in exp.net.parameters())), "threads": threads,
            "config_hash": cfg.hash(), "versions": versions(),
            "started": now(), "pid": os.getpid(), "host": socket.gethostname(),
        }
        write_json(self.path, self.data)

    def finish(self, status: str, history: list[dict], best: dict | None,
               restored_epoch: int | None, wall_time: float) -> None:
        last = history[-1] if history else None
        self.data.update(
            status=status,
            epochs=last["epoch"] if last else 0,
            final={k: v for k, v in last.items() if k not in ("epoch", "lr", "time_s")}
            if last else None,
            best={k: v for k, v in best.items() if k not in ("lr", "time_s")} if best else None,
            restored_epoch=restored_epoch,
            wall_time_s=round(wall_time, 6),
            finished=now(),
        )
        write_json(self.path, self.data)


class Checkpoints:
    """checkpoint.npz, the latest state a run can be resumed from (parameters, optimizer state,
    batch-order generator, early-stopping state, epoch), replaced atomically: every ``every``
    epochs, or with auto about every AUTO_SECONDS of wall time; and when the run ends."""

    AUTO_SECONDS = 2.0  # an xor epoch takes 0.05 ms and a checkpoint about 1 ms to write

    def __init__(self, path: Path, every: int | str):
        self.path, self.every, self.saved_at = path, every, time.perf_counter()

    def due(self, epoch: int) -> bool:
        if self.every == "auto":
            return time.perf_counter() - self.saved_at >= self.AUTO_SECONDS
        return bool(self.every) and epoch % self.every == 0

    def save(self, epoch: int, exp: Experiment, batches: Batches, stopper: EarlyStopper,
             time_s: float) -> None:
        if self.every == 0:
            return
        names = exp.net.parameter_names()
        state = {"epoch": epoch, "time_s": time_s, "stopper": stopper.state(),
                 "batch_rng": batches.rng.bit_generator.state}
        best = dict(zip(names, stopper.saved)) if stopper.saved is not None else None
        write_checkpoint(self.path, dict(zip(names, exp.net.parameters())), state,
                         exp.optimizer.state_dict(), best)
        self.saved_at = time.perf_counter()


@dataclass
class Start:
    """Where a resumed run picks up: the state of its checkpoint and the rows before it."""

    epoch: int
    params: list[np.ndarray]
    best_params: list[np.ndarray] | None
    optimizer: dict
    batch_rng: dict
    stopper: dict
    history: list[dict]
    time_s: float

    def apply(self, exp: Experiment, batches: Batches, stopper: EarlyStopper) -> None:
        exp.net.load_parameters(self.params)
        exp.optimizer.load_state_dict(self.optimizer)
        batches.rng.bit_generator.state = self.batch_rng
        stopper.load(self.stopper, self.best_params)


def versions() -> dict:
    return {"nntrain": __version__, "numpy": np.__version__, "python": platform.python_version()}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train_epoch(exp: Experiment, batches: Batches, lr: float, arrays: tuple) -> dict:
    """One pass over the training data: forward, loss, backward and update, batch by batch.

    ``arrays``: the net's (parameters, gradients, is_weight), taken once per run. The epoch's
    loss and metric are sample-weighted means of the batches' (each measured before its
    batch's update); grad_norm is the mean over batches of ||dE/dp||.
    """
    net, task = exp.net, exp.data.task
    params, grads, is_weight = arrays
    loss_sum = metric_total = grad_norm_sum = 0.0
    n_batches = 0
    for X, Y, labels in batches:
        E = net.loss_and_backward(X, Y, exp.loss)
        loss_sum += E * len(X)
        metric_total += metric_sum(net.output, labels, task)
        grad_norm_sum += math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
        n_batches += 1
        exp.optimizer.step(params, grads, lr, is_weight)
    n = len(exp.train.X)
    return {"loss": loss_sum / n, exp.metric: metric_total / n, "lr": lr,
            "grad_norm": grad_norm_sum / n_batches}


def add_validation(exp: Experiment, row: dict) -> dict:
    if exp.val is not None:
        row["val_loss"], row[f"val_{exp.metric}"] = exp.evaluate(exp.val)
    return row


def diverged(row: dict, params: list[np.ndarray]) -> bool:
    """A non-finite loss, validation loss, gradient norm or parameter."""
    figures = (row["loss"], row["grad_norm"], row.get("val_loss", 0.0))
    return not all(map(math.isfinite, figures)) or not all(np.isfinite(p).all() for p in params)


def data_info(data: Data) -> dict[str, np.ndarray]:
    """data.npz: what prediction needs of the data besides the parameters."""
    info = {"feature_names": np.array(data.feature_names), "fingerprint": np.array(data.fingerprint)}
    if data.classes is not None:
        info["classes"] = np.array(data.classes)
    if data.mean is not None:
        info.update(mean=data.mean, std=data.std)
    return info


def open_run(exp: Experiment, out: Path | None, runs_root, threads: int, start: Start | None):
    """The run folder and its logs: a new folder (config.yaml, data.npz), or a resumed run's
    own, with the rows after its checkpoint dropped."""
    cfg = exp.cfg
    if start is None:
        path = claim_out_dir(out) if out is not None else new_run_dir(runs_root, cfg.name)
        write_yaml(path / "config.yaml", cfg.to_dict())
        save_arrays(path / "data.npz", data_info(exp.data))
    else:
        path = out
        for name in ("metrics.csv", "layers.csv"):
            truncate_csv(path / name, start.epoch)
        truncate_snapshots(path / SNAPSHOT_FILE, start.epoch)
    summary = RunSummary(path, exp, threads)
    metrics = CsvLog(path / "metrics.csv", columns_for(exp.data.task, exp.val is not None),
                     append=start is not None)
    layers = (LayerLog(path / "layers.csv", append=start is not None)
              if cfg.train.diagnostics_every else None)
    return path, summary, metrics, layers


def untrained_row(exp: Experiment, layers: LayerLog | None) -> dict:
    """Epoch 0: the network before any update (diagnostics with a backward pass)."""
    row = {"epoch": 0, "lr": exp.schedule(exp.cfg.optimizer.lr, 0), "grad_norm": None}
    row["loss"], row[exp.metric] = exp.evaluate(exp.train)
    row = {**add_validation(exp, row), "time_s": 0.0}
    if layers:
        layers.write(0, exp.net, exp.train.X, Y=exp.train.Y, loss=exp.loss)
    return row


def save_run(exp: Experiment, run: Run, status: str, stopper: EarlyStopper,
             savers: tuple[Checkpoints, Snapshots], batches: Batches, logs: list,
             at_epoch_end: bool):
    """The end of a run, whatever ended it: the checkpoint and the last snapshot (if the last
    epoch finished: the state to resume from, before early stopping restores the best
    parameters), the logs, model.npz. Returns the first write that failed (a full disk) and
    the restored epoch."""
    last = run.history[-1] if run.history else {"epoch": 0, "time_s": 0.0}
    checkpoints, snapshots = savers
    failed = save_all([lambda: checkpoints.save(last["epoch"], exp, batches, stopper,
                                                last["time_s"]),
                       lambda: snapshots.save(last["epoch"])] if at_epoch_end else [])
    restored = stopper.restore(exp.net) if status == "early_stopped" else None
    net = exp.net
    failed = failed or save_all([*(log.close for log in logs if log is not None),
                                 lambda: save_model(run.path / "model.npz", net.parameter_names(),
                                                    net.parameters())])
    return failed, restored


def save_due(epoch: int, exp: Experiment, batches: Batches, stopper: EarlyStopper,
             savers: tuple[Checkpoints, Snapshots], time_s: float) -> None:
    """After an epoch: the checkpoint and the parameter snapshot, each if its spacing says so."""
    checkpoints, snapshots = savers
    if checkpoints.due(epoch):
        checkpoints.save(epoch, exp, batches, stopper, time_s)
    if snapshots.due(epoch):
        snapshots.save(epoch)


def record(run: Run, metrics: CsvLog, stop: StopRequests, row: dict) -> None:
    """An epoch's row into metrics.csv and the run's history, both or neither even when a
    signal stops the run at once (the summary's epochs then match metrics.csv)."""
    stop.hold()
    metrics.write(row)
    run.history.append(row)
    stop.release()


def save_all(saves: list) -> WriteError | None:
    """Call each save even if one fails (a full disk); return the first failure."""
    failure = None
    for save in saves:
        try:
            save()
        except WriteError as err:
            failure = failure or err
    return failure


def train(cfg: Config, out: str | Path | None = None, runs_root: str | Path = "runs",
          progress=None, data: Data | None = None, start: Start | None = None) -> Run:
    """Train the network ``cfg`` describes; write its run folder; return the Run.

    ``out``: the run folder to use (must be new or empty). ``progress``: an
    object with ``start(total)``, ``update(epoch, row)`` and ``stop()``.
    ``data``: the config's data already loaded (else it is loaded here).
    ``start``: go on from a checkpoint in ``out`` (see nntrain.resume).
    Raises ConfigError before anything is written if the config or data is wrong.
    """
    # 1. data, network, loss, optimizer: a mistake in any fails before anything is written
    out = Path(out) if start is not None else check_out_dir(out) if out is not None else None
    exp = setup(cfg, data)
    cfg, net, settings = exp.cfg, exp.net, exp.cfg.train
    n = len(exp.train.X)
    batch = n if cfg.optimizer.batch_size is None else min(cfg.optimizer.batch_size, n)
    batches = Batches(exp.train, batch, np.random.default_rng([1, cfg.seed]))  # init: rng(seed)
    threads = blas_threads(settings.threads, net.sizes, batch)
    arrays = (net.parameters(), net.gradients(), net.is_weight())  # live lists, taken once
    stopper = EarlyStopper(exp.monitor, settings.early_stopping, arrays[0])
    if start is not None:
        start.apply(exp, batches, stopper)

    # 2. the run folder: config.yaml, data.npz, summary.json ("running"), the CSV logs
    path, summary, metrics, layers = open_run(exp, out, runs_root, threads, start)
    checkpoints = Checkpoints(path / "checkpoint.npz", settings.checkpoint_every)
    snapshots = Snapshots(path / SNAPSHOT_FILE, settings.snapshot_every, settings.epochs, net)
    run = Run(path, summary.data, list(start.history) if start else [])
    summary.data["resumed_from"] = start.epoch if start else None
    status, at_epoch_end = "completed", True
    clock = time.perf_counter() - (start.time_s if start else 0.0)

    # Overflow in a diverging run is expected and detected below: numpy need not warn.
    with (np.errstate(over="ignore", invalid="ignore", divide="ignore"), limit_threads(threads),
          StopRequests() as stop):
        try:
            # 3. epoch 0, the untrained network (a resumed run has its rows already)
            if start is None:
                row = untrained_row(exp, layers)
                record(run, metrics, stop, row)
                stopper.update(row)
                snapshots.save(0)
            if progress:
                progress.start(settings.epochs)

            first = start.epoch + 1 if start else 1
            for epoch in range(first, settings.epochs + 1):
                if stopper.should_stop():  # resumed after it had stopped, patience unchanged
                    status = "early_stopped"
                    break
                # 4. one pass over the data, then validation after the updates
                at_epoch_end = False
                lr = exp.schedule(cfg.optimizer.lr, epoch - 1)
                row = add_validation(exp, {"epoch": epoch, **train_epoch(exp, batches, lr, arrays)})
                row["time_s"] = time.perf_counter() - clock
                if layers and epoch % settings.diagnostics_every == 0:
                    layers.write(epoch, net, exp.train.X, exp.optimizer)
                record(run, metrics, stop, row)

                # 5. divergence ends the run: a result, not an error
                if diverged(row, arrays[0]):
                    summary.data["diverged"] = {"epoch": epoch, **first_nonfinite(net, exp.train.X)}
                    status = "diverged"
                    break
                stopper.update(row)
                at_epoch_end = True
                save_due(epoch, exp, batches, stopper, (checkpoints, snapshots), row["time_s"])
                if progress:
                    progress.update(epoch, row)

                # 6. early stopping, or a first Ctrl-C: stop after the epoch
                if stopper.should_stop():
                    status = "early_stopped"
                    break
                if stop.requested:
                    status, summary.data["signal"] = "interrupted", stop.requested
                    break
        except KeyboardInterrupt as signalled:  # a second Ctrl-C, or SIGTERM: at once
            status, summary.data["signal"] = "interrupted", signal_name(signalled)
        except BaseException:
            status = "failed"
            raise
        finally:
            # 7. save the state to resume from, the parameters, the test figures, the summary
            if progress:
                progress.stop()
            propagating = status == "failed"  # a failed save must not hide that exception
            failed_write, restored = save_run(exp, run, status, stopper, (checkpoints, snapshots),
                                              batches, [metrics, layers], at_epoch_end)
            status = "failed" if failed_write else status
            if exp.test is not None and status != "failed":
                summary.data["test"] = dict(zip(("loss", exp.metric), exp.evaluate(exp.test)))
            failed_write = failed_write or save_all([lambda: summary.finish(
                status, run.history, stopper.row, restored, time.perf_counter() - clock)])
            if failed_write and not propagating:
                raise failed_write
    if status == "interrupted":
        raise Interrupted(run, summary.data["signal"])
    return run
