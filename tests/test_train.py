"""`nntrain train` end to end: run folders, files, determinism, crashes and concurrency."""

import csv
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from conftest import CONFIGS, ROOT, run_nntrain, write
from nntrain import load_config, train
from nntrain.runs import load_arrays


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def only_run_dir(root):
    dirs = [p for p in (root / "runs").glob("*/*") if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_xor_config_reaches_full_accuracy(cli, tmp_path):
    result = cli("train", CONFIGS / "xor.yaml")
    assert result.exit_code == 0, result.stderr
    run = only_run_dir(tmp_path)
    assert run.parent.name == "xor"
    assert result.stdout.strip() == str(run.relative_to(tmp_path))  # piped: just the folder
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.npz", "config.yaml", "data.npz", "layers.csv", "metrics.csv", "model.npz",
        "snapshots.bin", "summary.json"]
    rows = read_rows(run / "metrics.csv")
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "lr", "grad_norm", "time_s",
                             "evaluations"]
    assert [int(r["epoch"]) for r in rows] == list(range(len(rows)))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["final"]["accuracy"] == 1.0
    assert float(rows[-1]["accuracy"]) == 1.0
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["loss"] == "bce" and resolved["model"]["output_activation"] == "sigmoid"
    assert resolved["data"]["task"] == "binary"
    params = load_arrays(run / "model.npz")
    assert sorted(params) == ["W1", "W2", "b1", "b2"] and params["W1"].shape == (2, 4)


