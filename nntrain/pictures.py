"""Pictures of what a network computes, from its parameter snapshots (snapshots.bin).

    nntrain plot RUN --boundary           decision regions over the 2-D input plane
    nntrain plot RUN --fit                a 1-input regression's function over the data
    nntrain plot RUN --neurons --layer 1  each hidden unit's activation over the plane

Every picture is a grid: one row per run (a compare folder: one per variant,
labelled by the settings that differ), one column per chosen epoch (``--at``,
each the nearest snapshot); ``-o NAME.gif`` animates over the snapshots
instead (``--frames``: at most 60 frames by default, spread over them). Points and axes are in the data's own units: the grid is standardized
with the run's saved statistics (data.npz) before it goes through the network.

Figures are made and saved as plots.py makes its own (``new_figure``, ``save_figure``: a
Figure on an Agg canvas, no pyplot); matplotlib is imported only inside the functions that draw.
"""

from __future__ import annotations

import math
import re
import textwrap
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .diagnostics import dead_fraction
from .model import TrainedModel, load_run
from .plots import COLOURS, new_figure, picture_path, replacing, save_figure
from .registry import ConfigError
from .runs import one_per_variant, read_metrics, read_summary
from .snapshots import FILE_NAME, Snapshot, load_snapshots

GRID = 200  # points per side of the input plane
PANEL = 3.4  # inches per panel
MAX_UNITS = 32  # neuron images per run and epoch
UNITS_PER_ROW = 8
PANELS_PER_ROW = 4  # when each run has one panel
TITLE_WIDTH = 40  # characters of a 9-point title line that fit over a PANEL-inch panel
MAX_FRAMES = 60  # a GIF's frames unless --frames says otherwise
FRAME_MS = 200  # each frame's time on screen: 5 frames a second
GIF_DPI = 80
BAR_AFTER = 1.0  # seconds a GIF may take before it shows a progress bar
CLASS_COLOURS = COLOURS  # class k's colour is the k-th variant's


@dataclass
class View:
    """One run as drawn: its model, snapshots, label, and the data in raw units."""

    model: TrainedModel
    snapshots: list[Snapshot]
    label: str
    points: dict  # "train"/"val" -> (X raw, targets: class index or value), when loadable
    inputs: np.ndarray | None = None  # the training split as the network takes it, if loadable


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
        if epoch > snapshots[-1].epoch:
            warnings.warn(f"--at {epoch} is past the last snapshot, epoch {snapshots[-1].epoch}: "
                          "drawing that one", stacklevel=2)
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
    chosen = one_per_variant(run_dirs, seed)
    models = [(label, load_run(d, require_parameters=False)) for label, d in chosen.items()]
    for _, model in models:
        check_run(model, kind, layer)
    return [View(model, run_snapshots(model), label, *data_points(model))
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


def data_points(model: TrainedModel) -> tuple[dict, np.ndarray | None]:
    """The training and validation points in raw units (from the run's config), and the
    training inputs as the network takes them; none if the data cannot be loaded here (a CSV
    path relative to somewhere else)."""
    try:
        data = model.data()
    except ConfigError as err:
        warnings.warn(f"data points not drawn: {err}", stacklevel=2)
        return {}, None
    task = model.task
    points = {}
    for part, X, Y in (("train", data.X_train, data.Y_train), ("val", data.X_val, data.Y_val)):
        if X is None:
            continue
        raw = model.prep.raw(X)
        target = task.truth(Y) if task.has_classes else Y[:, 0]  # class index, or the value
        points[part] = (raw, target.astype(float))
    return points, data.X_train


# -- drawing -----------------------------------------------------------------------------


def draw(kind: str, run_dirs: list[Path], out: Path, at: str | None = None,
         seed: int | None = None, layer: int = 1, frames: int | None = None,
         progress=None) -> Path:
    """Draw ``kind`` for the runs; ``out`` ending in .gif animates over the snapshots, at most
    ``frames`` of them (MAX_FRAMES unless given). ``progress`` makes the progress bar a GIF
    shows once it has taken BAR_AFTER seconds (the CLI passes output.Bar on a terminal, else
    False); a false value draws none."""
    animate = Path(out).suffix.lower() == ".gif"
    written = Path(out) if animate else picture_path(out)
    wanted = parse_at(at)
    if animate and wanted is not None:
        raise ConfigError("an animation spreads its frames over the snapshots (--frames); "
                          "leave out --at", "--at")
    if frames is not None and not animate:
        raise ConfigError("caps the frames of an animation: give -o NAME.gif", "--frames")
    if frames is not None and frames < 2:
        raise ConfigError(f"must be at least 2 (the first and the last snapshot), got {frames}",
                          "--frames")
    chosen = views(run_dirs, kind, seed, layer)
    if animate:
        return animation(kind, chosen, written, layer, frames or MAX_FRAMES, progress)
    if wanted is None:
        wanted = ["first", "last"] if len(chosen) == 1 and kind != "neurons" else ["last"]
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
                (1.4 * width + 1, 1.45 * per_block * len(blocks) + 0.4), blocks)
    rows = [[(v, snap) for snap in snaps] for v, snaps in zip(chosen, columns)]
    if all(len(row) == 1 for row in rows):  # one panel per run: side by side, 4 a row
        flat = [row[0] for row in rows]
        rows = [flat[i:i + PANELS_PER_ROW] for i in range(0, len(flat), PANELS_PER_ROW)]
    shape = (len(rows), max(map(len, rows)))
    title_lines = max(panel_title(v.label if len(chosen) > 1 else None, 0).count("\n")
                      for v in chosen)
    keys = (1.0, 0.5) if kind == "boundary" else (0, 0)  # the colour bar, the legend below
    return shape, (PANEL * shape[1] + 0.6 + keys[0],
                   (PANEL + 0.15 * title_lines) * shape[0] + keys[1]), rows


