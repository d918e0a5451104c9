"""Random search as an optimizer (random_local, random_search) and the loss-evaluation count
every optimizer keeps in metrics.csv's evaluations column.

References are computed here, independently of the code under test: the losses of a line
fit y = 2x + 1 by hand, the draws of the run's generator replayed with NumPy, and the
forward and backward passes counted by wrapping the network's own methods.
"""

import csv
import math
import warnings

import numpy as np
import pytest

from conftest import CONFIGS, write
from nntrain import load_config, train
from nntrain.compare import make_sweep, validate
from nntrain.network import Network
from nntrain.resume import resume

X_LINE = np.linspace(-1, 1, 21)[:, None]  # (21, 1)
Y_LINE = 2 * X_LINE[:, 0] + 1  # the minimum: W = 2, b = 1, loss 0


def line_config(tmp_path, optimizer, epochs, **extra):
    """A 1-1 identity network (W and b: two parameters) fitting y = 2x + 1 with MSE."""
    path = tmp_path / "line.npz"
    np.savez(path, X=X_LINE, y=Y_LINE)
    raw = {"name": "line", "data": {"name": "npz", "path": str(path), "task": "regression"},
           "model": {"layers": [1, 1], "output_activation": "identity",
                     "initializer": {"name": "uniform", "limit": 3.0},
                     "bias_initializer": {"name": "uniform", "limit": 3.0}},
           "loss": "mse", "optimizer": optimizer,
           "train": {"epochs": epochs, "diagnostics_every": 0, "snapshot_every": 0}}
    for key, value in extra.items():
        raw[key].update(value)
    return load_config(raw=raw)


def line_loss(W, b):
    """MSE of y = W x + b on the line's points, by hand."""
    return float(np.mean((W * X_LINE[:, 0] + b - Y_LINE) ** 2))


def column(run, name):
    return np.array([row[name] for row in run.history], dtype=float)


def test_random_local_reaches_the_known_minimum_and_never_climbs(tmp_path):
    cfg = line_config(tmp_path, {"name": "random_local", "step": 0.05}, 2000)
    run = train(cfg, out=tmp_path / "run")
    with np.load(run.path / "model.npz") as saved:
        W, b = float(saved["W1"][0, 0]), float(saved["b1"][0])
    assert abs(W - 2) < 0.02 and abs(b - 1) < 0.02, (W, b)
    losses = column(run, "loss")
    assert (np.diff(losses) <= 0).all()  # a step keeps new weights only if the loss falls
    assert losses[-1] == pytest.approx(line_loss(*map(float, run_weights(run))), abs=1e-3)
    # full batch, one candidate: 1 for the starting point, then 1 a step (0 at epoch 0)
    assert column(run, "evaluations").tolist() == [0] + [1 + t for t in range(1, 2001)]


def run_weights(run):
    with np.load(run.path / "model.npz") as saved:
        return saved["W1"][0, 0], saved["b1"][0]


def test_random_search_keeps_the_best_of_the_generators_draws(tmp_path):
    epochs = 400
    run = train(line_config(tmp_path, {"name": "random_search"}, epochs), out=tmp_path / "run")
    # replay: the network's init draws W then b from rng(seed); each step draws W then b from
    # the run's generator, default_rng([1, seed]), as U(-3, 3)
    init = np.random.default_rng(0)
    best = (init.uniform(-3, 3, (1, 1))[0, 0], init.uniform(-3, 3, (1,))[0])
    rng = np.random.default_rng([1, 0])
    for _ in range(epochs):
        draw = (rng.uniform(-3, 3, (1, 1))[0, 0], rng.uniform(-3, 3, (1,))[0])
        if line_loss(*draw) < line_loss(*best):
            best = draw
    assert run_weights(run) == pytest.approx(best, abs=1e-15)
    assert line_loss(*best) < 0.05  # 400 draws get near the minimum of a 2-parameter problem
    assert column(run, "evaluations")[-1] == 1 + epochs


def counted_passes(monkeypatch):
    """The forward passes and backward passes the network really runs."""
    count = {"forward": 0, "backward": 0}
    forward, backward = Network.forward_pass, Network.backward

    def counting_forward(self, *args, **kwargs):
        count["forward"] += 1
        return forward(self, *args, **kwargs)

    def counting_backward(self, *args, **kwargs):
        count["backward"] += 1
        return backward(self, *args, **kwargs)

    monkeypatch.setattr(Network, "forward_pass", counting_forward)
    monkeypatch.setattr(Network, "backward", counting_backward)
    return count


