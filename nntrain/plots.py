"""Pictures: loss curves of runs, per-layer gradient heat maps, the init check, the activations.

matplotlib is imported here and in pictures.py only, with the headless Agg
backend; nothing in nntrain imports either module at start-up.
"""

from __future__ import annotations

import re
import textwrap
import warnings
from pathlib import Path

import numpy as np

from .diagnostics import LAYER_COLUMNS
from .registry import ConfigError, did_you_mean, label
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


METRIC_COLUMNS = ["loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae", "lr",
                  "grad_norm", "time_s"]
# layers.csv's own columns (its grad_norm is per layer; --metric grad_norm is metrics.csv's)
LAYER_METRICS = [c for c in LAYER_COLUMNS if c not in ("epoch", "layer", "activation")
                 and c not in METRIC_COLUMNS]
MAX_LAYER_PANELS = 6
INSIDE_LEGEND = 8  # past this many series a legend goes below its axes


def check_metric(metric: str) -> None:
    """``--metric``: a metrics.csv or layers.csv column, checked before anything runs."""
    known = METRIC_COLUMNS + LAYER_METRICS
    if metric not in known:
        raise ConfigError(f"no column {metric!r} in metrics.csv or layers.csv"
                          f"{did_you_mean(metric, known)} metrics.csv: "
                          f"{', '.join(METRIC_COLUMNS)}; layers.csv: {', '.join(LAYER_METRICS)}",
                          "--metric")


def picture_path(out: Path) -> Path:
    """The file savefig writes: matplotlib adds .png to a name without a suffix."""
    out = Path(out)
    if not out.suffix:
        return out.with_name(out.name + ".png")
    if out.suffix[1:].lower() not in ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "webp",
                                      "tif", "tiff", "pgf", "raw", "rgba", "svgz"):
        raise ConfigError(f"unknown picture format {out.suffix!r}; use .png, .svg or .pdf",
                          f"-o {out}")
    return out


def _save(plt, fig, out: Path) -> Path:
    """Save at a size that holds every legend (bbox 'tight' grows the canvas; no warnings)."""
    written = picture_path(out)
    fig.savefig(written, bbox_inches="tight")
    plt.close(fig)
    return written


def _panels(run_dirs: list[Path], configs: list[dict], metric: str) -> list[dict]:
    """What goes on which axes: one panel, one per loss (curves of different losses share no
    scale), or, for a layers.csv column, one per layer."""
    keys = [k for k in differing_keys(configs) if k not in SEED_KEYS + ("name",)]
    runs = [{"dir": d, "config": c} for d, c in zip(run_dirs, configs)]
    if metric in LAYER_METRICS:
        depth = max(int(_layer_frame(d)["layer"].max()) for d in run_dirs)
        layers = sorted({round(1 + i * (depth - 1) / max(MAX_LAYER_PANELS - 1, 1))
                         for i in range(min(depth, MAX_LAYER_PANELS))})
        return [{"title": f"layer {k} of {depth}", "runs": runs, "keys": keys, "layer": k}
                for k in layers]
    if metric.endswith("loss") and "loss" in keys:
        others = [k for k in keys if k != "loss"]
        by_loss: dict[str, list] = {}
        for run in runs:
            by_loss.setdefault(label(run["config"].get("loss")), []).append(run)
        return [{"title": f"loss {name}", "runs": members, "keys": others, "layer": None}
                for name, members in by_loss.items()]
    return [{"title": "", "runs": runs, "keys": keys, "layer": None}]


def _layer_frame(run_dir: Path):
    path = run_dir / "layers.csv"
    if not path.is_file():
        raise ConfigError("has no layers.csv (train.diagnostics_every: 0?)", str(run_dir))
    return _read_csv(path)


def _series(run_dir: Path, metric: str, layer: int | None):
    """(epoch-indexed frame) of one run: metrics.csv, or one layer's rows of layers.csv."""
    if layer is None:
        return metrics_frame(run_dir)
    frame = _layer_frame(run_dir)
    return frame[frame["layer"] == layer].drop(columns=["layer", "activation"])


