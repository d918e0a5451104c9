"""Pictures of what a network computes, from its parameter snapshots (snapshots.bin).

    nntrain plot RUN --boundary           decision regions over the 2-D input plane
    nntrain plot RUN --fit                a 1-input regression's function over the data
    nntrain plot RUN --neurons --layer 1  each hidden unit's activation over the plane

Every picture is a grid: one row per run (a compare folder: one per variant,
labelled by the settings that differ), one column per chosen epoch (``--at``,
each the nearest snapshot); ``-o NAME.gif`` animates over all snapshots
instead. Points and axes are in the data's own units: the grid is standardized
with the run's saved statistics (data.npz) before it goes through the network.

Figures are made and saved as plots.py makes its own (``new_figure``, ``save_figure``: a
Figure on an Agg canvas, no pyplot); matplotlib is imported only inside the functions that draw.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .model import TrainedModel, load_run
from .plots import new_figure, picture_path, replacing, save_figure
from .registry import ConfigError
from .runs import read_config, read_metrics, read_summary, variants
from .snapshots import FILE_NAME, Snapshot, load_snapshots

GRID = 200  # points per side of the input plane
PANEL = 3.4  # inches per panel
MAX_UNITS = 32  # neuron images per run and epoch
UNITS_PER_ROW = 8
PANELS_PER_ROW = 4  # when each run has one panel
CLASS_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"]


@dataclass
class View:
    """One run as drawn: its model, snapshots, label, and the data in raw units."""

    model: TrainedModel
    snapshots: list[Snapshot]
    label: str
    points: dict  # "train"/"val" -> (X raw, targets: class index or value), when loadable


# -- what to draw ------------------------------------------------------------------------


def parse_at(text: str | None) -> list[int | str] | None:
    """``--at 0,10,100,last``: epochs (integers >= 0, ASCII digits) and the words first and
    last."""
    if text is None:
        return None
    wanted: list[int | str] = []
    for item in (part.strip() for part in text.split(",")):
        if item in ("first", "last"):
            wanted.append(item)
        elif re.fullmatch(r"[0-9]{1,18}", item):  # not str.isdigit(): it takes "²", int() not
            wanted.append(int(item))
        else:
            raise ConfigError(f"expected epochs (integers >= 0) or first/last separated by "
                              f"commas, got {item!r}", "--at")
    return wanted


def nearest(snapshots: list[Snapshot], wanted: list[int | str]) -> list[Snapshot]:
    """The snapshot nearest each wanted epoch (the earlier on a tie), each once, in order."""
    chosen: dict[int, Snapshot] = {}
    for want in wanted:
        epoch = {"first": snapshots[0].epoch, "last": snapshots[-1].epoch}.get(want, want)
        snap = min(snapshots, key=lambda s: (abs(s.epoch - epoch), s.epoch))
        chosen.setdefault(snap.epoch, snap)
    return sorted(chosen.values(), key=lambda s: s.epoch)


# what each picture needs of a run: input features, whether its task has classes (None:
# either way), and how to say it
NEEDS = {"boundary": (2, True, "a classification run with 2 input features"),
         "neurons": (2, None, "a run with 2 input features"),
         "fit": (1, False, "a regression run with 1 input feature")}


def check_run(model: TrainedModel, kind: str, layer: int) -> None:
    """Refuse a run the picture cannot show, naming its input size and what the picture needs."""
    inputs, classes, need = NEEDS[kind]
    n_in, task = len(model.feature_names), model.task
    wrong_task = classes is not None and task.has_classes != classes
    if n_in != inputs or wrong_task:
        got = f"{n_in} input feature{'s' * (n_in != 1)}" + (f", {task.name}" if wrong_task
                                                              else "")
        raise ConfigError(f"--{kind} needs {need}; this run has {got}", str(model.path))
    hidden = len(model.network.sizes) - 2
    if kind == "neurons" and not 1 <= layer <= hidden:
        raise ConfigError(f"the run has {hidden} hidden layer{'s' * (hidden != 1)}; give "
                          f"1..{hidden}" if hidden else "the run has no hidden layer", "--layer")


def views(run_dirs: list[Path], kind: str, seed: int | None, layer: int) -> list[View]:
    """One view per variant (the run with the chosen seed, else the first), checked."""
    chosen: dict[str, Path] = {}
    for label, members in variants([(d, read_config(d)) for d in run_dirs]).items():
        picked = [d for d, config in members if seed is None or config.get("seed") == seed]
        if picked:
            chosen[label] = picked[0]
    if not chosen:
        raise ConfigError(f"no run with seed {seed} among {len(run_dirs)} runs", "--seed")
    models = [(label, load_run(d, require_parameters=False)) for label, d in chosen.items()]
    for _, model in models:
        check_run(model, kind, layer)
    return [View(model, run_snapshots(model), label, data_points(model))
            for label, model in models]


def run_snapshots(model: TrainedModel) -> list[Snapshot]:
    """The run's snapshots (a damaged record skipped with a warning); a run without them
    (snapshot_every: 0, an earlier version, every record damaged) has only its saved
    parameters (model.npz's, else the checkpoint's)."""
    path = model.path / FILE_NAME
    found = load_snapshots(path)
    if found.snapshots:
        check_shapes(model, found.snapshots[0])
        last = run_last_epoch(model)
        if found.damaged_after_last and last is not None and found.snapshots[-1].epoch < last:
            warnings.warn(f"{path}: \"last\" is epoch {found.snapshots[-1].epoch}, not the "
                          f"run's last epoch {last}, because damaged snapshot records were "
                          "skipped", stacklevel=2)
        return found.snapshots
    if not any((model.path / name).is_file() for name in ("model.npz", "checkpoint.npz")):
        raise ConfigError(f"has no readable {FILE_NAME} and no saved parameters yet: nothing "
                          "to draw", str(model.path))
    why = ("no readable snapshot" if path.is_file()
           else f"no {FILE_NAME} (train.snapshot_every: 0?)")
    warnings.warn(f"{model.path} has {why}: drawing its saved parameters only", stacklevel=2)
    summary = read_summary(model.path) or {}
    restored = summary.get("restored_epoch")
    epoch = restored if type(restored) is int else run_last_epoch(model)
    return [Snapshot(epoch or 0, model.network.parameters())]


def check_shapes(model: TrainedModel, snap: Snapshot) -> None:
    """Refuse snapshots that are not of the run's network (the file's header is data too)."""
    want = [p.shape for p in model.network.parameters()]
    got = [p.shape for p in snap.params]
    if got != want:
        raise ConfigError(f"{FILE_NAME} holds parameters shaped {got}, but the run's network "
                          f"has {want}", str(model.path))


def run_last_epoch(model: TrainedModel) -> int | None:
    """The run's last finished epoch: metrics.csv's last row, else summary.json's epochs."""
    rows = read_metrics(model.path)
    epoch = rows[-1].get("epoch") if rows else (read_summary(model.path) or {}).get("epochs")
    if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) and math.isfinite(epoch):
        return int(epoch)
    return None


