"""nntrain against PyTorch CPU on the same MLP training workloads, in one run.

    pip install torch            # optional: without it only nntrain's side is measured
    python benchmarks/bench.py [--repeats 3] [--only mnistlike]

Each measurement runs in its own process (so neither library's thread pools
disturb the other's), each library with its default threads: nntrain's real
training path (``nntrain.train`` on a config, default diagnostics and
``train.threads: auto``, writing its run folder; "threads" says how many BLAS
threads auto gave the run) and a plain PyTorch loop (nn.Sequential of Linear+Tanh, CrossEntropyLoss on
the logits, torch.optim.SGD, shuffled mini-batches, the epoch's loss summed
from the batches). Both train on the same synthetic blobs with gd, lr 0.05.
The epoch time is the median over the epochs after a warm-up; the table gives
the median of ``--repeats`` such runs, the ratio nntrain / PyTorch (below 1:
nntrain is faster) and nntrain's share of the machine's GEMM peak measured in
the same run (2 x n^3 flops of a 2048^3 matmul, best of 5, all cores). More
columns say where the time goes: the matrix products of an epoch alone in NumPy
(with nntrain's thread count: the limit a NumPy program reaches with those
threads) and in PyTorch, nntrain's epoch against NumPy's products alone, and a
plain textbook NumPy loop on the same workload against PyTorch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name: (layers, samples, batch (None = full), dtype, epochs measured)
WORKLOADS = {
    "xor": ([2, 4, 2], 4, None, "float64", 3000),
    "moons": ([2, 16, 16, 2], 1000, None, "float64", 1500),
    "digits": ([64, 128, 10], 1797, None, "float64", 400),
    "mnistlike-f32": ([784, 256, 256, 10], 10000, 128, "float32", 8),
    "mnistlike-f64": ([784, 256, 256, 10], 10000, 128, "float64", 6),
    "wide": ([784, 1024, 1024, 10], 10000, 1000, "float32", 6),
    "deep30": ([64] * 31 + [10], 2000, None, "float64", 150),
}
WARMUP = 2  # epochs left out of the median (first-touch of buffers, lazy imports)


def config_for(name: str, diagnostics_every: int = 10) -> dict:
    layers, samples, batch, dtype, epochs = WORKLOADS[name]
    return {
        "name": f"bench-{name}", "seed": 0,
        "data": {"name": "blobs", "n_samples": samples, "n_features": layers[0],
                 "n_classes": layers[-1], "task": "multiclass", "seed": 0},
        "model": {"layers": layers, "activation": "tanh", "output_activation": "softmax",
                  "initializer": "xavier_uniform"},
        "loss": "cross_entropy",
        "optimizer": {"name": "gd", "lr": 0.05, "batch_size": batch},
        "train": {"epochs": epochs + WARMUP, "dtype": dtype, "diagnostics_every": diagnostics_every},
    }


def flops_per_epoch(name: str) -> float:
    """Forward 2 N sum(fan_in fan_out); backward twice that, less the input layer's dX."""
    layers, samples, *_ = WORKLOADS[name]
    pairs = list(zip(layers[:-1], layers[1:]))
    weights = sum(a * b for a, b in pairs)
    return 2 * samples * (3 * weights - layers[0] * layers[1])


# -- one measurement, in a child process ----------------------------------------------------


THREADS = {}  # workload -> BLAS threads train.threads auto gave the run (from summary.json)


def measure_nntrain(name: str, diagnostics_every: int = 10) -> list[float]:
    from nntrain import load_config, train

    cfg = load_config(raw=config_for(name, diagnostics_every))
    with tempfile.TemporaryDirectory() as tmp:
        run = train(cfg, out=Path(tmp) / "run")
    THREADS[name] = run.summary["threads"]
    times = [row["time_s"] for row in run.history]  # seconds since training began, per epoch
    return [b - a for a, b in zip(times[1:], times[2:])][WARMUP - 1:]


def measure_torch(name: str) -> list[float]:
    import torch

    from nntrain.datasets import load_data

    layers, samples, batch, dtype, epochs = WORKLOADS[name]
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    data = load_data({"name": "blobs", "n_samples": samples, "n_features": layers[0],
                      "n_classes": layers[-1]}, task="multiclass")
    X = torch.tensor(data.X_train, dtype=torch_dtype)
    y = torch.tensor(data.Y_train.argmax(axis=1))
    modules = []
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
        modules.append(torch.nn.Linear(a, b, dtype=torch_dtype))
        if i < len(layers) - 2:
            modules.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*modules)
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    n = len(X)
    size = batch or n
    torch.manual_seed(0)
    times = []
    for _ in range(epochs + WARMUP):
        start = time.perf_counter()
        order = torch.randperm(n) if size < n else None
        total, correct = 0.0, 0
        for begin in range(0, n, size):
            xb, yb = (X, y) if order is None else (X[order[begin:begin + size]], y[order[begin:begin + size]])
            optimizer.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
            correct += (logits.argmax(1) == yb).sum().item()
        times.append(time.perf_counter() - start)
    return times[WARMUP:]