@np.errstate(over="ignore", invalid="ignore")  # matplotlib's log scale meets diverged runs' 1e300s
def plot_runs(run_dirs: list[Path], out: Path, metric: str = "loss") -> Path:
    """``metric`` against epoch for each run; runs differing only in seed are drawn as their mean
    with a min-max band. A single run also gets a heat map of per-layer gradient norms.
    Returns the file written."""
    check_metric(metric)
    written = picture_path(out)
    plt = _pyplot()
    configs = [read_config(d) for d in run_dirs]
    panels = _panels(run_dirs, configs, metric)
    single = len(run_dirs) == 1
    heat = single and metric in METRIC_COLUMNS and (run_dirs[0] / "layers.csv").is_file()
    count = len(panels) + heat
    # no layout engine: it would shrink the axes to make room for a long legend; savefig's
    # tight bounding box grows the picture around the legend instead
    fig, axes = plt.subplots(1, count, figsize=(6.5 * count, 4.5), squeeze=False)
    fig.subplots_adjust(wspace=0.3)
    drawn = [_draw_panel(ax, panel, metric, single) for ax, panel in zip(axes[0], panels)]
    if not any(drawn):
        plt.close(fig)
        columns = sorted(set().union(*(metrics_frame(d).columns for d in run_dirs)))
        raise ConfigError(f"no column {metric!r} in these runs' files; metrics.csv has: "
                          f"{', '.join(columns)}", "--metric")
    name = configs[0].get("name") or run_dirs[0].name
    title = name if single else f"{name}: {metric} of {len(run_dirs)} runs"
    fig.suptitle(str(title), y=1.0 if count > 1 else 0.98)
    if heat:
        _gradient_heatmap(fig, axes[0, -1], run_dirs[0] / "layers.csv")
    return _save(plt, fig, written)


def _draw_panel(ax, panel: dict, metric: str, single: bool) -> int:
    """One axes: per variant the mean curve, a min-max band over seeds, lone points as markers
    and an x where a run diverged. Returns the number of curves drawn."""
    groups: dict[str, list] = {}
    for run in panel["runs"]:
        name = (variant_label(run["config"], panel["keys"]) if panel["keys"]
                else run["config"].get("name") or run["dir"].name)
        groups.setdefault(name, []).append(run)
    values, starts, count, banded = [], [], 0, False
    if len(groups) > 10:  # past the 10 default colours: one colour scale in the legend's order
        ax.set_prop_cycle(color=list(plt_colormap("viridis")(np.linspace(0, 0.9, len(groups)))))
    for name in sorted(groups, key=_natural):
        members = groups[name]
        frames = [_series(r["dir"], metric, panel["layer"]) for r in members]
        diverged = [(read_summary(r["dir"]) or {}).get("status") == "diverged" for r in members]
        columns = [metric] + ([f"val_{metric}"] if single and f"val_{metric}" in frames[0] else [])
        for column in columns:
            curves = [f.set_index("epoch")[column] for f in frames if column in f]
            if not curves:
                continue
            epochs = np.unique(np.concatenate([c.index.to_numpy() for c in curves]))
            # runs that stopped early (or diverged) leave gaps: statistics over the runs still going
            table = np.array([c.reindex(epochs).to_numpy(float) for c in curves])
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(table, axis=0)
                low, high = np.nanmin(table, axis=0), np.nanmax(table, axis=0)
            text = column if single else name
            if len(curves) > 1:  # the legend's title says what the line and the band are
                text += f" ({len(curves)} runs)"
                banded = True
            if any(diverged):
                text += " (diverged)" if all(diverged) else f" ({sum(diverged)} diverged)"
            (line,) = ax.plot(epochs, mean, label=textwrap.fill(text, 60), lw=1.6)
            _mark_points(ax, epochs, table, mean, diverged, line.get_color())
            if len(curves) > 1:
                ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2, lw=0)
            values.append(table.ravel())
            starts.append(table[:, 0])
            count += 1
    if count:
        _limits(ax, metric, np.concatenate(values), np.concatenate(starts))
        _legend(ax, count, "line: mean over seeds; band: min to max" if banded else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(panel["title"])
    return count


def _mark_points(ax, epochs, table, mean, diverged, color) -> None:
    """A point with no finite neighbour draws no line: give it a marker. A diverged run gets an x
    at its last finite value (the epoch after it is inf or NaN)."""
    finite = np.isfinite(mean)
    before = np.concatenate([[False], finite[:-1]])
    after = np.concatenate([finite[1:], [False]])
    lone = finite & ~before & ~after
    if lone.any():
        ax.plot(epochs[lone], mean[lone], "o", color=color, ms=5)
    for row, gone in zip(table, diverged):
        ok = np.flatnonzero(np.isfinite(row))
        if gone and ok.size:
            ax.plot(epochs[ok[-1]], row[ok[-1]], "x", color=color, ms=9, mew=2)


def _legend(ax, count: int, title: str | None = None) -> None:
    """Inside the axes for a few curves; below them, in columns, past INSIDE_LEGEND."""
    if count <= INSIDE_LEGEND:
        ax.legend(fontsize=8, title=title, title_fontsize=8)
        return
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), title=title,
              title_fontsize=7, ncol=2 if count > 3 * INSIDE_LEGEND else 1, frameon=False)


