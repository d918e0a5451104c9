"""Pictures: loss curves of runs, per-layer gradient heat maps, the init check, the activations;
and the one way nntrain makes and saves a figure (``new_figure``, ``save_figure``), which
pictures.py draws with too.

A figure is a matplotlib ``Figure`` on its own Agg canvas: no pyplot, no global figure list,
no backend to switch. matplotlib is imported inside the functions that draw only; nothing in
nntrain imports it at start-up.
"""

from __future__ import annotations

import contextlib
import os
import textwrap
import warnings
from pathlib import Path

import numpy as np

from .diagnostics import LAYER_COLUMNS
from .registry import ConfigError, did_you_mean, label
from .runs import (differing_keys, layers_frame, metrics_frame, read_config, read_summary,
                   variants, writing)
from .tasks import FIGURES

# -- figures: made and saved one way, here and in pictures.py ----------------------------------

FORMATS = ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "webp", "tif", "tiff", "pgf", "raw",
           "rgba", "svgz")
CURVES_DPI = 110
# the variants' colours in order (loss.png, plot, the view's curves), and the classes' (the
# pictures' points and regions, the view's)
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
# the curves' look, set for one drawing at a time (never in matplotlib's global rcParams:
# pictures.py's panels keep matplotlib's defaults)
CURVES_LOOK = {"axes.grid": True, "grid.alpha": 0.3, "font.size": 10}


def new_figure(figsize: tuple[float, float], dpi: int = 100, layout: str | None = None):
    """A matplotlib Figure drawn by the headless Agg canvas, outside pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def load_matplotlib() -> None:
    """Import matplotlib's Agg canvas and fill what its first figure in a process would
    otherwise build as it draws: the default font, found and loaded, and the mathtext parser
    (a log axis' tick labels are mathtext). compare does this while its workers train."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
    from matplotlib import font_manager, mathtext

    font_manager.get_font(font_manager.findfont(font_manager.FontProperties()))
    mathtext.MathTextParser("agg").parse("$10^{-1}$", 72)


def picture_path(out: Path) -> Path:
    """The file a figure is saved to: ``out``, with .png added to a name without a suffix."""
    out = Path(out)
    if not out.suffix:
        return out.with_name(out.name + ".png")
    if out.suffix[1:].lower() not in FORMATS:
        raise ConfigError(f"unknown picture format {out.suffix!r}; use .png, .svg or .pdf",
                          f"-o {out}")
    return out


@contextlib.contextmanager
def replacing(path: Path):
    """A temporary name beside ``path`` to write to, renamed over ``path`` once written: a
    reader never sees half a picture, and a symlink at ``path`` is replaced, not written
    through. The name keeps the suffix, from which matplotlib and Pillow take the format."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    with writing(path):
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def save_figure(fig, out: Path) -> Path:
    """Write ``fig`` to ``picture_path(out)`` at a size that holds every legend and title (the
    'tight' bounding box grows the canvas around them). Returns the file written."""
    written = picture_path(out)
    with replacing(written) as tmp:
        fig.savefig(tmp, bbox_inches="tight")
    return written


def _curves_look():
    """CURVES_LOOK for the drawing inside the with block, saving included: matplotlib reads the
    grid's settings when it makes the ticks, which is as the figure is saved."""
    import matplotlib

    return matplotlib.rc_context(CURVES_LOOK)


# -- curves of runs ------------------------------------------------------------------------------


def _log_scale_helps(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values) & (values > 0)]
    return finite.size > 1 and finite.max() / finite.min() > 100


METRIC_COLUMNS = [*FIGURES, "lr", "grad_norm", "time_s", "evaluations"]
X_AXES = ("epoch", "evaluations")  # plot --x: what curves are drawn against
# layers.csv's own columns (its grad_norm is per layer; --metric grad_norm is metrics.csv's)
LAYER_METRICS = [c for c in LAYER_COLUMNS if c not in ("epoch", "layer", "activation")
                 and c not in METRIC_COLUMNS]
MAX_LAYER_PANELS = 6
INSIDE_LEGEND = 8  # past this many series a legend goes below its axes


