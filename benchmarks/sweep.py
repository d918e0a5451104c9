"""A sweep's S members trained stacked (nntrain/stack.py), one run after another, and as
PyTorch's torch.func vmap ensemble, in one run: training time only, one BLAS thread each.

    pip install torch            # optional: without it the vmap column is left out
    python benchmarks/sweep.py [--members 1,10,30,100] [--repeats 3] [--epochs 200]

Workloads (each member a seed of the same config, so every member has its own initial
weights and batch order):
    xor          configs/xor.yaml, full batch of 4 rows
    moons-32     configs/moons.yaml with mini-batches of 32
    moons-full   configs/moons.yaml at full batch, 1000 samples, no validation
    digits       configs/digits.yaml (batches of 64)
and, with --only, iris, moons, circles and spiral: their configs as they are.
nntrain's members write their run folders (metrics.csv every epoch, layers.csv every 10);
the PyTorch loop writes nothing, so its column is the arithmetic's floor more than a peer of
the whole run. Each cell is the median of --repeats runs; ratios are against "one by one".
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {
    "xor": ("xor.yaml", {}),
    "moons-32": ("moons.yaml", {"optimizer.batch_size": 32}),
    "moons-full": ("moons.yaml", {"data.n_samples": 1000, "data.val_fraction": 0.0}),
    "digits": ("digits.yaml", {}),
    # compare's stacking rule (stack.MAX_MULTIPLY_ADDS), by a batch's multiply-adds per member
    "iris": ("iris.yaml", {}),
    "moons": ("moons.yaml", {}),
    "circles": ("circles.yaml", {}),
    "spiral": ("spiral.yaml", {}),
}
DEFAULT = ("xor", "moons-32", "moons-full", "digits")


def configs(name: str, members: int, epochs: int):
    from nntrain.config import load_config

    file, changes = WORKLOADS[name]
    out = []
    for seed in range(members):
        raw = yaml.safe_load((ROOT / "configs" / file).read_text())
        raw["seed"] = seed
        raw["train"] = {**raw.get("train", {}), "epochs": epochs, "threads": 1}
        for dotted, value in changes.items():
            section, key = dotted.split(".")
            raw.setdefault(section, {})[key] = value
        out.append(load_config(raw=raw))
    return out


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def nntrain_times(cfgs) -> tuple[float, float]:
    from nntrain.experiment import prepare
    from nntrain.loop import train
    from nntrain.stack import train_stacked

    data = prepare(cfgs[0])[1]  # loaded once, as compare's driver does
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stacked = timed(lambda: train_stacked(cfgs, [root / f"s{i}" for i in range(len(cfgs))],
                                              [data] * len(cfgs)))
        alone = timed(lambda: [train(c, out=root / f"a{i}", data=data) for i, c in enumerate(cfgs)])
    return stacked, alone


def torch_time(cfgs) -> float | None:
    """torch.func's model ensembling (stack_module_state + vmap of the loss's gradient), SGD
    with each member's own batch order, on the same data and layers."""
    try:
        import torch
        from torch.func import functional_call, grad, stack_module_state, vmap
    except ImportError:
        return None
    from nntrain.experiment import prepare

    torch.set_num_threads(1)
    cfg, data = prepare(cfgs[0])
    X = torch.tensor(data.X_train, dtype=torch.float64)
    multiclass = data.task == "multiclass"
    Y = torch.tensor(data.Y_train.argmax(axis=1) if multiclass else data.Y_train,
                     dtype=torch.long if multiclass else torch.float64)
    sizes = list(cfg.model.layers)
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}.get(cfg.model.activation, torch.nn.Tanh)

    def model():
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b, dtype=torch.float64))
            if i < len(sizes) - 2:
                layers.append(act())
        return torch.nn.Sequential(*layers)

    nets = [model() for _ in cfgs]
    params, buffers = stack_module_state(nets)
    base = model().to("meta")
    lossf = torch.nn.functional.cross_entropy if multiclass else (
        torch.nn.functional.binary_cross_entropy_with_logits if data.task == "binary"
        else torch.nn.functional.mse_loss)

    def loss(p, b, x, y):
        return lossf(functional_call(base, (p, b), (x,)), y)

    step = vmap(grad(loss), in_dims=(0, 0, 0, 0))
    n, size = len(X), cfg.optimizer.batch_size or len(X)
    lr, S = cfg.optimizer.lr or 0.01, len(cfgs)
    gens = [torch.Generator().manual_seed(s) for s in range(S)]

    def run():
        with torch.no_grad():
            for _ in range(cfg.train.epochs):
                orders = torch.stack([torch.randperm(n, generator=g) for g in gens])
                for begin in range(0, n, size):
                    idx = orders[:, begin:begin + size]
                    grads = step(params, buffers, X[idx], Y[idx])
                    for k in params:
                        params[k] -= lr * grads[k]
    return timed(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="1,10,30,100")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--only", help="workloads, comma-separated: " + ", ".join(WORKLOADS))
    args = parser.parse_args()
    print(f"| workload | S | one by one | stacked | ratio | torch.func vmap | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in args.only.split(",") if args.only else DEFAULT:
        for S in map(int, args.members.split(",")):
            cfgs = configs(name, S, args.epochs)
            runs = [nntrain_times(cfgs) for _ in range(args.repeats)]
            stacked = statistics.median(r[0] for r in runs)
            alone = statistics.median(r[1] for r in runs)
            peer = [torch_time(cfgs) for _ in range(args.repeats)]
            vmap_s = statistics.median(peer) if peer[0] is not None else None
            peer_cells = (f"{vmap_s:.2f} s | {alone / vmap_s:.1f}x" if vmap_s else "- | -")
            print(f"| {name} | {S} | {alone:.2f} s | {stacked:.2f} s | {alone / stacked:.1f}x | "
                  f"{peer_cells} |", flush=True)


if __name__ == "__main__":
    main()
