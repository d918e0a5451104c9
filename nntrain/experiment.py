"""From a config to a ready experiment: its data, what the data decides, the network, and the
figures measured on it.

``prepare(cfg)`` loads the data and fills what the config left to it (the
output activation and loss from the task, the optimizer's default lr) and
checks the layer sizes against it. ``setup(cfg)`` goes on to build the
network, loss, optimizer and schedule (each built once, here), the batches and the
BLAS threads, with the data in the network's dtype. train, compare, explain,
inspection, gradcheck and the run-folder readers start here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import Config, plugin_failures
from .datasets import load_data
from .losses import LOSSES, Loss
from .network import Network
from .optimizers import OPTIMIZERS, SCHEDULES, Optimizer, Schedule
from .preprocess import Data
from .registry import ConfigError, describe
from .tasks import TASKS, Task
from .threads import blas_threads


def resolve(cfg: Config, data: Data) -> Config:
    """Fill what depends on the data (output activation, loss, lr) and check the layer sizes."""
    model, optimizer = cfg.model, cfg.optimizer
    task = TASKS[data.task]
    loss = cfg.loss if cfg.loss is not None else task.loss
    name = loss["name"] if isinstance(loss, dict) else loss  # checked at load: a loss's name
    fused = LOSSES.get(name, "loss").fused_with
    output = model.output_activation
    if output is None:
        output = fused or task.output_activation
    sizes = list(model.layers)
    if sizes[0] != data.n_features:
        raise ConfigError(f"the input size is {sizes[0]} but the data has {data.n_features} "
                          f"features: use [{data.n_features}, ...]", "model.layers")
    if sizes[-1] != data.n_outputs:
        raise ConfigError(f"the output size is {sizes[-1]} but "
                          f"{task.outputs_needed(data.n_outputs)}: use [..., {data.n_outputs}]",
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


@dataclass
class Split:
    """One part of the data in the network's dtype, with what the metric compares against."""

    X: np.ndarray
    Y: np.ndarray
    truth: np.ndarray  # class indices, or the targets (see Task.truth)

    @classmethod
    def of(cls, X: np.ndarray, Y: np.ndarray, dtype, task: Task) -> Split:
        Y = Y.astype(dtype)
        return cls(X.astype(dtype), Y, task.truth(Y))


def evaluate(net: Network, loss: Loss, task: Task, split: Split) -> tuple[float, float, np.ndarray]:
    """Loss, accuracy (or mae) and the outputs of a whole split, in one forward pass: the one
    evaluation of training's validation, the test part and ``nntrain evaluate``."""
    E, output = net.loss_and_output(split.X, split.Y, loss)
    return E, task.metric_sum(output, split.truth) / len(split.X), output


class Batches:
    """An epoch's batches of (X, Y, truth): the whole set, or shuffled mini-batches gathered
    into buffers made once per batch size."""

    def __init__(self, split: Split, size: int, rng: np.random.Generator):
        self.arrays, self.size, self.rng = (split.X, split.Y, split.truth), size, rng
        n = len(split.X)
        self.buffers = {rows: [np.empty((rows, *a.shape[1:]), a.dtype) for a in self.arrays]
                        for rows in {size, n % size or size}}

    @property
    def whole(self) -> bool:
        """One batch, the whole training set, the same arrays every epoch."""
        return self.size >= len(self.arrays[0])

    def epoch_order(self) -> np.ndarray:
        """The epoch's order of the samples, drawn from the batch-order generator: batch i is
        its rows i*size to (i+1)*size."""
        return self.rng.permutation(len(self.arrays[0]))

    def __iter__(self):
        n = len(self.arrays[0])
        if self.size >= n:
            yield self.arrays
            return
        order = self.epoch_order()
        for begin in range(0, n, self.size):
            idx = order[begin:begin + self.size]
            # mode="clip" writes straight into the buffer (the default, "raise", gathers into
            # a temporary first); idx comes from a permutation, so nothing is clipped
            yield [np.take(a, idx, axis=0, out=buf, mode="clip")
                   for a, buf in zip(self.arrays, self.buffers[len(idx)])]


@dataclass
class Experiment:
    """A resolved config with everything built from it, ready to train."""

    cfg: Config
    data: Data
    task: Task
    net: Network
    loss: Loss
    optimizer: Optimizer
    schedule: Schedule
    train: Split
    val: Split | None
    test: Split | None  # evaluated once, when training has ended
    batches: Batches  # the training split's batches, in an order drawn from the seed
    threads: int  # BLAS threads this run's products pay for (train.threads)

    @property
    def metric(self) -> str:
        return self.task.metric

    @property
    def monitor(self) -> str:
        """The figure early stopping and 'best' watch: val_loss with validation data, else loss."""
        return "val_loss" if self.val is not None else "loss"

    def evaluate(self, split: Split) -> tuple[float, float]:
        """Loss and accuracy (or mae) of a whole split in one forward pass."""
        return evaluate(self.net, self.loss, self.task, split)[:2]


def setup(cfg: Config, data: Data | None = None) -> Experiment:
    """Data, network, loss, optimizer and schedule of a config; the data in the net's dtype.
    ``data``: the config's data, already loaded (a sweep's driver ships it to its workers)."""
    cfg, data = prepare(cfg, data)
    optimizer, task = cfg.optimizer, TASKS[data.task]
    with plugin_failures("the components were built"):  # each built once, here
        net = build_network(cfg)
        loss = LOSSES.build(cfg.loss, "loss")
        step = OPTIMIZERS.build({"name": optimizer.name, **optimizer.params}, "optimizer")
        schedule = SCHEDULES.build(optimizer.schedule, "optimizer.schedule")

    def split(X, Y):
        return Split.of(X, Y, net.dtype, task) if X is not None else None

    train = split(data.X_train, data.Y_train)
    n, size = len(train.X), optimizer.batch_size
    batch = n if size is None else min(size, n)  # None: full batch, as in the notes
    batches = Batches(train, batch, np.random.default_rng([1, cfg.seed]))  # init: rng(seed)
    # random search draws from the run's generator, the batches' (its state is checkpointed)
    step.bind(batches.rng, net.sample_parameters)
    return Experiment(
        cfg=cfg, data=data, task=task, net=net, loss=loss, optimizer=step, schedule=schedule,
        train=train, val=split(data.X_val, data.Y_val), test=split(data.X_test, data.Y_test),
        batches=batches, threads=blas_threads(cfg.train.threads, net.sizes, batch),
    )
