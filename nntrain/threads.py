"""How many BLAS threads one run uses.

A run is one process, and the run is the unit of parallelism: ``compare``, shell
sweeps and Dask put runs on cores. Inside a run, the BLAS may split each matrix
product between threads, but those threads wait for each other at the end of
every product; when several runs (or other programs) share the cores, a thread
that has no core holds up its product for a whole time slice. So a run takes
more than one thread only when its products are large enough that such a wait
is small beside them (docs/performance.md has the measurements).

The count follows from the config and the machine's core count only, never from
the load of the moment: a product's rounding depends on how many threads split
it, and reruns on one machine must give the same numbers bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

# A second thread pays off, alone and beside other runs, once a step's largest product
# has this many multiply-adds (rows x fan_in x fan_out) per thread.
WORK_PER_THREAD = 250_000_000
# Variables a user sets to choose the BLAS's thread count (OpenBLAS, OpenMP, MKL).
ENVIRONMENT = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity, as taskset and Slurm set it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def user_threads() -> int | None:
    """The thread count a user set in the environment, if any."""
    for name in ENVIRONMENT:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return None


def largest_product(sizes: Sequence[int], batch: int) -> int:
    """Multiply-adds of a step's largest matrix product: rows x fan_in x fan_out."""
    return batch * max(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def blas_threads(setting: int | str, sizes: Sequence[int], batch: int,
                 cores: int | None = None) -> int:
    """The run's thread count: ``train.threads`` if set, else the environment's, else auto.

    auto: one thread per WORK_PER_THREAD multiply-adds of the largest product, at
    least one and at most the machine's cores.
    """
    if setting != "auto":
        return int(setting)
    chosen = user_threads()
    if chosen is not None:
        return chosen
    cores = machine_cores() if cores is None else cores
    return max(1, min(cores, largest_product(sizes, batch) // WORK_PER_THREAD))


def limit_threads(threads: int):
    """A context manager: the BLAS uses ``threads`` threads inside it, its own count after."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")
