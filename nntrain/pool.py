"""The local pool of a sweep's driver: fresh interpreters, each with a pipe of its own.

    run_local(work, tasks, workers, on_result, on_stopped)

starts up to ``workers`` processes (``os.posix_spawn`` of ``python -P -c``, NumPy with one
BLAS thread) and hands each the next task as it is free. A task is a list of points (dicts
with an ``index`` and a ``dir``); ``work(task)``, a module-level function the worker imports
by name, returns one result per point, which the driver passes to ``on_result``. A result's
``out``, if it has one, is a folder the driver takes over; a worker whose driver died before
taking it removes it.

    driver                         worker (worker_main)
    give(task)        ------>      "took"       its runs have begun
                      <------      "done", results
    give(None)        ------>      ends (its folder removed)

No queue and no lock are shared, so a worker that dies at any moment holds nothing the
others or the driver wait on: its pipe closes (or its process is gone), and the driver
knows the task it held. A task it had not taken goes to the next worker; the runs of one
it had taken are failed results (``lost_results``: compare keeps a run it went on from as it
was). On Ctrl-C or SIGTERM the driver asks the
workers to stop their runs after the epoch in progress (SIGUSR1), as a lone run's first
Ctrl-C does, and stores them as they come, interrupted and resumable; a second Ctrl-C stops
the workers at once (SIGUSR2: the runs in hand unwind, ``WorkerStopped``), and records the
runs in hand with ``on_stopped``. A SIGTERM sent to a worker itself (systemd, Slurm and
``kill -- -PGID`` send it to the whole process group) acts as on a lone run. A worker ends
with its driver, however the driver died.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from .signals import StopRequests, ask_to_stop, stop_asked


ONE_BLAS_THREAD = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"),
                                "1")


@contextlib.contextmanager
def one_blas_thread():
    """Workers use one BLAS thread each: N workers on N cores, not N x N threads."""
    saved = {n: os.environ.get(n) for n in ONE_BLAS_THREAD}
    os.environ.update(ONE_BLAS_THREAD)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


WORKER_FOLDER = None  # in a pool worker: the folder its runs' temporary folders go in
POOL = None  # in a pool worker: its driver's pid and the driver's folder holding WORKER_FOLDER
STOPPED = None  # in a pool worker: the exit code of a stop at once, once it came
# in a pool worker: a task in hand, from taking it until the driver's next word (its results,
# once sent, name folders only the driver may remove)
BUSY = False
# a pool worker's signals, blocked until its handlers are in place: Ctrl-C (the driver's),
# SIGTERM (as on a lone run), SIGUSR1 (the driver's stop: the runs in hand end after their
# epoch) and SIGUSR2 (the driver's stop at once)
WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2}
TERMS = 0  # in a pool worker: the SIGTERMs that came
# in a pool worker: its driver closed its end of the pipe without dismissing it (it died, or
# stopped the pool), so it starts no other worker in the pool's folder. getppid() may still
# name a driver SIGKILLed a moment ago: a process's pipes close before its children get a
# new parent.
ORPHANED = False


def setup_worker(driver: int, pool_folder: str) -> None:
    """A pool worker's setup: Ctrl-C is the driver's; its driver's stops and SIGTERM stop the
    runs in hand (``exit_cleanly``), and the worker's temporary folder is removed as it ends;
    and the worker ends when its driver is gone, however the driver died (SIGKILL included).
    The worker's folder, worker-<pid>-*, is made in its driver's ``pool_folder`` (no other
    compare's)."""
    from multiprocessing.util import Finalize

    global WORKER_FOLDER, POOL
    POOL = (driver, pool_folder)
    # the folder is made and its removal registered, or neither
    signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
    WORKER_FOLDER = tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=pool_folder)
    Finalize(None, remove_own_folder, exitpriority=100)  # first thing once the worker ends
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, exit_cleanly)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_SIGNALS)
    sys.unraisablehook = quiet_stop
    threading.Thread(target=watch_parent, args=(driver,), daemon=True).start()


WORKER_FD = 3  # a pool worker's end of its pipe to the driver
WORKER_COMMAND = "from nntrain.pool import worker_main; worker_main()"


def worker_folder() -> str | None:
    """In a pool worker, the folder its runs' temporary folders go in (None elsewhere)."""
    return WORKER_FOLDER