def measure_plain_numpy(name: str) -> list[float]:
    """The textbook NumPy loop: fancy-indexed batches, z = a W + b, tanh, softmax, (o - y)/N,
    the backward products, W -= lr dW; with the BLAS threads nntrain gives the workload."""
    import numpy as np

    from nntrain.datasets import load_data
    from nntrain.threads import blas_threads, limit_threads

    layers, samples, batch, dtype, epochs = WORKLOADS[name]
    limit_threads(blas_threads("auto", layers, batch or samples))  # nntrain's count, for the run
    data = load_data({"name": "blobs", "n_samples": samples, "n_features": layers[0],
                      "n_classes": layers[-1]}, task="multiclass")
    X, Y = data.X_train.astype(dtype), data.Y_train.astype(dtype)
    rng = np.random.default_rng(0)
    Ws = [(rng.uniform(-1, 1, (a, b)) * np.sqrt(6 / (a + b))).astype(dtype)
          for a, b in zip(layers[:-1], layers[1:])]
    bs = [np.zeros(b, dtype) for b in layers[1:]]
    n, size = len(X), batch or len(X)
    times = []
    for _ in range(epochs + WARMUP):
        start = time.perf_counter()
        order = rng.permutation(n)
        total = 0.0
        for begin in range(0, n, size):
            idx = order[begin:begin + size]
            xb, yb = X[idx], Y[idx]
            acts = [xb]
            for i, (W, b) in enumerate(zip(Ws, bs)):
                z = acts[-1] @ W + b
                acts.append(np.tanh(z) if i < len(Ws) - 1 else z)
            z = acts[-1]
            e = np.exp(z - z.max(axis=1, keepdims=True))
            o = e / e.sum(axis=1, keepdims=True)
            total += -np.sum(yb * np.log(o + 1e-12))
            delta = (o - yb) / len(xb)
            for i in range(len(Ws) - 1, -1, -1):
                dW, db = acts[i].T @ delta, delta.sum(axis=0)
                if i > 0:
                    delta = (delta @ Ws[i].T) * (1 - acts[i] ** 2)
                Ws[i] -= 0.05 * dW
                bs[i] -= 0.05 * db
        times.append(time.perf_counter() - start)
    return times[WARMUP:]


