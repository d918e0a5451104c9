"""Nothing lost, nothing orphaned, nothing hangs: races on --out, killed and terminated sweeps,
a compare's pool worker killed, SIGTERM, a full disk, Ctrl-C of compare, a port that is not a
Dask scheduler, and Dask workers that do not share the driver's folder. The race and orphan
tests use real processes."""

import contextlib
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
from nntrain.compare import compare
from nntrain.pool import run_local
from nntrain.registry import ConfigError
from nntrain.runs import CLAIM, socket_host

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
    """The driver's pool workers (fresh interpreters running pool.worker_main)."""
    found = []
    for pid in children(driver):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"nntrain.pool import worker_main" in cmdline:
            found.append(pid)
    return found


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_end_when_compare_is_killed(tmp_path, sig):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = start_compare(tmp_path, tmp_path / "c", epochs=100000, extra_env={"TMPDIR": str(scratch)})
    assert wait_until(lambda: len(pool_workers(proc.pid)) == 2)
    family = children(proc.pid)  # the workers
    time.sleep(1.0)  # the workers are training
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert wait_until(lambda: not any(alive(pid) for pid in family), timeout=15), [
        pid for pid in family if alive(pid)]
    # the workers' folders and, SIGKILL or not, the folder compare made for them; and what
    # they had trained in the compare folder
    assert wait_until(lambda: list(scratch.iterdir()) == [], timeout=5), list(scratch.rglob("*"))
    assert list((tmp_path / "c").glob(".*.partial")) == []


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stopping_compare_keeps_runs_in_flight_and_resume_goes_on_from_them(tmp_path, sig, code):
    """Ctrl-C or SIGTERM: the runs in flight stop after their epoch, as a lone run's first
    Ctrl-C stops it, and are kept interrupted with every finished epoch; --resume goes on from
    their checkpoints, keeping those rows, and finishes the grid."""
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
    assert (f"the runs finished so far are in {folder}; the same command with --resume {folder} "
            "goes on") in stderr
    rows = read(folder / "results.csv")
    statuses = [r["status"] for r in rows]
    assert "completed" in statuses and "interrupted" in statuses, statuses
    assert "failed" not in statuses
    variants = read(folder / "summary.csv")
    assert sum(int(v["interrupted"]) for v in variants) == statuses.count("interrupted")
    kept = {}
    for row in rows:
        if row["status"] == "interrupted":
            run = folder / row["run"]
            summary = json.loads((run / "summary.json").read_text())
            assert summary["signal"] == sig.name and (run / "checkpoint.npz").is_file()
            kept[run] = (run / "metrics.csv").read_text().splitlines()
            assert len(kept[run]) == 1 + int(row["epochs"]) + 1  # epoch 0 to the last finished
    assert list(scratch.iterdir()) == []  # no run's temporary folder is left behind

    resumed = subprocess.run(NNTRAIN + ["compare", str(tmp_path / "slow.yaml"),
                                        "optimizer.lr=0.01,0.02,0.03", "train.epochs=40",
                                        "--seeds", "2", "--workers", "2", "--resume", str(folder)],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "TMPDIR": str(scratch)})
    assert resumed.returncode == 0, resumed.stderr
    assert [r["status"] for r in read(folder / "results.csv")] == ["completed"] * 6
    for run, lines in kept.items():  # gone on from them: the rows before the stop kept
        assert (run / "metrics.csv").read_text().splitlines()[:len(lines)] == lines
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


def epochs_written(folder, pid: int) -> int:
    """The lines in the metrics.csv of a run (or member) pool worker ``pid`` trains in the
    compare folder (its hidden .DIR.partial; the summary there names its process)."""
    for run in folder.glob(".*.partial"):
        try:
            if json.loads((run / "summary.json").read_text()).get("pid") == pid:
                return (run / "metrics.csv").read_bytes().count(b"\n")
        except (OSError, ValueError):  # not begun yet, or has just ended
            continue
    return 0


def kill_a_worker_in_flight(proc, folder, epochs: int) -> int:
    """SIGKILL a pool worker in the first half of its run (or stack), far from its result;
    returns its pid."""
    deadline = time.time() + 60
    while time.time() < deadline:
        for pid in pool_workers(proc.pid):
            if 0 < epochs_written(folder, pid) < epochs // 2:
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
    assert list((tmp_path / "c").glob(".*")) == [tmp_path / "c" / ".nntrain-claim"]  # no .partial
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
    pid = kill_a_worker_in_flight(proc, tmp_path / "c", 30000)
    statuses, stderr = after_a_worker_died(tmp_path, proc, pid)
    assert ("stacked: 8 of 8 runs, in 1 group of one computation's shape, trained as 2 stacks "
            "of 4 members") in stderr
    assert sorted(statuses.values()) == ["completed"] * 4 + ["failed"] * 4, statuses
    assert list(scratch.iterdir()) == []  # the dead worker's folder too


