"""Datasets: generators, shipped files and loaders, then split, standardize and encode targets.

A dataset function returns ``(X, y, task)``: X (N, F) floats, y either class
labels (N,) or regression targets (N,) / (N, K), task "classes",
"regression" or None (infer from y). ``load_data`` turns that into a
``Data`` with encoded targets: (N, 1) 0/1 for binary, one-hot (N, K) for
multiclass, (N, K) floats for regression.
"""

from __future__ import annotations

import csv
import math
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .registry import ConfigError, Registry

DATASETS = Registry("dataset")

def shipped(filename: str) -> Path:
    """A file of datasets/: in the source tree, or installed as the package nntrain.shipped."""
    in_tree = Path(__file__).resolve().parent.parent / "datasets" / filename
    if in_tree.exists():
        return in_tree
    from importlib.resources import files

    return Path(str(files("nntrain.shipped").joinpath(filename)))


MAX_CLASSES = 20  # an integer target with more distinct values is taken as regression


@dataclass
class Data:
    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray | None
    Y_val: np.ndarray | None
    task: str  # "binary", "multiclass" or "regression"
    classes: list | None = None  # class labels in the data's own values, sorted
    X_test: np.ndarray | None = None  # held out: never seen by training or early stopping
    Y_test: np.ndarray | None = None
    mean: np.ndarray | None = None  # standardization fitted on the training part (or None)
    std: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    fingerprint: str = ""  # a hash of the raw arrays: resume tells when the data changed

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.Y_train.shape[1]


# -- generators ------------------------------------------------------------------------


@DATASETS.register("xor")
def xor(rng, n_samples: int | None = None, noise: float = 0.0):
    """The four points of XOR; with n_samples, points in [-1,1]^2 labelled by sign(x1) != sign(x2)."""
    if n_samples is None:
        X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        return X + rng.normal(0, noise, X.shape) if noise else X, np.array([0, 1, 1, 0]), "classes"
    X = rng.uniform(-1, 1, (n_samples, 2))
    y = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(int)
    return X + rng.normal(0, noise, X.shape), y, "classes"


@DATASETS.register("circles")
def circles(rng, n_samples: int = 200, noise: float = 0.05, factor: float = 0.5):
    """Two concentric circles (radius 1 and ``factor``), as sklearn.datasets.make_circles."""
    outer = n_samples // 2
    t = rng.uniform(0, 2 * np.pi, n_samples)
    r = np.where(np.arange(n_samples) < outer, 1.0, factor)
    X = np.column_stack([r * np.cos(t), r * np.sin(t)]) + rng.normal(0, noise, (n_samples, 2))
    return X, (np.arange(n_samples) >= outer).astype(int), "classes"


@DATASETS.register("moons")
def moons(rng, n_samples: int = 200, noise: float = 0.1):
    """Two interleaving half circles, as sklearn.datasets.make_moons."""
    upper = n_samples // 2
    t = np.concatenate([np.linspace(0, np.pi, upper), np.linspace(0, np.pi, n_samples - upper)])
    lower = np.arange(n_samples) >= upper
    X = np.column_stack([
        np.where(lower, 1 - np.cos(t), np.cos(t)),
        np.where(lower, 0.5 - np.sin(t), np.sin(t)),
    ])
    return X + rng.normal(0, noise, X.shape), lower.astype(int), "classes"


@DATASETS.register("spiral")
def spiral(rng, n_samples: int = 300, noise: float = 0.2, n_classes: int = 3):
    """Interleaved spiral arms, one per class (the CS231n toy problem)."""
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    y = np.arange(n_samples) % n_classes
    r = rng.uniform(0.05, 1, n_samples)
    t = 4 * r + y * 2 * np.pi / n_classes + rng.normal(0, noise, n_samples)
    return np.column_stack([r * np.sin(t), r * np.cos(t)]), y, "classes"


@DATASETS.register("blobs")
def blobs(rng, n_samples: int = 300, noise: float = 0.0, n_features: int = 2, n_classes: int = 3,
          cluster_std: float = 1.0):
    """Gaussian blobs around centres drawn in [-10, 10]^F, as sklearn.datasets.make_blobs."""
    if n_classes < 2 or n_features < 1:
        raise ValueError("needs n_classes >= 2 and n_features >= 1")
    centres = rng.uniform(-10, 10, (n_classes, n_features))
    y = np.arange(n_samples) % n_classes
    X = centres[y] + rng.normal(0, cluster_std + noise, (n_samples, n_features))
    return X, y, "classes"


def _outliers(y, fraction, rng):
    """Replace a fraction of the targets by far-off values (the MSE-vs-MAE lesson)."""
    if fraction:
        hit = rng.random(len(y)) < fraction
        y[hit] += rng.choice([-1.0, 1.0], int(hit.sum())) * rng.uniform(5, 10, int(hit.sum()))
    return y