@pytest.mark.parametrize("optimizer, batch_size, per_epoch, first", [
    ({"name": "gd", "lr": 0.1}, None, 2, 0),  # one batch: forward + backward
    ({"name": "adam", "lr": 0.01}, 8, 2 * 3, 0),  # 21 rows in batches of 8: 3 batches
    ({"name": "random_local", "step": 0.1, "candidates": 3}, None, 3, 1),  # known after step 1
    ({"name": "random_local", "step": 0.1, "candidates": 2}, 8, (1 + 2) * 3, 0),  # each batch
    ({"name": "random_search"}, None, 1, 1),
])
def test_evaluations_count_every_pass_training_runs(tmp_path, monkeypatch, optimizer,
                                                    batch_size, per_epoch, first):
    cfg = line_config(tmp_path, {**optimizer, "batch_size": batch_size}, 12,
                      train={"checkpoint_every": 0})
    count = counted_passes(monkeypatch)
    run = train(cfg, out=tmp_path / "run")
    evaluations = column(run, "evaluations")
    assert evaluations.tolist() == [0] + [first + per_epoch * t for t in range(1, 13)]
    # what training ran: every pass but epoch 0's row (one forward pass over the training
    # data; no validation, diagnostics or test part here)
    assert count["forward"] - 1 + count["backward"] == evaluations[-1]
    if optimizer["name"].startswith("random"):
        assert count["backward"] == 0  # no back-propagation
        assert column(run, "grad_norm").tolist() == [None] * 13 or \
            all(math.isnan(g) for g in column(run, "grad_norm"))


