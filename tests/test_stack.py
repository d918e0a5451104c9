"""Stacked members are bit for bit their lone runs: each member's run folder (metrics.csv,
layers.csv, model.npz, checkpoint.npz, snapshots.bin, summary.json) equals the folder a lone
`train` of its config writes, but for the fields that record the process (wall_time_s,
started, finished, pid, host, threads, time_s, path)."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import CONFIGS
from nntrain.config import load_config
from nntrain.loop import Interrupted, train
from nntrain.losses import LOSSES
from nntrain.network import gradient_norm
from nntrain.stack import group_key, train_stacked, unstackable

PROCESS = {"wall_time_s", "started", "finished", "pid", "host", "threads", "path"}


def config(base: str, **changes) -> dict:
    raw = yaml.safe_load((CONFIGS / base).read_text())
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return raw


def csv_without(path: Path, dropped: str = "time_s") -> list[list[str]]:
    rows = [line.split(",") for line in path.read_text().splitlines()]
    if not rows or dropped not in rows[0]:
        return rows
    at = rows[0].index(dropped)
    return [row[:at] + row[at + 1:] for row in rows]


def without_time(data):
    """JSON data without the time_s fields (the process's clock) at any depth."""
    if isinstance(data, dict):
        return {k: without_time(v) for k, v in data.items() if k != "time_s"}
    if isinstance(data, list):
        return [without_time(v) for v in data]
    return data


def npz_arrays(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as found:
        return {k: found[k] for k in found.files}


def same_folder(lone: Path, stacked: Path) -> None:
    names = sorted(p.name for p in lone.iterdir())
    assert sorted(p.name for p in stacked.iterdir()) == names
    for name in names:
        a, b = lone / name, stacked / name
        if name == "summary.json":
            x, y = json.loads(a.read_text()), json.loads(b.read_text())
            for key in PROCESS:
                x.pop(key, None), y.pop(key, None)
            assert x == y, name
        elif name.endswith(".csv"):
            assert csv_without(a) == csv_without(b), name
        elif name.endswith(".npz"):
            x, y = npz_arrays(a), npz_arrays(b)
            assert x.keys() == y.keys(), name
            for key in x:  # bit for bit: the same bytes, NaN and -0.0 included
                if key == "state":  # checkpoint.npz's state: JSON, with time_s in it
                    assert without_time(json.loads(str(x[key]))) == without_time(
                        json.loads(str(y[key]))), (name, key)
                    continue
                assert x[key].dtype == y[key].dtype and x[key].tobytes() == y[key].tobytes(), \
                    (name, key)
        else:  # config.yaml, data.npz's neighbours, snapshots.bin
            assert a.read_bytes() == b.read_bytes(), name


def compare_lone_and_stacked(tmp_path: Path, raws: list[dict]) -> list:
    cfgs = [load_config(raw=copy.deepcopy(raw)) for raw in raws]
    assert len({group_key(c.to_dict()) for c in cfgs}) == 1
    assert all(unstackable(c.to_dict()) is None for c in cfgs)
    lone = [tmp_path / "lone" / f"m{s}" for s in range(len(cfgs))]
    for cfg, out in zip(cfgs, lone):
        try:
            train(cfg, out=out)
        except Interrupted:
            pass
    stacked = [tmp_path / "stacked" / f"m{s}" for s in range(len(cfgs))]
    results = train_stacked(cfgs, stacked)
    for a, b in zip(lone, stacked):
        same_folder(a, b)
    return results


def test_gd_full_batch_xor_over_initializers_and_seeds(tmp_path):
    raws = [config("xor.yaml", **{"seed": seed, "model.initializer": init, "train.epochs": 200})
            for init in ("zeros", "xavier_uniform", "he_normal") for seed in (0, 1)]
    results = compare_lone_and_stacked(tmp_path, raws)
    assert [r.summary["status"] for r in results] == ["completed"] * 6


def test_momentum_mini_batches_validation_test_and_weight_decay(tmp_path):
    """moons: 300 samples, 20% validation and 10% test: 210 training rows in batches of 32,
    the last of 18; weight decay on some members; then nesterov's (with weight decay)."""
    base = {"data.n_samples": 300, "data.val_fraction": 0.2, "data.test_fraction": 0.1,
            "optimizer": {"name": "momentum", "lr": 0.1, "batch_size": 32, "beta": 0.9},
            "train.epochs": 40}
    raws = [config("moons.yaml", **base, seed=seed) for seed in (0, 1)]
    raws.append(config("moons.yaml", **{**base, "optimizer": {**base["optimizer"], "lr": 0.05,
                                                              "weight_decay": 1e-3}}))
    raws.append(config("moons.yaml", **{**base, "optimizer": {**base["optimizer"], "beta": 0.5}},
                       **{"data.seed": 3}))  # another split of the same shape
    compare_lone_and_stacked(tmp_path, raws)
    nesterov = {**base, "optimizer": {**base["optimizer"], "nesterov": True,
                                      "weight_decay": 1e-3}}
    raws = [config("moons.yaml", **nesterov, seed=seed) for seed in (0, 1)]
    compare_lone_and_stacked(tmp_path / "nesterov", raws)


def test_adam_with_a_schedule_and_float32(tmp_path):
    base = {"optimizer": {"name": "adam", "lr": 0.01,
                          "schedule": {"name": "step", "step_size": 10, "gamma": 0.5}},
            "train.epochs": 60, "train.dtype": "float32"}
    raws = [config("xor.yaml", **base, seed=seed) for seed in (0, 1, 2)]
    raws.append(config("xor.yaml", **{**base, "optimizer": {"name": "adam", "lr": 0.05,
                                                            "beta1": 0.8, "eps": 1e-6}}))
    compare_lone_and_stacked(tmp_path, raws)


def test_early_stopping_ends_members_at_different_epochs(tmp_path):
    base = {"data.val_fraction": 0.3, "data.n_samples": 200, "train.epochs": 300,
            "train.early_stopping": {"patience": 5}, "optimizer": {"name": "gd", "lr": 2.0}}
    raws = [config("moons.yaml", **base, seed=seed) for seed in (0, 1, 2, 3)]
    results = compare_lone_and_stacked(tmp_path, raws)
    epochs = [r.summary["epochs"] for r in results]
    assert len(set(epochs)) > 1 and all(e < 300 for e in epochs)
    assert {r.summary["status"] for r in results} == {"early_stopped"}


@pytest.mark.parametrize("optimizer", [{"name": "momentum", "lr": 0.3, "beta": 0.9},
                                       {"name": "adam", "lr": 0.05}])
def test_once_half_the_members_ended_the_stack_goes_on_with_the_others_bit_for_bit(
        tmp_path, monkeypatch, optimizer):
    """Two of four members stop early (patience 1 and 2): the stack is cut to the two left
    (Stack.keep), which train on exactly as their lone runs, with mini-batches of 32, data
    that differ (stacked), validation, layers.csv and their optimizers' state."""
    import nntrain.stack as stack

    kept = []
    keep = stack.Stack.keep
    monkeypatch.setattr(stack.Stack, "keep", lambda self, which: kept.append(list(which))
                        or keep(self, which))
    base = {"data.n_samples": 200, "data.val_fraction": 0.2, "train.epochs": 40,
            "optimizer": {**optimizer, "batch_size": 32}}
    stopping = [{"patience": 1, "min_delta": 0.5}, {"patience": 2, "min_delta": 0.5}, None, None]
    raws = [config("moons.yaml", **base, seed=s, **{"data.seed": s % 2,
                                                    "train.early_stopping": stopping[s]})
            for s in range(4)]
    results = compare_lone_and_stacked(tmp_path, raws)
    assert [r.summary["status"] for r in results] == ["early_stopped"] * 2 + ["completed"] * 2
    assert kept == [[2, 3]]


def test_a_diverging_member_ends_while_the_others_go_on(tmp_path):
    raws = [config("lessons/learning_rate.yaml", **{"optimizer.lr": lr, "train.epochs": 150})
            for lr in (0.1, 2.0, 0.5)]
    results = compare_lone_and_stacked(tmp_path, raws)
    assert [r.summary["status"] for r in results] == ["completed", "diverged", "completed"]


def test_softmax_cross_entropy_and_elementwise_outputs(tmp_path):
    """A fused output (softmax with cross-entropy, per member on its slice), a regression's
    identity output with mse, and a sigmoid output with mse, each over seeds."""
    raws = [config("iris.yaml", seed=seed, **{"train.epochs": 50}) for seed in (0, 1)]
    compare_lone_and_stacked(tmp_path / "iris", raws)
    raws = [config("sine.yaml", seed=seed, **{"train.epochs": 30, "optimizer.batch_size": 16})
            for seed in (0, 1)]
    compare_lone_and_stacked(tmp_path / "sine", raws)
    # a sigmoid output with mse: not fused, the output's derivative applied to the stack
    raws = [config("xor.yaml", seed=seed, loss="mse", **{"train.epochs": 40}) for seed in (0, 1)]
    compare_lone_and_stacked(tmp_path / "sigmoid-mse", raws)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "selu", "softplus", "silu",
                                        "gelu", "sigmoid", "identity", "step"])
