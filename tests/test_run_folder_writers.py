"""A run folder has one writer at a time, and a stop loses nothing: the lock (.nntrain-lock),
SIGTERM's checkpoint of the last finished epoch, resume's checks before anything changes, and
the target a resume asked for."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import CONFIGS
from nntrain import load_config, train
from nntrain.registry import ConfigError
from nntrain.resume import resume
from nntrain.runs import LOCK, read_checkpoint, save_arrays
from nntrain.loop import Interrupted

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


@pytest.mark.slow
def test_a_run_killed_before_its_first_periodic_checkpoint_resumes_from_its_start(tmp_path):
    out = tmp_path / "t"
    proc = start_training(tmp_path, out, "train.epochs=1000000")
    assert wait_until(lambda: (out / "metrics.csv").exists() and len(rows(out)) > 3)
    proc.kill()  # SIGKILL: no handler runs; the periodic checkpoint is ~2 s away
    proc.wait(timeout=30)
    resumed = subprocess.run(NNTRAIN + ["resume", str(out), "train.epochs=5", "--json"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed_from"] == 0


SLOW_DATA = '''\
import time
from pathlib import Path
import numpy as np
from nntrain.datasets import DATASETS

@DATASETS.register("slow")
def slow():
    """Loads for a minute, saying so first."""
    Path("loading").touch()
    time.sleep(60)
    return np.zeros((4, 2)), np.array([0, 1, 0, 1]), "classes"
'''


@pytest.mark.slow
def test_sigterm_before_the_run_folder_exists_is_one_line_and_no_folder(tmp_path):
    """SIGTERM while the data loads: one line, 143, no run folder. The plugin dataset says when
    it is loading, so the test waits for that, not for a time: it holds on a machine of any
    speed (3 million moons took more than 1.5 s to make on one machine and less on another)."""
    (tmp_path / "slow_data.py").write_text(SLOW_DATA)
    (tmp_path / "big.yaml").write_text("data: {name: slow}\nmodel: {layers: [2, 4, 1]}\n"
                                      "plugins: [slow_data.py]\n")
    proc = subprocess.Popen(NNTRAIN + ["train", "big.yaml", "--out", "run"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (tmp_path / "loading").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and stderr.strip() == "interrupted"
    assert not (tmp_path / "run").exists()


def test_on_a_full_disk_the_final_status_is_still_recorded(tmp_path, monkeypatch):
    import errno

    from nntrain import runs
    from nntrain.runs import WriteError

    real = runs.new_file

    def full(path):  # every new file fails once the last epoch is done
        if full.on:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path)

    full.on = False

    from nntrain.callbacks import Callback

    class DiskFills(Callback):
        def on_train_end(self, logs):
            full.on = True

    monkeypatch.setattr(runs, "new_file", full)
    with pytest.raises(WriteError, match="no space left"):
        train(load_config(raw=XOR), out=tmp_path / "r", callbacks=[DiskFills()])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs"] == 50


def test_predict_writes_its_output_atomically_and_refuses_what_would_lose_data(tmp_path, cli):
    run = train(load_config(raw=XOR), out=tmp_path / "r")
    data = tmp_path / "x.csv"
    data.write_text("x1,x2\n0,1\n1,1\n")
    out = tmp_path / "p.csv"
    assert cli("predict", run.path, data, "-o", out).exit_code == 0
    before = out.read_bytes()
    for args, message in ((["-o", data], "is the input file"),
                          (["-o", tmp_path], "is a folder"),
                          (["-o", tmp_path / "no" / "p.csv"], "does not exist")):
        result = cli("predict", run.path, data, *args)
        assert result.exit_code == 2 and message in result.stderr
    assert data.read_text() == "x1,x2\n0,1\n1,1\n" and out.read_bytes() == before
    (tmp_path / "y.csv").write_text("x1,x2,prediction\n0,1,7\n")
    taken = cli("predict", run.path, tmp_path / "y.csv")
    assert taken.exit_code == 2 and "already has a column prediction" in taken.stderr


def test_evaluate_refuses_what_it_cannot_score(tmp_path, cli):
    run = train(load_config(raw=XOR), out=tmp_path / "r")
    (tmp_path / "empty.csv").write_text("x1,x2,label\n")
    empty = cli("evaluate", run.path, tmp_path / "empty.csv")
    assert empty.exit_code == 2 and "no rows" in empty.stderr
    np.savez(tmp_path / "two.npz", X=np.zeros((3, 2)), y=np.zeros((3, 2)))
    two = cli("evaluate", run.path, tmp_path / "two.npz")
    assert two.exit_code == 2 and "one label per row" in two.stderr


def test_a_changed_training_file_is_said_and_its_splits_are_not_called_the_runs(tmp_path, cli):
    lines = ["a,b,label"] + [f"{i % 7},{i % 5},{i % 2}" for i in range(60)]
    data = tmp_path / "d.csv"
    data.write_text("\n".join(lines) + "\n")
    (tmp_path / "c.yaml").write_text("data: {name: csv, path: d.csv, target: label, "
                                     "test_fraction: 0.2}\nmodel: {layers: [2, 3, 1]}\n"
                                     "train: {epochs: 5}\n")
    assert cli("train", tmp_path / "c.yaml", "--out", tmp_path / "r", "-q").exit_code == 0
    assert cli("evaluate", tmp_path / "r").exit_code == 0
    data.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")  # rows reordered
    stale = cli("predict", tmp_path / "r", data)
    assert stale.exit_code == 0 and "changed since the run was trained" in stale.stderr
    refused = cli("evaluate", tmp_path / "r")
    assert refused.exit_code == 2 and "fingerprint changed" in refused.stderr


@pytest.mark.slow
def test_a_compare_resume_of_a_sweep_still_running_is_refused(tmp_path):
    args = ["compare", str(CONFIGS / "moons.yaml"), "train.epochs=1000000", "--seeds", "2",
            "--workers", "1"]
    proc = subprocess.Popen(NNTRAIN + args + ["--out", "c"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: (tmp_path / "c" / LOCK).exists())
        second = subprocess.run(NNTRAIN + args + ["--resume", "c"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and f"process {proc.pid}" in second.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert not (tmp_path / "c" / LOCK).exists()


def loading_numpy(pid: int) -> bool:
    """Whether the process has started loading numpy's compiled core (Linux: its maps)."""
    try:
        return b"numpy" in Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/PID/maps")
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])  # after numpy started loading
def test_ctrl_c_while_the_command_starts_is_one_line_not_a_traceback(tmp_path, delay):
    """The console script's entry (nntrain_main) answers Ctrl-C even while numpy loads (before
    that, the interpreter's own start-up is not the command's to handle)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys, nntrain_main; "
                             "sys.argv[0] = 'nntrain'; nntrain_main.main()", "train",
                             str(CONFIGS / "moons.yaml"), "train.epochs=1000000", "--out", "r",
                             "-q"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert wait_until(lambda: loading_numpy(proc.pid), timeout=30)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr


def test_compare_break_lock_takes_over_another_machines_sweep(tmp_path):
    from nntrain.compare import compare

    config = CONFIGS / "xor.yaml"
    folder, _, _ = compare(config, ["train.epochs=5"], seeds="2", workers=1, out=tmp_path / "c")
    (folder / LOCK).write_text(json.dumps({"host": "othernode", "pid": 1, "started": 0}))
    with pytest.raises(ConfigError, match="process 1 on othernode"):
        compare(config, ["train.epochs=5"], seeds="2", workers=1, resume=folder)
    compare(config, ["train.epochs=5"], seeds="2", workers=1, resume=folder, break_lock=True)
    assert not (folder / LOCK).exists()
