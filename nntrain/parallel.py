"""The training step, and data parallelism inside it: a large batch's rows are split into
shards, each shard's forward and backward pass runs in its own process, and the shards'
gradients are summed, in shard order, into the network's.

Why processes and not threads: a pass is hundreds of NumPy calls, and two Python threads
running them queue for the GIL between calls (measured on the mnistlike benchmark: a 64-row
half step takes 850 us alone, 1060 us beside a thread doing the same, 850 us beside a
process). A worker is forked once per run: it inherits the network, the data and the loss,
sees the parameters, the gathered batch and its own gradient buffers through anonymous
shared memory, and a pipe carries one message each way per batch.

The numbers depend on the config only. ``train.shards`` (auto: 2 when a batch is big enough
to pay for a worker, else 1) fixes how the rows are split and the order the gradients are
summed in; where no worker process can be used (not Linux, not the main thread, a process
that is itself a worker, or one core) the shards run one after the other in this process
and give the same numbers. Each shard's loss is a mean over its own rows, so its gradient is
scaled by rows / batch rows before the backward pass and the shard losses are combined with
the same weights: the sum is the batch mean. That holds for the built-in losses (all are
means over samples); a plugin loss keeps one shard unless it says ``mean_over_rows = True``.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
import select
import signal
import struct
import sys
import threading
import time

import numpy as np

from .losses import Loss
from .network import Network

# auto: a second shard once a batch has this many rows and rows x parameters (about a sixth of
# the step's flops) reaches MIN_WORK: below that the pipe round trip and the gradient sum cost
# more than half a step saves (moons' full batch, 1000 x 338, stays whole; digits, 1797 x 9610,
# splits).
MIN_ROWS = 512
MIN_WORK = 10_000_000
SPIN = 0.0005  # seconds a process polls a pipe before it sleeps on it
_MESSAGE = struct.Struct("qq")  # batch rows, 1 if the batch is the whole training set


def shard_count(setting: int | str, rows: int, n_parameters: int, loss: Loss) -> int:
    """How many shards a batch of ``rows`` rows is split into (the config's, or auto's)."""
    if not getattr(loss, "mean_over_rows", False):
        return 1
    if setting != "auto":
        return int(setting)
    return 2 if rows >= MIN_ROWS and rows * n_parameters >= MIN_WORK else 1


def workers_possible() -> bool:
    """Can this process fork shard workers? Linux, the main thread of a process that is not
    itself a worker (compare's pool, a Dask worker), and at least two usable cores."""
    return (sys.platform.startswith("linux")
            and threading.current_thread() is threading.main_thread()
            and multiprocessing.parent_process() is None
            and len(os.sched_getaffinity(0)) >= 2)


def shared_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An array in anonymous shared memory: a forked process reads and writes the same pages."""
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    return np.frombuffer(mmap.mmap(-1, max(1, count * dtype.itemsize)), dtype, count).reshape(shape)


def shared_copy(a: np.ndarray) -> np.ndarray:
    out = shared_empty(a.shape, a.dtype)
    out[...] = a
    return out


def cuts(rows: int, shards: int) -> list[int]:
    """Row boundaries of the shards: as even as possible, the larger ones last."""
    return [rows * i // shards for i in range(shards + 1)]


class Step:
    """One call = one training step on a batch: gather its rows, forward, loss, backward.

    ``step(idx)`` takes the batch's row indices into X (None: all of X) and returns
    (E, output): the batch's mean loss and the network's output rows (for the metrics).
    Gradients are left in ``net.gradients()``. ``start()`` forks the workers (if any),
    ``close()`` ends them; a Step is also a context manager doing both.
    """

    def __init__(self, net: Network, loss: Loss, X: np.ndarray, Y: np.ndarray, batch: int,
                 shards: int, processes: bool | None = None):
        self.net, self.loss, self.X, self.Y = net, loss, X, Y
        n = len(X)
        self.shards = shards if shards <= batch else 1
        self.processes = (workers_possible() if processes is None else processes) and self.shards > 1
        alloc = shared_empty if self.processes else np.empty
        sizes = {batch, n % batch or batch} if batch < n else set()
        self.xb = {size: alloc((size, X.shape[1]), X.dtype) for size in sizes}
        self.yb = {size: alloc((size, Y.shape[1]), Y.dtype) for size in sizes}
        self.workers: list[tuple[int, int, int]] = []  # (pid, command fd, reply fd)
        self._limits = None
        if self.shards == 1:
            return
        if self.processes:
            net.share_memory()
        self.out = alloc((batch, net.sizes[-1]), net.dtype)
        self.losses = alloc((self.shards,), np.float64)
        self.replicas = [net.replica(shared=self.processes) for _ in range(1, self.shards)]
        # what the trainer reads of each replica: its gradients (and, across processes, the
        # mirrors its PReLU-style activation gradients are copied into), in gradients() order
        self.grads = net.gradients()
        self.act_params = [p for act in net.activations for p in act.params]
        if self.processes:
            self.param_mirrors = [shared_copy(p) for p in self.act_params]
            self.grad_mirrors = [[shared_copy(g) for act in r.activations for g in act.grads]
                                 for r in self.replicas]
            self.sources = [shared_gradients(r, mirrors)
                            for r, mirrors in zip(self.replicas, self.grad_mirrors)]
        else:
            self.sources = [r.gradients() for r in self.replicas]

    # -- workers ------------------------------------------------------------------------

    def start(self) -> Step:
        if self.shards == 1 or self._limits is not None:
            return self
        from threadpoolctl import threadpool_limits

        # One BLAS thread in each process: the shards are the parallelism (workers inherit
        # it). Shards run in this process get one too, so they give the workers' numbers.
        self._limits = threadpool_limits(limits=1, user_api="blas")
        if not self.processes:
            return self
        for shard in range(1, self.shards):
            command_r, command_w = os.pipe()
            reply_r, reply_w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: never returns into the trainer's code
                code = 1
                try:
                    os.close(command_w)
                    os.close(reply_r)
                    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's
                    for _, fd, reply in self.workers:  # earlier workers' pipes
                        os.close(fd)
                        os.close(reply)
                    os.set_blocking(command_r, False)
                    self._serve(shard, command_r, reply_w)
                    code = 0
                finally:
                    os._exit(code)
            os.close(command_r)
            os.close(reply_w)
            os.set_blocking(reply_r, False)
            self.workers.append((pid, command_w, reply_r))
        return self

    def _serve(self, shard: int, commands: int, replies: int) -> None:
        """The worker's loop: wait for a batch, run this shard of it, answer; end at EOF."""
        replica = self.replicas[shard - 1]
        act_params = [p for act in replica.activations for p in act.params]
        act_grads = [g for act in replica.activations for g in act.grads]
        while True:
            message = read_soon(commands, _MESSAGE.size)
            if len(message) < _MESSAGE.size:
                return
            rows, whole = _MESSAGE.unpack(message)
            try:
                for p, mirror in zip(act_params, self.param_mirrors):
                    p[...] = mirror
                self._run_shard(replica, shard, rows, whole)
                for g, mirror in zip(act_grads, self.grad_mirrors[shard - 1]):
                    mirror[...] = g
                answer = b"\0"
            except Exception as exc:  # reported by the trainer, which owns the run
                answer = b"\1" + f"{type(exc).__name__}: {exc}".encode()[:1000]
            try:
                os.write(replies, answer)
            except BrokenPipeError:
                return

    def close(self) -> None:
        for pid, command_w, reply_r in self.workers:
            os.close(command_w)  # the worker reads EOF and exits
            os.close(reply_r)
        for pid, *_ in self.workers:
            os.waitpid(pid, 0)
        self.workers = []
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None

    def __enter__(self) -> Step:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the step -----------------------------------------------------------------------

    def batch(self, idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if idx is None:
            return self.X, self.Y
        rows = len(idx)
        # mode="clip" writes straight into the buffer (the default, "raise", gathers into a
        # temporary first: twice the time); idx comes from a permutation, so nothing is clipped
        return (np.take(self.X, idx, axis=0, out=self.xb[rows], mode="clip"),
                np.take(self.Y, idx, axis=0, out=self.yb[rows], mode="clip"))

    def _run_shard(self, net: Network, shard: int, rows: int, whole: bool) -> None:
        X, Y = (self.X, self.Y) if whole else (self.xb[rows], self.yb[rows])
        lo, hi = cuts(rows, self.shards)[shard:shard + 2]
        self.losses[shard] = net._loss_and_backward(X[lo:hi], Y[lo:hi], self.loss,
                                                    scale=(hi - lo) / rows)
        self.out[lo:hi] = net.output

    def __call__(self, idx: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        xb, yb = self.batch(idx)
        rows = len(xb)
        net = self.net
        if self.shards == 1 or rows < self.shards:
            return net._loss_and_backward(xb, yb, self.loss), net.output
        whole = idx is None
        if self.workers:
            for p, mirror in zip(self.act_params, self.param_mirrors):
                mirror[...] = p
            message = _MESSAGE.pack(rows, whole)
            for _, command_w, _ in self.workers:
                os.write(command_w, message)
        else:
            for replica in self.replicas:
                for p, q in zip((p for act in replica.activations for p in act.params),
                                self.act_params):
                    p[...] = q
        self._run_shard(net, 0, rows, whole)
        if self.workers:
            for _, _, reply_r in self.workers:
                answer = read_soon(reply_r, 1024)
                if answer != b"\0":
                    raise RuntimeError("shard worker failed: " + (
                        answer[1:].decode(errors="replace") if answer else "it exited"))
        else:
            for shard, replica in enumerate(self.replicas, start=1):
                self._run_shard(replica, shard, rows, whole)
        for source in self.sources:
            for g, other in zip(self.grads, source):
                g += other
        bounds = cuts(rows, self.shards)
        E = sum(float(self.losses[s]) * (bounds[s + 1] - bounds[s]) for s in range(self.shards))
        return E / rows, self.out[:rows]


def read_soon(fd: int, size: int, spin: float = SPIN) -> bytes:
    """Read from a non-blocking pipe, polling for ``spin`` seconds before sleeping on it: the
    answer usually comes within microseconds, and waking a sleeping process costs tens of
    them (measured here: a pipe round trip between two sleeping processes takes 66 us)."""
    deadline = time.perf_counter() + spin
    while True:
        try:
            return os.read(fd, size)
        except BlockingIOError:
            if time.perf_counter() > deadline:
                select.select([fd], [], [])
                deadline = math.inf


def shared_gradients(replica: Network, act_mirrors: list[np.ndarray]) -> list[np.ndarray]:
    """A replica's gradients as the trainer sees them: dW and db (already shared), and the
    mirrors of its activations' gradients, in ``gradients()`` order."""
    mirrors = iter(act_mirrors)
    grads = []
    for dW, db, act in zip(replica.dW, replica.db, replica.activations):
        grads += [dW, db] + [next(mirrors) for _ in act.grads]
    return grads