def metrics_rows(path):
    with open(path / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def without_time(rows):
    return [{k: v for k, v in row.items() if k != "time_s"} for row in rows]


@pytest.mark.parametrize("optimizer, batch_size", [
    ({"name": "random_local", "step": 0.1}, None),
    ({"name": "random_local", "step": 0.1, "candidates": 2}, 8),
    ({"name": "random_search"}, None),
    ({"name": "gd", "lr": 0.1}, 8),
])
def test_a_run_repeats_and_resumes_bit_for_bit(tmp_path, optimizer, batch_size):
    cfg = line_config(tmp_path, {**optimizer, "batch_size": batch_size}, 40,
                      train={"checkpoint_every": 1})
    whole = train(cfg, out=tmp_path / "whole")
    again = train(cfg, out=tmp_path / "again")
    assert without_time(metrics_rows(whole.path)) == without_time(metrics_rows(again.path))
    half = line_config(tmp_path, {**optimizer, "batch_size": batch_size}, 20,
                       train={"checkpoint_every": 1})
    train(half, out=tmp_path / "resumed")
    resume(tmp_path / "resumed", ["train.epochs=40"])
    assert without_time(metrics_rows(tmp_path / "resumed")) == \
        without_time(metrics_rows(whole.path))  # loss, accuracy and evaluations alike
    with np.load(whole.path / "model.npz") as a, np.load(tmp_path / "resumed" / "model.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_a_run_of_an_earlier_version_resumes_with_its_own_header(tmp_path):
    cfg = line_config(tmp_path, {"name": "gd", "lr": 0.1}, 10, train={"checkpoint_every": 1})
    run = train(cfg, out=tmp_path / "old")
    rows = metrics_rows(run.path)  # as nntrain wrote it before the evaluations column
    header = [c for c in rows[0] if c != "evaluations"]
    write(run.path / "metrics.csv", ",".join(header) + "\n" + "".join(
        ",".join(row[c] for c in header) + "\n" for row in rows))
    resume(run.path, ["train.epochs=15"])
    resumed = metrics_rows(run.path)
    assert list(resumed[0]) == header and len(resumed) == 16
    assert all(None not in row.values() for row in resumed)  # no row wider than its header


def test_metrics_csv_ends_with_the_evaluations_column(tmp_path):
    run = train(load_config(CONFIGS / "xor.yaml", overrides=["train.epochs=3"]),
                out=tmp_path / "r")
    header = (run.path / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,loss,accuracy,lr,grad_norm,time_s,evaluations"
    assert "evaluations" not in run.summary["final"]  # a count, not a figure


@pytest.mark.parametrize("override, start", [
    ("optimizer={name: random_local, lr: 0.1}", "optimizer.lr: random_local takes no lr"),
    ("optimizer={name: random_search, schedule: {name: exponential}}",
     "optimizer.schedule: random_search has no lr to schedule"),
    ("optimizer={name: random_local, weight_decay: 0.1}", "optimizer"),
    ("optimizer={name: random_local, step: -1}", "optimizer: optimizer 'random_local': step "
                                                 "must be > 0"),
    ("optimizer={name: random_local, candidates: 0}", "optimizer: optimizer 'random_local': "
                                                      "candidates must be >= 1"),
])
def test_what_a_random_optimizer_does_not_take_is_refused_in_one_line(cli, override, start):
    result = cli("train", CONFIGS / "xor.yaml", override)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {start}") and result.stderr.count("\n") == 1, \
        result.stderr


def test_explain_refuses_a_gradient_free_optimizer_in_one_line(cli):
    result = cli("explain", CONFIGS / "xor.yaml", "optimizer=random_search")
    assert result.exit_code == 2
    assert "random_search is gradient-free" in result.stderr and "Traceback" not in result.stderr


def test_an_optimizer_axis_drops_the_keys_each_optimizer_does_not_take(tmp_path):
    sweep = make_sweep(CONFIGS / "xor.yaml", ["+optimizer.step=0.3", "train.epochs=2"], None,
                       None, None, ["gd", "random_local", "random_search"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        points = validate(sweep, [])
    optimizers = {p["config"]["optimizer"]["name"]: p["config"]["optimizer"] for p in points}
    assert optimizers["gd"]["lr"] == 0.5 and "step" not in optimizers["gd"]
    assert optimizers["random_local"]["step"] == 0.3 and optimizers["random_local"]["lr"] is None
    assert "step" not in optimizers["random_search"]
    assert [str(w.message) for w in caught] == [
        "gd takes no step: dropped from its runs",
        "random_local takes no lr: dropped from its runs",
        "random_search takes no step or lr: dropped from its runs"]
    assert sweep.axes == {"optimizer.name": ["gd", "random_local", "random_search"]}


def test_without_an_optimizer_axis_nothing_is_dropped(tmp_path):
    sweep = make_sweep(CONFIGS / "xor.yaml", ["optimizer.name=random_local"], None, None, None)
    from nntrain.registry import ConfigError

    with pytest.raises(ConfigError, match="optimizer.lr: random_local takes no lr"):
        validate(sweep, [])


@pytest.mark.slow
def test_compare_optimizers_runs_each_with_a_note(cli, tmp_path):
    result = cli("compare", CONFIGS / "xor.yaml", "--optimizers", "gd,random_local",
                 "train.epochs=20", "--workers", "1", "--out", tmp_path / "c")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == "warning: random_local takes no lr: dropped from its runs"
    done = (tmp_path / "c" / "results.csv").read_text()
    assert "random_local" in done and "failed" not in done


def test_plot_draws_curves_against_the_evaluations_column(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from nntrain.plots import plot_runs

    runs = [train(line_config(tmp_path, optimizer, epochs), out=tmp_path / name).path
            for name, optimizer, epochs in (("gd", {"name": "gd", "lr": 0.1}, 10),
                                            ("rl", {"name": "random_local"}, 19))]
    drawn = []
    plot = Axes.plot

    def recording(self, *args, **kwargs):
        drawn.append((np.asarray(args[0], dtype=float), kwargs.get("label")))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", recording)
    written = plot_runs(runs, tmp_path / "x.png", "loss", x="evaluations")
    assert written.read_bytes()[:4] == b"\x89PNG"
    xs = sorted(x.tolist() for x, label in drawn if label)
    # gd: 2 an epoch; random_local: 1, then 1 a step; both end at 20 evaluations
    assert xs == sorted([[2.0 * t for t in range(11)], [0.0] + [1.0 + t for t in range(1, 20)]])


def test_plot_x_is_checked(tmp_path, cli):
    run = train(line_config(tmp_path, {"name": "gd", "lr": 0.1}, 3), out=tmp_path / "r").path
    result = cli("plot", run, "--x", "evals")
    assert result.exit_code == 2 and "did you mean 'evaluations'" in result.stderr
    result = cli("plot", run, "--x", "evaluations", "--boundary")
    assert result.exit_code == 2 and result.stderr.startswith("error: --x")
    text = (run / "metrics.csv").read_text().splitlines()  # a run of an earlier nntrain
    write(run / "metrics.csv", "".join(line.rsplit(",", 1)[0] + "\n" for line in text))
    result = cli("plot", run, "--x", "evaluations")
    assert result.exit_code == 2 and "no evaluations column" in result.stderr
