"""What happens inside the network while it trains: per-layer statistics (layers.csv) and where a
diverged network first overflowed (the DivergenceSentinel callback names it).

layers.csv columns (one row per layer every ``train.diagnostics_every`` epochs):
  act_mean, act_std       of the layer's outputs over the training set
  dead_fraction           ReLU family: share of units whose output is 0 for every training sample
  saturated_fraction      sigmoid/tanh: share of outputs where f'(z) < 5% of its maximum
  weight_norm, grad_norm  Frobenius norms of W and of dE/dW (the epoch's last batch)
  update_ratio            ||last update of W|| / ||W||: about 1e-3 is healthy, 1e-1 is violent
"""

from __future__ import annotations

import numpy as np

from .activations import per_member, self_dot

LAYER_COLUMNS = ["epoch", "layer", "activation", "act_mean", "act_std", "dead_fraction",
                 "saturated_fraction", "weight_norm", "grad_norm", "update_ratio"]
SATURATION = 0.05  # derivative below 5% of its maximum counts as saturated


def dead_fraction(act, a: np.ndarray):
    """ReLU family: share of units whose output is 0 for every sample (they pass no gradient).

    Leaky ReLU, PReLU, ELU and SELU give non-zero outputs for z < 0, so their units
    do not die (their fraction is 0 unless z is exactly 0 everywhere).
    """
    if act.family != "relu":
        return None
    return per_member(np.all(a == 0, axis=-2).mean(axis=-1))


def saturated_fraction(act, a: np.ndarray):
    """sigmoid: a(1-a) < 0.05 * 1/4;  tanh: 1 - a^2 < 0.05 * 1."""
    if act.family == "sigmoid":
        slope = a * (1 - a)
    elif act.family == "tanh":
        slope = 1 - a * a
    else:
        return None
    return per_member((slope < SATURATION * act.max_slope).mean(axis=(-2, -1)))


def layer_pass(net, X: np.ndarray, Y=None, loss=None):
    """Per layer: (activation, its outputs a over X, W, dE/dW), after a forward pass over X.

    With Y and loss, a backward pass over (X, Y) first, so that dE/dW is X's; otherwise
    dE/dW is whatever the last backward pass left (the epoch's last batch).
    """
    if loss is not None:
        net.loss_and_backward(X, Y, loss)
    return zip(net.activations, net.layer_outputs(X), net.W, net.dW)


def layer_stats(net, X: np.ndarray, optimizer=None, Y=None, loss=None) -> list[dict]:
    """One dict per layer: statistics of a forward pass over X and of the last gradients/updates
    (see ``layer_pass``)."""
    updates = optimizer.updates if optimizer is not None and optimizer.updates else None
    return layer_figures(list(layer_pass(net, X, Y, loss)), updates, net.is_weight())


def layer_figures(layers: list[tuple], updates: list[np.ndarray] | None,
                  is_weight: list[bool], members: bool = False) -> list[dict]:
    """layers.csv's rows from each layer's (activation, outputs, W, dW) and the parameters'
    last updates (``is_weight`` picks the weights'). ``members``: the arrays are stacked
    members' (a leading member axis): every figure is then one value per member, each equal
    bit for bit to its own (nntrain/stack.py)."""
    def norm(x):  # Frobenius: the square root of a dot product, as np.linalg.norm
        return per_member(np.sqrt(self_dot(x, members)))

    if updates is not None:
        updates = [u for u, weight in zip(updates, is_weight) if weight]
    rows = []
    for layer, (act, a, W, dW) in enumerate(layers, start=1):
        weight_norm = norm(W)
        ratio = None
        if updates is not None:  # a diverged run's inf / inf is nan, quietly, as in Python
            with np.errstate(invalid="ignore", over="ignore"):
                ratio = per_member(norm(updates[layer - 1]) / np.maximum(weight_norm, 1e-300))
        rows.append({
            "layer": layer, "activation": act.registry_name,
            "act_mean": per_member(a.mean(axis=(-2, -1))),
            "act_std": per_member(a.std(axis=(-2, -1))),
            "dead_fraction": dead_fraction(act, a), "saturated_fraction": saturated_fraction(act, a),
            "weight_norm": weight_norm, "grad_norm": norm(dW), "update_ratio": ratio,
        })
    return rows


def first_nonfinite(net, X: np.ndarray) -> dict:
    """The first layer (1-based) whose weights, activations or gradients hold inf or NaN.

    If every array is finite, the loss itself overflowed (outputs too large to
    square, say): that is reported at the output layer as "loss".
    """
    with np.errstate(all="ignore"):
        outputs = net.layer_outputs(X)
    for layer, (W, b, a, dW, db) in enumerate(zip(net.W, net.b, outputs, net.dW, net.db), start=1):
        for where, arrays in (("weights", (W, b)), ("activations", (a,)), ("gradients", (dW, db))):
            if not all(np.isfinite(x).all() for x in arrays):
                return {"layer": layer, "where": where}
    return {"layer": len(net.W), "where": "loss"}
