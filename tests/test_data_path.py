"""One data path: the preprocessor fitted at training time reads new data the same way in
predict, evaluate and load_run (columns by name, the separator, labels, missing values); and
user callbacks through the Python API."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import write
from nntrain import load_config, load_run, train
from nntrain.callbacks import Callback
from nntrain.registry import ConfigError


def points(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def train_csv(tmp_path, text, extra=""):
    """Train a small classifier on a CSV written as ``text``; returns the run and the file."""
    data = write(tmp_path / "train.csv", text)
    config = write(tmp_path / "c.yaml",
                   f"data: {{name: csv, path: train.csv, target: label, standardize: true{extra}}}\n"
                   "model: {layers: [2, 8, 1], activation: tanh}\n"
                   "optimizer: {name: adam, lr: 0.05}\ntrain: {epochs: 60}\n")
    return train(load_config(config), out=tmp_path / "run"), data


def csv_text(X, labels, sep=",", label_text=str):
    rows = [sep.join([repr(float(a)), repr(float(b)), label_text(c)]) for (a, b), c in zip(X, labels)]
    return sep.join(["a", "b", "label"]) + "\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize("sep, label_text, classes", [
    (",", str, [0, 1]),  # integer labels stay integers: 0, not 0.0
    (",", lambda c: f" {['cat', 'dog'][c]}", ["cat", "dog"]),  # a space before the label
    (";", str, [0, 1]),  # data.sep: ";"
])
def test_a_run_predicts_and_evaluates_its_own_training_file(tmp_path, cli, sep, label_text,
                                                            classes):
    X, y = points()
    extra = f", sep: '{sep}'" if sep != "," else ""
    run, data = train_csv(tmp_path, csv_text(X, y, sep, label_text), extra)
    assert load_run(run.path).classes == classes
    predicted = cli("predict", run.path, data)
    assert predicted.exit_code == 0, predicted.stderr
    table = pd.read_csv(pd.io.common.StringIO(predicted.stdout))
    assert [f"p_{c}" for c in classes] == list(table.columns[-2:])
    truth = [str(classes[c]) for c in y]
    assert np.mean(table["prediction"].astype(str).to_numpy() == truth) > 0.9
    report = cli("evaluate", run.path, data, "--json")
    assert report.exit_code == 0, report.stderr
    figures = json.loads(report.stdout)
    assert figures["n"] == len(y) and figures["accuracy"] > 0.9
    assert figures["classes"] == classes  # the labels themselves: 0, not "0" or 0.0


def test_columns_in_another_order_are_matched_by_name(tmp_path, cli):
    X, y = points()
    run, data = train_csv(tmp_path, csv_text(X, y))
    model = load_run(run.path)
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1]})
    swapped = frame[["b", "a"]]
    expected = model.predict(frame)
    np.testing.assert_array_equal(model.predict(swapped), expected)  # the API: by name
    np.testing.assert_array_equal(model.predict(X), expected)  # an array: feature_names order
    assert not np.array_equal(model.predict(X[:, ::-1]), expected)  # (so the order matters)
    swapped.assign(label=y).to_csv(tmp_path / "swapped.csv", index=False)
    result = cli("predict", run.path, tmp_path / "swapped.csv")
    table = pd.read_csv(pd.io.common.StringIO(result.stdout))
    np.testing.assert_array_equal(table["prediction"].to_numpy(), expected)  # the CLI: by name
    assert list(table.columns[:3]) == ["b", "a", "label"]


def test_other_columns_are_written_back_as_they_were_read(tmp_path, cli):
    X, y = points()
    run, _ = train_csv(tmp_path, csv_text(X, y))
    write(tmp_path / "new.csv", "id,a,b\n007,0.5,1.5\n010,-1,-2\n")
    out = cli("predict", run.path, tmp_path / "new.csv")
    lines = out.stdout.splitlines()
    assert lines[0].startswith("id,a,b,prediction") and lines[1].startswith("007,0.5,1.5,")


@pytest.mark.parametrize("cell", ["", "nan", "inf", "-inf"])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_missing_or_infinite_feature_is_refused_and_nothing_is_written(tmp_path, cli, cell,
                                                                         command):
    X, y = points()
    run, _ = train_csv(tmp_path, csv_text(X, y))
    bad = write(tmp_path / "bad.csv", f"a,b,label\n0.1,0.2,1\n0.3,{cell},0\n1,2,1\n")
    out = tmp_path / "out.csv"
    args = ["-o", out] if command == "predict" else []
    result = cli(command, run.path, bad, *args)
    assert result.exit_code == 2
    assert "'b'" in result.stderr and "row 2" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not out.exists() and result.stdout == ""


def test_allow_missing_blanks_those_rows_and_never_gives_them_a_class(tmp_path, cli):
    X, y = points()
    run, _ = train_csv(tmp_path, csv_text(X, y))
    bad = write(tmp_path / "bad.csv", "a,b\n0.1,0.2\n0.3,\n1,inf\n-1,-1\n")
    result = cli("predict", run.path, bad, "--allow-missing")
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert table["prediction"].isna().tolist() == [False, True, True, False]
    assert table["p_1"].isna().tolist() == [False, True, True, False]


def test_an_empty_target_cell_in_evaluate_is_refused_naming_the_row(tmp_path, cli):
    X, y = points()
    run, _ = train_csv(tmp_path, csv_text(X, y))
    bad = write(tmp_path / "bad.csv", "a,b,label\n0.1,0.2,1\n0.3,0.4,\n")
    result = cli("evaluate", run.path, bad)
    assert result.exit_code == 2 and "row 2" in result.stderr and "target" in result.stderr


def test_a_label_of_a_run_from_0_2_matches_by_value(tmp_path, cli):
    """nntrain 0.2 stored integer classes as floats (0.0, 1.0): labels 0 and 1 match them."""
    X, y = points()
    run, data = train_csv(tmp_path, csv_text(X, y))
    info = dict(np.load(run.path / "data.npz"))
    info["classes"] = np.array([0.0, 1.0])
    for key in ("task", "sep", "target"):  # 0.2's data.npz had none of them
        info.pop(key)
    np.savez(run.path / "data.npz", **info)
    assert load_run(run.path).classes == [0.0, 1.0]
    report = cli("evaluate", run.path, data, "--json")
    assert report.exit_code == 0, report.stderr
    assert json.loads(report.stdout)["accuracy"] > 0.9


class Recorder(Callback):
    """A user's callback: it sees every epoch's row and the run's end, and can stop the run."""

    def __init__(self, stop_at=None):
        self.rows, self.ended, self.stop_at = [], None, stop_at

    def on_epoch_end(self, epoch, logs):
        self.rows.append((epoch, logs["loss"]))
        if epoch == self.stop_at:
            self.training.stop("early_stopped")

    def on_train_end(self, logs):
        self.ended = (self.training.status, logs["epoch"])