def gemm_epoch(name: str, library: str) -> float:
    """Seconds for just the matrix products of one epoch (forward a @ W, backward a.T @ delta and
    delta @ W.T), with the workload's shapes: what the epoch costs before anything else.
    NumPy's use the thread count nntrain's auto gives the workload; PyTorch's its default."""
    import numpy as np

    from nntrain.threads import blas_threads, limit_threads

    layers, samples, batch, dtype, _ = WORKLOADS[name]
    THREADS[name] = blas_threads("auto", layers, batch or samples)
    size = batch or samples
    rng = np.random.default_rng(0)
    shapes = list(zip(layers[:-1], layers[1:]))
    W = [rng.random((a, b)).astype(dtype) for a, b in shapes]
    acts = [rng.random((size, n)).astype(dtype) for n in layers]
    if library == "torch":
        import torch

        W = [torch.from_numpy(w) for w in W]
        acts = [torch.from_numpy(a) for a in acts]
        mm = torch.mm
    else:
        mm = np.matmul
    batches = -(-samples // size)

    def epoch():
        for _ in range(batches):
            for a, w in zip(acts, W):
                mm(a, w)
            for i in range(len(W) - 1, -1, -1):
                mm(acts[i].T, acts[i + 1])
                if i > 0:
                    mm(acts[i + 1], W[i].T)

    threads = limit_threads(THREADS[name]) if library == "numpy" else contextlib.nullcontext()
    with threads:
        epoch()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            epoch()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_peak(dtype: str) -> float:
    import numpy as np

    n = 2048
    a = np.random.default_rng(0).random((n, n)).astype(dtype)
    b = a.copy()
    c = np.empty_like(a)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def child(kind: str, name: str) -> None:
    if kind == "nntrain":
        result = statistics.median(measure_nntrain(name))
    elif kind == "nodiag":
        result = statistics.median(measure_nntrain(name, diagnostics_every=0))
    elif kind == "torch":
        result = statistics.median(measure_torch(name))
    elif kind == "plain":
        result = statistics.median(measure_plain_numpy(name))
    elif kind == "peak":
        result = gemm_peak(name)
    elif kind in ("gemm-numpy", "gemm-torch"):
        result = gemm_epoch(name, kind.split("-")[1])
    print(json.dumps({"value": result, "threads": THREADS.get(name), "maxrss_mb": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024}))


# -- the driver -----------------------------------------------------------------------------


def run_child(kind: str, name: str) -> dict:
    env = {k: v for k, v in os.environ.items()  # each library chooses its own threads
           if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, __file__, "--child", kind, name], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def have_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def command_time(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, cwd=tempfile.gettempdir())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    torch = have_torch()
    peak = {d: statistics.median(run_child("peak", d)["value"] for _ in range(args.repeats))
            for d in ("float32", "float64")}
    rows = []
    for name in args.only:
        dtype = WORKLOADS[name][3]
        ours, theirs, nodiag, gemm_np, gemm_torch, plain = [], [], [], [], [], []
        for _ in range(args.repeats):  # interleaved: machine drift hits both alike
            measured = run_child("nntrain", name)
            ours.append(measured["value"])
            nodiag.append(run_child("nodiag", name)["value"])
            plain.append(run_child("plain", name)["value"])
            gemm_np.append(run_child("gemm-numpy", name)["value"])
            if torch:
                theirs.append(run_child("torch", name)["value"])
                gemm_torch.append(run_child("gemm-torch", name)["value"])
        ours_s = statistics.median(ours)
        row = {"workload": name, "threads": measured["threads"], "nntrain_ms": ours_s * 1e3,
               "no_diag_ms": statistics.median(nodiag) * 1e3,
               "gemm_share": flops_per_epoch(name) / ours_s / peak[dtype]}
        row["gemm_numpy_ms"] = statistics.median(gemm_np) * 1e3
        row["plain_ms"] = statistics.median(plain) * 1e3
        if torch:
            row["torch_ms"] = statistics.median(theirs) * 1e3
            row["ratio"] = ours_s / statistics.median(theirs)
            row["gemm_torch_ms"] = statistics.median(gemm_torch) * 1e3
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    print(f"GEMM peak (2048^3 matmul, {os.cpu_count()} threads): float32 {peak['float32'] / 1e9:.1f} "
          f"GFLOP/s, float64 {peak['float64'] / 1e9:.1f} GFLOP/s\n")
    print("| workload | threads | nntrain epoch | PyTorch epoch | nntrain / PyTorch | diagnostics cost "
          "| share of GEMM peak | matmuls alone: NumPy / torch | nntrain / NumPy matmuls "
          "| rest of the epoch: nntrain / torch | plain NumPy loop / PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        torch_ms = f"{r['torch_ms']:.3f} ms" if "torch_ms" in r else "-"
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        gemm = rest = "-"
        if "gemm_torch_ms" in r:
            gemm = (f"{r['gemm_numpy_ms']:.3f} / {r['gemm_torch_ms']:.3f} ms = "
                    f"{r['gemm_numpy_ms'] / r['gemm_torch_ms']:.2f}")
            ours_rest = r["nntrain_ms"] - r["gemm_numpy_ms"]
            theirs_rest = r["torch_ms"] - r["gemm_torch_ms"]
            rest = f"{ours_rest:.3f} / {theirs_rest:.3f} ms"
        plain_col = (f"{r['plain_ms']:.3f} ms = {r['plain_ms'] / r['torch_ms']:.2f}" if "torch_ms" in r
                     else f"{r['plain_ms']:.3f} ms")
        print(f"| {r['workload']} | {r['threads']} | {r['nntrain_ms']:.3f} ms | {torch_ms} | {ratio} | "
              f"{r['nntrain_ms'] / r['no_diag_ms'] - 1:+.1%} | {r['gemm_share']:.0%} | {gemm} | "
              f"{r['nntrain_ms'] / r['gemm_numpy_ms']:.2f} | {rest} | {plain_col} |")

    nntrain = [sys.executable, "-m", "nntrain"]
    xor = command_time(nntrain + ["train", str(Path(__file__).parent.parent / "configs/xor.yaml"),
                                  "--quiet", "--out", tempfile.mkdtemp() + "/r"], 1)
    xor = statistics.median([xor] + [command_time(
        nntrain + ["train", str(Path(__file__).parent.parent / "configs/xor.yaml"), "--quiet",
                   "--out", tempfile.mkdtemp() + "/r"], 1) for _ in range(args.repeats - 1)])
    help_time = command_time(nntrain + ["--help"], max(args.repeats, 3))
    rss = run_child("nntrain", "mnistlike-f32")["maxrss_mb"]
    print(f"\n`nntrain train configs/xor.yaml` whole process: {xor:.2f} s; `nntrain --help`: "
          f"{help_time:.2f} s; peak memory of the mnistlike float32 run: {rss:.0f} MB")


if __name__ == "__main__":
    main()
