"""A compare's fixed cost: the whole command, and the same command without loss.png (issue 24:
"a sweep's fixed cost, without loss.png, must be at most 1.0 s"), each as a fresh process,
interleaved, with the CPU time its processes spent (the driver's and its workers'):

    python benchmarks/fixed_cost.py [--repeats 5] [-- COMPARE ARGS...]

Without loss.png, the driver neither imports matplotlib nor draws (``import_for_results``
imports pandas alone, ``plots.plot_runs`` does nothing); everything else, results.csv and
summary.csv included, is the command's own. The default sweep is one xor run (--seeds 1).
Medians and ranges of --repeats runs of each.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHOLE = "from nntrain.cli import main; main()"
WITHOUT_PICTURE = (
    "import nntrain.compare, nntrain.plots\n"
    "nntrain.compare.import_for_results = lambda: __import__('pandas')\n"
    "nntrain.plots.plot_runs = lambda *args, **kwargs: None\n"
    "from nntrain.cli import main; main()\n")


def timed(code: str, args: list[str], out: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the command's processes) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, "compare", *args, "--out", str(out)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("compare", nargs="*", default=["configs/xor.yaml", "--seeds", "1"])
    options = parser.parse_args()
    kinds = {"whole command": WHOLE, "without loss.png": WITHOUT_PICTURE}
    times: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(options.repeats):
            for kind, code in kinds.items():
                out = Path(tmp) / f"{len(times[kind])}-{kind.split()[0]}"
                times[kind].append(timed(code, options.compare, out))
    print(f"compare {' '.join(options.compare)}, {options.repeats} of each interleaved\n")
    print("| | wall | CPU (user + system) |\n|---|---|---|")
    for kind, runs in times.items():
        walls, cpus = zip(*runs)
        print(f"| {kind} | {min(walls):.2f}-{max(walls):.2f} s (median "
              f"{statistics.median(walls):.2f}) | {statistics.median(cpus):.2f} s |")


if __name__ == "__main__":
    main()
