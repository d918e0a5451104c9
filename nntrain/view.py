"""`nntrain view`: one self-contained, offline, interactive HTML page of runs.

    nntrain view runs/compare-xor-...      a sweep: table, mean ± std curves, boundaries, ...
    nntrain view RUN -o xor.html --open    one run, opened in the browser
    nntrain view runs/ --watch             rewritten every few seconds while runs are running

The page is built here as data (one JSON document: the runs table from the same results row
``report`` uses, thinned curves, boundary frames, layers.csv heat maps, configs) and drawn in
the browser by view.js with Plotly, whose script is inlined: the file needs no network and no
server. Plotly is imported only by this module.

Every string from a run folder (names, config values, labels, feature names) reaches the page
as JSON inside a ``<script type="application/json">`` block, escaped so that it cannot end the
block, and view.js writes it into the page as text, never as HTML.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shlex
import time
import warnings
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np

from .plots import COLOURS, variant_colours
from .registry import ConfigError
from .results import report_rows
from .runs import (Lock, RunFolder, effective_status, find_runs, layers_frame,
                   process_alive, read_config, read_metrics, read_summary, regular, strict,
                   variants, write_atomic)
from .tasks import FIGURES
from .yamlsafe import safe_load

MAX_POINTS = 500  # per drawn curve: longer ones are thinned (first, last, minimum, divergence kept)
MAX_LAYER_EPOCHS = 300  # columns of a layers.csv heat map
FRAMES = 30  # epochs the boundary slider steps through
GRID = 50  # points per side of a boundary panel
FIT_POINTS = 200
MAX_PANELS = 16  # boundary and loss-surface panels (variants) drawn
SURFACE_RESOLUTION = 31  # --landscape: grid points a side (plot --landscape's default is 41)
WATCH_EVERY = 3.0  # seconds between rewrites with --watch
LAYER_COLUMNS = ["grad_norm", "act_std", "dead_fraction", "saturated_fraction"]
EXTRA_CURVES = ["lr", "grad_norm"]  # drawn on request (a checkbox)


# -- the command ---------------------------------------------------------------------------------


def view(paths: list[Path], out: Path | None = None, watch: bool = False,
         every: float = WATCH_EVERY, on_write=None, along: str | None = None) -> Path:
    """Write the page of the runs at or under ``paths`` to ``out`` (default: see
    ``default_output``); with ``watch``, rewrite it every ``every`` seconds while any run is
    live, then once more. ``on_write(path, seconds, page)`` is told of each write. ``along``
    ('random' or 'path') adds each variant's loss surface, as plot --landscape computes it."""
    out = Path(out) if out is not None else default_output(paths)
    while True:
        started = time.perf_counter()
        run_dirs, ranges = find_runs_and_ranges(paths)  # nothing: a ConfigError, nothing written
        check_output(out, run_dirs + ranges)
        state = sweep_state(paths, run_dirs)
        live = watch and state["live"]
        data = page_data(paths, run_dirs, state)
        data["live"] = live
        data["ranges"] = range_tests(ranges)
        data["surfaces"] = surfaces(run_dirs, along) if along and run_dirs else None
        page = render(data, live=live, every=every)
        write_atomic(out, page)
        if on_write:
            on_write(out, time.perf_counter() - started, page)
        if not live:
            return out
        time.sleep(every)


