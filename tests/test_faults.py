"""Nothing lost, nothing orphaned, nothing hangs: races on --out, killed and terminated sweeps,
a compare's pool worker killed, SIGTERM, a full disk, Ctrl-C of compare, a port that is not a
Dask scheduler, and Dask workers that do not share the driver's folder. The race and orphan
tests use real processes."""

import csv
import errno
import http.server
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import CONFIGS, write
from nntrain.compare import PoolWatch, collect, compare
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
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = start_compare(tmp_path, tmp_path / "c", epochs=100000, extra_env={"TMPDIR": str(scratch)})
    assert wait_until(lambda: len(pool_workers(proc.pid)) == 2)
    family = children(proc.pid)  # the workers and multiprocessing's resource tracker
    time.sleep(1.0)  # the workers are training
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert wait_until(lambda: not any(alive(pid) for pid in family), timeout=15), [
        pid for pid in family if alive(pid)]
    # the workers' folders and, SIGKILL or not, the folder compare made for them
    assert wait_until(lambda: list(scratch.iterdir()) == [], timeout=5), list(scratch.rglob("*"))


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
    # one line says where the finished runs are and how to go on
    assert f"the runs finished so far are in {folder}; --resume {folder} goes on" in stderr
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
                            text=True, env={**os.environ, "TMPDIR": str(scratch),
                                            "PYTHONFAULTHANDLER": "1"})  # see ended_or_dumped


def ended_or_dumped(proc, timeout: float) -> str:
    """proc's stderr once it ended; if it hangs, the test fails with the stacks of its threads
    (faulthandler prints them on SIGABRT)."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        raise AssertionError(f"hangs:\n{proc.communicate(timeout=30)[1][-8000:]}") from None


def epochs_written(scratch, pid: int) -> int:
    """The lines in the metrics.csv of the run (or first member) pool worker ``pid`` trains."""
    for path in scratch.glob(f"nntrain-pool-*/worker-{pid}-*/nntrain-*/run*/metrics.csv"):
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
    stderr = ended_or_dumped(proc, timeout=120)
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


class Queue(list):  # STARTED as the driver reads it
    def empty(self):
        return not self

    def get(self):
        return self.pop(0)


class Handed:
    """imap_unordered's iterator as collect reads it: each next() gives the next batch of
    results, or raises the next TimeoutError (nothing ready yet); StopIteration once empty."""

    def __init__(self, *steps):
        self.steps = list(steps)

    def next(self, timeout=None):
        if not self.steps:
            raise StopIteration
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


def a_dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # gone and reaped
    return dead.pid


def grid(n: int) -> list[dict]:
    return [{"index": i, "dir": f"00{i}-base-seed{i}"} for i in range(n)]


def done_result(point: dict) -> dict:
    return {"index": point["index"], "dir": point["dir"], "error": None, "files": {},
            "summary": {"status": "completed"}}


def failed_result(point: dict, error: str) -> dict:
    return {"index": point["index"], "dir": point["dir"], "error": error, "files": {},
            "summary": {"status": "failed", "error": error}}


def died(pid: int) -> str:
    return f"its worker (pid {pid}) died before the run finished"


def test_the_watch_fails_a_dead_workers_unfinished_points_and_removes_its_folder(tmp_path):
    dead, live = a_dead_pid(), os.getpid()
    pool, other = tmp_path / "nntrain-pool-a", tmp_path / "nntrain-pool-b"  # b: another compare's
    for folder in (pool / f"worker-{dead}-x", pool / f"worker-{live}-x", other / f"worker-{dead}-x"):
        write(folder / "nntrain-y" / "run" / "metrics.csv", "epoch\n")
    points = grid(4)
    watch = PoolWatch(Queue([("hello", dead, str(pool / f"worker-{dead}-x")),
                             ("hello", live, str(pool / f"worker-{live}-x")),
                             ("started", dead, [0, 1]), ("started", live, [2])]),
                      [points[:2], points[2:3], points[3:]], 2, pool)
    watch.finish(0)  # its result came before the worker died
    assert watch.lost() == []  # not yet: a result sent just before may still be on its way
    assert not (pool / f"worker-{dead}-x").exists()
    time.sleep(PoolWatch.GRACE)
    assert watch.lost() == [failed_result(points[1], died(dead))]
    assert watch.in_flight() == [points[1], points[2]]  # point 3 was never started
    assert (pool / f"worker-{live}-x").exists()  # a live worker's stays
    assert (other / f"worker-{dead}-x").exists()  # and another compare's, whatever its pid


def test_results_at_hand_are_never_taken_for_lost_however_long_storing_takes(tmp_path):
    """Point 1's worker sent its result and died; the driver saw it gone long ago (GRACE) and
    stores point 0 slowly: point 1's result, already at hand, is its outcome, not a failure."""
    dead, live = a_dead_pid(), os.getpid()
    points = grid(3)
    watch = PoolWatch(Queue([("hello", dead, str(tmp_path / "w1")), ("hello", live, str(tmp_path / "w2")),
                             ("started", live, [0]), ("started", dead, [1]), ("started", live, [2])]),
                      [[p] for p in points], 2, tmp_path)
    assert watch.lost() == []  # the dead worker is seen gone now
    time.sleep(PoolWatch.GRACE)
    stored = []

    def on_result(result):
        stored.append(result)
        time.sleep(PoolWatch.GRACE)  # a slow disk

    handed = Handed([done_result(points[0])], [done_result(points[1])],
                    multiprocessing.TimeoutError(), [done_result(points[2])])
    assert collect(handed, watch, on_result) is False
    assert stored == [done_result(p) for p in points]