# Keras' short names for a column, too short for did-you-mean's spelling distance to reach
# (other tools' names that registry.OTHER_TOOLS knows, learning_rate -> lr, come from there)
METRIC_ALIASES = {"acc": "accuracy", "val_acc": "val_accuracy"}


def metric_hint(metric: str, known: list[str]) -> str:
    """'; did you mean 'accuracy'?' for acc (an alias) or a near spelling among ``known``."""
    alias = METRIC_ALIASES.get(metric.strip().lower())
    if alias in known and alias != metric:
        return f"; did you mean '{alias}'?"
    return did_you_mean(metric, known)


def check_metric(metric: str) -> None:
    """``--metric``: a metrics.csv or layers.csv column, checked before anything runs."""
    known = METRIC_COLUMNS + LAYER_METRICS
    if metric not in known:
        raise ConfigError(f"no column {metric!r} in metrics.csv or layers.csv"
                          f"{metric_hint(metric, known)} metrics.csv: "
                          f"{', '.join(METRIC_COLUMNS)}; layers.csv: {', '.join(LAYER_METRICS)}",
                          "--metric")


def run_columns(run_dirs: list[Path]) -> tuple[list[str], list[str]]:
    """The columns ``--metric`` can draw for these runs: their metrics.csv columns and their
    layers.csv statistics, in file order, each named once."""
    metrics = dict.fromkeys(c for d in run_dirs for c in metrics_frame(d).columns if c != "epoch")
    layers = dict.fromkeys(c for d in run_dirs if (Path(d) / "layers.csv").is_file()
                           for c in layers_frame(d).columns if c in LAYER_METRICS)
    return list(metrics), list(layers)


def no_column(metric: str, run_dirs: list[Path]) -> ConfigError:
    """The error for a column these runs do not have, listing only the columns they do have
    (a binary run has no mae), with a did-you-mean among them."""
    metrics, layers = run_columns(run_dirs)
    hint = metric_hint(metric, metrics + layers)
    files = f"{hint or ';'} they have metrics.csv: {', '.join(metrics) or 'no rows yet'}"
    if layers:
        files += f"; layers.csv: {', '.join(layers)}"
    return ConfigError(f"no column {metric!r} in these runs' files{files}", "--metric")


def _panels(run_dirs: list[Path], configs: list[dict], metric: str) -> list[dict]:
    """What goes on which axes: one panel, one per loss (curves of different losses share no
    scale), or, for a layers.csv column, one per layer. Each panel draws its ``variants``
    (label -> runs, lowest seed first)."""
    runs = list(zip(run_dirs, configs))
    if metric.endswith("loss") and "loss" in differing_keys(configs):
        # the loss is the panel, not part of the label
        by_loss = {name: {} for name in dict.fromkeys(label(c.get("loss")) for c in configs)}
        for name, members in variants(runs, leave_out=("loss",)).items():
            for run in members:
                by_loss[label(run[1].get("loss"))].setdefault(name, []).append(run)
        return [{"title": f"loss {loss}", "variants": groups, "layer": None}
                for loss, groups in by_loss.items()]
    groups = variants(runs)
    if metric in LAYER_METRICS:
        depth = max(int(layers_frame(d)["layer"].max()) for d in run_dirs)
        layers = sorted({round(1 + i * (depth - 1) / max(MAX_LAYER_PANELS - 1, 1))
                         for i in range(min(depth, MAX_LAYER_PANELS))})
        return [{"title": f"layer {k} of {depth}", "variants": groups, "layer": k}
                for k in layers]
    return [{"title": "", "variants": groups, "layer": None}]


def _series(run_dir: Path, metric: str, layer: int | None, x: str = "epoch"):
    """One run's frame: metrics.csv, or one layer's rows of layers.csv (with metrics.csv's
    ``x`` beside each epoch)."""
    if layer is None:
        return metrics_frame(run_dir)
    frame = layers_frame(run_dir)
    frame = frame[frame["layer"] == layer].drop(columns=["layer", "activation"])
    if x == "epoch":
        return frame
    return frame.merge(metrics_frame(run_dir)[["epoch", x]], on="epoch")


