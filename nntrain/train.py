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
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .config import Config
from .datasets import Data, load_data
from .diagnostics import LayerLog, first_nonfinite
from .losses import LOSSES
from .network import Network
from .optimizers import OPTIMIZERS, SCHEDULES
from .registry import ConfigError
from .threads import blas_threads, limit_threads
from .runs import CsvLog, claim_out_dir, check_out_dir, new_run_dir, save_model, write_json, write_yaml

# Task -> (output activation, loss) when the config leaves them out.
TASK_DEFAULTS = {
    "binary": ("sigmoid", "bce"),
    "multiclass": ("softmax", "cross_entropy"),
    "regression": ("identity", "mse"),
}


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


def resolve(cfg: Config, data: Data) -> Config:
    """Fill what depends on the data (output activation, loss, lr) and check the layer sizes."""
    model, opt = cfg.model, cfg.optimizer
    out_default, loss_default = TASK_DEFAULTS[data.task]
    loss = cfg.loss if cfg.loss is not None else loss_default
    needs = LOSSES.build(loss, "loss").needs
    output = model.output_activation
    if output is None:
        output = needs[0] if needs else out_default
    sizes = list(model.layers)
    what = {"binary": "a binary task needs 1 output",
            "multiclass": f"the data has {data.n_outputs} classes",
            "regression": f"the data has {data.n_outputs} target(s)"}[data.task]
    if sizes[0] != data.n_features:
        raise ConfigError(f"the input size is {sizes[0]} but the data has {data.n_features} "
                          f"features: use [{data.n_features}, ...]", "model.layers")
    if sizes[-1] != data.n_outputs:
        raise ConfigError(f"the output size is {sizes[-1]} but {what}: use [..., {data.n_outputs}]",
                          "model.layers")
    lr = opt.lr if opt.lr is not None else OPTIMIZERS.get(opt.name).default_lr
    return replace(
        cfg,
        loss=loss,
        model=replace(model, output_activation=output),
        optimizer=replace(opt, lr=lr),
        data=replace(cfg.data, task=data.task),
    )


def prepare(cfg: Config) -> tuple[Config, Data]:
    """Load the config's data and resolve what depends on it."""
    data = load_data({"name": cfg.data.name, **cfg.data.params}, seed=cfg.data.seed,
                     val_fraction=cfg.data.val_fraction, standardize=cfg.data.standardize,
                     task=cfg.data.task)
    return resolve(cfg, data), data


def build_network(cfg: Config, initializer=None, dtype: str | None = None) -> Network:
    """The resolved config's network; ``initializer``/``dtype`` replace the config's."""
    model = cfg.model
    return Network(list(model.layers), model.activation, model.output_activation,
                   model.initializer if initializer is None else initializer,
                   model.bias_initializer, seed=cfg.seed, dtype=dtype or cfg.train.dtype)


def metric_name(task: str) -> str:
    return "mae" if task == "regression" else "accuracy"


def columns_for(task: str, has_val: bool) -> list[str]:
    """metrics.csv header: Keras-style names, columns that do not apply left out."""
    metric = metric_name(task)
    cols = ["epoch", "loss"] + (["val_loss"] if has_val else []) + [metric]
    return cols + ([f"val_{metric}"] if has_val else []) + ["lr", "grad_norm", "time_s"]


def metric_sum(output: np.ndarray, labels: np.ndarray, task: str) -> float:
    """Correct predictions (classes) or summed mean-absolute error per sample (regression)."""
    if task == "binary":
        return float(np.count_nonzero((output[:, 0] > 0.5) == labels))
    if task == "multiclass":
        return float(np.count_nonzero(output.argmax(axis=1) == labels))
    return float(np.abs(output - labels).sum()) / output.shape[1]


