"""From a config to a ready experiment: its data, what the data decides, the network, and the
figures measured on it.

``prepare(cfg)`` loads the data and fills what the config left to it (the
output activation and loss from the task, the optimizer's default lr) and
checks the layer sizes against it. ``setup(cfg)`` goes on to build the
network, loss, optimizer and schedule, with the data in the network's dtype.
train, compare, diagnostics, inspection and gradcheck all start here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import Config
from .datasets import Data, load_data
from .losses import LOSSES, Loss
from .network import Network
from .optimizers import OPTIMIZERS, SCHEDULES, Optimizer, Schedule
from .registry import ConfigError, describe

# Task -> (output activation, loss) when the config leaves them out.
TASK_DEFAULTS = {
    "binary": ("sigmoid", "bce"),
    "multiclass": ("softmax", "cross_entropy"),
    "regression": ("identity", "mse"),
}


def resolve(cfg: Config, data: Data) -> Config:
    """Fill what depends on the data (output activation, loss, lr) and check the layer sizes."""
    model, optimizer = cfg.model, cfg.optimizer
    output_default, loss_default = TASK_DEFAULTS[data.task]
    loss = cfg.loss if cfg.loss is not None else loss_default
    fused = LOSSES.build(loss, "loss").fused_with
    output = model.output_activation
    if output is None:
        output = fused or output_default
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
    lr = optimizer.lr if optimizer.lr is not None else OPTIMIZERS.get(optimizer.name).default_lr
    return replace(
        cfg,
        loss=loss,
        model=replace(model, output_activation=output),
        optimizer=replace(optimizer, lr=lr),
        data=replace(cfg.data, task=data.task),
    )


def prepare(cfg: Config, data: Data | None = None) -> tuple[Config, Data]:
    """Load the config's data (unless ``data``, already loaded from this config, is given) and
    resolve what depends on it."""
    if data is not None:
        return resolve(cfg, data), data
    data = load_data({"name": cfg.data.name, **cfg.data.params}, seed=cfg.data.seed,
                     val_fraction=cfg.data.val_fraction, standardize=cfg.data.standardize,
                     task=cfg.data.task, test_fraction=cfg.data.test_fraction)
    return resolve(cfg, data), data


def build_network(cfg: Config, initializer=None, dtype: str | None = None) -> Network:
    """The resolved config's network; ``initializer``/``dtype`` replace the config's."""
    model = cfg.model
    try:
        return Network(list(model.layers), model.activation, model.output_activation,
                       model.initializer if initializer is None else initializer,
                       model.bias_initializer, seed=cfg.seed, dtype=dtype or cfg.train.dtype)
    except MemoryError:  # layers: [2, 100000000, 1]
        raise ConfigError(f"the network needs more memory than there is: {describe(model.layers)}",
                          "model.layers") from None


# -- figures ---------------------------------------------------------------------------------


def metric_name(task: str) -> str:
    return "mae" if task == "regression" else "accuracy"


def columns_for(task: str, has_val: bool) -> list[str]:
    """metrics.csv header: Keras-style names, columns that do not apply left out."""
    metric = metric_name(task)
    cols = ["epoch", "loss"] + (["val_loss"] if has_val else []) + [metric]
    return cols + ([f"val_{metric}"] if has_val else []) + ["lr", "grad_norm", "time_s"]


def predicted_index(output: np.ndarray, task: str) -> np.ndarray:
    """The predicted class of each row: output > 0.5 (binary) or the largest output."""
    return (output[:, 0] > 0.5).astype(int) if task == "binary" else output.argmax(axis=1)


def metric_sum(output: np.ndarray, labels: np.ndarray, task: str) -> float:
    """Correct predictions (classes) or summed mean-absolute error per sample (regression)."""
    if task == "regression":
        return float(np.abs(output - labels).sum()) / output.shape[1]
    return float(np.count_nonzero(predicted_index(output, task) == labels))


def targets_for_metric(Y: np.ndarray, task: str) -> np.ndarray:
    """What ``metric_sum`` compares against: 0/1 flags, class indices or the targets."""
    if task == "binary":
        return Y[:, 0] > 0.5
    return Y.argmax(axis=1) if task == "multiclass" else Y


@dataclass
class Split:
    """One part of the data in the network's dtype, with what the metric compares against."""

    X: np.ndarray
    Y: np.ndarray
    labels: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray, Y: np.ndarray, dtype, task: str) -> Split:
        Y = Y.astype(dtype)
        return cls(X.astype(dtype), Y, targets_for_metric(Y, task))


@dataclass
class Experiment:
    """A resolved config with everything built from it, ready to train."""

    cfg: Config
    data: Data
    net: Network
    loss: Loss
    optimizer: Optimizer
    schedule: Schedule
    train: Split
    val: Split | None
    test: Split | None = None  # evaluated once, when training has ended

    @property
    def metric(self) -> str:
        return metric_name(self.data.task)

    @property
    def monitor(self) -> str:
        """The figure early stopping and 'best' watch: val_loss with validation data, else loss."""
        return "val_loss" if self.val is not None else "loss"

    def evaluate(self, split: Split) -> tuple[float, float]:
        """Loss and accuracy (or mae) of a whole split in one forward pass."""
        E = self.net.loss(split.X, split.Y, self.loss)
        return E, metric_sum(self.net.output, split.labels, self.data.task) / len(split.X)


def setup(cfg: Config, data: Data | None = None) -> Experiment:
    """Data, network, loss, optimizer and schedule of a config; the data in the net's dtype.
    ``data``: the config's data, already loaded (a sweep's driver ships it to its workers)."""
    cfg, data = prepare(cfg, data)
    net = build_network(cfg)
    optimizer = cfg.optimizer
    has_val = data.X_val is not None
    return Experiment(
        cfg=cfg, data=data, net=net,
        loss=LOSSES.build(cfg.loss, "loss"),
        optimizer=OPTIMIZERS.build({"name": optimizer.name, **optimizer.params}, "optimizer"),
        schedule=SCHEDULES.build(optimizer.schedule, "optimizer.schedule"),
        train=Split.of(data.X_train, data.Y_train, net.dtype, data.task),
        val=Split.of(data.X_val, data.Y_val, net.dtype, data.task) if has_val else None,
        test=(Split.of(data.X_test, data.Y_test, net.dtype, data.task)
              if data.X_test is not None else None),
    )
