"""The training loop: one plain function, read top to bottom.

Epoch semantics follow Keras: an epoch's ``loss`` and ``accuracy`` are the
sample-weighted means over its mini-batches, measured by the forward passes
training already does (before each batch's update); ``val_*`` are measured
on the validation set after the epoch. Row 0 is the untrained network.
Everything that happens at an epoch's end (the run folder's files, early
stopping, the divergence sentinel, progress) is a callback (nntrain/callbacks.py).
"""

from __future__ import annotations

import math
import os
import platform
import socket
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .callbacks import (Callback, CallbackList, Checkpoint, DivergenceSentinel, EarlyStopping,
                        LayerLog, MetricsLog, ModelFile, Progress, SnapshotLog, Summary,
                        TestFigures, Training, now)
from .config import Config
from .datasets import Data
from .experiment import Batches, Experiment, setup
from .runs import RunFolder
from .signals import StopRequests, signal_name
from .threads import blas_threads, limit_threads
from .version import __version__


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

    def apply(self, exp: Experiment, batches: Batches, stopper: EarlyStopping) -> None:
        exp.net.load_parameters(self.params)
        exp.optimizer.load_state_dict(self.optimizer)
        batches.rng.bit_generator.state = self.batch_rng
        stopper.load(self.stopper, self.best_params)


def versions() -> dict:
    return {"nntrain": __version__, "numpy": np.__version__, "python": platform.python_version()}


def train_epoch(exp: Experiment, batches: Batches, lr: float, arrays: tuple) -> dict:
    """One pass over the training data: forward, loss, backward and update, batch by batch.

    ``arrays``: the net's (parameters, gradients, is_weight), taken once per run. The epoch's
    loss and metric are sample-weighted means of the batches' (each measured before its
    batch's update); grad_norm is the mean over batches of ||dE/dp||.
    """
    net, task = exp.net, exp.task
    params, grads, is_weight = arrays
    loss_sum = metric_total = grad_norm_sum = 0.0
    n_batches = 0
    for X, Y, truth in batches:
        step = net.loss_and_backward(X, Y, exp.loss)
        loss_sum += step.E * len(X)
        metric_total += task.metric_sum(step.output, truth)
        grad_norm_sum += math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
        n_batches += 1
        exp.optimizer.step(params, grads, lr, is_weight,
                           closure=lambda X=X, Y=Y: net.loss(X, Y, exp.loss))
    n = len(exp.train.X)
    return {"loss": loss_sum / n, task.metric: metric_total / n, "lr": lr,
            "grad_norm": grad_norm_sum / n_batches}


def epoch_row(exp: Experiment, epoch: int, figures: dict, time_s: float) -> dict:
    """metrics.csv's row: the epoch's training figures, then the validation figures."""
    row = {"epoch": epoch, **figures}
    if exp.val is not None:
        row["val_loss"], row[f"val_{exp.metric}"] = exp.evaluate(exp.val)
    return {**row, "time_s": time_s}


def untrained_figures(exp: Experiment) -> dict:
    """Epoch 0's training figures: the network before any update (no gradient yet)."""
    loss, metric = exp.evaluate(exp.train)
    return {"loss": loss, exp.metric: metric, "lr": exp.schedule(exp.cfg.optimizer.lr, 0),
            "grad_norm": None}


def summary_fields(exp: Experiment, path: Path, threads: int, start: Start | None) -> dict:
    """summary.json as the run starts ("running"); the Summary callback completes it."""
    cfg = exp.cfg
    return {
        "status": "running", "name": cfg.name, "path": str(path), "task": exp.task.name,
        "epochs": 0, "epochs_planned": cfg.train.epochs, "monitor": exp.monitor,
        "final": None, "best": None, "restored_epoch": None, "diverged": None,
        "wall_time_s": 0.0, "seed": cfg.seed, "data_seed": cfg.data.seed,
        "n_train": len(exp.train.X), "n_val": len(exp.val.X) if exp.val else 0,
        "n_parameters": int(sum(p.size for p in exp.net.parameters())), "threads": threads,
        "config_hash": cfg.hash(), "versions": versions(),
        "started": now(), "pid": os.getpid(), "host": socket.gethostname(),
        "resumed_from": start.epoch if start else None,
    }


def default_callbacks(exp: Experiment, stopper: EarlyStopping, fields: dict, progress,
                      user: list[Callback]) -> list[Callback]:
    """The built-in callbacks and the user's, in the order they run (see nntrain/callbacks.py):
    the logs first, then what may end the run, then what saves its state; at the run's end
    early stopping restores the best parameters before model.npz and the summary."""
    settings = exp.cfg.train
    return [MetricsLog(), LayerLog(settings.diagnostics_every), DivergenceSentinel(), stopper,
            Checkpoint(settings.checkpoint_every, stopper),
            SnapshotLog(settings.snapshot_every, settings.epochs),
            *([Progress(progress, settings.epochs)] if progress else []), *user,
            ModelFile(), TestFigures(), Summary(stopper, fields)]