def test_every_elementwise_hidden_activation_stacks(tmp_path, activation):
    raws = [config("xor.yaml", seed=seed, **{"model.activation": activation,
                                             "train.epochs": 20}) for seed in (0, 1)]
    compare_lone_and_stacked(tmp_path, raws)


def test_what_does_not_stack_says_why():
    assert "random_search" in unstackable(load_config(raw=config(
        "xor.yaml", optimizer="random_search")).to_dict())
    assert "prelu" in unstackable(load_config(raw=config(
        "xor.yaml", **{"model.activation": "prelu"})).to_dict())
    a = load_config(raw=config("xor.yaml", **{"optimizer.lr": 0.1})).to_dict()
    b = load_config(raw=config("xor.yaml", **{"optimizer.lr": 0.2, "seed": 4})).to_dict()
    c = load_config(raw=config("xor.yaml", **{"optimizer.batch_size": 2})).to_dict()
    assert group_key(a) == group_key(b) != group_key(c)


# -- in compare ----------------------------------------------------------------------------


def test_compare_stacks_and_its_runs_equal_no_stacks(cli, tmp_path):
    """The same sweep with and without --no-stack: the same run folders, bit for bit (but the
    process's fields), the same results.csv but wall time; -v says what was stacked."""
    sweep = [CONFIGS / "xor.yaml", "--initializers", "zeros,xavier_uniform", "--seeds", "4",
             "train.epochs=50", "optimizer.lr=0.5,1.0", "--workers", "2"]
    stacked = cli("compare", *sweep, "--out", "stacked", "-v")
    assert stacked.exit_code == 0, stacked.output
    assert "stacked: 16 of 16 runs, in 1 group" in stacked.output
    alone = cli("compare", *sweep, "--out", "alone", "--no-stack", "-v")
    assert alone.exit_code == 0 and "--no-stack" in alone.output
    runs = sorted(p.name for p in (tmp_path / "alone").iterdir() if p.is_dir())
    assert len(runs) == 16
    assert runs == sorted(p.name for p in (tmp_path / "stacked").iterdir() if p.is_dir())
    for name in runs:
        same_folder(tmp_path / "alone" / name, tmp_path / "stacked" / name)
    a, b = (csv_without(tmp_path / d / "results.csv", "wall_time_s") for d in ("alone", "stacked"))
    assert a == b


