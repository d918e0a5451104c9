"""Datasets: generators, shipped files and loaders; the checks every dataset passes; the split.

A dataset function returns ``(X, y, task)``: X (N, F) floats, y either class
labels (N,) or regression targets (N,) / (N, K), task "classes",
"regression" or None (infer from y). ``load_data`` splits it and hands the
parts to the preprocessor (nntrain/preprocess.py), which is fitted on the
training part and makes the network's arrays of every part.
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

import numpy as np

from .preprocess import Data, parse_labels, plain_number, prepare_parts, separator_hint
from .registry import ConfigError, Registry, describe, shorten
from .tasks import TASKS, Task, infer_task

DATASETS = Registry("dataset")

def shipped(filename: str) -> Path:
    """A file of datasets/: in the source tree, or installed as the package nntrain.shipped."""
    in_tree = Path(__file__).resolve().parent.parent / "datasets" / filename
    if in_tree.exists():
        return in_tree
    from importlib.resources import files

    return Path(str(files("nntrain.shipped").joinpath(filename)))


# -- generators ------------------------------------------------------------------------


def check_generator(n_samples: int | None, noise: float) -> None:
    """The options every generator shares; numpy's own messages ('scale < 0') say less."""
    if n_samples is not None and n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (a standard deviation), got {noise}")


@DATASETS.register("xor")
def xor(rng, n_samples: int | None = None, noise: float = 0.0):
    """The four points of XOR; with n_samples, points in [-1,1]^2 labelled by sign(x1) != sign(x2)."""
    check_generator(n_samples, noise)
    if n_samples is None:
        X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        return X + rng.normal(0, noise, X.shape) if noise else X, np.array([0, 1, 1, 0]), "classes"
    X = rng.uniform(-1, 1, (n_samples, 2))
    y = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(int)
    return X + rng.normal(0, noise, X.shape), y, "classes"


@DATASETS.register("circles")
def circles(rng, n_samples: int = 200, noise: float = 0.05, factor: float = 0.5):
    """Two concentric circles (radius 1 and ``factor``), as sklearn.datasets.make_circles."""
    check_generator(n_samples, noise)
    outer = n_samples // 2
    t = rng.uniform(0, 2 * np.pi, n_samples)
    r = np.where(np.arange(n_samples) < outer, 1.0, factor)
    X = np.column_stack([r * np.cos(t), r * np.sin(t)]) + rng.normal(0, noise, (n_samples, 2))
    return X, (np.arange(n_samples) >= outer).astype(int), "classes"


@DATASETS.register("moons")
def moons(rng, n_samples: int = 200, noise: float = 0.1):
    """Two interleaving half circles, as sklearn.datasets.make_moons."""
    check_generator(n_samples, noise)
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
    check_generator(n_samples, noise)
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
    check_generator(n_samples, noise)
    if n_classes < 2 or n_features < 1:
        raise ValueError("needs n_classes >= 2 and n_features >= 1")
    centres = rng.uniform(-10, 10, (n_classes, n_features))
    y = np.arange(n_samples) % n_classes
    X = centres[y] + rng.normal(0, cluster_std + noise, (n_samples, n_features))
    return X, y, "classes"


def _outliers(y, fraction, rng):
    """Replace a fraction of the targets by far-off values (the MSE-vs-MAE lesson)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"outliers must be a share in [0, 1], got {fraction}")
    if fraction:
        hit = rng.random(len(y)) < fraction
        y[hit] += rng.choice([-1.0, 1.0], int(hit.sum())) * rng.uniform(5, 10, int(hit.sum()))
    return y


@DATASETS.register("sine")
def sine(rng, n_samples: int = 200, noise: float = 0.1, outliers: float = 0.0):
    """y = sin(x) + N(0, noise^2), x in [-pi, pi]; ``outliers``: share of targets moved 5-10 away."""
    check_generator(n_samples, noise)
    x = rng.uniform(-np.pi, np.pi, n_samples)
    y = np.sin(x) + rng.normal(0, noise, n_samples)
    return x[:, None], _outliers(y, outliers, rng), "regression"


@DATASETS.register("plane")
def plane(rng, n_samples: int = 200, noise: float = 0.1, outliers: float = 0.0):
    """y = x1 - 2 x2 + 0.5 + N(0, noise^2), x in [-1, 1]^2: a linear regression problem."""
    check_generator(n_samples, noise)
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
def csv_file(path: str, target: str | int = -1, sep: str = ","):
    """A CSV file with a header row; ``target``: the label column's name or index (default last)."""
    if len(sep) != 1 or sep in '"\r\n':
        raise ValueError(f"sep must be one character such as ',' ';' or '\\t', got {describe(sep)}")
    return read_csv(Path(path), target, sep)


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first local header, or an empty zip


