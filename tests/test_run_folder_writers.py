"""A run folder has one writer at a time, and a stop loses nothing: the lock (.nntrain-lock),
SIGTERM's checkpoint of the last finished epoch, resume's checks before anything changes, and
the target a resume asked for."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import CONFIGS
from nntrain import load_config, train
from nntrain.registry import ConfigError
from nntrain.resume import resume
from nntrain.runs import LOCK, read_checkpoint, save_arrays
from nntrain.train import Interrupted

NNTRAIN = [sys.executable, "-m", "nntrain"]
XOR = {"data": {"name": "xor"}, "model": {"layers": [2, 4, 1]},
       "optimizer": {"name": "gd", "lr": 0.5}, "train": {"epochs": 50}}


def wait_until(condition, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def start_training(tmp_path, out, *args):
    return subprocess.Popen(NNTRAIN + ["train", str(CONFIGS / "moons.yaml"), *args,
                                       "--out", str(out), "--quiet"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(path):
    return (path / "metrics.csv").read_text().splitlines()[1:]


@pytest.mark.slow
def test_sigterm_checkpoints_the_last_finished_epoch_and_resume_goes_on_from_it(tmp_path):
    out = tmp_path / "t"
    proc = start_training(tmp_path, out, "train.epochs=1000000")
    assert wait_until(lambda: (out / "metrics.csv").exists() and len(rows(out)) > 100)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    last = int(rows(out)[-1].split(",")[0])
    assert read_checkpoint(out / "checkpoint.npz")["state"]["epoch"] == last
    assert not (out / LOCK).exists()
    resumed = subprocess.run(NNTRAIN + ["resume", str(out), f"train.epochs={last + 20}",
                                        "--json"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed_from"] == last


@pytest.mark.slow
def test_a_resume_while_the_run_trains_and_a_second_resume_are_refused(tmp_path):
    out = tmp_path / "t"
    proc = start_training(tmp_path, out, "train.epochs=1000000")
    try:
        assert wait_until(lambda: (out / "checkpoint.npz").exists() and (out / LOCK).exists())
        before = (out / "metrics.csv").read_text()
        refused = subprocess.run(NNTRAIN + ["resume", str(out), "train.epochs=2000000"],
                                 cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and f"process {proc.pid}" in refused.stderr
        assert refused.stderr.count("\n") == 1
        assert (out / "metrics.csv").read_text().startswith(before)  # nothing was cut
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    first = subprocess.Popen(NNTRAIN + ["resume", str(out), "train.epochs=3000000", "--quiet"],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert wait_until(lambda: (out / LOCK).exists()
                          and json.loads((out / LOCK).read_text())["pid"] == first.pid)
        second = subprocess.run(NNTRAIN + ["resume", str(out), "train.epochs=3000000"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and f"process {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)


def test_a_stale_lock_is_taken_over_and_another_hosts_needs_break_lock(tmp_path, capsys):
    run = train(load_config(raw=XOR), out=tmp_path / "r")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (run.path / LOCK).write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead),
                                             "started": 0}))
    assert resume(run.path, ["train.epochs=60"]).summary["epochs"] == 60
    assert "took over the lock of process" in capsys.readouterr().err
    (run.path / LOCK).write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": 0}))
    with pytest.raises(ConfigError, match="process 1 on elsewhere"):
        resume(run.path, ["train.epochs=70"])
    assert resume(run.path, ["train.epochs=70"], break_lock=True).summary["epochs"] == 70
    assert not (run.path / LOCK).exists()


def test_resume_goes_on_to_the_target_an_interrupted_resume_asked_for(tmp_path):
    run = train(load_config(raw=XOR), out=tmp_path / "r")

    from nntrain.callbacks import Callback

    class StopAt(Callback):  # a resume to 200 epochs, interrupted at 120
        def on_epoch_end(self, epoch, logs):
            if epoch == 120:
                self.training.stop("interrupted")

    from nntrain import resume as resume_module

    cfg_raw = {**XOR, "train": {"epochs": 200}}
    start = resume_module.check_resume(resume_module.RunFolder(run.path), ["train.epochs=200"],
                                       (), False)
    with pytest.raises(Interrupted):
        train(load_config(raw=cfg_raw), out=run.path, start=start[1], callbacks=[StopAt()])
    assert "epochs: 50" in (run.path / "config.yaml").read_text()  # the run's own config
    done = resume(run.path)  # no train.epochs: the target the last resume asked for
    assert done.summary["epochs"] == 200 and done.summary["resumed_from"] == 120


@pytest.mark.parametrize("damage, message", [
    (lambda state, arrays: state.update(epoch=-5), "epoch -5"),
    (lambda state, arrays: state.update(epoch="7"), "epoch '7'"),
    (lambda state, arrays: state.update(time_s=float("nan")), "time_s"),
    (lambda state, arrays: state.update(batch_rng={"bit_generator": "PCG64"}), "generator"),
    (lambda state, arrays: state["stopper"].pop("wait"), "early stopping"),
    (lambda state, arrays: arrays.update({"optimizer/updates/0": np.zeros((3, 3))}),
     "the shapes of optimizer/updates/0"),
    (lambda state, arrays: arrays.update({"params/W1": np.zeros((5, 5))}),
     "the shapes of params/W1"),
    (lambda state, arrays: arrays.pop("params/b2"), "missing params/b2"),
    (lambda state, arrays: arrays.update({"extra": np.zeros(10)}), "extra arrays extra"),
])
def test_a_damaged_checkpoint_is_refused_with_the_folder_unchanged(tmp_path, damage, message):
    run = train(load_config(raw=XOR), out=tmp_path / "r")
    path = run.path / "checkpoint.npz"
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    state = json.loads(str(arrays["state"]))
    damage(state, arrays)
    arrays["state"] = np.array(json.dumps(state))
    save_arrays(path, arrays)
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    with pytest.raises(ConfigError, match=message):
        resume(run.path, ["train.epochs=60"])
    assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before


@pytest.mark.parametrize("change", ["missing", "headerless"])
def test_resume_refuses_a_lost_history_and_writes_no_headerless_file(tmp_path, change):
    run = train(load_config(raw=XOR), out=tmp_path / "r")
    metrics = run.path / "metrics.csv"
    if change == "missing":
        metrics.unlink()
    else:
        metrics.write_text("\n".join(metrics.read_text().splitlines()[1:]) + "\n")
    before = metrics.read_bytes() if metrics.exists() else None
    with pytest.raises(ConfigError, match="metrics.csv"):
        resume(run.path, ["train.epochs=60"])
    assert (metrics.read_bytes() if metrics.exists() else None) == before
