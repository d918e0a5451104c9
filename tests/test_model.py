"""A run folder is a usable model: data.npz, predict, evaluate, the test split, load_run,
checkpoints, and resume that equals an unbroken run."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import nntrain
from conftest import CONFIGS, write
from nntrain import load_config, load_run, train
from nntrain.runs import load_arrays, read_checkpoint


def ring_csv(path, n=300, seed=0):
    """Two features on very different scales (so that standardization matters), string labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)) * [3.0, 50.0] + [10.0, 200.0]
    inside = np.hypot((X[:, 0] - 10) / 3, (X[:, 1] - 200) / 50) < 1.1
    rows = [f"{a},{b},{'inside' if i else 'outside'}" for (a, b), i in zip(X, inside)]
    write(path, "size,weight,label\n" + "\n".join(rows) + "\n")
    return X, np.where(inside, "inside", "outside")


@pytest.fixture
def ring_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, labels = ring_csv(tmp_path / "points.csv")
    config = write(tmp_path / "ring.yaml",
                   "data: {name: csv, path: points.csv, target: label, standardize: true, "
                   "val_fraction: 0.2, test_fraction: 0.2}\n"
                   "model: {layers: [2, 16, 1], activation: tanh}\n"
                   "optimizer: {name: adam, lr: 0.02}\ntrain: {epochs: 300}\n")
    run = train(load_config(config), out=tmp_path / "run")
    return run, X, labels


def test_the_run_folder_holds_what_prediction_needs(ring_run):
    run, X, labels = ring_run
    info = load_arrays(run.path / "data.npz")  # allow_pickle=False
    assert list(info["classes"]) == ["inside", "outside"]
    assert list(info["feature_names"]) == ["size", "weight"]
    assert info["mean"].shape == (2,) and info["std"][1] > 10  # fitted on raw units
    assert len(str(info["fingerprint"])) == 16
    model = load_run(run.path)
    assert np.mean(model.predict(X) == labels) > 0.95  # raw units in, the data's labels out
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)
    assert model.network.sizes == [2, 16, 1] and model.config.data.task == "binary"
    assert isinstance(model.metrics, pd.DataFrame) and len(model.metrics) == 301


def test_the_test_split_is_held_out_stratified_and_reported(ring_run):
    run, X, labels = ring_run
    summary = run.summary
    assert summary["n_train"] == 180 and summary["n_val"] == 60
    assert set(summary["test"]) == {"loss", "accuracy"} and summary["test"]["accuracy"] > 0.9
    from nntrain.experiment import prepare

    _, data = prepare(load_run(run.path).config)
    parts = [data.X_train, data.X_val, data.X_test]
    assert sum(len(p) for p in parts) == len(X)
    rows = {tuple(r) for p in parts for r in p}
    assert len(rows) == len(X)  # disjoint
    share = [np.mean(Y[:, 0]) for Y in (data.Y_train, data.Y_val, data.Y_test)]
    assert max(share) - min(share) < 0.05  # stratified: the same share of each class


def test_predict_matches_columns_by_name_and_keeps_the_others(ring_run, cli, tmp_path):
    run, X, labels = ring_run
    write(tmp_path / "new.csv", "id,weight,size\n" + "".join(
        f"{i},{b},{a}\n" for i, (a, b) in enumerate(X[:20])))
    result = cli("predict", run.path, tmp_path / "new.csv")
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(table.columns) == ["id", "weight", "size", "prediction", "p_inside", "p_outside"]
    assert (table["prediction"] == labels[:20]).mean() >= 0.9
    assert cli("predict", run.path, tmp_path / "new.csv", "-o", tmp_path / "out.csv").exit_code == 0
    assert len(pd.read_csv(tmp_path / "out.csv")) == 20
    np.savez(tmp_path / "new.npz", X=X[:5])
    npz = cli("predict", run.path, tmp_path / "new.npz")
    assert npz.exit_code == 0 and npz.stdout.splitlines()[0] == "size,weight,prediction,p_inside,p_outside"


def test_evaluate_the_test_split_and_a_file(ring_run, cli, tmp_path):
    run, X, labels = ring_run
    result = cli("evaluate", run.path, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"loss", "accuracy", "confusion", "per_class"} <= set(report)
    assert report["split"] == "test" and report["accuracy"] == pytest.approx(
        run.summary["test"]["accuracy"])
    assert np.sum(report["confusion"]) == 60
    assert set(report["per_class"]) == {"inside", "outside"}
    write(tmp_path / "labelled.csv", "size,weight,label\n" + "".join(
        f"{a},{b},{c}\n" for (a, b), c in zip(X[:50], labels[:50])))
    on_file = json.loads(cli("evaluate", run.path, tmp_path / "labelled.csv", "--json").stdout)
    assert on_file["accuracy"] > 0.9 and sum(map(sum, on_file["confusion"])) == 50


