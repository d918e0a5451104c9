"""Sweeps: one config over a grid of settings x seeds, run in parallel, summed up side by side.

The driver validates every grid point first, then hands the runs to an
executor (a local process pool, nntrain.pool, or a Dask cluster). A local
worker trains each run in the compare folder, in a hidden folder of its own
(.<dir>.<attempt>.partial); a Dask worker trains in a private temporary folder and
sends the run's files back. Each run folder appears whole, renamed by the
driver once the run's result has come.

compare folder:
  sweep.yaml     the base config, the axes, the seeds and the grid points
  <NNN-...>/     one run folder per grid point (the files of `nntrain train`)
  results.csv    one row per run
  summary.csv    per variant: runs, diverged, mean and std of each figure
  loss.png       per variant the mean loss curve with a min-max band
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .config import (apply_override, check_grid_size, default_name, failure, load_config,
                     parse_override, read_yaml, resolve_data_path, untaken_optimizer_keys)
from .experiment import prepare, resolve
from .plots import check_metric, load_matplotlib
from .registry import ConfigError, finite, label
from .results import figure_columns, run_row
from .runs import (LOCK, Lock, RunFolder, check_out_dir, claim_out_dir, flatten, new_run_dir,
                   read_summary, remove, slug_part, write_atomic, write_yaml, writer_alive)
from .pool import WorkerStopped, lost_results, one_blas_thread, run_local, worker_folder
from .signals import StopRequests
from .loop import Interrupted, train
from .stack import member_limit, stack_plan, train_stacked

FINISHED = ("completed", "early_stopped", "diverged")  # a result; resume keeps these


@dataclass
class Sweep:
    base: dict  # the raw config with the single-valued overrides applied
    axes: dict  # dotted key -> list of values
    seeds: list
    target_loss: float | None = None

    def __post_init__(self) -> None:
        """A grid of more than MAX_GRID runs is refused before its points are built, naming the
        axes: 'optimizer.lr x model.activation x --seeds: 100 x 100 x 5 = 50000 grid points...'."""
        sizes = [len(values) for values in self.axes.values()] + [len(self.seeds)]
        check_grid_size(math.prod(sizes), " x ".join([*self.axes, "--seeds"]),
                        f"{' x '.join(map(str, sizes))} =")

    def points(self) -> list[dict]:
        """Every axis x every seed, in a stable order; each point names its folder."""
        keys = list(self.axes)
        points = []
        for values in itertools.product(*(self.axes[k] for k in keys)):
            for seed in self.seeds:
                index = len(points)
                setting = dict(zip(keys, values))
                points.append({"index": index, "setting": setting, "seed": seed,
                               "dir": f"{index:03d}-{slug(setting)}-seed{seed}"})
        return points

    def config_of(self, point: dict, dropped: dict | None = None) -> dict:
        """The grid point's raw config. Along an optimizer axis (--optimizers), the keys the
        point's optimizer does not take (random_local's lr, gd's step) are dropped, and
        recorded in ``dropped`` (optimizer name -> keys) for the note compare prints."""
        raw = copy.deepcopy(self.base)
        for key, value in point["setting"].items():
            apply_override(raw, f"{key}=_", value=value)
        raw["seed"] = point["seed"]
        if "optimizer.name" in self.axes:
            for key in untaken_optimizer_keys(raw.get("optimizer")):
                del raw["optimizer"][key]
                if dropped is not None:
                    keys = dropped.setdefault(raw["optimizer"]["name"], [])
                    keys += [key] if key not in keys else []
        return raw

    def to_dict(self) -> dict:
        return {"axes": self.axes, "seeds": self.seeds, "target_loss": self.target_loss,
                "config": self.base}


def slug(setting: dict) -> str:
    """A folder-name-safe summary of a grid point's settings, from the same labels as tables and
    legends: {'model.initializer': {'name': 'normal', 'std': 0.01}} -> 'initializer=normal_std=0.01'."""
    return "-".join(slug_part(key, value) for key, value in setting.items())[:80] or "base"


def legacy_slug(setting: dict) -> str:
    """The folder names of nntrain 0.2's compare ('initializer=_name_normal_,_std_0.01_'), so that
    --resume still finishes a compare folder made by it."""
    parts = []
    for key, value in setting.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key.split('.')[-1]}={text}")
    return re.sub(r"[^A-Za-z0-9=._,-]+", "_", "_".join(parts))[:80] or "base"


def adopt_legacy_dirs(folder: Path, points: list[dict]) -> None:
    """Resuming a compare folder made before the folder names changed: keep its run folders."""
    for point in points:
        old = f"{point['index']:03d}-{legacy_slug(point['setting'])}-seed{point['seed']}"
        if not (folder / point["dir"]).exists() and (folder / old).is_dir():
            point["dir"] = old


def parse_seeds(text: str | None, default: int) -> list[int]:
    """'5' -> [0..4] (offset by the config's seed); '0,3,7' -> those seeds."""
    if text is None:
        return [default]
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise ConfigError(f"expected a count (5) or a list of seeds (0,1,2), got {text!r}",
                          "--seeds") from None
    if any(p < 0 for p in parts) or (len(parts) == 1 and parts[0] < 1):
        raise ConfigError(f"seeds must be >= 0 and a count >= 1, got {text!r}", "--seeds")
    check_grid_size(parts[0] if len(parts) == 1 else len(parts), "--seeds", "asks for")
    return list(range(default, default + parts[0])) if len(parts) == 1 else parts


def make_sweep(config: str | Path, overrides: list[str], initializers: list | None,
               seeds: str | None, target_loss: float | None,
               optimizers: list | None = None) -> Sweep:
    """The grid from a config and its overrides: comma lists are axes, the rest set the base."""
    finite(target_loss, "--target-loss")  # NaN or -inf is never reached, inf at once
    raw = read_yaml(config)
    if raw.get("name") is None:
        raw["name"] = default_name(config)
    axes = {}
    resolve_data_path(raw, Path(config).resolve().parent)  # relative to the config file
    for text in overrides:
        prefix, key, values, sweep = parse_override(text)
        if key == "seed":
            raise ConfigError("use --seeds to run several seeds", "seed")
        if sweep:
            apply_override(raw, text, value=values[0])  # adds the key (+) or checks it exists
            axes[key] = values
        else:
            apply_override(raw, text)
    resolve_data_path(raw, Path.cwd())  # an override's path: relative to the current folder
    if initializers:
        axes["model.initializer"] = initializers
    if optimizers:
        if not isinstance(raw.get("optimizer"), dict):  # optimizer: adam, or none given
            raw["optimizer"] = {"name": raw.get("optimizer") or "gd"}
        raw["optimizer"]["name"] = optimizers[0]
        axes["optimizer.name"] = optimizers
    base_seed = raw.get("seed", 0)
    if not isinstance(base_seed, int) or isinstance(base_seed, bool):
        raise ConfigError(f"must be an integer, got {base_seed!r}", "seed")
    plugins = raw.get("plugins") or []
    base = Path(config).resolve().parent
    raw["plugins"] = [str(base / p) for p in plugins] if isinstance(plugins, list) else plugins
    return Sweep(raw, axes, parse_seeds(seeds, base_seed), target_loss)


def validate(sweep: Sweep, extra_plugins: list[str], ship_data: bool = False) -> list[dict]:
    """Every grid point's config, checked and resolved against its data before anything runs.

    ``ship_data``: points whose data comes from a file carry the loaded arrays, so that
    workers elsewhere (Dask) need neither the file nor a shared filesystem.
    """
    checked = []
    cache: dict[str, object] = {}
    dropped: dict[str, list[str]] = {}  # optimizer -> the keys its points dropped
    for point in sweep.points():
        raw = sweep.config_of(point, dropped)
        cfg = load_config(raw=raw, plugins=extra_plugins)
        data_key = json.dumps(cfg.to_dict()["data"], sort_keys=True)
        if data_key not in cache:
            cache[data_key] = prepare(cfg)[1]
        resolved = resolve(cfg, cache[data_key])  # layers against the data, loss against task
        key, alone = stack_plan(resolved, len(cache[data_key].X_train))
        checked.append({**point, "config": cfg.to_dict(), "stack": key, "alone": alone,
                        # config.yaml as its run writes it (resolved, one BLAS thread)
                        "resolved": json.loads(json.dumps(one_thread(resolved).to_dict()))})
        if ship_data and "path" in cfg.data.params:
            checked[-1]["data"] = cache[data_key]
    for name, keys in dropped.items():
        warnings.warn(f"{name} takes no {' or '.join(keys)}: dropped from its runs", stacklevel=2)
    return checked


# -- running ------------------------------------------------------------------------------


def execute(point: dict) -> dict:
    """Train one grid point; return its figures, and its files unless it was trained in place.

    Runs in a worker. A point with an ``out`` (a local pool's) is trained there, in the
    compare folder's hidden ``.DIR.ATTEMPT.partial`` (``partial_dir``), which the driver
    renames once the result has come. One without (a Dask worker's, which may share no
    filesystem with the driver) is trained in a private temporary folder whose files go back
    in the result.
    """
    result = {"index": point["index"], "dir": point["dir"], "files": {}, "error": None}
    with run_folders([point]) as (out,):
        try:
            run = resume_kept(point, out, result) if point.get("resume") else None
            if run is None:
                cfg = one_thread(load_config(raw=point["config"]))
                run = train(cfg, out=out, data=point.get("data"))
            result["summary"] = run.summary
        except Interrupted as stopped:  # the driver stops the sweep: kept, resumable
            result["summary"] = stopped.run.summary
        except WorkerStopped:  # the driver stops the pool at once: this worker ends
            raise
        except (Exception, SystemExit) as err:  # recorded as a failed run; the sweep goes on
            result["error"] = failure(err)  # SystemExit here comes from a plugin's code
            result["summary"] = {"status": "failed", "error": result["error"]}
        result.update(run_output(point, out))
    return result


@contextlib.contextmanager
def run_folders(task: list[dict]):
    """Each point's run folder: its ``out`` (a local pool's points, trained in place), else
    one in a private temporary folder, removed with the files it held. Runs in place that
    are stopped (WorkerStopped) go: the driver records them itself, and a driver that was
    killed cannot remove them."""
    if not all("out" in point for point in task):
        with tempfile.TemporaryDirectory(prefix="nntrain-", dir=worker_folder()) as tmp:
            yield [Path(tmp) / f"run{s}" for s in range(len(task))]
        return
    outs = [Path(point["out"]) for point in task]
    try:
        yield outs
    except WorkerStopped:
        for out in outs:
            remove(out)
        raise


def resume_kept(point: dict, out: Path, result: dict):
    """The Run of a run a stopped sweep kept (``point["resume"]``: its folder), resumed in
    ``out``, a copy: its folder stays as it was until the resumed run replaces it whole. None
    if it cannot go on from its checkpoint (a damaged file, a planted link, a plugin file
    changed): it is trained from the start then, and the result's note says why."""
    from .resume import resume

    try:
        # a link is copied, and refused; not the lock the driver holds on the folder
        shutil.copytree(point["resume"], out, symlinks=True, ignore=shutil.ignore_patterns(LOCK))
        # to the grid's epochs (not a target a hand-made resume of it set)
        return resume(out, [f"train.epochs={point['config']['train']['epochs']}"],
                      plugins=point["config"].get("plugins") or ())
    except (ConfigError, OSError) as err:
        remove(out)
        result["note"] = (f"{point['dir']}: cannot go on from its checkpoint "
                          f"({failure(err)}); trained from the start")
        return None


def run_output(point: dict, out: Path) -> dict:
    """Where the driver finds a finished run: the folder it was trained in (``out``, in
    place), or its files, sent back."""
    if "out" in point:
        return {"files": None, "out": str(out)}
    return {"files": {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
            if out.is_dir() else {}}


def execute_task(task: list[dict]) -> list[dict]:
    """Train a task's grid points: one alone (``execute``), or several as stacked members
    (``stack.train_stacked``) in their run folders (``run_folders``); returns each point's
    result. A group that cannot be set up together runs its points one by one."""
    if len(task) == 1:
        return [execute(task[0])]
    with run_folders(task) as outs:
        error = None
        try:
            cfgs = [one_thread(load_config(raw=point["config"])) for point in task]
            ended = train_stacked(cfgs, outs, [point.get("data") for point in task])
        except WorkerStopped:
            raise
        except (Exception, SystemExit) as err:
            if not any(out.exists() for out in outs):  # it could not be set up: each alone
                results = [execute(point) for point in task]
                results[0]["note"] = (f"{len(task)} runs trained one by one, not stacked: "
                                      f"{failure(err)}")  # said once, by the driver
                return results
            error, ended = failure(err), [None] * len(task)  # the members still running failed
        return [member_result(point, out, run, error) for point, out, run in zip(task, outs, ended)]


def member_result(point: dict, out: Path, run, error: str | None) -> dict:
    """A stacked member's result, as ``execute`` makes a lone run's: ``run`` is its Run, its
    Interrupted, the exception it alone failed with, or None when the stack's shared
    arithmetic failed with ``error``."""
    if isinstance(run, Interrupted):
        summary = run.run.summary
    elif isinstance(run, BaseException) or run is None:
        error = failure(run) if run is not None else error
        summary = {"status": "failed", "error": error}
    else:
        summary, error = run.summary, None
    return {"index": point["index"], "dir": point["dir"], "error": error, "summary": summary,
            **run_output(point, out)}


def one_thread(cfg):
    """A worker's run uses one BLAS thread: the pool or cluster spreads runs over the cores."""
    if cfg.train.threads == "auto":
        return replace(cfg, train=replace(cfg.train, threads=1))
    return cfg


MIN_MEMBERS = 4  # a stack split between workers keeps at least this many members each


def stack_groups(points: list[dict]) -> tuple[list[list[dict]], list[dict]]:
    """The points of each stack group of two or more, and the points that go alone (their
    ``stack`` None, or no other point shares it)."""
    groups: dict[str, list[dict]] = {}
    for point in points:
        groups.setdefault(point.get("stack") or f"alone {point['index']}", []).append(point)
    stacks = [members for members in groups.values() if len(members) > 1]
    return stacks, [members[0] for members in groups.values() if len(members) == 1]


def make_tasks(points: list[dict], workers: int) -> list[list[dict]]:
    """The points as tasks: those of one stack group together (split into up to ``workers``
    stacks of at least MIN_MEMBERS, so that every core has one, and into more when a stack
    would have more than ``stack.member_limit()`` members), the others one by one."""
    stacks, alone = stack_groups(points)
    tasks = [[point] for point in alone]
    for members in stacks:
        parts = max(1, min(workers, len(members) // MIN_MEMBERS),
                    -(-len(members) // member_limit()))
        tasks += [members[k::parts] for k in range(parts)]
    return tasks


def stack_notes(points: list[dict], workers: int) -> list[str]:
    """compare --verbose's lines: how the runs were grouped and split between the workers,
    and why a run goes alone."""
    if not any("stack" in p for p in points):
        return ["--no-stack: one run per variant"]
    stacks, alone = stack_groups(points)
    stacked = sum(map(len, stacks))
    split = [len(task) for task in make_tasks(points, workers) if len(task) > 1]
    lines = [f"stacked: {stacked} of {len(points)} runs, in {len(stacks)} "
             f"group{'s' * (len(stacks) != 1)} of one computation's shape, trained as "
             f"{len(split)} stack{'s' * (len(split) != 1)} of "
             f"{' or '.join(map(str, sorted(set(split))))} members" if stacks else
             f"stacked: none of the {len(points)} runs; each goes alone"]
    return lines + [f"alone: {p['dir']}: {p.get('alone') or 'no other run has its shapes'}"
                    for p in alone]


def kept_point(folder: Path, point: dict) -> dict:
    """A point whose run a stopped sweep kept interrupted is to go on from its checkpoint
    (``resume``; alone, since its stack's members stopped at other epochs), if it has one and
    the run's config.yaml is the grid point's (a folder edited since is trained from the
    start, with a warning); otherwise it is trained from the start."""
    run_dir = folder / point["dir"]
    if not (run_dir / RunFolder.CHECKPOINT).is_file():
        return point
    try:
        differs = first_difference(read_yaml(run_dir / RunFolder.CONFIG), point["resolved"])
    except (ConfigError, OSError) as err:
        differs = failure(err)
    if differs:
        warnings.warn(f"{point['dir']}: cannot go on from its checkpoint (its config.yaml is "
                      f"not this grid point's: {differs}); trained from the start", stacklevel=2)
        return point
    return {**{k: v for k, v in point.items() if k not in ("stack", "alone")},
            "resume": str(run_dir)}


def partial_dir(folder: Path, point: dict, attempt: str) -> Path:
    """Where a local worker trains a point in place: hidden (report, plot and view skip it),
    named for this attempt (a killed sweep's worker, which may write its own for a few
    seconds more, never shares it with a resumed one's), renamed once its result has come."""
    return folder / f".{point['dir']}.{attempt}.partial"


def clear_leftovers(folder: Path) -> None:
    """The hidden folders left in ``folder`` by a sweep's stopped or lost runs: records half
    written (.DIR.store) and run folders trained in place whose worker has ended. One whose
    worker still runs (a killed sweep's, for a few seconds) is left to it."""
    for entry in folder.iterdir():
        if entry.name.startswith(".") and entry.name.endswith((".partial", ".store")):
            if entry.is_symlink() or not entry.is_dir() or not writer_alive(Lock(entry).holder()):
                remove(entry)


def store(folder: Path, result: dict) -> str | None:
    """Make a finished run <folder>/<dir>, appearing whole (renamed at the end): the folder its
    local worker trained in place (its ``out``), or one written here from the files a Dask
    worker sent (or with the summary alone: a lost or stopped run's record). Returns the
    status its summary.json says (failed, if its folder was gone)."""
    final = folder / result["dir"]
    in_place = result.get("out") is not None
    staging = Path(result["out"]) if in_place else folder / f".{result['dir']}.store"
    gone = in_place and (staging.is_symlink() or not staging.is_dir())
    if gone and result["summary"].get("status") != "failed":  # trained, then removed
        result = {**result, "summary": {"status": "failed", "error": (
            f"its run folder {staging.name} was gone when its result came")}}
    if gone or not in_place:  # a run that failed before making its folder has none
        remove(staging)
        staging.mkdir()
    try:
        for name, data in (result["files"] or {}).items():
            (staging / name).write_bytes(data)
        summary = dict(result["summary"])
        summary["path"] = str(final)
        RunFolder(staging).write_summary(summary)
        remove(final)  # a failed run's earlier attempt, on resume
        os.replace(staging, final)
    except BaseException:  # a full disk: no half-written folder is left
        remove(staging)
        raise
    return summary.get("status")


def reach_scheduler(address: str, timeout: float) -> None:
    """Connect to the scheduler and back within ``timeout`` seconds, handshake included: Dask's
    own timeout covers only the TCP connect, and a port that answers but is not a scheduler
    (a web server, say) would hang for ever."""
    import asyncio

    from dask.distributed import Client

    async def probe():
        client = Client(address, asynchronous=True, timeout=f"{timeout}s")
        try:
            await asyncio.wait_for(client, timeout)
        finally:  # also one abandoned half-way: else it closes when collected, in whatever
            # the process does then (a later sweep's cluster closing, with its logging quieted)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), timeout)

    # a client abandoned half-way warns about its unawaited coroutines when it is collected,
    # which may be at exit
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
    try:
        asyncio.run(probe())
    except (OSError, TimeoutError, asyncio.TimeoutError) as err:
        reason = str(err) or f"no Dask scheduler answered within {timeout:g} s"
        raise ConfigError(f"cannot reach the scheduler ({reason})", f"--address {address}") from None


@contextlib.contextmanager
def dask_client(workers: int, address: str | None, timeout: float = 10.0):
    """A client of the Dask cluster at ``address``, or of a local one started here (no dashboard).

    Connected before the compare folder is made: an unreachable scheduler leaves nothing behind.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("needs Dask: pip install 'nntrain[dask]'", "--executor dask") from None
    with contextlib.ExitStack() as stack:
        logs = logging.getLogger("distributed")
        stack.callback(logs.setLevel, logs.level)  # put back once the cluster has closed
        stack.enter_context(one_blas_thread())
        if address:
            reach_scheduler(address, timeout)
            try:
                client = stack.enter_context(Client(address, timeout=f"{timeout}s"))
            except OSError as err:
                raise ConfigError(f"cannot reach the scheduler ({err})", f"--address {address}") from None
        else:
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=workers > 1,
                dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        # closing races the workers' heartbeats (a sweep stopped by Ctrl-C), and Dask logs
        # each lost one with a traceback: not the command's, so quiet while the cluster closes
        stack.callback(logs.setLevel, logging.CRITICAL)
        yield client


def run_dask(tasks: list[list[dict]], client, on_result: Callable[[dict], None],
             on_stopped: Callable[[dict], None], stop: StopRequests) -> None:
    """Submit every task (a point, or a stack group) to the cluster; results come back as
    they finish, each stored whole (``stop.held()``). A task the cluster lost (its workers
    died: KilledWorker) fails its runs, as a dead pool worker's. On Ctrl-C or SIGTERM (also
    one Python dropped: ``stop.check()`` every half second) the runs in flight are recorded
    with ``on_stopped`` and the cluster's tasks cancelled, as run_local does."""
    from dask.distributed import wait

    futures = [client.submit(execute_task, task, pure=False) for task in tasks]
    unstored = dict(zip(futures, tasks))  # each task's points whose results are not stored yet
    try:
        while unstored:
            stop.check()
            try:
                done, _ = wait(list(unstored), timeout=0.5, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            for future in done:
                with stop.held():
                    for result in task_results(future, unstored[future]):
                        unstored[future] = [p for p in unstored[future]
                                            if p["index"] != result["index"]]
                        on_result(result)
                    del unstored[future]
    except BaseException:
        with stop.held():  # a second stop meanwhile is raised as it ends
            try:
                for points in unstored.values():
                    for point in points:
                        on_stopped(point)
            finally:
                client.cancel(futures)
        raise


def task_results(future, task: list[dict]) -> list[dict]:
    """A finished Dask task's results; a lost one's (its workers died, or the task could not
    run there) as its runs failed with why."""
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001  KilledWorker, a worker's unpicklable error
        return lost_results(task, f"its Dask task failed: {failure(err)}")


# -- results ------------------------------------------------------------------------------


def write_results(folder: Path, sweep: Sweep, points: list[dict], metric: str = "loss"):
    """results.csv, summary.csv and <metric>.png from the run folders present; returns the
    summary."""
    import pandas as pd

    keys = list(sweep.axes)
    rows = []
    for point in points:
        run_dir = folder / point["dir"]
        if read_summary(run_dir) is None:
            continue
        # the point's config: a run stopped before it started has no config.yaml
        row = run_row(run_dir, flatten(point["config"]), [*keys, "seed"], sweep.target_loss)
        row.update({k: label(row[k]) for k in keys})  # text, as in sweep.yaml: null, true
        row["run"] = point["dir"]  # the run's folder inside the compare folder
        rows.append(row)
    if not rows:  # stopped before any run finished
        return pd.DataFrame()
    figures = figure_columns(rows, sweep.target_loss is not None, losses_first=True)
    results = pd.DataFrame(rows, columns=[*keys, "seed", "status", "epochs", *figures,
                                          "wall_time_s", "run"])
    for column in ("seed", "epochs", "best_epoch", "epochs_to_target"):
        if column in results:  # whole numbers, blank where missing (not 97.0 and NaN)
            results[column] = results[column].astype("Int64")
    write_atomic(folder / "results.csv", results.to_csv(index=False))
    summary = variant_summary(results, keys, [f for f in figures if f != "best_epoch"])
    write_atomic(folder / "summary.csv", summary.to_csv(index=False))
    ran = [folder / p["dir"] for p in points if (folder / p["dir"] / RunFolder.METRICS).is_file()]
    if ran:
        from .plots import plot_runs

        plot_runs(ran, folder / f"{metric}.png", metric)
    return summary


def variant_summary(results, keys: list[str], figures: list[str]):
    """summary.csv: per variant (one value of every axis, all its seeds) the number of runs,
    how many diverged, failed and were interrupted, and each figure's mean and std (ddof=0)
    over the runs that finished: a failed or interrupted run's last epoch is not a result."""
    def std(values):  # the population std (ddof=0); pandas' "std" divides by n - 1
        return values.std(ddof=0)

    status = results["status"]
    counted = ("diverged", "failed", "interrupted")
    table = results[keys].assign(
        runs=1, **{c: (status == c).astype(int) for c in counted},
        **{f: results[f].where(status.isin(FINISHED)) for f in figures})
    groups = table.groupby(keys or (lambda _: "all"), sort=False)  # no axis: one variant
    summary = groups[["runs", *counted]].sum()
    if figures:  # none when no run got to its first epoch
        stats = groups[figures].agg(["mean", std])
        stats.columns = [f"{figure}_{stat}" for figure, stat in stats.columns]
        summary = summary.join(stats)
    return summary.reset_index(drop=not keys)


# -- the command ----------------------------------------------------------------------------


def compare(config: str | Path, overrides: list[str] = (), *, initializers: list | None = None,
            optimizers: list | None = None, seeds: str | None = None,
            workers: int | None = None, executor: str = "local",
            address: str | None = None, out: str | Path | None = None,
            resume: str | Path | None = None, target_loss: float | None = None,
            plugins: list[str] = (), progress=None, connect_timeout: float = 10.0,
            metric: str = "loss", break_lock: bool = False, stack: bool = True, notes=None):
    """Run the grid; returns (folder, summary DataFrame, number of runs that did not finish
    though no stop was asked: failed, or kept interrupted as their worker died going on).

    ``metric``: the metrics.csv or layers.csv column drawn in <metric>.png. ``break_lock``:
    take over the compare folder's lock (a sweep stopped on another machine). ``stack``:
    train the variants that share a computation's shapes as stacked members (nntrain/stack.py;
    False: one run per variant); ``notes(line)`` is told how the runs were grouped."""
    if executor not in ("local", "dask"):
        raise ConfigError(f"must be local or dask, got {executor!r}", "--executor")
    sweep = make_sweep(config, list(overrides), initializers, seeds, target_loss, optimizers)
    extra = [str(Path(p).resolve()) for p in plugins]
    points = validate(sweep, extra, ship_data=executor == "dask")
    check_metric(metric)
    workers = workers or os.cpu_count() or 1
    if not stack:
        points = [{k: v for k, v in point.items() if k not in ("stack", "alone")}
                  for point in points]
    for line in stack_notes(points, workers) if notes else ():
        notes(line)
    with contextlib.ExitStack() as context:
        client = (context.enter_context(dask_client(workers, address, connect_timeout))
                  if executor == "dask" else None)
        return _run(sweep, points, workers, client, out, resume, progress, metric, break_lock,
                    notes)


def _run(sweep: Sweep, points: list[dict], workers: int, client, out, resume, progress,
         metric: str = "loss", break_lock: bool = False, notes=None):
    """Make (or reopen) the compare folder, run what is not finished, write the results."""
    if resume is not None:
        folder = Path(resume)
        saved = folder / "sweep.yaml"
        if not saved.is_file():
            raise ConfigError("has no sweep.yaml: not a compare folder", f"--resume {folder}")
        differs = first_difference(read_yaml(saved), json.loads(json.dumps(sweep.to_dict())))
        if differs:
            raise ConfigError("this config and these settings are not the sweep saved there "
                              f"({differs}): give the command that made it", f"--resume {folder}")
        adopt_legacy_dirs(folder, points)
    elif out is not None:
        folder = claim_out_dir(check_out_dir(out))
    else:
        folder = new_run_dir("runs", sweep.base["name"], prefix="compare-")
    lock = Lock(folder)  # one writer: a second compare --resume of a live sweep is refused
    lock.take(force=break_lock)
    try:
        return run_sweep(folder, sweep, points, workers, client, progress, metric, notes,
                         break_lock)
    except KeyboardInterrupt as stop:  # the CLI says where the finished runs are
        stop.folder = folder
        stop.done = bool(points) and all(  # a stop as the results were written: nothing to go on
            (read_summary(folder / p["dir"]) or {}).get("status") in FINISHED for p in points)
        raise
    finally:
        lock.release()


def first_difference(saved, given, key: str = "") -> str | None:
    """Where a sweep differs from the one saved: '<key>: saved <a>, given <b>'; None if equal."""
    if isinstance(saved, dict) and isinstance(given, dict):
        for name in [*saved, *(k for k in given if k not in saved)]:
            found = first_difference(saved.get(name), given.get(name),
                                     f"{key}.{name}" if key else str(name))
            if found:
                return found
        return None
    if saved != given:
        return f"{key or 'the sweep'}: saved {json.dumps(saved)}, given {json.dumps(given)}"
    return None


def run_sweep(folder: Path, sweep: Sweep, points: list[dict], workers: int, client, progress,
              metric: str, notes=None, break_lock: bool = False):
    """Run the points of the sweep not finished in ``folder``; write the results. ``notes``
    (--verbose) is told how many go on from a checkpoint."""
    with holding(folder, points, break_lock):
        return run_points(folder, sweep, points, workers, client, progress, metric, notes)


@contextlib.contextmanager
def holding(folder: Path, points: list[dict], force: bool = False):
    """The locks of the run folders ``points`` have in ``folder`` already, held while the sweep
    runs: a run being resumed by hand is neither trained over nor resumed from (ConfigError,
    before anything starts), and one the sweep goes on from or trains again is not resumed by
    hand meanwhile. A folder the sweep replaces takes its lock with it."""
    locks = []
    try:
        for point in points:
            run_dir = folder / point["dir"]
            if run_dir.is_dir() and not run_dir.is_symlink():
                locks.append(Lock(run_dir))
                locks[-1].take(force)
        yield
    finally:
        for lock in locks:
            if lock.holder().get("pid") == os.getpid():  # its folder was not replaced
                lock.release()


def unfinished(folder: Path, points: list[dict], local: bool, notes=None) -> list[dict]:
    """The points whose runs are not finished in ``folder``; on the local pool, those a
    stopped sweep kept go on from their checkpoints (``kept_point``), which ``notes`` is
    told."""
    todo = []
    for point in points:
        status = (read_summary(folder / point["dir"]) or {}).get("status")
        if status not in FINISHED:
            todo.append(kept_point(folder, point) if local and status == "interrupted"
                        else point)
    kept = sum("resume" in p for p in todo)
    if kept and notes:
        notes(f"going on from their checkpoints: {kept} interrupted run"
              f"{'s' * (kept != 1)}, each alone")
    return todo


def run_points(folder: Path, sweep: Sweep, points: list[dict], workers: int, client, progress,
               metric: str, notes=None):
    """run_sweep's work, its run folders held."""
    write_yaml(folder / "sweep.yaml", sweep.to_dict())
    todo = unfinished(folder, points, client is None, notes)
    kept = {p["index"] for p in todo if p.get("resume")}  # runs going on from a checkpoint
    statuses: dict[int, str] = {}  # point index -> its run's status

    def on_result(result: dict) -> None:
        if result.get("note"):  # said in the worker: a stack not set up, a run not resumed
            warnings.warn(result["note"], stacklevel=2)
        if result["index"] in kept and result.get("out") is None:  # lost as it went on
            statuses[result["index"]] = "lost"
            return  # its kept run stays as it was, resumable still
        if stop.requested and result["summary"].get("status") == "interrupted":
            result["summary"]["signal"] = stop.requested  # the sweep's, as a lone run's says
        statuses[result["index"]] = store(folder, result)
        if progress:
            progress.advance(result)

    def on_stopped(point: dict) -> None:  # recorded as interrupted: --resume runs it again
        if point["index"] in kept:  # its kept run stays as it was, resumable still
            return
        which = {"signal": stop.requested} if stop.requested else {}  # as a lone run's says
        store(folder, {"dir": point["dir"], "files": {},
                       "summary": {"status": "interrupted", **which}})

    if progress:
        progress.start(len(points), len(points) - len(todo))
    # pandas and matplotlib imported while the workers train, once they have started (the
    # import holds the GIL the pool's start needs)
    prefetch = threading.Thread(target=import_for_results, daemon=True)
    clear_leftovers(folder)
    if client is None:  # the local pool's workers train each point in place
        attempt = secrets.token_hex(4)
        todo = [{**point, "out": str(partial_dir(folder, point, attempt))} for point in todo]
    with StopRequests(graceful=False) as stop:  # SIGTERM stops the sweep as Ctrl-C does
        try:
            tasks = make_tasks(todo, workers)
            if tasks and client is None:
                run_local(execute_task, tasks, min(workers, len(tasks)), on_result, on_stopped,
                          prefetch.start, stop)
            elif tasks:
                prefetch.start()
                run_dask(tasks, client, on_result, on_stopped, stop)
        finally:
            with stop.held():  # also after Ctrl-C, what finished: written whole, a stop waits
                if progress:
                    progress.stop()
                if prefetch.is_alive():
                    prefetch.join()
                # what a dead worker or a stop left unfinished (this sweep's workers have all
                # ended), and what a killed sweep's late workers finished since it began
                clear_leftovers(folder)
                summary = write_results(folder, sweep, points, metric)
    return folder, summary, sum(status in ("failed", "lost") for status in statuses.values())


def failures(folder: Path, most: int = 5) -> list[str]:
    """compare's stderr lines for the runs of a sweep not stopped that did not finish:
    'failed: RUN: ERROR' (the error its summary.json records) for the first ``most`` failed
    ones, how many more, and where to look; and how many are kept interrupted (a worker died
    as --resume went on from them)."""
    failed, kept = [], 0
    for run_dir in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        summary = read_summary(run_dir) or {}
        if summary.get("status") == "failed":
            failed.append(f"failed: {run_dir.name}: {summary.get('error') or 'no error recorded'}")
        kept += summary.get("status") == "interrupted"
    more = len(failed) - most
    return failed[:most] + ([f"... and {more} more"] if more > 0 else []) + (
        [f"{len(failed)} run(s) failed; see results.csv"] if failed else []) + (
        [f"{kept} run(s) did not finish and are kept interrupted; the same command with "
         f"--resume {folder} goes on from their checkpoints"] if kept > 0 else [])


def import_for_results() -> None:
    """pandas and matplotlib for results.csv and loss.png, imported (and matplotlib's
    first-figure caches filled) while the workers train, when the driver only waits
    (docs/performance.md: about 0.6 s of a small sweep's wall time). Whatever fails here
    fails again as the results are written, where it is reported."""
    with contextlib.suppress(Exception):
        load_matplotlib()
        import pandas  # noqa: F401


def compact_summary(summary) -> tuple[list[dict], list[str]]:
    """summary.csv for a terminal: 'mean ± std' in one column per figure."""
    import pandas as pd

    figures = [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean")]
    plain = [c for c in summary.columns if not c.endswith(("_mean", "_std"))]
    for column in ("failed", "interrupted"):  # shown on a terminal only when some were
        if column in plain and not summary[column].any():
            plain.remove(column)
    rows = []
    for record in summary.to_dict("records"):
        row = {c: record[c] for c in plain}
        for fig in figures:
            mean, std = record[f"{fig}_mean"], record[f"{fig}_std"]
            row[fig] = "-" if pd.isna(mean) else f"{mean:.4g} ± {0 if pd.isna(std) else std:.2g}"
        rows.append(row)
    return rows, plain + figures
