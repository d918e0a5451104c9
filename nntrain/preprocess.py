"""From data to the network's arrays: one fitted object, used alike by train, predict, evaluate,
plot and ``load_run`` (scikit-learn's fitted Pipeline, without the machinery).

    prep = Preprocessor.fit(X_train, y, task, names, standardize=True)
    X = prep.inputs(frame)       # columns by name, checked, standardized as in training
    Y = prep.targets(labels)     # labels matched to the classes, encoded for the loss

It is fitted once, on the training part, and saved in the run folder
(data.npz); what it did at training time it does again at prediction time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .registry import ConfigError, describe, shorten
from .tasks import TASKS, Task

SHOWN_ROWS = 5  # rows named in an error about missing values


@dataclass
class Data:
    """The network's arrays of each part (standardized, targets encoded) and the fitted
    preprocessor that made them from the raw data."""

    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray | None
    Y_val: np.ndarray | None
    prep: Preprocessor
    X_test: np.ndarray | None = None  # held out: never seen by training or early stopping
    Y_test: np.ndarray | None = None

    @property
    def task(self) -> str:
        return self.prep.task.name

    @property
    def classes(self) -> list | None:
        return self.prep.classes

    @property
    def mean(self) -> np.ndarray | None:
        return self.prep.mean

    @property
    def std(self) -> np.ndarray | None:
        return self.prep.std

    @property
    def feature_names(self) -> list[str]:
        return self.prep.feature_names

    @property
    def fingerprint(self) -> str:
        return self.prep.fingerprint

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.Y_train.shape[1]


def prepare_parts(X: np.ndarray, y: np.ndarray, parts: tuple, task: Task, names: list[str],
                  standardize: bool, where: dict) -> Data:
    """The preprocessor fitted on the training rows (``parts``: the row indices of the
    training, validation and test parts), and every part put through it."""
    train, val, test = parts
    labels = y.reshape(len(y)) if task.has_classes else None
    prep = Preprocessor.fit(X[train], labels, task, names, standardize, **where)

    def part(rows):
        return (prep.inputs(X[rows]), prep.targets(y[rows])) if len(rows) else (None, None)

    return Data(*part(train), *part(val), prep, *part(test))


def parse_labels(values: np.ndarray) -> np.ndarray:
    """Labels as read from a file: numbers if every one is a number (integers if every one is
    whole: a class is 0, not 0.0), else the texts with surrounding spaces stripped."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    if values.dtype.kind != "f":
        texts = np.array([str(v).strip() for v in values.reshape(-1)]).reshape(values.shape)
        try:
            values = texts.astype(np.float64)
        except ValueError:
            return texts
    whole = np.isfinite(values).all() and np.all(values == np.round(values))
    return values.astype(np.int64) if whole and np.abs(values).max(initial=0) < 2**53 else values


def bad_rows(X: np.ndarray) -> np.ndarray:
    """Indices of the rows with a missing (NaN) or infinite feature."""
    return np.flatnonzero(~np.isfinite(X).all(axis=1))