def work_name(work: Callable) -> str:
    """'module:function', by which a worker imports ``work`` (a module-level function)."""
    name = f"{work.__module__}:{work.__qualname__}"
    if "<" in name or "." in work.__qualname__:
        raise ValueError(f"a pool's work is a module-level function, not {name}")
    return name


def named_work(name: str) -> Callable:
    """The function ``work_name`` named, imported in the worker."""
    module, function = name.split(":")
    return getattr(importlib.import_module(module), function)


def worker_main() -> None:
    """A pool worker (``python -c WORKER_COMMAND DRIVER_PID POOL_FOLDER MODULE:WORK``): tasks
    come down its pipe one at a time; it says it took each, then sends ``WORK(task)``'s
    results back up; None (or the driver's end of the pipe closed) ends it."""
    from multiprocessing.connection import Connection

    global ORPHANED, BUSY
    os.set_inheritable(WORKER_FD, False)  # no process a run starts keeps the pipe open
    conn, driver, pool_folder = Connection(WORKER_FD), int(sys.argv[1]), sys.argv[2]
    setup_worker(driver, pool_folder)
    work = named_work(sys.argv[3])
    sent: list[dict] = []  # the last results sent, which a driver gone may never have read
    dismissed = False  # the driver sent None: it has taken every result sent
    try:
        while True:
            try:
                task = conn.recv()
                BUSY = False  # the driver's word: it has taken the results sent
                if task is None:
                    dismissed = True
                    break
                if STOPPED is not None:  # a stop at once whose exception Python dropped
                    break
                BUSY = True
                conn.send(("took", None))
            except (EOFError, OSError):  # the driver closed its end: it stopped the pool, or died
                ORPHANED = True
                break
            sent = work(task)
            with contextlib.suppress(OSError):  # the driver is gone: the next recv ends it
                conn.send(("done", sent))
    finally:  # also when a stop (WorkerStopped) ends it as it sends them
        # not dismissed: its driver died (its pipe closes before the worker is handed to a
        # new parent, so getppid may still name it) or stopped the pool, and no driver will
        # take the folders its last results name (a stopping one records those runs itself)
        if not dismissed:
            for result in sent:
                if result.get("out"):
                    shutil.rmtree(result["out"], ignore_errors=True)
    # its runs' files are all closed: the interpreter's own teardown, which the driver waits
    # for (docs/performance.md), has nothing left to save. It also skips atexit handlers a
    # plugin's code may have registered in the worker: a run's end is where such code acts.
    remove_own_folder()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:  # started with no stdout
            stream.flush()
    os._exit(0)


def remove_own_folder() -> None:
    """As a pool worker ends, however it ends, its temporary folder goes; when its driver died
    first (SIGKILL), the last worker out removes the driver's emptied folder too. From here on
    a stop from the driver, which may come when the worker is already ending, is ignored
    (not a traceback out of the interpreter's shutdown)."""
    for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    remove_folders()


def remove_folders() -> None:
    """The worker's temporary folder, and its driver's once the driver is gone and it is empty
    (remove_own_folder at exit; watch_parent when the worker must end at once)."""
    shutil.rmtree(WORKER_FOLDER, ignore_errors=True)
    driver, pool_folder = POOL
    if ORPHANED or os.getppid() != driver:  # no driver to remove it, no new worker to start in it
        with contextlib.suppress(OSError):  # another worker's folder is still there
            os.rmdir(pool_folder)


class WorkerStopped(SystemExit):
    """A stop at once in a pool worker: the run in hand unwinds, then the worker exits (its
    temporary folder is removed at exit, whatever the unwinding left)."""


def exit_cleanly(signum, frame):
    """A stop in a pool worker. With a task in hand, its driver's stop (SIGUSR1) or a first
    SIGTERM (sent to the whole process group by systemd or Slurm, whichever of the two comes
    first) asks its runs to stop after the epoch in progress (``ask_to_stop``, as a lone run's
    first Ctrl-C or SIGTERM does): they end interrupted and resumable, and their results go to
    the driver, which ends the worker once it has taken them. Otherwise (idle, its driver's
    stop at once: SIGUSR2, a second SIGTERM, its driver gone) WorkerStopped unwinds the run in
    hand at once. Python drops an exception raised while a finalizer or a weakref callback
    runs (an import's lock, a ZipFile's __del__: seen under load), and the worker would go on,
    or wait for ever to send a result nobody reads: ``watch_parent`` ends it then."""
    global STOPPED, TERMS
    if STOPPED is not None:  # ending already: not another exception out of its unwinding
        return
    TERMS += signum == signal.SIGTERM
    gentle = signum == signal.SIGUSR1 or (signum == signal.SIGTERM and TERMS == 1)
    if gentle and BUSY and not ORPHANED:
        if not stop_asked():
            ask_to_stop()
        return
    STOPPED = 128 + signum
    raise WorkerStopped(STOPPED)


