"""What checkpoints cost: training time with train.checkpoint_every auto (the default) against 0.

    python benchmarks/checkpoints.py [--repeats 5]

Each run trains in this process; the figure is summary.json's wall_time_s, the median over
--repeats runs, interleaved so that drift of the machine hits both settings alike.
"""

import argparse
import statistics
import tempfile
from pathlib import Path

from nntrain import load_config, train

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {"xor, 2000 epochs": ("configs/xor.yaml", []),
             "moons, 3000 epochs": ("configs/moons.yaml", ["train.epochs=3000"]),
             "digits, 60 epochs": ("configs/digits.yaml", [])}


def wall_time(config: str, overrides: list[str], every: str) -> float:
    cfg = load_config(ROOT / config, overrides + [f"train.checkpoint_every={every}"])
    with tempfile.TemporaryDirectory() as tmp:
        return train(cfg, out=Path(tmp) / "run").summary["wall_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| workload | checkpoint_every: 0 | auto | cost |\n|---|---|---|---|")
    for name, (config, overrides) in WORKLOADS.items():
        times = {"0": [], "auto": []}
        for _ in range(args.repeats):
            for every in times:
                times[every].append(wall_time(config, overrides, every))
        off, on = (statistics.median(times[k]) for k in ("0", "auto"))
        print(f"| {name} | {off:.3f} s | {on:.3f} s | {on / off - 1:+.1%} |", flush=True)


if __name__ == "__main__":
    main()
