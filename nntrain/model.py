"""A run folder as a model: load it, predict with it, evaluate it.

    run = nntrain.load_run("runs/moons/20261126-050208-3fa2c1")
    run.predict(X)          # labels in the data's own values ("inside", 3, ...)
    run.predict_proba(X)    # (N, K) class probabilities, columns in run.classes order
    run.metrics             # metrics.csv as a pandas DataFrame

What prediction needs besides the parameters is in the run folder too
(data.npz): the standardization fitted on the training part, the class labels,
the feature names and a fingerprint of the training data. The parameters are
model.npz's, or the latest checkpoint's for a run that was killed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import Config, load_config, read_yaml
from .datasets import encode
from .experiment import (build_network, metric_name, metric_sum, predicted_index, prepare,
                         targets_for_metric)
from .losses import LOSSES
from .network import Network
from .registry import ConfigError
from .runs import load_arrays, metrics_frame, read_checkpoint


class TrainedModel:
    """A trained network with what turns raw inputs into its inputs and its outputs into labels."""

    def __init__(self, path: Path, config: Config, network: Network, info: dict):
        self.path, self.config, self.network = path, config, network
        self.task = config.data.task
        self.classes = info["classes"].tolist() if "classes" in info else None
        self.feature_names = [str(n) for n in info["feature_names"]]
        self.mean, self.std = info.get("mean"), info.get("std")
        self.fingerprint = str(info.get("fingerprint", ""))

    @property
    def metrics(self):
        """metrics.csv as a pandas DataFrame (pandas is imported only here)."""
        return metrics_frame(self.path)

    def inputs(self, X) -> np.ndarray:
        """Raw features -> the network's inputs: checked for shape, standardized as in training."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ConfigError(f"the model takes {len(self.feature_names)} features "
                              f"({', '.join(self.feature_names[:8])}), got an array of shape "
                              f"{X.shape}", "X")
        if self.mean is not None:
            X = (X - self.mean) / self.std
        return X

    def outputs(self, X) -> np.ndarray:
        """The network's outputs (after its output activation) for raw features X."""
        return self.network.forward(self.inputs(X))

    def predict_proba(self, X) -> np.ndarray:
        """(N, K) class probabilities in ``classes`` order (binary: [1 - p, p])."""
        if self.classes is None:
            raise ConfigError("a regression model has no class probabilities", "predict_proba")
        o = self.outputs(X)
        return np.hstack([1 - o, o]) if self.task == "binary" else o

    def predict(self, X) -> np.ndarray:
        """Labels in the data's own values (classes), or the predicted targets (regression)."""
        o = self.outputs(X)
        if self.task == "regression":
            return o[:, 0] if o.shape[1] == 1 else o
        return np.asarray(self.classes)[predicted_index(o, self.task)]

    def evaluate(self, X, y) -> dict:
        """loss, accuracy (or mae), and for classes the confusion matrix and per-class
        precision and recall, on raw features X and targets y in the data's own values."""
        X = self.inputs(X)
        y = np.asarray(y)
        if self.classes is not None:
            unknown = sorted(set(map(str, np.unique(y))) - set(map(str, self.classes)))
            if unknown:
                raise ConfigError(f"labels the model does not know: {', '.join(unknown[:5])}; "
                                  f"it knows {', '.join(map(str, self.classes))}", "y")
        Y, _ = encode(y.astype(np.asarray(self.classes).dtype) if self.classes is not None else y,
                      self.task, self.classes)
        return evaluate_outputs(self, X, Y)


def evaluate_outputs(model: TrainedModel, X: np.ndarray, Y: np.ndarray) -> dict:
    net = model.network
    X, Y = X.astype(net.dtype), Y.astype(net.dtype)
    loss = LOSSES.build(model.config.loss, "loss")
    E = net.loss(X, Y, loss)
    metric = metric_name(model.task)
    truth = targets_for_metric(Y, model.task)
    report = {"loss": E, metric: metric_sum(net.output, truth, model.task) / len(X), "n": len(X)}
    if model.classes is None:
        return report
    predicted = predicted_index(net.output, model.task)
    k = len(model.classes)
    confusion = np.zeros((k, k), dtype=int)  # rows: true class, columns: predicted
    np.add.at(confusion, (truth.astype(int), predicted), 1)
    per_class = {}
    for i, label in enumerate(model.classes):
        predicted_i, true_i = confusion[:, i].sum(), confusion[i].sum()
        per_class[str(label)] = {
            "precision": float(confusion[i, i] / predicted_i) if predicted_i else None,
            "recall": float(confusion[i, i] / true_i) if true_i else None, "support": int(true_i)}
    report.update(confusion=confusion.tolist(), per_class=per_class,
                  classes=[str(c) for c in model.classes])
    return report