def data_points(model: TrainedModel) -> dict:
    """The training and validation points in raw units (from the run's config); none if the
    data cannot be loaded here (a CSV path relative to somewhere else)."""
    try:
        data = model.data()
    except ConfigError as err:
        warnings.warn(f"data points not drawn: {err}", stacklevel=2)
        return {}
    task = model.task
    points = {}
    for part, X, Y in (("train", data.X_train, data.Y_train), ("val", data.X_val, data.Y_val)):
        if X is None:
            continue
        raw = model.prep.raw(X)
        target = task.truth(Y) if task.has_classes else Y[:, 0]  # class index, or the value
        points[part] = (raw, target.astype(float))
    return points


# -- drawing -----------------------------------------------------------------------------


def draw(kind: str, run_dirs: list[Path], out: Path, at: str | None = None,
         seed: int | None = None, layer: int = 1) -> Path:
    """Draw ``kind`` for the runs; ``out`` ending in .gif animates over every snapshot."""
    animate = Path(out).suffix.lower() == ".gif"
    written = Path(out) if animate else picture_path(out)
    wanted = parse_at(at)
    if animate and wanted is not None:
        raise ConfigError("an animation shows every snapshot; leave out --at", "--at")
    chosen = views(run_dirs, kind, seed, layer)
    if wanted is None:
        wanted = ["first", "last"] if len(chosen) == 1 and kind != "neurons" else ["last"]
    if animate:
        return animation(kind, chosen, written, layer)
    columns = [nearest(v.snapshots, wanted) for v in chosen]
    return save_figure(figure(kind, chosen, columns, layer), written)