def test_a_worker_killed_in_a_lone_run_fails_that_run_and_the_others_go_on(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = start_xor_compare(tmp_path, scratch, 15000, "--seeds", "4", "--no-stack")
    pid = kill_a_worker_in_flight(proc, tmp_path / "c", 15000)
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


def test_a_worker_killed_before_it_takes_its_run_leaves_it_to_another(tmp_path):
    """SIGKILL of a worker while it is still importing (its task waits in its pipe): the run
    had not begun, so a new worker trains it, and compare ends with every run completed."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = start_xor_compare(tmp_path, scratch, 300, "--seeds", "4", "--no-stack")
    assert wait_until(lambda: pool_workers(proc.pid), every=0.005)
    pid = pool_workers(proc.pid)[0]
    os.kill(pid, signal.SIGKILL)
    stderr = ended_or_dumped(proc, timeout=120)
    assert proc.returncode == 0, stderr
    assert f"warning: a worker (pid {pid}) died before it took its run(s); another takes them" \
        in stderr
    assert [r["status"] for r in read(tmp_path / "c" / "results.csv")] == ["completed"] * 4
    assert list(scratch.iterdir()) == []


def test_workers_that_die_as_they_start_fail_the_sweep_once_not_one_process_per_run(
        tmp_path, monkeypatch):
    """Workers that cannot start (here every one exits at once): after two in a row
    died before taking a run, every run left fails with one reason, instead of a new process
    tried for each of them."""
    from nntrain import pool
    from nntrain.compare import execute_task

    monkeypatch.setattr(pool, "WORKER_COMMAND", "import os; os._exit(3)")
    started = []
    worker = pool.Worker
    monkeypatch.setattr(pool, "Worker", lambda *a: started.append(1) or worker(*a))
    points = [{"index": i, "dir": f"r{i}", "config": {}} for i in range(6)]
    results = []
    with pytest.warns(UserWarning) as said:
        pool.run_local(execute_task, [[p] for p in points], 2, results.append, results.append)
    assert any("die as they start" in str(w.message) for w in said)
    assert sorted(r["index"] for r in results) == list(range(6))
    assert {r["summary"]["status"] for r in results} == {"failed"}
    assert "exit code 3" in results[-1]["error"] and len(started) <= 3


def test_a_second_stop_while_the_first_is_handled_records_every_run_first(tmp_path):
    """Ctrl-C, then another while compare records the runs in hand and stops its workers: every
    run in hand is still recorded stopped, every worker has ended, and the second stop is
    raised once that is done."""
    from nntrain import compare as compare_module
    from nntrain.signals import StopRequests

    points = compare_module.validate(compare_module.make_sweep(
        CONFIGS / "xor.yaml", ["train.epochs=1000000"], None, "2", None), [])
    stopped = []

    def on_stopped(point):
        if not stopped:
            signal.raise_signal(signal.SIGINT)  # the second Ctrl-C, while the first is handled
        stopped.append(point)

    with StopRequests(graceful=False) as stop:
        with pytest.raises(KeyboardInterrupt) as raised:
            run_local(compare_module.execute_task, [[p] for p in points], 2, stopped.append,
                      on_stopped, meanwhile=lambda: signal.raise_signal(signal.SIGINT), stop=stop)
    # in the order their workers ended
    assert sorted(stopped, key=lambda point: point["index"]) == points
    assert raised.value.__context__ is not None  # the second, raised over the first
    assert pool_workers(os.getpid()) == []


def test_workers_share_no_lock_a_killed_one_could_keep(monkeypatch):
    """multiprocessing.Pool's workers wait for tasks on one locked queue: one killed while
    waiting kept the lock, and compare waited for ever. Each worker now has a pipe of its own:
    the pool makes no lock at all."""
    import multiprocessing.synchronize

    from nntrain import compare as compare_module

    made = []
    original = multiprocessing.synchronize.SemLock.__init__
    monkeypatch.setattr(multiprocessing.synchronize.SemLock, "__init__",
                        lambda self, *args, **kw: made.append(self) or original(self, *args, **kw))
    seen = []
    run_local(compare_module.execute_task, [[{"index": 0, "dir": "d", "config": {"bad": 1}}]],
              1, seen.append, seen.append)
    assert seen and seen[0]["summary"]["status"] == "failed"  # a config that does not load
    assert made == []


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


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names a descriptor's file by /proc")
def test_a_full_disk_is_one_line_exit_1_and_a_failed_status(cli, tmp_path, monkeypatch):
    import nntrain.runs

    real_write_all = nntrain.runs.write_all
    rows = {"n": 0}

    def write_until_full(fd, data):  # metrics.csv's disk fills up after five rows
        if os.readlink(f"/proc/self/fd/{fd}").endswith("metrics.csv"):
            rows["n"] += 1
            if rows["n"] > 6:  # the header, then five rows
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write_all(fd, data)

    monkeypatch.setattr(nntrain.runs, "write_all", write_until_full)
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
    import gc

    import distributed

    # the probe's client is closed, not left to close itself when collected, in whatever the
    # process does then (it once did so in a later sweep's, whose cluster's logging was quiet)
    assert all(client.status == "closed" for client in gc.get_objects()
               if isinstance(client, distributed.Client))


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
    """The driver's SIGTERM must reach the worker's main thread: delivered to the watcher
    thread instead, it would not interrupt the main thread's write of a result nobody reads
    any more, and the worker and the driver joining it would wait for ever (seen once under
    load). The watcher thread blocks SIGINT and SIGTERM, so the kernel picks the main one."""
    from nntrain.pool import watch_parent

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
from nntrain import pool

class Slow:
    def __del__(self):
        print("finalizing", flush=True)
        time.sleep(60)  # SIGTERM's WorkerStopped is raised here, and dropped

pool.setup_worker(os.getppid(), {str(tmp_path)!r})
print(pool.worker_folder(), flush=True)
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


def test_a_ctrl_c_dropped_while_the_command_starts_is_raised_as_the_run_begins(monkeypatch):
    """Python drops an exception raised while a finalizer or a weakref callback runs: a Ctrl-C
    at start-up landed in an import lock's callback (seen under load: the run trained on for
    ever). The start-up handler remembers it, and the run's StopRequests raises it again as it
    takes over, before the run begins; its own handlers are put back."""
    from nntrain import signals

    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_value))
    saved = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}
    try:
        for signum in saved:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT
                          else signal.SIG_DFL)
        signals.stop_early_on_signals()
        assert signal.getsignal(signal.SIGINT) is signals.stop_early

        class Finalized:
            def __del__(self):
                signal.raise_signal(signal.SIGINT)  # its KeyboardInterrupt is dropped here

        Finalized()
        assert [type(err) for err in dropped] == [KeyboardInterrupt]
        with pytest.raises(KeyboardInterrupt):
            with signals.StopRequests():
                pytest.fail("the run began")
        assert signal.getsignal(signal.SIGINT) is signals.stop_early  # put back
        with signals.StopRequests() as stop:  # raised once: the next run begins
            assert not stop.requested
    finally:
        signals.acted_on()
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_a_process_asked_to_stop_ends_its_runs_after_their_epoch(tmp_path, monkeypatch):
    """ask_to_stop (a sweep's worker, asked by its driver) stops the run in progress after its
    epoch, as a first Ctrl-C does: interrupted, that epoch checkpointed, resumable; a run
    begun afterwards stops after its epoch 0."""
    from nntrain import signals
    from nntrain.callbacks import Callback
    from nntrain.config import load_config
    from nntrain.loop import Interrupted, train
    from nntrain.resume import resume

    monkeypatch.setattr(signals, "ASKED", [])
    monkeypatch.setattr(signals, "RUNNING", [])

    class AskAt3(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 3:
                signals.ask_to_stop()

    cfg = load_config(CONFIGS / "xor.yaml", ["train.epochs=50"])
    with pytest.raises(Interrupted) as stopped:
        train(cfg, out=tmp_path / "a", callbacks=[AskAt3()])
    assert stopped.value.run.summary["status"] == "interrupted"
    # asked as epoch 3 ended: epoch 4 is the one in progress
    assert stopped.value.run.summary["epochs"] == 4 and stopped.value.signal == "SIGTERM"
    with pytest.raises(Interrupted) as begun_after:
        train(cfg, out=tmp_path / "b")
    assert begun_after.value.run.summary["epochs"] == 0
    monkeypatch.setattr(signals, "ASKED", [])
    assert resume(tmp_path / "a").summary["epochs"] == 50
    assert signals.RUNNING == []  # each run's StopRequests is gone once it ends


def test_a_stop_after_a_worker_sent_its_results_keeps_them_for_the_driver(tmp_path):
    """The driver's stop (SIGUSR1) may come after a worker sent its results and before the
    driver read them: the worker keeps the run folders they name (only the driver may remove
    them now) and waits for the driver's word; dismissed, it ends and they stay."""
    from nntrain import compare as compare_module
    from nntrain.pool import Worker, work_name

    point = compare_module.validate(compare_module.make_sweep(
        CONFIGS / "xor.yaml", ["train.epochs=20"], None, "1", None), [])[0]
    point["out"] = str(tmp_path / "run")
    worker = Worker(str(tmp_path), work_name(compare_module.execute_task))
    try:
        worker.give([point])
        assert worker.conn.recv() == ("took", None)
        assert worker.conn.poll(60)  # its results are sent, not read yet
        worker.stop(at_once=False)
        time.sleep(0.5)  # the stop has come
        assert worker.alive()
        results = worker.news()
        assert results[0]["summary"]["status"] == "completed"
        worker.give(None)
    finally:
        worker.end()
    assert worker.exitcode == 0 and (tmp_path / "run" / "metrics.csv").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # the worker's own folder is gone


@pytest.mark.parametrize("stack", [True, False])
def test_a_sigterm_to_the_whole_process_group_keeps_the_runs_in_flight(tmp_path, stack):
    """systemd (KillMode=control-group), Slurm's scancel and `kill -- -PGID` send SIGTERM to the
    driver and its workers at once: each worker's runs still stop after their epoch and are
    kept, interrupted and resumable (the driver's own stop, SIGUSR1, asks them again)."""
    folder = tmp_path / "c"
    proc = subprocess.Popen(NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), "--seeds", "4",
                                       "train.epochs=1000000", "--workers", "2", "--out",
                                       str(folder)] + ([] if stack else ["--no-stack"]),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert wait_until(lambda: len(list(folder.glob(".*.partial/metrics.csv"))) >= 2)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGTERM)
    stderr = ended_or_dumped(proc, timeout=60)
    assert proc.returncode == 143, stderr
    kept = [run for run in folder.glob("0*") if (run / "checkpoint.npz").is_file()]
    assert len(kept) >= 2, stderr
    for run in kept:
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM"
        assert summary["epochs"] > 0