@dataclass
class Preprocessor:
    """What turns raw features and labels into the network's inputs and targets."""

    task: Task
    feature_names: list[str]
    classes: list | None = None  # class labels in the data's own values, sorted
    mean: np.ndarray | None = None  # standardization fitted on the training part (or None)
    std: np.ndarray | None = None
    target: str | None = None  # the target's column in a CSV file
    sep: str = ","  # a CSV file's separator (data.sep)
    fingerprint: str = ""  # a hash of the raw training data: resume tells when it changed

    @classmethod
    def fit(cls, X_train: np.ndarray, labels: np.ndarray | None, task: Task,
            feature_names: list[str], standardize: bool, **where) -> Preprocessor:
        """Fitted on the training part (``X_train``); ``labels``: every class label of the data
        (None for regression), so that the classes are the same whatever the split."""
        classes = sorted(np.unique(parse_labels(labels)).tolist()) if labels is not None else None
        mean = std = None
        if standardize:
            mean = X_train.mean(axis=0)
            spread = X_train.std(axis=0)
            std = np.where(spread > 0, spread, 1.0)
        return cls(task, list(feature_names), classes, mean, std, **where)

    # -- features -------------------------------------------------------------------------

    def inputs(self, X, where: str = "X", allow_missing: bool = False, dtype=np.float64,
               hint: str = "") -> np.ndarray:
        """Raw features -> the network's inputs in ``dtype``: a DataFrame's columns by name, an
        array's in ``feature_names`` order; standardized; checked for missing and non-finite
        values after standardizing and casting (1e308 scaled up is infinite too).

        ``allow_missing``: rows with a missing or non-finite feature stay NaN (the caller
        blanks their predictions) instead of being refused. ``hint``: said after a refusal.
        """
        raw = self.feature_array(X, where)
        with np.errstate(over="ignore", invalid="ignore"):  # what overflows is refused below
            Z = raw if self.mean is None else (raw - self.mean) / self.std
            Z = Z.astype(dtype, copy=False)
        bad = bad_rows(Z)
        if len(bad) and not allow_missing:
            labels = getattr(X, "index", None)  # a DataFrame's own row labels, when not 0, 1, ..
            if labels is not None and np.array_equal(labels, np.arange(len(raw))):
                labels = None
            raise ConfigError(missing_message(raw, bad, self.feature_names, labels) + hint, where)
        return Z

    def check_network(self, sizes: list[int], where: str) -> None:
        """The preprocessor must fit the network it feeds: one input per feature, one mean and
        std each, and the classes the output layer tells apart (a binary net: two)."""
        n_in, n_out = sizes[0], sizes[-1]
        problems = []
        if len(self.feature_names) != n_in:
            problems.append(f"{len(self.feature_names)} feature names for {n_in} inputs")
        if self.mean is not None and (np.shape(self.mean) != (n_in,)
                                      or np.shape(self.std) != (n_in,)):
            problems.append("a mean and std of the wrong shape")
        if self.task.has_classes:
            wanted = self.task.max_classes or n_out
            if self.classes is None or len(self.classes) != wanted:
                found = 0 if self.classes is None else len(self.classes)
                problems.append(f"{found} classes for a {self.task.name} network of {n_out} "
                                f"output(s)")
        if problems:
            raise ConfigError(f"data.npz does not fit the run's network: {'; '.join(problems)}",
                              where)

    def check_data(self, data: Data, where: str) -> None:
        """``data``, rebuilt from the run's config, must be the data this preprocessor was
        fitted on (its fingerprint): else the run's splits are not its own."""
        if self.fingerprint and data.fingerprint != self.fingerprint:
            raise ConfigError("the data is not the data this run was trained on (its "
                              "fingerprint changed)", where)

    def raw(self, Z: np.ndarray) -> np.ndarray:
        """The network's inputs back in the data's own units (standardization undone)."""
        return Z if self.mean is None else Z * self.std + self.mean

    def feature_array(self, X, where: str) -> np.ndarray:
        """The features as float64 (N, F), a DataFrame's chosen by column name."""
        names = self.feature_names
        if hasattr(X, "columns"):  # a pandas DataFrame: by name, in any order
            columns = [str(c).strip() for c in X.columns]
            missing = [n for n in names if n not in columns]
            if missing:
                hint = "".join(f"; is {c!r} the feature {n!r}?" for n, c in
                               near_columns(missing, [c for c in columns if c not in names]))
                raise ConfigError(f"has no column {', '.join(missing[:8])}; the model takes the "
                                  f"features {', '.join(names[:8])}; the file's columns: "
                                  f"{', '.join(columns[:8])}{hint}"
                                  f"{separator_hint(columns, self.sep, training=False)}", where)
            X = X.set_axis(columns, axis=1)
            return np.column_stack([numbers(X[n], n, where) for n in names])
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(names) or X.dtype.kind not in "biuf":
            raise ConfigError(f"the model takes {len(names)} numeric features "
                              f"({', '.join(names[:8])}), got an array of {X.dtype} {X.shape}",
                              where)
        return X.astype(np.float64)

    # -- targets --------------------------------------------------------------------------

    def class_index(self, labels, where: str = "y") -> np.ndarray:
        """Each label's index in ``classes``: numbers match by value (a 0.2 run's 1.0 is 1),
        text classes by their text with surrounding spaces stripped. An unknown label is a
        ConfigError naming it."""
        labels = np.asarray(labels).reshape(-1)
        known = np.asarray(self.classes)
        if known.dtype.kind in "iuf":
            shown = parse_labels(labels)
            values = shown.astype(np.float64) if shown.dtype.kind in "iuf" else None
            known = known.astype(np.float64)
        else:  # "1.0" is a class's text here, not a number
            values = shown = np.array([str(v).strip() for v in labels])
        if values is None:  # text labels, number classes: none of them is known
            index, unknown = np.zeros(len(shown), int), shown
        else:
            index = np.searchsorted(known, values).clip(0, len(known) - 1)
            unknown = shown[known[index] != values]
        if len(unknown):
            listed = ", ".join(str(u) for u in list(dict.fromkeys(unknown.tolist()))[:5])
            raise ConfigError(f"labels the model does not know: {listed}; it knows "
                              f"{', '.join(map(str, self.classes))}", where)
        return index

    def targets(self, y, where: str = "y") -> np.ndarray:
        """Labels or targets in the data's own values -> what the loss compares outputs with."""
        y = np.asarray(y)
        if not self.task.has_classes:
            flat = y.reshape(len(y), -1)
            Y = np.column_stack([numbers(column, "target", where) for column in flat.T])
            bad = bad_rows(Y)
            if len(bad):
                raise ConfigError(f"the target is empty or not finite in {row_list(bad)}", where)
            return Y
        if y.ndim == 2 and y.shape[1] != 1:
            raise ConfigError(f"a {self.task.name} model takes one label per row, got targets of "
                              f"shape {y.shape}", where)
        empty = np.flatnonzero(empty_cells(y.reshape(-1)))
        if len(empty):
            raise ConfigError(f"the target is empty in {row_list(empty)}", where)
        return self.task.encode(self.class_index(y, where), len(self.classes))

    def labels(self, output: np.ndarray) -> np.ndarray:
        """Network outputs -> predictions in the data's own values (classes or targets)."""
        if not self.task.has_classes:
            return output[:, 0] if output.shape[1] == 1 else output
        return np.asarray(self.classes)[self.task.predicted_index(output)]

    # -- files ----------------------------------------------------------------------------

    def read(self, path: str | Path, with_target: bool = False):
        """A CSV with a header (read with the run's separator, the same missing-value rule as
        training) or an npz with X (and y): the table as a DataFrame, and the targets."""
        import pandas as pd

        path = Path(path)
        if not path.is_file():
            raise ConfigError("no such file", str(path))
        if path.suffix == ".npz":
            return self.read_npz(path, with_target)
        try:
            # as the training data is read: only an empty cell is missing ("NA" can be a class)
            table = pd.read_csv(path, sep=self.sep, encoding="utf-8-sig", keep_default_na=False,
                                na_values=[""], dtype=str)
        except (ValueError, OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot be read as CSV ({shorten(str(err), 80)})",
                              str(path)) from None
        table.columns = [str(c).strip() for c in table.columns]
        y = table[self.target_column(table, path)].to_numpy(dtype=object) if with_target else None
        return table, y

    def read_npz(self, path: Path, with_target: bool):
        import pandas as pd

        from .runs import load_arrays

        arrays = load_arrays(path)
        if "X" not in arrays:
            raise ConfigError(f"has no array X (arrays: {', '.join(arrays)})", str(path))
        X = self.feature_array(arrays["X"], str(path))
        if with_target and "y" not in arrays:
            raise ConfigError("has no array y of targets to evaluate against", str(path))
        return pd.DataFrame(X, columns=self.feature_names), arrays.get("y")

    def target_column(self, table, path: Path) -> str:
        """The targets' column: the training file's by name, else the one non-feature column."""
        if self.target is not None:
            if self.target not in table.columns:
                raise ConfigError(f"has no target column {self.target!r}", str(path))
            return self.target
        others = [c for c in table.columns if c not in self.feature_names]
        if len(others) != 1:
            raise ConfigError(f"needs one target column besides the features; found "
                              f"{', '.join(others[:8]) or 'none'}", str(path))
        return others[0]

    # -- saving ---------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """data.npz: plain arrays, loaded without pickle."""
        info = {"feature_names": np.array(self.feature_names), "task": np.array(self.task.name),
                "fingerprint": np.array(self.fingerprint), "sep": np.array(self.sep)}
        if self.classes is not None:
            info["classes"] = np.array(self.classes)
        if self.mean is not None:
            info.update(mean=self.mean, std=self.std)
        if self.target is not None:
            info["target"] = np.array(self.target)
        return info

    @classmethod
    def from_arrays(cls, info: dict, task: str, sep: str = ",", target=None) -> Preprocessor:
        """A saved preprocessor; ``task``, ``sep`` and ``target`` come from the run's config
        when data.npz (a 0.2 run's) does not hold them."""
        text = {k: str(info[k]) for k in ("task", "sep", "target", "fingerprint") if k in info}
        target = text.get("target", target if isinstance(target, str) else None)
        if "feature_names" not in info or np.ndim(info["feature_names"]) != 1:
            raise ConfigError("data.npz has no list of feature_names", "data.npz")
        if text.get("task", task) not in TASKS:
            raise ConfigError(f"data.npz names an unknown task {text['task']!r}", "data.npz")
        return cls(TASKS[text.get("task", task)], [str(n) for n in info["feature_names"]],
                   info["classes"].tolist() if "classes" in info else None,
                   info.get("mean"), info.get("std"), target, text.get("sep", sep),
                   text.get("fingerprint", ""))