@DATASETS.register("sine")
def sine(rng, n_samples: int = 200, noise: float = 0.1, outliers: float = 0.0):
    """y = sin(x) + N(0, noise^2), x in [-pi, pi]; ``outliers``: share of targets moved 5-10 away."""
    x = rng.uniform(-np.pi, np.pi, n_samples)
    y = np.sin(x) + rng.normal(0, noise, n_samples)
    return x[:, None], _outliers(y, outliers, rng), "regression"


@DATASETS.register("plane")
def plane(rng, n_samples: int = 200, noise: float = 0.1, outliers: float = 0.0):
    """y = x1 - 2 x2 + 0.5 + N(0, noise^2), x in [-1, 1]^2: a linear regression problem."""
    X = rng.uniform(-1, 1, (n_samples, 2))
    y = X[:, 0] - 2 * X[:, 1] + 0.5 + rng.normal(0, noise, n_samples)
    return X, _outliers(y, outliers, rng), "regression"


# -- files -----------------------------------------------------------------------------


@DATASETS.register("iris")
def iris():
    """Fisher's iris: 150 flowers, 4 measurements (cm), 3 species. datasets/iris.csv."""
    return read_csv(shipped("iris.csv"), "species")


@DATASETS.register("digits")
def digits():
    """8x8 handwritten digits (UCI optdigits test set, 1797 images, pixels 0-16). datasets/digits.csv."""
    return read_csv(shipped("digits.csv"), "digit")


@DATASETS.register("csv")
def csv_file(path: str, target: str | int = -1):
    """A CSV file with a header row; ``target``: the label column's name or index (default last)."""
    return read_csv(Path(path), target)


@DATASETS.register("npz")
def npz_file(path: str):
    """A .npz file holding arrays X (N, F) and y (N,) or (N, K); loaded without pickle."""
    key = "data.path"
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = [name for name in ("X", "y") if name not in arrays.files]
            if missing:
                raise ConfigError(f"{path} has no array {missing[0]} (it has: "
                                  f"{', '.join(arrays.files) or 'none'})", key)
            X, y = arrays["X"], arrays["y"]
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", key) from None
    except (ValueError, OSError) as err:  # object arrays refuse to load without pickle
        raise ConfigError(f"{path}: cannot load ({err})", key) from None
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise ConfigError(f"{path}: X must be a 2-D numeric array, got {X.dtype} {X.shape}", key)
    if len(y) != len(X):
        raise ConfigError(f"{path}: X has {len(X)} rows but y has {len(y)}", key)
    if np.issubdtype(y.dtype, np.number) and not np.all(np.isfinite(y)):
        raise ConfigError(f"{path}: y has NaN or infinite values", key)
    if not np.all(np.isfinite(X)):
        raise ConfigError(f"{path}: X has NaN or infinite values", key)
    return X.astype(np.float64), y, None


