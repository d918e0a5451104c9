"""A run folder as a model: load it, predict with it, evaluate it.

    run = nntrain.load_run("runs/moons/20261126-050208-3fa2c1")
    run.predict(df)         # labels in the data's own values ("inside", 3, ...)
    run.predict_proba(df)   # (N, K) class probabilities, columns in run.classes order
    run.metrics             # metrics.csv as a pandas DataFrame

A DataFrame's columns are matched by name, as ``nntrain predict`` matches a
CSV's; a plain array is taken in the order of ``feature_names``. What
prediction needs besides the parameters is the preprocessor fitted at
training time (data.npz: the standardization, the class labels, the feature
names, the separator); the same one turns new data into the network's inputs.
The parameters are model.npz's, or the latest checkpoint's for a run that was
killed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .config import Config, load_config, plugin_hash, read_yaml
from .experiment import Split, build_network, evaluate, prepare
from .losses import LOSSES, Loss
from .network import Network
from .preprocess import Preprocessor
from .registry import ConfigError
from .runs import RunFolder, load_arrays, metrics_frame


DATA_BYTES = 64 << 20  # data.npz holds names, classes and a mean and std per feature


class TrainedModel:
    """A trained network with the preprocessor that turns raw data into its inputs and its
    outputs into labels."""

    def __init__(self, path: Path, config: Config, network: Network, loss: Loss,
                 prep: Preprocessor):
        self.path, self.config, self.network, self.loss, self.prep = (path, config, network,
                                                                       loss, prep)
        self.task = prep.task
        self.classes, self.feature_names = prep.classes, prep.feature_names

    @property
    def metrics(self):
        """metrics.csv as a pandas DataFrame (pandas is imported only here)."""
        return metrics_frame(self.path)

    def outputs(self, X) -> np.ndarray:
        """The network's outputs (after its output activation) for raw features X: a
        DataFrame's columns by name, an array's in ``feature_names`` order."""
        return self.network.forward(self.prep.inputs(X, dtype=self.network.dtype))

    def predict_proba(self, X) -> np.ndarray:
        """(N, K) class probabilities in ``classes`` order (binary: [1 - p, p])."""
        if not self.task.has_classes:
            raise ConfigError("a regression model has no class probabilities", "predict_proba")
        return self.task.proba(self.outputs(X))

    def predict(self, X) -> np.ndarray:
        """Labels in the data's own values (classes), or the predicted targets (regression)."""
        return self.prep.labels(self.outputs(X))

    def evaluate(self, X, y, where: str = "X") -> dict:
        """loss, accuracy (or mae), and for classes the confusion matrix and per-class
        precision and recall, on raw features X and targets y in the data's own values.
        ``where``: the file they came from, for error messages."""
        X, Y = self.prep.inputs(X, where, dtype=self.network.dtype), self.prep.targets(y, where)
        if len(X) == 0:
            raise ConfigError("has no rows to evaluate on", where)
        if len(X) != len(Y):
            raise ConfigError(f"has {len(X)} rows of features but {len(Y)} targets", where)
        return self.report(X, Y)

    def data(self):
        """The run's own data, rebuilt from its config and seeds, split as in training; a data
        file that changed since is a ConfigError (its splits would not be the run's)."""
        _, data = prepare(self.config)
        self.prep.check_data(data, str(self.path))
        return data

    def report(self, X: np.ndarray, Y: np.ndarray) -> dict:
        """evaluate()'s figures on inputs and targets as the network takes them."""
        net, task = self.network, self.task
        split = Split.of(X, Y, net.dtype, task)
        E, metric, output = evaluate(net, self.loss, task, split)
        figures = {"loss": E, task.metric: metric, "n": len(X)}
        if not task.has_classes:
            return figures
        return {**figures, **confusion(task.predicted_index(output), split.truth, self.classes)}


def confusion(predicted: np.ndarray, truth: np.ndarray, classes: list) -> dict:
    """The confusion matrix (rows: true class, columns: predicted) and per-class precision,
    recall and support."""
    k = len(classes)
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (truth.astype(int), predicted), 1)
    per_class = {}
    for i, label in enumerate(classes):
        predicted_i, true_i = matrix[:, i].sum(), matrix[i].sum()
        per_class[str(label)] = {
            "precision": float(matrix[i, i] / predicted_i) if predicted_i else None,
            "recall": float(matrix[i, i] / true_i) if true_i else None, "support": int(true_i)}
    return {"confusion": matrix.tolist(), "per_class": per_class,
            "classes": list(classes)}


