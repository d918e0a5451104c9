"""Central-difference gradient check: the analytic backward pass against (E(p+h) - E(p-h)) / 2h."""

from __future__ import annotations

import re

import numpy as np

from .network import Network, check_pair, resolve_loss


TOLERANCE = 1e-5  # float64 central differences agree to ~1e-9 on a correct backward pass


def numerical_gradients(net: Network, X, Y, loss, eps: float = 1e-6) -> list[np.ndarray]:
    """dE/dp by central differences for every entry of every parameter (slow: 2 passes each)."""
    grads = []
    for p in net.parameters():
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)  # views: editing flat edits the live parameter
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            plus = net.loss(X, Y, loss)
            flat[i] = saved - eps
            minus = net.loss(X, Y, loss)
            flat[i] = saved
            gflat[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||), 0 when both are 0 (a layer behind a step function)."""
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / scale) if scale > 1e-12 else 0.0


def gradient_errors(net: Network, X, Y, loss, eps: float = 1e-6) -> dict[str, float]:
    """{parameter name: relative error} of ``loss_and_gradients`` against central differences."""
    loss = resolve_loss(loss)
    check_pair(net.activations[-1].registry_name, loss)
    X = np.asarray(X, dtype=net.dtype)
    Y = np.asarray(Y, dtype=net.dtype).reshape(len(X), -1)
    _, analytic = net.loss_and_gradients(X, Y, loss)
    numeric = numerical_gradients(net, X, Y, loss, eps)
    return {
        name: relative_error(a, n)
        for name, a, n in zip(net.parameter_names(), analytic, numeric)
    }


def check_config(cfg, n_samples: int = 8, eps: float = 1e-6) -> dict[int, float]:
    """Worst relative error per layer for the config's network on its first ``n_samples`` rows.

    float64 whatever the config's dtype: float32 cannot resolve central differences.
    """
    from .losses import LOSSES
    from .train import build_network, prepare

    cfg, data = prepare(cfg)
    net = build_network(cfg, dtype="float64")
    errors = gradient_errors(net, data.X_train[:n_samples], data.Y_train[:n_samples],
                             LOSSES.build(cfg.loss, "loss"), eps)
    worst: dict[int, float] = {}
    for name, error in errors.items():
        layer = int(re.search(r"\d+$", name).group())  # W3, b3, alpha3 -> 3
        worst[layer] = max(worst.get(layer, 0.0), error)
    return worst
