"""Central-difference gradient check: the analytic backward pass against (E(p+h) - E(p-h)) / 2h."""

from __future__ import annotations

import re

import numpy as np

from .experiment import build_network, prepare
from .losses import LOSSES, Loss
from .network import Network, check_pair, resolve_loss

TOLERANCE = 1e-5  # float64 central differences agree to ~1e-9 on a correct backward pass
# Rounding in E(p+h) - E(p-h) leaves about ROUNDING * |E| / h of noise in each numeric
# derivative; a gradient much smaller than that cannot be checked to TOLERANCE at all.
ROUNDING = 4 * np.finfo(np.float64).eps


def numerical_gradients(net: Network, X, Y, loss, eps: float = 1e-6,
                        indices: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """dE/dp by central differences, two loss evaluations per entry (slow).

    ``indices[i]``: the flat entries of parameter i to differentiate (default: all);
    the result holds just those, in that order.
    """
    grads = []
    for i, p in enumerate(net.parameters()):
        flat = p.reshape(-1)  # a view: editing flat edits the live parameter
        entries = np.arange(flat.size) if indices is None else indices[i]
        g = np.zeros(len(entries))
        for k, j in enumerate(entries):
            saved = flat[j]
            flat[j] = saved + eps
            plus = net.loss(X, Y, loss)
            flat[j] = saved - eps
            minus = net.loss(X, Y, loss)
            flat[j] = saved
            g[k] = (plus - minus) / (2 * eps)
        grads.append(g if indices is not None else g.reshape(p.shape))
    return grads


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||), 0 when both are 0 (a layer behind a step function)."""
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / scale) if scale > 1e-12 else 0.0


def pick_entries(size: int, entries: int | None,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """The flat entries of a parameter of ``size`` entries to check: all of them, or at most
    ``entries``: the first ones, or with ``rng`` ones drawn at random (sorted)."""
    if entries is None or size <= entries:
        return np.arange(size)
    if rng is None:
        return np.arange(entries)
    return np.sort(rng.choice(size, entries, replace=False))


def check_gradients(net: Network, X, Y, loss: Loss, analytic: list[np.ndarray],
                    entries: int | None = None, rng: np.random.Generator | None = None,
                    eps: float = 1e-6) -> dict[str, dict]:
    """Per parameter name: ``error``, the relative error of its analytic gradient against
    central differences; ``resolvable``, whether the gradient is large enough to check;
    ``every_entry``, whether all its entries were checked.

    ``analytic``: dE/dp for every p in ``net.parameters()``, taken at the current parameters.
    ``entries``: check at most this many entries of each parameter, the first ones or, given
    ``rng``, ones drawn at random (as CS231n's sparse check); None checks every entry.
    X and Y in the net's dtype, Y with one row per sample.
    """
    E = net.loss(X, Y, loss)
    indices = [pick_entries(a.size, entries, rng) for a in analytic]
    numeric = numerical_gradients(net, X, Y, loss, eps, indices)
    checks = {}
    for name, a, n, idx in zip(net.parameter_names(), analytic, numeric, indices):
        every_entry = len(idx) == a.size
        a = a.reshape(-1)[idx]
        noise = ROUNDING * abs(E) / eps * np.sqrt(a.size)  # expected ||rounding error of n||
        scale = np.linalg.norm(a) + np.linalg.norm(n)
        checks[name] = {"error": relative_error(a, n),
                        "resolvable": bool(scale == 0 or scale * TOLERANCE > noise),
                        "every_entry": every_entry}
    return checks


def compare_gradients(net: Network, X, Y, loss, eps: float = 1e-6, entries: int | None = None,
                      seed: int = 0) -> dict[str, dict]:
    """``check_gradients`` of ``loss_and_gradients`` on (X, Y), over at most ``entries`` entries
    of each parameter drawn at random with ``seed`` (None: every entry)."""
    loss = resolve_loss(loss)
    check_pair(net.activations[-1].registry_name, loss)
    X = np.asarray(X, dtype=net.dtype)
    Y = np.asarray(Y, dtype=net.dtype).reshape(len(X), -1)
    _, analytic = net.loss_and_gradients(X, Y, loss)
    return check_gradients(net, X, Y, loss, analytic, entries, np.random.default_rng(seed), eps)


def gradient_errors(net: Network, X, Y, loss, eps: float = 1e-6) -> dict[str, float]:
    """{parameter name: relative error} of ``loss_and_gradients`` against central differences."""
    return {name: c["error"] for name, c in compare_gradients(net, X, Y, loss, eps).items()}


def check_config(cfg, n_samples: int = 8, entries: int | None = 50,
                 eps: float = 1e-6) -> list[dict]:
    """Per layer, the worst relative error of the config's network on its first ``n_samples`` rows,
    over at most ``entries`` random entries of each parameter (None: all).

    float64 whatever the config's dtype: float32 cannot resolve central differences.
    The biases are redrawn from N(0, 0.1^2): with zero biases and vanishing
    activations every ReLU input sits on its kink at z = 0, where the derivative is
    undefined and central differences average the two sides. A layer whose
    gradient is below the rounding noise of central differences (a vanishing
    gradient) is reported as unresolvable rather than passed or failed.
    """
    cfg, data = prepare(cfg)
    net = build_network(cfg, dtype="float64")
    rng = np.random.default_rng(cfg.seed)
    for b in net.b:
        b[...] = rng.normal(0.0, 0.1, b.shape)
    checks = compare_gradients(net, data.X_train[:n_samples], data.Y_train[:n_samples],
                               LOSSES.build(cfg.loss, "loss"), eps, entries, cfg.seed)
    layers: dict[int, dict] = {}
    for name, check in checks.items():
        layer = int(re.search(r"\d+$", name).group())  # W3, b3, alpha3 -> 3
        worst = layers.setdefault(layer, {"layer": layer, "max_relative_error": 0.0,
                                          "resolvable": True})
        if check["resolvable"]:
            worst["max_relative_error"] = max(worst["max_relative_error"], check["error"])
        else:
            worst["resolvable"] = False
    for worst in layers.values():
        worst["ok"] = ("NO" if worst["max_relative_error"] > TOLERANCE else
                       "yes" if worst["resolvable"] else "gradient too small to check")
    return list(layers.values())
