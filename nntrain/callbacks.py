"""What happens around the training loop's epochs: one interface, Keras' callbacks.

    class Every100(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch % 100 == 0:
                print(epoch, logs["loss"])

    nntrain.train(cfg, callbacks=[Every100()])

The loop calls ``on_train_begin()``, ``on_epoch_end(epoch, logs)`` after each
epoch (logs: that epoch's metrics.csv row), and ``on_train_end(logs)`` however
the run ended. A callback sees the run through ``self.training`` (a Training:
the experiment, the run folder, the history) and ends it with
``self.training.stop(status)``, as Keras' ``model.stop_training``.

The built-in ones are the run folder's writers (metrics.csv, layers.csv,
checkpoints, snapshots, summary.json, model.npz), the divergence sentinel,
early stopping and the progress display; ``default_callbacks`` lists them in
the order they run.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import EarlyStopping as EarlyStoppingSetting, plugin_hash
from .diagnostics import LAYER_COLUMNS, first_nonfinite, layer_stats
from .experiment import Experiment, evaluate
from .runs import RunFolder, socket_host
from .signals import StopRequests
from .snapshots import Snapshots, truncate_snapshots
from .version import version


@dataclass
class Start:
    """Where a resumed run picks up: the state of its checkpoint and the rows before it
    (nntrain.resume reads it; each callback restores its own part)."""

    epoch: int
    params: list[np.ndarray]
    best_params: list[np.ndarray] | None
    optimizer: dict
    batch_rng: dict
    stopper: dict
    history: list[dict]
    time_s: float


STATUSES = ("completed", "early_stopped", "diverged", "interrupted", "failed")


@dataclass
class Training:
    """The state of one training run, as the loop and its callbacks share it."""

    exp: Experiment
    start: Start | None = None  # a resumed run's checkpoint; None: a new run
    folder: RunFolder = field(default_factory=lambda: RunFolder(None))  # opened by RunFiles
    history: list[dict] = field(default_factory=list)  # the rows of metrics.csv so far
    summary: dict = field(default_factory=dict)  # summary.json, kept by the Summary callback
    status: str = "running"  # then one of STATUSES
    halted: bool = False  # this epoch's state is not to be kept (it diverged)
    at_epoch_end: bool = True  # False from an epoch's start until its row is written
    began: bool = False  # every callback's on_train_begin has returned
    signals: StopRequests | None = None  # held while a row is written (see MetricsLog)
    started: float = field(default_factory=time.perf_counter)
    evaluations: int = 0  # loss evaluations training has spent (metrics.csv's evaluations)
    stacked: object = None  # a stacked member's view of its stack (stack.MemberView): what it
    #                         measures for every member at once, the member's bit for bit

    def __post_init__(self) -> None:
        """A resumed run: the network, optimizer and batch order as its checkpoint left them,
        its rows so far and its wall time counted on (early stopping loads its own part)."""
        start, exp = self.start, self.exp
        if start is not None:
            exp.net.load_parameters(start.params)
            exp.optimizer.load_state_dict(start.optimizer)
            exp.batches.rng.bit_generator.state = start.batch_rng
            self.history = list(start.history)
            self.started -= start.time_s
            # counted on from the checkpoint's row (a run of an earlier version has none)
            self.evaluations = int(self.history[-1].get("evaluations") or 0)

    @property
    def resumed_at(self) -> int | None:
        """The epoch a resumed run goes on from; None for a new run."""
        return self.start.epoch if self.start is not None else None

    def stop(self, status: str, halt: bool = False) -> None:
        """End the run after this epoch with ``status`` (one of STATUSES); ``halt``: at once,
        the epoch's state unkept (the later callbacks do not see it)."""
        if status not in STATUSES:
            raise ValueError(f"a run ends {', '.join(STATUSES)}; got {status!r}")
        self.status, self.halted = status, halt
        if halt:
            self.at_epoch_end = False

    def parameters_finite(self) -> bool:
        """Every parameter of the network is finite now (stacked members are told by their
        stack, which checks all of them at once)."""
        if self.stacked is not None:
            return self.stacked.parameters_finite()
        return all(np.isfinite(p).all() for p in self.exp.net.parameters())

    @property
    def stopping(self) -> bool:
        return self.status != "running"

    def clock(self) -> float:
        """Seconds of training so far (a resumed run's earlier ones included)."""
        return time.perf_counter() - self.started


