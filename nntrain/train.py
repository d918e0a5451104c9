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
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .config import Config, EarlyStopping
from .diagnostics import LayerLog, first_nonfinite
from .experiment import Experiment, Split, columns_for, metric_sum, setup
from .network import Network
from .runs import CsvLog, check_out_dir, claim_out_dir, new_run_dir, save_model, write_json, write_yaml
from .threads import blas_threads, limit_threads


@dataclass
class Run:
    path: Path
    summary: dict
    history: list[dict] = field(default_factory=list)


class Interrupted(Exception):
    """Ctrl-C during training; the run folder holds everything finished (status interrupted)."""

    def __init__(self, run: Run):
        super().__init__(f"interrupted; saved to {run.path}")
        self.run = run


class CtrlC:
    """Ctrl-C asks the loop to stop after the current epoch (its row is written and the run
    ends cleanly); a second Ctrl-C interrupts at once. Only the main thread can catch signals."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            self.previous = signal.signal(signal.SIGINT, self.handle)
        return self

    def handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)


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


def versions() -> dict:
    return {"nntrain": __version__, "numpy": np.__version__, "python": platform.python_version()}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train_epoch(exp: Experiment, batches: Batches, lr: float) -> dict:
    """One pass over the training data: forward, loss, backward and update, batch by batch.

    The epoch's loss and metric are sample-weighted means of the batches' (each measured
    before its batch's update); grad_norm is the mean over batches of ||dE/dp||.
    """
    net, task = exp.net, exp.data.task
    params, grads, is_weight = net.parameters(), net.gradients(), net.is_weight()
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


def train(cfg: Config, out: str | Path | None = None, runs_root: str | Path = "runs",
          progress=None) -> Run:
    """Train the network ``cfg`` describes; write its run folder; return the Run.

    ``out``: the run folder to use (must be new or empty). ``progress``: an
    object with ``start(total)``, ``update(epoch, loss)`` and ``stop()``.
    Raises ConfigError before anything is written if the config or data is wrong.
    """
    # 1. data, network, loss, optimizer: a mistake in any fails before anything is written
    out_path = check_out_dir(out) if out is not None else None
    exp = setup(cfg)
    cfg, net, settings = exp.cfg, exp.net, exp.cfg.train
    n = len(exp.train.X)
    batch = n if cfg.optimizer.batch_size is None else min(cfg.optimizer.batch_size, n)
    batches = Batches(exp.train, batch, np.random.default_rng([1, cfg.seed]))  # init: rng(seed)
    threads = blas_threads(settings.threads, net.sizes, batch)

    # 2. the run folder: config.yaml, summary.json ("running"), metrics.csv, layers.csv
    path = claim_out_dir(out_path) if out_path is not None else new_run_dir(runs_root, cfg.name)
    write_yaml(path / "config.yaml", cfg.to_dict())
    summary = RunSummary(path, exp, threads)
    metrics = CsvLog(path / "metrics.csv", columns_for(exp.data.task, exp.val is not None))
    layers = LayerLog(path / "layers.csv") if settings.diagnostics_every else None
    stopper = EarlyStopper(exp.monitor, settings.early_stopping, net.parameters())
    run = Run(path, summary.data)
    status, restored, start = "completed", None, time.perf_counter()

    # Overflow in a diverging run is expected and detected below: numpy need not warn.
    with (np.errstate(over="ignore", invalid="ignore", divide="ignore"), limit_threads(threads),
          CtrlC() as ctrl_c):
        try:
            # 3. epoch 0: the untrained network (diagnostics with a backward pass: gradients at init)
            row = {"epoch": 0, "lr": exp.schedule(cfg.optimizer.lr, 0), "grad_norm": None}
            row["loss"], row[exp.metric] = exp.evaluate(exp.train)
            row = {**add_validation(exp, row), "time_s": 0.0}
            if layers:
                layers.write(0, net, exp.train.X, Y=exp.train.Y, loss=exp.loss)
            metrics.write(row)
            run.history.append(row)
            stopper.update(row)
            if progress:
                progress.start(settings.epochs)

            for epoch in range(1, settings.epochs + 1):
                # 4. one pass over the data, then validation after the updates
                lr = exp.schedule(cfg.optimizer.lr, epoch - 1)
                row = add_validation(exp, {"epoch": epoch, **train_epoch(exp, batches, lr)})
                row["time_s"] = time.perf_counter() - start
                if layers and epoch % settings.diagnostics_every == 0:
                    layers.write(epoch, net, exp.train.X, exp.optimizer)
                metrics.write(row)
                run.history.append(row)

                # 5. divergence ends the run: a result, not an error
                if diverged(row, net.parameters()):
                    summary.data["diverged"] = {"epoch": epoch, **first_nonfinite(net, exp.train.X)}
                    status = "diverged"
                    break
                stopper.update(row)
                if progress:
                    progress.update(epoch, row)

                # 6. early stopping, or Ctrl-C after the epoch
                if stopper.should_stop():
                    status = "early_stopped"
                    break
                if ctrl_c.requested:
                    status = "interrupted"
                    break
        except KeyboardInterrupt:
            status = "interrupted"
        except BaseException:
            status = "failed"
            raise
        finally:
            # 7. save the parameters and the summary, whatever happened
            if progress:
                progress.stop()
            if status == "early_stopped":
                restored = stopper.restore(net)
            metrics.close()
            if layers:
                layers.close()
            save_model(path / "model.npz", net.parameter_names(), net.parameters())
            summary.finish(status, run.history, stopper.row, restored, time.perf_counter() - start)
    if status == "interrupted":
        raise Interrupted(run)
    return run


