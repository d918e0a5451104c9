"""The training loop: one plain function, read top to bottom.

Epoch semantics follow Keras: an epoch's ``loss`` and ``accuracy`` are the
sample-weighted means over its mini-batches, measured by the forward passes
training already does (before each batch's update); ``val_*`` are measured
on the validation set after the epoch. Row 0 is the untrained network.
Everything that happens at an epoch's end (the run folder's files, early
stopping, the divergence sentinel, progress) is a callback (nntrain/callbacks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .callbacks import Callback, CallbackList, Start, Training, default_callbacks
from .config import Config
from .experiment import Experiment, setup
from .network import gradient_norm
from .preprocess import Data
from .signals import StopRequests, signal_name
from .threads import limit_threads


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


class Probe:
    """The loss closure an optimizer's step calls (as torch.optim's ``step(closure)``): the
    batch's loss at the current parameters, one forward pass per call, counted in ``count``.

    A point measured before on the same batch is not measured again: its loss and output are
    kept with a copy of its parameters (random search remembers the loss of the point it
    stands on, as CS231n's loop does). With the whole training set as the one batch that
    memory lasts from step to step; with mini-batches it lasts one batch.
    """

    def __init__(self, net, loss, params: list[np.ndarray], whole: bool):
        self.net, self.loss, self.params, self.whole = net, loss, params, whole
        self.seen: list[tuple[list[np.ndarray], float, np.ndarray]] = []  # (params, E, output)
        self.count = 0
        self.known_free = False  # a resumed run's first measurement (see ``resumed``)

    def resumed(self) -> None:
        """The checkpoint keeps no measurement: the first one re-creates what the unbroken run
        knew from its last step, so it is not counted (the count goes on as if unbroken)."""
        self.known_free = self.whole

    def batch(self, X: np.ndarray, Y: np.ndarray, forget: bool = False) -> None:
        """The next batch; with mini-batches (or ``forget``: a gradient step moved the
        parameters) nothing measured before is kept."""
        self.X, self.Y = X, Y
        if forget or not self.whole:
            self.seen = []

    def here(self) -> tuple[float, np.ndarray]:
        """The loss and output at the current parameters; only this point is kept from what
        the last step measured."""
        found = self.lookup()
        if found is None:
            found = self.measure(count=not self.known_free)
        self.known_free = False
        self.seen = [found]
        return found[1], found[2]

    def __call__(self) -> float:
        found = self.lookup()
        return (found if found is not None else self.measure())[1]

    def lookup(self):
        for found in self.seen:
            if all(np.array_equal(p, q) for p, q in zip(self.params, found[0])):
                return found
        return None

    def measure(self, count: bool = True):
        E, output = self.net.loss_and_output(self.X, self.Y, self.loss)
        self.count += count
        found = ([p.copy() for p in self.params], E, output.copy())
        self.seen.append(found)
        return found


def train_epoch(exp: Experiment, epoch: int, arrays: tuple, probe: Probe) -> dict:
    """One pass over the training data: forward, loss, backward and update, batch by batch.

    ``arrays``: the net's (parameters, gradients, is_weight), taken once per run. The epoch's
    loss and metric are sample-weighted means of the batches' (each measured before its
    batch's update); grad_norm is the mean over batches of ||dE/dp||. ``spent``: the loss
    evaluations of the epoch (a forward pass 1, a backward pass 1 more, the closure's calls).
    """
    if exp.optimizer.gradient_free:
        return search_epoch(exp, epoch, arrays, probe)
    net, task = exp.net, exp.task
    lr = exp.schedule(exp.cfg.optimizer.lr, epoch - 1)
    params, grads, is_weight = arrays
    loss_sum = metric_total = grad_norm_sum = 0.0
    n_batches, counted = 0, probe.count
    for X, Y, truth in exp.batches:
        step = net.loss_and_backward(X, Y, exp.loss)
        loss_sum += step.E * len(X)
        metric_total += task.metric_sum(step.output, truth)
        grad_norm_sum += gradient_norm(grads)
        n_batches += 1
        probe.batch(X, Y, forget=True)
        exp.optimizer.step(params, grads, lr, is_weight, closure=probe)
    n = len(exp.train.X)
    return {"loss": loss_sum / n, task.metric: metric_total / n, "lr": lr,
            "grad_norm": grad_norm_sum / n_batches,
            "spent": 2 * n_batches + probe.count - counted}


def search_epoch(exp: Experiment, epoch: int, arrays: tuple, probe: Probe) -> dict:
    """A gradient-free optimizer's epoch: no backward pass; each batch's loss and metric are
    those of the point its step starts from, which the probe measures (or already knows)."""
    task, (params, _, is_weight) = exp.task, arrays
    loss_sum = metric_total = 0.0
    counted = probe.count
    for X, Y, truth in exp.batches:
        probe.batch(X, Y)
        E, output = probe.here()
        loss_sum += E * len(X)
        metric_total += task.metric_sum(output, truth)
        exp.optimizer.step(params, None, None, is_weight, closure=probe)
    n = len(exp.train.X)
    return {"loss": loss_sum / n, task.metric: metric_total / n, "lr": None, "grad_norm": None,
            "spent": probe.count - counted}


def untrained_figures(exp: Experiment) -> dict:
    """Epoch 0's training figures: the network before any update (no gradient yet)."""
    loss, metric = exp.evaluate(exp.train)
    return {"loss": loss, exp.metric: metric, "lr": exp.schedule(exp.cfg.optimizer.lr, 0),
            "grad_norm": None}


def epoch_row(exp: Experiment, epoch: int, figures: dict, training: Training,
              validation: tuple[float, float] | None = None) -> dict:
    """metrics.csv's row: the epoch's training figures, the validation figures, the time
    since training started (epoch 0's is 0) and the loss evaluations training has spent so
    far (measuring the row's figures is not training: epoch 0's and validation's not counted).
    ``validation``: the validation loss and metric measured already (a stacked member's)."""
    training.evaluations += figures.pop("spent", 0)
    row = {"epoch": epoch, **figures}
    if exp.val is not None:
        row["val_loss"], row[f"val_{exp.metric}"] = validation or exp.evaluate(exp.val)
    return {**row, "time_s": training.clock() if epoch else 0.0,
            "evaluations": training.evaluations}


def end_run(training: Training, calls: CallbackList) -> None:
    """The callbacks' ends, however the run stopped; the folder's lock released even when a
    second signal cuts them short; a failed write raised unless the run had already failed
    (a failed save must not hide that exception)."""
    propagating = training.status == "failed"
    if training.status == "running":
        training.stop("completed")
    try:
        calls.on_train_end(training.history[-1] if training.history else None)
    finally:
        training.folder.release()
    if calls.failure and not propagating:
        raise calls.failure


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
    # 1. data, network, loss, optimizer: a mistake in any fails before anything is written;
    # then the callbacks, which write the run folder
    exp = setup(cfg, data)
    training = Training(exp, start)
    calls = default_callbacks(training, progress, list(callbacks), out, runs_root)
    arrays = (exp.net.parameters(), exp.net.gradients(), exp.net.is_weight())  # taken once
    probe = Probe(exp.net, exp.loss, arrays[0], exp.batches.whole)
    if start is not None and start.epoch:
        probe.resumed()

    # Overflow in a diverging run is expected and detected by a callback: numpy need not warn.
    with (np.errstate(over="ignore", invalid="ignore", divide="ignore"),
          limit_threads(exp.threads), StopRequests() as stop):
        training.signals = stop
        try:
            calls.on_train_begin()
            # 2. epoch 0 is the untrained network (a resumed run has its rows already); then
            # one pass over the data per epoch, validation after the updates, the callbacks
            for epoch in range(0 if start is None else start.epoch + 1, exp.cfg.train.epochs + 1):
                if training.stopping:
                    break
                training.at_epoch_end = False
                figures = (train_epoch(exp, epoch, arrays, probe) if epoch
                           else untrained_figures(exp))
                row = epoch_row(exp, epoch, figures, training)
                if epoch == exp.cfg.train.epochs:
                    training.stop("completed")
                if stop.requested:  # a first Ctrl-C: stop after this epoch
                    training.stop("interrupted")
                calls.on_epoch_end(epoch, row)
            if training.status == "interrupted":
                training.summary["signal"] = stop.requested
        except KeyboardInterrupt as signalled:  # a second Ctrl-C, or SIGTERM: at once
            training.stop("interrupted")
            training.summary["signal"] = signal_name(signalled)
        except BaseException:
            training.stop("failed")
            raise
        finally:
            # 3. the state to resume from, the parameters, the test figures, the summary
            end_run(training, calls)
    run = Run(training.folder.path, training.summary, training.history)
    if training.status == "interrupted":
        raise Interrupted(run, training.summary["signal"])
    return run
