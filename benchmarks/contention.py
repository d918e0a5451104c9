"""Runs that share the machine: whole `nntrain train` processes, alone and side by side.

    python benchmarks/contention.py [--repeats 3] [--only digits blobs] [--threads auto]

For each workload, the wall time of whole processes (median over --repeats):
  alone            default settings, nothing else running
  alone, 1 thread  OPENBLAS_NUM_THREADS=1 (the single-thread time T1)
  N = C at once    C runs started together on C cores (the time of the slowest)
  N = 2C at once   2C runs started together
  beside busy      one run beside C busy-looping processes
and each as a multiple of its fair share (the workload "stacked" is one process training
16 members of moons in batches of 32 as compare's stacked group does, one BLAS thread:
nntrain/stack.py):
  N runs on C cores deserve C/N cores each: fair time T1 x N / C;
  beside C busy processes a run deserves C/(C+1) of a core: fair time T1 x (C+1) / C.
A run alone is not held to the formula (it may use every core). When PyTorch is
installed, the same blobs network trained by a plain PyTorch loop (default
threads) is measured in the same way, as the peer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CORES = len(os.sched_getaffinity(0))

WORKLOADS = {
    "digits": {  # 64-128-10, full batch, 300 epochs
        "seed": 0, "data": {"name": "digits", "standardize": True, "seed": 0},
        "model": {"layers": [64, 128, 10], "activation": "tanh"},
        "optimizer": {"name": "gd", "lr": 0.5}, "train": {"epochs": 300},
    },
    "blobs": {  # 256-256-256-10, batch 128, 6 epochs
        "seed": 0, "data": {"name": "blobs", "n_samples": 10000, "n_features": 256,
                            "n_classes": 10, "seed": 0},
        "model": {"layers": [256, 256, 256, 10], "activation": "tanh"},
        "optimizer": {"name": "gd", "lr": 0.05, "batch_size": 128}, "train": {"epochs": 6},
    },
    "dead_relu": str(ROOT / "configs/lessons/dead_relu.yaml"),
    "mnistlike": {  # 784-256-256-10, batch 128, float32: the largest that auto keeps on one thread
        "seed": 0, "data": {"name": "blobs", "n_samples": 10000, "n_features": 784,
                            "n_classes": 10, "seed": 0},
        "model": {"layers": [784, 256, 256, 10], "activation": "tanh"},
        "optimizer": {"name": "gd", "lr": 0.05, "batch_size": 128},
        "train": {"epochs": 8, "dtype": "float32"},
    },
    "wide": {  # 784-1024-1024-10, batch 1000, float32: auto gives it more than one thread
        "seed": 0, "data": {"name": "blobs", "n_samples": 10000, "n_features": 784,
                            "n_classes": 10, "seed": 0},
        "model": {"layers": [784, 1024, 1024, 10], "activation": "tanh"},
        "optimizer": {"name": "gd", "lr": 0.05, "batch_size": 1000},
        "train": {"epochs": 3, "dtype": "float32"},
    },
}

TORCH_BLOBS = """
import time, torch
torch.manual_seed(0)
X = torch.randn(10000, 256, dtype=torch.float64)
y = torch.randint(0, 10, (10000,))
model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Tanh(), torch.nn.Linear(256, 256),
                            torch.nn.Tanh(), torch.nn.Linear(256, 10)).double()
loss_fn = torch.nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(6):
    order = torch.randperm(10000)
    for begin in range(0, 10000, 128):
        idx = order[begin:begin + 128]
        opt.zero_grad()
        loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
"""


STACKED = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {benchmarks!r})
import sweep
from nntrain.stack import train_stacked
cfgs = sweep.configs("moons-32", 16, 200)  # 16 seeds, 200 epochs, train.threads 1
with tempfile.TemporaryDirectory() as tmp:
    train_stacked(cfgs, [Path(tmp) / f"m{{s}}" for s in range(len(cfgs))])
"""


def command(name: str, folder: Path, threads: str) -> list[str]:
    if name == "torch-blobs":
        return [sys.executable, "-c", TORCH_BLOBS]
    if name == "stacked":
        return [sys.executable, "-c", STACKED.format(benchmarks=str(ROOT / "benchmarks"))]
    spec = WORKLOADS[name]
    if isinstance(spec, dict):
        config = folder / f"{name}.yaml"
        config.write_text(yaml.safe_dump({"name": name, **spec}))
    else:
        config = Path(spec)
    extra = [] if threads == "auto" else [f"train.threads={threads}"]
    return [sys.executable, "-m", "nntrain", "train", str(config), *extra, "--quiet",
            "--out", str(folder / f"run-{time.perf_counter_ns()}")]


def together(make_args, count: int, env: dict, busy: int = 0) -> float:
    """Start ``count`` copies at once (beside ``busy`` spinning processes); the slowest's time."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        if busy:
            time.sleep(0.3)  # the spinners are running before the clock starts
        start = time.perf_counter()
        procs = [subprocess.Popen(make_args(), env=env, stdout=subprocess.DEVNULL)
                 for _ in range(count)]
        for p in procs:
            if p.wait() != 0:
                raise SystemExit(f"failed: {' '.join(p.args)}")
        return time.perf_counter() - start
    finally:
        for s in spinners:
            s.kill()
            s.wait()


def measure(name: str, repeats: int, threads: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    one = {**base, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cases = {"alone": (1, base, 0), "alone_1": (1, one, 0), "n_cores": (CORES, base, 0),
             "n_2cores": (2 * CORES, base, 0), "busy": (1, base, CORES)}
    times: dict[str, list[float]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):  # interleaved: drift of the machine hits every case alike
            for case, (count, env, busy) in cases.items():
                times[case].append(together(lambda: command(name, Path(tmp), threads),
                                            count, env, busy))
    t = {case: statistics.median(v) for case, v in times.items()}
    t1 = t["alone_1"]
    return {"workload": name, **t, "fair_n_cores": t["n_cores"] / t1,
            "fair_n_2cores": t["n_2cores"] / (t1 * 2),
            "fair_busy": t["busy"] / (t1 * (CORES + 1) / CORES)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[*WORKLOADS, "stacked", "torch-blobs"])
    parser.add_argument("--threads", default="auto", help="train.threads for nntrain's runs")
    args = parser.parse_args()
    import importlib.util

    names = [n for n in args.only if n != "torch-blobs" or importlib.util.find_spec("torch")]
    print(f"{CORES} cores; medians of {args.repeats}; train.threads={args.threads}\n")
    print(f"| workload | alone | alone, 1 BLAS thread | {CORES} at once | {2 * CORES} at once "
          f"| beside {CORES} busy processes |")
    print("|---|---|---|---|---|---|")
    for name in names:
        r = measure(name, args.repeats, args.threads)
        print(f"| {name} | {r['alone']:.2f} s | {r['alone_1']:.2f} s | {r['n_cores']:.2f} s "
              f"({r['fair_n_cores']:.2f}x fair share) | {r['n_2cores']:.2f} s "
              f"({r['fair_n_2cores']:.2f}x) | {r['busy']:.2f} s ({r['fair_busy']:.2f}x) |",
              flush=True)


if __name__ == "__main__":
    main()