def load_run(path: str | Path, require_parameters: bool = True) -> TrainedModel:
    """The model a run folder holds: model.npz, or else the latest checkpoint.
    ``require_parameters=False``: a run killed before either was written gives its untrained
    network (the pictures load their parameters from snapshots.bin)."""
    path = Path(path)
    if not (path / "config.yaml").is_file() or not (path / "data.npz").is_file():
        raise ConfigError("is not a run folder of this version (no config.yaml and data.npz)",
                          str(path))
    config = load_config(raw=read_yaml(path / "config.yaml"))
    network = build_network(config)
    names = network.parameter_names()
    if (path / "model.npz").is_file():
        arrays = load_arrays(path / "model.npz")
    elif (path / "checkpoint.npz").is_file():
        arrays = read_checkpoint(path / "checkpoint.npz")["params"]
    elif not require_parameters:
        arrays = dict(zip(names, network.parameters()))
    else:
        raise ConfigError("has neither model.npz nor checkpoint.npz: nothing was saved yet",
                          str(path))
    network.load_parameters(fitting(network, arrays, str(path)))
    return TrainedModel(path, config, network, load_arrays(path / "data.npz"))


def fitting(network: Network, arrays: dict[str, np.ndarray], key: str) -> list[np.ndarray]:
    """Saved parameters (name -> array) in the order of ``network.parameters()``, if they are
    exactly the network's: the same names and shapes."""
    names = network.parameter_names()
    missing = [n for n in names if n not in arrays]
    shapes = [n for n, p in zip(names, network.parameters())
              if n in arrays and arrays[n].shape != p.shape]
    extra = [n for n in arrays if n not in names]
    if missing or shapes or extra:
        detail = ("missing " + ", ".join(missing) if missing else
                  "shapes of " + ", ".join(shapes) if shapes else "extra " + ", ".join(extra))
        raise ConfigError(f"the saved parameters do not fit the config's network ({detail}): "
                          "the model changed", key)
    return [arrays[n] for n in names]


# -- files of new data (nntrain predict, nntrain evaluate) -------------------------------------


def read_table(path: str | Path, model: TrainedModel, with_target: bool = False):
    """A CSV with a header (feature columns matched by name, in any order; other columns kept)
    or an npz with X (and y), as a pandas DataFrame plus the feature array and the targets."""
    import pandas as pd

    path = Path(path)
    names = model.feature_names
    if not path.is_file():
        raise ConfigError("no such file", str(path))
    if path.suffix == ".npz":
        arrays = load_arrays(path)
        if "X" not in arrays:
            raise ConfigError(f"has no array X (arrays: {', '.join(arrays)})", str(path))
        X = np.asarray(arrays["X"])
        if X.ndim != 2 or X.shape[1] != len(names) or not np.issubdtype(X.dtype, np.number):
            raise ConfigError(f"X has shape {X.shape}; the model takes {len(names)} numeric "
                              f"features ({', '.join(names[:8])})", str(path))
        table = pd.DataFrame(X, columns=names)
        y = arrays.get("y")
        if with_target and y is None:
            raise ConfigError("has no array y of targets to evaluate against", str(path))
        return table, X.astype(np.float64), y
    try:
        # as the training data is read: only an empty cell is missing ("NA" can be a class)
        table = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot be read as CSV ({str(err)[:80]})", str(path)) from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise ConfigError(f"has no column {', '.join(missing[:8])}; the model takes the features "
                          f"{', '.join(names[:8])}", str(path))
    try:
        X = table[names].to_numpy(dtype=np.float64)
    except ValueError as err:
        raise ConfigError(f"a feature column is not numeric ({str(err)[:80]})", str(path)) from None
    y = table[target_column(table, model, path)].to_numpy() if with_target else None
    return table, X, y


def target_column(table, model: TrainedModel, path: Path) -> str:
    """The targets' column: the config's data.target by name, else the one non-feature column."""
    target = model.config.data.params.get("target")
    if isinstance(target, str):
        if target not in table.columns:
            raise ConfigError(f"has no target column {target!r}", str(path))
        return target
    others = [c for c in table.columns if c not in model.feature_names]
    if len(others) != 1:
        raise ConfigError(f"needs one target column besides the features; found "
                          f"{', '.join(others[:8]) or 'none'}", str(path))
    return others[0]


def predict_table(model: TrainedModel, path: str | Path):
    """The input's columns, then ``prediction`` and, for classes, one ``p_<label>`` per class."""
    table, X, _ = read_table(path, model)
    table = table.copy()
    predicted = model.predict(X)
    if predicted.ndim == 1:
        table["prediction"] = predicted
    else:  # several regression targets
        for k, column in enumerate(predicted.T, start=1):
            table[f"prediction_{k}"] = column
    if model.classes is not None:
        for label, column in zip(model.classes, model.predict_proba(X).T):
            table[f"p_{label}"] = column
    return table


def evaluate_run(model: TrainedModel, path: str | Path | None = None) -> dict:
    """evaluate() on a file, or on the run's test split (else its validation split), rebuilt
    exactly from the config and its seeds."""
    if path is not None:
        _, X, y = read_table(path, model, with_target=True)
        return {"split": str(path), **model.evaluate(X, y)}
    _, data = prepare(model.config)
    for split, X, Y in (("test", data.X_test, data.Y_test), ("validation", data.X_val, data.Y_val)):
        if X is not None:  # already standardized like the training part
            return {"split": split, **evaluate_outputs(model, X, Y)}
    raise ConfigError("has neither a test nor a validation split (data.test_fraction and "
                      "data.val_fraction are 0): give INPUT, a CSV or npz to evaluate on",
                      str(model.path))