def test_compare_says_which_runs_go_alone_and_why(cli):
    result = cli("compare", CONFIGS / "xor.yaml", "model.activation=tanh,prelu",
                 "train.epochs=5", "--seeds", "2", "--out", "mixed", "-v")
    assert result.exit_code == 0, result.output
    assert "stacked: 2 of 4 runs, in 1 group" in result.output
    assert result.output.count("alone: ") == 2 and "prelu" in result.output
    digits = cli("compare", CONFIGS / "digits.yaml", "train.epochs=2", "--seeds", "2",
                 "--out", "digits", "-v")
    assert digits.exit_code == 0, digits.output
    assert "multiply-adds a batch" in digits.output  # the arithmetic dominates: no stack
    sizes = cli("compare", CONFIGS / "xor.yaml", "model.layers=[2,4,1],[2,8,1]",
                "train.epochs=5", "--out", "sizes", "-v")
    assert "stacked: none of the 2 runs" in sizes.output  # a group of one is not a stack
    assert sizes.output.count("no other run has its shapes") == 2


def test_a_stack_is_split_so_that_every_worker_has_one():
    from nntrain.compare import make_tasks

    points = [{"index": i, "stack": "a" if i < 12 else None} for i in range(14)]
    tasks = make_tasks(points, workers=2)
    assert sorted(len(t) for t in tasks) == [1, 1, 6, 6]
    assert sorted(p["index"] for t in tasks for p in t) == list(range(14))
    assert [len(t) for t in make_tasks(points[:6], workers=2)] == [6]  # too few to split
    assert all(len(t) == 1 for t in make_tasks([{"index": i} for i in range(5)], workers=2))