def plt_colormap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


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
    # cell edges halfway between the epochs diagnosed: epoch 0 gets a full-width column too
    mids = (epochs[1:] + epochs[:-1]) / 2 if len(epochs) > 1 else np.array([])
    step = epochs[1] - epochs[0] if len(epochs) > 1 else 1
    last = epochs[-1] - epochs[-2] if len(epochs) > 1 else 1
    edges = np.concatenate([[epochs[0] - step / 2], mids, [epochs[-1] + last / 2]])
    rows = np.arange(len(grid.index) + 1) + 0.5
    image = ax.pcolormesh(edges, rows, data, norm=LogNorm(), cmap="viridis")
    if len(epochs) > 20:  # a long run: log-like time axis, so the first epochs (where the
        # gradients change most) are as wide as the last hundreds, not a sliver at the left
        ax.set_xscale("symlog", linthresh=max(float(step), 1.0))
        ax.set_xlim(edges[0], edges[-1])
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
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
        _legend(ax, len(set(r["initializer"] for r in rows)))
    return _save(plt, fig, out)


MAX_HISTOGRAM_LAYERS = 10  # columns of the histogram grid; deeper nets show layers spread evenly


def plot_histograms(groups: list[tuple[str, list[tuple]]], out: Path) -> Path:
    """Histograms of each hidden layer's activations at initialization: one row per initializer,
    one column per layer, the x axis shared within a row (Deep Learning from Scratch, ch. 6)."""
    plt = _pyplot()
    depth = len(groups[0][1])
    shown = sorted({round(i * (depth - 1) / (MAX_HISTOGRAM_LAYERS - 1))
                    for i in range(MAX_HISTOGRAM_LAYERS)}) if depth > MAX_HISTOGRAM_LAYERS else range(depth)
    cols, rows = len(shown), len(groups)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols + 1.2, 1.9 * rows + 0.8),
                             squeeze=False, sharex="row", layout="constrained")
    for row, (name, layers) in zip(axes, groups):
        values = np.concatenate([layers[i][2].ravel() for i in shown])
        low, high = float(values.min()), float(values.max())
        bins = np.linspace(low, high if high > low else low + 1, 31)
        for ax, i in zip(row, shown):
            number, activation, a = layers[i]
            values = a.ravel()
            zeros = np.mean(values == 0)
            if zeros > 0.05:  # ReLU's exact zeros would dwarf the rest: count them apart
                values = values[values != 0]
                ax.text(0.97, 0.92, f"zeros: {zeros:.0%}", transform=ax.transAxes, ha="right",
                        va="top", fontsize=7)
            ax.hist(values, bins=bins, color="tab:blue")
            ax.set_title(f"layer {number} ({activation})", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=8)
    title = "hidden activations at initialization"
    if depth > MAX_HISTOGRAM_LAYERS:
        title += f" ({cols} of {depth} layers)"
    fig.suptitle(title)
    return _save(plt, fig, out)


def plot_activations(out: Path) -> Path:
    """Every hidden activation and its derivative on z in [-4, 4] (the figures of the notes)."""
    from .activations import ACTIVATIONS

    plt = _pyplot()
    names = [n for n in ACTIVATIONS if ACTIVATIONS.get(n).hidden]
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False,
                             layout="constrained")
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
    return _save(plt, fig, out)
