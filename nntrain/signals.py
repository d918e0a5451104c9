"""How runs and sweeps stop when asked to: Ctrl-C (SIGINT) and SIGTERM.

Ctrl-C or SIGTERM (sent by `timeout`, Slurm, `docker stop`, systemd) asks a run
to stop after the current epoch, so that its checkpoint holds the last finished
epoch and resume goes on from there (Keras' BackupAndRestore loses the epoch in
flight; this loses nothing, at the cost of up to one epoch's delay and nothing
per epoch). A second Ctrl-C or SIGTERM stops it at once. Either way the epochs
finished are saved, the status is "interrupted", and the command exits
128 + the signal's number, as shells expect: 130 or 143. A sweep stops its
workers' runs the same way (``ask_to_stop``: after the epoch in progress).
"""

from __future__ import annotations

import contextlib
import signal
import threading

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


EARLY_STOPS: list[str] = []  # the signals stop_early raised, until one is acted on


def stop_early(signum, frame):
    """Ctrl-C or SIGTERM while a command starts, before a run's StopRequests takes over:
    KeyboardInterrupt or Terminated at once (the CLI's handler prints one line, exit 130 or
    143, no run folder), and remembered until acted on. Python drops an exception raised
    while a weakref callback runs (an import's module lock: a Ctrl-C at start-up was lost so
    under load, and the run trained on); StopRequests raises a remembered one again."""
    EARLY_STOPS.append("SIGTERM" if signum == signal.SIGTERM else "SIGINT")
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def stop_early_on_signals() -> None:
    """stop_early for SIGINT and SIGTERM, where their handlers are Python's own (the main
    thread only; a handler someone else installed is left alone)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, default in ((signal.SIGINT, signal.default_int_handler),
                            (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(signum) == default:
            signal.signal(signum, stop_early)


def acted_on() -> None:
    """A stop_early signal's exception reached its handler: nothing left to raise again."""
    EARLY_STOPS.clear()


def raise_dropped() -> None:
    """The stop a stop_early signal asked for, should Python have dropped its exception."""
    if EARLY_STOPS:
        name = EARLY_STOPS[-1]
        acted_on()
        raise Terminated() if name == "SIGTERM" else KeyboardInterrupt()


ASKED: list[str] = []  # this process was asked to stop its runs after their epoch
RUNNING: list[StopRequests] = []  # the StopRequests in force in this process, innermost last


def ask_to_stop(name: str = "SIGTERM") -> None:
    """Stop this process's runs after their current epoch, as a first Ctrl-C does: the one
    running, and one that begins later (at once, after its epoch 0). A sweep's worker is asked
    so by its driver: each run it has in hand is kept, resumable from its checkpoint."""
    ASKED.append(name)
    for stop in RUNNING:
        stop.requested = stop.requested or name


def stop_asked() -> bool:
    """ask_to_stop was called in this process."""
    return bool(ASKED)


def signal_name(stop: BaseException) -> str:
    return "SIGTERM" if isinstance(stop, Terminated) else "SIGINT"


class StopRequests:
    """Installs the handlers while a run or sweep is in progress (main thread only) and puts
    the previous ones back after. A handler that someone else installed is left alone: a
    sweep's worker ignores Ctrl-C (its driver stops it) and cleans up on SIGTERM itself.

    ``requested`` becomes "SIGINT" or "SIGTERM" when a first signal asks to stop after the
    current epoch (with ``graceful=False``, both stop at once: a sweep's driver).
    """

    def __init__(self, graceful: bool = True):
        self.graceful = graceful
        self.requested: str | None = None
        self.received = 0  # the signals that came
        self.previous: dict[int, object] = {}
        self.holding = False  # between hold() and release(), a stop waits
        self.pending: BaseException | None = None

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is not threading.main_thread():
            return self
        self.requested = ASKED[-1] if ASKED else None
        RUNNING.append(self)
        for signum, handler in ((signal.SIGINT, self.on_sigint), (signal.SIGTERM, self.on_sigterm)):
            if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler, stop_early):
                self.previous[signum] = signal.signal(signum, handler)
        try:
            raise_dropped()  # a stop asked for while the command started: nothing begins
        except KeyboardInterrupt:
            self.__exit__(None, None, None)
            raise
        return self

    def on_sigint(self, signum, frame):
        self.received += 1
        again, self.requested = self.requested, self.requested or "SIGINT"
        if again or not self.graceful:
            self.stop_now(KeyboardInterrupt())

    def on_sigterm(self, signum, frame):
        self.received += 1
        again, self.requested = self.requested, self.requested or "SIGTERM"
        if again or not self.graceful:
            self.stop_now(Terminated())

    def check(self, seen: int = 0) -> None:
        """With ``graceful=False``, raise again the stop a signal asked for, should Python have
        dropped it: an exception raised while a finalizer or a weakref callback runs is
        printed and lost. A sweep's driver calls this while it waits; ``seen``: the signals
        already acted on (a second stop while the first is handled)."""
        if self.requested and self.received > seen and not self.graceful:
            self.stop_now(Terminated() if self.requested == "SIGTERM" else KeyboardInterrupt())

    def stop_now(self, stop: BaseException) -> None:
        if self.holding:
            self.pending = stop
        else:
            raise stop

    def hold(self) -> None:
        """Until release(), a stop at once waits: what is written between stays consistent
        (an epoch's row in metrics.csv and in the run's history, both or neither)."""
        self.holding = True

    def release(self) -> None:
        self.holding = False
        if self.pending is not None:
            stop, self.pending = self.pending, None
            raise stop

    @contextlib.contextmanager
    def held(self):
        """hold() for the with block, then release(): a stop that came meanwhile is raised
        as the block ends."""
        self.hold()
        try:
            yield
        finally:
            self.release()

    def __exit__(self, *exc) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
