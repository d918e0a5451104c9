"""`nntrain resume RUN`: go on training a killed, interrupted or finished run in its own folder.

The run's checkpoint.npz holds the state after its last saved epoch (parameters,
optimizer state, batch-order generator, early-stopping state); the rows of
metrics.csv and layers.csv after that epoch are dropped, and training goes on
as if it had never stopped: the loss column equals an unbroken run's.
Only ``train.epochs`` and ``train.early_stopping`` may change.
"""

from __future__ import annotations

from pathlib import Path


from .callbacks import Start
from .config import apply_override, parse_override, read_yaml
from .experiment import build_network, prepare
from .model import fitting, run_config
from .preprocess import Preprocessor
from .registry import ConfigError
from .runs import RunFolder, load_arrays
from .train import Run, train

CHANGEABLE = ("train.epochs", "train.early_stopping")


def resume(run_dir: str | Path, overrides: list[str] = (), progress=None, plugins=(),
           plugin_changed_ok: bool = False) -> Run:
    """Train the run in ``run_dir`` on from its checkpoint, to its (new) ``train.epochs``.
    ``plugins``: the Python files of a run trained with plugin components (the files its
    config names are never imported; see model.run_config)."""
    folder = RunFolder(run_dir)
    if not folder.file(folder.CONFIG).is_file():
        raise ConfigError("is not a run folder (no config.yaml)", str(folder.path))
    if not folder.file(folder.CHECKPOINT).is_file():
        raise ConfigError("has no checkpoint.npz to resume from (train.checkpoint_every: 0, or "
                          "a run of an earlier version)", str(folder.path))
    raw = read_yaml(folder.file(folder.CONFIG))
    for text in overrides:
        key = parse_override(text)[1]
        if not any(key == k or key.startswith(k + ".") for k in CHANGEABLE):
            raise ConfigError(f"cannot change when resuming; only {' and '.join(CHANGEABLE)} "
                              "can", key)
        apply_override(raw, text)
    cfg = run_config(folder, raw, plugins, plugin_changed_ok)
    checkpoint = folder.read_checkpoint()
    _, data = prepare(cfg)
    if not folder.file(folder.DATA).is_file():
        raise ConfigError("has no data.npz: resume needs the data the run was trained on",
                          str(folder.path))
    Preprocessor.from_arrays(load_arrays(folder.file(folder.DATA)), data.task).check_data(
        data, str(folder.path))
    state = checkpoint["state"]
    epoch = int(state["epoch"])
    if epoch > cfg.train.epochs:
        raise ConfigError(f"the run is at epoch {epoch}; give a larger number", "train.epochs")
    history = [row for row in folder.read_metrics() if row["epoch"] <= epoch]
    for row in history:
        row["epoch"] = int(row["epoch"])
    network = build_network(cfg)
    best = checkpoint["best"]
    start = Start(epoch=epoch, params=fitting(network, checkpoint["params"], "model"),
                  best_params=fitting(network, best, "model") if best else None,
                  optimizer=checkpoint["optimizer"], batch_rng=state["batch_rng"],
                  stopper=state["stopper"], history=history, time_s=float(state["time_s"]))
    return train(cfg, out=folder.path, progress=progress, data=data, start=start)