def panel_title(label: str | None, epoch: int) -> str:
    """'epoch 7', under the variant's settings (one a line, each wrapped to TITLE_WIDTH
    characters): titles of panels side by side never run into each other."""
    if label is None:
        return f"epoch {epoch}"
    settings = re.split(r", (?=[\w.]+=)", label)
    lines = [line for s in settings
             for line in textwrap.wrap(s, TITLE_WIDTH, break_on_hyphens=False)]
    return "\n".join([*lines, f"epoch {epoch}"])


def figure(kind: str, chosen: list[View], columns: list[list[Snapshot]], layer: int,
           dpi: int = 100):
    """The figure of the panels (see ``panels``)."""
    return build(kind, chosen, columns, layer, dpi)[0]


def build(kind: str, chosen: list[View], columns: list[list[Snapshot]], layer: int,
          dpi: int = 100):
    """The figure and what it drew: panels (or neuron blocks) that redraw themselves at another
    snapshot with ``update``, as an animation's frames do."""
    shape, size, groups = panels(kind, chosen, columns, layer)
    fig = new_figure(size, dpi=dpi, layout="constrained")
    axes = fig.subplots(*shape, squeeze=False)
    if kind == "neurons":
        per_block = shape[0] // len(groups)
        fig.suptitle(f"layer {layer}: each unit's activation; dead = {DEAD}", fontsize=9)
        return fig, [NeuronBlock(fig, axes[i * per_block:(i + 1) * per_block].ravel(), view,
                                 snap, layer) for i, (view, snap) in enumerate(groups)]
    drawn = []
    for row_axes, row in zip(axes, groups):
        for ax in row_axes[len(row):]:
            ax.set_visible(False)
        for ax, (view, snap) in zip(row_axes, row):
            label = view.label if len(chosen) > 1 else None
            drawn.append(PANEL_DRAWERS[kind](ax, view, snap, label))
    if kind == "boundary":
        boundary_keys(fig, drawn)
    return fig, drawn


def spread(epochs: list[int], limit: int) -> list[int]:
    """At most ``limit`` (>= 2) of ``epochs``, evenly spread over them by position (denser
    where the snapshots are), the first and the last always included."""
    if len(epochs) <= limit:
        return list(epochs)
    picks = np.round(np.linspace(0, len(epochs) - 1, limit)).astype(int)
    return [epochs[i] for i in picks]  # distinct: the positions are more than 1 apart


