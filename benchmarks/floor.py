"""What a process of nntrain's spends before any code of nntrain's runs: the interpreter and
the imports of the libraries it is built on, each timed as a fresh process (wall, and CPU:
user + system), so that a target for a whole command can be set against what nntrain's own
code cannot cut:

    python benchmarks/floor.py [--repeats 7] [--workers 2]

A training process (`nntrain train`) imports NumPy, PyYAML and Typer; a compare's driver the
same, then pandas and matplotlib for results.csv and loss.png, with matplotlib's first-figure
caches filled (the default font, the mathtext parser), as ``plots.load_matplotlib`` does; and
each of its pool workers NumPy and PyYAML with one BLAS thread. No module of nntrain's is
imported. The last line adds these up for a compare on the local pool of ``--workers``
workers: the CPU-seconds it spends before nntrain's own modules, training or drawing.
Medians of --repeats runs of each.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_BLAS_THREAD = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"),
                                "1")
MATPLOTLIB = ("import matplotlib.backends.backend_agg, matplotlib.figure\n"
              "from matplotlib import font_manager, mathtext\n"
              "font_manager.get_font(font_manager.findfont(font_manager.FontProperties()))\n"
              "mathtext.MathTextParser('agg').parse('$10^{-1}$', 72)\n")
PARTS = {  # name -> (code, environment added)
    "the interpreter": ("pass", {}),
    "NumPy, PyYAML and Typer (a training process, a compare's driver)":
        ("import numpy, yaml, typer", {}),
    "NumPy and PyYAML, one BLAS thread (a pool worker)": ("import numpy, yaml", ONE_BLAS_THREAD),
    "NumPy": ("import numpy", {}),
    "NumPy, then pandas and matplotlib, its first-figure caches filled":
        ("import numpy, pandas\n" + MATPLOTLIB, {}),
}


def timed(code: str, env: dict) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                   env={**os.environ, **env})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in PARTS}
    for _ in range(options.repeats):  # interleaved: a slow moment of the machine hits all
        for name, (code, env) in PARTS.items():
            runs[name].append(timed(code, env))
    medians = {name: tuple(statistics.median(x) for x in zip(*times))
               for name, times in runs.items()}
    print("| process, or what it imports | wall | CPU (user + system) |\n|---|---|---|")
    for name, (wall, cpu) in medians.items():
        print(f"| {name} | {wall:.3f} s | {cpu:.3f} s |")
    names = list(PARTS)
    driver = medians[names[1]][1]
    worker = medians[names[2]][1]
    results = medians[names[4]][1] - medians[names[3]][1]
    total = driver + options.workers * worker + results
    print(f"\na compare on {options.workers} workers before nntrain's modules, training or "
          f"drawing: driver "
          f"{driver:.3f} + {options.workers} x worker {worker:.3f} + pandas and matplotlib "
          f"{results:.3f} = {total:.3f} CPU-s, {total / (os.cpu_count() or 1):.3f} s on "
          f"{os.cpu_count()} cores at best")


if __name__ == "__main__":
    main()
