"""The loss surface E(W) around a run's trained parameters, and the path gradient descent took.

    nntrain plot RUN --landscape                 E(W) over a plane of two random directions
    nntrain plot RUN --landscape --along path    the plane of the path's two principal
                                                 components, with the path drawn on it
    nntrain plot RUN --landscape --line          E((1-a) W0 + a W_final), a in [-0.5, 1.5]
    nntrain plot DIR --landscape --along path --together
                                                 one surface with every run's path (runs that
                                                 differ only in how they were trained)

The plane (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets") is
W(a, b) = W_final + a d1 + b d2, and E is the run's loss on its training split
as the run prepared it (model.load_run and the run's saved preprocessor).

- Random directions are filter-normalized: a filter is the weights into one
  unit, a column W[:, j] of nntrain's (fan_in, fan_out) matrices; each
  filter's direction is a Gaussian draw rescaled to that filter's norm, so a
  step a = 1 moves every unit by as much as its own weights weigh. Biases (and
  PReLU's alphas) get a zero direction, as Li et al. treat biases. A filter
  that is all zeros (zero init) has no norm to copy: its direction is the
  Gaussian draw at the initializer's scale (``target_std``), or Xavier's when
  the initializer's scale is 0 (zeros, constant). The draw is seeded by the
  run's seed, so the picture is the same every time.
- Along the path: the principal components of the snapshots' offsets from the
  final parameters (snapshot - final, every parameter, PCA centred as
  scikit-learn's, which Li et al.'s code uses), each a unit vector; the path is
  each offset's projection on them, and each axis says how much of the path's
  variance it explains.
- Together (--together): runs of one network on one training split (a compare folder over
  optimizer.lr, say) share one surface E(W), so their paths can share one plane: the
  principal components of all their snapshots' offsets together, centred on the final
  parameters of the run whose final loss E is lowest. A diverged run's parameters run off to
  where every loss overflows: its path is drawn up to its last finite snapshot, and only until
  it leaves the picture; the plane and the picture's reach come from the runs that did not
  diverge (a path that ran off to 1e100 would otherwise be the plane).
- The line is Goodfellow et al.'s (2015) linear interpolation from the
  initial parameters (epoch 0's snapshot, else the config's init rebuilt from
  its seed) to the trained ones.

Cost: one forward pass over the training split per grid point (resolution^2
for the plane). A few are timed first: past BUDGET_S seconds in all the command
refuses, naming a --resolution that fits; past a second it shows a progress bar.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .experiment import Split, build_network
from .initializers import INITIALIZERS
from .model import TrainedModel, load_run
from .pictures import LateBar, check_shapes
from .plots import new_figure, picture_path, save_figure
from .registry import ConfigError
from .runs import one_per_variant, read_summary
from .snapshots import FILE_NAME, Snapshot, load_snapshots

SPAN = 1.0  # the plane's half-width in units of the directions (random: filter norms)
RESOLUTION = 41  # grid points per side (odd, so that the trained parameters are the centre)
MAX_RESOLUTION = 401
MAX_SPAN = 1e3
LINE = (-0.5, 1.5)  # --line's range of a: 0 is the initial parameters, 1 the trained ones
PATH_MARGIN = 1.1  # --along path: the axes reach this much past the path's farthest point
BUDGET_S = 60.0  # seconds of forward passes the command takes on before refusing
PROBES = 3  # passes timed per run to estimate the cost
ZERO_FILTER_INIT = "xavier_uniform"  # the scale of a zero filter's direction when its init has none
PANEL = 4.2  # inches per panel
PANELS_PER_ROW = 3
LEVELS = 16  # contour levels


@dataclass(frozen=True)
class Options:
    """What --landscape draws: the plane (span, resolution, along) or the line."""

    span: float = SPAN
    resolution: int = RESOLUTION
    along: str = "random"
    line: bool = False
    together: bool = False


def options(landscape: bool, line: bool = False, span: float | None = None,
            resolution: int | None = None, along: str | None = None, at: str | None = None,
            frames: int | None = None, out: Path | None = None,
            together: bool = False) -> Options | None:
    """The checked options of ``plot --landscape``; None without --landscape. A mistake is a
    ConfigError naming the option (one line, exit 2)."""
    given = [name for name, on in (("--line", line), ("--span", span is not None),
                                   ("--resolution", resolution is not None),
                                   ("--along", along is not None), ("--together", together))
             if on]
    if not landscape:
        if given:
            raise ConfigError("goes with --landscape", given[0])
        return None
    for name, value in (("--at", at), ("--frames", frames)):
        if value is not None:
            raise ConfigError("--landscape draws the surface around the run's final parameters "
                              "(and the whole path): leave out --at and --frames", name)
    if out is not None and Path(out).suffix.lower() == ".gif":
        raise ConfigError("--landscape draws a still picture: give .png, .svg or .pdf",
                          f"-o {out}")
    if line and (span is not None or along is not None):
        raise ConfigError(f"--line runs from the initial to the trained parameters (a from "
                          f"{LINE[0]} to {LINE[1]}): leave out --span and --along",
                          "--span" if span is not None else "--along")
    if span is not None and not (math.isfinite(span) and 0 < span <= MAX_SPAN):
        raise ConfigError(f"must be a number above 0 and at most {MAX_SPAN:g}, got {span}",
                          "--span")
    if resolution is not None and not (3 <= resolution <= MAX_RESOLUTION and resolution % 2):
        raise ConfigError(f"must be an odd number from 3 to {MAX_RESOLUTION} (odd: the trained "
                          f"parameters are the grid's centre), got {resolution}", "--resolution")
    if along is not None and along not in ("random", "path"):
        raise ConfigError(f"expected random or path, got {along!r}", "--along")
    if together and along != "path":
        raise ConfigError("draws the runs' paths on one surface: it goes with --along path",
                          "--together")
    return Options(SPAN if span is None else float(span),
                   RESOLUTION if resolution is None else resolution, along or "random", line,
                   together)


# -- directions ------------------------------------------------------------------------------


def zero_filter_scale(init, fan_in: int, fan_out: int) -> float:
    """The std of a zero filter's direction: the initializer's own (``target_std``), else
    Xavier's for the layer when the initializer's is 0 or undefined (zeros, constant)."""
    try:
        std = float(init.target_std(fan_in, fan_out))
    except (NotImplementedError, TypeError, ValueError):
        std = 0.0
    if not (math.isfinite(std) and std > 0):
        std = INITIALIZERS.build(ZERO_FILTER_INIT).target_std(fan_in, fan_out)
    return std


def filter_normalized(params: list[np.ndarray], is_weight: list[bool], zero_scales: list[float],
                      rng: np.random.Generator) -> list[np.ndarray]:
    """One direction per parameter (Li et al.'s filter normalization): for a weight matrix W
    (fan_in, fan_out), each column d[:, j] (the weights into unit j) is a standard Gaussian draw
    rescaled to the norm of W[:, j]; an all-zero column keeps the draw times its layer's
    ``zero_scales`` entry; biases and other parameters get zeros."""
    directions, layer = [], 0
    for p, weight in zip(params, is_weight):
        if not weight:
            directions.append(np.zeros(p.shape))
            continue
        W = np.asarray(p, dtype=np.float64)
        d = rng.standard_normal(W.shape)  # (fan_in, fan_out)
        w_norm, d_norm = np.linalg.norm(W, axis=0), np.linalg.norm(d, axis=0)  # (fan_out,)
        directions.append(d * np.where(w_norm > 0, w_norm / d_norm, zero_scales[layer]))
        layer += 1
    return directions


def random_directions(model: TrainedModel) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two filter-normalized directions at the run's final parameters, drawn from the run's
    seed (its own stream: not the one that drew the initial weights)."""
    net = model.network
    scales = [zero_filter_scale(init, fan_in, fan_out) for init, fan_in, fan_out
              in zip(net.initializers, net.sizes[:-1], net.sizes[1:])]
    rng = np.random.default_rng([2, int(model.config.seed)])
    params, weight = net.parameters(), net.is_weight()
    return (filter_normalized(params, weight, scales, rng),
            filter_normalized(params, weight, scales, rng))


@dataclass
class PathPlane:
    """The path's principal plane: unit directions (flat), the share of the path's variance
    each explains, and each snapshot's coordinates on them."""

    directions: np.ndarray  # (2, parameters)
    explained: np.ndarray  # (2,)
    coords: np.ndarray  # (snapshots, 2)


def principal_plane(offsets: np.ndarray, rng: np.random.Generator | None = None) -> PathPlane:
    """PCA of the offsets (snapshots, parameters) from the final parameters, centred as
    scikit-learn's PCA; the coordinates are the offsets (not centred) projected, so that the
    final parameters are (0, 0). A path along one line gets a second direction at random,
    orthogonal to the first, explaining 0."""
    centred = offsets - offsets.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    total = float(np.sum(s ** 2))
    if total == 0 or not np.isfinite(total):
        raise ConfigError("the path never moved, or not finitely (every snapshot is the same): "
                          "no direction to take; use --along random", "--along path")
    share = s ** 2 / total
    if len(s) < 2 or share[1] < 1e-12:
        v = (rng or np.random.default_rng(0)).standard_normal(offsets.shape[1])
        v -= (v @ vt[0]) * vt[0]
        second = v / np.linalg.norm(v)
        vt, share = np.vstack([vt[0], second]), np.array([share[0], 0.0])
    signs = np.where(vt[:2] @ offsets[0] < 0, -1.0, 1.0)  # the first snapshot on the + side
    directions = vt[:2] * signs[:, None]
    return PathPlane(directions, share[:2], offsets @ directions.T)


def run_snapshots(model: TrainedModel) -> list[Snapshot]:
    """The run's snapshots (snapshots.bin), two or more, shaped as its network."""
    snaps = load_snapshots(model.path / FILE_NAME).snapshots
    if snaps:
        check_shapes(model, snaps[0])
    if len(snaps) < 2:
        raise ConfigError(f"has {len(snaps)} parameter snapshot{'s' * (len(snaps) != 1)} "
                          f"({FILE_NAME}): a path needs 2 or more; train with "
                          "train.snapshot_every: auto (or N), or use --along random",
                          str(model.path))
    return snaps


def path_snapshots(model: TrainedModel) -> list[Snapshot]:
    """The run's snapshots, for --along path: at least two, not all the final parameters."""
    snaps = run_snapshots(model)
    final = flat(model.network.parameters())
    moved = [s for s in snaps if not np.array_equal(flat(s.params), final)]
    if not moved:
        raise ConfigError("the run's parameters never moved (every snapshot equals the final "
                          "parameters): there is no path to take directions from; use "
                          "--along random", str(model.path))
    return snaps


def flat(params: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in params])