def find_runs_and_ranges(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """The run folders at or under ``paths`` (as report finds them), and lr-find's ``--out``
    folders there; a path holding neither is a ConfigError naming it, unless it is a compare
    folder whose sweep is running (its runs are to come)."""
    from .lrfind import find_folders

    ranges = {p: find_folders(p) for p in map(Path, paths) if p.is_dir()}
    starting = [p for p in map(Path, paths)  # a sweep that has begun, no run finished yet
                if grid_size(p) is not None and sweep_alive(p) and not any(p.rglob("metrics.csv"))]
    with_runs = [p for p in paths if Path(p) not in starting and
                 (not ranges.get(Path(p)) or any(Path(p).rglob("metrics.csv")))]
    run_dirs = find_runs(with_runs) if with_runs else []
    return run_dirs, sorted({f for found in ranges.values() for f in found})


def range_tests(folders: list[Path]) -> list[dict]:
    """Each lr-find folder's curve and suggestions (one whose lr_find.json is not readable is
    skipped with a warning, as a damaged run is)."""
    from .lrfind import read_folder

    tests = []
    for folder in folders:
        found = read_folder(folder)
        if found is None:
            warnings.warn(f"skipped {folder}: lr_find.json is not lr-find's", stacklevel=2)
        else:
            tests.append({"name": str(folder), **found})
    return tests


def default_output(paths: list[Path]) -> Path:
    """``<name of the one PATH>.html`` in the current folder, else ``view.html``."""
    if len(paths) == 1:
        name = Path(paths[0]).resolve().name
        if name:
            return Path(f"{name}.html")
    return Path("view.html")


def check_output(out: Path, run_dirs: list[Path]) -> None:
    """The page is never written inside a run folder (a run folder is data), nor over a folder."""
    target = Path(out).resolve()
    if target.is_dir() or str(out).endswith(("/", os.sep)) or \
            target.suffix.lower() not in (".html", ".htm"):
        raise ConfigError("give a file name ending in .html", str(out))
    runs = {d.resolve() for d in run_dirs}
    for folder in target.parents:
        if folder in runs or (folder / RunFolder.METRICS).is_file():
            raise ConfigError(f"is inside the run folder {folder}, which holds data only; "
                              "write the page elsewhere", str(out))


def sweep_state(paths: list[Path], run_dirs: list[Path]) -> dict:
    """Which runs are still to come: runs 'running' now, and per compare folder (sweep.yaml)
    the grid points without a run folder yet. A compare folder is live while its grid is
    incomplete and its lock is held by a live process (a stopped sweep is not waited for)."""
    running = sum(effective_status(read_summary(d)) == "running" for d in run_dirs)
    pending, sweeping = 0, False
    for path in map(Path, paths):
        grid = grid_size(path)
        if grid is None:
            continue
        # every grid point with a folder has run (a run that failed before its first row
        # has a summary.json but no run to draw): only the others are to come
        present = sum(1 for d in path.iterdir() if (d / RunFolder.SUMMARY).is_file())
        missing = max(grid - present, 0)
        pending += missing
        sweeping |= bool(missing) and sweep_alive(path)
    return {"running": running, "pending": pending, "live": bool(running) or sweeping}


def sweep_alive(folder: Path) -> bool:
    """A compare folder's lock is held by a live process: its sweep is running."""
    holder = Lock(folder).holder()
    return bool(holder) and process_alive(holder.get("pid"))


def grid_size(folder: Path) -> int | None:
    """The number of grid points of a compare folder (its sweep.yaml), else None."""
    import yaml

    path = folder / "sweep.yaml"
    if not path.is_file():
        return None
    try:
        sweep = safe_load(regular(path).read_text())
        sizes = [len(values) for values in sweep["axes"].values()] + [len(sweep["seeds"])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError,
            ConfigError):
        return None
    return math.prod(sizes)


# -- the page's data -----------------------------------------------------------------------------


def page_data(paths: list[Path], run_dirs: list[Path], state: dict) -> dict:
    """Everything the page draws, as JSON-ready data (see the module docstring)."""
    read = read_runs(run_dirs)
    run_dirs = list(read)
    rows, columns = report_rows(run_dirs)
    base = common_parent(run_dirs) if run_dirs else Path()
    names = [run_name(d, base) for d in run_dirs]
    configs = [read_config(d) for d in run_dirs]
    groups = variants(list(zip(run_dirs, configs)))
    variant_of = {d: label for label, members in groups.items() for d, _ in members}
    runs = [run_entry(d, name, variant_of[d], config, row, read[d][0])
            for d, name, config, row in zip(run_dirs, names, configs, rows)]
    for row, name in zip(rows, names):
        row["run"] = name
    settings = [c for c in columns if c not in ("run", "status", "epochs", "wall_time_s")
                and not c.startswith(("final_", "best_", "test_"))]
    return {
        "title": " + ".join(str(p) for p in paths),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "state": state,
        "table": {"columns": columns, "rows": [clean_row(r) for r in rows],
                  "settings": settings},
        "runs": runs,
        "colours": COLOURS,  # as loss.png's and the pictures'
        "variants": [{"label": label, "colour": colour,
                      "runs": [names[run_dirs.index(d)] for d, _ in members]}
                     for (label, members), colour in zip(groups.items(),
                                                         variant_colours(len(groups)))],
        "curves": curve_columns(runs),
        "extra": [c for c in EXTRA_CURVES if any(c in r["curves"] for r in runs)],
        "pictures": pictures_section(run_dirs) if run_dirs else None,
        "layers": {name: read[d][1] for name, d in zip(names, run_dirs)},
    }


def read_runs(run_dirs: list[Path]) -> dict[Path, tuple]:
    """Each run's drawn curves and layers heat maps; a run whose files hold something they
    cannot (a damaged cell the readers let through) is skipped with a warning, as find_runs
    skips a damaged folder: one bad file never costs the page."""
    read = {}
    for run_dir in run_dirs:
        try:
            read[run_dir] = (curves(read_metrics(run_dir)), layers_section(run_dir))
        except (ValueError, TypeError, KeyError, OverflowError) as err:
            warnings.warn(f"skipped {run_dir}: {err}", stacklevel=2)
    if run_dirs and not read:
        raise ConfigError("holds no run folder that can be drawn", str(common_parent(run_dirs)))
    return read


def common_parent(run_dirs: list[Path]) -> Path:
    return Path(os.path.commonpath([d.resolve().parent for d in run_dirs]))


def run_name(run_dir: Path, base: Path) -> str:
    return str(run_dir.resolve().relative_to(base))


def run_entry(run_dir: Path, name: str, variant: str, config: dict, row: dict,
              drawn: tuple[list[int], dict]) -> dict:
    """One run: its name, variant, seed, status, drawn curves and config."""
    config_path = run_dir / RunFolder.CONFIG
    epochs, drawn_curves = drawn
    return {
        "name": name,
        "variant": variant,
        "seed": config.get("seed"),
        "status": row["status"],
        "epochs": epochs,
        "curves": drawn_curves,
        "config": config_text(config_path),
        "command": f"nntrain train {shlex.quote(str(config_path))}",
    }


def config_text(path: Path) -> str:
    try:
        return regular(path).read_text(errors="replace")
    except (OSError, ConfigError):
        return "(config.yaml cannot be read)"


def curves(history: list[dict]) -> tuple[list[int], dict]:
    """The drawn epochs and, per metrics.csv column drawn, its values there: at most about
    MAX_POINTS epochs (``thin`` of each column, merged); blank and non-finite cells as null
    (the page marks a curve's last finite point)."""
    if not history:
        return [], {}
    epochs = np.array([r["epoch"] for r in history], dtype=float)
    columns = {}
    for column in history[0]:
        if column in ("epoch", "time_s"):
            continue
        values = np.array([np.nan if r.get(column) is None else r[column] for r in history],
                          dtype=float)
        if not all(r.get(column) is None for r in history):
            columns[column] = values
    keep = np.unique(np.concatenate([thin(v, MAX_POINTS) for v in columns.values()]
                                    or [np.arange(len(history))]))
    return ([int(e) for e in epochs[keep]],
            {column: [drawn(v) for v in values[keep]] for column, values in columns.items()})


def thin(values: np.ndarray, limit: int) -> np.ndarray:
    """Indices of at most about ``limit`` points spread over ``values``, always keeping the
    first, the last, the minimum, and the last finite point before the first non-finite one."""
    n = len(values)
    if n <= limit:
        return np.arange(n)
    keep = set(np.round(np.linspace(0, n - 1, limit - 4)).astype(int).tolist())
    finite = np.isfinite(values)
    if finite.any():
        keep.add(int(np.nanargmin(np.where(finite, values, np.nan))))
    if not finite.all():
        first_bad = int(np.argmin(finite))
        keep.update({first_bad, max(first_bad - 1, 0)})
    return np.array(sorted(keep))


def drawn(value: float) -> float | int | None:
    """A value to draw: a whole number as it is (evaluations), others to 6 significant digits
    (the table keeps the exact ones); None if not finite."""
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2 ** 53 else float(f"{value:.6g}")


def clean_row(row: dict) -> dict:
    """A table row as JSON: non-finite numbers as their names ('nan', 'inf')."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.items()}


def curve_columns(runs: list[dict]) -> list[str]:
    """The charts: loss, the task's metric, and their validation versions, as present."""
    present = {c for r in runs for c in r["curves"]}
    order = [f for f in FIGURES if not f.startswith("val_")]
    order += [f"val_{f}" for f in order]
    return [c for c in order if c in present]


# -- what the network computed ----------------------------------------------------------------


def pictures_section(run_dirs: list[Path]) -> dict | None:
    """Boundary (2-D classification) or fitted-curve (1-D regression) frames, one panel per
    variant (its first seed's run), at up to FRAMES epochs shared by one slider; None (with
    the reason) when the runs cannot have them."""
    from . import pictures

    kinds = {d: picture_kind(d) for d in run_dirs}
    kind = next((k for k in kinds.values() if k), None)
    if kind is None:
        return None
    drawable = [d for d in run_dirs if kinds[d] == kind]  # the others are in the table only
    chosen, notes = drawable_views(pictures, kind, drawable)
    if not chosen:
        return {"kind": kind, "note": "; ".join(notes)}
    if len(chosen) > MAX_PANELS:
        notes.append(f"the first {MAX_PANELS} of {len(chosen)} variants are drawn")
        chosen = chosen[:MAX_PANELS]
    note = "; ".join(notes) or None
    epochs = sorted({s.epoch for v in chosen for s in v.snapshots})
    epochs = pictures.spread(epochs, FRAMES)
    task = chosen[0].model.task
    scale = frame_scale(len(chosen[0].model.prep.classes or []) or 2)
    panels = [picture_panel(kind, v, epochs, scale) for v in chosen]
    return {"kind": kind, "note": note, "epochs": epochs, "panels": panels,
            "scale": scale,
            "features": list(chosen[0].model.feature_names),
            "classes": [str(c) for c in (chosen[0].model.prep.classes or [])],
            "binary": task.max_classes == 2}


def drawable_views(pictures, kind: str, run_dirs: list[Path]) -> tuple[list, list[str]]:
    """pictures.views of the runs, leaving out each run it refuses (no parameters saved yet,
    snapshots of another network) with a note naming it, so one run does not cost the others
    their panels."""
    notes, run_dirs = [], list(run_dirs)
    while run_dirs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the runs table already says what is missing
                return pictures.views(run_dirs, kind, None, 1), notes
        except ConfigError as err:
            refused = [d for d in run_dirs if str(d) == err.key]
            if not refused:
                return [], notes + [str(err)]
            notes.append(str(err))
            run_dirs.remove(refused[0])
    return [], notes


def picture_kind(run_dir: Path) -> str | None:
    """'boundary' for a 2-feature classifier, 'fit' for a 1-feature regression, else None
    (read from data.npz's preprocessor without building the network)."""
    from .model import load_run

    try:
        model = load_run(run_dir, require_parameters=False)
    except ConfigError:
        return None
    n_in = len(model.feature_names)
    if n_in == 2 and model.task.has_classes:
        return "boundary"
    if n_in == 1 and not model.task.has_classes:
        return "fit"
    return None


def picture_panel(kind: str, v, epochs: list[int], scale: int) -> dict:
    """One variant's frames: per slider epoch, the nearest snapshot's output over the grid."""
    from . import pictures

    with warnings.catch_warnings():  # runs of different lengths: the slider goes past some
        warnings.simplefilter("ignore")
        snaps = pictures.nearest(v.snapshots, epochs)
    by_epoch = {e: min(snaps, key=lambda s: (abs(s.epoch - e), s.epoch)) for e in epochs}
    points = {part: {"x": X[:, 0].round(6).tolist(),
                     "y": (X[:, 1] if kind == "boundary" else y).round(6).tolist(),
                     "c": y.astype(int).tolist() if kind == "boundary" else None}
              for part, (X, y) in v.points.items()}
    low, high = pictures.bounds(v)
    if kind == "boundary":
        xs, ys = (np.linspace(lo, hi, GRID) for lo, hi in zip(low, high))
        grid = np.column_stack([g.ravel() for g in np.meshgrid(xs, ys)])
        frames = [encode_frame(region_values(v, by_epoch[e], grid), scale) for e in epochs]
        axes = {"x": xs.round(6).tolist(), "y": ys.round(6).tolist()}
    else:
        xs = np.linspace(low[0], high[0], FIT_POINTS)
        frames = [[[drawn(float(y)) for y in pictures.outputs_at(v, by_epoch[e], xs[:, None])[:, 0]]]
                  for e in epochs]
        axes = {"x": xs.round(6).tolist()}
    return {"label": v.label, "snapshot_epochs": [by_epoch[e].epoch for e in epochs],
            "points": points, **axes, "frames": frames}


def region_values(v, snap, grid: np.ndarray) -> np.ndarray:
    """Per grid point, binary: P(class 1); more classes: the likeliest class k plus its
    confidence c in [0, 1) (0 at a uniform guess, near 1 sure): z = k + c, so that one heat map
    with a colour band per class draws both. NaN where the network's output is not finite."""
    from . import pictures

    task = v.model.task
    proba = task.proba(pictures.outputs_at(v, snap, grid))
    if task.max_classes == 2:
        return proba[:, 1]
    k = proba.shape[1]
    confidence = np.clip((proba.max(axis=1) - 1 / k) / (1 - 1 / k), 0, 0.999)
    z = proba.argmax(axis=1) + confidence
    return np.where(np.isfinite(proba).all(axis=1), z, np.nan)


def frame_scale(classes: int) -> int:
    """Bytes per unit of z in an encoded frame: 250 for P(class 1); for k classes 250 // k,
    each class's band a whole number of bytes wide."""
    return 250 if classes <= 2 else max(250 // classes, 1)


def encode_frame(z: np.ndarray, scale: int) -> str:
    """A frame as base64 bytes: floor(z * scale) (round for P, so that 0.5 stays the middle),
    255 where z is NaN. 50 x 50 points are 3336 characters, against about 14000 as JSON."""
    finite = np.isfinite(z)
    values = np.where(finite, z, 0) * scale
    values = np.round(values) if scale == 250 else np.floor(values)
    data = np.where(finite, np.clip(values, 0, 254), 255).astype(np.uint8)
    return base64.b64encode(data.tobytes()).decode("ascii")


def surfaces(run_dirs: list[Path], along: str) -> dict:
    """Each variant's loss surface around its trained parameters (its first seed's run), as
    ``plot --landscape --along ALONG`` computes it at SURFACE_RESOLUTION points a side, with
    the path drawn on the path's plane; a diverged variant is left out with a note."""
    from . import landscape
    from .pictures import LateBar

    opts = replace(landscape.options(True, along=along), resolution=SURFACE_RESOLUTION)
    notes, plans = [], []
    try:
        picked = landscape.picked_runs(run_dirs, None)[:MAX_PANELS]
    except ConfigError as err:
        return {"along": along, "note": str(err), "panels": []}
    for label, model in picked:
        try:
            if landscape.diverged(model):
                raise ConfigError("diverged: there is no surface around its parameters",
                                  str(model.path))
            plans.append(landscape.plane_plan(label, model, opts))
        except ConfigError as err:  # this variant has no surface; the others are drawn
            notes.append(str(err))
    try:
        landscape.check_cost(plans, False)
    except ConfigError as err:
        return {"along": along, "note": str(err), "panels": []}
    panels = []
    for plan in plans:
        E = landscape.compute(plan, LateBar(False, plan.points, time.perf_counter()), 0)
        panels.append({"label": plan.label, "axes": list(plan.axes), "note": plan.note,
                       "a": plan.alphas.tolist(), "b": plan.betas.tolist(),
                       "E": [[drawn(float(e)) for e in row] for row in E],
                       "tracks": [{"label": t.label, "epochs": list(t.epochs),
                                   "coords": t.coords.round(8).tolist()} for t in plan.tracks]})
    return {"along": along, "note": "; ".join(notes) or None, "panels": panels}


def layers_section(run_dir: Path) -> dict | None:
    """layers.csv as heat maps: per column, a layer x epoch grid (epochs thinned)."""
    import pandas as pd

    try:
        frame = layers_frame(run_dir)
    except (ConfigError, OSError, ValueError):
        return None
    if frame.empty or not {"epoch", "layer"} <= set(frame.columns):
        return None
    numbers = ["epoch", "layer", *(c for c in LAYER_COLUMNS if c in frame)]
    frame[numbers] = frame[numbers].apply(pd.to_numeric, errors="coerce")  # a damaged cell: NaN
    frame = frame[np.isfinite(frame["epoch"]) & np.isfinite(frame["layer"])]
    if frame.empty:
        return None
    epochs = sorted(frame["epoch"].unique().tolist())
    if len(epochs) > MAX_LAYER_EPOCHS:
        picks = np.round(np.linspace(0, len(epochs) - 1, MAX_LAYER_EPOCHS)).astype(int)
        epochs = [epochs[i] for i in sorted(set(picks.tolist()))]
    layers = sorted(frame["layer"].unique().tolist())
    kept = frame[frame["epoch"].isin(epochs)]
    maps = {}
    for column in LAYER_COLUMNS:
        if column not in kept or kept[column].isna().all():
            continue
        grid = kept.pivot_table(index="layer", columns="epoch", values=column, dropna=False)
        grid = grid.reindex(index=layers, columns=epochs)
        maps[column] = [[None if not np.isfinite(x) else drawn(float(x)) for x in row]
                        for row in grid.to_numpy(dtype=float)]
    return {"epochs": [int(e) for e in epochs], "layers": [int(k) for k in layers],
            "maps": maps} if maps else None


# -- the page -------------------------------------------------------------------------------------


def render(data: dict, live: bool = False, every: float = WATCH_EVERY) -> str:
    """The HTML page: Plotly's script, view.js and view.css inlined, the data as JSON."""
    from plotly.offline import get_plotlyjs

    here = resources.files("nntrain")
    script = here.joinpath("view.js").read_text()
    style = here.joinpath("view.css").read_text()
    refresh = f'<meta http-equiv="refresh" content="{max(1, round(every))}">' if live else ""
    title = escape_html(f"nntrain view: {data['title']}")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"{refresh}<title>{title}</title>"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:\">"
        f"<style>{style}</style></head><body>"
        f"<script id=\"nntrain-data\" type=\"application/json\">{json_for_html(data)}</script>"
        f"<script>{get_plotlyjs()}</script><script>{script}</script></body></html>\n")


def json_for_html(data) -> str:
    """JSON that cannot end its <script> block or open a comment: <, > and & as \\u escapes
    (still the same JSON), and non-finite numbers as null (JSON.parse refuses NaN)."""
    text = json.dumps(strict(data), separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def escape_html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
