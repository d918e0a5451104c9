"""Wall time of `nntrain compare` over 8 runs with 1 and with 2 workers (medians of repeats).

    python benchmarks/compare_scaling.py [--repeats 3]

The grid is benchmarks/medium.yaml over 8 seeds: blobs with 64 features,
layers [64, 128, 128, 10], 150 epochs of mini-batches of 200.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def wall_time(workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nntrain", "compare", str(HERE / "medium.yaml"),
                        "--seeds", "8", "--workers", str(workers), "--out", f"{tmp}/c"],
                       check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    times = {w: [] for w in (1, 2)}
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits both alike
        for workers in times:
            times[workers].append(wall_time(workers))
    one, two = (statistics.median(times[w]) for w in (1, 2))
    print("| workers | wall time (median of %d) |" % repeats)
    print("|---|---|")
    print(f"| 1 | {one:.2f} s |")
    print(f"| 2 | {two:.2f} s |")
    print(f"\nspeed-up with 2 workers: {one / two:.2f}x")


if __name__ == "__main__":
    main()