class Callback:
    """Base class: every hook does nothing. ``self.training`` is set before on_train_begin."""

    training: Training

    def on_train_begin(self) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, logs: dict | None) -> None:
        pass


class CallbackList:
    """Calls each callback in order, and at the run's end in the reverse order, as nested
    context managers end: what began first ends last (the run folder's summary after
    everything else). At an epoch's end a halted run's later callbacks are skipped. At the
    run's end every callback that began is called even if one fails (a full disk, a bug in
    a user's callback); the first failure is kept in ``failure`` and the run is 'failed'."""

    def __init__(self, callbacks: list[Callback], training: Training):
        self.callbacks, self.training = list(callbacks), training
        self.failure: Exception | None = None
        self.begun = 0  # callbacks whose on_train_begin has returned
        for callback in self.callbacks:
            callback.training = training
        # called every epoch: only the callbacks with something to do then (most of the
        # run folder's writers act at the run's start and end only); a hook set on the
        # callback itself (Keras' LambdaCallback style) counts
        self.epoch_enders = [c for c in self.callbacks
                             if "on_epoch_end" in getattr(c, "__dict__", {})
                             or getattr(type(c), "on_epoch_end", None) is not Callback.on_epoch_end]

    def on_train_begin(self) -> None:
        for callback in self.callbacks:
            callback.on_train_begin()
            self.begun += 1
        self.training.began = True

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        for callback in self.epoch_enders:
            if self.training.halted:
                break
            callback.on_epoch_end(epoch, logs)

    def on_train_end(self, logs: dict | None) -> None:
        for callback in reversed(self.callbacks[:self.begun]):
            try:
                callback.on_train_end(logs)
            except Exception as err:  # noqa: BLE001  kept, and raised when all have ended
                self.failure = self.failure or err
                self.training.status = "failed"


# -- the run folder's files ----------------------------------------------------------------


class RunFiles(Callback):
    """A new run's folder (``out``, new or empty, else under ``root``), claimed atomically,
    with config.yaml (the resolved config) and data.npz (the fitted preprocessor): what
    predict, evaluate and resume read back."""

    def __init__(self, out: str | Path | None, root: str | Path):
        self.out, self.root = out, root

    def on_train_begin(self) -> None:
        exp = self.training.exp
        self.training.folder.open(self.out, self.root, exp.cfg.to_dict(),
                                  exp.data.prep.to_arrays(), resumed=self.training.start is not None)

    def on_train_end(self, logs: dict | None) -> None:
        self.training.folder.release()  # the last to end: every file is written


EVALUATIONS = "evaluations"  # metrics.csv's last column: loss evaluations spent so far


class MetricsLog(Callback):
    """metrics.csv and the run's history (Keras' CSVLogger and History): one row per epoch,
    flushed as it is written, into both or neither even when a signal stops the run at once
    (the summary's epochs then match metrics.csv)."""

    def on_train_begin(self) -> None:
        exp, training = self.training.exp, self.training
        # evaluations last: every column before it keeps its place (and `cut -f`'s number)
        columns = [*exp.task.columns(exp.val is not None), EVALUATIONS]
        if training.history and EVALUATIONS not in training.history[0]:
            columns.remove(EVALUATIONS)  # resuming a run of an earlier version: its header
        self.log = training.folder.csv_log(training.folder.METRICS, columns, training.resumed_at)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        training = self.training
        if training.signals is not None:
            training.signals.hold()
        try:
            self.log.write(logs)
            training.history.append(logs)
            training.at_epoch_end = True
        finally:
            if training.signals is not None:
                training.signals.release()

    def on_train_end(self, logs: dict | None) -> None:
        self.log.close()


