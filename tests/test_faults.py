"""Nothing lost, nothing orphaned, nothing hangs: races on --out, killed and terminated sweeps,
a compare's pool worker killed, SIGTERM, a full disk, Ctrl-C of compare, a port that is not a
Dask scheduler, and Dask workers that do not share the driver's folder. The race and orphan
tests use real processes."""

import csv
import errno
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import CONFIGS, write
from nntrain.compare import PoolWatch, compare
from nntrain.registry import ConfigError
from nntrain.runs import CLAIM, CsvLog

pytestmark = pytest.mark.slow

NNTRAIN = [sys.executable, "-m", "nntrain"]


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def wait_until(condition, timeout=60.0, every=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(")")[-1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


# -- 1. --out is claimed by one process only ---------------------------------------------


def test_runs_racing_for_one_out_folder_get_it_once(tmp_path):
    out = tmp_path / "shared"
    procs = [subprocess.Popen(NNTRAIN + ["train", str(CONFIGS / "xor.yaml"), "train.epochs=20",
                                         "--out", str(out), "--quiet"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2, 2, 2], results
    for code, stderr in results:
        if code == 2:
            assert f"--out {out}" in stderr and stderr.count("\n") == 1
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
    assert len(read(out / "metrics.csv")) == 21


def test_an_existing_empty_folder_is_claimed_with_a_marker(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    assert cli("train", CONFIGS / "xor.yaml", "train.epochs=2", "--out", tmp_path / "empty",
               "--quiet").exit_code == 0
    assert (tmp_path / "empty" / CLAIM).exists()
    again = cli("train", CONFIGS / "xor.yaml", "train.epochs=2", "--out", tmp_path / "empty")
    assert again.exit_code == 2 and "not an empty folder" in again.stderr


# -- 2, 5. killed, terminated and interrupted sweeps -------------------------------------------


def start_compare(tmp_path, folder, workers=2, epochs=400, extra_env=None):
    config = write(tmp_path / "slow.yaml", (CONFIGS / "digits.yaml").read_text())
    env = {**os.environ, **(extra_env or {})}
    return subprocess.Popen(NNTRAIN + ["compare", str(config), "optimizer.lr=0.01,0.02,0.03",
                                       f"train.epochs={epochs}", "--seeds", "2",
                                       "--workers", str(workers), "--out", str(folder)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def pool_workers(driver: int) -> list[int]:
    """The driver's pool workers (spawned interpreters running multiprocessing's main)."""
    found = []
    for pid in children(driver):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            found.append(pid)
    return found


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_end_when_compare_is_killed(tmp_path, sig):
    proc = start_compare(tmp_path, tmp_path / "c", epochs=100000)
    assert wait_until(lambda: len(pool_workers(proc.pid)) == 2)
    family = children(proc.pid)  # the workers and multiprocessing's resource tracker
    time.sleep(1.0)  # the workers are training
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert wait_until(lambda: not any(alive(pid) for pid in family), timeout=15), [
        pid for pid in family if alive(pid)]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stopping_compare_records_runs_in_flight_and_resume_redoes_them(tmp_path, sig, code):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    folder = tmp_path / "c"
    proc = start_compare(tmp_path, folder, workers=2, epochs=40, extra_env={"TMPDIR": str(scratch)})
    assert wait_until(lambda: len(list(folder.glob("0*/summary.json"))) >= 1, timeout=120)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and "KeyError" not in stderr
    rows = read(folder / "results.csv")
    statuses = [r["status"] for r in rows]
    assert "completed" in statuses and "interrupted" in statuses, statuses
    assert "failed" not in statuses
    assert len(read(folder / "summary.csv")) >= 1
    assert list(scratch.iterdir()) == []  # no run's temporary folder is left behind

    resumed = subprocess.run(NNTRAIN + ["compare", str(tmp_path / "slow.yaml"),
                                        "optimizer.lr=0.01,0.02,0.03", "train.epochs=40",
                                        "--seeds", "2", "--workers", "2", "--resume", str(folder)],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "TMPDIR": str(scratch)})
    assert resumed.returncode == 0, resumed.stderr
    assert [r["status"] for r in read(folder / "results.csv")] == ["completed"] * 6
    assert list(scratch.iterdir()) == []  # the workers' folders go when they end normally too


def test_stopping_compare_before_any_run_finishes(tmp_path):
    folder = tmp_path / "c"
    proc = start_compare(tmp_path, folder, workers=1, epochs=100000)
    assert wait_until(lambda: len(pool_workers(proc.pid)) == 1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "KeyError" not in stderr and "Traceback" not in stderr
    assert [r["status"] for r in read(folder / "results.csv")] == ["interrupted"]


def start_xor_compare(tmp_path, scratch, epochs, *flags):
    return subprocess.Popen(NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), f"train.epochs={epochs}",
                                       "--workers", "2", "--out", str(tmp_path / "c"), "-v",
                                       *flags],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TMPDIR": str(scratch)})


def epochs_written(scratch, pid: int) -> int:
    """The lines in the metrics.csv of the run (or first member) pool worker ``pid`` trains."""
    for path in scratch.glob(f"nntrain-worker-{pid}-*/nntrain-*/run*/metrics.csv"):
        try:
            return path.read_bytes().count(b"\n")
        except OSError:  # that run has just ended
            return 0
    return 0


def kill_a_worker_in_flight(proc, scratch, epochs: int) -> int:
    """SIGKILL a pool worker in the first half of its run (or stack), far from its result;
    returns its pid."""
    deadline = time.time() + 60
    while time.time() < deadline:
        for pid in pool_workers(proc.pid):
            if 0 < epochs_written(scratch, pid) < epochs // 2:
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.05)
    raise AssertionError("no worker was seen training")


def after_a_worker_died(tmp_path, proc, pid) -> tuple[dict, str]:
    """compare ends on its own with exit 1, as for any failed run, without a traceback; the
    dead worker's runs failed with the error. Returns each run's status, and stderr."""
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr and "run(s) failed; see results.csv" in stderr, stderr
    statuses = {}
    for row in read(tmp_path / "c" / "results.csv"):
        statuses[row["run"]] = row["status"]
        summary = json.loads((tmp_path / "c" / row["run"] / "summary.json").read_text())
        if row["status"] == "failed":
            assert summary["error"] == f"its worker (pid {pid}) died before the run finished"
    return statuses, stderr


def test_a_worker_killed_in_a_stack_fails_its_members_and_the_sweep_ends(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = start_xor_compare(tmp_path, scratch, 30000, "--seeds", "8")
    pid = kill_a_worker_in_flight(proc, scratch, 30000)
    statuses, stderr = after_a_worker_died(tmp_path, proc, pid)
    assert "stacked: 8 of 8 runs, in 1 group" in stderr
    assert sorted(statuses.values()) == ["completed"] * 4 + ["failed"] * 4, statuses
    assert list(scratch.iterdir()) == []  # the dead worker's folder too


def test_a_worker_killed_in_a_lone_run_fails_that_run_and_the_others_go_on(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = start_xor_compare(tmp_path, scratch, 15000, "--seeds", "4", "--no-stack")
    pid = kill_a_worker_in_flight(proc, scratch, 15000)
    statuses, _ = after_a_worker_died(tmp_path, proc, pid)
    assert sorted(statuses.values()) == ["completed"] * 3 + ["failed"], statuses
    assert list(scratch.iterdir()) == []

    done = {run: (tmp_path / "c" / run / "summary.json").read_bytes()
            for run, status in statuses.items() if status == "completed"}
    resumed = subprocess.run(NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), "train.epochs=15000",
                                        "--seeds", "4", "--resume", str(tmp_path / "c")],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "TMPDIR": str(scratch)})
    assert resumed.returncode == 0, resumed.stderr  # the failed run again, and only it
    assert [r["status"] for r in read(tmp_path / "c" / "results.csv")] == ["completed"] * 4
    assert {run: (tmp_path / "c" / run / "summary.json").read_bytes() for run in done} == done
    assert list(scratch.iterdir()) == []


def test_the_watch_fails_a_dead_workers_unfinished_points_and_removes_its_folder(tmp_path,
                                                                                  monkeypatch):
    class Queue(list):  # STARTED as the driver reads it
        def empty(self):
            return not self

        def get(self):
            return self.pop(0)

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # gone and reaped
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for pid in (dead.pid, os.getpid()):
        write(tmp_path / f"nntrain-worker-{pid}-x" / "nntrain-y" / "run" / "metrics.csv", "epoch\n")
    points = [{"index": i, "dir": f"00{i}-base-seed{i}"} for i in range(4)]
    watch = PoolWatch(Queue([([], dead.pid), ([], os.getpid()), ([0, 1], dead.pid),
                             ([2], os.getpid())]), [points[:2], points[2:3], points[3:]])
    watch.finish(0)  # its result came before the worker died
    assert watch.lost() == []  # not yet: a result sent just before may still be on its way
    assert not (tmp_path / f"nntrain-worker-{dead.pid}-x").exists()
    time.sleep(PoolWatch.GRACE)
    error = f"its worker (pid {dead.pid}) died before the run finished"
    assert watch.lost() == [{"index": 1, "dir": "001-base-seed1", "error": error, "files": {},
                             "summary": {"status": "failed", "error": error}}]
    assert watch.in_flight() == [points[1], points[2]]  # point 3 was never started
    assert (tmp_path / f"nntrain-worker-{os.getpid()}-x").exists()  # a live worker's stays


# -- 3. SIGTERM of a run ------------------------------------------------------------------------


def test_sigterm_ends_a_run_like_ctrl_c_with_exit_143(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(NNTRAIN + ["train", str(CONFIGS / "xor.yaml"), "train.epochs=100000000",
                                       "--out", str(out), "--quiet"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_until(lambda: (out / "metrics.csv").exists()
                      and len((out / "metrics.csv").read_text().splitlines()) > 50)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM"
    assert (out / "model.npz").exists()
    assert summary["epochs"] == len(read(out / "metrics.csv")) - 1


# -- 4. a full disk -----------------------------------------------------------------------------


def test_a_full_disk_is_one_line_exit_1_and_a_failed_status(cli, tmp_path, monkeypatch):
    real_write = CsvLog.write
    rows = {"n": 0}

    class FullDisk:  # the file object of metrics.csv once the disk is full
        def __init__(self, file):
            self.file = file

        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self):
            pass

        def close(self):
            self.file.close()

    def write_until_full(self, row):
        rows["n"] += 1
        if rows["n"] > 5 and self.path.name == "metrics.csv" and not isinstance(self.file, FullDisk):
            self.file = FullDisk(self.file)
        real_write(self, row)

    monkeypatch.setattr(CsvLog, "write", write_until_full)
    result = cli("train", CONFIGS / "xor.yaml", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert result.stderr == (f"error: no space left on device while writing "
                             f"{tmp_path / 'run' / 'metrics.csv'}\n")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert (tmp_path / "run" / "model.npz").exists()


# -- 6. a port that answers but is not a scheduler ----------------------------------------------


def test_a_port_that_is_not_a_dask_scheduler_fails_within_the_timeout(tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        start = time.time()
        with pytest.raises(ConfigError, match="cannot reach the scheduler"):
            compare(CONFIGS / "xor.yaml", executor="dask", connect_timeout=2,
                    address=f"tcp://127.0.0.1:{server.server_address[1]}", out=tmp_path / "c")
        assert time.time() - start < 20
    finally:
        server.shutdown()
    assert not (tmp_path / "c").exists()


# -- 14. Dask workers in another folder, data given by a relative path ---------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_workers_need_no_shared_folder_for_csv_data(tmp_path):
    rows = ["x1,x2,label"] + [f"{i % 7 / 7},{i % 5 / 5},{'inside' if i % 3 else 'outside'}"
                               for i in range(60)]
    write(tmp_path / "driver" / "points.csv", "\n".join(rows) + "\n")
    config = write(tmp_path / "driver" / "c.yaml",
                   "data: {name: csv, path: points.csv, target: label}\n"
                   "model: {layers: [2, 4, 1]}\ntrain: {epochs: 5}\n")
    elsewhere = tmp_path / "worker"
    elsewhere.mkdir()
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                                  "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                 cwd=elsewhere, **quiet)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                               "--nthreads", "1", "--no-dashboard"], cwd=elsewhere, **quiet)
    try:
        result = subprocess.run(NNTRAIN + ["compare", str(config), "--seeds", "2", "--executor",
                                           "dask", "--address", address, "--out", "c"],
                                cwd=tmp_path / "driver", capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        rows = read(tmp_path / "driver" / "c" / "results.csv")
        assert [r["status"] for r in rows] == ["completed", "completed"]
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
            proc.wait(timeout=30)


def test_a_plugin_exiting_inside_a_sweep_is_a_failed_run_not_a_hang(tmp_path):
    write(tmp_path / "parts.py", '''
import sys
import numpy as np
from nntrain.activations import ACTIVATIONS, Activation

@ACTIVATIONS.register("quitter")
class Quitter(Activation):
    """a = z; exits when used."""
    def forward(self, z, out=None):
        sys.exit(0)
    def backward(self, da):
        return da
''')
    config = write(tmp_path / "c.yaml", "data: {name: xor}\nmodel: {layers: [2, 4, 1]}\n"
                   "train: {epochs: 5}\nplugins: [parts.py]\n")
    result = subprocess.run(NNTRAIN + ["compare", str(config), "model.activation=tanh,quitter",
                                       "--workers", "2", "--out", str(tmp_path / "c")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    rows = read(tmp_path / "c" / "results.csv")
    assert [r["status"] for r in rows] == ["completed", "failed"]
    summary = json.loads((tmp_path / "c" / rows[1]["run"] / "summary.json").read_text())
    assert "SystemExit(0)" in summary["error"] and "parts.py" in summary["error"]