def empty_cells(y: np.ndarray) -> np.ndarray:
    """Which labels are missing: NaN, None or blank text."""
    if y.dtype.kind == "f":
        return np.isnan(y)
    if y.dtype.kind in "iub":
        return np.zeros(len(y), bool)
    return np.array([v is None or (isinstance(v, float) and np.isnan(v))
                     or (isinstance(v, str) and not v.strip()) for v in y], bool)


NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
SEPARATORS = ",;\t|:"  # what a one-column file may really be separated by


def plain_number(text: str) -> float | None:
    """A cell's number as training's CSV parser reads it, or None: Python's float() without
    what it adds (1_000, digits of other scripts)."""
    text = text.strip()
    if "_" in text or not text.isascii():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def numbers(column, name: str, where: str) -> np.ndarray:
    """A column of numbers or their text as float64, by the rules training reads a CSV with
    (pandas' C parser): an empty cell, NaN and infinity are kept for the missing-value check;
    any other text that is not a plain number (1_000, other scripts' digits, words) is a
    ConfigError naming the column and row."""
    import pandas as pd

    column = pd.Series(np.asarray(column, dtype=object) if not hasattr(column, "dtype")
                       or column.dtype.kind not in "biuf" else column)
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    for i in np.flatnonzero(np.isnan(values) & column.notna().to_numpy()):
        text = str(column.iloc[i]).strip()
        if text.lower() in NON_FINITE:
            values[i] = plain_number(text)
        elif text:
            raise ConfigError(f"column {name!r}, row {i + 1}: {describe(text, 30)} is not a "
                              "number", where)
    return values