def load_run(path: str | Path, require_parameters: bool = True, plugins=(),
             plugin_changed_ok: bool = False) -> TrainedModel:
    """The model a run folder holds: model.npz, or else the latest checkpoint.

    ``require_parameters=False``: a run killed before either was written gives its untrained
    network (the pictures load their parameters from snapshots.bin). ``plugins``: the Python
    files of a run trained with plugin components; a run folder is data, and the files it
    names are never imported (see ``run_config``).
    """
    folder = RunFolder(path)
    if not folder.file(folder.CONFIG).is_file() or not folder.file(folder.DATA).is_file():
        raise ConfigError("is not a run folder of this version (no config.yaml and data.npz)",
                          str(folder.path))
    config = run_config(folder, read_yaml(folder.file(folder.CONFIG)), plugins, plugin_changed_ok)
    network, loss = build_network(config), LOSSES.build(config.loss, "loss")
    names = network.parameter_names()
    shapes = {name: p.shape for name, p in zip(names, network.parameters())}
    if folder.file(folder.MODEL).is_file():  # checked against the network before it is loaded
        arrays = load_arrays(folder.file(folder.MODEL), shapes)
    elif folder.file(folder.CHECKPOINT).is_file():
        arrays = folder.read_checkpoint(shapes)["params"]
    elif not require_parameters:
        arrays = dict(zip(names, network.parameters()))
    else:
        raise ConfigError("has neither model.npz nor checkpoint.npz: nothing was saved yet",
                          str(folder.path))
    network.load_parameters(fitting(network, arrays, str(folder.path)))
    data = config.data
    info = load_arrays(folder.file(folder.DATA), limit=DATA_BYTES)
    prep = Preprocessor.from_arrays(info, data.task, data.params.get("sep", ","),
                                    data.params.get("target"))
    prep.check_network(network.sizes, str(folder.path))
    return TrainedModel(folder.path, config, network, loss, prep)


def run_config(folder: RunFolder, raw: dict, plugins=(), changed_ok: bool = False) -> Config:
    """A run's config (``raw``, read from its config.yaml) without importing the plugin files
    it names: a run folder someone sent you runs no code. The user passes the files instead,
    each checked against the hash the run recorded of the file of that name."""
    named = raw.pop("plugins", None) or []
    recorded = {Path(p["file"]).name: p["sha256"]
                for p in (folder.read_summary() or {}).get("plugins") or []
                if isinstance(p, dict) and isinstance(p.get("file"), str)}
    for plugin in plugins:
        check_plugin(Path(plugin), recorded, bool(named), changed_ok)
    try:
        return load_config(raw=raw, plugins=[str(p) for p in plugins])
    except ConfigError as err:
        if named and not plugins:
            files = ", ".join(Path(str(p)).name for p in named)
            raise ConfigError(f"{err}; this run was trained with plugin file(s) {files}: pass "
                              "them with --plugin FILE (files named in a run folder are never "
                              "imported)", str(folder.path)) from None
        raise


def use_run_plugins(run_dirs: list[Path], plugins=(), changed_ok: bool = False) -> None:
    """Load the --plugin files that runs about to be read need, each checked against the hash
    every run recorded (the pictures then read the runs with their components known)."""
    for run_dir in run_dirs:
        folder = RunFolder(run_dir)
        if folder.file(folder.CONFIG).is_file():
            run_config(folder, read_yaml(folder.file(folder.CONFIG)), plugins, changed_ok)


def check_plugin(plugin: Path, recorded: dict[str, str], named: bool, changed_ok: bool) -> None:
    """A --plugin file must be the one the run was trained with (the same SHA-256)."""
    if not plugin.is_file():
        raise ConfigError("no such Python file", f"--plugin {plugin}")
    if plugin.name not in recorded:
        if named and not recorded:  # nntrain 0.2 recorded no hashes
            warnings.warn(f"{plugin}: the run recorded no hash of its plugin files (an earlier "
                          "version): it cannot be checked to be the file the run used",
                          stacklevel=3)
        return
    if plugin_hash(plugin) != recorded[plugin.name] and not changed_ok:
        raise ConfigError("is not the file this run was trained with (its SHA-256 differs); "
                          "--plugin-changed-ok uses it anyway", f"--plugin {plugin}")