class LayerLog(Callback):
    """layers.csv: per-layer statistics at epoch 0 and every ``every`` epochs (0: none)."""

    def __init__(self, every: int):
        self.every = every

    def on_train_begin(self) -> None:
        training = self.training
        if not self.every:
            return
        self.log = training.folder.csv_log(training.folder.LAYERS, LAYER_COLUMNS,
                                           training.resumed_at)

    def write(self, epoch: int, X: np.ndarray, optimizer=None, Y=None, loss=None) -> None:
        for row in layer_stats(self.training.exp.net, X, optimizer, Y, loss):
            if optimizer is not None and optimizer.gradient_free:
                row["grad_norm"] = None  # no backward pass: the gradients are epoch 0's
            self.log.write({"epoch": epoch, **row})

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        exp = self.training.exp
        if not self.every or epoch % self.every:
            return
        if epoch == 0:  # the untrained network: a backward pass over the training data first
            self.write(0, exp.train.X, Y=exp.train.Y, loss=exp.loss)
        elif self.training.stacked is not None:  # measured for every member at once
            for row in self.training.stacked.layer_stats(epoch):
                self.log.write({"epoch": epoch, **row})
        else:  # the gradients and updates of the epoch's last batch
            self.write(epoch, exp.train.X, exp.optimizer)

    def on_train_end(self, logs: dict | None) -> None:
        if self.every:
            self.log.close()


# -- ending a run --------------------------------------------------------------------------


class DivergenceSentinel(Callback):
    """Keras' TerminateOnNaN: a non-finite loss, validation loss, gradient norm or parameter
    ends the run at once as 'diverged' (a result, not an error), naming the first layer
    that overflowed."""

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if not epoch:  # the untrained network is where training starts, whatever its loss
            return
        figures = (logs["loss"], logs["grad_norm"] or 0.0, logs.get("val_loss") or 0.0)
        net = self.training.exp.net
        if all(map(math.isfinite, figures)) and self.training.parameters_finite():
            return
        self.training.summary["diverged"] = {"epoch": epoch,
                                             **first_nonfinite(net, self.training.exp.train.X)}
        self.training.stop("diverged", halt=True)


class EarlyStopping(Callback):
    """The best epoch of the monitored figure (val_loss with validation data, else loss); with
    a setting, stops after ``patience`` epochs without improvement and restores the best
    parameters. Without one, the best row is still kept for the summary."""

    def __init__(self, setting: EarlyStoppingSetting | None):
        self.setting = setting
        self.best, self.row, self.saved, self.wait = math.inf, None, None, 0

    def on_train_begin(self) -> None:
        start = self.training.start
        if start is not None:
            self.load(start.stopper, start.best_params)
        if self.should_stop():  # resumed after it had stopped, patience unchanged
            self.training.stop("early_stopped")

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        monitor = self.training.exp.monitor
        min_delta = self.setting.min_delta if self.setting else 0.0
        if logs[monitor] < self.best - min_delta:
            self.best, self.row, self.wait = logs[monitor], logs, 0
            if self.setting and self.setting.restore_best:
                self.saved = [p.copy() for p in self.training.exp.net.parameters()]
        else:
            self.wait += 1
        if self.should_stop():
            self.training.stop("early_stopped")

    def should_stop(self) -> bool:
        return self.setting is not None and self.wait >= self.setting.patience

    def state(self) -> dict:
        """What a checkpoint keeps of it (the saved parameters go beside, as arrays)."""
        return {"best": self.best, "row": self.row, "wait": self.wait}

    def load(self, state: dict, saved: list[np.ndarray] | None) -> None:
        self.best, self.row, self.wait = state["best"], state["row"], state["wait"]
        self.saved = saved

    def on_train_end(self, logs: dict | None) -> None:
        """Load the best epoch's parameters (if kept) into the network."""
        if self.should_stop() and self.saved is not None:
            self.training.exp.net.load_parameters(self.saved)
            self.training.summary["restored_epoch"] = self.row["epoch"]