def animation(kind: str, chosen: list[View], out: Path, layer: int, limit: int = MAX_FRAMES,
              progress=None) -> Path:
    """A GIF over the snapshot epochs (of any of the runs; each run's nearest), at most
    ``limit`` frames spread over them.

    The figure is drawn and laid out once, without what changes between frames (each part's
    ``moving()`` artists: images, 0.5 lines, titles, and what lies on top of them); that
    background is kept. Each frame updates the parts' data (``set_data``, new lines, titles),
    restores the background, draws only the moving artists on it, and takes the Agg canvas
    as an array; Pillow writes the GIF. A new figure drawn and laid out per frame took about
    5 times as long (docs/performance.md)."""
    started = time.perf_counter()
    epochs = spread(sorted({s.epoch for v in chosen for s in v.snapshots}), limit)
    fig, drawn = build(kind, chosen, [nearest(v.snapshots, epochs[:1]) for v in chosen], layer,
                       GIF_DPI)
    for artist in (a for part in drawn for a in part.moving()):
        artist.set_animated(True)  # left out of the background
    fig.canvas.draw()  # the constrained layout, once: frames change data and text only
    fig.set_layout_engine("none")
    background = fig.canvas.copy_from_bbox(fig.bbox)
    bar = LateBar(progress, len(epochs), started)
    try:
        frames = []
        for i, epoch in enumerate(epochs):
            for part in drawn if i else ():
                part.update(nearest(part.view.snapshots, [epoch])[0])
            fig.canvas.restore_region(background)
            for part in drawn:  # in matplotlib's order: the 0.5 line over the points
                for artist in sorted(part.moving(), key=lambda a: a.get_zorder()):
                    artist.set_animated(True)  # a new 0.5 line too
                    fig.draw_artist(artist)
            frames.append(gif_frame(fig))
            bar.advance(len(frames))
        with replacing(out) as tmp:
            frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=FRAME_MS,
                           loop=0)
    finally:
        bar.stop()
    return out


