"""Pictures: loss curves of runs, per-layer gradient heat maps, the init check, the activations.

matplotlib is imported here only, with the headless Agg backend; nothing else
in nntrain imports this module at start-up.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from .runs import (SEED_KEYS, differing_keys, metrics_frame, read_config, read_summary,
                   variant_label)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 10})
    return plt


def _read_csv(path: Path):
    import pandas as pd

    return pd.read_csv(path)


def _log_scale_helps(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values) & (values > 0)]
    return finite.size > 1 and finite.max() / finite.min() > 100


def _natural(label: str) -> list:
    """Sort key reading numbers as numbers: lr=0.001 < lr=0.1 < lr=2 < lr=50."""
    parts = re.split(r"(-?\d+(?:\.\d*)?(?:e-?\d+)?)", label)
    return [(0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts)]


@np.errstate(over="ignore", invalid="ignore")  # matplotlib's log scale meets diverged runs' 1e300s
def plot_runs(run_dirs: list[Path], out: Path, metric: str = "loss") -> Path:
    """``metric`` against epoch for each run; runs differing only in seed are drawn as their mean
    with a min-max band. A single run also gets a heat map of per-layer gradient norms."""
    plt = _pyplot()
    configs = [read_config(d) for d in run_dirs]
    keys = [k for k in differing_keys(configs) if k not in SEED_KEYS + ("name",)]
    groups: dict[str, dict] = {}
    for run_dir, config in zip(run_dirs, configs):
        label = variant_label(config, keys) if keys else config.get("name") or run_dir.name
        group = groups.setdefault(label, {"frames": [], "diverged": 0})
        group["frames"].append(metrics_frame(run_dir))
        group["diverged"] += (read_summary(run_dir) or {}).get("status") == "diverged"
    available = set().union(*(set(f.columns) for g in groups.values() for f in g["frames"]))
    if metric not in available:
        from .registry import ConfigError

        raise ConfigError(f"no column {metric!r} in metrics.csv; columns: "
                          f"{', '.join(sorted(available))}", "--metric")
    single = len(run_dirs) == 1
    heat = single and (run_dirs[0] / "layers.csv").is_file()
    fig, axes = plt.subplots(1, 2 if heat else 1, figsize=(12 if heat else 7.5, 4.5), squeeze=False)
    ax = axes[0, 0]
    values, starts = [], []
    for label in sorted(groups, key=_natural):
        frames, diverged = groups[label]["frames"], groups[label]["diverged"]
        columns = [metric] + ([f"val_{metric}"] if single and f"val_{metric}" in frames[0] else [])
        for column in columns:
            curves = [f.set_index("epoch")[column] for f in frames if column in f]
            epochs = np.unique(np.concatenate([c.index.to_numpy() for c in curves]))
            # runs that stopped early (or diverged) leave gaps: statistics over the runs still going
            table = np.array([c.reindex(epochs).to_numpy(float) for c in curves])
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(table, axis=0)
                low, high = np.nanmin(table, axis=0), np.nanmax(table, axis=0)
            name = column if single else label
            if len(frames) > 1:
                name += f" (mean of {len(frames)}, min-max band)"
            if diverged:
                name += " (diverged)" if diverged == len(frames) else f" ({diverged} diverged)"
            (line,) = ax.plot(epochs, mean, label=name, lw=1.6)
            if len(frames) > 1:
                ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2, lw=0)
            values.append(table.ravel())
            starts.append(table[:, 0])
    _limits(ax, metric, np.concatenate(values), np.concatenate(starts))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    name = configs[0].get("name") or run_dirs[0].name
    title = name if single else f"{name}: {metric} of {len(run_dirs)} runs"
    ax.set_title(str(title))
    ax.legend(fontsize=8)
    if heat:
        _gradient_heatmap(fig, axes[0, 1], run_dirs[0] / "layers.csv")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def _limits(ax, metric: str, values: np.ndarray, starts: np.ndarray) -> None:
    """Log scale for a loss spanning decades; a diverging curve leaves through the top (10x the
    highest starting loss) instead of squashing every other curve against the bottom."""
    if not metric.endswith("loss"):
        return
    finite = values[np.isfinite(values)]
    start = starts[np.isfinite(starts)]
    if finite.size == 0 or start.size == 0:
        return
    log = _log_scale_helps(values)
    if log:
        ax.set_yscale("log")
    top = start.max() * (10 if log else 1.5)
    if finite.max() > top > 0:
        positive = finite[finite > 0]
        bottom = positive.min() / 2 if log and positive.size else None
        ax.set_ylim(bottom=bottom, top=top)


def _gradient_heatmap(fig, ax, layers_csv: Path) -> None:
    from matplotlib.colors import LogNorm

    frame = _read_csv(layers_csv)
    grid = frame.pivot(index="layer", columns="epoch", values="grad_norm")
    data = np.ma.masked_where(~(grid.to_numpy(float) > 0), grid.to_numpy(float))
    epochs = grid.columns.to_numpy()
    if data.count() == 0:
        ax.set_title("per-layer gradient norm: all zero")
        return
    image = ax.imshow(data, aspect="auto", origin="lower", norm=LogNorm(), cmap="viridis",
                      extent=(epochs[0], epochs[-1], 0.5, len(grid.index) + 0.5),
                      interpolation="nearest")
    if len(grid.index) <= 40:
        ax.set_yticks(range(1, len(grid.index) + 1))
    fig.colorbar(image, ax=ax, label="||dE/dW|| (log scale)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("layer (1 = input side)")
    ax.set_title("per-layer gradient norm")
    ax.grid(False)


def plot_inspect(rows: list[dict], out: Path) -> Path:
    """Activation std and gradient std against depth, one line per initializer."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for init in dict.fromkeys(r["initializer"] for r in rows):
        mine = [r for r in rows if r["initializer"] == init]
        layers = [r["layer"] for r in mine]
        left.plot(layers, [r["act_std"] for r in mine], marker="o", ms=3, label=init)
        right.plot(layers, [r["grad_std"] for r in mine], marker="o", ms=3, label=init)
    for ax, what in ((left, "activation std"), (right, "std of dE/dW")):
        ax.set_yscale("log")
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel(what)
        ax.set_title(f"{what} at initialization")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_activations(out: Path) -> Path:
    """Every hidden activation and its derivative on z in [-4, 4] (the figures of the notes)."""
    from .activations import ACTIVATIONS

    plt = _pyplot()
    names = [n for n in ACTIVATIONS if ACTIVATIONS.get(n).hidden]
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    z = np.linspace(-4, 4, 801)[None, :]
    for ax, name in zip(axes.flat, names):
        act = ACTIVATIONS.build(name)
        act.setup(z.shape[1], np.float64)
        a = act.forward(z.copy()).ravel().copy()
        slope = act.backward(np.ones_like(z)).ravel()
        ax.plot(z.ravel(), a, label="f(z)", lw=1.8)
        ax.plot(z.ravel(), slope, label="f'(z)", lw=1.4, ls="--")
        ax.set_title(name)
        ax.set_xlabel("z")
        ax.axhline(0, color="0.5", lw=0.6)
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle("Activations f(z) and their derivatives f'(z)")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