def warn_stale(model: TrainedModel, path: str | Path) -> None:
    """Reading the run's own data file again: say so when it changed since training."""
    own = model.config.data.params.get("path")
    if not isinstance(own, str) or not Path(own).is_file() or not Path(path).is_file():
        return
    if Path(own).resolve() != Path(path).resolve():
        return
    try:
        model.data()
    except ConfigError:
        warnings.warn(f"{path} is the run's training data file, and it changed since the run "
                      "was trained (its fingerprint differs)", stacklevel=3)


def warn_status(model: TrainedModel) -> None:
    """A diverged or failed run can be predicted with, but not without a word."""
    status = (RunFolder(model.path).read_summary() or {}).get("status")
    if status in ("diverged", "failed"):
        warnings.warn(f"{model.path}: the run ended {status}; these are the predictions of the "
                      "parameters it had then", stacklevel=3)


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


def predict_table(model: TrainedModel, path: str | Path, allow_missing: bool = False):
    """The input's columns as they were written, then ``prediction`` and, for classes, one
    ``p_<label>`` per class. ``allow_missing``: a row with a missing or infinite feature gets
    blank predictions instead of refusing the file."""
    warn_status(model)
    warn_stale(model, path)
    table, _ = model.prep.read(path)
    X = model.prep.inputs(table, str(path), allow_missing, model.network.dtype,
                          hint=" (--allow-missing leaves such rows' predictions blank)")
    valid = np.isfinite(X).all(axis=1)
    outputs = np.full((len(X), model.network.sizes[-1]), np.nan)
    outputs[valid] = model.network.forward(X[valid])
    predicted = np.full(len(X), None, dtype=object) if model.task.has_classes else outputs
    if model.task.has_classes:
        predicted[valid] = model.prep.labels(outputs[valid])
    elif predicted.shape[1] == 1:
        predicted = predicted[:, 0]
    table = table.copy()
    added = (["prediction"] if predicted.ndim == 1 else
             [f"prediction_{k}" for k in range(1, predicted.shape[1] + 1)])
    added += [f"p_{label}" for label in model.classes or []]
    taken = [c for c in added if c in table.columns]
    if taken:
        raise ConfigError(f"already has a column {', '.join(taken[:3])}, which predict writes; "
                          "rename it", str(path))
    if predicted.ndim == 1:
        table["prediction"] = predicted
    else:  # several regression targets
        for k, column in enumerate(predicted.T, start=1):
            table[f"prediction_{k}"] = column
    if model.task.has_classes:
        for label, column in zip(model.classes, model.task.proba(outputs).T):
            table[f"p_{label}"] = column
    return table


def check_output(output: Path | None, data: Path) -> None:
    """``predict -o``: a file in a folder that exists, and not the input (it would be lost)."""
    if output is None:
        return
    key = f"-o {output}"
    if output.is_dir():
        raise ConfigError("is a folder; give a file name", key)
    if not output.parent.is_dir():
        raise ConfigError(f"its folder {output.parent} does not exist", key)
    if output.exists() and data.exists() and output.resolve() == data.resolve():
        raise ConfigError("is the input file: the predictions would replace it; give another "
                          "name", key)


def write_table(table, output: Path | None) -> None:
    """The predictions as CSV on stdout, or to ``output`` atomically: written beside it, then
    renamed over it, so a full disk leaves the previous file as it was."""
    import sys

    if output is None:
        table.to_csv(sys.stdout, index=False)
        return
    from .runs import write_atomic

    write_atomic(output, table.to_csv(index=False))


def evaluate_run(model: TrainedModel, path: str | Path | None = None) -> dict:
    """evaluate() on a file, or on the run's test split (else its validation split), rebuilt
    exactly from the config and its seeds."""
    warn_status(model)
    if path is not None:
        warn_stale(model, path)
        table, y = model.prep.read(path, with_target=True)
        return {"split": str(path), **model.evaluate(table, y, str(path))}
    data = model.data()
    for split, X, Y in (("test", data.X_test, data.Y_test), ("validation", data.X_val, data.Y_val)):
        if X is not None:  # already standardized like the training part
            return {"split": split, **model.report(X, Y)}
    raise ConfigError("has neither a test nor a validation split (data.test_fraction and "
                      "data.val_fraction are 0): give INPUT, a CSV or npz to evaluate on",
                      str(model.path))