def test_evaluate_falls_back_to_validation_and_refuses_without_either(cli, tmp_path):
    assert cli("train", CONFIGS / "moons.yaml", "train.epochs=5", "--out", tmp_path / "m",
               "-q").exit_code == 0
    report = json.loads(cli("evaluate", tmp_path / "m", "--json").stdout)
    assert report["split"] == "validation" and report["n"] == 100
    assert cli("train", CONFIGS / "xor.yaml", "train.epochs=5", "--out", tmp_path / "x",
               "-q").exit_code == 0
    refused = cli("evaluate", tmp_path / "x")
    assert refused.exit_code == 2 and "give INPUT" in refused.stderr


@pytest.mark.parametrize("make, message", [
    (lambda d, run: write(d / "bad.csv", "size,colour\n1,2\n"), "has no column weight"),
    (lambda d, run: np.savez(d / "bad.npz", X=np.zeros((3, 5))) or d / "bad.npz",
     "the model takes 2 numeric features (size, weight), got an array of float64 (3, 5)"),
    (lambda d, run: d / "missing.csv", "no such file"),
])
def test_predict_refuses_bad_input_in_one_line(ring_run, cli, tmp_path, make, message):
    run, _, _ = ring_run
    path = make(tmp_path, run)
    result = cli("predict", run.path, path)
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_folders_that_are_not_usable_runs_are_refused(ring_run, cli, tmp_path):
    run, _, _ = ring_run
    (tmp_path / "empty").mkdir()
    assert "not a run folder" in cli("evaluate", tmp_path / "empty").stderr
    (run.path / "model.npz").write_bytes(b"not a zip file")
    corrupt = cli("evaluate", run.path)
    assert corrupt.exit_code == 2 and "model.npz: is not a readable npz file" in corrupt.stderr
    (run.path / "model.npz").unlink()
    assert cli("evaluate", run.path).exit_code == 0  # the checkpoint stands in
    (run.path / "checkpoint.npz").unlink()
    nothing = cli("evaluate", run.path)
    assert nothing.exit_code == 2 and "neither model.npz nor checkpoint.npz" in nothing.stderr