def test_a_stack_keeps_within_the_open_files_limit(tmp_path):
    """Each member keeps its files open while it trains (metrics.csv, layers.csv,
    snapshots.bin): under `ulimit -n 150` a group of 60 becomes stacks of at most 21
    (stack.member_limit), and every run completes (in one stack of 60, members failed with
    'too many open files')."""
    import subprocess
    import sys

    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (150, "
            "resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
            "from nntrain.stack import member_limit; assert member_limit() == 21; "
            "sys.argv = ['nntrain'] + sys.argv[1:]; from nntrain.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, "compare", str(CONFIGS / "xor.yaml"),
                           "train.epochs=20", "--seeds", "60", "--workers", "1", "--out", "c",
                           "-v"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "trained as 3 stacks of 20 members" in done.stderr + done.stdout
    statuses = [json.loads((run / "summary.json").read_text())["status"]
                for run in (tmp_path / "c").iterdir() if run.is_dir()]
    assert statuses == ["completed"] * 60


def test_ctrl_c_stops_every_member_after_its_epoch_and_loses_nothing(tmp_path):
    """A first Ctrl-C: every member finishes the epoch in hand, is saved (its checkpoint at that
    epoch, its rows) and ends 'interrupted'; `nntrain resume` takes each member on."""
    import os
    import signal
    import threading

    from nntrain.resume import resume

    cfgs = [load_config(raw=config("xor.yaml", seed=seed, **{"train.epochs": 100000}))
            for seed in (0, 1)]
    outs = [tmp_path / f"m{s}" for s in range(2)]
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    results = train_stacked(cfgs, outs)
    assert all(isinstance(r, Interrupted) for r in results)
    epochs = set()
    for out in outs:
        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["signal"] == "SIGINT"
        last = int((out / "metrics.csv").read_text().splitlines()[-1].split(",")[0])
        assert summary["epochs"] == last and 0 < last < 100000
        epochs.add(last)
    assert len(epochs) == 1  # the members stop together, after the same epoch
    run = resume(outs[0], ["train.epochs=" + str(epochs.pop() + 5)])
    assert run.summary["status"] == "completed"


@pytest.mark.slow
def test_stopping_a_stacked_compare_keeps_its_members_and_resume_goes_on_bit_for_bit(tmp_path):
    """SIGINT while two stacks are in flight (8 xor seeds on 2 workers): every member stops
    after the same epoch as a lone run's first Ctrl-C stops it, kept interrupted with its rows
    and checkpoint, none failed, no temporary folder left; --resume goes on from each
    checkpoint, and every run's numbers are then an unbroken sweep's, bit for bit."""
    import os
    import signal
    import subprocess
    import sys
    import time

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONWARNINGS": "ignore"}
    args = [sys.executable, "-m", "nntrain", "compare", str(CONFIGS / "xor.yaml"), "--seeds", "8",
            "train.epochs=5000", "--workers", "2"]
    proc = subprocess.Popen(args + ["--out", str(tmp_path / "c")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((tmp_path / "c").glob(".*.partial/metrics.csv"))) < 8:
        time.sleep(0.05)  # both workers train their stack, in place
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    runs = sorted((tmp_path / "c").glob("0*"))
    assert len(runs) == 8
    summaries = [json.loads((run / "summary.json").read_text()) for run in runs]
    assert {(s["status"], s.get("signal")) for s in summaries} == {("interrupted", "SIGINT")}
    stopped_at = {s["epochs"] for s in summaries}
    assert len(stopped_at) <= 2 and max(stopped_at) < 5000  # a stack's members stop together
    for run, summary in zip(runs, summaries):  # every epoch finished is kept, resumable
        rows = (run / "metrics.csv").read_text().splitlines()
        assert len(rows) == 1 + summary["epochs"] + 1 and (run / "checkpoint.npz").is_file()
    assert [p.name for p in (tmp_path / "c").glob(".*")] == [".nntrain-claim"]

    def statuses():
        rows = (tmp_path / "c" / "results.csv").read_text().splitlines()
        at = rows[0].split(",").index("status")
        return [row.split(",")[at] for row in rows[1:]]

    assert statuses() == ["interrupted"] * 8
    assert list(scratch.iterdir()) == []
    resumed = subprocess.run(args + ["--resume", str(tmp_path / "c"), "-v"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "going on from their checkpoints: 8 interrupted runs, each alone" in resumed.stderr
    assert statuses() == ["completed"] * 8
    unbroken = subprocess.run(args + ["--out", str(tmp_path / "u")], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    assert unbroken.returncode == 0, unbroken.stderr
    for run in runs:
        other = tmp_path / "u" / run.name
        assert csv_without(run / "metrics.csv") == csv_without(other / "metrics.csv")
        assert csv_without(run / "layers.csv") == csv_without(other / "layers.csv")
        x, y = npz_arrays(run / "model.npz"), npz_arrays(other / "model.npz")
        assert all(x[k].tobytes() == y[k].tobytes() for k in y) and x.keys() == y.keys()
    assert list(scratch.iterdir()) == []


def test_a_member_that_fails_on_its_own_fails_alone(tmp_path, monkeypatch):
    """A member whose own part fails (here its metrics.csv writer, at epoch 3) ends 'failed'
    with that exception; the others go on and are still their lone runs bit for bit."""
    from nntrain import callbacks

    raws = [config("xor.yaml", seed=seed, **{"train.epochs": 30}) for seed in (0, 1, 2)]
    cfgs = [load_config(raw=copy.deepcopy(raw)) for raw in raws]
    for s, cfg in enumerate(cfgs):
        if s != 1:
            train(cfg, out=tmp_path / "lone" / f"m{s}")
    real = callbacks.MetricsLog.on_epoch_end

    def breaks(self, epoch, logs):
        if self.training.folder.path.name == "m1" and epoch == 3:
            raise OSError("the disk of m1 is gone")
        return real(self, epoch, logs)

    monkeypatch.setattr(callbacks.MetricsLog, "on_epoch_end", breaks)
    results = train_stacked(cfgs, [tmp_path / "stacked" / f"m{s}" for s in range(3)])
    assert isinstance(results[1], OSError)
    assert json.loads((tmp_path / "stacked" / "m1" / "summary.json").read_text())["status"] == \
        "failed"
    for s in (0, 2):
        assert results[s].summary["status"] == "completed"
        same_folder(tmp_path / "lone" / f"m{s}", tmp_path / "stacked" / f"m{s}")


def test_a_folder_that_cannot_be_a_members_is_refused_before_anything_is_written(tmp_path):
    from nntrain.registry import ConfigError

    cfgs = [load_config(raw=config("xor.yaml", seed=seed)) for seed in (0, 1)]
    (tmp_path / "m1").mkdir()
    (tmp_path / "m1" / "something").write_text("")
    with pytest.raises(ConfigError, match="not an empty folder"):
        train_stacked(cfgs, [tmp_path / "m0", tmp_path / "m1"])
    assert not (tmp_path / "m0").exists()


# -- what is measured for every member at once equals each member's own ----------------------

STACKING = [name for name in LOSSES.names() if LOSSES.get(name).stacks]


def test_the_losses_that_take_a_stack():
    """The elementwise losses take stacked members' arrays; cross_entropy and kl (row sums of a
    softmax) go member by member."""
    assert set(STACKING) == {"sse", "mse", "mae", "huber", "gaussian_nll", "bce"}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", STACKING)
def test_a_stacked_loss_is_each_members_own_bit_for_bit(name, dtype):
    from nntrain.activations import sigmoid

    rng = np.random.default_rng(7)
    loss = LOSSES.build(name, "loss")
    for S, n, k in [(1, 1, 1), (3, 4, 1), (5, 33, 3), (2, 300, 2)]:
        z = (rng.standard_normal((S, n, k)) * rng.choice([1.0, 30.0, 1000.0])).astype(dtype)
        y = (rng.uniform(size=(S, n, k)) > 0.5).astype(dtype)
        o = sigmoid(z, np.empty_like(z))
        E, grad = loss.value_and_grad(z, o, y)
        assert E.dtype == np.float64 and E.shape == (S,)
        shared_E, _ = loss.value_and_grad(z, o, y[0])  # one target array for every member
        for s in range(S):
            lone_E, lone_grad = loss.value_and_grad(z[s], o[s].copy(), y[s])
            assert isinstance(lone_E, float) and E[s] == lone_E and np.isfinite(lone_E)
            assert grad[s].tobytes() == lone_grad.tobytes()
            assert shared_E[s] == loss.value_and_grad(z[s], o[s].copy(), y[0])[0]


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_stacked_metric_is_each_members_own(task):
    from nntrain.tasks import TASKS

    rng = np.random.default_rng(3)
    k = 1 if task == "binary" else 3
    output = rng.uniform(size=(4, 50, k))
    targets = rng.uniform(size=(4, 50, k)) if task == "regression" else None
    truth = targets if targets is not None else rng.integers(0, 2 if k == 1 else k, (4, 50))
    sums = TASKS[task].metric_sum(output, truth)
    for s in range(4):
        assert sums[s] == TASKS[task].metric_sum(output[s], truth[s])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stacked_gradient_norms_and_layer_statistics_are_each_members_own(dtype):
    """np.matmul of a member's row by its column is BLAS's dot, as np.vdot; NumPy's pairwise
    sums over a member's slice are its own array's."""
    from nntrain.activations import ACTIVATIONS
    from nntrain.diagnostics import layer_figures

    rng = np.random.default_rng(5)
    shapes = [(2, 16), (16,), (16, 16), (16,), (16, 1), (1,)]
    grads = [rng.standard_normal((6, *shape)).astype(dtype) for shape in shapes]
    norms = gradient_norm(grads, members=True)
    for s in range(6):
        assert norms[s] == gradient_norm([g[s] for g in grads])
    acts = [ACTIVATIONS.build(name, "activation") for name in ("relu", "tanh", "sigmoid")]
    outputs = [np.maximum(rng.standard_normal((6, 40, 16)), 0).astype(dtype),
               np.tanh(rng.standard_normal((6, 40, 16)) * 3).astype(dtype),
               rng.uniform(size=(6, 40, 1)).astype(dtype)]
    W = [g for g in grads if g.ndim == 3]
    dW = [w * 0.1 for w in W]
    updates = [g * 1e-3 for g in grads]  # every parameter's: the weights' are picked
    is_weight = [g.ndim == 3 for g in grads]
    stacked = layer_figures(list(zip(acts, outputs, W, dW)), updates, is_weight, members=True)
    for s in range(6):
        lone = layer_figures([(a, x[s], w[s], d[s]) for a, x, w, d in zip(acts, outputs, W, dW)],
                             [u[s] for u in updates], is_weight)
        for mine, theirs in zip(stacked, lone):
            assert {k: v[s] if isinstance(v, np.ndarray) else v for k, v in mine.items()} == theirs


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", STACKING)
def test_every_stacking_loss_trains_bit_for_bit(tmp_path, loss, dtype):
    """Regression (sine) with each loss that takes a stack, mini-batches with a last short one,
    validation; one member on another split of the data (the members' data stacked)."""
    base = {"loss": loss, "train.epochs": 15, "optimizer.batch_size": 24,
            "data.val_fraction": 0.2, "train.dtype": dtype}
    raws = [config("sine.yaml", seed=seed, **base) for seed in (0, 1)]
    raws.append(config("sine.yaml", **base, **{"data.seed": 4}))
    compare_lone_and_stacked(tmp_path, raws)


def test_members_whose_stacked_data_would_be_too_large_do_not_stack(tmp_path, monkeypatch):
    """Members whose data differ have it stacked; past stack.MAX_STACKED_BYTES the group is
    refused before anything is written (compare then trains its runs one by one)."""
    import nntrain.stack as stack

    raws = [config("moons.yaml", **{"data.seed": seed, "train.epochs": 2}) for seed in (0, 1)]
    cfgs = [load_config(raw=raw) for raw in raws]
    monkeypatch.setattr(stack, "MAX_STACKED_BYTES", 1000)
    outs = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(ValueError, match="their data differ"):
        train_stacked(cfgs, outs)
    assert not any(out.exists() for out in outs)
    shared = [load_config(raw=config("moons.yaml", seed=seed, **{"train.epochs": 2}))
              for seed in (0, 1)]  # the same data: one copy, whatever its size
    assert [r.summary["status"] for r in train_stacked(shared, outs)] == ["completed"] * 2


def test_a_group_its_worker_cannot_stack_is_trained_one_by_one_and_said_once(
        tmp_path, monkeypatch):
    """compare's worker trains a refused group's runs one by one; the driver says so once, as a
    warning (compare -v had announced them stacked)."""
    import nntrain.compare as compare_module
    import nntrain.stack as stack

    monkeypatch.setattr(stack, "MAX_STACKED_BYTES", 1000)
    points = [{"index": i, "dir": f"r{i}", "config": config("moons.yaml", **{
        "data.seed": i, "train.epochs": 2})} for i in range(2)]
    results = compare_module.execute_task(points)
    assert [r["summary"]["status"] for r in results] == ["completed"] * 2
    note = ("2 runs trained one by one, not stacked: ValueError: these runs do not stack: "
            "their data differ and stacked would take 0 MB")
    assert [r.get("note") for r in results] == [note, None]

    def run_local(work, tasks, workers, on_result, on_stopped, meanwhile, check):
        meanwhile()
        for result in results:
            on_result(result)

    monkeypatch.setattr(compare_module, "run_local", run_local)
    with pytest.warns(UserWarning) as said:
        compare_module.compare(CONFIGS / "moons.yaml", ["data.seed=0,1", "train.epochs=2"],
                               seeds="1", out=tmp_path / "c")
    assert [str(w.message) for w in said if "one by one" in str(w.message)] == [note]
