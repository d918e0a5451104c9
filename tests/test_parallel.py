"""Data-parallel steps (nntrain.parallel): a batch split into shards gives the whole batch's
numbers, worker processes give the shards' numbers bit for bit, and workers never outlive
their run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nntrain.parallel as parallel
from conftest import CONFIGS, write
from nntrain import load_config, train
from nntrain.losses import LOSSES, Loss
from nntrain.registry import ConfigError
from nntrain.runs import load_model

# (config, overrides): full batches and gathered mini-batches, fused and plain losses, a
# learned activation parameter (PReLU), uneven cuts (3 shards of 120 or 1438 rows)
CASES = {
    "digits_full_batch": ("digits.yaml", ["optimizer.batch_size=null", "train.epochs=8"]),
    "spiral_adam_minibatches": ("spiral.yaml", ["train.epochs=4"]),
    "iris_kl_prelu": ("iris.yaml", ["loss=kl", "model.activation=prelu", "train.epochs=20",
                                    "optimizer.batch_size=null"]),
    "sine_mse": ("sine.yaml", ["train.epochs=30"]),
    "moons_bce": ("moons.yaml", ["train.epochs=30"]),
}


def run(tmp_path, name, overrides, tag):
    cfg = load_config(CONFIGS / name, overrides=overrides)
    return train(cfg, out=tmp_path / tag)


def curve(run_):
    return np.array([row["loss"] for row in run_.history])


@pytest.mark.parametrize("shards", [2, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_shards_give_the_whole_batch_numbers(tmp_path, case, shards):
    name, overrides = CASES[case]
    whole = run(tmp_path, name, overrides + ["train.shards=1"], "whole")
    split = run(tmp_path, name, overrides + [f"train.shards={shards}"], "split")
    assert whole.summary["shards"] == 1 and split.summary["shards"] == shards
    # only the summation order differs: the loss curves agree to 1e-12
    np.testing.assert_allclose(curve(split), curve(whole), rtol=1e-12, atol=0)
    a, b = load_model(whole.path / "model.npz"), load_model(split.path / "model.npz")
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-9, atol=1e-12)
    accuracy = [k for k in whole.history[-1] if k in ("accuracy", "mae")][0]
    assert [r[accuracy] for r in split.history] == pytest.approx([r[accuracy] for r in whole.history])


@pytest.mark.skipif(not parallel.workers_possible(), reason="needs Linux and two cores")
@pytest.mark.parametrize("case", ["digits_full_batch", "spiral_adam_minibatches", "iris_kl_prelu"])
def test_worker_processes_give_the_in_process_numbers_bit_for_bit(tmp_path, monkeypatch, case):
    name, overrides = CASES[case]
    overrides = overrides + ["train.shards=2"]
    forked = run(tmp_path, name, overrides, "forked")
    monkeypatch.setattr(parallel, "workers_possible", lambda: False)
    serial = run(tmp_path, name, overrides, "serial")
    assert curve(forked).tolist() == curve(serial).tolist()
    a, b = load_model(forked.path / "model.npz"), load_model(serial.path / "model.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def children(pid: int) -> set[int]:
    text = open(f"/proc/{pid}/task/{pid}/children").read()
    return {int(p) for p in text.split()}


@pytest.mark.skipif(not parallel.workers_possible(), reason="needs Linux and two cores")
def test_a_step_forks_its_workers_and_reaps_them():
    rng = np.random.default_rng(0)
    from nntrain import Network

    net = Network([8, 16, 3], "tanh", "softmax")
    X = rng.normal(size=(600, 8))
    Y = np.eye(3)[rng.integers(0, 3, 600)]
    loss = LOSSES.build("cross_entropy")
    before = children(os.getpid())
    with parallel.Step(net, loss, X, Y, batch=600, shards=3) as step:
        assert len(children(os.getpid()) - before) == 2
        E, output = step()
    assert children(os.getpid()) == before
    whole = Network([8, 16, 3], "tanh", "softmax")
    E_whole, grads = whole.loss_and_gradients(X, Y, "cross_entropy")
    assert E == pytest.approx(E_whole, rel=1e-13)
    np.testing.assert_allclose(output, whole.forward(X), rtol=1e-13)
    for g, h in zip(net.gradients(), grads):
        np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-15)


def test_a_failing_worker_fails_the_run_and_is_reaped(tmp_path):
    """An activation that raises in the worker only: the run fails with the worker's message."""
    plugin = write(tmp_path / "bad.py", f"""
import os
from nntrain.activations import ACTIVATIONS, Tanh

@ACTIVATIONS.register("fragile")
class Fragile(Tanh):
    def forward(self, z, out=None):
        if os.getpid() != {os.getpid()}:
            raise ValueError("broken in the worker")
        return super().forward(z, out)
""")
    cfg = load_config(CONFIGS / "digits.yaml", overrides=[
        f"plugins=[{plugin}]", "model.activation=fragile", "train.shards=2",
        "optimizer.batch_size=null"])
    before = children(os.getpid())
    if not parallel.workers_possible():
        pytest.skip("needs Linux and two cores")
    with pytest.raises(RuntimeError, match="broken in the worker"):
        train(cfg, out=tmp_path / "run")
    assert children(os.getpid()) == before
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "failed"