def quiet_stop(unraisable) -> None:
    """A WorkerStopped dropped in a finalizer is not printed: the watcher ends the worker."""
    if not isinstance(unraisable.exc_value, WorkerStopped):
        sys.__unraisablehook__(unraisable)


def watch_parent(parent: int, every: float = 0.5, grace: float = 2.0) -> None:
    """End this process soon after its parent (SIGTERM to itself, the clean way out), or after
    a SIGTERM: if the clean way out has not ended it within ``grace`` seconds (its exception
    was dropped; it is stuck writing to a pipe nobody reads), its folders go and it exits at
    once. Its driver has given up on its results by then. This thread blocks the worker's
    signals, so that the kernel delivers them to the main thread: delivered here, a SIGTERM
    would not interrupt the main thread's write of a result."""
    global ORPHANED
    signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
    while os.getppid() == parent and STOPPED is None:
        time.sleep(every)
    if STOPPED is None:
        ORPHANED = True  # at once: no driver will take what its runs would keep
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    remove_folders()
    os._exit(STOPPED or 1)


def lost_result(point: dict, error: str) -> dict:
    """A point whose worker died (SIGKILL, the OOM killer, a crash) before sending its result:
    a failed run with no files (compare keeps a run it went on from as it was instead)."""
    return {"index": point["index"], "dir": point["dir"], "error": error, "files": {},
            "summary": {"status": "failed", "error": error}}


def lost_results(points: list[dict], error: str) -> list[dict]:
    """lost_result of each point, said on stderr: those of runs compare --resume went on from
    (their points have "resume") are kept as they were, the others recorded failed."""
    kept = sum("resume" in point for point in points)
    for count, what in ((len(points) - kept, "recorded failed"),
                        (kept, "kept as they were, interrupted")):
        if count:
            warnings.warn(f"{count} run(s) {what}: {error}", stacklevel=3)
    return [lost_result(point, error) for point in points]


class Worker:
    """One pool process (a fresh interpreter, os.posix_spawn) with a pipe of its own: the driver
    hands it a task, it says it took it, and the task's results come back up the pipe.

    Workers share no queue and no lock, so one that dies at any moment (SIGKILL, the OOM
    killer, a crash, idle or busy) holds nothing the others or the driver wait on; its pipe
    closes, and the driver knows the task it held. (multiprocessing.Pool shares two locked
    queues: a worker killed while waiting for a task kept the queue's lock, and the pool
    waited for ever.) It starts with its signals blocked until setup_worker has its
    handlers: a terminal's Ctrl-C, which reaches the whole process group, is the driver's
    alone, not a traceback out of a worker's imports; a SIGTERM waits for its handler."""

    def __init__(self, pool_folder: str, work: str):
        from multiprocessing.connection import Pipe

        self.conn, end = Pipe()
        env = {**os.environ, **ONE_BLAS_THREAD,  # and the driver's imports: sys.path
               "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path
                                             if isinstance(p, str) and os.pathsep not in p)}
        try:
            self.pid = os.posix_spawn(
                sys.executable, [sys.executable, "-P", "-c", WORKER_COMMAND, str(os.getpid()),
                                 pool_folder, work], env,
                file_actions=[(os.POSIX_SPAWN_DUP2, end.fileno(), WORKER_FD)],
                setsigmask=WORKER_SIGNALS)
        finally:
            end.close()
        self.exitcode: int | None = None  # once it has ended and been reaped
        self.task: list[dict] | None = None  # the points handed to it and not yet back
        self.took = False  # it said it took the task: its runs have begun

    def give(self, task: list[dict] | None) -> None:
        """Hand it a task (None: its work is done and it ends). A worker that died just now
        is seen by the driver's next wait (its pipe's end), holding the task."""
        self.task, self.took = task, False
        with contextlib.suppress(OSError):  # BrokenPipeError
            self.conn.send(task)

    def news(self) -> list[dict] | None:
        """Its task's results once they came whole; [] while they have not; None if it died
        without sending them (results it sent whole before dying are still read)."""
        try:
            while self.conn.poll():
                kind, results = self.conn.recv()
                if kind == "done":
                    return results
                self.took = True
        except (EOFError, OSError):
            return None
        return [] if self.alive() else None  # its pipe may outlive it (a process a run forked)

    def alive(self) -> bool:
        """Not ended (once ended it is reaped, and its pid is never signalled again)."""
        if self.exitcode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already
                pid, status = self.pid, 0
            if pid:
                self.exitcode = os.waitstatus_to_exitcode(status)
        return self.exitcode is None

    def stop(self, at_once: bool = True) -> None:
        """SIGUSR2: the runs in hand unwind at once (or, stuck, the worker ends itself 2 s
        later); not ``at_once``, SIGUSR1: they stop after their epoch and are sent (an idle
        worker ends at once)."""
        if self.alive():
            os.kill(self.pid, signal.SIGUSR2 if at_once else signal.SIGUSR1)

    def end(self, timeout: float = 10.0) -> None:
        """Wait for it to end (its pipe closed first: one waiting for a task ends at once),
        then kill it if it has not."""
        self.conn.close()
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.exitcode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])