@DATASETS.register("npz")
def npz_file(path: str):
    """A .npz file holding arrays X (N, F) and y (N,) or (N, K); loaded without pickle."""
    key = "data.path"
    check_file(Path(path))
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})", key) from None
    if magic not in ZIP_MAGIC:
        raise ConfigError(f"{path}: not an .npz file (a zip of arrays written by numpy.savez)", key)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = [name for name in ("X", "y") if name not in arrays.files]
            if missing:
                names = ", ".join(shorten(name, 30) for name in arrays.files[:5])
                raise ConfigError(f"{path} has no array {missing[0]} (it has: {names or 'none'})",
                                  key)
            return arrays["X"], arrays["y"], None
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001  a corrupt archive fails in zipfile, zlib or numpy
        message = shorten(" ".join(str(err).split()))
        raise ConfigError(f"{path}: cannot load ({type(err).__name__}: {message})", key) from None


# -- CSV files -------------------------------------------------------------------------
# pandas' C parser fills one preallocated float64 array chunk by chunk: the peak is about the
# data plus a chunk (docs/performance.md, "Loading CSV data"). pandas is imported only here.

CHUNK_ROWS = 65_536
MAX_HEADER = 1 << 20  # characters: a longer first line is not a CSV header


def read_csv(path: str | Path, target: str | int, sep: str = ","):
    """Features (float64) and the target column (numbers or strings) of a headed CSV file."""
    path = Path(path)
    header = read_header(path, sep)
    column = target_column(header, target, path, sep)
    features = [i for i in range(len(header)) if i != column]
    X = y = None
    for target_dtype in (np.float64, str):  # numbers first; string labels on a second pass
        try:
            X, y = parse_csv(path, sep, len(header), features, column, target_dtype)
            break
        except ValueError:  # a string label, or a bad cell that first_problem() names
            continue
    if X is not None and y.dtype == object:
        y = string_or_number_labels(y)
    if X is None or not complete(X, y):
        raise first_problem(path, sep, header, column)
    if len(X) == 0:
        raise ConfigError(f"{path}: needs a header row and at least one data row", "data.path")
    return X, y, None