def gif_frame(fig):
    """The figure as last drawn on its Agg canvas, as a Pillow image of at most 256 colours
    (a GIF's palette; without dithering, which only adds noise to the smooth regions)."""
    from PIL import Image

    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    return Image.fromarray(np.ascontiguousarray(rgb)).quantize(
        256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


class LateBar:
    """Frames made so far, on a progress bar that appears only once the GIF has taken more than
    BAR_AFTER seconds: a quick one shows none. ``make_bar``: output.Bar; a false value (None,
    or False off a terminal) draws no bar."""

    def __init__(self, make_bar, total: int, started: float):
        self.make_bar, self.total, self.started = make_bar, total, started
        self.bar = self.task = None

    def advance(self, done: int) -> None:
        if self.bar is not None:
            self.bar.progress.update(self.task, completed=done)
        elif self.make_bar and time.perf_counter() - self.started > BAR_AFTER:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

            self.bar = self.make_bar(TextColumn("[bold]GIF frames"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn())
            self.task = self.bar.progress.add_task("frames", total=self.total, completed=done)
            self.bar.progress.start()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


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


def binary_colours(task):
    """region_colours' shading of P(class 1) as a colour map (256 steps), so that the regions
    are drawn from P itself and the colour bar reads them; NaN (a diverged net) is white."""
    from matplotlib.colors import ListedColormap

    p = np.linspace(0, 1, 256)
    return ListedColormap(region_colours(np.column_stack([1 - p, p]), task)).with_extremes(
        bad="white")


class BoundaryPanel:
    """Decision regions over the plane (binary: P(class 1) through ``binary_colours``; more
    classes: RGB from ``region_colours``), the 0.5 line, and the data points."""

    def __init__(self, ax, view: View, snap: Snapshot, label: str | None):
        self.ax, self.view, self.label, self.line = ax, view, label, None
        task = view.model.task
        self.binary = task.max_classes == 2
        self.xs, self.ys, self.grid = plane(view)
        self.shape = (len(self.ys), len(self.xs))
        extent = (self.xs[0], self.xs[-1], self.ys[0], self.ys[-1])
        colours = {"cmap": binary_colours(task), "vmin": 0, "vmax": 1} if self.binary else {}
        self.image = ax.imshow(np.zeros(self.shape if self.binary else (*self.shape, 3)),
                               origin="lower", extent=extent, aspect="auto",
                               interpolation="nearest", **colours)
        self.update(snap)
        self.points = scatter_classes(ax, view)
        names = view.model.feature_names
        ax.set(xlim=extent[:2], ylim=extent[2:], xlabel=names[0], ylabel=names[1])
        ax.grid(False)

    def update(self, snap: Snapshot) -> None:
        task = self.view.model.task
        proba = task.proba(outputs_at(self.view, snap, self.grid))  # (n*n, K) in class order
        if self.binary:  # NaN shows as the colour map's 'bad' colour
            self.image.set_data(proba[:, 1].reshape(self.shape))
        else:
            rgb = np.nan_to_num(region_colours(proba, task), nan=1.0)
            self.image.set_data(rgb.reshape(*self.shape, 3))
        if self.line is not None:
            self.line.remove()
            self.line = None
        if self.binary and np.isfinite(proba).all():  # the line P(class 1) = 0.5
            p = proba[:, 1].reshape(self.shape)
            if p.min() < 0.5 < p.max():
                self.line = self.ax.contour(self.xs, self.ys, p, levels=[0.5], colors="k",
                                            linewidths=0.8)
        self.ax.set_title(panel_title(self.label, snap.epoch), fontsize=9)

    def moving(self) -> list:
        """What an animation redraws each frame: the regions, the 0.5 line, and what lies
        over them (the points, the frame), and the title."""
        line = [self.line] if self.line is not None else []
        return [self.image, *line, *self.points, *self.ax.spines.values(), self.ax.title]


def boundary_keys(fig, drawn: list[BoundaryPanel]) -> None:
    """A colour bar beside the panels (one per task and classes among them) and one legend of
    the points below them all: neither covers the plane."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, ListedColormap

    groups: dict[tuple, list[BoundaryPanel]] = {}
    for panel in drawn:
        model = panel.view.model
        groups.setdefault((model.task.name, tuple(model.classes or ())), []).append(panel)
    for (_, classes), members in groups.items():
        axes, first = [p.ax for p in members], members[0]
        names = [str(c) for c in classes] or ["0", "1"]
        if first.binary:
            fig.colorbar(first.image, ax=axes, shrink=0.9, label=f"P(class {names[-1]})")
            continue
        k = len(names)
        sure = region_colours(np.eye(k), first.view.model.task)  # each class's colour, sure
        scale = ScalarMappable(BoundaryNorm(np.arange(k + 1) - 0.5, k), ListedColormap(sure))
        bar = fig.colorbar(scale, ax=axes, shrink=0.9, ticks=range(k),
                           label="likeliest class (paler: less sure)")
        bar.ax.set_yticklabels(names)
    handles = legend_handles([panel.view for panel in drawn])
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6),
                   fontsize=8, frameon=False)


def scatter_classes(ax, view: View) -> list:
    """Training points filled, validation points hollow diamonds, each in its class's colour
    with a dark edge (a point on its own class's region stays visible). Returns what it drew."""
    drawn = []
    for part, (X, target) in view.points.items():
        colours = [CLASS_COLOURS[i % len(CLASS_COLOURS)] for i in target.astype(int)]
        style = ({"c": colours, "edgecolors": "k", "linewidths": 0.5, "s": 16} if part == "train"
                 else {"c": colours, "edgecolors": "w", "linewidths": 0.9, "marker": "D",
                       "s": 22})
        drawn.append(ax.scatter(X[:, 0], X[:, 1], **style))
    return drawn


def legend_handles(shown: list[View]) -> list:
    """The points' legend: each class (the first 10) in its colour, and the validation
    diamond; none when no view has its data here."""
    from matplotlib.lines import Line2D

    with_points = [v for v in shown if v.points]
    classes = dict.fromkeys((i, str(c)) for v in with_points
                            for i, c in enumerate((v.model.classes or [])[:10]))
    handles = [Line2D([], [], marker="o", ls="", color=CLASS_COLOURS[i % len(CLASS_COLOURS)],
                      markeredgecolor="k", label=name) for i, name in classes]
    if any("val" in v.points for v in with_points):
        handles.append(Line2D([], [], marker="D", ls="", color="0.5", markeredgecolor="w",
                              label="validation"))
    return handles


class FitPanel:
    """A 1-input regression: the data and the network's function over it."""

    def __init__(self, ax, view: View, snap: Snapshot, label: str | None):
        self.ax, self.view, self.label = ax, view, label
        low, high = bounds(view)
        self.xs = np.linspace(low[0], high[0], 400)
        for part, (X, y) in view.points.items():
            style = ({"color": "0.55", "s": 8} if part == "train" else
                     {"facecolors": "none", "edgecolors": "0.3", "s": 12, "marker": "D"})
            ax.scatter(X[:, 0], y, label="training" if part == "train" else "validation",
                       **style)
        (self.line,) = ax.plot(self.xs, np.zeros_like(self.xs), color="C3", linewidth=2,
                               label="network")
        ax.set(xlabel=view.model.feature_names[0], ylabel="target")
        self.update(snap)
        ax.relim()  # the axes hold the data and this first curve; an animation keeps them
        ax.autoscale_view()
        self.legend = ax.legend(fontsize=7, loc="best")

    def update(self, snap: Snapshot) -> None:
        self.line.set_ydata(outputs_at(self.view, snap, self.xs[:, None])[:, 0])
        self.ax.set_title(panel_title(self.label, snap.epoch), fontsize=9)

    def moving(self) -> list:
        return [self.line, self.legend, self.ax.title]


DEAD = "outputs 0 for every training sample"  # layers.csv's dead_fraction, per unit


def dead_units(view: View, snap: Snapshot, layer: int) -> tuple[np.ndarray | None, str]:
    """Which units of ``layer`` are dead at the snapshot, by the one definition layers.csv
    uses (diagnostics.dead_fraction: the unit outputs 0 for every training sample), and how
    many, as words. None when it cannot be told: no training data here, or an activation that
    does not die (dead_fraction is None for it)."""
    X = view.inputs
    if X is None:
        return None, "dead: no data to tell"
    net = view.model.network
    net.load_parameters(snap.params)
    with np.errstate(all="ignore"):
        a = net.layer_outputs(X)[layer - 1]  # (samples, units)
    act = net.activations[layer - 1]
    per_unit = [dead_fraction(act, a[:, [unit]]) for unit in range(a.shape[1])]
    if per_unit[0] is None:
        return None, f"{act.registry_name}: cannot die"
    dead = np.array(per_unit) == 1.0
    return dead, f"{int(dead.sum())} of {len(dead)} dead"


class NeuronBlock:
    """One image per unit of ``layer`` (the first MAX_UNITS), on one colour scale with 0
    white, each titled dead by ``dead_units``' definition."""

    def __init__(self, fig, axes, view: View, snap: Snapshot, layer: int):
        self.axes, self.view, self.layer = axes, view, layer
        self.xs, self.ys, self.grid = plane(view, 80)
        self.shape = (len(self.ys), len(self.xs))
        extent = (self.xs[0], self.xs[-1], self.ys[0], self.ys[-1])
        total = view.model.network.sizes[layer]
        for ax in axes[total:]:
            ax.set_visible(False)
        self.images = [ax.imshow(np.zeros(self.shape), origin="lower", extent=extent,
                                 aspect="auto", cmap="RdBu_r", interpolation="nearest")
                       for ax in axes[:total]]
        for ax in axes[:total]:
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
        more = f" (first {MAX_UNITS} of {total} units)" if total > MAX_UNITS else ""
        self.bar = fig.colorbar(self.images[0], ax=list(axes), shrink=0.8,
                                label=f"layer {layer} activation{more}")
        self.update(snap)

    def update(self, snap: Snapshot) -> None:
        a = outputs_at(self.view, snap, self.grid, self.layer)
        limit = float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 1.0
        limit = limit or 1.0
        dead, count = dead_units(self.view, snap, self.layer)
        for unit, image in enumerate(self.images):
            image.set_data(a[:, unit].reshape(self.shape))
            image.set_clim(-limit, limit)
            is_dead = dead is not None and dead[unit]
            image.axes.set_title(f"unit {unit + 1}" + (" dead" if is_dead else ""), fontsize=8)
        self.axes[0].set_ylabel(f"{self.view.label}\nepoch {snap.epoch}\n{count}", fontsize=8)

    def moving(self) -> list:
        """The images, their frames and titles, the label (its y axis: ticks there are none)
        and the colour bar, whose scale follows each frame's largest activation."""
        shown = [image.axes for image in self.images]
        return [*self.images, *(s for ax in shown for s in ax.spines.values()),
                *(ax.title for ax in shown), self.axes[0].yaxis, self.bar.ax]


PANEL_DRAWERS = {"boundary": BoundaryPanel, "fit": FitPanel}  # neurons draw blocks of panels