def check_x(x: str, run_dirs: list[Path]) -> None:
    """``--x``: epoch, or evaluations (which runs of an earlier nntrain did not record)."""
    if x not in X_AXES:
        raise ConfigError(f"must be {' or '.join(X_AXES)}, got {x!r}{did_you_mean(x, X_AXES)}",
                          "--x")
    if x == "epoch":  # every run has it (a run that failed before a row: none to draw)
        return
    for run_dir in run_dirs:
        if x not in metrics_frame(run_dir):
            raise ConfigError(f"{run_dir} has no {x} column in metrics.csv (a run of an earlier "
                              "nntrain); plot it against epoch", "--x")


@np.errstate(over="ignore", invalid="ignore")  # matplotlib's log scale meets diverged runs' 1e300s
def plot_runs(run_dirs: list[Path], out: Path, metric: str = "loss", x: str = "epoch") -> Path:
    """``metric`` against ``x`` (epoch, or the loss evaluations spent) for each run; runs
    differing only in seed are drawn as their mean with a min-max band. A single run also gets
    a heat map of per-layer gradient norms (against epoch). Returns the file written."""
    if metric not in METRIC_COLUMNS + LAYER_METRICS:
        raise no_column(metric, run_dirs)
    check_x(x, run_dirs)
    written = picture_path(out)
    configs = [read_config(d) for d in run_dirs]
    panels = _panels(run_dirs, configs, metric)
    single = len(run_dirs) == 1
    heat = single and metric in METRIC_COLUMNS and (run_dirs[0] / "layers.csv").is_file()
    count = len(panels) + heat
    with _curves_look():
        # no layout engine: it would shrink the axes to make room for a long legend; the saved
        # picture's tight bounding box grows around the legend instead
        fig = new_figure((6.5 * count, 4.5), CURVES_DPI)
        axes = fig.subplots(1, count, squeeze=False)
        fig.subplots_adjust(wspace=0.3)
        drawn = [_draw_panel(ax, panel, metric, single, x) for ax, panel in zip(axes[0], panels)]
        if not any(drawn):
            raise no_column(metric, run_dirs)
        name = configs[0].get("name") or run_dirs[0].name
        title = name if single else f"{name}: {metric} of {len(run_dirs)} runs"
        fig.suptitle(str(title), y=1.0 if count > 1 else 0.98)
        if heat:
            _gradient_heatmap(fig, axes[0, -1], run_dirs[0] / "layers.csv")
        return save_figure(fig, written)


def variant_colours(count: int) -> list[str]:
    """The colours of ``count`` variants in their order: COLOURS, or past its 10 one colour
    scale (viridis) in the legend's order."""
    if count <= len(COLOURS):
        return COLOURS[:count]
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    return [to_hex(c) for c in colormaps["viridis"](np.linspace(0, 0.9, count))]


def _draw_panel(ax, panel: dict, metric: str, single: bool, x: str = "epoch") -> int:
    """One axes: per variant the mean curve against ``x``, a min-max band over seeds, lone
    points as markers and an x where a run diverged. Returns the number of curves drawn."""
    groups = panel["variants"]
    values, starts, count, banded = [], [], 0, False
    ax.set_prop_cycle(color=COLOURS)  # a single run's curve and its validation curve
    for name, colour in zip(groups, variant_colours(len(groups))):  # one each, drawn or not
        run_dirs = [run_dir for run_dir, _ in groups[name]]
        frames = [_series(d, metric, panel["layer"], x) for d in run_dirs]
        diverged = [(read_summary(d) or {}).get("status") == "diverged" for d in run_dirs]
        columns = [metric] + ([f"val_{metric}"] if single and f"val_{metric}" in frames[0] else [])
        for column in columns:
            curves = [f.set_index(x)[column] for f in frames if column in f]
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
            (line,) = ax.plot(epochs, mean, label=textwrap.fill(text, 60), lw=1.6,
                              color=None if single else colour)
            _mark_points(ax, epochs, table, mean, diverged, line.get_color())
            if len(curves) > 1:
                ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2, lw=0)
            values.append(table.ravel())
            starts.append(table[:, 0])
            count += 1
    if count:
        _limits(ax, metric, np.concatenate(values), np.concatenate(starts))
        _legend(ax, count, "line: mean over seeds; band: min to max" if banded else None)
    ax.set_xlabel("loss evaluations" if x == "evaluations" else x)
    ax.set_ylabel(metric)
    ax.set_title(panel["title"])
    return count