def test_a_result_that_comes_after_its_point_was_failed_is_stored_over_the_failure(tmp_path):
    dead, live = a_dead_pid(), os.getpid()
    points = grid(2)
    watch = PoolWatch(Queue([("hello", dead, str(tmp_path / "w1")), ("hello", live, str(tmp_path / "w2")),
                             ("started", dead, [0]), ("started", live, [1])]),
                      [[p] for p in points], 2, tmp_path)
    assert watch.lost() == []
    time.sleep(PoolWatch.GRACE)
    stored = []
    handed = Handed(multiprocessing.TimeoutError(),  # point 0 is taken for lost
                    [done_result(points[1])], multiprocessing.TimeoutError(),  # all accounted for
                    [done_result(points[0])], multiprocessing.TimeoutError())  # a last look: late
    with pytest.warns(UserWarning, match=r"1 run\(s\) recorded failed: its worker \(pid"):
        assert collect(handed, watch, stored.append) is True  # said when it is found
    assert stored == [failed_result(points[0], died(dead)), done_result(points[1]),
                      done_result(points[0])]


def test_a_late_result_corrects_the_sweeps_failed_count(tmp_path, monkeypatch):
    """run_sweep counts the last outcome of each point: a run first recorded lost then
    stored whole is completed, and compare reports no failure."""
    from nntrain import compare as compare_module

    def run_local(tasks, workers, on_result, on_stopped, meanwhile, check):
        meanwhile()
        for task in tasks:
            for result in compare_module.execute_task(task):
                on_result(failed_result(result, died(1234)))
                on_result(result)

    monkeypatch.setattr(compare_module, "run_local", run_local)
    folder, _, failed = compare(CONFIGS / "xor.yaml", ["train.epochs=5"], seeds="2",
                                out=tmp_path / "c")
    assert failed == 0
    assert [r["status"] for r in read(folder / "results.csv")] == ["completed"] * 2
    assert all(json.loads((folder / r["run"] / "summary.json").read_text())["status"]
               == "completed" for r in read(folder / "results.csv"))


def test_a_new_worker_with_a_dead_workers_pid_keeps_its_points(tmp_path):
    """A pid said hello again: the worker that had it is gone (its points lost after GRACE,
    its folder removed); the new one's points and folder are its own."""
    pid = os.getpid()
    old, new = tmp_path / f"worker-{pid}-a", tmp_path / f"worker-{pid}-b"
    old.mkdir()
    new.mkdir()
    points = grid(2)
    watch = PoolWatch(Queue([("hello", pid, str(old)), ("started", pid, [0]),
                             ("hello", pid, str(new)), ("started", pid, [1])]),
                      [[p] for p in points], 1, tmp_path)
    assert watch.lost() == []
    assert not old.exists() and new.exists()
    time.sleep(PoolWatch.GRACE)
    assert watch.lost() == [failed_result(points[0], died(pid))]
    assert watch.in_flight() == points  # point 1 is the new worker's, running