def end_epoch(training: Training, callbacks: CallbackList, stop: StopRequests, row: dict) -> None:
    """An epoch's row into the history and through the callbacks, all of it even when a signal
    stops the run at once (the summary's epochs then match metrics.csv)."""
    stop.hold()
    try:
        training.history.append(row)
        callbacks.on_epoch_end(row["epoch"], row)
        training.at_epoch_end = not training.halted
    finally:
        stop.release()


def train(cfg: Config, out: str | Path | None = None, runs_root: str | Path = "runs",
          progress=None, data: Data | None = None, start: Start | None = None,
          callbacks: list[Callback] = ()) -> Run:
    """Train the network ``cfg`` describes; write its run folder; return the Run.

    ``out``: the run folder to use (must be new or empty). ``progress``: an
    object with ``start(total)``, ``update(epoch, row)`` and ``stop()``.
    ``data``: the config's data already loaded (else it is loaded here).
    ``start``: go on from a checkpoint in ``out`` (see nntrain.resume).
    ``callbacks``: the user's own (nntrain.callbacks.Callback), run after the built-in ones.
    Raises ConfigError before anything is written if the config or data is wrong.
    """
    # 1. data, network, loss, optimizer: a mistake in any fails before anything is written
    folder = RunFolder.plan(out, runs_root, cfg.name, resumed=start is not None)
    exp = setup(cfg, data)
    settings, net = exp.cfg.train, exp.net
    batches = Batches(exp.train, exp.batch_size, np.random.default_rng([1, cfg.seed]))
    threads = blas_threads(settings.threads, net.sizes, exp.batch_size)
    arrays = (net.parameters(), net.gradients(), net.is_weight())  # live lists, taken once
    stopper = EarlyStopping(settings.early_stopping)
    if start is not None:
        start.apply(exp, batches, stopper)

    # 2. the run folder: config.yaml and data.npz (a resumed run: the rows after its checkpoint
    # dropped), then the callbacks open their files
    folder.open(exp.cfg.to_dict(), exp.data.prep.to_arrays())
    training = Training(exp, folder, batches, list(start.history) if start else [],
                        resumed_at=start.epoch if start else None)
    training.started -= start.time_s if start else 0.0
    fields = summary_fields(exp, folder.path, threads, start)
    calls = CallbackList(default_callbacks(exp, stopper, fields, progress, list(callbacks)),
                         training)

    # Overflow in a diverging run is expected and detected by a callback: numpy need not warn.
    with (np.errstate(over="ignore", invalid="ignore", divide="ignore"), limit_threads(threads),
          StopRequests() as stop):
        try:
            calls.on_train_begin()
            # 3. epoch 0, the untrained network (a resumed run has its rows already)
            if not training.history:
                end_epoch(training, calls, stop, epoch_row(exp, 0, untrained_figures(exp), 0.0))
            first = start.epoch + 1 if start else 1
            for epoch in range(first, settings.epochs + 1):
                if training.stopping:
                    break
                # 4. one pass over the data, validation after the updates; then the callbacks
                training.at_epoch_end = False
                lr = exp.schedule(exp.cfg.optimizer.lr, epoch - 1)
                figures = train_epoch(exp, batches, lr, arrays)
                row = epoch_row(exp, epoch, figures, training.clock())
                if epoch == settings.epochs:
                    training.stop("completed")
                if stop.requested:  # a first Ctrl-C: stop after this epoch
                    training.stop("interrupted")
                end_epoch(training, calls, stop, row)
            if training.status == "interrupted":
                training.summary["signal"] = stop.requested
        except KeyboardInterrupt as signalled:  # a second Ctrl-C, or SIGTERM: at once
            training.stop("interrupted")
            training.summary["signal"] = signal_name(signalled)
        except BaseException:
            training.stop("failed")
            raise
        finally:
            # 5. the state to resume from, the parameters, the test figures, the summary
            propagating = training.status == "failed"  # a failed save must not hide it
            if training.status == "running":
                training.stop("completed")
            calls.on_train_end(training.history[-1] if training.history else None)
            if calls.failure and not propagating:
                raise calls.failure
    run = Run(folder.path, fields, training.history)
    if training.status == "interrupted":
        raise Interrupted(run, fields["signal"])
    return run