def read_csv(path: Path, target: str | int):
    """Features (floats) and the target column (numbers or strings) of a headed CSV file."""
    key = "data.path"
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", key) from None
    except (IsADirectoryError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read ({err})", key) from None
    rows = [row for row in rows if row]
    if len(rows) < 2:
        raise ConfigError(f"{path}: needs a header row and at least one data row", key)
    header, body = rows[0], rows[1:]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ConfigError(f"{path}: line {line} has {len(row)} fields, the header has "
                              f"{len(header)}", key)
    if isinstance(target, int):
        if not -len(header) <= target < len(header):
            raise ConfigError(f"column {target} is out of range: {path} has {len(header)} columns",
                              "data.target")
        column = target % len(header)
    elif target in header:
        column = header.index(target)
    else:
        raise ConfigError(f"{path} has no column {target!r}; columns: {', '.join(header)}",
                          "data.target")
    features = [i for i in range(len(header)) if i != column]
    X = np.empty((len(body), len(features)))
    for line, row in enumerate(body, start=2):
        for j, i in enumerate(features):
            try:
                X[line - 2, j] = float(row[i])
            except ValueError:
                raise ConfigError(f"{path}: line {line}, column {header[i]!r}: {row[i]!r} is not "
                                  "a number", key) from None
    if not np.all(np.isfinite(X)):
        line, col = np.argwhere(~np.isfinite(X))[0]
        raise ConfigError(f"{path}: line {line + 2}, column {header[features[col]]!r} is NaN or "
                          "infinite", key)
    labels = [row[column].strip() for row in body]
    if "" in labels:
        line = labels.index("") + 2
        raise ConfigError(f"{path}: line {line} has no value in the target column "
                          f"{header[column]!r}", key)
    try:
        y = np.array([float(v) for v in labels])
    except ValueError:
        return X, np.array(labels), None  # string labels: classes
    if not np.all(np.isfinite(y)):
        raise ConfigError(f"{path}: the target column {header[column]!r} has NaN values", key)
    return X, y, None


# -- from raw arrays to training data -----------------------------------------------------

def infer_task(y: np.ndarray, hint: str | None) -> str:
    """binary / multiclass / regression from the targets (strings and small integers are classes)."""
    if hint == "regression" or (y.ndim == 2 and y.shape[1] > 1):
        return "regression"
    y = y.reshape(len(y))
    n = len(np.unique(y))
    numeric = np.issubdtype(y.dtype, np.number)
    if hint != "classes" and numeric and not (np.all(y == np.round(y)) and n <= MAX_CLASSES):
        return "regression"
    return "binary" if n <= 2 else "multiclass"


def encode(y: np.ndarray, task: str, classes: list | None):
    """Targets as the network sees them: (N,1) 0/1, one-hot (N,K), or (N,K) floats."""
    if task == "regression":
        return y.reshape(len(y), -1).astype(np.float64), None
    y = y.reshape(len(y))
    classes = classes if classes is not None else sorted(np.unique(y).tolist())
    index = np.searchsorted(np.array(classes), y)
    if task == "binary":
        return (index == len(classes) - 1).astype(np.float64)[:, None], classes
    return np.eye(len(classes))[index], classes


def split(n: int, labels: np.ndarray | None, fraction: float, rng, rows: np.ndarray | None = None,
          key: str = "data.val_fraction") -> tuple[np.ndarray, np.ndarray]:
    """Kept and held-out row indices; stratified (the same share of each class) for labels.

    ``fraction`` is a share of all n rows (of each class's rows), held out of ``rows``
    (default: all of them), so that a test part is as large as its fraction says even
    after a validation part was taken first.
    """
    rows = np.arange(n) if rows is None else rows
    if fraction == 0:
        return rows, np.arange(0)
    if labels is None:
        groups, totals = [rows], [n]
    else:
        classes = np.unique(labels)
        groups = [rows[labels[rows] == c] for c in classes]
        totals = [int(np.count_nonzero(labels == c)) for c in classes]
    held = []
    for group, total in zip(groups, totals):
        group = rng.permutation(group)
        held.append(group[: int(math.floor(fraction * total + 0.5))])
    held = np.sort(np.concatenate(held))
    kept = np.setdiff1d(rows, held)
    if len(held) == 0 or len(kept) == 0:
        part = "test" if key == "data.test_fraction" else "validation"
        raise ConfigError(f"{fraction} of {n} samples leaves an empty training or {part} set", key)
    return kept, held


def fingerprint(X: np.ndarray, y: np.ndarray) -> str:
    """A short hash of the raw data (features and targets)."""
    digest = hashlib.sha256(np.ascontiguousarray(X).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes() if np.issubdtype(y.dtype, np.number)
                  else "\0".join(map(str, y.reshape(-1))).encode())
    return digest.hexdigest()[:16]


def load_data(spec: dict, seed: int = 0, val_fraction: float = 0.0, standardize: bool = False,
              task: str = "auto", test_fraction: float = 0.0) -> Data:
    """Generate or read the dataset named in ``spec``, split, standardize and encode it.

    The validation part is drawn first, then the test part (each a share of all rows),
    with the same generator: a config without a test part splits as before.
    """
    rng = np.random.default_rng(seed)
    X, y, hint = DATASETS.build(spec, "data", rng=rng)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if task == "auto":
        task = infer_task(y, hint)
    elif task != "regression" and y.ndim == 2 and y.shape[1] > 1:
        raise ConfigError(f"task {task} needs one label per sample, got targets {y.shape}", "data.task")
    labels = None if task == "regression" else y.reshape(len(y))
    if labels is not None and task == "binary" and len(np.unique(labels)) > 2:
        raise ConfigError(f"task binary, but the data has {len(np.unique(labels))} classes",
                          "data.task")
    train, val = split(len(X), labels, val_fraction, rng)
    train, test = split(len(X), labels, test_fraction, rng, rows=train, key="data.test_fraction")
    data_hash = fingerprint(X, y)
    mean = std = None
    if standardize:
        mean = X[train].mean(axis=0)  # statistics of the training part only
        std = np.where(X[train].std(axis=0) > 0, X[train].std(axis=0), 1.0)
        X = (X - mean) / std
    Y, classes = encode(y, task, None)

    def part(rows):
        return (X[rows], Y[rows]) if len(rows) else (None, None)

    return Data(X[train], Y[train], *part(val), task, classes, *part(test), mean=mean, std=std,
                feature_names=feature_names(spec, X.shape[1]), fingerprint=data_hash)


def feature_names(spec: dict, count: int) -> list[str]:
    """The CSV header's feature columns (the target left out), else x1..xn."""
    names = [f"x{i}" for i in range(1, count + 1)]
    if spec.get("name") != "csv" or "path" not in spec:
        return names
    try:
        with open(spec["path"], newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except OSError:
        return names
    target = spec.get("target", -1)
    column = (target % len(header) if isinstance(target, int) else
              header.index(target) if target in header else None)
    columns = [h.strip() for i, h in enumerate(header) if i != column]
    return columns if len(columns) == count else names