def test_points_taken_by_a_worker_that_died_before_saying_so_fail_once_all_is_quiet(
        tmp_path, monkeypatch):
    """A worker killed between taking its task and announcing it: the pool waits for ever;
    once every worker is alive and idle and nothing came for STALL seconds, the points never
    started are failed runs. Not while a worker is still to say hello, nor while one runs."""
    monkeypatch.setattr(PoolWatch, "STALL", 0.3)
    dead, live = a_dead_pid(), os.getpid()
    points = grid(3)
    started = Queue([("hello", dead, str(tmp_path / "w1")), ("started", dead, [0])])
    watch = PoolWatch(started, [[p] for p in points], 1, tmp_path)
    assert watch.lost() == []  # its death is news
    time.sleep(max(PoolWatch.GRACE, PoolWatch.STALL))
    assert watch.lost() == [failed_result(points[0], died(dead))]  # no worker yet to take 1, 2
    watch.finish(0)
    started += [("hello", live, str(tmp_path / "w2")), ("started", live, [1])]
    assert watch.lost() == []
    time.sleep(PoolWatch.STALL)
    assert watch.lost() == []  # the new worker runs point 1
    watch.finish(1)
    assert watch.lost() == []  # point 1's result is news
    time.sleep(PoolWatch.STALL)
    error = "its worker died as it took the run (none held it and nothing came for 0.3 s)"
    assert watch.lost() == [failed_result(points[2], error)]


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


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc's thread status")
def test_a_workers_parent_watcher_leaves_its_signals_to_the_main_thread():
    """pool.terminate's SIGTERM must reach the worker's main thread: delivered to the watcher
    thread instead, it would not interrupt the main thread's write of a result nobody reads
    any more, and the worker and the driver joining it would wait for ever (seen once under
    load). The watcher thread blocks SIGINT and SIGTERM, so the kernel picks the main one."""
    from nntrain.compare import watch_parent

    thread = threading.Thread(target=watch_parent, args=(os.getppid(), 0.05), daemon=True)
    thread.start()
    assert wait_until(lambda: thread.native_id is not None)
    time.sleep(0.2)  # the thread has blocked them before its first sleep
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    blocked = int(next(line for line in status.splitlines() if line.startswith("SigBlk:"))
                  .split()[1], 16)
    assert blocked & (1 << (signal.SIGINT - 1)) and blocked & (1 << (signal.SIGTERM - 1))


def test_a_worker_whose_sigterm_exception_was_dropped_still_ends(tmp_path):
    """Python drops an exception raised while a finalizer runs (seen under load: pool.terminate's
    SIGTERM landed in an import lock's weakref callback, the worker went on to send its result
    to a pipe nobody read, and compare's Ctrl-C hung). The worker's watcher ends it anyway,
    with its folder removed and no 'Exception ignored' printed."""
    code = f"""
import os, time
from nntrain import compare

class Hello:
    def put(self, message):
        print(message[2], flush=True)

class Slow:
    def __del__(self):
        print("finalizing", flush=True)
        time.sleep(60)  # SIGTERM's WorkerStopped is raised here, and dropped

compare.pool_worker(Hello(), os.getppid(), {str(tmp_path)!r})
Slow()
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    folder = Path(proc.stdout.readline().strip())
    assert folder.parent == tmp_path and folder.is_dir()
    assert proc.stdout.readline().strip() == "finalizing"
    started = time.time()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM and time.time() - started < 10
    assert not folder.exists()
    assert "WorkerStopped" not in stderr and "Traceback" not in stderr, stderr


def test_a_sweeps_stop_dropped_in_a_finalizer_is_raised_again_while_the_driver_waits(
        tmp_path, monkeypatch):
    """compare's driver raises Ctrl-C and SIGTERM from its handler; Python drops that exception
    when it is raised while a finalizer runs. The driver's wait calls check(), which raises
    the stop again, and collect ends with it."""
    from nntrain.signals import StopRequests, Terminated

    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_value))

    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGTERM)  # its Terminated is raised here, and dropped

    points = grid(2)
    watch = PoolWatch(Queue([("hello", os.getpid(), str(tmp_path / "w")), ("started", os.getpid(), [0, 1])]),
                      [points], 1, tmp_path)
    with StopRequests(graceful=False) as stop:
        Finalized()
        assert [type(err) for err in dropped] == [Terminated]
        handed = Handed(multiprocessing.TimeoutError(), multiprocessing.TimeoutError())
        with pytest.raises(Terminated):
            collect(handed, watch, lambda result: None, stop.check)
    assert len(handed.steps) == 2  # raised before it waited