# -- saving state --------------------------------------------------------------------------


class Checkpoint(Callback):
    """checkpoint.npz (Keras' BackupAndRestore), the latest state a run can be resumed from:
    parameters, optimizer state, batch-order generator, early-stopping state and epoch;
    replaced atomically every ``every`` epochs, or with auto about every AUTO_SECONDS of
    wall time; and at the run's end, if its last epoch finished."""

    AUTO_SECONDS = 2.0  # an xor epoch takes 0.05 ms and a checkpoint about 1 ms to write

    def __init__(self, every: int | str, stopper: EarlyStopping):
        self.every, self.stopper = every, stopper
        self.saved_at, self.saved_epoch = time.perf_counter(), None

    def on_train_begin(self) -> None:
        self.saved_epoch = self.training.resumed_at  # resumed: the checkpoint it goes on from

    def due(self, epoch: int) -> bool:
        if self.every == "auto":
            return time.perf_counter() - self.saved_at >= self.AUTO_SECONDS
        return bool(self.every) and epoch % self.every == 0

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        # epoch 0 too: a run stopped (even SIGKILLed) before its first periodic checkpoint can
        # be resumed from its start
        if self.due(epoch) if epoch else self.training.start is None:
            self.save(epoch, logs["time_s"])

    def save(self, epoch: int, time_s: float) -> None:
        if self.every == 0:
            return
        exp, stopper = self.training.exp, self.stopper
        names = exp.net.parameter_names()
        state = {"epoch": epoch, "time_s": time_s, "stopper": stopper.state(),
                 "batch_rng": exp.batches.rng.bit_generator.state,
                 "epochs_target": exp.cfg.train.epochs}  # resume goes on to it
        best = dict(zip(names, stopper.saved)) if stopper.saved is not None else None
        self.training.folder.write_checkpoint(dict(zip(names, exp.net.parameters())), state,
                                              exp.optimizer.state_dict(), best)
        self.saved_at, self.saved_epoch = time.perf_counter(), epoch

    def on_train_end(self, logs: dict | None) -> None:
        """The last finished epoch's state (before early stopping restores the best
        parameters: it ends after this one); none for an epoch cut short or diverged."""
        if self.training.at_epoch_end and logs is not None and logs["epoch"] != self.saved_epoch:
            self.save(logs["epoch"], logs["time_s"])


class SnapshotLog(Callback):
    """snapshots.bin: the parameters at the epochs ``train.snapshot_every`` keeps, for the
    pictures; and at the run's last finished epoch."""

    def __init__(self, every: int | str, epochs: int):
        self.every, self.epochs = every, epochs

    def on_train_begin(self) -> None:
        training = self.training
        path = training.folder.snapshots_path
        if training.resumed_at is not None:
            truncate_snapshots(path, training.resumed_at)
        self.snapshots = Snapshots(path, self.every, self.epochs, training.exp.net)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.snapshots.due(epoch):
            self.snapshots.save(epoch)

    def on_train_end(self, logs: dict | None) -> None:
        try:
            if self.training.at_epoch_end and logs is not None:  # before the best is restored
                self.snapshots.save(logs["epoch"])
        finally:
            self.snapshots.close()


class ModelFile(Callback):
    """model.npz at the run's end: the final parameters (the best ones, once early stopping
    has restored them), loaded with allow_pickle=False."""

    def on_train_end(self, logs: dict | None) -> None:
        if not self.training.began:  # never a resumed run's model.npz replaced by a failed start
            return
        net = self.training.exp.net
        self.training.folder.save_model(net.parameter_names(), net.parameters())


