"""What parameter snapshots cost: training time with train.snapshot_every auto (the default)
against 0, and the time to append one snapshot record.

    python benchmarks/snapshots.py [--repeats 5]

Each run trains in this process; the figure is summary.json's wall_time_s, the median over
--repeats runs, interleaved so that drift of the machine hits both settings alike. The
append time is the mean over the auto run's snapshots, timed around SnapshotFile.append.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from nntrain import load_config, train
from nntrain.snapshots import SnapshotFile

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {"xor, 2000 epochs": ("configs/xor.yaml", ["train.epochs=2000"]),
             "moons, 3000 epochs": ("configs/moons.yaml", ["train.epochs=3000"]),
             "digits, 60 epochs": ("configs/digits.yaml", [])}
APPENDS: list[float] = []


def timed_append(self, epoch, params, _append=SnapshotFile.append):
    start = time.perf_counter()
    _append(self, epoch, params)
    APPENDS.append(time.perf_counter() - start)


def wall_time(config: str, overrides: list[str], every: str) -> tuple[float, int]:
    cfg = load_config(ROOT / config, overrides + [f"train.snapshot_every={every}"])
    with tempfile.TemporaryDirectory() as tmp:
        run = train(cfg, out=Path(tmp) / "run")
        size = sum(p.stat().st_size for p in run.path.glob("snapshots.bin"))
        return run.summary["wall_time_s"], size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    SnapshotFile.append = timed_append
    print("| workload | snapshot_every: 0 | auto | cost | snapshots.bin | one append |\n"
          "|---|---|---|---|---|---|")
    for name, (config, overrides) in WORKLOADS.items():
        times: dict[str, list[float]] = {"0": [], "auto": []}
        APPENDS.clear()
        for _ in range(args.repeats):
            for every in times:
                seconds, size = wall_time(config, overrides, every)
                times[every].append(seconds)
        off, on = (statistics.median(times[k]) for k in ("0", "auto"))
        print(f"| {name} | {off:.3f} s | {on:.3f} s | {on / off - 1:+.1%} | {size / 1e3:.0f} kB "
              f"| {1e3 * statistics.mean(APPENDS):.3f} ms |", flush=True)


if __name__ == "__main__":
    main()