def test_a_sweeps_stop_dropped_in_a_finalizer_is_raised_again_while_the_driver_waits(
        tmp_path, monkeypatch):
    """compare's driver raises Ctrl-C and SIGTERM from its handler; Python drops that exception
    when it is raised while a finalizer runs. The driver's wait calls check() every half
    second, which raises the stop again: the runs in flight are recorded stopped."""
    from nntrain import compare as compare_module
    from nntrain.signals import StopRequests, Terminated

    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_value))

    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGTERM)  # its Terminated is raised here, and dropped

    point = compare_module.validate(compare_module.make_sweep(
        CONFIGS / "xor.yaml", ["train.epochs=1000000"], None, "1", None), [])[0]
    stopped = []
    with StopRequests(graceful=False) as stop:
        with pytest.raises(Terminated):
            run_local(compare_module.execute_task, [[point]], 1, stopped.append, stopped.append,
                      meanwhile=Finalized, stop=stop)
    assert [type(err) for err in dropped] == [Terminated]
    assert stopped == [point]  # recorded stopped, not a result


def test_ctrl_c_at_the_terminal_while_workers_start_is_the_drivers_alone(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group. Workers start with SIGINT blocked
    (os.posix_spawn's signal mask) until their handlers are in place, so one still importing
    prints no KeyboardInterrupt traceback: only the driver's one line."""
    for attempt in range(3):
        folder = tmp_path / f"c{attempt}"
        proc = subprocess.Popen(NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), "--seeds", "4",
                                           "--no-stack", "--workers", "2", "train.epochs=100000",
                                           "--out", str(folder)],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        assert wait_until(lambda: pool_workers(proc.pid), every=0.002)
        time.sleep(0.05 * attempt)  # the workers are importing
        os.killpg(proc.pid, signal.SIGINT)
        stderr = ended_or_dumped(proc, timeout=60)
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
        assert "Fatal Python error" not in stderr, stderr


def stop_as_results_are_written(monkeypatch) -> None:
    """A Ctrl-C as compare begins writing results.csv, summary.csv and loss.png."""
    from nntrain import compare as compare_module

    write_results = compare_module.write_results

    def interrupted(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return write_results(*args, **kwargs)

    monkeypatch.setattr(compare_module, "write_results", interrupted)


def test_a_stop_while_the_results_are_written_waits_until_they_are(tmp_path, monkeypatch):
    """Ctrl-C while results.csv, summary.csv and loss.png are written: they are written whole,
    then the stop ends the command (exit 130)."""
    stop_as_results_are_written(monkeypatch)
    with pytest.raises(KeyboardInterrupt) as stopped:
        compare(CONFIGS / "xor.yaml", ["train.epochs=5"], seeds="2", workers=1,
                out=tmp_path / "c")
    assert {p.name for p in (tmp_path / "c").iterdir()} >= {"results.csv", "summary.csv",
                                                            "loss.png"}
    assert stopped.value.done  # every run had finished: the CLI does not say --resume goes on


def test_a_stop_after_every_run_finished_does_not_say_resume_goes_on(cli, tmp_path, monkeypatch):
    stop_as_results_are_written(monkeypatch)
    result = cli("compare", CONFIGS / "xor.yaml", "train.epochs=5", "--seeds", "2",
                 "--workers", "1", "--out", tmp_path / "c")
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == (
        f"interrupted: every run had finished; the results are in {tmp_path / 'c'}")


def test_a_worker_that_dies_while_a_process_it_forked_holds_its_pipe_is_seen(tmp_path):
    """A plugin forks a process that outlives the worker and keeps the worker's pipe open: the
    driver still sees the worker's death within a second (it checks the process, not only
    the pipe), fails its runs, and compare ends."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    forked = tmp_path / "forked.txt"
    write(tmp_path / "forks.py", "import os, time\nif os.fork() == 0:\n"
          "    os.closerange(0, 3)  # not the test's pipes: only the worker's\n"
          f"    with open({str(forked)!r}, 'a') as f:\n        f.write(f'{{os.getpid()}}\\n')\n"
          "    time.sleep(200)\n    os._exit(0)\n")
    try:
        proc = start_xor_compare(tmp_path, scratch, 30000, "--seeds", "4", "--no-stack",
                                 f"+plugins=[{tmp_path / 'forks.py'}]")
        pid = kill_a_worker_in_flight(proc, tmp_path / "c", 30000)
        killed = time.time()
        statuses, _ = after_a_worker_died(tmp_path, proc, pid)
        assert sorted(statuses.values()) == ["completed"] * 3 + ["failed"], statuses
        assert time.time() - killed < 100  # not when the forked process ends, 200 s on
    finally:
        for line in forked.read_text().split() if forked.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line), signal.SIGKILL)


def test_workers_do_not_import_from_the_folder_compare_runs_in(tmp_path):
    """python -P: a yaml.py in the current folder is not the workers' yaml (nor the driver's,
    which the nntrain command does not import from there either)."""
    write(tmp_path / "yaml.py", "raise SystemExit('the yaml.py of the current folder')\n")
    nntrain = Path(sys.executable).parent / "nntrain"
    done = subprocess.run([str(nntrain), "compare", str(CONFIGS / "xor.yaml"), "train.epochs=5",
                           "--seeds", "2", "--no-stack", "--out", str(tmp_path / "c")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in read(tmp_path / "c" / "results.csv")] == ["completed"] * 2


def test_a_worker_that_cannot_be_started_leaves_its_runs_to_the_others(tmp_path, monkeypatch):
    """os.posix_spawn failing (EAGAIN: the user's process limit; ENOMEM) for one worker: the
    workers running take its runs, and it is said once; with no worker at all, every run is
    recorded failed with the reason, not a crash of the sweep."""
    import errno

    from nntrain import pool
    from nntrain.compare import execute_task

    points = [{"index": i, "dir": f"r{i}", "config": {"bad": 1}} for i in range(4)]
    real_spawn, spawned = os.posix_spawn, []

    def second_fails(*args, **kwargs):
        spawned.append(1)
        if len(spawned) == 2:
            raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        return real_spawn(*args, **kwargs)

    monkeypatch.setattr(pool.os, "posix_spawn", second_fails)
    results = []
    with pytest.warns(UserWarning, match="cannot start a worker"):
        run_local(execute_task, [[p] for p in points], 2, results.append, results.append)
    assert sorted(r["index"] for r in results) == [0, 1, 2, 3]
    # each run went to the worker that started, and failed there on its own config
    assert {r["error"].split(":")[0] for r in results} == {"ConfigError"}
    assert len(spawned) == 2

    def none_starts(*args, **kwargs):
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

    monkeypatch.setattr(pool.os, "posix_spawn", none_starts)
    results = []
    with pytest.warns(UserWarning) as said:
        run_local(execute_task, [[p] for p in points], 2, results.append, results.append)
    assert sorted(r["index"] for r in results) == [0, 1, 2, 3]
    assert {r["error"] for r in results} == {
        f"no worker could be started ([Errno {errno.ENOMEM}] {os.strerror(errno.ENOMEM)})"}
    assert [str(w.message) for w in said if "recorded failed" in str(w.message)] == [
        f"4 run(s) recorded failed: no worker could be started ([Errno {errno.ENOMEM}] "
        f"{os.strerror(errno.ENOMEM)})"]


@pytest.mark.slow
def test_ctrl_c_in_a_dask_compare_records_the_runs_in_flight_interrupted(tmp_path):
    """As with the local pool: the runs not finished when Ctrl-C comes (the one a Dask worker
    trains, the one waiting for it) are recorded interrupted, so that --resume runs them."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), "train.epochs=1000000",
                                       "--seeds", "2", "--executor", "dask", "--workers", "1",
                                       "--out", "c"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TMPDIR": str(scratch)})
    try:  # a run has begun: its temporary folder is there
        assert wait_until(lambda: any(scratch.rglob("nntrain-*/run*")), timeout=120)
    finally:
        proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted: the runs finished so far are in" in stderr
    runs = sorted(p for p in (tmp_path / "c").iterdir() if p.is_dir())
    assert len(runs) == 2
    assert [json.loads((r / "summary.json").read_text())["status"] for r in runs] == [
        "interrupted"] * 2
    assert [json.loads((r / "summary.json").read_text())["signal"] for r in runs] == [
        "SIGINT"] * 2


def test_what_dask_logs_while_its_cluster_closes_is_not_printed(monkeypatch):
    """A Ctrl-C'd Dask sweep closes its cluster while a worker's heartbeat is on its way, and
    Dask logs the lost heartbeat with a traceback (seen in CI: "Failed to communicate with
    scheduler during heartbeat"). Not the command's: Dask's errors are not logged while the
    cluster closes, and are again after."""
    pytest.importorskip("distributed")
    import logging

    import distributed

    from nntrain.compare import dask_client

    close, logged = distributed.Client.close, []

    def closing(self, *args, **kwargs):  # a client closed before (collected now) is not it
        if self.status not in ("closed", "newly-created"):
            logged.append(logging.getLogger("distributed.worker").isEnabledFor(logging.ERROR))
        return close(self, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "close", closing)
    with dask_client(1, None):
        assert logging.getLogger("distributed.worker").isEnabledFor(logging.ERROR)
    assert logged and not any(logged)
    assert logging.getLogger("distributed.worker").isEnabledFor(logging.ERROR)


def test_a_dask_task_the_cluster_lost_fails_its_runs():
    """A Dask task whose workers died (KilledWorker) fails its runs with why, as a dead pool
    worker's do, instead of ending the sweep."""
    from nntrain.compare import task_results

    class Lost:
        def result(self):
            raise RuntimeError("Attempted to run task on 3 different workers, all died")

    points = [{"index": 0, "dir": "a"}, {"index": 1, "dir": "b"}]
    with pytest.warns(UserWarning, match="2 run.s. recorded failed: its Dask task failed"):
        results = task_results(Lost(), points)
    assert [(r["index"], r["summary"]["status"]) for r in results] == [(0, "failed"), (1, "failed")]
    assert results[0]["error"] == ("its Dask task failed: RuntimeError: Attempted to run task "
                                   "on 3 different workers, all died")


def test_a_stop_while_dask_results_are_stored_loses_none_of_them(monkeypatch):
    """Ctrl-C while the first of several finished Dask tasks' results is stored: every run is
    then either stored or recorded interrupted (finished ones were once neither)."""
    from dask.distributed import Client

    import nntrain.compare as compare_module
    from nntrain.signals import StopRequests

    def finished(task):
        return [{"index": p["index"], "dir": p["dir"], "files": {},
                 "summary": {"status": "completed"}} for p in task]

    class LateFirstCheck(StopRequests):  # every task finishes before the first wait
        first = True

        def check(self):
            if self.first:
                self.first = False
                time.sleep(1.5)
            super().check()

    monkeypatch.setattr(compare_module, "execute_task", finished)
    tasks = [[{"index": i, "dir": f"r{i}"}] for i in range(4)]
    stored, stopped = [], []
    stop = LateFirstCheck(graceful=False)

    def on_result(result):
        stored.append(result["index"])
        if len(stored) == 1:
            stop.on_sigint(signal.SIGINT, None)  # Ctrl-C while the first result is stored

    with Client(processes=False, n_workers=1, threads_per_worker=2,
                dashboard_address=None) as client:
        with pytest.raises(KeyboardInterrupt):
            compare_module.run_dask(tasks, client, on_result,
                                    lambda p: stopped.append(p["index"]), stop)
    assert sorted(stored + stopped) == [0, 1, 2, 3]
    assert len(stored) == 1  # the stop came as the first was stored


def test_a_resumed_compare_writes_through_no_planted_link(tmp_path):
    """A compare folder is data someone may send you: links planted where compare stages its
    runs (.DIR.store) or where an earlier sweep trained in place (.DIR.X.partial) are removed,
    never written through (nor their locks believed), their targets left as they were; a pipe
    planted as a lock is not waited on."""
    folder, victim = tmp_path / "c", tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    args = NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), "train.epochs=5", "--seeds", "2"]
    assert subprocess.run(args + ["--out", str(folder)], cwd=tmp_path, capture_output=True,
                          timeout=120).returncode == 0
    run = sorted(p for p in folder.iterdir() if p.is_dir())[0]
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    (victim / ".nntrain-lock").write_text(json.dumps({"host": socket_host(), "pid": 1}))
    (folder / f".{run.name}.0123abcd.partial").symlink_to(victim)  # "locked" by a live pid
    (folder / f".{run.name}.store").mkdir()
    os.mkfifo(folder / f".{run.name}.store" / ".nntrain-lock")  # reading it would wait for ever
    (folder / f".{run.name[:3]}.store").symlink_to(victim)
    resumed = subprocess.run(args + ["--resume", str(folder)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in victim.iterdir()) == [".nntrain-lock", "keep.txt"]
    assert not run.is_symlink() and json.loads((run / "summary.json").read_text())["status"] == \
        "completed"
    assert [p.name for p in folder.glob(".*")] == [".nntrain-claim"]


def test_a_kept_run_that_cannot_go_on_from_its_checkpoint_is_trained_from_the_start(tmp_path):
    """--resume goes on from an interrupted run's checkpoint; one whose checkpoint is damaged,
    whose folder holds a planted link, or whose config.yaml is not its grid point's (edited:
    resumed, it would train other settings under the point's name) is trained again from the
    start instead (the link's target left as it was), with a warning naming the run and why."""
    folder, victim = tmp_path / "c", tmp_path / "victim.csv"
    victim.write_text("mine")
    args = NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), "train.epochs=30", "--seeds", "3",
                      "--no-stack"]
    assert subprocess.run(args + ["--out", str(folder)], cwd=tmp_path, capture_output=True,
                          timeout=120).returncode == 0
    runs = sorted(p for p in folder.iterdir() if p.is_dir())
    def rows(run):  # metrics.csv but its time_s
        with (run / "metrics.csv").open() as file:
            return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(file)]

    before = [rows(run) for run in runs]
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    (runs[0] / "checkpoint.npz").write_bytes(b"not a checkpoint")
    (runs[1] / "metrics.csv").unlink()
    (runs[1] / "metrics.csv").symlink_to(victim)
    edited = (runs[2] / "config.yaml").read_text().replace("epochs: 30", "epochs: 20")
    (runs[2] / "config.yaml").write_text(edited)
    resumed = subprocess.run(args + ["--resume", str(folder)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    for run in runs:
        assert f"{run.name}: cannot go on from its checkpoint (" in resumed.stderr
    assert "its config.yaml is not this grid point's: train.epochs: saved 20, given 30" in \
        resumed.stderr
    assert resumed.stderr.count("trained from the start") == 3
    assert victim.read_text() == "mine"
    for run, old in zip(runs, before):
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"
        assert not (run / "metrics.csv").is_symlink()
        assert rows(run) == old


def test_a_run_the_sweep_goes_on_from_is_not_resumed_by_hand_meanwhile_and_vice_versa(tmp_path):
    """compare --resume holds the locks of the run folders it has already: a hand `nntrain
    resume` of one meanwhile exits 2 naming the sweep's process; and a compare --resume while a
    run is being resumed by hand exits 2 naming that run, before anything changes (either way
    two processes wrote one run, and swapped folders left it damaged)."""
    from nntrain import compare as compare_module

    folder = tmp_path / "c"
    args = NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), "train.epochs=30", "--seeds", "2"]
    assert subprocess.run(args + ["--out", str(folder)], cwd=tmp_path, capture_output=True,
                          timeout=120).returncode == 0
    runs = sorted(p for p in folder.iterdir() if p.is_dir())
    points = [{"dir": run.name} for run in runs]
    with compare_module.holding(folder, points):
        by_hand = subprocess.run(NNTRAIN + ["resume", str(runs[0]), "train.epochs=40"],
                                 cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert by_hand.returncode == 2, by_hand.stderr
    assert f"is being written by process {os.getpid()} on this machine" in by_hand.stderr
    assert [p.name for p in runs[0].glob(".*")] == [".nntrain-claim"]  # released

    resuming = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (runs[1] / ".nntrain-lock").write_text(json.dumps(
            {"host": socket_host(), "pid": resuming.pid, "started": time.time()}))
        before = {p.name: p.read_bytes() for p in runs[1].iterdir()}
        sweep = subprocess.run(args + ["--resume", str(folder)], cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
    finally:
        resuming.kill()
        resuming.wait()
    assert sweep.returncode == 2, sweep.stderr
    assert f"{runs[1]}: is being written by process {resuming.pid}" in sweep.stderr
    assert {p.name: p.read_bytes() for p in runs[1].iterdir()} == before
    assert [p.name for p in runs[0].glob(".*")] == [".nntrain-claim"]  # the other let go


def test_a_kept_run_whose_worker_dies_as_it_goes_on_stays_interrupted_and_is_said_so(tmp_path):
    """--resume goes on from a stopped sweep's kept run and its worker is SIGKILLed: the run is
    left as it was, interrupted and resumable, and stderr says so (not that it was recorded
    failed, which results.csv would contradict); compare exits 1, as the grid is not done, and
    the next --resume finishes it."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    folder = tmp_path / "c"
    args = NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), "train.epochs=60000", "--seeds", "2",
                      "--no-stack", "--workers", "2"]
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONFAULTHANDLER": "1"}
    first = subprocess.Popen(args + ["--out", str(folder)], cwd=tmp_path, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def both_training() -> bool:  # then each stops after its epoch, far from its last
        workers = pool_workers(first.pid)
        return len(workers) == 2 and all(epochs_written(folder, pid) > 1000 for pid in workers)

    assert wait_until(both_training, timeout=120)
    first.send_signal(signal.SIGINT)
    assert ended_or_dumped(first, timeout=60) and first.returncode == 130
    kept = {row["run"]: (folder / row["run"] / "metrics.csv").read_bytes()
            for row in read(folder / "results.csv") if row["status"] == "interrupted"}
    assert len(kept) == 2, kept

    going_on = subprocess.Popen(args + ["--resume", str(folder)], cwd=tmp_path, env=env,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid = kill_a_worker_in_flight(going_on, folder, 60000)
    stderr = ended_or_dumped(going_on, timeout=120)
    assert going_on.returncode == 1, stderr
    assert "Traceback" not in stderr and "recorded failed" not in stderr
    assert "run(s) failed" not in stderr, stderr
    assert (f"1 run(s) kept as they were, interrupted: its worker (pid {pid}) died before the "
            "run finished") in stderr, stderr
    assert (f"1 run(s) did not finish and are kept interrupted; the same command with --resume "
            f"{folder} goes on from their checkpoints") in stderr, stderr
    statuses = {row["run"]: row["status"] for row in read(folder / "results.csv")}
    assert sorted(statuses.values()) == ["completed", "interrupted"], statuses
    left = next(run for run, status in statuses.items() if status == "interrupted")
    assert (folder / left / "metrics.csv").read_bytes() == kept[left]  # as it was
    assert list(folder.glob(".*")) == [folder / ".nntrain-claim"]  # no .partial
    assert list(scratch.iterdir()) == []

    done = subprocess.run(args + ["--resume", str(folder)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in read(folder / "results.csv")] == ["completed"] * 2
    assert (folder / left / "metrics.csv").read_bytes().startswith(kept[left])


def test_a_killed_sweeps_late_workers_never_touch_the_resumed_sweeps_runs(tmp_path):
    """compare SIGKILLed, then --resume at once: the killed sweep's workers live on for a
    moment (here held stopped, as on a loaded machine, until the resumed sweep trains). They
    then end and remove what they had trained, which is theirs alone: the resumed runs, in
    folders of their own, complete untouched."""
    folder = tmp_path / "c"
    args = NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), "train.epochs=20000", "--seeds", "2",
                      "--no-stack", "--workers", "2"]
    proc = subprocess.Popen(args + ["--out", str(folder)], cwd=tmp_path,  # its workers'
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # outlive it
    try:
        assert wait_until(lambda: len(pool_workers(proc.pid)) == 2
                          and all(epochs_written(folder, pid) > 1 for pid in pool_workers(proc.pid)))
        old = pool_workers(proc.pid)
        for pid in old:
            os.kill(pid, signal.SIGSTOP)
        proc.kill()
        proc.wait(timeout=30)
        resumed = subprocess.Popen(args + ["--resume", str(folder)], cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert wait_until(lambda: len(list(folder.glob(".*.partial"))) == 4)  # both sweeps'
        for pid in old:
            os.kill(pid, signal.SIGCONT)
        assert wait_until(lambda: not any(alive(pid) for pid in old), timeout=15)
        _, stderr = resumed.communicate(timeout=120)
    finally:
        for pid in pool_workers(proc.pid) + (old if "old" in locals() else []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert resumed.returncode == 0, stderr
    runs = sorted(p for p in folder.iterdir() if p.is_dir())
    summaries = [json.loads((run / "summary.json").read_text()) for run in runs]
    assert [s["status"] for s in summaries] == ["completed"] * 2
    assert not {s["pid"] for s in summaries} & set(old)
    assert [p.name for p in folder.glob(".*")] == [".nntrain-claim"]


def test_a_killed_sweeps_workers_leave_none_of_its_runs_behind(tmp_path):
    """compare SIGKILLed while its workers go through many short runs: each worker removes the
    run it was training and the ones whose results it sent but the driver never took."""
    folder = tmp_path / "c"
    proc = subprocess.Popen(NNTRAIN + ["compare", str(CONFIGS / "xor.yaml"), "train.epochs=1500",
                                       "--seeds", "200", "--no-stack", "--workers", "2",
                                       "--out", str(folder)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: len([p for p in folder.glob("0*") if p.is_dir()]) >= 6,
                          timeout=120)
        family = pool_workers(proc.pid)
        proc.kill()
        proc.wait(timeout=30)
        assert wait_until(lambda: not any(alive(pid) for pid in family), timeout=15)
    finally:
        for pid in pool_workers(proc.pid):
            os.kill(pid, signal.SIGKILL)
    assert list(folder.glob(".*.partial")) == []


def test_a_worker_whose_driver_closed_its_pipe_removes_the_emptied_pool_folder(tmp_path):
    """A SIGKILLed driver's pipes close before its workers get a new parent, so a worker that
    sees its pipe's end may still find getppid() naming the driver: it ends as an orphan all
    the same, removing the pool's folder once its own is gone and the folder is empty. (Here
    the driver, this test, stays alive: the folder goes although getppid() names it.)"""
    from nntrain.pool import Worker

    pool_folder = tmp_path / "nntrain-pool-x"
    pool_folder.mkdir()
    worker = Worker(str(pool_folder), "os:getpid")
    assert wait_until(lambda: any(pool_folder.iterdir()), timeout=60)  # its folder is made
    worker.end()  # the pipe closed with no None: not dismissed
    assert worker.exitcode == 0
    assert not pool_folder.exists()


def test_a_result_whose_folder_is_gone_is_recorded_failed(tmp_path):
    """A run trained in place whose folder someone removed before compare took it (a second
    compare let in with --break-lock): recorded failed with why, not 'completed' with no files."""
    from nntrain.compare import store

    status = store(tmp_path, {"index": 0, "dir": "r", "files": None,
                              "out": str(tmp_path / ".r.ab.partial"),
                              "summary": {"status": "completed"}})
    assert status == "failed"  # what compare counts: it exits 1, as results.csv says failed
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["error"] == "its run folder .r.ab.partial was gone when its result came"