class TestFigures(Callback):
    """The held-out test part, evaluated once when training has ended (summary.json's test)."""

    def on_train_end(self, logs: dict | None) -> None:
        exp = self.training.exp
        if exp.test is not None and self.training.began and self.training.status != "failed":
            E, metric, _ = evaluate(exp.net, exp.loss, exp.task, exp.test)
            self.training.summary["test"] = {"loss": E, exp.task.metric: metric}


NOT_FIGURES = ("lr", "time_s", EVALUATIONS)  # columns of a row that summary.json leaves out


class Summary(Callback):
    """summary.json: written as 'running' when the run starts, replaced atomically at its end
    with the status, the final and best rows and the wall time."""

    def __init__(self, stopper: EarlyStopping):
        self.stopper = stopper

    def on_train_begin(self) -> None:
        training = self.training
        exp, cfg = training.exp, training.exp.cfg
        training.summary.update({
            "status": "running", "name": cfg.name, "path": str(training.folder.path),
            "task": exp.task.name, "epochs": 0, "epochs_planned": cfg.train.epochs,
            "monitor": exp.monitor, "final": None, "best": None, "restored_epoch": None,
            "diverged": None, "wall_time_s": 0.0, "seed": cfg.seed, "data_seed": cfg.data.seed,
            "n_train": len(exp.train.X), "n_val": len(exp.val.X) if exp.val else 0,
            "n_parameters": int(sum(p.size for p in exp.net.parameters())),
            "threads": exp.threads, "config_hash": cfg.hash(), "versions": versions(),
            "plugins": [{"file": p, "sha256": plugin_hash(p)} for p in cfg.plugins],
            "started": now(), "pid": os.getpid(), "host": socket_host(),
            "resumed_from": training.resumed_at})
        training.folder.write_summary(training.summary)

    def on_train_end(self, logs: dict | None) -> None:
        training = self.training
        best = self.stopper.row
        training.summary.update(
            status=training.status,
            epochs=logs["epoch"] if logs else 0,
            final={k: v for k, v in logs.items() if k not in ("epoch", *NOT_FIGURES)}
            if logs else None,
            best={k: v for k, v in best.items() if k not in NOT_FIGURES} if best else None,
            wall_time_s=round(time.perf_counter() - training.started, 6),
            finished=now(),
        )
        training.folder.write_summary(training.summary)


class Progress(Callback):
    """The progress display (a rich bar, or a line per epoch): ``display`` has ``start(total)``,
    ``update(epoch, row)`` and ``stop()``."""

    def __init__(self, display, epochs: int):
        self.display, self.epochs = display, epochs

    def on_train_begin(self) -> None:
        self.display.start(self.epochs)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if epoch:  # the evaluations count is metrics.csv's, not a figure to print
            self.display.update(epoch, {k: v for k, v in logs.items() if k != EVALUATIONS})

    def on_train_end(self, logs: dict | None) -> None:
        self.display.stop()


def default_callbacks(training: Training, progress, user: list[Callback],
                      out: str | Path | None = None, root: str | Path = "runs") -> CallbackList:
    """The built-in callbacks and the user's. At an epoch's end they run in this order: the
    user's (they see the row first), the logs, what may end the run, what saves its state
    (after early stopping has counted the epoch, so that a checkpoint holds its state),
    progress. At the run's end in the reverse order: the last checkpoint and snapshot, early
    stopping restoring the best parameters, the logs closed, the user's, then model.npz, the
    test figures and summary.json."""
    settings = training.exp.cfg.train
    stopper = EarlyStopping(settings.early_stopping)
    return CallbackList([
        RunFiles(out, root), Summary(stopper), TestFigures(), ModelFile(), *user,
        MetricsLog(), LayerLog(settings.diagnostics_every), DivergenceSentinel(), stopper,
        Checkpoint(settings.checkpoint_every, stopper),
        SnapshotLog(settings.snapshot_every, settings.epochs),
        *([Progress(progress, settings.epochs)] if progress else [])], training)


def versions() -> dict:
    import platform

    return {"nntrain": version(), "numpy": np.__version__, "python": platform.python_version()}



def now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")
