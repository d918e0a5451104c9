"""The init check (`nntrain inspect`): one forward and backward pass at initialization, per
layer and per initializer, beside what theory predicts for the weights.

CSV columns: initializer, layer, fan_in, fan_out, activation, weight_std,
target_weight_std (the initializer's rule), act_mean, act_std, grad_std (std of dE/dW).
"""

from __future__ import annotations

from .config import Config
from .diagnostics import layer_pass
from .experiment import build_network, prepare
from .initializers import INITIALIZERS
from .losses import LOSSES
from .registry import ConfigError, label

INSPECT_COLUMNS = ["initializer", "layer", "fan_in", "fan_out", "activation", "weight_std",
                   "target_weight_std", "act_mean", "act_std", "grad_std"]
# left out first when a terminal is too narrow for the whole table (the CSV has every column)
INSPECT_SECONDARY = ("act_mean", "fan_in", "fan_out", "target_weight_std")


def check_specs(specs: list | None) -> list | None:
    """Initializer specs to compare, each checked by name before any data is read."""
    for spec in specs or []:
        INITIALIZERS.prepare(spec, "--initializers", activation=None)
    return specs


def init_passes(cfg: Config, initializers=None):
    """Per initializer (``initializers``: specs to compare; default the config's own): its
    label, its network at initialization, and one forward and backward pass over the training
    data, per layer (see diagnostics.layer_pass). float64 throughout."""
    cfg, data = prepare(cfg)
    loss = LOSSES.build(cfg.loss, "loss")
    for spec in initializers or [cfg.model.initializer]:
        net = build_network(cfg, initializer=spec, dtype="float64")
        yield label(spec), net, layer_pass(net, data.X_train, data.Y_train, loss)


def inspect_init(cfg: Config, initializers=None) -> list[dict]:
    """One row per initializer and layer, beside what theory predicts for the weights."""
    rows = []
    for name, net, passes in init_passes(cfg, initializers):
        for layer, (init, (act, a, W, dW)) in enumerate(zip(net.initializers, passes), start=1):
            fan_in, fan_out = W.shape
            rows.append({
                "initializer": name, "layer": layer, "fan_in": fan_in,
                "fan_out": fan_out, "activation": act.registry_name,
                "weight_std": float(W.std()), "target_weight_std": init.target_std(fan_in, fan_out),
                "act_mean": float(a.mean()), "act_std": float(a.std()), "grad_std": float(dW.std()),
            })
    return rows


def init_activations(cfg: Config, initializers=None) -> list[tuple[str, list[tuple]]]:
    """Per initializer, its label and each hidden layer's (number, activation, outputs a over
    the training data) at initialization: what `inspect --histograms` draws. A network without
    a hidden layer is refused before any data is read."""
    if len(cfg.model.layers) < 3:  # [input, output]: the only activation is the output's
        raise ConfigError(f"{list(cfg.model.layers)} has no hidden layer, so inspect --histograms "
                          "has no hidden activations to draw", "model.layers")
    found = []
    for name, net, passes in init_passes(cfg, initializers):
        hidden = list(passes)[:-1]
        found.append((name, [(i, act.registry_name, a.copy())
                             for i, (act, a, W, dW) in enumerate(hidden, start=1)]))
    return found