def panels(kind: str, chosen: list[View], columns: list[list[Snapshot]], layer: int):
    """The grid: (rows, columns), figure size in inches, and what each row (or, for neurons,
    each block of rows) draws: a list of (view, snapshot)."""
    if kind == "neurons":
        blocks = [(v, s) for v, snaps in zip(chosen, columns) for s in snaps]
        units = min(max(v.model.network.sizes[layer] for v in chosen), MAX_UNITS)
        width = min(units, UNITS_PER_ROW)
        per_block = -(-units // width)
        return ((len(blocks) * per_block, width),
                (1.4 * width + 1, 1.45 * per_block * len(blocks)), blocks)
    rows = [[(v, snap) for snap in snaps] for v, snaps in zip(chosen, columns)]
    if all(len(row) == 1 for row in rows):  # one panel per run: side by side, 4 a row
        flat = [row[0] for row in rows]
        rows = [flat[i:i + PANELS_PER_ROW] for i in range(0, len(flat), PANELS_PER_ROW)]
    shape = (len(rows), max(map(len, rows)))
    return shape, (PANEL * shape[1] + 0.6, PANEL * shape[0]), rows


def figure(kind: str, chosen: list[View], columns: list[list[Snapshot]], layer: int, fig=None):
    """A figure (new, or ``fig`` cleared for an animation's next frame) of the panels."""
    shape, size, groups = panels(kind, chosen, columns, layer)
    if fig is None:
        fig = new_figure(size, dpi=100, layout="constrained")
    fig.clear()
    axes = fig.subplots(*shape, squeeze=False)
    if kind == "neurons":
        per_block = shape[0] // len(groups)
        for i, (view, snap) in enumerate(groups):
            draw_neurons(fig, axes[i * per_block:(i + 1) * per_block].ravel(), view, snap, layer)
        return fig
    for row_axes, row in zip(axes, groups):
        for ax in row_axes[len(row):]:
            ax.set_visible(False)
        for ax, (view, snap) in zip(row_axes, row):
            PANEL_DRAWERS[kind](ax, view, snap)
            title = f"epoch {snap.epoch}"
            ax.set_title(f"{view.label}\n{title}" if len(chosen) > 1 else title, fontsize=9)
    return fig


def animation(kind: str, chosen: list[View], out: Path, layer: int) -> Path:
    """A GIF with one frame per snapshot epoch (of any of the runs; each run's nearest)."""
    from matplotlib.animation import PillowWriter

    epochs = sorted({s.epoch for v in chosen for s in v.snapshots})
    fig = None
    writer = PillowWriter(fps=5)
    with replacing(out) as tmp:
        for epoch in epochs:
            fig = figure(kind, chosen, [nearest(v.snapshots, [epoch]) for v in chosen], layer,
                         fig)
            if epoch == epochs[0]:
                writer.setup(fig, str(tmp), dpi=80)
            writer.grab_frame()
        writer.finish()
    return out


def bounds(view: View) -> tuple[np.ndarray, np.ndarray]:
    """Per input feature, the data's range and 10% beyond it, in raw units."""
    known = [X for X, _ in view.points.values()]
    if known:
        X = np.vstack(known)
        low, high = X.min(axis=0), X.max(axis=0)
    else:  # no data here: 3 standard deviations either side of the training mean
        prep = view.model.prep
        n = len(prep.feature_names)
        mean = prep.mean if prep.mean is not None else np.zeros(n)
        std = prep.std if prep.std is not None else np.ones(n)
        low, high = mean - 3 * std, mean + 3 * std
    pad = 0.1 * np.maximum(high - low, 1e-9)
    return low - pad, high + pad


def plane(view: View, n: int = GRID):
    """A grid over the 2-D input plane, raw units: (xs, ys, (n*n, 2) points)."""
    low, high = bounds(view)
    xs, ys = (np.linspace(lo, hi, n) for lo, hi in zip(low, high))
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.column_stack([gx.ravel(), gy.ravel()])


def outputs_at(view: View, snap: Snapshot, X_raw: np.ndarray, layer: int | None = None):
    """The network's output (or hidden layer ``layer``'s activations) at the snapshot."""
    net = view.model.network
    net.load_parameters(snap.params)
    X = view.model.prep.inputs(X_raw)
    with np.errstate(all="ignore"):
        if layer is None:
            return net.forward(X)
        return net.layer_outputs(X)[layer - 1].copy()


def region_colours(proba: np.ndarray, task) -> np.ndarray:
    """RGB per grid point from the (N, K) class probabilities of ``task`` (a tasks.Task):
    two classes at most (binary), a blue-white-red shading of P(class 1); more, the likeliest
    class's colour, paler where the network is less sure."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    if task.max_classes == 2:
        shade = colormaps["RdBu_r"](0.15 + 0.7 * np.clip(proba[:, 1], 0, 1))[:, :3]
        return 1 - 0.5 * (1 - shade)  # pale enough for the points to show
    colours = np.array([to_rgb(CLASS_COLOURS[i % len(CLASS_COLOURS)])
                        for i in range(proba.shape[1])])
    k = proba.shape[1]
    confidence = (proba.max(axis=1) - 1 / k) / (1 - 1 / k)  # 0 at a uniform guess, 1 sure
    strength = (0.1 + 0.4 * np.clip(confidence, 0, 1))[:, None]
    return 1 - strength * (1 - colours[proba.argmax(axis=1)])


def draw_boundary(ax, view: View, snap: Snapshot) -> None:
    task = view.model.task
    xs, ys, grid = plane(view)
    proba = task.proba(outputs_at(view, snap, grid))  # (n*n, K) in class order
    rgb = region_colours(proba, task).reshape(len(ys), len(xs), 3)
    extent = (xs[0], xs[-1], ys[0], ys[-1])
    ax.imshow(np.nan_to_num(rgb, nan=1.0), origin="lower", extent=extent, aspect="auto",
              interpolation="nearest")
    if task.max_classes == 2 and np.isfinite(proba).all():  # binary: the line P(class 1) = 0.5
        p = proba[:, 1].reshape(len(ys), len(xs))
        if p.min() < 0.5 < p.max():
            ax.contour(xs, ys, p, levels=[0.5], colors="k", linewidths=0.8)
    scatter_classes(ax, view)
    names = view.model.feature_names
    ax.set(xlim=extent[:2], ylim=extent[2:], xlabel=names[0], ylabel=names[1])
    ax.grid(False)


def scatter_classes(ax, view: View) -> None:
    """Training points filled, validation points hollow diamonds, each in its class's colour
    with a dark edge (a point on its own class's region stays visible)."""
    from matplotlib.lines import Line2D

    for part, (X, target) in view.points.items():
        colours = [CLASS_COLOURS[i % len(CLASS_COLOURS)] for i in target.astype(int)]
        style = ({"c": colours, "edgecolors": "k", "linewidths": 0.5, "s": 16} if part == "train"
                 else {"c": colours, "edgecolors": "w", "linewidths": 0.9, "marker": "D",
                       "s": 22})
        ax.scatter(X[:, 0], X[:, 1], **style)
    classes = view.model.classes or []
    handles = [Line2D([], [], marker="o", ls="", color=CLASS_COLOURS[i % len(CLASS_COLOURS)],
                      markeredgecolor="k", label=str(c)) for i, c in enumerate(classes[:10])]
    if "val" in view.points:
        handles.append(Line2D([], [], marker="D", ls="", color="0.5", markeredgecolor="w",
                              label="validation"))
    if view.points:
        ax.legend(handles=handles, loc="best", fontsize=7, framealpha=0.7)


def draw_fit(ax, view: View, snap: Snapshot) -> None:
    low, high = bounds(view)
    xs = np.linspace(low[0], high[0], 400)
    for part, (X, y) in view.points.items():
        style = ({"color": "0.55", "s": 8} if part == "train" else
                 {"facecolors": "none", "edgecolors": "0.3", "s": 12, "marker": "D"})
        ax.scatter(X[:, 0], y, label="training" if part == "train" else "validation", **style)
    ax.plot(xs, outputs_at(view, snap, xs[:, None])[:, 0], color="C3", linewidth=2,
            label="network")
    ax.set(xlabel=view.model.feature_names[0], ylabel="target")
    ax.legend(fontsize=7, loc="best")


def draw_neurons(fig, axes, view: View, snap: Snapshot, layer: int) -> None:
    """One image per unit of ``layer``; a shared colour scale with 0 white, so a unit that
    outputs 0 everywhere (a dead ReLU) is a blank square."""
    xs, ys, grid = plane(view, 80)
    a = outputs_at(view, snap, grid, layer)
    limit = float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 1.0
    limit = limit or 1.0
    extent = (xs[0], xs[-1], ys[0], ys[-1])
    total = view.model.network.sizes[layer]
    for ax in axes[total:]:
        ax.set_visible(False)
    for unit, ax in enumerate(axes[:total]):
        values = a[:, unit].reshape(len(ys), len(xs))
        image = ax.imshow(values, origin="lower", extent=extent, aspect="auto", cmap="RdBu_r",
                          vmin=-limit, vmax=limit, interpolation="nearest")
        dead = not np.any(values)  # 0 over the whole plane
        ax.set_title(f"unit {unit + 1}" + (" dead" if dead else ""), fontsize=8)
        ax.set(xticks=[], yticks=[])
        ax.grid(False)
    more = f" (first {MAX_UNITS} of {total} units)" if total > MAX_UNITS else ""
    axes[0].set_ylabel(f"{view.label}\nepoch {snap.epoch}", fontsize=8)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=f"layer {layer} activation{more}")


PANEL_DRAWERS = {"boundary": draw_boundary, "fit": draw_fit}  # neurons draw a block of panels