def test_load_run_imports_pandas_only_for_metrics(ring_run, tmp_path):
    run, X, _ = ring_run
    np.save(tmp_path / "X.npy", X[:3])
    code = (f"import sys, numpy as np, nntrain; m = nntrain.load_run({str(run.path)!r}); "
            f"m.predict(np.load({str(tmp_path / 'X.npy')!r})); "
            "assert 'pandas' not in sys.modules; m.metrics; assert 'pandas' in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    assert nntrain.load_run is load_run


# -- checkpoints and resume ---------------------------------------------------------------------


def loss_column(path):
    return pd.read_csv(path / "metrics.csv")["loss"].to_numpy()


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_resume_equals_an_unbroken_run(cli, tmp_path, optimizer):
    base = [CONFIGS / "moons.yaml", f"optimizer.name={optimizer}", "optimizer.batch_size=32",
            "optimizer.lr=0.05"]
    assert cli("train", *base, "train.epochs=30", "--out", tmp_path / "a", "-q").exit_code == 0
    resumed = cli("resume", tmp_path / "a", "train.epochs=60", "-q")
    assert resumed.exit_code == 0, resumed.stderr
    assert cli("train", *base, "train.epochs=60", "--out", tmp_path / "b", "-q").exit_code == 0
    a, b = loss_column(tmp_path / "a"), loss_column(tmp_path / "b")
    assert len(a) == len(b) == 61
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    val = [pd.read_csv(p / "metrics.csv")["val_loss"].to_numpy() for p in (tmp_path / "a", tmp_path / "b")]
    np.testing.assert_allclose(*val, rtol=0, atol=1e-12)
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["status"] == "completed"


def test_checkpoint_keeps_the_last_and_the_best_parameters_with_early_stopping(cli, tmp_path):
    result = cli("train", CONFIGS / "moons.yaml", "optimizer.lr=3", "train.epochs=400",
                 "+train.early_stopping={patience: 5}", "--out", tmp_path / "r", "-q")
    assert result.exit_code == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "early_stopped"
    checkpoint = read_checkpoint(tmp_path / "r" / "checkpoint.npz")
    assert checkpoint["state"]["epoch"] == summary["epochs"]
    assert checkpoint["state"]["stopper"]["wait"] == 5
    model = load_arrays(tmp_path / "r" / "model.npz")
    np.testing.assert_array_equal(model["W1"], checkpoint["best"]["W1"])  # restored: the best
    assert not np.array_equal(model["W1"], checkpoint["params"]["W1"])  # the checkpoint: the last

    again = cli("resume", tmp_path / "r")
    assert again.exit_code == 0
    assert "early stopping had already stopped this run" in again.stderr
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["epochs"] == summary["epochs"]


def test_checkpoint_every_zero_writes_none(cli, tmp_path):
    assert cli("train", CONFIGS / "xor.yaml", "train.epochs=5", "train.checkpoint_every=0",
               "--out", tmp_path / "r", "-q").exit_code == 0
    assert not (tmp_path / "r" / "checkpoint.npz").exists()
    refused = cli("resume", tmp_path / "r", "train.epochs=10")
    assert refused.exit_code == 2 and "no checkpoint.npz" in refused.stderr


@pytest.mark.parametrize("override, key", [("optimizer.lr=0.1", "optimizer.lr"),
                                           ("model.layers=[2,8,1]", "model.layers")])
def test_resume_refuses_other_changes(cli, tmp_path, override, key):
    assert cli("train", CONFIGS / "xor.yaml", "train.epochs=5", "--out", tmp_path / "r",
               "-q").exit_code == 0
    before = (tmp_path / "r" / "metrics.csv").read_text()
    result = cli("resume", tmp_path / "r", override)
    assert result.exit_code == 2 and f"{key}: cannot change when resuming" in result.stderr
    assert (tmp_path / "r" / "metrics.csv").read_text() == before


def test_resume_refuses_changed_data(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ring_csv(tmp_path / "points.csv")
    config = write(tmp_path / "c.yaml", "data: {name: csv, path: points.csv}\n"
                   "model: {layers: [2, 4, 1]}\ntrain: {epochs: 5}\n")
    assert cli("train", config, "--out", tmp_path / "r", "-q").exit_code == 0
    ring_csv(tmp_path / "points.csv", seed=1)
    result = cli("resume", tmp_path / "r", "train.epochs=10")
    assert result.exit_code == 2 and "not the data this run was trained on" in result.stderr


@pytest.mark.slow
def test_a_killed_run_with_early_stopping_resumes_like_an_unbroken_one(tmp_path):
    args = [sys.executable, "-m", "nntrain", "train", str(CONFIGS / "moons.yaml"),
            "optimizer.batch_size=16", "optimizer.lr=0.05", "train.epochs=400",
            "train.checkpoint_every=10", "+train.early_stopping={patience: 30}"]
    proc = subprocess.Popen(args + ["--out", str(tmp_path / "a"), "-q"], cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / "a" / "checkpoint.npz").exists():
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = read_checkpoint(tmp_path / "a" / "checkpoint.npz")["state"]["epoch"]
    assert not (tmp_path / "a" / "model.npz").exists()
    write(tmp_path / "points.csv", "x2,x1\n0.2,-1.0\n-0.5,1.0\n")
    predicted = subprocess.run([sys.executable, "-m", "nntrain", "predict", str(tmp_path / "a"),
                                str(tmp_path / "points.csv")], capture_output=True, text=True)
    assert predicted.returncode == 0, predicted.stderr  # the checkpoint is the model
    assert predicted.stdout.splitlines()[0] == "x2,x1,prediction,p_0,p_1"
    evaluated = subprocess.run([sys.executable, "-m", "nntrain", "evaluate", str(tmp_path / "a"),
                                "--json"], capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    resumed = subprocess.run([sys.executable, "-m", "nntrain", "resume", str(tmp_path / "a"), "-q"],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert subprocess.run(args + ["--out", str(tmp_path / "b"), "-q"]).returncode == 0
    a, b = loss_column(tmp_path / "a"), loss_column(tmp_path / "b")
    assert killed_at < len(b) - 1
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    summaries = [json.loads((p / "summary.json").read_text()) for p in (tmp_path / "a", tmp_path / "b")]
    assert summaries[0]["status"] == summaries[1]["status"] == "early_stopped"
    assert summaries[0]["restored_epoch"] == summaries[1]["restored_epoch"]


def test_resume_refuses_a_run_whose_model_was_edited(cli, tmp_path):
    assert cli("train", CONFIGS / "xor.yaml", "train.epochs=5", "--out", tmp_path / "r",
               "-q").exit_code == 0
    config = tmp_path / "r" / "config.yaml"
    config.write_text(config.read_text().replace("- 4\n", "- 8\n", 1))
    result = cli("resume", tmp_path / "r", "train.epochs=10")
    assert result.exit_code == 2 and "the model changed" in result.stderr