def test_a_user_callback_sees_each_epoch_and_can_stop_the_run(tmp_path):
    cfg = load_config(raw={
        "data": {"name": "xor"}, "model": {"layers": [2, 4, 1]},
        "optimizer": {"name": "gd", "lr": 0.5}, "train": {"epochs": 20}})
    seen = Recorder()
    run = train(cfg, out=tmp_path / "a", callbacks=[seen])
    assert [e for e, _ in seen.rows] == list(range(21))  # epoch 0, the untrained network, too
    assert [loss for _, loss in seen.rows] == [row["loss"] for row in run.history]
    assert seen.ended == ("completed", 20)
    stopper = Recorder(stop_at=7)
    run = train(cfg, out=tmp_path / "b", callbacks=[stopper])
    assert run.summary["status"] == "early_stopped" and run.summary["epochs"] == 7
    assert len(pd.read_csv(run.path / "metrics.csv")) == 8


def test_a_hook_set_on_the_callback_itself_is_called_too(tmp_path):
    """Keras' LambdaCallback style: on_epoch_end given to the object, not its class."""
    cfg = load_config(raw={"data": {"name": "xor"}, "model": {"layers": [2, 4, 1]},
                           "train": {"epochs": 5}})
    seen, hook = [], Callback()
    hook.on_epoch_end = lambda epoch, logs: seen.append(epoch)
    train(cfg, out=tmp_path / "a", callbacks=[hook])
    assert seen == [0, 1, 2, 3, 4, 5]


def test_an_optimizer_can_evaluate_the_loss_itself_through_the_closure(tmp_path):
    """Optimizer.step(..., closure=...) as torch.optim's step(closure): a gradient-free rule
    (the notes' random search keeps new weights only if the loss falls) reads no gradient."""
    from nntrain.optimizers import OPTIMIZERS, Optimizer

    @OPTIMIZERS.register("shrink_if_better")
    class ShrinkIfBetter(Optimizer):
        """w <- 0.9 w when that lowers E, else w is kept."""

        evaluations = 0

        def step(self, params, grads, lr, decay=None, closure=None):
            before = closure()
            saved = [p.copy() for p in params]
            for p in params:
                p *= 0.9
            if closure() >= before:
                for p, s in zip(params, saved):
                    p[...] = s
            ShrinkIfBetter.evaluations += 2

    cfg = load_config(raw={"data": {"name": "xor"}, "model": {"layers": [2, 4, 1],
                           "initializer": {"name": "normal", "std": 3.0}},
                           "optimizer": {"name": "shrink_if_better", "lr": 0.1},
                           "train": {"epochs": 30}})
    run = train(cfg, out=tmp_path / "r")
    losses = [row["loss"] for row in run.history]
    assert ShrinkIfBetter.evaluations == 60  # two loss evaluations per step, one step an epoch
    assert all(b <= a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0]