def _mark_points(ax, epochs, table, mean, diverged, color) -> None:
    """A point with no finite neighbour draws no line: give it a marker. A diverged run gets an x
    at the epoch it diverged (the first after its last finite value), on the axes' top edge:
    its last finite values (1e304, say) are far above the y-limits, so an x drawn there is
    never seen."""
    finite = np.isfinite(mean)
    before = np.concatenate([[False], finite[:-1]])
    after = np.concatenate([finite[1:], [False]])
    lone = finite & ~before & ~after
    if lone.any():
        ax.plot(epochs[lone], mean[lone], "o", color=color, ms=5)
    for row, gone in zip(table, diverged):
        ok = np.flatnonzero(np.isfinite(row))
        if gone and ok.size:
            at = epochs[min(ok[-1] + 1, len(epochs) - 1)]
            # x in data units, y in the axes' (1 = the top edge), not clipped by the axes
            ax.plot([at], [1.0], "x", color=color, ms=9, mew=2, clip_on=False,
                    transform=ax.get_xaxis_transform())


def _legend(ax, count: int, title: str | None = None) -> None:
    """Inside the axes for a few curves; below them, in columns, past INSIDE_LEGEND."""
    if count <= INSIDE_LEGEND:
        ax.legend(fontsize=8, title=title, title_fontsize=8)
        return
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), title=title,
              title_fontsize=7, ncol=2 if count > 3 * INSIDE_LEGEND else 1, frameon=False)


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

    frame = layers_frame(layers_csv.parent)
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
    with _curves_look():
        fig = new_figure((12, 4.5), CURVES_DPI, layout="constrained")
        left, right = fig.subplots(1, 2)
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
        return save_figure(fig, out)


MAX_HISTOGRAM_LAYERS = 10  # columns of the histogram grid; deeper nets show layers spread evenly


def plot_histograms(groups: list[tuple[str, list[tuple]]], out: Path) -> Path:
    """Histograms of each hidden layer's activations at initialization: one row per initializer,
    one column per layer, the x axis shared within a row (Deep Learning from Scratch, ch. 6)."""
    depth = len(groups[0][1])
    shown = sorted({round(i * (depth - 1) / (MAX_HISTOGRAM_LAYERS - 1))
                    for i in range(MAX_HISTOGRAM_LAYERS)}) if depth > MAX_HISTOGRAM_LAYERS else range(depth)
    cols, rows = len(shown), len(groups)
    with _curves_look():
        fig = new_figure((1.9 * cols + 1.2, 1.9 * rows + 0.8), CURVES_DPI, layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False, sharex="row")
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
                    ax.text(0.97, 0.92, f"zeros: {zeros:.0%}", transform=ax.transAxes,
                            ha="right", va="top", fontsize=7)
                ax.hist(values, bins=bins, color="tab:blue")
                ax.set_title(f"layer {number} ({activation})", fontsize=8)
                ax.tick_params(labelsize=7)
                ax.set_yticks([])
            row[0].set_ylabel(name, fontsize=8)
        title = "hidden activations at initialization"
        if depth > MAX_HISTOGRAM_LAYERS:
            title += f" ({cols} of {depth} layers)"
        fig.suptitle(title)
        return save_figure(fig, out)


def plot_activations(out: Path) -> Path:
    """Every hidden activation and its derivative on z in [-4, 4] (the figures of the notes)."""
    from .activations import ACTIVATIONS

    names = [n for n in ACTIVATIONS if ACTIVATIONS.get(n).hidden]
    cols = 4
    rows = -(-len(names) // cols)
    with _curves_look():
        fig = new_figure((3.2 * cols, 2.6 * rows), CURVES_DPI, layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
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
        return save_figure(fig, out)
