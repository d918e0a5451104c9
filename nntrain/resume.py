"""`nntrain resume RUN`: go on training a killed, interrupted or finished run in its own folder.

The run's checkpoint.npz holds the state after its last saved epoch (parameters,
optimizer state, batch-order generator, early-stopping state); the rows of
metrics.csv and layers.csv after that epoch are dropped, and training goes on
as if it had never stopped: the loss column equals an unbroken run's.
Only ``train.epochs`` and ``train.early_stopping`` may change.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from .callbacks import Start
from .config import apply_override, parse_override, read_yaml
from .experiment import build_network, prepare
from .model import fitting, run_config
from .preprocess import Preprocessor
from .registry import ConfigError
from .runs import RunFolder, effective_status, load_arrays
from .snapshots import read_snapshots
from .loop import Run, train

CHANGEABLE = ("train.epochs", "train.early_stopping")


def resume(run_dir: str | Path, overrides: list[str] = (), progress=None, plugins=(),
           plugin_changed_ok: bool = False, break_lock: bool = False) -> Run:
    """Train the run in ``run_dir`` on from its checkpoint, to its (new) ``train.epochs``.

    The folder is locked first (a run still training, or another resume, is refused), and
    everything is checked before anything in it changes. ``plugins``: the Python files of a
    run trained with plugin components (the files its config names are never imported; see
    model.run_config).
    """
    folder = RunFolder(run_dir)
    if not folder.file(folder.CONFIG).is_file():
        raise ConfigError("is not a run folder (no config.yaml)", str(folder.path))
    folder.lock(force=break_lock)
    try:
        refuse_live_run(folder, break_lock)
        cfg, start, data = check_resume(folder, list(overrides), plugins, plugin_changed_ok)
        return train(cfg, out=folder.path, progress=progress, data=data, start=start)
    finally:
        folder.release()


def refuse_live_run(folder: RunFolder, force: bool) -> None:
    """A run of an earlier version holds no lock: its summary says whether it still runs."""
    summary = folder.read_summary() or {}
    if effective_status(summary) == "running" and not force and summary.get("pid") != os.getpid():
        raise ConfigError(f"is being trained by process {summary.get('pid')} on "
                          f"{summary.get('host')}; wait for it to end, or --break-lock if it "
                          "is gone", str(folder.path))


def check_resume(folder: RunFolder, overrides: list[str], plugins, changed_ok: bool):
    """The resumed run's config, its checkpoint as a Start, and its data: all checked, the
    folder unchanged; a mistake is a ConfigError (exit 2)."""
    for name in folder.FILES:  # a symlink, pipe or device among them: refused, nothing changed
        folder.file(name)
    if not folder.file(folder.CHECKPOINT).is_file():
        raise ConfigError("has no checkpoint.npz to resume from (train.checkpoint_every: 0, or "
                          "a run of an earlier version)", str(folder.path))
    read_snapshots(folder.snapshots_path)  # a damaged header is refused before anything changes
    raw = read_yaml(folder.file(folder.CONFIG))
    for text in overrides:
        key = parse_override(text)[1]
        if not any(key == k or key.startswith(k + ".") for k in CHANGEABLE):
            raise ConfigError(f"cannot change when resuming; only {' and '.join(CHANGEABLE)} "
                              "can", key)
        apply_override(raw, text)
    cfg = run_config(folder, raw, plugins, changed_ok)
    network = build_network(cfg)  # the checkpoint's arrays are checked against it unloaded
    checkpoint = folder.read_checkpoint({name: p.shape for name, p in
                                         zip(network.parameter_names(), network.parameters())})
    state = checkpoint_state(checkpoint["state"], folder)
    if not any(parse_override(t)[1] == "train.epochs" for t in overrides):
        # the target a resume asked for, kept in the checkpoint (config.yaml is the run's own)
        target = state.get("epochs_target", cfg.train.epochs)
        cfg = replace(cfg, train=replace(cfg.train, epochs=target))
    _, data = prepare(cfg)
    if not folder.file(folder.DATA).is_file():
        raise ConfigError("has no data.npz: resume needs the data the run was trained on",
                          str(folder.path))
    Preprocessor.from_arrays(load_arrays(folder.file(folder.DATA)), data.task).check_data(
        data, str(folder.path))
    epoch = state["epoch"]
    if epoch > cfg.train.epochs:
        raise ConfigError(f"the run is at epoch {epoch}; give a larger number", "train.epochs")
    return cfg, start_of(folder, network, checkpoint, state), data


def checkpoint_state(state, folder: RunFolder) -> dict:
    """checkpoint.npz's state, each field checked: epoch and time, early stopping's counters,
    the batch-order generator's state (it must load into a generator)."""
    def bad(what: str) -> ConfigError:
        return ConfigError(f"checkpoint.npz is damaged: {what}", str(folder.path))

    if not isinstance(state, dict):
        raise bad("its state is not a mapping")
    epoch, stopper = state.get("epoch"), state.get("stopper")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise bad(f"epoch {epoch!r} is not a whole number >= 0")
    time_s = state.get("time_s")
    if isinstance(time_s, bool) or not isinstance(time_s, (int, float)) or not time_s >= 0:
        raise bad(f"time_s {time_s!r} is not a number >= 0")
    if (not isinstance(stopper, dict) or not {"best", "row", "wait"} <= set(stopper)
            or not isinstance(stopper["wait"], int) or stopper["wait"] < 0):
        raise bad("early stopping's state is not best, row and wait")
    try:
        np.random.default_rng().bit_generator.state = state.get("batch_rng")
    except (TypeError, ValueError, KeyError):
        raise bad("the batch-order generator's state does not load") from None
    return state


def start_of(folder: RunFolder, network, checkpoint: dict, state: dict) -> Start:
    """The checkpoint as a Start, its arrays checked against the config's network and
    optimizer, and the rows of metrics.csv up to its epoch (which must be there)."""
    epoch = state["epoch"]
    params = fitting(network, checkpoint["params"], str(folder.file(folder.CHECKPOINT)))
    best = checkpoint["best"]
    optimizer = checkpoint["optimizer"]
    for name, arrays in optimizer.items():
        if name != "t" and [a.shape for a in arrays] != [p.shape for p in params]:
            raise ConfigError(f"checkpoint.npz is damaged: the optimizer's {name} arrays do not "
                              "fit the network", str(folder.path))
    if not folder.file(folder.METRICS).is_file():
        raise ConfigError("has no metrics.csv: the run's history is gone, so it cannot go on "
                          "where it stopped", str(folder.path))
    history = [row for row in folder.read_metrics() if row["epoch"] <= epoch]
    if not history or int(history[-1]["epoch"]) != epoch:
        raise ConfigError(f"metrics.csv has no row for the checkpoint's epoch {epoch} (a "
                          "missing header or lost rows)", str(folder.path))
    for row in history:
        row["epoch"] = int(row["epoch"])
    return Start(epoch=epoch, params=params,
                 best_params=fitting(network, best, "checkpoint.npz") if best else None,
                 optimizer=optimizer, batch_rng=state["batch_rng"], stopper=state["stopper"],
                 history=history, time_s=float(state["time_s"]))