def test_auto_splits_only_large_batches_and_mean_losses():
    ce = LOSSES.build("cross_entropy")
    assert parallel.shard_count("auto", 4, 17, ce) == 1  # xor
    assert parallel.shard_count("auto", 1000, 338, ce) == 1  # moons, full batch
    assert parallel.shard_count("auto", 128, 269_322, ce) == 1  # mnist-sized mini-batch
    assert parallel.shard_count("auto", 1797, 9_610, ce) == 2  # digits, full batch
    assert parallel.shard_count(3, 4, 17, ce) == 3

    class SummedLoss(Loss):  # a plugin loss that does not declare itself a mean over rows
        pass

    assert parallel.shard_count("auto", 2000, 10**6, SummedLoss()) == 1
    assert parallel.shard_count(2, 2000, 10**6, SummedLoss()) == 1


@pytest.mark.parametrize("value", ["0", "two", "true", "1.5"])
def test_bad_shards_is_a_config_error(tmp_path, value):
    with pytest.raises(ConfigError, match="train.shards"):
        load_config(CONFIGS / "xor.yaml", overrides=[f"train.shards={value}"])


@pytest.mark.skipif(not parallel.workers_possible(), reason="needs Linux and two cores")
@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_workers_end_with_the_trainer(tmp_path, how):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nntrain", "train", str(CONFIGS / "digits.yaml"), "train.shards=2",
         "optimizer.batch_size=null", "train.epochs=100000", "--out", str(out), "--quiet"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "metrics.csv").exists() or len(
            (out / "metrics.csv").read_text().splitlines()) < 20:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    workers = children(proc.pid)
    assert len(workers) == 1
    if how == "sigint":  # the whole process group gets it, as from a terminal's Ctrl-C
        proc.send_signal(signal.SIGINT)
        for pid in workers:
            os.kill(pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr
        assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    else:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") and "Z" not in open(f"/proc/{pid}/stat").read().split()[2]
              for pid in workers):
        assert time.monotonic() < deadline, "a shard worker outlived its trainer"
        time.sleep(0.05)


def test_steps_use_one_blas_thread_and_give_the_others_back():
    from threadpoolctl import threadpool_info

    from nntrain import Network

    def blas_threads():
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(600, 8)), np.eye(3)[rng.integers(0, 3, 600)]
    before = blas_threads()
    with parallel.Step(Network([8, 16, 3], "tanh", "softmax"), LOSSES.build("cross_entropy"),
                       X, Y, batch=600, shards=2):
        assert blas_threads() == {1}
    assert blas_threads() == before