def test_each_bad_row_is_named_with_its_own_column_and_problem(tmp_path, cli):
    X, y = points()
    run, _ = train_csv(tmp_path, csv_text(X, y))
    bad = write(tmp_path / "bad.csv", "a,b,label\n,0.2,1\n0.3,nan,0\n1,2,1\n-inf,2,0\n")
    result = cli("predict", run.path, bad)
    assert result.exit_code == 2
    assert ("row 1: 'a' is empty (or NaN); row 2: 'b' is empty (or NaN); row 4: 'a' is infinite"
            in result.stderr)
    frame = pd.DataFrame({"a": [0.1, 0.2, np.nan], "b": [1.0, 2.0, 3.0]}, index=[10, 20, 30])
    with pytest.raises(ConfigError, match=r"row 3 \(index 30\): 'a' is empty"):
        load_run(run.path).predict(frame)


def test_a_value_too_large_once_standardized_is_refused_not_given_a_class(tmp_path):
    X, y = points()
    run, _ = train_csv(tmp_path, csv_text(X * 0.01, y))  # standardized: divided by about 0.01
    model = load_run(run.path)
    with pytest.raises(ConfigError, match="'a' is too large once standardized"):
        model.predict(np.array([[1e308, 0.0]]))


def test_text_that_training_refuses_is_refused_by_predict_too(tmp_path, cli):
    X, y = points()
    run, data = train_csv(tmp_path, csv_text(X, y))
    bad = write(tmp_path / "bad.csv", "a,b\n1_000,2\n")
    result = cli("predict", run.path, bad)
    assert result.exit_code == 2 and "column 'a', row 1: '1_000' is not a number" in result.stderr
    write(tmp_path / "train2.csv", "a,b,label\n1_000,2,1\n" + data.read_text().split("\n", 1)[1])
    config = write(tmp_path / "c2.yaml", "data: {name: csv, path: train2.csv, target: label}\n"
                                         "model: {layers: [2, 1]}\n")
    refused = cli("train", config)
    assert refused.exit_code == 2 and "'1_000' is not a number" in refused.stderr


def test_a_header_below_blank_lines_is_the_same_header_for_training_and_predict(tmp_path, cli):
    X, y = points()
    run, data = train_csv(tmp_path, "\n\n" + csv_text(X, y))
    assert load_run(run.path).feature_names == ["a", "b"]
    assert cli("predict", run.path, data).exit_code == 0


def test_text_classes_that_look_like_numbers_match_as_text(tmp_path, cli):
    X, y = points()
    run, _ = train_csv(tmp_path, csv_text(X, y, label_text=lambda c: ["1.0", "x"][c]))
    model = load_run(run.path)
    assert model.classes == ["1.0", "x"]
    report = model.evaluate(X[:3], ["1.0", "1.0", "x"])
    assert report["n"] == 3
    with pytest.raises(ConfigError, match="labels the model does not know: 1; it knows 1.0, x"):
        model.evaluate(X[:1], ["1"])


def test_evaluate_refuses_features_and_targets_of_different_lengths(tmp_path):
    X, y = points()
    run, _ = train_csv(tmp_path, csv_text(X, y))
    with pytest.raises(ConfigError, match="3 rows of features but 1 targets"):
        load_run(run.path).evaluate(X[:3], [1])


XOR = {"data": {"name": "xor"}, "model": {"layers": [2, 4, 1]},
       "optimizer": {"name": "gd", "lr": 0.5}, "train": {"epochs": 20}}


def test_a_resume_that_cannot_start_leaves_the_trained_model_alone(tmp_path):
    from nntrain.resume import resume

    run = train(load_config(raw=XOR), out=tmp_path / "r")
    model = (run.path / "model.npz").read_bytes()
    (run.path / "layers.csv").unlink()
    (run.path / "layers.csv").mkdir()  # its log cannot be opened: the resumed run cannot start
    with pytest.raises(ConfigError, match="is a folder, not a regular file"):
        resume(run.path, ["train.epochs=30"])
    assert (run.path / "model.npz").read_bytes() == model


def test_a_failing_user_callback_does_not_stop_the_run_folder_being_finished(tmp_path):
    class Broken(Callback):
        def on_train_end(self, logs):
            raise RuntimeError("a bug in the user's callback")

    with pytest.raises(RuntimeError, match="a bug in the user's callback"):
        train(load_config(raw=XOR), out=tmp_path / "r", callbacks=[Broken()])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs"] == 20
    assert (tmp_path / "r" / "model.npz").is_file() and (tmp_path / "r" / "checkpoint.npz").is_file()


def test_a_callback_ends_a_run_with_one_of_the_run_statuses_only(tmp_path):
    class Odd(Callback):
        def on_epoch_end(self, epoch, logs):
            self.training.stop("done")

    with pytest.raises(ValueError, match="a run ends completed, early_stopped"):
        train(load_config(raw=XOR), out=tmp_path / "r", callbacks=[Odd()])


def test_a_missing_column_names_the_files_own_and_the_likely_match(tmp_path, cli):
    X, y = points()
    run, _ = train_csv(tmp_path, csv_text(X, y))
    write(tmp_path / "new.csv", "A,bb\n0.1,0.2\n")
    result = cli("predict", run.path, tmp_path / "new.csv")
    assert result.exit_code == 2
    assert "the file's columns: A, bb" in result.stderr
    assert "is 'A' the feature 'a'?" in result.stderr