def check_file(path: Path) -> None:
    """A data file must be a regular file: it is read more than once (a pipe would be empty)."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file", "data.path")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a data file", "data.path")
    if not path.is_file():
        raise ConfigError(f"{path}: is not a regular file (a pipe or a device); nntrain reads "
                          "a data file more than once: save it to a file first", "data.path")


def read_header(path: Path, sep: str) -> list[str]:
    """The column names: the first non-blank line, split on ``sep`` (utf-8-sig: Excel's BOM)."""
    key = "data.path"
    check_file(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            line = f.readline(MAX_HEADER)
            while line and not line.strip():
                line = f.readline(MAX_HEADER)
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: cannot read: not UTF-8 text (byte {err.start})", key) from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})", key) from None
    if len(line) >= MAX_HEADER:
        raise ConfigError(f"{path}: the first line is over {MAX_HEADER} characters long: not a "
                          "CSV header", key)
    if not line.strip():
        raise ConfigError(f"{path}: needs a header row and at least one data row", key)
    return next(csv.reader([line], delimiter=sep))


def column_list(header: list[str], shown: int = 5) -> str:
    """The first few column names, each cut short: file content, not a dump of the file."""
    names = ", ".join(repr(shorten(name, 30)) for name in header[:shown])
    return names + (f", ... ({len(header)} columns)" if len(header) > shown else "")


def target_column(header: list[str], target: str | int, path: Path, sep: str) -> int:
    """The index of the target column; a file needs at least one feature column besides it."""
    read = f"read {len(header)} column(s): {column_list(header)}{separator_hint(header, sep)}"
    if isinstance(target, int):
        if not -len(header) <= target < len(header):
            raise ConfigError(f"column {target} is out of range: {path}: {read}", "data.target")
        column = target % len(header)
    elif target in header:
        column = header.index(target)
    else:
        raise ConfigError(f"{path} has no column {describe(target, 30)}; {read}", "data.target")
    if len(header) < 2:
        raise ConfigError(f"{path}: needs feature columns besides the target; {read}", "data.path")
    return column


def count_lines(path: Path) -> int:
    """An upper bound on the rows, so the data array is allocated once (bytes, not text: fast)."""
    lines = 1
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            lines += block.count(b"\n")
    return lines


def parse_csv(path: Path, sep: str, n_columns: int, features: list[int], column: int,
              target_dtype) -> tuple[np.ndarray, np.ndarray]:
    """X (rows, features) float64 and the target column, read chunk by chunk with pandas' C parser.

    Only empty fields are missing values: a class named 'NA' or 'None' stays a class.
    Raises ValueError for a cell that is not of its column's type, or a row that is too long.
    """
    import pandas as pd

    X = np.empty((count_lines(path), len(features)))
    labels, rows = [], 0
    dtypes = {i: np.float64 for i in features} | {column: target_dtype}
    reader = pd.read_csv(path, sep=sep, header=0, names=list(range(n_columns)), index_col=False,
                         dtype=dtypes, keep_default_na=False, na_values=[""], engine="c",
                         encoding="utf-8-sig", chunksize=CHUNK_ROWS)
    with reader:
        for chunk in reader:
            X[rows:rows + len(chunk)] = chunk[features].to_numpy(np.float64)
            labels.append(chunk[column].to_numpy())
            rows += len(chunk)
    y = np.concatenate(labels) if labels else np.empty(0)
    return X[:rows], y


def complete(X: np.ndarray, y: np.ndarray) -> bool:
    """No NaN or infinity among the features or numeric targets, and no empty label."""
    if not np.isfinite(X).all():
        return False
    return bool(np.isfinite(y).all()) if y.dtype.kind == "f" else not (y == "").any()


def string_or_number_labels(labels: np.ndarray) -> np.ndarray:
    """Labels read as text: numbers if every one is a number (a 'nan' among them), else strings."""
    if any(not isinstance(v, str) for v in labels):  # an empty field: first_problem names it
        return np.array(["" if not isinstance(v, str) else v.strip() for v in labels])
    labels = parse_labels(labels)  # stripped as predict and evaluate strip them
    # floats, as nntrain 0.2 read them: the data's fingerprint (resume) hashes these values
    return labels.astype(np.float64) if labels.dtype.kind in "iu" else labels


def first_problem(path: Path, sep: str, header: list[str], column: int) -> ConfigError:
    """The first bad row of a CSV file pandas refused, as a one-line error (slow, but only then)."""
    key = "data.path"
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = csv.reader(f, delimiter=sep)
            next(row for row in rows if row)  # the header
            for row in rows:
                problem = row_problem(row, header, column) if row else None
                if problem:
                    return ConfigError(f"{path}: line {rows.line_num}{problem}", key)
    except UnicodeDecodeError as err:
        return ConfigError(f"{path}: cannot read: not UTF-8 text (byte {err.start})", key)
    except csv.Error as err:
        return ConfigError(f"{path}: line {rows.line_num}: {shorten(str(err))}", key)
    return ConfigError(f"{path}: cannot parse it as CSV with separator {sep!r}", key)


def row_problem(row: list[str], header: list[str], column: int) -> str | None:
    """What is wrong with one data row, to follow 'line N', or None."""
    if len(row) != len(header):
        return f" has {len(row)} fields, the header has {len(header)}"
    name = repr(shorten(header[column], 30))
    for i, text in enumerate(row):
        if i == column:
            continue
        value = plain_number(text)
        if value is None:
            return f", column {shorten(header[i], 30)!r}: {describe(text, 30)} is not a number"
        if not math.isfinite(value):
            return f", column {shorten(header[i], 30)!r} is {nonfinite(value)}"
    if not row[column].strip():
        return f" has no value in the target column {name}"
    label = plain_number(row[column])
    if label is not None and not math.isfinite(label):
        return f": the target column {name} has {'NaN' if math.isnan(label) else 'an infinite value'}"
    return None


def nonfinite(value: float) -> str:
    """The right word for a value that is not finite: NaN and infinity are different mistakes."""
    return "NaN" if math.isnan(value) else "infinite"


# -- from raw arrays to training data -----------------------------------------------------

def check_arrays(X: np.ndarray, y: np.ndarray, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """X as float64 (N, F) and y (N,) or (N, K), or a ConfigError naming the file or dataset.

    Every dataset passes here, a plugin's too: the checks hold whatever made the arrays.
    """
    where, key = (spec["path"], "data.path") if "path" in spec else (f"dataset {spec['name']!r}",
                                                                        "data")
    if X.dtype.kind == "c":  # numpy would drop the imaginary part with only a warning
        raise ConfigError(f"{where}: X must be a 2-D array of real numbers, got complex numbers: "
                          "split them into real columns", key)
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise ConfigError(f"{where}: X must be a 2-D array of real numbers, got {X.dtype} "
                          f"{X.shape}", key)
    if y.ndim not in (1, 2) or y.dtype.kind not in "biufU" or y.dtype.names:
        raise ConfigError(f"{where}: y must be numbers or strings, one row (N,) or (N, K) per "
                          f"sample, got {y.dtype} {y.shape}", key)
    if len(y) != len(X):
        raise ConfigError(f"{where}: X has {len(X)} rows but y has {len(y)}", key)
    rows = f" (n_samples: {spec['n_samples']})" if "n_samples" in spec else ""
    if len(X) == 0 or X.shape[1] == 0 or (y.ndim == 2 and y.shape[1] == 0):
        raise ConfigError(f"{where}: X {X.shape} and y {y.shape} must have at least one row, one "
                          f"feature and one target{rows}", key)
    for name, array in (("X", X), ("y", y)):
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = array[~np.isfinite(array)].flat[0]
            raise ConfigError(f"{where}: {name} has {nonfinite(bad)} values", key)
    return X.astype(np.float64, copy=False), y


def check_classes(labels: np.ndarray, task: Task) -> None:
    """A classifier needs two classes or more; binary at most two."""
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ConfigError(f"the data has a single class ({describe(classes[0].item(), 30)}): a "
                          "classifier needs two or more; for a regression set data.task: regression",
                          "data")
    if task.max_classes is not None and len(classes) > task.max_classes:
        raise ConfigError(f"task {task.name}, but the data has {len(classes)} classes", "data.task")


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
    """Generate or read the dataset named in ``spec``, split it, and fit the preprocessor on
    the training part; every part goes through that one preprocessor.

    The validation part is drawn first, then the test part (each a share of all rows),
    with the same generator: a config without a test part splits as before.
    """
    rng = np.random.default_rng(seed)
    X, y, hint = DATASETS.build(spec, "data", rng=rng)
    X, y = check_arrays(np.asarray(X), np.asarray(y), spec)
    if task == "auto":
        task = infer_task(y, hint)
    elif TASKS[task].has_classes and y.ndim == 2 and y.shape[1] > 1:
        raise ConfigError(f"task {task} needs one label per sample, got targets {y.shape}", "data.task")
    labels = y.reshape(len(y)) if TASKS[task].has_classes else None
    if labels is not None:
        check_classes(labels, TASKS[task])
    train, val = split(len(X), labels, val_fraction, rng)
    train, test = split(len(X), labels, test_fraction, rng, rows=train, key="data.test_fraction")
    names, target = columns(spec, X.shape[1])
    where = {"target": target, "sep": spec.get("sep", ","), "fingerprint": fingerprint(X, y)}
    return prepare_parts(X, y, (train, val, test), TASKS[task], names, standardize, where)


def columns(spec: dict, count: int) -> tuple[list[str], str | None]:
    """The CSV header's feature columns and its target column, else x1..xn and None."""
    names = [f"x{i}" for i in range(1, count + 1)]
    if spec.get("name") != "csv" or "path" not in spec:
        return names, None
    try:  # the header training read: the first line that is not blank
        header = read_header(Path(spec["path"]), spec.get("sep", ","))
    except ConfigError:
        return names, None
    target = spec.get("target", -1)
    column = (target % len(header) if isinstance(target, int) and header else
              header.index(target) if target in header else None)
    features = [h.strip() for i, h in enumerate(header) if i != column]
    if len(features) != count or column is None:
        return names, None
    return features, header[column].strip()
