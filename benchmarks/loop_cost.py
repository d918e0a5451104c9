"""The parts of a run and a sweep that are not arithmetic, each timed in this process: a
metrics.csv row, checking a sweep's configs, reading its runs back for loss.png, and whole
runs (one xor run; 15 xor members stacked, with all their callbacks, with only metrics.csv's
row at an epoch's end, and with none), so that a change to one part can be measured against
the code before it, checked out beside this one:

    python benchmarks/loop_cost.py [--repeats 15]
    git worktree add /tmp/before <commit>
    PYTHONPATH=/tmp/before python /tmp/before/benchmarks/loop_cost.py   # if it has this file

Each figure is the median of --repeats timings (the row's: of 20 000 rows each).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XOR = ROOT / "configs" / "xor.yaml"
ROW = {"epoch": 5, "loss": 0.6931471805599453, "accuracy": 0.5, "lr": 0.5,
       "grad_norm": 0.012345678901234, "time_s": 0.0123456789, "evaluations": 10}


def median_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    repeats = parser.parse_args().repeats

    from nntrain.config import load_config, read_yaml
    from nntrain.loop import train
    from nntrain.runs import CsvLog, metrics_frame
    from nntrain.stack import train_stacked

    raw = read_yaml(XOR)
    points = [[f"model.initializer={init}", f"seed={seed}"]
              for init in ("zeros", "xavier_uniform", "he_normal") for seed in range(10)]
    members = [load_config(XOR, p) for p in points[::2]]  # 15 members
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        tmp = Path(tmp)
        log = CsvLog(tmp / "rows.csv", list(ROW))
        rows = 20_000
        row = median_of(repeats, lambda: [log.write(ROW) for _ in range(rows)]) / rows
        log.close()
        configs = median_of(repeats, lambda: [load_config(raw=raw, overrides=p) for p in points])
        runs = [train(load_config(XOR, p), out=tmp / f"run{i}").path
                for i, p in enumerate(points)]
        frames = median_of(repeats, lambda: [metrics_frame(run) for run in runs])
        count = iter(range(10**6))
        lone = median_of(repeats, lambda: train(members[0], out=tmp / f"lone{next(count)}"))
        stacked = median_of(max(3, repeats // 3), lambda: train_stacked(
            members, [tmp / f"s{next(count)}" for _ in members]))
        # what the members' callbacks cost at an epoch's end: only metrics.csv's row, none
        bare = {}
        for kept in ("MetricsLog", None):
            with epoch_enders(kept):
                bare[kept] = median_of(max(3, repeats // 3), lambda: train_stacked(
                    members, [tmp / f"s{next(count)}" for _ in members]))
    print("| part | median |\n|---|---|")
    print(f"| a metrics.csv row (CsvLog.write) | {row * 1e6:.2f} us |")
    print(f"| load_config of the xor sweep's 30 points | {configs * 1e3:.1f} ms |")
    print(f"| metrics_frame of its 30 runs (loss.png's reading) | {frames * 1e3:.1f} ms |")
    print(f"| one xor run, 1000 epochs (train) | {lone * 1e3:.1f} ms |")
    print(f"| 15 xor members stacked, 1000 epochs (train_stacked) | {stacked * 1e3:.1f} ms |")
    print(f"| the same, metrics.csv's row the only callback at an epoch's end | "
          f"{bare['MetricsLog'] * 1e3:.1f} ms |")
    print(f"| the same, no callback at an epoch's end | {bare[None] * 1e3:.1f} ms |")


@contextlib.contextmanager
def epoch_enders(kept: str | None):
    """Every CallbackList made in the block calls at an epoch's end only the callback of
    class ``kept`` (None: none): a bound on what acting for all members at once could save."""
    from nntrain.callbacks import CallbackList

    made = CallbackList.__init__

    def init(self, callbacks, training):
        made(self, callbacks, training)
        self.epoch_enders = [c for c in self.epoch_enders if type(c).__name__ == kept]

    CallbackList.__init__ = init
    try:
        yield
    finally:
        CallbackList.__init__ = made


if __name__ == "__main__":
    main()