def unflat(vector: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    sizes = np.cumsum([0, *(p.size for p in like)])
    return [vector[a:b].reshape(p.shape) for a, b, p in zip(sizes[:-1], sizes[1:], like)]


# -- E(W) on the training split --------------------------------------------------------------


class LossAt:
    """E(W_final + a u + b v) on the run's training split, one forward pass each, written into
    the network's own parameters (a = b = 0 is exactly the final parameters)."""

    def __init__(self, model: TrainedModel):
        data = model.data()  # the run's split and preprocessing, rebuilt from its seeds
        net = model.network
        self.net, self.loss = net, model.loss
        self.split = Split.of(data.X_train, data.Y_train, net.dtype, model.task)
        self.final = [p.copy() for p in net.parameters()]

    def __call__(self, a: float, u: list[np.ndarray], b: float = 0.0,
                 v: list[np.ndarray] | None = None) -> float:
        for p, f, du, dv in zip(self.net.parameters(), self.final, u, v or u):
            np.multiply(du, a, out=p, casting="unsafe")
            p += f
            if v is not None:
                p += b * dv
        with np.errstate(all="ignore"):
            return float(self.net.loss(self.split.X, self.split.Y, self.loss))

    def seconds_each(self, u: list[np.ndarray]) -> float:
        """The time of one pass (the least of PROBES)."""
        times = []
        for _ in range(PROBES):
            start = time.perf_counter()
            self(0.0, u)
            times.append(time.perf_counter() - start)
        return min(times)

    def restore(self) -> None:
        self.net.load_parameters(self.final)

    def at_final(self) -> float:
        """E of the final parameters themselves (not metrics.csv's last row: see the tests)."""
        return self(0.0, self.final)


# -- what to compute ---------------------------------------------------------------------------


@dataclass
class Track:
    """A path drawn on the plane: its snapshots' coordinates and epochs, and its legend label."""

    label: str
    coords: np.ndarray  # (snapshots, 2), on the plane's axes
    epochs: tuple[int, ...]


@dataclass
class Plan:
    """One run's picture before it is computed: the directions, the grid, the axes."""

    label: str
    loss_at: LossAt
    u: list[np.ndarray]
    v: list[np.ndarray] | None  # None: the line
    alphas: np.ndarray
    betas: np.ndarray | None
    axes: tuple[str, str]
    note: str = ""
    centre: str = "the trained W"
    tracks: list[Track] = field(default_factory=list)  # the paths (--along path)

    @property
    def points(self) -> int:
        return len(self.alphas) * (1 if self.betas is None else len(self.betas))


def picked_runs(run_dirs: list[Path], seed: int | None) -> list[tuple[str, TrainedModel]]:
    """One run per variant (the one with ``seed``, else the lowest seed), with its final
    parameters (model.npz, else the checkpoint)."""
    return [(label, load_run(d)) for label, d in one_per_variant(run_dirs, seed).items()]


def diverged(model: TrainedModel) -> bool:
    """The run diverged (summary.json), or its last parameters are not finite."""
    status = (read_summary(model.path) or {}).get("status")
    return status == "diverged" or not all(np.isfinite(p).all()
                                           for p in model.network.parameters())


def chosen_runs(run_dirs: list[Path], seed: int | None) -> list[tuple[str, TrainedModel]]:
    """picked_runs, each of whose final parameters must be finite: a surface around them."""
    models = picked_runs(run_dirs, seed)
    for _, model in models:
        if diverged(model):
            raise ConfigError("the run diverged: its last parameters are not finite, or far "
                              "out where every loss overflows; there is no surface around them",
                              str(model.path))
    return models


def centred_grid(half: float, n: int) -> np.ndarray:
    """n points from -half to half, the middle one exactly 0 (the trained parameters)."""
    grid = np.linspace(-half, half, n)
    grid[n // 2] = 0.0
    return grid


def plane_plan(label: str, model: TrainedModel, opts: Options) -> Plan:
    """The plane of two random filter-normalized directions, or of the path's two principal
    components (the path drawn on it)."""
    loss_at, n = LossAt(model), opts.resolution
    if opts.along == "random":
        u, v = random_directions(model)
        cos = float(flat(u) @ flat(v) / (np.linalg.norm(flat(u)) * np.linalg.norm(flat(v))))
        grid = centred_grid(opts.span, n)
        return Plan(label, loss_at, u, v, grid, grid.copy(),
                    ("random direction 1 (filter-normalized)",
                     "random direction 2 (filter-normalized)"), f"cos(d1, d2) = {cos:.2f}")
    snaps = path_snapshots(model)
    final = flat(loss_at.final)
    offsets = np.vstack([flat(s.params) - final for s in snaps])
    plane = principal_plane(offsets, np.random.default_rng([2, int(model.config.seed)]))
    reach = np.abs(plane.coords).max(axis=0)
    reach[reach == 0] = reach.max()
    a_half, b_half = PATH_MARGIN * opts.span * reach
    u, v = (unflat(d, loss_at.final) for d in plane.directions)
    axes = tuple(f"PC {k + 1} of the path ({share:.1%} of its variance)"
                 for k, share in enumerate(plane.explained))
    return Plan(label, loss_at, u, v, centred_grid(a_half, n), centred_grid(b_half, n), axes,
                tracks=[Track("path (snapshots)", plane.coords, tuple(s.epoch for s in snaps))])


# -- --together: several runs' paths on one surface -------------------------------------------


def surface_of(model: TrainedModel) -> dict:
    """What fixes E(W): the network (initializers aside), the loss and the training split."""
    net, data = model.network, model.data()
    return {"network": (replace(model.config.model, initializer=None, bias_initializer=None),
                        net.parameter_names(), [p.shape for p in net.parameters()]),
            "loss": model.config.loss, "training data": (data.X_train, data.Y_train)}


def check_one_surface(runs: list[tuple[str, TrainedModel]]) -> None:
    """Refuse runs whose E(W) is not the same function: another network or training split."""
    first = surface_of(runs[0][1])
    for _, model in runs[1:]:
        for what, value in surface_of(model).items():
            same = (all(np.array_equal(a, b) for a, b in zip(value, first[what]))
                    if what == "training data" else value == first[what])
            if not same:
                raise ConfigError(f"its {what} differs from {runs[0][1].path}'s: --together puts "
                                  "runs of one network on one training split on one surface "
                                  "(they may differ in optimizer, epochs, seed, initializer)",
                                  str(model.path))


def finite_prefix(snaps: list[Snapshot]) -> list[Snapshot]:
    """The snapshots up to the first with a non-finite parameter."""
    for k, snap in enumerate(snaps):
        if not all(np.isfinite(p).all() for p in snap.params):
            return snaps[:k]
    return snaps


def inside(coords: np.ndarray, halves: np.ndarray) -> np.ndarray:
    """A diverged path up to the first point outside the picture (that one drawn: the line
    leaves the frame)."""
    out = np.flatnonzero((np.abs(coords) > halves).any(axis=1))
    return coords if not len(out) else coords[:out[0] + 1]


def centre_run(runs: list[tuple[str, TrainedModel]]) -> tuple[str, LossAt, float]:
    """Of the runs that did not diverge, the one whose final parameters have the lowest E:
    its label, its LossAt and that E (ties: the first)."""
    stayed = [(label, LossAt(model)) for label, model in runs if not diverged(model)]
    if not stayed:
        raise ConfigError("every run diverged: there is no surface around their last "
                          "parameters", "--together")
    losses = [loss_at.at_final() for _, loss_at in stayed]
    best = int(np.argmin([E if math.isfinite(E) else math.inf for E in losses]))
    return stayed[best][0], stayed[best][1], losses[best]


def together_plan(runs: list[tuple[str, TrainedModel]], opts: Options) -> Plan:
    """Every run's path on one plane: the principal components of the snapshots of the runs
    that did not diverge, all together, around the centre run's final parameters; a diverged
    run's path up to its last finite snapshot, until it leaves the picture."""
    check_one_surface(runs)
    centre, loss_at, E = centre_run(runs)
    final = flat(loss_at.final)
    paths = {}
    for label, model in runs:
        snaps = finite_prefix(run_snapshots(model))
        if snaps:
            paths[label] = (diverged(model), model, snaps,
                            np.vstack([flat(s.params) - final for s in snaps]))
    plane, halves, coords = shared_plane([(offsets, gone) for gone, _, _, offsets
                                          in paths.values()], opts.span,
                                         np.random.default_rng([2, int(runs[0][1].config.seed)]))
    tracks = []
    for xy, (label, (gone, model, snaps, _)) in zip(coords, paths.items()):
        if gone:
            label = f"{label} ({diverged_note(model, snaps[len(xy) - 1].epoch)})"
        tracks.append(Track(label, xy, tuple(s.epoch for s in snaps[:len(xy)])))
    u, v = (unflat(d, loss_at.final) for d in plane.directions)
    axes = tuple(f"PC {k + 1} of the paths ({share:.1%} of their variance)"
                 for k, share in enumerate(plane.explained))
    n = opts.resolution
    return Plan("", loss_at, u, v, centred_grid(halves[0], n), centred_grid(halves[1], n), axes,
                centre=f"{centre}'s trained W\n(the lowest final E of the runs: {E:.3g})",
                tracks=tracks)


def shared_plane(paths: list[tuple[np.ndarray, bool]], span: float = SPAN,
                 rng: np.random.Generator | None = None
                 ) -> tuple[PathPlane, np.ndarray, list[np.ndarray]]:
    """``paths``: each run's offsets from the centre (snapshots, parameters) and whether it
    diverged. The principal plane of the paths that did not diverge, all their snapshots
    together; the picture's half-widths (PATH_MARGIN * span past their farthest point on each
    axis); each path's coordinates, a diverged one's until it leaves the picture."""
    stayed = np.vstack([offsets for offsets, gone in paths if not gone])
    plane = principal_plane(stayed, rng)
    halves = PATH_MARGIN * span * np.abs(stayed @ plane.directions.T).max(axis=0)
    halves[halves == 0] = halves.max()
    coords = []
    for offsets, gone in paths:
        xy = offsets @ plane.directions.T
        coords.append(inside(xy, halves) if gone else xy)
    return plane, halves, coords


def diverged_note(model: TrainedModel, drawn_to: int) -> str:
    """How far a diverged run's path is drawn, and where it diverged."""
    where = ((read_summary(model.path) or {}).get("diverged") or {}).get("epoch")
    return (f"diverged{f' at epoch {where}' if where is not None else ''}; "
            f"drawn to epoch {drawn_to}")


def line_plan(label: str, model: TrainedModel, opts: Options) -> Plan:
    """Goodfellow et al.'s line from the initial parameters W0 (a = 0) to the trained ones
    (a = 1): W_final + (1 - a)(W0 - W_final)."""
    loss_at = LossAt(model)
    snaps = load_snapshots(model.path / FILE_NAME).snapshots
    if snaps and snaps[0].epoch == 0:
        check_shapes(model, snaps[0])
        initial = snaps[0].params
    else:  # the config's initialization, drawn again from its seed
        initial = build_network(model.config).parameters()
    u = [np.asarray(w0, dtype=np.float64) - f for w0, f in zip(initial, loss_at.final)]
    alphas = np.linspace(*LINE, opts.resolution)
    for exact in (0.0, 1.0):  # the two ends are exact points of the line
        alphas[np.argmin(np.abs(alphas - exact))] = exact
    return Plan(label, loss_at, u, None, alphas, None,
                ("a: 0 = initial parameters, 1 = trained", "training loss E(W)"))


def check_cost(plans: list[Plan], line: bool) -> float:
    """Time a few passes per run; refuse, naming a --resolution that fits, when all the grid's
    passes would take more than BUDGET_S seconds. Returns the estimate in seconds."""
    each = [plan.loss_at.seconds_each(plan.u) for plan in plans]
    estimate = sum(t * plan.points for t, plan in zip(each, plans))
    if estimate <= BUDGET_S:
        return estimate
    per_side = BUDGET_S / sum(each)  # points per run that fit the budget
    fits = int(per_side if line else math.isqrt(int(per_side)))
    fits = max(3, fits - (fits % 2 == 0))
    raise ConfigError(f"would take about {estimate:.0f} s ({plans[0].points} points a run, "
                      f"{1000 * max(each):.1f} ms each), more than {BUDGET_S:.0f} s: use "
                      f"--resolution {fits} or less", "--resolution")


def compute(plan: Plan, bar: LateBar, done: int) -> np.ndarray:
    """E at every grid point (rows: b, columns: a), or along the line; the network's
    parameters are the final ones again afterwards."""
    loss_at = plan.loss_at
    try:
        if plan.v is None:
            losses = np.array([loss_at(1.0 - a, plan.u) for a in plan.alphas])
            bar.advance(done + len(plan.alphas))
            return losses
        losses = np.empty((len(plan.betas), len(plan.alphas)))
        for i, b in enumerate(plan.betas):
            losses[i] = [loss_at(a, plan.u, b, plan.v) for a in plan.alphas]
            bar.advance(done + (i + 1) * len(plan.alphas))
        return losses
    finally:
        loss_at.restore()


def surface_bar(make_bar):
    """output.Bar for LateBar, with the bar named for the surface (LateBar names its own bar
    after the GIF frames it was made for)."""
    if not make_bar:
        return make_bar

    def make(_name, *columns):
        from rich.progress import TextColumn

        return make_bar(TextColumn("[bold]loss surface"), *columns)
    return make


def draw(run_dirs: list[Path], out: Path, opts: Options, seed: int | None = None,
         progress=None) -> Path:
    """The picture of ``opts`` for the runs (one panel per variant; the lines on one axes),
    written atomically to ``out``. ``progress``: output.Bar on a terminal, else False."""
    written = picture_path(out)
    if opts.together:
        plans = [together_plan(picked_runs(run_dirs, seed), opts)]
    else:
        make = line_plan if opts.line else plane_plan
        plans = [make(label, model, opts) for label, model in chosen_runs(run_dirs, seed)]
    check_cost(plans, opts.line)
    bar = LateBar(surface_bar(progress), sum(p.points for p in plans), time.perf_counter())
    results, done = [], 0
    try:
        for plan in plans:
            results.append(compute(plan, bar, done))
            done += plan.points
    finally:
        bar.stop()
    fig = (line_figure if opts.line else surface_figure)(plans, results)
    return save_figure(fig, written)


# -- drawing -----------------------------------------------------------------------------------


def levels_of(E: np.ndarray):
    """Contour levels over the finite losses (log-spaced past a factor 10) and the norm."""
    from matplotlib.colors import LogNorm

    finite = E[np.isfinite(E)]
    lo, hi = float(finite.min()), float(finite.max())
    if lo > 0 and hi / lo > 10:
        return np.geomspace(lo, hi, LEVELS), LogNorm(lo, hi)
    if hi - lo <= 1e-12 * max(1.0, abs(lo)):  # flat: one band
        pad = max(1e-9, 1e-6 * abs(lo))
        return np.array([lo - pad, hi + pad]), None
    return np.linspace(lo, hi, LEVELS), None


def surface_panel(fig, ax, plan: Plan, E: np.ndarray, titled: bool) -> None:
    """Filled contours of E with their lines, the trained parameters (a star) at the centre,
    and the path with its first and last epochs."""
    ax.set(xlabel=plan.axes[0], ylabel=plan.axes[1])
    title = [plan.label] if titled else []
    title.append(f"training loss E(W) around {plan.centre}" + (f"; {plan.note}" if plan.note
                                                                else ""))
    ax.set_title("\n".join(title), fontsize=9)
    if not np.isfinite(E).any():
        ax.text(0.5, 0.5, "no finite loss on this grid", ha="center", transform=ax.transAxes)
        return
    levels, norm = levels_of(E)
    masked = np.ma.masked_invalid(E)
    filled = ax.contourf(plan.alphas, plan.betas, masked, levels=levels, norm=norm,
                         cmap="viridis", extend="neither")
    ax.contour(plan.alphas, plan.betas, masked, levels=levels, colors="k", linewidths=0.4,
               alpha=0.5)
    fig.colorbar(filled, ax=ax, label="training loss E(W)", shrink=0.9, format="%.3g",
                 ticks=levels[::3] if len(levels) > 2 else levels)
    draw_tracks(ax, plan)
    ax.plot([0], [0], marker="*", color="r", markersize=12, linestyle="",
            markeredgecolor="k", label="trained parameters")
    ax.set(xlim=(plan.alphas[0], plan.alphas[-1]), ylim=(plan.betas[0], plan.betas[-1]))
    if len(plan.tracks) > 1:  # several labelled paths: the legend under the axes, off them
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    else:
        ax.legend(fontsize=7, loc="best", framealpha=0.6)


def draw_tracks(ax, plan: Plan) -> None:
    """The paths: one in white; several (--together) in colours, each labelled, the start's
    epoch written once where they share it."""
    colours = ["w"] if len(plan.tracks) == 1 else [f"C{k % 10}" for k in range(len(plan.tracks))]
    starts = set()
    for k, (track, colour) in enumerate(zip(plan.tracks, colours)):
        xs, ys = track.coords[:, 0], track.coords[:, 1]
        ax.plot(xs, ys, "-o", color=colour, markersize=2.5, linewidth=1, markeredgecolor="k",
                markeredgewidth=0.3, label=track.label,
                zorder=3 - k / len(plan.tracks))  # the first on top where paths overlap
        start = (round(float(xs[0]), 12), round(float(ys[0]), 12), track.epochs[0])
        if start in starts:
            continue
        starts.add(start)
        right = xs[0] > 0  # the label on the side of the start away from the edge
        ax.annotate(f"epoch {track.epochs[0]}", (xs[0], ys[0]), color="w", fontsize=8,
                    xytext=(-4 if right else 4, 4), textcoords="offset points",
                    ha="right" if right else "left")


def surface_figure(plans: list[Plan], results: list[np.ndarray]):
    """One panel per run (variant), PANELS_PER_ROW a row."""
    cols = min(len(plans), PANELS_PER_ROW)
    rows = -(-len(plans) // cols)
    legend = 0.2 * (len(plans[0].tracks) + 2) if len(plans[0].tracks) > 1 else 0  # under it
    fig = new_figure((PANEL * cols + 0.8, PANEL * rows + legend), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(plans):]:
        ax.set_visible(False)
    for ax, plan, E in zip(axes, plans, results):
        surface_panel(fig, ax, plan, E, titled=len(plans) > 1)
    return fig


def line_figure(plans: list[Plan], results: list[np.ndarray]):
    """E along each run's line on one axes, the initial (a = 0) and trained (a = 1) points
    marked; log scale when the losses span more than a factor 10."""
    fig = new_figure((6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for plan, E in zip(plans, results):
        ax.plot(plan.alphas, E, label=plan.label)
    for a, name in ((0.0, "initial"), (1.0, "trained")):
        ax.axvline(a, color="0.5", linestyle="--", linewidth=0.8)
        ax.annotate(name, (a, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", fontsize=8, color="0.3")
    finite = np.concatenate([E[np.isfinite(E)] for E in results])
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 10:
        ax.set_yscale("log")
    ax.set(xlabel=plans[0].axes[0], ylabel=plans[0].axes[1],
           title="E((1 - a) W0 + a W_final) on the training split")
    ax.legend(fontsize=8)
    return fig