def near_columns(missing: list[str], others: list[str]) -> list[tuple[str, str]]:
    """(feature, column) pairs where a file's column is probably a missing feature misspelt:
    the same but for case (Income, income), else a close match."""
    import difflib

    pairs = []
    for name in missing:
        same = [c for c in others if c.casefold() == name.casefold()]
        close = same or difflib.get_close_matches(name, others, n=1, cutoff=0.75)
        pairs += [(name, close[0])] if close else []
    return pairs


def separator_hint(header: list[str], sep: str, training: bool = True) -> str:
    """"; is the separator ';'? (set data.sep: ';')" when one column name holds a likely
    separator; for new data (``training`` False), the run's own separator is named instead."""
    if len(header) != 1:
        return ""
    found = [c for c in SEPARATORS if c != sep and c in header[0]]
    if not found:
        return ""
    best = max(found, key=header[0].count)
    advice = f"set data.sep: {best!r}" if training else f"this run reads files separated by {sep!r}"
    return f"; is the separator {best!r}? ({advice})"


def row_list(rows: np.ndarray) -> str:
    """'row 3', 'rows 3, 8, 9' or 'rows 3, 8, 9, 12, 20 and 4 more': counted from 1, as the
    data rows below a CSV's header."""
    shown = ", ".join(str(r + 1) for r in rows[:SHOWN_ROWS])
    more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
    return f"row{'s' * (len(rows) > 1)} {shown}{more}"


def missing_message(raw: np.ndarray, rows: np.ndarray, names: list[str], labels=None) -> str:
    """"row 2: 'b' is empty (or NaN); row 7: 'a' is infinite": each bad row's first bad
    column, from the raw values (a finite value too large once standardized says so).
    ``labels``: a DataFrame's index, named beside the row when it is not 0, 1, 2, ..."""
    parts = []
    for r in rows[:SHOWN_ROWS]:
        finite = np.isfinite(raw[r])
        j = int(np.flatnonzero(~finite)[0]) if not finite.all() else 0
        kind = ("empty (or NaN)" if np.isnan(raw[r, j]) else "infinite" if not finite.all()
                else "too large once standardized")
        where = f"row {r + 1}" + (f" (index {labels[r]})" if labels is not None else "")
        parts.append(f"{where}: {names[j]!r} is {kind}")
    more = f" and {len(rows) - SHOWN_ROWS} more rows" if len(rows) > SHOWN_ROWS else ""
    return f"{'; '.join(parts)}{more}: a feature must be a finite number"
