"""`nntrain compare` and `nntrain report`: grids, executors, resume, shell sweeps."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CONFIGS, ROOT, run_nntrain, write
from nntrain.compare import compare
from nntrain.registry import ConfigError

pytestmark = pytest.mark.slow  # process pools, Dask clusters, subprocesses


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_zeros_vs_xavier_on_xor(cli, tmp_path):
    result = cli("compare", CONFIGS / "xor.yaml", "--initializers", "zeros,xavier_uniform",
                 "--seeds", "5", "--workers", "2", "--out", tmp_path / "c", "--target-loss", "0.1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "c")
    results = read(tmp_path / "c" / "results.csv")
    assert len(results) == 10
    assert [r["seed"] for r in results] == ["0", "1", "2", "3", "4"] * 2
    zeros = [r for r in results if r["model.initializer"] == "zeros"]
    xavier = [r for r in results if r["model.initializer"] == "xavier_uniform"]
    assert all(float(r["final_accuracy"]) <= 0.75 for r in zeros)
    assert all(float(r["final_accuracy"]) == 1.0 for r in xavier)
    assert all(r["epochs_to_target"] == "" for r in zeros)
    assert all(0 < int(r["epochs_to_target"]) < 1000 for r in xavier)
    summary = read(tmp_path / "c" / "summary.csv")
    assert [s["model.initializer"] for s in summary] == ["zeros", "xavier_uniform"]
    assert summary[1]["runs"] == "5" and float(summary[1]["final_accuracy_mean"]) == 1.0
    folder = tmp_path / "c"
    assert (folder / "loss.png").read_bytes()[:4] == b"\x89PNG"
    sweep = (folder / "sweep.yaml").read_text()
    assert "model.initializer" in sweep and "seeds" in sweep
    runs = sorted(p for p in folder.iterdir() if p.is_dir())
    assert len(runs) == 10
    for run in runs:  # each grid point is a complete run folder
        assert {"config.yaml", "metrics.csv", "summary.json", "model.npz"} <= {
            p.name for p in run.iterdir()}
        assert json.loads((run / "summary.json").read_text())["path"] == str(run)


def test_dask_local_cluster_gives_the_same_numbers(cli, tmp_path):
    args = [CONFIGS / "moons.yaml", "optimizer.lr=0.1,0.5", "train.epochs=30", "--seeds", "2"]
    local = cli("compare", *args, "--out", tmp_path / "pool", "--workers", "2")
    dask = cli("compare", *args, "--out", tmp_path / "dask", "--executor", "dask", "--workers", "1")
    assert local.exit_code == 0 and dask.exit_code == 0, dask.stderr
    skip = {"wall_time_s"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in skip} for r in rows]  # noqa: E731
    assert strip(read(tmp_path / "pool" / "results.csv")) == strip(read(tmp_path / "dask" / "results.csv"))
    assert len(read(tmp_path / "dask" / "results.csv")) == 4


def test_bad_axis_value_fails_before_anything_runs(cli, tmp_path):
    result = cli("compare", CONFIGS / "xor.yaml", "model.activation=tanh,rleu", "--out", tmp_path / "c")
    assert result.exit_code == 2
    assert "model.activation: unknown activation 'rleu'" in result.stderr
    assert not (tmp_path / "c").exists()
    sizes = cli("compare", CONFIGS / "xor.yaml", "model.layers=[2,4,1],[3,4,1]")
    assert sizes.exit_code == 2 and "input size is 3" in sizes.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("target", ["nan", "inf", "-inf"])
def test_a_target_loss_that_is_not_a_finite_number_is_refused(cli, tmp_path, target):
    """A NaN target is never reached and -inf neither (inf at once): the epochs-to-target
    column would be blank or 0 for every run, and nothing would say why."""
    result = cli("compare", CONFIGS / "xor.yaml", "--target-loss", target, "--out", tmp_path / "c")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --target-loss: must be a finite number, got {float(target)}")
    assert not (tmp_path / "c").exists()


def test_failed_run_is_recorded_and_the_others_go_on(cli, tmp_path):
    write(tmp_path / "flaky.py", '''
import numpy as np
from nntrain.activations import ACTIVATIONS, Tanh

@ACTIVATIONS.register("flaky_test")
class Flaky(Tanh):
    """tanh that raises in its 20th forward pass."""
    def forward(self, z, out=None):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 20:
            raise RuntimeError("flaky activation failed")
        return super().forward(z, out)
''')
    result = cli("compare", CONFIGS / "xor.yaml", "model.activation=tanh,flaky_test",
                 "train.epochs=50", "--plugin", tmp_path / "flaky.py", "--out", tmp_path / "c",
                 "--workers", "1")
    assert result.exit_code == 1
    assert "1 run(s) failed" in result.stderr
    rows = read(tmp_path / "c" / "results.csv")
    assert [r["status"] for r in rows] == ["completed", "failed"]
    summary = json.loads((tmp_path / "c" / rows[1]["run"] / "summary.json").read_text())
    assert "flaky activation failed" in summary["error"]
    # stderr names the failed run and its error, without opening its summary.json
    run = Path(rows[1]["run"]).name
    assert f"failed: {run}: {summary['error']}\n1 run(s) failed; see results.csv" in result.stderr


def test_compare_lists_at_most_five_failed_runs(tmp_path):
    from nntrain.compare import failures

    for k in range(7):
        write(tmp_path / f"00{k}-lr=1-seed{k}" / "summary.json",
              json.dumps({"status": "failed" if k else "completed", "error": f"E{k}"}))
    assert failures(tmp_path) == [f"failed: 00{k}-lr=1-seed{k}: E{k}" for k in range(1, 6)] + [
        "... and 1 more", "6 run(s) failed; see results.csv"]
    # a run --resume went on from, kept interrupted as its worker died: said apart
    write(tmp_path / "007-lr=1-seed7" / "summary.json", json.dumps({"status": "interrupted"}))
    assert failures(tmp_path, most=1) == [
        "failed: 001-lr=1-seed1: E1", "... and 5 more", "6 run(s) failed; see results.csv",
        f"1 run(s) did not finish and are kept interrupted; the same command with --resume "
        f"{tmp_path} goes on from their checkpoints"]


def test_interrupt_then_resume(tmp_path):
    config = write(tmp_path / "slow.yaml", (CONFIGS / "digits.yaml").read_text())
    args = [sys.executable, "-m", "nntrain", "compare", str(config), "optimizer.lr=0.01,0.02,0.03",
            "train.epochs=40", "--seeds", "2", "--workers", "1"]
    folder = tmp_path / "c"
    proc = subprocess.Popen(args + ["--out", str(folder)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        done = [p for p in folder.glob("0*") if (p / "summary.json").exists()] if folder.exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    finished = {p.name: (p / "metrics.csv").stat().st_mtime_ns for p in folder.glob("0*")
                if json.loads((p / "summary.json").read_text())["status"] == "completed"}
    assert 2 <= len(finished) < 6
    rows = read(folder / "results.csv")
    assert len([r for r in rows if r["status"] == "completed"]) == len(finished)
    assert {r["status"] for r in rows} <= {"completed", "interrupted"}
    assert not list(folder.glob(".*partial"))  # no half-written run folder

    resumed = subprocess.run(args + ["--resume", str(folder)], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rows = read(folder / "results.csv")
    assert len(rows) == 6 and all(r["status"] == "completed" for r in rows)
    for name, mtime in finished.items():  # the runs finished before are untouched
        assert (folder / name / "metrics.csv").stat().st_mtime_ns == mtime

    mismatch = subprocess.run(args[:5] + ["optimizer.lr=0.5,0.6", "--resume", str(folder)],
                              cwd=tmp_path, capture_output=True, text=True)
    assert mismatch.returncode == 2, mismatch.stderr
    assert ("not the sweep saved there (axes.optimizer.lr: saved [0.01, 0.02, 0.03], given "
            "[0.5, 0.6]): give the command that made it") in mismatch.stderr  # the first that differs


def test_shell_sweep_then_report(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "sweep"), "EPOCHS": "5", "LRS": "0.1 1.0",
           "ACTIVATIONS": "tanh relu", "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(ROOT / "examples" / "sweep.sh")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = read(tmp_path / "sweep" / "report.csv")
    assert len(rows) == 4
    assert {(r["optimizer.lr"], r["model.activation"]) for r in rows} == {
        ("0.1", "tanh"), ("0.1", "relu"), ("1.0", "tanh"), ("1.0", "relu")}
    assert all(r["status"] == "completed" and r["epochs"] == "5" for r in rows)
    losses = [float(r["final_val_loss"]) for r in rows]
    assert losses == sorted(losses)  # --sort final_val_loss
    again = subprocess.run(["bash", str(ROOT / "examples" / "sweep.sh")], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and len(read(tmp_path / "sweep" / "report.csv")) == 4


def test_report_marks_killed_runs_incomplete(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "nntrain", "train", str(CONFIGS / "xor.yaml"),
                             "train.epochs=100000000", "--out", str(tmp_path / "k"), "--quiet"],
                            cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / "k" / "metrics.csv").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    running = run_nntrain("report", tmp_path / "k", cwd=tmp_path)
    assert read_rows_text(running.stdout)[0]["status"] == "running"
    proc.kill()
    proc.wait()
    dead = run_nntrain("report", tmp_path / "k", cwd=tmp_path)
    row = read_rows_text(dead.stdout)[0]
    assert row["status"] == "incomplete" and float(row["final_loss"]) > 0  # the last finished epoch


def read_rows_text(text):
    return list(csv.DictReader(text.splitlines()))


def test_dask_scheduler_at_an_address(cli, tmp_path):
    """A real scheduler and worker on loopback, as on a cluster; only the driver writes files."""
    scheduler_file = tmp_path / "scheduler.json"
    common = dict(cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                                  "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(scheduler_file)], **common)
    worker = None
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                   "--nthreads", "1", "--no-dashboard"], **common)
        result = cli("compare", CONFIGS / "xor.yaml", "--initializers", "zeros,he_normal",
                     "--seeds", "2", "--executor", "dask", "--address", address,
                     "--out", tmp_path / "c")
        assert result.exit_code == 0, result.stderr
        rows = read(tmp_path / "c" / "results.csv")
        assert [r["status"] for r in rows] == ["completed"] * 4
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


def test_unreachable_scheduler_leaves_nothing(tmp_path):
    with pytest.raises(ConfigError, match="cannot reach the scheduler"):
        compare(CONFIGS / "xor.yaml", executor="dask", address="tcp://127.0.0.1:9",
                out=tmp_path / "c", connect_timeout=1)
    assert not (tmp_path / "c").exists()