class Crew:
    """run_local's workers and the tasks not handed out yet. A worker that dies fails the runs
    it had taken (said at once on stderr: ``lost_results``); a task it had not taken yet goes
    to the next worker. It is replaced while tasks remain, unless workers keep dying before
    taking any (they cannot start: every task left fails then, not one new process per
    task)."""

    def __init__(self, folder: str, tasks: list[list[dict]], work: str):
        self.folder, self.work = folder, work
        self.todo, self.workers = list(tasks), []
        self.unstarted = 0  # workers in a row that died before taking their task
        self.unmade: OSError | None = None  # why the last worker could not be started

    def start(self, task: list[dict]) -> None:
        """A new worker with ``task``. Its caller holds the stops (a worker half started would
        not be stopped); the signals are blocked here for the new process's sake, which
        starts with them blocked (Worker). If no process can be made now (EAGAIN, ENOMEM),
        the task goes back to the front for a worker that runs already (``abandoned``: the
        runs none can take)."""
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
        try:
            worker = Worker(self.folder, self.work)
        except OSError as err:
            if self.unmade is None:
                warnings.warn(f"cannot start a worker ({err}); the workers running take its "
                              "runs", stacklevel=2)
            self.unmade = err
            self.todo.insert(0, task)
            return
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.workers.append(worker)
        worker.give(task)

    def abandoned(self) -> list[dict]:
        """The runs left when no worker runs and none could be started: failed results."""
        error = f"no worker could be started ({self.unmade})"
        points = [point for task in self.todo for point in task]
        self.todo = []
        return lost_results(points, error)

    def busy(self) -> list[Worker]:
        return [w for w in self.workers if w.task is not None]

    def ready(self, wait_s: float) -> list[Worker]:
        """The busy workers with news (a message, or their end: a closed pipe, or a process
        gone while a process it forked keeps the pipe open), waiting up to ``wait_s``; the
        workers that ended with no task left are reaped (no zombie until the sweep ends)."""
        from multiprocessing.connection import wait

        for worker in self.workers:
            if worker.task is None:
                worker.alive()
        busy = self.busy()
        ready = set(wait([w.conn for w in busy], wait_s))
        return [w for w in busy if w.conn in ready or not w.alive()]

    def settle(self, worker: Worker, on_result: Callable[[dict], None]) -> None:
        """Pass on a worker's results, or its death's, and give it (or its replacement) the
        next task."""
        results = worker.news()
        if worker.took:
            self.unstarted = 0
        if results == []:
            return
        if results is None:
            results = self.bury(worker)
        self.pass_on(worker, results, on_result)
        if worker in self.workers:
            worker.give(self.todo.pop(0) if self.todo else None)  # None: it ends
        elif self.todo:
            self.start(self.todo.pop(0))

    def bury(self, worker: Worker) -> list[dict]:
        """A dead worker's runs, as failed results (none when it had not taken its task: the
        task goes back to the front); its folder (SIGKILL skips its own removal) goes."""
        worker.end(timeout=1.0)
        self.workers.remove(worker)
        pid, code = worker.pid, worker.exitcode
        for folder in Path(self.folder).glob(f"worker-{pid}-*"):
            shutil.rmtree(folder, ignore_errors=True)
        self.unstarted += not worker.took
        if worker.took:
            error = f"its worker (pid {pid}) died before the run finished"
        elif self.unstarted < 2:
            self.todo.insert(0, worker.task)
            warnings.warn(f"a worker (pid {pid}) died before it took its run(s); another "
                          "takes them", stacklevel=2)
            return []
        else:
            error = f"the workers die as they start (the last: pid {pid}, exit code {code})"
            worker.task = worker.task + [point for task in self.todo for point in task]
            self.todo = []
        return lost_results(worker.task, error)

    def stop(self, on_result: Callable[[dict], None], on_stopped: Callable[[dict], None],
             stop: StopRequests, graceful: bool = True) -> None:
        """The driver stops. ``graceful`` (Ctrl-C, SIGTERM): each worker is asked to stop the
        runs in hand after their epoch in progress, as a lone run's first Ctrl-C does
        (SIGUSR1: ``exit_cleanly``), and their results, kept interrupted and resumable, are
        passed to ``on_result`` as they come. A second stop (raised by ``stop``'s handler, or
        by check() should Python have dropped it), or an error, stops the workers at once:
        the runs still in hand then, and those of a worker that ended without sending them,
        are recorded with ``on_stopped``. Every worker is waited for."""
        seen = stop.received
        try:
            for worker in self.workers if graceful else ():
                worker.stop(at_once=False)  # one idle, or not started on its task yet, ends
            while graceful and self.busy():
                stop.check(seen)
                for worker in self.ready(0.5):
                    with stop.held():
                        self.last_results(worker, on_result, on_stopped)
        finally:  # also on a second stop, which is raised once these are done
            with stop.held():
                busy = self.busy()
                try:
                    for worker in busy:
                        for point in worker.task:
                            on_stopped(point)
                        worker.task = None
                finally:
                    for worker in busy:
                        worker.stop()  # the runs unwind at once
                    for worker in self.workers:
                        worker.end()

    def last_results(self, worker: Worker, on_result: Callable[[dict], None],
                     on_stopped: Callable[[dict], None]) -> None:
        """A stopped worker's results, passed on, then its dismissal (None: it has nothing
        left to remove, and ends); the runs it sent none for (it ended without) recorded
        stopped."""
        results = worker.news()
        if results == []:
            return
        self.pass_on(worker, results or [], on_result)
        for point in worker.task:
            on_stopped(point)
        worker.give(None)

    @staticmethod
    def pass_on(worker: Worker, results: list[dict], on_result: Callable[[dict], None]) -> None:
        """Results to ``on_result``, each point off the worker's task as its result is passed."""
        for result in results:
            worker.task = [p for p in worker.task if p["index"] != result["index"]]
            on_result(result)


