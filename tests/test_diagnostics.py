"""layers.csv, the init check (inspect), gradcheck and plots."""

import csv
import math

import numpy as np
import pytest

from conftest import CONFIGS, write
from nntrain import Network, load_config
from nntrain.diagnostics import layer_stats
from nntrain.losses import LOSSES


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def act_std_by_layer(rows, initializer):
    return [float(r["act_std"]) for r in rows if r["initializer"] == initializer
            and r["activation"] != "softmax"]


@pytest.mark.slow
def test_inspect_xavier_vs_he_on_30_relu_layers(cli, tmp_path):
    result = cli("inspect", CONFIGS / "lessons" / "deep_relu.yaml",
                 "--initializers", "he_normal,xavier_uniform", "--csv", tmp_path / "i.csv",
                 "-o", tmp_path / "i.png")
    assert result.exit_code == 0, result.stderr
    rows = read(tmp_path / "i.csv")
    assert list(rows[0]) == ["initializer", "layer", "fan_in", "fan_out", "activation", "weight_std",
                             "target_weight_std", "act_mean", "act_std", "grad_std"]
    he, xavier = act_std_by_layer(rows, "he_normal"), act_std_by_layer(rows, "xavier_uniform")
    assert len(he) == 30
    assert 0.5 < he[-1] / he[0] < 2  # He keeps the signal
    assert xavier[-1] / xavier[0] < 1e-2  # Xavier halves the variance per ReLU layer: 2^-14.5
    for row in rows:  # the weights drawn match the rule's target std
        assert float(row["weight_std"]) == pytest.approx(float(row["target_weight_std"]), rel=0.1)
    assert (tmp_path / "i.png").read_bytes()[:4] == b"\x89PNG"


def test_inspect_simplified_xavier_on_10_tanh_layers(cli, tmp_path):
    result = cli("inspect", CONFIGS / "lessons" / "deep_tanh.yaml",
                 "--initializers", "xavier_simple,xavier_uniform", "--csv", tmp_path / "t.csv")
    assert result.exit_code == 0, result.stderr
    rows = read(tmp_path / "t.csv")
    simple, uniform = act_std_by_layer(rows, "xavier_simple"), act_std_by_layer(rows, "xavier_uniform")
    assert len(simple) == 10
    assert simple[-1] / simple[0] < 0.02
    assert uniform[-1] / uniform[0] >= 0.15


def test_inspect_rejects_unknown_initializer(cli, tmp_path):
    result = cli("inspect", CONFIGS / "xor.yaml", "--initializers", "he_normal,xavir")
    assert result.exit_code == 2 and "unknown initializer 'xavir'" in result.stderr


def test_dead_fraction_and_saturation():
    X = np.random.default_rng(0).normal(size=(200, 4))
    net = Network([4, 8, 8, 1], activation="relu", output_activation="sigmoid", seed=0)
    net.b[0][:] = -1e3  # every unit of layer 1 has z < 0 for every sample: dead
    rows = layer_stats(net, X)
    assert rows[0]["dead_fraction"] == 1.0
    healthy = layer_stats(Network([4, 8, 1], activation="relu", initializer="he_normal",
                                  bias_initializer={"name": "constant", "value": 0.1}, seed=0), X)
    assert healthy[0]["dead_fraction"] == 0.0
    assert rows[0]["saturated_fraction"] is None and rows[-1]["dead_fraction"] is None
    leaky = Network([4, 8, 1], activation="leaky_relu", seed=0)
    leaky.b[0][:] = -1e3
    assert layer_stats(leaky, X)[0]["dead_fraction"] == 0.0  # leaky units are never dead
    huge = Network([4, 8, 1], activation="tanh", initializer={"name": "normal", "std": 100}, seed=0)
    assert layer_stats(huge, X)[0]["saturated_fraction"] > 0.95
    calm = Network([4, 8, 1], activation="tanh", initializer={"name": "normal", "std": 0.01}, seed=0)
    assert layer_stats(calm, X)[0]["saturated_fraction"] == 0.0


def test_layer_stats_gradients_and_update_ratio():
    X = np.random.default_rng(0).normal(size=(50, 3))
    Y = (X[:, :1] > 0).astype(float)
    net = Network([3, 5, 1], activation="tanh", output_activation="sigmoid", seed=0)
    rows = layer_stats(net, X, Y=Y, loss=LOSSES.build("bce"))
    for row, dW, W in zip(rows, net.dW, net.W):
        assert row["grad_norm"] == pytest.approx(np.linalg.norm(dW)) and row["grad_norm"] > 0
        assert row["weight_norm"] == pytest.approx(np.linalg.norm(W))
        assert row["update_ratio"] is None


def test_layers_csv_rows(tmp_path):
    cfg = load_config(CONFIGS / "moons.yaml", overrides=["train.epochs=25"])
    from nntrain import train

    run = train(cfg, out=tmp_path / "r")
    rows = read(run.path / "layers.csv")
    assert sorted({int(r["epoch"]) for r in rows}) == [0, 10, 20]
    assert [r["layer"] for r in rows[:3]] == ["1", "2", "3"]
    assert all(math.isfinite(float(r["update_ratio"])) for r in rows if r["epoch"] != "0")
    off = train(load_config(CONFIGS / "moons.yaml", overrides=["train.epochs=5",
                                                                "train.diagnostics_every=0"]),
                out=tmp_path / "off")
    assert not (off.path / "layers.csv").exists()


ALL_CONFIGS = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("config", ALL_CONFIGS)
def test_gradcheck_passes_on_every_config(cli, config):
    result = cli("gradcheck", CONFIGS / config)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "layer,max_relative_error,ok" in result.stdout


def test_gradcheck_catches_a_wrong_derivative(cli, tmp_path):
    write(tmp_path / "bad_act.py", '''
import numpy as np
from nntrain.activations import ACTIVATIONS, Activation

@ACTIVATIONS.register("bad_softsign_test")
class BadSoftsign(Activation):
    """a = z / (1 + |z|);  a' = 1 / (1 + |z|)^2, written here without the square (wrong)."""
    def forward(self, z, out=None):
        self.z = z
        return np.divide(z, 1 + np.abs(z), out=out)
    def backward(self, da):
        da /= 1 + np.abs(self.z)
        return da
''')
    result = cli("gradcheck", CONFIGS / "moons.yaml", "model.activation=bad_softsign_test",
                 "--plugin", tmp_path / "bad_act.py")
    assert result.exit_code == 1
    assert "NO" in result.stdout and "gradcheck failed" in result.stderr


@pytest.mark.slow
def test_plot_runs_and_errors(cli, tmp_path):
    for lr in ("0.1", "0.5"):
        for seed in ("0", "1"):
            cli("train", CONFIGS / "xor.yaml", f"optimizer.lr={lr}", f"seed={seed}", "train.epochs=20")
    result = cli("plot", tmp_path / "runs", "-o", tmp_path / "all.png")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "all.png").read_bytes()[:4] == b"\x89PNG"
    one = sorted((tmp_path / "runs" / "xor").iterdir())[0]
    assert cli("plot", one, "--metric", "accuracy", "-o", tmp_path / "one.png").exit_code == 0
    bad_metric = cli("plot", one, "--metric", "acc", "-o", tmp_path / "x.png")
    assert bad_metric.exit_code == 2 and "no column 'acc'" in bad_metric.stderr
    missing = cli("plot", tmp_path / "nothing")
    assert missing.exit_code == 2 and "no such file or folder" in missing.stderr
    assert cli("plot", "--activations", "-o", tmp_path / "a.png").exit_code == 0