def test_python_api(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(CONFIGS / "xor.yaml", overrides=["optimizer.lr=0.1", "train.epochs=20"])
    run = train(cfg)
    assert run.path.resolve().parent == tmp_path / "runs" / "xor"
    assert run.summary["epochs"] == 20 and len(run.history) == 21
    assert run.history[5]["lr"] == 0.1


def test_json_quiet_and_out(cli, tmp_path):
    result = cli("train", CONFIGS / "xor.yaml", "train.epochs=5", "--json", "--out", tmp_path / "o")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["epochs"] == 5
    assert summary["path"] == str(tmp_path / "o")
    result = cli("train", CONFIGS / "xor.yaml", "train.epochs=5", "--quiet")
    assert result.stdout.count("\n") == 1 and result.stderr == ""


def test_validation_columns_and_regression_columns(cli, tmp_path):
    cli("train", CONFIGS / "sine.yaml", "train.epochs=3", "--out", tmp_path / "sine")
    rows = read_rows(tmp_path / "sine" / "metrics.csv")
    assert list(rows[0]) == ["epoch", "loss", "val_loss", "mae", "val_mae", "lr", "grad_norm",
                             "time_s", "evaluations"]
    cli("train", CONFIGS / "iris.yaml", "train.epochs=3", "--out", tmp_path / "iris")
    rows = read_rows(tmp_path / "iris" / "metrics.csv")
    assert list(rows[0])[:5] == ["epoch", "loss", "val_loss", "accuracy", "val_accuracy"]


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_config_trains(cli, tmp_path, config):
    result = cli("train", CONFIGS / config, "train.epochs=3", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and math.isfinite(summary["final"]["loss"])


def test_same_config_twice_gives_identical_metrics(tmp_path):
    cfg = load_config(CONFIGS / "spiral.yaml", overrides=["train.epochs=5", "train.dtype=float32"])
    first = train(cfg, out=tmp_path / "a")
    second = train(cfg, out=tmp_path / "b")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert strip(read_rows(first.path / "metrics.csv")) == strip(read_rows(second.path / "metrics.csv"))
    a, b = load_arrays(first.path / "model.npz"), load_arrays(second.path / "model.npz")
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == np.float32 for k in a)


def test_divergence_is_a_result(cli, tmp_path):
    result = cli("train", CONFIGS / "sine.yaml", "optimizer.name=gd", "optimizer.lr=1e6",
                 "train.epochs=200", "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["status"] == "diverged"
    assert summary["diverged"]["epoch"] < 200 and summary["diverged"]["layer"] >= 1
    assert summary["diverged"]["where"] in ("weights", "activations", "gradients", "loss")
    assert None in summary["final"].values()  # strict JSON: inf becomes null
    rows = read_rows(tmp_path / summary["path"] / "metrics.csv")
    assert {"inf", "nan"} & set(rows[-1].values())  # the CSV keeps what happened


def test_early_stopping_restores_best(tmp_path):
    cfg = load_config(CONFIGS / "iris.yaml", overrides=[
        "optimizer.lr=2.0", "train.epochs=400", "train.early_stopping.patience=5"])
    run = train(cfg, out=tmp_path / "r")
    assert run.summary["status"] == "early_stopped"
    best = run.summary["best"]
    assert run.summary["epochs"] == best["epoch"] + 5
    assert best["val_loss"] == min(r["val_loss"] for r in run.history)


def test_plugin_component_from_yaml(cli, tmp_path):
    write(tmp_path / "parts.py", '''
import numpy as np
from nntrain.activations import ACTIVATIONS, Activation

@ACTIVATIONS.register("cube_test")
class Cube(Activation):
    """a = z^3;  a' = 3 z^2."""
    def forward(self, z, out=None):
        self.z = z
        return np.power(z, 3, out=out)
    def backward(self, da):
        da *= 3 * self.z ** 2
        return da
''')
    config = write(tmp_path / "c.yaml", (CONFIGS / "xor.yaml").read_text().replace(
        "activation: tanh", "activation: cube_test") + "plugins: [parts.py]\n")
    result = cli("train", config, "train.epochs=3", "--json")
    assert result.exit_code == 0, result.stderr
    listing = cli("list", "activations")
    assert "cube_test\ta = z^3" in listing.stdout


def test_list_version_and_help(cli):
    result = cli("list")
    for kind in ("activations", "initializers", "losses", "optimizers", "datasets"):
        assert kind in result.stdout
    assert "relu\trelu(z) = max(0, z)" in result.stdout
    assert "he_normal\tW ~ N(0, 2/fan_in)" in result.stdout
    bad = cli("list", "activatons")
    assert bad.exit_code == 2 and "did you mean 'activations'" in bad.stderr
    assert cli("--version").stdout.startswith("nntrain ")
    for command in ("train", "list"):
        assert cli(command, "--help").exit_code == 0


@pytest.mark.slow
def test_subprocess_train_and_no_pandas_import(tmp_path):
    result = run_nntrain("train", CONFIGS / "xor.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / result.stdout.strip() / "metrics.csv").exists()
    code = ("import sys, runpy; sys.argv=['nntrain','train',sys.argv[1],'train.epochs=2','-q'];"
            "import nntrain.cli as c\ntry: c.main()\nexcept SystemExit: pass\n"
            "assert 'pandas' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'")
    check = subprocess.run([sys.executable, "-c", code, str(CONFIGS / "xor.yaml")], cwd=tmp_path,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


LONG = ["train.epochs=100000000", "train.diagnostics_every=0"]


def wait_for_rows(metrics, count, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if metrics.exists() and metrics.read_text().count("\n") > count:
            return
        time.sleep(0.05)
    raise AssertionError("training did not start")


def start_long_run(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "nntrain", "train", str(CONFIGS / "xor.yaml"),
                             *LONG, "--out", str(out), "--quiet"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(out / "metrics.csv", 200)
    return proc, out


def check_rows_complete(metrics):
    rows = read_rows(metrics)
    assert [int(r["epoch"]) for r in rows] == list(range(len(rows)))
    for row in rows:
        assert all(row[k] != "" for k in ("loss", "accuracy", "time_s"))
        float(row["loss"]), float(row["time_s"])
    return rows


@pytest.mark.slow
def test_sigkill_keeps_every_finished_epoch(tmp_path):
    proc, out = start_long_run(tmp_path)
    proc.kill()
    proc.wait()
    rows = check_rows_complete(out / "metrics.csv")
    assert len(rows) > 200
    assert json.loads((out / "summary.json").read_text())["status"] == "running"


@pytest.mark.slow
def test_sigint_saves_and_exits_130(tmp_path):
    proc, out = start_long_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in stderr and "interrupted" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    rows = check_rows_complete(out / "metrics.csv")
    assert summary["epochs"] == int(rows[-1]["epoch"])
    assert set(load_arrays(out / "model.npz")) == {"W1", "b1", "W2", "b2"}


@pytest.mark.slow
def test_eight_runs_started_together_get_eight_folders(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "nntrain", "train", str(CONFIGS / "xor.yaml"),
                               "train.epochs=50", "--quiet"], cwd=tmp_path,
                              stdout=subprocess.PIPE, text=True) for _ in range(8)]
    paths = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(paths)) == 8
    for path in paths:
        summary = json.loads((tmp_path / path / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert len(read_rows(tmp_path / path / "metrics.csv")) == 51


def test_readme_quick_start_commands_are_the_ones_documented():
    readme = (ROOT / "README.md").read_text()
    assert "nntrain train configs/xor.yaml" in readme
    assert 'pip install -e ".[test]"' in readme and "pytest" in readme