def run_local(work: Callable[[list[dict]], list[dict]], tasks: list[list[dict]], workers: int,
              on_result: Callable[[dict], None], on_stopped: Callable[[dict], None],
              meanwhile: Callable[[], None] = lambda: None,
              stop: StopRequests | None = None) -> None:
    """Up to ``workers`` fresh interpreters that load NumPy with one BLAS thread, each handed
    the next task when it is free (Crew) and running ``work`` on it. When the driver is
    stopped (Ctrl-C, SIGTERM: raised by ``stop``'s handler, or by its check(), called every
    half second) the workers stop their runs after the epoch in progress and send them, kept
    interrupted (``Crew.stop``); a second signal stops them at once, and the runs in hand are
    recorded with ``on_stopped``. Results are stored, and stopped runs recorded, whole: a
    signal meanwhile waits until they are. ``meanwhile()`` is called once the first tasks are
    handed out."""
    stop = stop or StopRequests(graceful=False)  # not installed: hold and check do nothing
    folder = tempfile.mkdtemp(prefix="nntrain-pool-")  # the workers' folders, and only theirs
    crew = Crew(folder, tasks, work_name(work))
    try:
        with stop.held():
            for _ in range(min(workers, len(tasks))):
                crew.start(crew.todo.pop(0))
        meanwhile()
        while crew.busy():
            stop.check()
            for worker in crew.ready(0.5):
                with stop.held():
                    crew.settle(worker, on_result)
        with stop.held():
            for result in crew.abandoned():
                on_result(result)
        for worker in crew.workers:
            worker.end()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM
        crew.stop(on_result, on_stopped, stop)
        raise
    except BaseException:
        crew.stop(on_result, on_stopped, stop, graceful=False)
        raise
    finally:  # also what a killed worker left
        shutil.rmtree(folder, ignore_errors=True)