def targets_for_metric(Y: np.ndarray, task: str) -> np.ndarray:
    """What ``metric_sum`` compares against: 0/1 flags, class indices or the targets."""
    if task == "binary":
        return Y[:, 0] > 0.5
    return Y.argmax(axis=1) if task == "multiclass" else Y


def evaluate(net: Network, X, Y, labels, loss, task) -> tuple[float, float]:
    """Loss and accuracy (or mae) of the whole set in one forward pass."""
    E = net.loss(X, Y, loss)
    return E, metric_sum(net.output, labels, task) / len(X)


class Batches:
    """An epoch's batches of (X, Y, labels): the whole set, or shuffled mini-batches gathered
    into buffers made once per batch size."""

    def __init__(self, X, Y, labels, size: int, rng: np.random.Generator):
        self.arrays, self.size, self.rng = (X, Y, labels), size, rng
        n = len(X)
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


def versions() -> dict:
    return {"nntrain": __version__, "numpy": np.__version__, "python": platform.python_version()}


def train(cfg: Config, out: str | Path | None = None, runs_root: str | Path = "runs",
          progress=None) -> Run:
    """Train the network ``cfg`` describes; write its run folder; return the Run.

    ``out``: the run folder to use (must be new or empty). ``progress``: an
    object with ``start(total)``, ``update(epoch, loss)`` and ``stop()``.
    Raises ConfigError before anything is written if the config or data is wrong.
    """
    # 1. data, then what the config left to the data (output activation, loss, lr)
    out_path = check_out_dir(out) if out is not None else None
    cfg, data = prepare(cfg)
    opt, tc = cfg.optimizer, cfg.train

    # 2. network, loss, optimizer; data in the network's dtype once, not per epoch
    net = build_network(cfg)
    loss = LOSSES.build(cfg.loss, "loss")
    optimizer = OPTIMIZERS.build({"name": opt.name, **opt.params}, "optimizer")
    schedule = SCHEDULES.build(opt.schedule, "optimizer.schedule")
    X, Y = data.X_train.astype(net.dtype), data.Y_train.astype(net.dtype)
    labels = targets_for_metric(Y, data.task)
    has_val = data.X_val is not None
    if has_val:
        X_val, Y_val = data.X_val.astype(net.dtype), data.Y_val.astype(net.dtype)
        labels_val = targets_for_metric(Y_val, data.task)
    n = len(X)
    batch = n if opt.batch_size is None else min(opt.batch_size, n)
    # batch order from its own generator; init uses default_rng(seed)
    batches = Batches(X, Y, labels, batch, np.random.default_rng([1, cfg.seed]))
    threads = blas_threads(tc.threads, net.sizes, batch)
    n_parameters = int(sum(p.size for p in net.parameters()))
    params, grads, is_weight = net.parameters(), net.gradients(), net.is_weight()
    metric = metric_name(data.task)
    monitor = "val_loss" if has_val else "loss"

    # 3. the run folder: everything above could fail without leaving anything behind
    path = claim_out_dir(out_path) if out_path is not None else new_run_dir(runs_root, cfg.name)
    write_yaml(path / "config.yaml", cfg.to_dict())
    summary = {
        "status": "running", "name": cfg.name, "path": str(path), "task": data.task, "epochs": 0,
        "epochs_planned": tc.epochs, "monitor": monitor, "final": None, "best": None,
        "diverged": None, "wall_time_s": 0.0, "seed": cfg.seed, "data_seed": cfg.data.seed,
        "n_train": n, "n_val": len(data.X_val) if has_val else 0,
        "n_parameters": n_parameters, "threads": threads, "config_hash": cfg.hash(),
        "versions": versions(), "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pid": os.getpid(), "host": socket.gethostname(),
    }
    write_json(path / "summary.json", summary)
    metrics = CsvLog(path / "metrics.csv", columns_for(data.task, has_val))
    layers = LayerLog(path / "layers.csv") if tc.diagnostics_every else None
    run = Run(path, summary)
    stop = tc.early_stopping
    best_value, best_row, best_params, wait = math.inf, None, None, 0
    start = time.perf_counter()
    status = "completed"

    def record(row: dict) -> None:
        nonlocal best_value, best_row, best_params, wait
        metrics.write(row)
        run.history.append(row)
        value = row[monitor]
        if value < best_value - (stop.min_delta if stop else 0.0):
            best_value, best_row, wait = value, row, 0
            if stop and stop.restore_best:
                best_params = [p.copy() for p in params]
        else:
            wait += 1

    # Overflow in a diverging run is expected and detected below: numpy need not warn.
    with (np.errstate(over="ignore", invalid="ignore", divide="ignore"), limit_threads(threads),
          CtrlC() as ctrl_c):
        try:
            # 4. epoch 0: the untrained network
            row = {"epoch": 0, "lr": schedule(opt.lr, 0), "grad_norm": None, "time_s": 0.0}
            row["loss"], row[metric] = evaluate(net, X, Y, labels, loss, data.task)
            if has_val:
                row["val_loss"], row[f"val_{metric}"] = evaluate(net, X_val, Y_val, labels_val, loss,
                                                                 data.task)
            if layers:
                layers.write(0, net, X, Y=Y, loss=loss)  # with a backward pass: gradients at init
            record(row)
            if progress:
                progress.start(tc.epochs)

            for epoch in range(1, tc.epochs + 1):
                # 5. one pass over the data: forward, loss, backward, update per batch
                lr = schedule(opt.lr, epoch - 1)
                loss_sum = metric_total = grad_norm_sum = 0.0
                n_batches = 0
                for xb, yb, lb in batches:
                    E = net.loss_and_backward(xb, yb, loss)
                    loss_sum += E * len(xb)
                    metric_total += metric_sum(net.output, lb, data.task)
                    grad_norm_sum += math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
                    n_batches += 1
                    optimizer.step(params, grads, lr, is_weight)

                # 6. the epoch's row; validation after the updates
                row = {"epoch": epoch, "loss": loss_sum / n, metric: metric_total / n, "lr": lr,
                       "grad_norm": grad_norm_sum / n_batches}
                if has_val:
                    row["val_loss"], row[f"val_{metric}"] = evaluate(net, X_val, Y_val, labels_val,
                                                                     loss, data.task)
                row["time_s"] = time.perf_counter() - start
                if layers and epoch % tc.diagnostics_every == 0:
                    layers.write(epoch, net, X, optimizer)

                # 7. divergence: a non-finite loss, gradient or parameter ends the run (a result, not an error)
                if not all(math.isfinite(row[k]) for k in ("loss", "grad_norm")) or (
                        has_val and not math.isfinite(row["val_loss"])) or not all(
                        np.isfinite(p).all() for p in params):
                    summary["diverged"] = {"epoch": epoch, **first_nonfinite(net, X)}
                    metrics.write(row)
                    run.history.append(row)
                    status = "diverged"
                    break
                record(row)
                if progress:
                    progress.update(epoch, row["loss"])
                if stop and wait >= stop.patience:
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
            # 8. save the parameters and the summary, whatever happened
            if progress:
                progress.stop()
            if stop and stop.restore_best and best_params is not None and status == "early_stopped":
                net.load_parameters(best_params)
            metrics.close()
            if layers:
                layers.close()
            save_model(path / "model.npz", net.parameter_names(), params)
            last = run.history[-1] if run.history else None
            skip = ("epoch", "lr", "time_s")
            summary.update(
                status=status,
                epochs=last["epoch"] if last else 0,
                final={k: v for k, v in last.items() if k not in skip} if last else None,
                best={k: v for k, v in best_row.items() if k not in ("lr", "time_s")} if best_row else None,
                wall_time_s=round(time.perf_counter() - start, 6),
                finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            write_json(path / "summary.json", summary)
    if status == "interrupted":
        raise Interrupted(run)
    return run
