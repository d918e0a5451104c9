"""The three tasks, in one table: what each one's output, loss, metric and predictions are.

    TASKS["binary"].metric              # "accuracy"
    TASKS["regression"].columns(True)   # the metrics.csv header with validation

A task is looked up once (``TASKS[name]``) and asked; no module compares the
task's name to a string. The data decides the task (``infer_task``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import batch_total, per_member


@dataclass(frozen=True)
class Task:
    name: str
    output_activation: str  # when the config leaves model.output_activation out
    loss: str  # when the config leaves loss out
    metric: str  # metrics.csv's column: accuracy or mae
    has_classes: bool  # labels with class names, probabilities, a confusion matrix
    max_classes: int | None  # binary: 2

    def columns(self, has_val: bool) -> list[str]:
        """metrics.csv's header: Keras-style names, columns that do not apply left out."""
        val = ["val_loss"] if has_val else []
        val_metric = [f"val_{self.metric}"] if has_val else []
        return ["epoch", "loss", *val, self.metric, *val_metric, "lr", "grad_norm", "time_s"]

    def encode(self, index: np.ndarray, n_classes: int) -> np.ndarray:
        """Class indices (N,) -> what the network is trained against: (N,1) 0/1 or one-hot (N,K)."""
        if self.name == "binary":
            return (index == n_classes - 1).astype(np.float64)[:, None]
        return np.eye(n_classes)[index]

    def truth(self, Y: np.ndarray) -> np.ndarray:
        """What ``metric_sum`` compares outputs with: class indices, or the targets themselves."""
        if not self.has_classes:
            return Y
        return (Y[:, 0] > 0.5).astype(int) if self.name == "binary" else Y.argmax(axis=1)

    def predicted_index(self, output: np.ndarray) -> np.ndarray:
        """The predicted class of each row: output > 0.5 (binary) or the largest output."""
        return ((output[..., 0] > 0.5).astype(int) if self.name == "binary"
                else output.argmax(axis=-1))

    def metric_sum(self, output: np.ndarray, truth: np.ndarray):
        """Correct predictions, or the summed per-sample mean absolute error (regression).
        Stacked members' (S, N, K) outputs give one sum per member, each its own bit for bit."""
        if not self.has_classes:
            return batch_total(np.abs(output - truth)) / output.shape[-1]
        hits = self.predicted_index(output) == truth
        return per_member(np.count_nonzero(hits) if hits.ndim == 1 else hits.sum(axis=-1))

    def proba(self, output: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities in class order: binary's one output p becomes [1-p, p]."""
        return np.hstack([1 - output, output]) if self.name == "binary" else output

    def outputs_needed(self, n_outputs: int) -> str:
        """Why the output layer must have ``n_outputs`` units, for an error message."""
        return {"binary": "a binary task needs 1 output",
                "multiclass": f"the data has {n_outputs} classes",
                "regression": f"the data has {n_outputs} target(s)"}[self.name]


TASKS = {
    "binary": Task("binary", "sigmoid", "bce", "accuracy", True, 2),
    "multiclass": Task("multiclass", "softmax", "cross_entropy", "accuracy", True, None),
    "regression": Task("regression", "identity", "mse", "mae", False, None),
}
MAX_CLASSES = 20  # an integer target with more distinct values is taken as regression


def infer_task(y: np.ndarray, hint: str | None) -> str:
    """binary / multiclass / regression from the targets (strings and small integers are
    classes). ``hint``: a dataset's own word, "classes" or "regression", or None."""
    if hint == "regression" or (y.ndim == 2 and y.shape[1] > 1):
        return "regression"
    y = y.reshape(len(y))
    n = len(np.unique(y))
    numeric = np.issubdtype(y.dtype, np.number)
    if hint != "classes" and numeric and not (np.all(y == np.round(y)) and n <= MAX_CLASSES):
        return "regression"
    return "binary" if n <= 2 else "multiclass"


METRICS = tuple(dict.fromkeys(t.metric for t in TASKS.values()))  # accuracy, mae
# every figure a metrics.csv row can have, training's and validation's, in report order
FIGURES = ("loss", "val_loss", *(f for m in METRICS for f in (m, f"val_{m}")))
